// Where the stub resolver lives and what it hands out (DESIGN.md, "Address plan"): the sentinel DNS
// servers the OS asks, and the pool of proxy IPs that stand for the names of DNS resources.
//
// 1. Sentinels: sentinel i (from 0) is host 1 + i of SENTINEL_IPV4_RANGE and of SENTINEL_IPV6_RANGE,
//    and stands for upstream i. Host 0 is left out so IPv4 and IPv6 count alike.
// 2. Proxy IPs: handed out in order from PROXY_IPV4_RANGE and PROXY_IPV6_RANGE, PROXY_IPS_PER_NAME of
//    each family per name, never reused. The first address of each range (IPv6's Subnet-Router
//    anycast address, RFC 4291 §2.6.1) and every sentinel address are skipped: 100.100.111.0/24 lies
//    inside 100.96.0.0/11.

import { formatAddress } from "../stun/attributes.js";
import { parseIpv4, parseIpv6, parsePrefix, type Prefix } from "../wireguard/uapi.js";
import { PROXY_IPV4_RANGE, PROXY_IPV6_RANGE, SENTINEL_IPV4_RANGE, SENTINEL_IPV6_RANGE, SENTINELS_MAX } from "./constants.js";

/** An address of a known family as an integer, for range arithmetic. */
interface Numbered {
  family: 4 | 6;
  value: bigint;
}

function toBigint(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

function toBytes(value: bigint, family: 4 | 6): Uint8Array {
  const out = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

/** An IP address in text as an integer, or undefined. */
function numbered(text: string): Numbered | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, value: toBigint(v4) };
  const v6 = parseIpv6(text);
  return v6 === undefined ? undefined : { family: 6, value: toBigint(v6) };
}

/** Writes 4 or 16 bytes as canonical text (the IP layer's formatter, re-exported for DNS callers). */
export { formatIp } from "../ip/address.js";

/** The canonical text of an IP address, or undefined when it is none. */
export function canonicalIp(text: string): string | undefined {
  const n = numbered(text);
  return n === undefined ? undefined : formatAddress(toBytes(n.value, n.family));
}

class Range {
  readonly family: 4 | 6;
  readonly first: bigint;
  readonly size: bigint;
  private readonly prefixBytes: Uint8Array;
  private readonly prefixLength: number;

  constructor(text: string) {
    const prefix: Prefix | undefined = parsePrefix(text);
    if (prefix === undefined) throw new Error(`bad built-in range ${text}`);
    this.family = prefix.family;
    this.first = toBigint(prefix.address);
    this.size = 1n << BigInt(prefix.address.length * 8 - prefix.length);
    this.prefixBytes = prefix.address;
    this.prefixLength = prefix.length;
  }

  /** Whether an address of 4 or 16 bytes lies in the range, without making a bigint. */
  containsBytes(address: Uint8Array): boolean {
    const first = this.prefixBytes;
    if (address.length !== first.length) return false;
    let i = 0;
    for (; (i + 1) * 8 <= this.prefixLength; i++) if (address[i] !== first[i]) return false;
    const rest = this.prefixLength - i * 8;
    return rest === 0 || ((address[i]! ^ first[i]!) & (0xff << (8 - rest)) & 0xff) === 0;
  }

  contains(address: Numbered): boolean {
    return address.family === this.family && address.value >= this.first && address.value < this.first + this.size;
  }
}

const SENTINEL_RANGES = { 4: new Range(SENTINEL_IPV4_RANGE), 6: new Range(SENTINEL_IPV6_RANGE) } as const;
const PROXY_RANGES = { 4: new Range(PROXY_IPV4_RANGE), 6: new Range(PROXY_IPV6_RANGE) } as const;

// --- 1. Sentinels ---

/** The sentinel addresses of `count` upstreams (at most SENTINELS_MAX), IPv4 and IPv6, index i for upstream i. */
export function sentinelAddresses(count: number): { ipv4: string[]; ipv6: string[] } {
  const n = Math.min(Math.max(0, count), SENTINELS_MAX);
  const at = (family: 4 | 6, i: number): string => formatAddress(toBytes(SENTINEL_RANGES[family].first + 1n + BigInt(i), family));
  return { ipv4: Array.from({ length: n }, (_, i) => at(4, i)), ipv6: Array.from({ length: n }, (_, i) => at(6, i)) };
}

/** sentinelIndex for an address of 4 or 16 bytes (a packet's destination): cheap for every other address. */
export function sentinelIndexOfBytes(address: Uint8Array): number | undefined {
  const range = address.length === 4 ? SENTINEL_RANGES[4] : address.length === 16 ? SENTINEL_RANGES[6] : undefined;
  if (range === undefined || !range.containsBytes(address)) return undefined;
  const host = Number(toBigint(address) - range.first);
  return host >= 1 && host <= SENTINELS_MAX ? host - 1 : undefined;
}

/** Which sentinel an address is (0 for host 1), or undefined for any other address. */
export function sentinelIndex(address: string): number | undefined {
  const n = numbered(address);
  if (n === undefined || !SENTINEL_RANGES[n.family].contains(n)) return undefined;
  const host = Number(n.value - SENTINEL_RANGES[n.family].first);
  return host >= 1 && host <= SENTINELS_MAX ? host - 1 : undefined;
}

// --- 2. Proxy IPs ---

/** True when the address lies in one of the proxy ranges (allocated or not). */
export function isProxyIp(address: string): boolean {
  const n = numbered(address);
  return n !== undefined && PROXY_RANGES[n.family].contains(n) && !SENTINEL_RANGES[n.family].contains(n);
}

/** Hands out proxy IPs in order; never twice. */
export class ProxyIpPool {
  /** Next offset into each range; 0 is skipped (see the header). */
  private next = { 4: 1n, 6: 1n };

  /** `count` fresh addresses of `family` in text, or undefined when the range has too few left. */
  take(family: 4 | 6, count: number): string[] | undefined {
    const range = PROXY_RANGES[family];
    const out: string[] = [];
    let offset = this.next[family];
    while (out.length < count) {
      if (offset >= range.size) return undefined;
      const candidate: Numbered = { family, value: range.first + offset++ };
      if (SENTINEL_RANGES[family].contains(candidate)) continue;
      out.push(formatAddress(toBytes(candidate.value, family)));
    }
    this.next[family] = offset;
    return out;
  }
}
