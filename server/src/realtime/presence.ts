// Which devices (clients, gateways) and relays are connected, and to which portal node.
//
// Presence rows are the portal's own bookkeeping, not tenant API objects: they change on every
// connect and disconnect, so they bypass AccountScope and its change log (which they would flood)
// and use the DataSource directly. Only realtime/ touches the presence and portal_nodes tables.
//
// 1. start() registers the node in portal_nodes. Every heartbeatEveryMs, nodeHeartbeat() refreshes
//    its heartbeat_at and deletes the nodes whose heartbeat is older than deadAfterMs, with their
//    presence rows (one statement, so exactly one live node reaps each dead one), and announces
//    `node_down` for each on the node bus. Times are the database's clock, so nodes' clocks may differ.
// 2. join() and leave() write this node's row for a device and announce `join` / `leave`. A device
//    connected twice to one node (a reconnect racing its old socket) is counted, and leaves when its
//    last socket does.
// 3. A node that finds its own row gone (it stalled past deadAfterMs and was reaped while still
//    holding sockets) registers again, writes back its devices and announces `node_up`.
// 4. online() answers from the rows of live nodes only, so a dead node's devices are offline as soon
//    as its heartbeat is stale, even before some node reaps it.
// 5. stop() deletes the node's own rows and announces `node_down`.
//
// Announcements are broadcasts: every node hears them, this one included, through onChange(). On
// PGlite there is one node (one process opens a PGlite database), so start() reaps every other node
// row at once: they were left by a process that has ended.

import type { DataSource } from "typeorm";
import { pgliteListen } from "../database/pglite-driver.js";
import type { PresenceKind } from "./entities.js";
import { callSafely } from "./listen-connection.js";
import type { NodeBus } from "./node-bus.js";

export type { PresenceKind } from "./entities.js";

/** A connected device (or relay), as announcements carry it. */
export interface PresenceDevice {
  accountId: string;
  deviceId: string;
  kind: PresenceKind;
}

/**
 * An announcement on the node bus. A `leave` or `node_down` says a device left that node; it may
 * still be connected to another (ask online()).
 */
export type PresenceChange =
  | { type: "presence"; event: "join" | "leave"; nodeId: string; device: PresenceDevice }
  | { type: "presence"; event: "node_up"; nodeId: string; devices: PresenceDevice[] }
  | { type: "presence"; event: "node_down"; nodeId: string; reason: "stopped" | "dead"; devices: PresenceDevice[] };

export interface PresenceOptions {
  /** How often this node's heartbeat is written and dead nodes are looked for. Default 5000; 0: only by calling nodeHeartbeat(). */
  heartbeatEveryMs?: number;
  /** A node whose heartbeat is older than this is dead. Default 15000. */
  deadAfterMs?: number;
  /** Told of heartbeats that failed and listeners that threw; presence carries on. */
  onError?: (error: unknown) => void;
}

// Devices per node_up / node_down message: about 110 bytes each keeps a message under the bus's cap.
const DEVICES_PER_MESSAGE = 50;
const KINDS = new Set<string>(["client", "gateway", "relay"]);
const FOREIGN_KEY_VIOLATION = "23503";

/** The Presence running on each database in this process, for the REST API's online badges. */
const running = new WeakMap<DataSource, Presence>();

/**
 * Which of `deviceIds` are connected to a live portal node, as the Presence running on `db` in this
 * process reads the presence table; undefined when none runs here (the API without a realtime side).
 */
export async function devicesOnline(db: DataSource, accountId: string, deviceIds: readonly string[]): Promise<Set<string> | undefined> {
  const presence = running.get(db);
  if (presence === undefined) return undefined;
  return new Set((await presence.online(accountId, deviceIds)).keys());
}

/**
 * Calls `listener` with every presence announcement the Presence running on `db` hears (from any node);
 * returns the unsubscribe, or undefined when no Presence runs here.
 */
export function onPresenceChange(db: DataSource, listener: (change: PresenceChange) => void): (() => void) | undefined {
  return running.get(db)?.onChange(listener);
}

/** This node's presence: its devices in the presence table, and its liveness in portal_nodes. */
export class Presence {
  /** Heartbeats that failed (the database was unreachable, say). */
  heartbeatFailures = 0;
  private readonly local = new Map<string, PresenceDevice & { sockets: number }>();
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private readonly perDevice = new Map<string, Promise<unknown>>();
  private readonly heartbeatEveryMs: number;
  private readonly deadAfterMs: number;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private state: "new" | "started" | "stopped" = "new";

  constructor(
    private readonly dataSource: DataSource,
    private readonly bus: NodeBus,
    private readonly options: PresenceOptions = {},
  ) {
    this.heartbeatEveryMs = options.heartbeatEveryMs ?? 5000;
    this.deadAfterMs = options.deadAfterMs ?? 15_000;
  }

  /** This node's id (the node bus's). */
  get nodeId(): string {
    return this.bus.nodeId;
  }

  /** Registers this node, reaps dead ones and starts the heartbeat. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`presence is ${this.state}`);
    this.state = "started";
    running.set(this.dataSource, this);
    this.unsubscribe = this.bus.onMessage((message) => {
      if (isPresenceChange(message)) for (const listener of [...this.listeners]) callSafely(() => listener(message), this.options.onError);
    });
    await this.register();
    await this.reap(pgliteListen(this.dataSource) !== undefined ? 0 : this.deadAfterMs);
    if (this.heartbeatEveryMs > 0) this.schedule();
  }

  /** Deletes this node's rows and announces it gone; stops the heartbeat. */
  async stop(): Promise<void> {
    if (this.state !== "started") return;
    this.state = "stopped";
    if (running.get(this.dataSource) === this) running.delete(this.dataSource);
    clearTimeout(this.timer);
    await this.beating;
    await Promise.allSettled(this.perDevice.values());
    this.local.clear();
    const gone = await this.rows<DeviceRow>(
      `WITH gone AS (DELETE FROM presence WHERE node_id = $1 RETURNING account_id, device_id, kind),
            node AS (DELETE FROM portal_nodes WHERE node_id = $1)
       SELECT account_id, device_id, kind FROM gone`,
      [this.nodeId],
    );
    await this.announceNode("node_down", this.nodeId, gone.map(deviceOf), "stopped");
    this.unsubscribe?.();
    this.listeners.clear();
  }

  /** Calls listener with every presence announcement, from any node; returns the unsubscribe. */
  onChange(listener: (change: PresenceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records that a device's socket opened on this node, and announces it. */
  join(accountId: string, deviceId: string, kind: PresenceKind): Promise<void> {
    return this.forDevice(accountId, deviceId, async (key) => {
      this.assertStarted();
      const entry = this.local.get(key);
      if (entry !== undefined) {
        entry.sockets++;
        if (entry.kind === kind) return;
        entry.kind = kind;
      } else {
        this.local.set(key, { accountId, deviceId, kind, sockets: 1 });
      }
      try {
        await this.insertRow(accountId, deviceId, kind);
      } catch (error) {
        const failed = this.local.get(key);
        if (failed !== undefined && --failed.sockets === 0) this.local.delete(key);
        throw error;
      }
      await this.bus.broadcast({ type: "presence", event: "join", nodeId: this.nodeId, device: { accountId, deviceId, kind } } satisfies PresenceChange);
    });
  }

  /** Records that a device's socket on this node closed; announces it when it was the last one. */
  leave(accountId: string, deviceId: string): Promise<void> {
    return this.forDevice(accountId, deviceId, async (key) => {
      const entry = this.local.get(key);
      if (entry === undefined || this.state !== "started") return;
      if (--entry.sockets > 0) return;
      this.local.delete(key);
      await this.dataSource.query(`DELETE FROM presence WHERE account_id = $1 AND device_id = $2 AND node_id = $3`, [accountId, deviceId, this.nodeId]);
      await this.bus.broadcast({ type: "presence", event: "leave", nodeId: this.nodeId, device: { accountId, deviceId, kind: entry.kind } } satisfies PresenceChange);
    });
  }

  /** Which of deviceIds are connected to a live node, and to which node(s); the others are absent. */
  async online(accountId: string, deviceIds: readonly string[]): Promise<Map<string, string[]>> {
    if (deviceIds.length === 0) return new Map();
    const rows = await this.rows<{ device_id: string; node_id: string }>(
      `SELECT p.device_id, p.node_id FROM presence p JOIN portal_nodes n ON n.node_id = p.node_id
       WHERE p.account_id = $1 AND p.device_id = ANY($2::uuid[]) AND n.heartbeat_at >= now() - ($3::float8 * interval '1 millisecond')
       ORDER BY p.device_id, p.node_id`,
      [accountId, [...deviceIds], this.deadAfterMs],
    );
    return byDevice(rows);
  }

  /** The account's devices of one kind connected to a live node (its relays, say), with their node(s). */
  async onlineOfKind(accountId: string, kind: PresenceKind): Promise<Map<string, string[]>> {
    const rows = await this.rows<{ device_id: string; node_id: string }>(
      `SELECT p.device_id, p.node_id FROM presence p JOIN portal_nodes n ON n.node_id = p.node_id
       WHERE p.account_id = $1 AND p.kind = $2 AND n.heartbeat_at >= now() - ($3::float8 * interval '1 millisecond')
       ORDER BY p.device_id, p.node_id`,
      [accountId, kind, this.deadAfterMs],
    );
    return byDevice(rows);
  }

  /** The nodes alive now, this one included. */
  async liveNodes(): Promise<string[]> {
    const rows = await this.rows<{ node_id: string }>(
      `SELECT node_id FROM portal_nodes WHERE heartbeat_at >= now() - ($1::float8 * interval '1 millisecond') ORDER BY node_id`,
      [this.deadAfterMs],
    );
    return rows.map((row) => row.node_id);
  }

  /** Refreshes this node's heartbeat (registering again if it was reaped) and reaps dead nodes. */
  nodeHeartbeat(): Promise<void> {
    const beat = (this.beating ?? Promise.resolve()).then(async () => {
      if (this.state !== "started") return;
      const alive = await this.rows(`UPDATE portal_nodes SET heartbeat_at = now() WHERE node_id = $1 RETURNING node_id`, [this.nodeId]);
      if (alive.length === 0) await this.rejoin();
      await this.reap(this.deadAfterMs);
    });
    this.beating = beat.catch(() => {});
    return beat;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.nodeHeartbeat().then(
        () => {},
        (error: unknown) => {
          this.heartbeatFailures++;
          this.options.onError?.(error);
        },
      ).finally(() => {
        if (this.state === "started") this.schedule();
      });
    }, this.heartbeatEveryMs).unref();
  }

  private assertStarted(): void {
    if (this.state !== "started") throw new Error(`presence is ${this.state}, not started`);
  }

  /** Runs work after any earlier join or leave of the same device, so their rows land in order. */
  private forDevice(accountId: string, deviceId: string, work: (key: string) => Promise<void>): Promise<void> {
    const key = `${accountId}/${deviceId}`;
    const run = (this.perDevice.get(key) ?? Promise.resolve()).then(() => work(key));
    const settled = run.catch(() => {});
    this.perDevice.set(key, settled);
    void settled.then(() => {
      if (this.perDevice.get(key) === settled) this.perDevice.delete(key);
    });
    return run;
  }

  private async register(): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO portal_nodes (node_id, started_at, heartbeat_at) VALUES ($1, now(), now())
       ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()`,
      [this.nodeId],
    );
  }

  private async insertRow(accountId: string, deviceId: string, kind: PresenceKind): Promise<void> {
    const insert = (): Promise<unknown> =>
      this.dataSource.query(
        `INSERT INTO presence (account_id, device_id, node_id, kind, connected_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (account_id, device_id, node_id) DO UPDATE SET kind = EXCLUDED.kind`,
        [accountId, deviceId, this.nodeId, kind],
      );
    try {
      await insert();
    } catch (error) {
      // Reaped while alive: this node's row is gone, so its presence rows cannot point at it.
      if (codeOf(error) !== FOREIGN_KEY_VIOLATION || (await this.rows(`SELECT 1 FROM portal_nodes WHERE node_id = $1`, [this.nodeId])).length > 0) throw error;
      await this.rejoin();
      await insert();
    }
  }

  /** Registers again after being reaped, writes back every device this node holds, announces them. */
  private async rejoin(): Promise<void> {
    if (this.state !== "started") return;
    await this.register();
    const devices = [...this.local.values()].map(({ accountId, deviceId, kind }) => ({ accountId, deviceId, kind }));
    if (devices.length > 0) {
      await this.dataSource.query(
        `INSERT INTO presence (account_id, device_id, node_id, kind, connected_at)
         SELECT a, d, $4, k, now() FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(a, d, k)
         ON CONFLICT (account_id, device_id, node_id) DO NOTHING`,
        [devices.map((d) => d.accountId), devices.map((d) => d.deviceId), devices.map((d) => d.kind), this.nodeId],
      );
    }
    await this.announceNode("node_up", this.nodeId, devices);
  }

  /** Deletes the nodes (not this one) silent for longer than olderThanMs, and announces each. */
  private async reap(olderThanMs: number): Promise<void> {
    const rows = await this.rows<{ node_id: string; account_id: string | null; device_id: string | null; kind: PresenceKind | null }>(
      `WITH dead AS (
         DELETE FROM portal_nodes WHERE node_id <> $1 AND heartbeat_at < now() - ($2::float8 * interval '1 millisecond') RETURNING node_id
       ), gone AS (
         DELETE FROM presence WHERE node_id IN (SELECT node_id FROM dead) RETURNING account_id, device_id, kind, node_id
       )
       SELECT dead.node_id, gone.account_id, gone.device_id, gone.kind FROM dead LEFT JOIN gone ON gone.node_id = dead.node_id`,
      [this.nodeId, olderThanMs],
    );
    const dead = new Map<string, PresenceDevice[]>();
    for (const row of rows) {
      const devices = dead.get(row.node_id) ?? [];
      dead.set(row.node_id, devices);
      if (row.account_id !== null && row.device_id !== null && row.kind !== null) devices.push({ accountId: row.account_id, deviceId: row.device_id, kind: row.kind });
    }
    for (const [nodeId, devices] of dead) await this.announceNode("node_down", nodeId, devices, "dead");
  }

  private async announceNode(event: "node_up" | "node_down", nodeId: string, devices: PresenceDevice[], reason: "stopped" | "dead" = "dead"): Promise<void> {
    // Always at least one message, so a node with no devices is still heard of.
    for (let i = 0; i === 0 || i < devices.length; i += DEVICES_PER_MESSAGE) {
      const chunk = devices.slice(i, i + DEVICES_PER_MESSAGE);
      const change: PresenceChange = event === "node_up" ? { type: "presence", event, nodeId, devices: chunk } : { type: "presence", event, nodeId, reason, devices: chunk };
      await this.bus.broadcast(change);
    }
  }

  /** The rows of a statement, whatever its command (TypeORM answers UPDATE and DELETE as [rows, count]). */
  private async rows<T = Record<string, unknown>>(sql: string, parameters: unknown[]): Promise<T[]> {
    const runner = this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, parameters, true);
      return (result.records ?? []) as T[];
    } finally {
      await runner.release();
    }
  }
}

interface DeviceRow {
  account_id: string;
  device_id: string;
  kind: PresenceKind;
}

const deviceOf = (row: DeviceRow): PresenceDevice => ({ accountId: row.account_id, deviceId: row.device_id, kind: row.kind });

function byDevice(rows: { device_id: string; node_id: string }[]): Map<string, string[]> {
  const online = new Map<string, string[]>();
  for (const row of rows) {
    const nodes = online.get(row.device_id) ?? [];
    nodes.push(row.node_id);
    online.set(row.device_id, nodes);
  }
  return online;
}

/** The SQLSTATE of a failed query, from TypeORM's error or the driver's under it. */
function codeOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | null;
  const code = e?.code ?? e?.driverError?.code;
  return typeof code === "string" ? code : undefined;
}

const isDevice = (value: unknown): value is PresenceDevice => {
  const v = value as Record<string, unknown> | null;
  return typeof v === "object" && v !== null && typeof v.accountId === "string" && typeof v.deviceId === "string" && typeof v.kind === "string" && KINDS.has(v.kind);
};

/** Whether a node-bus message is a presence announcement (messages come from other processes). */
export function isPresenceChange(message: unknown): message is PresenceChange {
  const m = message as Record<string, unknown> | null;
  if (typeof m !== "object" || m === null || m.type !== "presence" || typeof m.nodeId !== "string") return false;
  switch (m.event) {
    case "join":
    case "leave":
      return isDevice(m.device);
    case "node_up":
      return Array.isArray(m.devices) && m.devices.every(isDevice);
    case "node_down":
      return (m.reason === "stopped" || m.reason === "dead") && Array.isArray(m.devices) && m.devices.every(isDevice);
    default:
      return false;
  }
}
