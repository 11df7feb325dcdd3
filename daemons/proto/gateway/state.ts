// The gateway's policy state: which clients may reach which resources until when, the DNS-resource
// proxy mappings clients announce, and the NAT that serves them. It decides every packet that comes
// out of a client's tunnel and translates the answers back. WireGuard, ICE and the portal socket are
// other machines; this one tells the driver which peers to configure (peer events) and which names
// to resolve (resolve events).
//
// Driving contract: call one input method (init, createAuthorization, rejectAccess, handleTunnelDown,
// handleFromClient, handleFromResource, handleResolved, handleTimeout) with the current monotonic
// time in ms, act on the decision it returns, then drain pollEvent() until it returns undefined,
// then arm a timer for pollTimeout(). Nothing here reads a clock or a random source: the wall-clock
// origin of `now` (to place RFC 3339 expiries) and randomness (NAT ports) come in the options.
// Every input first removes what has expired, so an authorization is gone exactly at its
// expires_at even if the timer fires late.
//
// The pipeline, in the order of this file:
// 1. Authorizations: init (a full re-sync), createAuthorization, rejectAccess, expiry. At most one
//    per (client, resource): one installed replaces any other for the pair, and in init a later
//    entry replaces an earlier one. A client's first authorization adds its WireGuard peer, its last
//    one removing it removes the peer; a later one with other keys, ICE credentials or addresses
//    updates it. Removing one drops that pair's DNS mappings and NAT flows. When the connection
//    layer finds no path left to a client (handleTunnelDown, on ICE failure) while it still holds an
//    authorization, the peer is connected afresh (peer_reconnect), as the client does on its side.
// 2. From a client's tunnel (handleFromClient):
//    a. parse (drop malformed); the client must hold an authorization (unknown_client);
//    b. anti-spoofing: the source is the client's tunnel address of that family (spoofed);
//    c. fragments are dropped: neither filters nor NAT can see ports past the first;
//    d. a UDP datagram to the gateway's tunnel address on CONTROL_PORT is a control message (3.);
//    e. the resource: a proxy IP the client mapped to a DNS resource it holds; else, for a client
//       holding a DNS resource, a proxy IP it has not mapped yet is held (its mapping may be on the
//       way, overtaken by the packet: the client sends both at once); else an ip resource with this
//       address, else the cidr resources with the longest prefix holding it, else the internet
//       resource, which covers nothing of the address plan's ranges (so an unmapped proxy IP is
//       refused). None: ICMP administratively prohibited back to the client;
//    f. filters (./filters.ts); a violation: ICMP administratively prohibited. Where several
//       resources tie (an ip and a /32, or two equal prefixes), any of them may allow the packet;
//    g. a DNS resource: NAT to the real address (4.); before the name is resolved the packet is
//       held, after it resolved to no address of the family it is refused;
//    h. forward.
//    Held packets (at most HELD_PACKETS_MAX per client, the oldest dropped first) are decided again
//    when a mapping arrives or a name resolves, by the authorizations the client held when they
//    arrived (one granted since refuses them), and their outcome comes out as forward or reply
//    events; one still waiting after HOLD_TIMEOUT is dropped (unresolved). So the first packets to a
//    DNS resource are neither refused nor lost while its mapping and name are on their way.
// 3. Control messages (./control.ts): the client must hold a dns authorization for the resource, the
//    name must match its pattern, every proxy IP must lie in the proxy ranges. A wildcard resource
//    covers many names, so mappings are kept per (client, resource, name); one replaces the previous
//    one for its name, and a proxy IP claimed again moves to the new name (its flows end). The name is
//    resolved through a resolve event and handleResolved; proxy IP i of a family maps to real
//    address i mod count of that family.
// 4. NAT (./nat.ts): translate, creating the flow on the first packet; checksums updated
//    incrementally (../ip/rewrite.ts).
// 5. From the network (handleFromResource): parse; the destination is a client's tunnel address;
//    an answer on a NAT flow has its source set back to the proxy IP and its port (or echo
//    identifier) back to the client's; ICMP errors about a NAT flow have the packet they quote
//    translated too; anything else goes to the client as it is.
// 6. Timers: authorization expiries, NAT flow timeouts and held packets; pollTimeout is the earliest.
// 7. For a fast path in front (the engine's): the NAT flows by either key, the proxy IPs each client
//    mapped, and carryFlow to take back the timers of flows the fast path translated packets of.

import { formatIp, parseIp, parsePrefix, prefixContains, sameAddress, unmapPrefix, type IpPrefix } from "../ip/address.js";
import { internetChecksum, pseudoHeaderSum } from "../ip/checksum.js";
import {
  ICMP_HEADER_LENGTH, ICMP_OFFSET_CHECKSUM, ICMP_TYPE_DESTINATION_UNREACHABLE, PROTOCOL_ICMP, PROTOCOL_ICMPV6,
  PROTOCOL_TCP, PROTOCOL_UDP,
} from "../ip/constants.js";
import { buildProhibited } from "../ip/icmp.js";
import { icmpProtocol, isEcho, parseIpPacket, type IpPacket, type IpParseError } from "../ip/packet.js";
import { rewriteAddress, rewriteIcmpIdentifier, rewritePort } from "../ip/rewrite.js";
import type { AuthorizationForGateway, GatewayResource, IceCredentials, RejectAccess } from "../portal/schema.js";
import {
  CONTROL_PORT, HELD_PACKETS_MAX, HOLD_TIMEOUT, NAME_REFRESH_INTERVAL, PROXY_IPV4_RANGE, PROXY_IPV6_RANGE, RESERVED_RANGES,
  RESOLVE_RETRY_INTERVAL,
} from "./constants.js";
import { decodeControl, type DnsMappingMessage } from "./control.js";
import { dnsNameMatches as dnsPatternMatches } from "../dns/patterns.js";
import { compileFilters, filtersAllow, type CompiledFilters } from "./filters.js";
import { NatTable, type FlowPorts, type NatFlow } from "./nat.js";

export interface GatewayStateOptions {
  /** The gateway's own tunnel addresses (its init's interface): where control messages go. */
  ipv4: string;
  ipv6: string;
  /** The Unix time in ms at which `now` is 0, so RFC 3339 expiries land on the monotonic clock; 0 unless told. */
  epochMs?: number;
  /** Randomness, from the driver: NAT outside ports when a client's own clashes. */
  random: (length: number) => Uint8Array;
}

/** A client's WireGuard peer and ICE credentials, as the driver connects it. */
export interface GatewayPeer {
  clientId: string;
  publicKey: string;
  presharedKey: string;
  ipv4: string;
  ipv6: string;
  /** The client's ICE credentials (the remote ones, to the gateway's agent). */
  clientIce: IceCredentials;
  /** The gateway's own for this client (the local ones). */
  gatewayIce: IceCredentials;
}

/** Why an authorization went away. */
export type RemovalReason = "expired" | "rejected" | "replaced" | "init";

export type GatewayEvent =
  /** A client's first authorization arrived: configure its peer. */
  | ({ type: "peer_added" } & GatewayPeer)
  /** A later authorization carries other keys, ICE credentials or tunnel addresses for a client: reconfigure its peer. */
  | ({ type: "peer_updated" } & GatewayPeer)
  /** No path is left to a client that still holds an authorization: connect its peer afresh, as it is. */
  | ({ type: "peer_reconnect" } & GatewayPeer)
  /** A client's last authorization went: remove its peer. */
  | { type: "peer_removed"; clientId: string; publicKey: string }
  /** An authorization is gone (replaced ones included; the portal needs no word of those). */
  | { type: "authorization_removed"; authorizationId: string; clientId: string; resourceId: string; reason: RemovalReason }
  /** Resolve this name (A and AAAA) and call handleResolved with the answer. */
  | { type: "resolve"; name: string }
  /** A held packet of the client's, now decided: send it on to the network, translated. */
  | { type: "forward"; clientId: string; packet: Uint8Array }
  /** A held packet of the client's, now refused: send this ICMP error into the client's tunnel. */
  | { type: "reply"; clientId: string; packet: Uint8Array };

/** Why a packet was dropped, one counter each. */
export type DropReason =
  | "malformed" // failed parseIpPacket
  | "unknown_client" // a client with no live authorization, or a destination that is no client's tunnel address
  | "spoofed" // source is not the client's tunnel address
  | "fragment" // an IPv4 fragment
  | "prohibited" // refused, and no ICMP error may answer it (it is one, or a fragment)
  | "unresolved" // held for a proxy IP's mapping or its name's answer, which did not come within HOLD_TIMEOUT
  | "held_overflow" // held while the client already had HELD_PACKETS_MAX packets waiting
  | "nat_exhausted" // no free outside port
  | "bad_control" // a control message that does not decode
  | "control_refused"; // a control message for a resource the client may not map, or a name or proxy IP refused

export type FromClientDecision =
  | { action: "forward"; packet: Uint8Array }
  /** Send this packet back into the client's tunnel (an ICMP administratively prohibited). */
  | { action: "reply"; packet: Uint8Array }
  /** A control message for the gateway itself, applied. */
  | { action: "consumed" }
  /** Kept until its proxy IP's mapping or name comes; its outcome follows as a forward or reply event. */
  | { action: "held" }
  | { action: "drop"; reason: DropReason; detail?: IpParseError };

export type FromResourceDecision =
  | { action: "forward"; clientId: string; packet: Uint8Array }
  | { action: "drop"; reason: DropReason; detail?: IpParseError };

/** The result of createAuthorization: installed, or why not (for authorization_creation_failed). */
export type InstallResult = { ok: true } | { ok: false; reason: string };

interface CompiledResource {
  id: string;
  type: GatewayResource["type"];
  /** ip: the address. */
  address?: Uint8Array;
  /** cidr: the prefix. */
  prefix?: IpPrefix;
  /** dns: the name pattern. */
  pattern?: string;
  filters: CompiledFilters;
}

interface Installed {
  authorizationId: string;
  clientId: string;
  resource: CompiledResource;
  expiresAt: number;
  /** Since when the client has held the resource without a break (a replacement keeps it). */
  since: number;
}

interface DnsMapping {
  resourceId: string;
  name: string;
  /** Proxy IPs per family, in the client's order: index i maps to real address i mod count. */
  v4: string[];
  v6: string[];
}

interface ProxyEntry {
  /** The mapping's key in ClientRecord.mappings. */
  mappingKey: string;
  resourceId: string;
  version: 4 | 6;
  index: number;
}

interface ClientRecord {
  peer: GatewayPeer;
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  /** By resource id. */
  authorizations: Map<string, Installed>;
  /** By mappingKey(resource id, name). */
  mappings: Map<string, DnsMapping>;
  /** By proxy IP text. */
  proxies: Map<string, ProxyEntry>;
  /** Packets waiting for a proxy IP's mapping or its name's addresses, oldest first. */
  held: { bytes: Uint8Array; heldAt: number }[];
}

interface NameRecord {
  v4: Uint8Array[];
  v6: Uint8Array[];
  /** When the last answer came; undefined: none yet. */
  resolvedAt: number | undefined;
  /** When the last resolve event went out; undefined: none is outstanding. */
  requestedAt: number | undefined;
}

const PROXY_PREFIXES = [PROXY_IPV4_RANGE, PROXY_IPV6_RANGE].map((text) => parsePrefix(text)!);
const RESERVED_PREFIXES = RESERVED_RANGES.map((text) => parsePrefix(text)!);

/**
 * The gateway's authorizations, DNS mappings and NAT, deciding each packet from or to a client's
 * tunnel (driving contract in the file header).
 */
export class GatewayState {
  private readonly clients = new Map<string, ClientRecord>();
  private readonly byAuthorizationId = new Map<string, Installed>();
  /** Client tunnel address (text) → client id. */
  private readonly byTunnelAddress = new Map<string, string>();
  private readonly names = new Map<string, NameRecord>();
  private readonly nat: NatTable;
  private readonly events: GatewayEvent[] = [];
  private readonly ownIpv4: Uint8Array;
  private readonly ownIpv6: Uint8Array;
  private readonly epochMs: number;
  /** No expiry is due before this; Infinity: nothing to expire. */
  private nextExpiry = Infinity;
  /** Drops per reason, in both directions. */
  readonly drops: Record<DropReason, number> = {
    malformed: 0, unknown_client: 0, spoofed: 0, fragment: 0, prohibited: 0, unresolved: 0, held_overflow: 0, nat_exhausted: 0, bad_control: 0,
    control_refused: 0,
  };

  constructor(options: GatewayStateOptions) {
    const ipv4 = parseIp(options.ipv4);
    const ipv6 = parseIp(options.ipv6);
    if (ipv4?.length !== 4 || ipv6?.length !== 16) throw new Error("GatewayState: ipv4 and ipv6 must be the gateway's tunnel addresses");
    this.ownIpv4 = ipv4;
    this.ownIpv6 = ipv6;
    this.epochMs = options.epochMs ?? 0;
    this.nat = new NatTable(options.random);
  }

  // --- 1. Authorizations ---

  /**
   * Re-syncs with the portal's full list: what is not in it goes, what is new is installed, what
   * is already installed (same authorization id) keeps its DNS mappings and flows. Returns the
   * entries it could not install (already expired, unusable addresses).
   */
  init(now: number, authorizations: readonly AuthorizationForGateway[]): { authorizationId: string; reason: string }[] {
    this.expire(now);
    const wanted = new Map<string, AuthorizationForGateway>();
    for (const a of authorizations) wanted.set(`${a.client.id}|${a.resource.id}`, a);
    for (const installed of [...this.byAuthorizationId.values()]) {
      const next = wanted.get(`${installed.clientId}|${installed.resource.id}`);
      if (!next) this.remove(installed, "init");
    }
    const failed: { authorizationId: string; reason: string }[] = [];
    for (const a of wanted.values()) {
      const result = this.install(now, a);
      if (!result.ok) failed.push({ authorizationId: a.authorization_id, reason: result.reason });
    }
    return failed;
  }

  /** Installs an authorization, replacing the client's one for the same resource. */
  createAuthorization(now: number, authorization: AuthorizationForGateway): InstallResult {
    this.expire(now);
    return this.install(now, authorization);
  }

  /** Removes an authorization at once (the portal's reject_access); unknown ids are ignored. */
  rejectAccess(now: number, reject: Pick<RejectAccess, "authorization_id">): void {
    this.expire(now);
    const installed = this.byAuthorizationId.get(reject.authorization_id);
    if (installed) this.remove(installed, "rejected");
  }

  /**
   * The connection layer found no working path left to a client (its ICE failed). While the client
   * holds an authorization, its peer is connected afresh (peer_reconnect): a client that dropped its
   * side and came back with the same keys runs a new ICE agent, which the old one may never reach.
   */
  handleTunnelDown(now: number, clientId: string): void {
    this.expire(now);
    const client = this.clients.get(clientId);
    if (client) this.events.push({ type: "peer_reconnect", ...client.peer });
  }

  /** The authorization ids installed, for tests and diagnostics. */
  authorizationIds(): string[] {
    return [...this.byAuthorizationId.keys()];
  }

  private install(now: number, a: AuthorizationForGateway): InstallResult {
    const expiresAt = Date.parse(a.expires_at) - this.epochMs;
    if (Number.isNaN(expiresAt)) return { ok: false, reason: "expires_at is not a date" };
    if (expiresAt <= now) return { ok: false, reason: "already expired" };
    const resource = compileResource(a.resource);
    if (!resource) return { ok: false, reason: "resource address unusable" };
    const ipv4 = parseIp(a.client.ipv4);
    const ipv6 = parseIp(a.client.ipv6);
    if (ipv4?.length !== 4 || ipv6?.length !== 16) return { ok: false, reason: "client tunnel addresses unusable" };
    const peer: GatewayPeer = {
      clientId: a.client.id, publicKey: a.client.public_key, presharedKey: a.client.preshared_key, ipv4: formatIp(ipv4), ipv6: formatIp(ipv6),
      clientIce: { ...a.client_ice }, gatewayIce: { ...a.gateway_ice },
    };

    const same = this.byAuthorizationId.get(a.authorization_id);
    if (same && (same.clientId !== a.client.id || same.resource.id !== a.resource.id)) this.remove(same, "replaced");

    let client = this.clients.get(peer.clientId);
    if (!client) {
      client = { peer, ipv4, ipv6, authorizations: new Map(), mappings: new Map(), proxies: new Map(), held: [] };
      this.clients.set(peer.clientId, client);
      this.byTunnelAddress.set(peer.ipv4, peer.clientId);
      this.byTunnelAddress.set(peer.ipv6, peer.clientId);
      this.events.push({ type: "peer_added", ...peer });
    } else if (!samePeer(client.peer, peer)) {
      this.byTunnelAddress.delete(client.peer.ipv4);
      this.byTunnelAddress.delete(client.peer.ipv6);
      client.peer = peer;
      client.ipv4 = ipv4;
      client.ipv6 = ipv6;
      this.byTunnelAddress.set(peer.ipv4, peer.clientId);
      this.byTunnelAddress.set(peer.ipv6, peer.clientId);
      // NAT flows name the client's old address; they cannot match its packets any more.
      this.nat.removeClient(peer.clientId);
      this.events.push({ type: "peer_updated", ...peer });
    }

    const previous = client.authorizations.get(resource.id);
    if (previous && previous.authorizationId !== a.authorization_id) {
      this.byAuthorizationId.delete(previous.authorizationId);
      this.events.push({ type: "authorization_removed", authorizationId: previous.authorizationId, clientId: previous.clientId, resourceId: resource.id, reason: "replaced" });
    }
    // The pair's mappings survive a replacement (or a resend) only while they name names the resource covers.
    if (previous) this.dropMappings(client, resource.id, (name) => resource.type === "dns" && dnsPatternMatches(resource.pattern!, name));
    const installed: Installed = { authorizationId: a.authorization_id, clientId: peer.clientId, resource, expiresAt, since: previous?.since ?? now };
    client.authorizations.set(resource.id, installed);
    this.byAuthorizationId.set(a.authorization_id, installed);
    this.nextExpiry = Math.min(this.nextExpiry, expiresAt);
    return { ok: true };
  }

  private remove(installed: Installed, reason: RemovalReason): void {
    const client = this.clients.get(installed.clientId);
    this.byAuthorizationId.delete(installed.authorizationId);
    this.events.push({ type: "authorization_removed", authorizationId: installed.authorizationId, clientId: installed.clientId, resourceId: installed.resource.id, reason });
    if (!client || client.authorizations.get(installed.resource.id) !== installed) return;
    client.authorizations.delete(installed.resource.id);
    this.dropMappings(client, installed.resource.id);
    this.nat.removeClient(installed.clientId, installed.resource.id);
    if (client.authorizations.size > 0) return;
    this.clients.delete(installed.clientId);
    this.byTunnelAddress.delete(client.peer.ipv4);
    this.byTunnelAddress.delete(client.peer.ipv6);
    this.nat.removeClient(installed.clientId);
    this.events.push({ type: "peer_removed", clientId: installed.clientId, publicKey: client.peer.publicKey });
  }

  // --- 2. From a client's tunnel ---

  /** Decides a decrypted packet that came out of this client's tunnel. */
  handleFromClient(now: number, clientId: string, bytes: Uint8Array): FromClientDecision {
    this.expire(now);
    const parsed = parseIpPacket(bytes);
    if (!parsed.ok) return this.drop("malformed", parsed.error);
    const packet = parsed.packet;
    const client = this.clients.get(clientId);
    if (!client) return this.drop("unknown_client");
    if (!sameAddress(packet.src, packet.version === 4 ? client.ipv4 : client.ipv6)) return this.drop("spoofed");
    if (packet.fragmentOffset > 0 || packet.moreFragments) return this.drop("fragment");

    const own = packet.version === 4 ? this.ownIpv4 : this.ownIpv6;
    if (packet.protocol === PROTOCOL_UDP && packet.dstPort === CONTROL_PORT && sameAddress(packet.dst, own)) {
      const udpLength = (bytes[packet.payloadOffset + 4]! << 8) | bytes[packet.payloadOffset + 5]!;
      return this.handleControl(now, client, bytes.subarray(packet.payloadOffset + 8, packet.payloadOffset + udpLength));
    }
    return this.decide(now, client, bytes, packet, now);
  }

  /** Steps 2.e to 2.h for a packet that passed the checks before; `heldAt`: since when it waits. */
  private decide(now: number, client: ClientRecord, bytes: Uint8Array, packet: IpPacket, heldAt: number): FromClientDecision {
    const proxy = client.proxies.get(packet.dstText);
    if (proxy) {
      const installed = client.authorizations.get(proxy.resourceId);
      // A held packet is judged by what the client held when it arrived: an authorization granted
      // since (after a reject_access, say) does not let in a packet sent before it.
      if (!installed || installed.since > heldAt || !filtersAllow(installed.resource.filters, packet)) return this.refuse(bytes, packet);
      return this.translate(now, client, installed, proxy, bytes, packet, heldAt);
    }
    if (PROXY_PREFIXES.some((p) => prefixContains(p, packet.dst)) && [...client.authorizations.values()].some((a) => a.resource.type === "dns")) {
      return this.hold(client, bytes, packet, heldAt);
    }
    const candidates = this.resourcesFor(client, packet.dst);
    if (candidates.length === 0 || !candidates.some((c) => filtersAllow(c.resource.filters, packet))) return this.refuse(bytes, packet);
    return { action: "forward", packet: bytes.subarray(0, packet.length) };
  }

  /** The most specific ip, cidr or internet authorizations of the client that hold `dst`. */
  private resourcesFor(client: ClientRecord, dst: Uint8Array): Installed[] {
    let best: Installed[] = [];
    let bestLength = -1;
    // One per account, the portal says; should two come, either may allow the packet, as with ties.
    const internet: Installed[] = [];
    for (const installed of client.authorizations.values()) {
      const r = installed.resource;
      let length = -1;
      if (r.type === "ip" && sameAddress(r.address!, dst)) length = dst.length * 8;
      else if (r.type === "cidr" && prefixContains(r.prefix!, dst)) length = r.prefix!.length;
      else if (r.type === "internet") internet.push(installed);
      if (length < 0) continue;
      if (length > bestLength) {
        best = [installed];
        bestLength = length;
      } else if (length === bestLength) best.push(installed);
    }
    if (best.length > 0) return best;
    if (internet.length > 0 && !RESERVED_PREFIXES.some((p) => prefixContains(p, dst))) return internet;
    return [];
  }

  /** Keeps a packet until its mapping or name comes (2.e, 2.g), making room by dropping the oldest. */
  private hold(client: ClientRecord, bytes: Uint8Array, packet: IpPacket, heldAt: number): FromClientDecision {
    if (client.held.length >= HELD_PACKETS_MAX) {
      client.held.shift();
      this.drops.held_overflow += 1;
    }
    client.held.push({ bytes: bytes.slice(0, packet.length), heldAt });
    this.nextExpiry = Math.min(this.nextExpiry, heldAt + HOLD_TIMEOUT);
    return { action: "held" };
  }

  /** Decides the client's held packets again; those still waiting stay, in order, the rest come out as events. */
  private release(now: number, client: ClientRecord): void {
    const held = client.held;
    client.held = [];
    for (const { bytes, heldAt } of held) {
      const parsed = parseIpPacket(bytes);
      if (!parsed.ok) continue;
      const decision = this.decide(now, client, bytes, parsed.packet, heldAt);
      if (decision.action === "forward") this.events.push({ type: "forward", clientId: client.peer.clientId, packet: decision.packet });
      else if (decision.action === "reply") this.events.push({ type: "reply", clientId: client.peer.clientId, packet: decision.packet });
    }
  }

  /** ICMP administratively prohibited from the packet's destination back to the client. */
  private refuse(bytes: Uint8Array, packet: IpPacket): FromClientDecision {
    const reply = buildProhibited(packet.dst, bytes, packet);
    return reply ? { action: "reply", packet: reply } : this.drop("prohibited");
  }

  private drop(reason: DropReason, detail?: IpParseError): { action: "drop"; reason: DropReason; detail?: IpParseError } {
    this.drops[reason] += 1;
    return detail === undefined ? { action: "drop", reason } : { action: "drop", reason, detail };
  }

  // --- 3. Control messages ---

  private handleControl(now: number, client: ClientRecord, payload: Uint8Array): FromClientDecision {
    const decoded = decodeControl(payload);
    if (!decoded.ok) return this.drop("bad_control");
    const message = decoded.message;
    const installed = client.authorizations.get(message.resource_id);
    if (!installed || installed.resource.type !== "dns" || !dnsPatternMatches(installed.resource.pattern!, message.name)) return this.drop("control_refused");
    const mapping = splitProxies(message);
    if (!mapping) return this.drop("control_refused");
    const key = mappingKey(message.resource_id, message.name);
    const existing = client.mappings.get(key);
    if (!existing || !sameMapping(existing, mapping)) {
      // The same name keeps its addresses: only its proxy IPs change.
      this.dropMapping(client, key, false);
      client.mappings.set(key, mapping);
      const claim = (ip: string, version: 4 | 6, index: number): void => {
        const previous = client.proxies.get(ip);
        client.proxies.set(ip, { mappingKey: key, resourceId: message.resource_id, version, index });
        if (previous) this.releaseProxy(client, previous.mappingKey, ip);
      };
      mapping.v4.forEach((ip, index) => claim(ip, 4, index));
      mapping.v6.forEach((ip, index) => claim(ip, 6, index));
    }
    this.wantName(now, mapping.name);
    if (client.held.length > 0) this.release(now, client);
    return { action: "consumed" };
  }

  /** Asks for a name's addresses unless an answer is fresh or a question is outstanding. */
  private wantName(now: number, name: string): void {
    let record = this.names.get(name);
    if (!record) {
      record = { v4: [], v6: [], resolvedAt: undefined, requestedAt: undefined };
      this.names.set(name, record);
    }
    const fresh = record.resolvedAt !== undefined && now - record.resolvedAt < NAME_REFRESH_INTERVAL;
    const asking = record.requestedAt !== undefined && now - record.requestedAt < RESOLVE_RETRY_INTERVAL;
    if (fresh || asking) return;
    record.requestedAt = now;
    this.events.push({ type: "resolve", name });
  }

  /** The resolver's answer for a name (both families; empty: it has none); unknown names are ignored. */
  handleResolved(now: number, name: string, addresses: readonly string[]): void {
    this.expire(now);
    const record = this.names.get(name);
    if (!record) return;
    const parsed = addresses.map((text) => parseIp(text)).filter((a): a is Uint8Array => a !== undefined);
    record.v4 = parsed.filter((a) => a.length === 4);
    record.v6 = parsed.filter((a) => a.length === 16);
    record.resolvedAt = now;
    record.requestedAt = undefined;
    for (const client of this.clients.values()) if (client.held.length > 0) this.release(now, client);
  }

  /** Drops a client's mappings for a resource, but those whose name `keep` says to keep. */
  private dropMappings(client: ClientRecord, resourceId: string, keep: (name: string) => boolean = () => false): void {
    for (const [key, mapping] of [...client.mappings]) if (mapping.resourceId === resourceId && !keep(mapping.name)) this.dropMapping(client, key);
  }

  /** Drops one mapping, its proxy IPs and their flows; and its name's addresses unless told otherwise. */
  private dropMapping(client: ClientRecord, key: string, forget = true): void {
    const mapping = client.mappings.get(key);
    if (!mapping) return;
    client.mappings.delete(key);
    const released = new Set<string>();
    for (const ip of [...mapping.v4, ...mapping.v6]) {
      if (client.proxies.get(ip)?.mappingKey !== key) continue;
      client.proxies.delete(ip);
      released.add(ip);
    }
    this.nat.removeProxies(client.peer.clientId, released);
    if (forget) this.forgetName(mapping.name);
  }

  /** A proxy IP another mapping claimed: its flows end, and a mapping left with no proxy IP goes. */
  private releaseProxy(client: ClientRecord, key: string, ip: string): void {
    this.nat.removeProxies(client.peer.clientId, new Set([ip]));
    const mapping = client.mappings.get(key);
    if (!mapping || [...mapping.v4, ...mapping.v6].some((other) => client.proxies.get(other)?.mappingKey === key)) return;
    client.mappings.delete(key);
    this.forgetName(mapping.name);
  }

  /** Forgets a name's addresses once no mapping names it. */
  private forgetName(name: string): void {
    const stillNamed = [...this.clients.values()].some((c) => [...c.mappings.values()].some((m) => m.name === name));
    if (!stillNamed) this.names.delete(name);
  }

  // --- 4. NAT, client → resource ---

  private translate(now: number, client: ClientRecord, installed: Installed, proxy: ProxyEntry, bytes: Uint8Array, packet: IpPacket, heldAt: number): FromClientDecision {
    const ports = flowPorts(packet, false);
    // Only TCP, UDP and echo requests can be told apart on the way back; anything else to a proxy IP is refused.
    if (!ports) return this.refuse(bytes, packet);
    let flow = this.nat.lookupInside(now, packet.protocol, packet.src, ports, packet.dst);
    if (!flow) {
      const mapping = client.mappings.get(proxy.mappingKey);
      const record = mapping && this.names.get(mapping.name);
      if (!record || record.resolvedAt === undefined) {
        if (mapping) this.wantName(now, mapping.name);
        return this.hold(client, bytes, packet, heldAt);
      }
      const reals = proxy.version === 4 ? record.v4 : record.v6;
      if (reals.length === 0) return this.refuse(bytes, packet);
      const created = this.nat.create(now, {
        protocol: packet.protocol, clientId: client.peer.clientId, resourceId: installed.resource.id, client: packet.src,
        clientPort: ports.clientPort, proxy: packet.dst, real: reals[proxy.index % reals.length]!, port: ports.port,
      });
      if (!created) return this.drop("nat_exhausted");
      flow = created;
    }
    this.nat.touch(now, flow, packet, false);
    this.nextExpiry = Math.min(this.nextExpiry, flow.expiresAt);
    rewriteAddress(bytes, packet, "dst", flow.real);
    if (flow.outsidePort !== flow.clientPort) setClientPort(bytes, packet, "src", flow.outsidePort);
    return { action: "forward", packet: bytes.subarray(0, packet.length) };
  }

  // --- 5. From the network ---

  /** Decides a packet from the network to a client's tunnel address: translated back if it answers a NAT flow. */
  handleFromResource(now: number, bytes: Uint8Array): FromResourceDecision {
    this.expire(now);
    const parsed = parseIpPacket(bytes);
    if (!parsed.ok) return this.drop("malformed", parsed.error);
    const packet = parsed.packet;
    const clientId = this.byTunnelAddress.get(packet.dstText);
    if (clientId === undefined) return this.drop("unknown_client");
    if (packet.fragmentOffset > 0 || packet.moreFragments) return this.drop("fragment");
    const ports = flowPorts(packet, true);
    if (ports) {
      const flow = this.nat.lookupOutside(now, packet.protocol, packet.dst, ports.clientPort, packet.src, ports.port);
      if (flow) {
        this.nat.touch(now, flow, packet, true);
        this.nextExpiry = Math.min(this.nextExpiry, flow.expiresAt);
        rewriteAddress(bytes, packet, "src", flow.proxy);
        if (flow.outsidePort !== flow.clientPort) setClientPort(bytes, packet, "dst", flow.clientPort);
        return { action: "forward", clientId, packet: bytes.subarray(0, packet.length) };
      }
    } else if (isIcmpError(packet)) {
      this.translateIcmpError(now, bytes, packet);
    }
    return { action: "forward", clientId, packet: bytes.subarray(0, packet.length) };
  }

  /**
   * An ICMP error (unreachable, packet too big, time exceeded …) quoting a packet of a NAT flow: the
   * quoted packet left as client → real with the outside port; the client must see client → proxy
   * with its own port, or its stack matches the error to no socket (and Path MTU discovery breaks).
   * The quoted headers' checksums are left as they are (the quote is often cut short, and stacks do
   * not check them); the ICMP checksum is recomputed in full: errors are rare.
   */
  private translateIcmpError(now: number, bytes: Uint8Array, packet: IpPacket): void {
    const start = packet.payloadOffset + ICMP_HEADER_LENGTH;
    const quoted = bytes.subarray(start, packet.length);
    const inner = parseQuoted(quoted);
    if (!inner || inner.version !== packet.version) return;
    const ports = flowPorts(inner, false);
    if (!ports || !sameAddress(inner.src, packet.dst)) return;
    const flow = this.nat.lookupOutside(now, inner.protocol, inner.src, ports.clientPort, inner.dst, ports.port);
    if (!flow) return;
    // Without its protocol, rewriteAddress updates only the quoted IPv4 header's own checksum.
    rewriteAddress(quoted, { ...inner, protocol: -1 }, "dst", flow.proxy);
    if (flow.outsidePort !== flow.clientPort) {
      const at = inner.payloadOffset + (inner.protocol === PROTOCOL_TCP || inner.protocol === PROTOCOL_UDP ? 0 : 4);
      quoted[at] = flow.clientPort >>> 8;
      quoted[at + 1] = flow.clientPort & 0xff;
    }
    if (sameAddress(packet.src, flow.real)) rewriteAddress(bytes, { ...packet, protocol: -1 }, "src", flow.proxy);
    const icmpStart = packet.payloadOffset;
    bytes[icmpStart + ICMP_OFFSET_CHECKSUM] = 0;
    bytes[icmpStart + ICMP_OFFSET_CHECKSUM + 1] = 0;
    const currentSrc = bytes.slice(packet.version === 4 ? 12 : 8, packet.version === 4 ? 16 : 24);
    const initial = packet.version === 4 ? 0 : pseudoHeaderSum(currentSrc, packet.dst, PROTOCOL_ICMPV6, packet.length - icmpStart);
    const checksum = internetChecksum(bytes, icmpStart, packet.length, initial);
    bytes[icmpStart + ICMP_OFFSET_CHECKSUM] = checksum >>> 8;
    bytes[icmpStart + ICMP_OFFSET_CHECKSUM + 1] = checksum & 0xff;
  }

  // --- 6. Timers ---

  /** Removes what has expired by `now`. */
  handleTimeout(now: number): void {
    this.expire(now);
  }

  /** When handleTimeout is next due; undefined: nothing will expire. */
  pollTimeout(): number | undefined {
    return this.nextExpiry === Infinity ? undefined : this.nextExpiry;
  }

  /** The next event for the driver, or undefined. */
  pollEvent(): GatewayEvent | undefined {
    return this.events.shift();
  }

  /** NAT flows alive, for tests and metrics. */
  get natFlows(): number {
    return this.nat.size;
  }

  // --- 7. What a fast path in front of this machine mirrors (the engine's, daemons/engine/gateway.ts) ---

  /** The live NAT flow with this inside key (client → proxy IP), as it stands; undefined if none. */
  flowInside(now: number, protocol: number, client: Uint8Array, ports: FlowPorts, proxy: Uint8Array): Readonly<NatFlow> | undefined {
    return this.nat.lookupInside(now, protocol, client, ports, proxy);
  }

  /** The live NAT flow with this outside key (client's outside port ↔ real address); undefined if none. */
  flowOutside(now: number, protocol: number, client: Uint8Array, outsidePort: number, real: Uint8Array, port: number): Readonly<NatFlow> | undefined {
    return this.nat.lookupOutside(now, protocol, client, outsidePort, real, port);
  }

  /**
   * A fast path translated packets of this flow: its TCP state and expiry as the fast path left them
   * become the flow's. False if no such flow is live here (the fast path must forget it).
   */
  carryFlow(now: number, flow: Pick<NatFlow, "protocol" | "client" | "clientPort" | "port" | "proxy" | "real" | "outsidePort">, tcp: NatFlow["tcp"], expiresAt: number): boolean {
    const live = this.nat.lookupInside(now, flow.protocol, flow.client, flow, flow.proxy);
    if (!live || live.outsidePort !== flow.outsidePort || !sameAddress(live.real, flow.real)) return false;
    live.tcp = tcp;
    live.expiresAt = expiresAt;
    return true;
  }

  /** The proxy IPs the client mapped (text), each with its DNS resource's id. */
  mappedProxies(clientId: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [ip, entry] of this.clients.get(clientId)?.proxies ?? []) out.set(ip, entry.resourceId);
    return out;
  }

  private expire(now: number): void {
    if (now < this.nextExpiry) return;
    let next = Infinity;
    for (const installed of [...this.byAuthorizationId.values()]) {
      if (installed.expiresAt <= now) this.remove(installed, "expired");
      else next = Math.min(next, installed.expiresAt);
    }
    for (const client of this.clients.values()) {
      const waiting = client.held.filter((h) => h.heldAt + HOLD_TIMEOUT > now);
      this.drops.unresolved += client.held.length - waiting.length;
      client.held = waiting;
      if (waiting.length > 0) next = Math.min(next, waiting[0]!.heldAt + HOLD_TIMEOUT);
    }
    this.nextExpiry = Math.min(next, this.nat.expire(now));
  }
}

// --- Helpers ---

function compileResource(resource: GatewayResource): CompiledResource | undefined {
  const base = { id: resource.id, type: resource.type, filters: compileFilters(resource.filters) };
  switch (resource.type) {
    // An IPv4-mapped address or prefix is the IPv4 one it maps, as in the client's and the engine's tables.
    case "ip": {
      const address = resource.address === null ? undefined : parseIp(resource.address);
      return address ? { ...base, address: unmapPrefix({ address, length: address.length * 8 }).address } : undefined;
    }
    case "cidr": {
      const prefix = resource.address === null ? undefined : parsePrefix(resource.address);
      return prefix ? { ...base, prefix: unmapPrefix(prefix) } : undefined;
    }
    case "dns":
      return resource.address === null ? undefined : { ...base, pattern: resource.address };
    case "internet":
      return base;
  }
}

function samePeer(a: GatewayPeer, b: GatewayPeer): boolean {
  return a.publicKey === b.publicKey && a.presharedKey === b.presharedKey && a.ipv4 === b.ipv4 && a.ipv6 === b.ipv6
    && sameIce(a.clientIce, b.clientIce) && sameIce(a.gatewayIce, b.gatewayIce);
}

function sameIce(a: IceCredentials, b: IceCredentials): boolean {
  return a.username === b.username && a.password === b.password;
}

/** The message's proxy IPs per family, deduplicated; undefined if one lies outside the proxy ranges. */
function splitProxies(message: DnsMappingMessage): DnsMapping | undefined {
  const mapping: DnsMapping = { resourceId: message.resource_id, name: message.name, v4: [], v6: [] };
  for (const text of message.proxy_ips) {
    const bytes = parseIp(text)!;
    if (!PROXY_PREFIXES.some((p) => prefixContains(p, bytes))) return undefined;
    const list = bytes.length === 4 ? mapping.v4 : mapping.v6;
    if (!list.includes(text)) list.push(text);
  }
  return mapping;
}

function mappingKey(resourceId: string, name: string): string {
  return `${resourceId}|${name}`;
}

function sameMapping(a: DnsMapping, b: DnsMapping): boolean {
  return a.name === b.name && a.v4.join() === b.v4.join() && a.v6.join() === b.v6.join();
}

/**
 * The client's port (or echo identifier) and the resource's port of a packet; `fromResource`: the
 * packet travels resource → client. Undefined for what NAT cannot track (ICMP other than echo).
 */
function flowPorts(packet: IpPacket, fromResource: boolean): FlowPorts | undefined {
  if (packet.protocol === PROTOCOL_TCP || packet.protocol === PROTOCOL_UDP) {
    if (packet.srcPort === undefined || packet.dstPort === undefined) return undefined;
    return fromResource ? { clientPort: packet.dstPort, port: packet.srcPort } : { clientPort: packet.srcPort, port: packet.dstPort };
  }
  if (packet.protocol === icmpProtocol(packet.version) && packet.icmpIdentifier !== undefined) {
    const request = packet.version === 4 ? packet.icmpType === 8 : packet.icmpType === 128;
    // Requests go client → resource and replies come back; the other way round is no flow of ours.
    if (request === fromResource) return undefined;
    return { clientPort: packet.icmpIdentifier, port: 0 };
  }
  return undefined;
}

/** Sets the client's port (TCP, UDP) or echo identifier at the given end. */
function setClientPort(bytes: Uint8Array, packet: IpPacket, end: "src" | "dst", port: number): void {
  if (packet.protocol === PROTOCOL_TCP || packet.protocol === PROTOCOL_UDP) rewritePort(bytes, packet, end, port);
  else rewriteIcmpIdentifier(bytes, packet, port);
}

function isIcmpError(packet: IpPacket): boolean {
  if (packet.icmpType === undefined) return false;
  if (packet.protocol === PROTOCOL_ICMP) return [ICMP_TYPE_DESTINATION_UNREACHABLE, 11, 12, 4, 5].includes(packet.icmpType);
  return packet.protocol === PROTOCOL_ICMPV6 && packet.icmpType < 128;
}

/**
 * Reads the packet an ICMP error quotes: often cut short (RFC 792 asks for 8 bytes past the IP
 * header), so only the IP header and the first 8 transport bytes are needed, and no length in it is
 * held against what was quoted.
 */
function parseQuoted(quoted: Uint8Array): IpPacket | undefined {
  if (quoted.length < 1) return undefined;
  const version = quoted[0]! >>> 4;
  if (version !== 4 && version !== 6) return undefined;
  const headerLength = version === 4 ? (quoted[0]! & 0x0f) * 4 : 40;
  if (headerLength < 20 || quoted.length < headerLength + 8) return undefined;
  const size = version === 4 ? 4 : 16;
  const srcAt = version === 4 ? 12 : 8;
  const src = quoted.slice(srcAt, srcAt + size);
  const dst = quoted.slice(srcAt + size, srcAt + 2 * size);
  const protocol = quoted[version === 4 ? 9 : 6]!;
  const fragmented = version === 4 && (((quoted[6]! << 8) | quoted[7]!) & 0x1fff) !== 0;
  const at = headerLength;
  const view: IpPacket = {
    version, src, dst, srcText: formatIp(src), dstText: formatIp(dst), protocol, headerLength, payloadOffset: at,
    length: quoted.length, ttl: quoted[version === 4 ? 8 : 7]!, fragmentOffset: fragmented ? 8 : 0, moreFragments: false,
  };
  if (fragmented) return view;
  if (protocol === PROTOCOL_TCP || protocol === PROTOCOL_UDP) {
    view.srcPort = (quoted[at]! << 8) | quoted[at + 1]!;
    view.dstPort = (quoted[at + 2]! << 8) | quoted[at + 3]!;
  } else if (protocol === icmpProtocol(version)) {
    view.icmpType = quoted[at]!;
    view.icmpCode = quoted[at + 1]!;
    if (isEcho(version, view.icmpType)) view.icmpIdentifier = (quoted[at + 4]! << 8) | quoted[at + 5]!;
  }
  return view;
}
