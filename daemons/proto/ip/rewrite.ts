// Rewriting addresses, ports and ICMP echo identifiers in place, with every checksum that covers them
// updated incrementally (RFC 1624 eqn. 3), and the full recomputation the updates are tested against.
//
// What covers what: the IPv4 header checksum covers the IPv4 addresses; the TCP, UDP and ICMPv6
// checksums cover a pseudo-header with both addresses and the ports or identifier in their own
// header; the ICMPv4 checksum covers only the ICMP message. A UDP checksum of 0 over IPv4 means "none"
// (RFC 768) and stays 0; a UDP checksum that computes to 0 is sent as 0xFFFF. A fragment past the
// first carries no transport header, so only its IP header changes.
//
// These take the packet's parsed view for its offsets, which a rewrite does not move; the view's own
// fields still describe the packet as it was parsed.

import { checksumUpdate, checksumUpdateWord, internetChecksum, pseudoHeaderSum } from "./checksum.js";
import {
  ICMP_OFFSET_CHECKSUM, ICMP_OFFSET_IDENTIFIER, IPV4_OFFSET_DESTINATION_ADDRESS, IPV4_OFFSET_HEADER_CHECKSUM,
  IPV4_OFFSET_SOURCE_ADDRESS, IPV6_OFFSET_DESTINATION_ADDRESS, IPV6_OFFSET_SOURCE_ADDRESS, PROTOCOL_ICMP, PROTOCOL_ICMPV6,
  PROTOCOL_TCP, PROTOCOL_UDP, TCP_OFFSET_CHECKSUM, TCP_OFFSET_DESTINATION_PORT, TCP_OFFSET_SOURCE_PORT, UDP_OFFSET_CHECKSUM,
} from "./constants.js";
import type { IpPacket } from "./packet.js";

/** Which end of the packet: its source or its destination. */
export type End = "src" | "dst";

const readU16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
function writeU16(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 8;
  b[at + 1] = value & 0xff;
}

/** Where the transport checksum sits and whether it covers the pseudo-header; undefined: none to keep. */
function transportChecksum(bytes: Uint8Array, view: IpPacket): { at: number; pseudo: boolean; udp: boolean } | undefined {
  if (view.fragmentOffset > 0) return undefined;
  const start = view.payloadOffset;
  switch (view.protocol) {
    case PROTOCOL_TCP:
      return view.srcPort === undefined ? undefined : { at: start + TCP_OFFSET_CHECKSUM, pseudo: true, udp: false };
    case PROTOCOL_UDP:
      if (view.srcPort === undefined) return undefined;
      if (view.version === 4 && readU16(bytes, start + UDP_OFFSET_CHECKSUM) === 0) return undefined;
      return { at: start + UDP_OFFSET_CHECKSUM, pseudo: true, udp: true };
    case PROTOCOL_ICMPV6:
      return view.version === 6 && view.icmpType !== undefined ? { at: start + ICMP_OFFSET_CHECKSUM, pseudo: true, udp: false } : undefined;
    case PROTOCOL_ICMP:
      return view.version === 4 && view.icmpType !== undefined ? { at: start + ICMP_OFFSET_CHECKSUM, pseudo: false, udp: false } : undefined;
    default:
      return undefined;
  }
}

function storeTransport(bytes: Uint8Array, at: number, udp: boolean, value: number): void {
  writeU16(bytes, at, udp && value === 0 ? 0xffff : value);
}

/** The byte offset of the source or destination address in the IP header. */
export function addressOffset(version: 4 | 6, end: End): number {
  if (version === 4) return end === "src" ? IPV4_OFFSET_SOURCE_ADDRESS : IPV4_OFFSET_DESTINATION_ADDRESS;
  return end === "src" ? IPV6_OFFSET_SOURCE_ADDRESS : IPV6_OFFSET_DESTINATION_ADDRESS;
}

/** Replaces the source or destination address (same family), updating the checksums that cover it. */
export function rewriteAddress(bytes: Uint8Array, view: IpPacket, end: End, address: Uint8Array): void {
  const at = addressOffset(view.version, end);
  const before = bytes.slice(at, at + address.length);
  if (view.version === 4) {
    writeU16(bytes, IPV4_OFFSET_HEADER_CHECKSUM, checksumUpdate(readU16(bytes, IPV4_OFFSET_HEADER_CHECKSUM), before, address));
  }
  const transport = transportChecksum(bytes, view);
  if (transport?.pseudo) storeTransport(bytes, transport.at, transport.udp, checksumUpdate(readU16(bytes, transport.at), before, address));
  bytes.set(address, at);
}

/** Replaces the TCP or UDP source or destination port, updating the transport checksum. */
export function rewritePort(bytes: Uint8Array, view: IpPacket, end: End, port: number): void {
  if (view.srcPort === undefined || view.fragmentOffset > 0) return;
  const at = view.payloadOffset + (end === "src" ? TCP_OFFSET_SOURCE_PORT : TCP_OFFSET_DESTINATION_PORT);
  const before = readU16(bytes, at);
  const transport = transportChecksum(bytes, view);
  if (transport) storeTransport(bytes, transport.at, transport.udp, checksumUpdateWord(readU16(bytes, transport.at), before, port));
  writeU16(bytes, at, port);
}

/** Replaces an ICMP or ICMPv6 Echo identifier, updating the ICMP checksum. */
export function rewriteIcmpIdentifier(bytes: Uint8Array, view: IpPacket, identifier: number): void {
  if (view.icmpIdentifier === undefined) return;
  const at = view.payloadOffset + ICMP_OFFSET_IDENTIFIER;
  const transport = transportChecksum(bytes, view);
  if (transport) writeU16(bytes, transport.at, checksumUpdateWord(readU16(bytes, transport.at), readU16(bytes, at), identifier));
  writeU16(bytes, at, identifier);
}

// --- Full computation: the oracle for the updates above, and what builders use ---

/** Recomputes and stores the IPv4 header checksum from scratch. */
export function fillIpv4HeaderChecksum(bytes: Uint8Array, headerLength: number): void {
  writeU16(bytes, IPV4_OFFSET_HEADER_CHECKSUM, 0);
  writeU16(bytes, IPV4_OFFSET_HEADER_CHECKSUM, internetChecksum(bytes, 0, headerLength));
}

/** The one's complement sum the transport checksum starts from: the pseudo-header's, or 0 for ICMPv4. */
function transportInitial(view: IpPacket, src: Uint8Array, dst: Uint8Array): number {
  if (view.protocol === PROTOCOL_ICMP && view.version === 4) return 0;
  return pseudoHeaderSum(src, dst, view.protocol, view.length - view.payloadOffset);
}

function currentAddresses(bytes: Uint8Array, view: IpPacket): [Uint8Array, Uint8Array] {
  const size = view.version === 4 ? 4 : 16;
  const src = addressOffset(view.version, "src");
  const dst = addressOffset(view.version, "dst");
  return [bytes.subarray(src, src + size), bytes.subarray(dst, dst + size)];
}

/**
 * Recomputes and stores the transport checksum over the whole datagram (not for fragments; a UDP
 * checksum of 0 over IPv4 is left alone).
 */
export function fillTransportChecksum(bytes: Uint8Array, view: IpPacket): void {
  if (view.moreFragments) return;
  const transport = transportChecksum(bytes, view);
  if (!transport) return;
  const [src, dst] = currentAddresses(bytes, view);
  writeU16(bytes, transport.at, 0);
  storeTransport(bytes, transport.at, transport.udp, internetChecksum(bytes, view.payloadOffset, view.length, transportInitial(view, src, dst)));
}

/** True if the transport checksum verifies (or there is none to verify: UDP 0 over IPv4, fragments, other protocols). */
export function transportChecksumValid(bytes: Uint8Array, view: IpPacket): boolean {
  if (view.moreFragments) return true;
  const transport = transportChecksum(bytes, view);
  if (!transport) return true;
  const [src, dst] = currentAddresses(bytes, view);
  return internetChecksum(bytes, view.payloadOffset, view.length, transportInitial(view, src, dst)) === 0;
}
