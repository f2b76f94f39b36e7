// The rule editor (docs/workbench.md, "Editor"). This first version shows the active rule file.

export async function mount(root, app) {
  const heading = document.createElement("h2");
  heading.textContent = "Editor";
  const text = document.createElement("textarea");
  text.id = "source";
  text.setAttribute("aria-label", "Rule file");
  text.rows = 20;
  text.cols = 80;
  root.append(heading, text);
  const data = await app.api.graphql("{ activeRuleset { name source } }");
  text.value = data.activeRuleset ? data.activeRuleset.source : "";
}
