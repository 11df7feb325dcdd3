// Spec constants, named as the specifications name them. Every wire offset of the WireGuard
// transport message is here; nothing else in the engine spells a number from a spec.
//
// WireGuard: "WireGuard: Next Generation Kernel Network Tunnel" (Donenfeld), §5.4.6 and §6.
// ChaCha20-Poly1305: RFC 8439. BLAKE2s: RFC 7693. IPv4: RFC 791. IPv6: RFC 8200.

// --- ChaCha20 (RFC 8439 §2.3) ---
/** "expand 32-byte k", little-endian words. */
export const CHACHA_CONST0: u32 = 0x61707865;
export const CHACHA_CONST1: u32 = 0x3320646e;
export const CHACHA_CONST2: u32 = 0x79622d32;
export const CHACHA_CONST3: u32 = 0x6b206574;
export const CHACHA_BLOCK_SIZE: u32 = 64;
export const CHACHA_KEY_SIZE: u32 = 32;
export const CHACHA_NONCE_SIZE: u32 = 12;
export const XCHACHA_NONCE_SIZE: u32 = 24;
export const HCHACHA_NONCE_SIZE: u32 = 16;

// --- Poly1305 / AEAD (RFC 8439 §2.5, §2.8) ---
export const POLY1305_KEY_SIZE: u32 = 32;
export const POLY1305_TAG_SIZE: u32 = 16;
export const POLY1305_BLOCK_SIZE: u32 = 16;

// --- BLAKE2s (RFC 7693 §2.1, §3.2) ---
export const BLAKE2S_BLOCK_SIZE: u32 = 64;
export const BLAKE2S_OUT_MAX: u32 = 32;
export const BLAKE2S_KEY_MAX: u32 = 32;

// --- WireGuard transport data message (whitepaper §5.4.6) ---
export const MESSAGE_TRANSPORT_TYPE: u32 = 4;
export const MESSAGE_TRANSPORT_OFFSET_TYPE: u32 = 0;
export const MESSAGE_TRANSPORT_OFFSET_RECEIVER: u32 = 4;
export const MESSAGE_TRANSPORT_OFFSET_COUNTER: u32 = 8;
export const MESSAGE_TRANSPORT_OFFSET_CONTENT: u32 = 16;
export const MESSAGE_TRANSPORT_HEADER_SIZE: u32 = 16;
/** Header plus the empty-plaintext tag: the size of a keepalive. */
export const MESSAGE_TRANSPORT_SIZE: u32 = MESSAGE_TRANSPORT_HEADER_SIZE + POLY1305_TAG_SIZE;
/** Plaintext is zero-padded to a multiple of this. */
export const MESSAGE_PADDING_MULTIPLE: u32 = 16;
/** Largest message on the wire: one UDP datagram. */
export const MAX_MESSAGE_SIZE: u32 = 65535;
/** Largest padded plaintext that still fits MAX_MESSAGE_SIZE. */
export const MAX_CONTENT_SIZE: u32 = (MAX_MESSAGE_SIZE - MESSAGE_TRANSPORT_SIZE) & ~(MESSAGE_PADDING_MULTIPLE - 1);

/** Whitepaper §6.1: no message is sent or accepted with a counter at or past this. */
export const REJECT_AFTER_MESSAGES: u64 = 0xffffffffffffffff - 0x2000; // 2^64 - 2^13 - 1
/** Whitepaper §6.1: after this many messages the initiator must rekey. */
export const REKEY_AFTER_MESSAGES: u64 = 0x1000000000000000; // 2^60

// --- Replay window (RFC 6479 bitmap ring; whitepaper §5.4.6 sliding window) ---
/** 64-bit blocks in the ring; a power of two. */
export const REPLAY_RING_BLOCKS: u32 = 64;
/** Counters this far behind the newest are still accepted once: (blocks - 1) * 64 = 4032. */
export const REPLAY_WINDOW_SIZE: u64 = <u64>(REPLAY_RING_BLOCKS - 1) * 64;

// --- Inner IP packets (RFC 791 §3.1, RFC 8200 §3), all fields big-endian ---
/** The version nibble: the high four bits of the first byte, in both versions. */
export const IP_VERSION_SHIFT: u32 = 4;
export const IPV4_VERSION: u32 = 4;
export const IPV6_VERSION: u32 = 6;
/** An IPv4 header without options. */
export const IPV4_HEADER_SIZE: u32 = 20;
export const IPV4_OFFSET_TOTAL_LENGTH: u32 = 2;
export const IPV4_OFFSET_SRC: u32 = 12;
export const IPV4_OFFSET_DST: u32 = 16;
export const IPV4_ADDRESS_BITS: u32 = 32;
export const IPV6_HEADER_SIZE: u32 = 40;
/** Excludes the 40-byte fixed header. */
export const IPV6_OFFSET_PAYLOAD_LENGTH: u32 = 4;
export const IPV6_OFFSET_SRC: u32 = 8;
export const IPV6_OFFSET_DST: u32 = 24;
export const IPV6_ADDRESS_BITS: u32 = 128;

// --- Per-packet results (mirrored in daemons/engine/constants.ts) ---
export const STATUS_OK: u32 = 0;
/** Shorter than a keepalive (open). */
export const STATUS_TOO_SHORT: u32 = 1;
/** Larger than MAX_MESSAGE_SIZE (open) or MAX_CONTENT_SIZE (seal). */
export const STATUS_TOO_LARGE: u32 = 2;
/** Type field is not MESSAGE_TRANSPORT_TYPE with zero reserved bytes. */
export const STATUS_BAD_TYPE: u32 = 3;
/** No live session for the receiver index (open) or slot (seal). */
export const STATUS_NO_SESSION: u32 = 4;
/** Counter already seen inside the window. */
export const STATUS_REPLAYED: u32 = 5;
/** Counter older than the window. */
export const STATUS_TOO_OLD: u32 = 6;
/** Counter at or past REJECT_AFTER_MESSAGES. */
export const STATUS_COUNTER_EXHAUSTED: u32 = 7;
/** The Poly1305 tag did not verify; the packet is left undecrypted. */
export const STATUS_AUTH_FAILED: u32 = 8;
/** The descriptor points outside the packet arena. */
export const STATUS_OUT_OF_BOUNDS: u32 = 9;
/** Cryptokey routing (whitepaper §2): the inner source is not an allowed IP of the session's peer. */
export const STATUS_SOURCE_NOT_ALLOWED: u32 = 10;
/** The plaintext is not an IPv4 or IPv6 packet: too short, another version, or a length past its end. */
export const STATUS_BAD_INNER_PACKET: u32 = 11;
/** No allowed IP of any peer covers the inner destination. */
export const STATUS_NO_ROUTE: u32 = 12;
/** Relay: no channel binding for this (client, channel) or (relay, peer). */
export const STATUS_NO_CHANNEL: u32 = 13;

/** The peer id of "no peer": a route lookup that matched nothing, or a session not yet given a peer. */
export const NO_PEER: u32 = 0xffffffff;

// --- Engine-level results of control calls ---
export const RESULT_OK: i32 = 0;
export const RESULT_ALREADY_INITIALIZED: i32 = -1;
export const RESULT_BAD_ARGUMENT: i32 = -2;
export const RESULT_INDEX_IN_USE: i32 = -3;
export const RESULT_TABLE_FULL: i32 = -4;
export const RESULT_NOT_INITIALIZED: i32 = -5;
export const RESULT_NOT_FOUND: i32 = -6;

// --- The gateway's fast path (engine/packet.ts, engine/gateway.ts): RFC 791, 8200, 9293, 768, 792, 4443 ---
export const IPV4_OFFSET_FRAGMENT: u32 = 6;
export const IPV4_OFFSET_PROTOCOL: u32 = 9;
export const IPV4_OFFSET_CHECKSUM: u32 = 10;
/** The MF bit and the 13-bit Fragment Offset (8-byte units) of the flags/fragment word. */
export const IPV4_FLAG_MORE_FRAGMENTS: u32 = 0x2000;
export const IPV4_FRAGMENT_OFFSET_MASK: u32 = 0x1fff;
export const IPV6_OFFSET_NEXT_HEADER: u32 = 6;
export const PROTOCOL_ICMP: u32 = 1;
export const PROTOCOL_TCP: u32 = 6;
export const PROTOCOL_UDP: u32 = 17;
export const PROTOCOL_ICMPV6: u32 = 58;
export const TCP_HEADER_SIZE: u32 = 20;
/** Data Offset (32-bit words) in the high nibble. */
export const TCP_OFFSET_DATA_OFFSET: u32 = 12;
export const TCP_OFFSET_FLAGS: u32 = 13;
export const TCP_OFFSET_CHECKSUM: u32 = 16;
export const TCP_FLAG_FIN: u32 = 0x01;
export const TCP_FLAG_RST: u32 = 0x04;
export const TCP_FLAG_ACK: u32 = 0x10;
export const UDP_HEADER_SIZE: u32 = 8;
export const UDP_OFFSET_LENGTH: u32 = 4;
export const UDP_OFFSET_CHECKSUM: u32 = 6;
/** ICMP and ICMPv6 share the first 8 bytes' layout. */
export const ICMP_HEADER_SIZE: u32 = 8;
export const ICMP_OFFSET_TYPE: u32 = 0;
export const ICMP_OFFSET_CODE: u32 = 1;
export const ICMP_OFFSET_CHECKSUM: u32 = 2;
export const ICMP_OFFSET_IDENTIFIER: u32 = 4;
export const ICMP_TYPE_ECHO_REPLY: u32 = 0;
export const ICMP_TYPE_DESTINATION_UNREACHABLE: u32 = 3;
export const ICMP_TYPE_SOURCE_QUENCH: u32 = 4;
export const ICMP_TYPE_REDIRECT: u32 = 5;
export const ICMP_TYPE_ECHO_REQUEST: u32 = 8;
export const ICMP_TYPE_TIME_EXCEEDED: u32 = 11;
export const ICMP_TYPE_PARAMETER_PROBLEM: u32 = 12;
/** ICMPv6 types below this are errors (RFC 4443 §2.1). */
export const ICMPV6_INFORMATIONAL_MIN_TYPE: u32 = 128;
export const ICMPV6_TYPE_ECHO_REQUEST: u32 = 128;
export const ICMPV6_TYPE_ECHO_REPLY: u32 = 129;

/** Why a packet does not parse (mirrored in daemons/engine/constants.ts as daemons/proto/ip's IpParseError). */
export const PARSE_OK: u32 = 0;
export const PARSE_TRUNCATED: u32 = 1;
export const PARSE_BAD_VERSION: u32 = 2;
export const PARSE_BAD_HEADER_LENGTH: u32 = 3;
export const PARSE_BAD_LENGTH: u32 = 4;
export const PARSE_BAD_HEADER_CHECKSUM: u32 = 5;

/** Gateway: the packet needs the TypeScript state machine (nothing the engine holds decides it). */
export const STATUS_GATEWAY_SLOW: u32 = 14;
/** Gateway: refused by policy (no resource, or its filters); the caller answers with ICMP prohibited. */
export const STATUS_GATEWAY_REFUSED: u32 = 15;
/** Gateway: an IPv4 fragment, which neither filters nor NAT can judge; dropped. */
export const STATUS_GATEWAY_FRAGMENT: u32 = 16;
/** Gateway: the destination is no client's tunnel address; dropped. */
export const STATUS_GATEWAY_UNKNOWN_CLIENT: u32 = 17;
