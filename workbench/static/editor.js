// The rule editor (docs/workbench.md, "Editor"): the rule file with line numbers, checked as you
// type, with completion, field help, format, save, and a side-by-side diff of saved versions.
//
// The text is a plain <textarea> (so typing, selection, undo and screen readers work as usual)
// over an overlay that draws the same text transparently with the problems underlined; both use
// one monospaced font without wrapping, so a line and column are a fixed place on screen.
// The text being edited is shared with the preview and explain screens through
// app.session.source / sourceName and sessionStorage (SOURCE_KEY, NAME_KEY).

import { suggest, wordAt } from "./completion.js";
import { inlineChanges, sideBySide } from "./diff.js";

export const SOURCE_KEY = "segmenta.workbench.source";
export const NAME_KEY = "segmenta.workbench.name";
const CHECK_DELAY_MS = 300;
const CONTEXT_LINES = 3;
const DIAGNOSTIC = "severity code message line column endLine endColumn hint";
const CHECK = `query WorkbenchCheck($source: String!) { checkRules(source: $source) { ok diagnostics { ${DIAGNOSTIC} } } }`;
const CATALOGUE = `query WorkbenchCatalogue {
  ruleFields { name kind description unit money derived operators closed values knownValues }
  teams { key name }
  segments { key }
}`;
const VERSIONS = `query WorkbenchVersions {
  rulesets { id name version status hasErrors createdAt }
  activeRuleset { id name version source }
}`;
const VERSION = `query WorkbenchVersion($id: ID!) { ruleset(id: $id) { id name version source } }`;
const FORMAT = `query WorkbenchFormat($source: String!) { formatRules(source: $source) { source changed diagnostics { ${DIAGNOSTIC} } } }`;
const SAVE = `mutation WorkbenchSave($name: String!, $source: String!) {
  saveRuleset(name: $name, source: $source) {
    ruleset { id name version status hasErrors }
    userErrors { field message code }
  }
}`;
const SEVERITY_ORDER = { ERROR: 3, WARNING: 2, INFO: 1 };
const EDITOR_TEXT = "editor";

let state = null;

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function stored(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key, value) {
  try {
    window.sessionStorage.setItem(key, value);
  } catch {
    // kept in memory only (app.session)
  }
}

// ---- positions: the API counts columns in characters (code points), JavaScript in UTF-16 units.

function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

/** The string index of (line, column), both 1-based, columns in code points; clamped to the text.
 * `starts` (lineStarts(text)) may be passed when many positions of one text are looked up. */
export function indexOf(text, line, column, starts = lineStarts(text)) {
  const lineIndex = Math.min(Math.max(line, 1), starts.length) - 1;
  let index = starts[lineIndex];
  const end = lineIndex + 1 < starts.length ? starts[lineIndex + 1] - 1 : text.length;
  for (let counted = 1; counted < column && index < end; counted++) {
    index += text.codePointAt(index) > 0xffff ? 2 : 1;
  }
  return Math.min(index, end);
}

/** The 1-based line and column (in code points) of a string index. */
export function positionOf(text, index) {
  const before = text.slice(0, index);
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line: before.split("\n").length, column: Array.from(before.slice(lineStart)).length + 1 };
}

// ---- mounting

export async function mount(root, app) {
  const may = app.session.may("mayManageRules");
  const role = app.session.role ? String(app.session.role).toLowerCase() : "unknown";
  const els = {};
  const ids = (name, element) => {
    els[name] = element;
    return element;
  };
  root.append(
    h("h2", { text: "Editor" }),
    h("div", { class: "editor-bar" },
      h("label", { for: "ruleset-name" }, "Ruleset name"),
      ids("name", h("input", { id: "ruleset-name", type: "text", autocomplete: "off", spellcheck: "false", size: 18 })),
      ids("format", h("button", { type: "button", id: "format", class: "quiet", title: "Shift+Alt+F" }, "Format")),
      ids("save", h("button", { type: "button", id: "save", disabled: !may, "aria-describedby": "save-note", title: "Ctrl+S" }, "Save")),
      ids("saveNote", h("span", { id: "save-note", class: "muted" },
        may ? "" : `Saving needs an admin (you are ${role === "unknown" ? "not one" : `a ${role}`}).`)),
    ),
    h("div", { class: "editor-layout" },
      h("div", { class: "code" },
        ids("gutter", h("div", { class: "gutter", "aria-hidden": "true" }, ids("gutterLines", h("div", { class: "gutter-lines" },
          ids("numbers", h("pre", { class: "gutter-numbers" })), ids("marks", h("div", { class: "gutter-marks" })))))),
        ids("area", h("div", { class: "code-area" },
          h("div", { class: "overlay", "aria-hidden": "true" }, ids("overlay", h("pre", { class: "overlay-text" }))),
          ids("text", h("textarea", {
            id: "source", wrap: "off", spellcheck: "false", autocapitalize: "off", autocomplete: "off",
            "aria-label": "Rule file", "aria-autocomplete": "list", "aria-controls": "completion",
            "aria-expanded": "false", "aria-describedby": "editor-help field-info",
          })),
          ids("completion", h("ul", { id: "completion", class: "completion", role: "listbox", "aria-label": "Suggestions", hidden: true })),
          ids("hover", h("div", { id: "hover", class: "hover", role: "tooltip", hidden: true })),
        )),
      ),
      h("aside", { class: "problems", "aria-labelledby": "problems-title" },
        h("h3", { id: "problems-title" }, "Problems ", ids("count", h("span", { id: "problem-count", class: "muted", "aria-live": "polite" }))),
        ids("problems", h("ol", { id: "problems" })),
      ),
    ),
    ids("info", h("p", { id: "field-info", class: "field-info", "aria-live": "polite" })),
    h("p", { id: "editor-help", class: "muted help" },
      h("kbd", {}, "Ctrl"), "+", h("kbd", {}, "Space"), " suggests; ",
      h("kbd", {}, "↑"), h("kbd", {}, "↓"), " and ", h("kbd", {}, "Enter"), " pick; ",
      h("kbd", {}, "Esc"), " closes; ", h("kbd", {}, "F8"), " goes to the next problem; ",
      h("kbd", {}, "Shift"), "+", h("kbd", {}, "Alt"), "+", h("kbd", {}, "F"), " formats; ",
      h("kbd", {}, "Tab"), " leaves the editor."),
    h("section", { class: "versions", "aria-labelledby": "versions-title" },
      h("h3", { id: "versions-title" }, "Saved versions"),
      h("div", { class: "version-bar" },
        h("label", { for: "diff-from" }, "From"), ids("from", h("select", { id: "diff-from" })),
        h("label", { for: "diff-to" }, "To"), ids("to", h("select", { id: "diff-to" })),
        ids("compare", h("button", { type: "button", id: "compare" }, "Compare")),
        ids("open", h("button", { type: "button", id: "open-version", class: "quiet" }, "Open “From” in the editor")),
      ),
      ids("diff", h("div", { id: "diff", class: "diff" })),
    ),
  );

  const current = {
    app, els, may,
    catalogue: { fields: new Map(), teams: [], segments: [] },
    diagnostics: [],
    checkTimer: 0,
    checkTicket: 0,
    completion: null,
    sources: new Map(),
    versions: [],
    confirmOpen: false,
    metrics: null,
    edited: false,
  };
  state = current;
  wire(current);

  const [catalogue, versions] = await Promise.allSettled([app.api.graphql(CATALOGUE), app.api.graphql(VERSIONS)]);
  if (state !== current) return; // unmounted (signed out, another screen) meanwhile: write nothing
  if (catalogue.status === "fulfilled") {
    const data = catalogue.value;
    state.catalogue = {
      fields: new Map(data.ruleFields.map((field) => [field.name, field])),
      teams: data.teams,
      segments: data.segments.map((segment) => segment.key),
    };
  } else {
    app.status(`Completion is unavailable: ${catalogue.reason.message}`, "error");
  }
  let active = null;
  if (versions.status === "fulfilled") {
    state.versions = versions.value.rulesets;
    active = versions.value.activeRuleset;
    if (active) state.sources.set(active.id, active.source);
  } else {
    app.status(`The saved versions could not be read: ${versions.reason.message}`, "error");
  }
  const draft = stored(SOURCE_KEY);
  const name = stored(NAME_KEY) || (active ? active.name : "") || "rules";
  els.name.value = name;
  setText(draft !== null ? draft : active ? active.source : "", { load: true });
  fillVersionChoices(active);
}

export function unmount() {
  if (state === null) return;
  window.clearTimeout(state.checkTimer);
  if (state.edited) shareText(state); // keep an edit whose check is still waiting
  window.removeEventListener("resize", state.onResize);
  state.checkTicket++;
  state = null;
}

// ---- wiring

function wire(current) {
  const { els } = current;
  els.text.addEventListener("input", (event) => onInput(current, event));
  els.text.addEventListener("keydown", (event) => onKeyDown(current, event));
  els.text.addEventListener("scroll", () => syncScroll(current));
  current.onResize = () => {
    if (current.completion) placeCompletion(current);
  };
  window.addEventListener("resize", current.onResize);
  els.text.addEventListener("click", () => {
    closeCompletion(current);
    describeCaret(current);
  });
  els.text.addEventListener("keyup", (event) => {
    if (!["ArrowUp", "ArrowDown", "Enter", "Tab", "Escape"].includes(event.key) || !current.completion) describeCaret(current);
  });
  els.text.addEventListener("blur", () => window.setTimeout(() => {
    if (document.activeElement !== els.text) closeCompletion(current);
  }, 150));
  els.text.addEventListener("mousemove", (event) => onHover(current, event));
  els.text.addEventListener("mouseleave", () => {
    els.hover.hidden = true;
  });
  els.completion.addEventListener("mousedown", (event) => event.preventDefault()); // keep the textarea's focus
  els.name.addEventListener("input", () => shareText(current));
  els.format.addEventListener("click", () => formatText(current));
  els.save.addEventListener("click", () => save(current));
  els.compare.addEventListener("click", () => compare(current));
  els.open.addEventListener("click", () => openVersion(current));
  els.from.addEventListener("change", () => resetOpen(current));
}

function text(current) {
  return current.els.text.value;
}

/** Share the text with the other screens: at once in memory, in the tab's storage with `persist`
 * (after each check, not on every key: writing a large file per keystroke would slow typing). */
function shareText(current, persist = true) {
  const { app, els } = current;
  app.session.source = els.text.value;
  app.session.sourceName = els.name.value.trim();
  if (!persist) return;
  store(SOURCE_KEY, els.text.value);
  store(NAME_KEY, els.name.value.trim());
}

/** Replace the whole text; through the editing commands when possible, so Ctrl+Z undoes it.
 * With `load` (the text the editor opens with) it is not an edit: nothing is shared. */
function setText(value, { load = false } = {}) {
  const current = state;
  const area = current.els.text;
  let done = false;
  if (!load && document.activeElement === area) {
    area.select();
    done = document.execCommand("insertText", false, value);
  }
  if (!done) {
    area.value = value;
    onInput(current, { inputType: load ? "load" : "replace" });
  }
}

function onInput(current, event) {
  render(current);
  if (!event || event.inputType !== "load") {
    // Only what the user edited is "the edited rules" for the other screens.
    current.edited = true;
    shareText(current, false);
  }
  window.clearTimeout(current.checkTimer);
  current.checkTimer = window.setTimeout(() => check(current), CHECK_DELAY_MS);
  current.els.count.textContent = "(checking…)";
  if (current.accepting) return;
  const typed = event && event.inputType === "insertText" ? event.data || "" : "";
  if (typed && /[\p{L}\p{N}_.]$/u.test(typed)) openCompletion(current, false);
  else if (typed && /[ (,=<>]$/.test(typed)) openCompletion(current, false, ["operator", "value", "action", "team", "tag", "segment", "presence"]);
  else closeCompletion(current);
}

// ---- drawing: gutter, overlay with the problems underlined

function metrics(current) {
  if (current.metrics) return current.metrics;
  const style = window.getComputedStyle(current.els.text);
  const probe = h("span", { class: "probe" }, "0".repeat(100));
  current.els.overlay.append(probe);
  const charWidth = probe.getBoundingClientRect().width / 100;
  probe.remove();
  current.metrics = {
    charWidth: charWidth || 8,
    lineHeight: parseFloat(style.lineHeight) || 20,
    padLeft: parseFloat(style.paddingLeft) || 0,
    padTop: parseFloat(style.paddingTop) || 0,
  };
  return current.metrics;
}

function render(current) {
  // Cost in proportion to the lines with problems, not to the file: the line numbers are one text
  // node rebuilt only when the line count changes, and only lines with problems are drawn over the
  // textarea, each placed at its line (a 3,000-line file stays responsive while typing).
  const value = text(current);
  let count = 1;
  for (let i = value.indexOf("\n"); i !== -1; i = value.indexOf("\n", i + 1)) count++;
  if (count !== current.lineCount) {
    current.lineCount = count;
    current.els.numbers.textContent = Array.from({ length: count }, (_, index) => index + 1).join("\n");
  }
  const byLine = new Map();
  for (const diagnostic of current.diagnostics) {
    for (let line = diagnostic.line; line <= Math.max(diagnostic.line, diagnostic.endLine); line++) {
      if (line > count) break;
      if (!byLine.has(line)) byLine.set(line, []);
      byLine.get(line).push(diagnostic);
    }
  }
  const { lineHeight, padTop } = metrics(current);
  const lines = byLine.size ? value.split("\n") : [];
  const marks = [];
  const drawn = [];
  for (const [line, items] of byLine) {
    const worst = items.reduce((found, item) => Math.max(found, SEVERITY_ORDER[item.severity] || 0), 0);
    const kind = worst === 3 ? "error" : worst === 2 ? "warning" : "info";
    const mark = h("div", { class: `line-number has-${kind}` }, String(line));
    mark.style.top = `${(line - 1) * lineHeight}px`; // inside the gutter's padding
    marks.push(mark);
    const row = h("div", { class: "overlay-line" }, ...overlayLine(lines[line - 1], line, items));
    row.style.top = `${padTop + (line - 1) * lineHeight}px`; // from the overlay's padding edge
    drawn.push(row);
  }
  current.els.marks.replaceChildren(...marks);
  current.els.overlay.replaceChildren(...drawn);
  syncScroll(current);
}

function overlayLine(line, number, diagnostics) {
  const chars = Array.from(line);
  const marks = new Array(chars.length + 1).fill(0);
  const messages = new Array(chars.length + 1).fill(null);
  for (const diagnostic of diagnostics) {
    const start = diagnostic.line === number ? diagnostic.column - 1 : 0;
    let end = diagnostic.endLine === number ? diagnostic.endColumn - 1 : chars.length;
    if (end <= start) end = start + 1; // an empty range still gets a visible mark
    const severity = SEVERITY_ORDER[diagnostic.severity] || 1;
    for (let i = Math.max(0, start); i < Math.min(end, chars.length + 1); i++) {
      if (severity > marks[i]) {
        marks[i] = severity;
        messages[i] = diagnostic.message;
      }
    }
  }
  const row = [];
  let i = 0;
  while (i <= chars.length) {
    const mark = marks[i];
    let j = i;
    while (j <= chars.length && marks[j] === mark) j++;
    const piece = chars.slice(i, Math.min(j, chars.length)).join("") + (j > chars.length && mark ? " " : "");
    if (mark) {
      const kind = mark === 3 ? "error" : mark === 2 ? "warning" : "info";
      row.push(h("span", { class: `squiggle ${kind}`, "data-line": number, "data-column": i + 1, "data-message": messages[i] }, piece));
    } else if (piece) {
      row.push(piece);
    }
    i = j;
  }
  return row;
}

function syncScroll(current) {
  const { text: area, overlay, gutterLines } = current.els;
  overlay.style.transform = `translate(${-area.scrollLeft}px, ${-area.scrollTop}px)`;
  gutterLines.style.transform = `translateY(${-area.scrollTop}px)`;
  if (current.completion) placeCompletion(current);
}

// ---- checking as you type

async function check(current) {
  const ticket = ++current.checkTicket;
  const source = text(current);
  if (current.edited) shareText(current);
  let result;
  try {
    result = (await current.app.api.graphql(CHECK, { source })).checkRules;
  } catch (error) {
    if (ticket !== current.checkTicket) return;
    current.diagnostics = [];
    current.els.count.textContent = "";
    current.els.problems.replaceChildren(h("li", { class: "error" }, `The check failed: ${error.message}`));
    render(current);
    return;
  }
  if (ticket !== current.checkTicket || state !== current) return; // a newer check is on its way
  showDiagnostics(current, result.diagnostics);
}

function showDiagnostics(current, diagnostics) {
  current.diagnostics = diagnostics;
  render(current);
  const errors = diagnostics.filter((item) => item.severity === "ERROR").length;
  const warnings = diagnostics.filter((item) => item.severity === "WARNING").length;
  const others = diagnostics.length - errors - warnings;
  const parts = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? "" : "s"}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? "" : "s"}`);
  if (others) parts.push(`${others} note${others === 1 ? "" : "s"}`);
  current.els.count.textContent = parts.length ? `(${parts.join(", ")})` : "(none)";
  const items = diagnostics.map((diagnostic, index) => {
    const severity = String(diagnostic.severity || "INFO").toLowerCase();
    return h("li", { class: `problem ${severity}` },
      h("button", {
        type: "button", class: "problem-link", "data-index": index,
        onclick: () => goTo(current, diagnostic),
      },
        h("span", { class: `severity ${severity}` }, severity),
        h("span", { class: "where" }, `Line ${diagnostic.line}, column ${diagnostic.column}`),
        h("span", { class: "message" }, diagnostic.message),
        diagnostic.hint ? h("span", { class: "hint" }, diagnostic.hint) : null,
      ),
    );
  });
  if (!items.length) items.push(h("li", { class: "muted no-problems" }, "No problems."));
  current.els.problems.replaceChildren(...items);
  describeCaret(current);
}

/** Select a problem's text in the editor and bring it into view. */
function goTo(current, diagnostic) {
  const value = text(current);
  const start = indexOf(value, diagnostic.line, diagnostic.column);
  let end = indexOf(value, diagnostic.endLine, diagnostic.endColumn);
  if (end < start) end = start;
  const area = current.els.text;
  area.focus();
  area.setSelectionRange(start, end);
  const { lineHeight } = metrics(current);
  const top = (diagnostic.line - 1) * lineHeight;
  if (top < area.scrollTop || top > area.scrollTop + area.clientHeight - 2 * lineHeight) {
    area.scrollTop = Math.max(0, top - area.clientHeight / 3);
  }
  describeCaret(current);
}

function nextProblem(current) {
  if (!current.diagnostics.length) return;
  const caret = current.els.text.selectionEnd;
  const value = text(current);
  const starts = lineStarts(value);
  const after = current.diagnostics.find((item) => indexOf(value, item.line, item.column, starts) > caret);
  goTo(current, after || current.diagnostics[0]);
}

// ---- field help (hover, and the caret for keyboard users)

function fieldHelp(field) {
  const kind = String(field.kind).toLowerCase();
  const unit = field.unit ? `, in ${field.unit}` : "";
  const words = field.closed ? ` Takes: ${field.values.join(", ")}.` : "";
  return `${field.name} (${kind}${unit}): ${field.description}.${words}`;
}

function diagnosticsAt(current, index) {
  const value = text(current);
  if (!current.diagnostics.length) return [];
  const starts = lineStarts(value);
  return current.diagnostics.filter((item) => {
    const start = indexOf(value, item.line, item.column, starts);
    const end = Math.max(indexOf(value, item.endLine, item.endColumn, starts), start + 1);
    return index >= start && index <= end;
  });
}

function describeCaret(current) {
  const value = text(current);
  const caret = current.els.text.selectionStart;
  const parts = [];
  const word = wordAt(value, caret);
  const field = word ? current.catalogue.fields.get(word.word) : null;
  if (field) parts.push(fieldHelp(field));
  for (const item of diagnosticsAt(current, caret)) parts.push(`${item.message}${item.hint ? ` (${item.hint})` : ""}`);
  const shown = parts.join(" · ");
  if (current.els.info.textContent !== shown) current.els.info.textContent = shown;
}

function indexAtPoint(current, event) {
  const area = current.els.text;
  const { charWidth, lineHeight, padLeft, padTop } = metrics(current);
  const box = area.getBoundingClientRect();
  const x = event.clientX - box.left - area.clientLeft - padLeft + area.scrollLeft;
  const y = event.clientY - box.top - area.clientTop - padTop + area.scrollTop;
  if (x < 0 || y < 0) return null;
  const line = Math.floor(y / lineHeight) + 1;
  const lines = text(current).split("\n");
  if (line > lines.length) return null;
  const column = Math.floor(x / charWidth) + 1;
  if (column > Array.from(lines[line - 1]).length) return null;
  return indexOf(text(current), line, column);
}

function onHover(current, event) {
  const index = indexAtPoint(current, event);
  const hover = current.els.hover;
  if (index === null) {
    hover.hidden = true;
    return;
  }
  const word = wordAt(text(current), index);
  const field = word ? current.catalogue.fields.get(word.word) : null;
  const parts = [];
  if (field) parts.push(fieldHelp(field));
  for (const item of diagnosticsAt(current, index)) parts.push(`${item.message}${item.hint ? ` (${item.hint})` : ""}`);
  if (!parts.length) {
    hover.hidden = true;
    return;
  }
  hover.replaceChildren(...parts.map((part) => h("div", {}, part)));
  const box = current.els.area.getBoundingClientRect();
  const left = Math.min(event.clientX - box.left + 12, Math.max(0, box.width - 280));
  hover.style.left = `${Math.max(0, left)}px`;
  hover.style.top = `${event.clientY - box.top + 18}px`;
  hover.hidden = false;
}

// ---- completion

function openCompletion(current, forced, onlyKinds = null) {
  const area = current.els.text;
  if (area.selectionStart !== area.selectionEnd) return closeCompletion(current);
  const found = suggest(text(current), area.selectionStart, current.catalogue);
  if (!found.items.length || (onlyKinds && !onlyKinds.includes(found.kind)) || (!forced && found.kind === "continue")) {
    if (forced && !found.items.length) current.app.status("No suggestions here.");
    return closeCompletion(current);
  }
  current.completion = { ...found, index: 0 };
  const list = current.els.completion;
  list.replaceChildren(...found.items.map((item, index) => h("li", {
    id: `completion-${index}`, role: "option", class: `option ${item.kind}`, "aria-selected": index === 0 ? "true" : "false",
    onclick: () => accept(current, index),
  }, h("span", { class: "label" }, item.label), item.detail ? h("span", { class: "detail" }, item.detail) : null)));
  list.hidden = false;
  area.setAttribute("aria-expanded", "true");
  area.setAttribute("aria-activedescendant", "completion-0");
  placeCompletion(current);
}

function placeCompletion(current) {
  const { completion, els } = current;
  const area = els.text;
  const value = text(current);
  const { line, column } = positionOf(value, completion.from);
  const { charWidth, lineHeight, padLeft, padTop } = metrics(current);
  const lineText = value.split("\n")[line - 1].slice(0, Math.max(0, column - 1));
  const visual = Array.from(lineText).reduce((width, char) => (char === "\t" ? width + 4 - (width % 4) : width + 1), 0);
  const left = padLeft + visual * charWidth - area.scrollLeft;
  const top = padTop + line * lineHeight - area.scrollTop + 2;
  const width = els.area.clientWidth;
  els.completion.style.maxWidth = `${Math.max(160, width - 8)}px`;
  els.completion.style.left = `${Math.max(0, Math.min(left, width - els.completion.offsetWidth - 4))}px`;
  els.completion.style.top = `${Math.max(0, top)}px`;
}

function closeCompletion(current) {
  current.completion = null;
  current.els.completion.hidden = true;
  current.els.text.setAttribute("aria-expanded", "false");
  current.els.text.removeAttribute("aria-activedescendant");
}

function moveCompletion(current, step) {
  const { completion, els } = current;
  const count = completion.items.length;
  completion.index = (completion.index + step + count) % count;
  for (const option of els.completion.children) option.setAttribute("aria-selected", "false");
  const chosen = els.completion.children[completion.index];
  chosen.setAttribute("aria-selected", "true");
  chosen.scrollIntoView({ block: "nearest" });
  els.text.setAttribute("aria-activedescendant", chosen.id);
}

function accept(current, index) {
  const { completion, els } = current;
  const item = completion.items[index];
  const area = els.text;
  closeCompletion(current);
  area.focus();
  area.setSelectionRange(completion.from, completion.to);
  current.accepting = true;
  try {
    if (!document.execCommand("insertText", false, item.insert)) {
      area.setRangeText(item.insert, completion.from, completion.to, "end");
      onInput(current, { inputType: "replace" });
    }
  } finally {
    current.accepting = false;
  }
  // A keyword that takes a word after it (`team `, `segment `) goes straight on to that word's choices.
  if (item.insert.endsWith(" ")) openCompletion(current, false);
  describeCaret(current);
}

function onKeyDown(current, event) {
  if (current.completion) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      moveCompletion(current, event.key === "ArrowDown" ? 1 : -1);
      return;
    }
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      accept(current, current.completion.index);
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeCompletion(current);
      return;
    }
  }
  if (event.ctrlKey && (event.code === "Space" || event.key === " ")) {
    event.preventDefault();
    openCompletion(current, true);
  } else if (event.key === "F8") {
    event.preventDefault();
    nextProblem(current);
  } else if (event.shiftKey && event.altKey && (event.code === "KeyF" || event.key.toLowerCase() === "f")) {
    event.preventDefault();
    formatText(current);
  } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
    event.preventDefault();
    if (current.may) save(current);
  }
}

// ---- format and save

async function formatText(current) {
  const { app } = current;
  let result;
  try {
    result = (await app.api.graphql(FORMAT, { source: text(current) })).formatRules;
  } catch (error) {
    app.status(`Format failed: ${error.message}`, "error");
    return;
  }
  if (state !== current) return;
  if (result.source === null) {
    const first = result.diagnostics[0];
    app.status(first
      ? `Cannot format while there are syntax errors: line ${first.line}, column ${first.column}: ${first.message}`
      : "Cannot format this text.", "error");
    if (first) goTo(current, first);
    return;
  }
  if (!result.changed) {
    app.status("Already formatted.");
    return;
  }
  const area = current.els.text;
  const caretLine = positionOf(text(current), area.selectionStart).line;
  area.focus();
  setText(result.source);
  const lineStart = indexOf(result.source, caretLine, 1);
  area.setSelectionRange(lineStart, lineStart);
  app.status("Formatted.");
}

async function save(current) {
  const { app, els } = current;
  const name = els.name.value.trim();
  if (!name) {
    app.status("Give the ruleset a name first.", "error");
    els.name.focus();
    return;
  }
  els.save.disabled = true;
  try {
    const payload = (await app.api.graphql(SAVE, { name, source: text(current) })).saveRuleset;
    if (payload.userErrors.length) {
      app.status(`Not saved: ${payload.userErrors.map((item) => item.message).join("; ")}`, "error");
      return;
    }
    const saved = payload.ruleset;
    current.sources.set(saved.id, text(current));
    app.status(`Saved “${saved.name}” version ${saved.version} as a draft${saved.hasErrors ? "; it has errors, so it cannot be activated until they are fixed" : ""}.`);
    await reloadVersions(current, saved.id);
  } catch (error) {
    app.status(error.code === "FORBIDDEN" ? `Not saved: ${error.message}` : `Save failed: ${error.message}`, "error");
  } finally {
    els.save.disabled = !current.may;
  }
}

// ---- versions and the diff

function versionLabel(version) {
  const status = String(version.status || "").toLowerCase();
  const day = version.createdAt ? String(version.createdAt).slice(0, 16).replace("T", " ") : "";
  return `${version.name} v${version.version}${status && status !== "draft" ? ` · ${status}` : ""}${day ? ` · ${day}` : ""}`;
}

function fillVersionChoices(active, chosenTo = EDITOR_TEXT) {
  const current = state;
  const { els, versions } = current;
  const names = [...new Set(versions.map((version) => version.name))];
  const groups = () => [
    h("option", { value: EDITOR_TEXT }, "The editor’s text (unsaved)"),
    ...names.map((name) => h("optgroup", { label: name },
      ...versions.filter((version) => version.name === name).map((version) => h("option", { value: version.id }, versionLabel(version))))),
  ];
  els.from.replaceChildren(...groups());
  els.to.replaceChildren(...groups());
  const fallback = active ? active.id : versions.length ? versions[0].id : EDITOR_TEXT;
  els.from.value = fallback;
  els.to.value = chosenTo;
  const empty = versions.length === 0;
  els.open.disabled = empty;
  if (empty) els.diff.replaceChildren(h("p", { class: "muted" }, "No saved versions yet."));
}

async function reloadVersions(current, newest) {
  const data = await current.app.api.graphql(VERSIONS);
  if (state !== current) return;
  current.versions = data.rulesets;
  const from = current.els.from.value;
  fillVersionChoices(data.activeRuleset, newest || current.els.to.value);
  if ([...current.els.from.options].some((option) => option.value === from)) current.els.from.value = from;
}

async function sourceOf(current, choice) {
  if (choice === EDITOR_TEXT) return text(current);
  if (!current.sources.has(choice)) {
    const found = (await current.app.api.graphql(VERSION, { id: choice })).ruleset;
    if (!found) throw new Error("that version no longer exists");
    current.sources.set(choice, found.source);
  }
  return current.sources.get(choice);
}

function cellText(parts, fallback) {
  if (!parts) return [fallback];
  return parts.map((part) => (part.changed ? h("mark", {}, part.text) : part.text));
}

async function compare(current) {
  const { els, app } = current;
  const fromLabel = els.from.selectedOptions[0] ? els.from.selectedOptions[0].textContent : "";
  const toLabel = els.to.selectedOptions[0] ? els.to.selectedOptions[0].textContent : "";
  let before;
  let after;
  try {
    [before, after] = await Promise.all([sourceOf(current, els.from.value), sourceOf(current, els.to.value)]);
  } catch (error) {
    app.status(`Cannot compare: ${error.message}`, "error");
    return;
  }
  if (state !== current) return;
  const { rows, stats } = sideBySide(before, after);
  const summary = stats.added + stats.removed + stats.changed === 0
    ? "no differences"
    : `${stats.changed} changed, ${stats.added} added, ${stats.removed} removed`;
  const body = [];
  let index = 0;
  while (index < rows.length) {
    // Long runs of unchanged lines fold to their first and last CONTEXT_LINES.
    let end = index;
    while (end < rows.length && rows[end].kind === "same") end++;
    const run = end - index;
    if (run > 2 * CONTEXT_LINES + 1) {
      const keepHead = index === 0 ? 0 : CONTEXT_LINES;
      const keepTail = end === rows.length ? 0 : CONTEXT_LINES;
      for (let i = index; i < index + keepHead; i++) body.push(diffRow(rows[i]));
      const folded = run - keepHead - keepTail;
      if (folded > 0) body.push(h("tr", { class: "folded" }, h("td", { colspan: 4 }, `… ${folded} unchanged line${folded === 1 ? "" : "s"} …`)));
      for (let i = end - keepTail; i < end; i++) body.push(diffRow(rows[i]));
      index = end;
      continue;
    }
    for (; index < end; index++) body.push(diffRow(rows[index]));
    if (index < rows.length && rows[index].kind !== "same") {
      body.push(diffRow(rows[index]));
      index++;
    }
  }
  els.diff.replaceChildren(
    h("p", { class: "diff-summary", id: "diff-summary" }, `${fromLabel} → ${toLabel}: ${summary}.`),
    h("div", { class: "diff-scroll", tabindex: "0", role: "region", "aria-labelledby": "diff-summary" },
      h("table", { class: "diff-table" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col", class: "no" }, "#"), h("th", { scope: "col" }, fromLabel),
          h("th", { scope: "col", class: "no" }, "#"), h("th", { scope: "col" }, toLabel))),
        h("tbody", {}, ...body))));
}

function diffRow(row) {
  const inline = row.kind === "changed" ? inlineChanges(row.left.text, row.right.text) : null;
  const word = { same: "", removed: "removed", added: "added", changed: "changed" }[row.kind];
  return h("tr", { class: `diff-${row.kind}`, title: word || null },
    h("td", { class: "no" }, row.left ? String(row.left.number) : ""),
    h("td", { class: "text left" }, row.left ? cellText(inline && inline.left, row.left.text) : ""),
    h("td", { class: "no" }, row.right ? String(row.right.number) : ""),
    h("td", { class: "text right" }, row.right ? cellText(inline && inline.right, row.right.text) : ""));
}

function resetOpen(current) {
  current.confirmOpen = false;
  current.els.open.textContent = "Open “From” in the editor";
}

async function openVersion(current) {
  const { els, app } = current;
  const choice = els.from.value;
  if (choice === EDITOR_TEXT) {
    app.status("“From” is already the editor’s text.");
    return;
  }
  const version = current.versions.find((item) => item.id === choice);
  let source;
  try {
    source = await sourceOf(current, choice);
  } catch (error) {
    app.status(`Cannot open it: ${error.message}`, "error");
    return;
  }
  if (state !== current) return;
  const unsaved = ![...current.sources.values()].includes(text(current));
  if (unsaved && !current.confirmOpen && text(current).trim()) {
    current.confirmOpen = true;
    els.open.textContent = "Replace the unsaved text? Press again";
    return;
  }
  resetOpen(current);
  els.text.focus();
  setText(source);
  els.text.setSelectionRange(0, 0);
  els.text.scrollTop = 0;
  if (version) els.name.value = version.name;
  shareText(current);
  app.status(version ? `Opened ${versionLabel(version)}.` : "Opened.");
}
