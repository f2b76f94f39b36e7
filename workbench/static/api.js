// The workbench's only way to the server: the public GraphQL API at /graphql, over HTTP POST for
// queries and mutations and over a websocket (graphql-transport-ws) for subscriptions.
// The token is kept in sessionStorage: it survives a reload of the tab, not the browser session.

const TOKEN_KEY = "segmenta.workbench.token";
const ENDPOINT = "/graphql";

/** An API failure: the message of the first error, and every GraphQL error with its code. */
export class ApiError extends Error {
  constructor(message, { errors = [], status = 0 } = {}) {
    super(message);
    this.name = "ApiError";
    this.errors = errors;
    this.status = status;
    this.codes = errors.map((error) => (error.extensions && error.extensions.code) || null).filter(Boolean);
    this.code = this.codes[0] || null;
  }
}

function storedToken() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage refused (private mode policies): the token lives only in memory
  }
}

/** Who is signed in: the token, and once known the `me` answer (role and what it may do). */
export const session = {
  token: storedToken(),
  me: null,
  get role() {
    return this.me ? this.me.role : null;
  },
  /** True when the role may do `action`: a `may…` field of `me`, e.g. "mayManageRules". */
  may(action) {
    return Boolean(this.me && this.me[action]);
  },
  signIn(token) {
    this.token = token;
    this.me = null;
    try {
      window.sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // kept in memory only
    }
  },
  /** Forget the token and everything the screens kept for this tab (the edited text included). */
  signOut() {
    this.token = null;
    this.me = null;
    delete this.source;
    delete this.sourceName;
    try {
      const keys = Array.from({ length: window.sessionStorage.length }, (_, i) => window.sessionStorage.key(i));
      for (const key of keys) if (key && key.startsWith("segmenta.workbench.")) window.sessionStorage.removeItem(key);
    } catch {
      // nothing stored
    }
  },
};

function errorOf(errors, status) {
  const first = errors[0] || {};
  return new ApiError(first.message || `the server answered ${status}`, { errors, status });
}

/**
 * Run a query or mutation; resolves to its `data`, or throws an ApiError carrying the GraphQL
 * errors (and their codes) when the answer has any, or when the request failed.
 */
export async function graphql(query, variables = {}, { signal } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (cause) {
    if (cause && cause.name === "AbortError") throw cause;
    throw new ApiError("the server could not be reached", { errors: [], status: 0 });
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered ${response.status} without JSON`, { status: response.status });
  }
  const errors = Array.isArray(body && body.errors) ? body.errors : [];
  if (response.status === 401 && session.me) {
    // The token was revoked or expired while signed in: the shell asks for a new one.
    window.dispatchEvent(new CustomEvent("workbench:unauthenticated"));
  }
  if (errors.length) throw errorOf(errors, response.status);
  if (!response.ok) throw new ApiError(`the server answered ${response.status}`, { status: response.status });
  return body.data;
}

let nextId = 1;

/**
 * Start a subscription; `next(data)` gets each event's data, `error(ApiError)` a failure and
 * `complete()` the end. Returns a function that stops it. One websocket per subscription keeps
 * the protocol simple: the workbench follows one run at a time.
 */
export function subscribe(query, variables = {}, { next = () => {}, error = () => {}, complete = () => {} } = {}) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${window.location.host}${ENDPOINT}`, "graphql-transport-ws");
  const id = String(nextId++);
  let finished = false;

  const finish = (callback, value) => {
    if (finished) return;
    finished = true;
    callback(value);
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(1000);
  };

  socket.addEventListener("open", () => {
    const payload = session.token ? { Authorization: `Bearer ${session.token}` } : {};
    socket.send(JSON.stringify({ type: "connection_init", payload }));
  });
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      finish(error, new ApiError("the server sent a message that is not JSON"));
      return;
    }
    if (message.type === "connection_ack") {
      socket.send(JSON.stringify({ id, type: "subscribe", payload: { query, variables } }));
    } else if (message.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (message.id === id && message.type === "next") {
      const result = message.payload || {};
      const errors = Array.isArray(result.errors) ? result.errors : [];
      if (errors.length && !result.data) finish(error, errorOf(errors, 200));
      else next(result.data, errors);
    } else if (message.id === id && message.type === "error") {
      finish(error, errorOf(Array.isArray(message.payload) ? message.payload : [], 200));
    } else if (message.id === id && message.type === "complete") {
      finish(complete);
    }
  });
  socket.addEventListener("close", (event) => {
    finish(error, new ApiError(`the connection closed before the subscription ended (${event.code})`));
  });

  return () => {
    if (finished) return;
    finished = true;
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ id, type: "complete" }));
    socket.close(1000);
  };
}

export const api = { graphql, subscribe, ApiError };
