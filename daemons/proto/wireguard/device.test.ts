// WireGuardDevice in virtual time: three devices on a simulated network (addresses and ports, a
// delay), real handshakes, a modelled transport (as in peer.test.ts: the engine lives below this
// layer). Covers routing handshakes to peers, roaming, the index table over hours of rekeys, and a
// flood of initiations that must turn into cookie replies instead of Diffie-Hellman.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { MESSAGE_COOKIE_REPLY_TYPE, MESSAGE_TRANSPORT_TYPE } from "./constants.js";
import { clampPrivateKey } from "./crypto.js";
import { WireGuardDevice, type Endpoint } from "./device.js";
import { StaticIdentity, type TransportKeys } from "./noise.js";

beforeEach(reportSeedOnFailure);

type Datagram = { kind: "handshake"; bytes: Uint8Array } | { kind: "transport"; receiver: number; key: Uint8Array; id: number };

class Node {
  readonly device: WireGuardDevice;
  readonly identity: StaticIdentity;
  readonly sessions = new Map<number, TransportKeys>();
  readonly received = new Set<number>();
  readonly peerIds = new Map<string, number>();
  offline = false;

  constructor(
    readonly name: string,
    public address: Endpoint,
    private readonly net: Net,
    r: Rng,
  ) {
    this.identity = new StaticIdentity(clampPrivateKey(r.bytes(32)));
    this.device = new WireGuardDevice({ identity: this.identity, random: (n) => r.bytes(n), wallClockAtZeroNanos: 1_764_000_000n * 1_000_000_000n, underLoadRate: 50 });
  }

  connect(other: Node, withEndpoint: boolean): void {
    this.peerIds.set(other.name, this.device.addPeer(other.identity.publicKey, withEndpoint ? { endpoint: other.address } : {}));
  }

  sendData(to: string, id: number): void {
    const peer = this.peerIds.get(to)!;
    const localIndex = this.device.send(this.net.now, peer, 1);
    if (localIndex === undefined) this.device.stage(peer, [Uint8Array.of(id & 255, (id >> 8) & 255, (id >> 16) & 255)]);
    else this.seal(peer, localIndex, id);
    this.drain();
  }

  private seal(peer: number, localIndex: number, id: number): void {
    const keys = this.sessions.get(localIndex);
    const to = this.device.endpointOf(peer);
    if (keys === undefined || to === undefined) throw new Error(`${this.name}: cannot seal with ${localIndex}`);
    this.net.send(this.address, to, { kind: "transport", receiver: keys.remoteIndex, key: keys.sendKey, id });
  }

  deliver(from: Endpoint, d: Datagram): void {
    if (d.kind === "handshake") this.device.handshakeDatagram(this.net.now, d.bytes, from);
    else {
      const keys = this.sessions.get(d.receiver);
      if (keys === undefined || Buffer.compare(keys.recvKey, d.key) !== 0) return;
      if (d.id >= 0) this.received.add(d.id);
      this.device.authenticated(this.net.now, d.receiver, from, d.id >= 0);
    }
    this.drain();
  }

  drain(): void {
    for (let t = this.device.pollTransmit(); t !== undefined; t = this.device.pollTransmit()) {
      this.net.send(this.address, t.to, { kind: "handshake", bytes: t.bytes });
    }
    for (let e = this.device.pollEvent(); e !== undefined; e = this.device.pollEvent()) {
      const { peer, event } = e;
      if (event.type === "install") this.sessions.set(event.keys.localIndex, event.keys);
      else if (event.type === "drop") this.sessions.delete(event.localIndex);
      else if (event.type === "keepalive") this.seal(peer, event.localIndex, -1);
      else if (event.type === "flush") for (const p of event.packets) this.seal(peer, event.localIndex, p[0]! | (p[1]! << 8) | (p[2]! << 16));
    }
  }
}

class Net {
  now = 0;
  readonly nodes: Node[] = [];
  private queue: { at: number; from: Endpoint; to: Endpoint; d: Datagram }[] = [];
  sent = { handshake: 0, cookie: 0 };
  constructor(private readonly delay = 15) {}

  send(from: Endpoint, to: Endpoint, d: Datagram): void {
    if (d.kind === "handshake") this.sent[d.bytes[0] === MESSAGE_COOKIE_REPLY_TYPE ? "cookie" : "handshake"]++;
    this.queue.push({ at: this.now + this.delay, from: { ...from }, to: { ...to }, d });
  }

  run(until: number, actions: { at: number; run: () => void }[] = []): void {
    const pending = [...actions].sort((a, b) => a.at - b.at);
    for (;;) {
      const net = this.queue.length > 0 ? Math.min(...this.queue.map((q) => q.at)) : Infinity;
      const timer = Math.min(...this.nodes.map((n) => n.device.pollTimeout() ?? Infinity));
      const app = pending[0]?.at ?? Infinity;
      const t = Math.min(net, timer, app);
      if (t > until) break;
      this.now = t;
      if (app === t) pending.shift()!.run();
      else if (net === t) {
        const i = this.queue.findIndex((q) => q.at === t);
        const [q] = this.queue.splice(i, 1);
        const node = this.nodes.find((n) => n.address.address === q!.to.address && n.address.port === q!.to.port);
        if (node !== undefined && !node.offline) node.deliver(q!.from, q!.d);
      } else {
        for (const n of this.nodes) {
          if ((n.device.pollTimeout() ?? Infinity) <= t) {
            n.device.handleTimeout(t);
            n.drain();
          }
        }
      }
    }
    this.now = until;
  }
}

function triangle(label: string) {
  const r = rng(label);
  const net = new Net();
  const a = new Node("a", { address: "192.0.2.1", port: 51820 }, net, r);
  const b = new Node("b", { address: "198.51.100.2", port: 40000 }, net, r);
  const c = new Node("c", { address: "203.0.113.3", port: 40001 }, net, r);
  net.nodes.push(a, b, c);
  // a knows no endpoints (a server); b and c know a's.
  a.connect(b, false);
  a.connect(c, false);
  b.connect(a, true);
  c.connect(a, true);
  return { r, net, a, b, c };
}

const every = (start: number, end: number, step: number, run: (i: number) => void) =>
  Array.from({ length: Math.floor((end - start) / step) }, (_, i) => ({ at: start + i * step, run: () => run(i) }));

describe("WireGuardDevice in virtual time", () => {
  it("routes handshakes to the right peer: a server learns both clients' endpoints and talks to each", () => {
    const { net, a, b, c } = triangle("device/triangle");
    const fromB = every(0, 60_000, 500, (i) => b.sendData("a", i));
    const fromC = every(100, 60_000, 500, (i) => c.sendData("a", 100_000 + i));
    const toB = every(5_000, 60_000, 500, (i) => a.sendData("b", 200_000 + i));
    const toC = every(5_200, 60_000, 500, (i) => a.sendData("c", 300_000 + i));
    net.run(60_000, [...fromB, ...fromC, ...toB, ...toC]);
    expect(a.received.size).toBe(fromB.length + fromC.length);
    expect(b.received.size).toBe(toB.length);
    expect(c.received.size).toBe(toC.length);
    expect([...b.received].every((id) => id >= 200_000 && id < 300_000), "b gets only what a sent to b").toBe(true);
    expect([...c.received].every((id) => id >= 300_000), "c gets only what a sent to c").toBe(true);
  });

  it("roaming: when a client's address changes, the server follows its next authenticated packet", () => {
    const { net, a, b } = triangle("device/roam");
    net.run(20_000, [...every(0, 20_000, 1000, (i) => b.sendData("a", i)), ...every(2_000, 20_000, 1000, (i) => a.sendData("b", 1000 + i))]);
    expect(a.device.endpointOf(a.peerIds.get("b")!)).toEqual({ address: "198.51.100.2", port: 40000 });
    b.address = { address: "198.51.100.99", port: 41234 }; // a NAT rebinding
    net.run(40_000, [...every(20_000, 40_000, 1000, (i) => b.sendData("a", 100 + i)), ...every(22_500, 40_000, 1000, (i) => a.sendData("b", 2000 + i))]);
    expect(a.device.endpointOf(a.peerIds.get("b")!)).toEqual({ address: "198.51.100.99", port: 41234 });
    expect(a.device.stats.roamed).toBeGreaterThanOrEqual(1);
    // Everything a sent after b's first packet from the new address arrived there.
    expect([...b.received].filter((id) => id >= 2000).length).toBeGreaterThanOrEqual(16);
  });

  it("hours of rekeys leave no stale entries in the index table", () => {
    const { net, a, b } = triangle("device/indices");
    const span = 3 * 3600_000;
    const actions = [...every(0, span, 2000, (i) => b.sendData("a", i)), ...every(1000, span, 2000, (i) => a.sendData("b", 1_000_000 + i))];
    net.run(span, actions);
    expect(b.received.size + a.received.size).toBe(actions.length);
    // Each side holds at most current, previous and next sessions (plus a pending initiation).
    const held = (n: Node) => [...n.sessions.keys()].filter((i) => n.device.peerOfIndex(i) !== undefined).length;
    expect(held(a)).toBeLessThanOrEqual(3);
    expect(held(b)).toBeLessThanOrEqual(3);
    expect((a.device as unknown as { indices: Map<number, number> }).indices.size, "a's index table").toBeLessThanOrEqual(4);
    expect((b.device as unknown as { indices: Map<number, number> }).indices.size, "b's index table").toBeLessThanOrEqual(4);
  });

  it("retransmitted initiations free the indices they supersede; a given-up handshake frees its last", () => {
    const { net, a, b } = triangle("device/retransmit-indices");
    a.offline = true;
    net.run(60_000, [{ at: 0, run: () => b.sendData("a", 1) }]);
    const indices = (b.device as unknown as { indices: Map<number, number> }).indices;
    expect(net.sent.handshake, "initiations retransmitted").toBeGreaterThanOrEqual(10);
    expect(indices.size, "only the pending initiation's index").toBe(1);
    net.run(200_000);
    expect(indices.size, "after giving up").toBe(0);
  });

  it("a flood of initiations under load gets cookie replies, not handshakes; the real peer still gets in with its cookie", () => {
    const { net, a, b } = triangle("device/flood");
    net.run(1000, [{ at: 0, run: () => b.sendData("a", 1) }]);
    expect(a.received.has(1)).toBe(true);
    // Capture a genuine initiation of b's, then replay it from many sources within one second.
    let captured: Uint8Array | undefined;
    const send = net.send.bind(net);
    net.send = (from, to, d) => {
      if (d.kind === "handshake" && d.bytes[0] === 1 && captured === undefined) captured = d.bytes.slice();
      send(from, to, d);
    };
    b.device.removePeer(b.peerIds.get("a")!);
    b.connect(a, true);
    net.run(2000, [{ at: 1000, run: () => b.sendData("a", 2) }]);
    expect(captured).toBeDefined();
    const consumedBefore = a.device.stats.handshakesConsumed;
    for (let i = 0; i < 500; i++) a.device.handshakeDatagram(2000 + i, captured!, { address: `10.${i >> 8}.${i & 255}.7`, port: 1000 + i });
    a.drain();
    expect(a.device.stats.cookieRepliesSent).toBeGreaterThanOrEqual(500 - 50 - 1);
    expect(a.device.stats.handshakesConsumed - consumedBefore, "Diffie-Hellman only below the load threshold").toBeLessThanOrEqual(51);
    // While a is still under load, b's fresh initiation gets a cookie, and b's retry carries mac2.
    net.run(12_000, [{ at: 2600, run: () => b.sendData("a", 3) }]);
    expect(a.received.has(3)).toBe(true);
    expect(net.sent.cookie).toBeGreaterThan(0);
  });

  it("setting a persistent keepalive handshakes at once and keeps the session alive without traffic; 0 stops it", () => {
    const { net, a, b } = triangle("device/persistent-keepalive");
    const peer = b.peerIds.get("a")!;
    b.device.setPersistentKeepalive(net.now, peer, 25_000);
    b.drain();
    net.run(1000);
    expect(b.sessions.size, "b handshook with a, unprompted").toBeGreaterThan(0);
    expect(a.device.endpointOf(a.peerIds.get("b")!), "a learned b's endpoint from it").toEqual(b.address);
    const before = net.sent.handshake;
    net.run(100_000);
    expect(net.sent.handshake - before, "a keepalive every 25 s, the session kept (one rekey at most)").toBeLessThanOrEqual(2);
    expect(a.sessions.size).toBeGreaterThan(0);
    b.device.setPersistentKeepalive(net.now, peer, 0);
    b.drain();
    net.run(1_000_000);
    expect(a.sessions.size + b.sessions.size, "without keepalives the sessions expire").toBe(0);
  });

  it("setEndpoint moves where a peer's packets go; the peer's own next packet moves it again (roaming)", () => {
    const { net, a, b } = triangle("device/set-endpoint");
    net.run(5000, [{ at: 0, run: () => b.sendData("a", 1) }, { at: 1000, run: () => a.sendData("b", 2) }]);
    expect(b.received.has(2)).toBe(true);
    const idB = a.peerIds.get("b")!;
    a.device.setEndpoint(idB, { address: "192.0.2.200", port: 9 });
    net.run(6000, [{ at: 5000, run: () => a.sendData("b", 3) }]);
    expect(b.received.has(3), "sent to the configured endpoint, where b is not").toBe(false);
    net.run(8000, [{ at: 6000, run: () => b.sendData("a", 4) }, { at: 7000, run: () => a.sendData("b", 5) }]);
    expect(b.received.has(5)).toBe(true);
    expect(a.device.endpointOf(idB)).toEqual(b.address);
  });

  it("junk never reaches a peer: wrong sizes, wrong types, bad mac1, unknown receiver indices", () => {
    const { r, a } = triangle("device/junk");
    const from = { address: "192.0.2.66", port: 6666 };
    for (let i = 0; i < 500; i++) {
      const bytes = r.bytes(r.pick([0, 1, 32, 64, 92, 148, 200]));
      if (bytes.length > 0) bytes[0] = r.pick([1, 2, 3, MESSAGE_TRANSPORT_TYPE, 9]);
      a.device.handshakeDatagram(i, bytes, from);
    }
    expect(a.device.stats.junkDropped).toBe(500);
    expect(a.device.stats.handshakesConsumed).toBe(0);
    expect(a.device.pollTransmit()).toBeUndefined();
    expect(a.device.pollEvent()).toBeUndefined();
  });
});
