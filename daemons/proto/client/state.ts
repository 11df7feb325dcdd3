// The client's state machine: which resources exist, what the OS must route into the TUN device,
// which packet goes to which gateway, the sentinel DNS resolver, and the authorizations behind them.
// It composes ResourceTable (./resource-table.ts), ResourceAccess (./access.ts) and StubResolver
// (../dns/stub-resolver.ts), and tells the connection layer which gateways to connect to; ICE,
// WireGuard and the portal socket are other machines.
//
// Driving contract: call one input (handlePortalEvent, handleTunPacket, handleGatewayPacket,
// handleUpstreamDns, handleTunnelDown, handleTunnelSession, setInternetResource, handleTimeout) with
// the current monotonic time in ms, then drain pollEvent() until it returns undefined, then arm a
// timer for pollTimeout(). The children are drained inside each input, so their outputs are already
// in pollEvent's queue. Nothing here reads a clock or a random source: the Unix time at monotonic 0
// (to place the portal's RFC 3339 expiries) and randomness (DNS query IDs) come in the options.
//
// The pipeline, in the order of this file:
// 1. Portal events: init (a full re-sync: interface, resources; a resource no longer listed is
//    deleted), resource_created_or_updated (a changed type or address ends its authorization),
//    resource_deleted (its authorization ends at once and its held packets are refused),
//    config_changed (tunnel addresses, upstream resolvers), authorization_created and
//    authorization_creation_failed (to ResourceAccess). setInternetResource switches the Internet
//    resource's routes on or off. Every change recomputes the routes and the DNS servers, and emits
//    them when they differ from the last emitted.
// 2. A packet from the TUN device (handleTunPacket):
//    a. parse (malformed: dropped and counted); before init nothing passes (no_interface);
//    b. the source must be the client's own tunnel address of that family (spoofed);
//    c. UDP to a sentinel on port 53: the stub resolver (3.); anything else to a sentinel is dropped;
//    d. the resource: ResourceTable's longest prefix; none: dropped (no_resource);
//    e. ResourceAccess.packetFor: "send" → a `gateway` output to the resource's gateway; "held" →
//       it waits for the portal's answer (4.); "dropped" → the held queues are full (held_overflow);
//       "refused" → refused moments ago (REFUSAL_HOLDOFF_MS): ICMP prohibited at once, no new request.
// 3. DNS (the stub resolver): answers go into the TUN device from the sentinel; forwarded queries
//    go out as `dns_upstream`, their answers come back through handleUpstreamDns. On
//    resource_resolved the proxy IPs are mapped in the ResourceTable, authorization is asked for
//    (ResourceAccess.resolved), and if the resource is authorized already the gateway is told the
//    mapping at once.
// 4. Access events (ResourceAccess): request → `portal` request_authorization; authorized → a
//    `connect` the first time a gateway is needed (or when its keys change), then the control
//    message for each of a DNS resource's names, before the held packets, so the gateway knows the
//    proxy IPs when they arrive; release → the held packets to the gateway; refused → each held
//    packet answered with ICMP administratively prohibited into the TUN device; revoked → a
//    `disconnect` once no authorization uses that gateway.
// 5. Control messages (../gateway/control.ts): UDP from the client's IPv4 tunnel address to the
//    gateway's on CONTROL_PORT, through the gateway's tunnel. Sent on authorization, on each new
//    name, when the tunnel goes down (handleTunnelDown) or has a new WireGuard session
//    (handleTunnelSession: the gateway may have lost them), and every CONTROL_REFRESH_INTERVAL_MS
//    while authorized: it is idempotent and may be lost.
// 6. A packet from a gateway (handleGatewayPacket): parse; the destination must be the client's
//    tunnel address; the source must be a resource authorized through that gateway, or the packet is
//    that gateway's ICMP prohibited about a packet the client sent (its source is the refused
//    packet's destination); then into the TUN device. Anything else: dropped and counted.
// 7. Timers: authorization expiries and request timeouts (ResourceAccess), upstream DNS timeouts
//    (StubResolver), control message refreshes; pollTimeout is the earliest.

import { formatIp, parseIp, parsePrefix, sameAddress } from "../ip/address.js";
import {
  ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED, ICMP_HEADER_LENGTH, ICMP_TYPE_DESTINATION_UNREACHABLE,
  ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED, ICMPV6_TYPE_DESTINATION_UNREACHABLE, IPV4_HEADER_MIN_LENGTH,
  IPV4_OFFSET_DESTINATION_ADDRESS, IPV4_OFFSET_SOURCE_ADDRESS, IPV6_HEADER_LENGTH, IPV6_OFFSET_DESTINATION_ADDRESS,
  IPV6_OFFSET_SOURCE_ADDRESS, PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_UDP, UDP_HEADER_LENGTH, UDP_OFFSET_LENGTH,
} from "../ip/constants.js";
import { buildProhibited } from "../ip/icmp.js";
import { parseIpPacket, type IpPacket } from "../ip/packet.js";
import { canonicalIp, sentinelAddresses, sentinelIndex, sentinelIndexOfBytes } from "../dns/address-plan.js";
import { DNS_PORT, PROXY_IPV4_RANGE, PROXY_IPV6_RANGE } from "../dns/constants.js";
import { dnsNameMatches } from "../dns/patterns.js";
import { StubResolver, type DnsEndpoint } from "../dns/stub-resolver.js";
import { CONTROL_PORT } from "../gateway/constants.js";
import { encodeControl } from "../gateway/control.js";
import type {
  ClientAuthorizationCreated, ClientResource, EventPayloads, Interface, RequestAuthorization,
} from "../portal/schema.js";
import { ResourceAccess, type AccessOptions } from "./access.js";
import { CONTROL_REFRESH_INTERVAL_MS, CONTROL_SOURCE_PORT, REFUSAL_HOLDOFF_MS } from "./constants.js";
import { buildUdpPacket } from "./datagram.js";
import { ResourceTable } from "./resource-table.js";

type ClientPayloads = EventPayloads["client"]["to_device"];

/** The portal events ClientState acts on; the others (relays, ICE candidates) are the connection layer's. */
export type ClientPortalEventName =
  | "init"
  | "resource_created_or_updated"
  | "resource_deleted"
  | "config_changed"
  | "authorization_created"
  | "authorization_creation_failed";

/** One portal event and its payload, as handlePortalEvent takes them. */
export type ClientPortalInput = { [E in ClientPortalEventName]: [event: E, payload: ClientPayloads[E]] }[ClientPortalEventName];

export type ClientOutput =
  /** A frame for the portal. */
  | { type: "portal"; event: "request_authorization"; payload: RequestAuthorization }
  /** An IP packet to write into the TUN device (DNS answers, ICMP errors, packets from gateways). */
  | { type: "tun"; packet: Uint8Array }
  /** A plaintext IP packet for a gateway's tunnel; the connection layer encrypts and sends it. */
  | { type: "gateway"; gatewayId: string; packet: Uint8Array }
  /** A DNS query for an upstream resolver, from any local UDP socket; answers go to handleUpstreamDns. */
  | { type: "dns_upstream"; to: DnsEndpoint; bytes: Uint8Array }
  /** A gateway is needed (or its keys changed): run ICE and WireGuard with these keys and credentials. */
  | { type: "connect"; gatewayId: string; authorization: ClientAuthorizationCreated }
  /** No authorization uses this gateway any more: tear its tunnel down. */
  | { type: "disconnect"; gatewayId: string }
  /** The prefixes the OS must route into the TUN device, replacing the previous set. */
  | { type: "routes"; ipv4: string[]; ipv6: string[] }
  /** The sentinel addresses the OS must use as its DNS servers, replacing the previous set. */
  | { type: "dns_servers"; ipv4: string[]; ipv6: string[] };

/** Why a packet was dropped, one counter each. */
export interface ClientDrops {
  /** Not an IP packet (bad version, truncated, bad header checksum …). */
  malformed: number;
  /** A packet before init gave the client its tunnel addresses. */
  no_interface: number;
  /** From the TUN device with a source other than the client's tunnel address. */
  spoofed: number;
  /** To a sentinel, but not UDP port 53. */
  sentinel_not_dns: number;
  /** To an address no resource holds. */
  no_resource: number;
  /** Held packets beyond ResourceAccess's bounds. */
  held_overflow: number;
  /** From a gateway, to an address other than the client's tunnel address. */
  not_for_client: number;
  /** From a gateway, with a source no resource authorized through that gateway holds. */
  unauthorized_source: number;
  /** A refused packet no ICMP error may answer (an ICMP error itself, a later fragment). */
  unanswerable: number;
}

export interface ClientStateOptions {
  /** Unix time in ms at monotonic time 0: the portal's expiries are wall-clock times. */
  wallClockAtZeroMs: number;
  /** Randomness, from the driver: DNS query IDs towards the upstreams. */
  random: (length: number) => Uint8Array;
  /**
   * The system's resolvers, used when the portal's upstream_dns is empty ("the system's"). Without
   * them, and with none from the portal, forwarded queries get SERVFAIL.
   */
  systemUpstreamDns?: readonly string[];
  /** CONTROL_REFRESH_INTERVAL_MS unless told. */
  controlRefreshIntervalMs?: number;
  /** Passed on to ResourceAccess (bounds and timeout of held packets; the refusal holdoff is REFUSAL_HOLDOFF_MS unless told). */
  access?: Omit<AccessOptions, "wallClockAtZeroMs">;
}

interface TunnelAddresses {
  ipv4: Uint8Array;
  ipv6: Uint8Array;
}

interface Connection {
  authorization: ClientAuthorizationCreated;
  ipv4: Uint8Array;
}

/** The client's resources, routes, DNS and authorizations (driving contract in the file header). */
export class ClientState {
  readonly drops: ClientDrops = {
    malformed: 0, no_interface: 0, spoofed: 0, sentinel_not_dns: 0, no_resource: 0, held_overflow: 0, not_for_client: 0,
    unauthorized_source: 0, unanswerable: 0,
  };

  private readonly table = new ResourceTable();
  private readonly access: ResourceAccess;
  private readonly resolver: StubResolver;
  private readonly options: ClientStateOptions;
  private readonly controlInterval: number;
  private tunnel: TunnelAddresses | undefined;
  private resources: ClientResource[] = [];
  private internetEnabled = false;
  private upstreamCount = 0;
  /** DNS resource id → name → its proxy IPs (both families), for the control messages. */
  private readonly names = new Map<string, Map<string, string[]>>();
  /** Gateway id → the authorization its tunnel was set up with. */
  private readonly connections = new Map<string, Connection>();
  /** DNS resource id → when its control messages are next sent again. */
  private readonly controlDue = new Map<string, number>();
  private lastRoutes = "";
  private lastDnsServers = "";
  private readonly outputs: ClientOutput[] = [];

  constructor(options: ClientStateOptions) {
    this.options = options;
    this.controlInterval = options.controlRefreshIntervalMs ?? CONTROL_REFRESH_INTERVAL_MS;
    this.access = new ResourceAccess({ refusalHoldoffMs: REFUSAL_HOLDOFF_MS, ...options.access, wallClockAtZeroMs: options.wallClockAtZeroMs });
    this.resolver = new StubResolver({ random: options.random });
  }

  // --- 1. Portal events ---

  /** One validated portal event for the client. */
  handlePortalEvent(now: number, ...[event, payload]: ClientPortalInput): void {
    switch (event) {
      case "init":
        this.setInterface(payload.interface);
        this.replaceResources(now, payload.resources);
        break;
      case "config_changed":
        this.setInterface(payload.interface);
        this.publishRoutes();
        break;
      case "resource_created_or_updated": {
        const others = this.resources.filter((r) => r.id !== payload.id);
        this.replaceResources(now, [...others, payload]);
        break;
      }
      case "resource_deleted":
        this.replaceResources(now, this.resources.filter((r) => r.id !== payload.id));
        break;
      case "authorization_created":
        // A late answer about a resource that went meanwhile grants nothing.
        if (this.resources.some((r) => r.id === payload.resource_id)) this.access.authorizationCreated(now, payload);
        break;
      case "authorization_creation_failed":
        this.access.authorizationFailed(now, payload);
        break;
    }
    this.drain(now);
  }

  /** Switches the Internet resource on or off (a user's choice; the portal only says it exists). */
  setInternetResource(now: number, on: boolean): void {
    if (on === this.internetEnabled) return;
    this.internetEnabled = on;
    this.table.setResources(this.resources, on);
    if (!on) for (const r of this.resources) if (r.type === "internet") this.access.resourceDeleted(now, r.id);
    this.publishRoutes();
    this.drain(now);
  }

  private setInterface(iface: Interface): void {
    const ipv4 = parseIp(iface.ipv4);
    const ipv6 = parseIp(iface.ipv6);
    this.tunnel = ipv4?.length === 4 && ipv6?.length === 16 ? { ipv4, ipv6 } : undefined;
    const upstreams = iface.upstream_dns.length > 0 ? iface.upstream_dns : (this.options.systemUpstreamDns ?? []);
    this.resolver.setUpstreams(upstreams);
    // As the resolver counts them: one sentinel per usable upstream, sentinel i standing for upstream i.
    this.upstreamCount = upstreams.filter((text) => {
      const address = canonicalIp(text);
      return address !== undefined && sentinelIndex(address) === undefined;
    }).length;
  }

  /** Installs a new resource list; what left it, or changed what it points at, loses its authorization. */
  private replaceResources(now: number, next: readonly ClientResource[]): void {
    const after = new Map(next.map((r) => [r.id, r]));
    for (const before of this.resources) {
      const current = after.get(before.id);
      if (current === undefined || current.type !== before.type || current.address !== before.address) {
        this.access.resourceDeleted(now, before.id);
        this.controlDue.delete(before.id);
      }
    }
    this.resources = [...after.values()];
    this.table.setResources(this.resources, this.internetEnabled);
    this.resolver.setResources(this.resources);
    this.publishRoutes();
  }

  /** Emits the routes and DNS servers when they differ from the last ones emitted. */
  private publishRoutes(): void {
    const ipv4 = new Set<string>([PROXY_IPV4_RANGE]);
    const ipv6 = new Set<string>([PROXY_IPV6_RANGE]);
    const servers = sentinelAddresses(Math.max(1, this.upstreamCount));
    for (const s of servers.ipv4) ipv4.add(`${s}/32`);
    for (const s of servers.ipv6) ipv6.add(`${s}/128`);
    for (const r of this.resources) {
      if (r.type === "ip" && r.address !== null) {
        const bytes = parseIp(r.address);
        if (bytes !== undefined) (bytes.length === 4 ? ipv4 : ipv6).add(`${formatIp(bytes)}/${bytes.length * 8}`);
      } else if (r.type === "cidr" && r.address !== null) {
        const prefix = parsePrefix(r.address);
        if (prefix !== undefined) (prefix.address.length === 4 ? ipv4 : ipv6).add(`${formatIp(masked(prefix.address, prefix.length))}/${prefix.length}`);
      } else if (r.type === "internet" && this.internetEnabled) {
        ipv4.add("0.0.0.0/0");
        ipv6.add("::/0");
      }
    }
    const routes = { ipv4: [...ipv4].sort(), ipv6: [...ipv6].sort() };
    const routesKey = JSON.stringify(routes);
    if (routesKey !== this.lastRoutes) {
      this.lastRoutes = routesKey;
      this.outputs.push({ type: "routes", ...routes });
    }
    const serversKey = JSON.stringify(servers);
    if (serversKey !== this.lastDnsServers) {
      this.lastDnsServers = serversKey;
      this.outputs.push({ type: "dns_servers", ...servers });
    }
  }

  // --- 2. From the TUN device ---

  /** An IP packet the OS wrote to the TUN device. */
  handleTunPacket(now: number, bytes: Uint8Array): void {
    this.tunPacket(now, bytes);
    this.drain(now);
  }

  private tunPacket(now: number, bytes: Uint8Array): void {
    const parsed = parseIpPacket(bytes);
    if (!parsed.ok) return void this.drops.malformed++;
    const packet = parsed.packet;
    if (this.tunnel === undefined) return void this.drops.no_interface++;
    if (!sameAddress(packet.src, packet.version === 4 ? this.tunnel.ipv4 : this.tunnel.ipv6)) return void this.drops.spoofed++;
    if (sentinelIndexOfBytes(packet.dst) !== undefined) {
      if (packet.protocol !== PROTOCOL_UDP || packet.dstPort !== DNS_PORT || packet.moreFragments || packet.fragmentOffset > 0) return void this.drops.sentinel_not_dns++;
      const udpLength = (bytes[packet.payloadOffset + UDP_OFFSET_LENGTH]! << 8) | bytes[packet.payloadOffset + UDP_OFFSET_LENGTH + 1]!;
      const payload = bytes.slice(packet.payloadOffset + UDP_HEADER_LENGTH, packet.payloadOffset + udpLength);
      this.resolver.handleQuery(now, { address: packet.srcText, port: packet.srcPort! }, packet.dstText, payload);
      return;
    }
    const resourceId = this.table.lookup(packet.dst);
    if (resourceId === undefined) return void this.drops.no_resource++;
    // The held copy must not change when the driver reuses its read buffer.
    const own = bytes.slice(0, packet.length);
    switch (this.access.packetFor(now, resourceId, own)) {
      case "send":
        this.outputs.push({ type: "gateway", gatewayId: this.access.gatewayOf(now, resourceId)!, packet: own });
        return;
      case "held":
        return;
      case "dropped":
        this.drops.held_overflow++;
        return;
      case "refused":
        this.refuse(own);
        return;
    }
  }

  // --- 3. DNS ---

  /** A datagram from an upstream resolver, to the socket its query left from. */
  handleUpstreamDns(now: number, from: DnsEndpoint, bytes: Uint8Array): void {
    this.resolver.handleUpstreamResponse(now, bytes, from);
    this.drain(now);
  }

  private drainResolver(now: number): void {
    for (let e = this.resolver.pollEvent(); e !== undefined; e = this.resolver.pollEvent()) {
      const proxies = [...e.ipv4, ...e.ipv6];
      for (const address of proxies) this.table.mapProxy(address, e.resourceId);
      // A name answered for this resource now is no longer another's (patterns changed meanwhile).
      for (const [id, names] of this.names) if (id !== e.resourceId) names.delete(e.name);
      let names = this.names.get(e.resourceId);
      if (names === undefined) this.names.set(e.resourceId, (names = new Map()));
      names.set(e.name, proxies);
      this.access.resolved(now, e.resourceId);
      if (this.access.gatewayOf(now, e.resourceId) !== undefined) this.sendControl(now, e.resourceId, e.name);
    }
    for (let t = this.resolver.pollTransmit(); t !== undefined; t = this.resolver.pollTransmit()) {
      if (t.from === undefined) {
        this.outputs.push({ type: "dns_upstream", to: t.to, bytes: t.bytes });
        continue;
      }
      const src = parseIp(t.from.address);
      const dst = parseIp(t.to.address);
      const packet = src && dst ? buildUdpPacket(src, t.from.port, dst, t.to.port, t.bytes) : undefined;
      if (packet !== undefined) this.outputs.push({ type: "tun", packet });
    }
  }

  // --- 4. Access events ---

  private drainAccess(now: number): void {
    for (let e = this.access.pollEvent(); e !== undefined; e = this.access.pollEvent()) {
      switch (e.type) {
        case "request": {
          const payload: RequestAuthorization = { resource_id: e.resourceId };
          if (e.connectedGatewayIds.length > 0) payload.connected_gateway_ids = e.connectedGatewayIds;
          this.outputs.push({ type: "portal", event: "request_authorization", payload });
          break;
        }
        case "authorized":
          this.connect(e.authorization);
          if (this.names.has(e.authorization.resource_id)) this.sendControl(now, e.authorization.resource_id);
          break;
        case "release":
          for (const packet of e.packets) this.outputs.push({ type: "gateway", gatewayId: e.gatewayId, packet });
          break;
        case "refused":
          for (const packet of e.packets) this.refuse(packet);
          break;
        case "revoked":
          this.controlDue.delete(e.resourceId);
          if (!this.access.connectedGateways(now).includes(e.gatewayId) && this.connections.delete(e.gatewayId)) {
            this.outputs.push({ type: "disconnect", gatewayId: e.gatewayId });
          }
          break;
      }
    }
  }

  private connect(authorization: ClientAuthorizationCreated): void {
    const known = this.connections.get(authorization.gateway_id);
    const ipv4 = parseIp(authorization.gateway_ipv4);
    if (ipv4?.length === 4) this.connections.set(authorization.gateway_id, { authorization, ipv4 });
    if (known !== undefined && sameKeys(known.authorization, authorization)) return;
    this.outputs.push({ type: "connect", gatewayId: authorization.gateway_id, authorization });
  }

  /**
   * The connection layer found no working path left to a gateway (ICE failed). While authorizations
   * still go through it, it is connected again with the same keys, which restarts ICE: a gateway
   * that dropped its side (an authorization's end, a restart) and took this client back runs a new
   * ICE agent, which the old one may never reach. The gateway hears the DNS mappings again.
   */
  handleTunnelDown(now: number, gatewayId: string): void {
    const connection = this.connections.get(gatewayId);
    if (connection === undefined || !this.access.connectedGateways(now).includes(gatewayId)) return;
    this.outputs.push({ type: "connect", gatewayId, authorization: connection.authorization });
    this.resendControls(now, gatewayId);
  }

  /**
   * The tunnel to a gateway has a new WireGuard session. A gateway that dropped its side and took
   * this client back (same keys) knows none of its DNS mappings, and those sent meanwhile went into
   * the session it no longer had: it hears them again now, not at the next refresh.
   */
  handleTunnelSession(now: number, gatewayId: string): void {
    if (!this.connections.has(gatewayId)) return;
    this.resendControls(now, gatewayId);
    this.drain(now);
  }

  /** Every DNS mapping of the resources authorized through a gateway, to that gateway. */
  private resendControls(now: number, gatewayId: string): void {
    for (const resourceId of this.names.keys()) if (this.access.gatewayOf(now, resourceId) === gatewayId) this.sendControl(now, resourceId);
  }

  /** ICMP administratively prohibited for a packet the portal would not let through, from its destination. */
  private refuse(bytes: Uint8Array): void {
    const parsed = parseIpPacket(bytes);
    const reply = parsed.ok ? buildProhibited(parsed.packet.dst, bytes, parsed.packet) : undefined;
    if (reply === undefined) this.drops.unanswerable++;
    else this.outputs.push({ type: "tun", packet: reply });
  }

  // --- 5. Control messages ---

  /** Tells the resource's gateway the proxy IPs of one name, or of all its names. */
  private sendControl(now: number, resourceId: string, only?: string): void {
    const gatewayId = this.access.gatewayOf(now, resourceId);
    const connection = gatewayId === undefined ? undefined : this.connections.get(gatewayId);
    const names = this.names.get(resourceId);
    const resource = this.resources.find((r) => r.id === resourceId);
    const pattern = resource?.type === "dns" ? resource.address : null;
    if (gatewayId === undefined || connection === undefined || names === undefined || pattern === null || this.tunnel === undefined) return;
    for (const [name, proxyIps] of names) {
      // Names are kept while their resource is away (the resolver keeps their proxy IPs); one its
      // pattern no longer covers would only be refused by the gateway.
      if ((only !== undefined && name !== only) || !dnsNameMatches(pattern, name)) continue;
      const message = encodeControl({ resource_id: resourceId, name, proxy_ips: proxyIps });
      const packet = message && buildUdpPacket(this.tunnel.ipv4, CONTROL_SOURCE_PORT, connection.ipv4, CONTROL_PORT, message);
      if (packet !== undefined) this.outputs.push({ type: "gateway", gatewayId, packet });
    }
    if (only === undefined || !this.controlDue.has(resourceId)) this.controlDue.set(resourceId, now + this.controlInterval);
  }

  // --- 6. From a gateway ---

  /** A decrypted IP packet that came out of a gateway's tunnel. */
  handleGatewayPacket(now: number, gatewayId: string, bytes: Uint8Array): void {
    this.gatewayPacket(now, gatewayId, bytes);
    this.drain(now);
  }

  private gatewayPacket(now: number, gatewayId: string, bytes: Uint8Array): void {
    const parsed = parseIpPacket(bytes);
    if (!parsed.ok) return void this.drops.malformed++;
    const packet = parsed.packet;
    if (this.tunnel === undefined) return void this.drops.no_interface++;
    const own = packet.version === 4 ? this.tunnel.ipv4 : this.tunnel.ipv6;
    if (!sameAddress(packet.dst, own)) return void this.drops.not_for_client++;
    const resourceId = this.table.lookup(packet.src);
    const authorized = resourceId !== undefined && this.access.gatewayOf(now, resourceId) === gatewayId;
    if (!authorized && !(this.connections.has(gatewayId) && isProhibitedAbout(bytes, packet, own))) return void this.drops.unauthorized_source++;
    this.outputs.push({ type: "tun", packet: bytes.subarray(0, packet.length) });
  }

  // --- 7. Timers ---

  /** Runs what is due by `now`: expiries, request and upstream timeouts, control refreshes. */
  handleTimeout(now: number): void {
    this.access.handleTimeout(now);
    this.resolver.handleTimeout(now);
    for (const [resourceId, due] of [...this.controlDue]) {
      if (due > now) continue;
      this.controlDue.delete(resourceId);
      if (this.access.gatewayOf(now, resourceId) !== undefined) this.sendControl(now, resourceId);
    }
    this.drain(now);
  }

  /** When handleTimeout is next due, or undefined when nothing is. */
  pollTimeout(): number | undefined {
    let next: number | undefined;
    const consider = (t: number | undefined): void => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    consider(this.access.pollTimeout());
    consider(this.resolver.pollTimeout());
    for (const due of this.controlDue.values()) consider(due);
    return next;
  }

  /** The next output, or undefined. */
  pollEvent(): ClientOutput | undefined {
    return this.outputs.shift();
  }

  /** Drains the children into the output queue. */
  private drain(now: number): void {
    // Resolver events raise access events, never the other way round: one pass each settles both.
    this.drainResolver(now);
    this.drainAccess(now);
  }

  /** Diagnostics: the resolver's own drop counters. */
  get dnsDrops(): StubResolver["dropped"] {
    return this.resolver.dropped;
  }
}

// --- Helpers ---

function masked(address: Uint8Array, length: number): Uint8Array {
  const out = Uint8Array.from(address);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, length - 8 * i));
    out[i] = keep === 0 ? 0 : out[i]! & (0xff << (8 - keep));
  }
  return out;
}

function sameKeys(a: ClientAuthorizationCreated, b: ClientAuthorizationCreated): boolean {
  return a.gateway_public_key === b.gateway_public_key && a.preshared_key === b.preshared_key && a.gateway_ipv4 === b.gateway_ipv4
    && a.gateway_ipv6 === b.gateway_ipv6 && a.client_ice.username === b.client_ice.username && a.client_ice.password === b.client_ice.password
    && a.gateway_ice.username === b.gateway_ice.username && a.gateway_ice.password === b.gateway_ice.password;
}

/**
 * True for a gateway's ICMP administratively prohibited about a packet the client sent: it quotes
 * the client's tunnel address as source and the error's own source as destination.
 */
function isProhibitedAbout(bytes: Uint8Array, packet: IpPacket, own: Uint8Array): boolean {
  const v4 = packet.version === 4;
  const prohibited = v4
    ? packet.protocol === PROTOCOL_ICMP && packet.icmpType === ICMP_TYPE_DESTINATION_UNREACHABLE && packet.icmpCode === ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED
    : packet.protocol === PROTOCOL_ICMPV6 && packet.icmpType === ICMPV6_TYPE_DESTINATION_UNREACHABLE && packet.icmpCode === ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED;
  if (!prohibited) return false;
  const quoted = packet.payloadOffset + ICMP_HEADER_LENGTH;
  const size = own.length;
  const srcAt = quoted + (v4 ? IPV4_OFFSET_SOURCE_ADDRESS : IPV6_OFFSET_SOURCE_ADDRESS);
  const dstAt = quoted + (v4 ? IPV4_OFFSET_DESTINATION_ADDRESS : IPV6_OFFSET_DESTINATION_ADDRESS);
  if (quoted + (v4 ? IPV4_HEADER_MIN_LENGTH : IPV6_HEADER_LENGTH) > packet.length) return false;
  return sameAddress(bytes.subarray(srcAt, srcAt + size), own) && sameAddress(bytes.subarray(dstAt, dstAt + size), packet.src);
}
