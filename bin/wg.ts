// `wardline wg <iface>`: a standalone userspace WireGuard interface, a drop-in for
// `wireguard-go <iface>`: the same UAPI socket for `wg`, the same daemon behaviour (it returns once
// the interface is up and keeps running in the background, unless --foreground), so
// WG_QUICK_USERSPACE_IMPLEMENTATION="wardline wg" makes wg-quick use it.
//
// 1. Parse the command line and, with --config, the wg-quick-style file (errors before any change).
// 2. Without --foreground: start ourselves again with --foreground, detached, and return once it
//    reports on a pipe that it is ready (its UAPI socket is up), or print the error it reports.
// 3. Foreground: open the TUN device and the engine, apply the configuration, set MTU, addresses,
//    link and routes, serve the UAPI, and run until SIGINT or SIGTERM.

import { spawn } from "node:child_process";
import { closeSync, readFileSync, writeSync } from "node:fs";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { configureLink } from "../daemons/io/link.js";
import { serveUapi, UAPI_DIR } from "../daemons/io/uapi-socket.js";
import { DEFAULT_MTU, WireGuardInterface } from "../daemons/io/wg-interface.js";
import { parseWgQuick, type WgQuickConfig } from "../daemons/proto/wireguard/wg-quick.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parseCommandLine } from "./args.js";

export interface WgIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const WG_HELP = `Usage: wardline wg <interface> [options]

Runs a userspace WireGuard interface, like wireguard-go: it creates the TUN device <interface>,
serves the WireGuard userspace API on ${UAPI_DIR}/<interface>.sock for wg(8), and
moves packets between the TUN device and its peers. Without --config it starts unconfigured
(MTU ${DEFAULT_MTU}, link down) and waits for 'wg set' / 'wg setconf' and 'ip', exactly as
wireguard-go does. wg-quick uses it instead of wireguard-go with
WG_QUICK_USERSPACE_IMPLEMENTATION=<path to bin/wardline-wg> (wardline-wg is 'wardline wg').

Options:
  --config <file>   a wg-quick-style configuration: [Interface] PrivateKey, ListenPort, FwMark,
                    Address, MTU; [Peer] PublicKey, PresharedKey, AllowedIPs, Endpoint (IP:port),
                    PersistentKeepalive. With it the interface gets its addresses, goes up and
                    routes each peer's AllowedIPs (except default routes). DNS, Table and the
                    Pre/Post hooks are ignored with a warning.
  -f, --foreground  stay in the foreground (default: return once the interface is ready and keep
                    running in the background, as wireguard-go does)
  -h, --help        show this help

Needs root or CAP_NET_ADMIN (TUN device, ${UAPI_DIR}). Stop it with SIGTERM or SIGINT
(the TUN device goes with it), or delete the interface ('ip link del <interface>', as
wg-quick down does): it then exits.
`;


/** How long a backgrounding parent waits for its child's socket. */
const READY_TIMEOUT_MS = 15_000;

function timestamp(): string {
  return new Date().toISOString().replace("T", " ").slice(0, 19);
}

export async function wgCommand(argv: readonly string[], io: WgIo): Promise<number> {
  const parsed = parseCommandLine(argv, {
    config: { type: "string" },
    foreground: { type: "boolean", short: "f", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if ("error" in parsed) {
    io.stderr(`wardline wg: ${parsed.error}\n\n${WG_HELP}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(WG_HELP);
    return EXIT_OK;
  }
  if (positionals.length !== 1) {
    io.stderr(`wardline wg: ${positionals.length === 0 ? "missing the interface name" : `unexpected argument '${positionals[1]}'`}\n\n${WG_HELP}`);
    return EXIT_USAGE;
  }
  const name = positionals[0]!;
  if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(name)) {
    io.stderr(`wardline wg: ${JSON.stringify(name)} is not a valid interface name (1-15 of A-Z a-z 0-9 _ = + . -)\n`);
    return EXIT_USAGE;
  }

  let config: WgQuickConfig | undefined;
  if (values.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(values.config, "utf8");
    } catch (error) {
      io.stderr(`wardline wg: cannot read ${values.config}: ${(error as Error).message}\n`);
      return EXIT_FAILURE;
    }
    const result = parseWgQuick(text);
    if (!result.ok) {
      io.stderr(`wardline wg: ${values.config}:${result.line}: ${result.reason}\n`);
      return EXIT_FAILURE;
    }
    config = result.value;
    for (const warning of config.ignored) io.stderr(`wardline wg: ${values.config}: ${warning}\n`);
  }

  if (!values.foreground) return background(name, argv, io);
  return foreground(name, config, io);
}

/** The environment variable that tells a backgrounded child which fd reports its start-up. */
const STATUS_FD_ENV = "WARDLINE_WG_STATUS_FD";
const READY = "ready\n";

/**
 * Starts the foreground daemon detached and waits for its start-up report on a pipe (fd 3): "ready",
 * or the error it met. Like wireguard-go, the daemon keeps no terminal or pipe of ours open (wg-quick
 * would wait on them) unless LOG_LEVEL is set, when it logs to our stdout and stderr.
 */
async function background(name: string, argv: readonly string[], io: WgIo): Promise<number> {
  // dist/bin/wg.js → bin/wardline, whatever name (wardline, wardline-wg, a path) started us.
  const entry = fileURLToPath(new URL("../../bin/wardline", import.meta.url));
  const logs = process.env.LOG_LEVEL ? "inherit" : "ignore";
  const child = spawn(process.execPath, [...process.execArgv, entry, "wg", ...argv, "--foreground"], {
    detached: true,
    stdio: ["ignore", logs, logs, "pipe"],
    env: { ...process.env, [STATUS_FD_ENV]: "3" },
  });
  const status = child.stdio[3] as Readable;
  let report = "";
  status.setEncoding("utf8").on("data", (chunk: string) => (report += chunk));
  const closed = new Promise<void>((resolve) => status.once("close", () => resolve()));
  const timedOut = await Promise.race([closed.then(() => false), sleep(READY_TIMEOUT_MS).then(() => true)]);
  if (!timedOut && report.endsWith(READY)) {
    child.unref();
    return EXIT_OK;
  }
  child.kill("SIGTERM");
  io.stderr(timedOut ? `wardline wg: ${name} was not ready within ${READY_TIMEOUT_MS / 1000} s; stopped it\n` : report || `wardline wg: ${name} exited during start-up\n`);
  return EXIT_FAILURE;
}

/** Where a backgrounded daemon reports its start-up (its parent waits on it); undefined in the foreground. */
function startupReporter(): ((text: string) => void) | undefined {
  const fd = Number(process.env[STATUS_FD_ENV]);
  delete process.env[STATUS_FD_ENV];
  if (!Number.isInteger(fd) || fd < 3) return undefined;
  return (text) => {
    try {
      writeSync(fd, text);
      if (text === READY) closeSync(fd);
    } catch {
      // the parent gave up waiting
    }
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

async function foreground(name: string, config: WgQuickConfig | undefined, terminal: WgIo): Promise<number> {
  const report = startupReporter();
  // Until ready, errors also go to a waiting parent.
  const io: WgIo = {
    stdout: terminal.stdout,
    stderr: (text) => {
      terminal.stderr(text);
      report?.(text);
    },
  };
  const log = (line: string): void => io.stderr(`${timestamp()} wardline wg ${name}: ${line}\n`);
  const mtu = config?.mtu ?? DEFAULT_MTU;
  let wg: WireGuardInterface;
  let fatal: ((reason: string) => void) | undefined;
  try {
    wg = WireGuardInterface.open({ name, mtu, log, onFatal: (reason) => fatal?.(reason) });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const hint = code === "EPERM" || code === "EACCES" ? " (needs root or CAP_NET_ADMIN)" : code === "EBUSY" ? " (an interface of that name exists)" : "";
    io.stderr(`wardline wg: cannot create ${name}: ${(error as Error).message}${hint}\n`);
    return EXIT_FAILURE;
  }
  let server;
  try {
    if (config !== undefined) {
      const errno = wg.apply(config.update);
      if (errno !== 0) throw new Error(`the configuration could not be applied (errno ${-errno}); see above`);
    }
    const routes = config === undefined ? [] : [...wg.config.peers.values()].flatMap((p) => p.allowedIps);
    const skipped = await configureLink(wg.name, { mtu, addresses: config?.addresses, up: config !== undefined, routes });
    for (const s of skipped) log(`not routing ${s.prefix}: ${s.reason}`);
    server = await serveUapi(wg.name, wg);
  } catch (error) {
    wg.close();
    io.stderr(`wardline wg: ${name}: ${(error as Error).message}\n`);
    return EXIT_FAILURE;
  }
  report?.(READY);
  io.stderr = terminal.stderr;
  log(`up: ${config === undefined ? "unconfigured, waiting for wg" : `listening on UDP port ${wg.listenPort}`}; UAPI on ${server.path}`);
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log(`${signal}: shutting down`);
      void server.close().then(() => {
        wg.close();
        resolve(EXIT_OK);
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    fatal = () => stop("interface gone");
  });
}
