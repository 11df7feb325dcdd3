// The gateway's fast path: the binding's side of engine/gateway.ts and engine/packet.ts. GatewayState
// (daemons/proto/gateway) stays the source of truth; its driver mirrors what it decided into these
// tables, and the engine decides the common case of a whole batch in one call, answering Slow for
// anything it does not hold.
//
// 1. configure(): the gateway's own tunnel addresses and control port, the proxy ranges and the NAT
//    timeouts, all as GatewayState has them (passed in: this layer imports nothing from proto).
// 2. Tables, each validated here before it crosses: clients by peer id (tunnel addresses and flags),
//    their rules (a prefix and compiled filters, or filters alone for a DNS resource), the proxy IPs
//    each client mapped (to its DNS resource's filters-only rule), the tunnel address index, and NAT
//    flows. Slots are allocated here, so nothing per packet allocates.
// 3. The batch: packets copied (or written) into the engine's arena, one call per direction, then
//    status(i), packet(i) and peer(i). The arena and descriptors are the engine's one batch, shared
//    with engine.batch: use one of them at a time.
// 4. touched(): the flows the batches hit since the last call, whose timers the driver carries back
//    into GatewayState before it next asks GatewayState anything.

import {
  DESC_LENGTH, DESC_OFFSET, DESC_SESSION, DESC_STATUS, DESC_WORDS, GATEWAY_BY_SESSION, GATEWAY_CLIENT_FLOWS_INCOMPLETE,
  GATEWAY_CLIENT_PROXIES_INCOMPLETE, GATEWAY_CLIENT_RULES_INCOMPLETE, GATEWAY_CLIENT_SLOW_UNMATCHED, GATEWAY_FILTER_ALL, GATEWAY_FILTER_ICMP, GATEWAY_FILTER_SLOW, GATEWAY_RULE_FILTERS,
  GATEWAY_RULE_MAX_RANGES, GATEWAY_RULE_PREFIX, GATEWAY_STOP_AT_SLOW, GATEWAY_TCP_STATES, GatewayStatus, IP_PARSE_ERRORS,
  IP_VIEW_WORDS, IPV4_ADDRESS_SIZE, IPV6_ADDRESS_SIZE, MAX_MESSAGE_SIZE, MESSAGE_TRANSPORT_HEADER_SIZE, NO_PEER,
  RESULT_INDEX_IN_USE, RESULT_OK, RESULT_TABLE_FULL,
} from "./constants.js";
import type { EngineExports } from "./engine.js";
import { EngineError, checkBytes, checkInteger, checkPeer } from "./errors.js";
import type { Prefix } from "./routes.js";
import type { TransportBatch } from "./transport.js";

/** How many clients, rules and NAT flows the gateway's tables hold. */
export interface GatewayTableSizes {
  maxClients: number;
  maxRules: number;
  maxFlows: number;
  /** Proxy IPs mapped by all clients together; maxFlows unless given. */
  maxProxies?: number;
}

/** NAT idle timeouts in ms, as daemons/proto/gateway/constants.ts has them. */
export interface NatTimeouts {
  udp: number;
  tcpEstablished: number;
  tcpTransitory: number;
  icmpQuery: number;
}

/** What the fast path must know of the gateway itself. */
export interface GatewayFastPathConfig {
  /** The gateway's own tunnel addresses (4 and 16 bytes): control messages go there. */
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  controlPort: number;
  /** The DNS-resource proxy ranges: a packet to them is NAT or the slow path's. */
  proxyIpv4: Prefix;
  proxyIpv6: Prefix;
  timeouts: NatTimeouts;
}

/** An inclusive port range. */
export interface FastPortRange {
  start: number;
  end: number;
}

/** Compiled filters, shaped as daemons/proto/gateway/filters.ts compiles them. */
export interface FastFilters {
  all: boolean;
  icmp: boolean;
  tcp: readonly FastPortRange[] | undefined;
  udp: readonly FastPortRange[] | undefined;
}

/** A client as the fast path holds it. */
export interface FastClient {
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  /** A destination none of its rules holds goes Slow (it has an internet resource, or rules not held). */
  slowUnmatched?: boolean;
  /** Not all its NAT flows are held: answers without a flow go Slow. */
  flowsIncomplete?: boolean;
  /** Not all its rules are held: its packets to anything but a held NAT flow go Slow. */
  rulesIncomplete?: boolean;
  /**
   * Every proxy IP it mapped is held (setProxy) and no mapping can be on its way (it holds no DNS
   * resource): a proxy-range destination it did not map is then judged by its rules, as GatewayState
   * does. Unless set, such packets go Slow (GatewayState holds them for a client with a DNS resource).
   */
  proxiesComplete?: boolean;
}

export type FastTcpState = (typeof GATEWAY_TCP_STATES)[number];

/** A NAT flow, keyed as daemons/proto/gateway/nat.ts keys it. */
export interface FastFlow {
  protocol: number;
  /** The client's peer id. */
  peer: number;
  client: Uint8Array;
  /** The client's port or echo identifier. */
  clientPort: number;
  proxy: Uint8Array;
  /** The destination port (0 for echo). */
  port: number;
  real: Uint8Array;
  outsidePort: number;
  tcp: FastTcpState;
  expiresAt: number;
  /** The client's filters-only rule (addRule without a prefix) whose filters the flow's packets pass. */
  rule: number;
}

/** A flow's state as the engine has it now. */
export interface FastFlowState {
  tcp: FastTcpState;
  expiresAt: number;
  /** When a batch last hit it; -Infinity: never since it was installed. */
  lastUsed: number;
}

/** The engine's parse of a packet (ipParseAt), shaped as the fields of daemons/proto/ip's IpPacket it uses. */
export type FastParse =
  | { ok: false; error: (typeof IP_PARSE_ERRORS)[number] }
  | {
      ok: true;
      version: number; headerLength: number; length: number; protocol: number; fragmentOffset: number; moreFragments: boolean;
      srcPort?: number; dstPort?: number; tcpFlags?: number; icmpType?: number; icmpCode?: number; icmpIdentifier?: number;
    };

interface RuleRecord {
  peer: number;
}

const align16 = (n: number): number => (n + 15) & ~15;
const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function checkAddress(op: string, what: string, value: unknown, size?: number): Uint8Array {
  checkBytes(op, what, value);
  if (size !== undefined ? value.length !== size : value.length !== IPV4_ADDRESS_SIZE && value.length !== IPV6_ADDRESS_SIZE) {
    throw new EngineError("BAD_ADDRESS", `${op}: ${what} must be ${size ?? "4 or 16"} bytes, got ${value.length}`);
  }
  return value;
}

function checkTimeout(what: string, value: unknown): number {
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new EngineError("BAD_ARGUMENT", `${what} must be a finite number of ms, got ${String(value)}`);
  }
  return value;
}

/** The gateway's tables and batch calls in engine memory (engine.gateway). */
export class GatewayFastPath {
  readonly maxClients: number;
  readonly maxRules: number;
  readonly maxFlows: number;
  readonly maxPackets: number;
  private readonly scratch: number;
  private readonly arena: number;
  private readonly arenaBytes: number;
  private readonly desc: Uint32Array;
  private readonly freeRules: number[] = [];
  private readonly freeFlows: number[] = [];
  private readonly rules = new Map<number, RuleRecord>();
  private readonly flows = new Map<number, FastFlow>();
  private readonly clientsLive = new Set<number>();
  /** By peer, then the address in hex: the rule each mapped proxy IP names. */
  private readonly proxies = new Map<number, Map<string, { address: Uint8Array; rule: number }>>();
  private configured = false;
  private cursor = 0;
  private count = 0;

  constructor(
    private readonly x: EngineExports,
    private readonly mem: Uint8Array,
    sizes: GatewayTableSizes,
  ) {
    this.maxClients = sizes.maxClients;
    this.maxRules = sizes.maxRules;
    this.maxFlows = sizes.maxFlows;
    for (let slot = sizes.maxRules - 1; slot >= 0; slot--) this.freeRules.push(slot);
    for (let slot = sizes.maxFlows - 1; slot >= 0; slot--) this.freeFlows.push(slot);
    this.scratch = x.scratchPtr();
    this.arena = x.arenaPtr();
    this.arenaBytes = x.arenaSize();
    this.maxPackets = x.descriptorCount();
    this.desc = new Uint32Array(x.memory.buffer, x.descriptorsPtr(), this.maxPackets * DESC_WORDS);
  }

  // --- 1. Configuration ---

  /** Sets what the fast path must know of the gateway (once, or again to change it). */
  configure(config: GatewayFastPathConfig): void {
    const op = "gateway.configure";
    checkAddress(op, "ipv4", config.ipv4, IPV4_ADDRESS_SIZE);
    checkAddress(op, "ipv6", config.ipv6, IPV6_ADDRESS_SIZE);
    checkInteger("controlPort", config.controlPort, 0, 0xffff);
    checkAddress(op, "proxyIpv4.address", config.proxyIpv4?.address, IPV4_ADDRESS_SIZE);
    checkAddress(op, "proxyIpv6.address", config.proxyIpv6?.address, IPV6_ADDRESS_SIZE);
    checkInteger("proxyIpv4.length", config.proxyIpv4.length, 0, 32);
    checkInteger("proxyIpv6.length", config.proxyIpv6.length, 0, 128);
    const t = config.timeouts;
    const timeouts = [t?.udp, t?.tcpEstablished, t?.tcpTransitory, t?.icmpQuery].map((v, i) => checkTimeout(`timeouts[${i}]`, v));
    const s = this.scratch;
    this.mem.set(config.ipv4, s);
    this.mem.set(config.ipv6, s + 16);
    this.mem.set(config.proxyIpv4.address, s + 32);
    this.mem.set(config.proxyIpv6.address, s + 48);
    const rc = this.x.gatewayConfigure(
      s, s + 16, config.controlPort, s + 32, config.proxyIpv4.length, s + 48, config.proxyIpv6.length,
      timeouts[0]!, timeouts[1]!, timeouts[2]!, timeouts[3]!,
    );
    if (rc !== RESULT_OK) throw new EngineError("BAD_ARGUMENT", `${op}: engine refused the configuration (code ${rc})`);
    this.configured = true;
  }

  /** From this time on every packet goes Slow, until set again: when the control plane's tables may be stale (an expiry). */
  setDeadline(at: number): void {
    if (typeof at !== "number" || Number.isNaN(at)) throw new EngineError("BAD_ARGUMENT", `gateway.setDeadline: a time in ms or Infinity, got ${String(at)}`);
    this.x.gatewaySetDeadline(at);
  }

  /** Whether the tunnel address index may lack addresses (then unknown destinations go Slow, not dropped). */
  setAddressesIncomplete(incomplete: boolean): void {
    this.x.gatewaySetAddressesIncomplete(incomplete ? 1 : 0);
  }

  // --- 2. Tables ---

  /** Adds or updates the client with this peer id; its rules and flows stay. */
  setClient(peer: number, client: FastClient): void {
    const op = "gateway.setClient";
    this.checkClientPeer(op, peer);
    checkAddress(op, "ipv4", client.ipv4, IPV4_ADDRESS_SIZE);
    checkAddress(op, "ipv6", client.ipv6, IPV6_ADDRESS_SIZE);
    this.mem.set(client.ipv4, this.scratch);
    this.mem.set(client.ipv6, this.scratch + 16);
    const flags = (client.slowUnmatched ? GATEWAY_CLIENT_SLOW_UNMATCHED : 0) | (client.flowsIncomplete ? GATEWAY_CLIENT_FLOWS_INCOMPLETE : 0)
      | (client.rulesIncomplete ? GATEWAY_CLIENT_RULES_INCOMPLETE : 0) | (client.proxiesComplete ? 0 : GATEWAY_CLIENT_PROXIES_INCOMPLETE);
    if (this.x.gatewayClientSet(peer, this.scratch, this.scratch + 16, flags) !== RESULT_OK) {
      throw new EngineError("BAD_ARGUMENT", `${op}: engine refused peer ${peer}`);
    }
    this.clientsLive.add(peer);
  }

  /** Removes a client, its rules and its flows; false if it was not held. */
  removeClient(peer: number): boolean {
    this.checkClientPeer("gateway.removeClient", peer);
    if (!this.clientsLive.has(peer)) return false;
    for (const slot of this.flowsOf(peer)) this.removeFlow(slot);
    for (const { address } of this.proxiesOf(peer)) this.removeProxy(peer, address);
    for (const [slot, rule] of this.rules) {
      if (rule.peer !== peer) continue;
      this.rules.delete(slot);
      this.freeRules.push(slot);
    }
    this.x.gatewayClientRemove(peer);
    this.clientsLive.delete(peer);
    return true;
  }

  /** Maps a client tunnel address (4 or 16 bytes) to peer, replacing whichever peer had it. */
  setAddress(address: Uint8Array, peer: number): void {
    const op = "gateway.setAddress";
    checkAddress(op, "address", address);
    this.checkClientPeer(op, peer);
    this.mem.set(address, this.scratch);
    const rc = this.x.gatewayAddressSet(address.length === 4 ? 4 : 6, this.scratch, peer);
    if (rc === RESULT_TABLE_FULL) throw new EngineError("TABLE_FULL", `${op}: the address index is full`);
    if (rc !== RESULT_OK) throw new EngineError("BAD_ARGUMENT", `${op}: engine refused it (code ${rc})`);
  }

  /** Unmaps a tunnel address; false if it was not mapped. */
  removeAddress(address: Uint8Array): boolean {
    checkAddress("gateway.removeAddress", "address", address);
    this.mem.set(address, this.scratch);
    return this.x.gatewayAddressRemove(address.length === 4 ? 4 : 6, this.scratch) === RESULT_OK;
  }

  /** The peer whose tunnel address this is, if any. */
  lookupAddress(address: Uint8Array): number | undefined {
    checkAddress("gateway.lookupAddress", "address", address);
    this.mem.set(address, this.scratch);
    const peer = this.x.gatewayAddressLookup(address.length === 4 ? 4 : 6, this.scratch) >>> 0;
    return peer === NO_PEER ? undefined : peer;
  }

  /**
   * Adds a rule for the client and returns its slot: a prefix (an ip resource as /32 or /128, a cidr
   * resource) or none (a DNS resource's filters, which its flows name). Filters with more than
   * GATEWAY_RULE_MAX_RANGES port ranges are held as "decide in the slow path".
   */
  addRule(peer: number, prefix: Prefix | undefined, filters: FastFilters): number {
    const slot = this.freeRules.pop();
    if (slot === undefined) throw new EngineError("TABLE_FULL", `gateway.addRule: all ${this.maxRules} rule slots are in use`);
    try {
      this.writeRule("gateway.addRule", slot, peer, prefix, filters);
    } catch (error) {
      this.freeRules.push(slot);
      throw error;
    }
    this.rules.set(slot, { peer });
    return slot;
  }

  /** Rewrites a rule in place (same client): flows that name it keep it, under the new filters. */
  updateRule(slot: number, prefix: Prefix | undefined, filters: FastFilters): void {
    const rule = this.rules.get(slot);
    if (!rule) throw new EngineError("NOT_FOUND", `gateway.updateRule: slot ${String(slot)} holds no rule`);
    this.writeRule("gateway.updateRule", slot, rule.peer, prefix, filters);
  }

  /** Removes a rule; flows that name it go Slow until removed. */
  removeRule(slot: number): void {
    if (!this.rules.has(slot)) throw new EngineError("NOT_FOUND", `gateway.removeRule: slot ${String(slot)} holds no rule`);
    this.x.gatewayRuleRemove(slot);
    this.rules.delete(slot);
    this.freeRules.push(slot);
  }

  /** Maps a proxy IP the client mapped to its DNS resource's filters-only rule (replacing any it named). */
  setProxy(peer: number, address: Uint8Array, rule: number): void {
    const op = "gateway.setProxy";
    this.checkClientPeer(op, peer);
    checkAddress(op, "address", address);
    if (this.rules.get(rule)?.peer !== peer) throw new EngineError("BAD_ARGUMENT", `${op}: rule ${String(rule)} is not a rule of peer ${peer}`);
    this.mem.set(address, this.scratch);
    const rc = this.x.gatewayProxySet(peer, address.length === 4 ? 4 : 6, this.scratch, rule);
    if (rc === RESULT_TABLE_FULL) throw new EngineError("TABLE_FULL", `${op}: the proxy table is full`);
    if (rc !== RESULT_OK) throw new EngineError("BAD_ARGUMENT", `${op}: engine refused it (code ${rc}): the rule must be a filters-only rule`);
    const held = this.proxies.get(peer) ?? new Map<string, { address: Uint8Array; rule: number }>();
    this.proxies.set(peer, held);
    held.set(hexOf(address), { address: address.slice(), rule });
  }

  /** Unmaps a client's proxy IP; false if it was not mapped. */
  removeProxy(peer: number, address: Uint8Array): boolean {
    const op = "gateway.removeProxy";
    this.checkClientPeer(op, peer);
    checkAddress(op, "address", address);
    const held = this.proxies.get(peer);
    if (!held?.delete(hexOf(address))) return false;
    this.mem.set(address, this.scratch);
    this.x.gatewayProxyRemove(peer, address.length === 4 ? 4 : 6, this.scratch);
    return true;
  }

  /** The proxy IPs held for a client, with their rules. */
  proxiesOf(peer: number): { address: Uint8Array; rule: number }[] {
    return [...(this.proxies.get(peer)?.values() ?? [])];
  }

  get proxyCount(): number {
    return this.x.gatewayProxyCount();
  }

  get ruleCount(): number {
    return this.x.gatewayRuleCount();
  }

  /** Installs a NAT flow and returns its slot; INDEX_IN_USE if a flow holds its inside or outside key. */
  addFlow(flow: FastFlow): number {
    const op = "gateway.addFlow";
    checkInteger("protocol", flow.protocol, 0, 255);
    checkPeer(op, flow.peer);
    const client = checkAddress(op, "client", flow.client);
    checkAddress(op, "proxy", flow.proxy, client.length);
    checkAddress(op, "real", flow.real, client.length);
    checkInteger("clientPort", flow.clientPort, 0, 0xffff);
    checkInteger("port", flow.port, 0, 0xffff);
    checkInteger("outsidePort", flow.outsidePort, 0, 0xffff);
    const tcp = GATEWAY_TCP_STATES.indexOf(flow.tcp);
    if (tcp < 0) throw new EngineError("BAD_ARGUMENT", `${op}: tcp must be one of ${GATEWAY_TCP_STATES.join(", ")}`);
    if (typeof flow.expiresAt !== "number" || Number.isNaN(flow.expiresAt)) throw new EngineError("BAD_ARGUMENT", `${op}: expiresAt must be a time in ms`);
    if (this.rules.get(flow.rule)?.peer !== flow.peer) throw new EngineError("BAD_ARGUMENT", `${op}: rule ${String(flow.rule)} is not a rule of peer ${flow.peer}`);
    const slot = this.freeFlows.pop();
    if (slot === undefined) throw new EngineError("TABLE_FULL", `${op}: all ${this.maxFlows} flow slots are in use`);
    const s = this.scratch;
    this.mem.set(flow.client, s);
    this.mem.set(flow.proxy, s + 16);
    this.mem.set(flow.real, s + 32);
    const rc = this.x.gatewayFlowSet(
      slot, client.length === 4 ? 4 : 6, flow.protocol, s, flow.clientPort, s + 16, flow.port, s + 32, flow.outsidePort, tcp,
      flow.expiresAt, flow.rule, flow.peer,
    );
    if (rc !== RESULT_OK) {
      this.freeFlows.push(slot);
      if (rc === RESULT_INDEX_IN_USE) throw new EngineError("INDEX_IN_USE", `${op}: a flow already holds its inside or outside key`);
      throw new EngineError("BAD_ARGUMENT", `${op}: engine refused the flow (code ${rc}): its rule must be a filters-only rule`);
    }
    this.flows.set(slot, { ...flow, client: flow.client.slice(), proxy: flow.proxy.slice(), real: flow.real.slice() });
    return slot;
  }

  removeFlow(slot: number): void {
    if (!this.flows.has(slot)) throw new EngineError("NOT_FOUND", `gateway.removeFlow: slot ${String(slot)} holds no flow`);
    this.x.gatewayFlowRemove(slot);
    this.flows.delete(slot);
    this.freeFlows.push(slot);
  }

  /** The slot of the flow with this inside key (client, client port, proxy, port) or, outside, (client, outside port, real, port). */
  findFlow(side: "inside" | "outside", protocol: number, client: Uint8Array, clientPort: number, other: Uint8Array, port: number): number | undefined {
    const op = "gateway.findFlow";
    checkInteger("protocol", protocol, 0, 255);
    checkAddress(op, "client", client);
    checkAddress(op, "address", other, client.length);
    checkInteger("clientPort", clientPort, 0, 0xffff);
    checkInteger("port", port, 0, 0xffff);
    this.mem.set(client, this.scratch);
    this.mem.set(other, this.scratch + 16);
    const slot = this.x.gatewayFlowLookup(side === "outside" ? 1 : 0, client.length === 4 ? 4 : 6, protocol, this.scratch, clientPort, this.scratch + 16, port);
    return slot < 0 ? undefined : slot;
  }

  /** The flow in slot as installed (its key, addresses and rule), if any. */
  flow(slot: number): Readonly<FastFlow> | undefined {
    return this.flows.get(slot);
  }

  /** The flow's state as the batches left it, if the slot holds one. */
  flowState(slot: number): FastFlowState | undefined {
    if (!this.flows.has(slot)) return undefined;
    return {
      tcp: GATEWAY_TCP_STATES[this.x.gatewayFlowTcpState(slot)]!,
      expiresAt: this.x.gatewayFlowExpiresAt(slot),
      lastUsed: this.x.gatewayFlowLastUsed(slot),
    };
  }

  /** The slots of a client's flows. */
  flowsOf(peer: number): number[] {
    const slots: number[] = [];
    for (const [slot, flow] of this.flows) if (flow.peer === peer) slots.push(slot);
    return slots;
  }

  get flowCount(): number {
    return this.x.gatewayFlowCount();
  }

  /** The flows (live ones) batches hit since the last call, and clears the list. */
  touched(): number[] {
    const count = this.x.gatewayTouchedCount();
    const list = new Uint32Array(this.mem.buffer, this.x.gatewayTouchedPtr(), count);
    const out = Array.from(list).filter((slot) => this.flows.has(slot));
    this.x.gatewayClearTouched();
    return out;
  }

  // --- 3. The batch ---

  /** Empties the batch; views from packet() must not be used after this. */
  reset(): void {
    this.cursor = 0;
    this.count = 0;
  }

  get length(): number {
    return this.count;
  }

  /**
   * Copies a packet in; returns its index. peer: for fromClients, the client's peer id (an id the
   * tables do not hold sends the packet Slow).
   */
  add(packet: Uint8Array, peer = 0): number {
    checkBytes("gateway.add", "packet", packet);
    checkPeer("gateway.add", peer);
    checkInteger("packet length", packet.length, 0, MAX_MESSAGE_SIZE);
    if (this.count >= this.maxPackets) throw new EngineError("BATCH_FULL", `gateway.add: already holds ${this.maxPackets} packets`);
    const size = align16(packet.length);
    if (this.cursor + size > this.arenaBytes) throw new EngineError("ARENA_FULL", `gateway.add: ${size} more bytes do not fit the arena`);
    const i = this.count++ * DESC_WORDS;
    this.desc[i + DESC_OFFSET] = this.cursor;
    this.desc[i + DESC_LENGTH] = packet.length;
    this.desc[i + DESC_SESSION] = peer;
    this.desc[i + DESC_STATUS] = 0;
    this.mem.set(packet, this.arena + this.cursor);
    this.cursor += size;
    return this.count - 1;
  }

  /**
   * Decides packets from clients' tunnels, from index start on; with stopAtSlow it stops after the
   * first Slow packet and returns the index after it (else the batch length).
   */
  fromClients(now: number, options: { start?: number; stopAtSlow?: boolean } = {}): number {
    const start = this.checkRun("gateway.fromClients", now, options.start);
    return this.x.gatewayFromClients(start, this.count, 0, options.stopAtSlow ? GATEWAY_STOP_AT_SLOW : 0, now);
  }

  /** Decides packets from the network to clients, as fromClients; peer(i) then names the client. */
  fromResources(now: number, options: { start?: number; stopAtSlow?: boolean } = {}): number {
    const start = this.checkRun("gateway.fromResources", now, options.start);
    return this.x.gatewayFromResources(start, this.count, 0, options.stopAtSlow ? GATEWAY_STOP_AT_SLOW : 0, now);
  }

  /**
   * Decides a transport batch after open() and checkInbound(): each packet still Ok goes through the
   * fast path as from the client its session's peer id names; its status is then a GatewayStatus.
   */
  fromClientsOpened(batch: TransportBatch, now: number): void {
    this.checkRun("gateway.fromClientsOpened", now, 0);
    this.x.gatewayFromClients(0, batch.length, MESSAGE_TRANSPORT_HEADER_SIZE, GATEWAY_BY_SESSION, now);
  }

  status(i: number): GatewayStatus {
    return this.desc[this.index(i) + DESC_STATUS] as GatewayStatus;
  }

  /** Packet i: after a forward, the IP packet alone (translated, padding cut); otherwise as added. */
  packet(i: number): Uint8Array {
    const at = this.index(i);
    const offset = this.arena + this.desc[at + DESC_OFFSET]!;
    return this.mem.subarray(offset, offset + this.desc[at + DESC_LENGTH]!);
  }

  /** After fromResources: the peer id of the client packet i goes to, if its destination is one's. */
  peer(i: number): number | undefined {
    const peer = this.desc[this.index(i) + DESC_SESSION]!;
    return peer === NO_PEER ? undefined : peer;
  }

  // --- The parser and rewrites, for tests against daemons/proto/ip ---

  /** Parses a packet as the fast path does. */
  parse(packet: Uint8Array): FastParse {
    checkBytes("gateway.parse", "packet", packet);
    const room = this.x.scratchSize() - 4 * IP_VIEW_WORDS;
    if (packet.length > room) throw new EngineError("TOO_LARGE", `gateway.parse: ${packet.length} bytes exceed ${room}`);
    const out = this.scratch;
    const at = out + 4 * IP_VIEW_WORDS;
    this.mem.set(packet, at);
    const error = this.x.ipParseAt(at, packet.length, out);
    if (error !== 0) return { ok: false, error: IP_PARSE_ERRORS[error - 1]! };
    const w = new Uint32Array(this.mem.buffer, out, IP_VIEW_WORDS);
    const view: FastParse = {
      ok: true, version: w[0]!, headerLength: w[1]!, length: w[2]!, protocol: w[3]!, fragmentOffset: w[4]!, moreFragments: w[5] === 1,
    };
    if (w[6] === 1) {
      view.srcPort = w[7]!;
      view.dstPort = w[8]!;
      if (view.protocol === 6) view.tcpFlags = w[9]!;
    }
    if (w[10] === 1) {
      view.icmpType = w[11]!;
      view.icmpCode = w[12]!;
    }
    if (w[13] === 1) view.icmpIdentifier = w[14]!;
    return view;
  }

  /**
   * Rewrites a copy of the packet with the fast path's incremental checksum updates: an address
   * (Uint8Array) at the source or destination, a TCP or UDP port, or the echo identifier (end
   * ignored). Returns the copy, or the parse error.
   */
  rewrite(packet: Uint8Array, what: "address" | "port" | "identifier", end: "src" | "dst", value: Uint8Array | number): Uint8Array | { error: string } {
    checkBytes("gateway.rewrite", "packet", packet);
    const room = this.x.scratchSize() - 16;
    if (packet.length > room) throw new EngineError("TOO_LARGE", `gateway.rewrite: ${packet.length} bytes exceed ${room}`);
    const at = this.scratch + 16;
    this.mem.set(packet, at);
    let arg: number;
    if (what === "address") {
      checkAddress("gateway.rewrite", "address", value);
      this.mem.set(value as Uint8Array, this.scratch);
      arg = this.scratch;
    } else {
      checkInteger(what, value, 0, 0xffff);
      arg = value;
    }
    const op = what === "address" ? 0 : what === "port" ? 1 : 2;
    const error = this.x.ipRewriteAt(at, packet.length, op, end === "dst" ? 1 : 0, arg);
    if (error !== 0) return { error: IP_PARSE_ERRORS[error - 1]! };
    return this.mem.slice(at, at + packet.length);
  }

  // --- Helpers ---

  private writeRule(op: string, slot: number, peer: number, prefix: Prefix | undefined, filters: FastFilters): void {
    this.checkClientPeer(op, peer);
    if (!this.clientsLive.has(peer)) throw new EngineError("NOT_FOUND", `${op}: peer ${peer} is not a client (setClient first)`);
    let version = 0;
    let length = 0;
    const s = this.scratch;
    if (prefix !== undefined) {
      const address = checkAddress(op, "prefix.address", prefix.address);
      const bits = address.length * 8;
      checkInteger("prefix.length", prefix.length, 0, bits);
      version = address.length === 4 ? 4 : 6;
      length = prefix.length;
      this.mem.set(address, s);
    }
    if (typeof filters !== "object" || filters === null) throw new EngineError("BAD_ARGUMENT", `${op}: filters must be compiled filters`);
    const tcp = filters.tcp ?? [];
    const udp = filters.udp ?? [];
    let flags = (filters.all ? GATEWAY_FILTER_ALL : 0) | (filters.icmp ? GATEWAY_FILTER_ICMP : 0);
    const ranges = [...tcp, ...udp];
    for (const range of ranges) {
      checkInteger("range.start", range.start, 0, 0xffff);
      checkInteger("range.end", range.end, range.start, 0xffff);
    }
    const fits = ranges.length <= GATEWAY_RULE_MAX_RANGES;
    if (!fits && !filters.all) flags |= GATEWAY_FILTER_SLOW;
    const words = new Uint32Array(this.mem.buffer, s + 16, GATEWAY_RULE_MAX_RANGES);
    if (fits) ranges.forEach((r, i) => (words[i] = ((r.start << 16) | r.end) >>> 0));
    const kind = prefix === undefined ? GATEWAY_RULE_FILTERS : GATEWAY_RULE_PREFIX;
    const rc = this.x.gatewayRuleSet(slot, peer, kind, version, s, length, flags, fits ? tcp.length : 0, fits ? udp.length : 0, s + 16);
    if (rc !== RESULT_OK) throw new EngineError("BAD_ARGUMENT", `${op}: engine refused the rule (code ${rc})`);
  }

  private checkClientPeer(op: string, peer: number): void {
    checkPeer(op, peer);
    if (peer >= this.maxClients) throw new EngineError("BAD_PEER", `${op}: peer must be below maxClients (${this.maxClients}), got ${peer}`);
  }

  private checkRun(op: string, now: number, start = 0): number {
    if (!this.configured) throw new EngineError("NOT_CONFIGURED", `${op}: call configure() first`);
    if (typeof now !== "number" || !Number.isFinite(now)) throw new EngineError("BAD_ARGUMENT", `${op}: now must be a finite time in ms`);
    checkInteger("start", start, 0, this.count);
    return start;
  }

  private index(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new EngineError("BAD_ARGUMENT", `gateway: packet index ${i} is outside 0..${this.count - 1}`);
    }
    return i * DESC_WORDS;
  }
}
