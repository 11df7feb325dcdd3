// `wardline bench tunnel`: what a whole tunnel carries, end to end through the kernel, and what it costs
// in CPU. Two network namespaces, a and b, are joined by a veth pair; iperf3 serves in b and runs its
// client in a. The same cases run over three pairs, taking turns in one run:
//   ours          `wardline wg` in each namespace, iperf3 over the tunnel addresses
//   wireguard-go  the reference userspace implementation, likewise
//   veth          iperf3 over the underlay addresses: the ceiling, with no tunnel at all
//
// 1. Check the prerequisites (root, ip, ss, ping, iperf3, wg, wireguard-go, /dev/net/tun, a built
//    `wardline wg`); a missing one fails the suite with the reason.
// 2. Build the topology (./netns.ts, shared with the tunnel tests): namespaces, the veth pair, underlay
//    addresses. Every process started from here on is tracked by PID, and the namespaces and
//    processes are removed on success, on error and on SIGINT or SIGTERM.
// 3. In rounds (three in full mode), for each pair in turn, the order rotating by round: bring both
//    ends up, ping across until the tunnel carries traffic (the handshake is done), then run each
//    case: a fresh iperf3 server for the one test, and the client run bracketed by readings of
//    /proc/stat (all CPUs) and /proc/<pid>/stat (the two daemons). Then stop the pair.
// 4. Figures from iperf3's JSON: received throughput, the median of the receiver's one-second
//    intervals over all rounds; CPU seconds per GB received over each client run, median of rounds.
// 5. Ratios (ours ÷ wireguard-go, each ÷ veth; CPU per GB inverted so ≥ 1 favours ours) and targets.

import { readFileSync } from "node:fs";
import {
  checkTarget, findFigure, formatRate, formatRatio, formatSize, formatSpread, formatTarget, loadWarning, ratioOf,
  startRun, stats, type BenchSuite, type Figure, type Ratio, type ReportTable, type SuiteOptions, type SuiteReport,
  type TargetResult,
} from "./harness.js";
import { firstLine, parsePidStat, parseProcStat, ticksPerSecond, type CpuTicks } from "./system.js";
import {
  generateKeyPair, missingPrerequisites, NamespacePair, type NamespaceProcess, type PeerKind, type TunnelPeer,
} from "./netns.js";

// --- What is measured ---

/** The tunnels compared, and the bare veth as the ceiling; run in this order. */
export const PAIRS = ["ours", "wireguard-go", "veth"] as const;
export type PairName = (typeof PAIRS)[number];

/** One iperf3 client run; a is the client's namespace, b the server's. */
export interface TunnelCase {
  id: string;
  title: string;
  /** iperf3 client arguments beyond address, port, duration and JSON output. */
  args: readonly string[];
}

export const CASES: readonly TunnelCase[] = [
  { id: "tcp1-ab", title: "TCP, 1 stream, a→b", args: [] },
  { id: "tcp1-ba", title: "TCP, 1 stream, b→a", args: ["-R"] },
  { id: "tcp4-ab", title: "TCP, 4 streams, a→b", args: ["-P", "4"] },
  { id: "tcp4-ba", title: "TCP, 4 streams, b→a", args: ["-P", "4", "-R"] },
  { id: "udp64-ab", title: "UDP, 64 B datagrams, a→b", args: ["-u", "-l", "64", "-b", "0"] },
];

/** The issue's floors: ours at least matches wireguard-go on single-stream TCP, in throughput and CPU per GB. */
export const TARGETS: readonly { caseId: string; kind: "throughput" | "cpu-per-gb"; min: number }[] = [
  { caseId: "tcp1-ab", kind: "throughput", min: 1 },
  { caseId: "tcp1-ba", kind: "throughput", min: 1 },
  { caseId: "tcp1-ab", kind: "cpu-per-gb", min: 1 },
  { caseId: "tcp1-ba", kind: "cpu-per-gb", min: 1 },
];

/**
 * Full mode: three rounds of 3 s runs, nine one-second samples per figure taken at three different
 * times; about 2.5 minutes for the suite. Quick mode: one round of 1 s runs, only proof that it runs.
 */
const FULL = { rounds: 3, seconds: 3 };
const QUICK = { rounds: 1, seconds: 1 };

/**
 * Unmeasured traffic through a freshly started tunnel before its first case: our daemon runs on V8,
 * whose optimizing compiler needs a moment of traffic before the hot path runs at speed, and a
 * first case should not pay for that. Both directions, so both daemons seal and open at volume.
 */
const WARMUP: readonly TunnelCase[] = [
  { id: "warmup-ab", title: "warm-up, TCP, a→b", args: ["-P", "4"] },
  { id: "warmup-ba", title: "warm-up, TCP, b→a", args: ["-P", "4", "-R"] },
];
const WARMUP_SECONDS = 1;

const ADDRESSING = { underlay: "10.98.0", tunnel: "10.99.0" };
const WG_PORT = 51820;
const IPERF_PORT = 5201;
const MTU = 1420;

/** A figure of this suite: the harness's fields plus what iperf3 and /proc said. */
export interface TunnelFigure extends Figure {
  pair: PairName;
  case: string;
  /** iperf3 runs (one per round) the figure combines. */
  runs: number;
  /** Payload bytes received over all runs, and the runs' total length as iperf3 timed them. */
  receivedBytes: number;
  seconds: number;
  /** receivedBytes ÷ seconds, in 10^6 bytes per second (mbPerSec is the median of intervals). */
  averageMbPerSec: number;
  /** CPU seconds of all CPUs (user, nice, system, irq, softirq) while the iperf3 clients ran, all runs. */
  cpuSeconds: number;
  /** Busy CPU seconds ÷ wall seconds of a client run (how many cores were busy); median over the runs. */
  busyCores: number;
  /** Busy CPU seconds per 10^9 payload bytes received; median over the runs. */
  cpuSecondsPerGB: number;
  /** The two WireGuard daemons' own CPU seconds (utime + stime), all runs; null for veth. */
  daemonCpuSeconds: number | null;
  /** As cpuSecondsPerGB and busyCores, for the two daemons alone; null for veth. */
  daemonCpuSecondsPerGB: number | null;
  daemonBusyCores: number | null;
  /** TCP retransmissions the senders counted, all runs; null for UDP. */
  retransmits: number | null;
  /** UDP: datagrams the receiver found missing, percent of those sent; median over the runs; null for TCP. */
  lostPercent: number | null;
}

// --- 1. Prerequisites ---

/** Why the suite cannot run here, or undefined when it can. */
export function missingPrerequisite(pairs: readonly PairName[] = PAIRS): string | undefined {
  const kinds = pairs.filter((p): p is PeerKind => p !== "veth");
  return missingPrerequisites(kinds, { ss: "iproute2", iperf3: "iperf3" });
}

// --- 2 and 3. Pairs, on the topology of ./netns.ts ---

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settled within `ms`; the timer is cleared either way, so it never holds the process open. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A pair that is up: where iperf3 connects, and which processes are the daemons. */
interface PairUp {
  serverAddress: string;
  daemons: NamespaceProcess[];
  down(): Promise<void>;
}

/** Both ends of a pair up: a daemon of one implementation in each namespace, each the other's peer; or the bare veth. */
async function pairUp(net: NamespacePair, pair: PairName): Promise<PairUp> {
  if (pair === "veth") return { serverAddress: net.b.address, daemons: [], down: async () => {} };
  const keys = { a: generateKeyPair(), b: generateKeyPair() };
  const peers: TunnelPeer[] = [];
  const down = async (): Promise<void> => {
    await Promise.all(peers.map((p) => net.stopPeer(p)));
  };
  try {
    for (const side of ["a", "b"] as const) {
      peers.push(await net.startPeer(net[side], pair, net.tunnelConfig(side, keys, { listenPort: WG_PORT, mtu: MTU })));
    }
  } catch (error) {
    await down();
    throw error;
  }
  return { serverAddress: net.tunnelAddress("b"), daemons: peers.map((p) => p.process), down };
}

/**
 * A fresh iperf3 server for one test (-1): a server kept across tests sometimes still tidies up the
 * last one when the next client connects, and resets it.
 */
async function iperfServer(net: NamespacePair): Promise<NamespaceProcess> {
  // -J so that --get-server-output hands the client the server's intervals as JSON.
  const server = net.spawn(net.b, "iperf3", ["-s", "-1", "-J", "-p", String(IPERF_PORT)]);
  const listening = async (): Promise<boolean> =>
    (await net.exec(net.b, "ss", ["-Hltn", `sport = :${IPERF_PORT}`]).catch(() => "")).trim() !== "";
  const deadline = Date.now() + 5000;
  while (!(await listening())) {
    if (!server.running) throw new Error(`iperf3 server: the process exited: ${server.diagnostics()}`);
    if (Date.now() > deadline) throw new Error(`iperf3 server: not ready within 5000 ms: ${server.diagnostics()}`);
    await sleep(50);
  }
  return server;
}

/** Pings across until a reply comes: for the tunnels, proof that the handshake completed. */
async function waitForPath(net: NamespacePair, address: string, pair: PairName, daemons: readonly NamespaceProcess[]): Promise<void> {
  for (let attempt = 0; attempt < 15; attempt++) {
    const dead = daemons.find((d) => !d.running);
    if (dead) throw new Error(`${pair}: a daemon exited: ${dead.diagnostics()}`);
    try {
      await net.exec(net.a, "ping", ["-c", "1", "-W", "1", "-q", address]);
      return;
    } catch {
      // no reply yet: the handshake may still be under way
    }
  }
  throw new Error(`${pair}: no ping reply from ${address} within 15 s${daemons.map((d) => `\n${d.diagnostics()}`).join("")}`);
}


function readCpu(daemons: readonly NamespaceProcess[]): { cpu: CpuTicks; daemons: number[] } {
  return {
    cpu: parseProcStat(readFileSync("/proc/stat", "utf8")),
    daemons: daemons.map((d) => parsePidStat(readFileSync(`/proc/${d.pid}/stat`, "utf8"))),
  };
}

/** One case: a one-test iperf3 server in namespace b, the client in a. */
async function runCase(net: NamespacePair, up: PairUp, pair: PairName, c: TunnelCase, seconds: number): Promise<CaseRun> {
  const args = ["-c", up.serverAddress, "-p", String(IPERF_PORT), "-t", String(seconds), "--json", "--get-server-output", "--connect-timeout", "5000", ...c.args];
  const server = await iperfServer(net);
  try {
    return await runClient(net, up, pair, c, args, seconds);
  } finally {
    if (!(await settlesWithin(server.exited, 5000))) await server.stop();
  }
}

/** The client's run, bracketed by CPU readings. */
async function runClient(net: NamespacePair, up: PairUp, pair: PairName, c: TunnelCase, args: string[], seconds: number): Promise<CaseRun> {
  const before = readCpu(up.daemons);
  const started = performance.now();
  const client = net.spawn(net.a, "iperf3", args);
  // closed, not exited: only then has all of stdout been read.
  const timeoutMs = (seconds + 20) * 1000;
  if (!(await settlesWithin(client.closed, timeoutMs))) {
    await client.stop();
    throw new Error(`${pair} ${c.id}: iperf3 did not finish within ${timeoutMs / 1000} s`);
  }
  const wall = (performance.now() - started) / 1000;
  const dead = up.daemons.find((d) => !d.running);
  if (dead) throw new Error(`${pair} ${c.id}: a daemon exited during the run: ${dead.diagnostics()}`);
  const after = readCpu(up.daemons);
  let json: unknown;
  try {
    json = JSON.parse(client.output());
  } catch {
    throw new Error(`${pair} ${c.id}: iperf3 printed no JSON: ${client.diagnostics()}`);
  }
  let run: IperfRun;
  try {
    run = parseIperf(json);
  } catch (error) {
    throw new Error(`${pair} ${c.id}: ${(error as Error).message}`);
  }
  return { run, cpu: cpuSpent(before, after, wall, ticksPerSecond()) };
}

/** iperf3 failing to start the test at all: worth a second try, unlike a failure midway. */
const RETRYABLE = /iperf3: (unable to connect to server|the server is busy)/;
const ATTEMPTS = 3;

/** Runs a case, again when iperf3 could not start the test; each retry is added to `retries` for the notes. */
async function runCaseWithRetry(net: NamespacePair, up: PairUp, pair: PairName, c: TunnelCase, seconds: number, retries: string[], progress: (line: string) => void): Promise<CaseRun> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runCase(net, up, pair, c, seconds);
    } catch (error) {
      const message = (error as Error).message;
      if (attempt >= ATTEMPTS || !RETRYABLE.test(message)) throw error;
      retries.push(message);
      progress(`${message}; trying again (${attempt + 1} of ${ATTEMPTS})`);
      await sleep(1000);
    }
  }
}

// --- 4. Reading iperf3's JSON ---

/** What one iperf3 client run reports, from the receiver's side. */
export interface IperfRun {
  protocol: "TCP" | "UDP";
  streams: number;
  reverse: boolean;
  /** Bytes per write: 128 KiB for TCP by default, the datagram payload for UDP. */
  blockSize: number;
  receivedBytes: number;
  seconds: number;
  /** Received bytes per second of each whole one-second interval on the receiver. */
  intervalRates: number[];
  retransmits: number | null;
  udp: { packets: number; lostPackets: number; lostPercent: number } | null;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

function field(object: unknown, path: string): unknown {
  let at: unknown = object;
  for (const key of path.split(".")) {
    if (!isObject(at)) return undefined;
    at = at[key];
  }
  return at;
}

function numberAt(object: unknown, path: string): number {
  const value = field(object, path);
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`iperf3 JSON: ${path} is not a number`);
  return value;
}

/** Intervals shorter than this are the tail iperf3 reports after the last whole second. */
const MIN_INTERVAL_SECONDS = 0.5;

function intervalRates(intervals: unknown): number[] {
  if (!Array.isArray(intervals)) return [];
  const rates: number[] = [];
  for (const interval of intervals) {
    const sum = field(interval, "sum");
    const seconds = field(sum, "seconds");
    const bytes = field(sum, "bytes");
    if (typeof seconds !== "number" || typeof bytes !== "number" || field(sum, "omitted") === true) continue;
    if (seconds >= MIN_INTERVAL_SECONDS) rates.push(bytes / seconds);
  }
  return rates;
}

/**
 * Reads an iperf3 client's `--json --get-server-output` result. The receiver's intervals are the
 * server's when the client sends and the client's own with -R; without them the whole-run average
 * stands in as the one sample.
 */
export function parseIperf(json: unknown): IperfRun {
  if (!isObject(json)) throw new Error("iperf3 JSON: not an object");
  if (typeof json.error === "string") throw new Error(`iperf3: ${json.error}`);
  const test = "start.test_start";
  const received = "end.sum_received";
  const protocol = field(json, `${test}.protocol`);
  if (protocol !== "TCP" && protocol !== "UDP") throw new Error(`iperf3 JSON: unknown protocol ${String(protocol)}`);
  const reverse = numberAt(json, `${test}.reverse`) !== 0;
  const receivedBytes = numberAt(json, `${received}.bytes`);
  const seconds = numberAt(json, `${received}.seconds`);
  if (seconds <= 0) throw new Error("iperf3 JSON: the run lasted no time");
  const rates = intervalRates(reverse ? json.intervals : field(json, "server_output_json.intervals"));
  const retransmits = field(json, "end.sum_sent.retransmits");
  return {
    protocol,
    streams: numberAt(json, `${test}.num_streams`),
    reverse,
    blockSize: numberAt(json, `${test}.blksize`),
    receivedBytes,
    seconds,
    intervalRates: rates.length > 0 ? rates : [receivedBytes / seconds],
    retransmits: protocol === "TCP" && typeof retransmits === "number" ? retransmits : null,
    udp: protocol === "UDP"
      ? {
          packets: numberAt(json, `${received}.packets`),
          lostPackets: numberAt(json, `${received}.lost_packets`),
          lostPercent: numberAt(json, `${received}.lost_percent`),
        }
      : null,
  };
}

// --- 4. Reading /proc ---


/** CPU seconds per 10^9 bytes; infinite when nothing arrived. */
export function cpuSecondsPerGB(cpuSeconds: number, bytes: number): number {
  return bytes > 0 ? cpuSeconds / (bytes / 1e9) : Number.POSITIVE_INFINITY;
}

/** What the CPU did while one client ran: deltas of /proc readings, converted to seconds. */
export interface CpuSpent {
  cpuSeconds: number;
  wallSeconds: number;
  daemonCpuSeconds: number | null;
}

/** The difference of two readings taken `wallSeconds` apart, at `ticksPerSecond` (USER_HZ). */
export function cpuSpent(
  before: { cpu: CpuTicks; daemons: number[] },
  after: { cpu: CpuTicks; daemons: number[] },
  wallSeconds: number,
  ticksPerSecond: number,
): CpuSpent {
  const daemonTicks = after.daemons.reduce((sum, t, i) => sum + t - (before.daemons[i] ?? t), 0);
  return {
    cpuSeconds: (after.cpu.busy - before.cpu.busy) / ticksPerSecond,
    wallSeconds,
    daemonCpuSeconds: after.daemons.length > 0 ? daemonTicks / ticksPerSecond : null,
  };
}

// --- 4 and 5. Figures, ratios, targets ---

export const figureId = (caseId: string, pair: PairName): string => `${caseId}/${pair}`;

/** One iperf3 run of a case on a pair, with the CPU it took. */
export interface CaseRun {
  run: IperfRun;
  cpu: CpuSpent;
}

const median = (values: readonly number[]): number => stats(values).median;
const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/**
 * One case on one pair as a figure, from its runs (one per round): rates from all the receiver's
 * intervals; CPU per GB and cores busy per run, then the median, so one run disturbed by other load
 * does not set the figure.
 */
export function tunnelFigure(pair: PairName, c: TunnelCase, runs: readonly CaseRun[]): TunnelFigure {
  if (runs.length === 0) throw new Error(`bench tunnel: no runs of ${figureId(c.id, pair)}`);
  const blockSize = runs[0]!.run.blockSize;
  const rates = runs.flatMap(({ run }) => run.intervalRates);
  const mbPerSec = stats(rates.map((r) => r / 1e6));
  const opsPerSec = stats(rates.map((r) => r / blockSize));
  const receivedBytes = sum(runs.map(({ run }) => run.receivedBytes));
  const seconds = sum(runs.map(({ run }) => run.seconds));
  const perGB = (cpuOf: (r: CaseRun) => number): number => median(runs.map((r) => cpuSecondsPerGB(cpuOf(r), r.run.receivedBytes)));
  const cores = (cpuOf: (r: CaseRun) => number): number => median(runs.map((r) => (r.cpu.wallSeconds > 0 ? cpuOf(r) / r.cpu.wallSeconds : 0)));
  const daemons = runs.every((r) => r.cpu.daemonCpuSeconds !== null);
  const daemonCpu = (r: CaseRun): number => r.cpu.daemonCpuSeconds ?? 0;
  const tcp = runs.every((r) => r.run.retransmits !== null);
  const udp = runs.every((r) => r.run.udp !== null);
  return {
    id: figureId(c.id, pair),
    impl: pair,
    op: c.id,
    size: blockSize,
    ops: 1,
    bytes: blockSize,
    detail: c.title,
    samples: rates.length,
    iterationsPerSample: 1,
    mbPerSec,
    opsPerSec,
    nsPerOp: 1e9 / opsPerSec.median,
    pair,
    case: c.id,
    runs: runs.length,
    receivedBytes,
    seconds,
    averageMbPerSec: receivedBytes / seconds / 1e6,
    cpuSeconds: sum(runs.map((r) => r.cpu.cpuSeconds)),
    busyCores: cores((r) => r.cpu.cpuSeconds),
    cpuSecondsPerGB: perGB((r) => r.cpu.cpuSeconds),
    daemonCpuSeconds: daemons ? sum(runs.map(daemonCpu)) : null,
    daemonCpuSecondsPerGB: daemons ? perGB(daemonCpu) : null,
    daemonBusyCores: daemons ? cores(daemonCpu) : null,
    retransmits: tcp ? sum(runs.map((r) => r.run.retransmits ?? 0)) : null,
    lostPercent: udp ? median(runs.map((r) => r.run.udp?.lostPercent ?? 0)) : null,
  };
}

const CPU_OP = (caseId: string): string => `${caseId}/cpu-per-gb`;

/** anchor's CPU per GB ÷ ours: like a throughput ratio, above 1 means ours does better. */
export function cpuRatio(figures: readonly Figure[], oursId: string, anchorId: string): Ratio {
  const ours = findFigure(figures, oursId) as TunnelFigure;
  const anchor = findFigure(figures, anchorId) as TunnelFigure;
  return { op: CPU_OP(ours.case), size: ours.size, ours: ours.id, anchor: anchor.id, ratio: anchor.cpuSecondsPerGB / ours.cpuSecondsPerGB };
}

/** Throughput ratios ours ÷ wireguard-go and each ÷ veth, then the CPU-per-GB ratios, for the pairs measured. */
export function tunnelRatios(figures: readonly Figure[]): Ratio[] {
  const has = (id: string): boolean => figures.some((f) => f.id === id);
  const comparisons: [PairName, PairName][] = [["ours", "wireguard-go"], ["ours", "veth"], ["wireguard-go", "veth"]];
  const ratios: Ratio[] = [];
  for (const ratioOfKind of [ratioOf, cpuRatio]) {
    for (const c of CASES) {
      for (const [ours, anchor] of comparisons) {
        const [o, a] = [figureId(c.id, ours), figureId(c.id, anchor)];
        if (has(o) && has(a)) ratios.push(ratioOfKind(figures, o, a));
      }
    }
  }
  return ratios;
}

/** The issue's targets, for those whose figures were measured. */
export function tunnelTargets(figures: readonly Figure[]): TargetResult[] {
  const has = (id: string): boolean => figures.some((f) => f.id === id);
  const results: TargetResult[] = [];
  for (const t of TARGETS) {
    const [ours, anchor] = [figureId(t.caseId, "ours"), figureId(t.caseId, "wireguard-go")];
    if (!has(ours) || !has(anchor)) continue;
    const ratio = t.kind === "throughput" ? ratioOf(figures, ours, anchor) : cpuRatio(figures, ours, anchor);
    results.push(checkTarget(ratio, t.min));
  }
  return results;
}

// --- The run, start to finish ---

/** What tests and development may narrow: which pairs run, how many rounds, and how long each case lasts. */
export interface TunnelRunOptions {
  pairs?: readonly PairName[];
  rounds?: number;
  seconds?: number;
}


/** Runs the suite; the CLI's entry is `tunnelSuite.run`, which measures all three pairs. */
export async function runTunnelSuite(options: SuiteOptions, narrow: TunnelRunOptions = {}): Promise<SuiteReport> {
  const pairs = narrow.pairs ?? PAIRS;
  const missing = missingPrerequisite(pairs);
  if (missing !== undefined) throw new Error(`cannot run: ${missing}`);
  const rounds = narrow.rounds ?? (options.quick ? QUICK : FULL).rounds;
  const seconds = narrow.seconds ?? (options.quick ? QUICK : FULL).seconds;
  const budget = { warmupMs: WARMUP.length * WARMUP_SECONDS * 1000, sampleMs: 1000, samples: rounds * seconds };
  const { progress, header } = await startRun("tunnel", { ...options, budget });

  const net = NamespacePair.create("bench", ADDRESSING);
  // The run in progress fails as its processes go; exiting once the teardown is done keeps that
  // failure from being reported as the suite's.
  const release = net.destroyOnExit((signal) => progress(`${signal}: stopping processes and removing the namespaces`));
  const runs = new Map<string, CaseRun[]>();
  const retries: string[] = [];
  try {
    const total = rounds * pairs.length * CASES.length;
    let done = 0;
    for (let round = 0; round < rounds; round++) {
      // Who goes first rotates, as in the harness, so a drift in the machine's speed favours no pair.
      const order = pairs.map((_, i) => pairs[(i + round) % pairs.length]!);
      for (const pair of order) {
        progress(`round ${round + 1}/${rounds}, ${pair}: bringing the pair up`);
        const up = await pairUp(net, pair);
        try {
          await waitForPath(net, up.serverAddress, pair, up.daemons);
          if (up.daemons.length > 0) {
            for (const w of WARMUP) {
              progress(`round ${round + 1}/${rounds}, ${pair}: ${w.title}, ${WARMUP_SECONDS} s`);
              await runCaseWithRetry(net, up, pair, w, WARMUP_SECONDS, retries, progress);
            }
          }
          for (const c of CASES) {
            progress(`[${++done}/${total}] round ${round + 1}/${rounds}, ${pair}: ${c.title}, ${seconds} s`);
            const id = figureId(c.id, pair);
            runs.set(id, [...(runs.get(id) ?? []), await runCaseWithRetry(net, up, pair, c, seconds, retries, progress)]);
          }
        } finally {
          await up.down();
        }
      }
    }
  } finally {
    await net.destroy();
    release();
  }

  const figures = pairs.flatMap((pair) => CASES.map((c) => tunnelFigure(pair, c, runs.get(figureId(c.id, pair)) ?? [])));
  const common = header();
  const notes = [
    `Samples are the receiver's one-second intervals (the partial last one dropped) of ${rounds} ${rounds === 1 ? "round" : "rounds"} of one ${seconds} s iperf3 run per case. A round brings each pair up in turn, runs every case and tears the pair down; the pairs' order rotates from round to round, so a passing load elsewhere is spread over the pairs instead of falling on one. Each time a tunnel comes up, ${WARMUP.length * WARMUP_SECONDS} s of unmeasured TCP (both directions) run through it first, so that V8 has optimized our hot path before the first case.`,
    "CPU per GB: the busy ticks (user, nice, system, irq, softirq) of all CPUs in /proc/stat over an iperf3 client's whole run, divided by the payload bytes it received (10^9 bytes per GB); the median over the rounds. It counts iperf3 and both kernels' TCP/UDP stacks as well as the tunnel, alike for every pair, and whatever else ran on the machine meanwhile. The daemons' own utime + stime (`/proc/<pid>/stat`) are shown beside it.",
    `Sender, receiver and both daemons share the machine's ${common.machine.cores} cores; the cores-busy table shows how close each run came to all of them, and how much of that the daemons took.`,
    "UDP: 64 B payloads sent as fast as the sender can (-b 0); the rate is what the receiver got, the loss what it found missing. With both ends on one machine the sender competes with the tunnel for CPU, so this measures packets per second under overload rather than a clean packet rate.",
    "Ratios ≥ 1 favour the first named: throughput is ours ÷ anchor, CPU per GB is anchor ÷ ours.",
  ];
  if (retries.length > 0) notes.push(`Runs retried because iperf3 could not start the test: ${retries.join("; ")}.`);
  if (options.quick) notes.push("Quick mode: one round of one-second runs that only proves the suite works; record full-mode runs only.");
  // Not the harness's loadWarning: interleaving here is by rounds of whole runs, which protects the ratios less.
  if (loadWarning(common.machine) !== undefined) {
    notes.push(`${common.machine.busyCores} of ${common.machine.cores} cores were busy with other processes as the suite started: figures may be low and spreads wide, and since the pairs take turns a run at a time, such load can hit one pair's run and not another's; compare the ratios across records before trusting one.`);
  }
  return {
    ...common,
    units: {
      mbPerSec: "10^6 payload bytes per second received (median of the receiver's 1 s intervals); tables show Mbit/s",
      opsPerSec: "iperf3 blocks received per second: 128 KiB writes for TCP, datagrams for UDP",
      cpuSecondsPerGB: "busy CPU seconds of all CPUs per 10^9 payload bytes received",
      daemonCpuSecondsPerGB: "utime + stime of both WireGuard daemons per 10^9 payload bytes received",
      busyCores: "busy CPU seconds ÷ wall seconds of the client run",
      ratio: "throughput: first ÷ second; cpu-per-gb: second ÷ first (≥ 1 favours the first)",
    },
    subject: {
      Topology: `namespaces a and b joined by a veth pair (${net.a.address} ↔ ${net.b.address}); tunnels ${net.tunnelAddress("a")} ↔ ${net.tunnelAddress("b")}, MTU ${MTU}; iperf3 client in a, server in b`,
      Pairs: pairs.join(", "),
      Ours: "`node bin/wardline wg <iface> --foreground --config <file>`, from dist/",
      "wireguard-go": firstLine("wireguard-go", ["--version"]),
      iperf3: firstLine("iperf3", ["--version"]),
      Cases: `${CASES.map((c) => `${c.id}: ${c.title}`).join("; ")}; ${rounds} × ${seconds} s each`,
    },
    figures,
    ratios: tunnelRatios(figures),
    targets: tunnelTargets(figures),
    notes,
  };
}

// --- Tables ---

const mbit = (mbPerSec: number): number => mbPerSec * 8;

function maybeFigure(report: SuiteReport, caseId: string, pair: PairName): TunnelFigure | undefined {
  return report.figures.find((f) => f.id === figureId(caseId, pair)) as TunnelFigure | undefined;
}

function ratioCell(report: SuiteReport, op: string, ours: string, anchor: string): string {
  const r = report.ratios.find((x) => x.op === op && x.ours === ours && x.anchor === anchor);
  return r ? formatRatio(r.ratio) : "–";
}

function tables(report: SuiteReport): ReportTable[] {
  const pairs = PAIRS.filter((p) => CASES.some((c) => maybeFigure(report, c.id, p)));
  const cells = (caseId: string, show: (f: TunnelFigure) => string): string[] =>
    pairs.map((p) => {
      const f = maybeFigure(report, caseId, p);
      return f ? show(f) : "–";
    });
  const throughputRatios = (c: TunnelCase): string[] => [
    ratioCell(report, c.id, figureId(c.id, "ours"), figureId(c.id, "wireguard-go")),
    ratioCell(report, c.id, figureId(c.id, "ours"), figureId(c.id, "veth")),
    ratioCell(report, c.id, figureId(c.id, "wireguard-go"), figureId(c.id, "veth")),
  ];
  const perGB = (value: number | null): string => (value === null ? "–" : formatRate(value));
  const udp = CASES.filter((c) => c.args.includes("-u"));
  return [
    {
      title: "Throughput received, Mbit/s (median of 1 s intervals)",
      headers: ["case", ...pairs, "ours ÷ wireguard-go", "ours ÷ veth", "wireguard-go ÷ veth"],
      rows: CASES.map((c) => [c.title, ...cells(c.id, (f) => `${formatRate(mbit(f.mbPerSec!.median))} ${formatSpread(f.mbPerSec!)}`), ...throughputRatios(c)]),
    },
    {
      title: "UDP datagrams received per second, and loss",
      headers: ["case", ...pairs.flatMap((p) => [`${p} /s`, `${p} loss`])],
      rows: udp.map((c) => [
        `${c.title} (${formatSize(maybeFigure(report, c.id, pairs[0]!)?.size ?? 0)} payload)`,
        ...pairs.flatMap((p) => {
          const f = maybeFigure(report, c.id, p);
          return f ? [formatRate(f.opsPerSec.median), `${(f.lostPercent ?? 0).toFixed(1)}%`] : ["–", "–"];
        }),
      ]),
    },
    {
      title: "CPU seconds per GB received: all CPUs (both daemons' share)",
      headers: ["case", ...pairs, "wireguard-go ÷ ours"],
      rows: CASES.map((c) => [
        c.title,
        ...cells(c.id, (f) => (f.daemonCpuSecondsPerGB === null ? perGB(f.cpuSecondsPerGB) : `${perGB(f.cpuSecondsPerGB)} (${perGB(f.daemonCpuSecondsPerGB)})`)),
        ratioCell(report, CPU_OP(c.id), figureId(c.id, "ours"), figureId(c.id, "wireguard-go")),
      ]),
    },
    {
      title: "Cores busy during the run: all CPUs (both daemons)",
      headers: ["case", ...pairs],
      rows: CASES.map((c) => [
        c.title,
        ...cells(c.id, (f) => (f.daemonBusyCores === null ? f.busyCores.toFixed(2) : `${f.busyCores.toFixed(2)} (${f.daemonBusyCores.toFixed(2)})`)),
      ]),
    },
    ...(report.targets.length === 0 ? [] : [{
      title: "Targets (ours against wireguard-go)",
      headers: ["case", "measure", "ratio", "target", "result"],
      alignRight: [false, false, true, true, false],
      rows: report.targets.map((t) => {
        const c = CASES.find((x) => t.ours === figureId(x.id, "ours"))!;
        const cpu = t.op === CPU_OP(c.id);
        return [c.title, cpu ? "CPU per GB (wireguard-go ÷ ours)" : "throughput (ours ÷ wireguard-go)", formatRatio(t.ratio), `≥ ${t.min}`, formatTarget(t)];
      }),
    }]),
  ];
}

export const tunnelSuite: BenchSuite = {
  name: "tunnel",
  summary: "iperf3 TCP and small-packet UDP through ours and wireguard-go between two namespaces, the bare veth as ceiling; CPU per GB",
  run: (options) => runTunnelSuite(options),
  tables,
};
