// An independent WireGuard transport-data codec (whitepaper §5.4.6), the slow oracle for the engine's
// batch: header written with DataView, AEAD from @noble/ciphers. It shares no code with the engine or
// its binding, and deliberately spells the wire constants out again instead of importing them.

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";

export const TYPE_TRANSPORT = 4;
export const HEADER = 16;
export const TAG = 16;
/** Whitepaper §6.1: 2^64 - 2^13 - 1. */
export const REJECT_AFTER = 2n ** 64n - 2n ** 13n - 1n;
export const WINDOW = 4032;

/** The AEAD nonce of a transport message: 4 zero bytes, then the counter as little-endian u64. */
export function transportNonce(counter: bigint): Uint8Array {
  if (counter < 0n || counter >= 2n ** 64n) throw new RangeError(`counter ${counter} is not a u64`);
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, true);
  return nonce;
}

/** Zero-pads to a multiple of 16, as §5.4.6 requires before encryption. */
export function pad16(plaintext: Uint8Array): Uint8Array {
  const padded = new Uint8Array(Math.ceil(plaintext.length / 16) * 16);
  padded.set(plaintext);
  return padded;
}

/** Builds type 4 | receiver | counter | AEAD(key, counter, pad16(plaintext), empty AAD). */
export function buildTransport(key: Uint8Array, receiver: number, counter: bigint, plaintext: Uint8Array, pad = true): Uint8Array {
  const body = chacha20poly1305(key, transportNonce(counter)).encrypt(pad ? pad16(plaintext) : plaintext);
  const packet = new Uint8Array(HEADER + body.length);
  const view = new DataView(packet.buffer);
  view.setUint32(0, TYPE_TRANSPORT, true);
  view.setUint32(4, receiver >>> 0, true);
  view.setBigUint64(8, counter, true); // in range: transportNonce checked it
  packet.set(body, HEADER);
  return packet;
}

/** Parses and decrypts a transport packet; null when it is malformed or does not authenticate. */
export function openTransport(key: Uint8Array, packet: Uint8Array): { receiver: number; counter: bigint; plaintext: Uint8Array } | null {
  if (packet.length < HEADER + TAG) return null;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.length);
  if (view.getUint32(0, true) !== TYPE_TRANSPORT) return null;
  const counter = view.getBigUint64(8, true);
  try {
    const plaintext = chacha20poly1305(key, transportNonce(counter)).decrypt(packet.slice(HEADER));
    return { receiver: view.getUint32(4, true), counter, plaintext };
  } catch {
    return null;
  }
}

/**
 * The replay rule, written as plainly as possible: a set of every accepted counter and the maximum.
 * Accept c iff c < REJECT_AFTER, c was never accepted, and (nothing accepted yet, or c > max, or
 * c + WINDOW >= max).
 */
export class ReplayOracle {
  private readonly accepted = new Set<bigint>();
  private max: bigint | null = null;

  /** What the engine must answer for c now: "ok" | "replayed" | "too-old" | "exhausted". */
  check(counter: bigint): "ok" | "replayed" | "too-old" | "exhausted" {
    if (counter >= REJECT_AFTER) return "exhausted";
    if (this.max !== null && counter <= this.max && counter + BigInt(WINDOW) < this.max) return "too-old";
    if (this.accepted.has(counter)) return "replayed";
    return "ok";
  }

  accept(counter: bigint): void {
    this.accepted.add(counter);
    if (this.max === null || counter > this.max) this.max = counter;
  }

  get acceptedCounters(): ReadonlySet<bigint> {
    return this.accepted;
  }
}
