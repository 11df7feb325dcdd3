// `wardline gateway` and `wardline client`: the two device daemons (daemons/io/gateway-daemon.ts,
// daemons/io/client-daemon.ts) from the command line.
//
// 1. Options from flags, else WARDLINE_* environment variables, else defaults; every one checked
//    before anything is opened, an error naming the flag or variable as the user gave it. The token
//    comes from --token or a file only its owner may read (--token-file), never both.
// 2. Start the daemon; a failure to start (no TUN permission, port in use, bad state directory)
//    exits 1 with the reason.
// 3. Run until SIGINT or SIGTERM (exit 0), or until the daemon cannot go on (the token refused or
//    revoked, host changes failing: exit 1); either way the host's changes are undone first.

import { hostname } from "node:os";
import { ClientDaemon } from "../daemons/io/client-daemon.js";
import type { DeviceDaemonOptions } from "../daemons/io/device-daemon.js";
import { readTokenFile } from "../daemons/io/device-state.js";
import { GatewayDaemon } from "../daemons/io/gateway-daemon.js";
import { createLog, type LogFormat, type LogLevel } from "../daemons/io/log.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, packageVersion, parseCommandLine, parseListenAddress, parsePort } from "./args.js";

export type DeviceRoleName = "gateway" | "client";

export interface DeviceIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal (human logs by default then). */
  stderrIsTty?: boolean;
}

const DEFAULTS: Record<DeviceRoleName, { device: string; http: string }> = {
  gateway: { device: "wl-gateway", http: "127.0.0.1:9479" },
  client: { device: "wl-client", http: "127.0.0.1:9480" },
};

const COMMON_OPTIONS = (role: DeviceRoleName): string => `  --portal-url <url>       the portal, http(s)://host[:port] (WARDLINE_PORTAL_URL); required
  --token <token>          the ${role} token (WARDLINE_TOKEN)
  --token-file <path>      read the token from this file, which only its owner may read
                           (WARDLINE_TOKEN_FILE); one of --token and --token-file is required
  --state-dir <dir>        where the WireGuard key${role === "client" ? " and the DNS backup" : ""} live (WARDLINE_STATE_DIR;
                           default /var/lib/wardline/${role})
  --name <text>            the name the portal shows (WARDLINE_NAME; default the host name)
  --device <name>          the TUN device (WARDLINE_DEVICE; default ${DEFAULTS[role].device})
  --mtu <n>                the TUN device's MTU, 1280-9000 (WARDLINE_MTU; default 1280)
  --port <n>               the UDP port for tunnels (WARDLINE_PORT; default 0: any; no inbound
                           port needs to be open)
  --http <addr:port|off>   /healthz, /readyz and Prometheus /metrics (WARDLINE_HTTP;
                           default ${DEFAULTS[role].http})
  --log-format json|human  log lines on stderr (WARDLINE_LOG_FORMAT; default human on a
                           terminal, json otherwise)
  --log-level <level>      debug, info, warn or error (WARDLINE_LOG_LEVEL; default info)
  -h, --help               show this help`;

export const GATEWAY_HELP = `Usage: wardline gateway --portal-url <url> (--token <token> | --token-file <path>) [options]

Runs a gateway: clients reach the resources of its site through it. It connects out to the
portal and to relays, so it needs no inbound port; it turns on IP forwarding and masquerades
tunnel traffic (an nftables table, wardline_gateway) towards the resources, and undoes both
when it stops. Needs root (or CAP_NET_ADMIN) for its TUN device.

Options (each also read from the environment variable named beside it):
${COMMON_OPTIONS("gateway")}
  --resolver <addr,...>    DNS servers for DNS resources' names (WARDLINE_RESOLVERS; default the
                           host's /etc/resolv.conf)

Stop it with SIGINT or SIGTERM. Exit status 1 when the portal refuses the token.
`;

export const CLIENT_HELP = `Usage: wardline client --portal-url <url> (--token <token> | --token-file <path>) [options]

Runs a headless client: the resources its policies allow are routed into its TUN device and
reached through the gateways of their sites, directly or through a relay. Names of DNS
resources are answered by the client's own resolver, which it makes the host's (through
systemd-resolved when it manages /etc/resolv.conf, else by rewriting /etc/resolv.conf, whose
original is kept in the state directory); routes and DNS are restored when it stops, and a
change a crashed run left is undone when it starts. Needs root (or CAP_NET_ADMIN).

Options (each also read from the environment variable named beside it):
${COMMON_OPTIONS("client")}

Stop it with SIGINT or SIGTERM. Exit status 1 when the portal refuses the token.
`;

/** The options after flags, environment and defaults (the token read later if from a file). */
export interface DeviceConfig {
  portalUrl: string;
  token: { value: string } | { file: string };
  stateDir: string;
  name: string;
  device: string;
  mtu: number;
  port: number;
  http: { host: string; port: number } | undefined;
  logFormat: LogFormat;
  logLevel: LogLevel;
  resolvers?: string[];
}

/** Resolves flags and environment into a DeviceConfig; throws an Error naming the bad option. */
export function deviceConfig(role: DeviceRoleName, values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv, stderrIsTty = false): DeviceConfig {
  const get = (flag: string, variable: string): [string, string] | undefined => {
    const v = values[flag];
    if (typeof v === "string") return [v, `--${flag}`];
    const e = env[variable];
    return e === undefined ? undefined : [e, variable];
  };
  const [url, urlName] = get("portal-url", "WARDLINE_PORTAL_URL") ?? ["", "--portal-url"];
  if (url === "") throw new Error("the portal's URL is required: --portal-url or WARDLINE_PORTAL_URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${urlName} must be an http(s) URL, got '${url}'`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error(`${urlName} must be an http(s) URL, got '${url}'`);
  const token = get("token", "WARDLINE_TOKEN");
  const tokenFile = get("token-file", "WARDLINE_TOKEN_FILE");
  if (token !== undefined && tokenFile !== undefined) throw new Error(`give the token once: ${token[1]} and ${tokenFile[1]} are both set`);
  if (token === undefined && tokenFile === undefined) throw new Error(`a ${role} token is required: --token, --token-file, WARDLINE_TOKEN or WARDLINE_TOKEN_FILE`);
  if (token !== undefined && token[0].trim() === "") throw new Error(`${token[1]} is empty`);
  if (tokenFile !== undefined && tokenFile[0] === "") throw new Error(`${tokenFile[1]} is empty`);
  const [stateDir, stateName] = get("state-dir", "WARDLINE_STATE_DIR") ?? [`/var/lib/wardline/${role}`, "--state-dir"];
  if (stateDir === "") throw new Error(`${stateName} is empty`);
  const [name, nameName] = get("name", "WARDLINE_NAME") ?? [hostname(), "--name"];
  if (name.trim() === "" || [...name].length > 255 || /\p{Cc}/u.test(name)) throw new Error(`${nameName} must be 1-255 characters without control characters`);
  const [device, deviceName] = get("device", "WARDLINE_DEVICE") ?? [DEFAULTS[role].device, "--device"];
  if (!/^[A-Za-z0-9_.%-]{1,15}$/.test(device)) throw new Error(`${deviceName} must be an interface name of 1-15 letters, digits, '-', '_' or '.', got '${device}'`);
  const [mtuText, mtuName] = get("mtu", "WARDLINE_MTU") ?? ["1280", "--mtu"];
  if (!/^\d{1,5}$/.test(mtuText) || Number(mtuText) < 1280 || Number(mtuText) > 9000) throw new Error(`${mtuName} must be 1280-9000, got '${mtuText}'`);
  const [portText, portName] = get("port", "WARDLINE_PORT") ?? ["0", "--port"];
  const port = parsePort(portText, portName);
  const [httpText, httpName] = get("http", "WARDLINE_HTTP") ?? [DEFAULTS[role].http, "--http"];
  const http = httpText === "off" ? undefined : parseListenAddress(httpText, httpName);
  const [format, formatName] = get("log-format", "WARDLINE_LOG_FORMAT") ?? [stderrIsTty ? "human" : "json", "--log-format"];
  if (format !== "json" && format !== "human") throw new Error(`${formatName} must be json or human, got '${format}'`);
  const [level, levelName] = get("log-level", "WARDLINE_LOG_LEVEL") ?? ["info", "--log-level"];
  if (!["debug", "info", "warn", "error"].includes(level)) throw new Error(`${levelName} must be debug, info, warn or error, got '${level}'`);
  const config: DeviceConfig = {
    portalUrl: parsed.href.replace(/\/+$/, ""),
    token: token !== undefined ? { value: token[0].trim() } : { file: tokenFile![0] },
    stateDir, name, device, mtu: Number(mtuText), port, http, logFormat: format, logLevel: level as LogLevel,
  };
  if (role === "gateway") {
    const resolvers = get("resolver", "WARDLINE_RESOLVERS");
    if (resolvers !== undefined) {
      const list = resolvers[0].split(",").map((s) => s.trim()).filter((s) => s !== "");
      for (const server of list) {
        // "addr" or "addr:port" / "[v6]:port", as node's resolver takes them.
        const host = server.replace(/^\[(.*)\](:\d+)?$/, "$1").replace(/^([^:]+):\d+$/, "$1");
        if (!/^[\d.]+$/.test(host) && !host.includes(":")) throw new Error(`${resolvers[1]} must be IP addresses separated by commas, got '${server}'`);
      }
      if (list.length === 0) throw new Error(`${resolvers[1]} is empty`);
      config.resolvers = list;
    }
  }
  return config;
}

export async function deviceCommand(role: DeviceRoleName, argv: readonly string[], io: DeviceIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const help = role === "gateway" ? GATEWAY_HELP : CLIENT_HELP;
  const parsed = parseCommandLine(argv, {
    "portal-url": { type: "string" },
    token: { type: "string" },
    "token-file": { type: "string" },
    "state-dir": { type: "string" },
    name: { type: "string" },
    device: { type: "string" },
    mtu: { type: "string" },
    port: { type: "string" },
    http: { type: "string" },
    "log-format": { type: "string" },
    "log-level": { type: "string" },
    ...(role === "gateway" ? { resolver: { type: "string" as const } } : {}),
    help: { type: "boolean", short: "h", default: false },
  });
  if ("error" in parsed) {
    io.stderr(`wardline ${role}: ${parsed.error}\n\n${help}`);
    return EXIT_USAGE;
  }
  if (parsed.values.help) {
    io.stdout(help);
    return EXIT_OK;
  }
  if (parsed.positionals.length > 0) {
    io.stderr(`wardline ${role}: unexpected argument '${parsed.positionals[0]}'\n\n${help}`);
    return EXIT_USAGE;
  }
  let config: DeviceConfig;
  let token: string;
  try {
    config = deviceConfig(role, parsed.values as Record<string, string | boolean | undefined>, env, io.stderrIsTty === true);
    token = "value" in config.token ? config.token.value : await readTokenFile(config.token.file);
  } catch (error) {
    io.stderr(`wardline ${role}: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  const log = createLog({ format: config.logFormat, level: config.logLevel, write: io.stderr });
  let resolveFatal: (reason: string) => void = () => undefined;
  const fatal = new Promise<string>((resolve) => {
    resolveFatal = resolve;
  });
  const options: DeviceDaemonOptions = {
    portalUrl: config.portalUrl, token, stateDir: config.stateDir, name: config.name, tunName: config.device, mtu: config.mtu, port: config.port,
    http: config.http, version: packageVersion(), log, onFatal: (reason) => resolveFatal(reason),
  };
  let daemon: GatewayDaemon | ClientDaemon;
  try {
    daemon = role === "gateway" ? await GatewayDaemon.start({ ...options, ...(config.resolvers ? { resolvers: config.resolvers } : {}) }) : await ClientDaemon.start(options);
  } catch (error) {
    log("error", "cannot start", { error: (error as Error).message });
    return EXIT_FAILURE;
  }
  if (daemon.statusPort !== undefined) log("info", "status endpoints", { http: `${config.http!.host}:${daemon.statusPort}` });
  const signals: [NodeJS.Signals, () => void][] = [];
  const outcome = await new Promise<{ status: number; why: string }>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const handler = (): void => resolve({ status: EXIT_OK, why: signal });
      process.once(signal, handler);
      signals.push([signal, handler]);
    }
    void fatal.then((reason) => resolve({ status: EXIT_FAILURE, why: reason }));
  });
  for (const [signal, handler] of signals) process.off(signal, handler);
  log(outcome.status === EXIT_OK ? "info" : "error", "shutting down", { reason: outcome.why });
  await daemon.stop();
  log("info", "stopped; the host's network is as it was");
  return outcome.status;
}
