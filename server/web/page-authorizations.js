// Authorizations: who reached what through which gateway, and until when (GET /api/authorizations),
// newest first, a page at a time.
//
// 1. The filters and the page live in the address (?actor_id=&resource_id=&gateway_device_id=&active=
//    &cursor=), so a filtered view can be reloaded and shared; the form's submit goes to the new
//    address, and "Next page" is a link to the next cursor.
// 2. The page renders once the records and the filter choices (actors, resources, gateways) are
//    loaded. A filter the API refuses is shown next to its select, with no table.
// 3. The API names the actor, devices and resource of each record; a record outlives them, so one
//    whose object is gone shows "deleted" and the start of its id.
// 4. Live: new authorizations (the event stream's `authorizations`) are announced above the table.

import { ApiError, formatTime, h, listAll, onAuthorizations, render, session, showProblem, pager, filterSubmit, pageOrRefusal, actorLabel } from "./lib.js";

const FILTERS = ["actor_id", "resource_id", "gateway_device_id", "active"];
const PAGE_SIZE = 50;

let selectIds = 0;

/** A labelled <select> with its error slot, shaped like lib.js field() so showProblem() finds it. */
function selectField(label, name, options, selected) {
  const id = `auth-${++selectIds}-${name}`;
  const select = h("select", { id, name, "aria-describedby": `${id}-error` },
    h("option", { value: "" }, "Any"),
    ...options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
  return h("div.field", {}, h("label", { for: id }, label), select, h("div.error", { id: `${id}-error`, role: "alert" }));
}

/** A name the API gave, or what is left of an object that is gone. */
function named(name, id) {
  return name ?? h("span.muted", { title: id }, `deleted (${id.slice(0, 8)})`);
}

function state(record) {
  if (record.active) return [h("span.badge.online", {}, "active")];
  if (record.revoked_at === null) return [h("span.badge.offline", {}, "expired")];
  return [h("span.badge.offline", {}, "revoked"), h("br"), h("span.muted", { title: formatTime(record.revoked_at) }, record.revoke_reason.replaceAll("_", " "))];
}

/** /<account>/authorizations */
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
  const [actors, resources, gateways, page] = await Promise.all([
    listAll("/api/actors"),
    listAll("/api/resources"),
    listAll("/api/devices?kind=gateway"),
    pageOrRefusal(`/api/authorizations?${query}`),
  ]);

  const form = h("form.card", { novalidate: true, "aria-label": "Filter authorizations" },
    h("div.problem", { role: "alert" }),
    h("div.row", {},
      selectField("Actor", "actor_id", actors.map((a) => [a.id, actorLabel(a)]), params.get("actor_id")),
      selectField("Resource", "resource_id", resources.map((r) => [r.id, r.name]), params.get("resource_id")),
      selectField("Gateway", "gateway_device_id", gateways.map((g) => [g.id, g.name]), params.get("gateway_device_id"))),
    h("div.copy-row", {},
      h("label.check", { for: "auth-active" },
        h("input", { type: "checkbox", id: "auth-active", name: "active", value: "true", checked: params.get("active") === "true", "aria-describedby": "auth-active-error" }),
        "Active only"),
      h("div", {}, h("a.button", { href: `/${slug}/authorizations` }, "Clear filters"), " ", h("button", { type: "submit" }, "Filter"))),
    h("div.error", { id: "auth-active-error", role: "alert" }));
  // 1. A new filter starts at the first page.
  filterSubmit(form, `/${slug}/authorizations`);

  let body;
  if (page instanceof ApiError) {
    body = [];
  } else if (page.data.length === 0) {
    body = [h("p.notice", {}, params.has("cursor") ? "No more authorizations." : "No authorizations match.")];
  } else {
    const rows = page.data.map((r) => h("tr", { "data-authorization": r.id },
      h("td", {}, formatTime(r.created_at)),
      h("td", {}, named(r.actor_name, r.actor_id), h("br"), h("span.muted", {}, "on "), named(r.client_device_name, r.client_device_id)),
      h("td", {}, named(r.resource_name, r.resource_id)),
      h("td", {}, named(r.gateway_device_name, r.gateway_device_id)),
      h("td", {}, r.expires_at === null ? "until revoked" : formatTime(r.expires_at)),
      h("td", {}, ...state(r))));
    body = [h("table", {},
      h("thead", {}, h("tr", {}, ...["When", "Who", "Reached", "Through gateway", "Until", "State"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))];
  }

  // Live: authorizations recorded since (on any portal node) are announced, with a link to the first
  // page of the same filters; the table itself stays put under the reader.
  const fresh = h("p.notice", { role: "status", hidden: true, "data-testid": "new-authorizations" });
  let added = 0;
  onAuthorizations(({ count }) => {
    added += count;
    const first = new URLSearchParams(params);
    first.delete("cursor");
    const search = first.toString();
    fresh.replaceChildren(`${added} new authorization${added === 1 ? "" : "s"} since this page loaded. `, h("a", { href: `/${slug}/authorizations${search ? `?${search}` : ""}` }, "Show them"));
    fresh.hidden = false;
  });

  render("Authorizations",
    h("h1", {}, "Authorizations"),
    h("p.muted", {}, "Each time a policy let a client reach a resource: who, on which device, through which gateway, and until when. Newest first."),
    form,
    fresh,
    ...body,
    pager(`/${slug}/authorizations`, params, page instanceof ApiError ? null : page.next_cursor));
  if (page instanceof ApiError) showProblem(form, page);
}

