// The portal wire protocol's timers and limits, in one place (STYLE.md 4). Frames are Phoenix
// channel messages (JSON `{topic, event, payload, ref}`); the limits bound what one frame can make a
// reader parse, walk and keep.

/** A device sends `heartbeat` on topic `phoenix` this often (Phoenix's JavaScript client default is 30 s; Firezone's is shorter). */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** Either side closes a socket that has heard nothing (no frame, no heartbeat reply) for this long: three missed heartbeats. */
export const HEARTBEAT_TIMEOUT_MS = 30_000;

/** The largest frame, in UTF-8 bytes, the portal accepts from a device; every device → portal event fits many times over. */
export const MAX_FRAME_BYTES = 64 * 1024;
/**
 * The largest frame a device accepts from the portal: `init` lists every resource the client may
 * see and every authorization a gateway still holds, so it can outgrow MAX_FRAME_BYTES by far.
 */
export const MAX_PORTAL_FRAME_BYTES = 16 * 1024 * 1024;
/** Nesting of arrays and objects in one frame; the deepest event (gateway `init`) needs 8. */
export const MAX_FRAME_DEPTH = 16;

/** The topic heartbeats travel on. */
export const PHOENIX_TOPIC = "phoenix";
export const TOPIC_MAX_CHARS = 64;
export const EVENT_MAX_CHARS = 64;
export const REF_MAX_CHARS = 64;

export const EVENT_JOIN = "phx_join";
export const EVENT_REPLY = "phx_reply";
export const EVENT_HEARTBEAT = "heartbeat";

/** An ICE candidate line (RFC 8839 §5.1 `candidate-attribute`) is short; this bounds a hostile one. */
export const CANDIDATE_MAX_CHARS = 512;
/** Candidates per `ice_candidates` / `invalidate_ice_candidates` message. */
export const CANDIDATES_MAX = 32;
/** RFC 8839 §5.4: ice-ufrag is 4 to 256 ice-chars, ice-pwd 22 to 256. */
export const ICE_UFRAG_MIN_CHARS = 4;
export const ICE_PWD_MIN_CHARS = 22;
export const ICE_CREDENTIAL_MAX_CHARS = 256;
/** RFC 8489 §14.3: a STUN USERNAME is under 513 bytes. */
export const TURN_USERNAME_MAX_CHARS = 512;
export const TURN_PASSWORD_MAX_CHARS = 256;

/** WireGuard public and preshared keys: 32 bytes, written as 44 characters of padded base64. */
export const KEY_BYTES = 32;

/** Names (resources, sites) as the REST API bounds them. */
export const NAME_MAX_CHARS = 255;
export const ADDRESS_DESCRIPTION_MAX_CHARS = 512;
/** RFC 1035 §2.3.4: a name is at most 253 characters written out, a label 63. */
export const DNS_NAME_MAX_CHARS = 253;
export const DNS_LABEL_MAX_CHARS = 63;
/** Free-text reasons (`disconnect`, a gateway's failure) and condition values. */
export const REASON_MAX_CHARS = 256;
export const CONDITION_VALUE_MAX_CHARS = 256;

export const UPSTREAM_DNS_MAX = 16;
export const RELAYS_MAX = 64;
export const SITES_MAX = 64;
export const FILTERS_MAX = 8;
export const PORT_RANGES_MAX = 64;
export const CONDITIONS_MAX = 16;
export const CONDITION_VALUES_MAX = 256;
export const CONNECTED_GATEWAYS_MAX = 256;
/** Resources in a client's `init` and authorizations in a gateway's: bounded in practice by MAX_PORTAL_FRAME_BYTES. */
export const RESOURCES_MAX = 100_000;
export const AUTHORIZATIONS_MAX = 100_000;
