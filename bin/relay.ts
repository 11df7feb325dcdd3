// `wardline relay`: the TURN relay (RFC 8656 over UDP) with coturn-style shared-secret credentials,
// its status endpoints, and JSON logs on stderr. Standalone, it checks credentials under --secret;
// registered with a portal, under the TURN secret derived from its relay token, which the portal
// derives too when it hands devices credentials for this relay.
//
// 1. Options from flags, else WARDLINE_RELAY_* environment variables, else defaults; every one
//    checked before anything is bound, the token (read from its file if it is in one) included.
// 2. Start the relay (daemons/io/relay.ts) and the status server; log where they listen.
// 3. With a portal: join its relay channel, announcing the public addresses and the listening port;
//    the socket reconnects by itself, and /readyz says ready only while joined. Once joined, it
//    reports its load (allocations, channel bindings, bytes a second) as it changes.
// 4. Run until SIGINT or SIGTERM (exit 0), or until the portal refuses the token (exit 1).
//
// startRelay is steps 2 and 3 alone, for a caller that runs the relay in its own process (`wardline up`).

import { isIPv4, isIPv6 } from "node:net";
import { performance } from "node:perf_hooks";
import { networkInterfaces } from "node:os";
import { readTokenFile } from "../daemons/io/device-state.js";
import { PortalSocket, type PortalSocketEvent } from "../daemons/io/portal-socket.js";
import type { Log } from "../daemons/io/log.js";
import { Relay } from "../daemons/io/relay.js";
import { LOAD_CHECK_MS, RelayLoadReports } from "../daemons/io/relay-load.js";
import { metricFamily, serveStatus, type StatusServer } from "../daemons/io/status-http.js";
import { relayTurnSecretFromTokenSecret } from "../daemons/proto/portal/relay-credentials.js";
import type { RelayJoin } from "../daemons/proto/portal/schema.js";
import { parsePortalToken, type PortalToken } from "../daemons/proto/portal/token.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parseCommandLine, parseListenAddress, parsePort } from "./args.js";

export interface RelayIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Stops the relay as SIGTERM does: for callers that run it in process. */
  signal?: AbortSignal;
}

export const RELAY_HELP = `Usage: wardline relay [options]

Runs a TURN relay (RFC 8656, UDP) for Wardline clients and gateways. Credentials are coturn's
shared-secret scheme (use-auth-secret): username "<expiry-unix-time>:<id>", password
base64(HMAC-SHA1(secret, username)); the relay keeps no per-user state. It refuses to relay to
loopback, link-local, multicast and (without --allow-private-peers) private addresses.

Registered with a portal (--portal-url and a relay token from POST /api/relay_tokens), it joins the
portal's relay channel and announces its public addresses and port; the portal then hands clients
and gateways credentials for it. It reports its load (allocations, channels, bytes a second) to the
portal, which shows it to admins. The shared secret derives from the token, so --secret is refused
alongside one. It is ready (/readyz) only while joined, reconnects by itself, and exits with status
1 when the portal refuses the token (revoked, expired or unknown). Without --portal-url it runs
standalone with --secret.

Options (each also read from the environment variable named beside it):
  --secret <text>            the shared secret of a standalone relay (WARDLINE_RELAY_SECRET)
  --portal-url <url>         the portal to register with, http(s)://host[:port]
                             (WARDLINE_RELAY_PORTAL_URL)
  --token <token>            the relay token (WARDLINE_RELAY_TOKEN); it shows in the process list,
                             so prefer --token-file
  --token-file <path>        a file holding the relay token, readable by its owner only
                             (WARDLINE_RELAY_TOKEN_FILE)
  --realm <text>             the realm (WARDLINE_RELAY_REALM; default wardline)
  --port <n>                 listening UDP port (WARDLINE_RELAY_PORT; default 3478)
  --listen4 <addr|off>       IPv4 listening address (WARDLINE_RELAY_LISTEN4; default 0.0.0.0)
  --listen6 <addr|off>       IPv6 listening address (WARDLINE_RELAY_LISTEN6; default ::)
  --public-ip4 <addr>        IPv4 address relayed addresses are given as, and announced to the portal
                             (WARDLINE_RELAY_PUBLIC_IP4; default: the listening address, or this
                             host's first non-loopback one)
  --public-ip6 <addr>        likewise for IPv6 (WARDLINE_RELAY_PUBLIC_IP6)
  --ports <low-high>         relay port range (WARDLINE_RELAY_PORTS; default 49152-65535)
  --allow-private-peers      relay to private addresses too (WARDLINE_RELAY_ALLOW_PRIVATE_PEERS=1, true or yes)
  --max-allocations <n>      allocations per username (WARDLINE_RELAY_MAX_ALLOCATIONS; default 10)
  --http <addr:port|off>     /healthz, /readyz and Prometheus /metrics (WARDLINE_RELAY_HTTP;
                             default 127.0.0.1:9478)
  -h, --help                 show this help

Logs are JSON lines on stderr. Stop it with SIGINT or SIGTERM.
`;

/** Where a registered relay's portal is, and its token or the file holding it (read at start). */
export interface RelayPortalConfig {
  url: string;
  /** `option` is what errors name: the flag or the environment variable the token came from. */
  token: { text: string; option: string } | { file: string; option: string };
}

/** The options after flags, environment and defaults. */
export interface RelayConfig {
  /** The shared secret of a standalone relay; undefined with a portal, where the token's secret serves. */
  secret: string | undefined;
  /** The portal to register with; undefined for a standalone relay. */
  portal: RelayPortalConfig | undefined;
  realm: string;
  port: number;
  listen: { 4?: string; 6?: string };
  publicAddress: { 4?: string; 6?: string };
  ports: [number, number];
  allowPrivatePeers: boolean;
  maxAllocationsPerUser: number;
  http: { host: string; port: number } | undefined;
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

/** The relay token in `text`, or an Error naming `option` that says what is wrong (never the token itself). */
function relayToken(text: string, option: string): PortalToken {
  const token = parsePortalToken(text);
  if (token === undefined) throw new Error(`${option} does not hold a Wardline token (wlr_<id>.<secret>)`);
  if (token.kind !== "relay") throw new Error(`${option} holds a ${token.kind} token, not a relay token: issue one with POST /api/relay_tokens`);
  return token;
}

/** The portal's base URL from `text`, or an Error naming `option`. */
function portalUrl(text: string, option: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  // The socket's path is appended to it: a query or fragment would swallow the path.
  if (url === undefined || !/^https?:$/.test(url.protocol) || url.hostname === "" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new Error(`${option} must be the portal's http or https URL without query, fragment or credentials, got '${text.includes("@") ? "<hidden>" : text}'`);
  }
  return text;
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
  const secretOption = get("secret", "WARDLINE_RELAY_SECRET");
  const urlOption = get("portal-url", "WARDLINE_RELAY_PORTAL_URL");
  const tokenOption = get("token", "WARDLINE_RELAY_TOKEN");
  const fileOption = get("token-file", "WARDLINE_RELAY_TOKEN_FILE");
  if (tokenOption !== undefined && fileOption !== undefined) throw new Error(`${tokenOption[1]} and ${fileOption[1]} both give the token: use one`);
  let secret: string | undefined;
  let portal: RelayPortalConfig | undefined;
  if (urlOption === undefined) {
    const given = tokenOption ?? fileOption;
    if (given !== undefined) throw new Error(`${given[1]} needs the portal to register with: --portal-url or WARDLINE_RELAY_PORTAL_URL`);
    secret = secretOption?.[0] ?? "";
    if (secret === "") throw new Error("a shared secret is required: --secret or WARDLINE_RELAY_SECRET (or register with a portal: --portal-url and --token-file)");
  } else {
    const url = portalUrl(...urlOption);
    if (tokenOption === undefined && fileOption === undefined) {
      throw new Error(`${urlOption[1]} needs the relay token: --token-file, --token, WARDLINE_RELAY_TOKEN_FILE or WARDLINE_RELAY_TOKEN`);
    }
    // One secret, so that revoking the token is enough to stop every credential this relay accepts.
    if (secretOption !== undefined) throw new Error(`${secretOption[1]} is for a standalone relay: with ${urlOption[1]} the shared secret derives from the relay token`);
    if (tokenOption !== undefined) {
      relayToken(...tokenOption);
      portal = { url, token: { text: tokenOption[0], option: tokenOption[1] } };
    } else {
      if (fileOption![0] === "") throw new Error(`${fileOption![1]} must be a file's path, got ''`);
      portal = { url, token: { file: fileOption![0], option: fileOption![1] } };
    }
  }
  const [realm, realmName] = get("realm", "WARDLINE_RELAY_REALM") ?? ["wardline", "--realm"];
  if (realm === "" || new TextEncoder().encode(realm).length > 763) throw new Error(`${realmName} must be 1 to 763 bytes`);
  const [portText, portName] = get("port", "WARDLINE_RELAY_PORT") ?? ["3478", "--port"];
  const listenPort = parsePort(portText, portName);
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
  const ports: [number, number] = [parsePort(m[1]!, `${rangeName} low`, 1), parsePort(m[2]!, `${rangeName} high`, 1)];
  if (ports[0] > ports[1]) throw new Error(`${rangeName}: ${ports[0]} is above ${ports[1]}`);
  const allowText = env.WARDLINE_RELAY_ALLOW_PRIVATE_PEERS;
  if (allowText !== undefined && !/^(1|0|true|false|yes|no|)$/i.test(allowText)) {
    throw new Error(`WARDLINE_RELAY_ALLOW_PRIVATE_PEERS must be 1/true/yes or 0/false/no, got '${allowText}'`);
  }
  const allow = values["allow-private-peers"] === true || /^(1|true|yes)$/i.test(allowText ?? "");
  const [maxText, maxName] = get("max-allocations", "WARDLINE_RELAY_MAX_ALLOCATIONS") ?? ["10", "--max-allocations"];
  if (!/^\d{1,6}$/.test(maxText) || Number(maxText) < 1) throw new Error(`${maxName} must be a positive number, got '${maxText}'`);
  const [httpText, httpName] = get("http", "WARDLINE_RELAY_HTTP") ?? ["127.0.0.1:9478", "--http"];
  const http = httpText === "off" ? undefined : parseListenAddress(httpText, httpName);
  if (portal !== undefined && !([4, 6] as const).some((family) => listen[family] !== undefined && publicAddress[family] !== undefined)) {
    throw new Error(`a relay registered with a portal announces where clients reach it: --public-ip4 or --public-ip6 (for a family it listens on; none found on this host)`);
  }
  return { secret, portal, realm, port: listenPort, listen, publicAddress, ports, allowPrivatePeers: allow, maxAllocationsPerUser: Number(maxText), http };
}

/**
 * What the relay tells the portal at join: the public address of each family it listens on, and the
 * listening port. The portal takes one port for both families, so when the two sockets' ports differ
 * (only with --port 0) IPv6 is left out.
 */
function joinPayload(config: RelayConfig, relay: Relay): RelayJoin {
  const has = (family: 4 | 6): boolean => config.listen[family] !== undefined && config.publicAddress[family] !== undefined;
  // relayConfig made sure that one family has both.
  const port = has(4) ? relay.port(4)! : relay.port(6)!;
  return {
    ...(has(4) ? { ipv4: config.publicAddress[4]! } : {}),
    ...(has(6) && relay.port(6) === port ? { ipv6: config.publicAddress[6]! } : {}),
    port,
  };
}

/** A relay token as given, and what it holds. */
export interface RelayTokenText {
  text: string;
  token: PortalToken;
}

/** The relay token of a portal config: given, or read from its file (which others may not read). */
export async function readRelayToken(portal: RelayPortalConfig): Promise<RelayTokenText> {
  if ("text" in portal.token) return { text: portal.token.text, token: relayToken(portal.token.text, portal.token.option) };
  const { file, option } = portal.token;
  let text: string;
  try {
    text = await readTokenFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`${option}: ${code === "ENOENT" ? `no file ${file}` : (error as Error).message}`);
  }
  return { text, token: relayToken(text, `${option} ${file}`) };
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

/** A relay that startRelay started. */
export interface RunningRelay {
  readonly relay: Relay;
  /** What it announces to the portal: undefined for a standalone relay. */
  readonly announced: RelayJoin | undefined;
  /** Resolves when the portal refuses the relay's token (logged): the relay cannot go on, and its owner stops it. */
  readonly refused: Promise<void>;
  /** Leaves the portal, then closes the relay's sockets and the status server. */
  stop(): Promise<void>;
}

/**
 * Starts a relay from a checked config (steps 2 and 3), with the token read by readRelayToken when
 * it has a portal; resolves to undefined, the reason logged, when a socket cannot be bound.
 */
export async function startRelay(config: RelayConfig, token: RelayTokenText | undefined, log: Log): Promise<RunningRelay | undefined> {
  let relay: Relay;
  let status: StatusServer | undefined;
  let portal: PortalSocket<"relay"> | undefined;
  try {
    relay = Relay.start({
      listen: config.listen,
      port: config.port,
      publicAddress: config.publicAddress,
      ports: config.ports,
      realm: config.realm,
      secrets: [token !== undefined ? relayTurnSecretFromTokenSecret(token.token.secret) : config.secret!],
      allowPrivatePeers: config.allowPrivatePeers,
      maxAllocationsPerUser: config.maxAllocationsPerUser,
      log,
    });
  } catch (error) {
    log("error", "cannot start", { error: (error as Error).message });
    return undefined;
  }
  const ready = (): boolean => config.portal === undefined || portal?.joined === true;
  try {
    if (config.http !== undefined) status = await serveStatus(config.http.host, config.http.port, { ready, metrics: () => relayMetrics(relay) });
  } catch (error) {
    relay.close();
    log("error", "cannot serve the status endpoints", { error: (error as Error).message, http: config.http });
    return undefined;
  }
  log("info", "relaying", {
    listen: Object.fromEntries(Object.entries(config.listen).map(([f, a]) => [f, `${a}:${relay.port(Number(f) as 4 | 6)}`])),
    public: config.publicAddress,
    ports: `${config.ports[0]}-${config.ports[1]}`,
    realm: config.realm,
    http: status === undefined ? "off" : `${config.http!.host}:${status.port}`,
    ...(config.portal !== undefined ? { portal: config.portal.url, relay: token!.token.id } : {}),
  });
  let onRefused: () => void = () => undefined;
  const refused = new Promise<void>((resolve) => {
    onRefused = resolve;
  });
  const join = config.portal !== undefined ? joinPayload(config, relay) : undefined;
  let loadTimer: NodeJS.Timeout | undefined;
  if (config.portal !== undefined && join !== undefined) {
    // Step 3's load reports (daemons/io/relay-load.ts): at each join, then as the counts change.
    const reports = new RelayLoadReports();
    const reportLoad = (): void => {
      if (portal?.joined !== true) return;
      const s = relay.server.stats;
      const load = reports.check(performance.now(), { allocations: s.allocations, channels: s.channels, bytes: relay.counters.clientToPeerBytes + relay.counters.peerToClientBytes });
      if (load !== undefined) portal.send("load", load);
    };
    loadTimer = setInterval(reportLoad, LOAD_CHECK_MS);
    loadTimer.unref();
    const onEvent = (event: PortalSocketEvent<"relay">): void => {
      if (event.type === "joined") {
        log("info", "joined the portal", { portal: config.portal!.url, announced: join });
        reports.joined();
        reportLoad();
      }
      else if (event.type === "disconnected") log("info", "disconnected from the portal", { reason: event.reason, retryInMs: event.retryInMs });
      else if (event.type === "message" && event.event === "disconnect") log("info", "the portal ended the session", { reason: event.payload.reason });
      else if (event.type === "signed_out") {
        log("error", "signed out: the portal refused the relay token (revoked, expired or unknown); issue a new one with POST /api/relay_tokens", {
          status: event.status,
          detail: event.detail,
        });
        onRefused();
      }
    };
    portal = new PortalSocket({ portalUrl: config.portal.url, role: "relay", token: token!.text, join, onEvent });
    portal.start();
  }
  return {
    relay,
    announced: join,
    refused,
    stop: async () => {
      clearInterval(loadTimer);
      await portal?.stop();
      relay.close();
      await status?.close();
    },
  };
}

/** Runs `wardline relay` with argv (after the command name); resolves to the exit status. */
export async function relayCommand(argv: readonly string[], io: RelayIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCommandLine(argv, {
    secret: { type: "string" },
    "portal-url": { type: "string" },
    token: { type: "string" },
    "token-file": { type: "string" },
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
  let token: RelayTokenText | undefined;
  try {
    config = relayConfig(parsed.values, env);
    if (config.portal !== undefined) token = await readRelayToken(config.portal);
  } catch (error) {
    io.stderr(`wardline relay: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  const log = (level: string, msg: string, fields: Record<string, unknown> = {}): void =>
    io.stderr(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
  const running = await startRelay(config, token, log);
  if (running === undefined) return EXIT_FAILURE;
  return new Promise<number>((resolve) => {
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigterm);
      io.signal?.removeEventListener("abort", onAbort);
      void running.stop().then(() => resolve(code));
    };
    const stop = (signal: string): void => {
      log("info", "shutting down", { signal });
      finish(EXIT_OK);
    };
    const onSigint = (): void => stop("SIGINT");
    const onSigterm = (): void => stop("SIGTERM");
    const onAbort = (): void => stop("abort");
    process.once("SIGINT", onSigint);
    process.once("SIGTERM", onSigterm);
    io.signal?.addEventListener("abort", onAbort, { once: true });
    void running.refused.then(() => finish(EXIT_FAILURE));
    if (io.signal?.aborted === true) onAbort();
  });
}
