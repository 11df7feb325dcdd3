// Numbers the simulated network is built on, named as their RFCs name them; the defaults the
// simulator picks itself are marked as ours.

/** RFC 4787 §4.3 REQ-5: "A NAT UDP mapping timer MUST NOT expire in less than two minutes" (ms). */
export const UDP_MAPPING_TIMER_MINIMUM = 120_000;
/** RFC 4787 §4.3 REQ-5: "The value of the NAT UDP mapping timer MAY be configurable. A default value of five minutes or more is RECOMMENDED" (ms). */
export const UDP_MAPPING_TIMER_RECOMMENDED = 300_000;
/**
 * Ours: the default idle timeout of a simulated mapping (ms). Many home routers and mobile carriers
 * drop idle UDP mappings after about 30 s, well below REQ-5, and that is what keepalives must beat.
 */
export const DEFAULT_MAPPING_TIMEOUT = 30_000;

/** RFC 6335 §6: the Well Known Ports end at 1023; a NAT hands out external ports above them. */
export const SYSTEM_PORTS_MAX = 1023;
/** RFC 6335 §6: the Dynamic and/or Private Ports, 49152-65535, where ephemeral ports come from. */
export const DYNAMIC_PORTS_MIN = 49152;
export const DYNAMIC_PORTS_MAX = 65535;

/** RFC 8656 §3.1 (and RFC 8489 §9): the default STUN/TURN port over UDP. */
export const STUN_PORT = 3478;
