// Which resource a client's outbound packet is for: longest-prefix match over the resources it may
// see. The engine's routing table does the same per packet in the data path; this is the sans-IO
// ClientState's copy, consulted once per new flow (to ask for authorization, or to answer ICMP
// prohibited), and the oracle the engine's table is checked against.
//
// 1. Routes: an ip resource is its address as a host route (/32, /128); a cidr resource its prefix;
//    a DNS resource the proxy addresses the stub resolver handed out for its names, each a host route;
//    the Internet resource, while switched on, 0.0.0.0/0 and ::/0. An IPv4-mapped IPv6 address or
//    prefix (/96 or longer) is the IPv4 one it maps, as in the engine's table.
// 2. Lookup: the longest prefix holding the address wins. Equal prefixes from two resources (two
//    CIDR resources written alike) go to the smaller resource id, so every client picks the same.

import { parseIp, parsePrefix, unmapPrefix, type IpPrefix } from "../ip/address.js";
import type { ClientResource } from "../portal/schema.js";

const IPV4_BITS = 32;
const IPV6_BITS = 128;

/** One family's routes: for each prefix length present, the masked prefixes of that length. */
class PrefixSet {
  private readonly byLength = new Map<number, Map<string, string>>();
  private lengths: number[] = [];

  constructor(private readonly bits: number) {}

  add(address: Uint8Array, length: number, resourceId: string): void {
    let routes = this.byLength.get(length);
    if (routes === undefined) {
      routes = new Map();
      this.byLength.set(length, routes);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
    const key = maskedKey(address, length);
    const held = routes.get(key);
    if (held === undefined || resourceId < held) routes.set(key, resourceId);
  }

  lookup(address: Uint8Array): string | undefined {
    if (address.length * 8 !== this.bits) return undefined;
    for (const length of this.lengths) {
      const found = this.byLength.get(length)!.get(maskedKey(address, length));
      if (found !== undefined) return found;
    }
    return undefined;
  }
}

/** The first `length` bits of `address` as text, the rest zero: equal for every address the prefix holds. */
function maskedKey(address: Uint8Array, length: number): string {
  let key = "";
  for (let i = 0; i < address.length; i++) {
    const keep = Math.max(0, Math.min(8, length - 8 * i));
    const byte = keep === 0 ? 0 : address[i]! & (0xff << (8 - keep));
    key += byte.toString(16).padStart(2, "0");
  }
  return key;
}

/** The resources a client may reach, by destination address. */
export class ResourceTable {
  private v4 = new PrefixSet(IPV4_BITS);
  private v6 = new PrefixSet(IPV6_BITS);
  private resources: readonly ClientResource[] = [];
  private internetEnabled = false;
  /** Proxy address (text) → DNS resource id: kept across resource updates, as the resolver keeps them. */
  private readonly proxies = new Map<string, { address: Uint8Array; resourceId: string }>();

  /** Replaces the resources (init, or after a live update); the Internet resource counts only while switched on. */
  setResources(resources: readonly ClientResource[], internetEnabled: boolean): void {
    this.resources = resources;
    this.internetEnabled = internetEnabled;
    this.rebuild();
  }

  /** A proxy address the stub resolver handed out for one of a DNS resource's names. */
  mapProxy(address: string, resourceId: string): void {
    const bytes = parseIp(address);
    if (bytes === undefined) return;
    this.proxies.set(address, { address: bytes, resourceId });
    if (this.resources.some((r) => r.id === resourceId && r.type === "dns")) this.addPrefix({ address: bytes, length: bytes.length * 8 }, resourceId);
  }

  /** The resource `address` (4 or 16 bytes) belongs to, if any. */
  lookup(address: Uint8Array): string | undefined {
    return this.family(address).lookup(address);
  }

  private family(address: Uint8Array): PrefixSet {
    return address.length === 4 ? this.v4 : this.v6;
  }

  private addPrefix(prefix: IpPrefix, resourceId: string): void {
    const { address, length } = unmapPrefix(prefix);
    this.family(address).add(address, length, resourceId);
  }

  private rebuild(): void {
    this.v4 = new PrefixSet(IPV4_BITS);
    this.v6 = new PrefixSet(IPV6_BITS);
    const dns = new Set<string>();
    for (const resource of this.resources) {
      if (resource.type === "ip" && resource.address !== null) {
        const bytes = parseIp(resource.address);
        if (bytes !== undefined) this.addPrefix({ address: bytes, length: bytes.length * 8 }, resource.id);
      } else if (resource.type === "cidr" && resource.address !== null) {
        const prefix = parsePrefix(resource.address);
        if (prefix !== undefined) this.addPrefix(prefix, resource.id);
      } else if (resource.type === "internet" && this.internetEnabled) {
        this.v4.add(new Uint8Array(4), 0, resource.id);
        this.v6.add(new Uint8Array(16), 0, resource.id);
      } else if (resource.type === "dns") dns.add(resource.id);
    }
    // A DNS resource that went away takes its proxy routes with it; its addresses stay reserved for
    // its names, and route again if it comes back.
    for (const { address, resourceId } of this.proxies.values()) if (dns.has(resourceId)) this.addPrefix({ address, length: address.length * 8 }, resourceId);
  }
}
