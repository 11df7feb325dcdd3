// Packet builders for tests (here and in ../gateway): well-formed IPv4 and IPv6 packets with TCP,
// UDP, ICMP or any payload, checksums computed in full.

import { parseIp } from "./address.js";
import {
  DEFAULT_TIME_TO_LIVE, ICMP_OFFSET_CODE, ICMP_OFFSET_IDENTIFIER, ICMP_OFFSET_SEQUENCE_NUMBER, ICMP_OFFSET_TYPE,
  IPV4_HEADER_MIN_LENGTH, IPV6_HEADER_LENGTH, PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP, TCP_HEADER_MIN_LENGTH,
  UDP_HEADER_LENGTH,
} from "./constants.js";
import { parseIpPacket } from "./packet.js";
import { fillIpv4HeaderChecksum, fillTransportChecksum } from "./rewrite.js";

export interface PacketSpec {
  src: string;
  dst: string;
  /** Defaults: TCP when ports are given, ICMP (echo) when icmpType is, else UDP. */
  protocol?: number;
  srcPort?: number;
  dstPort?: number;
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpIdentifier?: number;
  payload?: Uint8Array;
  /** UDP over IPv4 only: send checksum 0 ("none"). */
  noUdpChecksum?: boolean;
}

/** Builds a packet with valid checksums; throws on a bad spec (tests only). */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const src = parseIp(spec.src);
  const dst = parseIp(spec.dst);
  if (!src || !dst || src.length !== dst.length) throw new Error(`bad addresses ${spec.src} ${spec.dst}`);
  const v4 = src.length === 4;
  const protocol = spec.protocol ?? (spec.icmpType !== undefined ? (v4 ? PROTOCOL_ICMP : PROTOCOL_ICMPV6) : PROTOCOL_UDP);
  const payload = spec.payload ?? new Uint8Array(0);
  let transport: Uint8Array;
  if (protocol === PROTOCOL_TCP) {
    transport = new Uint8Array(TCP_HEADER_MIN_LENGTH + payload.length);
    writeU16(transport, 0, spec.srcPort ?? 0);
    writeU16(transport, 2, spec.dstPort ?? 0);
    transport[12] = (TCP_HEADER_MIN_LENGTH / 4) << 4;
    transport[13] = spec.tcpFlags ?? 0x10;
    writeU16(transport, 14, 65535);
    transport.set(payload, TCP_HEADER_MIN_LENGTH);
  } else if (protocol === PROTOCOL_UDP) {
    transport = new Uint8Array(UDP_HEADER_LENGTH + payload.length);
    writeU16(transport, 0, spec.srcPort ?? 0);
    writeU16(transport, 2, spec.dstPort ?? 0);
    writeU16(transport, 4, transport.length);
    transport.set(payload, UDP_HEADER_LENGTH);
  } else if (protocol === PROTOCOL_ICMP || protocol === PROTOCOL_ICMPV6) {
    transport = new Uint8Array(8 + payload.length);
    transport[ICMP_OFFSET_TYPE] = spec.icmpType ?? 0;
    transport[ICMP_OFFSET_CODE] = spec.icmpCode ?? 0;
    writeU16(transport, ICMP_OFFSET_IDENTIFIER, spec.icmpIdentifier ?? 0);
    writeU16(transport, ICMP_OFFSET_SEQUENCE_NUMBER, 1);
    transport.set(payload, 8);
  } else transport = payload;
  const header = v4 ? IPV4_HEADER_MIN_LENGTH : IPV6_HEADER_LENGTH;
  const out = new Uint8Array(header + transport.length);
  if (v4) {
    out[0] = 0x45;
    writeU16(out, 2, out.length);
    writeU16(out, 4, 0x1234);
    out[8] = DEFAULT_TIME_TO_LIVE;
    out[9] = protocol;
    out.set(src, 12);
    out.set(dst, 16);
  } else {
    out[0] = 0x60;
    writeU16(out, 4, transport.length);
    out[6] = protocol;
    out[7] = DEFAULT_TIME_TO_LIVE;
    out.set(src, 8);
    out.set(dst, 24);
  }
  out.set(transport, header);
  if (v4) fillIpv4HeaderChecksum(out, header);
  const parsed = parseIpPacket(out);
  if (!parsed.ok) throw new Error(`built a bad packet: ${parsed.error}`);
  if (!(protocol === PROTOCOL_UDP && v4 && spec.noUdpChecksum)) {
    // fillTransportChecksum leaves a UDP/IPv4 checksum of 0 alone: give it a placeholder to replace.
    if (protocol === PROTOCOL_UDP) writeU16(out, header + 6, 1);
    fillTransportChecksum(out, parsed.packet);
  }
  return out;
}

function writeU16(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 8;
  b[at + 1] = value & 0xff;
}
