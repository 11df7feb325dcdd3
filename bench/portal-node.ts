// The portal node `wardline bench portal` measures, run as a child process so that its CPU time and
// resident memory are its own, apart from the load generator's. It serves the REST API and the realtime
// channels on 127.0.0.1 at a free port, on the PostgreSQL the suite started and seeded.
//
// Protocol with the suite: argv[2] is a JSON NodeConfig; once listening the node prints one JSON line
// on stdout ({ ready, url, nodeId, pid }). Over the IPC channel it answers { type: "memory" } (after a
// full garbage collection when run with --expose-gc) and { type: "stats" }, and { type: "stop" } closes
// the portal and exits.

import { constants, performance, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { startPortal } from "../server/src/portal.js";

/** What the suite passes the node. */
export interface NodeConfig {
  databaseUrl: string;
}

/** The node's answer to { type: "memory" }: process.memoryUsage() after a GC, and its sockets. */
export interface NodeMemory {
  type: "memory";
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  connections: number;
  gc: boolean;
}

/** The node's answer to { type: "stats" }: what its hub decided and its recorder wrote, and errors logged. */
export interface NodeStats {
  type: "stats";
  decisions: { allowed: number; denied: number; failed: number };
  recordBatches: number;
  recordsWritten: number;
  errors: number;
  connections: number;
  /** The pg pool (every query of the node goes through it): its size, and queries waiting for a connection, sampled every 50 ms since the last stats. */
  pool: { size: number; waitingMean: number; waitingMax: number; samples: number };
  /** Since the last stats: the share of the time the event loop was busy, and the time in GC pauses (ms), scavenges apart from the rest. */
  eventLoopBusy: number;
  gcMs: { minor: number; other: number };
}

/** The pg.Pool under TypeORM's PostgreSQL driver, where there is one. */
interface PgPool {
  totalCount: number;
  waitingCount: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "{}") as NodeConfig;
  let errors = 0;
  const portal = await startPortal({
    host: "127.0.0.1",
    port: 0,
    database: { url: config.databaseUrl },
    // Every simulated device connects from 127.0.0.1 and many share a token: the per-address and
    // per-token limits are for abuse, not for a benchmark's one address.
    rateLimit: { burst: 1e9, perSecond: 1e9 },
    log: (level, msg, fields) => {
      if (level === "info") return;
      if (level === "error") errors++;
      if (errors <= 20 || level === "warn") process.stderr.write(`portal ${level}: ${msg} ${fields ? JSON.stringify(fields) : ""}\n`);
    },
  });
  const { hub, recorder, channels } = portal.realtime;
  const gc = (globalThis as { gc?: () => void }).gc;
  const pool = (portal.database.driver as unknown as { master?: PgPool }).master;
  let waiting = { sum: 0, max: 0, samples: 0 };
  setInterval(() => {
    if (pool === undefined) return;
    waiting.sum += pool.waitingCount;
    waiting.max = Math.max(waiting.max, pool.waitingCount);
    waiting.samples++;
  }, 50).unref();
  let gcMs = { minor: 0, other: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gcMs.minor += entry.duration;
      else gcMs.other += entry.duration;
    }
  }).observe({ entryTypes: ["gc"] });
  let loop = performance.eventLoopUtilization();
  process.on("message", (message: { type?: string }) => {
    if (message?.type === "memory") {
      if (gc !== undefined) {
        gc();
        gc();
      }
      const m = process.memoryUsage();
      const reply: NodeMemory = { type: "memory", rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, connections: channels.connections.size, gc: gc !== undefined };
      process.send?.(reply);
    } else if (message?.type === "stats") {
      const reply: NodeStats = {
        type: "stats",
        decisions: { ...hub.decisions },
        recordBatches: recorder.batches,
        recordsWritten: recorder.written,
        errors,
        connections: channels.connections.size,
        pool: { size: pool?.totalCount ?? 0, waitingMean: waiting.samples > 0 ? waiting.sum / waiting.samples : 0, waitingMax: waiting.max, samples: waiting.samples },
        eventLoopBusy: performance.eventLoopUtilization(loop).utilization,
        gcMs,
      };
      waiting = { sum: 0, max: 0, samples: 0 };
      loop = performance.eventLoopUtilization();
      gcMs = { minor: 0, other: 0 };
      process.send?.(reply);
    } else if (message?.type === "stop") {
      void portal.close().finally(() => process.exit(0));
    }
  });
  process.on("disconnect", () => void portal.close().finally(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ ready: true, url: portal.url, nodeId: portal.realtime.nodes.nodeId, pid: process.pid })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`portal node: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
