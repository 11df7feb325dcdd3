// Typed attribute values (RFC 8489 §14, RFC 8656 §18, RFC 8445 §16.1): one decoder and one encoder
// per value format. Decoders take the value bytes as they came off the wire and return undefined for
// a malformed value; they never throw. Encoders take our own values and throw on one that cannot be
// encoded, which is a bug in the caller, not a packet.
//
// Padding is not part of a value: decodeStun strips it, the builder adds it.

import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";
import {
  ADDRESS_FAMILY_IPV4, ADDRESS_FAMILY_IPV6, ADDRESS_OFFSET_ADDRESS, ADDRESS_OFFSET_FAMILY, ADDRESS_OFFSET_PORT,
  ATTRIBUTE_ALIGNMENT, ERROR_CLASS_MASK, ERROR_CLASS_MAX, ERROR_CLASS_MIN, ERROR_NUMBER_MAX, ERROR_OFFSET_CLASS,
  ERROR_OFFSET_NUMBER, ERROR_OFFSET_REASON, EVEN_PORT_RESERVE_BIT, IPV4_SIZE, IPV6_SIZE, MAGIC_COOKIE,
  RESERVATION_TOKEN_SIZE, TEXT_MAX_CHARACTERS, TEXT_MAX_DECODE_BYTES, TEXT_MAX_ENCODE_BYTES, TIE_BREAKER_SIZE,
  TRANSACTION_ID_SIZE, USERHASH_SIZE, USERNAME_MAX_DECODE_BYTES, USERNAME_MAX_ENCODE_BYTES,
} from "./constants.js";

/** An IP address and port, in the text form daemons/native's Endpoint uses. */
export interface TransportAddress {
  family: 4 | 6;
  /** IPv4 dotted quad, or IPv6 in RFC 5952 form (lowercase, longest zero run as "::"). */
  address: string;
  port: number;
}

/** ERROR-CODE (RFC 8489 §14.8): code is class * 100 + number, 300 to 699. */
export interface ErrorCode {
  code: number;
  reason: string;
}

/** ADDRESS-ERROR-CODE (RFC 8656 §18.12): an ERROR-CODE about one address family of an allocation. */
export interface AddressErrorCode extends ErrorCode {
  family: 4 | 6;
}

/** One entry of PASSWORD-ALGORITHM or PASSWORD-ALGORITHMS (RFC 8489 §14.11, §14.12). */
export interface PasswordAlgorithm {
  algorithm: number;
  parameters: Uint8Array;
}

const pad = (n: number): number => (n + ATTRIBUTE_ALIGNMENT - 1) & ~(ATTRIBUTE_ALIGNMENT - 1);

// --- Numbers ---

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

function putU16(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 8;
  b[at + 1] = value;
}

function putU32(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 24;
  b[at + 1] = value >>> 16;
  b[at + 2] = value >>> 8;
  b[at + 3] = value;
}

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${name}: ${value} is not an integer in 0..${max}`);
}

/** A 32-bit unsigned value: LIFETIME (RFC 8656 §18.2), PRIORITY (RFC 8445 §16.1). */
export function decodeU32(value: Uint8Array): number | undefined {
  return value.length === 4 ? u32(value, 0) : undefined;
}

export function encodeU32(value: number): Uint8Array {
  checkUint("u32 attribute", value, 0xffffffff);
  const out = new Uint8Array(4);
  putU32(out, 0, value);
  return out;
}

/** ICE-CONTROLLED / ICE-CONTROLLING: a 64-bit tie-breaker (RFC 8445 §16.1). */
export function decodeTieBreaker(value: Uint8Array): bigint | undefined {
  if (value.length !== TIE_BREAKER_SIZE) return undefined;
  return (BigInt(u32(value, 0)) << 32n) | BigInt(u32(value, 4));
}

export function encodeTieBreaker(value: bigint): Uint8Array {
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`tie-breaker ${value} is not a 64-bit unsigned value`);
  const out = new Uint8Array(TIE_BREAKER_SIZE);
  putU32(out, 0, Number(value >> 32n));
  putU32(out, 4, Number(value & 0xffffffffn));
  return out;
}

/** Flags with no value: DONT-FRAGMENT (RFC 8656 §18.8), USE-CANDIDATE (RFC 8445 §16.1). */
export function decodeEmpty(value: Uint8Array): true | undefined {
  return value.length === 0 ? true : undefined;
}

/** CHANNEL-NUMBER (RFC 8656 §18.1): the number, then 16 RFFU bits. The range is the caller's to check. */
export function decodeChannelNumber(value: Uint8Array): number | undefined {
  return value.length === 4 ? u16(value, 0) : undefined;
}

export function encodeChannelNumber(channel: number): Uint8Array {
  checkUint("CHANNEL-NUMBER", channel, 0xffff);
  const out = new Uint8Array(4);
  putU16(out, 0, channel);
  return out;
}

/** REQUESTED-TRANSPORT (RFC 8656 §18.7): an IANA protocol number, then 24 RFFU bits. */
export function decodeRequestedTransport(value: Uint8Array): number | undefined {
  return value.length === 4 ? value[0] : undefined;
}

export function encodeRequestedTransport(protocol: number): Uint8Array {
  checkUint("REQUESTED-TRANSPORT", protocol, 0xff);
  return Uint8Array.of(protocol, 0, 0, 0);
}

/**
 * REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.10, §18.11): a family byte,
 * then 24 reserved bits. Undefined for a family other than IPv4 or IPv6, which the server answers
 * with 440 (Address Family not Supported) rather than 400: test `has()` to tell the two apart.
 */
export function decodeAddressFamily(value: Uint8Array): 4 | 6 | undefined {
  if (value.length !== 4) return undefined;
  return familyOf(value[0]!);
}

export function encodeAddressFamily(family: 4 | 6): Uint8Array {
  return Uint8Array.of(familyCode(family), 0, 0, 0);
}

/** EVEN-PORT (RFC 8656 §18.6): one byte, whose top bit (R) asks to reserve the next port too. */
export function decodeEvenPort(value: Uint8Array): { reserveNext: boolean } | undefined {
  return value.length === 1 ? { reserveNext: (value[0]! & EVEN_PORT_RESERVE_BIT) !== 0 } : undefined;
}

export function encodeEvenPort(reserveNext: boolean): Uint8Array {
  return Uint8Array.of(reserveNext ? EVEN_PORT_RESERVE_BIT : 0);
}

/** RESERVATION-TOKEN (RFC 8656 §18.9): 8 opaque bytes. */
export function decodeReservationToken(value: Uint8Array): Uint8Array | undefined {
  return value.length === RESERVATION_TOKEN_SIZE ? value : undefined;
}

/** USERHASH (RFC 8489 §14.4): a SHA-256 digest. */
export function decodeUserHash(value: Uint8Array): Uint8Array | undefined {
  return value.length === USERHASH_SIZE ? value : undefined;
}

export function checkFixedSize(name: string, value: Uint8Array, size: number): Uint8Array {
  if (value.length !== size) throw new RangeError(`${name}: ${value.length} bytes, must be ${size}`);
  return value;
}

// --- Text ---

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** UTF-8 text of at most maxBytes bytes and (if given) maxCharacters code points; undefined otherwise. */
export function decodeText(value: Uint8Array, maxBytes: number, maxCharacters = Infinity): string | undefined {
  if (value.length > maxBytes) return undefined;
  let text: string;
  try {
    text = utf8Decoder.decode(value);
  } catch {
    return undefined; // not UTF-8
  }
  if (maxCharacters !== Infinity && countCharacters(text) > maxCharacters) return undefined;
  return text;
}

export function encodeText(name: string, text: string, maxBytes: number, maxCharacters = Infinity): Uint8Array {
  const bytes = utf8Encoder.encode(text);
  if (bytes.length > maxBytes) throw new RangeError(`${name}: ${bytes.length} bytes, at most ${maxBytes}`);
  if (countCharacters(text) > maxCharacters) throw new RangeError(`${name}: more than ${maxCharacters} characters`);
  return bytes;
}

function countCharacters(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** USERNAME (RFC 8489 §14.3). */
export const decodeUsername = (value: Uint8Array): string | undefined => decodeText(value, USERNAME_MAX_DECODE_BYTES);
export const encodeUsername = (text: string): Uint8Array => encodeText("USERNAME", text, USERNAME_MAX_ENCODE_BYTES);

/** REALM, NONCE, SOFTWARE (RFC 8489 §14.9, §14.10, §14.14): fewer than 128 characters. */
export const decodeShortText = (value: Uint8Array): string | undefined =>
  decodeText(value, TEXT_MAX_DECODE_BYTES, TEXT_MAX_CHARACTERS);
export const encodeShortText = (name: string, text: string): Uint8Array =>
  encodeText(name, text, TEXT_MAX_ENCODE_BYTES, TEXT_MAX_CHARACTERS);

// --- Addresses ---

function familyOf(code: number): 4 | 6 | undefined {
  return code === ADDRESS_FAMILY_IPV4 ? 4 : code === ADDRESS_FAMILY_IPV6 ? 6 : undefined;
}

function familyCode(family: 4 | 6): number {
  if (family !== 4 && family !== 6) throw new RangeError(`address family ${String(family)} is neither 4 nor 6`);
  return family === 4 ? ADDRESS_FAMILY_IPV4 : ADDRESS_FAMILY_IPV6;
}

/** The bytes of a TransportAddress; throws when the text is not an address of its family. */
export function addressBytes(address: TransportAddress): Uint8Array {
  const bytes = address.family === 4 ? parseIpv4(address.address) : parseIpv6(address.address);
  if (bytes === undefined || bytes.length !== (address.family === 4 ? IPV4_SIZE : IPV6_SIZE)) {
    throw new TypeError(`${address.address} is not an IPv${address.family} address`);
  }
  return bytes;
}

/** The text form of 4 or 16 address bytes. */
export function formatAddress(bytes: Uint8Array): string {
  // A template, not bytes.join("."): a typed array's join is several times slower, and every
  // parsed IP packet formats its two addresses.
  if (bytes.length === IPV4_SIZE) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const words = Array.from({ length: 8 }, (_, i) => u16(bytes, 2 * i));
  // RFC 5952 §4.2: the longest run of two or more zero words becomes "::", the first on a tie.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLength).join(":")}`;
}

/**
 * MAPPED-ADDRESS and ALTERNATE-SERVER (RFC 8489 §14.1, §14.15): 8 reserved bits (ignored), family,
 * port, then 4 or 16 address bytes.
 */
export function decodeAddress(value: Uint8Array): TransportAddress | undefined {
  return readAddress(value, undefined);
}

export function encodeAddress(address: TransportAddress): Uint8Array {
  return writeAddress(address, undefined);
}

/**
 * XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS (RFC 8489 §14.2, RFC 8656 §18.3,
 * §18.5): the port XORed with the top 16 bits of the magic cookie, an IPv4 address with the cookie,
 * an IPv6 address with the cookie followed by the transaction ID.
 */
export function decodeXorAddress(value: Uint8Array, transactionId: Uint8Array): TransportAddress | undefined {
  if (transactionId.length !== TRANSACTION_ID_SIZE) return undefined;
  return readAddress(value, transactionId);
}

export function encodeXorAddress(address: TransportAddress, transactionId: Uint8Array): Uint8Array {
  checkFixedSize("transaction ID", transactionId, TRANSACTION_ID_SIZE);
  return writeAddress(address, transactionId);
}

/** The XOR mask of an address: the magic cookie, then (IPv6) the transaction ID. */
function xorMask(transactionId: Uint8Array): Uint8Array {
  const mask = new Uint8Array(4 + TRANSACTION_ID_SIZE);
  putU32(mask, 0, MAGIC_COOKIE);
  mask.set(transactionId, 4);
  return mask;
}

function readAddress(value: Uint8Array, transactionId: Uint8Array | undefined): TransportAddress | undefined {
  if (value.length < ADDRESS_OFFSET_ADDRESS) return undefined;
  const family = familyOf(value[ADDRESS_OFFSET_FAMILY]!);
  if (family === undefined) return undefined;
  const size = family === 4 ? IPV4_SIZE : IPV6_SIZE;
  if (value.length !== ADDRESS_OFFSET_ADDRESS + size) return undefined;
  let port = u16(value, ADDRESS_OFFSET_PORT);
  const bytes = value.slice(ADDRESS_OFFSET_ADDRESS);
  if (transactionId !== undefined) {
    port ^= MAGIC_COOKIE >>> 16;
    const mask = xorMask(transactionId);
    for (let i = 0; i < size; i++) bytes[i]! ^= mask[i]!;
  }
  return { family, address: formatAddress(bytes), port };
}

function writeAddress(address: TransportAddress, transactionId: Uint8Array | undefined): Uint8Array {
  checkUint("port", address.port, 0xffff);
  const bytes = addressBytes(address);
  const out = new Uint8Array(ADDRESS_OFFSET_ADDRESS + bytes.length);
  out[ADDRESS_OFFSET_FAMILY] = familyCode(address.family);
  let port = address.port;
  if (transactionId !== undefined) {
    port ^= MAGIC_COOKIE >>> 16;
    const mask = xorMask(transactionId);
    for (let i = 0; i < bytes.length; i++) bytes[i]! ^= mask[i]!;
  }
  putU16(out, ADDRESS_OFFSET_PORT, port);
  out.set(bytes, ADDRESS_OFFSET_ADDRESS);
  return out;
}

// --- Errors ---

/**
 * ERROR-CODE (RFC 8489 §14.8): 21 reserved bits, the class (3 to 6) in 3 bits, the number (0 to
 * 99) in 8, then a UTF-8 reason phrase of fewer than 128 characters.
 */
export function decodeErrorCode(value: Uint8Array): ErrorCode | undefined {
  if (value.length < ERROR_OFFSET_REASON) return undefined;
  const errorClass = value[ERROR_OFFSET_CLASS]! & ERROR_CLASS_MASK;
  const number = value[ERROR_OFFSET_NUMBER]!;
  if (errorClass < ERROR_CLASS_MIN || errorClass > ERROR_CLASS_MAX || number > ERROR_NUMBER_MAX) return undefined;
  const reason = decodeShortText(value.subarray(ERROR_OFFSET_REASON));
  return reason === undefined ? undefined : { code: errorClass * 100 + number, reason };
}

export function encodeErrorCode(code: number, reason: string): Uint8Array {
  if (!Number.isInteger(code) || code < ERROR_CLASS_MIN * 100 || code > ERROR_CLASS_MAX * 100 + ERROR_NUMBER_MAX) {
    throw new RangeError(`error code ${code} is not in 300..699`);
  }
  const text = encodeShortText("reason phrase", reason);
  const out = new Uint8Array(ERROR_OFFSET_REASON + text.length);
  out[ERROR_OFFSET_CLASS] = Math.floor(code / 100);
  out[ERROR_OFFSET_NUMBER] = code % 100;
  out.set(text, ERROR_OFFSET_REASON);
  return out;
}

/** ADDRESS-ERROR-CODE (RFC 8656 §18.12): an ERROR-CODE whose first byte names the address family. */
export function decodeAddressErrorCode(value: Uint8Array): AddressErrorCode | undefined {
  if (value.length < ERROR_OFFSET_REASON) return undefined;
  const family = familyOf(value[0]!);
  const error = decodeErrorCode(value);
  return family === undefined || error === undefined ? undefined : { family, ...error };
}

export function encodeAddressErrorCode(family: 4 | 6, code: number, reason: string): Uint8Array {
  const out = encodeErrorCode(code, reason);
  out[0] = familyCode(family);
  return out;
}

/** UNKNOWN-ATTRIBUTES (RFC 8489 §14.13): a list of 16-bit attribute types, padded as any value. */
export function decodeUnknownAttributes(value: Uint8Array): number[] | undefined {
  if (value.length % 2 !== 0) return undefined;
  const out: number[] = [];
  for (let at = 0; at < value.length; at += 2) out.push(u16(value, at));
  return out;
}

export function encodeUnknownAttributes(types: readonly number[]): Uint8Array {
  const out = new Uint8Array(types.length * 2);
  types.forEach((type, i) => {
    checkUint("attribute type", type, 0xffff);
    putU16(out, 2 * i, type);
  });
  return out;
}

// --- Password algorithms ---

/** Reads entries of algorithm (16), parameters length (16), parameters padded to 4; undefined if malformed. */
function readAlgorithms(value: Uint8Array): PasswordAlgorithm[] | undefined {
  const out: PasswordAlgorithm[] = [];
  let at = 0;
  while (at < value.length) {
    if (at + 4 > value.length) return undefined;
    const length = u16(value, at + 2);
    if (at + 4 + length > value.length) return undefined;
    out.push({ algorithm: u16(value, at), parameters: value.subarray(at + 4, at + 4 + length) });
    // The last entry's padding may be the attribute's own padding, which decodeStun has stripped.
    at += 4 + pad(length);
  }
  return out;
}

function writeAlgorithms(entries: readonly PasswordAlgorithm[]): Uint8Array {
  const size = entries.reduce((n, e) => n + 4 + pad(e.parameters.length), 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const { algorithm, parameters } of entries) {
    checkUint("password algorithm", algorithm, 0xffff);
    checkUint("password algorithm parameters length", parameters.length, 0xffff);
    putU16(out, at, algorithm);
    putU16(out, at + 2, parameters.length);
    out.set(parameters, at + 4);
    at += 4 + pad(parameters.length);
  }
  return out;
}

/** PASSWORD-ALGORITHM (RFC 8489 §14.11): one entry. */
export function decodePasswordAlgorithm(value: Uint8Array): PasswordAlgorithm | undefined {
  const entries = readAlgorithms(value);
  return entries?.length === 1 ? entries[0] : undefined;
}

export function encodePasswordAlgorithm(entry: PasswordAlgorithm): Uint8Array {
  const out = writeAlgorithms([entry]);
  // The value's own length stops at the parameters; the attribute padding covers the rest.
  return out.subarray(0, 4 + entry.parameters.length);
}

/** PASSWORD-ALGORITHMS (RFC 8489 §14.12): a list of entries, at least one. */
export function decodePasswordAlgorithms(value: Uint8Array): PasswordAlgorithm[] | undefined {
  const entries = readAlgorithms(value);
  return entries !== undefined && entries.length > 0 ? entries : undefined;
}

export function encodePasswordAlgorithms(entries: readonly PasswordAlgorithm[]): Uint8Array {
  if (entries.length === 0) throw new RangeError("PASSWORD-ALGORITHMS: at least one algorithm");
  const out = writeAlgorithms(entries);
  const last = entries[entries.length - 1]!;
  return out.subarray(0, out.length - pad(last.parameters.length) + last.parameters.length);
}
