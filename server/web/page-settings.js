// Settings: the account (its name and the upstream DNS servers its clients forward to), its sign-in
// providers (OpenID Connect: list, add, delete) and its API tokens (list, issue to an API client with
// the secret shown once, revoke).
//
// 1. Load the account, providers, API tokens and actors, then render every section at once.
// 2. Account: one input per DNS server, named upstream_dns/<i> as the API names a refused entry, so its
//    message lands beside that input; empty inputs are left out and the rest renumbered on submit.
// 3. Providers: the redirect URI to register at the provider is the start URL the sign-in page uses
//    (GET /api/auth/<slug>/providers, on the portal's public URL) with /callback for /start.
// 4. API tokens go to API clients; the form can add the client first.

import { api, ApiError, copyBlock, field, formatTime, h, listAll, onSubmit, render, session } from "./lib.js";

/** /<account>/settings. */
export async function show() {
  const slug = session.me.account.slug;
  const [account, providers, signIn, tokens, actors] = await Promise.all([
    api("GET", "/api/account"),
    listAll("/api/auth_providers"),
    api("GET", `/api/auth/${encodeURIComponent(slug)}/providers`),
    listAll("/api/tokens?kind=api"),
    listAll("/api/actors"),
  ]);
  const startUrls = new Map(signIn.data.map((p) => [p.id, p.start_url]));
  // Focusable from script: a section drawn again takes the control that acted with it (see redraw).
  const providersSection = h("section.card", { "aria-labelledby": "providers-title", tabindex: -1 });
  const tokensSection = h("section.card", { "aria-labelledby": "tokens-title", tabindex: -1 });
  drawProviders(providersSection, providers, startUrls);
  drawTokens(tokensSection, tokens, actors);
  render("Settings",
    h("h1", {}, "Settings"),
    accountSection(account),
    providersSection,
    tokensSection);
}

// --- 2. The account ---

function accountSection(account) {
  const dnsError = h("div.error", { id: "upstream-dns-error", role: "alert" });
  const servers = h("div", { "data-testid": "dns-servers" });
  let count = 0;
  const addServer = (value = "") => {
    count += 1;
    servers.append(field(`DNS server ${count}`, `upstream_dns/${count - 1}`, { value, inputmode: "text", autocomplete: "off", spellcheck: "false", placeholder: count === 1 ? "e.g. 1.1.1.1 or 2606:4700:4700::1111" : "" }));
  };
  const fillServers = (list) => {
    servers.replaceChildren();
    count = 0;
    for (const ip of list) addServer(ip);
    addServer();
  };
  fillServers(account.upstream_dns);
  const saved = h("p.notice", { role: "status", hidden: true }, "Saved.");
  const form = onSubmit(
    h("form", { novalidate: true, "aria-label": "Account settings" },
      h("div.problem", { role: "alert" }),
      field("Account name", "name", { required: true, maxlength: 255, value: account.name }),
      // The fieldset carries the list's own name, for refusals of the list as a whole (too many).
      h("fieldset", { name: "upstream_dns", "aria-describedby": "upstream-dns-error" },
        h("legend", {}, "Upstream DNS servers"),
        h("p.muted", {}, "Clients forward DNS queries that are not for resources to these, in order. None: the portal's default."),
        dnsError,
        servers,
        h("button.secondary", { type: "button", onclick: () => {
          addServer();
          servers.lastElementChild.querySelector("input").focus();
        } }, "Add a DNS server")),
      h("div.row", {}, h("button", { type: "submit" }, "Save account settings")),
      saved),
    async (data) => {
      saved.hidden = true;
      dnsError.textContent = "";
      const list = [];
      for (const input of servers.querySelectorAll("input")) {
        const value = input.value.trim();
        // Renumbered so upstream_dns/<i> in a refusal names the input the i-th address came from.
        input.name = value === "" ? "upstream_dns-empty" : `upstream_dns/${list.length}`;
        if (value !== "") list.push(value);
      }
      const updated = await api("PATCH", "/api/account", { name: String(data.get("name") ?? ""), upstream_dns: list });
      session.me.account.name = updated.name;
      fillServers(updated.upstream_dns);
      saved.hidden = false;
    },
  );
  return h("section.card", { "aria-labelledby": "account-title" },
    h("h2", { id: "account-title" }, "Account"),
    h("p.muted", {}, `Signs in at /${account.slug}/sign_in. Created ${formatTime(account.created_at)}.`),
    form);
}

// --- 3. Sign-in providers ---

function drawProviders(section, providers, startUrls) {
  const redraw = async (notice) => {
    const [list, signIn] = await Promise.all([listAll("/api/auth_providers"), api("GET", `/api/auth/${encodeURIComponent(session.me.account.slug)}/providers`)]);
    drawProviders(section, list, new Map(signIn.data.map((p) => [p.id, p.start_url])));
    if (notice) section.querySelector("[data-testid=provider-notice]").replaceChildren(...notice(list));
    // The control that acted went with the old rows: focus goes to the section, not to <body>.
    if (document.activeElement === document.body) section.focus();
  };
  const redirectUri = (p) => (startUrls.get(p.id) ?? `${location.origin}/api/auth/${encodeURIComponent(session.me.account.slug)}/oidc/${p.id}/start`).replace(/\/start$/, "/callback");
  const table = providers.length === 0 ? h("p.notice", {}, "No sign-in providers: people sign in with a password or an emailed code.") :
    h("table", {},
      h("thead", {}, h("tr", {}, ...["Provider", "Issuer and client", "Redirect URI to register", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, providers.map((p) => h("tr", { "data-provider": p.id },
        h("td", {}, p.name),
        h("td", {}, p.issuer, h("br"), h("span.muted", {}, `client ${p.client_id} · scopes ${p.scopes}`)),
        h("td", {}, h("code", {}, redirectUri(p))),
        h("td", {}, confirmButton("Delete", `provider ${p.name}`, async () => {
          await api("DELETE", `/api/auth_providers/${encodeURIComponent(p.id)}`);
          await redraw();
        }))))));
  const form = onSubmit(
    h("form", { novalidate: true, "aria-label": "New sign-in provider" },
      h("h3", {}, "Add an OpenID Connect provider"),
      h("div.problem", { role: "alert" }),
      // One wrapping row: its gap spaces the lines too.
      h("div.row", {},
        field("Name", "name", { required: true, maxlength: 255, placeholder: "e.g. Okta" }),
        field("Issuer URL", "issuer", { required: true, type: "url", maxlength: 2048, placeholder: "https://idp.example.com" }),
        field("Client ID", "client_id", { required: true, maxlength: 1024, autocomplete: "off" }),
        field("Client secret", "client_secret", { required: true, type: "password", maxlength: 4096, autocomplete: "new-password" }),
        field("Scopes", "scopes", { maxlength: 1024, placeholder: "openid email profile (the default)" }),
        h("button", { type: "submit" }, "Add provider"))),
    async (data) => {
      const body = {};
      for (const key of ["name", "issuer", "client_id", "client_secret", "scopes"]) {
        const value = String(data.get(key) ?? "");
        if (key !== "scopes" || value.trim() !== "") body[key] = value;
      }
      const made = await api("POST", "/api/auth_providers", body);
      await redraw((list) => {
        const p = list.find((x) => x.id === made.id) ?? made;
        return [h("p.notice", { role: "status" }, `Added ${p.name}. Register this redirect URI at the provider: `, h("code", { "data-testid": "redirect-uri" }, redirectUri(p)))];
      });
    },
  );
  section.replaceChildren(
    h("h2", { id: "providers-title" }, "Sign-in providers"),
    h("p.muted", {}, "People of this account can sign in through these OpenID Connect providers too; the provider must vouch for their email, which must be an enabled user's or admin's here."),
    table,
    h("div", { "data-testid": "provider-notice" }),
    form);
}

// --- 4. API tokens ---

function drawTokens(section, tokens, actors) {
  const byId = new Map(actors.map((a) => [a.id, a]));
  const clients = actors.filter((a) => a.type === "api_client" && !a.disabled_at);
  const redraw = async (shown) => {
    const [list, all] = await Promise.all([listAll("/api/tokens?kind=api"), listAll("/api/actors")]);
    drawTokens(section, list, all);
    if (shown) section.querySelector("[data-testid=issued-token]").replaceChildren(...shown);
    // The control that acted went with the old rows: focus goes to the section, not to <body>.
    if (document.activeElement === document.body) section.focus();
  };
  const table = tokens.length === 0 ? h("p.notice", {}, "No API tokens.") :
    h("table", {},
      h("thead", {}, h("tr", {}, ...["Token", "Held by", "Created", "Expires", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, tokens.map((t) => h("tr", { "data-token": t.id },
        h("td", {}, t.name || h("span.muted", {}, "unnamed")),
        h("td", {}, byId.get(t.actor_id)?.name ?? h("span.muted", {}, "unknown")),
        h("td", {}, formatTime(t.created_at)),
        h("td", {}, t.expires_at ? formatTime(t.expires_at) : "never"),
        h("td", {}, formatTime(t.last_used_at)),
        h("td", {}, confirmButton("Revoke", `token ${t.name || t.id}`, async () => {
          await api("DELETE", `/api/tokens/${encodeURIComponent(t.id)}`);
          await redraw();
        }))))));
  const NEW_CLIENT = "new";
  const clientName = field("New API client's name", "client_name", { maxlength: 255, placeholder: "e.g. CI deploys" });
  const holder = selectField("API client", "actor_id", [
    ...clients.map((a) => ({ value: a.id, label: a.name })),
    { value: NEW_CLIENT, label: "A new API client…" },
  ]);
  const select = holder.querySelector("select");
  // Out of the form unless wanted (.field's display would override the hidden attribute).
  const syncClientName = () => {
    if (select.value === NEW_CLIENT) holder.after(clientName);
    else clientName.remove();
  };
  select.addEventListener("change", syncClientName);
  const form = onSubmit(
    h("form", { novalidate: true, "aria-label": "New API token" },
      h("h3", {}, "Issue an API token"),
      h("p.muted", {}, "An API token lets a program call this API as an API client. It is shown once."),
      h("div.problem", { role: "alert" }),
      h("div.row", {},
        holder,
        field("Token name", "name", { maxlength: 255, placeholder: "optional" }),
        field("Expires", "expires_at", { type: "datetime-local" }),
        h("button", { type: "submit" }, "Issue API token"))),
    async (data) => {
      let actorId = String(data.get("actor_id") ?? "");
      if (actorId === NEW_CLIENT) {
        try {
          const client = await api("POST", "/api/actors", { type: "api_client", name: String(data.get("client_name") ?? "") });
          actorId = client.id;
          // Picked from now on, so a retry after a refused token does not add the client twice.
          select.prepend(h("option", { value: client.id }, client.name));
          select.value = client.id;
          syncClientName();
        } catch (error) {
          // The actor's `name` is this form's `client_name` (its `name` is the token's).
          if (error instanceof ApiError) {
            const errors = (error.problem.errors ?? []).map((e) => (e.field === "name" ? { ...e, field: "client_name" } : e));
            throw new ApiError(error.status, { ...error.problem, errors });
          }
          throw error;
        }
      }
      const body = { actor_id: actorId };
      const name = String(data.get("name") ?? "").trim();
      if (name !== "") body.name = name;
      const expires = String(data.get("expires_at") ?? "");
      if (expires !== "") {
        const at = new Date(expires);
        // An unreadable date goes to the API as typed, so the refusal is the API's own.
        body.expires_at = Number.isNaN(at.getTime()) ? expires : at.toISOString();
      }
      const issued = await api("POST", "/api/tokens", body);
      await redraw(issuedToken(issued.token));
    },
  );
  syncClientName();
  section.replaceChildren(
    h("h2", { id: "tokens-title" }, "API tokens"),
    table,
    h("div", { "data-testid": "issued-token" }),
    form);
}

function issuedToken(token) {
  return [
    h("p.notice", { role: "status" }, "Copy the token now: it is not shown again. Send it as Authorization: Bearer <token>."),
    copyBlock("API token", token, "api-token"),
  ];
}

// --- Helpers of this page ---

let selectIds = 0;

/** A labelled select with its error slot, like lib.js field(); the select's name is the API's field name. */
function selectField(label, name, options) {
  const id = `s${++selectIds}-${name}`;
  const select = h("select", { id, name, "aria-describedby": `${id}-error` }, options.map((o) => h("option", { value: o.value }, o.label)));
  return h("div.field", {}, h("label", { for: id }, label), select, h("div.error", { id: `${id}-error`, role: "alert" }));
}

/** A button that acts on its second click (its label says so after the first), with the API's refusal beside it. */
function confirmButton(verb, what, action) {
  const error = h("div.error", { role: "alert" });
  let armed = false;
  const button = h("button.secondary", { type: "button", "aria-label": `${verb} ${what}`, onclick: async () => {
    if (!armed) {
      armed = true;
      button.textContent = `Confirm: ${verb.toLowerCase()}`;
      button.setAttribute("aria-label", `Confirm: ${verb.toLowerCase()} ${what}`);
      return;
    }
    button.disabled = true;
    try {
      await action();
    } catch (e) {
      button.disabled = false;
      // Disabled, the button lost the focus; refused, it gets it back.
      if (document.activeElement === document.body) button.focus();
      error.textContent = e instanceof ApiError ? `${e.problem.title}: ${e.problem.detail}` : String(e);
    }
  } }, verb);
  return h("div", {}, button, error);
}
