// Sizes and per-packet results shared with engine/constants.ts: the binding validates against these
// before anything crosses into WebAssembly. Names follow the WireGuard whitepaper and RFC 8439.

export const KEY_SIZE = 32;
export const NONCE_SIZE = 12;
export const XNONCE_SIZE = 24;
export const HCHACHA_NONCE_SIZE = 16;
export const TAG_SIZE = 16;
export const BLAKE2S_OUT_MAX = 32;
export const BLAKE2S_KEY_MAX = 32;

export const MESSAGE_TRANSPORT_TYPE = 4;
export const MESSAGE_TRANSPORT_OFFSET_RECEIVER = 4;
export const MESSAGE_TRANSPORT_OFFSET_COUNTER = 8;
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
export const MESSAGE_TRANSPORT_SIZE = MESSAGE_TRANSPORT_HEADER_SIZE + TAG_SIZE;
export const MESSAGE_PADDING_MULTIPLE = 16;
export const MAX_MESSAGE_SIZE = 65535;
export const MAX_CONTENT_SIZE = (MAX_MESSAGE_SIZE - MESSAGE_TRANSPORT_SIZE) & ~(MESSAGE_PADDING_MULTIPLE - 1);

/** Whitepaper §6.1: 2^64 - 2^13 - 1. */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
/** Whitepaper §6.1: 2^60. */
export const REKEY_AFTER_MESSAGES = 2n ** 60n;
/** Counters this far behind the newest are still accepted once (engine ring of 64 blocks of 64 bits). */
export const REPLAY_WINDOW_SIZE = 63 * 64;

/** Result of one packet in a transport batch; a non-OK packet is dropped, never thrown. */
export enum TransportStatus {
  Ok = 0,
  TooShort = 1,
  TooLarge = 2,
  BadType = 3,
  NoSession = 4,
  Replayed = 5,
  TooOld = 6,
  CounterExhausted = 7,
  AuthFailed = 8,
  OutOfBounds = 9,
  /** Cryptokey routing (whitepaper §2): the inner source is not an allowed IP of the session's peer. */
  SourceNotAllowed = 10,
  /** Not an IPv4 or IPv6 packet: too short, another version, or a length past the plaintext. */
  BadInnerPacket = 11,
  /** No allowed IP of any peer covers the inner destination. */
  NoRoute = 12,
  /** Relay: no channel binding for this (client, channel) or (relay, peer). */
  NoChannel = 13,
}

export const TRANSPORT_STATUS_COUNT = 14;

/** The engine's peer id for "no peer"; peer ids are 0 to NO_PEER - 1. */
export const NO_PEER = 0xffffffff;
/** Allowed IPs one engine can hold at most (the engine's node pool addresses 2^21 + 1 nodes). */
export const MAX_ROUTES = 1 << 20;
/** Most TURN channel bindings an engine can be made to hold (engine/relay.ts MAX_CHANNELS). */
export const MAX_CHANNELS = 1 << 20;
/** Bytes of one endpoint in the relay's endpoint array, as the native addon encodes it. */
export const ENDPOINT_SIZE = 20;
/** The TURN ChannelData header: channel number and length (RFC 8656 §12.4). */
export const CHANNEL_HEADER_SIZE = 4;
export const IPV4_ADDRESS_SIZE = 4;
export const IPV4_ADDRESS_BITS = 32;
export const IPV6_ADDRESS_SIZE = 16;
export const IPV6_ADDRESS_BITS = 128;
/** RFC 4291 §2.5.5.2: ::ffff:a.b.c.d, 80 zero bits, 16 one bits, then the IPv4 address. */
export const IPV4_MAPPED_PREFIX: readonly number[] = Object.freeze([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
export const IPV4_MAPPED_PREFIX_BITS = 96;

/** Results of engine control calls (negative i32). */
export const RESULT_OK = 0;
export const RESULT_ALREADY_INITIALIZED = -1;
export const RESULT_BAD_ARGUMENT = -2;
export const RESULT_INDEX_IN_USE = -3;
export const RESULT_TABLE_FULL = -4;
export const RESULT_NOT_INITIALIZED = -5;
export const RESULT_NOT_FOUND = -6;

/** Batch descriptor: four u32 words. */
export const DESC_WORDS = 4;
export const DESC_OFFSET = 0;
export const DESC_LENGTH = 1;
export const DESC_SESSION = 2;
export const DESC_STATUS = 3;

// --- The gateway's fast path (engine/gateway.ts, engine/packet.ts) ---

/** Result of one packet in a gateway batch: a TransportStatus code, or one of the gateway's own. */
export enum GatewayStatus {
  /** Forwarded (translated, if it belonged to a NAT flow). */
  Ok = TransportStatus.Ok,
  OutOfBounds = TransportStatus.OutOfBounds,
  /** Anti-spoofing: the source is not the client's tunnel address. */
  SourceNotAllowed = TransportStatus.SourceNotAllowed,
  /** Does not parse as daemons/proto/ip's parseIpPacket would accept it. */
  BadInnerPacket = TransportStatus.BadInnerPacket,
  /** Nothing the engine holds decides it: hand it to GatewayState. */
  Slow = 14,
  /** Refused by the client's rules or filters: answer with ICMP administratively prohibited. */
  Refused = 15,
  /** An IPv4 fragment: dropped. */
  Fragment = 16,
  /** From the network to an address that is no client's: dropped. */
  UnknownClient = 17,
}

/** Gateway table sizes one engine may be given at most (engine/gateway.ts). */
export const MAX_GATEWAY_CLIENTS = 1 << 20;
export const MAX_GATEWAY_RULES = 1 << 22;
export const MAX_GATEWAY_FLOWS = 1 << 22;
/** TCP plus UDP port ranges one rule holds; a filter list with more sends its packets to the slow path. */
export const GATEWAY_RULE_MAX_RANGES = 8;
export const GATEWAY_CLIENT_SLOW_UNMATCHED = 2;
export const GATEWAY_CLIENT_FLOWS_INCOMPLETE = 4;
export const GATEWAY_CLIENT_RULES_INCOMPLETE = 8;
export const GATEWAY_CLIENT_PROXIES_INCOMPLETE = 16;
export const GATEWAY_RULE_PREFIX = 1;
export const GATEWAY_RULE_FILTERS = 2;
export const GATEWAY_FILTER_ALL = 1;
export const GATEWAY_FILTER_ICMP = 2;
export const GATEWAY_FILTER_SLOW = 4;
/** Flags of gatewayFromClients: the session field holds a session slot; stop after the first Slow packet. */
export const GATEWAY_BY_SESSION = 1;
export const GATEWAY_STOP_AT_SLOW = 2;
/** A flow's TCP state, in the order of engine/gateway.ts's TCP_OPENING.. (NatFlow.tcp's names). */
export const GATEWAY_TCP_STATES = ["opening", "established", "closing"] as const;

/** The engine's parse errors, by code, named as daemons/proto/ip's IpParseError. */
export const IP_PARSE_ERRORS = ["truncated", "bad_version", "bad_header_length", "bad_length", "bad_header_checksum"] as const;
/** u32 words of the view ipParseAt writes. */
export const IP_VIEW_WORDS = 15;
