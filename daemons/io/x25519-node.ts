// X25519 through node:crypto (OpenSSL): about 28 times the rate of the pure-JavaScript default, and
// X25519 is what a handshake costs.
//
// Raw 32-byte keys are imported as JWK, not DER: OpenSSL 3 runs DER through its generic decoders,
// which cost 370 µs per private key here against 44 µs for JWK (measured in Node 20.20). A private
// JWK must carry `x`, but Node builds the key from `d` alone, so a placeholder stands in for the
// public half; x25519-node.test.ts checks every answer against @noble/curves, so a Node that began
// to trust `x` would fail there.

import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import type { X25519 } from "../proto/wireguard/crypto.js";

const PLACEHOLDER_X = Buffer.alloc(32).toString("base64url");
const b64url = (raw: Uint8Array): string => Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString("base64url");

const privateKeyObject = (raw: Uint8Array) =>
  createPrivateKey({ key: { kty: "OKP", crv: "X25519", d: b64url(raw), x: PLACEHOLDER_X }, format: "jwk" });

export const nodeX25519: X25519 = {
  publicKey(privateKey) {
    const jwk = createPublicKey(privateKeyObject(privateKey)).export({ format: "jwk" });
    return new Uint8Array(Buffer.from(jwk.x!, "base64url"));
  },
  sharedSecret(privateKey, publicKey) {
    try {
      const shared = diffieHellman({
        privateKey: privateKeyObject(privateKey),
        publicKey: createPublicKey({ key: { kty: "OKP", crv: "X25519", x: b64url(publicKey) }, format: "jwk" }),
      });
      return shared.some((b) => b !== 0) ? new Uint8Array(shared) : null;
    } catch {
      // OpenSSL refuses an all-zero result (a low-order public key) itself.
      return null;
    }
  },
};
