// What to offer at the cursor of a rule file: field names, operators, values seen in the data,
// team keys, segment names and keywords, by where the cursor is in the statement.
// Pure functions, no DOM: tests/workbench/test_editor.py runs them inside the browser.
//
// The context is read from the current line up to the cursor. Rule files put one statement on a
// line, and a continuation line starts with the word that continues it (`and …`, `-> …`), so the
// line alone says what may come next; a statement cut elsewhere only gets broader suggestions.

export const KEYWORDS = [
  "and", "or", "not", "in", "between", "like", "contains", "is", "missing", "present",
  "segment", "team", "tag", "task", "within", "otherwise", "true", "false",
];
const KEYWORD_SET = new Set(KEYWORDS);
const COMPARISONS = new Set(["=", "!=", "<", "<=", ">", ">="]);
const TOKEN = /\s+|#.*$|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|->|<=|>=|!=|[=<>(),:]|attr\.[\p{L}\p{N}_]*(?:-+[\p{L}\p{N}_]+)*|[\p{L}\p{N}_.]+(?:-+[\p{L}\p{N}_]+)*|./uy;
const BARE_WORD = /^[\p{L}_][\p{L}\p{N}_]*(?:-+[\p{L}\p{N}_]+)*$/u;
const WORD_CHAR = /[\p{L}\p{N}_.-]/u;

/** The tokens of one line: {text, start, end}, without spaces and comments. */
export function tokenize(line) {
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < line.length) {
    const start = TOKEN.lastIndex;
    const match = TOKEN.exec(line);
    if (!match) break;
    const text = match[0];
    if (!/^\s/.test(text) && !text.startsWith("#")) tokens.push({ text, start, end: start + text.length });
  }
  return tokens;
}

/** The word around `offset` in `text`: {word, from, to} (from ≤ offset ≤ to), or null. */
export function wordAt(text, offset) {
  let from = offset;
  let to = offset;
  while (from > 0 && WORD_CHAR.test(text[from - 1]) && text[from - 1] !== "\n") from--;
  while (to < text.length && WORD_CHAR.test(text[to]) && text[to] !== "\n") to++;
  // A word never ends in "-": "x->team" is x, ->, team.
  while (to > from && text[to - 1] === "-") to--;
  if (from === to) return null;
  return { word: text.slice(from, to), from, to };
}

/** A value as written in a rule: bare when it can be, else double-quoted. */
export function quoteValue(value) {
  if (BARE_WORD.test(value) && !KEYWORD_SET.has(value.toLowerCase())) return value;
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The segments a rule file defines (`segment NAME = …`), in order. */
export function definedSegments(text) {
  const found = [];
  for (const match of text.matchAll(/^\s*segment\s+([\p{L}_][\p{L}\p{N}_]*(?:-+[\p{L}\p{N}_]+)*)\s*=/gmu)) {
    if (!found.includes(match[1])) found.push(match[1]);
  }
  return found;
}

const lower = (token) => (token ? token.text.toLowerCase() : "");

function fieldBefore(tokens, index, fields) {
  const token = tokens[index];
  return token && fields.has(token.text) ? fields.get(token.text) : null;
}

/**
 * Where the cursor is: {kind, prefix, from, to, field?}. `kind` is "condition" (a field, segment
 * or `not` may come), "operator" (after a field), "value" (a value of `field`), "presence" (after
 * `is`), "action" (after `->` or a `,` there), "team", "tag", "segment" (after those action words),
 * "within" (after `task KIND`), "days" (after `within N`),
 * "continue" (after a finished comparison: `and`, `or`, `->`) or "none".
 */
export function completionContext(text, offset, fields = new Map()) {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  const line = text.slice(lineStart, offset);
  const word = wordAt(text, offset);
  const from = word && word.from < offset ? word.from : offset;
  const to = word && word.from < offset ? word.to : offset;
  const prefix = text.slice(from, offset);
  const before = tokenize(line.slice(0, from - lineStart));
  const base = { prefix, from, to };
  const upToCursor = tokenize(line);
  const current = upToCursor[upToCursor.length - 1];
  if (current && /^["']/.test(current.text) && (current.text.length === 1 || current.text.at(-1) !== current.text[0])) {
    return { ...base, kind: "none" }; // inside a quoted string
  }
  const last = before[before.length - 1];
  const lastWord = lower(last);
  const arrow = before.findIndex((token) => token.text === "->");
  if (arrow >= 0) {
    if (lastWord === "->" || lastWord === ",") return { ...base, kind: "action" };
    if (lastWord === "team") return { ...base, kind: "team" };
    if (lastWord === "tag") return { ...base, kind: "tag" };
    if (lastWord === "segment") return { ...base, kind: "segment" };
    // `task KIND within N days`: after the kind, `within`; after the number, the unit.
    if (before.length >= 2 && lower(before[before.length - 2]) === "task" && last.text !== ",") return { ...base, kind: "within" };
    if (before.length >= 2 && lower(before[before.length - 2]) === "within") return { ...base, kind: "days", count: last.text };
    return { ...base, kind: "none" };
  }
  if (!last) return { ...base, kind: "condition", lineStart: true };
  if (lower(before[0]) === "segment" && before.length === 1) return { ...base, kind: "none" }; // naming a new segment
  if (lower(before[0]) === "segment" && before.length === 3 && last.text === "=") return { ...base, kind: "condition" };
  if (lower(before[0]) === "otherwise") return { ...base, kind: before.length === 1 ? "continue" : "none", only: ["->"] };
  const n = before.length;
  if (["and", "or", "not", "(", ":"].includes(lastWord)) {
    // `field between 1 and |`: the `and` of a between, a value comes.
    if (lastWord === "and" && n >= 4 && lower(before[n - 3]) === "between") {
      const field = fieldBefore(before, n - 4, fields);
      if (field) return { ...base, kind: "value", field };
    }
    if (lastWord === "not" && n >= 2 && fieldBefore(before, n - 2, fields)) {
      return { ...base, kind: "operator", field: fieldBefore(before, n - 2, fields), only: ["in"] };
    }
    if (lastWord === "(" && n >= 3 && lower(before[n - 2]) === "in") {
      const field = fieldBefore(before, n - 3, fields);
      if (field) return { ...base, kind: "value", field };
    }
    return { ...base, kind: "condition" };
  }
  if (lastWord === ",") {
    // Inside `field in (a, b, |`: walk back to the list's opening parenthesis.
    for (let i = n - 2; i >= 1; i--) {
      if (before[i].text === ")") break;
      if (before[i].text === "(" && lower(before[i - 1]) === "in") {
        const field = fieldBefore(before, i - 2, fields);
        return field ? { ...base, kind: "value", field } : { ...base, kind: "none" };
      }
    }
    return { ...base, kind: "none" };
  }
  if (COMPARISONS.has(lastWord) || ["like", "contains", "between"].includes(lastWord)) {
    const field = fieldBefore(before, n - 2, fields);
    return field ? { ...base, kind: "value", field } : { ...base, kind: "none" };
  }
  if (lastWord === "is") return { ...base, kind: "presence" };
  if (fields.has(last.text)) return { ...base, kind: "operator", field: fields.get(last.text) };
  if (n >= 2 && (COMPARISONS.has(lower(before[n - 2])) || ["like", "contains"].includes(lower(before[n - 2])))) {
    return { ...base, kind: "continue" };
  }
  if (lastWord === ")" || lastWord === "missing" || lastWord === "present") return { ...base, kind: "continue" };
  // After a segment name used as a condition.
  if (BARE_WORD.test(last.text) && !KEYWORD_SET.has(lastWord)) return { ...base, kind: "continue" };
  return { ...base, kind: "none" };
}

function fieldDetail(field) {
  const kind = String(field.kind || "").toLowerCase();
  return field.unit && field.unit !== "date" ? `${kind}, ${field.unit}` : kind;
}

/**
 * The suggestions at `offset`: {from, to, items}, each item {label, insert, detail, kind}.
 * `catalogue`: {fields: Map name → ruleFields item, teams: [{key, name}], segments: [stored segment keys]}.
 * Items that start with the typed prefix come first, then those containing it; at most `limit`.
 */
export function suggest(text, offset, catalogue, limit = 50) {
  const fields = catalogue.fields || new Map();
  const context = completionContext(text, offset, fields);
  const items = [];
  const add = (label, kind, detail = "", insert = label) => items.push({ label, insert, detail, kind });
  // A condition may use only the segments defined above it; an action may add to any stored segment.
  const earlier = definedSegments(text.slice(0, text.lastIndexOf("\n", offset - 1) + 1));
  const segments = [...new Set([...definedSegments(text), ...(catalogue.segments || [])])];
  switch (context.kind) {
    case "condition":
      for (const field of fields.values()) add(field.name, "field", fieldDetail(field));
      for (const name of earlier) add(name, "segment", "segment");
      add("not", "keyword");
      if (context.lineStart) {
        add("segment", "keyword", "define a segment", "segment ");
        add("otherwise", "keyword", "the last rule", "otherwise -> ");
      }
      break;
    case "operator":
      for (const operator of context.only || context.field.operators) add(operator, "operator", context.field.name);
      break;
    case "presence":
      add("missing", "keyword");
      add("present", "keyword");
      break;
    case "value": {
      const field = context.field;
      const words = field.values && field.values.length ? field.values : field.knownValues || [];
      for (const value of words) add(value, "value", field.name, quoteValue(value));
      break;
    }
    case "action":
      add("team", "keyword", "assign a team", "team ");
      add("tag", "keyword", "add a tag", "tag ");
      add("segment", "keyword", "add to a segment", "segment ");
      add("task", "keyword", "a follow-up task", "task ");
      break;
    case "within":
      add("within", "keyword", "a due date", "within ");
      break;
    case "days":
      add(context.count === "1" ? "day" : "days", "keyword");
      break;
    case "team":
      for (const team of catalogue.teams || []) add(team.key, "team", team.name || "team", quoteValue(team.key));
      break;
    case "tag": {
      const tags = fields.get("tags");
      for (const tag of (tags && tags.knownValues) || []) add(tag, "value", "tag", quoteValue(tag));
      break;
    }
    case "segment":
      for (const name of segments) add(name, "segment", "segment");
      break;
    case "continue":
      if (!context.only) {
        add("and", "keyword");
        add("or", "keyword");
      }
      add("->", "keyword", "then the actions", "-> ");
      break;
    default:
      break;
  }
  const wanted = context.prefix.toLowerCase();
  const starts = [];
  const contains = [];
  for (const item of items) {
    const label = item.label.toLowerCase();
    if (label.startsWith(wanted)) starts.push(item);
    else if (wanted && label.includes(wanted)) contains.push(item);
  }
  let ranked = [...starts, ...contains];
  // Nothing to offer when the only match is what is already typed.
  if (ranked.length === 1 && ranked[0].insert.trim() === context.prefix) ranked = [];
  return { from: context.from, to: context.to, kind: context.kind, items: ranked.slice(0, limit) };
}
