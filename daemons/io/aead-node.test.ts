// The node:crypto transport AEAD against the @noble default, on seeded random keys, counters and
// lengths: identical ciphertexts and tags both ways, each opening the other's, and any flipped bit
// refused by both.

import { beforeEach, describe, expect, it } from "vitest";
import { nobleTransportAead } from "../proto/tunnel/transport.js";
import { reportSeedOnFailure, rng } from "../../test/support/prng.js";
import { nodeTransportAead } from "./aead-node.js";

beforeEach(reportSeedOnFailure);

describe("node:crypto transport AEAD", () => {
  it("seals byte for byte as @noble does, opens what it sealed, and refuses any flipped bit", () => {
    const random = rng("aead-node");
    for (let i = 0; i < 300; i++) {
      const key = random.bytes(32);
      const counter = i < 3 ? [0n, 1n, (1n << 64n) - 2n][i]! : random.bigint(0n, (1n << 64n) - 2n);
      const plaintext = random.bytes(random.int(0, 1500));
      const sealed = nodeTransportAead.seal(key, counter, plaintext);
      expect(sealed).toEqual(nobleTransportAead.seal(key, counter, plaintext));
      expect(nodeTransportAead.open(key, counter, sealed)).toEqual(plaintext);
      expect(nobleTransportAead.open(key, counter, sealed)).toEqual(plaintext);
      const bad = sealed.slice();
      const bit = random.int(0, bad.length * 8 - 1);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(nodeTransportAead.open(key, counter, bad)).toBeNull();
      expect(nobleTransportAead.open(key, counter, bad)).toBeNull();
      expect(nodeTransportAead.open(key, counter + 1n, sealed)).toBeNull();
    }
    expect(nodeTransportAead.open(new Uint8Array(32), 0n, new Uint8Array(15))).toBeNull();
  });
});
