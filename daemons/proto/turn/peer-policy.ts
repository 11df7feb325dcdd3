// Which peers the relay may reach (RFC 8656 §10.2, §12.2: "The server MAY impose restrictions on the
// IP address ... allowed in the XOR-PEER-ADDRESS attribute"). A relay on a public address must not become a way into its own host or the
// private networks behind it, so:
//
// - never: unspecified, loopback, link-local, multicast, broadcast and the rest of 240.0.0.0/4;
// - only with allowPrivatePeers: 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT) and fc00::/7 (ULA);
// - an IPv6 address that embeds an IPv4 one (IPv4-mapped ::ffff:0:0/96, RFC 4291 §2.5.5.2; the NAT64
//   well-known prefix 64:ff9b::/96, RFC 6052 §2.1) is judged by the IPv4 address, since that is
//   where a packet sent to it ends up.
//
// Also the canonical text of an address, so the same peer always finds the same permission.

import { formatAddress, type TransportAddress } from "../stun/attributes.js";
import { IPV4_SIZE, IPV6_SIZE } from "../stun/constants.js";
import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";

export type PeerClass = "public" | "private" | "forbidden";

interface Range {
  prefix: readonly number[];
  bits: number;
  class: Exclude<PeerClass, "public">;
}

const IPV4_RANGES: readonly Range[] = [
  { prefix: [0], bits: 8, class: "forbidden" }, // "this network", 0.0.0.0 unspecified (RFC 1122 §3.2.1.3)
  { prefix: [127], bits: 8, class: "forbidden" }, // loopback
  { prefix: [169, 254], bits: 16, class: "forbidden" }, // link-local (RFC 3927)
  { prefix: [224], bits: 4, class: "forbidden" }, // multicast
  { prefix: [240], bits: 4, class: "forbidden" }, // reserved, 255.255.255.255 broadcast
  { prefix: [10], bits: 8, class: "private" }, // RFC 1918
  { prefix: [172, 16], bits: 12, class: "private" },
  { prefix: [192, 168], bits: 16, class: "private" },
  { prefix: [100, 64], bits: 10, class: "private" }, // shared address space (RFC 6598)
];

const IPV6_RANGES: readonly Range[] = [
  { prefix: [], bits: 128, class: "forbidden" }, // :: unspecified
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], bits: 128, class: "forbidden" }, // ::1 loopback
  { prefix: [0xfe, 0x80], bits: 10, class: "forbidden" }, // link-local
  { prefix: [0xff], bits: 8, class: "forbidden" }, // multicast
  { prefix: [0xfc], bits: 7, class: "private" }, // unique local (RFC 4193)
];

/** Prefixes whose last 32 bits are an IPv4 address. */
const EMBEDDED_IPV4: readonly Range[] = [
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], bits: 96, class: "private" },
  { prefix: [0, 0x64, 0xff, 0x9b], bits: 96, class: "private" },
];

function within(bytes: Uint8Array, { prefix, bits }: Range): boolean {
  for (let bit = 0; bit < bits; bit += 8) {
    const take = Math.min(8, bits - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[bit / 8]! ^ (prefix[bit / 8] ?? 0)) & mask) !== 0) return false;
  }
  return true;
}

/** The class of 4 or 16 address bytes; see above. */
export function classifyAddressBytes(bytes: Uint8Array): PeerClass {
  if (bytes.length === IPV6_SIZE && EMBEDDED_IPV4.some((range) => within(bytes, range))) {
    return classifyAddressBytes(bytes.subarray(IPV6_SIZE - IPV4_SIZE));
  }
  const ranges = bytes.length === IPV4_SIZE ? IPV4_RANGES : IPV6_RANGES;
  return ranges.find((range) => within(bytes, range))?.class ?? "public";
}

/** Whether the relay may send to (and take datagrams from) address; unparsable addresses may not. */
export function peerAllowed(address: TransportAddress, allowPrivatePeers: boolean): boolean {
  const bytes = addressBytesOf(address);
  if (bytes === undefined) return false;
  const verdict = classifyAddressBytes(bytes);
  return verdict === "public" || (verdict === "private" && allowPrivatePeers);
}

/** The bytes of an address, or undefined when its text is not an address of its family; never throws. */
export function addressBytesOf(address: TransportAddress): Uint8Array | undefined {
  const bytes = address.family === 4 ? parseIpv4(address.address) : address.family === 6 ? parseIpv6(address.address) : undefined;
  return bytes !== undefined && bytes.length === (address.family === 4 ? IPV4_SIZE : IPV6_SIZE) ? bytes : undefined;
}

/** The address in canonical text (RFC 5952 for IPv6, as the codec decodes it), or undefined if it is not one. */
export function canonicalAddress(address: TransportAddress): TransportAddress | undefined {
  if (!Number.isInteger(address.port) || address.port < 0 || address.port > 0xffff) return undefined;
  const bytes = addressBytesOf(address);
  return bytes === undefined ? undefined : { family: address.family, address: formatAddress(bytes), port: address.port };
}

/** A map key for an IP address (what a permission is for, RFC 8656 §9: ports are not compared). */
export function ipKey(address: TransportAddress): string {
  return `${address.family}/${address.address}`;
}

/** A map key for a transport address (a channel's peer, a client's 5-tuple on the one listener). */
export function transportKey(address: TransportAddress): string {
  return `${address.family}/${address.address}/${address.port}`;
}
