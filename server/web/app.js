// The Wardline admin UI's shell: plain ES modules, no framework, no build step; the portal serves them
// (server/src/http/web-ui.ts). Every figure shown comes from the REST API; every error shown is the
// API's own problem detail, next to the field it names (lib.js).
//
// 1. Routing in the browser: /<account>/sign_in, /<account>/<page>[/<id>]; links are ordinary
//    <a href> the router takes over (history API), so reloads and shared links work. A page is the
//    module page-<name>.js, loaded on first use; NAV is the bar's menu.
// 2. The session: /api/me; a 401 anywhere sends the admin to sign in.
// 3. Sign in: find the account, then a password or a one-time code by email.
// 4. The bar: "signed in as", when the session ends, sign out.
// 5. Live changes over the portal's push channel (GET /api/events, Server-Sent Events), handed to
//    the current page's handler (lib.js onPresence).

import { api, ApiError, field, formatTime, go, h, hooks, live, main, onSubmit, render, session } from "./lib.js";

const bar = document.getElementById("bar");

/**
 * Pages are modules named page-<name>.js exporting show(id?): /<account>/<name>[/<id>] loads one on
 * first use (the portal serves each file of server/web; a name it lacks is "Not found").
 */
const PAGE_NAME = /^[a-z][a-z_]{0,31}$/;

async function pageModule(name) {
  if (!PAGE_NAME.test(name)) return undefined;
  try {
    return await import(`./page-${name}.js`);
  } catch {
    return undefined;
  }
}

/** The bar's menu, in order. */
const NAV = [
  { page: "sites", title: "Sites" },
  { page: "resources", title: "Resources" },
  { page: "policies", title: "Policies" },
  { page: "actors", title: "Users" },
  { page: "groups", title: "Groups" },
  { page: "clients", title: "Clients" },
  { page: "authorizations", title: "Authorizations" },
  { page: "changes", title: "Changes" },
  { page: "relays", title: "Relays" },
  { page: "settings", title: "Settings" },
];

// --- 5. Live changes ---

let events = null;

/** Opens the account's event stream once signed in; EventSource reconnects by itself. */
function listen() {
  if (events !== null) return;
  events = new EventSource("/api/events");
  // Each event's JSON goes to the current page's handler of it (lib.js live); a garbled one is dropped.
  const handlers = { presence: "presence", authorizations: "authorizations", relay_load: "relayLoad" };
  for (const [name, handler] of Object.entries(handlers)) {
    events.addEventListener(name, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      live[handler]?.(data);
    });
  }
}

function stopListening() {
  events?.close();
  events = null;
}

// --- 1. Routing, 2. the session ---

function slugOf(path = location.pathname) {
  return decodeURIComponent(path.split("/")[1] ?? "");
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
  const slug = session.me?.account?.slug ?? slugOf();
  session.me = null;
  stopListening();
  go(slug ? `/${encodeURIComponent(slug)}/sign_in` : "/", true);
}

async function loadMe() {
  try {
    session.me = await api("GET", "/api/me");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) session.me = null;
    else throw error;
  }
  return session.me;
}

async function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) return await homePage();
    const [slug, page = "sites", id] = parts;
    if (page === "sign_in") return await signInPage(slug);
    // The page's module is fetched while the session is checked, not after.
    const loading = pageModule(page);
    if (session.me === null || session.me.account.slug !== slug) await loadMe();
    if (session.me === null || session.me.account.slug !== slug) return go(`/${encodeURIComponent(slug)}/sign_in`, true);
    for (const handler of Object.keys(live)) live[handler] = null;
    listen();
    drawBar(page);
    const module = await loading;
    if (module?.show !== undefined) return await module.show(id);
    render("Not found", h("h1", {}, "Not found"), h("p", {}, h("a", { href: `/${encodeURIComponent(slug)}/sites` }, "Go to sites")));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signInAgain();
    render("Error", h("h1", {}, "Something went wrong"), h("div.problem", {}, error instanceof ApiError ? `${error.problem.title}: ${error.problem.detail}` : String(error)));
  } finally {
    if (main.hidden) {
      main.hidden = false;
      document.getElementById("loading")?.remove();
    }
    main.focus({ preventScroll: true });
    // The page has drawn what it fetched: `wardline bench ui` times its first load to here.
    performance.mark("wardline:ready", { detail: location.pathname });
  }
}

hooks.unauthenticated = signInAgain;
hooks.route = route;

// --- 4. The bar ---

function drawBar(page) {
  const me = session.me;
  const slug = encodeURIComponent(me.account.slug);
  const expires = me.token?.expires_at;
  const signOut = h("button", { type: "button", onclick: async () => {
    try {
      await api("POST", "/api/auth/sign_out");
    } finally {
      session.me = null;
      stopListening();
      go(`/${slug}/sign_in`);
    }
  } }, "Sign out");
  bar.replaceChildren(
    h("span.brand", {}, "Wardline"),
    h("nav", { "aria-label": "Main" }, ...NAV.map((n) => h("a", { href: `/${slug}/${n.page}`, "aria-current": page === n.page ? "page" : undefined }, n.title))),
    h("span.who", { "data-testid": "signed-in-as" }, `Signed in as ${me.actor.name}${me.actor.email ? ` (${me.actor.email})` : ""} · ${me.account.name}`,
      expires ? h("span", { title: expires }, ` · session ends ${formatTime(expires)}`) : null),
    signOut,
  );
  bar.hidden = false;
}

// --- 3. Sign in ---

async function homePage() {
  bar.hidden = true;
  if (await loadMe()) return go(`/${encodeURIComponent(session.me.account.slug)}/sites`, true);
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

async function signInPage(slug) {
  bar.hidden = true;
  const base = `/api/auth/${encodeURIComponent(slug)}`;
  // The account's OpenID Connect providers (a public list; empty for an account that does not exist).
  let providers = [];
  try {
    providers = (await api("GET", `${base}/providers`)).data;
  } catch {
    providers = [];
  }
  const signedIn = async (answer) => {
    session.me = null;
    await loadMe();
    if (session.me && answer?.expires_at) session.me.token.expires_at = answer.expires_at;
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
  const oidc = providers.length === 0 ? null : h("div.card", { "aria-label": "Sign in with an identity provider" },
    h("h2", {}, "With your identity provider"),
    h("div.row", {}, ...providers.map((p) => h("a.button", { href: p.start_url, "data-testid": "oidc-provider" }, `Sign in with ${p.name}`))));
  render("Sign in", h("div.narrow", {},
    h("h1", {}, `Sign in to ${slug}`),
    oidc,
    h("div.card", {}, password),
    h("div.card", {}, h("h2", {}, "Or with a code by email"), emailForm, codeStep)));
}

void route();
