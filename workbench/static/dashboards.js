// The dashboards screen (docs/workbench.md, "Dashboards"): how customers, teams and runs stand.
// Panels behind a tab list (arrow keys move between tabs): customers by team, segment, region,
// size and lifecycle; team and manager load against capacity; managers' revenue against target,
// follow-ups done on time and overdue, and the overdue follow-ups now; the history of runs
// (changes per run over time). Every chart has a table view. `#/dashboards?panel=NAME` opens a panel.

import { barChart, columnChart, element, emptyChart, formatNumber, groupedBarChart } from "./charts.js";
import { teamCapacity } from "./matrix.js";

const CUSTOMERS = `query WorkbenchCustomerDashboard {
  stats {
    customerCount unassignedCustomers customersWithoutManager openFeedback
    byTeam { team { key name } count }
    byRegion { value count }
    bySize { value count }
    byLifecycle { value count }
  }
  segments { key name kind size }
}`;
const TEAMS = `query WorkbenchTeamDashboard {
  teams {
    key name active
    stats { customerCount }
    members { employee { capacity active } }
  }
  employees(active: true) { name stats { customerCount capacity } }
}`;
const RUNS = `query WorkbenchRunDashboard {
  evaluationRuns(first: 100) {
    totalCount
    nodes { id mode status startedAt ruleset { name version } summary { evaluated changed moves { count } } }
  }
}`;
const MANAGERS = `query WorkbenchManagerDashboard($from: String!, $to: String!) {
  employees(active: true) {
    id name
    performance(from: $from, to: $to) { revenue target attainment customersAtEnd tasksDue tasksDoneOnTime tasksOverdue }
  }
  tasks(filter: {overdue: true}, first: 50) {
    totalCount
    nodes { id kind title dueAt assignee { name } team { name } customer { id code name } }
  }
}`;
const SIZES = ["SMALL", "MEDIUM", "LARGE", "ENTERPRISE"];
const LIFECYCLES = ["PROSPECT", "NEW", "ACTIVE", "LOYAL", "AT_RISK", "CHURNED"];
const DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
const TIME = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: "UTC" });
const MOMENT = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });

export const PANELS = [
  { name: "customers", title: "Customers", render: customersPanel },
  { name: "teams", title: "Team load", render: teamsPanel },
  { name: "managers", title: "Managers", render: managersPanel },
  { name: "runs", title: "Runs", render: runsPanel },
];
export const PERIODS = [
  { name: "month", title: "this month", months: 1, back: 0 },
  { name: "last-month", title: "last month", months: 1, back: 1 },
  { name: "quarter", title: "the last 3 months", months: 3, back: 0 },
  { name: "year", title: "the last 12 months", months: 12, back: 0 },
];

let state = null;

/** "AT_RISK" → "at risk"; null → `none`. */
export function enumLabel(value, none = "not recorded") {
  if (value === null || value === undefined) return none;
  return String(value).toLowerCase().replace(/_/g, " ");
}

/** Groups in a fixed `order` of values first (missing ones shown as 0), the rest after, largest first. */
export function inOrder(groups, order) {
  const counts = new Map(groups.map((group) => [group.value, group.count]));
  const listed = order.map((value) => ({ value, count: counts.get(value) || 0 }));
  const rest = groups.filter((group) => !order.includes(group.value)).sort((a, b) => b.count - a.count);
  return [...listed, ...rest];
}

function stat(label, value) {
  return element("div", { className: "stat" },
    element("span", { className: "stat-value", text: formatNumber(value) }),
    element("span", { className: "stat-label", text: label }));
}

async function customersPanel(panel, app) {
  const data = await app.api.graphql(CUSTOMERS);
  const stats = data.stats;
  const segments = data.segments.slice().sort((a, b) => b.size - a.size || (a.key < b.key ? -1 : 1));
  panel.append(
    element("div", { className: "stats" },
      stat("customers", stats.customerCount),
      stat("without a team", stats.unassignedCustomers),
      stat("without a manager", stats.customersWithoutManager),
      stat("open feedback", stats.openFeedback)),
    element("div", { className: "chart-grid" },
      barChart({ title: "Customers by team", rows: stats.byTeam.map((group) => ({ label: group.team ? group.team.name : "No team", value: group.count, flag: !group.team })) }),
      barChart({ title: "Customers by segment", rows: segments.map((segment) => ({ label: `${segment.name} (${enumLabel(segment.kind)})`, value: segment.size })) }),
      barChart({ title: "Customers by region", rows: stats.byRegion.map((group) => ({ label: group.value ?? "not recorded", value: group.count })) }),
      barChart({ title: "Customers by size", rows: inOrder(stats.bySize, SIZES).map((group) => ({ label: enumLabel(group.value), value: group.count })) }),
      barChart({ title: "Customers by lifecycle", rows: inOrder(stats.byLifecycle, LIFECYCLES).map((group) => ({ label: enumLabel(group.value), value: group.count })) })));
}

async function teamsPanel(panel, app) {
  const data = await app.api.graphql(TEAMS);
  const teamRows = data.teams.map((team) => {
    const capacity = teamCapacity(team.members);
    const load = team.stats.customerCount;
    const over = capacity.capacity !== null && load > capacity.capacity;
    let limitLabel = capacity.capacity === null ? "unlimited" : formatNumber(capacity.capacity);
    if (!capacity.active) limitLabel = "no active member";
    return {
      label: `${team.name}${team.active ? "" : " (inactive)"}`,
      values: [load],
      limit: capacity.capacity,
      limitLabel,
      flag: over,
      note: over ? `over capacity by ${formatNumber(load - capacity.capacity)}` : capacity.capacity ? `${Math.round((100 * load) / capacity.capacity)}% of capacity` : "",
    };
  });
  const managers = data.employees
    .filter((employee) => employee.stats.customerCount > 0 || employee.stats.capacity)
    .sort((a, b) => b.stats.customerCount - a.stats.customerCount);
  const managerRows = managers.map((employee) => {
    const { customerCount, capacity } = employee.stats;
    const over = capacity !== null && customerCount > capacity;
    return {
      label: employee.name,
      values: [customerCount],
      limit: capacity,
      limitLabel: capacity === null ? "unlimited" : formatNumber(capacity),
      flag: over,
      note: over ? `over capacity by ${formatNumber(customerCount - capacity)}` : "",
    };
  });
  panel.append(element("div", { className: "chart-grid" },
    groupedBarChart({
      title: "Team load against capacity",
      series: [{ name: "Customers", className: "after" }],
      rows: teamRows,
      note: "A team's capacity is the sum of its active members' capacities; a member without a limit makes it unlimited (no mark).",
    }),
    groupedBarChart({
      title: "Account managers' load against capacity",
      series: [{ name: "Customers managed", className: "before" }],
      rows: managerRows,
    })));
}

/** The `YYYY-MM` months of a period: `months` months ending `back` months before `now`'s (UTC). */
export function periodMonths(months, back, now = new Date()) {
  const month = (offset) => {
    const date = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - offset, 1));
    return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}`;
  };
  return { from: month(back + months - 1), to: month(back) };
}

async function managersPanel(panel, app) {
  const chosen = PERIODS.find((item) => item.name === state.period) || PERIODS[2];
  const select = element("select", { id: "manager-period" },
    PERIODS.map((item) => element("option", { value: item.name, text: item.title, selected: item === chosen })));
  select.addEventListener("change", () => {
    state.period = select.value;
    show("managers").then(() => document.getElementById("manager-period")?.focus());
  });
  const range = periodMonths(chosen.months, chosen.back);
  const data = await app.api.graphql(MANAGERS, range);
  panel.append(element("div", { className: "row" }, element("label", { for: "manager-period", text: "Period" }), select,
    element("span", { className: "muted", text: range.from === range.to ? range.from : `${range.from} to ${range.to}` })));
  const readable = data.employees.filter((employee) => employee.performance);
  if (!readable.length) {
    panel.append(element("p", { className: "muted", text: "Your role may not read the managers' figures." }));
  } else {
    const revenue = readable
      .filter((employee) => Number(employee.performance.revenue) > 0 || employee.performance.target !== null)
      .sort((a, b) => (b.performance.attainment ?? -1) - (a.performance.attainment ?? -1) || Number(b.performance.revenue) - Number(a.performance.revenue));
    const followUps = readable.filter((employee) => employee.performance.tasksDue > 0)
      .sort((a, b) => b.performance.tasksOverdue - a.performance.tasksOverdue || b.performance.tasksDue - a.performance.tasksDue);
    const percent = (value) => (value === null || value === undefined ? "no target" : `${Math.round(value * 100)}% of target`);
    panel.append(element("div", { className: "chart-grid" },
      revenue.length
        ? groupedBarChart({
          title: "Revenue against target",
          series: [{ name: "Revenue", className: "after" }],
          rows: revenue.map((employee) => ({
            label: employee.name,
            values: [Math.round(Number(employee.performance.revenue))],
            limit: employee.performance.target === null ? null : Number(employee.performance.target),
            limitLabel: employee.performance.target === null ? "none" : formatNumber(Math.round(Number(employee.performance.target))),
            note: percent(employee.performance.attainment),
          })),
          limitName: "Target",
          note: "Revenue (whole units) of the customers each manager managed when they bought, against the period's target (the mark); best attainment first.",
        })
        : emptyChart("Revenue against target", "No revenue and no target in this period."),
      followUps.length
        ? groupedBarChart({
          title: "Follow-ups due: done on time and overdue",
          series: [{ name: "Done on time", className: "gained" }, { name: "Overdue", className: "flag" }, { name: "Not yet due", className: "before" }],
          rows: followUps.map((employee) => ({
            label: employee.name,
            values: [
              employee.performance.tasksDoneOnTime,
              employee.performance.tasksOverdue,
              employee.performance.tasksDue - employee.performance.tasksDoneOnTime - employee.performance.tasksOverdue,
            ],
            limit: null,
            limitLabel: `${formatNumber(employee.performance.tasksDue)} due`,
            flag: employee.performance.tasksOverdue > 0,
            note: employee.performance.tasksOverdue ? `${formatNumber(employee.performance.tasksOverdue)} overdue` : "",
          })),
          limitName: "Due",
          note: "Follow-up tasks due in the period (cancelled ones left out): done by their due time, overdue (still open, or done late), or not yet due.",
        })
        : emptyChart("Follow-ups due", "No follow-up task was due in this period.")));
  }
  const overdue = data.tasks;
  panel.append(element("h3", { text: `Overdue follow-ups now: ${formatNumber(overdue.totalCount)}` }));
  if (!overdue.nodes.length) {
    panel.append(element("p", { className: "muted", text: "None: every open follow-up is within its time." }));
    return;
  }
  panel.append(element("div", { className: "table-scroll", role: "region", tabindex: "0", "aria-label": "Overdue follow-ups" },
    element("table", { className: "tasks-table" },
      element("caption", { text: overdue.totalCount > overdue.nodes.length ? `The ${overdue.nodes.length} most overdue of ${formatNumber(overdue.totalCount)}` : "Most overdue first" }),
      element("thead", {}, element("tr", {}, ["Due", "Follow-up", "Customer", "Who"].map((text) => element("th", { scope: "col", text })))),
      element("tbody", {}, overdue.nodes.map((task) => element("tr", {},
        element("td", { text: task.dueAt ? `${MOMENT.format(new Date(task.dueAt))} UTC` : "–" }),
        element("td", { text: `${task.title} (${task.kind})` }),
        element("td", {}, task.customer
          ? element("a", { href: `#/explain?customer=${encodeURIComponent(task.customer.id)}`, text: `${task.customer.code} ${task.customer.name}` })
          : element("span", { className: "muted", text: "–" })),
        element("td", { text: task.assignee ? task.assignee.name : task.team ? `${task.team.name} (queue)` : "nobody" })))))));
}

async function runsPanel(panel, app) {
  const data = await app.api.graphql(RUNS);
  const runs = data.evaluationRuns.nodes.slice().reverse(); // oldest first, left to right
  const days = new Set(runs.map((run) => (run.startedAt ? run.startedAt.slice(0, 10) : "")));
  const axisFormat = days.size > 1 ? DAY : TIME; // all on one day: the axis shows times
  const points = runs.map((run) => {
    const started = run.startedAt ? new Date(run.startedAt) : null;
    const moved = run.summary.moves.reduce((sum, move) => sum + move.count, 0);
    const what = run.ruleset ? `${run.ruleset.name} v${run.ruleset.version}` : "unsaved rules";
    return {
      label: `${started ? `${MOMENT.format(started)} UTC` : "–"} · ${enumLabel(run.mode)} ${run.status === "SUCCEEDED" ? "" : enumLabel(run.status)}`.trim(),
      short: started ? axisFormat.format(started) : "",
      value: run.summary.changed,
      className: `mode-${String(run.mode).toLowerCase()}`,
      detail: `${what}; ${formatNumber(moved)} moved team, ${formatNumber(run.summary.evaluated)} evaluated`,
    };
  });
  const shown = data.evaluationRuns.totalCount > runs.length ? `the latest ${runs.length} of ${formatNumber(data.evaluationRuns.totalCount)} runs` : `${runs.length} runs`;
  if (!points.length) {
    panel.append(element("p", { className: "muted", text: "No run yet." }));
    return;
  }
  panel.append(columnChart({
    title: "Changes per run over time",
    points,
    valueName: "Customers changed",
    legend: [{ name: "apply", className: "mode-apply" }, { name: "preview", className: "mode-preview" }, { name: "real time (a day)", className: "mode-realtime" }],
    note: `${shown}, oldest left. A real-time run collects one day's real-time changes.`,
    summary: `Changes per run: ${shown}`,
  }));
  const recent = data.evaluationRuns.nodes.slice(0, 10);
  panel.append(element("h3", { text: "Latest runs" }), element("ul", { className: "run-list" }, recent.map((run) =>
    element("li", {},
      element("a", { href: `#/preview?run=${encodeURIComponent(run.id)}`, text: `${run.startedAt ? `${MOMENT.format(new Date(run.startedAt))} UTC` : "–"} · ${enumLabel(run.mode)} · ${enumLabel(run.status)}` }),
      element("span", { className: "muted", text: ` — ${formatNumber(run.summary.changed)} changed` })))));
}

async function show(name, focus = false) {
  const panelInfo = PANELS.find((panel) => panel.name === name) || PANELS[0];
  for (const tab of state.tabs) {
    const selected = tab.dataset.panel === panelInfo.name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
  }
  const panel = state.panel;
  panel.setAttribute("aria-labelledby", `tab-${panelInfo.name}`);
  panel.dataset.panel = panelInfo.name;
  panel.dataset.ready = "false";
  panel.replaceChildren(element("p", { className: "muted", role: "status", text: "Loading…" }));
  const ticket = ++state.ticket;
  const fresh = element("div");
  try {
    await panelInfo.render(fresh, state.app);
  } catch (error) {
    fresh.replaceChildren(element("p", { className: "error", role: "alert", text: error.message }));
  }
  if (!state || ticket !== state.ticket) return;
  panel.replaceChildren(...fresh.childNodes);
  panel.dataset.ready = "true";
  const query = new URLSearchParams({ panel: panelInfo.name });
  window.history.replaceState(null, "", `#/dashboards?${query}`);
  for (const figure of panel.querySelectorAll("figure.chart")) if (figure.redraw) figure.redraw();
}

export async function mount(root, app) {
  state = { app, ticket: 0, period: "quarter" };
  const params = app.params || new URLSearchParams((window.location.hash.split("?")[1]) || "");
  const list = element("div", { className: "tabs", role: "tablist", "aria-label": "Dashboards" });
  state.tabs = PANELS.map((panel) => element("button", {
    type: "button",
    role: "tab",
    id: `tab-${panel.name}`,
    "data-panel": panel.name,
    "aria-controls": "dashboard-panel",
    "aria-selected": "false",
    text: panel.title,
    onClick: () => show(panel.name),
  }));
  list.append(...state.tabs);
  list.addEventListener("keydown", (event) => {
    const index = state.tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = (index + 1) % state.tabs.length;
    else if (event.key === "ArrowLeft") next = (index - 1 + state.tabs.length) % state.tabs.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = state.tabs.length - 1;
    if (next === null) return;
    event.preventDefault();
    show(state.tabs[next].dataset.panel, true);
  });
  state.panel = element("section", { id: "dashboard-panel", role: "tabpanel", tabindex: "0", className: "dashboard-panel" });
  root.append(element("h2", { text: "Dashboards" }), list, state.panel);
  await show(params.get("panel") || PANELS[0].name);
}

export function unmount() {
  state = null;
}
