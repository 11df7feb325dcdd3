// The Wardline admin UI: plain ES module, no framework, no build step; the portal serves it
// (server/src/http/web-ui.ts). Every figure it shows comes from the REST API; every error it shows
// is the API's own problem detail, put next to the field it names.
//
// 1. Routing in the browser: /<account>/sign_in, /<account>/sites, /<account>/sites/<id>; links
//    are ordinary <a href> that the router takes over (history API), so reloads and shared links work.
// 2. api(): JSON over fetch with the session cookie; changes carry the X-CSRF-Token the portal set
//    as the wardline_csrf cookie; a 401 sends the admin to sign in; other failures throw ApiError
//    with the problem details.
// 3. Pages: sign in (password, or a one-time code by email), sites (list, create), a site (its
//    gateways and their state, a gateway token with commands ready to paste).
// 4. The bar: "signed in as", when the session ends, sign out.
// 5. Live changes over the portal's push channel: gateways' state changes in place, without a reload.

const main = document.getElementById("main");
const bar = document.getElementById("bar");

// --- 2. The API ---

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? { title: `HTTP ${status}`, detail: "", errors: [] };
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

async function api(method, path, body) {
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
function h(spec, attrs = {}, ...children) {
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
function field(label, name, attrs = {}) {
  const id = `f${++fieldIds}-${name}`;
  const error = h("div.error", { id: `${id}-error`, role: "alert" });
  const input = h("input", { id, name, "aria-describedby": `${id}-error`, ...attrs });
  return h("div.field", {}, h("label", { for: id }, label), input, error);
}

/** Shows the API's problem on a form: field errors next to their fields, the rest at the top. */
function showProblem(form, error) {
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
function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      showProblem(form, undefined);
      await action(new FormData(form));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && !location.pathname.endsWith("/sign_in")) return signInAgain();
      showProblem(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

function formatTime(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function render(title, ...children) {
  document.title = title ? `${title} · Wardline` : "Wardline";
  main.replaceChildren(...children);
}

// --- 5. Live changes: the portal's push channel (GET /api/events, Server-Sent Events) ---

let events = null;
let presenceListener = null;

/** Opens the account's event stream once signed in; EventSource reconnects by itself. */
function listen() {
  if (events !== null) return;
  events = new EventSource("/api/events");
  events.addEventListener("presence", (event) => {
    let change;
    try {
      change = JSON.parse(event.data);
    } catch {
      return;
    }
    presenceListener?.(change);
  });
}

function stopListening() {
  events?.close();
  events = null;
}

/** The current page's handler of presence changes (replaced by the next page's). */
function onPresence(listener) {
  presenceListener = listener;
}

// --- 1. Routing ---

let me = null;

function slugOf(path = location.pathname) {
  return decodeURIComponent(path.split("/")[1] ?? "");
}

function go(path, replace = false) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  void route();
}

document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!link || link.target || link.origin !== location.origin || event.metaKey || event.ctrlKey || event.shiftKey) return;
  if (link.pathname.startsWith("/api/")) return;
  event.preventDefault();
  go(link.pathname + link.search);
});
window.addEventListener("popstate", () => void route());

function signInAgain() {
  const slug = me?.account?.slug ?? slugOf();
  me = null;
  stopListening();
  go(slug ? `/${encodeURIComponent(slug)}/sign_in` : "/", true);
}

async function loadMe() {
  try {
    me = await api("GET", "/api/me");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) me = null;
    else throw error;
  }
  return me;
}

async function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) return await homePage();
    const [slug, page, id] = parts;
    if (page === "sign_in") return signInPage(slug);
    if (me === null || me.account.slug !== slug) await loadMe();
    if (me === null || me.account.slug !== slug) return go(`/${encodeURIComponent(slug)}/sign_in`, true);
    presenceListener = null;
    listen();
    drawBar(page);
    if (page === undefined || page === "sites") return id === undefined ? await sitesPage() : await sitePage(id);
    render("Not found", h("h1", {}, "Not found"), h("p", {}, h("a", { href: `/${encodeURIComponent(slug)}/sites` }, "Go to sites")));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signInAgain();
    render("Error", h("h1", {}, "Something went wrong"), h("div.problem", {}, error instanceof ApiError ? `${error.problem.title}: ${error.problem.detail}` : String(error)));
  } finally {
    main.focus({ preventScroll: true });
  }
}

// --- 4. The bar ---

function drawBar(page) {
  const slug = encodeURIComponent(me.account.slug);
  const expires = me.token?.expires_at;
  const signOut = h("button", { type: "button", onclick: async () => {
    try {
      await api("POST", "/api/auth/sign_out");
    } finally {
      me = null;
      stopListening();
      go(`/${slug}/sign_in`);
    }
  } }, "Sign out");
  bar.replaceChildren(
    h("span.brand", {}, "Wardline"),
    h("nav", { "aria-label": "Main" }, h("a", { href: `/${slug}/sites`, "aria-current": page === "sites" || page === undefined ? "page" : undefined }, "Sites")),
    h("span.who", { "data-testid": "signed-in-as" }, `Signed in as ${me.actor.name}${me.actor.email ? ` (${me.actor.email})` : ""} · ${me.account.name}`,
      expires ? h("span", { title: expires }, ` · session ends ${formatTime(expires)}`) : null),
    signOut,
  );
  bar.hidden = false;
}

// --- 3. Pages ---

async function homePage() {
  bar.hidden = true;
  if (await loadMe()) return go(`/${encodeURIComponent(me.account.slug)}/sites`, true);
  const form = onSubmit(
    h("form.card.narrow", { novalidate: true },
      h("h1", {}, "Sign in to Wardline"),
      h("div.problem", { role: "alert" }),
      field("Account", "slug", { required: true, autocomplete: "organization", placeholder: "your account's short name" }),
      h("button", { type: "submit" }, "Continue")),
    async (data) => {
      const slug = String(data.get("slug") ?? "").trim();
      if (slug === "") throw new ApiError(422, { title: "Invalid request", detail: "", errors: [{ field: "slug", message: "slug must not be empty" }] });
      go(`/${encodeURIComponent(slug)}/sign_in`);
    },
  );
  render("Sign in", form);
}

function signInPage(slug) {
  bar.hidden = true;
  const base = `/api/auth/${encodeURIComponent(slug)}`;
  const signedIn = async (session) => {
    me = null;
    await loadMe();
    if (me && session?.expires_at) me.token.expires_at = session.expires_at;
    go(`/${encodeURIComponent(slug)}/sites`, true);
  };
  const password = onSubmit(
    h("form", { novalidate: true, "aria-label": "Sign in with a password" },
      h("div.problem", { role: "alert" }),
      field("Email", "email", { type: "email", required: true, autocomplete: "username" }),
      field("Password", "password", { type: "password", required: true, autocomplete: "current-password" }),
      h("button", { type: "submit" }, "Sign in")),
    async (data) => signedIn(await api("POST", `${base}/password`, { email: data.get("email"), password: data.get("password") })),
  );
  const codeStep = h("div");
  const emailForm = onSubmit(
    h("form", { novalidate: true, "aria-label": "Sign in with an emailed code" },
      h("div.problem", { role: "alert" }),
      field("Email", "email", { type: "email", required: true, autocomplete: "email" }),
      h("button.secondary", { type: "submit" }, "Email me a code")),
    async (data) => {
      const email = data.get("email");
      await api("POST", `${base}/email`, { email });
      const verify = onSubmit(
        h("form", { novalidate: true, "aria-label": "Enter the emailed code" },
          h("p.notice", {}, `If ${email} can sign in to this account, a code is on its way.`),
          h("div.problem", { role: "alert" }),
          field("Code", "code", { required: true, autocomplete: "one-time-code", inputmode: "numeric" }),
          h("button", { type: "submit" }, "Sign in")),
        async (codeData) => signedIn(await api("POST", `${base}/email/verify`, { email, code: codeData.get("code") })),
      );
      codeStep.replaceChildren(verify);
      verify.querySelector("input").focus();
    },
  );
  render("Sign in", h("div.narrow", {},
    h("h1", {}, `Sign in to ${slug}`),
    h("div.card", {}, password),
    h("div.card", {}, h("h2", {}, "Or with a code by email"), emailForm, codeStep)));
}

async function sitesPage() {
  const slug = encodeURIComponent(me.account.slug);
  const sites = await listAll("/api/sites");
  const gateways = await listAll("/api/devices?kind=gateway");
  const count = new Map();
  for (const g of gateways) count.set(g.site_id, (count.get(g.site_id) ?? 0) + 1);
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "New site" },
      h("h2", {}, "New site"),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, field("Name", "name", { required: true, maxlength: 255 }), h("button", { type: "submit" }, "Create site"))),
    async (data) => {
      const site = await api("POST", "/api/sites", { name: String(data.get("name") ?? "") });
      go(`/${slug}/sites/${site.id}`);
    },
  );
  const rows = sites.map((s) => h("tr", {},
    h("td", {}, h("a", { href: `/${slug}/sites/${s.id}` }, s.name)),
    h("td", {}, String(count.get(s.id) ?? 0)),
    h("td", {}, formatTime(s.created_at))));
  render("Sites",
    h("h1", {}, "Sites"),
    h("p.muted", {}, "A site is a network your gateways reach resources in. Gateways join a site with its token."),
    sites.length === 0 ? h("p.notice", {}, "No sites yet: create the first one below.") :
      h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Site"), h("th", { scope: "col" }, "Gateways"), h("th", { scope: "col" }, "Created"))), h("tbody", {}, rows)),
    form);
}

async function sitePage(id) {
  const slug = encodeURIComponent(me.account.slug);
  const site = await api("GET", `/api/sites/${encodeURIComponent(id)}`);
  const section = h("section", { "aria-label": "Gateways" });
  const drawGateways = async () => section.replaceChildren(...gatewaysTable(await listAll(`/api/sites/${encodeURIComponent(id)}/gateways`)));
  await drawGateways();
  // Live: a gateway's state changes in place; one this table does not show yet brings the table anew.
  onPresence((change) => {
    if (change.kind !== "gateway") return;
    const badge = section.querySelector(`tr[data-gateway="${CSS.escape(change.device_id)}"] [data-testid="gateway-state"]`);
    if (badge) setBadge(badge, change.online);
    else if (change.online) void drawGateways().catch(() => undefined);
  });
  const deploy = h("div", { "data-testid": "deploy" });
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "New gateway token" },
      h("h2", {}, "Deploy a gateway"),
      h("p.muted", {}, "A token lets gateways join this site. It is shown once; every gateway deployed with it joins here."),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, field("Token name", "name", { maxlength: 255, placeholder: "optional" }), h("button", { type: "submit" }, "Create gateway token")),
      deploy),
    async (data) => {
      const name = String(data.get("name") ?? "").trim();
      const issued = await api("POST", `/api/sites/${encodeURIComponent(id)}/gateway_tokens`, name === "" ? {} : { name });
      deploy.replaceChildren(...deployCommands(issued.token));
    },
  );
  render(site.name,
    h("p", {}, h("a", { href: `/${slug}/sites` }, "← Sites")),
    h("h1", {}, site.name),
    h("h2", {}, "Gateways"),
    section,
    form);
}

function setBadge(badge, online) {
  badge.className = `badge ${online ? "online" : "offline"}`;
  badge.textContent = online ? "online" : "offline";
}

function gatewaysTable(gateways) {
  if (gateways.length === 0) return [h("p.notice", {}, "No gateway has joined this site yet.")];
  const badge = (g) => {
    if (g.online === null) return h("span.badge.offline", {}, "unknown");
    const el = h("span", { "data-testid": "gateway-state" });
    setBadge(el, g.online);
    return el;
  };
  const rows = gateways.map((g) => h("tr", { "data-gateway": g.id },
    h("td", {}, g.name),
    h("td", {}, badge(g)),
    h("td", {}, g.version ?? "unknown"),
    h("td", {}, g.ipv4, h("br"), h("span.muted", {}, g.ipv6)),
    h("td", {}, formatTime(g.last_seen_at))));
  return [h("table", {}, h("thead", {}, h("tr", {}, ...["Gateway", "State", "Version", "Tunnel address", "Last seen"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))];
}

/** The commands an admin pastes on the gateway's host, each with a copy button. */
function deployCommands(token) {
  const portal = location.origin;
  const run = `sudo wardline gateway --portal-url ${portal} --token-file /etc/wardline/gateway.token`;
  const tokenFile = `sudo install -d -m 700 /etc/wardline && printf '%s' '${token}' | sudo tee /etc/wardline/gateway.token >/dev/null && sudo chmod 600 /etc/wardline/gateway.token`;
  const unit = [
    "[Unit]",
    "Description=Wardline gateway",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    `ExecStart=/usr/local/bin/wardline gateway --portal-url ${portal} --token-file /etc/wardline/gateway.token`,
    "Restart=always",
    "RestartSec=2",
    "AmbientCapabilities=CAP_NET_ADMIN",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
  ].join("\n");
  const block = (title, text, testid) => {
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
  };
  return [
    h("p.notice", {}, "Copy the token now: it is not shown again."),
    block("1. Save the token on the gateway's host", tokenFile, "token-command"),
    block("2. Run the gateway", run, "run-command"),
    block("Or keep it running with systemd: /etc/systemd/system/wardline-gateway.service", unit, "systemd-unit"),
  ];
}

/** Every page of a list endpoint. */
async function listAll(path) {
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

void route();
