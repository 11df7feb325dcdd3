// The STUN message (RFC 8489 §5, §6.3, §14): decoding untrusted bytes into a StunMessage, and the
// typed view of its attributes.
//
// decodeStun, in the order the checks run:
// 1. The header (§5, §6.3): at least 20 bytes, the two top bits zero, the magic cookie, a Length
//    that is a multiple of 4 and equals what follows the header.
// 2. The attributes (§14): each type-length-value, padded to 4, inside the message.
// 3. What follows an integrity attribute (§9, §14.5, §14.6): after MESSAGE-INTEGRITY only
//    MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count; after MESSAGE-INTEGRITY-SHA256 only
//    FINGERPRINT; everything else there is ignored (counted, not kept).
// 4. FINGERPRINT (§14.7): if present, last and correct.
//
// Checking MESSAGE-INTEGRITY needs a key, so it is a separate step (integrity.ts), as is deciding
// which unknown comprehension-required attributes to answer with 420 (unknownComprehensionRequired).
//
// Attribute values are views into the decoded bytes, not copies: keep the bytes unchanged while the
// message is in use.

import {
  decodeAddress, decodeAddressErrorCode, decodeAddressFamily, decodeChannelNumber, decodeEmpty, decodeErrorCode,
  decodeEvenPort, decodePasswordAlgorithm, decodePasswordAlgorithms, decodeRequestedTransport, decodeReservationToken,
  decodeShortText, decodeTieBreaker, decodeU32, decodeUnknownAttributes, decodeUserHash, decodeUsername, decodeXorAddress,
  type AddressErrorCode, type ErrorCode, type PasswordAlgorithm, type TransportAddress,
} from "./attributes.js";
import {
  ATTR_ADDITIONAL_ADDRESS_FAMILY, ATTR_ADDRESS_ERROR_CODE, ATTR_ALTERNATE_SERVER, ATTR_CHANNEL_NUMBER, ATTR_DATA,
  ATTR_DONT_FRAGMENT, ATTR_ERROR_CODE, ATTR_EVEN_PORT, ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING,
  ATTR_LIFETIME, ATTR_MAPPED_ADDRESS, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_NONCE,
  ATTR_PASSWORD_ALGORITHM, ATTR_PASSWORD_ALGORITHMS, ATTR_PRIORITY, ATTR_REALM, ATTR_REQUESTED_ADDRESS_FAMILY,
  ATTR_REQUESTED_TRANSPORT, ATTR_RESERVATION_TOKEN, ATTR_SOFTWARE, ATTR_UNKNOWN_ATTRIBUTES, ATTR_USE_CANDIDATE,
  ATTR_USERHASH, ATTR_USERNAME, ATTR_XOR_MAPPED_ADDRESS, ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS,
  ATTRIBUTE_ALIGNMENT, ATTRIBUTE_HEADER_SIZE, ATTRIBUTE_OFFSET_LENGTH, ATTRIBUTE_OFFSET_TYPE, COMPREHENSION_OPTIONAL_MIN,
  FINGERPRINT_SIZE, HEADER_OFFSET_COOKIE, HEADER_OFFSET_LENGTH, HEADER_OFFSET_TRANSACTION_ID, HEADER_OFFSET_TYPE,
  HEADER_SIZE, MAGIC_COOKIE, METHOD_MAX, TRANSACTION_ID_SIZE, TYPE_RESERVED_BITS,
} from "./constants.js";
import { fingerprintOf } from "./integrity.js";

/** The message class (§5): the two C bits of the message type. */
export type StunClass = "request" | "indication" | "success" | "error";

const CLASSES: readonly StunClass[] = ["request", "indication", "success", "error"];

/** One attribute as it appears on the wire. */
export interface StunAttribute {
  type: number;
  /** The value without its padding: a view into the decoded bytes. */
  value: Uint8Array;
  /** Where the attribute (its type field) starts in the message, for the integrity checks. */
  offset: number;
}

/** Why decodeStun refused bytes, one value per drop counter. */
export type StunDecodeError =
  | "short" // fewer than 20 bytes
  | "not-stun" // a top bit of the type is set
  | "bad-cookie"
  | "bad-length" // Length not a multiple of 4, or not the size of what follows the header
  | "truncated-attribute" // an attribute runs past the end of the message
  | "misplaced-fingerprint" // FINGERPRINT not the last attribute
  | "bad-fingerprint"; // FINGERPRINT of the wrong size or value

export type StunDecoded = { ok: true; message: StunMessage } | { ok: false; reason: StunDecodeError; detail: string };

/** The 14-bit message type of a method and class (§5: M11..M7 C1 M6..M4 C0 M3..M0). */
export function encodeMessageType(method: number, messageClass: StunClass): number {
  if (!Number.isInteger(method) || method < 0 || method > METHOD_MAX) throw new RangeError(`STUN method ${method} is not 12 bits`);
  const c = CLASSES.indexOf(messageClass);
  if (c < 0) throw new RangeError(`STUN class ${String(messageClass)} is unknown`);
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

/** The method and class of a 14-bit message type. */
export function decodeMessageType(type: number): { method: number; messageClass: StunClass } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const c = ((type >> 4) & 1) | ((type >> 7) & 2);
  return { method, messageClass: CLASSES[c]! };
}

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const pad = (n: number): number => (n + ATTRIBUTE_ALIGNMENT - 1) & ~(ATTRIBUTE_ALIGNMENT - 1);
const fail = (reason: StunDecodeError, detail: string): StunDecoded => ({ ok: false, reason, detail });

/** Decodes one STUN message that fills bytes exactly (a UDP datagram, or a frame cut from a stream). Never throws. */
export function decodeStun(bytes: Uint8Array): StunDecoded {
  // 1. Header.
  if (bytes.length < HEADER_SIZE) return fail("short", `${bytes.length} bytes, a STUN header is ${HEADER_SIZE}`);
  const type = u16(bytes, HEADER_OFFSET_TYPE);
  if ((type & TYPE_RESERVED_BITS) !== 0) return fail("not-stun", `type 0x${type.toString(16)} has a top bit set`);
  if (u32(bytes, HEADER_OFFSET_COOKIE) !== MAGIC_COOKIE) return fail("bad-cookie", "no magic cookie");
  const length = u16(bytes, HEADER_OFFSET_LENGTH);
  if (length % ATTRIBUTE_ALIGNMENT !== 0) return fail("bad-length", `Length ${length} is not a multiple of 4`);
  if (length !== bytes.length - HEADER_SIZE) {
    return fail("bad-length", `Length ${length}, but ${bytes.length - HEADER_SIZE} bytes follow the header`);
  }

  // 2-4. Attributes.
  const attributes: StunAttribute[] = [];
  let ignored = 0;
  let afterIntegrity = false; // MESSAGE-INTEGRITY seen
  let afterIntegritySha256 = false; // MESSAGE-INTEGRITY-SHA256 seen
  for (let at = HEADER_SIZE; at < bytes.length; ) {
    // at stays a multiple of 4 and so does bytes.length, so an attribute header always fits.
    const attributeType = u16(bytes, at + ATTRIBUTE_OFFSET_TYPE);
    const valueLength = u16(bytes, at + ATTRIBUTE_OFFSET_LENGTH);
    const next = at + ATTRIBUTE_HEADER_SIZE + pad(valueLength);
    if (next > bytes.length) {
      return fail("truncated-attribute", `attribute 0x${attributeType.toString(16)} at ${at} runs ${next - bytes.length} bytes past the end`);
    }
    const attribute = { type: attributeType, value: bytes.subarray(at + ATTRIBUTE_HEADER_SIZE, at + ATTRIBUTE_HEADER_SIZE + valueLength), offset: at };
    if (attributeType === ATTR_FINGERPRINT) {
      // §14.7: "When present, the FINGERPRINT attribute MUST be the last attribute in the message."
      if (next !== bytes.length) return fail("misplaced-fingerprint", `FINGERPRINT at ${at} is not the last attribute`);
      if (valueLength !== FINGERPRINT_SIZE) return fail("bad-fingerprint", `FINGERPRINT of ${valueLength} bytes`);
      if (u32(attribute.value, 0) !== fingerprintOf(bytes, at)) return fail("bad-fingerprint", "FINGERPRINT does not match");
      attributes.push(attribute);
    } else if (afterIntegritySha256 || (afterIntegrity && attributeType !== ATTR_MESSAGE_INTEGRITY_SHA256)) {
      // §14.5: "agents MUST ignore all other attributes that follow MESSAGE-INTEGRITY", but for
      // MESSAGE-INTEGRITY-SHA256 and FINGERPRINT; §14.6: all but FINGERPRINT after
      // MESSAGE-INTEGRITY-SHA256. Such an attribute is neither processed nor covered by the HMACs.
      ignored++;
    } else {
      if (attributeType === ATTR_MESSAGE_INTEGRITY) afterIntegrity = true;
      if (attributeType === ATTR_MESSAGE_INTEGRITY_SHA256) afterIntegritySha256 = true;
      attributes.push(attribute);
    }
    at = next;
  }

  const { method, messageClass } = decodeMessageType(type);
  const transactionId = bytes.subarray(HEADER_OFFSET_TRANSACTION_ID, HEADER_OFFSET_TRANSACTION_ID + TRANSACTION_ID_SIZE);
  return { ok: true, message: new StunMessage(method, messageClass, transactionId, attributes, ignored) };
}

/** Every attribute type this codec has a typed decoder for (and MESSAGE-INTEGRITY*, FINGERPRINT). */
export const KNOWN_ATTRIBUTES: ReadonlySet<number> = new Set([
  ATTR_MAPPED_ADDRESS, ATTR_USERNAME, ATTR_MESSAGE_INTEGRITY, ATTR_ERROR_CODE, ATTR_UNKNOWN_ATTRIBUTES,
  ATTR_CHANNEL_NUMBER, ATTR_LIFETIME, ATTR_XOR_PEER_ADDRESS, ATTR_DATA, ATTR_REALM, ATTR_NONCE, ATTR_XOR_RELAYED_ADDRESS,
  ATTR_REQUESTED_ADDRESS_FAMILY, ATTR_EVEN_PORT, ATTR_REQUESTED_TRANSPORT, ATTR_DONT_FRAGMENT,
  ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_PASSWORD_ALGORITHM, ATTR_USERHASH, ATTR_XOR_MAPPED_ADDRESS, ATTR_RESERVATION_TOKEN,
  ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_ADDITIONAL_ADDRESS_FAMILY, ATTR_ADDRESS_ERROR_CODE, ATTR_PASSWORD_ALGORITHMS,
  ATTR_SOFTWARE, ATTR_ALTERNATE_SERVER, ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING,
]);

/**
 * A decoded STUN message. Typed getters read the first occurrence of their attribute (§14: "only
 * the first occurrence needs to be processed"), or every occurrence for the ones TURN repeats
 * (XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS); each returns undefined when the attribute is absent or
 * malformed. Use has() to tell those apart where the answer differs.
 */
export class StunMessage {
  readonly method: number;
  readonly class: StunClass;
  /** 12 bytes: a view into the decoded bytes. */
  readonly transactionId: Uint8Array;
  /** The attributes to process, in order; those ignored after an integrity attribute are left out. */
  readonly attributes: readonly StunAttribute[];
  /** How many attributes followed an integrity attribute and were ignored (§14.5, §14.6). */
  readonly ignored: number;

  constructor(method: number, messageClass: StunClass, transactionId: Uint8Array, attributes: readonly StunAttribute[], ignored = 0) {
    this.method = method;
    this.class = messageClass;
    this.transactionId = transactionId;
    this.attributes = attributes;
    this.ignored = ignored;
  }

  /** The first attribute of this type. */
  get(type: number): StunAttribute | undefined {
    return this.attributes.find((a) => a.type === type);
  }

  getAll(type: number): StunAttribute[] {
    return this.attributes.filter((a) => a.type === type);
  }

  has(type: number): boolean {
    return this.get(type) !== undefined;
  }

  /**
   * Comprehension-required types (below 0x8000) not in understood, in order of first appearance:
   * the list for a 420 (Unknown Attribute) answer to a request, or for discarding a response or
   * indication (§6.3.1-6.3.3).
   */
  unknownComprehensionRequired(understood: ReadonlySet<number> = KNOWN_ATTRIBUTES): number[] {
    const out: number[] = [];
    for (const { type } of this.attributes) {
      if (type < COMPREHENSION_OPTIONAL_MIN && !understood.has(type) && !out.includes(type)) out.push(type);
    }
    return out;
  }

  private decode<T>(type: number, decoder: (value: Uint8Array) => T | undefined): T | undefined {
    const attribute = this.get(type);
    return attribute === undefined ? undefined : decoder(attribute.value);
  }

  private decodeAll<T>(type: number, decoder: (value: Uint8Array) => T | undefined): T[] | undefined {
    const out: T[] = [];
    for (const attribute of this.getAll(type)) {
      const value = decoder(attribute.value);
      if (value === undefined) return undefined;
      out.push(value);
    }
    return out.length > 0 ? out : undefined;
  }

  private readonly xor = (value: Uint8Array): TransportAddress | undefined => decodeXorAddress(value, this.transactionId);

  // --- RFC 8489 ---
  mappedAddress(): TransportAddress | undefined { return this.decode(ATTR_MAPPED_ADDRESS, decodeAddress); }
  xorMappedAddress(): TransportAddress | undefined { return this.decode(ATTR_XOR_MAPPED_ADDRESS, this.xor); }
  alternateServer(): TransportAddress | undefined { return this.decode(ATTR_ALTERNATE_SERVER, decodeAddress); }
  errorCode(): ErrorCode | undefined { return this.decode(ATTR_ERROR_CODE, decodeErrorCode); }
  unknownAttributes(): number[] | undefined { return this.decode(ATTR_UNKNOWN_ATTRIBUTES, decodeUnknownAttributes); }
  username(): string | undefined { return this.decode(ATTR_USERNAME, decodeUsername); }
  userHash(): Uint8Array | undefined { return this.decode(ATTR_USERHASH, decodeUserHash); }
  realm(): string | undefined { return this.decode(ATTR_REALM, decodeShortText); }
  nonce(): string | undefined { return this.decode(ATTR_NONCE, decodeShortText); }
  software(): string | undefined { return this.decode(ATTR_SOFTWARE, decodeShortText); }
  passwordAlgorithm(): PasswordAlgorithm | undefined { return this.decode(ATTR_PASSWORD_ALGORITHM, decodePasswordAlgorithm); }
  passwordAlgorithms(): PasswordAlgorithm[] | undefined { return this.decode(ATTR_PASSWORD_ALGORITHMS, decodePasswordAlgorithms); }

  // --- RFC 8656 (TURN) ---
  /** The first XOR-PEER-ADDRESS. */
  xorPeerAddress(): TransportAddress | undefined { return this.decode(ATTR_XOR_PEER_ADDRESS, this.xor); }
  /** Every XOR-PEER-ADDRESS (a CreatePermission may carry several); undefined if none or any is malformed. */
  xorPeerAddresses(): TransportAddress[] | undefined { return this.decodeAll(ATTR_XOR_PEER_ADDRESS, this.xor); }
  /** The first XOR-RELAYED-ADDRESS. */
  xorRelayedAddress(): TransportAddress | undefined { return this.decode(ATTR_XOR_RELAYED_ADDRESS, this.xor); }
  /** Every XOR-RELAYED-ADDRESS (one per family of a dual-stack allocation, RFC 8656 §7.3). */
  xorRelayedAddresses(): TransportAddress[] | undefined { return this.decodeAll(ATTR_XOR_RELAYED_ADDRESS, this.xor); }
  /** Seconds. */
  lifetime(): number | undefined { return this.decode(ATTR_LIFETIME, decodeU32); }
  /** An IANA protocol number (17 for UDP). */
  requestedTransport(): number | undefined { return this.decode(ATTR_REQUESTED_TRANSPORT, decodeRequestedTransport); }
  requestedAddressFamily(): 4 | 6 | undefined { return this.decode(ATTR_REQUESTED_ADDRESS_FAMILY, decodeAddressFamily); }
  additionalAddressFamily(): 4 | 6 | undefined { return this.decode(ATTR_ADDITIONAL_ADDRESS_FAMILY, decodeAddressFamily); }
  addressErrorCode(): AddressErrorCode | undefined { return this.decode(ATTR_ADDRESS_ERROR_CODE, decodeAddressErrorCode); }
  channelNumber(): number | undefined { return this.decode(ATTR_CHANNEL_NUMBER, decodeChannelNumber); }
  data(): Uint8Array | undefined { return this.get(ATTR_DATA)?.value; }
  /** Whether DONT-FRAGMENT is present (and empty, as it must be). */
  dontFragment(): boolean { return this.decode(ATTR_DONT_FRAGMENT, decodeEmpty) === true; }
  evenPort(): { reserveNext: boolean } | undefined { return this.decode(ATTR_EVEN_PORT, decodeEvenPort); }
  reservationToken(): Uint8Array | undefined { return this.decode(ATTR_RESERVATION_TOKEN, decodeReservationToken); }

  // --- RFC 8445 (ICE) ---
  priority(): number | undefined { return this.decode(ATTR_PRIORITY, decodeU32); }
  /** Whether USE-CANDIDATE is present (and empty, as it must be). */
  useCandidate(): boolean { return this.decode(ATTR_USE_CANDIDATE, decodeEmpty) === true; }
  iceControlled(): bigint | undefined { return this.decode(ATTR_ICE_CONTROLLED, decodeTieBreaker); }
  iceControlling(): bigint | undefined { return this.decode(ATTR_ICE_CONTROLLING, decodeTieBreaker); }
}
