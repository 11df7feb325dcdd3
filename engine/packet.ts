// IPv4 (RFC 791) and IPv6 (RFC 8200) packets as the gateway's fast path reads and rewrites them: the
// same acceptance rules as daemons/proto/ip/packet.ts (the oracle the tests hold this to), and the
// same incremental checksum updates as daemons/proto/ip/rewrite.ts, byte for byte.
//
// 1. parsePacket: the version nibble picks the family. IPv4: IHL at least 5 and within the buffer,
//    Total Length at least the header and within the buffer, the header checksum verifies. IPv6: the
//    fixed header, Payload Length within the buffer; the Next Header is the protocol (no extension
//    header is walked). Then the transport header where it starts (not in an IPv4 fragment past the
//    first): TCP 20 bytes and a Data Offset inside the packet, UDP 8 bytes and a Length inside it,
//    the family's ICMP 8 bytes. The view lands in this module's globals (no allocation per packet).
// 2. Checksums: the one's complement sum (RFC 1071), and RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'),
//    for any run of changed words.
// 3. Rewrites in place, on the packet parsed last: an address (IPv4 header checksum, and the TCP,
//    UDP or ICMPv6 checksum through the pseudo-header), a TCP or UDP port, an ICMP echo identifier.
//    A UDP checksum of 0 over IPv4 means "none" and stays 0; a computed 0 is stored as 0xFFFF.
//
// Nothing here traps on any input: every read is bounded by the length the caller vouches for.

import {
  ICMP_HEADER_SIZE, ICMP_OFFSET_CHECKSUM, ICMP_OFFSET_CODE, ICMP_OFFSET_IDENTIFIER, ICMP_OFFSET_TYPE,
  ICMP_TYPE_ECHO_REPLY, ICMP_TYPE_ECHO_REQUEST, ICMPV6_TYPE_ECHO_REPLY, ICMPV6_TYPE_ECHO_REQUEST, IP_VERSION_SHIFT,
  IPV4_FLAG_MORE_FRAGMENTS, IPV4_FRAGMENT_OFFSET_MASK, IPV4_HEADER_SIZE, IPV4_OFFSET_CHECKSUM, IPV4_OFFSET_DST,
  IPV4_OFFSET_FRAGMENT, IPV4_OFFSET_PROTOCOL, IPV4_OFFSET_SRC, IPV4_OFFSET_TOTAL_LENGTH, IPV4_VERSION,
  IPV6_HEADER_SIZE, IPV6_OFFSET_DST, IPV6_OFFSET_NEXT_HEADER, IPV6_OFFSET_PAYLOAD_LENGTH, IPV6_OFFSET_SRC, IPV6_VERSION,
  PARSE_BAD_HEADER_CHECKSUM, PARSE_BAD_HEADER_LENGTH, PARSE_BAD_LENGTH, PARSE_BAD_VERSION, PARSE_OK, PARSE_TRUNCATED,
  PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP, TCP_HEADER_SIZE, TCP_OFFSET_CHECKSUM,
  TCP_OFFSET_DATA_OFFSET, TCP_OFFSET_FLAGS, UDP_HEADER_SIZE, UDP_OFFSET_CHECKSUM, UDP_OFFSET_LENGTH,
} from "./constants";

// --- 1. The view of the packet parsed last ---

export let pVersion: u32 = 0;
export let pHeaderLength: u32 = 0;
/** The packet's own length (IPv4 Total Length; 40 + IPv6 Payload Length). */
export let pLength: u32 = 0;
export let pProtocol: u32 = 0;
/** IPv4 Fragment Offset in bytes; 0 for IPv6. */
export let pFragmentOffset: u32 = 0;
export let pMoreFragments: bool = false;
/** TCP and UDP (not fragments past the first). */
export let pHasPorts: bool = false;
export let pSrcPort: u32 = 0;
export let pDstPort: u32 = 0;
export let pTcpFlags: u32 = 0;
/** The family's ICMP: type and code present. */
export let pHasIcmp: bool = false;
export let pIcmpType: u32 = 0;
export let pIcmpCode: u32 = 0;
/** Echo and Echo Reply only. */
export let pHasIdentifier: bool = false;
export let pIcmpIdentifier: u32 = 0;

@inline export function loadBe16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

@inline export function storeBe16(p: usize, value: u32): void {
  store<u16>(p, bswap<u16>(<u16>value));
}

/** Parses the packet of len bytes at p into the view; returns PARSE_OK or why not. */
export function parsePacket(p: usize, len: u32): u32 {
  pHasPorts = false;
  pHasIcmp = false;
  pHasIdentifier = false;
  pTcpFlags = 0;
  pFragmentOffset = 0;
  pMoreFragments = false;
  if (len < 1) return PARSE_TRUNCATED;
  const version = <u32>load<u8>(p) >>> IP_VERSION_SHIFT;
  pVersion = version;
  if (version == IPV4_VERSION) return parseIpv4(p, len);
  if (version == IPV6_VERSION) return parseIpv6(p, len);
  return PARSE_BAD_VERSION;
}

function parseIpv4(p: usize, len: u32): u32 {
  if (len < IPV4_HEADER_SIZE) return PARSE_TRUNCATED;
  const headerLength = (<u32>load<u8>(p) & 0x0f) << 2;
  if (headerLength < IPV4_HEADER_SIZE) return PARSE_BAD_HEADER_LENGTH;
  if (headerLength > len) return PARSE_TRUNCATED;
  const length = loadBe16(p + IPV4_OFFSET_TOTAL_LENGTH);
  if (length < headerLength) return PARSE_BAD_LENGTH;
  if (length > len) return PARSE_TRUNCATED;
  if (onesComplementSum(p, headerLength, 0) != 0xffff) return PARSE_BAD_HEADER_CHECKSUM;
  const flags = loadBe16(p + IPV4_OFFSET_FRAGMENT);
  pHeaderLength = headerLength;
  pLength = length;
  pProtocol = <u32>load<u8>(p, IPV4_OFFSET_PROTOCOL);
  pFragmentOffset = (flags & IPV4_FRAGMENT_OFFSET_MASK) << 3;
  pMoreFragments = (flags & IPV4_FLAG_MORE_FRAGMENTS) != 0;
  if (pFragmentOffset > 0) return PARSE_OK;
  return parseTransport(p, PROTOCOL_ICMP);
}

function parseIpv6(p: usize, len: u32): u32 {
  if (len < IPV6_HEADER_SIZE) return PARSE_TRUNCATED;
  const length = IPV6_HEADER_SIZE + loadBe16(p + IPV6_OFFSET_PAYLOAD_LENGTH);
  if (length > len) return PARSE_TRUNCATED;
  pHeaderLength = IPV6_HEADER_SIZE;
  pLength = length;
  pProtocol = <u32>load<u8>(p, IPV6_OFFSET_NEXT_HEADER);
  return parseTransport(p, PROTOCOL_ICMPV6);
}

/** The transport fields; icmp is the family's ICMP protocol number. */
function parseTransport(p: usize, icmp: u32): u32 {
  const at = p + pHeaderLength;
  const available = pLength - pHeaderLength;
  if (pProtocol == PROTOCOL_TCP) {
    if (available < TCP_HEADER_SIZE) return PARSE_TRUNCATED;
    const dataOffset = (<u32>load<u8>(at, TCP_OFFSET_DATA_OFFSET) >>> 4) << 2;
    // A first fragment may end inside the options; the whole header is needed either way.
    if (dataOffset < TCP_HEADER_SIZE) return PARSE_BAD_LENGTH;
    if (dataOffset > available) return pMoreFragments ? PARSE_TRUNCATED : PARSE_BAD_LENGTH;
    pSrcPort = loadBe16(at);
    pDstPort = loadBe16(at + 2);
    pTcpFlags = <u32>load<u8>(at, TCP_OFFSET_FLAGS);
    pHasPorts = true;
  } else if (pProtocol == PROTOCOL_UDP) {
    if (available < UDP_HEADER_SIZE) return PARSE_TRUNCATED;
    const udpLength = loadBe16(at + UDP_OFFSET_LENGTH);
    // In a first fragment the UDP Length covers the reassembled datagram, so only its floor holds.
    if (udpLength < UDP_HEADER_SIZE || (!pMoreFragments && udpLength > available)) return PARSE_BAD_LENGTH;
    pSrcPort = loadBe16(at);
    pDstPort = loadBe16(at + 2);
    pHasPorts = true;
  } else if (pProtocol == icmp) {
    if (available < ICMP_HEADER_SIZE) return PARSE_TRUNCATED;
    pIcmpType = <u32>load<u8>(at, ICMP_OFFSET_TYPE);
    pIcmpCode = <u32>load<u8>(at, ICMP_OFFSET_CODE);
    pHasIcmp = true;
    if (isEcho(pVersion, pIcmpType)) {
      pIcmpIdentifier = loadBe16(at + ICMP_OFFSET_IDENTIFIER);
      pHasIdentifier = true;
    }
  }
  return PARSE_OK;
}

@inline function isEcho(version: u32, icmpType: u32): bool {
  return version == IPV4_VERSION
    ? icmpType == ICMP_TYPE_ECHO_REQUEST || icmpType == ICMP_TYPE_ECHO_REPLY
    : icmpType == ICMPV6_TYPE_ECHO_REQUEST || icmpType == ICMPV6_TYPE_ECHO_REPLY;
}

/** The family's echo request (true) or reply (false) as the view's type; only for a view with an identifier. */
@inline export function isEchoRequest(): bool {
  return pVersion == IPV4_VERSION ? pIcmpType == ICMP_TYPE_ECHO_REQUEST : pIcmpType == ICMPV6_TYPE_ECHO_REQUEST;
}

/** The address offset of the source (dst false) or destination in the view's family. */
@inline export function addressOffset(dst: bool): usize {
  if (pVersion == IPV4_VERSION) return dst ? IPV4_OFFSET_DST : IPV4_OFFSET_SRC;
  return dst ? IPV6_OFFSET_DST : IPV6_OFFSET_SRC;
}

@inline export function addressSize(): usize {
  return pVersion == IPV4_VERSION ? 4 : 16;
}

// --- 2. Checksums ---

@inline function fold(sum: u64): u32 {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return <u32>sum;
}

/** The folded one's complement sum of len bytes at p, added to initial (an odd last byte is padded). */
export function onesComplementSum(p: usize, len: u32, initial: u32): u32 {
  let sum: u64 = initial;
  let i: u32 = 0;
  for (; i + 1 < len; i += 2) sum += loadBe16(p + i);
  if (i < len) sum += <u64>load<u8>(p + i) << 8;
  return fold(sum);
}

/** RFC 1624 eqn. 3 for words (2-byte units) changed from before to after. */
function checksumUpdate(checksum: u32, before: usize, after: usize, words: u32): u32 {
  let sum: u64 = ~checksum & 0xffff;
  for (let i: u32 = 0; i < words; i++) {
    sum += ~loadBe16(before + (i << 1)) & 0xffff;
    sum += loadBe16(after + (i << 1));
  }
  return ~fold(sum) & 0xffff;
}

/** RFC 1624 eqn. 3 for one word. */
@inline function checksumUpdateWord(checksum: u32, before: u32, after: u32): u32 {
  return ~fold(<u64>(~checksum & 0xffff) + <u64>(~before & 0xffff) + <u64>(after & 0xffff)) & 0xffff;
}

// --- 3. Rewrites (on the packet parsed last; fragments past the first keep their transport bytes) ---

/** Where the transport checksum sits (0: none to keep); sets tPseudo and tUdp. */
let tPseudo: bool = false;
let tUdp: bool = false;

function transportChecksumAt(p: usize): usize {
  tPseudo = false;
  tUdp = false;
  if (pFragmentOffset > 0) return 0;
  const at = p + pHeaderLength;
  if (pProtocol == PROTOCOL_TCP) {
    if (!pHasPorts) return 0;
    tPseudo = true;
    return at + TCP_OFFSET_CHECKSUM;
  }
  if (pProtocol == PROTOCOL_UDP) {
    if (!pHasPorts) return 0;
    if (pVersion == IPV4_VERSION && load<u16>(at + UDP_OFFSET_CHECKSUM) == 0) return 0;
    tPseudo = true;
    tUdp = true;
    return at + UDP_OFFSET_CHECKSUM;
  }
  if (pProtocol == PROTOCOL_ICMPV6 && pVersion == IPV6_VERSION && pHasIcmp) {
    tPseudo = true;
    return at + ICMP_OFFSET_CHECKSUM;
  }
  if (pProtocol == PROTOCOL_ICMP && pVersion == IPV4_VERSION && pHasIcmp) return at + ICMP_OFFSET_CHECKSUM;
  return 0;
}

@inline function storeTransport(at: usize, udp: bool, value: u32): void {
  storeBe16(at, udp && value == 0 ? 0xffff : value);
}

/** Replaces the source (dst false) or destination address with the one at address (the view's family). */
export function rewriteAddress(p: usize, dst: bool, address: usize): void {
  const at = p + addressOffset(dst);
  const words = <u32>addressSize() >>> 1;
  if (pVersion == IPV4_VERSION) {
    storeBe16(p + IPV4_OFFSET_CHECKSUM, checksumUpdate(loadBe16(p + IPV4_OFFSET_CHECKSUM), at, address, words));
  }
  const transport = transportChecksumAt(p);
  if (transport != 0 && tPseudo) storeTransport(transport, tUdp, checksumUpdate(loadBe16(transport), at, address, words));
  memory.copy(at, address, addressSize());
}

/** Replaces the TCP or UDP source (dst false) or destination port. */
export function rewritePort(p: usize, dst: bool, port: u32): void {
  if (!pHasPorts || pFragmentOffset > 0) return;
  const at = p + pHeaderLength + (dst ? 2 : 0);
  const before = loadBe16(at);
  const transport = transportChecksumAt(p);
  if (transport != 0) storeTransport(transport, tUdp, checksumUpdateWord(loadBe16(transport), before, port));
  storeBe16(at, port);
}

/** Replaces an ICMP or ICMPv6 echo identifier. */
export function rewriteIdentifier(p: usize, identifier: u32): void {
  if (!pHasIdentifier) return;
  const at = p + pHeaderLength + ICMP_OFFSET_IDENTIFIER;
  const transport = transportChecksumAt(p);
  if (transport != 0) storeBe16(transport, checksumUpdateWord(loadBe16(transport), loadBe16(at), identifier));
  storeBe16(at, identifier);
}
