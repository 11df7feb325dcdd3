// Actors: the account's people (users, admins) and machines (service accounts, API clients).
//
// 1. The list, with a new actor: people need an email, machines have none, so the email field is
//    there only while a person's type is chosen; the API's refusals land next to their fields.
// 2. One actor: change name, email or (for people) user/admin; disable or enable; delete after an
//    in-page confirm step. Refusals (the last admin, oneself) are the API's words on the form.
// 3. Its groups: read from each group's members (the API has no per-actor group list), Everyone
//    included for people, as the API computes it.
// 4. Its tokens, for machines: a new one is shown once with a copy button; any can be revoked.

import { api, confirmDelete, copyBlock, field, formatTime, go, h, listAll, onSubmit, render, session } from "./lib.js";

/** Types in the order the UI offers them, with how it names them. */
const TYPES = [
  ["user", "User"],
  ["admin", "Admin"],
  ["service_account", "Service account"],
  ["api_client", "API client"],
];
const PEOPLE = ["user", "admin"];
/** Machines get their tokens from an admin here; people get theirs by signing in. */
const MACHINES = ["service_account", "api_client"];

const typeName = (type) => TYPES.find(([t]) => t === type)?.[1] ?? type;
const slug = () => encodeURIComponent(session.me.account.slug);

/** /<account>/actors and /<account>/actors/<id>. */
export function show(id) {
  return id === undefined ? actorsPage() : actorPage(id);
}

let selectIds = 0;

/** A labelled <select> with its error slot, shaped like lib.js field() so showProblem() finds it. */
function selectField(label, name, options, selected) {
  const id = `s${++selectIds}-${name}`;
  const select = h("select", { id, name, "aria-describedby": `${id}-error` },
    ...options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
  return h("div.field", {}, h("label", { for: id }, label), select, h("div.error", { id: `${id}-error`, role: "alert" }));
}

function statusBadge(actor) {
  return actor.disabled_at === null ? h("span.badge.online", { "data-testid": "actor-status" }, "enabled") : h("span.badge.offline", { "data-testid": "actor-status", title: actor.disabled_at }, "disabled");
}

// --- 1. The list ---

async function actorsPage() {
  const actors = await listAll("/api/actors");
  const emailField = field("Email", "email", { type: "email", maxlength: 254, autocomplete: "off" });
  const typeField = selectField("Type", "type", TYPES, "user");
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "New actor" },
      h("h2", {}, "New user, admin or service account"),
      h("p.muted", {}, "Users and admins sign in with their email. Service accounts and API clients are machines: they use tokens you issue on their page."),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, typeField, field("Name", "name", { required: true, maxlength: 255 }), emailField),
      h("p", {}, h("button", { type: "submit" }, "Create"))),
    async (data) => {
      const type = String(data.get("type"));
      const body = { type, name: String(data.get("name") ?? "") };
      if (PEOPLE.includes(type)) body.email = String(data.get("email") ?? "");
      const actor = await api("POST", "/api/actors", body);
      go(`/${slug()}/actors/${actor.id}`);
    },
  );
  // Machines have no email: the field leaves the form rather than being sent empty.
  const typeSelect = typeField.querySelector("select");
  const placeholder = document.createComment("email");
  typeSelect.addEventListener("change", () => {
    const person = PEOPLE.includes(typeSelect.value);
    if (person && !emailField.isConnected) placeholder.replaceWith(emailField);
    if (!person && emailField.isConnected) emailField.replaceWith(placeholder);
  });
  const rows = actors.map((a) => h("tr", { "data-actor": a.id },
    h("td", {}, h("a", { href: `/${slug()}/actors/${a.id}` }, a.name)),
    h("td", {}, typeName(a.type)),
    h("td", {}, a.email ?? h("span.muted", {}, "none")),
    h("td", {}, statusBadge(a)),
    h("td", {}, formatTime(a.created_at))));
  render("Users and service accounts",
    h("h1", {}, "Users and service accounts"),
    h("table", { "aria-label": "Actors" },
      h("thead", {}, h("tr", {}, ...["Name", "Type", "Email", "Status", "Created"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
    form);
}

// --- 2. One actor ---

async function actorPage(id) {
  const path = `/api/actors/${encodeURIComponent(id)}`;
  const actor = await api("GET", path);
  const person = PEOPLE.includes(actor.type);
  const machine = MACHINES.includes(actor.type);
  const [groups, tokens] = await Promise.all([groupsOf(actor), machine ? listAll(`/api/tokens?actor_id=${encodeURIComponent(actor.id)}`) : []]);
  const again = () => actorPage(id);

  const edit = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "Edit actor" },
      h("h2", {}, "Details"),
      h("div.problem", { role: "alert" }),
      h("div.row", {},
        field("Name", "name", { required: true, maxlength: 255, value: actor.name }),
        person ? field("Email", "email", { type: "email", required: true, maxlength: 254, value: actor.email ?? "" }) : null,
        person ? selectField("Type", "type", TYPES.filter(([t]) => PEOPLE.includes(t)), actor.type) : null),
      h("p", {}, h("button", { type: "submit" }, "Save"))),
    async (data) => {
      const patch = { name: String(data.get("name") ?? "") };
      if (person) {
        patch.email = String(data.get("email") ?? "");
        patch.type = String(data.get("type"));
      }
      await api("PATCH", path, patch);
      await again();
    },
  );

  const disabled = actor.disabled_at !== null;
  const toggle = onSubmit(
    h("form.card", { novalidate: true, "aria-label": disabled ? "Enable actor" : "Disable actor" },
      h("h2", {}, "Access"),
      h("p.muted", {}, disabled ? `Disabled since ${formatTime(actor.disabled_at)}: none of its tokens work. Enabling makes them work again.` :
        "Disabling stops every token of this actor at once, sessions and devices included, until it is enabled again."),
      h("div.problem", { role: "alert" }),
      h("button.secondary", { type: "submit" }, disabled ? "Enable" : "Disable")),
    async () => {
      await api("POST", `${path}/${disabled ? "enable" : "disable"}`);
      await again();
    },
  );

  // render() takes nodes only: a person's missing token section is dropped, not passed as null.
  render(actor.name, ...[
    h("p", {}, h("a", { href: `/${slug()}/actors` }, "← Users and service accounts")),
    h("h1", {}, actor.name),
    h("p", {}, `${typeName(actor.type)}${actor.email ? ` · ${actor.email}` : ""} · `, statusBadge(actor)),
    edit,
    groupsSection(groups, person),
    machine ? tokensSection(actor, tokens, again) : null,
    toggle,
    confirmDelete(`Delete ${actor.name}`, `Its tokens, client devices and group memberships go with it. This cannot be undone.`, async () => {
      await api("DELETE", path);
      go(`/${slug()}/actors`);
    }),
  ].filter((part) => part !== null));
}

/**
 * A delete button that asks first, in the page: the first press shows what goes and a second button
 * that does it; Cancel goes back. The API's refusal shows on the form.
 */

// --- 3. Its groups ---

/** The groups `actor` is a member of: one members read per group. */
async function groupsOf(actor) {
  const groups = await listAll("/api/groups");
  const member = await Promise.all(groups.map(async (g) => {
    if (g.kind === "everyone") return PEOPLE.includes(actor.type);
    const members = await listAll(`/api/groups/${encodeURIComponent(g.id)}/members`);
    return members.some((m) => m.actor_id === actor.id);
  }));
  return groups.filter((_, i) => member[i]);
}

function groupsSection(groups, person) {
  const list = groups.length === 0 ? h("p.muted", {}, person ? "In no group." : "In no group: a machine is never in Everyone, only in groups it is added to.") :
    h("ul", { "data-testid": "actor-groups" }, ...groups.map((g) => h("li", {}, h("a", { href: `/${slug()}/groups/${g.id}` }, g.name), g.kind === "everyone" ? h("span.muted", {}, " (every user and admin)") : null)));
  return h("section", { "aria-label": "Groups" }, h("h2", {}, "Groups"), list, h("p", {}, h("a", { href: `/${slug()}/groups` }, "Manage groups")));
}

// --- 4. Its tokens ---

function tokensSection(actor, tokens, again) {
  const kind = actor.type === "service_account" ? "client" : "API";
  const issued = h("div", { "data-testid": "issued-token" });
  const table = h("div");
  const drawTable = (list) => table.replaceChildren(list.length === 0 ? h("p.muted", {}, "No tokens.") :
    h("table", { "aria-label": "Tokens" },
      h("thead", {}, h("tr", {}, ...["Token", "Expires", "Last used", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...list.map((t) => h("tr", { "data-token": t.id },
        h("td", {}, t.name || h("span.muted", {}, "unnamed")),
        h("td", {}, t.expires_at ? formatTime(t.expires_at) : "never"),
        h("td", {}, formatTime(t.last_used_at)),
        h("td", {}, formatTime(t.created_at)),
        h("td", {}, onSubmit(
          h("form", { novalidate: true, "aria-label": `Revoke ${t.name || "unnamed token"}` }, h("div.problem", { role: "alert" }), h("button.secondary", { type: "submit" }, "Revoke")),
          async () => {
            await api("DELETE", `/api/tokens/${encodeURIComponent(t.id)}`);
            await again();
          })))))));
  drawTable(tokens);
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "New token" },
      h("h2", {}, "New token"),
      h("p.muted", {}, `A ${kind} token lets ${actor.name} ${actor.type === "service_account" ? "connect a client device" : "call the REST API"}. It is shown once.`),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, field("Token name", "name", { maxlength: 255, placeholder: "optional" }), h("button", { type: "submit" }, "Create token")),
      issued),
    async (data) => {
      const name = String(data.get("name") ?? "").trim();
      const made = await api("POST", "/api/tokens", { actor_id: actor.id, ...(name === "" ? {} : { name }) });
      issued.replaceChildren(h("p.notice", {}, "Copy the token now: it is not shown again."), copyBlock("Token", made.token, "new-token"));
      drawTable(await listAll(`/api/tokens?actor_id=${encodeURIComponent(actor.id)}`));
    },
  );
  return h("section", { "aria-label": "Tokens" }, h("h2", {}, "Tokens"), table, form);
}

