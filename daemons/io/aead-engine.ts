// WireGuard's transport AEAD (ChaCha20-Poly1305, the counter as a 96-bit little-endian nonce after
// four zero bytes, no associated data) in the WebAssembly engine, one packet per call: the tunnel
// node's sessions in the daemons seal and open with it. At 1420 B the engine's one-shot call runs
// at about twice node:crypto's per-packet speed (bench/RESULTS.md, engine); aead-engine.test.ts
// holds it to the @noble default and to node:crypto byte for byte.

import type { Engine } from "../engine/index.js";
import type { TransportAead } from "../proto/tunnel/transport.js";

const TAG_SIZE = 16;

/** The transport AEAD on `engine` (which must not be used by another caller between our calls' start and end). */
export function engineTransportAead(engine: Engine): TransportAead {
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  return {
    seal(key, counter, plaintext) {
      view.setBigUint64(4, counter, true);
      return engine.chacha20Poly1305Seal(key, nonce, plaintext);
    },
    sealInto(key, counter, plaintext, paddedLength, out, at) {
      view.setBigUint64(4, counter, true);
      engine.chacha20Poly1305SealPaddedInto(key, nonce, plaintext, paddedLength, out, at);
    },
    open(key, counter, sealed) {
      if (sealed.length < TAG_SIZE) return null;
      view.setBigUint64(4, counter, true);
      return engine.chacha20Poly1305Open(key, nonce, sealed);
    },
  };
}
