// ICE candidates (RFC 8445 §5.1) and their SDP text (RFC 8839 §5.1), as trickled through the
// portal's ice_candidates and invalidate_ice_candidates events.
//
// 1. Priority (RFC 8445 §5.1.2.1): 2^24 × type preference + 2^8 × local preference + (256 − component).
// 2. Encoding: "candidate:<foundation> <component> udp <priority> <address> <port> typ <type>
//    [raddr <address> rport <port>]".
// 3. Parsing, network input, never throws: the grammar of RFC 8839 §5.1 (an optional "a=" prefix,
//    a case-insensitive transport and extension attributes are accepted and extensions ignored),
//    limited to what Wardline uses: UDP, IP literals (no FQDN or mDNS names), the four candidate
//    types. Addresses are normalised (IPv6 to RFC 5952 form) so equal addresses compare equal.

import { formatAddress } from "../stun/attributes.js";
import { CANDIDATE_MAX_CHARS } from "../portal/constants.js";
import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";
import {
  CANDIDATE_PREFIX, COMPONENT_ID_MAX, COMPONENT_ID_MAX_DIGITS, FOUNDATION_MAX_CHARS, LOCAL_PREFERENCE_MAX,
  PAIR_PRIORITY_MIN_SHIFT, PORT_MAX, PRIORITY_COMPONENT_BASE, PRIORITY_LOCAL_SHIFT, PRIORITY_MAX, PRIORITY_MAX_DIGITS,
  PRIORITY_TYPE_SHIFT, TYPE_PREFERENCE_HOST, TYPE_PREFERENCE_PEER_REFLEXIVE, TYPE_PREFERENCE_RELAYED,
  TYPE_PREFERENCE_SERVER_REFLEXIVE,
} from "./constants.js";

/** The candidate types of RFC 8445 §5.1.1: host, server reflexive, peer reflexive, relayed. */
export type CandidateType = "host" | "srflx" | "prflx" | "relay";

/** Every candidate type, in the order of RFC 8445 §5.1.1. */
export const CANDIDATE_TYPES: readonly CandidateType[] = ["host", "srflx", "prflx", "relay"];

/** One ICE candidate: a transport address the peer may reach us at (or we it). */
export interface Candidate {
  /** 1 to 32 ice-chars (ALPHA, DIGIT, "+", "/"): equal for candidates of like type, base and server. */
  foundation: string;
  component: number;
  transport: "udp";
  priority: number;
  /** An IP literal, IPv6 in RFC 5952 form. */
  address: string;
  port: number;
  type: CandidateType;
  /** raddr / rport: the base of a reflexive candidate, the mapped address of a relayed one. */
  relatedAddress?: string;
  relatedPort?: number;
}

/** The recommended type preference of a candidate type (RFC 8445 §5.1.2.2). */
export function typePreference(type: CandidateType): number {
  switch (type) {
    case "host": return TYPE_PREFERENCE_HOST;
    case "prflx": return TYPE_PREFERENCE_PEER_REFLEXIVE;
    case "srflx": return TYPE_PREFERENCE_SERVER_REFLEXIVE;
    case "relay": return TYPE_PREFERENCE_RELAYED;
  }
}

/** A candidate's priority (RFC 8445 §5.1.2.1); throws on out-of-range arguments (our own input). */
export function candidatePriority(type: CandidateType, localPreference: number = LOCAL_PREFERENCE_MAX, component = 1): number {
  if (!Number.isInteger(localPreference) || localPreference < 0 || localPreference > LOCAL_PREFERENCE_MAX) {
    throw new RangeError(`local preference ${localPreference} is not in 0..${LOCAL_PREFERENCE_MAX}`);
  }
  if (!Number.isInteger(component) || component < 1 || component > COMPONENT_ID_MAX) throw new RangeError(`component ${component} is not in 1..256`);
  return typePreference(type) * 2 ** PRIORITY_TYPE_SHIFT + localPreference * 2 ** PRIORITY_LOCAL_SHIFT + (PRIORITY_COMPONENT_BASE - component);
}

/**
 * A pair's priority (RFC 8445 §6.1.2.3): 2^32 × MIN(G,D) + 2 × MAX(G,D) + (G > D ? 1 : 0), G the
 * priority of the controlling agent's candidate and D the controlled agent's. Up to 2^63, so a bigint.
 */
export function pairPriority(controlling: number, controlled: number): bigint {
  const g = BigInt(controlling);
  const d = BigInt(controlled);
  const [min, max] = g < d ? [g, d] : [d, g];
  return (min << PAIR_PRIORITY_MIN_SHIFT) + 2n * max + (g > d ? 1n : 0n);
}

// --- 2. Encoding ---

/** The SDP candidate-attribute text of a candidate (without "a="), as the portal carries it. */
export function formatCandidate(candidate: Candidate): string {
  const { foundation, component, priority, address, port, type, relatedAddress, relatedPort } = candidate;
  let text = `${CANDIDATE_PREFIX}${foundation} ${component} udp ${priority} ${address} ${port} typ ${type}`;
  // RFC 8839 §5.1: rel-addr and rel-port go with reflexive and relayed candidates, never with host ones.
  if (type !== "host" && relatedAddress !== undefined && relatedPort !== undefined) text += ` raddr ${relatedAddress} rport ${relatedPort}`;
  return text;
}

// --- 3. Parsing ---

/** Why a candidate line was refused, one value per drop counter. */
export type CandidateParseError =
  | "too-long"
  | "syntax" // not "candidate:" followed by the fields in order, or a field of the wrong form
  | "unsupported-transport" // anything but UDP (TCP candidates, RFC 6544)
  | "unsupported-address" // an FQDN or mDNS name instead of an IP literal
  | "unknown-type";

/** parseCandidate's result: the candidate, or why the line was refused. */
export type CandidateParsed = { ok: true; candidate: Candidate } | { ok: false; reason: CandidateParseError; detail: string };

const ICE_CHARS = /^[A-Za-z0-9+/]+$/;
const DIGITS = /^[0-9]+$/;
/** RFC 8839 §5.1 extension names and values: non-space bytes; the portal has already limited lines to printable ASCII. */
const TOKEN = /^[\x21-\x7e]+$/;

const fail = (reason: CandidateParseError, detail: string): CandidateParsed => ({ ok: false, reason, detail });

/** A decimal field of at most maxDigits digits in [min, max], else undefined. */
function parseDecimal(text: string, maxDigits: number, min: number, max: number): number | undefined {
  if (!DIGITS.test(text) || text.length > maxDigits) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** An IP literal, normalised; "fqdn" for anything that is not one (a name Wardline does not resolve). */
function parseIp(text: string): string | "fqdn" {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return formatAddress(v4);
  // A zone ("%eth0") or brackets are not part of connection-address.
  const v6 = text.includes(":") ? parseIpv6(text) : undefined;
  return v6 !== undefined ? formatAddress(v6) : "fqdn";
}

/** Parses one candidate line (RFC 8839 §5.1), with or without "a="; never throws. */
export function parseCandidate(line: string): CandidateParsed {
  if (typeof line !== "string") return fail("syntax", "not a string");
  if (line.length > CANDIDATE_MAX_CHARS) return fail("too-long", `${line.length} characters, at most ${CANDIDATE_MAX_CHARS}`);
  let text = line.startsWith("a=") ? line.slice(2) : line;
  if (!text.toLowerCase().startsWith(CANDIDATE_PREFIX)) return fail("syntax", `does not start with "${CANDIDATE_PREFIX}"`);
  text = text.slice(CANDIDATE_PREFIX.length);
  // SDP separates fields with exactly one space (RFC 8866 §5); a tolerant split would accept lines
  // other implementations refuse, and the round trip would not hold.
  const fields = text.split(" ");
  if (fields.length < 8) return fail("syntax", `${fields.length} fields, at least 8`);
  const [foundation, componentText, transport, priorityText, addressText, portText, typ, typeText] = fields as [
    string, string, string, string, string, string, string, string,
  ];
  if (foundation.length > FOUNDATION_MAX_CHARS || !ICE_CHARS.test(foundation)) return fail("syntax", "foundation is not 1 to 32 ice-chars");
  const component = parseDecimal(componentText, COMPONENT_ID_MAX_DIGITS, 1, COMPONENT_ID_MAX);
  if (component === undefined) return fail("syntax", "component ID is not 1 to 256");
  if (!TOKEN.test(transport)) return fail("syntax", "transport is not a token");
  if (transport.toLowerCase() !== "udp") return fail("unsupported-transport", `transport ${transport}`);
  const priority = parseDecimal(priorityText, PRIORITY_MAX_DIGITS, 1, PRIORITY_MAX);
  if (priority === undefined) return fail("syntax", "priority is not 1 to 2^31-1");
  if (!TOKEN.test(addressText)) return fail("syntax", "connection address is empty or not a token");
  const address = parseIp(addressText);
  if (address === "fqdn") return fail("unsupported-address", "connection address is not an IP literal");
  const port = parseDecimal(portText, 5, 0, PORT_MAX);
  if (port === undefined) return fail("syntax", "port is not 0 to 65535");
  if (typ !== "typ") return fail("syntax", `"typ" expected, got a different field`);
  const type = CANDIDATE_TYPES.find((t) => t === typeText);
  if (type === undefined) return fail(TOKEN.test(typeText) ? "unknown-type" : "syntax", "candidate type is not host, srflx, prflx or relay");

  const candidate: Candidate = { foundation, component, transport: "udp", priority, address, port, type };
  let at = 8;
  if (fields[at] === "raddr") {
    const related = fields[at + 1];
    if (related === undefined || !TOKEN.test(related)) return fail("syntax", "raddr without an address");
    const relatedAddress = parseIp(related);
    if (relatedAddress === "fqdn") return fail("unsupported-address", "raddr is not an IP literal");
    candidate.relatedAddress = relatedAddress;
    at += 2;
  }
  if (fields[at] === "rport") {
    const relatedPort = parseDecimal(fields[at + 1] ?? "", 5, 0, PORT_MAX);
    if (relatedPort === undefined) return fail("syntax", "rport is not 0 to 65535");
    candidate.relatedPort = relatedPort;
    at += 2;
  }
  // A related address without its port (or the reverse) says nothing usable; drop both.
  if ((candidate.relatedAddress === undefined) !== (candidate.relatedPort === undefined) || type === "host") {
    delete candidate.relatedAddress;
    delete candidate.relatedPort;
  }
  // Extensions (generation, ufrag, network-id, ...): name-value pairs, ignored.
  if ((fields.length - at) % 2 !== 0) return fail("syntax", "an extension attribute without a value");
  for (; at < fields.length; at++) if (!TOKEN.test(fields[at]!)) return fail("syntax", "an empty or non-token extension field");
  return { ok: true, candidate };
}

/** The address family of a candidate's (normalised) address. */
export function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}
