// Sites: the list and a new site; a site's gateways (live: online badges follow the event stream)
// and a gateway token with the commands and systemd unit to deploy one.

import { api, copyBlock, field, formatTime, go, h, listAll, onPresence, onSubmit, render, session } from "./lib.js";

/** /<account>/sites and /<account>/sites/<id>. */
export function show(id) {
  return id === undefined ? sitesPage() : sitePage(id);
}

async function sitesPage() {
  const slug = encodeURIComponent(session.me.account.slug);
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
  const slug = encodeURIComponent(session.me.account.slug);
  const site = await api("GET", `/api/sites/${encodeURIComponent(id)}`);
  const section = h("section", { "aria-label": "Gateways" });
  const drawGateways = async () => section.replaceChildren(...gatewaysTable(await listAll(`/api/devices?kind=gateway&site_id=${encodeURIComponent(id)}`)));
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
  return [
    h("p.notice", {}, "Copy the token now: it is not shown again."),
    copyBlock("1. Save the token on the gateway's host", tokenFile, "token-command"),
    copyBlock("2. Run the gateway", run, "run-command"),
    copyBlock("Or keep it running with systemd: /etc/systemd/system/wardline-gateway.service", unit, "systemd-unit"),
  ];
}

