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
});
