// Line diffs of two rule files, for the editor's side-by-side view of two versions.
// Pure functions, no DOM: tests/workbench/test_diff.py runs them inside the browser.
//
// diffLines is Myers' O((N+M)·D) shortest edit script, after trimming the common head and tail
// (versions of one file mostly share both). Its trace costs memory in D·(N+M); past TRACE_LIMIT
// entries the middle is reported as removed and added whole, which is still a correct diff.

const TRACE_LIMIT = 8_000_000;
const WORD_CHAR = /[\p{L}\p{N}_]/u;

/** The lines of a text; a final line break does not start another line. */
export function splitLines(text) {
  if (text === "") return [];
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function shortestEdit(a, b) {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  for (let d = 0; d <= max; d++) {
    if ((d + 1) * v.length > TRACE_LIMIT) return null; // too many differences to trace: caller falls back
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, offset, n, m);
    }
  }
  return [];
}

function backtrack(trace, offset, n, m) {
  const ops = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d];
    const k = x - y;
    const previousK = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? k + 1 : k - 1;
    const previousX = v[offset + previousK];
    const previousY = previousX - previousK;
    while (x > previousX && y > previousY) {
      ops.push({ op: "equal", a: x - 1, b: y - 1 });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === previousX) ops.push({ op: "insert", a: null, b: previousY });
      else ops.push({ op: "delete", a: previousX, b: null });
    }
    x = previousX;
    y = previousY;
  }
  return ops.reverse();
}

/**
 * The edit script from lines `a` to lines `b`: a list of {op: "equal"|"delete"|"insert", a, b}
 * where `a` and `b` are line indexes (null on the side a line is not on), in order.
 */
export function diffLines(a, b) {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const ops = [];
  for (let i = 0; i < head; i++) ops.push({ op: "equal", a: i, b: i });
  const middleA = a.slice(head, a.length - tail);
  const middleB = b.slice(head, b.length - tail);
  let middle = shortestEdit(middleA, middleB);
  if (middle === null) {
    middle = [
      ...middleA.map((_, i) => ({ op: "delete", a: i, b: null })),
      ...middleB.map((_, i) => ({ op: "insert", a: null, b: i })),
    ];
  }
  for (const item of middle) {
    ops.push({ op: item.op, a: item.a === null ? null : item.a + head, b: item.b === null ? null : item.b + head });
  }
  for (let i = 0; i < tail; i++) ops.push({ op: "equal", a: a.length - tail + i, b: b.length - tail + i });
  return ops;
}

/**
 * The parts of two changed lines that differ: the common head and tail are kept, the middle is
 * marked, widened to whole words (`large` → `enterprise`, not `larg` → `enterpris`).
 * Returns {left, right}, each a list of {text, changed}.
 */
export function inlineChanges(left, right) {
  const a = Array.from(left);
  const b = Array.from(right);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const word = (char) => WORD_CHAR.test(char);
  while (head > 0 && word(a[head - 1]) && (word(a[head] || "") || word(b[head] || ""))) head--;
  while (tail > 0 && word(a[a.length - tail]) && (word(a[a.length - tail - 1] || "") || word(b[b.length - tail - 1] || ""))) tail--;
  const parts = (chars) => {
    const pieces = [
      { text: chars.slice(0, head).join(""), changed: false },
      { text: chars.slice(head, chars.length - tail).join(""), changed: true },
      { text: chars.slice(chars.length - tail).join(""), changed: false },
    ];
    return pieces.filter((piece) => piece.text !== "");
  };
  return { left: parts(a), right: parts(b) };
}

/**
 * Rows for a side-by-side view of `before` → `after` (two texts). Each row is
 * {kind: "same"|"removed"|"added"|"changed", left: {number, text}|null, right: {number, text}|null};
 * line numbers are 1-based. Within a run of removals and additions, removed lines are paired
 * with added ones as "changed" rows, in order. `stats` counts the rows of each kind.
 */
export function sideBySide(before, after) {
  const a = splitLines(before);
  const b = splitLines(after);
  const rows = [];
  let removed = [];
  let added = [];
  const flush = () => {
    const pairs = Math.max(removed.length, added.length);
    for (let i = 0; i < pairs; i++) {
      const left = i < removed.length ? { number: removed[i] + 1, text: a[removed[i]] } : null;
      const right = i < added.length ? { number: added[i] + 1, text: b[added[i]] } : null;
      const kind = left && right ? "changed" : left ? "removed" : "added";
      rows.push({ kind, left, right });
    }
    removed = [];
    added = [];
  };
  for (const item of diffLines(a, b)) {
    if (item.op === "equal") {
      flush();
      rows.push({ kind: "same", left: { number: item.a + 1, text: a[item.a] }, right: { number: item.b + 1, text: b[item.b] } });
    } else if (item.op === "delete") {
      removed.push(item.a);
    } else {
      added.push(item.b);
    }
  }
  flush();
  const stats = { same: 0, removed: 0, added: 0, changed: 0 };
  for (const row of rows) stats[row.kind]++;
  return { rows, stats };
}
