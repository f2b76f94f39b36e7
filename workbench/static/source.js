// Which rules the preview and explain screens use (docs/workbench.md): the rule file being edited,
// which the editor keeps in `app.session.source` and in sessionStorage under SOURCE_KEY (so it
// survives a reload of the tab), else the active ruleset. Also the shared run follower.

export const SOURCE_KEY = "segmenta.workbench.source";
export const NAME_KEY = "segmenta.workbench.name";

function stored(key) {
  try {
    return window.sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/** The edited rule text, or null when the editor has none. */
export function editedSource(app) {
  const inMemory = app && app.session ? app.session.source : undefined;
  if (typeof inMemory === "string") return inMemory;
  return stored(SOURCE_KEY);
}

/** The name the edited rules are saved under, or null. */
export function editedName(app) {
  const inMemory = app && app.session ? app.session.sourceName : undefined;
  if (typeof inMemory === "string" && inMemory) return inMemory;
  return stored(NAME_KEY);
}

/** True when the signed-in role may `action` (a `me.may…` field), else by role as the API decides. */
export function may(app, action) {
  const session = app.session || {};
  if (typeof session.may === "function" && session.me) return session.may(action);
  const role = String(session.role || "").toLowerCase();
  if (action === "mayPreviewRules") return role === "admin" || role === "manager";
  if (action === "mayManageRules") return role === "admin";
  return false;
}

/** The message and codes of an API error, with the located diagnostics of RULE_ERRORS. */
export function describeError(error) {
  const errors = (error && error.errors) || [];
  const diagnostics = errors.flatMap((item) => (item.extensions && item.extensions.diagnostics) || []);
  return { message: (error && error.message) || String(error), code: (error && error.code) || null, diagnostics };
}

/** Replace the page's hash without reloading the screen (no hashchange event). */
export function replaceHash(name, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  window.history.replaceState(null, "", `#/${name}${text ? `?${text}` : ""}`);
}

const PROGRESS = `subscription WorkbenchRunProgress($run: ID!) {
  evaluationRunProgress(runId: $run) { step done total status }
}`;
const RUN_STATUS = `query WorkbenchRunStatus($id: ID!) { evaluationRun(id: $id) { status error } }`;

/**
 * Follow a run until it ends: `onProgress({step, done, total, status})` for each event of the
 * `evaluationRunProgress` subscription; resolves to the final status. If the websocket fails,
 * falls back to polling `evaluationRun` once a second. Returns { done: Promise, stop() }.
 */
export function followRun(app, runId, onProgress = () => {}) {
  let stopped = false;
  let close = () => {};
  let timer = null;
  const done = new Promise((resolve, reject) => {
    const poll = async () => {
      if (stopped) return;
      try {
        const data = await app.api.graphql(RUN_STATUS, { id: runId });
        const run = data.evaluationRun;
        if (!run) return reject(new Error("the run is gone"));
        onProgress({ step: run.status === "RUNNING" ? "running" : "done", done: 0, total: 0, status: run.status });
        if (run.status !== "RUNNING") return resolve(run.status);
        timer = setTimeout(poll, 1000);
      } catch (error) {
        reject(error);
      }
    };
    let last = null;
    close = app.api.subscribe(PROGRESS, { run: runId }, {
      next(data) {
        last = data.evaluationRunProgress;
        onProgress(last);
        if (last.status && last.status !== "RUNNING") resolve(last.status);
      },
      error() {
        if (!stopped && !(last && last.status !== "RUNNING")) poll();
      },
      complete() {
        if (last && last.status !== "RUNNING") resolve(last.status);
        else poll(); // an unknown run completes at once: ask the run itself
      },
    });
  });
  return {
    done,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      close();
    },
  };
}
