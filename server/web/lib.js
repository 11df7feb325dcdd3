// Shared by the admin UI's pages: the API client, DOM helpers, forms that show the API's problems
// next to their fields, the signed-in session and the current page's live-change handler.
//
// A page module exports async functions that render into <main> with render(); app.js routes to them.

export const main = document.getElementById("main");

/** The signed-in session: /api/me's answer (account, actor, token), or null. */
export const session = { me: null };

/** Set by app.js: what a 401 from the API does (back to sign in), and the router. */
export const hooks = { unauthenticated: () => {}, route: async () => {} };

/** Goes to a path of the UI (replace: without a new history entry). */
export function go(path, replace = false) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void hooks.route();
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? { title: `HTTP ${status}`, detail: "", errors: [] };
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const csrf = cookie("wardline_csrf");
    if (csrf !== undefined) headers["X-CSRF-Token"] = csrf;
  }
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  if (text !== "") {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

// --- DOM helpers ---

/** h("tag.class", { attr: value, onclick: fn }, ...children): an element; strings become text. */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length > 0) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldIds = 0;

/** A labelled input with its error slot; the input's name is the API's field name. */
export function field(label, name, attrs = {}) {
  const id = `f${++fieldIds}-${name}`;
  const error = h("div.error", { id: `${id}-error`, role: "alert" });
  const input = h("input", { id, name, "aria-describedby": `${id}-error`, ...attrs });
  return h("div.field", {}, h("label", { for: id }, label), input, error);
}

/** Shows the API's problem on a form: field errors next to their fields, the rest at the top. */
export function showProblem(form, error) {
  for (const input of form.querySelectorAll("input, select, textarea")) {
    input.removeAttribute("aria-invalid");
    const slot = document.getElementById(input.getAttribute("aria-describedby") ?? "");
    if (slot) slot.textContent = "";
  }
  const summary = form.querySelector(".problem");
  if (summary) summary.textContent = "";
  if (error === undefined) return;
  const problem = error instanceof ApiError ? error.problem : { title: "Error", detail: String(error?.message ?? error) };
  let placed = false;
  for (const e of problem.errors ?? []) {
    const input = form.querySelector(`[name="${CSS.escape(e.field)}"]`);
    const slot = input && document.getElementById(input.getAttribute("aria-describedby") ?? "");
    if (!input || !slot) continue;
    input.setAttribute("aria-invalid", "true");
    slot.textContent = e.message;
    if (!placed) input.focus();
    placed = true;
  }
  if (!placed && summary) summary.textContent = problem.detail ? `${problem.title}: ${problem.detail}` : problem.title;
}

/** Runs a form's submit as one request at a time, its button disabled meanwhile. */
export function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    // Disabling the focused button drops focus to <body>: a keyboard user gets it back on the button.
    const buttonHadFocus = button !== null && document.activeElement === button;
    if (button) button.disabled = true;
    try {
      showProblem(form, undefined);
      await action(new FormData(form));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && !location.pathname.endsWith("/sign_in")) return hooks.unauthenticated();
      showProblem(form, error);
    } finally {
      if (button) button.disabled = false;
      if (buttonHadFocus && button.isConnected && document.activeElement === document.body) button.focus();
    }
  });
  return form;
}

export function formatTime(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Puts a page into <main>, titled. */
export function render(title, ...children) {
  document.title = title ? `${title} · Wardline` : "Wardline";
  main.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  // A page drawn again in place (after one of its forms acted) took the focused control with it:
  // focus goes to <main>, as after a route, rather than to <body>.
  if (document.activeElement === null || document.activeElement === document.body) main.focus({ preventScroll: true });
}


/** The current page's handlers of the event stream's changes (the router clears them for the next page). */
export const live = { presence: null, authorizations: null, relayLoad: null };

/** listener({device_id, kind, online}) on each presence change of the account's devices. */
export function onPresence(listener) {
  live.presence = listener;
}

/** listener({count}) when authorizations of the account were recorded, on any portal node. */
export function onAuthorizations(listener) {
  live.authorizations = listener;
}

/** listener({relay_id, load}) when a relay of the account reports its load, on any portal node. */
export function onRelayLoad(listener) {
  live.relayLoad = listener;
}

/** Every page of a list endpoint. */
export async function listAll(path) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ""}`);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}


/** A command or token in a block with a Copy button (selecting the text where the clipboard is refused). */
export function copyBlock(title, text, testid) {
  const pre = h("pre.command", { "data-testid": testid }, text);
  const button = h("button.secondary", { type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(pre);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  } }, "Copy");
  return h("div", {}, h("div.copy-row", {}, h("strong", {}, title), button), pre);
}

/** A "Delete" card that asks inside the page before `action` runs (Cancel puts focus back). */
export function confirmDelete(label, consequence, action) {
  const slot = h("div");
  const ask = () => {
    const cancel = h("button.secondary", { type: "button", onclick: () => { slot.replaceChildren(start); start.querySelector("button").focus(); } }, "Cancel");
    const form = onSubmit(
      h("form", { novalidate: true, "aria-label": "Confirm delete" },
        h("p.notice", {}, `${label}? ${consequence}`),
        h("div.problem", { role: "alert" }),
        h("div.row", {}, h("button", { type: "submit" }, `Yes, ${label.charAt(0).toLowerCase()}${label.slice(1)}`), cancel)),
      action,
    );
    slot.replaceChildren(form);
    cancel.focus();
  };
  const start = h("div", {}, h("button.secondary", { type: "button", onclick: ask }, `${label}…`));
  slot.append(start);
  return h("section.card", { "aria-label": "Delete" }, h("h2", {}, "Delete"), slot);
}

/** The address's query with the cursor replaced (null: removed). */
function withCursor(params, cursor) {
  const next = new URLSearchParams(params);
  next.delete("cursor");
  if (cursor !== null) next.set("cursor", cursor);
  const search = next.toString();
  return search ? `?${search}` : "";
}

/**
 * "First page" and "Next page" links for a list whose filters and cursor live in the address
 * (`path` plus `params`); null when there is only one page.
 */
export function pager(path, params, nextCursor) {
  const links = [];
  if (params.has("cursor")) links.push(h("a", { href: `${path}${withCursor(params, null)}` }, "First page"));
  if (nextCursor !== null && nextCursor !== undefined) links.push(h("a", { href: `${path}${withCursor(params, nextCursor)}`, rel: "next" }, "Next page"));
  return links.length > 0 ? h("nav.row", { "aria-label": "Pages" }, ...links) : null;
}

/** One page of a log endpoint, or the ApiError of a refused filter (422), which the page shows on its filter form. */
export function pageOrRefusal(path) {
  return api("GET", path).catch((error) => {
    if (error instanceof ApiError && error.status === 422) return error;
    throw error;
  });
}

/** An actor as a filter's choices name it: "Name (email)", or the name alone. */
export function actorLabel(actor) {
  return actor.email ? `${actor.name} (${actor.email})` : actor.name;
}

/** Makes a filter form's submit go to `path` with its non-empty fields as the query (a new filter starts at the first page). */
export function filterSubmit(form, path) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (String(value).trim() !== "") next.set(name, String(value).trim());
    const search = next.toString();
    go(`${path}${search ? `?${search}` : ""}`);
  });
}
