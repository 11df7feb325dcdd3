// `wardline bench portal`: the portal's realtime side under load, over real WebSockets, one portal node
// (two in the revocation phase) on a throwaway PostgreSQL. There is no anchor tool for this suite: the
// "anchor" of every ratio is the issue's target (≥ 10,000 authorizations/s with p99 ≤ 50 ms; revocation
// p99 ≤ 100 ms, same node and across nodes; ≤ 50 KB per connected device), and each ratio is
// target-relative so that ≥ 1 means met.
//
// 1. Start PostgreSQL (test/support/postgres.ts) and seed one account directly through the server's
//    services: an admin with an API token, users in one group with client tokens, a site with gateway
//    tokens, resources in the site, a policy per resource for the group.
// 2. Throughput: a fresh portal node (./portal-node.ts, a child process, so its CPU and RSS are its own);
//    lean clients (this process) each keep `depth` request_authorization frames in flight, cycling over
//    the resources; lean gateways acknowledge each create_authorization at once. Latency is
//    request_authorization sent → authorization_created received, at the client. After a warmup,
//    completions are counted per second over the window; CPU of the node, of this process and of the
//    machine is read around the window.
// 3. Revocation: two fresh nodes, A and B, on the one database (every node hears of each committed
//    change over PostgreSQL LISTEN/NOTIFY), and the same client population connected and joined, half
//    to each node. Two cases of `revocations` rounds each, with one more client and one gateway (closed after
//    their case): per round a policy is inserted, the client is authorized through the gateway, then
//    node A's admin API deletes the policy (DELETE /api/policies/:id) and the time until the gateway
//    receives reject_access is taken. Same node: the client and gateway on node A. Across nodes: the
//    client and gateway on node B (their resource in a site of its own, so B's gateway is the only one
//    the client can be given), so it is node B's hub, not the API's node, that hears of the change and
//    revokes.
// 4. Memory: a fresh node; its RSS after a full GC, then `devices` clients connected and joined, then
//    its RSS after a full GC again; the difference ÷ devices.
// 5. Figures, target ratios, tables.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { DataSource } from "typeorm";
import type { Socket } from "node:net";
import { WebSocket } from "ws";
import { missingPostgres, startPostgres, type PostgresDatabase } from "../test/support/postgres.js";
import { createAccount, createActor, issueToken } from "../server/src/accounts/accounts.service.js";
import { AccountScope } from "../server/src/database/account-scope.js";
import { openDatabase } from "../server/src/database/data-source.js";
import { GroupEntity, MembershipEntity, PolicyEntity, ResourceEntity, ResourceSiteEntity, SiteEntity } from "../server/src/database/entities.js";
import { randomPublicKey, ScriptedDevice } from "../server/src/testing/device.js";
import {
  checkTarget, formatRate, formatRatio, formatTarget, loadWarning, repoRoot, startRun, stats,
  type BenchSuite, type Figure, type Ratio, type ReportTable, type SuiteOptions, type SuiteReport,
} from "./harness.js";
import type { NodeMemory, NodeStats } from "./portal-node.js";
import { firstLine, parsePidStat, parseProcStat, ticksPerSecond } from "./system.js";

// --- What is measured ---

/** The issue's targets: the anchors of this suite's ratios. */
export const TARGETS = {
  authorizationsPerSec: 10_000,
  authorizeP99Ms: 50,
  revokeP99Ms: 100,
  /** 50 KB, taken as 50,000 bytes (the stricter reading). */
  bytesPerDevice: 50_000,
} as const;

/** The load and sizes of one run. */
export interface PortalBenchParams {
  /** Measured window of the throughput phase, after the warmup. */
  durationMs: number;
  warmupMs: number;
  /** Lean clients in the throughput phase (and idle in the revocation phase). */
  clients: number;
  gateways: number;
  /** Resources (each in the site, each with a policy for the group); clients cycle over them. */
  resources: number;
  /** request_authorization frames each client keeps in flight (at most `resources`). */
  depth: number;
  /** Users with a client token; client devices are spread over them. */
  users: number;
  /** Revocation rounds. */
  revocations: number;
  /** Clients connected for the memory figure. */
  devices: number;
}

export const FULL_PARAMS: PortalBenchParams = { durationMs: 60_000, warmupMs: 5_000, clients: 200, gateways: 4, resources: 20, depth: 1, users: 50, revocations: 50, devices: 10_000 };
export const QUICK_PARAMS: PortalBenchParams = { durationMs: 4_000, warmupMs: 1_000, clients: 100, gateways: 2, resources: 10, depth: 2, users: 20, revocations: 10, devices: 1_000 };

/**
 * V8's young generation for the portal node, as `npm start` runs it: with semispaces of up to 64 MB
 * instead of 16, the node spent about 52 ms a second in scavenges under the full throughput load
 * instead of about 85 (four 12 s runs each).
 */
export const PORTAL_NODE_FLAGS = "--max-semi-space-size=64";

/** Connects in flight at once while a population connects. */
const CONNECT_PARALLEL = 32;
/** Lean devices send a heartbeat this often (the portal closes sockets silent for 30 s). */
const HEARTBEAT_EVERY_MS = 10_000;
/** After the window, how long the in-flight requests may take to come back. */
const DRAIN_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// --- 1. PostgreSQL and the seed ---

/** What the load needs to know of the seeded account. */
export interface Seed {
  accountId: string;
  apiToken: string;
  groupId: string;
  siteId: string;
  resourceIds: string[];
  clientTokens: string[];
  gatewayTokens: string[];
}

async function seed(db: DataSource, p: PortalBenchParams): Promise<Seed> {
  const account = await createAccount(db, { slug: `bench-${process.pid}-${randomBytes(3).toString("hex")}`, name: "Bench" });
  const scope = new AccountScope(db, account.id, null);
  const admin = await createActor(scope, { type: "admin", name: "Bench Admin", email: "admin@bench.test" });
  const { token: apiToken } = await issueToken(scope, { kind: "api", actorId: admin.id, name: "bench" });
  const site = await scope.repository(SiteEntity).insert({ name: "hq" });
  const group = await scope.repository(GroupEntity).insert({ name: "bench", kind: "static" });
  const expiresAt = new Date(Date.now() + 7 * 86_400_000);
  const clientTokens: string[] = [];
  for (let u = 0; u < p.users; u++) {
    const user = await createActor(scope, { type: "user", name: `user ${u}`, email: `user${u}@bench.test` });
    await scope.links(MembershipEntity).add({ groupId: group.id, actorId: user.id });
    clientTokens.push((await issueToken(scope, { kind: "client", actorId: user.id, expiresAt })).token);
  }
  const resourceIds: string[] = [];
  for (let r = 0; r < p.resources; r++) {
    const resource = await scope.repository(ResourceEntity).insert({ type: "dns", name: `app${r}`, address: `app${r}.bench.example`, addressDescription: null, filters: [] });
    await scope.links(ResourceSiteEntity).add({ resourceId: resource.id, siteId: site.id });
    await scope.repository(PolicyEntity).insert({ groupId: group.id, resourceId: resource.id, description: "", conditions: [], disabledAt: null });
    resourceIds.push(resource.id);
  }
  const gatewayTokens: string[] = [];
  for (let g = 0; g < p.gateways; g++) gatewayTokens.push((await issueToken(scope, { kind: "gateway", siteId: site.id })).token);
  return { accountId: account.id, apiToken, groupId: group.id, siteId: site.id, resourceIds, clientTokens, gatewayTokens };
}

// --- The portal node, a child process ---

const THIS_FILE = fileURLToPath(import.meta.url);

/** A portal node started by the suite: its pid, URL and the IPC questions it answers. */
class PortalNode {
  private stderrTail: string[] = [];
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly nodeId: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(databaseUrl: string, cpus: string | undefined = placement?.portal): Promise<PortalNode> {
    // From source (vitest, tsx) the entry is the .ts sibling run through tsx; from dist/ the .js one.
    const fromSource = THIS_FILE.endsWith(".ts");
    const entry = THIS_FILE.replace(/portal\.(ts|js)$/, "portal-node.$1");
    const profileDir = process.env.WARDLINE_BENCH_PORTAL_PROFILE;
    const args = [
      ...(fromSource ? ["--import", "tsx"] : []),
      "--expose-gc",
      // As `npm start` runs the portal (see `wardline portal --help`).
      PORTAL_NODE_FLAGS,
      ...(profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : []),
      entry,
      JSON.stringify({ databaseUrl }),
    ];
    // taskset sets the CPUs and execs node in place: the child is the node itself, IPC channel and all.
    const [command, commandArgs] = cpus === undefined ? [process.execPath, args] : ["taskset", ["-c", cpus, process.execPath, ...args]];
    const child = spawn(command, commandArgs, { cwd: repoRoot(), stdio: ["ignore", "pipe", "pipe", "ipc"] });
    const tail: string[] = [];
    createInterface({ input: child.stderr! }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
    });
    const ready = await new Promise<{ url: string; nodeId: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the portal node did not start within 60 s: ${tail.join("\n")}`)), 60_000);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the portal node exited (${code ?? signal}) before it was ready: ${tail.join("\n")}`));
      });
      createInterface({ input: child.stdout! }).on("line", (line) => {
        try {
          const message = JSON.parse(line) as { ready?: boolean; url: string; nodeId: string };
          if (message.ready) {
            clearTimeout(timer);
            resolve(message);
          }
        } catch {
          // not ours
        }
      });
    }).catch((error: unknown) => {
      child.kill("SIGKILL");
      throw error;
    });
    const node = new PortalNode(child, ready.url, ready.nodeId);
    node.stderrTail = tail;
    return node;
  }

  private ask<T extends { type: string }>(type: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the portal node did not answer '${type}'`)), 30_000);
      const onMessage = (message: T): void => {
        if (message?.type !== type) return;
        clearTimeout(timer);
        this.child.off("message", onMessage);
        resolve(message);
      };
      this.child.on("message", onMessage);
      this.child.send({ type });
    });
  }

  memory(): Promise<NodeMemory> {
    return this.ask<NodeMemory>("memory");
  }

  stats(): Promise<NodeStats> {
    return this.ask<NodeStats>("stats");
  }

  cpuTicks(): number {
    return parsePidStat(readFileSync(`/proc/${this.pid}/stat`, "utf8"));
  }

  diagnostics(): string {
    return this.stderrTail.slice(-10).join("\n");
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    if (this.child.connected) this.child.send({ type: "stop" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

// --- Lean devices: raw frames, no parsing beyond what the load needs ---

const RESOURCE_ID = /"resource_id":"([^"]+)"/;
const AUTHORIZATION_ID = /"authorization_id":"([^"]+)"/;

/** Opens a device's socket with its token and key, sends phx_join and resolves once `init` arrives. */
function connectLean(base: string, role: "client" | "gateway", token: string, onMessage: (ws: WebSocket, text: string) => void): Promise<WebSocket> {
  const url = new URL(`${base.replace(/^http/, "ws")}/${role}/websocket`);
  url.searchParams.set("public_key", randomPublicKey());
  url.searchParams.set("name", `bench-${role}`);
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${role}: no init within 30 s`));
    }, 30_000);
    ws.once("unexpected-response", (_request, response) => {
      clearTimeout(timer);
      reject(new Error(`${role}: connect refused with ${response.statusCode}`));
    });
    ws.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    ws.once("open", () => ws.send(`{"topic":"${role}","event":"phx_join","payload":{},"ref":"0"}`));
    let joined = false;
    ws.on("message", (data) => {
      const text = String(data);
      if (!joined) {
        if (text.includes('"event":"init"')) {
          joined = true;
          clearTimeout(timer);
          resolve(ws);
        }
        return;
      }
      onMessage(ws, text);
    });
  });
}

/**
 * Connects `count` devices, CONNECT_PARALLEL at a time, the i-th with tokens[i % tokens.length]; each
 * joins `into` as soon as it is up (so keepAlive reaches it while the rest connect). Returns the new ones.
 */
async function connectMany(base: string, role: "client" | "gateway", tokens: readonly string[], count: number, onMessage: (ws: WebSocket, text: string) => void, into: WebSocket[], progress?: (done: number) => void): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const ws = await connectLean(base, role, tokens[i % tokens.length]!, onMessage);
      sockets.push(ws);
      into.push(ws);
      if (sockets.length % 500 === 0) progress?.(sockets.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_PARALLEL, count) }, worker));
  return sockets;
}

/** Heartbeats for a population, so the portal never closes an idle one; returns the stop. */
function keepAlive(sockets: () => readonly WebSocket[]): () => void {
  let ref = 0;
  const timer = setInterval(() => {
    for (const ws of sockets()) if (ws.readyState === WebSocket.OPEN) ws.send(`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"h${ref++}"}`);
  }, HEARTBEAT_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function closeAll(sockets: readonly WebSocket[]): void {
  for (const ws of sockets) ws.terminate();
}

/** What the throughput phase counts. */
interface LoadCounters {
  phase: "warmup" | "measure" | "drain";
  measureStart: number;
  /** Completions per whole second of the window. */
  perSecond: number[];
  latencies: number[];
  completedWarmup: number;
  /** Completions after the window, while the last requests come back. */
  completedDrain: number;
  failed: number;
  failReasons: Map<string, number>;
  acks: number;
  inFlight: number;
}

/** A client keeping `depth` authorizations in flight, each for a different resource. */
class LoadClient {
  private readonly sentAt = new Map<string, number>();
  private cursor: number;
  private ref = 1;

  constructor(
    private readonly ws: WebSocket,
    private readonly resources: readonly string[],
    private readonly counters: LoadCounters,
    offset: number,
  ) {
    this.cursor = offset;
  }

  start(depth: number): void {
    for (let i = 0; i < depth; i++) this.request();
  }

  private request(): void {
    let id = this.resources[this.cursor++ % this.resources.length]!;
    while (this.sentAt.has(id)) id = this.resources[this.cursor++ % this.resources.length]!;
    this.sentAt.set(id, performance.now());
    this.counters.inFlight++;
    this.ws.send(`{"topic":"client","event":"request_authorization","payload":{"resource_id":"${id}"},"ref":"${this.ref++}"}`);
  }

  receive(text: string): void {
    const created = text.includes('"event":"authorization_created"');
    if (!created && !text.includes('"event":"authorization_creation_failed"')) return;
    const id = RESOURCE_ID.exec(text)?.[1];
    const sent = id === undefined ? undefined : this.sentAt.get(id);
    if (id === undefined || sent === undefined) return;
    const now = performance.now();
    this.sentAt.delete(id);
    const c = this.counters;
    c.inFlight--;
    if (created) {
      if (c.phase === "warmup") c.completedWarmup++;
      else if (c.phase === "drain") c.completedDrain++;
      else if (c.phase === "measure") {
        const second = Math.floor((now - c.measureStart) / 1000);
        c.perSecond[second] = (c.perSecond[second] ?? 0) + 1;
        c.latencies.push(now - sent);
      }
    } else {
      c.failed++;
      const reason = /"reason":"([^"]+)"/.exec(text)?.[1] ?? "unknown";
      c.failReasons.set(reason, (c.failReasons.get(reason) ?? 0) + 1);
    }
    if (c.phase !== "drain") this.request();
  }
}

/** A gateway that acknowledges every create_authorization at once. */
function gatewayHandler(counters: { acks: number }): (ws: WebSocket, text: string) => void {
  let ref = 1;
  const corked = new Set<WebSocket>();
  return (ws, text) => {
    if (!text.includes('"event":"create_authorization"')) return;
    const id = AUTHORIZATION_ID.exec(text)?.[1];
    if (id === undefined) return;
    counters.acks++;
    // Like the portal, a gateway answers what one read brought in one write: the acknowledgements of a
    // batch of create_authorization frames leave together.
    const raw = (ws as unknown as { _socket?: Socket })._socket;
    if (raw !== undefined && !corked.has(ws)) {
      corked.add(ws);
      raw.cork();
      process.nextTick(() => {
        corked.delete(ws);
        raw.uncork();
      });
    }
    ws.send(`{"topic":"gateway","event":"authorization_created","payload":{"authorization_id":"${id}"},"ref":"g${ref++}"}`);
  };
}

// --- 2. Throughput ---

/** Percentiles of a list, in its unit. */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  // Nearest rank: a percentile is a latency some request actually saw.
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

/** CPU seconds over a window: the portal node, this process (the load), the whole machine. */
export interface CpuSeconds {
  portal: number;
  generator: number;
  /** The PostgreSQL cluster: its postmaster and every process it forked (backends, walwriter...). */
  postgres: number;
  machine: number;
  wall: number;
}

/** utime + stime ticks of a process and its direct children (a postmaster and its backends); 0 when unknown. */
function processTreeTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const ppid = Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]);
    if (Number(entry) === pid || ppid === pid) ticks += parsePidStat(text);
  }
  return ticks;
}

export interface ThroughputResult {
  authorizations: number;
  seconds: number;
  perSecond: number;
  /** Completions in each whole second of the window. */
  perSecondSeries: number[];
  latencyMs: Percentiles;
  failed: number;
  failReasons: Record<string, number>;
  concurrency: number;
  cpu: CpuSeconds;
  /** PostgreSQL transactions committed per authorization over the window (from pg_stat_database, approximate). */
  transactionsPerAuthorization: number;
  node: NodeStats;
  nodeRssBytes: number;
}

function cpuNow(node: PortalNode, postgresPid: number | undefined): CpuSeconds {
  const usage = process.cpuUsage();
  return {
    portal: node.cpuTicks() / ticksPerSecond(),
    generator: (usage.user + usage.system) / 1e6,
    postgres: processTreeTicks(postgresPid) / ticksPerSecond(),
    machine: parseProcStat(readFileSync("/proc/stat", "utf8")).busy / ticksPerSecond(),
    wall: performance.now() / 1000,
  };
}

const cpuDelta = (a: CpuSeconds, b: CpuSeconds): CpuSeconds => ({ portal: b.portal - a.portal, generator: b.generator - a.generator, postgres: b.postgres - a.postgres, machine: b.machine - a.machine, wall: b.wall - a.wall });

/** Transactions committed in the current database so far (each autocommit statement is one). */
async function commits(db: DataSource): Promise<number> {
  const rows = (await db.query("SELECT xact_commit::float8 AS n FROM pg_stat_database WHERE datname = current_database()")) as { n: number }[];
  return rows[0]?.n ?? 0;
}

async function throughputPhase(postgres: PostgresDatabase, db: DataSource, s: Seed, p: PortalBenchParams, progress: (line: string) => void): Promise<ThroughputResult> {
  const databaseUrl = postgres.url;
  const postgresPid = postgres.cluster?.pid;
  const node = await PortalNode.start(databaseUrl);
  const sockets: WebSocket[] = [];
  const stopBeats = keepAlive(() => sockets);
  try {
    const counters: LoadCounters = { phase: "warmup", measureStart: 0, perSecond: [], latencies: [], completedWarmup: 0, completedDrain: 0, failed: 0, failReasons: new Map(), acks: 0, inFlight: 0 };
    progress(`throughput: connecting ${p.gateways} gateways and ${p.clients} clients`);
    await connectMany(node.url, "gateway", s.gatewayTokens, p.gateways, gatewayHandler(counters), sockets);
    const clients: LoadClient[] = [];
    const bySocket = new Map<WebSocket, LoadClient>();
    const clientSockets = await connectMany(node.url, "client", s.clientTokens, p.clients, (ws, text) => bySocket.get(ws)?.receive(text), sockets);
    clientSockets.forEach((ws, i) => {
      const client = new LoadClient(ws, s.resourceIds, counters, i);
      clients.push(client);
      bySocket.set(ws, client);
    });
    const depth = Math.min(p.depth, s.resourceIds.length);
    progress(`throughput: warming up for ${p.warmupMs / 1000} s`);
    for (const client of clients) client.start(depth);
    await sleep(p.warmupMs);
    progress(`throughput: measuring for ${p.durationMs / 1000} s`);
    const commitsBefore = await commits(db);
    await node.stats(); // starts the pool-wait sampling, the event loop and GC figures afresh for the window
    const before = cpuNow(node, postgresPid);
    counters.phase = "measure";
    counters.measureStart = performance.now();
    await sleep(p.durationMs);
    counters.phase = "drain";
    const after = cpuNow(node, postgresPid);
    const nodeStats = await node.stats();
    const seconds = (performance.now() - counters.measureStart) / 1000;
    const deadline = performance.now() + DRAIN_MS;
    while (counters.inFlight > 0 && performance.now() < deadline) await sleep(50);
    const authorizations = counters.latencies.length;
    const whole = Math.floor(p.durationMs / 1000);
    const series = Array.from({ length: Math.max(1, whole) }, (_, i) => counters.perSecond[i] ?? 0);
    // The statistics collector publishes a backend's counts within about a second.
    await sleep(1200);
    const transactions = (await commits(db)) - commitsBefore;
    const memory = await node.memory();
    return {
      authorizations,
      seconds,
      perSecond: authorizations / seconds,
      perSecondSeries: series,
      latencyMs: percentiles(counters.latencies),
      failed: counters.failed,
      failReasons: Object.fromEntries(counters.failReasons),
      concurrency: clients.length * depth,
      cpu: cpuDelta(before, after),
      transactionsPerAuthorization: transactions / Math.max(1, counters.latencies.length + counters.completedDrain),
      node: nodeStats,
      nodeRssBytes: memory.rss,
    };
  } finally {
    stopBeats();
    closeAll(sockets);
    await node.stop();
  }
}

// --- 3. Revocation ---

/** One case's rounds. */
export interface RevocationLatency {
  /** API call sent → reject_access received at the gateway. */
  latencyMs: Percentiles;
  /** API call sent → its HTTP response. */
  apiMs: Percentiles;
}

export interface RevocationResult extends RevocationLatency {
  // latencyMs and apiMs: the same-node case (the DELETE, the client and the gateway all on node A).
  /** The DELETE to node A's API, the client and the gateway on node B: node B's hub hears of the change over LISTEN/NOTIFY and revokes. */
  acrossNodes: RevocationLatency;
  /** Other clients of the account connected meanwhile, half to each node: each hub re-checks its own on a change. */
  population: number;
}

/** One revocation case: the client under test, its group, and the site (with a gateway token) of its resource. */
interface RevocationCase {
  label: string;
  scope: AccountScope;
  groupId: string;
  clientToken: string;
  siteId: string;
  gatewayToken: string;
  apiToken: string;
  rounds: number;
  progress: (line: string) => void;
}

/**
 * `c.rounds` revocations of a resource of its own in `c.siteId`: the scripted client and gateway
 * connected to `deviceNode`, each policy deleted through `apiNode`'s API; the devices are closed after.
 */
async function revocationRounds(apiNode: PortalNode, deviceNode: PortalNode, c: RevocationCase): Promise<RevocationLatency> {
  const { scope } = c;
  const slug = `revoked-${c.label.replace(/\W+/g, "-")}`;
  const resource = await scope.repository(ResourceEntity).insert({ type: "dns", name: slug, address: `${slug}.bench.example`, addressDescription: null, filters: [] });
  await scope.links(ResourceSiteEntity).add({ resourceId: resource.id, siteId: c.siteId });
  const scripted: ScriptedDevice[] = [];
  try {
    const gateway = await ScriptedDevice.connect(deviceNode.url, "gateway", c.gatewayToken, { public_key: randomPublicKey(), name: "revocation-gateway" });
    scripted.push(gateway);
    await gateway.join();
    await gateway.next("init");
    const client = await ScriptedDevice.connect(deviceNode.url, "client", c.clientToken, { public_key: randomPublicKey(), name: "revocation-client" });
    scripted.push(client);
    await client.join();
    await client.next("init");
    const beats = setInterval(() => {
      void client.heartbeat().catch(() => {});
      void gateway.heartbeat().catch(() => {});
    }, HEARTBEAT_EVERY_MS);
    beats.unref();
    const latencies: number[] = [];
    const api: number[] = [];
    try {
      for (let round = 0; round < c.rounds; round++) {
        c.progress(`revocation, ${c.label}: round ${round + 1} of ${c.rounds}`);
        const policy = await scope.repository(PolicyEntity).insert({ groupId: c.groupId, resourceId: resource.id, description: "", conditions: [], disabledAt: null });
        await client.next((f) => f.event === "resource_created_or_updated" && f.payload.id === resource.id, 30_000);
        // The request is answered once its outcome is pushed, so the gateway acknowledges first.
        const asked = client.request("request_authorization", { resource_id: resource.id });
        const create = (await gateway.next("create_authorization", 30_000)).payload as { authorization_id: string };
        await gateway.request("authorization_created", { authorization_id: create.authorization_id });
        await client.next("authorization_created", 30_000);
        await asked;
        const rejected = gateway.next((f) => f.event === "reject_access" && f.payload.authorization_id === create.authorization_id, 30_000);
        const started = performance.now();
        const res = await fetch(`${apiNode.url}/api/policies/${policy.id}`, { method: "DELETE", headers: { authorization: `Bearer ${c.apiToken}` } });
        api.push(performance.now() - started);
        if (res.status >= 300) throw new Error(`DELETE /api/policies/${policy.id}: ${res.status} ${await res.text()}`);
        await rejected;
        latencies.push(performance.now() - started);
        await client.next((f) => f.event === "resource_deleted" && f.payload.id === resource.id, 30_000);
        await sleep(20);
      }
    } finally {
      clearInterval(beats);
    }
    return { latencyMs: percentiles(latencies), apiMs: percentiles(api) };
  } finally {
    for (const d of scripted) await d.close().catch(() => {});
  }
}

async function revocationPhase(databaseUrl: string, db: DataSource, s: Seed, p: PortalBenchParams, progress: (line: string) => void): Promise<RevocationResult> {
  const nodeA = await PortalNode.start(databaseUrl);
  let nodeB: PortalNode | undefined;
  const sockets: WebSocket[] = [];
  const stopBeats = keepAlive(() => sockets);
  try {
    nodeB = await PortalNode.start(databaseUrl);
    // The idle clients are split between the nodes: each node's hub re-checks its own on every change.
    const onA = Math.ceil(p.clients / 2);
    progress(`revocation: connecting ${p.clients} idle clients, ${onA} to node A and ${p.clients - onA} to node B`);
    await connectMany(nodeA.url, "client", s.clientTokens, onA, () => {}, sockets);
    await connectMany(nodeB.url, "client", s.clientTokens, p.clients - onA, () => {}, sockets);
    // The client under test is in a group of its own: only its authorization is revoked. Each case has a
    // resource of its own; the across-nodes one is in a site of its own, so that the only gateway the
    // client on node B can be given is the one on node B.
    const scope = new AccountScope(db, s.accountId, null);
    const actor = await createActor(scope, { type: "user", name: "revoked user", email: "revoked@bench.test" });
    const group = await scope.repository(GroupEntity).insert({ name: "revocation", kind: "static" });
    await scope.links(MembershipEntity).add({ groupId: group.id, actorId: actor.id });
    const { token: clientToken } = await issueToken(scope, { kind: "client", actorId: actor.id, expiresAt: new Date(Date.now() + 86_400_000) });
    const siteB = await scope.repository(SiteEntity).insert({ name: "revocation-b" });
    const { token: gatewayTokenB } = await issueToken(scope, { kind: "gateway", siteId: siteB.id });
    const common = { scope, groupId: group.id, clientToken, apiToken: s.apiToken, rounds: p.revocations, progress };
    const sameNode = await revocationRounds(nodeA, nodeA, { ...common, label: "same node", siteId: s.siteId, gatewayToken: s.gatewayTokens[0]! });
    const acrossNodes = await revocationRounds(nodeA, nodeB, { ...common, label: "across nodes", siteId: siteB.id, gatewayToken: gatewayTokenB });
    return { ...sameNode, acrossNodes, population: p.clients };
  } finally {
    stopBeats();
    closeAll(sockets);
    await Promise.all([nodeA.stop(), nodeB?.stop()]);
  }
}

// --- 4. Memory ---

export interface MemoryResult {
  devices: number;
  rssBefore: number;
  rssAfter: number;
  bytesPerDevice: number;
  heapBytesPerDevice: number;
  /** Devices connected and joined per second while the population connected. */
  connectsPerSec: number;
  gc: boolean;
}

async function memoryPhase(databaseUrl: string, s: Seed, p: PortalBenchParams, progress: (line: string) => void): Promise<MemoryResult> {
  const node = await PortalNode.start(databaseUrl);
  const sockets: WebSocket[] = [];
  const stopBeats = keepAlive(() => sockets);
  try {
    // One device first, so the account's view and every lazy path exist before the baseline.
    await connectMany(node.url, "client", s.clientTokens, 1, () => {}, sockets);
    await sleep(200);
    const before = await node.memory();
    const started = performance.now();
    progress(`memory: connecting ${p.devices} clients`);
    await connectMany(node.url, "client", s.clientTokens, p.devices, () => {}, sockets, (done) => progress(`memory: ${done} of ${p.devices} clients connected`));
    const connectSeconds = (performance.now() - started) / 1000;
    await sleep(500);
    const after = await node.memory();
    if (after.connections < p.devices + 1) throw new Error(`memory: the portal holds ${after.connections} sockets, expected ${p.devices + 1}`);
    return {
      devices: p.devices,
      rssBefore: before.rss,
      rssAfter: after.rss,
      bytesPerDevice: (after.rss - before.rss) / p.devices,
      heapBytesPerDevice: (after.heapUsed - before.heapUsed) / p.devices,
      connectsPerSec: p.devices / connectSeconds,
      gc: after.gc,
    };
  } finally {
    stopBeats();
    closeAll(sockets);
    await node.stop();
  }
}

// --- 5. Figures and report ---

/** A figure of this suite, with what its kind measured beside the harness's fields. */
export interface PortalFigure extends Figure {
  throughput?: ThroughputResult;
  revocation?: RevocationResult;
  memory?: MemoryResult;
}

function figure(id: string, op: string, perSec: readonly number[], detail: string): PortalFigure {
  const rates = stats(perSec.length > 0 ? perSec : [0]);
  return { id, impl: "ours", op, size: 0, ops: 1, bytes: 0, detail, samples: perSec.length, iterationsPerSample: 1, mbPerSec: null, opsPerSec: rates, nsPerOp: rates.median > 0 ? 1e9 / rates.median : Number.POSITIVE_INFINITY };
}

const ratio = (op: string, ours: string, anchor: string, value: number): Ratio => ({ op, size: 0, ours, anchor, ratio: Number.isFinite(value) ? value : 0 });

/** Runs the suite with explicit parameters (the CLI passes the quick or full ones; tests tiny ones). */
// --- Placement ---

/** Where the processes run: the portal node on a CPU of its own, PostgreSQL and this process on the others. */
interface Placement {
  portal: string;
  rest: string;
  /** This process's affinity mask before, restored after the run. */
  before: string;
}

/** Set for the length of a pinned run; PortalNode.start reads it. */
let placement: Placement | undefined;

/**
 * Pins this process (and so the PostgreSQL cluster it starts next) to CPUs 1..n-1, and the portal nodes
 * it starts to CPU 0. Unpinned, the kernel sometimes ran the single-threaded portal on one core with a
 * busy PostgreSQL backend while the other core idled: throughput then varied between runs from 7,200 to
 * 11,400/s. Undefined, with the reason, when it cannot (one CPU, no taskset).
 */
function pin(): { placement?: Placement; why?: string } {
  const cpus = availableParallelism();
  if (cpus < 2) return { why: "one CPU: nothing to pin" };
  const current = spawnSync("taskset", ["-p", String(process.pid)], { encoding: "utf8" });
  const mask = /affinity mask:\s*([0-9a-f]+)/i.exec(current.stdout ?? "")?.[1];
  if (current.status !== 0 || mask === undefined) return { why: `taskset is not available (${current.error?.message ?? current.stderr?.trim() ?? "no output"})` };
  const rest = cpus === 2 ? "1" : `1-${cpus - 1}`;
  const set = spawnSync("taskset", ["-a", "-p", "-c", rest, String(process.pid)], { encoding: "utf8" });
  if (set.status !== 0) return { why: `taskset could not pin this process: ${set.stderr?.trim()}` };
  return { placement: { portal: "0", rest, before: mask } };
}

function unpin(p: Placement): void {
  spawnSync("taskset", ["-a", "-p", p.before, String(process.pid)], { stdio: "ignore" });
}

/** `pinned`: run the portal nodes on a CPU of their own (the CLI does, unless WARDLINE_BENCH_PORTAL_PIN=0). */
export async function runPortalBench(options: SuiteOptions, p: PortalBenchParams, pinned = false): Promise<SuiteReport> {
  const missing = missingPostgres();
  if (missing !== undefined) throw new Error(`needs PostgreSQL: ${missing}`);
  const run = await startRun("portal", options);
  const { progress } = run;
  const pinning = pinned ? pin() : { why: "not asked to (WARDLINE_BENCH_PORTAL_PIN=0, or a test)" };
  placement = pinning.placement;
  progress("starting PostgreSQL and seeding");
  let postgres: PostgresDatabase | undefined;
  let db: DataSource | undefined;
  try {
    postgres = await startPostgres();
    db = await openDatabase({ url: postgres.url });
    const version = ((await db.query("SHOW server_version")) as { server_version: string }[])[0]?.server_version ?? "unknown";
    const s = await seed(db, p);
    const throughput = await throughputPhase(postgres, db, s, p, progress);
    const revocation = await revocationPhase(postgres.url, db, s, p, progress);
    const memory = await memoryPhase(postgres.url, s, p, progress);

    const fThroughput: PortalFigure = {
      ...figure("authorize", "authorize", throughput.perSecondSeries, `${throughput.concurrency} requests in flight (${p.clients} clients × ${Math.min(p.depth, p.resources)}), ${p.gateways} gateways acknowledging at once; per-second completions over ${Math.round(throughput.seconds)} s`),
      throughput,
    };
    // The harness's rate field for these two: events per second of wall time, for shape only.
    const fRevoke: PortalFigure = { ...figure("revoke", "revoke", [1000 / revocation.latencyMs.p50], `policy deleted through node A's API → reject_access at the gateway, ${revocation.latencyMs.count} rounds with the client and gateway on node A (same node), ${revocation.acrossNodes.latencyMs.count} on node B (across nodes), ${revocation.population} other clients connected, half to each node`), revocation };
    const fMemory: PortalFigure = { ...figure("memory", "connect", [memory.connectsPerSec], `RSS of the portal node after a full GC, before and after ${memory.devices} clients connected and joined`), memory };
    const figures = [fThroughput, fRevoke, fMemory];
    const ratios = [
      ratio("authorizations/s", "authorize", `target ≥ ${TARGETS.authorizationsPerSec.toLocaleString("en-US")}/s`, throughput.perSecond / TARGETS.authorizationsPerSec),
      ratio("authorize p99", "authorize", `target p99 ≤ ${TARGETS.authorizeP99Ms} ms`, TARGETS.authorizeP99Ms / throughput.latencyMs.p99),
      ratio("revoke p99", "revoke", `target p99 ≤ ${TARGETS.revokeP99Ms} ms`, TARGETS.revokeP99Ms / revocation.latencyMs.p99),
      ratio("revoke p99 across nodes", "revoke", `target p99 ≤ ${TARGETS.revokeP99Ms} ms`, TARGETS.revokeP99Ms / revocation.acrossNodes.latencyMs.p99),
      ratio("bytes per device", "memory", `target ≤ ${TARGETS.bytesPerDevice / 1000} KB`, memory.bytesPerDevice > 0 ? TARGETS.bytesPerDevice / memory.bytesPerDevice : Number.POSITIVE_INFINITY),
    ];
    const header = run.header();
    const notes = [
      "No anchor tool exists for this suite: every ratio is against the issue's target (the 'anchor' column), turned so that ≥ 1 means met: achieved ÷ target for authorizations/s, target ÷ measured for latencies and memory.",
      `Throughput is closed-loop: each client keeps ${Math.min(p.depth, p.resources) === 1 ? "one request_authorization frame" : `${Math.min(p.depth, p.resources)} request_authorization frames, for different resources,`} in flight and sends the next when one comes back (authorization_created or authorization_creation_failed), so latency and rate are tied by the concurrency (${throughput.concurrency}).`,
      "Latency is request_authorization sent → authorization_created received at the client; it includes the gateway's round trip (create_authorization → its authorization_created), the batched authorization record, and the load generator's own event loop.",
      "The portal node is a child process (bench/portal-node.ts) on its own PostgreSQL database in a throwaway cluster (fsync=off, synchronous_commit=off); CPU is utime + stime from /proc for the node, process.cpuUsage() for the load generator (this process), /proc/stat for the machine (PostgreSQL is most of the rest).",
      "The portal's own figures over the window: CPU µs per authorization (its CPU time ÷ authorizations completed), the share of the time its event loop was busy (performance.eventLoopUtilization; below 1 means it waited, mostly for its authorization records to commit), and milliseconds per second in GC pauses, scavenges of the young generation apart from the rest.",
      "The bench node raises the connect and API rate limits (every simulated device connects from 127.0.0.1, many share a token); nothing else differs from `wardline portal` as `npm start` runs it (node --max-semi-space-size=64, a larger young generation).",
      "Each phase starts a fresh portal node (two for revocation): authorizations held from the throughput phase would otherwise weigh on revocation and memory.",
      `Revocation runs two portal nodes, A and B, on the one database for the whole phase; every node, A included, hears of a committed change over PostgreSQL LISTEN/NOTIFY. The DELETE always goes to node A's API. Same node ('revoke p99'): the client and gateway under test on node A. Across nodes ('revoke p99 across nodes'): the client and gateway on node B, so node B's hub re-evaluates the authorization and sends reject_access; their resource is in a site of its own, so the only gateway the client can be given is the one on B. ${p.revocations} rounds each, same node first; each case's client and gateway are closed before the next.`,
      `The ${p.clients} idle clients of the revocation phase are split between the nodes (${Math.ceil(p.clients / 2)} on A, the rest on B), in both cases: each node's hub re-checks its own clients on every change.`,
      pinning.placement !== undefined
        ? `Placement: every portal node pinned to CPU ${pinning.placement.portal} (taskset), PostgreSQL and the load generator to CPU ${pinning.placement.rest}. Unpinned (WARDLINE_BENCH_PORTAL_PIN=0) the kernel sometimes put the single-threaded portal on a core with a busy PostgreSQL backend while the other idled, and runs varied from 7,200 to 11,400 authorizations/s.`
        : `Placement: not pinned (${pinning.why}); the kernel places the portal, PostgreSQL and the load generator as it likes, and runs vary more.`,
      `Memory: clients only (each its own WireGuard key, so its own device row), ${p.users} users' client tokens shared among them; KB is 1,000 bytes.`,
    ];
    if (options.quick) notes.push("Quick mode: short window and small populations; figures are rough. Record full-mode runs only.");
    const warning = loadWarning(header.machine);
    if (warning !== undefined) notes.push(warning);
    return {
      ...header,
      units: {
        opsPerSec: "authorize: authorizations completed per second (per-second samples over the window); revoke: 1000 ÷ p50 ms (same node); connect: devices connected and joined per second",
        latencyMs: "milliseconds, nearest-rank percentiles",
        bytesPerDevice: "portal RSS growth ÷ connected devices, bytes",
        ratio: "target-relative, ≥ 1 meets the issue's target",
      },
      subject: {
        Portal: "one node, `bench/portal-node.ts` (startPortal on PostgreSQL, rate limits raised), a child process; two such nodes on the one database in the revocation phase",
        PostgreSQL: `${version}, throwaway cluster from test/support/postgres.ts (${firstLine("postgres", ["--version"])})`,
        Seed: `${p.users} users in one group with client tokens, ${p.resources} DNS resources in one site each with a policy for the group, ${p.gateways} gateway tokens`,
        Load: `${p.clients} clients × ${Math.min(p.depth, p.resources)} in flight, ${p.gateways} gateways; ${p.warmupMs / 1000} s warmup, ${p.durationMs / 1000} s window; ${p.revocations} revocations same node and ${p.revocations} across nodes; ${p.devices} devices for memory`,
      },
      figures,
      ratios,
      targets: ratios.map((r) => checkTarget(r, 1)),
      notes,
    };
  } finally {
    await db?.destroy().catch(() => {});
    await postgres?.stop();
    if (placement !== undefined) unpin(placement);
    placement = undefined;
  }
}

// --- Tables ---

const ms = (v: number): string => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : "–");

function tables(report: SuiteReport): ReportTable[] {
  const figures = report.figures as PortalFigure[];
  const t = figures.find((f) => f.throughput)?.throughput;
  const r = figures.find((f) => f.revocation)?.revocation;
  const m = figures.find((f) => f.memory)?.memory;
  const out: ReportTable[] = [];
  if (t) {
    const series = stats(t.perSecondSeries);
    out.push({
      title: "Authorizations (request_authorization → authorization_created), one portal node",
      headers: ["authorizations/s", "per-second min / median / max", "p50 ms", "p90 ms", "p99 ms", "max ms", "in flight", "failed", "cores: portal / PostgreSQL / load / machine", "DB transactions per authorization", "pg pool: size, queries waiting mean / max", "portal: CPU µs per authorization, event loop busy, GC ms/s scavenges / other"],
      rows: [[
        formatRate(t.perSecond),
        `${formatRate(series.min)} / ${formatRate(series.median)} / ${formatRate(series.max)}`,
        ms(t.latencyMs.p50), ms(t.latencyMs.p90), ms(t.latencyMs.p99), ms(t.latencyMs.max),
        String(t.concurrency),
        String(t.failed),
        [t.cpu.portal, t.cpu.postgres, t.cpu.generator, t.cpu.machine].map((c) => (c / t.cpu.wall).toFixed(2)).join(" / "),
        t.transactionsPerAuthorization.toFixed(2),
        `${t.node.pool.size}, ${t.node.pool.waitingMean.toFixed(0)} / ${t.node.pool.waitingMax}`,
        `${((1e6 * t.cpu.portal) / Math.max(1, t.authorizations)).toFixed(0)}, ${t.node.eventLoopBusy.toFixed(2)}, ${(t.node.gcMs.minor / t.cpu.wall).toFixed(0)} / ${(t.node.gcMs.other / t.cpu.wall).toFixed(0)}`,
      ]],
    });
  }
  if (r) {
    const row = (nodes: string, devicesOn: string, x: RevocationLatency): string[] => [nodes, devicesOn, String(x.latencyMs.count), ms(x.latencyMs.p50), ms(x.latencyMs.p90), ms(x.latencyMs.p99), ms(x.latencyMs.max), ms(x.apiMs.p50), String(r.population)];
    out.push({
      title: "Revocation (DELETE /api/policies/:id to node A → reject_access at the gateway), two portal nodes on one database",
      headers: ["nodes", "client and gateway on", "rounds", "p50 ms", "p90 ms", "p99 ms", "max ms", "API response p50 ms", "other clients connected (both nodes)"],
      alignRight: [false, false, true, true, true, true, true, true, true],
      rows: [row("same node", "node A", r), row("across nodes", "node B", r.acrossNodes)],
    });
  }
  if (m) {
    out.push({
      title: "Resident memory per connected device",
      headers: ["devices", "RSS before MB", "RSS after MB", "bytes per device", "heap bytes per device", "connects/s"],
      rows: [[String(m.devices), (m.rssBefore / 1e6).toFixed(1), (m.rssAfter / 1e6).toFixed(1), formatRate(m.bytesPerDevice), formatRate(m.heapBytesPerDevice), formatRate(m.connectsPerSec)]],
    });
  }
  out.push({
    title: "Targets (the issue's; no anchor tool): ratio ≥ 1 meets",
    headers: ["measure", "target", "ratio", "result"],
    alignRight: [false, false, true, false],
    rows: report.targets.map((x) => [x.op, x.anchor, formatRatio(x.ratio), formatTarget(x)]),
  });
  return out;
}

export const portalSuite: BenchSuite = {
  name: "portal",
  summary: "the portal's realtime side over WebSockets on PostgreSQL: authorizations/s with p50/p99, revocation latency, memory per connected device, against the issue's targets",
  run: (options) => runPortalBench(options, options.quick ? QUICK_PARAMS : FULL_PARAMS, process.env.WARDLINE_BENCH_PORTAL_PIN !== "0"),
  tables,
};
