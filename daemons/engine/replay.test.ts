// The replay window of the transport's receive path (whitepaper §5.4.6, RFC 6479 style), on both
// builds, against ReplayOracle in test/support/wireguard.ts: a plain set of accepted counters. The
// rule: accept c iff c < REJECT_AFTER_MESSAGES (2^64 - 2^13 - 1), c was never accepted, and (nothing
// accepted yet, or c > max accepted, or c + 4032 >= max accepted). The window is checked before
// decryption and updated only after the tag verifies, so forgeries never move it.
//
// Packets come from the independent builder, so counters can be anything, and go through the batch
// in batches of random sizes (duplicates inside one batch included).

import { beforeEach, describe, expect, it } from "vitest";
import { BUILDS, statusName } from "../../test/support/engine.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { buildTransport, REJECT_AFTER, ReplayOracle, WINDOW } from "../../test/support/wireguard.js";
import { Engine, REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE, type SessionKeys } from "./index.js";

beforeEach(reportSeedOnFailure);

const U64_MAX = 2n ** 64n - 1n;
const EXPECTED_STATUS = { ok: "Ok", replayed: "Replayed", "too-old": "TooOld", exhausted: "CounterExhausted" } as const;
interface Receiver {
  keys: SessionKeys;
  oracle: ReplayOracle;
  /** Every counter offered so far, to draw duplicates from. */
  offered: bigint[];
  max: bigint;
}

interface Offer {
  session: number;
  counter: bigint;
  forged: boolean;
}

/**
 * Feeds offers through the batch in random-sized batches and checks every status against the oracles;
 * returns how often each status was expected.
 */
function feed(engine: Engine, r: Rng, receivers: Receiver[], offers: Offer[], label: string): Map<string, number> {
  const tally = new Map<string, number>();
  let at = 0;
  while (at < offers.length) {
    const size = Math.min(offers.length - at, r.pick([1, 2, 3, r.int(1, 16), r.int(1, engine.batch.maxPackets)]));
    const chunk = offers.slice(at, at + size);
    engine.batch.reset();
    for (const o of chunk) {
      const rx = receivers[o.session]!;
      const key = o.forged ? rx.keys.sendKey : rx.keys.recvKey; // sendKey: a key the packet does not authenticate under
      engine.batch.addPacket(buildTransport(key, rx.keys.localIndex, o.counter, new Uint8Array(r.int(0, 3) * 8)));
    }
    let expectedOk = 0;
    const expected = chunk.map((o) => {
      const rx = receivers[o.session]!;
      const verdict = rx.oracle.check(o.counter);
      if (verdict === "ok" && o.forged) return "AuthFailed";
      if (verdict === "ok") {
        rx.oracle.accept(o.counter);
        expectedOk++;
      }
      return EXPECTED_STATUS[verdict];
    });
    const opened = engine.batch.open();
    chunk.forEach((o, i) => {
      const where = r.where(
        `${label}: offer ${at + i} (batch of ${chunk.length}, #${i}) session ${o.session} counter ${o.counter}${o.forged ? " forged" : ""}`,
      );
      expect(statusName(engine.batch.status(i)), where).toBe(expected[i]);
    });
    expect(opened, r.where(`${label}: open() count of batch at ${at}`)).toBe(expectedOk);
    for (const status of expected) tally.set(status, (tally.get(status) ?? 0) + 1);
    at += size;
  }
  return tally;
}

/** One counter drawn from a mix of the ways counters arrive: in order, reordered, duplicated, old, far ahead, at the limit. */
function nextCounter(r: Rng, rx: Receiver): bigint {
  const max = rx.max;
  const clamp = (c: bigint): bigint => (c < 0n ? 0n : c > U64_MAX ? U64_MAX : c);
  const move = r.int(0, 99);
  let c: bigint;
  if (move < 30) c = max + 1n; // in order
  else if (move < 45) c = max + BigInt(r.int(-70, 70)); // reordered nearby
  else if (move < 55 && rx.offered.length > 0) c = r.pick(rx.offered); // duplicate
  else if (move < 63) c = max - BigInt(WINDOW) + BigInt(r.int(-3, 3)); // the window's edge
  else if (move < 68) c = max - BigInt(r.int(WINDOW + 1, 200_000)); // far behind
  else if (move < 73) c = max - BigInt(r.int(0, WINDOW)); // anywhere in the window
  else if (move < 80) c = max + BigInt(r.pick([64, 128, 4032, 4033, 4095, 4096, 4097, 5000, r.int(1, 8192)])); // jumps across ring blocks
  else if (move < 84) c = max + BigInt(r.int(1, 64)) * 64n; // whole blocks ahead
  else if (move < 87) c = max + 2n ** 40n; // far future
  else if (move < 89) c = r.bigint(max, REJECT_AFTER - 1n); // anywhere up to the limit
  else if (move < 92) c = REJECT_AFTER - BigInt(r.int(1, 5000)); // just below the limit
  else if (move < 95) c = REJECT_AFTER + BigInt(r.int(-2, 2)); // at the limit
  else if (move < 97) c = r.bigint(REJECT_AFTER, U64_MAX); // over the limit
  else c = BigInt(r.int(0, 10)); // the very first counters
  c = clamp(c);
  rx.offered.push(c);
  return c;
}

function receivers(r: Rng, engine: Engine, count: number): Receiver[] {
  return Array.from({ length: count }, (_, i) => {
    const keys: SessionKeys = { localIndex: 0x100 + i, remoteIndex: 0x200 + i, sendKey: r.bytes(32), recvKey: r.bytes(32) };
    engine.sessions.install(keys);
    return { keys, oracle: new ReplayOracle(), offered: [], max: 0n };
  });
}

describe.each(BUILDS)("replay window (%s build)", (build) => {
  let engine: Engine;
  beforeEach(() => {
    engine = Engine.create({ build, arenaBytes: 1 << 20 });
  });

  it("the binding's constants are the whitepaper's", () => {
    expect(REJECT_AFTER_MESSAGES).toBe(REJECT_AFTER);
    expect(REJECT_AFTER_MESSAGES).toBe(18446744073709543423n);
    expect(REPLAY_WINDOW_SIZE).toBe(WINDOW);
  });

  it("exact edges: first packet, duplicates, the last counter inside the window and the first outside", () => {
    const r = rng(`replay/edges/${build}`);
    const rxs = receivers(r, engine, 1);
    const offers = (counters: bigint[]): Offer[] => counters.map((counter) => ({ session: 0, counter, forged: false }));
    // One packet per batch, then all in one batch: the same verdicts either way.
    const sequence = [
      0n, 0n, 1n, 0n, 10_000n, 10_000n - 4032n, 10_000n - 4033n, 10_000n - 4032n, 9_999n, 10_000n,
      10_001n, 10_001n - 4032n, 10_001n - 4033n, 5_967n, 5_968n, 5_969n, 10_001n + 4032n, 10_001n + 4032n - 4032n,
    ];
    feed(engine, r, rxs, offers(sequence), "one at a time");
    const fresh = Engine.create({ build });
    const rx2 = receivers(r, fresh, 1);
    const all = offers(sequence);
    fresh.batch.reset();
    for (const o of all) fresh.batch.addPacket(buildTransport(rx2[0]!.keys.recvKey, rx2[0]!.keys.localIndex, o.counter, new Uint8Array(0)));
    fresh.batch.open();
    const oracle = new ReplayOracle();
    all.forEach((o, i) => {
      const verdict = oracle.check(o.counter);
      if (verdict === "ok") oracle.accept(o.counter);
      expect(statusName(fresh.batch.status(i)), r.where(`single batch #${i} counter ${o.counter}`)).toBe(EXPECTED_STATUS[verdict]);
    });
  });

  it("counter exhaustion: REJECT_AFTER_MESSAGES - 1 is the last counter accepted", () => {
    const r = rng(`replay/exhaustion/${build}`);
    const rxs = receivers(r, engine, 1);
    const R = REJECT_AFTER;
    const sequence = [R, U64_MAX, R + 1n, 5n, R - 2n, R - 1n, R - 1n, R, U64_MAX, R - 2n, R - 4033n, R - 4035n, 2n ** 63n];
    feed(engine, r, rxs, sequence.map((counter) => ({ session: 0, counter, forged: false })), "exhaustion");
    expect([...rxs[0]!.oracle.acceptedCounters]).toEqual([5n, R - 2n, R - 1n, R - 4033n]);
  });

  it("forged packets are checked against the window but never move it", () => {
    const r = rng(`replay/forged/${build}`);
    const rxs = receivers(r, engine, 1);
    const o = (counter: bigint, forged: boolean): Offer => ({ session: 0, counter, forged });
    feed(engine, r, rxs, [
      o(10_000n, false),
      o(1_000_000n, true), // would move the window far ahead if it were committed
      o(10_000n - 4032n, false), // still the window's last counter: accepted
      o(9_999n, true), // forged, new counter: AuthFailed, not recorded ...
      o(9_999n, false), // ... so the genuine 9999 is accepted
      o(10_000n, true), // forged replay: Replayed, decided before decryption
      o(10_000n - 4033n, true), // forged and too old: TooOld
      o(REJECT_AFTER, true), // forged at the limit: CounterExhausted
      o(10_001n, false),
    ], "forged");
  });

  it("seeded random sequences over three sessions match the oracle", () => {
    const r = rng(`replay/random/${build}`);
    const seen = new Map<string, number>();
    for (let run = 0; run < 12; run++) {
      const e = Engine.create({ build, arenaBytes: 1 << 20, maxBatch: 64 });
      const rxs = receivers(r, e, 3);
      const offers: Offer[] = [];
      // The generator aims its moves at the max the receiver will have accepted by then, which a
      // shadow oracle tracks; the real oracles are only consulted inside feed().
      const shadows = rxs.map(() => new ReplayOracle());
      for (let i = 0; i < 400; i++) {
        const session = r.int(0, rxs.length - 1);
        const rx = rxs[session]!;
        const counter = nextCounter(r, rx);
        const forged = r.bool(0.05);
        offers.push({ session, counter, forged });
        if (!forged && shadows[session]!.check(counter) === "ok") {
          shadows[session]!.accept(counter);
          if (counter > rx.max) rx.max = counter;
        }
      }
      for (const [status, n] of feed(e, r, rxs, offers, `run ${run}`)) seen.set(status, (seen.get(status) ?? 0) + n);
    }
    // The generator must have exercised every verdict, or the comparison proves little.
    for (const status of ["Ok", "Replayed", "TooOld", "CounterExhausted", "AuthFailed"]) {
      expect(seen.get(status) ?? 0, r.where(`${status} verdicts in ${JSON.stringify([...seen])}`)).toBeGreaterThan(20);
    }
  });

  it("after a jump, stale ring blocks never answer for new counters", () => {
    const r = rng(`replay/ring-reuse/${build}`);
    // Jumps around the ring's size (64 blocks of 64 counters) and the window (4032).
    const jumps = [63 * 64, 64 * 64, 65 * 64, 4031, 4032, 4033, 4095, 4096, 4097, 128 * 64 + 5];
    const rxs = receivers(r, engine, jumps.length);
    const offers: Offer[] = [];
    jumps.forEach((jump, session) => {
      const base = BigInt(r.int(0, 1 << 20)) * 64n;
      const at = (c: bigint): void => void offers.push({ session, counter: c, forged: false });
      // Fill a whole block, jump ahead, then offer every counter between: all are new.
      for (let i = 0n; i < 64n; i++) at(base + i);
      at(base + BigInt(jump) + 70n);
      for (let i = 0n; i < 70n; i++) at(base + BigInt(jump) + i);
      // And the old block again: replayed or too old, never accepted twice.
      for (let i = 0n; i < 64n; i += 7n) at(base + i);
    });
    const tally = feed(engine, r, rxs, offers, "ring reuse");
    expect(tally.get("Ok"), "every new counter was expected to open").toBeGreaterThan(jumps.length * 130);
  });

  it("a window crossing many ring blocks: every counter of a dense reordered range", () => {
    const r = rng(`replay/dense/${build}`);
    const rxs = receivers(r, engine, 1);
    const base = r.bigint(0n, 2n ** 48n);
    // 12000 counters in windows of 300, shuffled inside each window, 1% repeated.
    const offers: Offer[] = [];
    for (let start = 0; start < 12_000; start += 300) {
      const chunk = Array.from({ length: 300 }, (_, i) => base + BigInt(start + i));
      r.shuffle(chunk);
      for (const counter of chunk) {
        offers.push({ session: 0, counter, forged: false });
        if (r.bool(0.01)) offers.push({ session: 0, counter: base + BigInt(r.int(0, start + 299)), forged: false });
      }
    }
    feed(engine, r, rxs, offers, "dense");
  });
});
