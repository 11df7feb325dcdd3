// Messages between portal nodes sharing one database, over NOTIFY on NODES_CHANNEL: how a node hands
// `create_authorization` to the node holding a gateway's socket, hears the acknowledgement back, and
// announces presence changes.
//
// 1. Each node has a random node id, fresh per process.
// 2. send() and broadcast() NOTIFY the envelope {to, from, message} (to: a node id, or null for all);
//    every node receives every envelope and keeps those addressed to it or to all, its own broadcasts
//    included.
// 3. NOTIFY payloads are limited to 8000 bytes: an envelope over MAX_NODE_MESSAGE_BYTES is refused
//    with NodeMessageTooLarge before it is sent, so the caller learns at once, not a node later.
// 4. Delivery is at most once: a node whose LISTEN connection dropped misses what was sent meanwhile
//    and hears resync when it is back. Callers that need an answer keep a timeout.

import { randomUUID } from "node:crypto";
import type { DataSource } from "typeorm";
import { callSafely, ListenConnection, type ListenOptions } from "./listen-connection.js";

export const NODES_CHANNEL = "wardline_nodes";
/** The largest envelope, as UTF-8 JSON, that send() and broadcast() take: PostgreSQL's cap less room. */
export const MAX_NODE_MESSAGE_BYTES = 7000;

/** What goes over the channel. */
export interface NodeEnvelope {
  /** The receiving node, or null for every node. */
  to: string | null;
  from: string;
  message: unknown;
}

/** Hears each message for this node: its body (JSON, as sent) and the sending node's id. */
export type NodeMessageListener = (message: unknown, from: string) => void;

/** A message too large for NOTIFY. */
export class NodeMessageTooLarge extends Error {
  constructor(readonly bytes: number) {
    super(`a node message of ${bytes} bytes is over the ${MAX_NODE_MESSAGE_BYTES}-byte limit of the node bus (NOTIFY carries at most 8000): send an id to read instead`);
    this.name = "NodeMessageTooLarge";
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The envelope in a NOTIFY payload, or undefined when the payload is not one. */
export function parseEnvelope(payload: string): NodeEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.from !== "string" || !UUID.test(v.from)) return undefined;
  if (v.to !== null && (typeof v.to !== "string" || !UUID.test(v.to))) return undefined;
  return { to: v.to, from: v.from, message: v.message };
}

/** This node's end of the bus between portal nodes; one per node. */
export class NodeBus {
  /** This node's id: random, so a restarted process is a new node. */
  readonly nodeId: string;
  /** Payloads on the channel that were not envelopes. */
  malformed = 0;
  /** Envelopes for this node (or all) delivered to listeners. */
  delivered = 0;
  private readonly listeners = new Set<NodeMessageListener>();
  private readonly resyncListeners = new Set<() => void>();
  private readonly connection: ListenConnection;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ListenOptions & { nodeId?: string } = {},
  ) {
    this.nodeId = options.nodeId ?? randomUUID();
    if (!UUID.test(this.nodeId)) throw new Error(`a node id is a lowercase UUID, not ${JSON.stringify(this.nodeId)}`);
    this.connection = new ListenConnection(dataSource, NODES_CHANNEL, (payload) => this.receive(payload), () => this.resync(), options);
  }

  /** Starts listening; messages sent before it resolves may be missed. */
  start(): Promise<void> {
    return this.connection.start();
  }

  /** Stops listening; no listener is called after it resolves. */
  async stop(): Promise<void> {
    await this.connection.stop();
    this.listeners.clear();
    this.resyncListeners.clear();
  }

  /** Sends message (anything JSON can carry) to one node; resolves once it is handed to PostgreSQL. */
  send(nodeId: string, message: unknown): Promise<void> {
    if (!UUID.test(nodeId)) return Promise.reject(new Error(`not a node id: ${JSON.stringify(nodeId)}`));
    return this.notify({ to: nodeId, from: this.nodeId, message });
  }

  /** Sends message to every node, this one included. */
  broadcast(message: unknown): Promise<void> {
    return this.notify({ to: null, from: this.nodeId, message });
  }

  /** Calls listener with each message for this node from now on; returns the unsubscribe. */
  onMessage(listener: NodeMessageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls listener after each reconnect, when messages may have been missed; returns the unsubscribe. */
  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  /** The LISTEN connection's server process, for pg_stat_activity; undefined on PGlite. */
  get backendPid(): number | undefined {
    return this.connection.backendPid;
  }

  private async notify(envelope: NodeEnvelope): Promise<void> {
    const payload = JSON.stringify(envelope);
    const bytes = Buffer.byteLength(payload, "utf8");
    if (bytes > MAX_NODE_MESSAGE_BYTES) throw new NodeMessageTooLarge(bytes);
    await this.dataSource.query(`SELECT pg_notify($1, $2)`, [NODES_CHANNEL, payload]);
  }

  private receive(payload: string): void {
    const envelope = parseEnvelope(payload);
    if (envelope === undefined) {
      this.malformed++;
      return;
    }
    if (envelope.to !== null && envelope.to !== this.nodeId) return;
    this.delivered++;
    for (const listener of [...this.listeners]) callSafely(() => listener(envelope.message, envelope.from), this.options.onError);
  }

  private resync(): void {
    for (const listener of [...this.resyncListeners]) callSafely(listener, this.options.onError);
  }
}
