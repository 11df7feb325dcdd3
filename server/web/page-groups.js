// Groups: the list with a new group; a group's members (add one from the account's actors, remove
// one), rename and delete. Everyone comes with the account and holds every user and admin by
// definition, so its page lists them and offers no changes (the API refuses them anyway).

import { api, confirmDelete, field, formatTime, go, h, listAll, onSubmit, render, session } from "./lib.js";

const TYPE_NAMES = { user: "User", admin: "Admin", service_account: "Service account", api_client: "API client" };
const slug = () => encodeURIComponent(session.me.account.slug);

/** /<account>/groups and /<account>/groups/<id>. */
export function show(id) {
  return id === undefined ? groupsPage() : groupPage(id);
}

async function groupsPage() {
  const groups = await listAll("/api/groups");
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "New group" },
      h("h2", {}, "New group"),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, field("Name", "name", { required: true, maxlength: 255 }), h("button", { type: "submit" }, "Create group"))),
    async (data) => {
      const group = await api("POST", "/api/groups", { name: String(data.get("name") ?? "") });
      go(`/${slug()}/groups/${group.id}`);
    },
  );
  const rows = groups.map((g) => h("tr", {},
    h("td", {}, h("a", { href: `/${slug()}/groups/${g.id}` }, g.name)),
    h("td", {}, g.kind === "everyone" ? "every user and admin, always" : "members added by hand"),
    h("td", {}, formatTime(g.created_at))));
  render("Groups",
    h("h1", {}, "Groups"),
    h("p.muted", {}, "Policies grant resources to groups; an actor reaches what its groups are granted."),
    h("table", { "aria-label": "Groups" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Group"), h("th", { scope: "col" }, "Membership"), h("th", { scope: "col" }, "Created"))),
      h("tbody", {}, rows)),
    form);
}

async function groupPage(id) {
  const path = `/api/groups/${encodeURIComponent(id)}`;
  const [group, members, actors] = await Promise.all([api("GET", path), listAll(`${path}/members`), listAll("/api/actors")]);
  const fixed = group.kind === "everyone";
  const again = () => groupPage(id);

  const rows = members.map((m) => h("tr", { "data-member": m.actor_id },
    h("td", {}, h("a", { href: `/${slug()}/actors/${m.actor_id}` }, m.name)),
    h("td", {}, TYPE_NAMES[m.type] ?? m.type),
    fixed ? null : h("td", {}, onSubmit(
      h("form", { novalidate: true, "aria-label": `Remove ${m.name}` }, h("div.problem", { role: "alert" }), h("button.secondary", { type: "submit" }, "Remove")),
      async () => {
        await api("DELETE", `${path}/members/${encodeURIComponent(m.actor_id)}`);
        await again();
      }))));
  const membersTable = members.length === 0 ? h("p.notice", {}, "No members yet: add one below.") :
    h("table", { "aria-label": "Members" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Member"), h("th", { scope: "col" }, "Type"), fixed ? null : h("th", { scope: "col" }, ""))),
      h("tbody", {}, rows));

  // render() takes nodes only: the parts Everyone lacks are dropped, not passed as null.
  render(group.name, ...[
    h("p", {}, h("a", { href: `/${slug()}/groups` }, "← Groups")),
    h("h1", {}, group.name),
    fixed ? h("p.notice", {}, "Everyone holds every user and admin of the account, always; it cannot be renamed, deleted or given members by hand.") : null,
    h("h2", {}, "Members"),
    membersTable,
    fixed ? null : addMemberForm(path, actors, members, again),
    fixed ? null : renameForm(path, group, again),
    fixed ? null : confirmDelete(`Delete ${group.name}`, "Its memberships and the policies that grant it resources go with it. The actors stay.", async () => {
      await api("DELETE", path);
      go(`/${slug()}/groups`);
    }),
  ].filter((part) => part !== null));
}

function addMemberForm(path, actors, members, again) {
  const inGroup = new Set(members.map((m) => m.actor_id));
  const candidates = actors.filter((a) => !inGroup.has(a.id));
  if (candidates.length === 0) return h("p.muted", {}, "Every actor of the account is a member.");
  const id = "add-member-actor";
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "Add a member" },
      h("h2", {}, "Add a member"),
      h("div.problem", { role: "alert" }),
      h("div.row", {},
        h("div.field", {},
          h("label", { for: id }, "Actor"),
          h("select", { id, name: "actor_id", "aria-describedby": `${id}-error` },
            ...candidates.map((a) => h("option", { value: a.id }, `${a.name} (${TYPE_NAMES[a.type] ?? a.type}${a.email ? `, ${a.email}` : ""})`))),
          h("div.error", { id: `${id}-error`, role: "alert" })),
        h("button", { type: "submit" }, "Add member"))),
    async (data) => {
      await api("PUT", `${path}/members/${encodeURIComponent(String(data.get("actor_id")))}`);
      await again();
    },
  );
  return form;
}

function renameForm(path, group, again) {
  return onSubmit(
    h("form.card", { novalidate: true, "aria-label": "Rename group" },
      h("h2", {}, "Rename"),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, field("Name", "name", { required: true, maxlength: 255, value: group.name }), h("button", { type: "submit" }, "Rename"))),
    async (data) => {
      await api("PATCH", path, { name: String(data.get("name") ?? "") });
      await again();
    },
  );
}

