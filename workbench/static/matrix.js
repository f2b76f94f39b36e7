// The preview's arithmetic (docs/workbench.md, "Preview"), kept free of the page so the browser
// tests can call it directly: the from-team → to-team matrix of a run's moves, team sizes before
// and after, a team's capacity from its members, and an explanation's verdicts split into the
// comparisons they are made of.

/** The matrix of `moves` ({fromKey, toKey, count}; null = no team). Teams come in `order` (keys),
 *  then any others alphabetically, and "no team" (null) last; only teams in some move are listed. */
export function moveMatrix(moves, order = []) {
  const counts = new Map();
  const from = new Set();
  const to = new Set();
  for (const move of moves) {
    if (!move.count) continue;
    const key = `${move.fromKey ?? ""}\u0000${move.toKey ?? ""}`;
    counts.set(key, (counts.get(key) || 0) + move.count);
    from.add(move.fromKey ?? null);
    to.add(move.toKey ?? null);
  }
  const rank = (key) => {
    if (key === null) return [2, ""];
    const index = order.indexOf(key);
    return index >= 0 ? [0, String(index).padStart(6, "0")] : [1, key];
  };
  const sorted = (keys) =>
    [...keys].sort((a, b) => {
      const [ga, ka] = rank(a);
      const [gb, kb] = rank(b);
      return ga - gb || (ka < kb ? -1 : ka > kb ? 1 : 0);
    });
  const rows = sorted(from);
  const columns = sorted(to);
  const count = (fromKey, toKey) => counts.get(`${fromKey ?? ""}\u0000${toKey ?? ""}`) || 0;
  const rowTotals = rows.map((row) => columns.reduce((sum, column) => sum + count(row, column), 0));
  const columnTotals = columns.map((column) => rows.reduce((sum, row) => sum + count(row, column), 0));
  const total = rowTotals.reduce((sum, value) => sum + value, 0);
  const max = Math.max(0, ...counts.values());
  return { rows, columns, count, rowTotals, columnTotals, total, max };
}

/** A cell's shade, 0 (empty) to 5 (the largest cell). */
export function heatLevel(count, max) {
  if (!count || !max) return 0;
  return Math.max(1, Math.min(5, Math.ceil((5 * count) / max)));
}

/**
 * Each team's customers before and after a run: after is the run's `teamCounts`; before adds back
 * those who leave and takes away those who join. Teams in `order` come first; teams with no
 * customer before or after are left out.
 */
export function teamSizes(teamCounts, moves, order = []) {
  const after = new Map(teamCounts.map((item) => [item.teamKey, item.count]));
  const before = new Map(after);
  for (const move of moves) {
    if (move.toKey !== null && move.toKey !== undefined) before.set(move.toKey, (before.get(move.toKey) || 0) - move.count);
    if (move.fromKey !== null && move.fromKey !== undefined) before.set(move.fromKey, (before.get(move.fromKey) || 0) + move.count);
  }
  const keys = [...new Set([...order, ...[...before.keys()].sort()])];
  return keys
    .map((key) => ({ key, before: before.get(key) || 0, after: after.get(key) || 0 }))
    .filter((item) => item.before || item.after);
}

/**
 * A team's capacity from its members ({role, employee: {capacity, active}}): the sum of its active
 * members' capacities. `capacity` is null (unlimited) when an active member has no limit, or when
 * no member is active (then `active` is 0).
 */
export function teamCapacity(members) {
  let sum = 0;
  let active = 0;
  let unlimited = 0;
  for (const member of members || []) {
    const employee = member.employee || member;
    if (!employee || employee.active === false) continue;
    active += 1;
    if (employee.capacity === null || employee.capacity === undefined) unlimited += 1;
    else sum += employee.capacity;
  }
  return { capacity: active && !unlimited ? sum : null, limited: sum, unlimited, active };
}

const MARK = /^ ([✓✗]) \(/;

/**
 * Split an explanation's `detail` ("size >= large ✗ (size is small); region = east ✓ (region is
 * east)") into its comparisons: [{text, holds (true/false, null when unmarked), actual}]. Splits
 * only at the top level, so a segment's nested reasons stay inside its own item's `actual`.
 */
export function parseDetail(detail) {
  const parts = [];
  let depth = 0;
  let start = 0;
  const text = String(detail || "");
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === "(") depth++;
    else if (char === ")") depth = Math.max(0, depth - 1);
    else if (char === ";" && depth === 0 && text[index + 1] === " ") {
      parts.push(text.slice(start, index));
      start = index + 2;
    }
  }
  parts.push(text.slice(start));
  return parts.filter((part) => part.trim()).map(parseComparison);
}

function parseComparison(part) {
  let depth = 0;
  for (let index = 0; index < part.length; index++) {
    const char = part[index];
    if (char === "(") depth++;
    else if (char === ")") depth = Math.max(0, depth - 1);
    else if (depth === 0 && char === " ") {
      const mark = MARK.exec(part.slice(index));
      if (mark && part.endsWith(")")) {
        return {
          text: part.slice(0, index),
          holds: mark[1] === "✓",
          actual: part.slice(index + mark[0].length, -1),
        };
      }
    }
  }
  return { text: part, holds: null, actual: "" };
}
