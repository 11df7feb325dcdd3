// `wardline bench e2e`: issue 8's product end to end. Throughput from the client's namespace through
// client → gateway → resource host, direct and relayed, beside wireguard-go on the same topology in
// the same run; and how long a fresh TCP connection to a resource not yet authorized takes to set up.
// It runs the lab of ./access.ts (portal, relay, gateway and client from dist/, each in a namespace,
// client and gateway behind nftables NAT routers) once per path:
//   direct   easy NATs (ports kept): ICE punches a hole for ours; wireguard-go's pair punches its own
//            with fixed ports, each side's endpoint the other's router, and persistent keepalive;
//   relayed  hard NATs (both randomize ports): only the TURN relay connects. WireGuard has no relayed
//            path, so ours runs alone there.
//
// 1. Prerequisites: the lab's tools and a built dist/, iperf3, ss, ping, wg, wireguard-go; a missing
//    one fails the suite with the reason.
// 2. Per path: start the lab (not measured, its time reported), an HTTP server on the resource host,
//    relay, gateway and client; time the lab's first connection (ICE, handshake and authorization
//    together, one sample shown for context).
// 3. Direct only, the anchor: the resource host gets an address that only wireguard-go routes;
//    wireguard-go in the client and gateway namespaces, the gateway forwarding and masquerading to the
//    resource host as ours does; a ping across proves the punched path.
// 4. Setup: N fresh addresses on the resource host, an IP resource and a policy for each made through
//    the API before any timing, the client's routes awaited; then one curl per address, whose own
//    clock times SYN → connected and SYN → first byte of the answer.
// 5. Throughput: unmeasured warm-up per implementation, then in rounds, each implementation in turn
//    (order rotating), each case: a one-test iperf3 server on the resource host and its client in the
//    client's namespace, bracketed by /proc readings (all CPUs; the daemons carrying the tunnel). The
//    path the client's /metrics reports must be the lab's, or the figures would be mislabelled.
// 6. Figures (./tunnel.ts's, from iperf3's JSON), ratios, targets, tables.
//
// Processes (by PID), namespaces and temp files are removed on success, on error and on SIGINT or SIGTERM.

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AccessLab, missingAccessLabPrerequisites, missingDaemonFlags } from "./access.js";
import {
  checkTarget, formatRate, formatRatio, formatSpread, formatTarget, loadWarning, ratioOf, startRun, stats,
  type BenchSuite, type Figure, type Ratio, type ReportTable, type SuiteOptions, type SuiteReport, type TargetResult,
} from "./harness.js";
import { generateKeyPair, UAPI_DIR, writeConfig, type InterfaceConfig, type KeyPair, type NamespaceProcess } from "./netns.js";
import { firstLine, parsePidStat, parseProcStat, ticksPerSecond, type CpuTicks } from "./system.js";
import { missingTopologyTools, type AccessTopology, type Host, type NatKind } from "./topology.js";
import { cpuRatio, cpuSpent, parseIperf, tunnelFigure, type CaseRun, type IperfRun, type TunnelCase, type TunnelFigure } from "./tunnel.js";

// --- What is measured ---

export const PATHS = ["direct", "relayed"] as const;
export type PathKind = (typeof PATHS)[number];
export type Impl = "ours" | "wireguard-go";

/** Each path's lab: its routers' NAT, and who carries traffic on it. */
const LABS: Record<PathKind, { nat: NatKind; impls: readonly Impl[] }> = {
  direct: { nat: "easy", impls: ["ours", "wireguard-go"] },
  relayed: { nat: "hard", impls: ["ours"] },
};

/** iperf3 runs; the client is in the client's namespace, the server on the resource host ("up" = client → resource). */
export const CASES: readonly TunnelCase[] = [
  { id: "tcp1-up", title: "TCP, 1 stream, client→resource", args: [] },
  { id: "tcp1-down", title: "TCP, 1 stream, resource→client", args: ["-R"] },
  { id: "udp1200-up", title: "UDP, 1200 B datagrams, client→resource", args: ["-u", "-l", "1200", "-b", "0"] },
];

/** The issue's floors: direct ours ≥ wireguard-go on these cases; setup p99 ≤ 100 ms. */
export const THROUGHPUT_TARGET_CASES: readonly string[] = ["tcp1-up", "tcp1-down"];
export const SETUP_P99_TARGET_MS = 100;

/** Full: about 1.5 minutes of measuring. Quick: about 20 s, only proof that it runs. */
const FULL = { rounds: 3, seconds: 2, setupSamples: 100 };
const QUICK = { rounds: 1, seconds: 1, setupSamples: 10 };

/** Unmeasured traffic before an implementation's first case, so V8 has optimized our hot path. */
const WARMUP: readonly TunnelCase[] = [
  { id: "warmup-up", title: "warm-up, TCP up", args: ["-P", "4"] },
  { id: "warmup-down", title: "warm-up, TCP down", args: ["-P", "4", "-R"] },
];
const WARMUP_SECONDS = 1;

const IPERF_PORT = 5201;
const HTTP_PORT = 80;
/** The lab's resource host is .100 and its restricted address .101; wireguard-go's own address. */
const ANCHOR_HOST = 102;
/** Setup samples take .150 upwards, one fresh address each. */
const SETUP_FIRST_HOST = 150;
export const MAX_SETUP_SAMPLES = 100;
const SETUP_MAX_TIME_S = 5;
const FIRST_CONNECTION_MAX_TIME_S = 30;

/** wireguard-go's pair: its tunnel network, fixed ports (easy NATs keep them), keepalive to punch and hold the hole. */
const ANCHOR = { tunnel: "10.77.0", clientPort: 51901, gatewayPort: 51902, keepalive: 5 } as const;
/** The MTU of ours (the client's and gateway's default --mtu), given to wireguard-go too, so both carry the same packets. */
export const MTU = 1280;

/** A throughput figure: ./tunnel.ts's, on one path. */
export interface E2EFigure extends TunnelFigure {
  path: PathKind;
}

/** One curl: milliseconds from its start (just before the SYN) to connected and to the first byte; Infinity when it failed. */
export interface SetupSample {
  connectMs: number;
  firstByteMs: number;
}

/** Nearest-rank percentiles, in milliseconds: each a time some connection actually took. */
export interface Percentiles {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Connection setup on one path. */
export interface SetupFigure extends Figure {
  path: PathKind;
  connectMs: Percentiles;
  firstByteMs: Percentiles;
  /** Samples whose curl failed or timed out (counted as infinitely slow). */
  failed: number;
  /** The lab's first connection: ICE, the WireGuard handshake and the authorization together. */
  firstConnection: SetupSample;
}

export const figureId = (caseId: string, path: PathKind, impl: Impl): string => `${caseId}/${path}/${impl}`;
export const setupId = (path: PathKind): string => `setup/${path}`;

// --- 1. Prerequisites ---

/** Why the suite cannot run here, or undefined when it can. */
export function missingPrerequisite(): string | undefined {
  const tools = { iperf3: "iperf3", ss: "iproute2", ping: "iputils-ping", wg: "wireguard-tools", "wireguard-go": "wireguard-go" };
  if (process.platform === "linux" && !existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  return missingTopologyTools(tools) ?? missingAccessLabPrerequisites() ?? missingDaemonFlags("relay") ?? missingDaemonFlags("gateway") ?? missingDaemonFlags("client");
}

// --- 2. Labs, removed whatever happens ---

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The labs of a run: each destroyed when done, and all of them (one still starting too) on SIGINT or SIGTERM, which then end the process. */
class LabGuard {
  private readonly labs = new Set<AccessLab>();
  private starting: Promise<AccessLab> | undefined;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.progress(`${signal}: stopping processes and removing the namespaces`);
    const starting = this.starting?.then((lab) => lab.destroy(), () => undefined);
    void Promise.all([...[...this.labs].map((lab) => lab.destroy()), starting]).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };

  constructor(private readonly progress: (line: string) => void) {
    process.once("SIGINT", this.onSignal);
    process.once("SIGTERM", this.onSignal);
  }

  async start(nat: NatKind): Promise<AccessLab> {
    this.starting = AccessLab.start({ clientNat: nat, gatewayNat: nat });
    try {
      const lab = await this.starting;
      this.labs.add(lab);
      return lab;
    } finally {
      this.starting = undefined;
    }
  }

  async destroy(lab: AccessLab): Promise<void> {
    await lab.destroy();
    this.labs.delete(lab);
  }

  release(): void {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
  }
}

/** Who carries a throughput case: the address iperf3 connects to, and the processes whose CPU is the tunnel's. */
interface Carrier {
  impl: Impl;
  address: string;
  daemons: NamespaceProcess[];
}

/** What one lab measured. */
interface LabResult {
  path: PathKind;
  startupMs: number;
  firstConnection: SetupSample;
  setup: SetupSample[];
  runs: Map<string, CaseRun[]>;
}

/** Another host on the resource host's network (a /24). */
const onResourceNet = (resourceAddress: string, host: number): string => resourceAddress.replace(/\d+$/, String(host));

/** The fresh addresses of n setup samples. */
export function setupAddresses(resourceAddress: string, n: number): string[] {
  if (n > MAX_SETUP_SAMPLES) throw new RangeError(`at most ${MAX_SETUP_SAMPLES} setup samples, not ${n}`);
  return Array.from({ length: n }, (_, i) => onResourceNet(resourceAddress, SETUP_FIRST_HOST + i));
}

// --- 3. The anchor: wireguard-go between the client's and the gateway's namespaces ---

/**
 * wireguard-go's two configs. Easy NATs keep a source port, so each side listens on a fixed port and
 * names the other's router WAN address as its endpoint. Both send at once (keepalives): whichever
 * side's packet leaves first opens its own router for the other's, which then come in as answers.
 */
export function anchorConfigs(t: Pick<AccessTopology, "clientRouter" | "gatewayRouter">, keys: { client: KeyPair; gateway: KeyPair }, anchorAddress: string): { client: InterfaceConfig; gateway: InterfaceConfig } {
  const end = (side: "client" | "gateway"): InterfaceConfig => {
    const client = side === "client";
    return {
      privateKey: keys[side].privateKey,
      listenPort: client ? ANCHOR.clientPort : ANCHOR.gatewayPort,
      address: `${ANCHOR.tunnel}.${client ? 1 : 2}/24`,
      mtu: MTU,
      peers: [{
        publicKey: keys[client ? "gateway" : "client"].publicKey,
        allowedIps: client ? [`${ANCHOR.tunnel}.2/32`, `${anchorAddress}/32`] : [`${ANCHOR.tunnel}.1/32`],
        endpoint: client ? `${t.gatewayRouter.address}:${ANCHOR.gatewayPort}` : `${t.clientRouter.address}:${ANCHOR.clientPort}`,
        persistentKeepalive: ANCHOR.keepalive,
      }],
    };
  };
  return { client: end("client"), gateway: end("gateway") };
}

/** The anchor's interface names: unique on the machine, since /var/run/wireguard is shared by every namespace. */
const anchorIface = (side: "client" | "gateway"): string => `wlb${process.pid % 100000}${side === "client" ? "c" : "g"}`;

/** wireguard-go on `iface` in a namespace: configured with wg(8), addressed and up. */
async function startWireguardGo(lab: AccessLab, host: Host, iface: string, config: InterfaceConfig): Promise<NamespaceProcess> {
  const t = lab.topology;
  const proc = t.spawn(host, "wireguard-go", ["-f", iface], { LOG_LEVEL: "error" });
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(UAPI_DIR, `${iface}.sock`))) {
    if (!proc.running || Date.now() > deadline) throw new Error(`wireguard-go did not start in ${host.role}: ${proc.diagnostics()}`);
    await sleep(25);
  }
  const file = join(lab.dir, `${iface}.conf`);
  writeConfig(file, config, { quick: false });
  await t.run(host, "wg", ["setconf", iface, file]);
  await t.run(host, "ip", ["link", "set", iface, "mtu", String(config.mtu)]);
  await t.run(host, "ip", ["address", "add", config.address, "dev", iface]);
  await t.run(host, "ip", ["link", "set", iface, "up"]);
  return proc;
}

/** Brings the anchor up (step 3) and waits until a ping crosses it. */
async function startAnchor(lab: AccessLab): Promise<Carrier> {
  const t = lab.topology;
  const gateway = t.gateways[0]!;
  const address = onResourceNet(t.resource.address, ANCHOR_HOST);
  t.runSync(t.resource, "ip", ["address", "add", `${address}/24`, "dev", "eth0"]);
  const configs = anchorConfigs(t, { client: generateKeyPair(), gateway: generateKeyPair() }, address);
  const daemons = [
    await startWireguardGo(lab, gateway, anchorIface("gateway"), configs.gateway),
    await startWireguardGo(lab, t.client, anchorIface("client"), configs.client),
  ];
  t.runSync(t.client, "ip", ["route", "add", `${address}/32`, "dev", anchorIface("client")]);
  t.runSync(gateway, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  t.runSync(gateway, "nft", ["-f", "-"], [
    "table ip wardline_bench_anchor {",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ip saddr ${ANCHOR.tunnel}.0/24 oifname "eth0" masquerade`,
    "  }",
    "}",
  ].join("\n"));
  for (let attempt = 0; ; attempt++) {
    if (await t.run(t.client, "ping", ["-c", "1", "-W", "1", "-q", address]).then(() => true, () => false)) break;
    if (attempt === 15) throw new Error(`wireguard-go: no ping reply from ${address} through the NATs within 15 s${daemons.map((d) => `\n${d.diagnostics()}`).join("")}`);
  }
  return { impl: "wireguard-go", address, daemons };
}

/**
 * Packets through the anchor's two interfaces so far (0 without an anchor). Ours must not move it:
 * when it did, our tunnel had found a path through wireguard-go's (the client's host candidates
 * once included its addresses), and ours' figures were of one tunnel inside the other.
 */
async function anchorPackets(lab: AccessLab): Promise<number> {
  const t = lab.topology;
  let total = 0;
  for (const [host, side] of [[t.client, "client"], [t.gateways[0]!, "gateway"]] as const) {
    const dir = `/sys/class/net/${anchorIface(side)}/statistics`;
    const text = await t.run(host, "sh", ["-c", `cat ${dir}/rx_packets ${dir}/tx_packets 2>/dev/null || true`]);
    for (const n of text.split(/\s+/)) if (n !== "") total += Number(n);
  }
  return total;
}

function removeAnchorSockets(): void {
  for (const side of ["client", "gateway"] as const) rmSync(join(UAPI_DIR, `${anchorIface(side)}.sock`), { force: true });
}

// --- 4. Connection setup ---

/** Reads curl's `-w "%{time_connect} %{time_starttransfer} %{http_code}"` (seconds); an answer other than 200 is an error. */
export function parseCurlTiming(text: string): SetupSample {
  const [connect, firstByte, status] = text.trim().split(/\s+/);
  if (status !== "200") throw new Error(`curl: HTTP status ${status ?? "missing"} (${text.trim()})`);
  const connectMs = Number(connect) * 1000;
  const firstByteMs = Number(firstByte) * 1000;
  if (!Number.isFinite(connectMs) || !Number.isFinite(firstByteMs) || firstByteMs < connectMs) throw new Error(`curl: unreadable timing '${text.trim()}'`);
  return { connectMs, firstByteMs };
}

const FAILED: SetupSample = { connectMs: Number.POSITIVE_INFINITY, firstByteMs: Number.POSITIVE_INFINITY };

/** One fresh TCP connection from the client's namespace to address, timed by curl; FAILED when it did not complete. */
async function timeConnection(lab: AccessLab, address: string, maxTimeS: number): Promise<SetupSample> {
  const t = lab.topology;
  const args = ["-s", "-o", "/dev/null", "--max-time", String(maxTimeS), "-w", "%{time_connect} %{time_starttransfer} %{http_code}", `http://${address}:${HTTP_PORT}/blob.sha256`];
  return t.run(t.client, "curl", args, (maxTimeS + 5) * 1000).then(parseCurlTiming, () => FAILED);
}

/** Waits until the client routes every address (into its device: none of the lab's own routes is that specific). */
async function waitForRoutes(lab: AccessLab, addresses: readonly string[], timeoutMs = 30_000): Promise<void> {
  const t = lab.topology;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const routes = (await t.run(t.client, "ip", ["-4", "-o", "route", "show"])).split("\n");
    const missing = addresses.filter((a) => !routes.some((line) => line.startsWith(`${a} dev `)));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`the client routed ${addresses.length - missing.length} of ${addresses.length} resource addresses within ${timeoutMs / 1000} s (missing ${missing.slice(0, 3).join(", ")})`);
    await sleep(100);
  }
}

/** Step 4: the resources and policies first, then the routes awaited, then the timed connections. */
async function measureSetup(lab: AccessLab, n: number, progress: (line: string) => void): Promise<SetupSample[]> {
  const t = lab.topology;
  const addresses = setupAddresses(t.resource.address, n);
  t.runSync(t.resource, "ip", ["-batch", "-"], addresses.map((a) => `address add ${a}/24 dev eth0\n`).join(""));
  for (const [i, address] of addresses.entries()) {
    if (i % 10 === 0) progress(`setup: resources and policies ${i + 1}-${Math.min(n, i + 10)} of ${n}`);
    const resource = await lab.addResource({ type: "ip", name: `setup ${i + 1}`, address });
    await lab.addPolicy(lab.ids.groupId, resource.id);
  }
  await waitForRoutes(lab, addresses);
  const samples: SetupSample[] = [];
  for (const [i, address] of addresses.entries()) {
    if (i % 10 === 0) progress(`setup: connections ${i + 1}-${Math.min(n, i + 10)} of ${n}`);
    samples.push(await timeConnection(lab, address, SETUP_MAX_TIME_S));
  }
  return samples;
}

// --- 5. Throughput ---

function readCpu(daemons: readonly NamespaceProcess[]): { cpu: CpuTicks; daemons: number[] } {
  return {
    cpu: parseProcStat(readFileSync("/proc/stat", "utf8")),
    daemons: daemons.map((d) => parsePidStat(readFileSync(`/proc/${d.pid}/stat`, "utf8"))),
  };
}

/** One case: a one-test iperf3 server on the resource host (a server kept across tests sometimes resets the next), the client in the client's namespace. */
async function runCase(lab: AccessLab, carrier: Carrier, c: TunnelCase, seconds: number): Promise<CaseRun> {
  const t = lab.topology;
  const what = `${carrier.impl} ${c.id}`;
  // -J so that --get-server-output hands the client the server's intervals as JSON. Bound to the
  // carrier's address: unbound, UDP answers leave from the host's primary address, which the
  // gateway's conntrack does not expect for wireguard-go's address, and the test fails.
  const server = t.spawn(t.resource, "iperf3", ["-s", "-1", "-J", "-B", carrier.address, "-p", String(IPERF_PORT)]);
  try {
    for (let waited = 0; (await t.run(t.resource, "ss", ["-Hltn", `sport = :${IPERF_PORT}`])).trim() === ""; waited += 50) {
      if (!server.running || waited > 5000) throw new Error(`${what}: the iperf3 server is not listening: ${server.diagnostics()}`);
      await sleep(50);
    }
    const args = ["-c", carrier.address, "-p", String(IPERF_PORT), "-t", String(seconds), "--json", "--get-server-output", "--connect-timeout", "5000", ...c.args];
    const before = readCpu(carrier.daemons);
    const started = performance.now();
    // Through sh so that a failed test's JSON, which names the error, still comes back.
    const timeoutS = seconds + 20;
    const out = await t.run(t.client, "sh", ["-c", 'iperf3 "$@"; exit 0', "iperf3", ...args], timeoutS * 1000).catch((error: Error) => {
      throw new Error(`${what}: iperf3 did not finish within ${timeoutS} s: ${error.message}`);
    });
    const wall = (performance.now() - started) / 1000;
    const dead = carrier.daemons.find((d) => !d.running);
    if (dead) throw new Error(`${what}: a daemon exited during the run: ${dead.diagnostics()}`);
    const after = readCpu(carrier.daemons);
    let run: IperfRun;
    try {
      run = parseIperf(JSON.parse(out));
    } catch (error) {
      throw new Error(`${what}: ${(error as Error).message}`);
    }
    return { run, cpu: cpuSpent(before, after, wall, ticksPerSecond()) };
  } finally {
    for (let waited = 0; server.running && waited < 5000; waited += 50) await sleep(50);
    await server.stop();
  }
}

/** Step 5 on one lab: warm-up, then rounds with the carriers' order rotating. */
async function measureThroughput(lab: AccessLab, path: PathKind, carriers: readonly Carrier[], rounds: number, seconds: number, progress: (line: string) => void): Promise<Map<string, CaseRun[]>> {
  for (const carrier of carriers) {
    for (const w of WARMUP) {
      progress(`${path}, ${carrier.impl}: ${w.title}, ${WARMUP_SECONDS} s`);
      await runCase(lab, carrier, w, WARMUP_SECONDS);
    }
  }
  const runs = new Map<string, CaseRun[]>();
  const total = rounds * carriers.length * CASES.length;
  let done = 0;
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < carriers.length; k++) {
      const carrier = carriers[(k + round) % carriers.length]!;
      for (const c of CASES) {
        progress(`${path} [${++done}/${total}] round ${round + 1}/${rounds}, ${carrier.impl}: ${c.title}, ${seconds} s`);
        const id = figureId(c.id, path, carrier.impl);
        const anchorBefore = carrier.impl === "ours" ? await anchorPackets(lab) : 0;
        runs.set(id, [...(runs.get(id) ?? []), await runCase(lab, carrier, c, seconds)]);
        const crossed = carrier.impl === "ours" ? (await anchorPackets(lab)) - anchorBefore : 0;
        // Keepalives every ANCHOR.keepalive s are all the anchor may carry meanwhile.
        if (crossed > 50) throw new Error(`${path}, ours ${c.id}: ${crossed} packets crossed wireguard-go's interfaces during our run: our path went through the anchor's tunnel`);
      }
    }
  }
  return runs;
}

/** The path the client's connection took all along, from its /metrics: what it is now, and that it never was another. */
async function clientPath(lab: AccessLab): Promise<string> {
  const m = await lab.metrics("client");
  const now = (path: PathKind): number => m.get(`wardline_connections{path="${path}"}`) ?? 0;
  const ever = (path: PathKind): number => m.get(`wardline_path_changes_total{event="connected_${path}"}`) ?? 0;
  const seen = PATHS.filter((path) => now(path) > 0 || ever(path) > 0);
  return seen.length === 1 ? seen[0]! : `connections on ${seen.length === 0 ? "no path" : seen.join(" and ")} paths`;
}

/** Steps 2-5 on one path's lab. */
async function measureLab(guard: LabGuard, path: PathKind, p: { rounds: number; seconds: number; setupSamples: number }, progress: (line: string) => void): Promise<LabResult> {
  const started = performance.now();
  progress(`${path}: starting the lab (${LABS[path].nat} NATs)`);
  const lab = await guard.start(LABS[path].nat);
  try {
    const t = lab.topology;
    await t.startHttp(t.resource, HTTP_PORT, 1024);
    const relay = await lab.startRelay();
    const gateway = await lab.startGateway(0);
    const client = await lab.startClient();
    // The tunnel's CPU: the relay's too when it carries the tunnel.
    const ours: Carrier = { impl: "ours", address: t.resource.address, daemons: path === "relayed" ? [client, gateway, relay] : [client, gateway] };
    const startupMs = performance.now() - started;
    progress(`${path}: the lab's first connection`);
    await waitForRoutes(lab, [t.resource.address]);
    const firstConnection = await timeConnection(lab, t.resource.address, FIRST_CONNECTION_MAX_TIME_S);
    if (firstConnection === FAILED) throw new Error(`${path}: the client could not reach the resource host within ${FIRST_CONNECTION_MAX_TIME_S} s`);
    const carriers = [ours];
    if (LABS[path].impls.includes("wireguard-go")) {
      progress(`${path}: wireguard-go through the NATs`);
      carriers.push(await startAnchor(lab));
    }
    const setup = await measureSetup(lab, p.setupSamples, (line) => progress(`${path} ${line}`));
    const runs = await measureThroughput(lab, path, carriers, p.rounds, p.seconds, progress);
    const seen = await clientPath(lab);
    if (seen !== path) throw new Error(`the ${path} lab's client reports ${seen}: its figures would be mislabelled`);
    return { path, startupMs, firstConnection, setup, runs };
  } finally {
    await guard.destroy(lab);
    removeAnchorSockets();
  }
}

// --- 6. Figures, ratios, targets ---

/** A throughput figure of one case, implementation and path, from its runs (one per round). */
export function e2eFigure(path: PathKind, impl: Impl, c: TunnelCase, runs: readonly CaseRun[]): E2EFigure {
  return { ...tunnelFigure(impl, c, runs), id: figureId(c.id, path, impl), op: `${c.id}/${path}`, path };
}

/** Nearest-rank p50, p99 and maximum; NaN for no values. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

/** The setup figure of one path. */
export function setupFigure(path: PathKind, samples: readonly SetupSample[], firstConnection: SetupSample): SetupFigure {
  if (samples.length === 0) throw new Error(`bench e2e: no setup samples on the ${path} path`);
  const firstByteMs = percentiles(samples.map((s) => s.firstByteMs));
  const done = samples.filter((s) => Number.isFinite(s.firstByteMs));
  // The harness's rate fields: connections set up per second one after another, for shape only.
  const rates = stats(done.length > 0 ? done.map((s) => 1000 / s.firstByteMs) : [0]);
  return {
    id: setupId(path),
    impl: "ours",
    op: "setup",
    size: 0,
    ops: 1,
    bytes: 0,
    detail: `SYN → first byte of a fresh TCP connection to a resource not yet authorized, ${path} path`,
    samples: samples.length,
    iterationsPerSample: 1,
    mbPerSec: null,
    opsPerSec: rates,
    nsPerOp: firstByteMs.p50 * 1e6,
    path,
    connectMs: percentiles(samples.map((s) => s.connectMs)),
    firstByteMs,
    failed: samples.length - done.length,
    firstConnection,
  };
}

const setupOp = (path: PathKind): string => `setup p99/${path}`;

/**
 * Direct: ours ÷ wireguard-go in throughput, and wireguard-go ÷ ours in CPU per GB; ours relayed ÷
 * ours direct; each path's setup p99 against the target, as target ÷ p99. All ≥ 1 favour ours.
 */
export function e2eRatios(figures: readonly Figure[]): Ratio[] {
  const has = (id: string): boolean => figures.some((f) => f.id === id);
  const ratios: Ratio[] = [];
  for (const c of CASES) {
    const [ours, anchor, relayed] = [figureId(c.id, "direct", "ours"), figureId(c.id, "direct", "wireguard-go"), figureId(c.id, "relayed", "ours")];
    if (has(ours) && has(anchor)) ratios.push(ratioOf(figures, ours, anchor), cpuRatio(figures, ours, anchor));
    if (has(ours) && has(relayed)) ratios.push(ratioOf(figures, relayed, ours));
  }
  for (const path of PATHS) {
    const f = figures.find((x) => x.id === setupId(path)) as SetupFigure | undefined;
    if (f) ratios.push({ op: setupOp(path), size: 0, ours: f.id, anchor: `target p99 ≤ ${SETUP_P99_TARGET_MS} ms`, ratio: SETUP_P99_TARGET_MS / f.firstByteMs.p99 });
  }
  return ratios;
}

/** The issue's targets among the ratios: direct ≥ wireguard-go on single-stream TCP, and setup p99 ≤ 100 ms. */
export function e2eTargets(ratios: readonly Ratio[]): TargetResult[] {
  const wanted = new Set([...THROUGHPUT_TARGET_CASES.map((id) => `${id}/direct`), ...PATHS.map(setupOp)]);
  return ratios.filter((r) => wanted.has(r.op)).map((r) => checkTarget(r, 1));
}

// --- The run, start to finish ---

/** What tests and development may narrow. */
export interface E2ERunOptions {
  paths?: readonly PathKind[];
  rounds?: number;
  seconds?: number;
  setupSamples?: number;
}

/** Runs the suite; the CLI's entry is `e2eSuite.run`, which measures both paths. */
export async function runE2eSuite(options: SuiteOptions, narrow: E2ERunOptions = {}): Promise<SuiteReport> {
  const missing = missingPrerequisite();
  if (missing !== undefined) throw new Error(`cannot run: ${missing}`);
  const mode = options.quick ? QUICK : FULL;
  const p = { rounds: narrow.rounds ?? mode.rounds, seconds: narrow.seconds ?? mode.seconds, setupSamples: narrow.setupSamples ?? mode.setupSamples };
  if (p.setupSamples < 1 || p.setupSamples > MAX_SETUP_SAMPLES) throw new RangeError(`setup samples must be 1-${MAX_SETUP_SAMPLES}, not ${p.setupSamples}`);
  const paths = narrow.paths ?? PATHS;
  const budget = { warmupMs: WARMUP.length * WARMUP_SECONDS * 1000, sampleMs: 1000, samples: p.rounds * p.seconds };
  const { progress, header } = await startRun("e2e", { ...options, budget });

  const guard = new LabGuard(progress);
  const labs: LabResult[] = [];
  try {
    for (const path of paths) labs.push(await measureLab(guard, path, p, progress));
  } finally {
    guard.release();
  }

  const figures: Figure[] = labs.flatMap((lab) => [
    ...LABS[lab.path].impls.flatMap((impl) => CASES.map((c) => e2eFigure(lab.path, impl, c, lab.runs.get(figureId(c.id, lab.path, impl)) ?? []))),
    setupFigure(lab.path, lab.setup, lab.firstConnection),
  ]);
  const ratios = e2eRatios(figures);
  const common = header();
  const startupS = labs.map((lab) => lab.startupMs / 1000);
  const measuredS = common.durationMs / 1000 - startupS.reduce((a, b) => a + b, 0);
  const notes = [
    `The lab of bench/access.ts, built anew for each path: ${paths.map((path) => `${path} behind ${LABS[path].nat} NATs`).join(", ")}. Starting a lab (namespaces, portal, provisioning, relay, gateway, client) is not measured: ${labs.map((lab, i) => `${lab.path} ${startupS[i]!.toFixed(1)} s`).join(", ")}; the measuring took about ${measuredS.toFixed(0)} s.`,
    "wireguard-go has no relayed path (WireGuard knows no TURN): the relayed lab runs ours alone, and 'relayed ÷ direct' compares ours across the two labs, measured one after the other. On the direct path wireguard-go punches through the same NATs as ours: fixed listen ports, each side's endpoint the other's router, persistent keepalive; it routes an address of its own on the resource host, so the two never share a route, and the gateway namespace forwards and masquerades its traffic as ours does. Nor does ours ride inside it: our daemons offer no ICE candidates on tunnel interfaces, and a run of ours during which more than keepalives crossed wireguard-go's interfaces fails the suite (figures recorded before 2026-12-03 17:00 UTC were taken that way, ours inside wireguard-go's tunnel, and are void).",
    `Both implementations carry ${MTU}-byte packets (ours' default MTU). Throughput samples are the receiver's one-second intervals (the partial last one dropped) over ${p.rounds} ${p.rounds === 1 ? "round" : "rounds"} of one ${p.seconds} s iperf3 run per case; the implementations take turns a run at a time, the order rotating by round, after ${WARMUP.length * WARMUP_SECONDS} s of unmeasured TCP each.`,
    "CPU per GB: busy ticks of all CPUs over an iperf3 client's run ÷ payload bytes received, median of the runs, as in the tunnel suite; in parentheses the tunnel's daemons alone (ours: client and gateway, and the relay when relayed; wireguard-go: its two processes).",
    `Connection setup: one curl per sample to a fresh address of the resource host, covered by an IP resource and a policy of its own, made through the API and routed by the client before timing began (the API calls are not timed). curl's clock starts before its SYN: 'connected' is SYN → SYN-ACK, which takes in the client holding the SYN while the portal authorizes it and tells the gateway; 'first byte' adds the HTTP request and the answer's first byte. The client already has a tunnel to the gateway, as it does once it has used the site; the lab's first connection, shown on its own, adds ICE and the WireGuard handshake. A sample that fails or takes over ${SETUP_MAX_TIME_S} s counts as infinitely slow; percentiles are nearest-rank.`,
    `The portal, relay, NAT routers, the idle implementation, iperf3 and the tunnel all share the machine's ${common.machine.cores} cores.`,
  ];
  if (options.quick) notes.push(`Quick mode: one round of one-second runs and ${p.setupSamples} setup samples per path, which only proves the suite works; record full-mode runs only.`);
  if (loadWarning(common.machine) !== undefined) {
    notes.push(`${common.machine.busyCores} of ${common.machine.cores} cores were busy with other processes as the suite started: figures may be low and spreads wide, and such load can hit one implementation's run and not the other's.`);
  }
  return {
    ...common,
    units: {
      mbPerSec: "10^6 payload bytes per second received (median of the receiver's 1 s intervals); tables show Mbit/s",
      opsPerSec: "iperf3 blocks received per second (128 KiB TCP writes, datagrams); for setup figures, connections per second one after another",
      cpuSecondsPerGB: "busy CPU seconds of all CPUs per 10^9 payload bytes received",
      daemonCpuSecondsPerGB: "utime + stime of the tunnel's daemons per 10^9 payload bytes received",
      connectMs: "milliseconds from curl's start (before the SYN) to the connection established",
      firstByteMs: "milliseconds from curl's start to the answer's first byte",
      ratio: "throughput: first ÷ second; cpu-per-gb: second ÷ first; setup: target ÷ p99 (≥ 1 favours ours or meets the target)",
    },
    subject: {
      Topology: "bench/access.ts: the client behind one NAT router, the gateway and the resource host behind another, relay and portal on the WAN bridge between them; iperf3 and curl in the client's namespace, their servers on the resource host",
      Paths: paths.map((path) => `${path}: ${LABS[path].nat} NATs, ${LABS[path].impls.join(" and ")}`).join("; "),
      Ours: "`wardline portal`, `relay`, `gateway` and `client` from dist/, default flags",
      "wireguard-go": firstLine("wireguard-go", ["--version"]),
      iperf3: firstLine("iperf3", ["--version"]),
      Cases: `${CASES.map((c) => `${c.id}: ${c.title}`).join("; ")}; ${p.rounds} × ${p.seconds} s each`,
      "Setup samples": `${p.setupSamples} per path`,
      "Lab start-up, s": Object.fromEntries(labs.map((lab, i) => [lab.path, Math.round(startupS[i]! * 10) / 10])),
    },
    figures,
    ratios,
    targets: e2eTargets(ratios),
    notes,
  };
}

// --- Tables ---

const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : "failed");

function tables(report: SuiteReport): ReportTable[] {
  const figure = (id: string): E2EFigure | undefined => report.figures.find((f) => f.id === id) as E2EFigure | undefined;
  const cell = (id: string, show: (f: E2EFigure) => string): string => {
    const f = figure(id);
    return f ? show(f) : "–";
  };
  const ratio = (op: string, ours: string, anchor: string): string => {
    const r = report.ratios.find((x) => x.op === op && x.ours === ours && x.anchor === anchor);
    return r ? formatRatio(r.ratio) : "–";
  };
  const mbit = (f: E2EFigure): string => `${formatRate(f.mbPerSec!.median * 8)} ${formatSpread(f.mbPerSec!)}`;
  const perGB = (f: E2EFigure): string => `${formatRate(f.cpuSecondsPerGB)} (${f.daemonCpuSecondsPerGB === null ? "–" : formatRate(f.daemonCpuSecondsPerGB)})`;
  const id = (c: TunnelCase, path: PathKind, impl: Impl): string => figureId(c.id, path, impl);
  const setups = PATHS.map((path) => report.figures.find((f) => f.id === setupId(path)) as SetupFigure | undefined).filter((f) => f !== undefined);
  const udp = CASES.filter((c) => c.args.includes("-u"));
  const carriers: [PathKind, Impl][] = [["direct", "ours"], ["direct", "wireguard-go"], ["relayed", "ours"]];
  return [
    {
      title: "Throughput received, Mbit/s (median of 1 s intervals)",
      headers: ["case", "ours direct", "wireguard-go direct", "ours ÷ wireguard-go", "ours relayed", "wireguard-go relayed", "relayed ÷ direct (ours)"],
      rows: CASES.map((c) => [
        c.title,
        cell(id(c, "direct", "ours"), mbit),
        cell(id(c, "direct", "wireguard-go"), mbit),
        ratio(`${c.id}/direct`, id(c, "direct", "ours"), id(c, "direct", "wireguard-go")),
        cell(id(c, "relayed", "ours"), mbit),
        "none: WireGuard has no relay",
        ratio(`${c.id}/relayed`, id(c, "relayed", "ours"), id(c, "direct", "ours")),
      ]),
    },
    {
      title: "UDP datagrams received per second, and loss",
      headers: ["case", ...carriers.flatMap(([path, impl]) => [`${impl} ${path} /s`, "loss"])],
      rows: udp.map((c) => [
        c.title,
        ...carriers.flatMap(([path, impl]) => [cell(id(c, path, impl), (f) => formatRate(f.opsPerSec.median)), cell(id(c, path, impl), (f) => `${(f.lostPercent ?? 0).toFixed(1)}%`)]),
      ]),
    },
    {
      title: "CPU seconds per GB received: all CPUs (the tunnel's daemons)",
      headers: ["case", "ours direct", "wireguard-go direct", "wireguard-go ÷ ours", "ours relayed"],
      rows: CASES.map((c) => [
        c.title,
        cell(id(c, "direct", "ours"), perGB),
        cell(id(c, "direct", "wireguard-go"), perGB),
        ratio(`${c.id}/cpu-per-gb`, id(c, "direct", "ours"), id(c, "direct", "wireguard-go")),
        cell(id(c, "relayed", "ours"), perGB),
      ]),
    },
    {
      title: "Connection setup, ms: SYN to connected and to first byte, fresh TCP connections to resources not yet authorized (ours only)",
      headers: ["path", "samples", "connected p50", "connected p99", "first byte p50", "first byte p99", "first byte max", "failed", "lab's first connection: connected / first byte"],
      rows: setups.map((f) => [
        f.path, String(f.samples), ms(f.connectMs.p50), ms(f.connectMs.p99), ms(f.firstByteMs.p50), ms(f.firstByteMs.p99), ms(f.firstByteMs.max), String(f.failed),
        `${ms(f.firstConnection.connectMs)} / ${ms(f.firstConnection.firstByteMs)}`,
      ]),
    },
    ...(report.targets.length === 0 ? [] : [{
      title: "Targets",
      headers: ["measure", "ratio", "target", "result"],
      alignRight: [false, true, false, false],
      rows: report.targets.map((t) => {
        const setup = t.op.startsWith("setup p99/");
        const what = setup ? `connection setup p99, ${t.op.slice("setup p99/".length)} (${SETUP_P99_TARGET_MS} ms ÷ p99)` : `${CASES.find((c) => `${c.id}/direct` === t.op)?.title ?? t.op}, direct: ours ÷ wireguard-go`;
        return [what, formatRatio(t.ratio), setup ? `p99 ≤ ${SETUP_P99_TARGET_MS} ms` : `≥ ${t.min}×`, formatTarget(t)];
      }),
    }]),
  ];
}

export const e2eSuite: BenchSuite = {
  name: "e2e",
  summary: "issue 8 end to end in namespaces behind NAT: iperf3 through client → gateway → resource, direct and relayed, vs wireguard-go on the same topology; connection setup p50/p99",
  run: (options) => runE2eSuite(options),
  tables,
};
