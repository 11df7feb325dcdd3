import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { JOIN_TIMEOUT_MS, PortalChannel, QUEUE_MAX, RECONNECT_BASE_MS, RECONNECT_MAX_MS, STABLE_AFTER_MS, type ChannelEvent } from "./channel.js";
import { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS } from "./constants.js";
import { EXAMPLE_PAYLOADS } from "./examples.js";
import { encodeFrame, pushFrame, replyFrame, type Frame } from "./frames.js";
import { validatePayload } from "./schema.js";

beforeEach(reportSeedOnFailure);

/** A channel and the portal's side of its socket, by hand. */
class Harness {
  readonly channel: PortalChannel<"client">;
  readonly sent: Frame[] = [];
  readonly events: ChannelEvent<"client">[] = [];
  now = 1_000;

  constructor(r: Rng) {
    this.channel = new PortalChannel({ role: "client", random: (n) => r.bytes(n) });
  }

  drain(): void {
    for (let t = this.channel.pollTransmit(); t !== undefined; t = this.channel.pollTransmit()) this.sent.push(JSON.parse(t) as Frame);
    for (let e = this.channel.pollEvent(); e !== undefined; e = this.channel.pollEvent()) this.events.push(e);
  }

  /** Advances virtual time to `until`, firing every timer on the way. */
  run(until: number): void {
    for (;;) {
      const at = this.channel.pollTimeout();
      if (at === undefined || at > until) break;
      this.now = Math.max(this.now, at);
      this.channel.handleTimeout(this.now);
      this.drain();
    }
    this.now = until;
  }

  take<T extends ChannelEvent<"client">["type"]>(type: T): Extract<ChannelEvent<"client">, { type: T }>[] {
    const out = this.events.filter((e) => e.type === type) as Extract<ChannelEvent<"client">, { type: T }>[];
    this.events.splice(0, this.events.length, ...this.events.filter((e) => e.type !== type));
    return out;
  }

  /** Opens the socket the channel asked for and answers its join. */
  openAndJoin(): void {
    this.channel.handleOpen(this.now);
    this.drain();
    const join = this.sent.findLast((f) => f.event === "phx_join")!;
    expect(join.topic).toBe("client");
    this.portal(replyFrame(join, "ok"));
  }

  portal(frame: Frame): void {
    this.channel.handleText(this.now, encodeFrame(frame));
    this.drain();
  }
}

const start = (r: Rng): Harness => {
  const h = new Harness(r);
  h.channel.start(h.now);
  h.drain();
  return h;
};

describe("PortalChannel", () => {
  it("connects, joins, hands over validated pushes and replies, and sends what was queued before the join", () => {
    const h = start(rng("join"));
    expect(h.take("connect")).toEqual([{ type: "connect", attempt: 0 }]);
    const early = h.channel.send(h.now, "request_authorization", { resource_id: "7b4d8a52-2c55-4a1f-9a43-5d2c7f0d1b11" });
    h.drain();
    expect(h.sent).toEqual([]);
    h.openAndJoin();
    expect(h.take("joined")).toHaveLength(1);
    expect(h.channel.joined).toBe(true);
    // The queued request left after the join, with its ref.
    const request = h.sent.find((f) => f.event === "request_authorization")!;
    expect(request).toMatchObject({ topic: "client", ref: early, payload: { resource_id: "7b4d8a52-2c55-4a1f-9a43-5d2c7f0d1b11" } });

    h.portal(pushFrame("client", "init", EXAMPLE_PAYLOADS.client.to_device.init));
    const [init] = h.take("message");
    expect(init).toMatchObject({ event: "init", payload: { interface: EXAMPLE_PAYLOADS.client.to_device.init.interface } });
    h.portal(replyFrame(request, "ok", { queued: true }));
    expect(h.take("reply")).toEqual([{ type: "reply", ref: early, status: "ok", response: { queued: true } }]);
    // A second reply to the same ref is no one's.
    h.portal(replyFrame(request, "ok"));
    expect(h.take("reply")).toEqual([]);
  });

  it("counts and drops frames that do not decode or validate, and goes on", () => {
    const r = rng("invalid");
    const h = start(r);
    h.openAndJoin();
    h.take("joined");
    const bad = [
      "not json",
      "[]",
      JSON.stringify({ topic: "client", event: "init", payload: { nonsense: true }, ref: null }),
      JSON.stringify({ topic: "gateway", event: "init", payload: EXAMPLE_PAYLOADS.client.to_device.init, ref: null }),
      JSON.stringify({ topic: "client", event: "create_authorization", payload: {}, ref: null }),
      "{".repeat(100),
    ];
    for (const text of bad) h.channel.handleText(h.now, text);
    // Random bytes as text, and random mutations of a good frame: never a throw.
    const good = encodeFrame(pushFrame("client", "resource_deleted", EXAMPLE_PAYLOADS.client.to_device.resource_deleted));
    for (let i = 0; i < 2000; i++) {
      const chars = [...good];
      for (let k = r.int(1, 4); k > 0; k--) chars[r.int(0, chars.length - 1)] = String.fromCharCode(r.int(0, 0x7f));
      h.channel.handleText(h.now, i % 2 === 0 ? chars.join("") : new TextDecoder().decode(r.bytes(r.int(0, 64))));
    }
    h.drain();
    expect(h.channel.invalid).toBeGreaterThanOrEqual(bad.length + 1000);
    h.portal(pushFrame("client", "resource_deleted", EXAMPLE_PAYLOADS.client.to_device.resource_deleted));
    expect(h.take("message").some((m) => m.event === "resource_deleted")).toBe(true);
    expect(h.channel.joined).toBe(true);
  });

  it("heartbeats every interval while the portal answers; silence closes the socket", () => {
    const h = start(rng("heartbeat"));
    h.openAndJoin();
    const joinedAt = h.now;
    // The portal answers every heartbeat: the socket stays up for minutes.
    for (let t = joinedAt; t < joinedAt + 120_000; t += 1_000) {
      h.run(t);
      for (const f of h.sent.splice(0)) if (f.event === "heartbeat") h.portal(replyFrame(f, "ok"));
    }
    expect(h.take("close")).toEqual([]);
    expect(h.channel.joined).toBe(true);
    // Then it goes silent: heartbeats keep leaving, and the socket is closed once nothing has been heard for the timeout.
    const silentFrom = h.now;
    h.run(silentFrom + HEARTBEAT_TIMEOUT_MS + HEARTBEAT_INTERVAL_MS);
    const heartbeats = h.sent.filter((f) => f.event === "heartbeat");
    expect(heartbeats.length).toBeGreaterThanOrEqual(2);
    expect(heartbeats.every((f) => f.topic === "phoenix")).toBe(true);
    const [close] = h.take("close");
    expect(close?.reason).toMatch(/nothing heard/);
    h.channel.handleClose(h.now, { code: 1006 });
    h.drain();
    expect(h.take("disconnected")).toHaveLength(1);
  });

  it("closes a socket whose join is never answered", () => {
    const h = start(rng("join timeout"));
    h.channel.handleOpen(h.now);
    h.drain();
    h.run(h.now + JOIN_TIMEOUT_MS - 1);
    expect(h.take("close")).toEqual([]);
    h.run(h.now + 1);
    expect(h.take("close")[0]?.reason).toMatch(/join/);
  });

  it("reconnects with doubling, jittered waits up to the cap, and starts again from the bottom after a stable socket", () => {
    const h = start(rng("backoff"));
    const waits: number[] = [];
    for (let attempt = 0; attempt < 12; attempt++) {
      const [connect] = h.take("connect");
      expect(connect?.attempt).toBe(attempt);
      h.channel.handleClose(h.now, { reason: "ECONNREFUSED" });
      h.drain();
      const [gone] = h.take("disconnected");
      waits.push(gone!.retryInMs);
      h.run(h.now + gone!.retryInMs - 1);
      expect(h.take("connect")).toEqual([]);
      h.run(h.now + 1);
    }
    for (const [i, wait] of waits.entries()) {
      const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** i);
      expect(wait).toBeGreaterThanOrEqual(ceiling / 2);
      expect(wait).toBeLessThanOrEqual(ceiling);
    }
    expect(waits.at(-1)).toBeGreaterThan(RECONNECT_MAX_MS / 2 - 1);
    // A socket that stays up past STABLE_AFTER_MS resets the count.
    h.openAndJoin();
    h.run(h.now + STABLE_AFTER_MS);
    for (const f of h.sent.splice(0)) if (f.event === "heartbeat") h.portal(replyFrame(f, "ok"));
    h.channel.handleClose(h.now, { code: 1001 });
    h.drain();
    expect(h.take("disconnected")[0]!.retryInMs).toBeLessThanOrEqual(RECONNECT_BASE_MS);
  });

  it("a refused token signs out for good; 429 waits its Retry-After", () => {
    const h = start(rng("refusals"));
    h.take("connect");
    h.channel.handleClose(h.now, { status: 429, retryAfterMs: 7_000, problem: { detail: "slow down" } });
    h.drain();
    expect(h.take("disconnected")[0]!.retryInMs).toBe(7_000);
    h.run(h.now + 7_000);
    expect(h.take("connect")).toHaveLength(1);
    h.channel.handleClose(h.now, { status: 401, problem: { detail: "the token was revoked" } });
    h.drain();
    expect(h.take("signed_out")).toEqual([{ type: "signed_out", status: 401, detail: "the token was revoked" }]);
    h.run(h.now + 10 * RECONNECT_MAX_MS);
    expect(h.take("connect")).toEqual([]);
    expect(h.channel.pollTimeout()).toBeUndefined();
  });

  it("a refused join closes the socket and tries again later", () => {
    const h = start(rng("join refused"));
    h.channel.handleOpen(h.now);
    h.drain();
    h.portal(replyFrame(h.sent.find((f) => f.event === "phx_join")!, "error", { reason: "busy" }));
    expect(h.take("close")[0]?.reason).toMatch(/refused the join/);
    expect(h.channel.joined).toBe(false);
  });

  it("keeps at most QUEUE_MAX frames while disconnected, the newest, in order", () => {
    const h = start(rng("queue"));
    const refs: string[] = [];
    for (let i = 0; i < QUEUE_MAX + 10; i++) refs.push(h.channel.send(h.now, "request_authorization", { resource_id: "7b4d8a52-2c55-4a1f-9a43-5d2c7f0d1b11" }));
    expect(h.channel.dropped).toBe(10);
    h.openAndJoin();
    const sent = h.sent.filter((f) => f.event === "request_authorization").map((f) => f.ref);
    expect(sent).toEqual(refs.slice(10));
  });

  it("stop closes the open socket and never connects again", () => {
    const h = start(rng("stop"));
    h.take("connect");
    h.openAndJoin();
    h.channel.stop(h.now);
    h.drain();
    expect(h.take("close")).toHaveLength(1);
    h.channel.handleClose(h.now, { code: 1000 });
    h.drain();
    h.run(h.now + 10 * RECONNECT_MAX_MS);
    expect(h.take("connect")).toEqual([]);
    expect(h.take("disconnected")).toEqual([]);
  });

  it("joins with its join payload on every socket (a relay's addresses), and with none by default", () => {
    const r = rng("join payload");
    const join = { ipv4: "203.0.113.7", port: 3478 };
    const relay = new PortalChannel({ role: "relay", random: (n) => r.bytes(n), join });
    const joins = (): Frame[] => {
      const frames: Frame[] = [];
      for (let t = relay.pollTransmit(); t !== undefined; t = relay.pollTransmit()) frames.push(JSON.parse(t) as Frame);
      while (relay.pollEvent() !== undefined);
      return frames.filter((f) => f.event === "phx_join");
    };
    let now = 1_000;
    relay.start(now);
    relay.handleOpen(now);
    const first = joins();
    expect(first).toMatchObject([{ topic: "relay", payload: join }]);
    expect(validatePayload("relay", "from_device", "phx_join", first[0]!.payload).ok).toBe(true);
    relay.handleClose(now, { code: 1006 });
    now += RECONNECT_MAX_MS;
    relay.handleTimeout(now);
    relay.handleOpen(now);
    expect(joins()).toMatchObject([{ topic: "relay", payload: join }]);

    const h = start(rng("join payload client"));
    h.channel.handleOpen(h.now);
    h.drain();
    expect(h.sent.find((f) => f.event === "phx_join")?.payload).toEqual({});
  });
});
