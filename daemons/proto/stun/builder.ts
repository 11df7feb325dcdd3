// Encoding a STUN message (RFC 8489 §5, §14): attributes in the order they are added, each padded
// to 4 with zero bytes, then the integrity attributes and FINGERPRINT in the order §14.5-14.7 fix:
//
// 1. the attributes added, in order;
// 2. MESSAGE-INTEGRITY (HMAC-SHA1), the Length field first set to end just after it (§14.5);
// 3. MESSAGE-INTEGRITY-SHA256, Length set to end just after it, so it covers MESSAGE-INTEGRITY (§14.6);
// 4. FINGERPRINT, over everything before it with the final Length (§14.7).
//
// Builder input is our own: a value that cannot be encoded throws, as a bug should.

import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  checkFixedSize, encodeAddress, encodeAddressErrorCode, encodeAddressFamily, encodeChannelNumber, encodeErrorCode,
  encodeEvenPort, encodePasswordAlgorithm, encodePasswordAlgorithms, encodeRequestedTransport, encodeShortText,
  encodeTieBreaker, encodeU32, encodeUnknownAttributes, encodeUsername, encodeXorAddress, type PasswordAlgorithm,
  type TransportAddress,
} from "./attributes.js";
import {
  ATTR_ADDITIONAL_ADDRESS_FAMILY, ATTR_ADDRESS_ERROR_CODE, ATTR_ALTERNATE_SERVER, ATTR_CHANNEL_NUMBER, ATTR_DATA,
  ATTR_DONT_FRAGMENT, ATTR_ERROR_CODE, ATTR_EVEN_PORT, ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING,
  ATTR_LIFETIME, ATTR_MAPPED_ADDRESS, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_NONCE,
  ATTR_PASSWORD_ALGORITHM, ATTR_PASSWORD_ALGORITHMS, ATTR_PRIORITY, ATTR_REALM, ATTR_REQUESTED_ADDRESS_FAMILY,
  ATTR_REQUESTED_TRANSPORT, ATTR_RESERVATION_TOKEN, ATTR_SOFTWARE, ATTR_UNKNOWN_ATTRIBUTES, ATTR_USE_CANDIDATE,
  ATTR_USERHASH, ATTR_USERNAME, ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS,
  ATTRIBUTE_ALIGNMENT, ATTRIBUTE_HEADER_SIZE, FINGERPRINT_SIZE, HEADER_OFFSET_COOKIE, HEADER_OFFSET_LENGTH,
  HEADER_OFFSET_TRANSACTION_ID, HEADER_OFFSET_TYPE, HEADER_SIZE, MAGIC_COOKIE, MESSAGE_INTEGRITY_SHA256_SIZE,
  MESSAGE_INTEGRITY_SIZE, MESSAGE_LENGTH_MAX, RESERVATION_TOKEN_SIZE, TRANSACTION_ID_SIZE, USERHASH_SIZE,
} from "./constants.js";
import { fingerprintOf, integrityHmac, validSha256Length } from "./integrity.js";
import { encodeMessageType, type StunClass } from "./message.js";

export interface BuildOptions {
  /** Key for MESSAGE-INTEGRITY (HMAC-SHA1): shortTermKey() or longTermKey(). */
  integrity?: Uint8Array;
  /** Key for MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256). */
  integritySha256?: Uint8Array;
  /** Bytes of the HMAC-SHA256 to send: 16 to 32 in steps of 4 (§14.6); 32 unless told. */
  integritySha256Length?: number;
  /** Whether to end with FINGERPRINT. */
  fingerprint?: boolean;
}

const pad = (n: number): number => (n + ATTRIBUTE_ALIGNMENT - 1) & ~(ATTRIBUTE_ALIGNMENT - 1);

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

/** Builds one STUN message: add attributes in order, then build() once or more (with different keys). */
export class StunBuilder {
  private readonly attributes: { type: number; value: Uint8Array }[] = [];
  readonly type: number;

  constructor(readonly method: number, readonly messageClass: StunClass, readonly transactionId: Uint8Array) {
    this.type = encodeMessageType(method, messageClass);
    checkFixedSize("transaction ID", transactionId, TRANSACTION_ID_SIZE);
  }

  /** Any attribute, value as given (copied); the typed add* methods below encode theirs. */
  add(type: number, value: Uint8Array): this {
    if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw new RangeError(`attribute type ${type} is not 16 bits`);
    if (value.length > 0xffff) throw new RangeError(`attribute 0x${type.toString(16)}: ${value.length} bytes is over 65535`);
    this.attributes.push({ type, value: value.slice() });
    return this;
  }

  // --- RFC 8489 ---
  addMappedAddress(address: TransportAddress): this { return this.add(ATTR_MAPPED_ADDRESS, encodeAddress(address)); }
  addXorMappedAddress(address: TransportAddress): this { return this.add(ATTR_XOR_MAPPED_ADDRESS, encodeXorAddress(address, this.transactionId)); }
  addAlternateServer(address: TransportAddress): this { return this.add(ATTR_ALTERNATE_SERVER, encodeAddress(address)); }
  /** ERROR-CODE: code 300 to 699 and a reason phrase of fewer than 128 characters. */
  addErrorCode(code: number, reason: string): this { return this.add(ATTR_ERROR_CODE, encodeErrorCode(code, reason)); }
  addUnknownAttributes(types: readonly number[]): this { return this.add(ATTR_UNKNOWN_ATTRIBUTES, encodeUnknownAttributes(types)); }
  addUsername(username: string): this { return this.add(ATTR_USERNAME, encodeUsername(username)); }
  addUserHash(hash: Uint8Array): this { return this.add(ATTR_USERHASH, checkFixedSize("USERHASH", hash, USERHASH_SIZE)); }
  addRealm(realm: string): this { return this.add(ATTR_REALM, encodeShortText("REALM", realm)); }
  addNonce(nonce: string): this { return this.add(ATTR_NONCE, encodeShortText("NONCE", nonce)); }
  addSoftware(software: string): this { return this.add(ATTR_SOFTWARE, encodeShortText("SOFTWARE", software)); }
  addPasswordAlgorithm(entry: PasswordAlgorithm): this { return this.add(ATTR_PASSWORD_ALGORITHM, encodePasswordAlgorithm(entry)); }
  addPasswordAlgorithms(entries: readonly PasswordAlgorithm[]): this { return this.add(ATTR_PASSWORD_ALGORITHMS, encodePasswordAlgorithms(entries)); }

  // --- RFC 8656 (TURN) ---
  addXorPeerAddress(address: TransportAddress): this { return this.add(ATTR_XOR_PEER_ADDRESS, encodeXorAddress(address, this.transactionId)); }
  addXorRelayedAddress(address: TransportAddress): this { return this.add(ATTR_XOR_RELAYED_ADDRESS, encodeXorAddress(address, this.transactionId)); }
  /** LIFETIME in seconds. */
  addLifetime(seconds: number): this { return this.add(ATTR_LIFETIME, encodeU32(seconds)); }
  /** REQUESTED-TRANSPORT: an IANA protocol number (TRANSPORT_UDP). */
  addRequestedTransport(protocol: number): this { return this.add(ATTR_REQUESTED_TRANSPORT, encodeRequestedTransport(protocol)); }
  addRequestedAddressFamily(family: 4 | 6): this { return this.add(ATTR_REQUESTED_ADDRESS_FAMILY, encodeAddressFamily(family)); }
  addAdditionalAddressFamily(family: 4 | 6): this { return this.add(ATTR_ADDITIONAL_ADDRESS_FAMILY, encodeAddressFamily(family)); }
  addAddressErrorCode(family: 4 | 6, code: number, reason: string): this {
    return this.add(ATTR_ADDRESS_ERROR_CODE, encodeAddressErrorCode(family, code, reason));
  }
  addChannelNumber(channel: number): this { return this.add(ATTR_CHANNEL_NUMBER, encodeChannelNumber(channel)); }
  addData(data: Uint8Array): this { return this.add(ATTR_DATA, data); }
  addDontFragment(): this { return this.add(ATTR_DONT_FRAGMENT, new Uint8Array(0)); }
  addEvenPort(reserveNext: boolean): this { return this.add(ATTR_EVEN_PORT, encodeEvenPort(reserveNext)); }
  addReservationToken(token: Uint8Array): this {
    return this.add(ATTR_RESERVATION_TOKEN, checkFixedSize("RESERVATION-TOKEN", token, RESERVATION_TOKEN_SIZE));
  }

  // --- RFC 8445 (ICE) ---
  addPriority(priority: number): this { return this.add(ATTR_PRIORITY, encodeU32(priority)); }
  addUseCandidate(): this { return this.add(ATTR_USE_CANDIDATE, new Uint8Array(0)); }
  addIceControlled(tieBreaker: bigint): this { return this.add(ATTR_ICE_CONTROLLED, encodeTieBreaker(tieBreaker)); }
  addIceControlling(tieBreaker: bigint): this { return this.add(ATTR_ICE_CONTROLLING, encodeTieBreaker(tieBreaker)); }

  /** The message bytes, with the integrity attributes and FINGERPRINT the options ask for. */
  build(options: BuildOptions = {}): Uint8Array {
    const sha256Length = options.integritySha256Length ?? MESSAGE_INTEGRITY_SHA256_SIZE;
    if (!validSha256Length(sha256Length)) throw new RangeError(`MESSAGE-INTEGRITY-SHA256 of ${sha256Length} bytes`);
    let size = HEADER_SIZE;
    for (const { value } of this.attributes) size += ATTRIBUTE_HEADER_SIZE + pad(value.length);
    if (options.integrity !== undefined) size += ATTRIBUTE_HEADER_SIZE + MESSAGE_INTEGRITY_SIZE;
    if (options.integritySha256 !== undefined) size += ATTRIBUTE_HEADER_SIZE + sha256Length;
    if (options.fingerprint === true) size += ATTRIBUTE_HEADER_SIZE + FINGERPRINT_SIZE;
    if (size - HEADER_SIZE > MESSAGE_LENGTH_MAX) throw new RangeError(`STUN message of ${size} bytes: Length would exceed 65535`);

    // 1. Header and attributes; the Length field is set before each HMAC and CRC below.
    const out = new Uint8Array(size);
    putU16(out, HEADER_OFFSET_TYPE, this.type);
    putU32(out, HEADER_OFFSET_COOKIE, MAGIC_COOKIE);
    out.set(this.transactionId, HEADER_OFFSET_TRANSACTION_ID);
    let at = HEADER_SIZE;
    const write = (type: number, value: Uint8Array): void => {
      putU16(out, at, type);
      putU16(out, at + 2, value.length);
      out.set(value, at + ATTRIBUTE_HEADER_SIZE);
      at += ATTRIBUTE_HEADER_SIZE + pad(value.length);
    };
    for (const { type, value } of this.attributes) write(type, value);

    // 2. MESSAGE-INTEGRITY.
    if (options.integrity !== undefined) {
      write(ATTR_MESSAGE_INTEGRITY, integrityHmac(sha1, options.integrity, out, at, MESSAGE_INTEGRITY_SIZE));
    }
    // 3. MESSAGE-INTEGRITY-SHA256.
    if (options.integritySha256 !== undefined) {
      const mac = integrityHmac(sha256, options.integritySha256, out, at, sha256Length);
      write(ATTR_MESSAGE_INTEGRITY_SHA256, mac.subarray(0, sha256Length));
    }
    // 4. FINGERPRINT, with the final Length in the header.
    putU16(out, HEADER_OFFSET_LENGTH, size - HEADER_SIZE);
    if (options.fingerprint === true) {
      const crc = new Uint8Array(FINGERPRINT_SIZE);
      putU32(crc, 0, fingerprintOf(out, at));
      write(ATTR_FINGERPRINT, crc);
    }
    return out;
  }
}
