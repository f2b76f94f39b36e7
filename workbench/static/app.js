// The workbench shell: sign-in, the role's limits, and the screens behind hash routes
// (#/editor, #/preview, #/explain, #/dashboards). Each screen is a module exporting
// mount(root, app) and optionally unmount(); it is loaded when first opened.

import { api, session } from "./api.js";

const SCREENS = {
  editor: { module: "./editor.js", title: "Editor" },
  preview: { module: "./preview.js", title: "Preview" },
  explain: { module: "./explain.js", title: "Explain" },
  dashboards: { module: "./dashboards.js", title: "Dashboards" },
};
const DEFAULT_SCREEN = "editor";
const ME_QUERY = `query WorkbenchMe {
  me {
    role
    mayPreviewRules mayManageRules mayWriteCustomers mayWriteSegments mayAssign mayManageStaff mayManageTokens
    employee { name }
  }
}`;
// What the page tells each role it may not do (the API refuses it anyway).
const ROLE_NOTES = {
  admin: "Admin: you may save, activate and apply rules.",
  manager: "Manager: you may preview rules; saving, activating and applying need an admin.",
  agent: "Agent: you see only your own customers; you may look but not change rules.",
  viewer: "Viewer: you may look at everything, but not save, activate or apply rules.",
};

const $ = (id) => document.getElementById(id);
let current = null; // { name, module }
let mounting = 0;

/** Parse "#/name?x=1" into { name, params }. */
export function parseHash(hash) {
  const text = (hash || "").replace(/^#\/?/, "");
  const [name, query = ""] = text.split("?");
  return { name: SCREENS[name] ? name : DEFAULT_SCREEN, params: new URLSearchParams(query) };
}

/** The hash of a screen with parameters: hashOf("explain", { customer: "C1" }) is "#/explain?customer=C1". */
export function hashOf(name, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return `#/${name.replace(/^#?\/?/, "")}${text ? `?${text}` : ""}`;
}

function status(message, kind = "info") {
  const box = $("status");
  box.textContent = message || "";
  box.dataset.kind = kind;
}

const app = {
  api,
  session,
  params: new URLSearchParams(),
  navigate(hash, params = {}) {
    const target = hashOf(hash, params);
    if (window.location.hash === target) route();
    else window.location.hash = target;
  },
  status,
};

function showSignIn(message = "") {
  unmountCurrent();
  $("nav").hidden = true;
  $("who").hidden = true;
  $("limits").hidden = true;
  $("screen").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

function showLimits() {
  const me = session.me;
  const role = (me.role || "unknown").toLowerCase();
  document.body.dataset.role = role;
  $("role-badge").textContent = me.employee ? `${role} · ${me.employee.name}` : role;
  $("role-badge").title = "the role of your token";
  const note = ROLE_NOTES[role] || "Your role is not known to this page: you may look only.";
  $("limits").textContent = note;
  $("limits").hidden = false;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("sign-in").hidden = true;
}

async function loadMe() {
  const data = await api.graphql(ME_QUERY);
  session.me = data.me;
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) {
    $("sign-in-error").textContent = "Paste a token first.";
    $("token").focus();
    return;
  }
  session.signIn(token);
  try {
    await loadMe();
  } catch (error) {
    session.signOut();
    showSignIn(error.code === "UNAUTHENTICATED" ? "That token is not valid (revoked, expired or mistyped)." : error.message);
    return;
  }
  showLimits();
  route();
}

function unmountCurrent() {
  if (current && typeof current.module.unmount === "function") {
    try {
      current.module.unmount();
    } catch (error) {
      console.error(error);
    }
  }
  current = null;
}

function markNav(name) {
  for (const link of document.querySelectorAll("#nav a[data-route]")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  if (!session.me) return;
  const { name, params } = parseHash(window.location.hash);
  app.params = params;
  const ticket = ++mounting;
  unmountCurrent();
  markNav(name);
  status("");
  const screen = $("screen");
  screen.replaceChildren();
  document.title = `${SCREENS[name].title} · Segmenta workbench`;
  let module;
  try {
    module = await import(SCREENS[name].module);
  } catch (error) {
    if (ticket !== mounting) return;
    const note = document.createElement("p");
    note.className = "error";
    note.textContent = `The ${SCREENS[name].title.toLowerCase()} screen could not be loaded (${error.message}).`;
    screen.append(note);
    return;
  }
  if (ticket !== mounting) return; // another route was asked for meanwhile
  const root = document.createElement("section");
  root.className = `screen screen-${name}`;
  root.setAttribute("aria-label", SCREENS[name].title);
  screen.append(root);
  current = { name, module };
  try {
    await module.mount(root, app);
  } catch (error) {
    console.error(error);
    status(`The ${name} screen failed: ${error.message}`, "error");
  }
}

async function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => {
    unmountCurrent();
    session.signOut();
    showSignIn("Signed out.");
  });
  // The screen goes first: its unmount may still save what it holds, which signing out then forgets.
  window.addEventListener("workbench:unauthenticated", () => {
    unmountCurrent();
    session.signOut();
    showSignIn("Your token is no longer valid (revoked or expired): sign in again.");
  });
  window.addEventListener("hashchange", () => {
    route();
    $("view").focus({ preventScroll: true });
  });
  if (!session.token) {
    showSignIn();
    return;
  }
  try {
    await loadMe();
  } catch (error) {
    session.signOut();
    showSignIn(error.code === "UNAUTHENTICATED" ? "Your token is no longer valid: sign in again." : error.message);
    return;
  }
  showLimits();
  route();
}

start();
