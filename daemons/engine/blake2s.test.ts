// BLAKE2s (RFC 7693) of the engine, on both builds:
//   1. all 512 blake2s entries of the BLAKE2 reference KAT (../shared/vectors/blake2/blake2s-kat.json,
//      from BLAKE2/BLAKE2 testvectors/blake2-kat.json, CC0): inputs 0..255 bytes, unkeyed and keyed;
//   2. RFC 7693 Appendix B ("abc");
//   3. differential tests on seeded random inputs against @noble/hashes: key lengths 0..32, digest
//      lengths 1..32, inputs split into parts at random places, inputs larger than the one-shot limit.

import { blake2s as nobleBlake2s } from "@noble/hashes/blake2.js";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { concat, expectBytes, hex, utf8 } from "../../test/support/bytes.js";
import { BUILDS } from "../../test/support/engine.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { loadVectors } from "../../test/support/vectors.js";
import { Engine } from "./index.js";

beforeEach(reportSeedOnFailure);

interface Blake2Kat {
  hash: string;
  in: string;
  key: string;
  out: string;
}

function noble(data: Uint8Array, key: Uint8Array, outLen: number): Uint8Array {
  return nobleBlake2s(data, key.length > 0 ? { key, dkLen: outLen } : { dkLen: outLen });
}

/** Splits data into 1..8 parts at random cut points, empty parts included. */
function split(r: Rng, data: Uint8Array): Uint8Array[] {
  const cuts = Array.from({ length: r.int(0, 7) }, () => r.int(0, data.length)).sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const cut of cuts) {
    parts.push(data.subarray(at, cut));
    at = cut;
  }
  parts.push(data.subarray(at));
  return parts;
}

describe.each(BUILDS)("BLAKE2s (%s build)", (build) => {
  let engine: Engine;
  beforeAll(() => {
    engine = Engine.create({ build });
  });

  it("all 512 blake2s vectors of the BLAKE2 reference KAT (unkeyed and keyed)", (ctx) => {
    const kat = loadVectors<Blake2Kat[]>(ctx, "blake2/blake2s-kat.json");
    let unkeyed = 0;
    let keyed = 0;
    for (const [i, v] of kat.entries()) {
      expect(v.hash, `entry ${i}`).toBe("blake2s");
      const data = hex(v.in);
      const key = hex(v.key);
      const out = hex(v.out);
      const where = `blake2s-kat.json entry ${i} (in ${data.length} bytes, key ${key.length} bytes)`;
      expectBytes(engine.blake2s(data, key.length > 0 ? { key, outLen: out.length } : { outLen: out.length }), out, where);
      if (key.length > 0) keyed++;
      else unkeyed++;
    }
    expect(kat.length, "entries in blake2s-kat.json").toBe(512);
    expect(unkeyed, "unkeyed entries").toBe(256);
    expect(keyed, "keyed entries").toBe(256);
  });

  it("RFC 7693 Appendix B: BLAKE2s-256(\"abc\")", () => {
    expectBytes(
      engine.blake2s(utf8("abc")),
      hex("50 8C 5E 8C 32 7C 14 E2 E1 A7 2B A3 4E EB 45 2F 37 45 8B 20 9E D6 3A 29 4D 99 9B 4C 86 67 59 82"),
      "RFC 7693 Appendix B",
    );
  });

  it("agrees with @noble/hashes for random keys, digest lengths and sizes", () => {
    const r = rng(`blake2s/random/${build}`);
    const edge = [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 192, 193, 1000, 4096, 65535];
    const lengths = [...edge, ...Array.from({ length: 60 }, () => (r.bool(0.7) ? r.int(0, 600) : r.int(601, 70_000)))];
    for (const size of lengths) {
      const key = r.bytes(r.pick([0, 0, 1, 16, 31, 32, r.int(0, 32)]));
      const outLen = r.pick([32, 16, 1, r.int(1, 32)]);
      const data = r.bytes(size);
      const where = r.where(`size=${size} key=${key.length} outLen=${outLen}`);
      const expected = noble(data, key, outLen);
      expectBytes(engine.blake2s(data, { key, outLen }), expected, `${where} one part`);
      const parts = split(r, data);
      expectBytes(engine.blake2s(parts, { key, outLen }), expected, `${where} parts ${parts.map((p) => p.length).join("+")}`);
    }
  });

  it("parts on block boundaries, empty parts and single bytes give the digest of their concatenation", () => {
    const r = rng(`blake2s/parts/${build}`);
    const layouts: number[][] = [
      [], [0], [0, 0, 0], [64], [64, 0], [0, 64], [64, 64], [63, 1], [1, 63], [64, 1], [1, 64],
      [32, 32, 1], [65, 63], [128, 0, 64], Array.from({ length: 130 }, () => 1),
    ];
    for (const layout of layouts) {
      for (const keyLen of [0, 32]) {
        const key = r.bytes(keyLen);
        const parts = layout.map((n) => r.bytes(n));
        const where = r.where(`layout=[${layout.length > 8 ? `${layout.length} x 1` : layout.join(",")}] key=${keyLen}`);
        expectBytes(engine.blake2s(parts, { key }), noble(concat(...parts), key, 32), where);
      }
    }
  });

  it("inputs larger than the one-shot limit are fed in pieces", () => {
    const r = rng(`blake2s/large/${build}`);
    const limit = engine.oneShotLimit;
    for (const size of [limit - 1, limit, limit + 1, 2 * limit + 17, r.int(limit + 2, 3 * limit)]) {
      const key = r.bytes(r.int(0, 32));
      const outLen = r.int(1, 32);
      const data = r.bytes(size);
      const where = r.where(`size=${size} (limit ${limit}) key=${key.length} outLen=${outLen}`);
      const expected = noble(data, key, outLen);
      expectBytes(engine.blake2s(data, { key, outLen }), expected, `${where} one part`);
      expectBytes(engine.blake2s([data.subarray(0, 5), data.subarray(5)], { key, outLen }), expected, `${where} two parts`);
    }
  });

  it("a digest is not affected by the previous call (state is reset)", () => {
    const r = rng(`blake2s/sequence/${build}`);
    const key = r.bytes(32);
    const first = r.bytes(100);
    const expected = noble(first, key, 32);
    engine.blake2s(r.bytes(1000), { key: r.bytes(7), outLen: 5 });
    expectBytes(engine.blake2s(first, { key }), expected, r.where("after another keyed hash"));
    expectBytes(engine.blake2s(first, { key }), expected, r.where("repeated"));
  });
});
