// Client devices: every client of the account with its owner, version, tunnel address and when it was
// last seen, verified or not, with verify and unverify (policies may require a verified device).
//
// Whether a client is online now comes with each device (/api/devices, from presence); the table is
// read again when the event stream announces a client joining or leaving.

import { api, formatTime, h, listAll, onPresence, onSubmit, render, session } from "./lib.js";

const slug = () => encodeURIComponent(session.me.account.slug);

/** /<account>/clients; an id shows that one device. */
export function show(id) {
  return id === undefined ? clientsPage() : clientPage(id);
}

async function clientsPage() {
  const section = h("section", { "aria-label": "Client devices" });
  const draw = async () => {
    const [devices, actors] = await Promise.all([listAll("/api/devices?kind=client"), listAll("/api/actors")]);
    section.replaceChildren(clientsTable(devices, new Map(actors.map((a) => [a.id, a])), draw));
  };
  await draw();
  onPresence((change) => {
    if (change.kind === "client") void draw().catch(() => undefined);
  });
  render("Clients",
    h("h1", {}, "Clients"),
    h("p.muted", {}, "Devices people and service accounts connect with. A policy may require a verified device: verify one once you know it is the owner's."),
    section);
}

async function clientPage(id) {
  const device = await api("GET", `/api/devices/${encodeURIComponent(id)}`);
  const owner = device.actor_id ? await api("GET", `/api/actors/${encodeURIComponent(device.actor_id)}`).catch(() => null) : null;
  const again = () => clientPage(id);
  render(device.name,
    h("p", {}, h("a", { href: `/${slug()}/clients` }, "← Clients")),
    h("h1", {}, device.name),
    clientsTable([device], new Map(owner ? [[owner.id, owner]] : []), again),
    h("p.muted", {}, `Public key ${device.public_key}`));
}

function clientsTable(devices, owners, again) {
  if (devices.length === 0) return h("p.notice", {}, "No client device has registered yet.");
  const rows = devices.map((d) => {
    const owner = owners.get(d.actor_id);
    const verified = d.verified_at !== null;
    return h("tr", { "data-device": d.id },
      h("td", {}, h("a", { href: `/${slug()}/clients/${d.id}` }, d.name)),
      h("td", {}, d.online === null ? h("span.badge.offline", {}, "unknown") :
        h(`span.badge.${d.online ? "online" : "offline"}`, { "data-testid": "client-state" }, d.online ? "online" : "offline")),
      h("td", {}, owner ? h("a", { href: `/${slug()}/actors/${owner.id}` }, owner.name) : h("span.muted", {}, "unknown")),
      h("td", {}, d.version ?? "unknown"),
      h("td", {}, d.ipv4, h("br"), h("span.muted", {}, d.ipv6)),
      h("td", {}, formatTime(d.last_seen_at)),
      h("td", {}, verified ? h("span.badge.online", { "data-testid": "verified", title: d.verified_at }, "verified") : h("span.badge.offline", { "data-testid": "verified" }, "unverified")),
      h("td", {}, onSubmit(
        h("form", { novalidate: true, "aria-label": `${verified ? "Unverify" : "Verify"} ${d.name}` },
          h("div.problem", { role: "alert" }),
          h(verified ? "button.secondary" : "button", { type: "submit" }, verified ? "Unverify" : "Verify")),
        async () => {
          await api("POST", `/api/devices/${encodeURIComponent(d.id)}/${verified ? "unverify" : "verify"}`);
          await again();
        })));
  });
  return h("table", { "aria-label": "Client devices" },
    h("thead", {}, h("tr", {}, ...["Device", "State", "Owner", "Version", "Tunnel address", "Last seen", "Verified", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}
