// UDP datagrams the client writes itself: the sentinel's DNS answers into the TUN device and the
// control messages to a gateway. Not a hot path: checksums are computed in full.
//
// 1. IPv4 (RFC 791) or IPv6 (RFC 8200) header, by the family of the addresses.
// 2. UDP header (RFC 768) and payload.
// 3. Checksums: the IPv4 header's, then UDP's over the pseudo-header (never 0 on the wire: RFC 768
//    sends 0xffff for a computed 0, and IPv6 forbids 0, RFC 8200 §8.1).

import { internetChecksum, pseudoHeaderSum } from "../ip/checksum.js";
import {
  IPV4_HEADER_MIN_LENGTH, IPV4_OFFSET_DESTINATION_ADDRESS, IPV4_OFFSET_PROTOCOL, IPV4_OFFSET_SOURCE_ADDRESS,
  IPV4_OFFSET_TIME_TO_LIVE, IPV4_OFFSET_TOTAL_LENGTH, IPV4_OFFSET_VERSION_IHL, IPV6_HEADER_LENGTH,
  IPV6_OFFSET_DESTINATION_ADDRESS, IPV6_OFFSET_HOP_LIMIT, IPV6_OFFSET_NEXT_HEADER, IPV6_OFFSET_PAYLOAD_LENGTH,
  IPV6_OFFSET_SOURCE_ADDRESS, PROTOCOL_UDP, UDP_HEADER_LENGTH, UDP_OFFSET_CHECKSUM, UDP_OFFSET_DESTINATION_PORT,
  UDP_OFFSET_LENGTH, UDP_OFFSET_SOURCE_PORT,
} from "../ip/constants.js";
import { fillIpv4HeaderChecksum } from "../ip/rewrite.js";
import { DATAGRAM_TIME_TO_LIVE } from "./constants.js";

/** Largest UDP payload an IPv4 datagram can carry (65535 − 20 − 8). */
const UDP_PAYLOAD_MAX = 0xffff - IPV4_HEADER_MIN_LENGTH - UDP_HEADER_LENGTH;

function writeU16(b: Uint8Array, at: number, value: number): void {
  b[at] = value >>> 8;
  b[at + 1] = value & 0xff;
}

/** A UDP/IP packet from `src`:`srcPort` to `dst`:`dstPort` (both 4 or both 16 bytes); undefined if they differ or the payload is too long. */
export function buildUdpPacket(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, payload: Uint8Array): Uint8Array | undefined {
  if (src.length !== dst.length || (src.length !== 4 && src.length !== 16) || payload.length > UDP_PAYLOAD_MAX) return undefined;
  const v4 = src.length === 4;
  // --- 1. IP header ---
  const header = v4 ? IPV4_HEADER_MIN_LENGTH : IPV6_HEADER_LENGTH;
  const udpLength = UDP_HEADER_LENGTH + payload.length;
  const out = new Uint8Array(header + udpLength);
  if (v4) {
    out[IPV4_OFFSET_VERSION_IHL] = 0x45;
    writeU16(out, IPV4_OFFSET_TOTAL_LENGTH, out.length);
    out[IPV4_OFFSET_TIME_TO_LIVE] = DATAGRAM_TIME_TO_LIVE;
    out[IPV4_OFFSET_PROTOCOL] = PROTOCOL_UDP;
    out.set(src, IPV4_OFFSET_SOURCE_ADDRESS);
    out.set(dst, IPV4_OFFSET_DESTINATION_ADDRESS);
  } else {
    out[0] = 0x60;
    writeU16(out, IPV6_OFFSET_PAYLOAD_LENGTH, udpLength);
    out[IPV6_OFFSET_NEXT_HEADER] = PROTOCOL_UDP;
    out[IPV6_OFFSET_HOP_LIMIT] = DATAGRAM_TIME_TO_LIVE;
    out.set(src, IPV6_OFFSET_SOURCE_ADDRESS);
    out.set(dst, IPV6_OFFSET_DESTINATION_ADDRESS);
  }
  // --- 2. UDP header and payload ---
  writeU16(out, header + UDP_OFFSET_SOURCE_PORT, srcPort);
  writeU16(out, header + UDP_OFFSET_DESTINATION_PORT, dstPort);
  writeU16(out, header + UDP_OFFSET_LENGTH, udpLength);
  out.set(payload, header + UDP_HEADER_LENGTH);
  // --- 3. Checksums ---
  if (v4) fillIpv4HeaderChecksum(out, header);
  const checksum = internetChecksum(out, header, out.length, pseudoHeaderSum(src, dst, PROTOCOL_UDP, udpLength));
  writeU16(out, header + UDP_OFFSET_CHECKSUM, checksum === 0 ? 0xffff : checksum);
  return out;
}
