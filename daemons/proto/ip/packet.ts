// A typed, read-only view of one IPv4 (RFC 791) or IPv6 (RFC 8200) packet and its transport header.
//
// 1. The version nibble picks the family.
// 2. IPv4: IHL at least 5 and within the buffer; Total Length at least the header and within the
//    buffer (bytes past it are link padding and ignored); the header checksum must verify.
//    IPv6: the fixed header, then Payload Length within the buffer. A Next Header other than TCP,
//    UDP or ICMPv6 (an extension header included) is reported as that protocol, without ports.
// 3. The transport header, only where it starts (not in an IPv4 fragment past the first): TCP needs
//    its 20 bytes and a Data Offset within the packet, UDP 8 bytes and a Length within the packet,
//    ICMP and ICMPv6 their 8-byte header.
//
// parseIp never throws: every malformed input is an error value. The view copies the addresses, so
// rewriting the packet afterwards does not change the view.

import { formatIp } from "./address.js";
import { onesComplementSum } from "./checksum.js";
import {
  ICMP_HEADER_LENGTH, ICMP_OFFSET_CODE, ICMP_OFFSET_IDENTIFIER, ICMP_OFFSET_TYPE, ICMP_TYPE_ECHO, ICMP_TYPE_ECHO_REPLY,
  ICMPV6_TYPE_ECHO_REPLY, ICMPV6_TYPE_ECHO_REQUEST, IPV4_ADDRESS_LENGTH, IPV4_FLAG_MORE_FRAGMENTS, IPV4_FRAGMENT_OFFSET_MASK,
  IPV4_HEADER_MIN_LENGTH, IPV4_OFFSET_DESTINATION_ADDRESS, IPV4_OFFSET_FLAGS_FRAGMENT_OFFSET, IPV4_OFFSET_PROTOCOL,
  IPV4_OFFSET_SOURCE_ADDRESS, IPV4_OFFSET_TIME_TO_LIVE, IPV4_OFFSET_TOTAL_LENGTH, IPV4_OFFSET_VERSION_IHL, IPV4_VERSION,
  IPV6_ADDRESS_LENGTH, IPV6_HEADER_LENGTH, IPV6_OFFSET_DESTINATION_ADDRESS, IPV6_OFFSET_HOP_LIMIT, IPV6_OFFSET_NEXT_HEADER,
  IPV6_OFFSET_PAYLOAD_LENGTH, IPV6_OFFSET_SOURCE_ADDRESS, IPV6_VERSION, PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP,
  PROTOCOL_UDP, TCP_HEADER_MIN_LENGTH, TCP_OFFSET_DATA_OFFSET, TCP_OFFSET_DESTINATION_PORT, TCP_OFFSET_FLAGS,
  TCP_OFFSET_SOURCE_PORT, UDP_HEADER_LENGTH, UDP_OFFSET_DESTINATION_PORT, UDP_OFFSET_LENGTH, UDP_OFFSET_SOURCE_PORT,
} from "./constants.js";

/** Why a packet could not be parsed, one stable code each. */
export type IpParseError =
  | "truncated" // the buffer ends before a header or a length says it should
  | "bad_version" // neither 4 nor 6
  | "bad_header_length" // IPv4 IHL below 5
  | "bad_length" // IPv4 Total Length below its header; a TCP Data Offset or UDP Length that does not fit
  | "bad_header_checksum"; // IPv4 header checksum does not verify

/** One parsed packet; transport fields are present only for the protocol they belong to. */
export interface IpPacket {
  version: 4 | 6;
  src: Uint8Array;
  dst: Uint8Array;
  srcText: string;
  dstText: string;
  /** IPv4 Protocol or IPv6 Next Header. */
  protocol: number;
  /** Bytes of IP header: IHL × 4, or 40. */
  headerLength: number;
  /** Where the transport header starts (equal to headerLength here: no extension headers are walked). */
  payloadOffset: number;
  /** The packet's length as its header says (IPv4 Total Length; 40 + IPv6 Payload Length). */
  length: number;
  /** TTL or Hop Limit. */
  ttl: number;
  /** IPv4 Fragment Offset in bytes; 0 for IPv6. */
  fragmentOffset: number;
  /** IPv4 MF flag; false for IPv6. */
  moreFragments: boolean;
  /** TCP and UDP. */
  srcPort?: number;
  dstPort?: number;
  /** TCP flags byte (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR). */
  tcpFlags?: number;
  /** ICMP (over IPv4) and ICMPv6. */
  icmpType?: number;
  icmpCode?: number;
  /** Echo and Echo Reply only. */
  icmpIdentifier?: number;
}

export type IpParseResult = { ok: true; packet: IpPacket } | { ok: false; error: IpParseError };

const failed = (error: IpParseError): IpParseResult => ({ ok: false, error });

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/** Parses an IP packet; never throws. */
export function parseIpPacket(bytes: Uint8Array): IpParseResult {
  if (bytes.length < 1) return failed("truncated");
  const version = bytes[IPV4_OFFSET_VERSION_IHL]! >>> 4;
  if (version === IPV4_VERSION) return parseIpv4(bytes);
  if (version === IPV6_VERSION) return parseIpv6(bytes);
  return failed("bad_version");
}

function parseIpv4(bytes: Uint8Array): IpParseResult {
  if (bytes.length < IPV4_HEADER_MIN_LENGTH) return failed("truncated");
  const headerLength = (bytes[IPV4_OFFSET_VERSION_IHL]! & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_MIN_LENGTH) return failed("bad_header_length");
  if (headerLength > bytes.length) return failed("truncated");
  const length = u16(bytes, IPV4_OFFSET_TOTAL_LENGTH);
  if (length < headerLength) return failed("bad_length");
  if (length > bytes.length) return failed("truncated");
  if (onesComplementSum(bytes, 0, headerLength) !== 0xffff) return failed("bad_header_checksum");
  const flags = u16(bytes, IPV4_OFFSET_FLAGS_FRAGMENT_OFFSET);
  const src = bytes.slice(IPV4_OFFSET_SOURCE_ADDRESS, IPV4_OFFSET_SOURCE_ADDRESS + IPV4_ADDRESS_LENGTH);
  const dst = bytes.slice(IPV4_OFFSET_DESTINATION_ADDRESS, IPV4_OFFSET_DESTINATION_ADDRESS + IPV4_ADDRESS_LENGTH);
  const packet: IpPacket = {
    version: 4,
    src,
    dst,
    srcText: formatIp(src),
    dstText: formatIp(dst),
    protocol: bytes[IPV4_OFFSET_PROTOCOL]!,
    headerLength,
    payloadOffset: headerLength,
    length,
    ttl: bytes[IPV4_OFFSET_TIME_TO_LIVE]!,
    fragmentOffset: (flags & IPV4_FRAGMENT_OFFSET_MASK) * 8,
    moreFragments: (flags & IPV4_FLAG_MORE_FRAGMENTS) !== 0,
  };
  if (packet.fragmentOffset > 0) return { ok: true, packet };
  const error = parseTransport(bytes, packet, PROTOCOL_ICMP);
  return error ? failed(error) : { ok: true, packet };
}

function parseIpv6(bytes: Uint8Array): IpParseResult {
  if (bytes.length < IPV6_HEADER_LENGTH) return failed("truncated");
  const length = IPV6_HEADER_LENGTH + u16(bytes, IPV6_OFFSET_PAYLOAD_LENGTH);
  if (length > bytes.length) return failed("truncated");
  const src = bytes.slice(IPV6_OFFSET_SOURCE_ADDRESS, IPV6_OFFSET_SOURCE_ADDRESS + IPV6_ADDRESS_LENGTH);
  const dst = bytes.slice(IPV6_OFFSET_DESTINATION_ADDRESS, IPV6_OFFSET_DESTINATION_ADDRESS + IPV6_ADDRESS_LENGTH);
  const packet: IpPacket = {
    version: 6,
    src,
    dst,
    srcText: formatIp(src),
    dstText: formatIp(dst),
    protocol: bytes[IPV6_OFFSET_NEXT_HEADER]!,
    headerLength: IPV6_HEADER_LENGTH,
    payloadOffset: IPV6_HEADER_LENGTH,
    length,
    ttl: bytes[IPV6_OFFSET_HOP_LIMIT]!,
    fragmentOffset: 0,
    moreFragments: false,
  };
  const error = parseTransport(bytes, packet, PROTOCOL_ICMPV6);
  return error ? failed(error) : { ok: true, packet };
}

/** Fills the transport fields; `icmp` is the family's ICMP protocol number. */
function parseTransport(bytes: Uint8Array, packet: IpPacket, icmp: number): IpParseError | undefined {
  const at = packet.payloadOffset;
  const available = packet.length - at;
  switch (packet.protocol) {
    case PROTOCOL_TCP: {
      if (available < TCP_HEADER_MIN_LENGTH) return "truncated";
      const dataOffset = (bytes[at + TCP_OFFSET_DATA_OFFSET]! >>> 4) * 4;
      // A first fragment may end inside the options; the whole header is needed either way.
      if (dataOffset < TCP_HEADER_MIN_LENGTH) return "bad_length";
      if (dataOffset > available) return packet.moreFragments ? "truncated" : "bad_length";
      packet.srcPort = u16(bytes, at + TCP_OFFSET_SOURCE_PORT);
      packet.dstPort = u16(bytes, at + TCP_OFFSET_DESTINATION_PORT);
      packet.tcpFlags = bytes[at + TCP_OFFSET_FLAGS]!;
      return undefined;
    }
    case PROTOCOL_UDP: {
      if (available < UDP_HEADER_LENGTH) return "truncated";
      const udpLength = u16(bytes, at + UDP_OFFSET_LENGTH);
      // In a first fragment the UDP Length covers the reassembled datagram, so only its floor holds.
      if (udpLength < UDP_HEADER_LENGTH || (!packet.moreFragments && udpLength > available)) return "bad_length";
      packet.srcPort = u16(bytes, at + UDP_OFFSET_SOURCE_PORT);
      packet.dstPort = u16(bytes, at + UDP_OFFSET_DESTINATION_PORT);
      return undefined;
    }
    case icmp: {
      if (available < ICMP_HEADER_LENGTH) return "truncated";
      packet.icmpType = bytes[at + ICMP_OFFSET_TYPE]!;
      packet.icmpCode = bytes[at + ICMP_OFFSET_CODE]!;
      if (isEcho(packet.version, packet.icmpType)) packet.icmpIdentifier = u16(bytes, at + ICMP_OFFSET_IDENTIFIER);
      return undefined;
    }
    default:
      return undefined;
  }
}

/** True for an Echo Request or Echo Reply type of the family's ICMP. */
export function isEcho(version: 4 | 6, icmpType: number): boolean {
  return version === 4
    ? icmpType === ICMP_TYPE_ECHO || icmpType === ICMP_TYPE_ECHO_REPLY
    : icmpType === ICMPV6_TYPE_ECHO_REQUEST || icmpType === ICMPV6_TYPE_ECHO_REPLY;
}

/** The family's ICMP protocol number: 1 for IPv4, 58 for IPv6. */
export function icmpProtocol(version: 4 | 6): number {
  return version === 4 ? PROTOCOL_ICMP : PROTOCOL_ICMPV6;
}
