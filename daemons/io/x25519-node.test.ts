// node:crypto's X25519 behind the handshake's interface: the same answers as @noble/curves on random
// keys, every Wycheproof x25519 vector, and a full handshake between one side on each implementation.

import { beforeEach, describe, expect, it } from "vitest";
import { expectBytes, hex } from "../../test/support/bytes.js";
import { reportSeedOnFailure, rng } from "../../test/support/prng.js";
import { loadVectors } from "../../test/support/vectors.js";
import { clampPrivateKey, nobleX25519 } from "../proto/wireguard/crypto.js";
import { consumeInitiation, createResponse, HandshakePeer, StaticIdentity } from "../proto/wireguard/noise.js";
import { tai64n } from "../proto/wireguard/tai64n.js";
import { nodeX25519 } from "./x25519-node.js";

beforeEach(reportSeedOnFailure);

describe("X25519 via node:crypto", () => {
  it("agrees with @noble/curves on random keys", () => {
    const r = rng("x25519/node-vs-noble");
    for (let i = 0; i < 200; i++) {
      const a = r.bytes(32);
      const b = nobleX25519.publicKey(r.bytes(32));
      expectBytes(nodeX25519.publicKey(a), nobleX25519.publicKey(a), r.where(`public key ${i}`));
      expectBytes(nodeX25519.sharedSecret(a, b), nobleX25519.sharedSecret(a, b)!, r.where(`shared secret ${i}`));
    }
  });

  it("every Wycheproof x25519 vector: the shared secret, or null where it is all zeros", (ctx) => {
    const file = loadVectors<{ numberOfTests: number; testGroups: { tests: { tcId: number; public: string; private: string; shared: string; result: string }[] }[] }>(ctx, "wycheproof/x25519_test.json");
    const tests = file.testGroups.flatMap((g) => g.tests);
    expect(tests.length).toBe(file.numberOfTests);
    for (const t of tests) {
      const got = nodeX25519.sharedSecret(hex(t.private), hex(t.public));
      if (/^0+$/.test(t.shared)) expect(got, `tcId ${t.tcId}`).toBeNull();
      else expectBytes(got, hex(t.shared), `tcId ${t.tcId} (${t.result})`);
    }
  });

  it("a handshake between an identity on node:crypto and one on noble", () => {
    const r = rng("x25519/mixed-handshake");
    const ia = new StaticIdentity(clampPrivateKey(r.bytes(32)), nodeX25519);
    const ib = new StaticIdentity(clampPrivateKey(r.bytes(32)), nobleX25519);
    const pa = new HandshakePeer(ia, ib.publicKey);
    const pb = new HandshakePeer(ib, ia.publicKey);
    const init = pa.createInitiation(1, clampPrivateKey(r.bytes(32)), tai64n(1_764_000_000_000_000_000n));
    if (!init.ok) throw new Error(init.reason);
    const consumed = consumeInitiation(ib, init.value, () => pb, 0);
    if (!consumed.ok) throw new Error(consumed.reason);
    const response = createResponse(consumed.value, 2, clampPrivateKey(r.bytes(32)));
    if (!response.ok) throw new Error(response.reason);
    const done = pa.consumeResponse(response.value.message);
    if (!done.ok) throw new Error(done.reason);
    expectBytes(done.value.sendKey, response.value.keys.recvKey, "keys agree");
  });
});
