// Changes: the account's change log (GET /api/change_log), newest first, a page at a time: who changed
// which object, and for an update, which fields went from what to what.
//
// 1. The filters and the page live in the address (?object_type=&actor_id=&object_id=&cursor=), so a
//    filtered view can be reloaded and shared; "History" on a row shows that object's changes only, and
//    "Next page" is a link to the next cursor.
// 2. The page renders once the entries and the actors (for the actor filter) are loaded. A filter the
//    API refuses is shown next to its field, with no table.
// 3. An update is summarised by the fields that differ between before and after; bookkeeping fields
//    (ids, times of the row itself) are left out, and the API has already redacted secrets.

import { ApiError, field, formatTime, h, listAll, render, session, showProblem, pager, filterSubmit, pageOrRefusal, actorLabel } from "./lib.js";

const FILTERS = ["object_type", "actor_id", "object_id"];
const PAGE_SIZE = 50;

/** The object types the change log holds (the API's table names), as the UI calls them, many and one. */
const OBJECT_TYPES = [
  ["accounts", "Account settings", "Account"],
  ["actors", "Actors", "Actor"],
  ["auth_providers", "Identity providers", "Identity provider"],
  ["devices", "Devices", "Device"],
  ["groups", "Groups", "Group"],
  ["memberships", "Group members", "Group member"],
  ["policies", "Policies", "Policy"],
  ["resources", "Resources", "Resource"],
  ["resource_sites", "Resource sites", "Resource site"],
  ["sign_in_challenges", "Sign-in codes", "Sign-in code"],
  ["sites", "Sites", "Site"],
  ["tokens", "Tokens", "Token"],
];
const TYPE_NAME = Object.fromEntries(OBJECT_TYPES.map(([type, , one]) => [type, one]));
const ACTION = { insert: "created", update: "changed", delete: "deleted" };
/** Fields every row carries that say nothing about what an admin changed. */
const BOOKKEEPING = new Set(["accountId", "id", "createdAt", "updatedAt"]);

let selectIds = 0;

/** A labelled <select> with its error slot, shaped like lib.js field() so showProblem() finds it. */
function selectField(label, name, options, selected) {
  const id = `chg-${++selectIds}-${name}`;
  const select = h("select", { id, name, "aria-describedby": `${id}-error` },
    h("option", { value: "" }, "Any"),
    ...options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
  return h("div.field", {}, h("label", { for: id }, label), select, h("div.error", { id: `${id}-error`, role: "alert" }));
}

function shown(value) {
  const text = value === null || value === undefined ? "none" : typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** 3. What an entry did, in a line or a few. */
function summary(entry) {
  if (entry.action !== "update") return [];
  const before = entry.before ?? {};
  const after = entry.after ?? {};
  const changed = Object.keys({ ...before, ...after }).filter((key) => !BOOKKEEPING.has(key) && JSON.stringify(before[key]) !== JSON.stringify(after[key]));
  if (changed.length === 0) return [h("span.muted", {}, "no visible change")];
  return changed.map((key) => h("div", {}, h("strong", {}, key), `: ${shown(before[key])} → ${shown(after[key])}`));
}

/** /<account>/changes */
export async function show() {
  const slug = encodeURIComponent(session.me.account.slug);
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const name of [...FILTERS, "cursor"]) {
    const value = params.get(name);
    if (value !== null && value !== "") query.set(name, value);
  }
  query.set("limit", String(PAGE_SIZE));

  // 2. Everything the page shows, before it shows any of it.
  const [actors, page] = await Promise.all([
    listAll("/api/actors"),
    pageOrRefusal(`/api/change_log?${query}`),
  ]);

  const form = h("form.card", { novalidate: true, "aria-label": "Filter changes" },
    h("div.problem", { role: "alert" }),
    h("div.row", {},
      selectField("Object type", "object_type", OBJECT_TYPES.map(([type, many]) => [type, many]), params.get("object_type")),
      selectField("Changed by", "actor_id", actors.map((a) => [a.id, actorLabel(a)]), params.get("actor_id")),
      field("Object id", "object_id", { value: params.get("object_id") ?? "", maxlength: 255, placeholder: "any" })),
    h("div.copy-row", {},
      h("span"),
      h("div", {}, h("a.button", { href: `/${slug}/changes` }, "Clear filters"), " ", h("button", { type: "submit" }, "Filter"))));
  // 1. A new filter starts at the first page.
  filterSubmit(form, `/${slug}/changes`);

  let body;
  if (page instanceof ApiError) {
    body = [];
  } else if (page.data.length === 0) {
    body = [h("p.notice", {}, params.has("cursor") ? "No more changes." : "No changes match.")];
  } else {
    const rows = page.data.map((e) => h("tr", { "data-change": e.id },
      h("td", {}, formatTime(e.at)),
      h("td", {}, e.actor_name ?? h("span.muted", {}, e.actor_id === null ? "the portal" : `deleted (${e.actor_id.slice(0, 8)})`)),
      h("td", {}, ACTION[e.action] ?? e.action),
      h("td", {},
        h("span.muted", {}, TYPE_NAME[e.object_type] ?? e.object_type), " ",
        e.object_name ?? h("span.muted", { title: e.object_id }, e.object_id.slice(0, 8)), h("br"),
        h("a", { href: `/${slug}/changes?${new URLSearchParams({ object_id: e.object_id })}`, "aria-label": `History of ${e.object_name ?? e.object_id}` }, "History")),
      h("td", {}, ...summary(e))));
    body = [h("table", {},
      h("thead", {}, h("tr", {}, ...["When", "Who", "Action", "Object", "Change"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))];
  }

  render("Changes",
    h("h1", {}, "Changes"),
    h("p.muted", {}, "Every change to this account's objects: who made it, when, and what it changed. Newest first."),
    form,
    ...body,
    pager(`/${slug}/changes`, params, page instanceof ApiError ? null : page.next_cursor));
  if (page instanceof ApiError) showProblem(form, page);
}

