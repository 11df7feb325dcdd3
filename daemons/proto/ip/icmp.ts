// ICMP "administratively prohibited" errors: what the gateway sends back through the tunnel when a
// packet is refused, so the client's socket fails at once instead of timing out.
//
// 1. Never about an ICMP error (RFC 1122 §3.2.2, RFC 4443 §2.4 e.1), nor about an IPv4 fragment past
//    the first (RFC 1122 §3.2.2): icmpErrorAllowed says so and the builders return undefined.
// 2. The error goes from the source the caller gives to the offending packet's source, quoting the
//    offending packet from its IP header on, as much as fits in 576 bytes (RFC 1812 §4.3.2.3) or
//    in 1280 (RFC 4443 §2.4 c).
// 3. ICMPv4 type 3 code 13 (RFC 1812 §5.2.7.1); ICMPv6 type 1 code 1 (RFC 4443 §3.1). Checksums are
//    computed in full: this is not a hot path.

import { internetChecksum, pseudoHeaderSum } from "./checksum.js";
import {
  DEFAULT_TIME_TO_LIVE, ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED, ICMP_ERROR_MAX_LENGTH, ICMP_ERROR_TYPES,
  ICMP_HEADER_LENGTH, ICMP_OFFSET_CHECKSUM, ICMP_OFFSET_CODE, ICMP_OFFSET_TYPE, ICMP_TYPE_DESTINATION_UNREACHABLE,
  ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED, ICMPV6_INFORMATIONAL_MIN_TYPE, ICMPV6_TYPE_DESTINATION_UNREACHABLE,
  IPV4_HEADER_MIN_LENGTH, IPV4_OFFSET_DESTINATION_ADDRESS, IPV4_OFFSET_PROTOCOL, IPV4_OFFSET_SOURCE_ADDRESS,
  IPV4_OFFSET_TIME_TO_LIVE, IPV4_OFFSET_TOTAL_LENGTH, IPV4_OFFSET_VERSION_IHL, IPV6_HEADER_LENGTH, IPV6_MINIMUM_MTU,
  IPV6_OFFSET_DESTINATION_ADDRESS, IPV6_OFFSET_HOP_LIMIT, IPV6_OFFSET_NEXT_HEADER, IPV6_OFFSET_PAYLOAD_LENGTH,
  IPV6_OFFSET_SOURCE_ADDRESS, PROTOCOL_ICMP, PROTOCOL_ICMPV6,
} from "./constants.js";
import type { IpPacket } from "./packet.js";
import { fillIpv4HeaderChecksum } from "./rewrite.js";

/** False for packets no ICMP error may answer: ICMP errors and non-first IPv4 fragments. */
export function icmpErrorAllowed(view: IpPacket): boolean {
  if (view.fragmentOffset > 0) return false;
  if (view.version === 4 && view.protocol === PROTOCOL_ICMP) return view.icmpType === undefined || !ICMP_ERROR_TYPES.includes(view.icmpType);
  if (view.version === 6 && view.protocol === PROTOCOL_ICMPV6) return view.icmpType === undefined || view.icmpType >= ICMPV6_INFORMATIONAL_MIN_TYPE;
  return true;
}

/**
 * Builds an ICMPv4 Destination Unreachable, code 13, from `source` (4 bytes) to the sender of
 * `offending`; undefined if no error may answer it.
 */
export function buildIcmpv4Prohibited(source: Uint8Array, offending: Uint8Array, view: IpPacket): Uint8Array | undefined {
  if (view.version !== 4 || source.length !== 4 || !icmpErrorAllowed(view)) return undefined;
  const quoted = Math.min(view.length, ICMP_ERROR_MAX_LENGTH - IPV4_HEADER_MIN_LENGTH - ICMP_HEADER_LENGTH);
  const total = IPV4_HEADER_MIN_LENGTH + ICMP_HEADER_LENGTH + quoted;
  const out = new Uint8Array(total);
  out[IPV4_OFFSET_VERSION_IHL] = 0x45;
  out[IPV4_OFFSET_TOTAL_LENGTH] = total >>> 8;
  out[IPV4_OFFSET_TOTAL_LENGTH + 1] = total & 0xff;
  out[IPV4_OFFSET_TIME_TO_LIVE] = DEFAULT_TIME_TO_LIVE;
  out[IPV4_OFFSET_PROTOCOL] = PROTOCOL_ICMP;
  out.set(source, IPV4_OFFSET_SOURCE_ADDRESS);
  out.set(view.src, IPV4_OFFSET_DESTINATION_ADDRESS);
  fillIpv4HeaderChecksum(out, IPV4_HEADER_MIN_LENGTH);
  const icmp = IPV4_HEADER_MIN_LENGTH;
  out[icmp + ICMP_OFFSET_TYPE] = ICMP_TYPE_DESTINATION_UNREACHABLE;
  out[icmp + ICMP_OFFSET_CODE] = ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED;
  out.set(offending.subarray(0, quoted), icmp + ICMP_HEADER_LENGTH);
  const checksum = internetChecksum(out, icmp, total);
  out[icmp + ICMP_OFFSET_CHECKSUM] = checksum >>> 8;
  out[icmp + ICMP_OFFSET_CHECKSUM + 1] = checksum & 0xff;
  return out;
}

/**
 * Builds an ICMPv6 Destination Unreachable, code 1, from `source` (16 bytes) to the sender of
 * `offending`; undefined if no error may answer it.
 */
export function buildIcmpv6Prohibited(source: Uint8Array, offending: Uint8Array, view: IpPacket): Uint8Array | undefined {
  if (view.version !== 6 || source.length !== 16 || !icmpErrorAllowed(view)) return undefined;
  const quoted = Math.min(view.length, IPV6_MINIMUM_MTU - IPV6_HEADER_LENGTH - ICMP_HEADER_LENGTH);
  const payload = ICMP_HEADER_LENGTH + quoted;
  const out = new Uint8Array(IPV6_HEADER_LENGTH + payload);
  out[0] = 0x60;
  out[IPV6_OFFSET_PAYLOAD_LENGTH] = payload >>> 8;
  out[IPV6_OFFSET_PAYLOAD_LENGTH + 1] = payload & 0xff;
  out[IPV6_OFFSET_NEXT_HEADER] = PROTOCOL_ICMPV6;
  out[IPV6_OFFSET_HOP_LIMIT] = DEFAULT_TIME_TO_LIVE;
  out.set(source, IPV6_OFFSET_SOURCE_ADDRESS);
  out.set(view.src, IPV6_OFFSET_DESTINATION_ADDRESS);
  const icmp = IPV6_HEADER_LENGTH;
  out[icmp + ICMP_OFFSET_TYPE] = ICMPV6_TYPE_DESTINATION_UNREACHABLE;
  out[icmp + ICMP_OFFSET_CODE] = ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED;
  out.set(offending.subarray(0, quoted), icmp + ICMP_HEADER_LENGTH);
  const checksum = internetChecksum(out, icmp, out.length, pseudoHeaderSum(source, view.src, PROTOCOL_ICMPV6, payload));
  out[icmp + ICMP_OFFSET_CHECKSUM] = checksum >>> 8;
  out[icmp + ICMP_OFFSET_CHECKSUM + 1] = checksum & 0xff;
  return out;
}

/** Builds the family's prohibited error from `source` (same family as the packet); undefined if none may answer it. */
export function buildProhibited(source: Uint8Array, offending: Uint8Array, view: IpPacket): Uint8Array | undefined {
  return view.version === 4 ? buildIcmpv4Prohibited(source, offending, view) : buildIcmpv6Prohibited(source, offending, view);
}
