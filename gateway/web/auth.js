// Session handling for the web client.
//
// * The refresh token lives only in the HttpOnly cookie the auth service sets in browser mode
//   (`X-Auth-Mode: cookie` on login, register, refresh and logout). Script never sees it.
// * The access token lives only in the module variable below: never in localStorage,
//   sessionStorage or a script-readable cookie. A reload loses it; the cookie restores it.
// * One refresh in flight per tab: callers share the promise.
// * Other tabs hear about logout and login over BroadcastChannel('auth').

const COOKIE_MODE = { "X-Auth-Mode": "cookie" };
const SESSION_ENDED = new Set([
  "session_revoked",
  "refresh_token_reused",
  "refresh_token_expired",
  "refresh_token_invalid",
]);

export class ApiError extends Error {
  constructor({ status = 0, code = "network_error", detail = "", errors = [], retryAfter = null }) {
    super(detail || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = Array.isArray(errors) ? errors : [];
    this.retryAfter = retryAfter;
  }

  /** The session behind this error is gone: the user has to sign in again. */
  get sessionEnded() {
    return SESSION_ENDED.has(this.code);
  }
}

let accessToken = null; // the only copy of the access token
let currentUser = null; // {id, email}
let expiresAt = 0; // ms since epoch, for the current access token
let refreshTimer = null;
let inFlight = null; // the one refresh promise of this tab
let generation = 0; // bumped on every sign-out, so a late refresh cannot resurrect a session
const listeners = new Set();
const channel = "BroadcastChannel" in globalThis ? new BroadcastChannel("auth") : null;

/** `listener(user, reason)`: user is null when signed out; reason is an ApiError, a string or null. */
export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function user() {
  return currentUser;
}

function notify(reason = null) {
  for (const listener of listeners) listener(currentUser, reason);
}

function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  if (value === null) return null;
  const seconds = Number.parseInt(value, 10);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  const fallback = {
    400: "malformed_request",
    401: "token_invalid",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    502: "upstream_unavailable",
    503: "upstream_unavailable",
    504: "upstream_timeout",
  };
  return new ApiError({
    status: response.status,
    code: typeof body.code === "string" ? body.code : fallback[response.status] || "unexpected",
    detail: typeof body.detail === "string" ? body.detail : "",
    errors: body.errors,
    retryAfter: retryAfterSeconds(response),
  });
}

async function send(method, path, { headers = {}, body } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError({ code: "network_error", detail: "the server could not be reached" });
  }
}

async function readJson(response) {
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

// --- Tokens -----------------------------------------------------------------------------------

function adopt(tokens) {
  accessToken = tokens.access_token;
  const lifetime = Math.max(1, Number(tokens.expires_in) || 60);
  expiresAt = Date.now() + lifetime * 1000;
  const previous = currentUser;
  currentUser = tokens.user ? { id: tokens.user.id, email: tokens.user.email } : previous;
  schedule(lifetime);
  if (!previous || !currentUser || previous.id !== currentUser.id) notify();
}

function drop() {
  generation += 1;
  accessToken = null;
  currentUser = null;
  expiresAt = 0;
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

/** Refresh ~30 s before expiry, or at 80 % of a short lifetime. */
function schedule(lifetimeSeconds) {
  clearTimeout(refreshTimer);
  const lead = lifetimeSeconds > 150 ? lifetimeSeconds - 30 : lifetimeSeconds * 0.8;
  refreshTimer = setTimeout(scheduledRefresh, lead * 1000);
}

async function scheduledRefresh() {
  refreshTimer = null;
  try {
    await refresh();
  } catch (error) {
    if (!(error instanceof ApiError) || error.sessionEnded || !currentUser) return;
    // A passing failure (network, rate limit, upstream down): try again before the token ends.
    const remaining = Math.max(0, expiresAt - Date.now());
    const wait = error.retryAfter !== null ? error.retryAfter * 1000 : Math.min(5000, remaining / 2);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(scheduledRefresh, Math.max(1000, wait));
  }
}

/**
 * Exchange the refresh cookie for a new access token. At most one request per tab at a time;
 * concurrent callers share it. Rejects with ApiError; when the session has ended, the tab is
 * signed out first and listeners hear why.
 */
export function refresh() {
  if (inFlight) return inFlight;
  const started = generation;
  inFlight = (async () => {
    try {
      const response = await send("POST", "/auth/refresh", { headers: COOKIE_MODE });
      const tokens = await readJson(response);
      if (started !== generation) {
        // Signed out (or in again) while this was on its way: the answer belongs to no one.
        throw new ApiError({ code: "superseded", detail: "the session changed meanwhile" });
      }
      adopt(tokens);
      return currentUser;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && started === generation) {
        const wasSignedIn = currentUser !== null;
        drop();
        if (wasSignedIn) notify(error);
      }
      throw error;
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

/** On page load: restore the session from the cookie, if there is one. Resolves to the user or null. */
export async function restore() {
  try {
    return await refresh();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.code === "superseded")) {
      return currentUser;
    }
    throw error;
  }
}

// --- Signing in and out -----------------------------------------------------------------------

async function signIn(path, email, password) {
  const response = await send("POST", path, { headers: COOKIE_MODE, body: { email, password } });
  const tokens = await readJson(response);
  drop();
  adopt(tokens);
  channel?.postMessage({ type: "login", user: currentUser.id });
  return currentUser;
}

export function login(email, password) {
  return signIn("/auth/login", email, password);
}

export function register(email, password) {
  return signIn("/auth/register", email, password);
}

/** Ends this browser's session (server side and the cookie), then tells the other tabs. */
export async function logout(reason = "You have been logged out.") {
  drop();
  try {
    await send("POST", "/auth/logout", { headers: COOKIE_MODE });
  } catch {
    // Offline: the token is already gone from this tab; the session ends on its own.
  }
  channel?.postMessage({ type: "logout" });
  notify(reason);
}

/** Ends every session of the user, this one included. */
export async function logoutEverywhere() {
  await api("POST", "/auth/logout-all");
  await logout("You have been logged out on every device.");
}

function signedOutElsewhere() {
  if (!currentUser && !accessToken) return;
  drop();
  notify("You were logged out in another tab.");
}

channel?.addEventListener("message", (event) => {
  const message = event.data || {};
  if (message.type === "logout") {
    signedOutElsewhere();
  } else if (message.type === "login") {
    // The cookie now holds the new session: pick it up (the user may have changed).
    drop();
    refresh().catch(() => notify());
  }
});

// A throttled background tab may have missed its timer: catch up when it is shown again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && currentUser && expiresAt - Date.now() < 5000) {
    refresh().catch(() => {});
  }
});

// --- API calls --------------------------------------------------------------------------------

/**
 * A Bearer call to the API. On a 401 the access token is refreshed once and the call retried
 * once; a second 401 (or a failed refresh) is the caller's error.
 */
export async function api(method, path, body) {
  if (!accessToken) await refresh();
  const call = () =>
    send(method, path, { headers: { Authorization: `Bearer ${accessToken}` }, body });
  let response = await call();
  if (response.status === 401) {
    await refresh();
    response = await call();
  }
  return readJson(response);
}
