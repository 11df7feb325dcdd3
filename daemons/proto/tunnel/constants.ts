// WireGuard transport data message layout (whitepaper §5.4.6) and the replay window (RFC 6479),
// named as the whitepaper and wireguard-go name them. Handshake layouts live in ../wireguard/constants.ts.

export { MESSAGE_TRANSPORT_TYPE, REJECT_AFTER_MESSAGES, TAG_SIZE } from "../wireguard/constants.js";

/** type (u8) + 3 reserved zero bytes, read as one little-endian u32. */
export const MESSAGE_TRANSPORT_OFFSET_TYPE = 0;
/** The receiver's index (u32, little-endian). */
export const MESSAGE_TRANSPORT_OFFSET_RECEIVER = 4;
/** The 64-bit counter (u64, little-endian), also the AEAD nonce. */
export const MESSAGE_TRANSPORT_OFFSET_COUNTER = 8;
/** The sealed, padded packet. */
export const MESSAGE_TRANSPORT_OFFSET_CONTENT = 16;
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
/** An empty packet (keepalive) is the header and a tag. */
export const MESSAGE_TRANSPORT_MIN_SIZE = 32;
/** Plaintext is zero-padded to a multiple of this (whitepaper §5.4.6). */
export const MESSAGE_PADDING_MULTIPLE = 16;

// --- Replay window (RFC 6479, wireguard-go replay.go) ---
/** Bits in one block of the ring. */
export const BLOCK_BITS = 32;
/** Blocks in the ring; a power of two. */
export const RING_BLOCKS = 128;
/** Counters this far behind the newest one accepted may still arrive (RFC 6479: ring bits minus a block). */
export const WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS;

// --- Tunnel node (ours) ---
/** Packets a connection holds while ICE has no path yet; the oldest go first beyond this. */
export const PENDING_PACKETS_MAX = 256;
/** An allocation that ended is asked for again after this long, in ms. */
export const RELAY_RETRY_INTERVAL = 5_000;
