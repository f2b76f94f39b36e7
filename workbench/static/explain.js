// The explain screen (docs/workbench.md, "Explain a customer"): find a customer by code or name,
// then see the rule that decides their team, every rule's verdict with the comparison that failed
// and the customer's actual value, and their assignment history. `#/explain?customer=ID` opens a
// customer; `&rules=edited` explains with the edited rules, `&ruleset=ID` with a saved version.

import { element, formatNumber } from "./charts.js";
import { parseDetail } from "./matrix.js";
import { describeError, editedSource, replaceHash } from "./source.js";

const SEARCH = `query WorkbenchFindCustomer($text: String!) {
  customers(filter: {search: $text}, first: 20, orderBy: CODE_ASC) {
    totalCount
    nodes { id code name team { name } }
  }
}`;
const BY_CODE = `query WorkbenchCustomerByCode($code: String!) { customerByCode(code: $code) { id code name team { name } } }`;
const EXPLAIN = `query WorkbenchExplain($id: ID!, $ruleset: ID, $source: String) {
  explain(customerId: $id, rulesetId: $ruleset, source: $source) {
    decidingRule ruleTeamKey segments tags notes
    team { key name }
    manager { name }
    rules { label line matched detail kind decided }
    customer {
      id code name size region lifecycle assignmentLocked
      team { key name }
      manager { name }
      assignmentHistory {
        cause rule changedAt
        teamBefore { name } teamAfter { name } managerBefore { name } managerAfter { name }
      }
    }
  }
}`;
const DATE = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });

let state = null;

function when(value) {
  if (!value) return "–";
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? value : `${DATE.format(parsed)} UTC`;
}

function chips(values, empty) {
  if (!values.length) return element("span", { className: "muted", text: empty });
  return element("ul", { className: "chips" }, values.map((value) => element("li", { className: "chip", text: value })));
}

/** The comparisons of one verdict, the failing ones first marked. */
function reasons(detail) {
  const items = parseDetail(detail);
  return element("ul", { className: "reasons" }, items.map((item) => {
    const mark = item.holds === null ? "" : item.holds ? "✓" : "✗";
    return element("li", { className: item.holds === false ? "fails" : item.holds ? "holds" : "" },
      mark ? element("span", { className: "mark", "aria-label": item.holds ? "holds" : "fails", text: mark }) : null,
      element("code", { text: item.text }),
      item.actual ? element("span", { className: "actual", text: ` — ${item.actual}` }) : null);
  }));
}

function rulesTable(rules) {
  const body = element("tbody");
  for (const rule of rules) {
    const verdict = rule.matched ? "matches" : "does not match";
    body.append(element("tr", { className: `${rule.matched ? "matched" : "unmatched"}${rule.decided ? " decided" : ""}` },
      element("td", { className: "num", text: String(rule.line) }),
      element("th", { scope: "row" }, rule.kind === "segment" ? element("span", { className: "kind", text: "segment " }) : null,
        element("span", { text: rule.kind === "segment" ? rule.label.replace(/^segment /, "") : rule.label }),
        rule.decided ? element("span", { className: "badge-decides", text: "decides the team" }) : null),
      element("td", { className: "verdict" }, element("span", { className: "mark", "aria-hidden": "true", text: rule.matched ? "✓ " : "✗ " }), verdict),
      element("td", {}, reasons(rule.detail))));
  }
  return element("div", { className: "table-scroll", role: "region", tabindex: "0", "aria-label": "Every rule's verdict" },
    element("table", { className: "rules-table" },
      element("caption", { text: "Every statement of the rule file, in order: its verdict and why (✗ the comparison that failed, with the customer's actual value)" }),
      element("thead", {}, element("tr", {}, ["Line", "Rule", "Verdict", "Why"].map((text) => element("th", { scope: "col", text })))),
      body));
}

function historyTable(history) {
  if (!history.length) return element("p", { className: "muted", text: "No change of team or manager recorded." });
  const name = (item) => (item ? item.name : "none");
  return element("div", { className: "table-scroll", role: "region", tabindex: "0", "aria-label": "Assignment history" },
    element("table", { className: "history-table" },
      element("caption", { text: "Every change of team or manager, newest first" }),
      element("thead", {}, element("tr", {}, ["When", "Cause", "Rule", "Team", "Manager"].map((text) => element("th", { scope: "col", text })))),
      element("tbody", {}, history.map((item) => element("tr", {},
        element("td", { text: when(item.changedAt) }),
        element("td", { text: item.cause || "–" }),
        element("td", { text: item.rule || "–" }),
        element("td", { text: `${name(item.teamBefore)} → ${name(item.teamAfter)}` }),
        element("td", { text: `${name(item.managerBefore)} → ${name(item.managerAfter)}` }))))));
}

function rulesChoice() {
  const { ruleset, rules } = state.choice;
  if (ruleset) return { ruleset, source: null, label: "the saved ruleset version the run used" };
  if (rules === "edited" && state.edited !== null) return { ruleset: null, source: state.edited, label: "the edited rules (from the editor)" };
  return { ruleset: null, source: null, label: "the active ruleset" };
}

async function explain(customerId) {
  state.customer = customerId;
  const ticket = ++state.ticket; // only the latest request may draw
  const output = state.output;
  const choice = rulesChoice();
  output.replaceChildren(element("p", { className: "muted", role: "status", text: "Explaining…" }));
  replaceHash("explain", { customer: customerId, rules: state.choice.rules, ruleset: state.choice.ruleset });
  let result;
  try {
    result = (await state.app.api.graphql(EXPLAIN, { id: customerId, ruleset: choice.ruleset, source: choice.source })).explain;
    if (!state || ticket !== state.ticket) return;
  } catch (error) {
    if (!state || ticket !== state.ticket) return;
    const { message, diagnostics } = describeError(error);
    output.replaceChildren(element("div", { className: "error-box", role: "alert" },
      element("p", { className: "error", text: message }),
      diagnostics.length ? element("ul", {}, diagnostics.map((item) => element("li", { text: `line ${item.line}, column ${item.column}: ${item.message}` }))) : null));
    return;
  }
  if (!result) {
    output.replaceChildren(element("p", { className: "error", role: "alert", text: "There is no such customer (or you may not see it)." }));
    return;
  }
  const customer = result.customer;
  const decided = result.rules.find((rule) => rule.decided);
  const now = customer.team ? customer.team.name : "no team";
  const then = result.team ? result.team.name : "no team";
  const heading = element("h3", { id: "explained", tabindex: "-1", text: `${customer.code} · ${customer.name}` });
  const verdict = decided
    ? `Rule “${decided.label}” (line ${decided.line}) decides: team ${result.ruleTeamKey}.`
    : "No team rule matches: the customer gets no team.";
  const facts = element("dl", { className: "facts" },
    element("dt", { text: "Rules used" }), element("dd", { text: choice.label }),
    element("dt", { text: "Deciding rule" }), element("dd", { className: "deciding", text: verdict }),
    element("dt", { text: "Team now" }), element("dd", { text: `${now}${customer.manager ? `, manager ${customer.manager.name}` : ""}${customer.assignmentLocked ? " (locked)" : ""}` }),
    element("dt", { text: "Under these rules" }), element("dd", { className: now !== then ? "changes" : "", text: `${then}${result.manager ? `, manager ${result.manager.name}` : ""}${now !== then ? " — would move" : " — stays"}` }),
    element("dt", { text: "Segments" }), element("dd", {}, chips(result.segments, "none")),
    element("dt", { text: "Tags" }), element("dd", {}, chips(result.tags, "none")));
  const notes = result.notes.length ? element("ul", { className: "notes" }, result.notes.map((note) => element("li", { text: note }))) : null;
  const matched = result.rules.filter((rule) => rule.matched).length;
  output.replaceChildren(heading, facts, notes,
    element("h3", { text: `Rules: ${formatNumber(matched)} of ${formatNumber(result.rules.length)} match` }), rulesTable(result.rules),
    element("h3", { text: "Assignment history" }), historyTable(customer.assignmentHistory));
  heading.focus();
}

async function search(text) {
  const results = state.results;
  const trimmed = text.trim();
  if (!trimmed) {
    results.replaceChildren(element("p", { className: "error", role: "alert", text: "Type a customer code or part of a name." }));
    return;
  }
  results.replaceChildren(element("p", { className: "muted", text: "Searching…" }));
  const [exact, found] = await Promise.all([
    state.app.api.graphql(BY_CODE, { code: trimmed }),
    state.app.api.graphql(SEARCH, { text: trimmed }),
  ]);
  const customers = found.customers.nodes.slice();
  if (exact.customerByCode && !customers.some((item) => item.id === exact.customerByCode.id)) customers.unshift(exact.customerByCode);
  if (!customers.length) {
    results.replaceChildren(element("p", { role: "status", text: `No customer's code or name contains “${trimmed}”.` }));
    return;
  }
  if (customers.length === 1) {
    results.replaceChildren();
    await explain(customers[0].id);
    return;
  }
  const more = found.customers.totalCount > found.customers.nodes.length ? ` (the first ${found.customers.nodes.length} of ${formatNumber(found.customers.totalCount)}; type more to narrow)` : "";
  results.replaceChildren(
    element("p", { role: "status", text: `${formatNumber(customers.length)} customers found${more}. Choose one:` }),
    element("ul", { className: "customer-list" }, customers.map((customer) => element("li", {},
      element("button", {
        type: "button",
        className: "quiet pick",
        text: `${customer.code} · ${customer.name}${customer.team ? ` (${customer.team.name})` : ""}`,
        onClick: () => explain(customer.id),
      })))));
  results.querySelector("button.pick").focus();
}

export async function mount(root, app) {
  const params = app.params || new URLSearchParams((window.location.hash.split("?")[1]) || "");
  state = { app, ticket: 0, edited: editedSource(app), choice: { rules: params.get("rules") || "", ruleset: params.get("ruleset") || "" } };
  const input = element("input", { id: "explain-search", type: "search", autocomplete: "off", spellcheck: "false", placeholder: "e.g. C00042 or a name" });
  const form = element("form", { className: "search", role: "search" },
    element("label", { for: "explain-search", text: "Customer code or name" }),
    input,
    element("button", { type: "submit", text: "Find" }));
  const select = element("select", { id: "explain-rules" },
    element("option", { value: "", text: "the active ruleset" }),
    state.edited !== null ? element("option", { value: "edited", text: "the edited rules (from the editor)" }) : null,
    state.choice.ruleset ? element("option", { value: "ruleset", text: "the ruleset version of the run" }) : null);
  select.value = state.choice.ruleset ? "ruleset" : state.choice.rules === "edited" && state.edited !== null ? "edited" : "";
  const choose = element("div", { className: "row" }, element("label", { for: "explain-rules", text: "Explain with" }), select);
  state.results = element("div", { className: "search-results" });
  state.output = element("div", { className: "explanation", "aria-live": "polite" });
  root.append(element("h2", { text: "Explain a customer" }), form, choose, state.results, state.output);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search(input.value).catch((error) => state.results.replaceChildren(element("p", { className: "error", role: "alert", text: describeError(error).message })));
  });
  select.addEventListener("change", () => {
    state.choice = select.value === "ruleset" ? { rules: "", ruleset: state.choice.ruleset } : { rules: select.value, ruleset: "" };
    if (state.customer) explain(state.customer);
  });
  const customer = params.get("customer");
  if (customer) await explain(customer);
  else input.focus();
}

export function unmount() {
  state = null;
}
