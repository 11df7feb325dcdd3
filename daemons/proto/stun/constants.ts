// STUN (RFC 8489), TURN (RFC 8656) and ICE (RFC 8445) constants, named as the RFCs name them, with
// every wire offset of the header, the attribute TLV and ChannelData. Nothing else in the STUN code
// spells a number from the specs.

// --- Message header (RFC 8489 §5) ---
export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_SIZE = 20;
export const HEADER_OFFSET_TYPE = 0;
export const HEADER_OFFSET_LENGTH = 2;
export const HEADER_OFFSET_COOKIE = 4;
export const HEADER_OFFSET_TRANSACTION_ID = 8;
export const TRANSACTION_ID_SIZE = 12;
/** The two most significant bits of every STUN message are zero (§5). */
export const TYPE_RESERVED_BITS = 0xc000;
/** Methods are 12 bits (§5). */
export const METHOD_MAX = 0x0fff;
/** The Length field is 16 bits and counts the attributes only, never the header (§5). */
export const MESSAGE_LENGTH_MAX = 0xffff;

// --- Attribute TLV (RFC 8489 §14) ---
export const ATTRIBUTE_HEADER_SIZE = 4;
export const ATTRIBUTE_OFFSET_TYPE = 0;
export const ATTRIBUTE_OFFSET_LENGTH = 2;
/** Attribute values are padded to a multiple of this (§14). */
export const ATTRIBUTE_ALIGNMENT = 4;
/** Types below this are comprehension-required, at or above it comprehension-optional (§14). */
export const COMPREHENSION_OPTIONAL_MIN = 0x8000;

// --- Methods (RFC 8489 §18.2, RFC 8656 §17) ---
export const METHOD_BINDING = 0x001;
export const METHOD_ALLOCATE = 0x003;
export const METHOD_REFRESH = 0x004;
export const METHOD_SEND = 0x006;
export const METHOD_DATA = 0x007;
export const METHOD_CREATE_PERMISSION = 0x008;
export const METHOD_CHANNEL_BIND = 0x009;

// --- Attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 8445 §16.1) ---
// Comprehension-required range (0x0000-0x7FFF).
export const ATTR_MAPPED_ADDRESS = 0x0001;
export const ATTR_USERNAME = 0x0006;
export const ATTR_MESSAGE_INTEGRITY = 0x0008;
export const ATTR_ERROR_CODE = 0x0009;
export const ATTR_UNKNOWN_ATTRIBUTES = 0x000a;
export const ATTR_CHANNEL_NUMBER = 0x000c;
export const ATTR_LIFETIME = 0x000d;
export const ATTR_XOR_PEER_ADDRESS = 0x0012;
export const ATTR_DATA = 0x0013;
export const ATTR_REALM = 0x0014;
export const ATTR_NONCE = 0x0015;
export const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
export const ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017;
export const ATTR_EVEN_PORT = 0x0018;
export const ATTR_REQUESTED_TRANSPORT = 0x0019;
export const ATTR_DONT_FRAGMENT = 0x001a;
export const ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001c;
export const ATTR_PASSWORD_ALGORITHM = 0x001d;
export const ATTR_USERHASH = 0x001e;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
export const ATTR_RESERVATION_TOKEN = 0x0022;
export const ATTR_PRIORITY = 0x0024;
export const ATTR_USE_CANDIDATE = 0x0025;
// Comprehension-optional range (0x8000-0xFFFF).
export const ATTR_ADDITIONAL_ADDRESS_FAMILY = 0x8000;
export const ATTR_ADDRESS_ERROR_CODE = 0x8001;
export const ATTR_PASSWORD_ALGORITHMS = 0x8002;
export const ATTR_SOFTWARE = 0x8022;
export const ATTR_ALTERNATE_SERVER = 0x8023;
export const ATTR_FINGERPRINT = 0x8028;
export const ATTR_ICE_CONTROLLED = 0x8029;
export const ATTR_ICE_CONTROLLING = 0x802a;

// --- Attribute value sizes and limits ---
/** HMAC-SHA1 output (§14.5). */
export const MESSAGE_INTEGRITY_SIZE = 20;
/** HMAC-SHA256 output; the attribute may carry a truncation of 16 to 32 bytes in steps of 4 (§14.6). */
export const MESSAGE_INTEGRITY_SHA256_SIZE = 32;
export const MESSAGE_INTEGRITY_SHA256_MIN = 16;
export const FINGERPRINT_SIZE = 4;
/** FINGERPRINT is the CRC-32 of the message before it, XORed with this ("STUN" in ASCII) (§14.7). */
export const FINGERPRINT_XOR = 0x5354554e;
/**
 * USERNAME (§14.3): sent as "fewer than 509 bytes"; "A compliant implementation MUST be able to
 * parse a UTF-8-encoded sequence of 763 or fewer octets to be compatible with [RFC5389]."
 */
export const USERNAME_MAX_ENCODE_BYTES = 508;
export const USERNAME_MAX_DECODE_BYTES = 763;
/**
 * REALM, NONCE, SOFTWARE and reason phrases: fewer than 128 characters, "which can be as long as 509
 * bytes when encoding them and as long as 763 bytes when decoding them" (§14.8-14.10, §14.9, §14.14).
 */
export const TEXT_MAX_CHARACTERS = 127;
export const TEXT_MAX_ENCODE_BYTES = 509;
export const TEXT_MAX_DECODE_BYTES = 763;
export const USERHASH_SIZE = 32;
export const RESERVATION_TOKEN_SIZE = 8;
export const TIE_BREAKER_SIZE = 8;

// --- Address attributes (RFC 8489 §14.1, §14.2) ---
export const ADDRESS_FAMILY_IPV4 = 0x01;
export const ADDRESS_FAMILY_IPV6 = 0x02;
export const ADDRESS_OFFSET_FAMILY = 1;
export const ADDRESS_OFFSET_PORT = 2;
export const ADDRESS_OFFSET_ADDRESS = 4;
export const IPV4_SIZE = 4;
export const IPV6_SIZE = 16;

// --- ERROR-CODE (RFC 8489 §14.8) and ADDRESS-ERROR-CODE (RFC 8656 §18.12) ---
export const ERROR_OFFSET_CLASS = 2;
export const ERROR_OFFSET_NUMBER = 3;
export const ERROR_OFFSET_REASON = 4;
export const ERROR_CLASS_MASK = 0x07;
export const ERROR_CLASS_MIN = 3;
export const ERROR_CLASS_MAX = 6;
export const ERROR_NUMBER_MAX = 99;

// Error codes (RFC 8489 §14.8, RFC 8656 §19).
export const ERROR_TRY_ALTERNATE = 300;
export const ERROR_BAD_REQUEST = 400;
export const ERROR_UNAUTHENTICATED = 401;
export const ERROR_FORBIDDEN = 403;
export const ERROR_UNKNOWN_ATTRIBUTE = 420;
export const ERROR_ALLOCATION_MISMATCH = 437;
export const ERROR_STALE_NONCE = 438;
export const ERROR_ADDRESS_FAMILY_NOT_SUPPORTED = 440;
export const ERROR_WRONG_CREDENTIALS = 441;
export const ERROR_UNSUPPORTED_TRANSPORT_PROTOCOL = 442;
export const ERROR_PEER_ADDRESS_FAMILY_MISMATCH = 443;
export const ERROR_ALLOCATION_QUOTA_REACHED = 486;
export const ERROR_ROLE_CONFLICT = 487;
export const ERROR_SERVER_ERROR = 500;
export const ERROR_INSUFFICIENT_CAPACITY = 508;

// --- PASSWORD-ALGORITHM(S) (RFC 8489 §14.11, §14.12, §18.5) ---
export const PASSWORD_ALGORITHM_MD5 = 0x0001;
export const PASSWORD_ALGORITHM_SHA256 = 0x0002;

// --- REQUESTED-TRANSPORT (RFC 8656 §18.7): an IANA protocol number ---
export const TRANSPORT_UDP = 17;
export const TRANSPORT_TCP = 6;

// --- EVEN-PORT (RFC 8656 §18.6) ---
export const EVEN_PORT_RESERVE_BIT = 0x80;

// --- ChannelData (RFC 8656 §12) ---
export const CHANNEL_NUMBER_MIN = 0x4000;
export const CHANNEL_NUMBER_MAX = 0x4fff;
/**
 * RFC 5766 §11 let clients use 0x4000-0x7FFF; RFC 8656 narrowed that to 0x4FFF, but clients of the
 * older RFC (coturn's turnutils_uclient among them) still pick numbers above it, so a server accepts
 * the old range while our own client keeps to the new one.
 */
export const CHANNEL_NUMBER_LEGACY_MAX = 0x7fff;
export const CHANNEL_DATA_HEADER_SIZE = 4;
export const CHANNEL_DATA_OFFSET_NUMBER = 0;
export const CHANNEL_DATA_OFFSET_LENGTH = 2;
