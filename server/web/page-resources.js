// Resources: the list and a new resource; a resource with its edit form and a delete that asks first
// inside the page. Every rule lives in the API (server/src/domain/resource-rules.ts): this page sends
// what the admin typed and shows the API's answer, its field errors beside the inputs they name and
// its notices (masked host bits) above the resource.
//
// 1. The form: type, name, address (not for the Internet resource), address description, sites, and
//    traffic filters (tcp and udp with port ranges, icmp; none checked is all traffic).
// 2. The body: the API's shape, filters in tcp, udp, icmp order, each at the index its inputs are
//    named for (filters/<i>/ports), so the API's field paths land on them.
// 3. The answer: a field path the form has no input for (filters/0/ports/1, site_ids/0) goes to the
//    nearest input that holds it; the message stays the API's own.
// 4. The pages: the list, a resource, and deleting one.

import { api, ApiError, field, go, h, listAll, onSubmit, render, session } from "./lib.js";

/** /<account>/resources and /<account>/resources/<id>. */
export function show(id) {
  return id === undefined ? resourcesPage() : resourcePage(id);
}

const TYPES = [
  { value: "dns", label: "DNS name", hint: "A name or a wildcard: app.corp.example, *.corp.example (one label or none), **.corp.example (any depth), ? (one character)." },
  { value: "ip", label: "IP address", hint: "One IPv4 or IPv6 address, like 10.0.0.5 or fd12::5." },
  { value: "cidr", label: "CIDR range", hint: "An address range, like 10.0.0.0/24." },
  { value: "internet", label: "Internet", hint: "Everything the other resources do not cover: full-tunnel traffic. It takes no address and no filters; an account has one." },
];
const PORTED = ["tcp", "udp"];
const PROTOCOLS = ["tcp", "udp", "icmp"];

/** What the last write's reply said it changed (masked host bits), shown once on the resource's page. */
let pendingNotices = { id: null, notices: [] };

// --- 1. The form ---

let ids = 0;
const nextId = (name) => `r${++ids}-${name.replace(/[^a-z0-9_-]/gi, "-")}`;

/** A labelled select with its error slot, shaped like lib.js field() so the API's errors find it. */
function selectField(label, name, options, value) {
  const id = nextId(name);
  const select = h("select", { id, name, "aria-describedby": `${id}-error` },
    ...options.map((o) => h("option", { value: o.value, selected: o.value === value }, o.label)));
  return h("div.field", {}, h("label", { for: id }, label), select, h("div.error", { id: `${id}-error`, role: "alert" }));
}

/** A group of checkboxes sharing one error slot, named `name` (several values, like site_ids). */
function checkboxGroup(legend, name, options, checked) {
  const errorId = nextId(`${name}-error`);
  const boxes = options.map((o) => {
    const id = nextId(name);
    return h("label", { for: id }, h("input", { type: "checkbox", id, name, value: o.value, checked: checked.includes(o.value), "aria-describedby": errorId }), ` ${o.label}`);
  });
  return h("fieldset.card", {}, h("legend", {}, legend), h("div.row", {}, ...boxes), h("div.error", { id: errorId, role: "alert" }));
}

/** The traffic filters: a checkbox per protocol, and the ports of tcp and udp. */
function filtersFieldset(filters) {
  const errorId = nextId("filters-error");
  const byProtocol = new Map(filters.map((f) => [f.protocol, f]));
  const rows = PROTOCOLS.map((protocol) => {
    const id = nextId(`filter-${protocol}`);
    const box = h("input", { type: "checkbox", id, value: protocol, "data-protocol": protocol, checked: byProtocol.has(protocol), "aria-describedby": errorId });
    const check = h("label", { for: id }, box, ` ${protocol.toUpperCase()}`);
    if (!PORTED.includes(protocol)) return h("tr", {}, h("td", {}, check), h("td.muted", {}, "no ports"));
    const ports = field(`${protocol.toUpperCase()} ports`, `filter-${protocol}-ports`, {
      "data-ports": protocol,
      placeholder: "443, 8000-8080; empty: every port",
      value: (byProtocol.get(protocol)?.ports ?? []).join(", "),
    });
    return h("tr", {}, h("td", {}, check), h("td", {}, ports));
  });
  const fieldset = h("fieldset.card", { "data-filters": "" },
    h("legend", {}, "Traffic"),
    h("p.muted", {}, "Check none to allow all traffic; check protocols to allow only those. Ports are single ports or ranges, separated by commas."),
    h("input", { type: "hidden", name: "filters", "aria-describedby": errorId }),
    h("table", {}, h("tbody", {}, rows)),
    h("div.error", { id: errorId, role: "alert" }));
  const rename = () => nameFilterInputs(fieldset);
  fieldset.addEventListener("change", rename);
  rename();
  return fieldset;
}

/**
 * Step 2's naming: the checked protocols are numbered in tcp, udp, icmp order, as the body sends
 * them, and their inputs named filters/<i>/protocol and filters/<i>/ports; the others are unnamed.
 */
function nameFilterInputs(fieldset) {
  let index = 0;
  for (const protocol of PROTOCOLS) {
    const box = fieldset.querySelector(`input[data-protocol="${protocol}"]`);
    const ports = fieldset.querySelector(`input[data-ports="${protocol}"]`);
    if (box.checked) {
      box.name = `filters/${index}/protocol`;
      if (ports) {
        ports.name = `filters/${index}/ports`;
        ports.disabled = false;
      }
      index++;
    } else {
      box.name = `filter-${protocol}`;
      if (ports) {
        ports.name = `filter-${protocol}-ports`;
        ports.disabled = true;
      }
    }
  }
}

/** The form of a new (resource undefined) or an existing resource. */
function resourceForm(resource, sites, submitLabel, ariaLabel, onSaved) {
  const type = resource?.type ?? "dns";
  const typeField = selectField("Type", "type", TYPES, type);
  const hint = h("p.muted", {});
  const address = field("Address", "address", { maxlength: 253, value: resource?.address ?? "", autocomplete: "off", spellcheck: "false" });
  const addressSlot = h("div", {});
  const filters = filtersFieldset(resource?.filters ?? []);
  const filtersSlot = h("div", {});
  const siteGroup = sites.length === 0
    ? h("p.notice", {}, "No sites yet: create a site first, its gateways reach the resource.")
    : checkboxGroup("Sites whose gateways reach it", "site_ids", sites.map((s) => ({ value: s.id, label: s.name })), resource?.site_ids ?? (sites.length === 1 ? [sites[0].id] : []));

  // The Internet resource has no address and no filters: their inputs leave the form rather than hide,
  // so nothing of them is sent or focused.
  const select = typeField.querySelector("select");
  const showType = () => {
    const chosen = TYPES.find((t) => t.value === select.value) ?? TYPES[0];
    hint.textContent = chosen.hint;
    const internet = chosen.value === "internet";
    addressSlot.replaceChildren(...(internet ? [] : [address]));
    filtersSlot.replaceChildren(...(internet ? [] : [filters]));
    address.querySelector("input").placeholder = { dns: "*.corp.example", ip: "10.0.0.5", cidr: "10.0.0.0/24" }[chosen.value] ?? "";
  };
  select.addEventListener("change", showType);
  showType();

  const form = h("form.card", { novalidate: true, "aria-label": ariaLabel },
    h("div.problem", { role: "alert" }),
    typeField,
    field("Name", "name", { required: true, maxlength: 255, value: resource?.name ?? "" }),
    hint,
    addressSlot,
    field("Address description", "address_description", { maxlength: 512, value: resource?.address_description ?? "", placeholder: "optional: what users see, like https://wiki.corp.example" }),
    siteGroup,
    filtersSlot,
    h("button", { type: "submit" }, submitLabel));
  return onSubmit(form, async () => {
    try {
      await onSaved(bodyOf(form));
    } catch (error) {
      throw error instanceof ApiError ? placeErrors(form, error) : error;
    }
  });
}

/** Puts a stored resource's normalized values (sorted, merged ports; canonical address) into its form. */
function fillForm(form, resource) {
  const set = (name, value) => {
    const input = form.querySelector(`[name="${name}"]`);
    if (input) input.value = value ?? "";
  };
  set("name", resource.name);
  set("address_description", resource.address_description);
  const address = form.querySelector('input[name="address"]');
  if (address && resource.address !== null) address.value = resource.address;
  const byProtocol = new Map(resource.filters.map((f) => [f.protocol, f]));
  for (const box of form.querySelectorAll("input[data-protocol]")) box.checked = byProtocol.has(box.dataset.protocol);
  for (const ports of form.querySelectorAll("input[data-ports]")) ports.value = (byProtocol.get(ports.dataset.ports)?.ports ?? []).join(", ");
  const fieldset = form.querySelector("fieldset[data-filters]");
  if (fieldset) nameFilterInputs(fieldset);
}

// --- 2. The body ---

/** The API's body from the form's inputs. */
function bodyOf(form) {
  const value = (name) => form.querySelector(`[name="${name}"]`)?.value ?? "";
  const type = value("type");
  const body = {
    type,
    name: value("name"),
    address: type === "internet" ? null : value("address"),
    address_description: value("address_description"),
    site_ids: [...form.querySelectorAll('input[name="site_ids"]:checked')].map((box) => box.value),
    filters: [],
  };
  if (type !== "internet") {
    for (const box of form.querySelectorAll("input[data-protocol]:checked")) {
      const protocol = box.dataset.protocol;
      if (!PORTED.includes(protocol)) {
        body.filters.push({ protocol });
        continue;
      }
      const text = form.querySelector(`input[data-ports="${protocol}"]`).value;
      body.filters.push({ protocol, ports: text.split(",").map((p) => p.trim()).filter((p) => p !== "") });
    }
  }
  return body;
}

// --- 3. The answer ---

/**
 * The API's error with each field path moved to the nearest one the form has an input for
 * (filters/0/ports/1 → filters/0/ports, site_ids/0 → site_ids, filters/0 → filters).
 */
function placeErrors(form, error) {
  const has = (name) => form.querySelector(`[name="${CSS.escape(name)}"]`) !== null;
  const errors = (error.problem.errors ?? []).map((e) => {
    let name = e.field;
    while (!has(name) && name.includes("/")) name = name.slice(0, name.lastIndexOf("/"));
    return has(name) ? { ...e, field: name } : e;
  });
  return new ApiError(error.status, { ...error.problem, errors });
}

// --- 4. The pages ---

const byName = (sites) => sites.sort((a, b) => a.name.localeCompare(b.name));

const typeLabel = (type) => TYPES.find((t) => t.value === type)?.label ?? type;

/** "TCP 443, 8000-8080 · ICMP"; no filter is all traffic. */
function filtersText(filters) {
  if (filters.length === 0) return "All traffic";
  return filters.map((f) => {
    const name = f.protocol.toUpperCase();
    if (f.protocol === "icmp") return name;
    return f.ports.length === 0 ? `${name} all ports` : `${name} ${f.ports.join(", ")}`;
  }).join(" · ");
}

const siteNames = (resource, sites) => {
  const names = resource.site_ids.map((id) => sites.get(id) ?? id).sort((a, b) => a.localeCompare(b));
  return names.length === 0 ? h("span.muted", {}, "none") : names.join(", ");
};

async function resourcesPage() {
  const slug = encodeURIComponent(session.me.account.slug);
  const [resources, sites] = await Promise.all([listAll("/api/resources"), listAll("/api/sites").then(byName)]);
  const siteName = new Map(sites.map((s) => [s.id, s.name]));
  const form = resourceForm(undefined, sites, "Create resource", "New resource", async (body) => {
    const created = await api("POST", "/api/resources", body);
    pendingNotices = { id: created.id, notices: created.notices ?? [] };
    go(`/${slug}/resources/${created.id}`);
  });
  const rows = resources.map((r) => h("tr", { "data-resource": r.id },
    h("td", {}, h("a", { href: `/${slug}/resources/${r.id}` }, r.name)),
    h("td", {}, typeLabel(r.type)),
    h("td", {}, r.address ?? h("span.muted", {}, "everything else"),
      r.address_description ? [h("br"), h("span.muted", {}, r.address_description)] : null),
    h("td", {}, siteNames(r, siteName)),
    h("td", {}, filtersText(r.filters))));
  render("Resources",
    h("h1", {}, "Resources"),
    h("p.muted", {}, "A resource is what clients reach through the gateways of its sites: a DNS name or wildcard, an address, a range, or the Internet. Policies say who may reach it."),
    resources.length === 0 ? h("p.notice", {}, "No resources yet: create the first one below.") :
      h("table", {},
        h("thead", {}, h("tr", {}, ...["Resource", "Type", "Address", "Sites", "Traffic"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows)),
    h("h2", {}, "New resource"),
    form);
}

async function resourcePage(id) {
  const slug = encodeURIComponent(session.me.account.slug);
  const path = `/api/resources/${encodeURIComponent(id)}`;
  const [resource, sites] = await Promise.all([api("GET", path), listAll("/api/sites").then(byName)]);
  const siteName = new Map(sites.map((s) => [s.id, s.name]));
  const notices = pendingNotices.id === resource.id ? pendingNotices.notices : [];
  pendingNotices = { id: null, notices: [] };

  const summary = h("tbody", {});
  const line = (label, value) => h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, value));
  const drawSummary = (r) => summary.replaceChildren(...[
    line("Type", typeLabel(r.type)),
    line("Address", r.address ?? "everything the other resources do not cover"),
    r.address_description ? line("Address description", r.address_description) : null,
    line("Sites", siteNames(r, siteName)),
    line("Traffic", filtersText(r.filters)),
  ].filter((row) => row !== null));
  drawSummary(resource);
  const current = { name: resource.name };
  const heading = h("h1", {}, resource.name);
  const noticeBox = h("div", { "data-testid": "resource-notices" }, ...notices.map((n) => h("p.notice", {}, n.message)));

  const form = resourceForm(resource, sites, "Save changes", "Edit resource", async (body) => {
    const saved = await api("PATCH", path, body);
    current.name = saved.name;
    heading.textContent = saved.name;
    document.title = `${saved.name} · Wardline`;
    drawSummary(saved);
    fillForm(form, saved);
    noticeBox.replaceChildren(h("p.notice", {}, "Saved."), ...(saved.notices ?? []).map((n) => h("p.notice", {}, n.message)));
  });

  render(resource.name,
    h("p", {}, h("a", { href: `/${slug}/resources` }, "← Resources")),
    heading,
    noticeBox,
    h("table", { "data-testid": "resource-summary" }, summary),
    h("h2", {}, "Edit"),
    form,
    h("h2", {}, "Delete"),
    deleteSection(current, path, slug));
}

/** A delete button that asks first, in the page; the resource's policies go with it. `current.name` follows edits. */
function deleteSection(current, path, slug) {
  const section = h("section.card", { "aria-label": "Delete resource" });
  const problem = h("div.problem", { role: "alert" });
  const ask = () => {
    const yes = h("button", { type: "button", onclick: async () => {
      yes.disabled = true;
      problem.textContent = "";
      try {
        await api("DELETE", path);
        go(`/${slug}/resources`);
      } catch (error) {
        problem.textContent = error instanceof ApiError ? `${error.problem.title}: ${error.problem.detail}` : String(error);
        yes.disabled = false;
        // Disabled, the button lost the focus; refused, it gets it back.
        if (document.activeElement === document.body) yes.focus();
      }
    } }, `Delete ${current.name}`);
    const cancel = h("button.secondary", { type: "button", onclick: () => {
      idle();
      section.querySelector("button")?.focus();
    } }, "Cancel");
    section.replaceChildren(
      h("p", { role: "alert" }, `Delete ${current.name}? Clients lose access to it at once, and the policies that grant it are deleted with it.`),
      problem,
      h("div.row", {}, yes, cancel));
    cancel.focus();
  };
  const idle = () => section.replaceChildren(
    h("p.muted", {}, "Deleting a resource also deletes its policies."),
    h("button.secondary", { type: "button", onclick: ask }, "Delete resource"));
  idle();
  return section;
}
