// Presence on both databases. PostgreSQL: two nodes (a DataSource, node bus and Presence each) on
// one database: a device joined on A is online from B; a device on both nodes stays online until it
// leaves both; a node that stops heartbeating is declared dead by the other, its devices go offline
// and everyone hears it, and it comes back with its devices if it was only stalled; a node stopping
// cleanly takes its rows with it. PGlite: the single node, which on start clears the rows a previous
// process left.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataSource } from "typeorm";
import { openDatabase } from "../database/data-source.js";
import { AccountEntity } from "../database/entities.js";
import { DATABASES } from "../testing/api.js";
import { NodeBus } from "./node-bus.js";
import { isPresenceChange, Presence, type PresenceChange } from "./presence.js";

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const DEAD_AFTER_MS = 800;

interface Node {
  db: DataSource;
  bus: NodeBus;
  presence: Presence;
  heard: PresenceChange[];
}

async function startNode(db: DataSource, options: { heartbeatEveryMs?: number } = {}): Promise<Node> {
  const bus = new NodeBus(db, { initialDelayMs: 20, maxDelayMs: 200 });
  await bus.start();
  const presence = new Presence(db, bus, { heartbeatEveryMs: options.heartbeatEveryMs ?? 0, deadAfterMs: DEAD_AFTER_MS });
  const heard: PresenceChange[] = [];
  presence.onChange((change) => heard.push(change));
  await presence.start();
  return { db, bus, presence, heard };
}

async function stopNode(node: Node): Promise<void> {
  await node.presence.stop();
  await node.bus.stop();
}

const online = async (node: Node, account: string, ids: string[]): Promise<Record<string, string[]>> => Object.fromEntries(await node.presence.online(account, ids));

describe("presence announcements", () => {
  it("are recognised only in their documented shapes", () => {
    const device = { accountId: "a", deviceId: "d", kind: "gateway" };
    expect(isPresenceChange({ type: "presence", event: "join", nodeId: "n", device })).toBe(true);
    expect(isPresenceChange({ type: "presence", event: "node_down", nodeId: "n", reason: "dead", devices: [device] })).toBe(true);
    expect(isPresenceChange({ type: "presence", event: "node_up", nodeId: "n", devices: [] })).toBe(true);
    expect(isPresenceChange({ type: "presence", event: "join", nodeId: "n", device: { ...device, kind: "printer" } })).toBe(false);
    expect(isPresenceChange({ type: "presence", event: "node_down", nodeId: "n", devices: [device] })).toBe(false);
    expect(isPresenceChange({ type: "presence", event: "explode", nodeId: "n" })).toBe(false);
    expect(isPresenceChange({ event: "join", nodeId: "n", device })).toBe(false);
    expect(isPresenceChange(null)).toBe(false);
  });
});

describe.each(DATABASES)("presence on $name", (kind) => {
  const skip = kind.missing !== undefined;
  const multi = kind.name === "PostgreSQL";
  // A test about one database only is not defined for the other (not skipped: it does not apply).
  const onlyOn = (applies: boolean): ReturnType<typeof it.skipIf> => (applies ? it.skipIf(skip) : ((() => undefined) as unknown as ReturnType<typeof it.skipIf>));
  let dbs: DataSource[] = [];
  let nodes: Node[] = [];
  let account = "";
  let stop: () => Promise<void> = async () => {};

  beforeAll(async () => {
    if (skip) return;
    const opened = await kind.open();
    stop = opened.stop;
    for (let i = 0; i < (multi ? 2 : 1); i++) dbs.push(await openDatabase(opened.location));
    account = randomUUID();
    await dbs[0]!.getRepository(AccountEntity).insert({ id: account, slug: `presence-${process.pid}`, name: "Presence" });
    for (const db of dbs) nodes.push(await startNode(db));
  }, 60_000);
  afterAll(async () => {
    for (const node of nodes) await stopNode(node);
    for (const db of dbs) await db.destroy();
    dbs = [];
    nodes = [];
    await stop();
  });

  const a = (): Node => nodes[0]!;
  const b = (): Node => nodes[nodes.length - 1]!;

  it.skipIf(skip)("a device joined on one node is online from every node, and offline once it left", async () => {
    const device = randomUUID();
    const absent = randomUUID();
    await a().presence.join(account, device, "gateway");
    expect(await online(b(), account, [device, absent])).toEqual({ [device]: [a().presence.nodeId] });
    expect(await online(b(), randomUUID(), [device])).toEqual({});
    expect(Object.fromEntries(await b().presence.onlineOfKind(account, "gateway"))).toMatchObject({ [device]: [a().presence.nodeId] });
    expect((await b().presence.onlineOfKind(account, "relay")).has(device)).toBe(false);
    const joined = { type: "presence", event: "join", nodeId: a().presence.nodeId, device: { accountId: account, deviceId: device, kind: "gateway" } };
    for (const node of nodes) await until(() => node.heard.some((c) => JSON.stringify(c) === JSON.stringify(joined)), "the join everywhere");

    await a().presence.leave(account, device);
    expect(await online(b(), account, [device])).toEqual({});
    for (const node of nodes) await until(() => node.heard.some((c) => c.event === "leave" && c.device.deviceId === device), "the leave everywhere");
  });

  it.skipIf(skip)("a device with two sockets on one node stays online until the last closes, announced once each way", async () => {
    const device = randomUUID();
    await a().presence.join(account, device, "client");
    await a().presence.join(account, device, "client");
    await a().presence.leave(account, device);
    expect(await online(b(), account, [device])).toEqual({ [device]: [a().presence.nodeId] });
    await a().presence.leave(account, device);
    expect(await online(b(), account, [device])).toEqual({});
    // A leave for a device this node does not hold changes nothing.
    await a().presence.leave(account, device);
    await until(() => a().heard.some((c) => c.event === "leave" && c.device.deviceId === device), "the leave");
    const about = a().heard.filter((c) => (c.event === "join" || c.event === "leave") && c.device.deviceId === device).map((c) => c.event);
    expect(about).toEqual(["join", "leave"]);
  });

  onlyOn(multi)("a device on both nodes is online on both, and on the other after leaving one", async () => {
    const device = randomUUID();
    await a().presence.join(account, device, "relay");
    await b().presence.join(account, device, "relay");
    const both = [a().presence.nodeId, b().presence.nodeId].sort();
    expect(await online(a(), account, [device])).toEqual({ [device]: both });
    await a().presence.leave(account, device);
    expect(await online(a(), account, [device])).toEqual({ [device]: [b().presence.nodeId] });
    await b().presence.leave(account, device);
    expect(await online(a(), account, [device])).toEqual({});
  });

  onlyOn(multi)("a node that stops heartbeating is declared dead: its devices go offline, every node hears; back, it rejoins with them", async () => {
    const devices = Array.from({ length: 60 }, () => randomUUID());
    for (const device of devices) await a().presence.join(account, device, "client");
    expect((await b().presence.online(account, devices)).size).toBe(60);
    expect(await b().presence.liveNodes()).toEqual([a().presence.nodeId, b().presence.nodeId].sort());

    // A is stalled: B stays fresh (its heartbeat written by hand here, so that nothing reaps A yet),
    // A does not. A's devices are offline as soon as its heartbeat is stale, before anyone reaps it.
    const freshenB = (): Promise<unknown> => b().db.query(`UPDATE portal_nodes SET heartbeat_at = now() WHERE node_id = $1`, [b().presence.nodeId]);
    await until(async () => {
      await freshenB();
      return (await b().presence.online(account, devices)).size === 0;
    }, "A's devices offline");
    expect(await b().db.query(`SELECT count(*)::int AS n FROM presence WHERE node_id = $1`, [a().presence.nodeId])).toEqual([{ n: 60 }]);
    expect(await b().presence.liveNodes()).toEqual([b().presence.nodeId]);
    await b().presence.nodeHeartbeat();
    const count = (await b().db.query(`SELECT count(*)::int AS n FROM presence WHERE node_id = $1`, [a().presence.nodeId])) as { n: number }[];
    expect(count[0]?.n).toBe(0);
    expect(await b().db.query(`SELECT node_id FROM portal_nodes WHERE node_id = $1`, [a().presence.nodeId])).toEqual([]);
    // Announced once, split into messages that fit the bus, by the node that reaped it.
    for (const node of nodes) {
      await until(() => node.heard.filter((c) => c.event === "node_down").flatMap((c) => (c.event === "node_down" ? c.devices : [])).length === 60, "node_down with 60 devices");
      const downs = node.heard.filter((c) => c.event === "node_down");
      expect(downs.every((c) => c.event === "node_down" && c.reason === "dead" && c.nodeId === a().presence.nodeId)).toBe(true);
      expect(downs.length).toBe(2);
      expect(new Set(downs.flatMap((c) => (c.event === "node_down" ? c.devices.map((d) => d.deviceId) : [])))).toEqual(new Set(devices));
    }
    // Reaping again finds nothing more to announce.
    await b().presence.nodeHeartbeat();

    // A wakes up: its row is gone, so it registers again and writes its devices back.
    await a().presence.nodeHeartbeat();
    expect((await b().presence.online(account, devices)).size).toBe(60);
    await until(() => b().heard.filter((c) => c.event === "node_up").flatMap((c) => (c.event === "node_up" ? c.devices : [])).length === 60, "node_up with 60 devices");
    expect(b().heard.filter((c) => c.event === "node_down")).toHaveLength(2);
    for (const device of devices) await a().presence.leave(account, device);
    expect((await b().presence.online(account, devices)).size).toBe(0);
    for (const node of nodes) node.heard.length = 0;
  });

  onlyOn(multi)("a join on a node reaped while alive registers it again", async () => {
    await until(async () => {
      await b().presence.nodeHeartbeat();
      return (await b().db.query(`SELECT 1 FROM portal_nodes WHERE node_id = $1`, [a().presence.nodeId])).length === 0;
    }, "A reaped");
    const device = randomUUID();
    await a().presence.join(account, device, "gateway");
    expect(await online(b(), account, [device])).toEqual({ [device]: [a().presence.nodeId] });
    await a().presence.leave(account, device);
  });

  onlyOn(multi)("a node stopping cleanly deletes its rows and says so", async () => {
    const c = await startNode(dbs[1]!);
    const device = randomUUID();
    await c.presence.join(account, device, "gateway");
    expect(await online(a(), account, [device])).toEqual({ [device]: [c.presence.nodeId] });
    await stopNode(c);
    expect(await online(a(), account, [device])).toEqual({});
    expect(await a().db.query(`SELECT 1 FROM portal_nodes WHERE node_id = $1`, [c.presence.nodeId])).toEqual([]);
    await until(() => a().heard.some((ch) => ch.event === "node_down" && ch.nodeId === c.presence.nodeId), "node_down");
    const down = a().heard.find((ch) => ch.event === "node_down" && ch.nodeId === c.presence.nodeId);
    expect(down).toEqual({ type: "presence", event: "node_down", nodeId: c.presence.nodeId, reason: "stopped", devices: [{ accountId: account, deviceId: device, kind: "gateway" }] });
    await expect(c.presence.join(account, device, "gateway")).rejects.toThrow(/stopped/);
  });

  onlyOn(multi)("two nodes noticing the same dead node at once announce it once", async () => {
    const stalled = await startNode(dbs[0]!);
    const other = await startNode(dbs[1]!);
    const device = randomUUID();
    await stalled.presence.join(account, device, "client");
    const freshen = (node: Node): Promise<unknown> => node.db.query(`UPDATE portal_nodes SET heartbeat_at = now() WHERE node_id = $1`, [node.presence.nodeId]);
    await until(async () => {
      await Promise.all([freshen(b()), freshen(other)]);
      return (await b().presence.online(account, [device])).size === 0;
    }, "the stalled node's device offline");
    await Promise.all([b().presence.nodeHeartbeat(), other.presence.nodeHeartbeat(), b().presence.nodeHeartbeat(), other.presence.nodeHeartbeat()]);
    // Everything broadcast before this marker's join has been heard once it is.
    const marker = randomUUID();
    await b().presence.join(account, marker, "relay");
    await until(() => a().heard.some((c) => c.event === "join" && c.device.deviceId === marker), "the marker");
    const downs = a().heard.filter((c) => c.event === "node_down" && c.nodeId === stalled.presence.nodeId);
    expect(downs).toEqual([{ type: "presence", event: "node_down", nodeId: stalled.presence.nodeId, reason: "dead", devices: [{ accountId: account, deviceId: device, kind: "client" }] }]);
    await b().presence.leave(account, marker);
    await stopNode(other);
    await stopNode(stalled);
  });

  onlyOn(!multi)("on PGlite the one node clears, on start, the rows a previous process left", async () => {
    const db = dbs[0]!;
    const stale = randomUUID();
    const device = randomUUID();
    // A previous process that crashed a moment ago: its heartbeat is fresh, but no other process can
    // have this database open.
    await db.query(`INSERT INTO portal_nodes (node_id) VALUES ($1)`, [stale]);
    await db.query(`INSERT INTO presence (account_id, device_id, node_id, kind) VALUES ($1, $2, $3, 'client')`, [account, device, stale]);
    expect(await online(a(), account, [device])).toEqual({ [device]: [stale] });
    const second = await startNode(db);
    expect(await online(second, account, [device])).toEqual({});
    expect(await db.query(`SELECT node_id FROM portal_nodes WHERE node_id = $1`, [stale])).toEqual([]);
    await until(() => second.heard.some((c) => c.event === "node_down" && c.nodeId === stale && c.devices.length === 1), "node_down for the stale node");
    await stopNode(second);
    // That start reaped the first node as well (one process, one node); it registers again on its next beat.
    await a().presence.nodeHeartbeat();
    expect(await a().presence.liveNodes()).toEqual([a().presence.nodeId]);
  });

  it.skipIf(skip)("the heartbeat timer keeps the node alive past deadAfterMs", async () => {
    const c = await startNode(dbs[0]!, { heartbeatEveryMs: 100 });
    const device = randomUUID();
    await c.presence.join(account, device, "relay");
    await new Promise((resolve) => setTimeout(resolve, DEAD_AFTER_MS * 2));
    expect(await online(c, account, [device])).toEqual({ [device]: [c.presence.nodeId] });
    expect(c.presence.heartbeatFailures).toBe(0);
    await stopNode(c);
    expect(await online(a(), account, [device])).toEqual({});
  });
});
