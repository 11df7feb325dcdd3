// The binding's edge, on both builds: bad input gets an EngineError with a stable code (never a crash,
// a TypeError from deep inside, or a silently wrong answer), the engine keeps working after every
// refusal, and secrets do not stay behind in engine memory.

import { chacha20 as nobleChacha20, chacha20poly1305, hchacha } from "@noble/ciphers/chacha.js";
import { poly1305 as noblePoly1305 } from "@noble/ciphers/_poly1305.js";
import { blake2s as nobleBlake2s } from "@noble/hashes/blake2.js";
import { createCipheriv } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { concat, expectBytes, hex, utf8 } from "../../test/support/bytes.js";
import { BUILDS, engineMemory, expectCode, occurrences, randomKeys } from "../../test/support/engine.js";
import { reportSeedOnFailure, rng } from "../../test/support/prng.js";
import { buildTransport, openTransport, pad16 } from "../../test/support/wireguard.js";
import { Engine, EngineError, MAX_CONTENT_SIZE, TransportStatus, type SessionKeys } from "./index.js";

beforeEach(reportSeedOnFailure);

/** Non-Uint8Array values a caller might pass by mistake. */
const NOT_BYTES: { name: string; value: unknown }[] = [
  { name: "string", value: "0123456789abcdef0123456789abcdef" },
  { name: "number array", value: Array.from({ length: 32 }, (_, i) => i) },
  { name: "null", value: null },
  { name: "undefined", value: undefined },
  { name: "number", value: 42 },
  { name: "ArrayBuffer", value: new ArrayBuffer(32) },
  { name: "Uint16Array", value: new Uint16Array(16) },
  { name: "DataView", value: new DataView(new ArrayBuffer(32)) },
];

/** RFC 8439 §2.8.2, as a quick proof that an engine still computes correctly. */
const HEALTH = {
  key: hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
  nonce: hex("070000004041424344454647"),
  aad: hex("50515253c0c1c2c3c4c5c6c7"),
  tag: hex("1ae10b594f09e26a7e902ecbd0600691"),
  plaintext: utf8(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ),
};

/** A valid one-shot AEAD, BLAKE2s and transport round trip all still give the right answers. */
function expectHealthy(engine: Engine, where: string): void {
  const sealed = engine.chacha20Poly1305Seal(HEALTH.key, HEALTH.nonce, HEALTH.plaintext, HEALTH.aad);
  expectBytes(sealed.subarray(sealed.length - 16), HEALTH.tag, `${where}: AEAD still correct`);
  expectBytes(engine.chacha20Poly1305Open(HEALTH.key, HEALTH.nonce, sealed, HEALTH.aad), HEALTH.plaintext, `${where}: open`);
  expectBytes(engine.blake2s(utf8("abc")), nobleBlake2s(utf8("abc")), `${where}: BLAKE2s still correct`);
}

describe.each(BUILDS)("binding edge (%s build)", (build) => {
  let engine: Engine;
  beforeEach(() => {
    engine = Engine.create({ build });
  });

  describe("one-shot calls refuse bad input with a clear error", () => {
    const key = new Uint8Array(32);
    const nonce = new Uint8Array(12);
    const xnonce = new Uint8Array(24);
    const sixteen = new Uint8Array(16);

    it("wrong key and nonce lengths: BAD_KEY / BAD_NONCE", () => {
      for (const n of [0, 16, 31, 33, 64]) {
        const bad = new Uint8Array(n);
        expectCode(() => engine.chacha20Poly1305Seal(bad, nonce, sixteen), "BAD_KEY", `seal key ${n}`);
        expectCode(() => engine.chacha20Poly1305Open(bad, nonce, sixteen), "BAD_KEY", `open key ${n}`);
        expectCode(() => engine.xchacha20Poly1305Seal(bad, xnonce, sixteen), "BAD_KEY", `xseal key ${n}`);
        expectCode(() => engine.xchacha20Poly1305Open(bad, xnonce, sixteen), "BAD_KEY", `xopen key ${n}`);
        expectCode(() => engine.chacha20(bad, nonce, sixteen), "BAD_KEY", `chacha20 key ${n}`);
        expectCode(() => engine.hchacha20(bad, sixteen), "BAD_KEY", `hchacha20 key ${n}`);
        expectCode(() => engine.poly1305(bad, sixteen), "BAD_KEY", `poly1305 key ${n}`);
        expectHealthy(engine, `after key of ${n} bytes`);
      }
      for (const n of [0, 8, 11, 13, 16, 24]) {
        const bad = new Uint8Array(n);
        expectCode(() => engine.chacha20Poly1305Seal(key, bad, sixteen), "BAD_NONCE", `seal nonce ${n}`);
        expectCode(() => engine.chacha20Poly1305Open(key, bad, sixteen), "BAD_NONCE", `open nonce ${n}`);
        expectCode(() => engine.chacha20(key, bad, sixteen), "BAD_NONCE", `chacha20 nonce ${n}`);
        expectHealthy(engine, `after nonce of ${n} bytes`);
      }
      for (const n of [0, 12, 16, 23, 25, 32]) {
        const bad = new Uint8Array(n);
        expectCode(() => engine.xchacha20Poly1305Seal(key, bad, sixteen), "BAD_NONCE", `xseal nonce ${n}`);
        expectCode(() => engine.xchacha20Poly1305Open(key, bad, sixteen), "BAD_NONCE", `xopen nonce ${n}`);
      }
      for (const n of [0, 12, 15, 17, 24]) {
        expectCode(() => engine.hchacha20(key, new Uint8Array(n)), "BAD_NONCE", `hchacha20 nonce ${n}`);
      }
      expectHealthy(engine, "after bad lengths");
    });

    it("non-Uint8Array keys, nonces, messages and AAD of the AEAD calls: BAD_INPUT", () => {
      for (const { name, value } of NOT_BYTES) {
        const v = value as Uint8Array;
        expectCode(() => engine.chacha20Poly1305Seal(v, nonce, sixteen), "BAD_INPUT", `seal key ${name}`);
        expectCode(() => engine.chacha20Poly1305Seal(key, v, sixteen), "BAD_INPUT", `seal nonce ${name}`);
        expectCode(() => engine.chacha20Poly1305Open(key, nonce, v), "BAD_INPUT", `open ciphertext ${name}`);
        expectCode(() => engine.chacha20Poly1305Seal(key, nonce, v), "BAD_INPUT", `seal plaintext ${name}`);
        expectCode(() => engine.xchacha20Poly1305Seal(key, xnonce, v), "BAD_INPUT", `xseal plaintext ${name}`);
        expectCode(() => engine.hchacha20(v, sixteen), "BAD_INPUT", `hchacha20 key ${name}`);
        expectCode(() => engine.hchacha20(key, v), "BAD_INPUT", `hchacha20 nonce ${name}`);
        if (value !== undefined) {
          // AAD is optional: undefined means none. Anything else that is not bytes is refused.
          expectCode(() => engine.chacha20Poly1305Seal(key, nonce, sixteen, v), "BAD_INPUT", `seal aad ${name}`);
          expectCode(() => engine.chacha20Poly1305Open(key, nonce, sixteen, v), "BAD_INPUT", `open aad ${name}`);
          expectCode(() => engine.xchacha20Poly1305Seal(key, xnonce, sixteen, v), "BAD_INPUT", `xseal aad ${name}`);
        }
        expectHealthy(engine, `after ${name}`);
      }
    });

    // TypedArray.set would copy a string in as zeros and return a keystream or MAC of the wrong
    // input without complaint, so the binding must refuse it first.
    it("non-Uint8Array data of chacha20() and poly1305(): BAD_INPUT", () => {
      for (const { name, value } of NOT_BYTES) {
        expectCode(() => engine.chacha20(key, nonce, value as Uint8Array), "BAD_INPUT", `chacha20 data ${name}`);
        expectCode(() => engine.poly1305(key, value as Uint8Array), "BAD_INPUT", `poly1305 message ${name}`);
      }
    });

    it("sealed text shorter than a tag: BAD_LENGTH", () => {
      for (const n of [0, 1, 8, 15]) {
        expectCode(() => engine.chacha20Poly1305Open(key, nonce, new Uint8Array(n)), "BAD_LENGTH", `open of ${n} bytes`);
        expectCode(() => engine.xchacha20Poly1305Open(key, xnonce, new Uint8Array(n)), "BAD_LENGTH", `xopen of ${n} bytes`);
      }
      expectHealthy(engine, "after short ciphertexts");
    });

    it("chacha20 that would run past block 2^32 - 1 (wrapping to the Poly1305 key block): BAD_ARGUMENT", () => {
      const r = rng(`binding/counter-wrap/${build}`);
      const k = r.bytes(32);
      const n = r.bytes(12);
      // noble refuses the last block outright; OpenSSL's chacha20 takes it (IV = LE32 counter ‖ nonce).
      const iv = concat(hex("ffffffff"), n);
      const last = createCipheriv("chacha20", k, iv).update(sixteen);
      expectBytes(engine.chacha20(k, n, sixteen, 2 ** 32 - 1), new Uint8Array(last), r.where("last block"));
      expectCode(() => engine.chacha20(k, n, new Uint8Array(65), 2 ** 32 - 1), "BAD_ARGUMENT", "65 bytes from the last block");
      expectCode(() => engine.chacha20(k, n, new Uint8Array(129), 2 ** 32 - 2), "BAD_ARGUMENT", "129 bytes from the next to last block");
      expectHealthy(engine, "after a refused counter");
    });

    it("chacha20 counter outside 0..2^32-1: BAD_ARGUMENT", () => {
      for (const counter of [-1, 2 ** 32, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "1" as unknown as number]) {
        expectCode(() => engine.chacha20(key, nonce, sixteen, counter), "BAD_ARGUMENT", `counter ${String(counter)}`);
      }
      expectHealthy(engine, "after bad counters");
    });

    it("inputs over oneShotLimit: TOO_LARGE; at the limit: accepted and correct", () => {
      const r = rng(`binding/one-shot-limit/${build}`);
      const limit = engine.oneShotLimit;
      expect(limit, "the one-shot limit holds the largest WireGuard message").toBeGreaterThanOrEqual(65535);
      const k = r.bytes(32);
      const n = r.bytes(12);
      const atLimit = r.bytes(limit);
      const over = new Uint8Array(limit + 1);
      expectBytes(engine.chacha20Poly1305Seal(k, n, atLimit), chacha20poly1305(k, n).encrypt(atLimit), r.where("seal at the limit"));
      expectCode(() => engine.chacha20Poly1305Seal(k, n, over), "TOO_LARGE", "seal over the limit");
      expectCode(() => engine.chacha20Poly1305Seal(k, n, atLimit, new Uint8Array(16)), "TOO_LARGE", "seal: AAD pushes it over");
      expectCode(() => engine.chacha20Poly1305Open(k, n, new Uint8Array(limit + 16 + 1)), "TOO_LARGE", "open over the limit");
      expectCode(() => engine.xchacha20Poly1305Seal(k, new Uint8Array(24), over), "TOO_LARGE", "xseal over the limit");
      expectBytes(engine.chacha20(k, n, atLimit), nobleChacha20(k, n, atLimit), r.where("chacha20 at the limit"));
      expectCode(() => engine.chacha20(k, n, over), "TOO_LARGE", "chacha20 over the limit");
      expectBytes(engine.poly1305(k, atLimit), noblePoly1305(atLimit, k), r.where("poly1305 at the limit"));
      expectCode(() => engine.poly1305(k, over), "TOO_LARGE", "poly1305 over the limit");
      expectHealthy(engine, "after oversized inputs");
    });

    // The limit counts the message without its tag on both sides, so the largest sealed text opens.
    it("whatever seal() accepts, open() accepts", () => {
      const r = rng(`binding/seal-open-symmetry/${build}`);
      const k = r.bytes(32);
      const n = r.bytes(12);
      const plaintext = r.bytes(engine.oneShotLimit);
      const sealed = engine.chacha20Poly1305Seal(k, n, plaintext);
      expectBytes(engine.chacha20Poly1305Open(k, n, sealed), plaintext, r.where("open of a sealed text at the limit"));
    });

    // The limit is AAD + message to the byte: the AAD is not rounded up in scratch.
    it("AAD + message of exactly oneShotLimit bytes is accepted", () => {
      const r = rng(`binding/aad-limit/${build}`);
      const k = r.bytes(32);
      const n = r.bytes(12);
      const aad = r.bytes(1);
      const plaintext = r.bytes(engine.oneShotLimit - aad.length);
      expectBytes(engine.chacha20Poly1305Seal(k, n, plaintext, aad), chacha20poly1305(k, n, aad).encrypt(plaintext), r.where());
    });

    it("blake2s: outLen outside 1..32, keys over 32 bytes or not bytes, parts not bytes", () => {
      for (const outLen of [0, 33, -1, 1.5, Number.NaN, 1000]) {
        expectCode(() => engine.blake2s(sixteen, { outLen }), "BAD_ARGUMENT", `outLen ${outLen}`);
      }
      for (const n of [33, 64]) expectCode(() => engine.blake2s(sixteen, { key: new Uint8Array(n) }), "BAD_KEY", `key of ${n} bytes`);
      for (const { name, value } of NOT_BYTES) {
        if (value === undefined || value === null) continue; // no key: unkeyed
        expectCode(() => engine.blake2s(sixteen, { key: value as Uint8Array }), "BAD_KEY", `key ${name}`);
        expectCode(() => engine.blake2s([sixteen, value as Uint8Array]), "BAD_INPUT", `part ${name}`);
      }
      expectCode(() => engine.blake2s("abc" as unknown as Uint8Array), "BAD_INPUT", "a string instead of parts");
      expectHealthy(engine, "after bad BLAKE2s arguments");
      // Boundaries that are valid.
      expectBytes(engine.blake2s(sixteen, { outLen: 1 }), nobleBlake2s(sixteen, { dkLen: 1 }), "outLen 1");
      const key32 = new Uint8Array(32).fill(7);
      expectBytes(engine.blake2s(sixteen, { key: key32 }), nobleBlake2s(sixteen, { key: key32 }), "key of 32 bytes");
    });

    // Parts are checked before the key reaches the hash state, so nothing non-iterable gets that far.
    it("blake2s() of a non-iterable input: BAD_INPUT", () => {
      for (const value of [42, null, undefined, {}]) {
        expectCode(() => engine.blake2s(value as unknown as Uint8Array), "BAD_INPUT", `blake2s(${String(value)})`);
      }
    });

    it("Engine.create refuses nonsense options", () => {
      for (const options of [{ maxSessions: 0 }, { maxSessions: 1.5 }, { arenaBytes: 0 }, { arenaBytes: -1 }, { maxBatch: 0 }, { maxBatch: 2 ** 17 }]) {
        expectCode(() => Engine.create({ build, ...options }), "BAD_ARGUMENT", JSON.stringify(options));
      }
    });
  });

  describe("sessions and the batch refuse bad input with a clear error", () => {
    it("install: bad keys and indices, without using up a slot", () => {
      const r = rng(`binding/install/${build}`);
      const small = Engine.create({ build, maxSessions: 2 });
      const good = randomKeys(r, 1, 2);
      const cases: { name: string; keys: SessionKeys; code: string }[] = [
        { name: "send key of 31 bytes", keys: { ...good, sendKey: new Uint8Array(31) }, code: "BAD_KEY" },
        { name: "recv key of 33 bytes", keys: { ...good, recvKey: new Uint8Array(33) }, code: "BAD_KEY" },
        { name: "send key a string", keys: { ...good, sendKey: "k" as unknown as Uint8Array }, code: "BAD_INPUT" },
        { name: "localIndex -1", keys: { ...good, localIndex: -1 }, code: "BAD_ARGUMENT" },
        { name: "localIndex 2^32", keys: { ...good, localIndex: 2 ** 32 }, code: "BAD_ARGUMENT" },
        { name: "remoteIndex 1.5", keys: { ...good, remoteIndex: 1.5 }, code: "BAD_ARGUMENT" },
      ];
      for (const c of cases) {
        expectCode(() => small.sessions.install(c.keys), c.code, c.name);
        expect(small.sessions.size, c.name).toBe(0);
      }
      // Both slots are still free.
      small.sessions.install(good);
      small.sessions.install(randomKeys(r, 3, 4));
      expect(small.sessions.size).toBe(2);
    });

    it("bad slot numbers: BAD_ARGUMENT; an empty slot: NO_SESSION", () => {
      const r = rng(`binding/slots/${build}`);
      const small = Engine.create({ build, maxSessions: 4 });
      const slot = small.sessions.install(randomKeys(r));
      const empty = [0, 1, 2, 3].find((s) => s !== slot)!;
      for (const bad of [-1, 4, 1.5, Number.NaN, 2 ** 32]) {
        expectCode(() => small.sessions.drop(bad), "BAD_ARGUMENT", `drop(${bad})`);
        expectCode(() => small.sessions.sendCounter(bad), "BAD_ARGUMENT", `sendCounter(${bad})`);
        expectCode(() => small.batch.reservePlaintext(bad, 10), "BAD_ARGUMENT", `reservePlaintext(${bad})`);
      }
      for (const bad of [-1, 1.5, Number.NaN, 2 ** 32]) expectCode(() => small.sessions.find(bad), "BAD_ARGUMENT", `find(${bad})`);
      expectCode(() => small.sessions.drop(empty), "NO_SESSION", "drop of an empty slot");
      expectCode(() => small.sessions.sendCounter(empty), "NO_SESSION", "sendCounter of an empty slot");
      expect(small.batch.length, "nothing was reserved").toBe(0);
      expect(small.sessions.size).toBe(1);
      expect(small.sessions.sendCounter(slot)).toBe(0n);
    });

    it("plaintext lengths outside 0..MAX_CONTENT_SIZE and packet lengths outside 0..65535: BAD_ARGUMENT", () => {
      const r = rng(`binding/lengths/${build}`);
      const slot = engine.sessions.install(randomKeys(r));
      for (const len of [MAX_CONTENT_SIZE + 1, 65535, -1, 1.5]) {
        expectCode(() => engine.batch.reservePlaintext(slot, len), "BAD_ARGUMENT", `reservePlaintext length ${len}`);
      }
      expectCode(() => engine.batch.addPlaintext(slot, new Uint8Array(MAX_CONTENT_SIZE + 1)), "BAD_ARGUMENT", "addPlaintext too long");
      for (const len of [65536, -1, 0.5]) expectCode(() => engine.batch.reservePacket(len), "BAD_ARGUMENT", `reservePacket ${len}`);
      for (const { name, value } of NOT_BYTES) {
        expectCode(() => engine.batch.addPlaintext(slot, value as Uint8Array), "BAD_INPUT", `addPlaintext ${name}`);
        expectCode(() => engine.batch.addPacket(value as Uint8Array), "BAD_INPUT", `addPacket ${name}`);
      }
      expect(engine.batch.length, "refused packets were not added").toBe(0);
      // The limit itself is fine and seals to a 65520-byte packet.
      engine.batch.reservePlaintext(slot, MAX_CONTENT_SIZE);
      expect(engine.batch.seal()).toBe(1);
      expect(engine.batch.packet(0).length).toBe(MAX_CONTENT_SIZE + 32);
      expectHealthy(engine, "after bad lengths");
    });

    it("BATCH_FULL past maxPackets; the packets already in the batch still seal", () => {
      const r = rng(`binding/batch-full/${build}`);
      const small = Engine.create({ build, maxBatch: 5 });
      const keys = randomKeys(r);
      const slot = small.sessions.install(keys);
      expect(small.batch.maxPackets).toBe(5);
      const plaintexts = Array.from({ length: 5 }, () => r.bytes(r.int(0, 50)));
      for (const p of plaintexts) small.batch.addPlaintext(slot, p);
      expect(small.batch.hasRoomForPlaintext(1)).toBe(false);
      expect(small.batch.hasRoomForPacket(32)).toBe(false);
      expectCode(() => small.batch.addPlaintext(slot, r.bytes(10)), "BATCH_FULL", "6th plaintext");
      expectCode(() => small.batch.reservePlaintext(slot, 32), "BATCH_FULL", "6th plaintext view");
      expect(small.batch.length).toBe(5);
      expect(small.batch.seal()).toBe(5);
      plaintexts.forEach((p, i) => expectBytes(small.batch.packet(i), buildTransport(keys.sendKey, keys.remoteIndex, BigInt(i), p), r.where(`packet ${i}`)));
      small.batch.reset();
      expect(small.batch.hasRoomForPlaintext(1)).toBe(true);
    });

    it("ARENA_FULL past the arena; hasRoomFor*() predicts exactly what fits", () => {
      const r = rng(`binding/arena-full/${build}`);
      const small = Engine.create({ build, arenaBytes: 4096, maxBatch: 1000 });
      const slot = small.sessions.install(randomKeys(r));
      expect(small.batch.arenaBytes).toBe(4096);
      for (let round = 0; round < 20; round++) {
        small.batch.reset();
        // One batch holds one kind: plaintexts to seal or packets to open.
        const asPacket = r.bool();
        for (let i = 0; i < 200; i++) {
          const len = r.int(0, 1500);
          const room = asPacket ? small.batch.hasRoomForPacket(len) : small.batch.hasRoomForPlaintext(len);
          const before = small.batch.length;
          const where = r.where(`round ${round} #${i} ${asPacket ? "packet" : "plaintext"} of ${len}`);
          if (room) {
            if (asPacket) small.batch.reservePacket(len);
            else small.batch.reservePlaintext(slot, len);
            expect(small.batch.length, where).toBe(before + 1);
          } else {
            expectCode(() => (asPacket ? small.batch.reservePacket(len) : small.batch.reservePlaintext(slot, len)), "ARENA_FULL", where);
            expect(small.batch.length, where).toBe(before);
          }
        }
      }
      small.batch.reset();
      expectCode(() => small.batch.reservePlaintext(slot, 4096 - 31), "ARENA_FULL", "one plaintext bigger than the arena");
      expect(small.batch.reservePlaintext(slot, 4096 - 32).length, "the largest plaintext that fits").toBe(4064);
    });

    it("packet index out of range: BAD_ARGUMENT", () => {
      const r = rng(`binding/index/${build}`);
      const slot = engine.sessions.install(randomKeys(r));
      for (const bad of [0, -1]) {
        expectCode(() => engine.batch.status(bad), "BAD_ARGUMENT", `status(${bad}) of an empty batch`);
      }
      engine.batch.addPlaintext(slot, r.bytes(5));
      engine.batch.addPlaintext(slot, r.bytes(5));
      engine.batch.seal();
      for (const bad of [2, -1, 1.5, Number.NaN, 1000]) {
        expectCode(() => engine.batch.status(bad), "BAD_ARGUMENT", `status(${bad})`);
        expectCode(() => engine.batch.session(bad), "BAD_ARGUMENT", `session(${bad})`);
        expectCode(() => engine.batch.packet(bad), "BAD_ARGUMENT", `packet(${bad})`);
        expectCode(() => engine.batch.plaintext(bad), "BAD_ARGUMENT", `plaintext(${bad})`);
      }
      expect(engine.batch.status(1)).toBe(TransportStatus.Ok);
      engine.batch.reset();
      expectCode(() => engine.batch.status(0), "BAD_ARGUMENT", "status(0) after reset");
    });

    // A sealed descriptor's length is the whole packet: sealing it again would encrypt past its region
    // over the next packet and spend counters, so the batch must refuse or leave everything intact.
    it("seal() twice without reset() either throws or corrupts nothing", () => {
      const r = rng(`binding/double-seal/${build}`);
      const keys = randomKeys(r);
      const slot = engine.sessions.install(keys);
      const first = r.bytes(16);
      const second = r.bytes(16);
      engine.batch.addPlaintext(slot, first);
      engine.batch.seal();
      const sealedFirst = engine.batch.packet(0).slice();
      try {
        engine.batch.addPlaintext(slot, second);
        engine.batch.seal();
      } catch (error) {
        expect(error).toBeInstanceOf(EngineError);
        expectBytes(engine.batch.packet(0), sealedFirst, r.where("the refused call left the sealed packet alone"));
        expect(engine.sessions.sendCounter(slot), r.where("no counter spent")).toBe(1n);
        return;
      }
      expectBytes(engine.batch.packet(0), sealedFirst, r.where("the first packet is left as sealed"));
      const opened = openTransport(keys.sendKey, engine.batch.packet(1));
      expect(opened, r.where("the second packet authenticates")).not.toBeNull();
      expectBytes(opened!.plaintext, pad16(second), r.where("the second packet carries its own plaintext"));
    });
  });

  describe("secrets do not stay in engine memory", () => {
    // These tests reach into the engine's memory (test/support/engine.ts) because "the key is gone"
    // cannot be observed through the API: the only way to show a wipe is to search the bytes.

    it("one-shot AEAD, ChaCha20, HChaCha20 and Poly1305 keys (and derived keys) are wiped", () => {
      const r = rng(`binding/wipe-one-shot/${build}`);
      const mem = engineMemory(engine);
      const absent = (secret: Uint8Array, what: string): void => {
        expect(occurrences(mem, secret).length, r.where(`${what} still in engine memory`)).toBe(0);
      };
      for (const size of [0, 100, 1000]) {
        const key = r.bytes(32);
        const nonce = r.bytes(12);
        const plaintext = r.bytes(size);
        const sealed = engine.chacha20Poly1305Seal(key, nonce, plaintext, r.bytes(20));
        absent(key, `AEAD key after seal of ${size}`);
        absent(nobleChacha20(key, nonce, new Uint8Array(32)), `Poly1305 one-time key after seal of ${size}`);
        expect(engine.chacha20Poly1305Open(key, nonce, sealed, r.bytes(20))).toBeNull();
        absent(key, `AEAD key after a failed open of ${size}`);

        const xnonce = r.bytes(24);
        const subkey = new Uint32Array(8);
        hchacha(new Uint32Array(utf8("expand 32-byte k").buffer), new Uint32Array(key.slice().buffer), new Uint32Array(xnonce.slice(0, 16).buffer), subkey);
        const xsealed = engine.xchacha20Poly1305Seal(key, xnonce, plaintext);
        absent(key, `XChaCha key after seal of ${size}`);
        absent(new Uint8Array(subkey.buffer), `XChaCha subkey after seal of ${size}`);
        expectBytes(engine.xchacha20Poly1305Open(key, xnonce, xsealed), plaintext, r.where("xopen"));
        absent(key, `XChaCha key after open of ${size}`);
        absent(new Uint8Array(subkey.buffer), `XChaCha subkey after open of ${size}`);

        engine.chacha20(key, nonce, plaintext, 7);
        absent(key, "ChaCha20 key");
        engine.hchacha20(key, r.bytes(16));
        absent(key, "HChaCha20 key");
        engine.poly1305(key, plaintext);
        absent(key, "Poly1305 key");
        engine.blake2s(plaintext, { key });
        absent(key, "BLAKE2s key");
      }
    });

    it("session keys are in memory while installed and gone after drop()", () => {
      const r = rng(`binding/wipe-sessions/${build}`);
      const mem = engineMemory(engine);
      const keys = randomKeys(r, 5, 6);
      const slot = engine.sessions.install(keys);
      // Exactly one copy each (the slot): install wiped its staging copy in scratch.
      expect(occurrences(mem, keys.sendKey).length, r.where("send key copies while installed")).toBe(1);
      expect(occurrences(mem, keys.recvKey).length, r.where("recv key copies while installed")).toBe(1);
      engine.batch.addPlaintext(slot, r.bytes(300));
      engine.batch.seal();
      engine.batch.reset();
      engine.batch.addPacket(buildTransport(keys.recvKey, 5, 0n, r.bytes(300)));
      expect(engine.batch.open()).toBe(1);
      expect(occurrences(mem, nobleChacha20(keys.sendKey, new Uint8Array(12), new Uint8Array(32))).length, "seal's Poly1305 key").toBe(0);
      expect(occurrences(mem, nobleChacha20(keys.recvKey, new Uint8Array(12), new Uint8Array(32))).length, "open's Poly1305 key").toBe(0);
      engine.sessions.drop(slot);
      expect(occurrences(mem, keys.sendKey).length, r.where("send key after drop")).toBe(0);
      expect(occurrences(mem, keys.recvKey).length, r.where("recv key after drop")).toBe(0);
      expectHealthy(engine, "after drop");
    });

    it("a batch is sealed or opened once, and holds plaintexts or packets, not both: BATCH_DONE, BATCH_MIXED", () => {
      const r = rng(`binding/batch-phases/${build}`);
      const slot = engine.sessions.install(randomKeys(r));
      engine.batch.reset();
      engine.batch.addPlaintext(slot, r.bytes(20));
      expectCode(() => engine.batch.addPacket(r.bytes(40)), "BATCH_MIXED", "packet into a plaintext batch");
      expectCode(() => engine.batch.open(), "BATCH_MIXED", "open of a plaintext batch");
      expect(engine.batch.seal()).toBe(1);
      expectCode(() => engine.batch.seal(), "BATCH_DONE", "second seal");
      expectCode(() => engine.batch.addPlaintext(slot, r.bytes(20)), "BATCH_DONE", "adding after seal");
      expect(engine.sessions.sendCounter(slot), "refused calls spend no counter").toBe(1n);
      engine.batch.reset();
      engine.batch.addPacket(r.bytes(40));
      expectCode(() => engine.batch.reservePlaintext(slot, 4), "BATCH_MIXED", "plaintext into a packet batch");
      expectCode(() => engine.batch.seal(), "BATCH_MIXED", "seal of a packet batch");
      expect(engine.batch.open()).toBe(0);
      expectCode(() => engine.batch.open(), "BATCH_DONE", "second open");
      engine.batch.reset();
      engine.sessions.drop(slot);
      expectHealthy(engine, "after refused batch calls");
    });

    // HMAC-BLAKE2s (the WireGuard KDF) hashes key XOR ipad as input, so staged input is secret too.
    it("blake2s() input does not stay in engine memory", () => {
      const r = rng(`binding/wipe-blake2s-input/${build}`);
      const secret = r.bytes(64);
      engine.blake2s(secret);
      expect(occurrences(engineMemory(engine), secret).length, r.where("hash input left in scratch")).toBe(0);
    });

    // The key block sits in the hash state from init on; a refused part must not strand it there.
    it("blake2s() refusing a part does not leave the key in engine memory", () => {
      const r = rng(`binding/wipe-blake2s-error/${build}`);
      const key = r.bytes(32);
      expectCode(() => engine.blake2s([new Uint8Array(0), "x" as unknown as Uint8Array], { key }), "BAD_INPUT", "bad part");
      expect(occurrences(engineMemory(engine), key).length, r.where("key left in the BLAKE2s state")).toBe(0);
    });
  });

  it("concat helper sanity (guards the byte helpers the other tests rely on)", () => {
    expectBytes(concat(hex("0102"), new Uint8Array(0), hex("03")), hex("010203"), "concat");
    expect(() => expectBytes(hex("0102"), hex("0103"), "must differ")).toThrow(/first difference at byte 1/);
  });
});
