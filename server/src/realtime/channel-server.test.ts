// The channel transport over real WebSockets, with recording handlers in place of the hub: who may
// connect (problem details for each refusal), join, heartbeats, frames validated before a handler sees
// them, silent sockets closed, and closes reported once.

import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { Reflector } from "@nestjs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueToken } from "../accounts/accounts.service.js";
import { AuthGuard } from "../auth/auth.guard.js";
import { RateLimiter } from "../auth/rate-limit.js";
import { SiteEntity } from "../database/entities.js";
import { DevicesService } from "../devices/devices.service.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { ConnectRefused, randomPublicKey, ScriptedDevice } from "../testing/device.js";
import { WebSocket } from "ws";
import { encodeFrame, replyFrame } from "../../../daemons/proto/portal/index.js";
import type { Principal } from "../auth/principal.js";
import type { AccountScope } from "../database/account-scope.js";
import { ChannelServer, DeviceConnection, LaterReply, type ChannelHandlers } from "./channel-server.js";

class RecordingHandlers implements ChannelHandlers {
  joins: DeviceConnection[] = [];
  events: { event: string; payload: Record<string, unknown> }[] = [];
  closes: DeviceConnection[] = [];
  async joined(connection: DeviceConnection): Promise<void> {
    this.joins.push(connection);
    connection.push("init", { hello: connection.role });
  }
  /** Set by a test: the next event is answered later, when the test resolves it (or fails, when it rejects). */
  later: { promise: Promise<object>; resolve: (value: object) => void; reject: (error: Error) => void } | undefined;
  /** Set by a test: the next event's handler waits for it before it answers (the socket's later frames wait too). */
  holding: Promise<void> | undefined;
  event(_connection: DeviceConnection, event: string, payload: Record<string, unknown>): object | LaterReply | Promise<object> {
    this.events.push({ event, payload });
    const holding = this.holding;
    this.holding = undefined;
    if (holding !== undefined) return holding.then(() => ({ seen: event, waited: true }));
    const later = this.later;
    this.later = undefined;
    return later !== undefined ? new LaterReply(later.promise) : { seen: event };
  }
  closed(connection: DeviceConnection): void {
    this.closes.push(connection);
  }
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(DATABASES)("realtime channels on $name", (kind) => {
  let t: TestPortal;
  let http: Server;
  let url: string;
  let channels: ChannelServer;
  let clock = Date.now();
  const handlers = new RecordingHandlers();
  let clientToken: string;
  let gatewayToken: string;
  let relayToken: string;
  const devices: ScriptedDevice[] = [];
  const connect = async (role: "client" | "gateway" | "relay", token: string, query: Record<string, string> = {}): Promise<ScriptedDevice> => {
    const device = await ScriptedDevice.connect(url, role, token, query);
    devices.push(device);
    return device;
  };

  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    t = await startTestPortal(kind);
    const db = t.portal.database;
    const limiter = new RateLimiter({ burst: 30, perSecond: 1 });
    channels = new ChannelServer({ db, guard: new AuthGuard(new Reflector(), db, limiter), limiter, devices: new DevicesService(), handlers, log: () => {}, now: () => clock });
    http = createServer((_req, res) => res.writeHead(404).end());
    channels.attach(http);
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    const user = await t.actorWithToken(t.a, "user");
    clientToken = (await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id })).token;
    const site = await t.a.scope.repository(SiteEntity).insert({ name: "ws-site" });
    gatewayToken = (await issueToken(t.a.scope, { kind: "gateway", siteId: site.id })).token;
    relayToken = (await issueToken(t.a.scope, { kind: "relay" })).token;
  }, 60_000);
  afterAll(async () => {
    for (const device of devices) await device.close();
    await channels?.close();
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    await t?.close();
  });
  const run = it.skipIf(kind.missing !== undefined);

  run("refuses connects with problem details: no token, a bad one, the wrong kind, a bad key or version, an unknown path", async () => {
    const refusal = async (promise: Promise<unknown>): Promise<ConnectRefused> => {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectRefused);
      expect((error as ConnectRefused).problem.contentType).toContain("application/problem+json");
      return error as ConnectRefused;
    };
    const key = { public_key: randomPublicKey() };
    expect((await refusal(ScriptedDevice.connect(url, "client", "wlc_nonsense", key))).status).toBe(401);
    expect((await refusal(ScriptedDevice.connect(url, "client", t.a.token, key))).status).toBe(403);
    expect((await refusal(ScriptedDevice.connect(url, "gateway", clientToken, key))).status).toBe(403);
    const bad = await refusal(ScriptedDevice.connect(url, "client", clientToken, { public_key: "short" }));
    expect(bad.status).toBe(422);
    expect(bad.problem.errors).toContainEqual(expect.objectContaining({ field: "public_key" }));
    expect((await refusal(ScriptedDevice.connect(url, "client", clientToken, {}))).status).toBe(422);
    const badVersion = await refusal(ScriptedDevice.connect(url, "client", clientToken, { ...key, version: "v1.2" }));
    expect(badVersion.status).toBe(422);
    expect(badVersion.problem.errors).toContainEqual(expect.objectContaining({ field: "version", code: "version.invalid" }));
  });

  run("a client joins, gets init, is answered heartbeats, and its validated events reach the handlers", async () => {
    const client = await connect("client", clientToken, { public_key: randomPublicKey(), name: "laptop" });
    const early = await client.request("request_authorization", { resource_id: "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a" });
    expect(early).toMatchObject({ status: "error", response: { reason: "not_joined" } });
    expect((await client.join()).status).toBe("ok");
    expect((await client.next("init")).payload).toEqual({ hello: "client" });
    expect(await client.heartbeat()).toEqual({ status: "ok", response: {} });
    const joined = handlers.joins.at(-1)!;
    expect(joined.device?.name).toBe("laptop");
    expect(joined.device?.kind).toBe("client");
    expect((await client.join()).response).toMatchObject({ reason: "already_joined" });

    const reply = await client.request("request_authorization", { resource_id: "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a", extra: "ignored" });
    expect(reply).toEqual({ status: "ok", response: { seen: "request_authorization" } });
    expect(handlers.events.at(-1)).toEqual({ event: "request_authorization", payload: { resource_id: "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a" } });

    // A reply given later does not hold up the socket's next frames; a later failure is an error reply.
    const deferred = (): NonNullable<RecordingHandlers["later"]> => {
      let resolve!: (value: object) => void;
      let reject!: (error: Error) => void;
      const promise = new Promise<object>((res, rej) => ((resolve = res), (reject = rej)));
      return { promise, resolve, reject };
    };
    handlers.later = deferred();
    const release = handlers.later;
    let answered = false;
    const slow = client.request("request_authorization", { resource_id: "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a" }).then((r) => ((answered = true), r));
    expect(await client.heartbeat(), "answered while the request waits").toEqual({ status: "ok", response: {} });
    expect(answered).toBe(false);
    release.resolve({ done: true });
    expect(await slow).toEqual({ status: "ok", response: { done: true } });
    handlers.later = deferred();
    const failing = handlers.later;
    const failed = client.request("request_authorization", { resource_id: "8b0c3f2e-4f57-4b1e-9d0c-1f2e3d4c5b6a" });
    await client.heartbeat();
    failing.reject(new Error("boom"));
    expect(await failed).toEqual({ status: "error", response: { reason: "internal" } });

    const before = handlers.events.length;
    const invalid = await client.request("request_authorization", { resource_id: "not-a-uuid" });
    expect(invalid.status).toBe("error");
    expect(invalid.response.path).toBe("payload.resource_id");
    expect((await client.request("create_authorization", {})).response.reason).toBe("unknown_event");
    expect((await client.request("heartbeat", {}, "gateway")).response.reason).toBe("unmatched_topic");
    client.sendRaw("{not json");
    client.sendRaw(JSON.stringify({ topic: "client", event: "x".repeat(5000), payload: {}, ref: "9" }));
    expect(await client.heartbeat(), "still open after bad frames").toEqual({ status: "ok", response: {} });
    expect(handlers.events.length, "no bad frame reached a handler").toBe(before);
    expect(joined.badFrames).toBeGreaterThanOrEqual(4);

    await client.close();
    await delay(100);
    expect(handlers.closes.filter((c) => c === joined)).toHaveLength(1);
  });

  run("a socket's frames reach the handlers one at a time, in order: a handler that waits holds the frames after it", async () => {
    const client = await connect("client", clientToken, { public_key: randomPublicKey() });
    await client.join();
    await client.next("init");
    const start = handlers.events.length;
    let open!: () => void;
    handlers.holding = new Promise<void>((resolve) => (open = resolve));
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const order: number[] = [];
    const replies = ids.map((id, i) => client.request("request_authorization", { resource_id: id }).then((reply) => (order.push(i), reply)));
    await delay(100);
    expect(handlers.events.length - start, "only the first has reached its handler").toBe(1);
    open();
    expect(await Promise.all(replies)).toEqual([
      { status: "ok", response: { seen: "request_authorization", waited: true } },
      { status: "ok", response: { seen: "request_authorization" } },
      { status: "ok", response: { seen: "request_authorization" } },
    ]);
    expect(order).toEqual([0, 1, 2]);
    expect(handlers.events.slice(start).map((e) => e.payload.resource_id)).toEqual(ids);
    // Answered at once, frames go straight through: a burst comes back whole and in order.
    const burst = Array.from({ length: 50 }, () => randomUUID());
    const answered = await Promise.all(burst.map((id) => client.request("request_authorization", { resource_id: id })));
    expect(answered.every((r) => r.status === "ok")).toBe(true);
    expect(handlers.events.slice(-50).map((e) => e.payload.resource_id)).toEqual(burst);
  });

  run("the same key reconnecting is the same device; gateways and relays join as themselves", async () => {
    const key = randomPublicKey();
    const first = await connect("client", clientToken, { public_key: key });
    await first.join();
    const firstId = handlers.joins.at(-1)!.device!.id;
    await first.close();
    const second = await connect("client", clientToken, { public_key: key });
    await second.join();
    expect(handlers.joins.at(-1)!.device!.id).toBe(firstId);

    const gateway = await connect("gateway", gatewayToken, { public_key: randomPublicKey() });
    await gateway.join();
    expect(handlers.joins.at(-1)!.device!.kind).toBe("gateway");
    const relay = await connect("relay", relayToken);
    expect((await relay.join({ port: 3478 })).response.reason, "a relay says where it listens").toBe("missing");
    expect((await relay.join({ ipv4: "203.0.113.7", port: 3478 })).status).toBe("ok");
    expect(handlers.joins.at(-1)!.device).toBeNull();
  });

  run("closes sockets that never join, and sockets that go silent", async () => {
    const lazy = await connect("client", clientToken, { public_key: randomPublicKey() });
    const quiet = await connect("client", clientToken, { public_key: randomPublicKey() });
    await quiet.join();
    clock += 11_000;
    (channels as unknown as { sweep(): void }).sweep();
    expect((await lazy.whenClosed()).code).toBe(4000);
    expect(quiet.closedWith).toBeUndefined();
    clock += 20_000;
    (channels as unknown as { sweep(): void }).sweep();
    expect((await quiet.whenClosed()).code).toBe(4001);
  });

  run("rate-limits connects (per token and per address, burst 30 here) with 429 problems", async () => {
    const token = (await issueToken(t.a.scope, { kind: "client", actorId: (await t.actorWithToken(t.a, "user")).actor.id })).token;
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      try {
        const device = await ScriptedDevice.connect(url, "client", token, { public_key: randomPublicKey() });
        statuses.push(101);
        await device.close();
      } catch (error) {
        statuses.push((error as ConnectRefused).status);
        if ((error as ConnectRefused).status === 429) expect((error as ConnectRefused).problem.code).toBe("rate_limited");
      }
    }
    expect(statuses).toContain(429);
    // Earlier tests used some of this address's burst; this token never gets more than its own.
    expect(statuses.filter((s) => s === 101).length).toBeGreaterThanOrEqual(1);
    expect(statuses.filter((s) => s === 101).length).toBeLessThanOrEqual(30);
    expect(statuses.every((s) => s === 101 || s === 429)).toBe(true);
  });
});

// Replies and pre-encoded pushes are put together as text; they must be exactly what encodeFrame
// writes for the same frame, whatever the topic and ref hold.
describe("a connection's frame text", () => {
  const sent: string[] = [];
  const socket = { readyState: WebSocket.OPEN, send: (text: string) => sent.push(text) } as unknown as WebSocket;
  const connection = new DeviceConnection("client", {} as Principal, {} as AccountScope, null, new URLSearchParams(), "127.0.0.1", socket, 0);
  const awkward = ["client", "phoenix", 'a"quote', "back\\slash", "\u00e9\u2028", "x"];

  it("replies as encodeFrame writes them", () => {
    for (const topic of awkward) {
      for (const ref of [null, "1", 'r"e\\f', "\u{1f600}"]) {
        for (const [status, response] of [
          ["ok", {}],
          ["ok", { seen: "request_authorization" }],
          ["error", { reason: "unmatched_topic", detail: 'the topic "client"', nested: [1, { a: null }] }],
          ["ok", []],
          ["ok", new Date(0)],
        ] as const) {
          sent.length = 0;
          connection.reply({ topic, event: "x", payload: {}, ref }, status, response);
          expect(sent).toEqual([encodeFrame(replyFrame({ topic, ref }, status, response))]);
        }
      }
    }
  });

  it("pushJson sends what push would", () => {
    for (const payload of [{}, { resource_id: "00000000-0000-4000-8000-000000000000", filters: [{ protocol: "tcp" }] }, { s: 'q"\\\u2028' }]) {
      sent.length = 0;
      connection.pushJson("authorization_created", JSON.stringify(payload));
      connection.push("authorization_created", payload);
      expect(sent[0]).toBe(sent[1]);
      expect(sent[0]).toBe(encodeFrame({ topic: "client", event: "authorization_created", payload, ref: null }));
    }
  });
});
