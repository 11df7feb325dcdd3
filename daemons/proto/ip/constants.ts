// IP, TCP, UDP and ICMP wire constants (RFC 791, RFC 8200, RFC 9293, RFC 768, RFC 792, RFC 4443),
// named as the RFCs name them; every offset is from the start of its own header.

// --- IPv4 (RFC 791 §3.1) ---

export const IPV4_VERSION = 4;
/** The header without options: IHL 5 (32-bit words). */
export const IPV4_HEADER_MIN_LENGTH = 20;
export const IPV4_ADDRESS_LENGTH = 4;
export const IPV4_OFFSET_VERSION_IHL = 0;
export const IPV4_OFFSET_TYPE_OF_SERVICE = 1;
export const IPV4_OFFSET_TOTAL_LENGTH = 2;
export const IPV4_OFFSET_IDENTIFICATION = 4;
/** Flags (3 bits) and Fragment Offset (13 bits, in 8-byte units). */
export const IPV4_OFFSET_FLAGS_FRAGMENT_OFFSET = 6;
export const IPV4_OFFSET_TIME_TO_LIVE = 8;
export const IPV4_OFFSET_PROTOCOL = 9;
export const IPV4_OFFSET_HEADER_CHECKSUM = 10;
export const IPV4_OFFSET_SOURCE_ADDRESS = 12;
export const IPV4_OFFSET_DESTINATION_ADDRESS = 16;
/** The MF ("more fragments") bit of the flags/fragment-offset word. */
export const IPV4_FLAG_MORE_FRAGMENTS = 0x2000;
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;

// --- IPv6 (RFC 8200 §3) ---

export const IPV6_VERSION = 6;
export const IPV6_HEADER_LENGTH = 40;
export const IPV6_ADDRESS_LENGTH = 16;
export const IPV6_OFFSET_PAYLOAD_LENGTH = 4;
export const IPV6_OFFSET_NEXT_HEADER = 6;
export const IPV6_OFFSET_HOP_LIMIT = 7;
export const IPV6_OFFSET_SOURCE_ADDRESS = 8;
export const IPV6_OFFSET_DESTINATION_ADDRESS = 24;

// --- Protocol numbers (IANA "Assigned Internet Protocol Numbers") ---

export const PROTOCOL_ICMP = 1;
export const PROTOCOL_TCP = 6;
export const PROTOCOL_UDP = 17;
export const PROTOCOL_ICMPV6 = 58;

// --- TCP (RFC 9293 §3.1) ---

export const TCP_HEADER_MIN_LENGTH = 20;
export const TCP_OFFSET_SOURCE_PORT = 0;
export const TCP_OFFSET_DESTINATION_PORT = 2;
/** Data Offset (4 bits, 32-bit words) in the high nibble. */
export const TCP_OFFSET_DATA_OFFSET = 12;
export const TCP_OFFSET_FLAGS = 13;
export const TCP_OFFSET_CHECKSUM = 16;
export const TCP_FLAG_FIN = 0x01;
export const TCP_FLAG_SYN = 0x02;
export const TCP_FLAG_RST = 0x04;
export const TCP_FLAG_ACK = 0x10;

// --- UDP (RFC 768) ---

export const UDP_HEADER_LENGTH = 8;
export const UDP_OFFSET_SOURCE_PORT = 0;
export const UDP_OFFSET_DESTINATION_PORT = 2;
export const UDP_OFFSET_LENGTH = 4;
export const UDP_OFFSET_CHECKSUM = 6;

// --- ICMP (RFC 792) and ICMPv6 (RFC 4443): both share the first 8 bytes' layout ---

export const ICMP_HEADER_LENGTH = 8;
export const ICMP_OFFSET_TYPE = 0;
export const ICMP_OFFSET_CODE = 1;
export const ICMP_OFFSET_CHECKSUM = 2;
/** Echo and Echo Reply: Identifier, then Sequence Number. */
export const ICMP_OFFSET_IDENTIFIER = 4;
export const ICMP_OFFSET_SEQUENCE_NUMBER = 6;

export const ICMP_TYPE_ECHO_REPLY = 0;
export const ICMP_TYPE_DESTINATION_UNREACHABLE = 3;
export const ICMP_TYPE_ECHO = 8;
/** Types of ICMPv4 error messages, which an ICMP error must never answer (RFC 1122 §3.2.2). */
export const ICMP_ERROR_TYPES: readonly number[] = [3, 4, 5, 11, 12];
/** "Communication Administratively Prohibited" (RFC 1812 §5.2.7.1). */
export const ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED = 13;
/**
 * An ICMPv4 error quotes as much of the offending datagram as fits without the error exceeding 576
 * bytes (RFC 1812 §4.3.2.3).
 */
export const ICMP_ERROR_MAX_LENGTH = 576;

export const ICMPV6_TYPE_DESTINATION_UNREACHABLE = 1;
export const ICMPV6_TYPE_ECHO_REQUEST = 128;
export const ICMPV6_TYPE_ECHO_REPLY = 129;
/** ICMPv6 types below 128 are errors (RFC 4443 §2.1), which an error must never answer (§2.4 e.1). */
export const ICMPV6_INFORMATIONAL_MIN_TYPE = 128;
/** "Communication with destination administratively prohibited" (RFC 4443 §3.1). */
export const ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED = 1;
/** IPv6's minimum link MTU, which an ICMPv6 error must not exceed (RFC 8200 §5, RFC 4443 §2.4 c). */
export const IPV6_MINIMUM_MTU = 1280;

/** The TTL / Hop Limit of packets we originate (RFC 1700's default, as Linux uses). */
export const DEFAULT_TIME_TO_LIVE = 64;
