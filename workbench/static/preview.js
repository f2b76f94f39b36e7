// The preview screen (docs/workbench.md, "Preview"): what the edited rules would change, as
// pictures — the from-team → to-team matrix of moves (a cell lists its customers, each one
// explainable), team sizes before and after against capacity, rule hits (a rule that hits nothing
// stands out), segments and tags gained and lost — then save, activate and apply, following the
// apply live until it ends. `#/preview?run=ID` shows an existing run; `?auto=1` previews at once.

import { barChart, divergingBarChart, element, emptyChart, formatNumber, groupedBarChart } from "./charts.js";
import { heatLevel, moveMatrix, teamCapacity, teamSizes } from "./matrix.js";
import { describeError, editedName, editedSource, followRun, may, replaceHash } from "./source.js";

const PREVIEW = `mutation WorkbenchPreview($source: String!) {
  previewRuleset(source: $source) { run { id status } userErrors { field message code } }
}`;
const RUN = `query WorkbenchPreviewRun($id: ID!) {
  evaluationRun(id: $id) {
    id mode status error startedAt
    ruleset { id name version }
    summary {
      evaluated changed unmatched locked superseded inactiveTeams
      teamCounts { teamKey count }
      ruleHits { label count }
      moves { fromKey toKey count }
      segmentChanges { key added removed }
      tagChanges { key added removed }
    }
  }
  teams { key name active members { employee { capacity active } } }
}`;
const ACTIVE = `query WorkbenchActiveRules { activeRuleset { id name version source } }`;
const LATEST_RUN = `query WorkbenchLatestRun { evaluationRuns(first: 1) { nodes { id } } }`;
const CELL = `query WorkbenchMoveCell($id: ID!, $move: TeamMoveFilter!, $after: String) {
  evaluationRun(id: $id) {
    changes(move: $move, first: 25, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { customer { id code name } decidingRule managerAfter { name } }
    }
  }
}`;
const SAVE = `mutation WorkbenchSave($name: String!, $source: String!) {
  saveRuleset(name: $name, source: $source) {
    ruleset { id name version hasErrors diagnostics { severity message line column } }
    userErrors { field message code }
  }
}`;
const ACTIVATE = `mutation WorkbenchActivate($id: ID!) {
  activateRuleset(id: $id) { ruleset { id status } userErrors { field message code } }
}`;
const APPLY = `mutation WorkbenchApply($id: ID!) {
  applyRuleset(id: $id) { run { id status } userErrors { field message code } }
}`;
const APPLIED = `query WorkbenchApplied($id: ID!) {
  evaluationRun(id: $id) { status error summary { evaluated changed unmatched moves { count } } }
}`;

let state = null;

function userErrorText(errors) {
  return errors.map((item) => `${item.message}${item.code ? ` (${item.code})` : ""}`).join("; ");
}

function teamName(teams, key) {
  if (key === null || key === undefined) return "No team";
  const team = teams.get(key);
  return team ? team.name : key;
}

function stat(label, value, note) {
  return element("div", { className: "stat" },
    element("span", { className: "stat-value", text: formatNumber(value) }),
    element("span", { className: "stat-label", text: label }),
    note ? element("span", { className: "stat-note muted", text: note }) : null);
}

/** The move matrix as a table of buttons; arrow keys move between cells. */
function matrixTable(run, teams, onOpen) {
  const order = [...teams.keys()];
  const matrix = moveMatrix(run.summary.moves, order);
  if (!matrix.total) return element("p", { className: "muted", text: "Nobody changes team." });
  const table = element("table", { className: "matrix" },
    element("caption", { text: `Moves between teams: ${formatNumber(matrix.total)} customers. Rows: from; columns: to. Choose a number to list those customers.` }));
  const head = element("tr", {}, element("th", { scope: "col", className: "corner", text: "From ↓ · To →" }));
  for (const column of matrix.columns) head.append(element("th", { scope: "col", text: teamName(teams, column) }));
  head.append(element("th", { scope: "col", className: "total", text: "Leaving" }));
  table.append(element("thead", {}, head));
  const body = element("tbody");
  matrix.rows.forEach((row, rowIndex) => {
    const line = element("tr", {}, element("th", { scope: "row", text: teamName(teams, row) }));
    matrix.columns.forEach((column, columnIndex) => {
      const count = matrix.count(row, column);
      const cell = element("td", { className: `heat-${heatLevel(count, matrix.max)}` });
      if (count) {
        cell.append(element("button", {
          type: "button",
          className: "cell",
          "data-row": rowIndex,
          "data-column": columnIndex,
          "data-from": row ?? "",
          "data-to": column ?? "",
          "aria-label": `${formatNumber(count)} customers from ${teamName(teams, row)} to ${teamName(teams, column)}`,
          text: formatNumber(count),
          onClick: () => onOpen(row, column, count),
        }));
      } else {
        cell.append(element("span", { className: "empty", "aria-label": "none", text: row === column ? "—" : "·" }));
      }
      line.append(cell);
    });
    line.append(element("td", { className: "total num", text: formatNumber(matrix.rowTotals[rowIndex]) }));
    body.append(line);
  });
  const foot = element("tr", {}, element("th", { scope: "row", className: "total", text: "Joining" }));
  for (const total of matrix.columnTotals) foot.append(element("td", { className: "total num", text: formatNumber(total) }));
  foot.append(element("td", { className: "total num", text: formatNumber(matrix.total) }));
  body.append(foot);
  table.append(body);
  table.addEventListener("keydown", (event) => {
    const steps = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] };
    const step = steps[event.key];
    const from = event.target.closest && event.target.closest("button.cell");
    if (!step || !from) return;
    event.preventDefault();
    const buttons = [...table.querySelectorAll("button.cell")];
    let row = Number(from.dataset.row);
    let column = Number(from.dataset.column);
    for (let i = 0; i < matrix.rows.length + matrix.columns.length; i++) {
      row += step[0];
      column += step[1];
      const found = buttons.find((button) => Number(button.dataset.row) === row && Number(button.dataset.column) === column);
      if (found) return found.focus();
      if (row < 0 || column < 0 || row >= matrix.rows.length || column >= matrix.columns.length) return;
    }
  });
  return element("div", { className: "matrix-scroll", role: "region", tabindex: "0", "aria-label": "Move matrix (scrolls sideways)" }, table);
}

function teamSizeChart(run, teams) {
  const sizes = teamSizes(run.summary.teamCounts, run.summary.moves, [...teams.keys()]);
  const rows = sizes.map((item) => {
    const team = teams.get(item.key);
    const capacity = team ? teamCapacity(team.members) : { capacity: null, unlimited: 0, active: 0 };
    const over = capacity.capacity !== null && item.after > capacity.capacity;
    let limitLabel = capacity.capacity === null ? "unlimited" : formatNumber(capacity.capacity);
    if (capacity.active === 0) limitLabel = "no active member";
    return {
      label: teamName(teams, item.key),
      values: [item.before, item.after],
      limit: capacity.capacity,
      limitLabel,
      flag: over,
      note: over ? `over capacity by ${formatNumber(item.after - capacity.capacity)}` : "",
    };
  });
  if (!rows.length) return emptyChart("Team sizes before and after", "No team has customers.");
  return groupedBarChart({
    title: "Team sizes before and after, against capacity",
    series: [{ name: "Before", className: "before" }, { name: "After", className: "after" }],
    rows,
    limitName: "Capacity",
    note: "A team's capacity is the sum of its active members' capacities; a member without a limit makes it unlimited (no mark).",
  });
}

function ruleHitChart(run) {
  const rows = run.summary.ruleHits.map((hit) => ({
    label: hit.label,
    value: hit.count,
    flag: hit.count === 0,
    note: hit.count === 0 ? "hits nothing" : "",
  }));
  if (!rows.length) return emptyChart("Customers per deciding team rule", "The rules have no team rule.");
  const idle = rows.filter((row) => row.flag).length;
  return barChart({
    title: "Customers per deciding team rule",
    rows,
    summary: `Rule hits: ${rows.length} team rules${idle ? `, ${idle} hitting nothing` : ""}`,
    note: idle ? `${idle} rule${idle === 1 ? "" : "s"} decide${idle === 1 ? "s" : ""} nobody's team: shadowed by an earlier rule, or matching no customer.` : "",
    className: "rule-hits",
  });
}

function labelChart(run) {
  const rows = [
    ...run.summary.segmentChanges.map((item) => ({ label: `segment ${item.key}`, left: item.removed, right: item.added })),
    ...run.summary.tagChanges.map((item) => ({ label: `tag ${item.key}`, left: item.removed, right: item.added })),
  ];
  if (!rows.length) return emptyChart("Segments and tags gained and lost", "No customer gains or loses a segment or tag.");
  return divergingBarChart({ title: "Segments and tags gained and lost", rows, leftName: "lost", rightName: "gained" });
}

async function openCell(run, teams, fromKey, toKey, count) {
  const panel = state.cellPanel;
  const title = `${teamName(teams, fromKey)} → ${teamName(teams, toKey)}`;
  const list = element("ul", { className: "customer-list" });
  const more = element("button", { type: "button", className: "quiet", hidden: true, text: "More customers" });
  const heading = element("h3", { id: "cell-heading", tabindex: "-1", text: `${title}: ${formatNumber(count)} customers` });
  panel.replaceChildren(heading, list, more);
  panel.hidden = false;
  heading.focus();
  let after = null;
  const explainRules = run.ruleset ? { ruleset: run.ruleset.id } : state.previewedSource !== null ? { rules: "edited" } : {};
  const load = async () => {
    more.disabled = true;
    const data = await state.app.api.graphql(CELL, { id: run.id, move: { fromKey, toKey }, after });
    const page = data.evaluationRun.changes;
    for (const change of page.nodes) {
      if (!change.customer) {
        list.append(element("li", { className: "muted", text: "a customer deleted since the run" }));
        continue;
      }
      const customer = change.customer;
      list.append(element("li", {},
        element("span", { className: "code", text: customer.code }), " ",
        element("span", { text: customer.name }), " ",
        element("span", { className: "muted", text: `· ${change.decidingRule || "no rule"}${change.managerAfter ? ` · ${change.managerAfter.name}` : ""}` }), " ",
        element("button", {
          type: "button",
          className: "quiet explain-link",
          "aria-label": `Explain ${customer.code} ${customer.name}`,
          text: "Explain",
          onClick: () => state.app.navigate("explain", { customer: customer.id, ...explainRules }),
        })));
    }
    after = page.pageInfo.endCursor;
    more.hidden = !page.pageInfo.hasNextPage;
    more.disabled = false;
  };
  more.addEventListener("click", () => load().catch(showError));
  await load();
}

function showError(error) {
  const { message, diagnostics } = describeError(error);
  if (typeof state.app.status === "function") state.app.status(message, "error");
  const box = element("div", { className: "error-box", role: "alert" }, element("p", { className: "error", text: message }));
  if (diagnostics.length) {
    box.append(element("ul", {}, diagnostics.map((item) =>
      element("li", { text: `line ${item.line}, column ${item.column}: ${item.message}${item.hint ? ` (${item.hint})` : ""}` }))));
  }
  state.messages.replaceChildren(box);
}

function render(run, teams) {
  const summary = run.summary;
  const moving = summary.moves.reduce((sum, move) => sum + move.count, 0);
  state.run = run;
  state.moving = moving;
  const what = run.ruleset ? `ruleset ${run.ruleset.name} v${run.ruleset.version}` : state.previewedSource !== null ? state.sourceLabel : "unsaved rules";
  const heading = element("h3", { id: "preview-heading", text: `${run.mode === "PREVIEW" ? "Preview" : run.mode === "APPLY" ? "Apply" : "Run"} of ${what}: ${run.status}` });
  const result = state.result;
  result.replaceChildren(heading);
  if (run.status !== "SUCCEEDED") {
    result.append(element("p", { className: run.status === "FAILED" ? "error" : "muted", text: run.error || "The run has not finished." }));
    return;
  }
  result.append(element("div", { className: "stats" },
    stat("customers evaluated", summary.evaluated),
    stat("change", summary.changed, "team, manager, segments or tags"),
    stat("change team", moving),
    stat("match no team rule", summary.unmatched),
    stat("locked", summary.locked)));
  if (summary.inactiveTeams.length) {
    result.append(element("p", { className: "warning", text: `Inactive teams named by the rules (passed over): ${summary.inactiveTeams.join(", ")}` }));
  }
  state.cellPanel = element("section", { className: "cell-panel", "aria-labelledby": "cell-heading", hidden: true });
  result.append(
    element("section", { className: "panel matrix-panel" }, element("h3", { text: "Who moves where" }),
      matrixTable(run, teams, (from, to, count) => openCell(run, teams, from, to, count).catch(showError)), state.cellPanel),
    element("div", { className: "chart-grid" }, teamSizeChart(run, teams), ruleHitChart(run), labelChart(run)),
  );
  updateRollout();
}

async function showRun(runId) {
  const data = await state.app.api.graphql(RUN, { id: runId });
  if (!data.evaluationRun) throw new Error("There is no such run.");
  const teams = new Map(data.teams.map((team) => [team.key, team]));
  render(data.evaluationRun, teams);
}

async function preview() {
  const source = state.source;
  state.messages.replaceChildren();
  state.previewButton.disabled = true;
  state.result.replaceChildren(element("p", { className: "muted", role: "status", text: "Previewing…" }));
  try {
    const payload = (await state.app.api.graphql(PREVIEW, { source })).previewRuleset;
    if (payload.userErrors.length) throw new Error(userErrorText(payload.userErrors));
    state.previewedSource = source;
    let status = payload.run.status;
    if (status === "RUNNING") {
      state.follower = followRun(state.app, payload.run.id, (event) => {
        state.result.firstChild.textContent = `Previewing… ${event.step} ${formatNumber(event.done)} of ${formatNumber(event.total)}`;
      });
      status = await state.follower.done;
    }
    replaceHash("preview", { run: payload.run.id });
    await showRun(payload.run.id);
  } catch (error) {
    state.result.replaceChildren();
    showError(error);
  } finally {
    state.previewButton.disabled = false;
  }
}

function updateRollout() {
  const box = state.rollout;
  const allowed = may(state.app, "mayManageRules");
  const ready = state.run && state.run.mode === "PREVIEW" && state.run.status === "SUCCEEDED" && state.previewedSource !== null && state.previewedSource === state.source;
  state.applyButton.disabled = !(allowed && ready && state.appliedSource !== state.source);
  let note = "";
  if (!allowed) note = "Saving, activating and applying need a role that may manage rules (admin).";
  else if (ready && state.appliedSource === state.source) note = "These rules are applied. Change them in the editor and preview again to roll out more.";
  else if (!ready) note = "Preview these rules first: the confirmation states how many customers will move.";
  else note = `Ready: ${formatNumber(state.moving)} customers would change team.`;
  box.querySelector(".rollout-note").textContent = note;
}

function confirmAndApply() {
  const dialog = state.dialog;
  const name = state.nameInput.value.trim();
  if (!name) {
    state.nameInput.focus();
    state.messages.replaceChildren(element("p", { className: "error", role: "alert", text: "Give the rules a name to save them under." }));
    return;
  }
  dialog.querySelector(".confirm-text").textContent =
    `Save these rules as the next version of “${name}”, make them the active ruleset and apply them to every customer now. ` +
    `${formatNumber(state.moving)} customers will move to another team (${formatNumber(state.run.summary.changed)} change in all).`;
  dialog.showModal();
  dialog.querySelector("button.cancel").focus();
}

async function rollOut() {
  const app = state.app;
  const name = state.nameInput.value.trim();
  const progress = state.progress;
  const bar = progress.querySelector("progress");
  const text = progress.querySelector(".progress-text");
  progress.hidden = false;
  state.applyButton.disabled = true;
  const say = (message) => {
    text.textContent = message;
  };
  try {
    say("Saving…");
    const saved = (await app.api.graphql(SAVE, { name, source: state.previewedSource })).saveRuleset;
    if (saved.userErrors.length) throw new Error(userErrorText(saved.userErrors));
    if (saved.ruleset.hasErrors) throw new Error(`Saved as ${name} v${saved.ruleset.version}, but it has errors and cannot be activated.`);
    say(`Saved as ${name} v${saved.ruleset.version}. Activating…`);
    const activated = (await app.api.graphql(ACTIVATE, { id: saved.ruleset.id })).activateRuleset;
    if (activated.userErrors.length) throw new Error(userErrorText(activated.userErrors));
    say(`${name} v${saved.ruleset.version} is active. Applying…`);
    const applied = (await app.api.graphql(APPLY, { id: saved.ruleset.id })).applyRuleset;
    if (applied.userErrors.length) throw new Error(userErrorText(applied.userErrors));
    const runId = applied.run.id;
    progress.dataset.run = runId;
    progress.dataset.started = applied.run.status;
    state.follower = followRun(app, runId, (event) => {
      if (event.total) {
        bar.max = event.total;
        bar.value = event.done;
      }
      // The run's final status is set below, once its summary is shown (a test waits for it).
      progress.dataset.status = "RUNNING";
      say(`Applying ${name} v${saved.ruleset.version}: ${event.step} ${formatNumber(event.done)} of ${formatNumber(event.total)} — ${event.status}`);
    });
    const status = await state.follower.done;
    const result = (await app.api.graphql(APPLIED, { id: runId })).evaluationRun;
    progress.dataset.status = status;
    if (status === "SUCCEEDED") {
      bar.max = 1;
      bar.value = 1;
      const moved = result.summary.moves.reduce((sum, move) => sum + move.count, 0);
      state.appliedSource = state.previewedSource;
      say(`Apply SUCCEEDED: ${formatNumber(result.summary.changed)} customers changed, ${formatNumber(moved)} moved team.`);
    } else {
      say(`Apply ${status}: ${result.error || "nothing was changed"}.`);
    }
  } catch (error) {
    progress.dataset.status = "FAILED";
    say("");
    showError(error);
  } finally {
    updateRollout();
  }
}

function rolloutSection() {
  const nameInput = element("input", { id: "rollout-name", type: "text", autocomplete: "off", spellcheck: "false" });
  const applyButton = element("button", { type: "button", id: "rollout-apply", disabled: true, text: "Save, activate and apply…" });
  const progress = element("div", { className: "progress", id: "apply-progress", hidden: true, role: "status", "aria-live": "polite" },
    element("progress", { max: "1", value: "0", "aria-label": "Apply progress" }),
    element("span", { className: "progress-text" }));
  const dialog = element("dialog", { className: "confirm", "aria-labelledby": "confirm-title" },
    element("h3", { id: "confirm-title", text: "Roll out these rules?" }),
    element("p", { className: "confirm-text" }),
    element("div", { className: "buttons" },
      element("button", { type: "button", className: "quiet cancel", text: "Cancel", onClick: () => dialog.close() }),
      element("button", { type: "button", className: "confirm-apply", text: "Save, activate and apply", onClick: () => { dialog.close(); rollOut(); } })));
  const section = element("section", { className: "panel rollout", "aria-labelledby": "rollout-title" },
    element("h3", { id: "rollout-title", text: "Roll out" }),
    element("div", { className: "row" }, element("label", { for: "rollout-name", text: "Save as" }), nameInput, applyButton),
    element("p", { className: "rollout-note muted" }),
    progress, dialog);
  applyButton.addEventListener("click", confirmAndApply);
  Object.assign(state, { rollout: section, nameInput, applyButton, progress, dialog });
  return section;
}

export async function mount(root, app) {
  state = { app, run: null, previewedSource: null, follower: null, moving: 0 };
  const params = app.params || new URLSearchParams((window.location.hash.split("?")[1]) || "");
  const canPreview = may(app, "mayPreviewRules");
  state.messages = element("div", { className: "messages" });
  state.result = element("div", { className: "preview-result", "aria-live": "polite" });
  state.previewButton = element("button", { type: "button", id: "run-preview", disabled: !canPreview, text: "Preview these rules" });
  const origin = element("p", { className: "rules-origin muted" });
  root.append(
    element("h2", { text: "Preview" }),
    element("div", { className: "toolbar" }, state.previewButton, origin),
    state.messages, state.result, rolloutSection());
  state.previewButton.addEventListener("click", preview);

  const edited = editedSource(app);
  let activeName = null;
  if (edited !== null) {
    state.source = edited;
    state.sourceLabel = "the edited rules";
    origin.textContent = "Rules: the edited rule file from the editor.";
  }
  const active = (await app.api.graphql(ACTIVE)).activeRuleset;
  if (active) activeName = active.name;
  if (edited === null) {
    state.source = active ? active.source : "";
    state.sourceLabel = active ? `the text of ${active.name} v${active.version}` : "no rules";
    origin.textContent = active ? `Rules: the active ruleset ${active.name} v${active.version} (nothing is being edited).` : "Rules: none yet — write some in the editor.";
  }
  state.nameInput.value = editedName(app) || activeName || "policy";
  if (!canPreview) origin.textContent += " Your role may not preview rules: the latest run is shown.";
  updateRollout();

  const runId = params.get("run");
  if (runId) await showRun(runId);
  else if (params.get("auto") && canPreview) await preview();
  else if (!canPreview) {
    const latest = (await app.api.graphql(LATEST_RUN)).evaluationRuns.nodes[0];
    if (latest) await showRun(latest.id);
  }
}

export function unmount() {
  if (state && state.follower) state.follower.stop();
  state = null;
}
