// The handshake's primitives (whitepaper §5.4): HASH, MAC, HMAC, KDF_n, AEAD, XAEAD and DH, on the
// @noble libraries. The handshake runs about once per two minutes per peer, so it stays in plain
// TypeScript; the per-packet transport runs in the engine.

import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { KEY_SIZE, MAC_SIZE } from "./constants.js";

/** HASH(input): BLAKE2s-256 of the concatenated parts. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  return blake2s(concat(parts));
}

/** MAC(key, input): keyed BLAKE2s with a 16-byte output. */
export function mac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return blake2s(input, { key, dkLen: MAC_SIZE });
}

/** HMAC(key, input): HMAC-BLAKE2s-256 (RFC 2104 over BLAKE2s, 64-byte blocks). */
export function hmacBlake2s(key: Uint8Array, input: Uint8Array): Uint8Array {
  return hmac(blake2s, key, input);
}

/** KDF_n(key, input) = τ1..τn with τ0 = HMAC(key, input), τi = HMAC(τ0, τ(i-1) ‖ i). */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = hmacBlake2s(key, input);
  const out: Uint8Array[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    previous = hmacBlake2s(t0, concat([previous, Uint8Array.of(i)]));
    out.push(previous);
  }
  t0.fill(0);
  return out;
}

/** The AEAD nonce: 32 zero bits then the counter, little-endian. */
function counterNonce(counter: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, true);
  return nonce;
}

/** AEAD(key, counter, plain, auth): ChaCha20-Poly1305. */
export function aeadSeal(key: Uint8Array, counter: bigint, plaintext: Uint8Array, auth: Uint8Array): Uint8Array {
  return chacha20poly1305(key, counterNonce(counter), auth).encrypt(plaintext);
}

/** The opened plaintext, or null when the tag does not verify. */
export function aeadOpen(key: Uint8Array, counter: bigint, sealed: Uint8Array, auth: Uint8Array): Uint8Array | null {
  try {
    return chacha20poly1305(key, counterNonce(counter), auth).decrypt(sealed);
  } catch {
    return null;
  }
}

/** XAEAD(key, nonce, plain, auth): XChaCha20-Poly1305, for cookies. */
export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, auth: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, auth).encrypt(plaintext);
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, auth: Uint8Array): Uint8Array | null {
  try {
    return xchacha20poly1305(key, nonce, auth).decrypt(sealed);
  } catch {
    return null;
  }
}

/**
 * X25519 as the handshake needs it. It is the handshake's whole cost, so it is passed in: the pure
 * @noble implementation by default, or a faster one from a driver (daemons/io/x25519-node.ts).
 */
export interface X25519 {
  /** DH-Pubkey(private). */
  publicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * DH(private, public), or null when the result is all zeros (a low-order public key), which the
   * handshake must refuse rather than key a session from (whitepaper §5.4, RFC 7748 §6.1).
   */
  sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
}

export const nobleX25519: X25519 = {
  publicKey: (privateKey) => x25519.getPublicKey(privateKey),
  sharedSecret(privateKey, publicKey) {
    try {
      const shared = x25519.getSharedSecret(privateKey, publicKey);
      return shared.some((b) => b !== 0) ? shared : null;
    } catch {
      // noble refuses an all-zero result itself.
      return null;
    }
  },
};

/** DH-Pubkey with the default implementation. */
export const publicKey = (privateKey: Uint8Array): Uint8Array => nobleX25519.publicKey(privateKey);

/** DH with the default implementation. */
export const dh = (privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null => nobleX25519.sharedSecret(privateKey, publicKey);

/** Clamps 32 random bytes into an X25519 private key (RFC 7748 §5), in place. */
export function clampPrivateKey(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== KEY_SIZE) throw new RangeError(`a private key is ${KEY_SIZE} bytes, got ${bytes.length}`);
  bytes[0]! &= 248;
  bytes[31]! = (bytes[31]! & 127) | 64;
  return bytes;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Constant-time equality of two byte strings of the same length. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
