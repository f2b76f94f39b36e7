// The workbench's charts (docs/workbench.md): hand-drawn SVG, each in a <figure> with a caption and
// a "Table" toggle that shows the same figures as a table (for screen readers, exact numbers and
// copying). Charts are drawn for the width they get and redrawn when it changes, so their text
// stays readable from 390 px up. Colours come from classes styled in views.css: the page's
// Content-Security-Policy allows no inline style attributes.

const SVG = "http://www.w3.org/2000/svg";
const NUMBER = new Intl.NumberFormat("en");
const BAR_HEIGHT = 18;
const ROW_GAP = 8;
const FONT_WIDTH = 7; // average width of a 12 px character, to fit labels
let nextChart = 1;

/** 12345 → "12,345"; null/undefined → "–". */
export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return NUMBER.format(value);
}

/** The smallest "nice" number (1, 2 or 5 × 10^k, at least 1) at or above `value`. */
export function niceStep(value) {
  if (!(value > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power + 1e-9) return step * power;
  }
  return 10 * power;
}

/** Axis ticks from 0 past `max` in nice whole steps, about `count` of them: 51 → 0 20 40 60. */
export function ticks(max, count = 4) {
  const step = niceStep(Math.max(max, 1) / count);
  const top = Math.max(step, step * Math.ceil(max / step));
  const found = [];
  for (let value = 0; value <= top + 1e-9; value += step) found.push(value);
  return found;
}

/** The value at the end of the axis for `max`. */
export function axisTop(max) {
  const found = ticks(max);
  return found[found.length - 1];
}

/** `text` cut to `limit` characters with an ellipsis. */
export function shorten(text, limit) {
  const value = String(text);
  if (value.length <= limit) return value;
  return limit <= 1 ? "…" : `${value.slice(0, limit - 1)}…`;
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2).toLowerCase(), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function svgNode(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function textNode(x, y, text, attributes = {}) {
  return svgNode("text", { x, y, ...attributes }, text);
}

/** A table of `rows` (arrays of cells) under `headers`; the first cell of a row is its header. */
export function dataTable(caption, headers, rows) {
  return element(
    "table",
    { className: "data-table" },
    element("caption", { text: caption }),
    element("thead", {}, element("tr", {}, headers.map((header) => element("th", { scope: "col", text: header })))),
    element(
      "tbody",
      {},
      rows.map((cells) =>
        element(
          "tr",
          {},
          cells.map((cell, index) =>
            index === 0 ? element("th", { scope: "row", text: cell }) : element("td", { className: "num", text: cell }),
          ),
        ),
      ),
    ),
  );
}

/**
 * A <figure>: caption, "Table" toggle, the SVG drawn by `draw(width)` (redrawn when the figure's
 * width changes) and the table. `summary` is the SVG's accessible name.
 */
export function chartFigure({ title, summary, draw, table, note, className = "" }) {
  const id = `chart-${nextChart++}`;
  const caption = element("figcaption", { id: `${id}-title` }, element("span", { className: "chart-title", text: title }));
  const toggle = element("button", {
    type: "button",
    className: "quiet chart-toggle",
    "aria-pressed": "false",
    "aria-controls": `${id}-table`,
    text: "Table view",
  });
  caption.append(toggle);
  const picture = element("div", { className: "chart-picture" });
  const tableBox = element("div", { className: "chart-table", id: `${id}-table`, hidden: true }, table);
  const figure = element("figure", { className: `chart ${className}`.trim(), "aria-labelledby": `${id}-title` }, caption, picture, tableBox);
  if (note) figure.append(element("p", { className: "chart-note muted", text: note }));
  toggle.addEventListener("click", () => {
    const showTable = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(showTable));
    picture.hidden = showTable;
    tableBox.hidden = !showTable;
  });
  let drawnWidth = 0;
  const redraw = () => {
    const width = Math.max(260, Math.floor(picture.clientWidth || figure.clientWidth || 600));
    if (width === drawnWidth) return;
    drawnWidth = width;
    const svg = draw(width);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", summary);
    svg.setAttribute("width", width);
    svg.classList.add("chart-svg");
    picture.replaceChildren(svg);
  };
  // Drawn once now (at a guessed width if not yet in the page), then at the real width.
  redraw();
  if (typeof ResizeObserver === "function") {
    let shown = false;
    const observer = new ResizeObserver(() => {
      if (figure.isConnected) {
        shown = true;
        if (!picture.hidden) redraw();
      } else if (shown) observer.disconnect(); // its screen was left
    });
    observer.observe(figure);
  }
  figure.redraw = () => {
    drawnWidth = 0;
    redraw();
  };
  return figure;
}

function labelWidth(width, labels) {
  const longest = Math.max(4, ...labels.map((label) => String(label).length));
  return Math.min(Math.round(width * 0.38), 190, longest * FONT_WIDTH + 10);
}

function axis(svg, x0, x1, y, max, scale) {
  let free = -Infinity; // where the last label ends: a label that would overlap it is left out
  for (const value of ticks(max)) {
    const x = x0 + scale(value);
    if (x > x1 + 1) break;
    svg.append(svgNode("line", { x1: x, x2: x, y1: 0, y2: y, class: "grid" }));
    const text = formatNumber(value);
    const half = (text.length * FONT_WIDTH * 0.9) / 2;
    if (x - half < free + 4) continue;
    svg.append(textNode(x, y + 13, text, { class: "tick", "text-anchor": "middle" }));
    free = x + half;
  }
}

/** Legend entries from `x`, wrapping at `width`: appends them and returns the height used. */
function legend(svg, items, x0, width) {
  let x = x0;
  let y = 4;
  for (const item of items) {
    const size = 16 + item.name.length * FONT_WIDTH + 14;
    if (x > x0 && x + size > width) {
      x = x0;
      y += 18;
    }
    if (item.limit) svg.append(svgNode("line", { x1: x + 2, x2: x + 2, y1: y - 2, y2: y + 14, class: "limit" }));
    else svg.append(svgNode("rect", { x, y, width: 12, height: 12, class: `bar ${item.className}` }));
    svg.append(textNode(x + (item.limit ? 8 : 16), y + 10, item.name, { class: "legend" }));
    x += size;
  }
  return y + 18;
}

/** A chart's frame with a message instead of a picture (nothing to draw). */
export function emptyChart(title, message) {
  return element("figure", { className: "chart empty-chart" },
    element("figcaption", {}, element("span", { className: "chart-title", text: title })),
    element("p", { className: "muted", text: message }));
}

/**
 * Horizontal bars, one per row: rows are { label, value, flag?, note? }; a row with `flag` is drawn
 * in the warning colour with its `note` after the value (e.g. "hits nothing").
 */
export function barChart({ title, rows, valueName = "Customers", summary, note, className }) {
  const max = Math.max(0, ...rows.map((row) => row.value || 0));
  const draw = (width) => {
    const left = labelWidth(width, rows.map((row) => row.label));
    const right = 70;
    const plot = Math.max(40, width - left - right);
    const scale = (value) => (plot * value) / axisTop(max);
    const height = rows.length * (BAR_HEIGHT + ROW_GAP) + 24;
    const svg = svgNode("svg", { viewBox: `0 0 ${width} ${height}`, height });
    const bottom = rows.length * (BAR_HEIGHT + ROW_GAP);
    axis(svg, left, left + plot, bottom, max, scale);
    rows.forEach((row, index) => {
      const y = index * (BAR_HEIGHT + ROW_GAP) + ROW_GAP / 2;
      const label = textNode(left - 6, y + BAR_HEIGHT / 2 + 4, shorten(row.label, Math.floor((left - 8) / FONT_WIDTH)), {
        class: `label${row.flag ? " flagged" : ""}`,
        "text-anchor": "end",
      });
      label.append(svgNode("title", {}, row.label));
      svg.append(label);
      const barWidth = Math.max(row.value > 0 ? 2 : 0, scale(row.value || 0));
      svg.append(svgNode("rect", { x: left, y, width: barWidth, height: BAR_HEIGHT, class: `bar${row.flag ? " flag" : ""}${row.className ? ` ${row.className}` : ""}` }));
      const text = `${formatNumber(row.value)}${row.note ? ` · ${row.note}` : ""}`;
      svg.append(textNode(left + barWidth + 4, y + BAR_HEIGHT / 2 + 4, text, { class: `value${row.flag ? " flagged" : ""}` }));
    });
    return svg;
  };
  const table = dataTable(title, ["", valueName, ...(rows.some((row) => row.note) ? ["Note"] : [])],
    rows.map((row) => [row.label, formatNumber(row.value), ...(rows.some((r) => r.note) ? [row.note || ""] : [])]));
  return chartFigure({ title, summary: summary || `${title}: bar chart, ${rows.length} bars`, draw, table, note, className });
}

/**
 * Grouped horizontal bars with an optional limit mark per row: `series` are { name, className },
 * rows { label, values: [one per series], limit?, limitLabel?, flag?, note? }. The limit (e.g. a
 * team's capacity) is drawn as a dark tick across the row; a flagged row (e.g. over capacity)
 * gets the warning colour on its label.
 */
export function groupedBarChart({ title, series, rows, limitName = "Capacity", summary, note, className }) {
  const max = Math.max(0, ...rows.flatMap((row) => [...row.values, row.limit || 0]));
  const groupHeight = series.length * (BAR_HEIGHT - 4) + ROW_GAP + 6;
  const draw = (width) => {
    const left = labelWidth(width, rows.map((row) => row.label));
    const right = 60;
    const plot = Math.max(40, width - left - right);
    const scale = (value) => (plot * value) / axisTop(max);
    const items = series.map((item, index) => ({ name: item.name, className: item.className || `series-${index}` }));
    if (rows.some((row) => row.limit !== null && row.limit !== undefined)) items.push({ name: limitName, limit: true });
    const probe = svgNode("g");
    const legendHeight = legend(probe, items, Math.min(left, 8), width);
    const bottom = legendHeight + rows.length * groupHeight;
    const height = bottom + 24;
    const svg = svgNode("svg", { viewBox: `0 0 ${width} ${height}`, height });
    svg.append(...probe.childNodes);
    axis(svg, left, left + plot, bottom, max, scale);
    rows.forEach((row, rowIndex) => {
      const top = legendHeight + rowIndex * groupHeight + ROW_GAP / 2;
      const label = textNode(left - 6, top + (series.length * (BAR_HEIGHT - 4)) / 2 + 4,
        shorten(row.label, Math.floor((left - 8) / FONT_WIDTH)), { class: `label${row.flag ? " flagged" : ""}`, "text-anchor": "end" });
      label.append(svgNode("title", {}, row.label + (row.note ? ` (${row.note})` : "")));
      svg.append(label);
      row.values.forEach((value, index) => {
        const y = top + index * (BAR_HEIGHT - 4);
        const barWidth = Math.max(value > 0 ? 2 : 0, scale(value || 0));
        const item = series[index];
        svg.append(svgNode("rect", { x: left, y, width: barWidth, height: BAR_HEIGHT - 6, class: `bar ${item.className || `series-${index}`}` }));
        svg.append(textNode(left + barWidth + 4, y + BAR_HEIGHT / 2 - 1, formatNumber(value), { class: "value small" }));
      });
      if (row.limit !== null && row.limit !== undefined) {
        const limitX = left + scale(row.limit);
        svg.append(svgNode("line", { x1: limitX, x2: limitX, y1: top - 2, y2: top + series.length * (BAR_HEIGHT - 4), class: "limit" }));
      }
    });
    return svg;
  };
  const table = dataTable(title, ["", ...series.map((item) => item.name), limitName, "Note"],
    rows.map((row) => [row.label, ...row.values.map(formatNumber), row.limitLabel ?? formatNumber(row.limit), row.note || ""]));
  return chartFigure({ title, summary: summary || `${title}: grouped bar chart, ${rows.length} groups`, draw, table, note, className });
}

/**
 * Bars to both sides of a middle line: rows { label, left, right } (e.g. customers who lose and
 * who gain a segment), `leftName`/`rightName` naming the two sides.
 */
export function divergingBarChart({ title, rows, leftName, rightName, summary, note, className }) {
  const max = Math.max(0, ...rows.flatMap((row) => [row.left, row.right]));
  const draw = (width) => {
    const left = labelWidth(width, rows.map((row) => row.label));
    const half = Math.max(40, (width - left - 10) / 2);
    const middle = left + half;
    const scale = (value) => ((half - 44) * value) / axisTop(max);
    const top = 22;
    const height = top + rows.length * (BAR_HEIGHT + ROW_GAP) + 6;
    const svg = svgNode("svg", { viewBox: `0 0 ${width} ${height}`, height });
    svg.append(textNode(middle - 6, 14, `◀ ${leftName}`, { class: "legend", "text-anchor": "end" }));
    svg.append(textNode(middle + 6, 14, `${rightName} ▶`, { class: "legend" }));
    svg.append(svgNode("line", { x1: middle, x2: middle, y1: top - 4, y2: height, class: "axis" }));
    rows.forEach((row, index) => {
      const y = top + index * (BAR_HEIGHT + ROW_GAP) + ROW_GAP / 2;
      const label = textNode(left - 6, y + BAR_HEIGHT / 2 + 4, shorten(row.label, Math.floor((left - 8) / FONT_WIDTH)), { class: "label", "text-anchor": "end" });
      label.append(svgNode("title", {}, row.label));
      svg.append(label);
      const lost = scale(row.left || 0);
      const gained = scale(row.right || 0);
      if (row.left) {
        svg.append(svgNode("rect", { x: middle - lost, y, width: Math.max(2, lost), height: BAR_HEIGHT, class: "bar lost" }));
        svg.append(textNode(middle - lost - 4, y + BAR_HEIGHT / 2 + 4, `−${formatNumber(row.left)}`, { class: "value", "text-anchor": "end" }));
      }
      if (row.right) {
        svg.append(svgNode("rect", { x: middle, y, width: Math.max(2, gained), height: BAR_HEIGHT, class: "bar gained" }));
        svg.append(textNode(middle + gained + 4, y + BAR_HEIGHT / 2 + 4, `+${formatNumber(row.right)}`, { class: "value" }));
      }
    });
    return svg;
  };
  const table = dataTable(title, ["", leftName, rightName], rows.map((row) => [row.label, formatNumber(row.left), formatNumber(row.right)]));
  return chartFigure({ title, summary: summary || `${title}: ${rows.length} rows, ${leftName} left, ${rightName} right`, draw, table, note, className });
}

/**
 * Columns over time, oldest left: points { label (the time, shown in the table), short (the axis
 * text), value, className?, detail? }. Used for changes per run.
 */
export function columnChart({ title, points, valueName = "Changes", summary, note, className, legend: legendItems = [] }) {
  const max = Math.max(0, ...points.map((point) => point.value || 0));
  const draw = (width) => {
    const left = 48;
    const top = legendItems.length ? 40 : 8;
    const plotHeight = 160;
    const height = top + plotHeight + 40;
    const svg = svgNode("svg", { viewBox: `0 0 ${width} ${height}`, height });
    if (legendItems.length) legend(svg, legendItems, left, width);
    const plot = width - left - 8;
    const scaleTop = axisTop(max);
    const y = (value) => top + plotHeight - (plotHeight * value) / scaleTop;
    for (const value of ticks(max)) {
      svg.append(svgNode("line", { x1: left, x2: left + plot, y1: y(value), y2: y(value), class: "grid" }));
      svg.append(textNode(left - 6, y(value) + 4, formatNumber(value), { class: "tick", "text-anchor": "end" }));
    }
    const slot = points.length ? plot / points.length : plot;
    const barWidth = Math.max(2, Math.min(28, slot - 3));
    const every = Math.max(1, Math.ceil((points.length * 64) / plot)); // label spacing that fits
    points.forEach((point, index) => {
      const x0 = left + index * slot + (slot - barWidth) / 2;
      const rect = svgNode("rect", { x: x0, y: y(point.value || 0), width: barWidth, height: Math.max(point.value ? 1 : 0, top + plotHeight - y(point.value || 0)), class: `bar ${point.className || ""}`.trim() });
      rect.append(svgNode("title", {}, `${point.label}: ${formatNumber(point.value)}${point.detail ? ` (${point.detail})` : ""}`));
      svg.append(rect);
      if (index % every === 0) svg.append(textNode(x0 + barWidth / 2, top + plotHeight + 14, point.short || "", { class: "tick", "text-anchor": "middle" }));
    });
    svg.append(svgNode("line", { x1: left, x2: left + plot, y1: top + plotHeight, y2: top + plotHeight, class: "axis" }));
    return svg;
  };
  const table = dataTable(title, ["When", valueName, "Detail"], points.map((point) => [point.label, formatNumber(point.value), point.detail || ""]));
  return chartFigure({ title, summary: summary || `${title}: column chart of ${points.length} points`, draw, table, note, className });
}
