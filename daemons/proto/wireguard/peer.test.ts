// WireGuardPeer in virtual time: two peers over a simulated link with delay, loss, duplication and
// reordering, for hours of virtual time. Handshakes are real (noise.ts, cookie.ts); the transport is
// modelled (a packet carries its receiver index and the sender's key, and the receiver checks that
// its session's receive key is that key), since the engine lives below this layer.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import {
  KEEPALIVE_TIMEOUT, MESSAGE_INITIATION_TYPE, MESSAGE_RESPONSE_TYPE, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT,
} from "./constants.js";
import { CookieChecker } from "./cookie.js";
import { clampPrivateKey } from "./crypto.js";
import { consumeInitiation, HandshakePeer, StaticIdentity, type TransportKeys } from "./noise.js";
import { REKEY_TIMEOUT_JITTER_MAX, WireGuardPeer } from "./peer.js";

beforeEach(reportSeedOnFailure);

type Wire =
  | { kind: "handshake"; bytes: Uint8Array }
  | { kind: "transport"; receiver: number; key: Uint8Array; data: boolean; id: number };

interface Session {
  keys: TransportKeys;
  installedAt: number;
}

/** One side: a peer machine plus a stand-in for the engine's session table and the device's index table. */
class Side {
  readonly peer: WireGuardPeer;
  readonly handshake: HandshakePeer;
  readonly checker: CookieChecker;
  readonly sessions = new Map<number, Session>();
  readonly delivered = new Set<number>();
  handshakesStarted = 0;
  /** The greatest age any installed session reached, checked on every drain. */
  oldestSession = 0;
  keepalivesSent = 0;
  failures = 0;
  online = true;

  constructor(
    readonly name: string,
    readonly identity: StaticIdentity,
    remote: StaticIdentity,
    private readonly sim: Sim,
    r: Rng,
    persistentKeepalive = 0,
  ) {
    this.handshake = new HandshakePeer(identity, remote.publicKey);
    this.checker = new CookieChecker(identity.publicKey, (n) => r.bytes(n));
    this.peer = new WireGuardPeer({
      handshake: this.handshake,
      random: (n) => r.bytes(n),
      allocateIndex: () => r.u32(),
      wallClockAtZeroNanos: 1_764_000_000n * 1_000_000_000n,
      persistentKeepalive,
    });
  }

  /** The application sends one data packet. */
  sendData(id: number): void {
    const payload = Uint8Array.of(id & 0xff, (id >> 8) & 0xff, (id >> 16) & 0xff);
    const localIndex = this.peer.send(this.sim.now, 1);
    if (localIndex === undefined) this.peer.stage([payload]);
    else this.transmitData(localIndex, id);
    this.drain();
  }

  private transmitData(localIndex: number, id: number): void {
    const s = this.sessions.get(localIndex);
    if (s === undefined) throw new Error(`${this.name}: told to seal with unknown session ${localIndex}`);
    const age = this.sim.now - s.installedAt;
    if (age >= REJECT_AFTER_TIME) throw new Error(`${this.name}: sealed with a session ${age} ms old`);
    this.sim.send(this, { kind: "transport", receiver: s.keys.remoteIndex, key: s.keys.sendKey, data: id >= 0, id });
  }

  receive(wire: Wire): void {
    if (!this.online) return;
    const now = this.sim.now;
    if (wire.kind === "handshake") {
      if (wire.bytes[0] === MESSAGE_INITIATION_TYPE) {
        if (this.checker.check(wire.bytes, Uint8Array.of(1, 2, 3, 4, 5, 6), false, now) !== "ok") throw new Error("bad mac1 on the link");
        const consumed = consumeInitiation(this.identity, wire.bytes, () => this.handshake, now);
        if (consumed.ok) this.peer.handshakeInitiation(now, consumed.value);
      } else {
        this.peer.handshakeMessage(now, wire.bytes);
      }
    } else {
      const s = this.sessions.get(wire.receiver);
      if (s === undefined || Buffer.compare(s.keys.recvKey, wire.key) !== 0) return; // no session: dropped, as the engine would
      if (wire.data) {
        if (this.delivered.has(wire.id)) return; // the replay window drops duplicates
        this.delivered.add(wire.id);
      }
      this.peer.received(now, wire.receiver, wire.data);
    }
    this.drain();
  }

  timeout(): void {
    if (!this.online) return;
    this.peer.handleTimeout(this.sim.now);
    this.drain();
  }

  drain(): void {
    for (const s of this.sessions.values()) this.oldestSession = Math.max(this.oldestSession, this.sim.now - s.installedAt);
    for (let bytes = this.peer.pollTransmit(); bytes !== undefined; bytes = this.peer.pollTransmit()) {
      if (bytes[0] === MESSAGE_INITIATION_TYPE) this.handshakesStarted++;
      this.sim.send(this, { kind: "handshake", bytes });
    }
    for (let e = this.peer.pollEvent(); e !== undefined; e = this.peer.pollEvent()) {
      switch (e.type) {
        case "install":
          this.sessions.set(e.keys.localIndex, { keys: e.keys, installedAt: this.sim.now });
          break;
        case "drop":
          this.sessions.delete(e.localIndex);
          break;
        case "flush":
          for (const p of e.packets) this.transmitData(e.localIndex, p[0]! | (p[1]! << 8) | (p[2]! << 16));
          break;
        case "keepalive":
          this.keepalivesSent++;
          this.transmitData(e.localIndex, -1);
          break;
        case "handshake-failed":
          this.failures++;
          break;
      }
    }
  }
}

/** The simulated link and the virtual clock. */
class Sim {
  now = 0;
  private queue: { at: number; to: Side; wire: Wire }[] = [];
  a!: Side;
  b!: Side;
  /** Loses what it returns true for, besides the link's random loss. */
  lose: ((from: Side, wire: Wire) => boolean) | undefined;
  constructor(
    private readonly r: Rng,
    private readonly link: { delay: number; jitter: number; loss: number; duplicate: number },
  ) {}

  send(from: Side, wire: Wire): void {
    const to = from === this.a ? this.b : this.a;
    if (this.r.bool(this.link.loss) || this.lose?.(from, wire) === true) return;
    const copies = this.r.bool(this.link.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) this.queue.push({ at: this.now + this.link.delay + this.r.int(0, this.link.jitter), to, wire });
  }

  /** Runs until virtual time `until`, with the application's actions at their times. */
  run(until: number, actions: { at: number; run: () => void }[] = []): void {
    const pending = [...actions].sort((x, y) => x.at - y.at);
    for (;;) {
      const net = this.queue.reduce((m, q) => Math.min(m, q.at), Infinity);
      const timers = Math.min(this.a.peer.pollTimeout() ?? Infinity, this.b.peer.pollTimeout() ?? Infinity);
      const app = pending[0]?.at ?? Infinity;
      const t = Math.min(net, timers, app);
      if (t > until) break;
      this.now = Math.max(this.now, t);
      if (app === t) pending.shift()!.run();
      else if (net === t) {
        const i = this.queue.findIndex((q) => q.at === t);
        const [item] = this.queue.splice(i, 1);
        item!.to.receive(item!.wire);
      } else {
        if ((this.a.peer.pollTimeout() ?? Infinity) <= t) this.a.timeout();
        if ((this.b.peer.pollTimeout() ?? Infinity) <= t) this.b.timeout();
      }
    }
    this.now = until;
  }
}

function world(label: string, link = { delay: 20, jitter: 10, loss: 0, duplicate: 0 }, keepalive = { a: 0, b: 0 }) {
  const r = rng(label);
  const sim = new Sim(r, link);
  const ia = new StaticIdentity(clampPrivateKey(r.bytes(32)));
  const ib = new StaticIdentity(clampPrivateKey(r.bytes(32)));
  sim.a = new Side("a", ia, ib, sim, r, keepalive.a);
  sim.b = new Side("b", ib, ia, sim, r, keepalive.b);
  return { r, sim, a: sim.a, b: sim.b };
}

const every = (start: number, end: number, step: number, run: (i: number) => void) =>
  Array.from({ length: Math.floor((end - start) / step) }, (_, i) => ({ at: start + i * step, run: () => run(i) }));

describe("WireGuardPeer in virtual time", () => {
  it("the first packet starts a handshake, is staged, and arrives once the session exists", () => {
    const { sim, a, b } = world("peer/first");
    sim.run(1000, [{ at: 0, run: () => a.sendData(1) }]);
    expect(b.delivered.has(1)).toBe(true);
    expect(a.handshakesStarted).toBe(1);
    expect(a.sessions.size).toBe(1);
    expect(b.sessions.size, "the responder's session is confirmed by the first packet").toBe(1);
  });

  it("two hours of two-way traffic: a rekey about every REKEY_AFTER_TIME, no session used past REJECT_AFTER_TIME, nothing lost", () => {
    const { sim, a, b } = world("peer/hours");
    const hours = 2 * 3600_000;
    let id = 0;
    const actions = every(0, hours, 1000, () => a.sendData(id++)).concat(every(500, hours, 1000, () => b.sendData(1_000_000 + id)));
    sim.run(hours + 1000, actions);
    expect(a.delivered.size + b.delivered.size).toBe(actions.length);
    const handshakes = a.handshakesStarted + b.handshakesStarted;
    expect(handshakes).toBeGreaterThanOrEqual(Math.floor(hours / REJECT_AFTER_TIME));
    expect(handshakes).toBeLessThanOrEqual(Math.ceil(hours / REKEY_AFTER_TIME) + 2);
    expect(a.sessions.size).toBeLessThanOrEqual(3);
    expect(b.sessions.size).toBeLessThanOrEqual(3);
    expect(a.failures + b.failures).toBe(0);
    expect(a.oldestSession, "no session outlives REJECT_AFTER_TIME in the engine").toBeLessThanOrEqual(REJECT_AFTER_TIME);
    expect(b.oldestSession).toBeLessThanOrEqual(REJECT_AFTER_TIME);
  });

  it("a lossy, reordering, duplicating link: the handshake retries and traffic still gets through", () => {
    const { sim, a, b } = world("peer/lossy", { delay: 30, jitter: 60, loss: 0.2, duplicate: 0.1 });
    const minutes = 30 * 60_000;
    let sent = 0;
    sim.run(minutes, every(0, minutes, 200, () => a.sendData(sent++)));
    // 20% loss per direction; what is lost is not retransmitted by WireGuard (TCP would do that).
    expect(b.delivered.size / sent).toBeGreaterThan(0.7);
    expect(a.failures).toBe(0);
  });

  it("crossing initiations: a session the peer confirms ends our own handshake, though its response was lost", () => {
    const { sim, a, b } = world("peer/crossing");
    // Both send at once, so both initiate; a answers b's initiation, and that answer is lost. b's
    // answer keys a session a seals with, and a's first packet on it confirms b's `next`.
    let lost = 0;
    sim.lose = (from, wire) => from === a && wire.kind === "handshake" && wire.bytes[0] === MESSAGE_RESPONSE_TYPE && lost++ === 0;
    sim.run(REKEY_ATTEMPT_TIME, [{ at: 0, run: () => a.sendData(1) }, { at: 0, run: () => b.sendData(2) }]);
    expect(lost, "a's response was lost").toBeGreaterThan(0);
    expect(a.delivered.has(2) && b.delivered.has(1)).toBe(true);
    // wireguard-go: key confirmation by the first data message is timersHandshakeComplete, which
    // stops the retransmissions; b must not start a second handshake for a done one.
    expect(b.handshakesStarted, "b's initiation is not retried").toBe(1);
    expect(a.handshakesStarted).toBe(1);
    expect(a.failures + b.failures).toBe(0);
  });

  it("a peer that is gone: initiations every REKEY_TIMEOUT plus jitter, then give up after REKEY_ATTEMPT_TIME", () => {
    const { sim, a, b } = world("peer/gone");
    b.online = false;
    sim.run(REKEY_ATTEMPT_TIME + 30_000, [{ at: 0, run: () => a.sendData(1) }]);
    expect(a.failures).toBe(1);
    const tries = a.handshakesStarted;
    expect(tries).toBeGreaterThanOrEqual(Math.floor(REKEY_ATTEMPT_TIME / (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX)));
    expect(tries).toBeLessThanOrEqual(Math.ceil(REKEY_ATTEMPT_TIME / REKEY_TIMEOUT) + 1);
    expect(a.peer.pollTimeout(), "nothing left to do").toBeUndefined();
  });

  it("one-way traffic: the receiver answers with keepalives every KEEPALIVE_TIMEOUT", () => {
    const { sim, a, b } = world("peer/one-way");
    const span = 120_000;
    let id = 0;
    sim.run(span, every(0, span, 1000, () => a.sendData(id++)));
    expect(b.keepalivesSent).toBeGreaterThanOrEqual(Math.floor(span / (KEEPALIVE_TIMEOUT + 1000)) - 1);
    expect(b.keepalivesSent).toBeLessThanOrEqual(Math.ceil(span / KEEPALIVE_TIMEOUT) + 1);
  });

  it("persistent keepalive keeps an idle tunnel talking; without it an idle tunnel is silent", () => {
    const { sim, a } = world("peer/persistent", undefined, { a: 25_000, b: 0 });
    sim.run(300_000, [{ at: 0, run: () => a.sendData(1) }]);
    expect(a.keepalivesSent).toBeGreaterThanOrEqual(10);
    const quiet = world("peer/quiet");
    quiet.sim.run(300_000, [{ at: 0, run: () => quiet.a.sendData(1) }]);
    expect(quiet.a.keepalivesSent + quiet.b.keepalivesSent).toBeLessThanOrEqual(2);
  });

  it("keys are dropped after 3 × REJECT_AFTER_TIME without a new session", () => {
    const { sim, a, b } = world("peer/zero-keys");
    sim.run(10_000, [{ at: 0, run: () => a.sendData(1) }]);
    expect(a.sessions.size).toBeGreaterThan(0);
    sim.run(10_000 + 3 * REJECT_AFTER_TIME + 1000);
    expect(a.sessions.size).toBe(0);
    expect(b.sessions.size).toBe(0);
  });
});
