// The three checks a STUN message can carry and the keys they use:
//
// 1. FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message before it, XOR 0x5354554e. decodeStun
//    checks it; the builder writes it.
// 2. MESSAGE-INTEGRITY (§14.5): HMAC-SHA1 over the message up to the attribute, with the header's
//    Length field rewritten to end just after the attribute.
// 3. MESSAGE-INTEGRITY-SHA256 (§14.6): the same with HMAC-SHA256, possibly truncated to 16..32 bytes.
//
// Keys (§9.1.1, §9.2.2): short-term = the password; long-term = MD5 or SHA-256 of
// username ":" realm ":" password.

import { hmac } from "@noble/hashes/hmac.js";
import { md5, sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTRIBUTE_ALIGNMENT, ATTRIBUTE_HEADER_SIZE, FINGERPRINT_XOR,
  HEADER_OFFSET_LENGTH, HEADER_SIZE, MESSAGE_INTEGRITY_SHA256_MIN, MESSAGE_INTEGRITY_SHA256_SIZE, MESSAGE_INTEGRITY_SIZE,
  PASSWORD_ALGORITHM_MD5, PASSWORD_ALGORITHM_SHA256,
} from "./constants.js";
import type { StunMessage } from "./message.js";

// --- CRC-32 (ISO 3309 / ITU-T V.42, the one zlib and PNG use: reflected, polynomial 0xEDB88320) ---

const CRC_TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c >>> 0;
}

/** CRC-32 of bytes, continuing from a previous result as zlib's crc32(data, value) does. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The FINGERPRINT value of a message whose FINGERPRINT attribute starts at offset (§14.7). */
export function fingerprintOf(bytes: Uint8Array, offset: number): number {
  return (crc32(bytes.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0;
}

// --- MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 ---

/**
 * The HMAC of the message before an integrity attribute at offset whose value is valueLength bytes:
 * the header with its Length field pointing at the end of that attribute, then the attributes
 * before it (§14.5, §14.6). Attributes after it, if any, are not covered.
 */
export function integrityHmac(
  hash: typeof sha1 | typeof sha256, key: Uint8Array, bytes: Uint8Array, offset: number, valueLength: number,
): Uint8Array {
  const header = bytes.slice(0, HEADER_SIZE);
  const length = offset + ATTRIBUTE_HEADER_SIZE + valueLength - HEADER_SIZE;
  header[HEADER_OFFSET_LENGTH] = length >>> 8;
  header[HEADER_OFFSET_LENGTH + 1] = length;
  return hmac.create(hash, key).update(header).update(bytes.subarray(HEADER_SIZE, offset)).digest();
}

/** Why an integrity check failed: no such attribute, a value of the wrong size, or a wrong HMAC. */
export type IntegrityFailure = "absent" | "malformed" | "mismatch";
export type IntegrityCheck = { ok: true } | { ok: false; reason: IntegrityFailure };

/** Checks MESSAGE-INTEGRITY (HMAC-SHA1, §14.5) of a decoded message against the bytes it came from. */
export function verifyIntegrity(message: StunMessage, bytes: Uint8Array, key: Uint8Array): IntegrityCheck {
  const attribute = message.get(ATTR_MESSAGE_INTEGRITY);
  if (attribute === undefined) return { ok: false, reason: "absent" };
  if (attribute.value.length !== MESSAGE_INTEGRITY_SIZE || !covers(bytes, attribute)) return { ok: false, reason: "malformed" };
  const expected = integrityHmac(sha1, key, bytes, attribute.offset, MESSAGE_INTEGRITY_SIZE);
  return equal(expected, attribute.value) ? { ok: true } : { ok: false, reason: "mismatch" };
}

/**
 * Checks MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, §14.6). "The value must be the full 32 bytes unless
 * the STUN Usage explicitly specifies that truncation is allowed", so a shorter value is malformed
 * unless minimumLength (16 to 32, a multiple of 4) allows it; a truncated value must match the
 * leading bytes of the HMAC.
 */
export function verifyIntegritySha256(
  message: StunMessage, bytes: Uint8Array, key: Uint8Array, { minimumLength = MESSAGE_INTEGRITY_SHA256_SIZE }: { minimumLength?: number } = {},
): IntegrityCheck {
  const attribute = message.get(ATTR_MESSAGE_INTEGRITY_SHA256);
  if (attribute === undefined) return { ok: false, reason: "absent" };
  const length = attribute.value.length;
  if (!validSha256Length(length) || length < minimumLength || !covers(bytes, attribute)) return { ok: false, reason: "malformed" };
  const expected = integrityHmac(sha256, key, bytes, attribute.offset, length).subarray(0, length);
  return equal(expected, attribute.value) ? { ok: true } : { ok: false, reason: "mismatch" };
}

export function validSha256Length(length: number): boolean {
  return length >= MESSAGE_INTEGRITY_SHA256_MIN && length <= MESSAGE_INTEGRITY_SHA256_SIZE && length % ATTRIBUTE_ALIGNMENT === 0;
}

/** Whether the attribute lies within bytes: a message checked against bytes it was not decoded from is refused. */
function covers(bytes: Uint8Array, attribute: { offset: number; value: Uint8Array }): boolean {
  return attribute.offset >= HEADER_SIZE && attribute.offset + ATTRIBUTE_HEADER_SIZE + attribute.value.length <= bytes.length;
}

/** Compares without an early exit, so the time taken does not say how many leading bytes matched. */
function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// --- Keys ---

const utf8 = new TextEncoder();

/** RFC 3454 B.1, "commonly mapped to nothing": [first, last] code point ranges. */
const MAPPED_TO_NOTHING: readonly [number, number][] = [
  [0x00ad, 0x00ad], [0x034f, 0x034f], [0x1806, 0x1806], [0x180b, 0x180d], [0x200b, 0x200d], [0x2060, 0x2060],
  [0xfe00, 0xfe0f], [0xfeff, 0xfeff],
];
/** RFC 3454 C.1.2, non-ASCII space characters (U+200B is in B.1 too and is dropped first). */
const NON_ASCII_SPACE: readonly [number, number][] = [
  [0x00a0, 0x00a0], [0x1680, 0x1680], [0x2000, 0x200a], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000],
];
const within = (ranges: readonly [number, number][], c: number): boolean => ranges.some(([lo, hi]) => c >= lo && c <= hi);

/**
 * Prepares a password or realm for a key: an approximation of SASLprep (RFC 4013), which RFC 5389
 * §15.4 names and the RFC 5769 §2.4 vector uses. It does SASLprep's mapping (§2.1: B.1 characters
 * dropped, non-ASCII spaces to U+0020) and NFKC (§2.2), but not its prohibited-output, bidi or
 * unassigned-code-point checks (§2.3-2.5): a string SASLprep would refuse is hashed anyway.
 *
 * RFC 8489 §9.2.2 names OpaqueString (RFC 8265 §4.2) instead: NFC, spaces mapped, nothing dropped.
 * The two agree on printable ASCII, which is all Wardline mints (`<expiry>:<id>` usernames,
 * base64 passwords, credentials.ts), and on the RFC 8489 Appendix B.1 vector, whose password is the
 * SASLprep'd "TheMatrIX" of RFC 5769. They differ only on non-ASCII input, where SASLprep keeps
 * RFC 5389 peers and the published vectors working.
 */
export function prepareSecret(text: string): string {
  let mapped = "";
  for (const character of text) {
    const c = character.codePointAt(0)!;
    if (within(MAPPED_TO_NOTHING, c)) continue;
    mapped += within(NON_ASCII_SPACE, c) ? " " : character;
  }
  return mapped.normalize("NFKC");
}

/** The short-term credential key (RFC 8489 §9.1.1): the prepared password itself. */
export function shortTermKey(password: string): Uint8Array {
  return utf8.encode(prepareSecret(password));
}

export type KeyAlgorithm = typeof PASSWORD_ALGORITHM_MD5 | typeof PASSWORD_ALGORITHM_SHA256;

/**
 * The long-term credential key (RFC 8489 §9.2.2): MD5 (the default, and the only one RFC 5389 and
 * coturn's REST credentials use) or, for PASSWORD-ALGORITHM SHA-256, SHA-256 of
 * username ":" realm ":" password. The username is used as it goes on the wire (it was prepared
 * before it was sent); realm and password are prepared by prepareSecret.
 */
export function longTermKey(username: string, realm: string, password: string, algorithm: KeyAlgorithm = PASSWORD_ALGORITHM_MD5): Uint8Array {
  const input = utf8.encode(`${username}:${prepareSecret(realm)}:${prepareSecret(password)}`);
  if (algorithm === PASSWORD_ALGORITHM_MD5) return md5(input);
  if (algorithm === PASSWORD_ALGORITHM_SHA256) return sha256(input);
  throw new RangeError(`password algorithm ${String(algorithm)} is neither MD5 (1) nor SHA-256 (2)`);
}

/** USERHASH (RFC 8489 §14.4): SHA-256 of username ":" realm. */
export function userHash(username: string, realm: string): Uint8Array {
  return sha256(utf8.encode(`${username}:${prepareSecret(realm)}`));
}
