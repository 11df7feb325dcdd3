// The bus between portal nodes on both databases. PostgreSQL: two nodes, each with its own DataSource
// on one database; a message to B arrives at B only, a broadcast at both, the sender included; a
// killed LISTEN connection comes back and says resync. PGlite: one node, which hears its own messages.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataSource } from "typeorm";
import { openDatabase } from "../database/data-source.js";
import { DATABASES } from "../testing/api.js";
import { MAX_NODE_MESSAGE_BYTES, NodeBus, NodeMessageTooLarge, parseEnvelope } from "./node-bus.js";

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const NODE = "0b7f3c4e-2f7a-4d55-9a43-1f0e6c9b2a11";

describe("node envelopes", () => {
  it("parse only {to, from, message} with node ids", () => {
    expect(parseEnvelope(JSON.stringify({ to: null, from: NODE, message: { a: 1 } }))).toEqual({ to: null, from: NODE, message: { a: 1 } });
    expect(parseEnvelope(JSON.stringify({ to: NODE, from: NODE, message: "x" }))?.to).toBe(NODE);
    for (const bad of ["", "{", "7", JSON.stringify({ to: null, from: "me", message: 1 }), JSON.stringify({ to: "you", from: NODE, message: 1 }), JSON.stringify({ from: NODE, message: 1 })]) {
      expect(parseEnvelope(bad), bad).toBeUndefined();
    }
  });
});

describe.each(DATABASES)("the node bus on $name", (kind) => {
  const skip = kind.missing !== undefined;
  // A test about one database only is not defined for the other (not skipped: it does not apply).
  const onlyOn = (applies: boolean): ReturnType<typeof it.skipIf> => (applies ? it.skipIf(skip) : ((() => undefined) as unknown as ReturnType<typeof it.skipIf>));
  let nodes: DataSource[] = [];
  let buses: NodeBus[] = [];
  let inbox: { message: unknown; from: string }[][] = [];
  const resyncs: number[] = [];
  let stop: () => Promise<void> = async () => {};
  let markers = 0;

  beforeAll(async () => {
    if (skip) return;
    const opened = await kind.open();
    stop = opened.stop;
    const count = kind.name === "PGlite" ? 1 : 2;
    for (let i = 0; i < count; i++) {
      const db = await openDatabase(opened.location);
      nodes.push(db);
      const bus = new NodeBus(db, { initialDelayMs: 20, maxDelayMs: 200 });
      inbox.push([]);
      resyncs.push(0);
      bus.onMessage((message, from) => inbox[i]!.push({ message, from }));
      bus.onResync(() => resyncs[i]!++);
      await bus.start();
      buses.push(bus);
    }
  }, 60_000);
  afterAll(async () => {
    for (const bus of buses) await bus.stop();
    for (const db of nodes) await db.destroy();
    nodes = [];
    buses = [];
    inbox = [];
    await stop();
  });

  /** Broadcasts a marker from node 0 and waits until every node has it: all sent before it has arrived. */
  async function settle(): Promise<void> {
    const marker = { marker: ++markers };
    await buses[0]!.broadcast(marker);
    await until(() => inbox.every((messages) => messages.some((m) => JSON.stringify(m.message) === JSON.stringify(marker))), "the marker everywhere");
  }
  const bodies = (i: number): unknown[] => inbox[i]!.map((m) => m.message).filter((m) => !(typeof m === "object" && m !== null && "marker" in m));

  it.skipIf(skip)("each node has its own random id", () => {
    const ids = new Set(buses.map((bus) => bus.nodeId));
    expect(ids.size).toBe(buses.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.skipIf(skip)("a message sent to a node arrives there only, once, with its sender; a broadcast reaches every node", async () => {
    for (const m of inbox) m.length = 0;
    const last = buses.length - 1;
    await buses[0]!.send(buses[last]!.nodeId, { event: "create_authorization", id: 1, text: "grüße" });
    await buses[last]!.send(buses[0]!.nodeId, { event: "ack", id: 1 });
    await buses[last]!.broadcast({ event: "hello" });
    await buses[0]!.send(NODE, { event: "to nobody here" });
    await settle();
    if (last === 0) {
      expect(bodies(0)).toEqual([{ event: "create_authorization", id: 1, text: "grüße" }, { event: "ack", id: 1 }, { event: "hello" }]);
    } else {
      expect(bodies(last)).toEqual([{ event: "create_authorization", id: 1, text: "grüße" }, { event: "hello" }]);
      expect(bodies(0)).toEqual([{ event: "ack", id: 1 }, { event: "hello" }]);
      expect(inbox[last]![0]!.from).toBe(buses[0]!.nodeId);
      expect(inbox[0]![0]!.from).toBe(buses[last]!.nodeId);
    }
    for (const [i, bus] of buses.entries()) expect(bus.delivered, `node ${i}`).toBeGreaterThanOrEqual(inbox[i]!.length);
  });

  it.skipIf(skip)("a message too large for NOTIFY is refused before it is sent", async () => {
    for (const m of inbox) m.length = 0;
    const big = "x".repeat(MAX_NODE_MESSAGE_BYTES);
    await expect(buses[0]!.broadcast({ big })).rejects.toThrow(NodeMessageTooLarge);
    await expect(buses[0]!.send(buses[0]!.nodeId, { big })).rejects.toThrow(/over the 7000-byte limit/);
    // Multi-byte characters count as bytes, not characters.
    await expect(buses[0]!.broadcast({ text: "€".repeat(2400) })).rejects.toThrow(NodeMessageTooLarge);
    await expect(buses[0]!.send("not a node", {})).rejects.toThrow(/not a node id/);
    const fits = "y".repeat(MAX_NODE_MESSAGE_BYTES - 200);
    await buses[0]!.broadcast({ fits });
    await settle();
    for (const i of inbox.keys()) expect(bodies(i)).toEqual([{ fits }]);
  });

  it.skipIf(skip)("a payload that is not an envelope is counted and dropped", async () => {
    for (const m of inbox) m.length = 0;
    const malformed = buses.map((bus) => bus.malformed);
    await nodes[0]!.query(`SELECT pg_notify('wardline_nodes', $1)`, ["{not json"]);
    await nodes[0]!.query(`SELECT pg_notify('wardline_nodes', $1)`, [JSON.stringify({ to: null, from: "someone", message: 1 })]);
    await settle();
    for (const [i, bus] of buses.entries()) {
      expect(bus.malformed - malformed[i]!).toBe(2);
      expect(bodies(i)).toEqual([]);
    }
  });

  onlyOn(kind.name === "PostgreSQL")("a killed LISTEN connection reconnects, says resync, and delivers again", async () => {
    const pid = buses[0]!.backendPid;
    await nodes[1]!.query(`SELECT pg_terminate_backend($1)`, [pid]);
    await until(() => resyncs[0] === 1, "resync on node 0");
    expect(resyncs[1]).toBe(0);
    for (const m of inbox) m.length = 0;
    await buses[1]!.send(buses[0]!.nodeId, "after the drop");
    await settle();
    expect(bodies(0)).toEqual(["after the drop"]);
  });

  it.skipIf(skip)("a stopped bus hears nothing more", async () => {
    const bus = new NodeBus(nodes[0]!);
    const heard: unknown[] = [];
    bus.onMessage((message) => heard.push(message));
    await bus.start();
    await bus.send(bus.nodeId, 1);
    await until(() => heard.length === 1, "its own message");
    await bus.stop();
    await buses[0]!.send(bus.nodeId, 2);
    await settle();
    expect(heard).toEqual([1]);
  });
});
