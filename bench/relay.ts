// `wardline bench relay`: how many ChannelData messages a TURN relay carries without loss, and what
// each costs in CPU, ours (`wardline relay`) against coturn's turnserver, in one run. coturn runs
// twice: relaying in its listener's thread, like ours in its one event loop, and with one relay
// thread beside the listener.
//
// 1. Check the prerequisites (Linux, root, ip, ss, turnserver, a built `wardline relay`); a missing
//    one fails the suite with the reason.
// 2. Build the topology (./netns.ts): namespaces a and b joined by a veth pair, 198.18.0.1 in a (the
//    relay) and 198.18.0.2 in b (the load: clients and the echoing peer), RFC 2544's benchmarking
//    range, which our relay does not count as private. Every process is tracked by PID and removed,
//    with the namespaces, on success, on error and on SIGINT or SIGTERM.
// 3. In rounds (two in full mode), for each payload size, for each relay in turn (the order rotating
//    by size and round): start the relay in a and the load generator in b (this file, run as a
//    script). The generator allocates on the relay for each of its clients and binds a channel to its
//    own echo socket, then warms the relay up.
// 4. Ramp: steps of paced ChannelData at a requested rate, each after a wait for other processes to
//    leave the CPUs, and bracketed by /proc readings of the relay, the generator and the machine,
//    and by each namespace's UDP drop counters. The rate grows
//    by a factor while loss stays within LOSS_LIMIT, then bisects between the best good and the
//    first bad rate (planRamp). A step counts a message once its echo is back at the client.
// 5. Figures: the highest good step per relay and size over the rounds; CPU seconds per million
//    relayed packets, there and at the highest rate both relays carried; ratios ours ÷ each coturn
//    configuration, targets.
//
// The load generator (runLoadGenerator) is one Node process on our batched UDP sockets
// (recvmmsg/sendmmsg): N clients, each one allocation and one channel, sending prebuilt ChannelData
// frames from one buffer, and the peer echoing each batch back to its sources as received. A step's
// messages carry the step number, so late echoes of an earlier step are not counted.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { UdpDriver } from "../daemons/io/udp-driver.js";
import { PacketVector, UdpSocket, readEndpoint, writeEndpoint } from "../daemons/native/index.js";
import { mintCredentials } from "../daemons/proto/stun/credentials.js";
import { TurnAllocation } from "../daemons/proto/turn/client.js";
import {
  checkTarget, formatRate, formatRatio, formatSize, formatTarget, loadWarning, startRun, stats, type BenchSuite, type Figure,
  type Ratio, type ReportTable, type SuiteOptions, type SuiteReport, type TargetResult,
} from "./harness.js";
import { NamespacePair, WARDLINE_BIN, type NamespaceProcess } from "./netns.js";
import { firstLine, onPath, parsePidStat, parseProcStat, ticksPerSecond, type CpuTicks } from "./system.js";

// --- What is measured ---

/**
 * ours; coturn with one thread for listening and relaying (--relay-threads=0), as ours has one event
 * loop; and coturn-2t, its listener thread plus one relay thread (--relay-threads=1). Targets are
 * checked against both.
 */
export const RELAYS = ["ours", "coturn", "coturn-2t"] as const;
export type RelayName = (typeof RELAYS)[number];
export type AnchorName = Exclude<RelayName, "ours">;
export const ANCHORS: readonly AnchorName[] = ["coturn", "coturn-2t"];
/** coturn's --relay-threads per configuration. */
const RELAY_THREADS: Record<AnchorName, number> = { coturn: 0, "coturn-2t": 1 };

/** Payload bytes per ChannelData message: a small media or keepalive packet, and a full WireGuard-in-TURN one. */
export const SIZES = [64, 1200] as const;

/** The loss a rate may show and still count as carried: 0.1 %. */
export const LOSS_LIMIT = 0.001;

/** A step whose generator sent less than this share of the requested rate was limited by the generator. */
export const GENERATOR_SHORTFALL = 0.95;

const ADDRESSING = { underlay: "198.18.0", tunnel: "198.19.0" };
const RELAY_PORT = 3478;
const PEER_PORT = 3480;
const SECRET = "bench-relay-secret";
const REALM = "wardline";
/** Allocations (each with one channel) the generator holds; messages go round-robin over them. */
const CLIENTS = 8;

/** How a rate search runs: start, growth factor, when to stop. */
export interface RampPlan {
  /** The first rate tried, messages per second each way. */
  start: number;
  /** Growth factor while steps are good. */
  factor: number;
  /** Bisection stops once the bad rate is within this factor of the good one. */
  precision: number;
  /** No rate above this is tried (the generator's reach). */
  max: number;
  /** No rate below this is tried. */
  min: number;
  maxSteps: number;
}

interface Mode {
  /** Ramps per relay and size; a figure takes the round that carried the most. */
  rounds: number;
  ramp: RampPlan;
  stepMs: number;
  /** Time after the sending stops for the last echoes to come back. */
  drainMs: number;
  warmupMs: number;
  warmupRate: number;
  /** Before a step, wait up to this long for other processes to leave the CPUs (QUIET_CORES). */
  quietWaitMs: number;
}

/** Other processes may keep this many cores busy before a step starts anyway. */
const QUIET_CORES = 0.25;

const FULL: Mode = {
  rounds: 2,
  ramp: { start: 20_000, factor: 1.5, precision: 1.05, max: 600_000, min: 1000, maxSteps: 14 },
  stepMs: 2000,
  drainMs: 300,
  warmupMs: 2000,
  warmupRate: 20_000,
  quietWaitMs: 10_000,
};
const QUICK: Mode = {
  rounds: 1,
  ramp: { start: 20_000, factor: 2, precision: 1.3, max: 600_000, min: 1000, maxSteps: 6 },
  stepMs: 500,
  drainMs: 200,
  warmupMs: 500,
  warmupRate: 20_000,
  quietWaitMs: 0,
};

// --- 1. Prerequisites ---

const PACKAGES: Record<string, string> = { ip: "iproute2", ss: "iproute2", turnserver: "coturn" };


/** Why the suite cannot run here, or undefined when it can. */
export function missingPrerequisite(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "not root (network namespaces need it)";
  for (const [tool, pkg] of Object.entries(PACKAGES)) {
    if (!onPath(tool)) return `${tool} is not installed (Debian: ${pkg})`;
  }
  if (spawnSync(process.execPath, [WARDLINE_BIN, "relay", "--help"], { stdio: "ignore", timeout: 20_000 }).status !== 0) {
    return "`wardline relay --help` fails: build it (npm run build)";
  }
  return undefined;
}

// --- 3. The relays ---

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** coturn with UDP only and shared-secret credentials, relaying in relayThreads threads (0: in its listener's). */
export function coturnArgs(dir: string, relayThreads: number): string[] {
  return [
    "--use-auth-secret", `--static-auth-secret=${SECRET}`, `--realm=${REALM}`,
    `--listening-ip=${ADDRESSING.underlay}.1`, `--relay-ip=${ADDRESSING.underlay}.1`, `--listening-port=${RELAY_PORT}`,
    "--min-port=50000", "--max-port=59999",
    "--no-tcp", "--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay", "--log-file=stdout",
    // 0 relays in the listener's thread, like ours in its one event loop; the auth thread stays apart.
    `--relay-threads=${relayThreads}`,
    `--pidfile=${join(dir, "turnserver.pid")}`, `--userdb=${join(dir, "turndb")}`,
  ];
}

/** Ours, as the issue runs it. */
export function oursArgs(): string[] {
  const address = `${ADDRESSING.underlay}.1`;
  return [
    WARDLINE_BIN, "relay", "--secret", SECRET, "--realm", REALM, "--listen4", address, "--listen6", "off",
    "--public-ip4", address, "--port", String(RELAY_PORT), "--ports", "50000-59999", "--max-allocations", "1000", "--http", "off",
  ];
}

async function startRelay(net: NamespacePair, relay: RelayName): Promise<NamespaceProcess> {
  const profileDir = process.env.WARDLINE_BENCH_RELAY_PROFILE;
  const proc = relay === "ours"
    ? net.spawn(net.a, process.execPath, [...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []), ...oursArgs()])
    : net.spawn(net.a, "turnserver", coturnArgs(net.dir, RELAY_THREADS[relay]));
  const deadline = Date.now() + 15_000;
  const listening = async (): Promise<boolean> =>
    (await net.exec(net.a, "ss", ["-Hlun", `sport = :${RELAY_PORT}`]).catch(() => "")).trim() !== "";
  while (!(await listening())) {
    if (!proc.running || Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${relay} did not start listening on ${RELAY_PORT}: ${proc.diagnostics()}`);
    }
    await sleep(50);
  }
  return proc;
}

// --- 3 and 4. The load generator as the suite drives it, and one measured step ---

/** How the generator is started: argv[3] of `node relay.js --load-generator <json>`. */
export interface LoadConfig {
  server: string;
  port: number;
  secret: string;
  clients: number;
  peer: string;
  peerPort: number;
}

interface StepCommand {
  step: number;
  rate: number;
  ms: number;
  size: number;
  drainMs: number;
}

const THIS_FILE = fileURLToPath(import.meta.url);

class LoadGenerator {
  private steps = 0;
  private constructor(readonly process: NamespaceProcess) {}

  static async start(net: NamespacePair): Promise<LoadGenerator> {
    const config: LoadConfig = { server: net.a.address, port: RELAY_PORT, secret: SECRET, clients: CLIENTS, peer: net.b.address, peerPort: PEER_PORT };
    const proc = net.spawn(net.b, process.execPath, [THIS_FILE, "--load-generator", JSON.stringify(config)]);
    try {
      await proc.message("ready", 30_000);
    } catch (error) {
      await proc.stop();
      throw error;
    }
    return new LoadGenerator(proc);
  }

  async step(rate: number, ms: number, size: number, drainMs: number): Promise<StepCounts> {
    const command: StepCommand = { step: ++this.steps, rate, ms, size, drainMs };
    this.process.child.stdin?.write(`${JSON.stringify(command)}\n`);
    return this.process.message<StepCounts>("sent", ms + drainMs + 10_000, (m) => m.step === command.step);
  }
}


function readCpu(relay: NamespaceProcess, generator: NamespaceProcess): CpuReading {
  return {
    machine: parseProcStat(readFileSync("/proc/stat", "utf8")),
    relay: parsePidStat(readFileSync(`/proc/${relay.pid}/stat`, "utf8")),
    generator: parsePidStat(readFileSync(`/proc/${generator.pid}/stat`, "utf8")),
  };
}

async function udpDrops(net: NamespacePair): Promise<{ relay: number; load: number }> {
  const [a, b] = await Promise.all([net.a, net.b].map((ns) => net.exec(ns, "cat", ["/proc/net/snmp"])));
  return { relay: parseSnmpUdp(a!).rcvbufErrors, load: parseSnmpUdp(b!).rcvbufErrors };
}

/** Busy cores of the whole machine over windows of ms, until below QUIET_CORES or waitMs is spent; the last window's figure. */
async function quietCores(waitMs: number, ms = 250): Promise<number> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const before = parseProcStat(readFileSync("/proc/stat", "utf8"));
    await sleep(ms);
    const after = parseProcStat(readFileSync("/proc/stat", "utf8"));
    const cores = (after.busy - before.busy) / ticksPerSecond() / (ms / 1000);
    if (cores < QUIET_CORES || Date.now() >= deadline) return Math.max(0, cores);
  }
}

async function measureStep(net: NamespacePair, relay: NamespaceProcess, generator: LoadGenerator, rate: number, size: number, mode: Mode, round: number): Promise<RelayStep> {
  const otherCores = mode.quietWaitMs > 0 ? await quietCores(mode.quietWaitMs) : 0;
  const dropsBefore = await udpDrops(net);
  const before = readCpu(relay, generator.process);
  const started = performance.now();
  const counts = await generator.step(rate, mode.stepMs, size, mode.drainMs);
  const wall = (performance.now() - started) / 1000;
  if (!relay.running) throw new Error(`the relay exited during a step: ${relay.diagnostics()}`);
  const after = readCpu(relay, generator.process);
  const dropsAfter = await udpDrops(net);
  return stepFigures(rate, size, counts, before, after, wall, ticksPerSecond(), {
    relay: dropsAfter.relay - dropsBefore.relay,
    load: dropsAfter.load - dropsBefore.load,
  }, otherCores, round);
}

// --- 4. The ramp (pure) ---

/** A step as the search sees it. */
export interface RampPoint {
  /** Requested messages per second each way. */
  rate: number;
  /** Loss within LOSS_LIMIT. */
  good: boolean;
  /** The generator could not send the requested rate: no higher rate is worth trying. */
  generatorLimited: boolean;
}

/**
 * The next rate to try after `steps`, or undefined when the search is done: grow by plan.factor
 * from plan.start while steps are good (a generator-limited good step ends the search: it is the
 * ceiling), then bisect geometrically between the highest good rate and the lowest bad rate above
 * it until they are within plan.precision; if the first rate is already bad, shrink by the factor
 * until one is good.
 */
export function planRamp(steps: readonly RampPoint[], plan: RampPlan): number | undefined {
  if (steps.length >= plan.maxSteps) return undefined;
  if (steps.length === 0) return plan.start;
  const good = steps.filter((s) => s.good);
  const best = good.reduce<RampPoint | undefined>((b, s) => (b === undefined || s.rate > b.rate ? s : b), undefined);
  if (best?.generatorLimited) return undefined;
  const bad = steps.filter((s) => !s.good && (best === undefined || s.rate > best.rate));
  const lowestBad = bad.reduce<number>((m, s) => Math.min(m, s.rate), Number.POSITIVE_INFINITY);
  if (best === undefined) {
    const next = Math.round(lowestBad / plan.factor);
    return next >= plan.min ? next : undefined;
  }
  if (!Number.isFinite(lowestBad)) {
    const next = Math.round(best.rate * plan.factor);
    if (best.rate >= plan.max) return undefined;
    return Math.min(next, plan.max);
  }
  if (lowestBad / best.rate <= plan.precision) return undefined;
  return Math.round(Math.sqrt(best.rate * lowestBad));
}

/**
 * The highest rate both ramps carried, among the rates both tried (the growth phase tries the same
 * rates for every relay); undefined when they share no good rate.
 */
export function commonGoodRate(a: readonly RampPoint[], b: readonly RampPoint[]): number | undefined {
  let best: number | undefined;
  for (const s of a) {
    if (!s.good) continue;
    if (b.some((t) => t.good && t.rate === s.rate) && (best === undefined || s.rate > best)) best = s.rate;
  }
  return best;
}

// --- 4. CPU and counters (pure) ---

/** CPU seconds per million packets; infinite when none went through. */
export function cpuSecondsPerMillion(cpuSeconds: number, packets: number): number {
  return packets > 0 ? cpuSeconds / (packets / 1e6) : Number.POSITIVE_INFINITY;
}

/** UDP counters of one namespace from /proc/net/snmp. */
export interface UdpCounters {
  inDatagrams: number;
  /** Datagrams dropped for a full receive buffer. */
  rcvbufErrors: number;
  /** Datagrams to a port with no socket. */
  noPorts: number;
}

/** Reads the Udp lines (names, then values) of /proc/net/snmp. */
export function parseSnmpUdp(text: string): UdpCounters {
  const lines = text.split("\n").filter((l) => l.startsWith("Udp:"));
  if (lines.length < 2) throw new Error("/proc/net/snmp: no Udp lines");
  const names = lines[0]!.trim().split(/\s+/).slice(1);
  const values = lines[1]!.trim().split(/\s+/).slice(1).map(Number);
  const get = (name: string): number => values[names.indexOf(name)] ?? 0;
  return { inDatagrams: get("InDatagrams"), rcvbufErrors: get("RcvbufErrors"), noPorts: get("NoPorts") };
}

/** What the generator reports for one step. */
export interface StepCounts {
  step: number;
  /** Messages sent towards the relay. */
  sent: number;
  /** Of them, those that reached the peer through the relay. */
  peerReceived: number;
  /** Echoes back at the clients through the relay. */
  received: number;
  /** How long the sending lasted. */
  sendSeconds: number;
  /** Sends the kernel refused at the generator (socket buffer full), not counted as sent. */
  sendShort: number;
}

/** One measured step: the counts, the CPU it took, and the drops each namespace's kernel counted. */
export interface RelayStep extends RampPoint {
  size: number;
  counts: StepCounts;
  /** Messages per second each way that were offered: sent ÷ send time. */
  offeredPerSec: number;
  /** Round trips completed per second: echoes received ÷ send time. */
  messagesPerSec: number;
  /** Packets the relay forwarded (client → peer and peer → client) per second. */
  relayedPacketsPerSec: number;
  /** 1 − received ÷ sent. */
  loss: number;
  relayCpuSeconds: number;
  generatorCpuSeconds: number;
  machineCpuSeconds: number;
  wallSeconds: number;
  /** Receive-buffer drops in the relay's namespace and in the generator's. */
  relayNsDrops: number;
  loadNsDrops: number;
  /** Cores other processes kept busy just before the step (ours were idle then). */
  otherCores: number;
  round: number;
}

/** CPU readings around a step: /proc/stat, and utime + stime of the relay and the generator. */
export interface CpuReading {
  machine: CpuTicks;
  relay: number;
  generator: number;
}

/** A step's figures from its counts and the readings before and after it. */
export function stepFigures(
  requested: number,
  size: number,
  counts: StepCounts,
  before: CpuReading,
  after: CpuReading,
  wallSeconds: number,
  ticksPerSecond: number,
  drops: { relay: number; load: number },
  otherCores = 0,
  round = 1,
): RelayStep {
  const seconds = counts.sendSeconds > 0 ? counts.sendSeconds : Number.POSITIVE_INFINITY;
  const offeredPerSec = counts.sent / seconds;
  const loss = counts.sent > 0 ? Math.max(0, 1 - counts.received / counts.sent) : 1;
  return {
    rate: requested,
    good: counts.sent > 0 && loss <= LOSS_LIMIT,
    generatorLimited: offeredPerSec < requested * GENERATOR_SHORTFALL,
    size,
    counts,
    offeredPerSec,
    messagesPerSec: counts.received / seconds,
    relayedPacketsPerSec: (counts.peerReceived + counts.received) / seconds,
    loss,
    relayCpuSeconds: (after.relay - before.relay) / ticksPerSecond,
    generatorCpuSeconds: (after.generator - before.generator) / ticksPerSecond,
    machineCpuSeconds: (after.machine.busy - before.machine.busy) / ticksPerSecond,
    wallSeconds,
    relayNsDrops: drops.relay,
    loadNsDrops: drops.load,
    otherCores,
    round,
  };
}

const relayedPackets = (s: RelayStep): number => s.counts.peerReceived + s.counts.received;

// --- 5. Figures, ratios, targets ---

/** A figure of this suite: the best step of a ramp, with the ramp beside it. */
export interface RelayFigure extends Figure {
  relay: RelayName;
  /** The step with the highest good rate; null when no step was good. */
  best: RelayStep | null;
  /** The most round trips per second any step delivered, at whatever loss: where it saturates. */
  peakMessagesPerSec: number;
  /** Relayed payload, Mbit/s each way, at the best step. */
  mbitPerSecEachWay: number;
  /** Relay and machine CPU seconds per million relayed packets at the best step. */
  relayCpuPerMillion: number;
  machineCpuPerMillion: number;
  /** The relay's CPU seconds over the best step ÷ its sending time: about the cores it kept busy. */
  relayCores: number;
  generatorCores: number;
  steps: RelayStep[];
}

export const figureId = (size: number, relay: RelayName): string => `channel/${size}/${relay}`;
const CPU_OP = (size: number): string => `channel/${size}/cpu-per-packet`;

/** A relay at a size from the steps of all its ramps: the best good step of any round, the peak of any step. */
export function relayFigure(relay: RelayName, size: number, steps: readonly RelayStep[]): RelayFigure {
  const good = steps.filter((s) => s.good);
  const best = good.reduce<RelayStep | null>((b, s) => (b === null || s.messagesPerSec > b.messagesPerSec ? s : b), null);
  const messages = best?.messagesPerSec ?? 0;
  const rates = stats([messages]);
  const perMillion = (cpu: (s: RelayStep) => number): number => (best ? cpuSecondsPerMillion(cpu(best), relayedPackets(best)) : Number.POSITIVE_INFINITY);
  const sendSeconds = best?.counts.sendSeconds ?? 0;
  return {
    id: figureId(size, relay),
    impl: relay,
    op: "channel",
    size,
    ops: 1,
    bytes: size,
    detail: `ChannelData, ${size} B payload, highest rate at ≤ ${LOSS_LIMIT * 100} % loss`,
    samples: best ? 1 : 0,
    iterationsPerSample: 1,
    mbPerSec: stats([(messages * size) / 1e6]),
    opsPerSec: rates,
    nsPerOp: messages > 0 ? 1e9 / messages : Number.POSITIVE_INFINITY,
    relay,
    best,
    peakMessagesPerSec: Math.max(0, ...steps.map((s) => s.messagesPerSec)),
    mbitPerSecEachWay: (messages * size * 8) / 1e6,
    relayCpuPerMillion: perMillion((s) => s.relayCpuSeconds),
    machineCpuPerMillion: perMillion((s) => s.machineCpuSeconds),
    relayCores: best && sendSeconds > 0 ? best.relayCpuSeconds / sendSeconds : 0,
    generatorCores: best && sendSeconds > 0 ? best.generatorCpuSeconds / sendSeconds : 0,
    steps: [...steps],
  };
}

/** The CPU comparison at one rate: the anchor's relay CPU per packet ÷ ours (≥ 1 favours ours). */
export interface CpuComparison extends Ratio {
  /** The requested rate both relays carried, messages per second each way. */
  rate: number;
  oursCpuPerMillion: number;
  anchorCpuPerMillion: number;
}

/**
 * Relay CPU per million relayed packets of the anchor ÷ ours, at the highest rate both carried; where
 * rounds carried that rate more than once, each relay's median.
 */
export function cpuComparison(ours: RelayFigure, anchor: RelayFigure): CpuComparison | undefined {
  const rate = commonGoodRate(ours.steps, anchor.steps);
  if (rate === undefined) return undefined;
  const at = (f: RelayFigure): number =>
    stats(f.steps.filter((x) => x.good && x.rate === rate).map((s) => cpuSecondsPerMillion(s.relayCpuSeconds, relayedPackets(s)))).median;
  const [o, a] = [at(ours), at(anchor)];
  return { op: CPU_OP(ours.size), size: ours.size, ours: ours.id, anchor: anchor.id, ratio: a / o, rate, oursCpuPerMillion: o, anchorCpuPerMillion: a };
}

/** messages/s ours ÷ each anchor per size, then the CPU comparisons, for the figures there are. */
export function relayRatios(figures: readonly RelayFigure[]): Ratio[] {
  const find = (size: number, relay: RelayName): RelayFigure | undefined => figures.find((f) => f.id === figureId(size, relay));
  const pairs = SIZES.flatMap((size) => ANCHORS.map((anchor) => [find(size, "ours"), find(size, anchor)] as const));
  const ratios: Ratio[] = [];
  for (const [ours, anchor] of pairs) {
    if (ours && anchor) ratios.push({ op: "channel", size: ours.size, ours: ours.id, anchor: anchor.id, ratio: ours.opsPerSec.median / anchor.opsPerSec.median });
  }
  for (const [ours, anchor] of pairs) {
    const cpu = ours && anchor ? cpuComparison(ours, anchor) : undefined;
    if (cpu) ratios.push(cpu);
  }
  return ratios;
}

/** The issue's floors, against each coturn configuration: messages/s ≥ 1.0× at both sizes; CPU per packet no more. */
export function relayTargets(ratios: readonly Ratio[]): TargetResult[] {
  return ratios.map((r) => checkTarget(r, 1));
}

// --- The run, start to finish ---

/** What tests and development may narrow. */
export interface RelayRunOptions {
  relays?: readonly RelayName[];
  sizes?: readonly number[];
}


export async function runRelaySuite(options: SuiteOptions, narrow: RelayRunOptions = {}): Promise<SuiteReport> {
  const missing = missingPrerequisite();
  if (missing !== undefined) throw new Error(`cannot run: ${missing}`);
  const relays = narrow.relays ?? RELAYS;
  const sizes = narrow.sizes ?? SIZES;
  const mode = options.quick ? QUICK : FULL;
  const budget = { warmupMs: mode.warmupMs, sampleMs: mode.stepMs, samples: 1 };
  const { progress, header } = await startRun("relay", { ...options, budget });

  const net = NamespacePair.create("relay", ADDRESSING);
  const release = net.destroyOnExit((signal) => progress(`${signal}: stopping processes and removing the namespaces`));
  const stepsOf = new Map<string, RelayStep[]>();
  try {
    for (let round = 1; round <= mode.rounds; round++) {
      for (const [i, size] of sizes.entries()) {
        // Who goes first rotates by size and round, so a drift in the machine's speed favours no relay.
        const order = relays.map((_, k) => relays[(k + i + round - 1) % relays.length]!);
        for (const relay of order) {
          const where = `round ${round}/${mode.rounds}, ${relay}, ${size} B`;
          progress(`${where}: starting the relay and the load generator`);
          const proc = await startRelay(net, relay);
          let generator: LoadGenerator | undefined;
          try {
            generator = await LoadGenerator.start(net);
            progress(`${where}: warming up, ${mode.warmupRate} messages/s for ${mode.warmupMs} ms`);
            await generator.step(mode.warmupRate, mode.warmupMs, size, mode.drainMs);
            const steps: RelayStep[] = [];
            for (let rate = planRamp(steps, mode.ramp); rate !== undefined; rate = planRamp(steps, mode.ramp)) {
              const step = await measureStep(net, proc, generator, rate, size, mode, round);
              steps.push(step);
              progress(`${where}: ${formatRate(rate)}/s requested, ${formatRate(step.messagesPerSec)}/s delivered, loss ${(step.loss * 100).toFixed(3)} %`);
            }
            const id = figureId(size, relay);
            stepsOf.set(id, [...(stepsOf.get(id) ?? []), ...steps]);
          } finally {
            await generator?.process.stop(1000);
            await proc.stop();
          }
        }
      }
    }
  } finally {
    await net.destroy();
    release();
  }

  const figures = sizes.flatMap((size) => relays.map((relay) => relayFigure(relay, size, stepsOf.get(figureId(size, relay)) ?? [])));
  const ratios = relayRatios(figures);
  const common = header();
  const notes = [
    `Load: one generator process in namespace b with ${CLIENTS} clients, each one allocation with one channel bound to the generator's own echo socket; ChannelData frames sent with sendmmsg at a paced rate (1 ms timer), the echo socket sending each received batch straight back. A message counts once its echo is back at its client, so every message is relayed twice: client → peer and peer → client.`,
    `Ramp: ${mode.rounds === 1 ? "one round" : `${mode.rounds} rounds (a figure takes the best good step of any round: other load only ever lowers a ramp)`}, each from ${formatRate(mode.ramp.start)} messages/s each way, ×${mode.ramp.factor} while the loss stays ≤ ${LOSS_LIMIT * 100} %, then bisection to within ${Math.round((mode.ramp.precision - 1) * 100)} %; ${mode.stepMs} ms steps, ${mode.drainMs} ms for late echoes; a ${mode.warmupMs} ms warm-up at ${formatRate(mode.warmupRate)}/s before the first${mode.quietWaitMs > 0 ? `; before each step up to ${mode.quietWaitMs / 1000} s of waiting for other processes to use under ${QUIET_CORES} cores` : ""}. Figures are from the highest step within the loss limit; peak is the most any step delivered, at any loss.`,
    "CPU per million relayed packets: utime + stime of the relay process (all threads) from /proc/<pid>/stat, and the busy ticks of all CPUs from /proc/stat, over a step, divided by the packets relayed (both directions). The all-CPU figure includes the load generator and the kernel's work for both namespaces. The CPU ratio compares the relays at the highest rate both carried within the loss limit, so batching effects of unequal rates do not enter.",
    `Relay, generator and kernel share the machine's ${common.machine.cores} cores; the generator's own load is shown, and a step where it could not send ${GENERATOR_SHORTFALL * 100} % of the requested rate ends the ramp (the figure is then a lower bound for the relay).`,
    "Why not turnutils_uclient as the load: it paces each client by a per-client timer with millisecond granularity and starts its clients at random over several seconds, so its offered rate cannot be set; with -z 0 it sends in uncontrolled bursts (here 200,000 messages from 50 clients lost 24 % through coturn). It stays the protocol check of test/interop/coturn.test.ts.",
    "coturn (--relay-threads=0) relays in its listener's thread, as ours does in its one event loop; coturn-2t (--relay-threads=1) adds a relay thread beside the listener, so it can use more than one core. coturn sets a 64 KiB receive buffer (SO_RCVBUF) on each relay socket and 2 MiB on the listener; ours forces 4 MiB on every socket.",
    "Ratios ≥ 1 favour ours: messages/s is ours ÷ anchor, CPU per packet is anchor ÷ ours.",
  ];
  if (options.quick) notes.push("Quick mode: short steps and a coarse ramp that only prove the suite works; record full-mode runs only.");
  const warning = loadWarning(common.machine);
  if (warning !== undefined) notes.push(warning.replace("; ratios suffer less, since compared cases are sampled interleaved", "; the relays run one after the other, so such load can hit one and not the other"));
  return {
    ...common,
    units: {
      opsPerSec: "ChannelData messages per second each way (round trips completed per second)",
      mbPerSec: "10^6 payload bytes per second each way; tables show Mbit/s",
      relayCpuPerMillion: "relay utime + stime seconds per 10^6 relayed packets (both directions)",
      machineCpuPerMillion: "busy seconds of all CPUs per 10^6 relayed packets",
      ratio: "messages/s: ours ÷ anchor; cpu-per-packet: anchor ÷ ours (≥ 1 favours ours)",
    },
    subject: {
      Topology: `namespaces a (relay, ${net.a.address}) and b (load generator and echo peer, ${net.b.address}) joined by a veth pair`,
      Ours: `\`node bin/wardline ${oursArgs().slice(1).join(" ")}\`, from dist/`,
      coturn: `${firstLine("turnserver", ["--version"])}: \`turnserver ${coturnArgs("<dir>", 0).join(" ")}\``,
      "coturn-2t": "the same with --relay-threads=1: a listener thread and one relay thread",
      Load: `${CLIENTS} clients, channel mode, payloads ${sizes.map((s) => formatSize(s)).join(" and ")}`,
    },
    figures,
    ratios,
    targets: relayTargets(ratios),
    notes,
  };
}

// --- Tables ---

function tables(report: SuiteReport): ReportTable[] {
  const figures = report.figures as RelayFigure[];
  const pct = (loss: number): string => `${(loss * 100).toFixed(3)} %`;
  const perMillion = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : "–");
  const rows = figures.map((f) => [
    formatSize(f.size),
    f.relay,
    f.best ? formatRate(f.best.messagesPerSec) : "–",
    f.best ? formatRate(f.best.relayedPacketsPerSec) : "–",
    f.best ? formatRate(f.mbitPerSecEachWay) : "–",
    f.best ? pct(f.best.loss) : "–",
    perMillion(f.relayCpuPerMillion),
    perMillion(f.machineCpuPerMillion),
    f.best ? `${f.relayCores.toFixed(2)} / ${f.generatorCores.toFixed(2)}` : "–",
    formatRate(f.peakMessagesPerSec),
    f.best?.generatorLimited ? "yes" : "no",
  ]);
  const stepText = (s: RelayStep): string => {
    const drops = s.relayNsDrops + s.loadNsDrops > 0 ? ` [${s.relayNsDrops}/${s.loadNsDrops}]` : "";
    const busy = s.otherCores >= QUIET_CORES ? ` (${s.otherCores.toFixed(1)} busy)` : "";
    return `${formatRate(s.rate / 1000)}k${s.good ? "" : "✗"} ${formatRate(s.messagesPerSec / 1000)}k ${(s.loss * 100).toFixed(2)}%${drops}${busy}`;
  };
  const ramp = figures.flatMap((f) =>
    [...new Set(f.steps.map((s) => s.round))].map((round) => [
      formatSize(f.size),
      f.relay,
      String(round),
      f.steps.filter((s) => s.round === round).map(stepText).join(", "),
    ]),
  );
  const cpu = report.ratios.filter((r): r is CpuComparison => "rate" in r);
  const throughput = report.ratios.filter((r) => r.op === "channel");
  const out: ReportTable[] = [
    {
      title: `ChannelData relayed at the highest rate with ≤ ${LOSS_LIMIT * 100} % loss`,
      headers: ["payload", "relay", "messages/s each way", "relayed packets/s", "Mbit/s each way", "loss", "relay CPU s / M packets", "all-CPU s / M packets", "cores: relay / generator", "peak messages/s", "generator-limited"],
      alignRight: [false, false, true, true, true, true, true, true, true, true, false],
      rows,
    },
    {
      title: "Ours against coturn (≥ 1 favours ours)",
      headers: ["payload", "anchor", "messages/s ours ÷ anchor", "CPU per packet anchor ÷ ours", "at messages/s", "relay CPU s / M packets: ours, anchor"],
      alignRight: [false, false, true, true, true, true],
      rows: SIZES.flatMap((size) => ANCHORS.map((anchor) => [size, anchor] as const)).filter(([size, anchor]) => throughput.some((r) => r.size === size && r.anchor === figureId(size, anchor))).map(([size, anchor]) => {
        const t = throughput.find((r) => r.anchor === figureId(size, anchor));
        const c = cpu.find((r) => r.anchor === figureId(size, anchor));
        return [formatSize(size), anchor, t ? formatRatio(t.ratio) : "–", c ? formatRatio(c.ratio) : "–", c ? formatRate(c.rate) : "–", c ? `${perMillion(c.oursCpuPerMillion)}, ${perMillion(c.anchorCpuPerMillion)}` : "–"];
      }),
    },
    {
      title: "Ramps: requested k messages/s (✗ over the loss limit), delivered k messages/s, loss [receive-buffer drops in the relay's / the generator's namespace] (cores busy elsewhere just before, when any)",
      headers: ["payload", "relay", "round", "steps"],
      alignRight: [false, false, true, false],
      rows: ramp,
    },
  ];
  if (report.targets.length > 0) {
    out.push({
      title: "Targets (ours against coturn)",
      headers: ["payload", "anchor", "measure", "ratio", "target", "result"],
      alignRight: [false, false, false, true, true, false],
      rows: report.targets.map((t) => [
        formatSize(t.size),
        t.anchor.split("/").pop()!,
        t.op === "channel" ? "messages/s (ours ÷ anchor)" : "relay CPU per packet (anchor ÷ ours)",
        formatRatio(t.ratio),
        `≥ ${t.min}`,
        formatTarget(t),
      ]),
    });
  }
  return out;
}

export const relaySuite: BenchSuite = {
  name: "relay",
  summary: "TURN ChannelData through ours and coturn's turnserver between two namespaces: messages/s at ≤ 0.1 % loss, Mbit/s, CPU per packet",
  run: (options) => runRelaySuite(options),
  tables,
};

// --- The load generator process ---

/** Room per received datagram: more than any message of the suite. */
const SLOT_BYTES = 2048;
const RECV_SLOTS = 256;
/** Messages per sendmmsg. */
const SEND_BATCH = 64;
/** At most this much of the rate is sent in one tick after a late timer, so a stall never becomes a burst. */
const MAX_CATCH_UP_MS = 5;
const CHANNEL_DATA_HEADER = 4;
const TAG_BYTES = 4;

interface LoadClient {
  socket: UdpSocket;
  allocation: TurnAllocation;
  channel: number;
  vector: PacketVector;
  /** Where this client's frame starts in the send memory. */
  frame: number;
}

/** Runs the load generator: see the file comment; commands on stdin, reports on stdout, one JSON object a line. */
export async function runLoadGenerator(config: LoadConfig): Promise<void> {
  const say = (o: object): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  const server = { family: 4 as const, address: config.server, port: config.port };
  const peer = { family: 4 as const, address: config.peer, port: config.peerPort };
  let tag = 0;
  let peerReceived = 0;
  let received = 0;

  // Receiving: one memory for every socket, as the callbacks never overlap.
  const recvMemory = new Uint8Array(RECV_SLOTS * SLOT_BYTES);
  const view = new DataView(recvMemory.buffer);
  const recvVector = new PacketVector(RECV_SLOTS);
  const prepare = (vector: PacketVector): number => {
    for (let i = 0; i < RECV_SLOTS; i++) vector.set(i, i * SLOT_BYTES, SLOT_BYTES);
    return RECV_SLOTS;
  };

  // The peer: echo every batch to where it came from (the client's relayed address).
  const echo = UdpSocket.open(4, config.peer, config.peerPort);
  new UdpDriver(echo, recvMemory, recvVector, {
    prepare,
    deliver: (vector, count) => {
      for (let i = 0; i < count; i++) {
        if (vector.lengths[i]! >= TAG_BYTES && view.getUint32(vector.offsets[i]!) === tag) peerReceived++;
      }
      echo.send(recvMemory, vector, count);
    },
  }).start();

  // The clients: allocate, bind a channel to the peer, then count the echoes.
  const sendMemory = new Uint8Array(config.clients * SLOT_BYTES);
  const expiry = Math.floor(Date.now() / 1000) + 24 * 3600;
  const clients: LoadClient[] = [];
  const pending: Promise<void>[] = [];
  for (let c = 0; c < config.clients; c++) {
    const { username, password } = mintCredentials(config.secret, `bench-${c}`, expiry);
    const allocation = new TurnAllocation({ server, username, password, random: (n) => new Uint8Array(randomBytes(n)) });
    const socket = UdpSocket.open(4, "", 0);
    const vector = new PacketVector(SEND_BATCH);
    for (let i = 0; i < SEND_BATCH; i++) writeEndpoint(vector.addresses, i, server);
    const client: LoadClient = { socket, allocation, channel: 0, vector, frame: c * SLOT_BYTES };
    clients.push(client);
    const control = new PacketVector(1);
    const controlMemory = new Uint8Array(SLOT_BYTES);
    let timer: NodeJS.Timeout | undefined;
    let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
    pending.push(new Promise<void>((resolve, reject) => (settle = { resolve, reject })));
    const pump = (): void => {
      for (let t = allocation.pollTransmit(); t !== undefined; t = allocation.pollTransmit()) {
        controlMemory.set(t.bytes, 0);
        control.set(0, 0, t.bytes.length);
        writeEndpoint(control.addresses, 0, t.to);
        socket.send(controlMemory, control, 1);
      }
      for (let e = allocation.pollEvent(); e !== undefined; e = allocation.pollEvent()) {
        if (e.type === "allocated") allocation.bindChannel(performance.now(), peer);
        else if (e.type === "channel") {
          client.channel = e.channel;
          settle?.resolve();
        } else if (e.type === "failed") settle?.reject(new Error(`client ${c}: ${e.operation} failed: ${e.code ?? ""} ${e.reason}`));
      }
      const next = allocation.pollTimeout();
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (next !== undefined) {
        timer = setTimeout(() => {
          allocation.handleTimeout(performance.now());
          pump();
        }, Math.max(0, Math.ceil(next - performance.now())));
        timer.unref();
      }
    };
    new UdpDriver(socket, recvMemory, recvVector, {
      prepare,
      deliver: (vector, count) => {
        for (let i = 0; i < count; i++) {
          const at = vector.offsets[i]!;
          const length = vector.lengths[i]!;
          if (length === 0) continue;
          if ((recvMemory[at]! & 0xc0) === 0x40) {
            if (length >= CHANNEL_DATA_HEADER + TAG_BYTES && view.getUint32(at + CHANNEL_DATA_HEADER) === tag) received++;
            continue;
          }
          const from = readEndpoint(vector.addresses, i);
          if (from !== undefined) allocation.handleDatagram(performance.now(), from, recvMemory.slice(at, at + length));
        }
        pump();
      },
    }).start();
    allocation.allocate(performance.now());
    pump();
  }
  await Promise.all(pending);
  say({ ready: true, clients: clients.length });

  const runStep = (command: StepCommand): Promise<void> =>
    new Promise((resolve) => {
      tag = command.step;
      peerReceived = 0;
      received = 0;
      const frameLength = CHANNEL_DATA_HEADER + command.size;
      for (const client of clients) {
        const frame = new DataView(sendMemory.buffer, client.frame, frameLength);
        frame.setUint16(0, client.channel);
        frame.setUint16(2, command.size);
        frame.setUint32(CHANNEL_DATA_HEADER, tag);
        for (let i = 0; i < SEND_BATCH; i++) client.vector.set(i, client.frame, frameLength);
      }
      const total = Math.round((command.rate * command.ms) / 1000);
      const catchUp = Math.max(SEND_BATCH, Math.round((command.rate * MAX_CATCH_UP_MS) / 1000));
      let sent = 0;
      let sendShort = 0;
      let next = 0;
      const start = performance.now();
      const tick = (): void => {
        const elapsed = performance.now() - start;
        const due = Math.min(total, Math.floor((command.rate * Math.min(elapsed, command.ms)) / 1000));
        // Spread over every client, so no one allocation (and relay socket) gets a tick's burst alone.
        const want = Math.min(due - sent, catchUp);
        const share = Math.floor(want / clients.length);
        let extra = want - share * clients.length;
        for (let k = 0; k < clients.length; k++) {
          const client = clients[next]!;
          next = (next + 1) % clients.length;
          let left = share + (extra > 0 ? 1 : 0);
          if (extra > 0) extra--;
          while (left > 0) {
            const n = Math.min(left, SEND_BATCH);
            const done = client.socket.send(sendMemory, client.vector, n);
            sent += done;
            left -= n;
            if (done < n) {
              sendShort += n - done;
              break;
            }
          }
        }
        if (elapsed < command.ms) {
          setTimeout(tick, 1);
          return;
        }
        const sendSeconds = (performance.now() - start) / 1000;
        setTimeout(() => {
          const counts: StepCounts = { step: command.step, sent, peerReceived, received, sendSeconds, sendShort };
          say(counts);
          resolve();
        }, command.drainMs);
      };
      tick();
    });

  const lines = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  lines.on("line", (line) => {
    let command: StepCommand;
    try {
      command = JSON.parse(line) as StepCommand;
    } catch {
      return;
    }
    queue = queue.then(() => runStep(command));
  });
  await new Promise<void>((resolve) => lines.once("close", resolve));
  await queue;
  process.exit(0);
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(THIS_FILE);
  } catch {
    return false;
  }
}

if (isMain() && process.argv[2] === "--load-generator") {
  runLoadGenerator(JSON.parse(process.argv[3] ?? "{}") as LoadConfig).catch((error: unknown) => {
    process.stderr.write(`load generator: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
