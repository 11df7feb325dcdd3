// ICE (RFC 8445, RFC 8838 trickle, RFC 7675 consent) constants, named as the RFCs name them. The
// STUN attribute types ICE uses (PRIORITY, USE-CANDIDATE, ICE-CONTROLLED, ICE-CONTROLLING) and the
// 487 (Role Conflict) error code live with the rest of STUN in ../stun/constants.ts.

// --- Candidate priority (RFC 8445 §5.1.2.1) ---
/** priority = 2^24 × type preference + 2^8 × local preference + (256 − component ID). */
export const PRIORITY_TYPE_SHIFT = 24;
export const PRIORITY_LOCAL_SHIFT = 8;
export const PRIORITY_COMPONENT_BASE = 256;
/** The recommended type preferences (§5.1.2.2). */
export const TYPE_PREFERENCE_HOST = 126;
export const TYPE_PREFERENCE_PEER_REFLEXIVE = 110;
export const TYPE_PREFERENCE_SERVER_REFLEXIVE = 100;
export const TYPE_PREFERENCE_RELAYED = 0;
/** "The local preference MUST be an integer from 0 (lowest preference) to 65535" (§5.1.2.1). */
export const LOCAL_PREFERENCE_MAX = 65535;
/** Priorities are "a positive integer between 1 and (2**31 - 1) inclusive" (§5.1.2.1). */
export const PRIORITY_MAX = 0x7fffffff;
/** The only component Wardline uses: WireGuard is one UDP flow (RTP's component ID, §5.1.1). */
export const COMPONENT_ID = 1;
/** Component IDs are 1 to 256 (§5.1.1, RFC 8839 §5.1). */
export const COMPONENT_ID_MAX = 256;

// --- Pair priority (RFC 8445 §6.1.2.3): 2^32 × MIN(G,D) + 2 × MAX(G,D) + (G > D ? 1 : 0) ---
export const PAIR_PRIORITY_MIN_SHIFT = 32n;

// --- SDP candidate attribute (RFC 8839 §5.1) ---
export const CANDIDATE_PREFIX = "candidate:";
/** foundation = 1*32ice-char. */
export const FOUNDATION_MAX_CHARS = 32;
/** priority = 1*10DIGIT. */
export const PRIORITY_MAX_DIGITS = 10;
/** component-id = 1*3DIGIT. */
export const COMPONENT_ID_MAX_DIGITS = 3;
export const PORT_MAX = 65535;

// --- Timing (RFC 8445 §14, RFC 7675), in ms ---
/** Ta: one new check per checklist every Ta (§14.2 recommends 50 ms for non-RTP traffic). */
export const TA = 50;
/** The first retransmission timeout of a check: "SHOULD be greater than 500 ms" (RFC 8489 §6.2.1, RFC 8445 §14.3). */
export const CHECK_RTO = 500;
/**
 * Sends per check: at 0, RTO, 3 RTO, 7 RTO, 15 RTO. Fewer than RFC 8489's default Rc of 7, so a
 * dead path is noticed in seconds rather than the 39.5 s of a full STUN transaction.
 */
export const CHECK_RC = 5;
/** The last wait is CHECK_RM × RTO: a check gives up 9.5 s after its first send. */
export const CHECK_RM = 4;
/** From a check's first send to giving up: 15 RTO + CHECK_RM × RTO = 9.5 s. */
export const CHECK_TRANSACTION_TIMEOUT = CHECK_RTO * (2 ** (CHECK_RC - 1) - 1) + CHECK_RM * CHECK_RTO;
/** The selected pair is re-checked this often while traffic flows (RFC 7675 §5.1 says 5 s, randomised). */
export const CONSENT_INTERVAL = 5_000;
/**
 * A valid pair with no answer to any check for this long has lost consent (RFC 7675 §5.1 uses 30 s;
 * we fall back to the next pair sooner, since the relayed path is already warm).
 */
export const CONSENT_TIMEOUT = 15_000;
/** Valid pairs other than the selected one are re-checked this often, so a fallback is known to work. */
export const BACKGROUND_CHECK_INTERVAL = 10_000;
/** Failed pairs are re-checked this often, so a better path that comes back is found again. */
export const FAILED_RECHECK_INTERVAL = 10_000;
/** Check intervals are randomised over [0.8, 1.2] × nominal (RFC 7675 §5.1). */
export const CHECK_INTERVAL_JITTER_MIN = 0.8;
export const CHECK_INTERVAL_JITTER_SPAN = 0.4;
/** No noteActivity() for this long makes the connection idle. */
export const IDLE_TIMEOUT = 60_000;
/** An idle connection checks every pair (the selected one too) only this often. */
export const IDLE_CHECK_INTERVAL = 25_000;
/**
 * The controlling agent nominates the best valid pair at once if no better pair is still waiting for
 * its first check; otherwise it waits this long for the better one before settling for it.
 */
export const NOMINATION_WAIT = 1_000;
/** Bytes of the ICE-CONTROLLING / ICE-CONTROLLED tie-breaker (RFC 8445 §16.1). */
export const TIE_BREAKER_BYTES = 8;

// --- Limits ---
/**
 * Remote candidates kept, signalled and peer-reflexive together: a few per address family and
 * relay is all a peer has, and this bounds the pairs (and checks) a peer's trickle can cause.
 */
export const REMOTE_CANDIDATES_MAX = 64;
/** Ended check transactions remembered, so a late answer is known as ours: a few rounds of checks. */
export const ENDED_TRANSACTIONS_KEPT = 64;
/** Local peer-reflexive candidates kept (mapped addresses the peer reported that we did not know). */
export const LOCAL_PEER_REFLEXIVE_MAX = 16;
