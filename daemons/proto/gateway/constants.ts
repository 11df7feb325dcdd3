// The gateway's timers, limits and the address plan it enforces (DESIGN.md "Data model"), with the
// RFC each NAT timeout follows; the in-band control message's wire layout is here too.

// --- Address plan (DESIGN.md): ranges no internet resource reaches, and where proxy IPs live ---

/** Device tunnel addresses. */
export const TUNNEL_IPV4_RANGE = "100.64.0.0/11";
export const TUNNEL_IPV6_RANGE = "fd00:2021:1111::/107";
/** DNS-resource proxy addresses the clients' stub resolvers hand out. */
export const PROXY_IPV4_RANGE = "100.96.0.0/11";
export const PROXY_IPV6_RANGE = "fd00:2021:1111:8000::/107";
/** The clients' sentinel DNS servers. */
export const SENTINEL_DNS_IPV4_RANGE = "100.100.111.0/24";
/** Ranges the Internet resource does not cover: they are Wardline's own. */
export const RESERVED_RANGES: readonly string[] = [TUNNEL_IPV4_RANGE, TUNNEL_IPV6_RANGE, PROXY_IPV4_RANGE, PROXY_IPV6_RANGE, SENTINEL_DNS_IPV4_RANGE];

// --- NAT timeouts, in ms ---

/** UDP mapping idle timeout: "MUST NOT expire in less than two minutes" (RFC 4787 REQ-5). */
export const UDP_MAPPING_TIMEOUT = 120_000;
/** TCP established idle timeout: "MUST NOT be less than 2 hours and 4 minutes" (RFC 5382 REQ-5). */
export const TCP_ESTABLISHED_TIMEOUT = 7_440_000;
/** TCP transitory (opening, or after FIN or RST) idle timeout: "4 minutes" (RFC 5382 REQ-5). */
export const TCP_TRANSITORY_TIMEOUT = 240_000;
/** ICMP Query (echo) session timeout: "MUST NOT be less than 60 seconds" (RFC 5508 REQ-1). */
export const ICMP_QUERY_TIMEOUT = 60_000;
/** Outside ports (and echo identifiers) a clashing flow is moved to: the dynamic range (RFC 6335 §6). */
export const NAT_PORT_MIN = 49152;
export const NAT_PORT_MAX = 65535;
/** Random picks of an outside port before a flow is refused (nat_exhausted). */
export const NAT_PORT_ATTEMPTS = 32;

// --- DNS resources ---

/** A resolved name is asked again when a client repeats its mapping this long after the last answer. */
export const NAME_REFRESH_INTERVAL = 60_000;
/** An unanswered resolve event is emitted again after this long. */
export const RESOLVE_RETRY_INTERVAL = 5_000;
/**
 * Packets a client may have waiting for a proxy IP's mapping or its name's addresses: the first
 * packets of a few connections (a SYN and its retries, a DNS client's tries) fit.
 */
export const HELD_PACKETS_MAX = 32;
/** How long a packet waits for its mapping or name: past the first TCP SYN retransmission (1 s, RFC 6298). */
export const HOLD_TIMEOUT = 2_000;

// --- Control message (control.ts): client → gateway tunnel address, UDP, this port ---

/** The UDP port on the gateway's tunnel address that takes control messages. */
export const CONTROL_PORT = 53535;
export const CONTROL_VERSION = 1;
/** Message type: a DNS resource's name and the proxy IPs the client gave it. */
export const CONTROL_TYPE_DNS_MAPPING = 1;
export const CONTROL_OFFSET_VERSION = 0;
export const CONTROL_OFFSET_TYPE = 1;
/** The resource's UUID as 16 bytes. */
export const CONTROL_OFFSET_RESOURCE_ID = 2;
export const CONTROL_RESOURCE_ID_LENGTH = 16;
/** One length byte, then the name in ASCII. */
export const CONTROL_OFFSET_NAME_LENGTH = 18;
/** Address family tags before each proxy IP. */
export const CONTROL_FAMILY_IPV4 = 4;
export const CONTROL_FAMILY_IPV6 = 6;
/** Proxy IPs per message: Firezone hands out 4 IPv4 and 4 IPv6 per name; room for twice that. */
export const CONTROL_PROXY_IPS_MAX = 16;
/** A DNS name in text, without the trailing dot (RFC 1035 §2.3.4: 255 octets on the wire). */
export const DNS_NAME_MAX_LENGTH = 253;
export const DNS_LABEL_MAX_LENGTH = 63;
