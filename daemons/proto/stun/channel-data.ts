// TURN ChannelData framing (RFC 8656 §12.4, §12.5) and the first-byte demultiplexing of RFC 7983 §7.
//
//    0                   1                   2                   3
//   |         Channel Number        |            Length             |
//   |                      Application Data (Length bytes)   ...  padding to 4 over TCP
//
// Over TCP and TLS the message is padded to a multiple of 4 and the padding is not counted in
// Length; over UDP the padding "is not required but MAY be included" (§12.5). Decoding accepts both.
//
// This is the TypeScript codec for tests and the control path; the relay's per-packet path frames
// ChannelData in the engine (DESIGN.md, Hot paths), and this file is its oracle.

import {
  ATTRIBUTE_ALIGNMENT, CHANNEL_DATA_HEADER_SIZE, CHANNEL_DATA_OFFSET_LENGTH, CHANNEL_DATA_OFFSET_NUMBER, CHANNEL_NUMBER_LEGACY_MAX,
  CHANNEL_NUMBER_MAX, CHANNEL_NUMBER_MIN, HEADER_OFFSET_LENGTH, HEADER_SIZE,
} from "./constants.js";

/** Whether a number is a channel number a client may bind: 0x4000 through 0x4FFF (RFC 8656 §12). */
export function isChannelNumber(channel: number): boolean {
  return Number.isInteger(channel) && channel >= CHANNEL_NUMBER_MIN && channel <= CHANNEL_NUMBER_MAX;
}

/** Whether a server accepts a channel number: RFC 5766's 0x4000 through 0x7FFF (CHANNEL_NUMBER_LEGACY_MAX). */
export function isAcceptedChannelNumber(channel: number): boolean {
  return Number.isInteger(channel) && channel >= CHANNEL_NUMBER_MIN && channel <= CHANNEL_NUMBER_LEGACY_MAX;
}

/** Why decodeChannelData refused bytes. */
export type ChannelDataError = "short" | "bad-channel" | "truncated" | "trailing-bytes";

export type ChannelDataDecoded =
  | { ok: true; channel: number; data: Uint8Array }
  | { ok: false; reason: ChannelDataError; detail: string };

const pad = (n: number): number => (n + ATTRIBUTE_ALIGNMENT - 1) & ~(ATTRIBUTE_ALIGNMENT - 1);

/**
 * Decodes one ChannelData message that fills bytes: the data is a view into bytes. Up to 3 bytes
 * after the data are accepted as padding (their values ignored); more, or fewer than Length, are
 * refused. Never throws.
 */
export function decodeChannelData(bytes: Uint8Array): ChannelDataDecoded {
  if (bytes.length < CHANNEL_DATA_HEADER_SIZE) return { ok: false, reason: "short", detail: `${bytes.length} bytes` };
  const channel = (bytes[CHANNEL_DATA_OFFSET_NUMBER]! << 8) | bytes[CHANNEL_DATA_OFFSET_NUMBER + 1]!;
  if (!isAcceptedChannelNumber(channel)) return { ok: false, reason: "bad-channel", detail: `channel 0x${channel.toString(16)}` };
  const length = (bytes[CHANNEL_DATA_OFFSET_LENGTH]! << 8) | bytes[CHANNEL_DATA_OFFSET_LENGTH + 1]!;
  const end = CHANNEL_DATA_HEADER_SIZE + length;
  // §12.5: a datagram "too short to contain the claimed length" is discarded.
  if (end > bytes.length) return { ok: false, reason: "truncated", detail: `Length ${length}, ${bytes.length - CHANNEL_DATA_HEADER_SIZE} bytes of data` };
  if (bytes.length > CHANNEL_DATA_HEADER_SIZE + pad(length)) {
    return { ok: false, reason: "trailing-bytes", detail: `${bytes.length - end} bytes after ${length} bytes of data` };
  }
  return { ok: true, channel, data: bytes.subarray(CHANNEL_DATA_HEADER_SIZE, end) };
}

/** Encodes a ChannelData message; pad to a multiple of 4 over TCP and TLS (RFC 8656 §12.5). */
export function encodeChannelData(channel: number, data: Uint8Array, { padded = false }: { padded?: boolean } = {}): Uint8Array {
  if (!isAcceptedChannelNumber(channel)) throw new RangeError(`channel 0x${channel.toString(16)} is outside 0x4000-0x7FFF`);
  if (data.length > 0xffff) throw new RangeError(`ChannelData of ${data.length} bytes: Length is 16 bits`);
  const out = new Uint8Array(CHANNEL_DATA_HEADER_SIZE + (padded ? pad(data.length) : data.length));
  out[CHANNEL_DATA_OFFSET_NUMBER] = channel >>> 8;
  out[CHANNEL_DATA_OFFSET_NUMBER + 1] = channel;
  out[CHANNEL_DATA_OFFSET_LENGTH] = data.length >>> 8;
  out[CHANNEL_DATA_OFFSET_LENGTH + 1] = data.length;
  out.set(data, CHANNEL_DATA_HEADER_SIZE);
  return out;
}

/** What a datagram or stream frame is, by its first byte (RFC 7983 §7, which RFC 8656 §12 follows). */
export type FirstByteKind = "stun" | "zrtp" | "dtls" | "channel-data" | "rtp" | "other";

/**
 * Classifies by first byte: 0-3 STUN, 16-19 ZRTP, 20-63 DTLS, 64-79 TURN ChannelData, 128-191
 * RTP/RTCP, anything else other (RFC 7983 §7 says drop). WireGuard messages also start with 1-4 (the
 * low byte of their little-endian type), so on a socket shared with WireGuard "stun" only means
 * "check for the magic cookie" (decodeStun).
 */
export function firstByteKind(byte: number): FirstByteKind {
  if (byte >= 0 && byte <= 3) return "stun";
  if (byte >= 16 && byte <= 19) return "zrtp";
  if (byte >= 20 && byte <= 63) return "dtls";
  if (byte >= 64 && byte <= 79) return "channel-data";
  if (byte >= 128 && byte <= 191) return "rtp";
  return "other";
}

/**
 * The size of the STUN or ChannelData frame at the start of a TCP/TLS stream (RFC 8656 §12.5:
 * STUN is 20 + Length, ChannelData 4 + Length padded to 4), once its first 4 bytes have arrived;
 * undefined when they have not, or when the first byte is neither.
 */
export function streamFrameSize(bytes: Uint8Array): number | undefined {
  if (bytes.length < CHANNEL_DATA_HEADER_SIZE) return undefined;
  // Both put a 16-bit Length at offset 2.
  const length = (bytes[HEADER_OFFSET_LENGTH]! << 8) | bytes[HEADER_OFFSET_LENGTH + 1]!;
  switch (firstByteKind(bytes[0]!)) {
    case "stun":
      return HEADER_SIZE + length;
    case "channel-data":
      return CHANNEL_DATA_HEADER_SIZE + pad(length);
    default:
      return undefined;
  }
}
