// The web client: screens, forms and rendering. Session handling lives in auth.js.
import * as auth from "./auth.js";
import { ApiError } from "./auth.js";

const $ = (id) => document.getElementById(id);
const SCREENS = ["loading", "login", "register", "tasks", "sessions"];
const PUBLIC = new Set(["login", "register"]);
const PAGE_SIZE = 50;
const FIELD_NAMES = {
  email: "Email",
  password: "Password",
  title: "Title",
  description: "Description",
  completed: "Completed",
  body: "Request",
};

const state = {
  screen: "loading",
  filter: "all",
  tasks: [],
  total: 0,
  editing: null, // id of the task being edited
  sessions: [],
};

// --- Messages ---------------------------------------------------------------------------------

function seconds(n) {
  return n === 1 ? "1 second" : `${n} seconds`;
}

/** A sentence for people for every error code of the contract. */
export function describe(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  const wait = error.retryAfter ?? null;
  switch (error.code) {
    case "weak_password":
      return "That password is too weak: use 8 to 128 characters and avoid common or easily guessed passwords.";
    case "email_taken":
      return "An account with this email address already exists. Log in instead.";
    case "invalid_credentials":
      return "The email address or password is not correct.";
    case "rate_limited":
      return wait !== null
        ? `Too many attempts. Please wait ${seconds(wait)} and try again.`
        : "Too many attempts. Please wait a moment and try again.";
    case "session_revoked":
    case "refresh_token_reused":
    case "refresh_token_invalid":
    case "token_invalid":
    case "token_missing":
      return "Your session ended, please sign in again.";
    case "refresh_token_expired":
    case "token_expired":
      return "Your session expired, please sign in again.";
    case "validation_error": {
      const fields = error.errors.map(
        (item) => `${FIELD_NAMES[item.field] || item.field}: ${item.message}`,
      );
      return fields.length
        ? `Please correct the following: ${fields.join("; ")}.`
        : "Please check the form and try again.";
    }
    case "upstream_unavailable":
      return "The service is temporarily unavailable. Please try again in a moment.";
    case "upstream_timeout":
      return "The service took too long to answer. Please try again.";
    case "overloaded":
      return wait !== null
        ? `The service is busy. Please try again in ${seconds(wait)}.`
        : "The service is busy. Please try again shortly.";
    case "not_found":
      return "That item no longer exists.";
    case "forbidden":
      return "You are not allowed to do that.";
    case "payload_too_large":
      return "That is too long to save.";
    case "malformed_request":
      return "The request could not be understood. Please reload the page.";
    case "network_error":
      return "The server cannot be reached. Check your connection and try again.";
    default:
      return "Something went wrong. Please try again.";
  }
}

function announce(message) {
  const status = $("status");
  status.textContent = "";
  // A fresh text node after clearing makes screen readers repeat an identical message.
  requestAnimationFrame(() => {
    status.textContent = message;
  });
}

function showError(error) {
  const box = $("error");
  box.textContent = typeof error === "string" ? error : describe(error);
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.textContent = "";
  box.hidden = true;
}

/** Disable a submit button for the Retry-After of a rate-limited answer. */
function holdOff(button, error) {
  if (!(error instanceof ApiError) || error.code !== "rate_limited" || !error.retryAfter) return;
  button.disabled = true;
  setTimeout(() => {
    button.disabled = false;
  }, error.retryAfter * 1000);
}

/** Handle an error of an API call: a lost session goes back to the login screen. */
async function failed(error) {
  if (error instanceof ApiError && error.code === "superseded") return;
  if (error instanceof ApiError && error.status === 401) {
    if (auth.user()) await auth.logout(describe(error));
    return;
  }
  showError(error);
  if (error instanceof ApiError && error.code === "not_found" && state.screen === "tasks") {
    await loadTasks();
  }
}

// --- Screens and routing ----------------------------------------------------------------------

function route() {
  const wanted = location.hash.replace(/^#\/?/, "") || "";
  if (!auth.user()) return PUBLIC.has(wanted) ? wanted : "login";
  return wanted === "sessions" ? "sessions" : "tasks";
}

const TITLES = {
  loading: "Loading",
  login: "Log in",
  register: "Create an account",
  tasks: "My tasks",
  sessions: "Sessions",
};

function show(screen, { focus = true } = {}) {
  const changed = screen !== state.screen;
  state.screen = screen;
  for (const name of SCREENS) $(`screen-${name}`).hidden = name !== screen;
  const user = auth.user();
  $("nav").hidden = !user;
  $("whoami").hidden = !user;
  $("whoami").textContent = user ? `Signed in as ${user.email}` : "";
  for (const link of [$("nav-tasks"), $("nav-sessions")]) {
    if (link.hash === `#/${screen}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[screen]} · Tasks`;
  if (changed && focus) $(`${screen}-heading`).focus();
}

async function render({ focus = true } = {}) {
  const screen = route();
  const canonical = `#/${screen}`;
  if (location.hash !== canonical) history.replaceState(null, "", canonical);
  if (screen !== state.screen) {
    clearError();
    $("status").textContent = "";
  }
  show(screen, { focus });
  if (screen === "tasks") await loadTasks();
  if (screen === "sessions") await loadSessions();
}

window.addEventListener("hashchange", () => {
  render();
});

auth.onSessionChange((user, reason) => {
  state.tasks = [];
  state.sessions = [];
  state.editing = null;
  if (!user) {
    $("task-list").replaceChildren();
    $("session-list").replaceChildren();
    if (!PUBLIC.has(route())) history.replaceState(null, "", "#/login");
  } else if (PUBLIC.has(location.hash.replace(/^#\/?/, ""))) {
    history.replaceState(null, "", "#/tasks");
  }
  // render() clears the previous screen's messages synchronously; the reason comes after.
  if (state.screen !== "loading") render();
  if (reason instanceof ApiError) showError(reason);
  else if (typeof reason === "string") announce(reason);
});

// --- Log in and sign up -----------------------------------------------------------------------

function credentials(form) {
  const data = new FormData(form);
  return [String(data.get("email") || "").trim(), String(data.get("password") || "")];
}

function checkCredentials(form, email, password) {
  const missing = [];
  if (!email) missing.push("Email: enter your email address");
  if (!password) missing.push("Password: enter your password");
  if (missing.length) {
    showError(`Please correct the following: ${missing.join("; ")}.`);
    form.querySelector(email ? "input[type=password]" : "input[type=email]").focus();
    return false;
  }
  return true;
}

async function submitCredentials(event, action, done) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  clearError();
  const [email, password] = credentials(form);
  if (!checkCredentials(form, email, password)) return;
  button.disabled = true;
  try {
    await action(email, password);
    form.reset();
    announce(done);
  } catch (error) {
    showError(error);
    button.disabled = false;
    holdOff(button, error);
    form.querySelector("input[type=password]").select();
    return;
  }
  button.disabled = false;
}

$("login-form").addEventListener("submit", (event) =>
  submitCredentials(event, auth.login, "You are logged in."),
);
$("register-form").addEventListener("submit", (event) =>
  submitCredentials(event, auth.register, "Your account is ready. You are logged in."),
);

$("logout").addEventListener("click", async () => {
  clearError();
  await auth.logout("You have been logged out.");
});

$("logout-all").addEventListener("click", async () => {
  clearError();
  try {
    await auth.logoutEverywhere();
  } catch (error) {
    await failed(error);
  }
});

// --- Tasks ------------------------------------------------------------------------------------

function tasksPath(suffix = "") {
  return `/api/${encodeURIComponent(auth.user().id)}/tasks${suffix}`;
}

async function loadTasks({ more = false } = {}) {
  if (!auth.user()) return;
  const offset = more ? state.tasks.length : 0;
  const query = new URLSearchParams({ status: state.filter, limit: PAGE_SIZE, offset });
  try {
    const page = await auth.api("GET", tasksPath(`?${query}`));
    state.tasks = more ? [...state.tasks, ...page.items] : page.items;
    state.total = page.total;
    renderTasks();
  } catch (error) {
    await failed(error);
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("aria-") || key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function taskItem(task) {
  const done = el("input", { type: "checkbox", id: `done-${task.id}`, checked: task.completed });
  done.addEventListener("change", () => toggleTask(task, done));
  const title = el("label", { htmlFor: `done-${task.id}`, class: "task-title", text: task.title });
  const edit = el("button", { type: "button", text: "Edit", "aria-label": `Edit task: ${task.title}` });
  edit.addEventListener("click", () => startEdit(task.id));
  const remove = el("button", {
    type: "button",
    class: "danger",
    text: "Delete",
    "aria-label": `Delete task: ${task.title}`,
  });
  remove.addEventListener("click", () => deleteTask(task));
  const item = el(
    "li",
    { class: task.completed ? "task done" : "task", "data-task-id": task.id },
    el("div", { class: "task-main" }, done, title),
  );
  if (task.description) item.append(el("p", { class: "task-description", text: task.description }));
  item.append(el("div", { class: "task-actions" }, edit, remove));
  return item;
}

function editItem(task) {
  const form = el("form", { class: "task-edit", noValidate: true, "aria-label": `Edit task: ${task.title}` });
  const titleInput = el("input", {
    id: `edit-title-${task.id}`,
    type: "text",
    name: "title",
    value: task.title,
    maxLength: 200,
    required: true,
  });
  const description = el("textarea", {
    id: `edit-description-${task.id}`,
    name: "description",
    rows: 2,
    maxLength: 2000,
    value: task.description,
  });
  const cancel = el("button", { type: "button", text: "Cancel" });
  cancel.addEventListener("click", () => stopEdit(task.id));
  form.append(
    el("div", { class: "field" }, el("label", { htmlFor: titleInput.id, text: "Title" }), titleInput),
    el(
      "div",
      { class: "field" },
      el("label", { htmlFor: description.id, text: "Description" }),
      description,
    ),
    el("div", { class: "task-actions" }, el("button", { type: "submit", class: "primary", text: "Save" }), cancel),
  );
  form.addEventListener("submit", (event) => saveTask(event, task, titleInput, description));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") stopEdit(task.id);
  });
  return el("li", { class: "task editing", "data-task-id": task.id }, form);
}

function renderTasks() {
  const list = $("task-list");
  list.replaceChildren(
    ...state.tasks.map((task) => (task.id === state.editing ? editItem(task) : taskItem(task))),
  );
  const shown = state.tasks.length;
  const label = { all: "", pending: " pending", completed: " completed" }[state.filter];
  $("task-count").textContent =
    state.total === 1 ? `1${label} task` : `${state.total}${label} tasks`;
  $("task-empty").hidden = shown > 0;
  $("task-more").hidden = shown >= state.total;
}

function focusTask(id, selector) {
  const item = document.querySelector(`[data-task-id="${CSS.escape(id)}"]`);
  const target = item?.querySelector(selector);
  if (target) target.focus();
  else $("task-list-heading").focus();
}

$("new-task-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  clearError();
  const title = $("new-task-title").value.trim();
  const description = $("new-task-description").value.trim();
  if (!title) {
    showError("Please correct the following: Title: enter a title.");
    $("new-task-title").focus();
    return;
  }
  button.disabled = true;
  try {
    await auth.api("POST", tasksPath(), { title, description });
    form.reset();
    announce(`Task “${title}” added.`);
    await loadTasks();
    $("new-task-title").focus();
  } catch (error) {
    await failed(error);
  } finally {
    button.disabled = false;
  }
});

async function toggleTask(task, checkbox) {
  clearError();
  checkbox.disabled = true;
  try {
    const updated = await auth.api("PATCH", tasksPath(`/${task.id}/complete`));
    announce(`Task “${updated.title}” marked ${updated.completed ? "completed" : "pending"}.`);
    await loadTasks();
    focusTask(task.id, "input[type=checkbox]");
  } catch (error) {
    checkbox.checked = task.completed;
    checkbox.disabled = false;
    await failed(error);
  }
}

function startEdit(id) {
  clearError();
  state.editing = id;
  renderTasks();
  focusTask(id, "input[name=title]");
}

function stopEdit(id) {
  state.editing = null;
  renderTasks();
  focusTask(id, "button:not(.danger)");
}

async function saveTask(event, task, titleInput, descriptionInput) {
  event.preventDefault();
  clearError();
  const title = titleInput.value.trim();
  if (!title) {
    showError("Please correct the following: Title: enter a title.");
    titleInput.focus();
    return;
  }
  try {
    const updated = await auth.api("PUT", tasksPath(`/${task.id}`), {
      title,
      description: descriptionInput.value.trim(),
      completed: task.completed,
    });
    state.editing = null;
    announce(`Task “${updated.title}” saved.`);
    await loadTasks();
    focusTask(task.id, "button:not(.danger)");
  } catch (error) {
    await failed(error);
  }
}

async function deleteTask(task) {
  clearError();
  const index = state.tasks.findIndex((item) => item.id === task.id);
  try {
    await auth.api("DELETE", tasksPath(`/${task.id}`));
    announce(`Task “${task.title}” deleted.`);
    await loadTasks();
    const next = state.tasks[Math.min(index, state.tasks.length - 1)];
    if (next) focusTask(next.id, "input[type=checkbox]");
    else $("task-list-heading").focus();
  } catch (error) {
    await failed(error);
  }
}

$("filter").addEventListener("change", async (event) => {
  if (event.target.name !== "filter") return;
  state.filter = event.target.value;
  state.editing = null;
  await loadTasks();
  announce(`Showing ${$("task-count").textContent}.`);
});

$("task-more").addEventListener("click", () => loadTasks({ more: true }));

// --- Sessions ---------------------------------------------------------------------------------

function deviceName(userAgent) {
  if (!userAgent) return "Unknown device";
  const browser =
    [
      [/Edg\//, "Edge"],
      [/OPR\//, "Opera"],
      [/Firefox\//, "Firefox"],
      [/Chrom(e|ium)\//, "Chrome"],
      [/Safari\//, "Safari"],
      [/curl\//, "curl"],
      [/python-httpx|python-requests/, "Python client"],
    ].find(([pattern]) => pattern.test(userAgent))?.[1] || "Browser";
  const system =
    [
      [/Android/, "Android"],
      [/iPhone|iPad/, "iOS"],
      [/Windows/, "Windows"],
      [/Mac OS X|Macintosh/, "macOS"],
      [/Linux/, "Linux"],
    ].find(([pattern]) => pattern.test(userAgent))?.[1] || "";
  return system ? `${browser} on ${system}` : browser;
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

async function loadSessions() {
  if (!auth.user()) return;
  try {
    state.sessions = await auth.api("GET", "/auth/sessions");
    renderSessions();
  } catch (error) {
    await failed(error);
  }
}

function sessionItem(session) {
  const name = deviceName(session.user_agent);
  const heading = el("h2", { class: "session-name", text: name });
  if (session.current) heading.append(" ", el("span", { class: "badge", text: "This device" }));
  const time = (value) => el("time", { dateTime: value, text: when(value) });
  const details = el(
    "dl",
    { class: "session-details" },
    el("dt", { text: "Signed in" }),
    el("dd", {}, time(session.created_at)),
    el("dt", { text: "Last active" }),
    el("dd", {}, time(session.last_used_at)),
    el("dt", { text: "Address" }),
    el("dd", { text: session.ip || "unknown" }),
  );
  const label = session.current
    ? "Sign out this device (the one you are using)"
    : `Sign out this device: ${name}, last active ${when(session.last_used_at)}`;
  const button = el("button", {
    type: "button",
    class: "danger",
    text: "Sign out this device",
    "aria-label": label,
  });
  button.addEventListener("click", () => endSession(session));
  return el(
    "li",
    { class: session.current ? "session current" : "session", "data-session-id": session.id },
    heading,
    el("p", { class: "hint", text: session.user_agent || "" }),
    details,
    button,
  );
}

function renderSessions() {
  const sorted = [...state.sessions].sort(
    (a, b) => Number(b.current) - Number(a.current) || b.last_used_at.localeCompare(a.last_used_at),
  );
  $("session-list").replaceChildren(...sorted.map(sessionItem));
}

async function endSession(session) {
  clearError();
  try {
    await auth.api("DELETE", `/auth/sessions/${encodeURIComponent(session.id)}`);
  } catch (error) {
    await failed(error);
    return;
  }
  if (session.current) {
    await auth.logout("This device has been signed out.");
    return;
  }
  announce(`${deviceName(session.user_agent)} has been signed out.`);
  await loadSessions();
  $("sessions-heading").focus();
}

$("sessions-reload").addEventListener("click", async () => {
  await loadSessions();
  announce("Session list reloaded.");
});

// --- Start ------------------------------------------------------------------------------------

async function start() {
  try {
    await auth.restore();
  } catch (error) {
    showError(error);
  }
  state.screen = "loading";
  await render({ focus: document.activeElement === document.body || !document.activeElement });
}

start();
