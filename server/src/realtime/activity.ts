// Account activity for the admin UI's live pages, across portal nodes: as batches of authorization
// records commit, the node that wrote them gathers, per account, how many it wrote and broadcasts
// that every ANNOUNCE_EVERY_MS (one small notice per account, whatever the rate of authorizations),
// and every node's listeners hear it. GET /api/events turns them into `authorizations` events.
// Likewise each relay load report the hub writes down is broadcast as it is (a relay reports at most
// once a second) and becomes a `relay_load` event.

import type { DataSource } from "typeorm";
import type { NodeBus } from "./node-bus.js";

export interface AuthorizationsRecorded {
  type: "authorizations_recorded";
  accountId: string;
  count: number;
}

function isAuthorizationsRecorded(message: unknown): message is AuthorizationsRecorded {
  const m = message as Record<string, unknown> | null;
  return typeof m === "object" && m !== null && m.type === "authorizations_recorded" && typeof m.accountId === "string" && Number.isInteger(m.count);
}

/** The node bus of the realtime side running on each database in this process. */
const running = new WeakMap<DataSource, NodeBus>();

/** Registers a node's bus for onAuthorizationsRecorded (startRealtime does); returns the unregister. */
export function serveActivity(db: DataSource, bus: NodeBus): () => void {
  running.set(db, bus);
  return () => {
    if (running.get(db) === bus) running.delete(db);
  };
}

/** How long counts gather before they are broadcast: a live page needs no more, and under load one notice per account stands for hundreds of batches. */
export const ANNOUNCE_EVERY_MS = 250;

/** Gathers, per account, how many authorization records committed batches held, and broadcasts them every ANNOUNCE_EVERY_MS. */
export class RecordedAnnouncer {
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly bus: NodeBus) {}

  add(counts: ReadonlyMap<string, number>): void {
    for (const [accountId, count] of counts) this.pending.set(accountId, (this.pending.get(accountId) ?? 0) + count);
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.flush(), ANNOUNCE_EVERY_MS);
    this.timer.unref();
  }

  /** Broadcasts what has gathered now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [accountId, count] of this.pending) {
      const notice: AuthorizationsRecorded = { type: "authorizations_recorded", accountId, count };
      this.bus.broadcast(notice).catch(() => undefined);
    }
    this.pending.clear();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}

/** Calls `listener` with each batch of `accountId`'s authorizations recorded on any node; undefined without a realtime side here. */
export function onAuthorizationsRecorded(db: DataSource, accountId: string, listener: (count: number) => void): (() => void) | undefined {
  return running.get(db)?.onMessage((message) => {
    if (isAuthorizationsRecorded(message) && message.accountId === accountId) listener(message.count);
  });
}

/** A relay's load report, as GET /api/relays shows it. */
export interface RelayLoadView {
  allocations: number;
  channels: number;
  bytes_per_second: number;
  reported_at: string;
}

export interface RelayLoadReported {
  type: "relay_load";
  accountId: string;
  relayId: string;
  load: RelayLoadView;
}

function isRelayLoadReported(message: unknown): message is RelayLoadReported {
  const m = message as Record<string, unknown> | null;
  return typeof m === "object" && m !== null && m.type === "relay_load" && typeof m.accountId === "string" && typeof m.relayId === "string" && typeof m.load === "object" && m.load !== null;
}

/** Calls `listener` with each load report of `accountId`'s relays written on any node; undefined without a realtime side here. */
export function onRelayLoad(db: DataSource, accountId: string, listener: (relayId: string, load: RelayLoadView) => void): (() => void) | undefined {
  return running.get(db)?.onMessage((message) => {
    if (isRelayLoadReported(message) && message.accountId === accountId) listener(message.relayId, message.load);
  });
}
