// `wardline relay`: the TURN relay (RFC 8656 over UDP) with coturn-style shared-secret credentials,
// its status endpoints, and JSON logs on stderr.
//
// 1. Options from flags, else WARDLINE_RELAY_* environment variables, else defaults; every one
//    checked before anything is bound.
// 2. Start the relay (daemons/io/relay.ts) and the status server; log where they listen.
// 3. Run until SIGINT or SIGTERM.

import { isIPv4, isIPv6 } from "node:net";
import { networkInterfaces } from "node:os";
import { Relay } from "../daemons/io/relay.js";
import { metricFamily, serveStatus, type StatusServer } from "../daemons/io/status-http.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parseCommandLine } from "./args.js";

export interface RelayIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const RELAY_HELP = `Usage: wardline relay [options]

Runs a TURN relay (RFC 8656, UDP) for Wardline clients and gateways. Credentials are coturn's
shared-secret scheme (use-auth-secret): username "<expiry-unix-time>:<id>", password
base64(HMAC-SHA1(secret, username)); the relay keeps no per-user state. It refuses to relay to
loopback, link-local, multicast and (without --allow-private-peers) private addresses.

Options (each also read from the environment variable named beside it):
  --secret <text>            the shared secret (WARDLINE_RELAY_SECRET); required
  --realm <text>             the realm (WARDLINE_RELAY_REALM; default wardline)
  --port <n>                 listening UDP port (WARDLINE_RELAY_PORT; default 3478)
  --listen4 <addr|off>       IPv4 listening address (WARDLINE_RELAY_LISTEN4; default 0.0.0.0)
  --listen6 <addr|off>       IPv6 listening address (WARDLINE_RELAY_LISTEN6; default ::)
  --public-ip4 <addr>        IPv4 address relayed addresses are given as (WARDLINE_RELAY_PUBLIC_IP4;
                             default: the listening address, or this host's first non-loopback one)
  --public-ip6 <addr>        likewise for IPv6 (WARDLINE_RELAY_PUBLIC_IP6)
  --ports <low-high>         relay port range (WARDLINE_RELAY_PORTS; default 49152-65535)
  --allow-private-peers      relay to private addresses too (WARDLINE_RELAY_ALLOW_PRIVATE_PEERS=1, true or yes)
  --max-allocations <n>      allocations per username (WARDLINE_RELAY_MAX_ALLOCATIONS; default 10)
  --http <addr:port|off>     /healthz, /readyz and Prometheus /metrics (WARDLINE_RELAY_HTTP;
                             default 127.0.0.1:9478)
  -h, --help                 show this help

Logs are JSON lines on stderr. Stop it with SIGINT or SIGTERM.
`;

/** The options after flags, environment and defaults. */
export interface RelayConfig {
  secret: string;
  realm: string;
  port: number;
  listen: { 4?: string; 6?: string };
  publicAddress: { 4?: string; 6?: string };
  ports: [number, number];
  allowPrivatePeers: boolean;
  maxAllocationsPerUser: number;
  http: { host: string; port: number } | undefined;
}


function port(text: string, what: string, min = 0): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || Number(text) < min) throw new Error(`${what} must be a port (${min}-65535), got '${text}'`);
  return Number(text);
}

function firstAddress(family: 4 | 6): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.internal || info.family !== (family === 4 ? "IPv4" : "IPv6")) continue;
      if (family === 6 && info.address.toLowerCase().startsWith("fe80")) continue;
      return info.address;
    }
  }
  return undefined;
}

/**
 * Resolves flags and environment into a RelayConfig; throws an Error naming the bad option as the
 * user gave it: the flag, or the environment variable it came from.
 */
export function relayConfig(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): RelayConfig {
  /** The option's text and what to call it in an error; undefined when neither flag nor variable is set. */
  const get = (flag: string, variable: string): [string, string] | undefined => {
    const v = values[flag];
    if (typeof v === "string") return [v, `--${flag}`];
    const e = env[variable];
    return e === undefined ? undefined : [e, variable];
  };
  const [secret] = get("secret", "WARDLINE_RELAY_SECRET") ?? [""];
  if (secret === "") throw new Error("a shared secret is required: --secret or WARDLINE_RELAY_SECRET");
  const [realm, realmName] = get("realm", "WARDLINE_RELAY_REALM") ?? ["wardline", "--realm"];
  if (realm === "" || new TextEncoder().encode(realm).length > 763) throw new Error(`${realmName} must be 1 to 763 bytes`);
  const [portText, portName] = get("port", "WARDLINE_RELAY_PORT") ?? ["3478", "--port"];
  const listenPort = port(portText, portName);
  const listen: RelayConfig["listen"] = {};
  const [l4, l4Name] = get("listen4", "WARDLINE_RELAY_LISTEN4") ?? ["0.0.0.0", "--listen4"];
  const [l6, l6Name] = get("listen6", "WARDLINE_RELAY_LISTEN6") ?? ["::", "--listen6"];
  if (l4 !== "off") {
    if (!isIPv4(l4)) throw new Error(`${l4Name} must be an IPv4 address or off, got '${l4}'`);
    listen[4] = l4;
  }
  if (l6 !== "off") {
    if (!isIPv6(l6)) throw new Error(`${l6Name} must be an IPv6 address or off, got '${l6}'`);
    listen[6] = l6;
  }
  if (listen[4] === undefined && listen[6] === undefined) throw new Error(`${l4Name} and ${l6Name} are both off: nothing to serve`);
  const publicAddress: RelayConfig["publicAddress"] = {};
  const [p4, p4Name] = get("public-ip4", "WARDLINE_RELAY_PUBLIC_IP4") ?? [listen[4] !== undefined && listen[4] !== "0.0.0.0" ? listen[4] : firstAddress(4), "--public-ip4"];
  const [p6, p6Name] = get("public-ip6", "WARDLINE_RELAY_PUBLIC_IP6") ?? [listen[6] !== undefined && listen[6] !== "::" ? listen[6] : firstAddress(6), "--public-ip6"];
  if (p4 !== undefined) {
    if (!isIPv4(p4)) throw new Error(`${p4Name} must be an IPv4 address, got '${p4}'`);
    publicAddress[4] = p4;
  }
  if (p6 !== undefined) {
    if (!isIPv6(p6)) throw new Error(`${p6Name} must be an IPv6 address, got '${p6}'`);
    publicAddress[6] = p6;
  }
  const [range, rangeName] = get("ports", "WARDLINE_RELAY_PORTS") ?? ["49152-65535", "--ports"];
  const m = /^(\d+)-(\d+)$/.exec(range);
  if (m === null) throw new Error(`${rangeName} must be low-high, got '${range}'`);
  const ports: [number, number] = [port(m[1]!, `${rangeName} low`, 1), port(m[2]!, `${rangeName} high`, 1)];
  if (ports[0] > ports[1]) throw new Error(`${rangeName}: ${ports[0]} is above ${ports[1]}`);
  const allowText = env.WARDLINE_RELAY_ALLOW_PRIVATE_PEERS;
  if (allowText !== undefined && !/^(1|0|true|false|yes|no|)$/i.test(allowText)) {
    throw new Error(`WARDLINE_RELAY_ALLOW_PRIVATE_PEERS must be 1/true/yes or 0/false/no, got '${allowText}'`);
  }
  const allow = values["allow-private-peers"] === true || /^(1|true|yes)$/i.test(allowText ?? "");
  const [maxText, maxName] = get("max-allocations", "WARDLINE_RELAY_MAX_ALLOCATIONS") ?? ["10", "--max-allocations"];
  if (!/^\d{1,6}$/.test(maxText) || Number(maxText) < 1) throw new Error(`${maxName} must be a positive number, got '${maxText}'`);
  const [httpText, httpName] = get("http", "WARDLINE_RELAY_HTTP") ?? ["127.0.0.1:9478", "--http"];
  let http: RelayConfig["http"];
  if (httpText !== "off") {
    const colon = httpText.lastIndexOf(":");
    const host = colon <= 0 ? "" : httpText.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    if (!isIPv4(host) && !isIPv6(host)) throw new Error(`${httpName} must be addr:port (or [v6]:port) or off, got '${httpText}'`);
    http = { host, port: port(httpText.slice(colon + 1), `${httpName} port`) };
  }
  return { secret, realm, port: listenPort, listen, publicAddress, ports, allowPrivatePeers: allow, maxAllocationsPerUser: Number(maxText), http };
}

/** The Prometheus exposition of a relay's state. */
export function relayMetrics(relay: Relay): string {
  const s = relay.server.stats;
  const c = relay.counters;
  const dropped = { ...c.dropped };
  for (const [reason, n] of Object.entries(s.dropped)) dropped[`server-${reason}`] = n;
  return [
    metricFamily("wardline_relay_allocations", "gauge", "Allocations now.", [{ value: s.allocations }]),
    metricFamily("wardline_relay_channels", "gauge", "Channel bindings now.", [{ value: s.channels }]),
    metricFamily("wardline_relay_permissions", "gauge", "Permissions now.", [{ value: s.permissions }]),
    metricFamily("wardline_relay_requests_total", "counter", "STUN requests handled.", [{ value: s.requests }]),
    metricFamily("wardline_relay_packets_total", "counter", "Packets relayed, by direction.", [
      { labels: { direction: "client_to_peer" }, value: c.clientToPeerPackets },
      { labels: { direction: "peer_to_client" }, value: c.peerToClientPackets },
    ]),
    metricFamily("wardline_relay_bytes_total", "counter", "Payload bytes relayed, by direction.", [
      { labels: { direction: "client_to_peer" }, value: c.clientToPeerBytes },
      { labels: { direction: "peer_to_client" }, value: c.peerToClientBytes },
    ]),
    metricFamily("wardline_relay_dropped_total", "counter", "Packets dropped, by reason.", Object.entries(dropped).map(([reason, value]) => ({ labels: { reason }, value }))),
  ].join("");
}

export async function relayCommand(argv: readonly string[], io: RelayIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCommandLine(argv, {
    secret: { type: "string" },
    realm: { type: "string" },
    port: { type: "string" },
    listen4: { type: "string" },
    listen6: { type: "string" },
    "public-ip4": { type: "string" },
    "public-ip6": { type: "string" },
    ports: { type: "string" },
    "allow-private-peers": { type: "boolean" },
    "max-allocations": { type: "string" },
    http: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  });
  if ("error" in parsed) {
    io.stderr(`wardline relay: ${parsed.error}\n\n${RELAY_HELP}`);
    return EXIT_USAGE;
  }
  if (parsed.values.help) {
    io.stdout(RELAY_HELP);
    return EXIT_OK;
  }
  if (parsed.positionals.length > 0) {
    io.stderr(`wardline relay: unexpected argument '${parsed.positionals[0]}'\n\n${RELAY_HELP}`);
    return EXIT_USAGE;
  }
  let config: RelayConfig;
  try {
    config = relayConfig(parsed.values, env);
  } catch (error) {
    io.stderr(`wardline relay: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  const log = (level: string, msg: string, fields: Record<string, unknown> = {}): void =>
    io.stderr(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);

  let relay: Relay;
  let status: StatusServer | undefined;
  try {
    relay = Relay.start({
      listen: config.listen,
      port: config.port,
      publicAddress: config.publicAddress,
      ports: config.ports,
      realm: config.realm,
      secrets: [config.secret],
      allowPrivatePeers: config.allowPrivatePeers,
      maxAllocationsPerUser: config.maxAllocationsPerUser,
      log,
    });
  } catch (error) {
    log("error", "cannot start", { error: (error as Error).message });
    return EXIT_FAILURE;
  }
  try {
    if (config.http !== undefined) status = await serveStatus(config.http.host, config.http.port, { ready: () => true, metrics: () => relayMetrics(relay) });
  } catch (error) {
    relay.close();
    log("error", "cannot serve the status endpoints", { error: (error as Error).message, http: config.http });
    return EXIT_FAILURE;
  }
  log("info", "relaying", {
    listen: Object.fromEntries(Object.entries(config.listen).map(([f, a]) => [f, `${a}:${relay.port(Number(f) as 4 | 6)}`])),
    public: config.publicAddress,
    ports: `${config.ports[0]}-${config.ports[1]}`,
    realm: config.realm,
    http: status === undefined ? "off" : `${config.http!.host}:${status.port}`,
  });
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log("info", "shutting down", { signal });
      relay.close();
      void (status?.close() ?? Promise.resolve()).then(() => resolve(EXIT_OK));
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
