// The engine's transport AEAD against the @noble default and node:crypto, on seeded random keys,
// counters and lengths up to a jumbo packet: identical ciphertexts and tags, each opening the
// others', and any flipped bit or wrong counter refused.

import { beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../engine/index.js";
import { nobleTransportAead } from "../proto/tunnel/transport.js";
import { reportSeedOnFailure, rng } from "../../test/support/prng.js";
import { engineTransportAead } from "./aead-engine.js";
import { nodeTransportAead } from "./aead-node.js";

beforeEach(reportSeedOnFailure);

describe("engine transport AEAD", () => {
  it("seals byte for byte as @noble and node:crypto do, opens theirs, and refuses any flipped bit", () => {
    const aead = engineTransportAead(Engine.create());
    const random = rng("aead-engine");
    for (let i = 0; i < 300; i++) {
      const key = random.bytes(32);
      const counter = i < 3 ? [0n, 1n, (1n << 64n) - 2n][i]! : random.bigint(0n, (1n << 64n) - 2n);
      const plaintext = random.bytes(i === 3 ? 9000 : random.int(0, 1500));
      const sealed = aead.seal(key, counter, plaintext);
      expect(sealed).toEqual(nobleTransportAead.seal(key, counter, plaintext));
      expect(sealed).toEqual(nodeTransportAead.seal(key, counter, plaintext));
      expect(aead.open(key, counter, sealed)).toEqual(plaintext);
      expect(aead.open(key, counter, nodeTransportAead.seal(key, counter, plaintext))).toEqual(plaintext);
      const bad = sealed.slice();
      const bit = random.int(0, bad.length * 8 - 1);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(aead.open(key, counter, bad)).toBeNull();
      expect(aead.open(key, counter + 1n, sealed)).toBeNull();
    }
    expect(aead.open(new Uint8Array(32), 0n, new Uint8Array(15))).toBeNull();
  });

  it("sealInto writes what seal of the zero-padded plaintext gives, at its offset, and nothing else", () => {
    const aead = engineTransportAead(Engine.create());
    const random = rng("aead-engine-into");
    for (let i = 0; i < 200; i++) {
      const key = random.bytes(32);
      const counter = random.bigint(0n, (1n << 64n) - 2n);
      const plaintext = random.bytes(random.int(0, 1500));
      const paddedLength = Math.ceil(plaintext.length / 16) * 16 + (i % 7 === 0 ? 16 : 0);
      const at = random.int(0, 40);
      const out = random.bytes(at + paddedLength + 16 + random.int(0, 40));
      const before = out.slice();
      aead.sealInto!(key, counter, plaintext, paddedLength, out, at);
      const padded = new Uint8Array(paddedLength);
      padded.set(plaintext);
      expect(out.subarray(at, at + paddedLength + 16)).toEqual(nobleTransportAead.seal(key, counter, padded));
      expect(out.subarray(0, at)).toEqual(before.subarray(0, at));
      expect(out.subarray(at + paddedLength + 16)).toEqual(before.subarray(at + paddedLength + 16));
    }
    expect(() => aead.sealInto!(new Uint8Array(32), 0n, new Uint8Array(20), 32, new Uint8Array(47), 0)).toThrow(/fit|range/i);
    expect(() => aead.sealInto!(new Uint8Array(32), 0n, new Uint8Array(20), 16, new Uint8Array(64), 0)).toThrow();
  });
});
