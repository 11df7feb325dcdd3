// TAI64N timestamps for handshake initiations (whitepaper §5.4.2): 8 bytes of big-endian TAI seconds
// (2^62 + 10 + Unix seconds) and 4 bytes of big-endian nanoseconds. The responder keeps the greatest
// timestamp per peer and ignores an initiation that does not exceed it, so a replayed initiation
// cannot reset a session.

import { TIMESTAMP_SIZE } from "./constants.js";

/** 2^62 plus the 10 s TAI-UTC offset of the TAI64 label, as wireguard-go and Linux write it. */
const TAI64_BASE = 0x400000000000000an;
/**
 * Nanoseconds are rounded down to 2^24 ns (about 16.8 ms), as the implementations do, so the
 * timestamp does not reveal the sender's clock to a finer grain than needed for ordering.
 */
const WHITENER_MASK = 0xffffff;

/** The TAI64N label of a wall-clock time in Unix nanoseconds. */
export function tai64n(unixNanos: bigint): Uint8Array {
  if (unixNanos < 0n) throw new RangeError("tai64n: time before 1970");
  const out = new Uint8Array(TIMESTAMP_SIZE);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, TAI64_BASE + unixNanos / 1_000_000_000n, false);
  view.setUint32(8, (Number(unixNanos % 1_000_000_000n) & ~WHITENER_MASK) >>> 0, false);
  return out;
}

/** Whether timestamp a is strictly after b (both TAI64N labels: big-endian, so byte order works). */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < TIMESTAMP_SIZE; i++) {
    if (a[i] !== b[i]) return a[i]! > b[i]!;
  }
  return false;
}
