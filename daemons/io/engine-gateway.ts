// GatewayState with the engine's fast path in front of it: how the gateway daemon decides its
// packets, a batch per engine call. test/gateway-fast-path.test.ts holds its decisions, bytes and
// events equal to GatewayState's alone over seeded runs.
//
// 1. A batch: expiries due first (handleTimeout), the engine's deadline set to the earliest
//    authorization expiry, then the engine decides packets in order and stops after each Slow one;
//    the flows it hit have their timers carried into GatewayState's NAT, GatewayState decides the
//    Slow packet, and the engine goes on behind it. Refused packets get GatewayState's ICMP reply.
// 2. After every GatewayState call: its events are re-queued for pollEvent(), and every client they
//    (or the call) name is mirrored again: tunnel addresses, rules from its installed authorizations,
//    the proxy IPs it mapped, and each engine flow checked against GatewayState's (dropped, or
//    refreshed from it).
// 3. After a Slow packet, the NAT flow it belongs to (if GatewayState has one) is installed or
//    refreshed in the engine, so the engine holds every live flow of a client, or the client is marked
//    as not (then answers without a flow go Slow).
//
// GatewayState offers what a fast path mirrors (its section 7): the NAT flows by either key, each
// client's mapped proxy IPs, and carryFlow for the timers of flows the engine translated. The
// authorizations are mirrored from the calls made here, checked against authorizationIds().

import {
  Engine, EngineError, GatewayStatus, type FastFilters, type GatewayFastPath,
} from "../engine/index.js";
import {
  CONTROL_PORT, GatewayState, ICMP_QUERY_TIMEOUT, PROXY_IPV4_RANGE, PROXY_IPV6_RANGE, TCP_ESTABLISHED_TIMEOUT,
  TCP_TRANSITORY_TIMEOUT, UDP_MAPPING_TIMEOUT, compileFilters, type DropReason, type FromClientDecision,
  type FromResourceDecision, type GatewayEvent, type GatewayStateOptions, type InstallResult, type NatFlow,
} from "../proto/gateway/index.js";
import { formatIp, parseIp, parsePrefix, prefixContains, type IpPrefix } from "../proto/ip/address.js";
import { PROTOCOL_TCP, PROTOCOL_UDP } from "../proto/ip/constants.js";
import { buildProhibited } from "../proto/ip/icmp.js";
import { icmpProtocol, parseIpPacket, type IpPacket } from "../proto/ip/packet.js";
import type { AuthorizationForGateway, RejectAccess } from "../proto/portal/schema.js";

/** A peer id the tables never hold: a packet from a client the mirror does not know goes Slow. */
const UNKNOWN_PEER = 0xfffffffe;

const PROXY_PREFIXES = [PROXY_IPV4_RANGE, PROXY_IPV6_RANGE].map((text) => parsePrefix(text)!);

type Drop = Extract<FromClientDecision, { action: "drop" }>;

interface Tunnel {
  ipv4: Uint8Array;
  ipv6: Uint8Array;
}

/** The NAT key of a packet as nat.ts keys it; fromResource: the packet travels resource → client. */
function flowKey(packet: IpPacket, fromResource: boolean): { clientPort: number; port: number } | undefined {
  if (packet.protocol === PROTOCOL_TCP || packet.protocol === PROTOCOL_UDP) {
    if (packet.srcPort === undefined || packet.dstPort === undefined) return undefined;
    return fromResource ? { clientPort: packet.dstPort, port: packet.srcPort } : { clientPort: packet.srcPort, port: packet.dstPort };
  }
  if (packet.protocol !== icmpProtocol(packet.version) || packet.icmpIdentifier === undefined) return undefined;
  const request = packet.icmpType === (packet.version === 4 ? 8 : 128);
  return request === fromResource ? undefined : { clientPort: packet.icmpIdentifier, port: 0 };
}

function hostPrefix(text: string): IpPrefix | undefined {
  const address = parseIp(text);
  return address && { address, length: address.length * 8 };
}

/** GatewayState behind the engine's fast path (file header). */
export class EngineBackedGateway {
  /** Drops the engine decided; GatewayState counts the ones it decided. */
  readonly drops: Record<DropReason, number> = {
    malformed: 0, unknown_client: 0, spoofed: 0, fragment: 0, prohibited: 0, unresolved: 0, held_overflow: 0, nat_exhausted: 0, bad_control: 0,
    control_refused: 0,
  };
  /** Packets the engine decided, and those it handed to GatewayState. */
  fast = 0;
  slow = 0;
  /** NAT flows the engine translated packets of (once per flow per engine call). */
  flowHits = 0;
  /** Engine flows found without a GatewayState flow behind them when their timers were carried back: must stay 0. */
  desyncs = 0;
  readonly state: GatewayState;
  readonly engine: Engine;
  private readonly gw: GatewayFastPath;
  private readonly epochMs: number;
  private readonly events: GatewayEvent[] = [];
  private readonly peers = new Map<string, number>();
  private readonly clientIds: (string | undefined)[] = [];
  private readonly freePeers: number[] = [];
  private readonly tunnels = new Map<string, Tunnel>();
  /** What was installed, by authorization id (GatewayState's authorizationIds() says what still is). */
  private readonly installed = new Map<string, { authorization: AuthorizationForGateway; expiresAt: number }>();
  /** Rule slots by client id, then resource id. */
  private readonly ruleSlots = new Map<string, Map<string, number>>();
  /** Clients some of whose flows the engine could not take. */
  private readonly incomplete = new Set<string>();
  /** Clients with destinations the engine's rules do not hold (internet). */
  private readonly unmatched = new Set<string>();
  /** Clients some of whose rules the engine could not take. */
  private readonly rulesIncomplete = new Set<string>();
  /** Clients some of whose proxy IPs the engine could not take. */
  private readonly proxiesIncomplete = new Set<string>();

  constructor(options: GatewayStateOptions, engine: Engine) {
    this.state = new GatewayState(options);
    this.engine = engine;
    this.gw = engine.gateway;
    this.epochMs = options.epochMs ?? 0;
    const proxy = PROXY_PREFIXES as [IpPrefix, IpPrefix];
    this.gw.configure({
      ipv4: parseIp(options.ipv4)!, ipv6: parseIp(options.ipv6)!, controlPort: CONTROL_PORT, proxyIpv4: proxy[0], proxyIpv6: proxy[1],
      timeouts: { udp: UDP_MAPPING_TIMEOUT, tcpEstablished: TCP_ESTABLISHED_TIMEOUT, tcpTransitory: TCP_TRANSITORY_TIMEOUT, icmpQuery: ICMP_QUERY_TIMEOUT },
    });
  }

  // --- The control plane: GatewayState's calls, then the mirror (2.) ---

  init(now: number, authorizations: readonly AuthorizationForGateway[]): { authorizationId: string; reason: string }[] {
    const failed = this.state.init(now, authorizations);
    // As GatewayState reads the list: a later entry for a (client, resource) pair replaces an earlier one.
    const wanted = new Map<string, AuthorizationForGateway>();
    for (const a of authorizations) wanted.set(`${a.client.id}|${a.resource.id}`, a);
    const refused = new Set(failed.map((f) => f.authorizationId));
    for (const a of wanted.values()) if (!refused.has(a.authorization_id)) this.record(a);
    this.absorb(now, [...this.peers.keys(), ...authorizations.map((a) => a.client.id)]);
    return failed;
  }

  createAuthorization(now: number, authorization: AuthorizationForGateway): InstallResult {
    const result = this.state.createAuthorization(now, authorization);
    if (result.ok) this.record(authorization);
    this.absorb(now, [authorization.client.id]);
    return result;
  }

  rejectAccess(now: number, reject: Pick<RejectAccess, "authorization_id">): void {
    this.state.rejectAccess(now, reject);
    this.absorb(now, []);
  }

  handleResolved(now: number, name: string, addresses: readonly string[]): void {
    this.state.handleResolved(now, name, addresses);
    this.absorb(now, []);
  }

  handleTimeout(now: number): void {
    this.state.handleTimeout(now);
    this.absorb(now, []);
  }

  pollEvent(): GatewayEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    return this.state.pollTimeout();
  }

  // --- 1. Batches ---

  /** Decides a batch of decrypted packets out of clients' tunnels, in order. */
  fromClients(now: number, packets: readonly { clientId: string; bytes: Uint8Array }[]): FromClientDecision[] {
    this.beforeBatch(now);
    this.gw.reset();
    for (const p of packets) this.gw.add(p.bytes, this.peers.get(p.clientId) ?? UNKNOWN_PEER);
    return this.run(
      packets.length, (start) => this.gw.fromClients(now, { start, stopAtSlow: true }), (status, bytes) => this.finishFromClient(status, bytes),
      (i, bytes) => {
        const clientId = packets[i]!.clientId;
        const decision = this.state.handleFromClient(now, clientId, bytes);
        this.absorb(now, decision.action === "consumed" ? [clientId] : []);
        return decision;
      },
      now, false,
    );
  }

  /** Decides a batch of packets from the network to clients' tunnel addresses, in order. */
  fromResources(now: number, packets: readonly Uint8Array[]): FromResourceDecision[] {
    this.beforeBatch(now);
    this.gw.reset();
    for (const bytes of packets) this.gw.add(bytes);
    return this.run(
      packets.length, (start) => this.gw.fromResources(now, { start, stopAtSlow: true }),
      (status, bytes, i) => this.finishFromResource(status, bytes, this.gw.peer(i)),
      (_i, bytes) => {
        const decision = this.state.handleFromResource(now, bytes);
        this.absorb(now, []);
        return decision;
      },
      now, true,
    );
  }

  /**
   * The engine up to each Slow packet, then GatewayState on it (slow: with a copy of its bytes), then
   * the flow it belongs to refreshed in the engine, until the batch is done.
   */
  private run<D extends { action: string }>(
    count: number, engine: (start: number) => number, fast: (status: GatewayStatus, bytes: Uint8Array, i: number) => D,
    slow: (i: number, bytes: Uint8Array) => D, now: number, fromResource: boolean,
  ): D[] {
    const out: D[] = [];
    for (let i = 0; i < count; ) {
      const end = engine(i);
      this.carryTimers();
      for (; i < end; i++) {
        const status = this.gw.status(i);
        const bytes = this.gw.packet(i).slice();
        if (status !== GatewayStatus.Slow) {
          this.fast++;
          out.push(fast(status, bytes, i));
          continue;
        }
        this.slow++;
        const parsed = parseIpPacket(bytes.slice());
        const decision = slow(i, bytes);
        out.push(decision);
        if (parsed.ok && decision.action === "forward") this.refreshFlow(now, parsed.packet, fromResource);
      }
    }
    return out;
  }

  private beforeBatch(now: number): void {
    const due = this.state.pollTimeout();
    if (due !== undefined && now >= due) this.handleTimeout(now);
    const live = new Set(this.state.authorizationIds());
    let deadline = Infinity;
    for (const [id, { expiresAt }] of this.installed) if (live.has(id)) deadline = Math.min(deadline, expiresAt);
    this.gw.setDeadline(deadline);
  }

  private finishFromClient(status: GatewayStatus, bytes: Uint8Array): FromClientDecision {
    switch (status) {
      case GatewayStatus.Ok:
        return { action: "forward", packet: bytes };
      case GatewayStatus.Refused: {
        const parsed = parseIpPacket(bytes);
        if (!parsed.ok) throw new Error("the engine refused a packet that does not parse");
        const reply = buildProhibited(parsed.packet.dst, bytes, parsed.packet);
        return reply ? { action: "reply", packet: reply } : this.drop("prohibited");
      }
      default:
        return this.dropFor(status, bytes);
    }
  }

  private finishFromResource(status: GatewayStatus, bytes: Uint8Array, peer: number | undefined): FromResourceDecision {
    if (status !== GatewayStatus.Ok) return this.dropFor(status, bytes);
    const clientId = peer === undefined ? undefined : this.clientIds[peer];
    if (clientId === undefined) throw new Error(`the engine forwarded to peer ${String(peer)}, which is no client`);
    return { action: "forward", clientId, packet: bytes };
  }

  private dropFor(status: GatewayStatus, bytes: Uint8Array): Drop {
    switch (status) {
      case GatewayStatus.SourceNotAllowed:
        return this.drop("spoofed");
      case GatewayStatus.Fragment:
        return this.drop("fragment");
      case GatewayStatus.UnknownClient:
        return this.drop("unknown_client");
      case GatewayStatus.BadInnerPacket: {
        const parsed = parseIpPacket(bytes);
        if (parsed.ok) throw new Error("the engine called malformed a packet daemons/proto/ip parses");
        this.drops.malformed++;
        return { action: "drop", reason: "malformed", detail: parsed.error };
      }
      default:
        throw new Error(`unexpected engine status ${GatewayStatus[status] ?? status}`);
    }
  }

  private drop(reason: DropReason): Drop {
    this.drops[reason]++;
    return { action: "drop", reason };
  }

  /** The engine refreshed these flows; GatewayState's NAT must agree before it is asked anything. */
  private carryTimers(): void {
    for (const slot of this.gw.touched()) {
      this.flowHits++;
      const flow = this.gw.flow(slot)!;
      const state = this.gw.flowState(slot)!;
      if (!this.state.carryFlow(state.lastUsed, flow, state.tcp, state.expiresAt)) {
        this.desyncs++;
        this.gw.removeFlow(slot);
      }
    }
  }

  // --- 2. The mirror ---

  private record(authorization: AuthorizationForGateway): void {
    this.installed.set(authorization.authorization_id, { authorization, expiresAt: Date.parse(authorization.expires_at) - this.epochMs });
  }

  /** Re-queues GatewayState's events and mirrors the clients they or the caller name. */
  private absorb(now: number, named: readonly string[]): void {
    const affected = new Set(named);
    for (let e = this.state.pollEvent(); e; e = this.state.pollEvent()) {
      this.events.push(e);
      if (e.type === "resolve") continue;
      affected.add(e.clientId);
      if (e.type === "forward") this.learnReleasedFlow(now, e.packet);
      if (e.type === "peer_added" || e.type === "peer_updated") this.setTunnel(e.clientId, e.ipv4, e.ipv6);
      else if (e.type === "peer_removed") this.removePeer(e.clientId);
    }
    const live = new Set(this.state.authorizationIds());
    for (const id of [...this.installed.keys()]) if (!live.has(id)) this.installed.delete(id);
    for (const clientId of affected) this.mirrorClient(now, clientId);
  }

  private setTunnel(clientId: string, ipv4Text: string, ipv6Text: string): void {
    let peer = this.peers.get(clientId);
    if (peer === undefined) {
      peer = this.freePeers.pop() ?? this.clientIds.length;
      this.peers.set(clientId, peer);
      this.clientIds[peer] = clientId;
    }
    const old = this.tunnels.get(clientId);
    if (old) {
      this.gw.removeAddress(old.ipv4);
      this.gw.removeAddress(old.ipv6);
    }
    const tunnel = { ipv4: parseIp(ipv4Text)!, ipv6: parseIp(ipv6Text)! };
    this.tunnels.set(clientId, tunnel);
    this.gw.setClient(peer, tunnel);
    this.gw.setAddress(tunnel.ipv4, peer);
    this.gw.setAddress(tunnel.ipv6, peer);
  }

  private removePeer(clientId: string): void {
    const peer = this.peers.get(clientId);
    const tunnel = this.tunnels.get(clientId);
    if (peer === undefined || !tunnel) return;
    this.gw.removeClient(peer);
    this.gw.removeAddress(tunnel.ipv4);
    this.gw.removeAddress(tunnel.ipv6);
    this.peers.delete(clientId);
    this.tunnels.delete(clientId);
    this.clientIds[peer] = undefined;
    this.freePeers.push(peer);
    this.ruleSlots.delete(clientId);
    this.incomplete.delete(clientId);
    this.unmatched.delete(clientId);
    this.rulesIncomplete.delete(clientId);
    this.proxiesIncomplete.delete(clientId);
  }

  /** Rules from the client's installed authorizations, then its flows checked against GatewayState's. */
  private mirrorClient(now: number, clientId: string): void {
    const peer = this.peers.get(clientId);
    const tunnel = this.tunnels.get(clientId);
    if (peer === undefined || !tunnel) return;
    const live = new Set(this.state.authorizationIds());
    const wanted = new Map<string, { prefix: IpPrefix | undefined; filters: FastFilters }>();
    let slowUnmatched = false;
    for (const [id, { authorization }] of this.installed) {
      if (!live.has(id) || authorization.client.id !== clientId) continue;
      const resource = authorization.resource;
      const filters = compileFilters(resource.filters);
      if (resource.type === "internet") slowUnmatched = true;
      else if (resource.type === "dns") wanted.set(resource.id, { prefix: undefined, filters });
      else {
        const prefix = resource.type === "ip" ? hostPrefix(resource.address ?? "") : parsePrefix(resource.address ?? "");
        if (prefix) wanted.set(resource.id, { prefix, filters });
      }
    }
    // Everything Slow while the rules change (no batch runs meanwhile; this only keeps it safe).
    this.gw.setClient(peer, { ...tunnel, slowUnmatched: true, rulesIncomplete: true, flowsIncomplete: this.incomplete.has(clientId) });
    let rulesIncomplete = false;
    const slots = this.ruleSlots.get(clientId) ?? new Map<string, number>();
    this.ruleSlots.set(clientId, slots);
    for (const [resourceId, slot] of [...slots]) {
      if (wanted.has(resourceId)) continue;
      this.gw.removeRule(slot);
      slots.delete(resourceId);
    }
    for (const [resourceId, rule] of wanted) {
      const slot = slots.get(resourceId);
      try {
        if (slot !== undefined) this.gw.updateRule(slot, rule.prefix, rule.filters);
        else slots.set(resourceId, this.gw.addRule(peer, rule.prefix, rule.filters));
      } catch (error) {
        if (!(error instanceof EngineError) || error.code !== "TABLE_FULL") throw error;
        rulesIncomplete = true;
      }
    }
    if (slowUnmatched) this.unmatched.add(clientId);
    else this.unmatched.delete(clientId);
    if (rulesIncomplete) this.rulesIncomplete.add(clientId);
    else this.rulesIncomplete.delete(clientId);
    this.mirrorProxies(clientId, peer, slots);
    this.setFlags(clientId);
    for (const slot of this.gw.flowsOf(peer)) {
      const flow = this.gw.flow(slot)!;
      this.gw.removeFlow(slot);
      const ts = this.state.flowInside(now, flow.protocol, flow.client, flow, flow.proxy);
      if (ts) this.install(ts);
    }
  }

  /** The proxy IPs GatewayState has for the client, each naming its DNS resource's rule. */
  private mirrorProxies(clientId: string, peer: number, slots: Map<string, number>): void {
    const wanted = this.state.mappedProxies(clientId);
    let incomplete = false;
    for (const held of this.gw.proxiesOf(peer)) {
      const text = formatIp(held.address);
      if (!wanted.has(text) || slots.get(wanted.get(text)!) !== held.rule) this.gw.removeProxy(peer, held.address);
    }
    for (const [text, resourceId] of wanted) {
      const rule = slots.get(resourceId);
      try {
        if (rule === undefined) throw new EngineError("TABLE_FULL", "no rule for the proxy's resource");
        this.gw.setProxy(peer, parseIp(text)!, rule);
      } catch (error) {
        if (!(error instanceof EngineError) || error.code !== "TABLE_FULL") throw error;
        incomplete = true;
      }
    }
    if (incomplete) this.proxiesIncomplete.add(clientId);
    else this.proxiesIncomplete.delete(clientId);
  }

  // --- 3. Flows learnt from the slow path ---

  private refreshFlow(now: number, packet: IpPacket, fromResource: boolean): void {
    const key = flowKey(packet, fromResource);
    if (!key) return;
    const ts = fromResource
      ? this.state.flowOutside(now, packet.protocol, packet.dst, key.clientPort, packet.src, key.port)
      : PROXY_PREFIXES.some((p) => prefixContains(p, packet.dst)) ? this.state.flowInside(now, packet.protocol, packet.src, key, packet.dst) : undefined;
    if (ts) this.install(ts);
  }

  /**
   * A held packet GatewayState released (a forward event) may have made a flow: the packet is already
   * translated (client → real, outside port), so the flow is found by its outside key.
   */
  private learnReleasedFlow(now: number, bytes: Uint8Array): void {
    const parsed = parseIpPacket(bytes.slice());
    if (!parsed.ok) return;
    const key = flowKey(parsed.packet, false);
    if (!key) return;
    const ts = this.state.flowOutside(now, parsed.packet.protocol, parsed.packet.src, key.clientPort, parsed.packet.dst, key.port);
    if (ts) this.install(ts);
  }

  /** Installs (or replaces) GatewayState's flow in the engine; a flow it cannot take marks its client incomplete. */
  private install(ts: NatFlow): void {
    const peer = this.peers.get(ts.clientId);
    const rule = this.ruleSlots.get(ts.clientId)?.get(ts.resourceId);
    for (const [side, port, other] of [["inside", ts.clientPort, ts.proxy], ["outside", ts.outsidePort, ts.real]] as const) {
      const held = this.gw.findFlow(side, ts.protocol, ts.client, port, other, ts.port);
      if (held !== undefined) this.gw.removeFlow(held);
    }
    try {
      if (peer === undefined || rule === undefined) throw new EngineError("TABLE_FULL", "no rule for the flow's resource");
      this.gw.addFlow({
        protocol: ts.protocol, peer, client: ts.client, clientPort: ts.clientPort, proxy: ts.proxy, port: ts.port, real: ts.real,
        outsidePort: ts.outsidePort, tcp: ts.tcp, expiresAt: ts.expiresAt, rule,
      });
    } catch (error) {
      if (!(error instanceof EngineError) || error.code !== "TABLE_FULL") throw error;
      this.incomplete.add(ts.clientId);
      this.setFlags(ts.clientId);
    }
  }

  private holdsDns(clientId: string): boolean {
    const live = new Set(this.state.authorizationIds());
    return [...this.installed].some(([id, { authorization }]) => live.has(id) && authorization.client.id === clientId && authorization.resource.type === "dns");
  }

  private setFlags(clientId: string): void {
    const peer = this.peers.get(clientId);
    const tunnel = this.tunnels.get(clientId);
    if (peer === undefined || !tunnel) return;
    this.gw.setClient(peer, {
      ...tunnel, slowUnmatched: this.unmatched.has(clientId), rulesIncomplete: this.rulesIncomplete.has(clientId), flowsIncomplete: this.incomplete.has(clientId),
      // A client holding a DNS resource may have a mapping on its way: GatewayState holds packets to
      // its proxy IPs not mapped yet, so the engine must not judge them by the rules.
      proxiesComplete: !this.proxiesIncomplete.has(clientId) && !this.holdsDns(clientId),
    });
  }
}
