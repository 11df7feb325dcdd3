// The batched WireGuard transport (whitepaper §5.4.6) and its session table, on both builds, checked
// against test/support/wireguard.ts: an independent codec (DataView header + @noble/ciphers AEAD with
// nonce 0^4 || LE64(counter) over the zero-padded plaintext) that shares no code with the engine.

import { beforeEach, describe, expect, it } from "vitest";
import { expectBytes } from "../../test/support/bytes.js";
import { BUILDS, expectCode, randomKeys, statusName } from "../../test/support/engine.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { ReplayOracle, buildTransport, openTransport, pad16 } from "../../test/support/wireguard.js";
import { Engine, MAX_CONTENT_SIZE, MAX_MESSAGE_SIZE, type SessionKeys } from "./index.js";

beforeEach(reportSeedOnFailure);

/** The peer's view of a session: what it sends to us is sealed with our recvKey to our localIndex. */
function peerOf(keys: SessionKeys): SessionKeys {
  return { localIndex: keys.remoteIndex, remoteIndex: keys.localIndex, sendKey: keys.recvKey, recvKey: keys.sendKey };
}

/** Plaintext sizes for the transport: the padding and block edges, the limits, and a seeded spread. */
function transportSizes(r: Rng, extra: number): number[] {
  const edges = [0, 1, 15, 16, 17, 63, 64, 65, 191, 192, 193, 255, 256, 257, 1420, 16384, MAX_CONTENT_SIZE - 1, MAX_CONTENT_SIZE];
  return [...edges, ...Array.from({ length: extra }, () => (r.bool(0.8) ? r.int(0, 2000) : r.int(2001, MAX_CONTENT_SIZE)))];
}

/** Seals plaintexts with slot in as many batches as the arena needs; returns copies of the packets. */
function sealAll(engine: Engine, slot: number, plaintexts: Uint8Array[], where: string): Uint8Array[] {
  const packets: Uint8Array[] = [];
  const batch = engine.batch;
  let next = 0;
  while (next < plaintexts.length) {
    batch.reset();
    const first = next;
    while (next < plaintexts.length && batch.hasRoomForPlaintext(plaintexts[next]!.length)) {
      // Alternate the two ways in: reserve-and-write (what the TUN reader does) and add (a copy).
      if (next % 2 === 0) batch.reservePlaintext(slot, plaintexts[next]!.length).set(plaintexts[next]!);
      else batch.addPlaintext(slot, plaintexts[next]!);
      next++;
    }
    expect(batch.seal(), `${where}: seal() count`).toBe(next - first);
    for (let i = 0; i < batch.length; i++) {
      expect(statusName(batch.status(i)), `${where}: seal status of packet ${first + i}`).toBe("Ok");
      packets.push(batch.packet(i).slice());
    }
  }
  return packets;
}

describe.each(BUILDS)("WireGuard transport (%s build)", (build) => {
  let engine: Engine;
  beforeEach(() => {
    engine = Engine.create({ build });
  });

  it("sealed packets equal the independent builder's, byte for byte, with counters 0, 1, 2, ...", () => {
    const r = rng(`transport/seal-vs-builder/${build}`);
    const keys = randomKeys(r);
    const slot = engine.sessions.install(keys);
    const plaintexts = transportSizes(r, 60).map((n) => r.bytes(n));
    const packets = sealAll(engine, slot, plaintexts, r.where());
    expect(packets.length).toBe(plaintexts.length);
    for (const [i, packet] of packets.entries()) {
      const where = r.where(`packet ${i} (plaintext ${plaintexts[i]!.length} bytes)`);
      expectBytes(packet, buildTransport(keys.sendKey, keys.remoteIndex, BigInt(i), plaintexts[i]!), where);
    }
    expect(engine.sessions.sendCounter(slot), r.where("sendCounter after sealing")).toBe(BigInt(plaintexts.length));
  });

  it("packets from the independent builder open, at chosen counters", () => {
    const r = rng(`transport/builder-vs-open/${build}`);
    const keys = randomKeys(r);
    const slot = engine.sessions.install(keys);
    const sizes = transportSizes(r, 40);
    // Increasing counters with gaps, so every packet is new and inside the window.
    let counter = r.bigint(0n, 2n ** 62n);
    const sent = sizes.map((n) => {
      counter += r.bigint(1n, 100n);
      const plaintext = r.bytes(n);
      return { counter, plaintext, packet: buildTransport(keys.recvKey, keys.localIndex, counter, plaintext) };
    });
    const batch = engine.batch;
    let next = 0;
    while (next < sent.length) {
      batch.reset();
      const first = next;
      while (next < sent.length && batch.hasRoomForPacket(sent[next]!.packet.length)) {
        if (next % 2 === 0) batch.reservePacket(sent[next]!.packet.length).set(sent[next]!.packet);
        else batch.addPacket(sent[next]!.packet);
        next++;
      }
      expect(batch.open(), r.where("open() count")).toBe(next - first);
      for (let i = 0; i < batch.length; i++) {
        const s = sent[first + i]!;
        const where = r.where(`packet ${first + i} counter=${s.counter} plaintext=${s.plaintext.length}`);
        expect(statusName(batch.status(i)), where).toBe("Ok");
        expect(batch.session(i), `${where} session`).toBe(slot);
        expectBytes(batch.plaintext(i), pad16(s.plaintext), `${where} plaintext with padding`);
      }
    }
  });

  it("round trip between two engines of every size class in one batch", () => {
    const r = rng(`transport/round-trip/${build}`);
    const receiver = Engine.create({ build, arenaBytes: 8 * 1024 * 1024 });
    const keys = randomKeys(r);
    const slot = engine.sessions.install(keys);
    const peerSlot = receiver.sessions.install(peerOf(keys));
    // One batch from 0 up to MAX_CONTENT_SIZE; the sender's arena splits it, the receiver's holds it all.
    const plaintexts = transportSizes(r, 20).map((n) => r.bytes(n));
    const packets = sealAll(engine, slot, plaintexts, r.where());
    receiver.batch.reset();
    for (const p of packets) receiver.batch.addPacket(p);
    expect(receiver.batch.open(), r.where("all open")).toBe(packets.length);
    for (const [i, plaintext] of plaintexts.entries()) {
      const where = r.where(`packet ${i} (${plaintext.length} bytes)`);
      expect(statusName(receiver.batch.status(i)), where).toBe("Ok");
      expect(receiver.batch.session(i), where).toBe(peerSlot);
      const opened = receiver.batch.plaintext(i);
      expect(opened.length, `${where}: padded length`).toBe(Math.ceil(plaintext.length / 16) * 16);
      expectBytes(opened.subarray(0, plaintext.length), plaintext, `${where}: starts with the original bytes`);
      expect(opened.subarray(plaintext.length).every((b) => b === 0), `${where}: padding is zero`).toBe(true);
    }
  });

  it("a keepalive (empty plaintext) is a 32-byte packet that opens to nothing", () => {
    const r = rng(`transport/keepalive/${build}`);
    const keys = randomKeys(r);
    const slot = engine.sessions.install(keys);
    engine.batch.reset();
    engine.batch.addPlaintext(slot, new Uint8Array(0));
    expect(engine.batch.seal()).toBe(1);
    const packet = engine.batch.packet(0).slice();
    expect(packet.length, r.where()).toBe(32);
    expectBytes(packet, buildTransport(keys.sendKey, keys.remoteIndex, 0n, new Uint8Array(0)), r.where("keepalive"));

    const receiver = Engine.create({ build });
    receiver.sessions.install(peerOf(keys));
    receiver.batch.addPacket(packet);
    expect(receiver.batch.open()).toBe(1);
    expect(statusName(receiver.batch.status(0))).toBe("Ok");
    expect(receiver.batch.plaintext(0).length).toBe(0);
  });

  it("a driver's batch: reserve MTU-sized regions, fill fewer and shorter, setLength/truncate/hold, seal", () => {
    const r = rng(`transport/driver/${build}`);
    const keys = randomKeys(r);
    const slot = engine.sessions.install(keys);
    const batch = engine.batch;
    batch.reset();
    const reserved = 8;
    const offsets = Array.from({ length: reserved }, () => batch.reservePlaintextOffset(slot, 1500));
    // The "read" filled five regions with shorter packets; packet 2 waits for a handshake.
    const plaintexts = Array.from({ length: 5 }, () => r.bytes(r.int(0, 1500)));
    plaintexts.forEach((p, i) => batch.memory.set(p, offsets[i]!));
    batch.truncate(plaintexts.length);
    plaintexts.forEach((p, i) => batch.setLength(i, p.length));
    batch.hold(2);
    expect(batch.length).toBe(5);
    expect(batch.seal(), r.where()).toBe(4);
    expect(statusName(batch.status(2))).toBe("NoSession");
    let counter = 0n;
    for (const i of [0, 1, 3, 4]) {
      expectBytes(batch.packet(i), buildTransport(keys.sendKey, keys.remoteIndex, counter++, plaintexts[i]!), r.where(`packet ${i}`));
    }
    expect(() => batch.setLength(0, 1)).toThrow(/already sealed/);
    expect(() => batch.truncate(1)).toThrow(/already sealed/);
    expect(() => batch.hold(0)).toThrow(/already sealed/);

    batch.reset();
    batch.reservePlaintextOffset(slot, 100);
    expectCode(() => batch.setLength(0, 101), "BAD_ARGUMENT", r.where("setLength grows"));
    expectCode(() => batch.truncate(2), "BAD_ARGUMENT", r.where("truncate past the end"));
    batch.reset();
    batch.reservePacketOffset(64);
    expect(() => batch.hold(0)).toThrow(/received packets/);
  });

  it("seal pads with zeros whatever the arena held before", () => {
    const r = rng(`transport/padding/${build}`);
    const keys = randomKeys(r);
    const slot = engine.sessions.install(keys);
    // Dirty the arena with 0xff, then seal short plaintexts over it.
    engine.batch.reset();
    engine.batch.reservePacket(4096).fill(0xff);
    engine.batch.reset();
    const plaintexts = [1, 5, 15, 17, 31, 33].map((n) => r.bytes(n));
    for (const p of plaintexts) engine.batch.addPlaintext(slot, p);
    expect(engine.batch.seal()).toBe(plaintexts.length);
    for (const [i, p] of plaintexts.entries()) {
      const opened = openTransport(keys.sendKey, engine.batch.packet(i));
      expect(opened, r.where(`packet ${i} authenticates`)).not.toBeNull();
      expectBytes(opened!.plaintext, pad16(p), r.where(`packet ${i} decrypts to zero-padded plaintext`));
    }
  });

  it("several sessions in one batch: seal uses each session's counter and receiver index", () => {
    const r = rng(`transport/multi-seal/${build}`);
    const sessions = Array.from({ length: 6 }, (_, i) => randomKeys(r, 1000 + i, r.u32()));
    const slots = sessions.map((k) => engine.sessions.install(k));
    const order = Array.from({ length: 80 }, () => r.int(0, sessions.length - 1));
    const plaintexts = order.map(() => r.bytes(r.int(0, 300)));
    engine.batch.reset();
    order.forEach((s, i) => engine.batch.addPlaintext(slots[s]!, plaintexts[i]!));
    expect(engine.batch.seal()).toBe(order.length);
    const counters = sessions.map(() => 0n);
    order.forEach((s, i) => {
      const where = r.where(`packet ${i} session ${s}`);
      expect(engine.batch.session(i), where).toBe(slots[s]);
      const expected = buildTransport(sessions[s]!.sendKey, sessions[s]!.remoteIndex, counters[s]!, plaintexts[i]!);
      expectBytes(engine.batch.packet(i), expected, where);
      counters[s]!++;
    });
    slots.forEach((slot, s) => expect(engine.sessions.sendCounter(slot), r.where(`sendCounter of session ${s}`)).toBe(counters[s]));
  });

  it("several sessions in one batch: open finds each session by receiver index", () => {
    const r = rng(`transport/multi-open/${build}`);
    const sessions = Array.from({ length: 8 }, () => randomKeys(r));
    const slots = sessions.map((k) => engine.sessions.install(k));
    const next = sessions.map(() => 0n);
    const sent = Array.from({ length: 100 }, () => {
      const s = r.int(0, sessions.length - 1);
      const plaintext = r.bytes(r.int(0, 200));
      const counter = next[s]!++;
      return { s, plaintext, packet: buildTransport(sessions[s]!.recvKey, sessions[s]!.localIndex, counter, plaintext) };
    });
    r.shuffle(sent);
    engine.batch.reset();
    for (const p of sent) engine.batch.addPacket(p.packet);
    expect(engine.batch.open(), r.where("all open")).toBe(sent.length);
    sent.forEach((p, i) => {
      const where = r.where(`packet ${i} session ${p.s}`);
      expect(statusName(engine.batch.status(i)), where).toBe("Ok");
      expect(engine.batch.session(i), where).toBe(slots[p.s]);
      expectBytes(engine.batch.plaintext(i), pad16(p.plaintext), where);
    });
  });

  it("drop() makes later packets NoSession on open and on seal, and leaves other sessions working", () => {
    const r = rng(`transport/drop/${build}`);
    const a = randomKeys(r, 11, 21);
    const b = randomKeys(r, 12, 22);
    const slotA = engine.sessions.install(a);
    const slotB = engine.sessions.install(b);
    expect(engine.sessions.size).toBe(2);
    engine.sessions.drop(slotA);
    expect(engine.sessions.size).toBe(1);
    expect(engine.sessions.find(11)).toBeUndefined();
    expect(engine.sessions.find(12)).toBe(slotB);

    engine.batch.reset();
    engine.batch.addPacket(buildTransport(a.recvKey, 11, 0n, r.bytes(40)));
    engine.batch.addPacket(buildTransport(b.recvKey, 12, 0n, r.bytes(40)));
    expect(engine.batch.open()).toBe(1);
    expect(statusName(engine.batch.status(0)), "packet to the dropped index").toBe("NoSession");
    expect(statusName(engine.batch.status(1)), "packet to the live index").toBe("Ok");

    engine.batch.reset();
    engine.batch.addPlaintext(slotA, r.bytes(10));
    engine.batch.addPlaintext(slotB, r.bytes(10));
    expect(engine.batch.seal()).toBe(1);
    expect(statusName(engine.batch.status(0)), "seal with the dropped slot").toBe("NoSession");
    expect(statusName(engine.batch.status(1)), "seal with the live slot").toBe("Ok");
    expect(engine.sessions.sendCounter(slotB)).toBe(1n);
    expect(() => engine.sessions.sendCounter(slotA)).toThrowError(expect.objectContaining({ code: "NO_SESSION" }));
    expect(() => engine.sessions.drop(slotA)).toThrowError(expect.objectContaining({ code: "NO_SESSION" }));
  });

  it("sendCounter counts the packets sealed, per session, across batches", () => {
    const r = rng(`transport/send-counter/${build}`);
    const slot = engine.sessions.install(randomKeys(r));
    const other = engine.sessions.install(randomKeys(r));
    let expected = 0n;
    for (let round = 0; round < 5; round++) {
      engine.batch.reset();
      const n = r.int(0, 20);
      for (let i = 0; i < n; i++) engine.batch.addPlaintext(slot, r.bytes(r.int(0, 64)));
      expect(engine.batch.seal()).toBe(n);
      expected += BigInt(n);
      expect(engine.sessions.sendCounter(slot), r.where(`round ${round}`)).toBe(expected);
    }
    expect(engine.sessions.sendCounter(other), "a session that sealed nothing").toBe(0n);
  });

  it("INDEX_IN_USE on a duplicate localIndex, without using up a slot", () => {
    const r = rng(`transport/index-in-use/${build}`);
    const small = Engine.create({ build, maxSessions: 2 });
    small.sessions.install(randomKeys(r, 7, 1));
    for (let i = 0; i < 3; i++) {
      expect(() => small.sessions.install(randomKeys(r, 7, 2))).toThrowError(expect.objectContaining({ code: "INDEX_IN_USE" }));
    }
    expect(small.sessions.size).toBe(1);
    const second = small.sessions.install(randomKeys(r, 8, 2));
    expect(small.sessions.find(8)).toBe(second);
    expect(small.sessions.size).toBe(2);
  });

  it("TABLE_FULL when every slot is used; a dropped slot is reused", () => {
    const r = rng(`transport/table-full/${build}`);
    const small = Engine.create({ build, maxSessions: 4 });
    const slots = [1, 2, 3, 4].map((i) => small.sessions.install(randomKeys(r, i, i)));
    expect(new Set(slots).size).toBe(4);
    expect(() => small.sessions.install(randomKeys(r, 5, 5))).toThrowError(expect.objectContaining({ code: "TABLE_FULL" }));
    expect(small.sessions.size).toBe(4);
    small.sessions.drop(slots[2]!);
    const reused = small.sessions.install(randomKeys(r, 5, 5));
    expect(reused, "the freed slot is handed out again").toBe(slots[2]);
    expect(small.sessions.find(5)).toBe(reused);
    expect(small.sessions.find(3)).toBeUndefined();
  });

  it("a dropped and reinstalled index starts with a fresh replay window and counter", () => {
    const r = rng(`transport/reinstall/${build}`);
    const keys = randomKeys(r, 99, 100);
    let slot = engine.sessions.install(keys);
    const packets = [0n, 1n, 2n, 5000n].map((c) => buildTransport(keys.recvKey, 99, c, r.bytes(20)));
    engine.batch.reset();
    for (const p of packets) engine.batch.addPacket(p);
    expect(engine.batch.open()).toBe(4);
    engine.batch.reset();
    engine.batch.addPlaintext(slot, r.bytes(3));
    engine.batch.seal();
    expect(engine.sessions.sendCounter(slot)).toBe(1n);

    engine.sessions.drop(slot);
    slot = engine.sessions.install(keys);
    expect(engine.sessions.sendCounter(slot), "new session sends from 0").toBe(0n);
    engine.batch.reset();
    for (const p of packets) engine.batch.addPacket(p);
    expect(engine.batch.open(), "counters 0, 1, 2 and 5000 are new to the new window").toBe(4);

    // Same index, new keys (a rekey): packets under the old key no longer authenticate.
    engine.sessions.drop(slot);
    engine.sessions.install({ ...keys, recvKey: r.bytes(32) });
    engine.batch.reset();
    engine.batch.addPacket(packets[0]!);
    expect(engine.batch.open()).toBe(0);
    expect(statusName(engine.batch.status(0))).toBe("AuthFailed");
  });

  it("the session table agrees with a Map through random installs and drops", () => {
    const r = rng(`transport/session-table/${build}`);
    const capacity = 48;
    const small = Engine.create({ build, maxSessions: capacity, arenaBytes: 64 * 1024 });
    const oracle = new Map<number, { slot: number; keys: SessionKeys }>();
    // A small pool of indices (some sharing hash buckets) so probes collide and deletions shift runs.
    const pool = Array.from({ length: 96 }, () => (r.bool(0.5) ? r.int(0, 200) : r.u32()));
    for (let step = 0; step < 3000; step++) {
      const index = r.pick(pool);
      const entry = oracle.get(index);
      const where = r.where(`step ${step} index ${index}`);
      if (entry && r.bool(0.6)) {
        small.sessions.drop(entry.slot);
        oracle.delete(index);
      } else if (entry) {
        // With the table also full, either refusal is right.
        const codes = oracle.size === capacity ? ["INDEX_IN_USE", "TABLE_FULL"] : ["INDEX_IN_USE"];
        expect(() => small.sessions.install(randomKeys(r, index, 1)), where).toThrowError(
          expect.objectContaining({ code: expect.toBeOneOf(codes) }),
        );
      } else if (oracle.size === capacity) {
        expect(() => small.sessions.install(randomKeys(r, index, 1)), where).toThrowError(
          expect.objectContaining({ code: "TABLE_FULL" }),
        );
      } else {
        const keys = randomKeys(r, index, r.u32());
        oracle.set(index, { slot: small.sessions.install(keys), keys });
      }
      expect(small.sessions.size, where).toBe(oracle.size);
      if (step % 10 === 0) {
        for (const probe of pool) expect(small.sessions.find(probe), `${where} find(${probe})`).toBe(oracle.get(probe)?.slot);
        // A packet to a live index opens with that session's key; to a dead one it is NoSession.
        const probe = r.pick(pool);
        const live = oracle.get(probe);
        small.batch.reset();
        small.batch.addPacket(buildTransport(live?.keys.recvKey ?? new Uint8Array(32), probe, BigInt(step), new Uint8Array(16)));
        small.batch.open();
        expect(statusName(small.batch.status(0)), `${where} packet to ${probe}`).toBe(live ? "Ok" : "NoSession");
      }
    }
    expect(new Set([...oracle.values()].map((e) => e.slot)).size, "no slot handed out twice").toBe(oracle.size);
  });

  describe("malformed and forged packets", () => {
    it("get their own status and do not disturb the other packets of the batch", () => {
      const r = rng(`transport/malformed/${build}`);
      const keys = randomKeys(r, 0x01020304, 5);
      engine.sessions.install(keys);
      const good = (c: bigint): Uint8Array => buildTransport(keys.recvKey, keys.localIndex, c, r.bytes(r.int(0, 100)));
      const retyped = (type: number[]): Uint8Array => {
        const p = good(1000n + BigInt(r.int(0, 1000)));
        p.set(type, 0);
        return p;
      };
      const cases: { name: string; packet: Uint8Array; status: string }[] = [
        { name: "empty", packet: new Uint8Array(0), status: "TooShort" },
        { name: "1 byte", packet: new Uint8Array([4]), status: "TooShort" },
        { name: "header only", packet: good(3n).subarray(0, 16), status: "TooShort" },
        { name: "31 bytes", packet: good(4n).subarray(0, 31), status: "TooShort" },
        { name: "type 1 (initiation)", packet: retyped([1, 0, 0, 0]), status: "BadType" },
        { name: "type 2 (response)", packet: retyped([2, 0, 0, 0]), status: "BadType" },
        { name: "type 3 (cookie)", packet: retyped([3, 0, 0, 0]), status: "BadType" },
        { name: "type 5", packet: retyped([5, 0, 0, 0]), status: "BadType" },
        { name: "reserved byte 1 set", packet: retyped([4, 1, 0, 0]), status: "BadType" },
        { name: "reserved byte 3 set", packet: retyped([4, 0, 0, 0x80]), status: "BadType" },
        { name: "unknown receiver", packet: buildTransport(keys.recvKey, 0x01020305, 7n, r.bytes(20)), status: "NoSession" },
        { name: "tag of another key", packet: buildTransport(r.bytes(32), keys.localIndex, 8n, r.bytes(20)), status: "AuthFailed" },
        // 20 bytes pad to 32: a 64-byte packet cut to 47 (a random plaintext could be empty, 32 bytes, and uncut).
        { name: "truncated tag", packet: buildTransport(keys.recvKey, keys.localIndex, 9n, r.bytes(20)).subarray(0, 47), status: "AuthFailed" },
      ];
      const goods = Array.from({ length: cases.length + 1 }, (_, i) => ({ counter: BigInt(100 + i), packet: good(BigInt(100 + i)) }));
      // good, bad, good, bad, ..., good
      engine.batch.reset();
      const layout: ({ kind: "good"; i: number } | { kind: "bad"; i: number })[] = [];
      goods.forEach((g, i) => {
        engine.batch.addPacket(g.packet);
        layout.push({ kind: "good", i });
        const c = cases[i];
        if (c) {
          engine.batch.addPacket(c.packet);
          layout.push({ kind: "bad", i });
        }
      });
      expect(engine.batch.open(), r.where("only the good packets open")).toBe(goods.length);
      layout.forEach((entry, j) => {
        if (entry.kind === "good") {
          expect(statusName(engine.batch.status(j)), r.where(`good packet ${entry.i}`)).toBe("Ok");
          const plain = openTransport(keys.recvKey, goods[entry.i]!.packet)!.plaintext;
          expectBytes(engine.batch.plaintext(j), plain, r.where(`good packet ${entry.i} plaintext`));
        } else {
          const c = cases[entry.i]!;
          expect(statusName(engine.batch.status(j)), r.where(c.name)).toBe(c.status);
          expectBytes(engine.batch.packet(j), c.packet, r.where(`${c.name}: bytes left as received`));
        }
      });
    });

    it("a packet over 65535 bytes cannot even be reserved", () => {
      expect(() => engine.batch.reservePacket(MAX_MESSAGE_SIZE + 1)).toThrowError(expect.objectContaining({ code: "BAD_ARGUMENT" }));
      expect(engine.batch.length).toBe(0);
      expect(engine.batch.reservePacket(MAX_MESSAGE_SIZE).length).toBe(MAX_MESSAGE_SIZE);
    });

    it("a flipped bit anywhere in header, ciphertext or tag is never decrypted", () => {
      const r = rng(`transport/bit-flips/${build}`);
      const keys = randomKeys(r, 0x5a5a5a5a, 1);
      engine.sessions.install(keys);
      // Every bit of small packets; a seeded sample of bits (header and tag always included) of big ones.
      let counter = r.bigint(0n, 2n ** 62n);
      for (const size of [0, 1, 16, 100, 200, 1420, MAX_CONTENT_SIZE]) {
        counter += r.bigint(1n, 2n ** 40n);
        const plaintext = r.bytes(size);
        const original = buildTransport(keys.recvKey, keys.localIndex, counter, plaintext);
        const totalBits = original.length * 8;
        const bits = totalBits <= 2048 ? Array.from({ length: totalBits }, (_, b) => b) : [
          ...Array.from({ length: 128 }, (_, b) => b),
          ...Array.from({ length: 128 }, (_, b) => totalBits - 128 + b),
          ...Array.from({ length: 128 }, () => r.int(128, totalBits - 129)),
        ];
        let b = 0;
        while (b < bits.length) {
          engine.batch.reset();
          const flipped: { bit: number; packet: Uint8Array }[] = [];
          while (b < bits.length && engine.batch.hasRoomForPacket(original.length) && flipped.length < engine.batch.maxPackets - 1) {
            const packet = original.slice();
            packet[bits[b]! >>> 3]! ^= 1 << (bits[b]! & 7);
            engine.batch.addPacket(packet);
            flipped.push({ bit: bits[b]!, packet });
            b++;
          }
          expect(engine.batch.open(), r.where(`size=${size}: forged packets opened`)).toBe(0);
          flipped.forEach(({ bit, packet }, i) => {
            const where = r.where(`size=${size} bit=${bit} (byte ${bit >>> 3})`);
            const status = statusName(engine.batch.status(i));
            expect(status, where).not.toBe("Ok");
            if (status === "AuthFailed") expectBytes(engine.batch.packet(i), packet, `${where}: arena bytes changed after AuthFailed`);
          });
        }
        // The forgeries did not move the window: the genuine packet still opens.
        engine.batch.reset();
        engine.batch.addPacket(original);
        expect(engine.batch.open(), r.where(`size=${size}: genuine packet after forgeries`)).toBe(1);
        expectBytes(engine.batch.plaintext(0), pad16(plaintext), r.where(`size=${size}: genuine plaintext`));
      }
    });
    it("fuzz: random datagrams mixed with genuine ones never crash, never open, and never disturb the genuine", () => {
      const r = rng(`transport/fuzz/${build}`);
      const sessions = Array.from({ length: 3 }, () => randomKeys(r));
      for (const keys of sessions) engine.sessions.install(keys);
      const oracles = sessions.map(() => new ReplayOracle());
      const nextCounter = sessions.map(() => 0n);
      const statusOf = (datagram: Uint8Array): string => {
        // What the engine must say of a datagram that is not a genuine packet: the checks in wire order.
        if (datagram.length < 32) return "TooShort";
        const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.length);
        if (view.getUint32(0, true) !== 4) return "BadType";
        const s = sessions.findIndex((k) => k.localIndex === view.getUint32(4, true));
        if (s < 0) return "NoSession";
        const replay = oracles[s]!.check(view.getBigUint64(8, true));
        return { ok: "AuthFailed", replayed: "Replayed", "too-old": "TooOld", exhausted: "CounterExhausted" }[replay];
      };
      for (let round = 0; round < 60; round++) {
        engine.batch.reset();
        const expected: { genuine?: { session: number; counter: bigint; plaintext: Uint8Array }; datagram: Uint8Array }[] = [];
        const count = r.int(1, 40);
        for (let k = 0; k < count; k++) {
          let datagram: Uint8Array;
          let genuine: { session: number; counter: bigint; plaintext: Uint8Array } | undefined;
          const shape = r.int(0, 5);
          if (shape === 0) {
            const session = r.int(0, 2);
            const counter = nextCounter[session]!++;
            const plaintext = r.bytes(r.int(0, 300));
            datagram = buildTransport(sessions[session]!.recvKey, sessions[session]!.localIndex, counter, plaintext);
            genuine = { session, counter, plaintext };
          } else {
            datagram = r.bytes(shape === 1 ? r.int(0, 40) : r.int(0, 1600));
            const view = new DataView(datagram.buffer);
            // Most garbage gets past the cheap checks, so the replay window and the tag are exercised.
            if (datagram.length >= 16 && shape >= 3) view.setUint32(0, 4, true);
            if (datagram.length >= 16 && shape >= 4) view.setUint32(4, r.pick(sessions).localIndex, true);
            if (datagram.length >= 16 && shape === 5) view.setBigUint64(8, r.bool() ? r.u64() : BigInt(r.int(0, 100)), true);
          }
          engine.batch.addPacket(datagram);
          expected.push({ genuine, datagram });
        }
        // The engine walks the batch in order, and a genuine packet moves its window before the next
        // datagram is checked, so the prediction walks it the same way.
        const wants = expected.map((e) => {
          if (!e.genuine) return statusOf(e.datagram);
          oracles[e.genuine.session]!.accept(e.genuine.counter);
          return "Ok";
        });
        engine.batch.open();
        expected.forEach((e, i) => {
          const where = r.where(`round ${round} #${i} (${e.datagram.length} B)`);
          expect(statusName(engine.batch.status(i)), where).toBe(wants[i]);
          if (e.genuine) {
            expectBytes(engine.batch.plaintext(i), pad16(e.genuine.plaintext), `${where}: genuine plaintext`);
          } else if (wants[i] === "AuthFailed") {
            expectBytes(engine.batch.packet(i), e.datagram, `${where}: a forgery is left as it came`);
          }
        });
      }
    });
  });
});
