// TURN's timers and limits (RFC 8656), named as the RFC names them, and the bounds our client and
// server add. The wire constants (methods, attributes, error codes) are the codec's, in
// ../stun/constants.ts.

/** "The default lifetime of an allocation is 10 minutes" (§3.2); what a Refresh without LIFETIME sets (§8.2). */
export const DEFAULT_LIFETIME_SECONDS = 600;
/** "It is RECOMMENDED that the server use a maximum allowed lifetime value of no more than 3600 seconds" (§7.2). */
export const MAX_ALLOWED_LIFETIME_SECONDS = 3600;
/** "The Permission Lifetime MUST be 300 seconds (= 5 minutes)" (§9). */
export const PERMISSION_LIFETIME_SECONDS = 300;
/** "A channel binding lasts for 10 minutes unless refreshed" (§12). */
export const CHANNEL_LIFETIME_SECONDS = 600;
/**
 * After a binding expires, "the client MUST wait 5 minutes ... before attempting to bind the channel
 * number to a different transport address or the transport address to a different channel number"
 * (§12); the server holds both for that long, so a late ChannelData cannot reach a new peer.
 */
export const CHANNEL_REBIND_DELAY_SECONDS = 300;

/**
 * Datagrams the client holds per peer IP while the permission for it is on its way (ours): enough
 * for a burst of ICE checks and a handshake; the oldest go first beyond it.
 */
export const PERMISSION_HELD_MAX = 16;

/** Allocations one credential id may hold at once before 486 (Allocation Quota Reached) (§7.2 step 10). */
export const DEFAULT_MAX_ALLOCATIONS_PER_USER = 10;
/**
 * Permissions one allocation may hold before CreatePermission and ChannelBind get 508 (Insufficient
 * Capacity) (§12.2 allows it for "some capacity limit"): keeps an authenticated client from growing
 * the server's memory without bound. Channels are bounded by their number range (4096).
 */
export const MAX_PERMISSIONS_PER_ALLOCATION = 1024;

/**
 * Stateless nonces (RFC 8489 §9.2, nonce.ts) are minted per epoch of this many seconds and accepted
 * in that epoch and the next: good for 600 to 1200 s, then the request gets 438 (Stale Nonce) and
 * a fresh one. coturn's default `stale-nonce` is 600 s.
 */
export const NONCE_EPOCH_SECONDS = 600;
/** Bytes of HMAC-SHA256 a nonce carries (40 bits; nonce.ts says why that is enough). */
export const NONCE_MAC_SIZE = 5;

/** Reason phrases of the error codes the server sends (RFC 8489 §14.8, RFC 8656 §19). */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthenticated",
  403: "Forbidden",
  420: "Unknown Attribute",
  437: "Allocation Mismatch",
  438: "Stale Nonce",
  440: "Address Family not Supported",
  441: "Wrong Credentials",
  442: "Unsupported Transport Protocol",
  443: "Peer Address Family Mismatch",
  486: "Allocation Quota Reached",
  508: "Insufficient Capacity",
};
