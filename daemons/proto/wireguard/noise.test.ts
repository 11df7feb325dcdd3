// The handshake and its DoS defence in virtual time, with no sockets: ours against ours, plus every
// way a message can be refused. test/interop/wireguard-go.test.ts proves the same code against
// wireguard-go; this file covers what a real peer will not show on demand.

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { beforeEach, describe, expect, it } from "vitest";
import { expectBytes, hex } from "../../../test/support/bytes.js";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { loadVectors } from "../../../test/support/vectors.js";
import {
  COOKIE_REFRESH_TIME, HANDSHAKE_INITIATION_RATE, INITIATION_OFFSET_MAC1, INITIATION_OFFSET_MAC2,
  MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE_SIZE,
} from "./constants.js";
import { CookieChecker, CookieJar } from "./cookie.js";
import { clampPrivateKey, dh, hmacBlake2s, kdf } from "./crypto.js";
import { consumeInitiation, createResponse, HandshakePeer, StaticIdentity, type TransportKeys } from "./noise.js";
import { tai64n, tai64nAfter } from "./tai64n.js";

beforeEach(reportSeedOnFailure);

const SECOND = 1_000_000_000n;
const T0 = 1_764_000_000n * SECOND; // a wall-clock time in 2025, in Unix nanoseconds

interface Side {
  identity: StaticIdentity;
  peer: HandshakePeer;
  jar: CookieJar;
  checker: CookieChecker;
}

function pair(r: Rng, psk?: Uint8Array): { a: Side; b: Side } {
  const ia = new StaticIdentity(clampPrivateKey(r.bytes(32)));
  const ib = new StaticIdentity(clampPrivateKey(r.bytes(32)));
  const side = (self: StaticIdentity, other: StaticIdentity): Side => ({
    identity: self,
    peer: new HandshakePeer(self, other.publicKey, psk),
    jar: new CookieJar(other.publicKey),
    checker: new CookieChecker(self.publicKey, (n) => r.bytes(n)),
  });
  return { a: side(ia, ib), b: side(ib, ia) };
}

const finder = (side: Side) => (pub: Uint8Array) => (Buffer.compare(pub, side.peer.remoteStatic) === 0 ? side.peer : undefined);

/** A full handshake from a to b at wall time wall and monotonic time now. */
function handshake(r: Rng, a: Side, b: Side, wall: bigint, now: number): { ka: TransportKeys; kb: TransportKeys } {
  const init = a.peer.createInitiation(r.u32(), clampPrivateKey(r.bytes(32)), tai64n(wall));
  if (!init.ok) throw new Error(init.reason);
  a.jar.writeMacs(init.value, now);
  expect(b.checker.check(init.value, hex("0a000001ca6c"), false, now)).toBe("ok");
  const consumed = consumeInitiation(b.identity, init.value, finder(b), now);
  if (!consumed.ok) throw new Error(`consumeInitiation: ${consumed.reason}`);
  const response = createResponse(consumed.value, r.u32(), clampPrivateKey(r.bytes(32)));
  if (!response.ok) throw new Error(response.reason);
  b.jar.writeMacs(response.value.message, now);
  expect(a.checker.check(response.value.message, hex("0a000002ca6c"), false, now)).toBe("ok");
  const done = a.peer.consumeResponse(response.value.message);
  if (!done.ok) throw new Error(`consumeResponse: ${done.reason}`);
  return { ka: done.value, kb: response.value.keys };
}

describe("WireGuard handshake (Noise_IKpsk2)", () => {
  it("ours against ours: both sides derive mirrored transport keys and indices, with and without a PSK", () => {
    for (const psk of [undefined, rng("noise/psk").bytes(32)]) {
      const r = rng(`noise/pair/${psk === undefined ? "no-psk" : "psk"}`);
      const { a, b } = pair(r, psk);
      const { ka, kb } = handshake(r, a, b, T0, 1000);
      expectBytes(ka.sendKey, kb.recvKey, r.where("initiator send = responder receive"));
      expectBytes(ka.recvKey, kb.sendKey, r.where("initiator receive = responder send"));
      expect(Buffer.compare(ka.sendKey, ka.recvKey)).not.toBe(0);
      expect(ka.remoteIndex).toBe(kb.localIndex);
      expect(kb.remoteIndex).toBe(ka.localIndex);
      expect(ka.initiator).toBe(true);
      expect(kb.initiator).toBe(false);
      // The keys work as transport keys: a message sealed with one side's send key opens with the other's.
      const nonce = new Uint8Array(12);
      const sealed = chacha20poly1305(ka.sendKey, nonce).encrypt(hex("45000054"));
      expectBytes(chacha20poly1305(kb.recvKey, nonce).decrypt(sealed), hex("45000054"), "transport round trip");
      expect(a.peer.awaitingResponse).toBe(false);
    }
  });

  it("messages have the sizes of the whitepaper, and a PSK mismatch fails the response", () => {
    const r = rng("noise/psk-mismatch");
    const ia = new StaticIdentity(clampPrivateKey(r.bytes(32)));
    const ib = new StaticIdentity(clampPrivateKey(r.bytes(32)));
    const pa = new HandshakePeer(ia, ib.publicKey, r.bytes(32));
    const pb = new HandshakePeer(ib, ia.publicKey, r.bytes(32));
    const init = pa.createInitiation(7, clampPrivateKey(r.bytes(32)), tai64n(T0));
    expect(init.ok && init.value.length).toBe(MESSAGE_INITIATION_SIZE);
    const consumed = consumeInitiation(ib, (init as { value: Uint8Array }).value, () => pb, 0);
    expect(consumed.ok, "the PSK enters only at the response").toBe(true);
    const response = createResponse((consumed as { value: Parameters<typeof createResponse>[0] }).value, 9, clampPrivateKey(r.bytes(32)));
    expect(response.ok && response.value.message.length).toBe(MESSAGE_RESPONSE_SIZE);
    const done = pa.consumeResponse((response as { value: { message: Uint8Array } }).value.message);
    expect(done).toEqual({ ok: false, reason: "decrypt-failed" });
  });

  it("a replayed initiation (same or older timestamp) is refused and does not start a session", () => {
    const r = rng("noise/replay");
    const { a, b } = pair(r);
    const first = a.peer.createInitiation(1, clampPrivateKey(r.bytes(32)), tai64n(T0 + 10n * SECOND));
    if (!first.ok) throw new Error(first.reason);
    expect(consumeInitiation(b.identity, first.value, finder(b), 0).ok).toBe(true);
    expect(consumeInitiation(b.identity, first.value, finder(b), 1000)).toEqual({ ok: false, reason: "replayed-timestamp" });
    const older = a.peer.createInitiation(2, clampPrivateKey(r.bytes(32)), tai64n(T0));
    if (!older.ok) throw new Error(older.reason);
    expect(consumeInitiation(b.identity, older.value, finder(b), 2000)).toEqual({ ok: false, reason: "replayed-timestamp" });
    const newer = a.peer.createInitiation(3, clampPrivateKey(r.bytes(32)), tai64n(T0 + 11n * SECOND));
    if (!newer.ok) throw new Error(newer.reason);
    expect(consumeInitiation(b.identity, newer.value, finder(b), 3000).ok).toBe(true);
  });

  it("initiations faster than the rate limit are refused", () => {
    const r = rng("noise/rate");
    const { a, b } = pair(r);
    const at = (ms: number, wall: bigint) => {
      const m = a.peer.createInitiation(r.u32(), clampPrivateKey(r.bytes(32)), tai64n(wall));
      if (!m.ok) throw new Error(m.reason);
      return consumeInitiation(b.identity, m.value, finder(b), ms);
    };
    expect(at(100, T0).ok).toBe(true);
    expect(at(100 + HANDSHAKE_INITIATION_RATE - 1, T0 + SECOND)).toEqual({ ok: false, reason: "rate-limited" });
    expect(at(100 + HANDSHAKE_INITIATION_RATE, T0 + 2n * SECOND).ok).toBe(true);
  });

  it("a response must answer our pending initiation: wrong receiver, none pending, tampered", () => {
    const r = rng("noise/response-checks");
    const { a, b } = pair(r);
    const init = a.peer.createInitiation(0x11111111, clampPrivateKey(r.bytes(32)), tai64n(T0));
    if (!init.ok) throw new Error(init.reason);
    const consumed = consumeInitiation(b.identity, init.value, finder(b), 0);
    if (!consumed.ok) throw new Error(consumed.reason);
    const response = createResponse(consumed.value, 0x22222222, clampPrivateKey(r.bytes(32)));
    if (!response.ok) throw new Error(response.reason);
    const msg = response.value.message;
    const wrongReceiver = msg.slice();
    wrongReceiver[8]! ^= 1;
    expect(a.peer.consumeResponse(wrongReceiver)).toEqual({ ok: false, reason: "wrong-receiver" });
    const tampered = msg.slice();
    tampered[50]! ^= 0x80;
    expect(a.peer.consumeResponse(tampered)).toEqual({ ok: false, reason: "decrypt-failed" });
    expect(a.peer.awaitingResponse, "a forged response does not end the pending handshake").toBe(true);
    expect(a.peer.consumeResponse(msg).ok).toBe(true);
    expect(a.peer.consumeResponse(msg)).toEqual({ ok: false, reason: "no-pending-handshake" });
  });

  it("fuzz: random and bit-flipped messages never throw and never yield keys", () => {
    const r = rng("noise/fuzz");
    const { a, b } = pair(r);
    const init = a.peer.createInitiation(5, clampPrivateKey(r.bytes(32)), tai64n(T0));
    if (!init.ok) throw new Error(init.reason);
    a.jar.writeMacs(init.value, 0);
    // A receiver checks mac1 before anything else: it alone covers the sender index, which the AEAD
    // does not; every other field fails the AEAD too.
    const receive = (msg: Uint8Array, now: number): boolean =>
      b.checker.check(msg, hex("0a000001ca6c"), false, now) === "ok" && consumeInitiation(b.identity, msg, finder(b), now).ok;
    for (let i = 0; i < 300; i++) {
      const flipped = init.value.slice();
      const bit = r.int(0, INITIATION_OFFSET_MAC2 * 8 - 1);
      flipped[bit >>> 3]! ^= 1 << (bit & 7);
      expect(receive(flipped, i), r.where(`initiation with bit ${bit} flipped`)).toBe(false);
      const aeadCovered = bit < 32 || (bit >= 64 && bit < INITIATION_OFFSET_MAC1 * 8);
      if (aeadCovered) expect(consumeInitiation(b.identity, flipped, finder(b), i).ok, r.where(`AEAD-covered bit ${bit}`)).toBe(false);
      const junk = r.bytes(r.pick([0, 1, 92, 147, 148, 149, 500]));
      if (junk.length > 0) junk[0] = r.pick([1, 2, 3, 4, 0xff]);
      expect(consumeInitiation(b.identity, junk, finder(b), i).ok, r.where("junk initiation")).toBe(false);
      expect(a.peer.consumeResponse(junk).ok, r.where("junk response")).toBe(false);
      expect(b.checker.check(junk, hex("0a000001ca6c"), r.bool(), i), r.where("junk macs")).not.toBe("ok");
    }
    // The genuine message still works after all that.
    expect(receive(init.value, 10_000)).toBe(true);
  });

  it("low-order public keys (Wycheproof x25519 ZeroSharedSecret) are refused, never keyed", (ctx) => {
    const vectors = loadVectors<{ testGroups: { tests: { public: string; private: string; flags: string[] }[] }[] }>(
      ctx,
      "wycheproof/x25519_test.json",
    );
    const zero = vectors.testGroups.flatMap((g) => g.tests).filter((t) => t.flags.includes("ZeroSharedSecret"));
    expect(zero.length).toBeGreaterThan(0);
    const identity = new StaticIdentity(clampPrivateKey(rng("noise/low-order").bytes(32)));
    for (const t of zero) {
      const pub = hex(t.public);
      expect(dh(hex(t.private), pub), `vector ${t.public}`).toBeNull();
      expect(() => new HandshakePeer(identity, pub), `static ${t.public}`).toThrow(/low order/);
    }
    // A responder handed an initiation whose ephemeral is low-order refuses it before any decryption.
    const r = rng("noise/low-order-ephemeral");
    const { a, b } = pair(r);
    const init = a.peer.createInitiation(9, clampPrivateKey(r.bytes(32)), tai64n(T0));
    if (!init.ok) throw new Error(init.reason);
    const forged = init.value.slice();
    forged.set(hex(zero[0]!.public), 8);
    expect(consumeInitiation(b.identity, forged, finder(b), 0)).toEqual({ ok: false, reason: "low-order-key" });
  });

  it("the pending ephemeral key is wiped when the handshake completes or is abandoned", () => {
    const r = rng("noise/wipe");
    const { a, b } = pair(r);
    const eph = clampPrivateKey(r.bytes(32));
    const init = a.peer.createInitiation(1, eph, tai64n(T0));
    if (!init.ok) throw new Error(init.reason);
    expect(eph.some((x) => x !== 0)).toBe(true);
    const consumed = consumeInitiation(b.identity, init.value, finder(b), 0);
    if (!consumed.ok) throw new Error(consumed.reason);
    const bEph = clampPrivateKey(r.bytes(32));
    const response = createResponse(consumed.value, 2, bEph);
    if (!response.ok) throw new Error(response.reason);
    expect(bEph.every((x) => x === 0), "responder's ephemeral").toBe(true);
    a.peer.consumeResponse(response.value.message);
    expect(eph.every((x) => x === 0), "initiator's ephemeral").toBe(true);
    const eph2 = clampPrivateKey(r.bytes(32));
    a.peer.createInitiation(3, eph2, tai64n(T0 + SECOND));
    a.peer.abandonInitiation();
    expect(eph2.every((x) => x === 0), "abandoned ephemeral").toBe(true);
  });
});

describe("mac1, mac2 and cookies", () => {
  it("mac1 is MAC(HASH(\"mac1----\" ‖ receiver static), message up to mac1), computed independently", () => {
    const r = rng("cookie/mac1");
    const { a, b } = pair(r);
    const init = a.peer.createInitiation(1, clampPrivateKey(r.bytes(32)), tai64n(T0));
    if (!init.ok) throw new Error(init.reason);
    a.jar.writeMacs(init.value, 0);
    const key = blake2s(Buffer.concat([Buffer.from("mac1----"), b.identity.publicKey]));
    expectBytes(init.value.subarray(INITIATION_OFFSET_MAC1, INITIATION_OFFSET_MAC2), blake2s(init.value.subarray(0, INITIATION_OFFSET_MAC1), { key, dkLen: 16 }), "mac1");
    expectBytes(init.value.subarray(INITIATION_OFFSET_MAC2), new Uint8Array(16), "mac2 is zero without a cookie");
    const bad = init.value.slice();
    bad[INITIATION_OFFSET_MAC1]! ^= 1;
    expect(b.checker.check(bad, hex("0a000001ca6c"), false, 0)).toBe("bad-mac1");
  });

  it("under load: no mac2 gets a cookie reply; with the cookie the initiation passes; cookies age out", () => {
    const r = rng("cookie/load");
    const { a, b } = pair(r);
    const src = hex("c0a80102ca6c");
    const send = (now: number, wall: bigint) => {
      const m = a.peer.createInitiation(r.u32(), clampPrivateKey(r.bytes(32)), tai64n(wall));
      if (!m.ok) throw new Error(m.reason);
      a.jar.writeMacs(m.value, now);
      return m.value;
    };
    const first = send(0, T0);
    expect(b.checker.check(first, src, true, 0)).toBe("needs-cookie");
    const reply = b.checker.createReply(first, src, 0);
    expect(reply.length).toBe(MESSAGE_COOKIE_REPLY_SIZE);
    expect(new DataView(reply.buffer).getUint32(4, true), "reply goes to the initiation's sender index").toBe(new DataView(first.buffer).getUint32(4, true));
    const forged = reply.slice();
    forged[40]! ^= 1;
    expect(a.jar.consumeReply(forged, 10)).toBe(false);
    expect(a.jar.consumeReply(reply, 10)).toBe(true);
    const second = send(20, T0 + SECOND);
    expect(b.checker.check(second, src, true, 20)).toBe("ok");
    expect(b.checker.check(second, hex("c0a80103ca6c"), true, 20), "the cookie is bound to the source address").toBe("needs-cookie");
    const stale = send(10 + COOKIE_REFRESH_TIME, T0 + 2n * SECOND);
    expect(stale.subarray(INITIATION_OFFSET_MAC2).every((x) => x === 0), "an old cookie is not used").toBe(true);
    expect(b.checker.check(stale, src, true, 10 + COOKIE_REFRESH_TIME)).toBe("needs-cookie");
  });

  it("a flood of initiations under load costs no Diffie-Hellman: every one gets a cookie reply", () => {
    const r = rng("cookie/flood");
    const { a, b } = pair(r);
    const m = a.peer.createInitiation(1, clampPrivateKey(r.bytes(32)), tai64n(T0));
    if (!m.ok) throw new Error(m.reason);
    a.jar.writeMacs(m.value, 0);
    let replies = 0;
    for (let i = 0; i < 1000; i++) {
      const src = hex(`0a00${(i >> 8).toString(16).padStart(2, "0")}${(i & 255).toString(16).padStart(2, "0")}ca6c`);
      if (b.checker.check(m.value, src, true, i) === "needs-cookie") {
        b.checker.createReply(m.value, src, i);
        replies++;
      }
    }
    expect(replies).toBe(1000);
  });
});

describe("primitives", () => {
  it("HMAC-BLAKE2s is RFC 2104 over BLAKE2s (64-byte block), written out here", () => {
    const r = rng("crypto/hmac");
    for (const keyLen of [0, 16, 32, 64, 65, 100]) {
      const key = r.bytes(keyLen);
      const msg = r.bytes(r.int(0, 200));
      const k = keyLen > 64 ? blake2s(key) : key;
      const block = new Uint8Array(64);
      block.set(k);
      const ipad = block.map((x) => x ^ 0x36);
      const opad = block.map((x) => x ^ 0x5c);
      const expected = blake2s(Buffer.concat([opad, blake2s(Buffer.concat([ipad, msg]))]));
      expectBytes(hmacBlake2s(key, msg), expected, r.where(`key of ${keyLen} bytes`));
    }
  });

  it("KDF1..3 chain as the whitepaper defines them", () => {
    const r = rng("crypto/kdf");
    const key = r.bytes(32);
    const input = r.bytes(32);
    const t0 = hmacBlake2s(key, input);
    const t1 = hmacBlake2s(t0, Uint8Array.of(1));
    const t2 = hmacBlake2s(t0, Buffer.concat([t1, Uint8Array.of(2)]));
    const t3 = hmacBlake2s(t0, Buffer.concat([t2, Uint8Array.of(3)]));
    expect(kdf(1, key, input)).toEqual([t1]);
    expect(kdf(2, key, input)).toEqual([t1, t2]);
    expect(kdf(3, key, input)).toEqual([t1, t2, t3]);
  });

  it("TAI64N: 2^62 + 10 + seconds, big-endian, nanoseconds whitened; ordering is byte order", () => {
    const stamp = tai64n(T0 + 123_456_789n);
    const v = new DataView(stamp.buffer);
    expect(v.getBigUint64(0, false)).toBe(0x400000000000000an + T0 / SECOND);
    expect(v.getUint32(8, false)).toBe(123_456_789 & ~0xffffff);
    expect(tai64nAfter(tai64n(T0 + SECOND), stamp)).toBe(true);
    expect(tai64nAfter(stamp, stamp)).toBe(false);
    expect(tai64nAfter(tai64n(T0 + 20_000_000n), tai64n(T0)), "finer than 2^24 ns still orders").toBe(true);
    expect(tai64nAfter(tai64n(T0 + 1_000n), tai64n(T0)), "within one whitened step: equal").toBe(false);
  });
});
