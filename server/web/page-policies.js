// Policies: which group reaches which resource, and under which conditions; and "check access", the
// policy engine's own answer for one user, device and moment (POST /api/policies/check).
//
// 1. The list (/<account>/policies): group → resource, a summary of the conditions, enabled or
//    disabled with a button that flips it (PATCH disabled), and the check-access panel below.
// 2. The editor (/<account>/policies/new, /<account>/policies/<id>): group, resource, description,
//    disabled, and the conditions in the API's shape, { property, operator, values }: client IP CIDRs,
//    regions, auth providers, time windows (days, from/to, IANA zone), verified client. The API's
//    field errors name conditions by their index in the list sent ("conditions/2/values/1"); the
//    editor keeps which input each index came from and puts the message there.
// 3. Check access: a user, one of their devices (its verification is what client_verified sees), a
//    resource, and a wall-clock time in a chosen zone, turned into an instant here; optionally the
//    client's address, region and auth provider. The answer is shown as the engine gives it: allowed
//    until when, or per policy the conditions that failed, by their API names.

import { api, ApiError, field, go, h, listAll, onSubmit, render, session } from "./lib.js";

const slug = () => encodeURIComponent(session.me.account.slug);

/** Firezone's day letters, Monday first, and what the UI calls them. */
const DAYS = [["M", "Mon"], ["T", "Tue"], ["W", "Wed"], ["R", "Thu"], ["F", "Fri"], ["S", "Sat"], ["U", "Sun"]];
const DAY_NAME = Object.fromEntries(DAYS);

const PROPERTY_LABELS = {
  remote_ip: "Client IP",
  remote_ip_location_region: "Region",
  provider_id: "Auth provider",
  current_utc_datetime: "Time window",
  client_verified: "Verified client",
};

/** Notices of the last save (host bits masked), shown once on the list. */
let flash = [];

/** /<account>/policies, /<account>/policies/new and /<account>/policies/<id>. */
export function show(id) {
  return id === undefined ? policiesPage() : editorPage(id === "new" ? undefined : id);
}

// --- Shared pieces ---

let controls = 0;

/** A labelled control (select, textarea, input) with its error slot, as lib.js field() does for inputs. */
function control(label, name, tag, attrs = {}, ...children) {
  const id = `p${++controls}-${name}`;
  const el = h(tag, { id, name, "aria-describedby": `${id}-error`, ...attrs }, ...children);
  return h("div.field", {}, h("label", { for: id }, label), el, h("div.error", { id: `${id}-error`, role: "alert" }));
}

/** A checkbox with its label after it. */
function checkbox(label, name, attrs = {}) {
  const id = `p${++controls}-${name}`;
  return h("span", {}, h("input", { type: "checkbox", id, name, ...attrs }), " ", h("label", { for: id }, label));
}

function options(items, selected, labelOf) {
  return items.map((item) => h("option", { value: item.id, selected: item.id === selected }, labelOf(item)));
}

/** Every IANA zone the browser knows, for the zone inputs' suggestions. */
function zoneList() {
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {
    zones = [];
  }
  if (!zones.includes("UTC")) zones = ["UTC", ...zones];
  return h("datalist", { id: "time-zones" }, zones.map((z) => h("option", { value: z })));
}

const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** One condition in words: "Mon 09:00–17:00 (Europe/Berlin)", "not in 10.0.0.0/8". */
function describeCondition(c, providers) {
  const not = c.operator === "is_not_in" || c.operator === "is_not_in_cidr";
  switch (c.property) {
    case "remote_ip":
      return `${not ? "not in" : "in"} ${c.values.join(", ")}`;
    case "remote_ip_location_region":
      return `${not ? "not in" : "in"} ${c.values.join(", ")}`;
    case "provider_id":
      return `${not ? "not through" : "through"} ${c.values.map((id) => providers.get(id)?.name ?? id).join(", ")}`;
    case "current_utc_datetime":
      return c.values.map((v) => {
        const [day, ranges, zone] = splitWindow(v);
        const when = ranges === "true" ? "all day" : ranges.replaceAll("-", "–").replaceAll(",", ", ");
        return `${DAY_NAME[day] ?? day} ${when} (${zone})`;
      }).join("; ");
    case "client_verified":
      return c.values[0] === "true" ? "verified devices only" : "unverified devices only";
    default:
      return `${c.operator} ${c.values.join(", ")}`;
  }
}

/** "M/09:00-17:00/Europe/Berlin" → ["M", "09:00-17:00", "Europe/Berlin"]: the zone has slashes of its own. */
function splitWindow(value) {
  const [day = "", ranges = "", ...zone] = value.split("/");
  return [day, ranges, zone.join("/")];
}

const conditionsSummary = (conditions, providers) => conditions.length === 0 ? "none: always, from anywhere" :
  conditions.map((c) => `${PROPERTY_LABELS[c.property] ?? c.property}: ${describeCondition(c, providers)}`).join(" · ");

// --- 1. The list ---

async function policiesPage() {
  const [policies, groups, resources, actors, providers] = await Promise.all([
    listAll("/api/policies"), listAll("/api/groups"), listAll("/api/resources"), listAll("/api/actors"), listAll("/api/auth_providers"),
  ]);
  const groupById = new Map(groups.map((g) => [g.id, g]));
  const resourceById = new Map(resources.map((r) => [r.id, r]));
  const providerById = new Map(providers.map((p) => [p.id, p]));
  const pairName = (p) => `${groupById.get(p.group_id)?.name ?? p.group_id} → ${resourceById.get(p.resource_id)?.name ?? p.resource_id}`;

  const problem = h("div.problem", { role: "alert" });
  const section = h("section", { "aria-label": "Policies" });
  const draw = (list, focusId) => {
    if (list.length === 0) {
      section.replaceChildren(h("p.notice", {}, "No policies yet: nobody reaches any resource. Create the first one."));
      return;
    }
    const rows = list.map((p) => {
      const toggle = h("button.secondary", { type: "button", "aria-label": `${p.disabled ? "Enable" : "Disable"} ${pairName(p)}`, "data-policy-toggle": p.id, onclick: async () => {
        problem.textContent = "";
        toggle.disabled = true;
        try {
          await api("PATCH", `/api/policies/${encodeURIComponent(p.id)}`, { disabled: !p.disabled });
          draw(await listAll("/api/policies"), p.id);
        } catch (error) {
          toggle.disabled = false;
          problem.textContent = error instanceof ApiError ? `${error.problem.title}: ${error.problem.detail}` : String(error);
        }
      } }, p.disabled ? "Enable" : "Disable");
      return h("tr", { "data-policy": p.id },
        h("td", {}, h("a", { href: `/${slug()}/policies/${p.id}` }, pairName(p)), p.description ? h("div.muted", {}, p.description) : null),
        h("td", {}, conditionsSummary(p.conditions, providerById)),
        h("td", {}, h("span", { class: `badge ${p.disabled ? "offline" : "online"}`, "data-testid": "policy-state" }, p.disabled ? "disabled" : "enabled")),
        h("td", {}, toggle));
    });
    section.replaceChildren(h("table", { "aria-label": "Policies" },
      h("thead", {}, h("tr", {}, ...["Group → resource", "Conditions", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
    if (focusId !== undefined) section.querySelector(`[data-policy-toggle="${CSS.escape(focusId)}"]`)?.focus();
  };
  draw(policies);

  const notices = flash.length === 0 ? [] : [h("div.notice", { role: "status" }, "Saved. ", flash.map((n) => n.message).join("; "))];
  flash = [];
  render("Policies",
    h("h1", {}, "Policies"),
    h("p.muted", {}, "A policy grants a group one resource, when all its conditions hold. Without a policy nobody reaches a resource."),
    ...notices,
    problem,
    section,
    h("p", {}, h("a", { href: `/${slug()}/policies/new` }, "New policy")),
    checkPanel(actors, resources, providers, groupById, resourceById, providerById, policies));
}

// --- 3. Check access ---

function checkPanel(actors, resources, providers, groupById, resourceById, providerById, policies) {
  const people = actors.filter((a) => a.disabled_at === null);
  const deviceSelect = control("Device", "device_id", "select", {}, h("option", { value: "" }, "No device (not verified)"));
  const devices = deviceSelect.querySelector("select");
  const loadDevices = async (actorId) => {
    const list = actorId ? await listAll(`/api/devices?kind=client&actor_id=${encodeURIComponent(actorId)}`) : [];
    devices.replaceChildren(h("option", { value: "" }, "No device (not verified)"),
      ...list.map((d) => h("option", { value: d.id }, `${d.name}${d.verified_at ? " (verified)" : ""}`)));
  };
  const userSelect = control("User", "actor_id", "select", { required: true, onchange: (e) => void loadDevices(e.target.value).catch(() => undefined) },
    h("option", { value: "" }, "Choose a user"), options(people, undefined, (a) => `${a.name}${a.email ? ` (${a.email})` : ""}`));
  const policyOf = new Map(policies.map((p) => [p.id, p]));
  const result = h("div", { "data-testid": "check-result", role: "status", "aria-live": "polite" });
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  const localNow = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}`;

  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "Check access" },
      h("h2", {}, "Check access"),
      h("p.muted", {}, "What the policy engine answers when this user's device asks for the resource at that moment."),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, userSelect, deviceSelect, control("Resource", "resource_id", "select", { required: true },
        h("option", { value: "" }, "Choose a resource"), options(resources, undefined, (r) => r.name))),
      h("div.row", {},
        field("Date and time", "at", { type: "datetime-local", required: true, value: localNow }),
        field("Time zone", "time_zone", { required: true, list: "time-zones", value: browserZone(), autocomplete: "off" })),
      h("div.row", {},
        field("Client IP", "client_ip", { placeholder: "optional, e.g. 203.0.113.7", autocomplete: "off" }),
        field("Region", "region", { placeholder: "optional, e.g. DE", maxlength: 2, autocomplete: "off" }),
        control("Signed in through", "auth_provider_id", "select", {}, h("option", { value: "" }, "No auth provider (password or email code)"), options(providers, undefined, (p) => p.name))),
      h("div.row", {}, h("button", { type: "submit" }, "Check access")),
      result),
    async (data) => {
      result.replaceChildren();
      const zone = String(data.get("time_zone") ?? "").trim();
      const at = wallTimeToInstant(String(data.get("at") ?? ""), zone);
      const text = (name) => String(data.get(name) ?? "").trim();
      const body = { actor_id: text("actor_id") || undefined, resource_id: text("resource_id") || undefined, at: at.toISOString() };
      for (const name of ["device_id", "client_ip", "region", "auth_provider_id"]) if (text(name) !== "") body[name] = text(name);
      const answer = await api("POST", "/api/policies/check", body);
      result.replaceChildren(...describeAnswer(answer, zone, (id) => policyOf.get(id), groupById, resourceById, providerById));
      result.scrollIntoView({ block: "nearest" });
    },
  );
  return h("div", {}, zoneList(), form);
}

function describeAnswer(answer, zone, policyOf, groupById, resourceById, providerById) {
  if (answer.allowed) {
    const until = answer.until === null ? "no time limit" : `until ${new Date(answer.until).toLocaleString(undefined, { timeZone: zone, year: "numeric", month: "short", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" })}`;
    const p = policyOf(answer.policy_id);
    return [h("p.notice", { "data-testid": "check-allowed" }, h("strong", {}, `Allowed ${until}`),
      p ? ` through the policy ${groupById.get(p.group_id)?.name ?? p.group_id} → ${resourceById.get(p.resource_id)?.name ?? p.resource_id}.` : ".")];
  }
  if (answer.reason === "no_policy") {
    return [h("div.problem", { "data-testid": "check-denied" }, h("strong", {}, "Denied: "), "no enabled policy grants this resource to any of the user's groups (no_policy).")];
  }
  return [h("div.problem", { "data-testid": "check-denied" },
    h("strong", {}, `Denied (${answer.reason}): `), "these conditions did not hold.",
    answer.violated.map((v) => {
      const p = policyOf(v.policy_id);
      const name = p ? `${groupById.get(p.group_id)?.name ?? p.group_id} → ${resourceById.get(p.resource_id)?.name ?? p.resource_id}` : v.policy_id;
      return h("div", {}, h("div", {}, h("a", { href: `/${slug()}/policies/${v.policy_id}` }, name)),
        h("ul", {}, v.conditions.map((c) => h("li", { "data-property": c.property },
          `${PROPERTY_LABELS[c.property] ?? c.property} (${c.property}): ${describeCondition(c, providerById)}`))));
    }))];
}

/** Offset of `zone` from UTC at `ms`, in milliseconds (Intl has no direct way to ask). */
function zoneOffsetMs(zone, ms) {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((p) => p.type === type)?.value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - Math.floor(ms / 1000) * 1000;
}

/** The instant a wall clock in `zone` shows `local` ("2026-12-07T10:30"); a field error when either is unreadable. */
function wallTimeToInstant(local, zone) {
  const invalid = (fieldName, message) => new ApiError(422, { title: "Invalid request", detail: message, errors: [{ field: fieldName, code: `${fieldName}.invalid`, message }] });
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?$/.exec(local);
  if (m === null) throw invalid("at", "pick a date and a time");
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
  } catch {
    throw invalid("time_zone", `${JSON.stringify(zone)} is not an IANA time zone, like Europe/Berlin or UTC`);
  }
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  // Twice: the offset at the first guess may differ from the offset at the answer across a DST change.
  let t = wall - zoneOffsetMs(zone, wall);
  t = wall - zoneOffsetMs(zone, t);
  return new Date(t);
}

// --- 2. The editor ---

async function editorPage(id) {
  const [policy, groups, resources, providers] = await Promise.all([
    id === undefined ? Promise.resolve(undefined) : api("GET", `/api/policies/${encodeURIComponent(id)}`),
    listAll("/api/groups"), listAll("/api/resources"), listAll("/api/auth_providers"),
  ]);
  const conditions = new Map((policy?.conditions ?? []).map((c) => [c.property, c]));
  const title = policy === undefined ? "New policy" : "Edit policy";

  const mode = (name, label, property, choices) => {
    const current = conditions.get(property)?.operator ?? "";
    return control(label, name, "select", {}, choices.map(([value, text]) => h("option", { value, selected: value === current }, text)));
  };
  const ipMode = mode("remote_ip_mode", "Client IP", "remote_ip", [["", "Any address"], ["is_in_cidr", "Only from these networks"], ["is_not_in_cidr", "Not from these networks"]]);
  const ipValues = control("Networks (CIDRs, one per line or comma-separated)", "remote_ip_values", "textarea", { rows: 3, placeholder: "10.0.0.0/8\n2001:db8::/32" },
    (conditions.get("remote_ip")?.values ?? []).join("\n"));
  const regionMode = mode("region_mode", "Region", "remote_ip_location_region", [["", "Any region"], ["is_in", "Only from these regions"], ["is_not_in", "Not from these regions"]]);
  const regionValues = field("Regions (ISO 3166-1 codes, comma-separated)", "region_values", { placeholder: "DE, FR", value: (conditions.get("remote_ip_location_region")?.values ?? []).join(", ") });
  const providerMode = mode("provider_mode", "Auth provider", "provider_id", [["", "Any way of signing in"], ["is_in", "Only through these providers"], ["is_not_in", "Not through these providers"]]);
  const chosenProviders = new Set(conditions.get("provider_id")?.values ?? []);
  const providerChoices = providers.length === 0 ? h("p.muted", {}, "No auth providers are configured in this account.") :
    h("div.row", { role: "group", "aria-label": "Providers" }, providers.map((p) => checkbox(p.name, "provider_values", { value: p.id, checked: chosenProviders.has(p.id) })));
  const verified = conditions.get("client_verified")?.values[0] ?? "";
  const verifiedSelect = control("Verified client", "client_verified", "select", {},
    [["", "Any device"], ["true", "Only verified devices"], ["false", "Only unverified devices"]].map(([value, text]) => h("option", { value, selected: value === verified }, text)));

  // Time windows: one row per (range, zone) with the days it applies to; stored values are one per day.
  const windows = h("div", { "data-testid": "time-windows" });
  let rowCount = 0;
  const addWindow = (days = new Set(), from = "09:00", to = "17:00", allDay = false, zone = browserZone()) => {
    const r = rowCount++;
    const row = h("fieldset.card", { "data-window": r },
      h("legend", {}, "Time window"),
      h("div.row", { role: "group", "aria-label": "Days" }, DAYS.map(([letter, name]) => checkbox(name, `window_${r}_day`, { value: letter, checked: days.has(letter) }))),
      h("div.row", {},
        field("From", `window_${r}_from`, { value: from, placeholder: "09:00", inputmode: "numeric", autocomplete: "off" }),
        field("To", `window_${r}_to`, { value: to, placeholder: "17:00 (24:00 for midnight)", inputmode: "numeric", autocomplete: "off" }),
        field("Time zone", `window_${r}_zone`, { value: zone, list: "time-zones", autocomplete: "off" })),
      h("div.row", {}, checkbox("All day", `window_${r}_all_day`, { checked: allDay }),
        h("button.secondary", { type: "button", onclick: () => row.remove() }, "Remove this window")));
    windows.append(row);
    return row;
  };
  const grouped = new Map();
  for (const value of conditions.get("current_utc_datetime")?.values ?? []) {
    const [day, ranges, zone] = splitWindow(value);
    for (const range of ranges === "true" ? ["true"] : ranges.split(",")) {
      const key = `${range}/${zone}`;
      if (!grouped.has(key)) grouped.set(key, { range, zone, days: new Set() });
      grouped.get(key).days.add(day);
    }
  }
  for (const w of grouped.values()) {
    const [from, to] = w.range === "true" ? ["09:00", "17:00"] : w.range.split("-");
    addWindow(w.days, from, to, w.range === "true", w.zone);
  }

  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "Policy" },
      h("div.problem", { role: "alert" }),
      h("div.row", {},
        control("Group", "group_id", "select", { required: true }, h("option", { value: "" }, "Choose a group"), options(groups, policy?.group_id, (g) => g.name)),
        control("Resource", "resource_id", "select", { required: true }, h("option", { value: "" }, "Choose a resource"), options(resources, policy?.resource_id, (r) => r.name))),
      field("Description", "description", { maxlength: 1024, value: policy?.description ?? "", placeholder: "optional" }),
      h("div.field", {}, checkbox("Disabled: grants nothing until enabled again", "disabled", { checked: policy?.disabled === true })),
      h("h2", {}, "Conditions"),
      h("p.muted", {}, "All of them must hold. A condition needing what is not known (no client IP, no region, no provider) does not hold."),
      h("div.row", {}, ipMode, ipValues),
      h("div.row", {}, regionMode, regionValues),
      h("div.row", {}, providerMode, providerChoices),
      h("div.row", {}, verifiedSelect),
      h("h2", {}, "Time windows"),
      h("p.muted", {}, "With none, any time. Each window is from its start up to its end, on the wall clock of its zone; a night shift is two windows."),
      windows,
      h("p", {}, h("button.secondary", { type: "button", onclick: () => addWindow().querySelector("input")?.focus() }, "Add a time window")),
      h("div.row", {}, h("button", { type: "submit" }, policy === undefined ? "Create policy" : "Save policy"), h("a", { href: `/${slug()}/policies` }, "Cancel")),
      zoneList()),
    async (data) => {
      const { body, fieldOf } = readPolicyForm(form, data);
      try {
        const saved = policy === undefined ? await api("POST", "/api/policies", body) : await api("PATCH", `/api/policies/${encodeURIComponent(policy.id)}`, body);
        flash = saved.notices ?? [];
        go(`/${slug()}/policies`);
      } catch (error) {
        // Conditions are named by their index in what was sent; the inputs by what they edit.
        if (error instanceof ApiError) error.problem.errors = (error.problem.errors ?? []).map((e) => ({ ...e, field: fieldOf(e.field, e.code) }));
        throw error;
      }
    },
  );
  render(title,
    h("p", {}, h("a", { href: `/${slug()}/policies` }, "← Policies")),
    h("h1", {}, title),
    form);
}

/** The form as the API's body, and the input each of its conditions' error paths belongs to. */
function readPolicyForm(form, data) {
  const text = (name) => String(data.get(name) ?? "").trim();
  const list = (name) => text(name).split(/[\s,]+/).filter((v) => v !== "");
  const conditions = [];
  const targets = [];
  const add = (condition, target) => {
    conditions.push(condition);
    targets.push(target);
  };
  if (text("remote_ip_mode") !== "") add({ property: "remote_ip", operator: text("remote_ip_mode"), values: list("remote_ip_values") }, () => "remote_ip_values");
  if (text("region_mode") !== "") add({ property: "remote_ip_location_region", operator: text("region_mode"), values: list("region_values") }, () => "region_values");
  if (text("provider_mode") !== "") add({ property: "provider_id", operator: text("provider_mode"), values: data.getAll("provider_values").map(String) }, () => "provider_mode");
  const values = [];
  const rowOfValue = [];
  for (const row of form.querySelectorAll("[data-window]")) {
    const r = row.getAttribute("data-window");
    const days = data.getAll(`window_${r}_day`).map(String);
    const ranges = data.get(`window_${r}_all_day`) !== null ? "true" : `${text(`window_${r}_from`)}-${text(`window_${r}_to`)}`;
    // A window without a day still goes out, so the API says what is missing next to it.
    for (const day of days.length === 0 ? [""] : days) {
      values.push(`${day}/${ranges}/${text(`window_${r}_zone`)}`);
      rowOfValue.push(r);
    }
  }
  if (values.length > 0) {
    add({ property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values }, (rest, code) => {
      const r = rowOfValue[Number(/^values\/(\d+)/.exec(rest)?.[1] ?? 0)];
      return code === "time.zone" ? `window_${r}_zone` : code === "time.day" ? `window_${r}_from` : `window_${r}_to`;
    });
  }
  if (text("client_verified") !== "") add({ property: "client_verified", operator: "is", values: [text("client_verified")] }, () => "client_verified");
  const body = {
    group_id: text("group_id") || null,
    resource_id: text("resource_id") || null,
    description: text("description"),
    disabled: data.get("disabled") !== null,
    conditions,
  };
  const fieldOf = (path, code) => {
    const m = /^conditions\/(\d+)(?:\/(.*))?$/.exec(path);
    if (m === null) return path;
    const target = targets[Number(m[1])];
    return target === undefined ? path : target(m[2] ?? "", code);
  };
  return { body, fieldOf };
}
