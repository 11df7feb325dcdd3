// `wardline bench handshake`: how many WireGuard handshakes per second our Noise code completes, and
// what bounds it: X25519. A handshake costs the two sides eight X25519 operations with the static-static
// product precomputed per peer (ten without). The handshake takes its X25519 as a parameter: the
// daemons pass node:crypto's (OpenSSL); @noble/curves is the pure default.
//
// 1. Check that a handshake completes and both sides agree on the keys.
// 2. Measure: full handshake (initiation, consume, response, consume) on node:crypto's X25519, on
//    noble's with HandshakePeer reused (precomputed static-static) and rebuilt each time; X25519
//    shared secrets with noble and node.
// 3. Ratios: node ÷ noble handshakes; precomputed ÷ rebuilt; noble ÷ node:crypto X25519.

import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { x25519 } from "@noble/curves/ed25519.js";
import { nodeX25519 } from "../daemons/io/x25519-node.js";
import { clampPrivateKey, nobleX25519, type X25519 } from "../daemons/proto/wireguard/crypto.js";
import { consumeInitiation, createResponse, HandshakePeer, StaticIdentity } from "../daemons/proto/wireguard/noise.js";
import { tai64n } from "../daemons/proto/wireguard/tai64n.js";
import {
  findFigure, formatRate, formatRatio, formatSpread, measureGroup, ratioOf, startRun,
  type BenchCase, type BenchSuite, type Figure, type ReportTable, type SuiteOptions, type SuiteReport,
} from "./harness.js";

const key = (): Uint8Array => clampPrivateKey(new Uint8Array(randomBytes(32)));

/** Both sides of a handshake; `fresh` rebuilds the peers (and their static-static DH) every time. */
function handshakeCase(id: string, impl: string, fresh: boolean, curve: X25519 = nobleX25519): BenchCase {
  const ia = new StaticIdentity(key(), curve);
  const ib = new StaticIdentity(key(), curve);
  let pa = new HandshakePeer(ia, ib.publicKey);
  let pb = new HandshakePeer(ib, ia.publicKey);
  let clock = 0;
  const wall0 = BigInt(Date.now()) * 1_000_000n;
  const once = (): void => {
    if (fresh) {
      pa = new HandshakePeer(ia, ib.publicKey);
      pb = new HandshakePeer(ib, ia.publicKey);
    }
    clock += 1000; // past the responder's rate limit, and a newer timestamp each time
    const init = pa.createInitiation(1, key(), tai64n(wall0 + BigInt(clock) * 1_000_000n));
    if (!init.ok) throw new Error(`bench handshake: ${init.reason}`);
    const consumed = consumeInitiation(ib, init.value, () => pb, clock);
    if (!consumed.ok) throw new Error(`bench handshake: ${consumed.reason}`);
    const response = createResponse(consumed.value, 2, key());
    if (!response.ok) throw new Error(`bench handshake: ${response.reason}`);
    const done = pa.consumeResponse(response.value.message);
    if (!done.ok || Buffer.compare(done.value.sendKey, response.value.keys.recvKey) !== 0) throw new Error("bench handshake: keys disagree");
  };
  once();
  return {
    id, impl, op: "handshake", size: 0, ops: 1, bytes: 0,
    detail: fresh ? "HandshakePeer rebuilt per handshake: static-static DH on both sides each time" : "HandshakePeer reused: static-static DH computed once per peer",
    run(n) {
      for (let i = 0; i < n; i++) once();
    },
  };
}

function x25519Cases(): BenchCase[] {
  const a = key();
  const b = x25519.getPublicKey(key());
  // Same inputs for both: node gets them as KeyObjects, as a daemon would hold them.
  const nodePrivate = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: Buffer.from(a).toString("base64url"), x: Buffer.from(x25519.getPublicKey(a)).toString("base64url") }, format: "jwk" });
  const nodePublic = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(b).toString("base64url") }, format: "jwk" });
  if (Buffer.compare(diffieHellman({ privateKey: nodePrivate, publicKey: nodePublic }), x25519.getSharedSecret(a, b)) !== 0) {
    throw new Error("bench handshake: node:crypto and noble disagree on X25519");
  }
  return [
    { id: "x25519/noble", impl: "@noble/curves", op: "x25519", size: 0, ops: 1, bytes: 0, run: (n) => { for (let i = 0; i < n; i++) x25519.getSharedSecret(a, b); } },
    { id: "x25519/node", impl: "node:crypto", op: "x25519", size: 0, ops: 1, bytes: 0, run: (n) => { for (let i = 0; i < n; i++) diffieHellman({ privateKey: nodePrivate, publicKey: nodePublic }); } },
  ];
}

async function run(options: SuiteOptions): Promise<SuiteReport> {
  const { budget, progress, header } = await startRun("handshake", options);
  const figures: Figure[] = [];
  progress("[1/2] handshakes");
  figures.push(
    ...measureGroup(
      [
        handshakeCase("handshake/node", "ours, X25519 from node:crypto", false, nodeX25519),
        handshakeCase("handshake/precomputed", "ours, noble, static-static precomputed", false),
        handshakeCase("handshake/rebuilt", "ours, noble, nothing precomputed", true),
      ],
      budget,
    ),
  );
  progress("[2/2] X25519");
  figures.push(...measureGroup(x25519Cases(), budget));
  return {
    ...header(),
    units: { opsPerSec: "handshakes or shared secrets per second", ratio: "first ÷ second, median against median, same run" },
    subject: { Handshake: "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, both sides in one process (daemons/proto/wireguard/noise.ts)" },
    figures,
    ratios: [
      ratioOf(figures, "handshake/node", "handshake/precomputed"),
      ratioOf(figures, "handshake/precomputed", "handshake/rebuilt"),
      ratioOf(figures, "x25519/noble", "x25519/node"),
    ],
    targets: [],
    notes: [
      "A handshake is both sides' work: initiation (2 X25519: ephemeral public key, es), its consumption (1: es), the response (3: ephemeral public key, ee, se) and its consumption (2: ee, se); the static-static product adds one per side unless precomputed.",
      "X25519 dominates: with noble the handshake rate is about the noble X25519 rate ÷ 8. With node:crypto's X25519 the rest of the handshake (BLAKE2s, HMAC and ChaCha20-Poly1305 from @noble, KeyObject imports) becomes visible.",
    ],
  };
}

function tables(report: SuiteReport): ReportTable[] {
  const row = (id: string): string[] => {
    const f = findFigure(report.figures, id);
    return [f.impl, `${formatRate(f.opsPerSec.median)} ${formatSpread(f.opsPerSec)}`];
  };
  return [
    { title: "WireGuard handshakes per second (both sides)", headers: ["implementation", "handshakes/s"], rows: [row("handshake/node"), row("handshake/precomputed"), row("handshake/rebuilt")] },
    { title: "X25519 shared secrets per second", headers: ["implementation", "per second"], rows: [row("x25519/noble"), row("x25519/node")] },
    {
      title: "Ratios",
      headers: ["ratio", "value"],
      rows: report.ratios.map((r) => [`${r.ours} ÷ ${r.anchor}`, formatRatio(r.ratio)]),
    },
  ];
}

export const handshakeSuite: BenchSuite = {
  name: "handshake",
  summary: "WireGuard (Noise_IKpsk2) handshakes per second, and X25519: @noble/curves vs node:crypto",
  run,
  tables,
};
