// Cryptokey routing on the transport batch (engine/cryptokey.ts), on both builds: routeOutbound()
// picks each plaintext's peer by its inner destination, and checkInbound() drops opened packets whose
// inner source is not an allowed IP of the session's peer. Packets are built by test/support/ip.ts and
// sealed by the independent codec of test/support/wireguard.ts; valid and malformed ones share batches.

import { beforeEach, describe, expect, it } from "vitest";
import { expectBytes, toHex } from "../../test/support/bytes.js";
import { BUILDS, expectCode, randomKeys, statusName } from "../../test/support/engine.js";
import { ip, ipv4Packet, ipv6Packet } from "../../test/support/ip.js";
import { reportSeedOnFailure, rng } from "../../test/support/prng.js";
import { buildTransport } from "../../test/support/wireguard.js";
import { Engine, type SessionKeys } from "./index.js";

beforeEach(reportSeedOnFailure);

/** A copy of packet with its version nibble replaced. */
function withVersion(packet: Uint8Array, version: number): Uint8Array {
  const out = packet.slice();
  out[0] = (version << 4) | (out[0]! & 0x0f);
  return out;
}

/** A copy of packet with the big-endian u16 at offset replaced (IPv4 total length: 2, IPv6 payload length: 4). */
function withU16(packet: Uint8Array, offset: number, value: number): Uint8Array {
  const out = packet.slice();
  new DataView(out.buffer).setUint16(offset, value);
  return out;
}

describe.each(BUILDS)("cryptokey routing on the batch (%s build)", (build) => {
  let engine: Engine;
  beforeEach(() => {
    engine = Engine.create({ build });
    engine.routes.insert("10.0.0.0/8", 1);
    engine.routes.insert("10.1.0.0/16", 2);
    engine.routes.insert("fd00::/64", 3);
    engine.routes.insert("fd00::7/128", 0xfffffffe);
    engine.routes.insert("2000::/3", 4);
  });

  it("routeOutbound: valid IPv4/IPv6 packets get their peer, malformed ones and unrouted ones get none, in one batch", () => {
    const r = rng(`cryptokey/outbound/${build}`);
    const me4 = ip("100.64.0.1");
    const me6 = ip("fd00:2021:1111::1");
    const cases: { name: string; packet: Uint8Array; peer: number | undefined; status: string }[] = [
      { name: "v4 to 10.1.2.3", packet: ipv4Packet(me4, ip("10.1.2.3"), 100), peer: 2, status: "Ok" },
      { name: "v4 to 10.9.9.9", packet: ipv4Packet(me4, ip("10.9.9.9"), 0), peer: 1, status: "Ok" },
      { name: "v4 to 192.168.1.1", packet: ipv4Packet(me4, ip("192.168.1.1"), 8), peer: undefined, status: "NoRoute" },
      { name: "v6 to fd00::5", packet: ipv6Packet(me6, ip("fd00::5"), 1200), peer: 3, status: "Ok" },
      { name: "v6 to fd00::7", packet: ipv6Packet(me6, ip("fd00::7"), 1), peer: 0xfffffffe, status: "Ok" },
      { name: "v6 to 2001:db8::1", packet: ipv6Packet(me6, ip("2001:db8::1"), 0), peer: 4, status: "Ok" },
      { name: "v6 to fd01::1", packet: ipv6Packet(me6, ip("fd01::1"), 0), peer: undefined, status: "NoRoute" },
      { name: "30-byte v4 packet marked version 6", packet: withVersion(ipv4Packet(me4, ip("10.1.2.3"), 10), 6), peer: undefined, status: "BadInnerPacket" },
      { name: "v4 header cut to 19 bytes", packet: ipv4Packet(me4, ip("10.1.2.3"), 0).subarray(0, 19), peer: undefined, status: "BadInnerPacket" },
      { name: "v6 header cut to 39 bytes", packet: ipv6Packet(me6, ip("fd00::5"), 0).subarray(0, 39), peer: undefined, status: "BadInnerPacket" },
      { name: "version 5", packet: withVersion(ipv4Packet(me4, ip("10.1.2.3"), 20), 5), peer: undefined, status: "BadInnerPacket" },
      { name: "version 0", packet: withVersion(ipv6Packet(me6, ip("fd00::5"), 20), 0), peer: undefined, status: "BadInnerPacket" },
      { name: "empty", packet: new Uint8Array(0), peer: undefined, status: "BadInnerPacket" },
      { name: "random bytes", packet: r.bytes(r.int(1, 60)), peer: undefined, status: "" },
    ];
    const slot = engine.sessions.install(randomKeys(r));
    const batch = engine.batch;
    batch.reset();
    for (const c of cases) batch.addPlaintext(slot, c.packet);
    batch.routeOutbound();
    for (const [i, c] of cases.entries()) {
      if (c.status === "") continue; // random bytes: whatever the first nibble says, it must not throw
      expect(batch.peer(i), r.where(c.name)).toBe(c.peer);
      expect(statusName(batch.status(i)), r.where(c.name)).toBe(c.status);
    }
    // The driver picks each packet's session from its peer; what routing dropped stays unsealed and
    // spends no counter.
    batch.setSession(0, slot);
    const routed = cases.filter((_, i) => statusName(batch.status(i)) === "Ok").length;
    const unrouted = cases.map((c, i) => [c, batch.status(i)] as const).filter(([, s]) => statusName(s) !== "Ok");
    expect(batch.seal(), r.where("seal after routing")).toBe(routed);
    expect(engine.sessions.sendCounter(slot), r.where("counters spent")).toBe(BigInt(routed));
    for (const [i, c] of cases.entries()) {
      const was = unrouted.find(([u]) => u === c);
      if (was !== undefined) expect(batch.status(i), r.where(`${c.name} stays dropped`)).toBe(was[1]);
    }
    expectCode(() => batch.routeOutbound(), "BATCH_DONE", "routeOutbound after seal");
  });

  it("routeOutbound agrees with routes.lookup on random destinations in a full batch", () => {
    const r = rng(`cryptokey/outbound-random/${build}`);
    for (let i = 0; i < 200; i++) {
      const v6 = r.bool();
      const address = v6 ? ip("fd00::") : ip("10.0.0.0");
      address.set(r.bytes(v6 ? 12 : 3), v6 ? 4 : 1);
      engine.routes.insert({ address, length: r.int(v6 ? 16 : 8, v6 ? 128 : 32) }, r.int(0, 20));
    }
    const slot = engine.sessions.install(randomKeys(r));
    const batch = engine.batch;
    batch.reset();
    const destinations: Uint8Array[] = [];
    while (batch.length < batch.maxPackets) {
      const v6 = r.bool();
      const dst = v6 ? ip("fd00::") : ip("10.0.0.0");
      dst.set(r.bytes(v6 ? 12 : 3), v6 ? 4 : 1);
      if (r.bool(0.2)) dst.set(r.bytes(dst.length)); // anywhere
      destinations.push(dst);
      batch.addPlaintext(slot, v6 ? ipv6Packet(ip("fd00::1"), dst, r.int(0, 100)) : ipv4Packet(ip("10.0.0.1"), dst, r.int(0, 100)));
    }
    batch.routeOutbound();
    for (const [i, dst] of destinations.entries()) {
      const expected = engine.routes.lookup(dst);
      expect(batch.peer(i), r.where(`packet ${i} to ${toHex(dst)}`)).toBe(expected);
      expect(statusName(batch.status(i)), r.where(`packet ${i}`)).toBe(expected === undefined ? "NoRoute" : "Ok");
    }
  });

  describe("checkInbound", () => {
    const PEER = 7;
    let keys: SessionKeys;
    let slot: number;
    let counter: bigint;

    beforeEach(() => {
      engine.routes.insert("10.7.0.0/16", PEER);
      engine.routes.insert("fd07::/64", PEER);
      engine.routes.insert("10.8.0.0/16", 8);
      engine.routes.insert("fd08::/64", 8);
      keys = randomKeys(rng(`cryptokey/inbound-keys/${build}`));
      slot = engine.sessions.install({ ...keys, peer: PEER });
      counter = 0n;
    });

    /** Seals plaintext as the peer would (independent codec) and adds it to the batch. */
    const receive = (plaintext: Uint8Array, key = keys.recvKey): number =>
      engine.batch.addPacket(buildTransport(key, keys.localIndex, counter++, plaintext));

    it("passes the peer's own sources and keepalives, drops other sources and malformed inner packets, trims padding", () => {
      const r = rng(`cryptokey/inbound/${build}`);
      const me4 = ip("100.64.0.1");
      const me6 = ip("fd00:2021:1111::1");
      const v4 = ipv4Packet(ip("10.7.1.1"), me4, 33);
      const cases: { name: string; plaintext: Uint8Array; status: string; key?: Uint8Array }[] = [
        { name: "v4 from the peer", plaintext: ipv4Packet(ip("10.7.1.1"), me4, 33), status: "Ok" },
        { name: "v4 from the peer, 20 bytes", plaintext: ipv4Packet(ip("10.7.255.255"), me4, 0), status: "Ok" },
        { name: "v6 from the peer", plaintext: ipv6Packet(ip("fd07::1"), me6, 1000), status: "Ok" },
        { name: "keepalive", plaintext: new Uint8Array(0), status: "Ok" },
        { name: "v4 from peer 8's range", plaintext: ipv4Packet(ip("10.8.1.1"), me4, 5), status: "SourceNotAllowed" },
        { name: "v4 from 10.9.0.1 (peer 1's /8)", plaintext: ipv4Packet(ip("10.9.0.1"), me4, 5), status: "SourceNotAllowed" },
        { name: "v4 from nowhere routed", plaintext: ipv4Packet(ip("192.168.0.1"), me4, 5), status: "SourceNotAllowed" },
        { name: "v6 from peer 8's range", plaintext: ipv6Packet(ip("fd08::1"), me6, 5), status: "SourceNotAllowed" },
        { name: "v6 from nowhere routed", plaintext: ipv6Packet(ip("fe80::1"), me6, 5), status: "SourceNotAllowed" },
        { name: "v4 total length past the padded plaintext", plaintext: withU16(v4, 2, 100), status: "BadInnerPacket" },
        { name: "v4 total length inside the padding", plaintext: withU16(v4, 2, v4.length + 7), status: "Ok" },
        { name: "v4 total length below a header", plaintext: withU16(v4, 2, 19), status: "BadInnerPacket" },
        { name: "v6 payload length past the plaintext", plaintext: withU16(ipv6Packet(ip("fd07::1"), me6, 8), 4, 40), status: "BadInnerPacket" },
        { name: "v4 cut to 10 bytes", plaintext: v4.subarray(0, 10), status: "BadInnerPacket" },
        { name: "v6 cut to 32 bytes", plaintext: ipv6Packet(ip("fd07::1"), me6, 0).subarray(0, 32), status: "BadInnerPacket" },
        { name: "version 5", plaintext: withVersion(v4, 5), status: "BadInnerPacket" },
        { name: "v4 source read as v6 (version nibble 6)", plaintext: withU16(withVersion(ipv4Packet(ip("10.7.1.1"), me4, 40), 6), 4, 0), status: "SourceNotAllowed" },
        { name: "wrong key", plaintext: ipv4Packet(ip("10.7.1.1"), me4, 33), status: "AuthFailed", key: r.bytes(32) },
      ];
      engine.batch.reset();
      for (const c of cases) receive(c.plaintext, c.key);
      const opened = engine.batch.open();
      expect(opened, r.where("open")).toBe(cases.length - 1);
      const expectedOk = cases.filter((c) => c.status === "Ok").length;
      expect(engine.batch.checkInbound(), r.where("checkInbound count")).toBe(expectedOk);
      for (const [i, c] of cases.entries()) {
        const where = r.where(c.name);
        expect(statusName(engine.batch.status(i)), where).toBe(c.status);
        if (c.status !== "Ok") continue;
        // The IP packet alone: padding (and, for the inner length, the bytes past it) removed.
        const view = new DataView(c.plaintext.buffer, c.plaintext.byteOffset, c.plaintext.length);
        const own = c.plaintext.length === 0 ? 0 : c.plaintext[0]! >> 4 === 4 ? view.getUint16(2) : 40 + view.getUint16(4);
        const padded = new Uint8Array(Math.ceil(c.plaintext.length / 16) * 16);
        padded.set(c.plaintext);
        expect(engine.batch.packetLength(i), `${where}: length`).toBe(own);
        expectBytes(engine.batch.plaintext(i), padded.subarray(0, own), `${where}: plaintext`);
      }
      // A second check changes nothing.
      expect(engine.batch.checkInbound(), r.where("checkInbound again")).toBe(expectedOk);
    });

    it("a session without a peer passes only keepalives; setPeer lets its sources through; removePeer takes them away", () => {
      const r = rng(`cryptokey/inbound-peer/${build}`);
      const other = randomKeys(r);
      const loose = engine.sessions.install(other);
      expect(engine.sessions.peer(loose)).toBeUndefined();
      expect(engine.sessions.peer(slot)).toBe(PEER);
      const send = (plaintext: Uint8Array): void => {
        engine.batch.addPacket(buildTransport(other.recvKey, other.localIndex, counter++, plaintext));
      };
      const fromPeer = ipv4Packet(ip("10.7.0.9"), ip("100.64.0.1"), 12);
      engine.batch.reset();
      send(fromPeer);
      send(new Uint8Array(0));
      expect(engine.batch.open()).toBe(2);
      expect(engine.batch.checkInbound(), r.where("no peer")).toBe(1);
      expect(statusName(engine.batch.status(0))).toBe("SourceNotAllowed");
      expect(statusName(engine.batch.status(1))).toBe("Ok");

      engine.sessions.setPeer(loose, PEER);
      engine.batch.reset();
      send(fromPeer);
      expect(engine.batch.open()).toBe(1);
      expect(engine.batch.checkInbound(), r.where("after setPeer")).toBe(1);

      expect(engine.routes.removePeer(PEER)).toBe(2);
      engine.batch.reset();
      send(fromPeer);
      expect(engine.batch.open()).toBe(1);
      expect(engine.batch.checkInbound(), r.where("after removePeer")).toBe(0);
      expect(statusName(engine.batch.status(0))).toBe("SourceNotAllowed");
    });

    it("misuse: peer(i) before routeOutbound, checkInbound before open or on plaintexts, bad peers", () => {
      const batch = engine.batch;
      batch.reset();
      receive(new Uint8Array(0));
      expectCode(() => batch.checkInbound(), "BATCH_NOT_OPENED", "checkInbound before open");
      expectCode(() => batch.routeOutbound(), "BATCH_MIXED", "routeOutbound on received packets");
      expectCode(() => batch.setSession(0, slot), "BATCH_MIXED", "setSession on received packets");
      batch.reset();
      batch.addPlaintext(slot, ipv4Packet(ip("1.2.3.4"), ip("10.0.0.1"), 0));
      expectCode(() => batch.peer(0), "BATCH_NOT_ROUTED", "peer before routeOutbound");
      expectCode(() => batch.checkInbound(), "BATCH_MIXED", "checkInbound on plaintexts");
      batch.routeOutbound();
      expect(batch.peer(0)).toBe(1);
      batch.addPlaintext(slot, ipv4Packet(ip("1.2.3.4"), ip("10.0.0.1"), 0));
      expectCode(() => batch.peer(0), "BATCH_NOT_ROUTED", "peer after another packet was added");
      expectCode(() => batch.peer(5), "BAD_ARGUMENT", "peer of a packet not in the batch");
      expectCode(() => batch.setSession(0, engine.sessions.capacity), "BAD_ARGUMENT", "setSession to a slot past capacity");
      for (const peer of [-1, 0xffffffff, 1.5, "7"]) {
        expectCode(() => engine.sessions.setPeer(slot, peer as number), "BAD_PEER", `setPeer ${String(peer)}`);
        expectCode(() => engine.sessions.install({ ...keys, localIndex: 1, peer: peer as number }), "BAD_PEER", `install peer ${String(peer)}`);
      }
      expectCode(() => engine.sessions.setPeer(engine.sessions.capacity - 1, 1), "NO_SESSION", "setPeer of an empty slot");
      expect(engine.sessions.size).toBe(1);
    });
  });
});
