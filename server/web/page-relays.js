// Relays: the account's relays (one per relay token) with online badges, the addresses each
// announced when it last joined and the load it reports (allocations, channels, throughput), kept
// current over the event stream; a relay token with the commands and systemd unit to run a relay
// with it; revoking a relay's token.

import { api, ApiError, copyBlock, field, formatTime, h, listAll, onPresence, onRelayLoad, onSubmit, render } from "./lib.js";

/** /<account>/relays. */
export async function show() {
  // Focusable from script: a table drawn again takes the control that acted with it (see draw).
  const section = h("section", { "aria-label": "Relays", tabindex: -1 });
  const draw = async () => {
    section.replaceChildren(...relaysTable(await listAll("/api/relays"), draw));
    if (document.activeElement === document.body) section.focus();
  };
  await draw();
  // Live: a relay joining may bring new addresses, so the table is fetched anew rather than patched.
  onPresence((change) => {
    if (change.kind === "relay") void draw().catch(() => undefined);
  });
  // A load report changes one cell: patched in place, so a half-done revoke keeps its state.
  onRelayLoad(({ relay_id, load }) => {
    const cell = section.querySelector(`tr[data-relay="${CSS.escape(relay_id)}"] [data-testid="relay-load"]`);
    cell?.replaceChildren(...loadText({ online: true, load }));
  });
  const deploy = h("div", { "data-testid": "deploy" });
  const form = onSubmit(
    h("form.card", { novalidate: true, "aria-label": "New relay token" },
      h("h2", {}, "Deploy a relay"),
      h("p.muted", {}, "A relay forwards traffic between clients and gateways that cannot reach each other directly (TURN, UDP port 3478 and a port range). Each relay token is one relay; it is shown once."),
      h("div.problem", { role: "alert" }),
      h("div.row", {}, field("Relay name", "name", { maxlength: 255, placeholder: "optional, e.g. relay-fra" }), h("button", { type: "submit" }, "Create relay token")),
      deploy),
    async (data) => {
      const name = String(data.get("name") ?? "").trim();
      const issued = await api("POST", "/api/relay_tokens", name === "" ? {} : { name });
      deploy.replaceChildren(...deployCommands(issued.token));
      await draw();
    },
  );
  render("Relays",
    h("h1", {}, "Relays"),
    h("p.muted", {}, "Clients and gateways get the two nearest online relays of the account, with credentials, and hear as relays come and go."),
    section,
    form);
}

function relaysTable(relays, redraw) {
  if (relays.length === 0) return [h("p.notice", {}, "No relays yet: create a relay token below and run a relay with it.")];
  const badge = (r) => {
    if (r.online === null) return h("span.badge.offline", {}, "unknown");
    return h(`span.badge.${r.online ? "online" : "offline"}`, { "data-testid": "relay-state" }, r.online ? "online" : "offline");
  };
  const rows = relays.map((r) => h("tr", { "data-relay": r.id },
    h("td", {}, r.name || h("span.muted", {}, "unnamed")),
    h("td", {}, badge(r)),
    h("td", { "data-testid": "relay-addresses" }, ...addresses(r)),
    h("td", { "data-testid": "relay-load" }, ...loadText(r)),
    h("td", {}, r.announced_at ? formatTime(r.announced_at) : "never"),
    h("td", {}, r.expires_at ? formatTime(r.expires_at) : "never"),
    h("td", {}, revokeButton(r, redraw))));
  return [h("table", {},
    h("thead", {}, h("tr", {}, ...["Relay", "State", "Addresses", "Load", "Last joined", "Token expires", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows))];
}

/** The addresses a relay announced, as devices dial them; a relay that never joined has none. */
function addresses(r) {
  if (r.port === null) return [h("span.muted", {}, "not joined yet")];
  const out = [];
  if (r.ipv4) out.push(`${r.ipv4}:${r.port}`);
  if (r.ipv6) out.push(`[${r.ipv6}]:${r.port}`);
  return out.flatMap((a, i) => (i === 0 ? [a] : [h("br"), a]));
}

/** What an online relay last reported carrying; an offline relay carries nothing. */
function loadText(r) {
  if (r.online !== true || r.load === null) return [h("span.muted", {}, r.online === true ? "not reported yet" : "—")];
  const { allocations, channels, bytes_per_second } = r.load;
  const plural = (n, one) => `${n} ${one}${n === 1 ? "" : "s"}`;
  return [`${plural(allocations, "allocation")}, ${plural(channels, "channel")}`, h("br"), h("span.muted", { title: `reported ${formatTime(r.load.reported_at)}` }, bitRate(bytes_per_second * 8))];
}

/** Bits a second, as people read them. */
function bitRate(bits) {
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
  let i = 0;
  while (bits >= 1000 && i < units.length - 1) {
    bits /= 1000;
    i++;
  }
  return `${i === 0 ? bits : bits.toFixed(bits < 10 ? 1 : 0)} ${units[i]}`;
}

/** Revoking takes a second click on the same button, so a slip of the mouse stops no relay. */
function revokeButton(relay, redraw) {
  const label = `relay ${relay.name || relay.id}`;
  const error = h("div.error", { role: "alert" });
  let armed = false;
  const button = h("button.secondary", { type: "button", "aria-label": `Revoke ${label}`, onclick: async () => {
    if (!armed) {
      armed = true;
      button.textContent = "Confirm revoke";
      button.setAttribute("aria-label", `Confirm revoking ${label}`);
      return;
    }
    button.disabled = true;
    try {
      await api("DELETE", `/api/tokens/${encodeURIComponent(relay.id)}`);
      await redraw();
    } catch (e) {
      button.disabled = false;
      error.textContent = e instanceof ApiError ? `${e.problem.title}: ${e.problem.detail}` : String(e);
    }
  } }, "Revoke");
  return h("div", {}, button, error);
}

/** The commands an admin pastes on the relay's host, each with a copy button. */
function deployCommands(token) {
  const portal = location.origin;
  const tokenPath = "/etc/wardline/relay.token";
  const run = `sudo wardline relay --portal-url ${portal} --token-file ${tokenPath}`;
  const tokenFile = `sudo install -d -m 700 /etc/wardline && printf '%s' '${token}' | sudo tee ${tokenPath} >/dev/null && sudo chmod 600 ${tokenPath}`;
  const unit = [
    "[Unit]",
    "Description=Wardline relay",
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    `ExecStart=/usr/local/bin/wardline relay --portal-url ${portal} --token-file ${tokenPath}`,
    "Restart=always",
    "RestartSec=2",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
  ].join("\n");
  return [
    h("p.notice", {}, "Copy the token now: it is not shown again. Behind NAT, add --public-ip4 with the address devices reach the relay at."),
    copyBlock("1. Save the token on the relay's host", tokenFile, "token-command"),
    copyBlock("2. Run the relay", run, "run-command"),
    copyBlock("Or keep it running with systemd: /etc/systemd/system/wardline-relay.service", unit, "systemd-unit"),
  ];
}
