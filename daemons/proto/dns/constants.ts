// DNS wire constants (RFC 1035, RFC 3596, RFC 6891), named as the RFCs name them, and the address
// plan and limits of Wardline's stub resolver (DESIGN.md, "Address plan").

// --- The message header (RFC 1035 §4.1.1) ---

export const HEADER_SIZE = 12;
export const HEADER_OFFSET_ID = 0;
export const HEADER_OFFSET_FLAGS = 2;
export const HEADER_OFFSET_QDCOUNT = 4;
export const HEADER_OFFSET_ANCOUNT = 6;
export const HEADER_OFFSET_NSCOUNT = 8;
export const HEADER_OFFSET_ARCOUNT = 10;

/** Bits and fields of the second 16-bit word of the header. */
export const FLAG_QR = 0x8000;
export const OPCODE_SHIFT = 11;
export const OPCODE_MASK = 0xf;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
/** Z: reserved in RFC 1035, AD and CD since RFC 4035; carried through unchanged. */
export const Z_SHIFT = 4;
export const Z_MASK = 0x7;
export const RCODE_MASK = 0xf;

export const OPCODE_QUERY = 0;

/** RCODE values (RFC 1035 §4.1.1); NXDOMAIN is RFC 1035's "Name Error". */
export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

// --- Questions and resource records (RFC 1035 §4.1.2, §4.1.3) ---

/** QTYPE and QCLASS after the question's name. */
export const QUESTION_FIXED_SIZE = 4;
/** TYPE, CLASS, TTL and RDLENGTH after the record's owner name. */
export const RR_FIXED_SIZE = 10;
export const RR_OFFSET_TYPE = 0;
export const RR_OFFSET_CLASS = 2;
export const RR_OFFSET_TTL = 4;
export const RR_OFFSET_RDLENGTH = 8;

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_CNAME = 5;
export const TYPE_SOA = 6;
export const TYPE_PTR = 12;
export const TYPE_MX = 15;
export const TYPE_TXT = 16;
/** RFC 3596 §2.1. */
export const TYPE_AAAA = 28;
/** RFC 6891 §6.1.1: the EDNS(0) pseudo-record. */
export const TYPE_OPT = 41;

export const CLASS_IN = 1;

export const A_RDATA_SIZE = 4;
export const AAAA_RDATA_SIZE = 16;

// --- Names (RFC 1035 §2.3.4, §3.1, §4.1.4) ---

/** "labels 63 octets or less". */
export const LABEL_MAX = 63;
/** "names 255 octets or less", in wire form with the length octets and the root label. */
export const NAME_MAX = 255;
/** The two high bits of a length octet: 00 a label, 11 a pointer; 01 and 10 are reserved. */
export const LABEL_TYPE_MASK = 0xc0;
export const LABEL_TYPE_POINTER = 0xc0;
export const POINTER_OFFSET_MASK = 0x3fff;
export const POINTER_SIZE = 2;
/**
 * Pointers followed while reading one name. Every pointer must point before itself, so a chain
 * ends anyway; the cap bounds the work one name costs. A name of 127 one-octet labels, each
 * reached through its own pointer, needs 127.
 */
export const NAME_POINTERS_MAX = 128;

/** "Messages carried by UDP are restricted to 512 bytes (not counting the IP or UDP headers)". */
export const UDP_MESSAGE_MAX = 512;
/** RFC 1035 §4.2.1: servers listen on port 53. */
export const DNS_PORT = 53;

/** RFC 1035 §3.5 and RFC 3596 §2.5: the reverse-mapping domains. */
export const IN_ADDR_ARPA = "in-addr.arpa";
export const IP6_ARPA = "ip6.arpa";

// --- Wardline's address plan (DESIGN.md) ---

/**
 * Sentinel DNS servers: the OS is told to ask these, the client answers. Sentinel i (from 0) is
 * host 1 + i of either range and stands for upstream i, so at most 255 upstreams.
 */
export const SENTINEL_IPV4_RANGE = "100.100.111.0/24";
export const SENTINEL_IPV6_RANGE = "fd00:2021:1111:8000:100:100:111:0/120";
export const SENTINELS_MAX = 255;

/** Proxy IPs handed out for names of DNS resources; the sentinel ranges inside them are skipped. */
export const PROXY_IPV4_RANGE = "100.96.0.0/11";
export const PROXY_IPV6_RANGE = "fd00:2021:1111:8000::/107";

// --- The stub resolver's own limits and timers ---

/** Proxy IPs per name and family: a few, so an application that tries the next one still gets ours. */
export const PROXY_IPS_PER_NAME = 4;
/** TTL of local answers, in s: short, so a removed resource stops being answered almost at once. */
export const RESOURCE_TTL_SECONDS = 1;
/** How long an upstream has to answer a forwarded query, in ms, before the next one is asked. */
export const UPSTREAM_TIMEOUT_MS = 2000;
/** Upstreams asked per forwarded query: the first, then the next one once. */
export const UPSTREAM_ATTEMPTS = 2;
/** Forwarded queries waiting for an upstream at once; beyond that a query gets REFUSED. */
export const FORWARDED_QUERIES_MAX = 256;
/** Fresh-ID draws before a forwarded query is refused: IDs in flight are kept unique. */
export const QUERY_ID_DRAWS_MAX = 16;
/**
 * The UDP payload size our own answers advertise in their OPT record (RFC 6891 §6.2.5): the
 * DNS Flag Day 2020 value, which fits an IPv6 minimum MTU. Local answers stay under 512 octets anyway.
 */
export const EDNS_UDP_PAYLOAD_SIZE = 1232;
