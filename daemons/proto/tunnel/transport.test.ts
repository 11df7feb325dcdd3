// Transport data messages: round trips, the replay window (old, duplicate, reordered counters),
// tampering, and fuzzed input that must never throw.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import type { TransportKeys } from "../wireguard/noise.js";
import { MESSAGE_TRANSPORT_OFFSET_COUNTER, WINDOW_SIZE } from "./constants.js";
import { ReplayWindow } from "./replay-window.js";
import { isTransportMessage, nobleTransportAead, TransportSessions, type TransportAead } from "./transport.js";

beforeEach(reportSeedOnFailure);

/** Two ends of one session: a's send key is b's receive key. */
function pair(seed = "pair") {
  const r = rng(seed);
  const k1 = r.bytes(32);
  const k2 = r.bytes(32);
  const a = new TransportSessions();
  const b = new TransportSessions();
  const aKeys: TransportKeys = { localIndex: 11, remoteIndex: 22, sendKey: k1.slice(), recvKey: k2.slice(), initiator: true };
  const bKeys: TransportKeys = { localIndex: 22, remoteIndex: 11, sendKey: k2.slice(), recvKey: k1.slice(), initiator: false };
  a.install(1, aKeys);
  b.install(7, bKeys);
  return { a, b, r };
}

/** A minimal IPv4 packet of total length n (only the length field matters to unpadding). */
function ipv4(n: number, fill: number): Uint8Array {
  const p = new Uint8Array(n).fill(fill);
  p[0] = 0x45;
  p[2] = n >> 8;
  p[3] = n & 0xff;
  return p;
}

describe("TransportSessions", () => {
  it("seals the same messages through an AEAD's sealInto as through its seal", () => {
    const calls = { into: 0 };
    const into: TransportAead = {
      ...nobleTransportAead,
      sealInto(key, counter, plaintext, paddedLength, out, at) {
        calls.into++;
        const padded = new Uint8Array(paddedLength);
        padded.set(plaintext);
        out.set(nobleTransportAead.seal(key, counter, padded), at);
      },
    };
    const keys = (): TransportKeys => ({ localIndex: 11, remoteIndex: 22, sendKey: new Uint8Array(32).fill(3), recvKey: new Uint8Array(32).fill(4), initiator: true });
    const plain = new TransportSessions(nobleTransportAead);
    const fused = new TransportSessions(into);
    plain.install(1, keys());
    fused.install(1, keys());
    for (const n of [0, 1, 15, 16, 17, 20, 1279, 1280]) {
      const packet = n === 0 ? new Uint8Array(0) : ipv4(Math.max(n, 20), n & 0xff).subarray(0, n);
      expect(fused.seal(11, packet)).toEqual(plain.seal(11, packet));
    }
    expect(calls.into).toBe(8);
  });

  it("round-trips packets of every length around the padding boundary, and keepalives", () => {
    const { a, b } = pair();
    for (let n = 20; n < 70; n++) {
      const sealed = a.seal(11, ipv4(n, n))!;
      expect((sealed.length - 16) % 16).toBe(0);
      expect(isTransportMessage(sealed)).toBe(true);
      const opened = b.open(sealed);
      expect(opened.ok && opened.peer === 7 && opened.localIndex === 22).toBe(true);
      if (opened.ok) expect(opened.packet).toEqual(ipv4(n, n));
    }
    const keepalive = b.open(a.seal(11, new Uint8Array(0))!);
    expect(keepalive.ok && keepalive.packet.length === 0).toBe(true);
  });

  it("rejects a replayed message and counters behind the window, accepts reordering inside it", () => {
    const { a, b } = pair();
    const sealed = Array.from({ length: WINDOW_SIZE + 200 }, () => a.seal(11, new Uint8Array(0))!);
    expect(b.open(sealed[5]!).ok).toBe(true);
    expect(b.open(sealed[5]!)).toEqual({ ok: false, reason: "replayed" });
    expect(b.open(sealed[3]!).ok).toBe(true);
    expect(b.open(sealed[WINDOW_SIZE + 100]!).ok).toBe(true);
    // 100 + WINDOW_SIZE - 90 = within; 50 is behind.
    expect(b.open(sealed[150]!).ok).toBe(true);
    expect(b.open(sealed[50]!)).toEqual({ ok: false, reason: "replayed" });
    expect(b.open(sealed[150]!)).toEqual({ ok: false, reason: "replayed" });
  });

  it("rejects tampering anywhere in the message, and unknown receivers", () => {
    const { a, b, r } = pair();
    for (let i = 0; i < 200; i++) {
      const sealed = a.seal(11, ipv4(60, 1))!;
      const at = r.int(0, sealed.length - 1);
      sealed[at] = sealed[at]! ^ (1 << r.int(0, 7));
      expect(b.open(sealed).ok).toBe(false);
    }
    const { a: other } = pair("other");
    b.drop(22);
    expect(b.open(other.seal(11, ipv4(20, 0))!)).toEqual({ ok: false, reason: "unknown-receiver" });
  });

  it("a forged counter does not move the window", () => {
    const { a, b } = pair();
    const first = a.seal(11, ipv4(20, 0))!;
    const forged = a.seal(11, ipv4(20, 0))!;
    new DataView(forged.buffer).setBigUint64(MESSAGE_TRANSPORT_OFFSET_COUNTER, 1_000_000n, true);
    expect(b.open(forged)).toEqual({ ok: false, reason: "authentication" });
    expect(b.open(first).ok).toBe(true);
  });

  it("never throws on random or truncated input", () => {
    const { a, b, r } = pair("fuzz");
    for (let i = 0; i < 2000; i++) {
      let bytes: Uint8Array;
      if (r.bool()) {
        bytes = r.bytes(r.int(0, 120));
        if (r.bool() && bytes.length >= 8) {
          bytes.set([4, 0, 0, 0, 22, 0, 0, 0]);
        }
      } else {
        const sealed = a.seal(11, ipv4(r.int(20, 80), 3))!;
        bytes = sealed.subarray(0, r.int(0, sealed.length));
      }
      expect(() => b.open(bytes)).not.toThrow();
    }
  });
});

describe("ReplayWindow", () => {
  it("agrees with a set-based oracle on random counters", () => {
    const r = rng("replay oracle");
    const w = new ReplayWindow();
    const seen = new Set<bigint>();
    let max = -1n;
    for (let i = 0; i < 20_000; i++) {
      const jump = r.bool(0.1) ? BigInt(r.int(0, 5000)) : BigInt(r.int(0, 40));
      const counter = r.bool(0.5) ? max + jump : max - BigInt(r.int(0, WINDOW_SIZE + 300)) ;
      if (counter < 0n) continue;
      const expected = !seen.has(counter) && (counter > max || max - counter <= BigInt(WINDOW_SIZE));
      expect(w.accept(counter), `counter ${counter} max ${max}`).toBe(expected);
      if (expected) {
        seen.add(counter);
        if (counter > max) max = counter;
      }
    }
  });
});
