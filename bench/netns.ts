// Two network namespaces, "a" and "b", joined by a veth pair with IPv4 underlay addresses, and a
// WireGuard peer started in each (wireguard-go, or ours: `wardline wg`), for the end-to-end tunnel
// tests (test/interop) and `wardline bench tunnel`, both through real kernel TCP/IP. It lives in bench/
// because the benchmark runs from dist/, which tsconfig.build.json builds from bench/ but not test/.
//
// Everything a NamespacePair creates is tracked, and destroy() removes it: processes by PID first
// (a namespace outlives its last interface while a process is inside), then the namespaces, which take
// the veth pair with them, then any UAPI socket a killed daemon left in /var/run/wireguard. A command
// that may be interrupted asks destroyOnExit() to do the same on SIGINT, SIGTERM and exit.
//
// Names carry the PID and a per-process counter so concurrent runs never collide. WireGuard interface
// names must be unique across namespaces too: /var/run/wireguard is shared, so `wg show <iface>` works
// from anywhere and two daemons with one name would fight over one socket.

import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./harness.js";
import { onPath } from "./system.js";

/** The `wardline` entry point of this checkout (found from bench/ and from dist/bench/ alike). */
export const WARDLINE_BIN = join(repoRoot(), "bin", "wardline");

/** Where wireguard-go and ours serve the userspace API: `<dir>/<iface>.sock`. */
export const UAPI_DIR = "/var/run/wireguard";

/** The two WireGuard implementations a namespace can run. */
export type PeerKind = "wireguard-go" | "ours";

const PACKAGES: Record<string, string> = {
  ip: "iproute2",
  "wireguard-go": "wireguard-go",
  wg: "wireguard-tools",
  ping: "iputils-ping",
};

let oursRuns: boolean | undefined; // `wardline wg --help` costs a node start-up: once is enough


/**
 * Why the namespaces and these peers cannot run here (a reason to print), or undefined when they can;
 * `tools` names further commands needed, each with its Debian package.
 */
export function missingPrerequisites(kinds: readonly PeerKind[] = ["wireguard-go"], tools: Record<string, string> = {}): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "not root (network namespaces need it)";
  const needed = { ...PACKAGES, ...tools };
  if (!kinds.includes("wireguard-go")) delete needed["wireguard-go"];
  for (const [tool, pkg] of Object.entries(needed)) {
    if (!onPath(tool)) return `${tool} is not installed (Debian: ${pkg})`;
  }
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  if (kinds.includes("ours")) {
    oursRuns ??= spawnSync(process.execPath, [WARDLINE_BIN, "wg", "--help"], { stdio: "ignore", timeout: 20_000 }).status === 0;
    if (!oursRuns) return "`wardline wg --help` fails: build it (npm run build:ts) or implement it";
  }
  return undefined;
}

// --- Configuration files ---

/** One [Peer] section. */
export interface PeerConfig {
  publicKey: string;
  presharedKey?: string;
  allowedIps: string[];
  /** IPv4 `address:port`. */
  endpoint?: string;
  persistentKeepalive?: number;
}

/** A WireGuard interface: what `wg setconf` takes, plus wg-quick's Address and MTU. */
export interface InterfaceConfig {
  privateKey: string;
  listenPort: number;
  /** CIDR, e.g. 10.233.1.1/24. */
  address: string;
  mtu?: number;
  peers: PeerConfig[];
}

/** The config as text: wg-quick style, or with `quick: false` only the keys `wg setconf` accepts. */
export function formatConfig(config: InterfaceConfig, { quick = true }: { quick?: boolean } = {}): string {
  const lines = ["[Interface]", `PrivateKey = ${config.privateKey}`, `ListenPort = ${config.listenPort}`];
  if (quick) {
    lines.push(`Address = ${config.address}`);
    if (config.mtu !== undefined) lines.push(`MTU = ${config.mtu}`);
  }
  for (const peer of config.peers) {
    lines.push("", "[Peer]", `PublicKey = ${peer.publicKey}`);
    if (peer.presharedKey !== undefined) lines.push(`PresharedKey = ${peer.presharedKey}`);
    lines.push(`AllowedIPs = ${peer.allowedIps.join(", ")}`);
    if (peer.endpoint !== undefined) lines.push(`Endpoint = ${peer.endpoint}`);
    if (peer.persistentKeepalive !== undefined) lines.push(`PersistentKeepalive = ${peer.persistentKeepalive}`);
  }
  return lines.join("\n") + "\n";
}

/** Writes the config (it holds private keys: mode 0600). */
export function writeConfig(path: string, config: InterfaceConfig, options: { quick?: boolean } = {}): void {
  writeFileSync(path, formatConfig(config, options), { mode: 0o600 });
}

/** Where one end of a two-peer tunnel is, and how to reach the other end. */
export interface PointToPointEnd {
  privateKey: string;
  /** This end's tunnel address, without a prefix length (the interface gets a /24). */
  address: string;
  peerPublicKey: string;
  /** The other end's tunnel address: its only allowed IP, as a /32. */
  peerAddress: string;
  /** The other end's underlay address; it listens on the same port as this end. */
  peerEndpoint: string;
  listenPort?: number;
  mtu?: number;
  presharedKey?: string;
}

/** One end of a tunnel whose two ends are each other's only peer; port 51820 and MTU 1420 unless told. */
export function pointToPointConfig(end: PointToPointEnd): InterfaceConfig {
  const listenPort = end.listenPort ?? 51820;
  return {
    privateKey: end.privateKey,
    listenPort,
    address: `${end.address}/24`,
    mtu: end.mtu ?? 1420,
    peers: [
      {
        publicKey: end.peerPublicKey,
        presharedKey: end.presharedKey,
        allowedIps: [`${end.peerAddress}/32`],
        endpoint: `${end.peerEndpoint}:${listenPort}`,
      },
    ],
  };
}

/** A WireGuard key pair, base64. */
export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

/** A fresh key pair from `wg genkey` / `wg pubkey`, base64. */
export function generateKeyPair(): KeyPair {
  const privateKey = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
  const publicKey = execFileSync("wg", ["pubkey"], { input: privateKey, encoding: "utf8" }).trim();
  return { privateKey, publicKey };
}

/** A fresh preshared key from `wg genpsk`, base64. */
export function generatePresharedKey(): string {
  return execFileSync("wg", ["genpsk"], { encoding: "utf8" }).trim();
}

// --- Processes ---

const OUTPUT_TAIL = 8192;

/** A long-running process in a namespace, tracked by PID; its stdout is read as lines. */
export class NamespaceProcess {
  readonly pid: number;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** Resolves once it has exited and its stdout and stderr are read to the end (output() is complete). */
  readonly closed: Promise<void>;
  private exitCode: number | null | undefined;
  private stdout = "";
  private stderr = "";
  private readonly lines: string[] = [];
  private wake: (() => void) | undefined;

  constructor(readonly name: string, readonly child: ChildProcess) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = child.pid;
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      let newline: number;
      while ((newline = this.stdout.indexOf("\n")) >= 0) {
        this.lines.push(this.stdout.slice(0, newline));
        this.stdout = this.stdout.slice(newline + 1);
      }
      this.wake?.();
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-OUTPUT_TAIL);
    });
    this.exited = new Promise((resolve) =>
      child.on("exit", (code) => {
        this.exitCode = code;
        this.wake?.();
        resolve(code);
      }),
    );
    this.closed = new Promise((resolve) => child.on("close", () => resolve()));
    child.on("error", () => undefined); // surfaces as the exit, and in stderr
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last lines it wrote to stderr, for failure messages. */
  diagnostics(): string {
    const status = this.running ? "running" : `exited with ${this.exitCode}`;
    return `${this.name} (pid ${this.pid}, ${status}); stderr:\n${this.stderr.trim() || "(empty)"}`;
  }

  /**
   * Waits for the next stdout line that parses as a JSON object with the given key (and passes
   * `accept`); returns it. Lines before it are consumed.
   */
  async message<T extends object>(key: string, timeoutMs: number, accept: (message: T) => boolean = () => true): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.lines.length > 0) {
        const line = this.lines.shift()!;
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (typeof parsed === "object" && parsed !== null && key in parsed && accept(parsed as T)) return parsed as T;
        } catch {
          // not one of ours
        }
      }
      if (!this.running) throw new Error(`no "${key}" message: ${this.diagnostics()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${key}" message within ${timeoutMs} ms: ${this.diagnostics()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** What it wrote to stdout and message() has not consumed; complete once `closed` has resolved. */
  output(): string {
    const text = [...this.lines.splice(0), this.stdout].join("\n");
    this.stdout = "";
    return text;
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

// --- The topology ---

/** One side of the pair. */
export interface Namespace {
  readonly side: "a" | "b";
  /** The namespace, as `ip netns` names it. */
  readonly name: string;
  /** This side's end of the veth pair. */
  readonly veth: string;
  /** The WireGuard interface a peer started here gets (unique across namespaces). */
  readonly iface: string;
  /** The current underlay IPv4 address (moveAddress changes it). */
  address: string;
}

/** A WireGuard peer running in a namespace. */
export interface TunnelPeer {
  readonly kind: PeerKind;
  readonly ns: Namespace;
  readonly config: InterfaceConfig;
  readonly process: NamespaceProcess;
}

let created = 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function describeFailure(command: string[], error: unknown): Error {
  const stderr = (error as { stderr?: Buffer | string }).stderr?.toString().trim();
  return new Error(`${command.join(" ")}: ${stderr || (error as Error).message}`);
}

/** The /24 networks of a pair, each as its first three octets ("10.98.0"); a is host 1, b host 2. */
export interface PairAddressing {
  /** The veth pair's. */
  underlay: string;
  /** The one tunnelAddress() and tunnelConfig() use. */
  tunnel: string;
}

/**
 * Namespaces "a" and "b" joined by a veth pair; underlay 10.232.<subnet>.1 and .2 /24, tunnel
 * addresses 10.233.<subnet>.1 and .2, unless create() is given others.
 */
export class NamespacePair {
  readonly a: Namespace;
  readonly b: Namespace;
  /** A number from 1 to 254 particular to this pair, the third octet of its default addresses. */
  readonly subnet: number;
  readonly addressing: PairAddressing;
  /** A private scratch directory (configs), removed by destroy(). */
  readonly dir: string;
  private readonly processes = new Set<NamespaceProcess>();
  private nextHost = 3;
  private destroying: Promise<void> | undefined;

  private constructor(tag: string, addressing: Partial<PairAddressing>) {
    const n = created++;
    const id = `${process.pid}-${n}`;
    this.subnet = ((process.pid * 8 + n) % 254) + 1;
    this.addressing = { underlay: `10.232.${this.subnet}`, tunnel: `10.233.${this.subnet}`, ...addressing };
    const side = (s: "a" | "b", host: number): Namespace => ({
      side: s,
      name: `wl-${tag}-${id}-${s}`,
      veth: `wlv${id}${s}`,
      iface: `wl${tag.slice(0, 1)}${id}${s}`,
      address: `${this.addressing.underlay}.${host}`,
    });
    this.a = side("a", 1);
    this.b = side("b", 2);
    for (const ns of [this.a, this.b]) {
      if (ns.iface.length > 15 || ns.veth.length > 15) throw new Error(`interface name too long: ${ns.iface}, ${ns.veth}`);
    }
    this.dir = mkdtempSync(join(tmpdir(), `wl-${tag}-`));
  }

  /** Creates the namespaces and the veth pair between them; `tag` (a short word) goes into every name. */
  static create(tag: string, addressing: Partial<PairAddressing> = {}): NamespacePair {
    const pair = new NamespacePair(tag, addressing);
    try {
      pair.setUp();
    } catch (error) {
      pair.removeLeftovers();
      throw error;
    }
    return pair;
  }

  private setUp(): void {
    const { a, b } = this;
    for (const ns of [a, b]) {
      this.removeSocket(ns.iface); // a stale one, from a run that died with this PID
      this.ip("netns", "add", ns.name);
      this.ip("-n", ns.name, "link", "set", "lo", "up");
    }
    this.ip("link", "add", a.veth, "netns", a.name, "type", "veth", "peer", "name", b.veth, "netns", b.name);
    for (const ns of [a, b]) {
      // When moveAddress deletes the primary address, the secondary must take over, not go with it.
      this.run(ns, "sysctl", ["-qw", `net.ipv4.conf.${ns.veth}.promote_secondaries=1`]);
      this.ip("-n", ns.name, "addr", "add", `${ns.address}/24`, "dev", ns.veth);
      this.ip("-n", ns.name, "link", "set", ns.veth, "up");
    }
  }

  private ip(...args: string[]): string {
    try {
      return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      throw describeFailure(["ip", ...args], error);
    }
  }

  /** Runs a command in the namespace and returns its stdout; throws with its stderr if it fails. */
  run(ns: Namespace, command: string, args: string[] = [], input?: string): string {
    const argv = ["netns", "exec", ns.name, command, ...args];
    try {
      return execFileSync("ip", argv, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
    } catch (error) {
      throw describeFailure([command, ...args], error);
    }
  }

  /** Runs a command in the namespace without blocking this process (needed when this process serves it). */
  exec(ns: Namespace, command: string, args: string[] = [], timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile("ip", ["netns", "exec", ns.name, command, ...args], { encoding: "utf8", timeout: timeoutMs }, (error, stdout, stderr) =>
        error ? reject(new Error(`${[command, ...args].join(" ")} in ${ns.side}: ${stderr.trim() || error.message}`)) : resolve(stdout),
      ),
    );
  }

  /** Starts a long-running command in the namespace, tracked until destroy(). */
  spawn(ns: Namespace, command: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): NamespaceProcess {
    // `ip netns exec` execs the command, so the PID is the command's own.
    const child = spawn("ip", ["netns", "exec", ns.name, command, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    const tracked = new NamespaceProcess(`${command} in ${ns.side}`, child);
    this.processes.add(tracked);
    void tracked.exited.then(() => this.processes.delete(tracked));
    return tracked;
  }

  /**
   * Starts a WireGuard peer on ns.iface, configured, addressed, up and routed, and waits until its UAPI
   * socket answers. `ours` reads a wg-quick file and does all of that itself; for wireguard-go this
   * does it with wg(8) and ip(8).
   */
  async startPeer(ns: Namespace, kind: PeerKind, config: InterfaceConfig, timeoutMs = 15_000): Promise<TunnelPeer> {
    const file = join(this.dir, `${ns.iface}.conf`);
    writeConfig(file, config, { quick: kind === "ours" });
    const proc =
      kind === "ours"
        ? this.spawn(ns, process.execPath, [WARDLINE_BIN, "wg", ns.iface, "--foreground", "--config", file])
        : this.spawn(ns, "wireguard-go", ["-f", ns.iface], { LOG_LEVEL: "error" });
    const peer: TunnelPeer = { kind, ns, config, process: proc };
    try {
      const socket = join(UAPI_DIR, `${ns.iface}.sock`);
      const deadline = Date.now() + timeoutMs;
      while (!existsSync(socket)) {
        if (!proc.running || Date.now() > deadline) throw new Error(`no ${socket}`);
        await sleep(25);
      }
      if (kind === "wireguard-go") {
        await this.exec(ns, "wg", ["setconf", ns.iface, file]);
        await this.exec(ns, "ip", ["link", "set", ns.iface, "mtu", String(config.mtu ?? 1420)]);
        await this.exec(ns, "ip", ["addr", "add", config.address, "dev", ns.iface]);
        await this.exec(ns, "ip", ["link", "set", ns.iface, "up"]);
        for (const allowed of config.peers.flatMap((p) => p.allowedIps)) {
          await this.exec(ns, "ip", ["route", "replace", allowed, "dev", ns.iface]);
        }
      }
      // Ours is ready once the socket exists; its address should be there by then, but a late one only
      // costs a poll here, whereas the first ping would otherwise fail with a misleading "unreachable".
      const address = config.address.split("/")[0]!;
      while (!(await this.exec(ns, "ip", ["-o", "addr", "show", "dev", ns.iface]).catch(() => "")).includes(` ${address}/`)) {
        if (!proc.running || Date.now() > deadline) throw new Error(`${ns.iface} never got ${config.address}`);
        await sleep(25);
      }
    } catch (error) {
      await proc.stop();
      throw new Error(`${kind} did not start in ${ns.side}: ${(error as Error).message}\n${proc.diagnostics()}`);
    }
    return peer;
  }

  /** The tunnel address of a side: host 1 (a) or 2 (b) of the tunnel network. */
  tunnelAddress(side: "a" | "b"): string {
    return `${this.addressing.tunnel}.${side === "a" ? 1 : 2}`;
  }

  /** The config of a side's end of a tunnel to the other side, reached at its current underlay address. */
  tunnelConfig(side: "a" | "b", keys: Record<"a" | "b", KeyPair>, options: Pick<PointToPointEnd, "listenPort" | "mtu" | "presharedKey"> = {}): InterfaceConfig {
    const other = side === "a" ? "b" : "a";
    return pointToPointConfig({
      privateKey: keys[side].privateKey,
      address: this.tunnelAddress(side),
      peerPublicKey: keys[other].publicKey,
      peerAddress: this.tunnelAddress(other),
      peerEndpoint: this[other].address,
      ...options,
    });
  }

  /**
   * Stops a peer (SIGTERM by PID, SIGKILL after a grace) and removes what a killed one leaves: its
   * UAPI socket, and its interface should anything still hold the TUN device open.
   */
  async stopPeer(peer: TunnelPeer): Promise<void> {
    await peer.process.stop();
    try {
      execFileSync("ip", ["-n", peer.ns.name, "link", "del", peer.ns.iface], { stdio: "ignore" });
    } catch {
      // gone with the process, as it should be
    }
    this.removeSocket(peer.ns.iface);
  }

  /**
   * Gives ns a new underlay address in the same /24 and removes the old one: what a peer roaming to a
   * new IP looks like from the other side. Returns the new address.
   */
  moveAddress(ns: Namespace): string {
    const next = `${this.addressing.underlay}.${this.nextHost++}`;
    this.ip("-n", ns.name, "addr", "add", `${next}/24`, "dev", ns.veth);
    this.ip("-n", ns.name, "addr", "del", `${ns.address}/24`, "dev", ns.veth);
    ns.address = next;
    return next;
  }

  /**
   * Kills every tracked process, removes both namespaces (and so the veth pair), sockets and files.
   * Every call gets the one teardown, so a signal arriving during another's is harmless.
   */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      await Promise.all([...this.processes].map((p) => p.stop(1000)));
      this.removeLeftovers();
    })();
    return this.destroying;
  }

  /** destroy() for where nothing can be awaited (an exit handler): SIGKILL without a grace. */
  destroySync(): void {
    for (const p of this.processes) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // exited, not yet reaped
      }
    }
    this.removeLeftovers();
  }

  /**
   * Removes everything when this process exits, and on SIGINT or SIGTERM, which then end it (with
   * 130 or 143) once destroy() is done; `onSignal` is told first. Returns what removes these handlers.
   */
  destroyOnExit(onSignal: (signal: NodeJS.Signals) => void = () => undefined): () => void {
    const onExit = (): void => this.destroySync();
    const signalled = (signal: NodeJS.Signals): void => {
      onSignal(signal);
      void this.destroy().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
    };
    process.once("exit", onExit);
    process.once("SIGINT", signalled);
    process.once("SIGTERM", signalled);
    return () => {
      process.removeListener("exit", onExit);
      process.removeListener("SIGINT", signalled);
      process.removeListener("SIGTERM", signalled);
    };
  }

  private removeLeftovers(): void {
    this.removeNamespaces();
    for (const ns of [this.a, this.b]) this.removeSocket(ns.iface);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private removeNamespaces(): void {
    for (const ns of [this.a, this.b]) {
      try {
        execFileSync("ip", ["netns", "del", ns.name], { stdio: "ignore" });
      } catch {
        // never created, or already gone
      }
    }
  }

  private removeSocket(iface: string): void {
    rmSync(join(UAPI_DIR, `${iface}.sock`), { force: true });
  }
}

// --- TCP transfers through the tunnel ---

// Both scripts run under `node -e` inside a namespace and talk to the test in JSON lines on stdout.
// The data is xorshift32 from a seed, so the sender hashes what it generates and nothing is stored.

const SINK_SCRIPT = `
const net = require("node:net");
const { createHash } = require("node:crypto");
const [host, port] = process.argv.slice(1);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
const server = net.createServer((socket) => {
  server.close();
  const hash = createHash("sha256");
  const started = Date.now();
  let bytes = 0;
  let reported = 0;
  socket.on("data", (d) => {
    hash.update(d);
    bytes += d.length;
    if (bytes >>> 20 > reported >>> 20) { reported = bytes; say({ progress: true, bytes }); }
  });
  socket.on("end", () => { say({ received: true, bytes, sha256: hash.digest("hex"), ms: Date.now() - started }); socket.end(); });
  socket.on("error", (e) => { console.error(e.message); process.exit(1); });
});
server.listen(Number(port), host, () => say({ listening: true }));
`;

const SOURCE_SCRIPT = `
const net = require("node:net");
const { createHash } = require("node:crypto");
const [host, port, totalText, seedText, pauseText] = process.argv.slice(1);
const total = Number(totalText), pauseAt = Number(pauseText) || Infinity;
const say = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
const hash = createHash("sha256");
let state = (Number(seedText) >>> 0) || 1, sent = 0, paused = false, started = 0;
function chunk(limit) {
  const n = Math.min(65536, limit - sent);
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
    words[i] = state;
  }
  return Buffer.from(words.buffer, 0, n);
}
const socket = net.connect({ host, port: Number(port) }, () => { started = Date.now(); pump(); });
function pump() {
  while (sent < total) {
    if (sent >= pauseAt && !paused) {
      paused = true;
      say({ paused: true, bytes: sent });
      process.stdin.once("data", () => { process.stdin.pause(); pump(); });
      return;
    }
    const buf = chunk(sent < pauseAt ? Math.min(pauseAt, total) : total);
    hash.update(buf);
    sent += buf.length;
    if (!socket.write(buf)) { socket.once("drain", pump); return; }
  }
  socket.end(() => say({ sent: true, bytes: sent, sha256: hash.digest("hex"), ms: Date.now() - started }));
}
socket.on("error", (e) => { console.error(e.message); process.exit(1); });
socket.resume();
`;

/** What one end of a transfer saw: its byte count and their sha256 (hex), and how long it took. */
export interface TransferSide {
  bytes: number;
  sha256: string;
  ms: number;
}

export interface TransferOptions {
  from: Namespace;
  to: Namespace;
  /** The receiver's address as the sender dials it (its tunnel address, to go through the tunnel). */
  host: string;
  port: number;
  bytes: number;
  /** Seeds the pseudo-random data (32 bits). */
  seed: number;
  /**
   * Stop sending after this many bytes (a multiple of 1 MiB), wait until they have arrived, run
   * whilePaused, then send the rest on the same connection.
   */
  pauseAt?: number;
  whilePaused?: () => Promise<void>;
  timeoutMs?: number;
}

/** Streams pseudo-random bytes over one TCP connection from one namespace to the other. */
export async function transfer(pair: NamespacePair, options: TransferOptions): Promise<{ sent: TransferSide; received: TransferSide }> {
  const { from, to, host, port, bytes, seed, pauseAt, whilePaused, timeoutMs = 120_000 } = options;
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  const sink = pair.spawn(to, process.execPath, ["-e", SINK_SCRIPT, host, String(port)]);
  let source: NamespaceProcess | undefined;
  try {
    await sink.message("listening", left());
    source = pair.spawn(from, process.execPath, ["-e", SOURCE_SCRIPT, host, String(port), String(bytes), String(seed >>> 0), String(pauseAt ?? 0)]);
    if (pauseAt !== undefined) {
      await source.message("paused", left());
      // Paused means written to the socket, not delivered: wait for the receiver to have it all, and
      // a little more for its acknowledgements, so nothing is in flight while whilePaused runs.
      await sink.message<{ bytes: number }>("progress", left(), (m) => m.bytes >= pauseAt);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await whilePaused?.();
      source.child.stdin?.write("go\n");
    }
    const [sent, received] = await Promise.all([source.message<TransferSide>("sent", left()), sink.message<TransferSide>("received", left())]);
    return { sent, received };
  } catch (error) {
    throw new Error(`transfer ${from.side} → ${to.side} failed: ${(error as Error).message}\n${source?.diagnostics() ?? ""}\n${sink.diagnostics()}`);
  } finally {
    await Promise.all([sink.stop(500), source?.stop(500)]);
  }
}
