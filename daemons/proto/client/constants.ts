// ClientState's timers and the ports of the datagrams it writes itself (DNS answers, control
// messages). The control message's layout and port are the gateway's (../gateway/constants.ts).

/**
 * The control message for an authorized DNS resource is sent again this often: it rides UDP and may
 * be lost, and a gateway that restarted knows no mapping until it hears it again. Shorter than the
 * gateway's NAME_REFRESH_INTERVAL, so a steady client keeps its names' addresses fresh there.
 */
export const CONTROL_REFRESH_INTERVAL_MS = 30_000;

/** The UDP source port of control messages on the client's tunnel address (any port would do; one fixed port reads well in captures). */
export const CONTROL_SOURCE_PORT = 53535;

/** Hop limit of the datagrams the client writes itself (RFC 1700's default TTL, as ../ip uses). */
export const DATAGRAM_TIME_TO_LIVE = 64;

/**
 * After the portal refuses a resource (or does not answer), packets for it are answered ICMP
 * prohibited at once for this long instead of asking again: an application retrying a denied
 * connection would otherwise send the portal one request per retry.
 */
export const REFUSAL_HOLDOFF_MS = 5_000;
