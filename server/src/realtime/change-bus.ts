// Committed changes, as they commit, on every portal node. Every logged mutation queues a NOTIFY on
// CHANGES_CHANNEL in its own transaction (database/account-scope.ts, logChange), so PostgreSQL
// delivers it exactly when the change commits and never for one rolled back.
//
// 1. start() opens the node's dedicated LISTEN connection (listen-connection.ts).
// 2. Each payload is parsed and checked; a malformed one is counted and dropped, never thrown.
// 3. Subscribers get the change's ids, not its contents: the before and after are in the change_log
//    row the notification names (NOTIFY carries at most 8000 bytes).
// 4. After the connection to PostgreSQL dropped and came back, changes may have been missed:
//    resync listeners are told, and re-read the state they keep.

import type { DataSource } from "typeorm";
import { CHANGES_CHANNEL, type ChangePayload } from "../database/account-scope.js";
import { callSafely, ListenConnection, type ListenOptions } from "./listen-connection.js";

/** One committed change: which row of change_log holds it, and what it touched. */
export interface ChangeNotification {
  accountId: string;
  /** The change_log row's id (with accountId, its key). */
  changeId: string;
  /** The table changed, as in change_log.object_table. */
  table: string;
  action: ChangePayload["action"];
  /** The changed row's id (a link's key columns joined by ":"); null when too long to notify. */
  objectId: string | null;
}

export type ChangeListener = (change: ChangeNotification) => void;

const ACTIONS = new Set(["insert", "update", "delete"]);

/** The change notification in a NOTIFY payload, or undefined when the payload is not one. */
export function parseChange(payload: string): ChangeNotification | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.account_id !== "string" || typeof v.change_id !== "string" || typeof v.table !== "string") return undefined;
  if (typeof v.action !== "string" || !ACTIONS.has(v.action)) return undefined;
  if (typeof v.object_id !== "string" && v.object_id !== null) return undefined;
  return { accountId: v.account_id, changeId: v.change_id, table: v.table, action: v.action as ChangePayload["action"], objectId: v.object_id };
}

/** A portal node's feed of committed changes from every node; one per node. */
export class ChangeBus {
  /** Payloads on the channel that were not change notifications. */
  malformed = 0;
  /** Changes delivered to subscribers. */
  delivered = 0;
  private readonly listeners = new Set<ChangeListener>();
  private readonly resyncListeners = new Set<() => void>();
  private readonly connection: ListenConnection;

  constructor(
    dataSource: DataSource,
    private readonly options: ListenOptions = {},
  ) {
    this.connection = new ListenConnection(dataSource, CHANGES_CHANNEL, (payload) => this.receive(payload), () => this.resync(), options);
  }

  /** Starts listening; changes committed before it resolves may be missed. */
  start(): Promise<void> {
    return this.connection.start();
  }

  /** Stops listening; no listener is called after it resolves. */
  async stop(): Promise<void> {
    await this.connection.stop();
    this.listeners.clear();
    this.resyncListeners.clear();
  }

  /** Calls listener with every committed change from now on; returns the unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls listener after each reconnect, when changes may have been missed; returns the unsubscribe. */
  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  /** Times the LISTEN connection was lost and replaced. */
  get reconnects(): number {
    return this.connection.reconnects;
  }

  /** The LISTEN connection's server process, for pg_stat_activity; undefined on PGlite. */
  get backendPid(): number | undefined {
    return this.connection.backendPid;
  }

  private receive(payload: string): void {
    const change = parseChange(payload);
    if (change === undefined) {
      this.malformed++;
      return;
    }
    this.delivered++;
    for (const listener of [...this.listeners]) callSafely(() => listener(change), this.options.onError);
  }

  private resync(): void {
    for (const listener of [...this.resyncListeners]) callSafely(listener, this.options.onError);
  }
}
