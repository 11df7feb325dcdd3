// The gateway's packet fast path: the common case of daemons/proto/gateway/state.ts (GatewayState,
// the oracle and the source of truth) decided for a whole batch in one call, over tables the
// TypeScript control plane fills. Whatever the tables do not hold goes back as SLOW, so GatewayState
// decides it; a packet never traps (malformed: BAD_INNER_PACKET).
//
// Tables (memory laid out once by gatewayInit):
//   clients    by peer id: tunnel addresses (anti-spoofing), flags, the head of its rule list;
//   rules      a prefix (or none, for a DNS resource) and its compiled filters, listed per client;
//              a generation number tells a flow whether the rule it names is still the one it knew;
//   addresses  client tunnel address → peer id (open addressing, keys inline);
//   proxies    (peer, proxy address) → the filters-only rule of the DNS resource it was mapped to
//              (open addressing, keys inline), as GatewayState's per-client proxy map;
//   flows      DNS-resource NAT flows, found from inside (protocol, client, client port, proxy, port)
//              and from outside (protocol, client, outside port, real, port); both indices are open
//              addressing with backward-shift deletion, holding slot + 1;
//   touched    the flows a batch hit, for the control plane to carry their timers back to its own.
//
// From clients, per descriptor (IP packet at offset + headroom; the peer id in the session field,
// or with bySession the peer of the session slot there, skipping packets already not OK):
//   1. past the control plane's deadline: SLOW (an authorization may have expired);
//   2. parse (BAD_INNER_PACKET); the client must be held (else SLOW); the source must be its tunnel
//      address of that family (SOURCE_NOT_ALLOWED); fragments: FRAGMENT;
//   3. UDP to the gateway's own tunnel address on the control port: SLOW (a control message);
//   4. a destination the client mapped as a proxy IP: its resource's filters refuse (REFUSED), or a
//      packet NAT cannot track (not TCP, UDP or an echo request: REFUSED), or a live inside flow whose
//      rule is current translates it (destination → real address, source port → outside port, with
//      incremental checksums) and it is forwarded; no flow yet: SLOW. A destination in the proxy
//      ranges the client did not map: SLOW if not all its proxies are held, else on to 5.;
//   5. otherwise (SLOW if not all of the client's rules are held) the client's prefix rules of the
//      longest length holding the destination: any of them allowing the packet forwards it, else a
//      rule too complex to hold (SLOW), else REFUSED; no rule: SLOW if the client has what the
//      engine does not hold (internet), else REFUSED.
//   Forwarded packets get length := the IP packet's own length.
// From resources, per descriptor (IP packet at offset + headroom):
//   1. deadline: SLOW; parse: BAD_INNER_PACKET; the destination must be a client's tunnel address
//      (UNKNOWN_CLIENT, or SLOW while the address table is incomplete); fragments: FRAGMENT;
//   2. TCP, UDP and echo replies: a live outside flow is translated back (source → proxy address,
//      destination port → the client's) and forwarded; without one they go as they are, unless the
//      client's flows are not all held (SLOW);
//   3. ICMP errors (which may quote a NAT flow): SLOW; anything else goes as it is.
//   session := the client's peer id.
// Each flow hit refreshes the flow as NatTable.touch does (TCP: FIN or RST → closing, the resource's
// ACK while opening → established; the timeout of its state from now) and lists it as touched.

import {
  IPV4_VERSION, IPV6_VERSION, NO_PEER, PARSE_OK, PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP,
  ICMP_TYPE_DESTINATION_UNREACHABLE, ICMP_TYPE_PARAMETER_PROBLEM, ICMP_TYPE_REDIRECT, ICMP_TYPE_SOURCE_QUENCH,
  ICMP_TYPE_TIME_EXCEEDED, ICMPV6_INFORMATIONAL_MIN_TYPE, RESULT_BAD_ARGUMENT, RESULT_INDEX_IN_USE, RESULT_OK,
  RESULT_TABLE_FULL, STATUS_BAD_INNER_PACKET, STATUS_GATEWAY_FRAGMENT, STATUS_GATEWAY_REFUSED, STATUS_GATEWAY_SLOW,
  STATUS_GATEWAY_UNKNOWN_CLIENT, STATUS_OK, STATUS_OUT_OF_BOUNDS, STATUS_SOURCE_NOT_ALLOWED, TCP_FLAG_ACK, TCP_FLAG_FIN,
  TCP_FLAG_RST,
} from "./constants";
import {
  addressOffset, isEchoRequest, parsePacket, pDstPort, pFragmentOffset, pHasIcmp, pHasIdentifier, pHasPorts,
  pIcmpIdentifier, pIcmpType, pLength, pMoreFragments, pProtocol, pSrcPort, pTcpFlags, pVersion, rewriteAddress,
  rewriteIdentifier, rewritePort,
} from "./packet";
import { sessionPeer } from "./sessions";
import { DESC_LENGTH, DESC_OFFSET, DESC_SESSION, DESC_SIZE, DESC_STATUS } from "./transport";

export const MAX_GATEWAY_CLIENTS: u32 = 1 << 20;
export const MAX_GATEWAY_RULES: u32 = 1 << 22;
export const MAX_GATEWAY_FLOWS: u32 = 1 << 22;
/** TCP and UDP port ranges a rule holds inline; a filter list with more goes to the slow path. */
export const RULE_MAX_RANGES: u32 = 8;

// Client flags.
export const CLIENT_LIVE: u32 = 1;
/** A destination no rule holds goes SLOW (an internet resource, or rules the table could not take). */
export const CLIENT_SLOW_UNMATCHED: u32 = 2;
/** Not every NAT flow of the client is held: an answer without a flow cannot be passed as it is. */
export const CLIENT_FLOWS_INCOMPLETE: u32 = 4;
/** Not every rule of the client is held: a longest match among those held proves nothing. */
export const CLIENT_RULES_INCOMPLETE: u32 = 8;
/** Not every proxy IP the client mapped is held: an unmapped-looking one may be mapped. */
export const CLIENT_PROXIES_INCOMPLETE: u32 = 16;

// Rule kinds and filter flags.
export const RULE_FREE: u32 = 0;
export const RULE_PREFIX: u32 = 1;
/** A DNS resource: filters only, which its flows use. */
export const RULE_FILTERS: u32 = 2;
export const FILTER_ALL: u32 = 1;
export const FILTER_ICMP: u32 = 2;
/** The filters did not fit: a packet this rule would decide goes SLOW. */
export const FILTER_SLOW: u32 = 4;

// TCP states of a flow, as NatFlow.tcp.
export const TCP_OPENING: u32 = 0;
export const TCP_ESTABLISHED: u32 = 1;
export const TCP_CLOSING: u32 = 2;

// Client layout.
const C_FLAGS: usize = 0;
const C_FIRST_RULE: usize = 4;
const C_V4: usize = 8;
const C_V6: usize = 16;
const CLIENT_SIZE: usize = 32;

// Rule layout.
const R_KIND: usize = 0;
const R_VERSION: usize = 1;
const R_LENGTH: usize = 2;
const R_FILTERS: usize = 3;
const R_TCP_COUNT: usize = 4;
const R_UDP_COUNT: usize = 5;
const R_PEER: usize = 8;
const R_NEXT: usize = 12;
const R_ADDR: usize = 16;
/** u32 each, start << 16 | end, the TCP ranges first. */
const R_RANGES: usize = 32;
const R_GEN: usize = 64;
const RULE_SIZE: usize = 80;

// Flow layout.
const F_LIVE: usize = 0;
const F_VERSION: usize = 1;
const F_PROTOCOL: usize = 2;
const F_TCP: usize = 3;
const F_CLIENT_PORT: usize = 4;
const F_PORT: usize = 6;
const F_OUTSIDE_PORT: usize = 8;
const F_TOUCHED: usize = 10;
const F_RULE: usize = 12;
const F_PEER: usize = 16;
const F_RULE_GEN: usize = 20;
const F_EXPIRES: usize = 24;
const F_LAST_USED: usize = 32;
const F_CLIENT: usize = 40;
const F_PROXY: usize = 56;
const F_REAL: usize = 72;
const FLOW_SIZE: usize = 96;

// Keyed entry layout, inline in the address and proxy indices: (owner, version, address) → value.
const K_ADDR: usize = 0;
/** 0: an empty entry. */
const K_VERSION: usize = 16;
/** The proxy index's peer; NO_PEER in the address index. */
const K_OWNER: usize = 20;
/** The address index's peer; the proxy index's rule. */
const K_VALUE: usize = 24;
/** The proxy index: the rule's generation when it was named. */
const K_GEN: usize = 28;
const KEYED_SIZE: usize = 32;

// Config layout.
const G_OWN4: usize = 0;
const G_OWN6: usize = 16;
const G_PROXY4: usize = 32;
const G_PROXY6: usize = 48;
const CONFIG_SIZE: usize = 64;

let clients: usize = 0;
let maxClients: u32 = 0;
let rules: usize = 0;
let maxRules: u32 = 0;
let flows: usize = 0;
let maxFlows: u32 = 0;
let insideIndex: usize = 0;
let outsideIndex: usize = 0;
let flowMask: u32 = 0;
let addresses: usize = 0;
let addressMask: u32 = 0;
let proxies: usize = 0;
let proxyMask: u32 = 0;
let liveProxies: u32 = 0;
let touched: usize = 0;
let touchedCount: u32 = 0;
let config: usize = 0;
let liveFlows: u32 = 0;
let liveRules: u32 = 0;
let liveAddresses: u32 = 0;

let proxy4Length: u32 = 33;
let proxy6Length: u32 = 129;
let controlPort: u32 = 0x10000;
let udpTimeout: f64 = 0;
let tcpEstablishedTimeout: f64 = 0;
let tcpTransitoryTimeout: f64 = 0;
let icmpTimeout: f64 = 0;
let deadline: f64 = Infinity;
let addressesIncomplete: bool = false;

let arena: usize = 0;
let arenaBytes: usize = 0;
let descriptors: usize = 0;
let batchSize: u32 = 0;

@inline function pow2Above(n: u32): u32 {
  let cap: u32 = 16;
  while (cap < n) cap <<= 1;
  return cap;
}

/** Bytes gatewayInit needs for these table sizes. */
export function gatewayTableBytes(clientCount: u32, ruleCount: u32, flowCount: u32, proxyCount: u32): usize {
  return <usize>clientCount * CLIENT_SIZE + <usize>ruleCount * RULE_SIZE + <usize>flowCount * (FLOW_SIZE + 4)
    + (<usize>pow2Above(flowCount * 2) << 3) + <usize>(pow2Above(clientCount * 4) + pow2Above(proxyCount * 2)) * KEYED_SIZE + CONFIG_SIZE;
}

export function setGatewayMemory(
  ptr: usize, clientCount: u32, ruleCount: u32, flowCount: u32, proxyCount: u32, arenaPtr: usize, arenaSize: usize, descPtr: usize, batch: u32,
): void {
  memory.fill(ptr, 0, gatewayTableBytes(clientCount, ruleCount, flowCount, proxyCount));
  clients = ptr;
  maxClients = clientCount;
  rules = clients + <usize>clientCount * CLIENT_SIZE;
  maxRules = ruleCount;
  flows = rules + <usize>ruleCount * RULE_SIZE;
  maxFlows = flowCount;
  const flowCap = pow2Above(flowCount * 2);
  flowMask = flowCap - 1;
  insideIndex = flows + <usize>flowCount * FLOW_SIZE;
  outsideIndex = insideIndex + (<usize>flowCap << 2);
  touched = outsideIndex + (<usize>flowCap << 2);
  const addressCap = pow2Above(clientCount * 4);
  addressMask = addressCap - 1;
  addresses = touched + (<usize>flowCount << 2);
  proxies = addresses + <usize>addressCap * KEYED_SIZE;
  const proxyCap = pow2Above(proxyCount * 2);
  proxyMask = proxyCap - 1;
  config = proxies + <usize>proxyCap * KEYED_SIZE;
  arena = arenaPtr;
  arenaBytes = arenaSize;
  descriptors = descPtr;
  batchSize = batch;
}

// --- Configuration ---

/**
 * The gateway's own tunnel addresses (4 and 16 bytes) and control port, the proxy ranges (4- and
 * 16-byte prefixes with their lengths) and the NAT timeouts in ms, as GatewayState has them.
 */
export function configureGateway(
  own4: usize, own6: usize, port: u32, proxy4: usize, length4: u32, proxy6: usize, length6: u32,
  udp: f64, tcpEstablished: f64, tcpTransitory: f64, icmp: f64,
): i32 {
  if (config == 0) return RESULT_BAD_ARGUMENT;
  if (port > 0xffff || length4 > 32 || length6 > 128) return RESULT_BAD_ARGUMENT;
  if (!(udp >= 0 && tcpEstablished >= 0 && tcpTransitory >= 0 && icmp >= 0)) return RESULT_BAD_ARGUMENT;
  memory.copy(config + G_OWN4, own4, 4);
  memory.copy(config + G_OWN6, own6, 16);
  memory.copy(config + G_PROXY4, proxy4, 4);
  memory.copy(config + G_PROXY6, proxy6, 16);
  controlPort = port;
  proxy4Length = length4;
  proxy6Length = length6;
  udpTimeout = udp;
  tcpEstablishedTimeout = tcpEstablished;
  tcpTransitoryTimeout = tcpTransitory;
  icmpTimeout = icmp;
  return RESULT_OK;
}

/** Batches at or after this time go SLOW: the earliest moment the control plane's tables may be stale. */
export function setGatewayDeadline(at: f64): void {
  deadline = at;
}

export function setAddressesIncomplete(incomplete: bool): void {
  addressesIncomplete = incomplete;
}

// --- Hashing, and the keyed indices (tunnel addresses, proxy IPs) ---

@inline function addressEqual(a: usize, b: usize, v6: bool): bool {
  if (!v6) return load<u32>(a) == load<u32>(b);
  return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8);
}

/** Backward-shift deletion: whether the entry at j, whose home is home, may move into the hole (its home is outside (hole, j]). */
@inline function shifts(hole: u32, j: u32, home: u32): bool {
  return hole <= j ? !(home > hole && home <= j) : !(home > hole || home <= j);
}

@inline function mix(h: u32, w: u32): u32 {
  return (h ^ w) * 0x9e3779b1;
}

@inline function hashAddress(h: u32, a: usize, v6: bool): u32 {
  h = mix(h, load<u32>(a));
  if (v6) {
    h = mix(h, load<u32>(a, 4));
    h = mix(h, load<u32>(a, 8));
    h = mix(h, load<u32>(a, 12));
  }
  return h;
}

// Open addressing over keyed entries, backward-shift deletion.

@inline function keyedHome(mask: u32, owner: u32, version: u32, a: usize): u32 {
  const h = hashAddress(mix(version, owner), a, version == IPV6_VERSION);
  return (h ^ (h >>> 15)) & mask;
}

/** The entry of (owner, version, address) in the index at base, or 0. */
function keyedFind(base: usize, mask: u32, owner: u32, version: u32, a: usize): usize {
  let i = keyedHome(mask, owner, version, a);
  while (true) {
    const e = base + <usize>i * KEYED_SIZE;
    const v = <u32>load<u8>(e, K_VERSION);
    if (v == 0) return 0;
    if (v == version && load<u32>(e, K_OWNER) == owner && addressEqual(e + K_ADDR, a, version == IPV6_VERSION)) return e;
    i = (i + 1) & mask;
  }
}

/** A new entry for a key the index does not hold (the caller keeps it at most half full). */
function keyedInsert(base: usize, mask: u32, owner: u32, version: u32, a: usize): usize {
  let i = keyedHome(mask, owner, version, a);
  while (load<u8>(base + <usize>i * KEYED_SIZE, K_VERSION) != 0) i = (i + 1) & mask;
  const e = base + <usize>i * KEYED_SIZE;
  memory.fill(e, 0, KEYED_SIZE);
  memory.copy(e + K_ADDR, a, version == IPV6_VERSION ? 16 : 4);
  store<u8>(e, <u8>version, K_VERSION);
  store<u32>(e, owner, K_OWNER);
  return e;
}

function keyedRemove(base: usize, mask: u32, found: usize): void {
  let hole = <u32>((found - base) / KEYED_SIZE);
  let j = (hole + 1) & mask;
  while (true) {
    const e = base + <usize>j * KEYED_SIZE;
    const v = <u32>load<u8>(e, K_VERSION);
    if (v == 0) break;
    if (shifts(hole, j, keyedHome(mask, load<u32>(e, K_OWNER), v, e + K_ADDR))) {
      memory.copy(base + <usize>hole * KEYED_SIZE, e, KEYED_SIZE);
      hole = j;
    }
    j = (j + 1) & mask;
  }
  memory.fill(base + <usize>hole * KEYED_SIZE, 0, KEYED_SIZE);
}

@inline function validVersion(version: u32): bool {
  return version == IPV4_VERSION || version == IPV6_VERSION;
}

// --- Tunnel addresses ---

/** The peer whose tunnel address this is, or NO_PEER. */
export function lookupTunnelAddress(version: u32, a: usize): u32 {
  if (!validVersion(version)) return NO_PEER;
  const e = keyedFind(addresses, addressMask, NO_PEER, version, a);
  return e == 0 ? NO_PEER : load<u32>(e, K_VALUE);
}

/** Maps a tunnel address to peer, replacing whatever peer had it. */
export function setTunnelAddress(version: u32, a: usize, peer: u32): i32 {
  if (!validVersion(version) || peer >= maxClients) return RESULT_BAD_ARGUMENT;
  let e = keyedFind(addresses, addressMask, NO_PEER, version, a);
  if (e == 0) {
    // Half full at most (two addresses per client fit): probes stay short, and always meet an empty entry.
    if (liveAddresses >= (addressMask + 1) >>> 1) return RESULT_TABLE_FULL;
    e = keyedInsert(addresses, addressMask, NO_PEER, version, a);
    liveAddresses++;
  }
  store<u32>(e, peer, K_VALUE);
  return RESULT_OK;
}

/** Unmaps a tunnel address, whichever peer it names. */
export function removeTunnelAddress(version: u32, a: usize): i32 {
  if (!validVersion(version)) return RESULT_BAD_ARGUMENT;
  const e = keyedFind(addresses, addressMask, NO_PEER, version, a);
  if (e == 0) return RESULT_BAD_ARGUMENT;
  keyedRemove(addresses, addressMask, e);
  liveAddresses--;
  return RESULT_OK;
}

// --- Proxy IPs ---

/** Maps the client's proxy address to the filters-only rule of the DNS resource it stands for. */
export function setProxy(peer: u32, version: u32, a: usize, rule: u32): i32 {
  if (!validVersion(version) || peer >= maxClients || rule >= maxRules) return RESULT_BAD_ARGUMENT;
  const r = rulePtr(rule);
  if (<u32>load<u8>(r, R_KIND) != RULE_FILTERS || load<u32>(r, R_PEER) != peer) return RESULT_BAD_ARGUMENT;
  let e = keyedFind(proxies, proxyMask, peer, version, a);
  if (e == 0) {
    if (liveProxies >= (proxyMask + 1) >>> 1) return RESULT_TABLE_FULL;
    e = keyedInsert(proxies, proxyMask, peer, version, a);
    liveProxies++;
  }
  store<u32>(e, rule, K_VALUE);
  store<u32>(e, load<u32>(r, R_GEN), K_GEN);
  return RESULT_OK;
}

export function removeProxy(peer: u32, version: u32, a: usize): i32 {
  if (!validVersion(version) || peer >= maxClients) return RESULT_BAD_ARGUMENT;
  const e = keyedFind(proxies, proxyMask, peer, version, a);
  if (e == 0) return RESULT_BAD_ARGUMENT;
  keyedRemove(proxies, proxyMask, e);
  liveProxies--;
  return RESULT_OK;
}

export function proxyCount(): u32 {
  return liveProxies;
}

// --- Clients ---

@inline function clientPtr(peer: u32): usize {
  return clients + <usize>peer * CLIENT_SIZE;
}

/** Sets a client's tunnel addresses and flags (CLIENT_LIVE is implied); its rules stay. */
export function setClient(peer: u32, v4: usize, v6: usize, flags: u32): i32 {
  if (peer >= maxClients) return RESULT_BAD_ARGUMENT;
  const c = clientPtr(peer);
  store<u32>(c, (flags & (CLIENT_SLOW_UNMATCHED | CLIENT_FLOWS_INCOMPLETE | CLIENT_RULES_INCOMPLETE | CLIENT_PROXIES_INCOMPLETE)) | CLIENT_LIVE, C_FLAGS);
  memory.copy(c + C_V4, v4, 4);
  memory.copy(c + C_V6, v6, 16);
  return RESULT_OK;
}

/** Forgets a client and frees its rules (their flows then go SLOW: their generation moved on). */
export function removeClient(peer: u32): i32 {
  if (peer >= maxClients) return RESULT_BAD_ARGUMENT;
  const c = clientPtr(peer);
  if ((load<u32>(c, C_FLAGS) & CLIENT_LIVE) == 0) return RESULT_BAD_ARGUMENT;
  let next = load<u32>(c, C_FIRST_RULE);
  while (next != 0) {
    const r = rulePtr(next - 1);
    next = load<u32>(r, R_NEXT);
    freeRule(r);
  }
  memory.fill(c, 0, CLIENT_SIZE);
  return RESULT_OK;
}

@inline function clientLive(peer: u32): bool {
  return peer < maxClients && (load<u32>(clientPtr(peer), C_FLAGS) & CLIENT_LIVE) != 0;
}

// --- Rules ---

@inline function rulePtr(slot: u32): usize {
  return rules + <usize>slot * RULE_SIZE;
}

function freeRule(r: usize): void {
  const gen = load<u32>(r, R_GEN);
  memory.fill(r, 0, RULE_SIZE);
  store<u32>(r, gen + 1, R_GEN);
  liveRules--;
}

/**
 * Puts a rule in slot for peer (a free slot, or one the peer already holds, rewritten in place so its
 * flows keep it): kind RULE_PREFIX (version, the 4- or 16-byte prefix at addr, length) or
 * RULE_FILTERS; filter flags and the TCP then UDP ranges (u32 start << 16 | end) at ranges.
 */
export function setRule(
  slot: u32, peer: u32, kind: u32, version: u32, addr: usize, length: u32, filterFlags: u32, tcpCount: u32, udpCount: u32, ranges: usize,
): i32 {
  if (slot >= maxRules || !clientLive(peer)) return RESULT_BAD_ARGUMENT;
  if (kind != RULE_PREFIX && kind != RULE_FILTERS) return RESULT_BAD_ARGUMENT;
  if (kind == RULE_PREFIX) {
    if (version != IPV4_VERSION && version != IPV6_VERSION) return RESULT_BAD_ARGUMENT;
    if (length > (version == IPV4_VERSION ? <u32>32 : <u32>128)) return RESULT_BAD_ARGUMENT;
  }
  if (tcpCount + udpCount > RULE_MAX_RANGES) return RESULT_BAD_ARGUMENT;
  const r = rulePtr(slot);
  const held = <u32>load<u8>(r, R_KIND);
  if (held != RULE_FREE && load<u32>(r, R_PEER) != peer) return RESULT_BAD_ARGUMENT;
  if (held == RULE_FREE) {
    const c = clientPtr(peer);
    store<u32>(r, load<u32>(c, C_FIRST_RULE), R_NEXT);
    store<u32>(c, slot + 1, C_FIRST_RULE);
    store<u32>(r, peer, R_PEER);
    liveRules++;
  }
  store<u8>(r, <u8>kind, R_KIND);
  store<u8>(r, <u8>version, R_VERSION);
  store<u8>(r, <u8>length, R_LENGTH);
  store<u8>(r, <u8>filterFlags, R_FILTERS);
  store<u8>(r, <u8>tcpCount, R_TCP_COUNT);
  store<u8>(r, <u8>udpCount, R_UDP_COUNT);
  memory.fill(r + R_ADDR, 0, 16);
  // Host bits are cleared, so a lookup compares whole bytes.
  if (kind == RULE_PREFIX) {
    const size = version == IPV4_VERSION ? <u32>4 : <u32>16;
    for (let i: u32 = 0; i < size; i++) {
      const bits = length > i * 8 ? min(length - i * 8, 8) : 0;
      const mask = bits == 0 ? 0 : (0xff << (8 - bits)) & 0xff;
      store<u8>(r + R_ADDR + i, <u8>(<u32>load<u8>(addr + i) & mask));
    }
  }
  memory.copy(r + R_RANGES, ranges, (tcpCount + udpCount) << 2);
  return RESULT_OK;
}

/** Frees a rule; flows that name it go SLOW from now on. */
export function removeRule(slot: u32): i32 {
  if (slot >= maxRules) return RESULT_BAD_ARGUMENT;
  const r = rulePtr(slot);
  if (<u32>load<u8>(r, R_KIND) == RULE_FREE) return RESULT_BAD_ARGUMENT;
  const c = clientPtr(load<u32>(r, R_PEER));
  // Unlink from the client's list.
  let link = c + C_FIRST_RULE;
  while (load<u32>(link) != slot + 1) link = rulePtr(load<u32>(link) - 1) + R_NEXT;
  store<u32>(link, load<u32>(r, R_NEXT));
  freeRule(r);
  return RESULT_OK;
}

export function ruleGeneration(slot: u32): u32 {
  return slot < maxRules ? load<u32>(rulePtr(slot), R_GEN) : 0;
}

export function ruleCount(): u32 {
  return liveRules;
}

/** 1 allow, 0 refuse, -1 slow: the rule's filters on the packet parsed last. */
function filtersDecide(r: usize): i32 {
  const flags = <u32>load<u8>(r, R_FILTERS);
  if (flags & FILTER_SLOW) return -1;
  if (flags & FILTER_ALL) return 1;
  if (pProtocol == PROTOCOL_TCP || pProtocol == PROTOCOL_UDP) {
    if (!pHasPorts) return 0;
    const tcpCount = <u32>load<u8>(r, R_TCP_COUNT);
    const start = pProtocol == PROTOCOL_TCP ? <u32>0 : tcpCount;
    const end = pProtocol == PROTOCOL_TCP ? tcpCount : tcpCount + <u32>load<u8>(r, R_UDP_COUNT);
    for (let i = start; i < end; i++) {
      const range = load<u32>(r + R_RANGES + (<usize>i << 2));
      if (pDstPort >= range >>> 16 && pDstPort <= (range & 0xffff)) return 1;
    }
    return 0;
  }
  if (pProtocol == PROTOCOL_ICMP) return pVersion == IPV4_VERSION && (flags & FILTER_ICMP) != 0 ? 1 : 0;
  if (pProtocol == PROTOCOL_ICMPV6) return pVersion == IPV6_VERSION && (flags & FILTER_ICMP) != 0 ? 1 : 0;
  return 0;
}

@inline function prefixHolds(r: usize, a: usize): bool {
  const length = <u32>load<u8>(r, R_LENGTH);
  const whole = length >>> 3;
  for (let i: u32 = 0; i < whole; i++) if (load<u8>(r + R_ADDR + i) != load<u8>(a + i)) return false;
  const rest = length & 7;
  if (rest == 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return <u32>load<u8>(r + R_ADDR + whole) == (<u32>load<u8>(a + whole) & mask);
}

// --- Flows ---

@inline function flowPtr(slot: u32): usize {
  return flows + <usize>slot * FLOW_SIZE;
}

@inline function flowHash(version: u32, protocol: u32, a: usize, portA: u32, b: usize, port: u32): u32 {
  const v6 = version == IPV6_VERSION;
  let h = mix(protocol | (version << 8), portA | (port << 16));
  h = hashAddress(h, a, v6);
  h = hashAddress(h, b, v6);
  return (h ^ (h >>> 15)) & flowMask;
}

@inline function insideHome(f: usize): u32 {
  return flowHash(load<u8>(f, F_VERSION), load<u8>(f, F_PROTOCOL), f + F_CLIENT, load<u16>(f, F_CLIENT_PORT), f + F_PROXY, load<u16>(f, F_PORT));
}

@inline function outsideHome(f: usize): u32 {
  return flowHash(load<u8>(f, F_VERSION), load<u8>(f, F_PROTOCOL), f + F_CLIENT, load<u16>(f, F_OUTSIDE_PORT), f + F_REAL, load<u16>(f, F_PORT));
}

/** The flow slot of an inside key (outside false) or outside key, or -1; expired flows included. */
function findFlow(outside: bool, version: u32, protocol: u32, client: usize, portA: u32, b: usize, port: u32): i32 {
  const table = outside ? outsideIndex : insideIndex;
  const v6 = version == IPV6_VERSION;
  let i = flowHash(version, protocol, client, portA, b, port);
  while (true) {
    const v = load<u32>(table + (<usize>i << 2));
    if (v == 0) return -1;
    const f = flowPtr(v - 1);
    if (
      <u32>load<u8>(f, F_VERSION) == version && <u32>load<u8>(f, F_PROTOCOL) == protocol && <u32>load<u16>(f, F_PORT) == port
      && <u32>load<u16>(f + (outside ? F_OUTSIDE_PORT : F_CLIENT_PORT)) == portA
      && addressEqual(f + F_CLIENT, client, v6) && addressEqual(f + (outside ? F_REAL : F_PROXY), b, v6)
    ) return <i32>(v - 1);
    i = (i + 1) & flowMask;
  }
}

function indexInsert(table: usize, home: u32, slot: u32): void {
  let i = home;
  while (load<u32>(table + (<usize>i << 2)) != 0) i = (i + 1) & flowMask;
  store<u32>(table + (<usize>i << 2), slot + 1);
}

function indexRemove(table: usize, home: u32, slot: u32, outside: bool): void {
  let i = home;
  while (load<u32>(table + (<usize>i << 2)) != slot + 1) i = (i + 1) & flowMask;
  let hole = i;
  let j = (i + 1) & flowMask;
  while (true) {
    const v = load<u32>(table + (<usize>j << 2));
    if (v == 0) break;
    if (shifts(hole, j, outside ? outsideHome(flowPtr(v - 1)) : insideHome(flowPtr(v - 1)))) {
      store<u32>(table + (<usize>hole << 2), v);
      hole = j;
    }
    j = (j + 1) & flowMask;
  }
  store<u32>(table + (<usize>hole << 2), 0);
}

/**
 * Installs a NAT flow in a free slot. Addresses are 4 or 16 bytes (version); rule names the
 * client's RULE_FILTERS rule whose filters the flow's packets must pass. INDEX_IN_USE if a flow
 * already holds the inside or the outside key (remove it first).
 */
export function setFlow(
  slot: u32, version: u32, protocol: u32, client: usize, clientPort: u32, proxy: usize, port: u32, real: usize, outsidePort: u32,
  tcp: u32, expiresAt: f64, rule: u32, peer: u32,
): i32 {
  if (slot >= maxFlows || load<u8>(flowPtr(slot), F_LIVE) != 0) return RESULT_BAD_ARGUMENT;
  if (version != IPV4_VERSION && version != IPV6_VERSION) return RESULT_BAD_ARGUMENT;
  if (protocol > 0xff || clientPort > 0xffff || port > 0xffff || outsidePort > 0xffff || tcp > TCP_CLOSING) return RESULT_BAD_ARGUMENT;
  if (rule >= maxRules || <u32>load<u8>(rulePtr(rule), R_KIND) != RULE_FILTERS || load<u32>(rulePtr(rule), R_PEER) != peer) return RESULT_BAD_ARGUMENT;
  if (findFlow(false, version, protocol, client, clientPort, proxy, port) >= 0) return RESULT_INDEX_IN_USE;
  if (findFlow(true, version, protocol, client, outsidePort, real, port) >= 0) return RESULT_INDEX_IN_USE;
  const f = flowPtr(slot);
  const size: usize = version == IPV6_VERSION ? 16 : 4;
  // The touched mark outlives the flow: the slot stays listed once, so the list never overflows.
  const listed = load<u8>(f, F_TOUCHED);
  memory.fill(f, 0, FLOW_SIZE);
  store<u8>(f, listed, F_TOUCHED);
  store<u8>(f, 1, F_LIVE);
  store<u8>(f, <u8>version, F_VERSION);
  store<u8>(f, <u8>protocol, F_PROTOCOL);
  store<u8>(f, <u8>tcp, F_TCP);
  store<u16>(f, <u16>clientPort, F_CLIENT_PORT);
  store<u16>(f, <u16>port, F_PORT);
  store<u16>(f, <u16>outsidePort, F_OUTSIDE_PORT);
  store<u32>(f, rule, F_RULE);
  store<u32>(f, load<u32>(rulePtr(rule), R_GEN), F_RULE_GEN);
  store<u32>(f, peer, F_PEER);
  store<f64>(f, expiresAt, F_EXPIRES);
  store<f64>(f, -Infinity, F_LAST_USED);
  memory.copy(f + F_CLIENT, client, size);
  memory.copy(f + F_PROXY, proxy, size);
  memory.copy(f + F_REAL, real, size);
  indexInsert(insideIndex, insideHome(f), slot);
  indexInsert(outsideIndex, outsideHome(f), slot);
  liveFlows++;
  return RESULT_OK;
}

export function removeFlow(slot: u32): i32 {
  if (slot >= maxFlows) return RESULT_BAD_ARGUMENT;
  const f = flowPtr(slot);
  if (load<u8>(f, F_LIVE) == 0) return RESULT_BAD_ARGUMENT;
  indexRemove(insideIndex, insideHome(f), slot, false);
  indexRemove(outsideIndex, outsideHome(f), slot, true);
  const listed = load<u8>(f, F_TOUCHED);
  memory.fill(f, 0, FLOW_SIZE);
  store<u8>(f, listed, F_TOUCHED);
  liveFlows--;
  return RESULT_OK;
}

export function flowLookup(outside: bool, version: u32, protocol: u32, client: usize, portA: u32, b: usize, port: u32): i32 {
  if (version != IPV4_VERSION && version != IPV6_VERSION) return -1;
  return findFlow(outside, version, protocol, client, portA, b, port);
}

/** The TCP state of a live flow, or -1. */
export function flowTcpState(slot: u32): i32 {
  if (slot >= maxFlows || load<u8>(flowPtr(slot), F_LIVE) == 0) return -1;
  return <i32>load<u8>(flowPtr(slot), F_TCP);
}

export function flowExpiresAt(slot: u32): f64 {
  if (slot >= maxFlows || load<u8>(flowPtr(slot), F_LIVE) == 0) return NaN;
  return load<f64>(flowPtr(slot), F_EXPIRES);
}

/** When a batch last hit the flow (-Infinity: never since installed). */
export function flowLastUsed(slot: u32): f64 {
  if (slot >= maxFlows || load<u8>(flowPtr(slot), F_LIVE) == 0) return NaN;
  return load<f64>(flowPtr(slot), F_LAST_USED);
}

export function flowCount(): u32 {
  return liveFlows;
}

/** The flows hit since the last clear: touchedCount() slots at touchedPtr() (some may since be removed). */
export function touchedPtr(): usize {
  return touched;
}

export function touchedFlows(): u32 {
  return touchedCount;
}

export function clearTouched(): void {
  for (let i: u32 = 0; i < touchedCount; i++) store<u8>(flowPtr(load<u32>(touched + (<usize>i << 2))), 0, F_TOUCHED);
  touchedCount = 0;
}

/** NatTable.touch: the flow's TCP state after this packet, and its timer from now. */
function touchFlow(slot: u32, fromResource: bool, now: f64): void {
  const f = flowPtr(slot);
  const protocol = <u32>load<u8>(f, F_PROTOCOL);
  let expires: f64;
  if (protocol == PROTOCOL_TCP) {
    let state = <u32>load<u8>(f, F_TCP);
    if (pTcpFlags & (TCP_FLAG_FIN | TCP_FLAG_RST)) state = TCP_CLOSING;
    else if (fromResource && state == TCP_OPENING && (pTcpFlags & TCP_FLAG_ACK) != 0) state = TCP_ESTABLISHED;
    store<u8>(f, <u8>state, F_TCP);
    expires = now + (state == TCP_ESTABLISHED ? tcpEstablishedTimeout : tcpTransitoryTimeout);
  } else if (protocol == PROTOCOL_UDP) {
    expires = now + udpTimeout;
  } else {
    expires = now + icmpTimeout;
  }
  store<f64>(f, expires, F_EXPIRES);
  store<f64>(f, now, F_LAST_USED);
  if (load<u8>(f, F_TOUCHED) == 0) {
    store<u8>(f, 1, F_TOUCHED);
    store<u32>(touched + (<usize>touchedCount << 2), slot);
    touchedCount++;
  }
}

/** The flow is live, unexpired at now, and its rule is the one it was installed with. */
@inline function flowUsable(slot: u32, now: f64): bool {
  const f = flowPtr(slot);
  if (!(load<f64>(f, F_EXPIRES) > now)) return false;
  const r = rulePtr(load<u32>(f, F_RULE));
  return load<u32>(r, R_GEN) == load<u32>(f, F_RULE_GEN) && <u32>load<u8>(r, R_KIND) == RULE_FILTERS;
}

// --- The batches ---

@inline function fits(offset: usize, len: usize): bool {
  return offset <= arenaBytes && len <= arenaBytes - offset;
}

@inline function inProxyRange(p: usize): bool {
  const v4 = pVersion == IPV4_VERSION;
  const length = v4 ? proxy4Length : proxy6Length;
  const prefix = config + (v4 ? G_PROXY4 : G_PROXY6);
  const a = p + addressOffset(true);
  const whole = length >>> 3;
  for (let i: u32 = 0; i < whole; i++) if (load<u8>(prefix + i) != load<u8>(a + i)) return false;
  const rest = length & 7;
  if (rest == 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (<u32>load<u8>(prefix + whole) & mask) == (<u32>load<u8>(a + whole) & mask);
}

/** Step 4 for a proxy IP the client mapped (proxy entry e). */
function toProxy(d: usize, p: usize, e: usize, src: usize, dst: usize, now: f64): u32 {
  const r = rulePtr(load<u32>(e, K_VALUE));
  if (load<u32>(r, R_GEN) != load<u32>(e, K_GEN) || <u32>load<u8>(r, R_KIND) != RULE_FILTERS) return STATUS_GATEWAY_SLOW;
  const verdict = filtersDecide(r);
  if (verdict < 0) return STATUS_GATEWAY_SLOW;
  if (verdict == 0) return STATUS_GATEWAY_REFUSED;
  let clientPort: u32 = 0;
  let port: u32 = 0;
  if ((pProtocol == PROTOCOL_TCP || pProtocol == PROTOCOL_UDP) && pHasPorts) {
    clientPort = pSrcPort;
    port = pDstPort;
  } else if (pHasIdentifier && isEchoRequest()) {
    clientPort = pIcmpIdentifier;
  } else {
    // Nothing else can be told apart on the way back.
    return STATUS_GATEWAY_REFUSED;
  }
  const slot = findFlow(false, pVersion, pProtocol, src, clientPort, dst, port);
  if (slot < 0 || !flowUsable(<u32>slot, now)) return STATUS_GATEWAY_SLOW;
  const f = flowPtr(<u32>slot);
  touchFlow(<u32>slot, false, now);
  rewriteAddress(p, true, f + F_REAL);
  const outsidePort = <u32>load<u16>(f, F_OUTSIDE_PORT);
  if (outsidePort != clientPort) {
    if (pHasPorts) rewritePort(p, false, outsidePort);
    else rewriteIdentifier(p, outsidePort);
  }
  store<u32>(d, pLength, DESC_LENGTH);
  return STATUS_OK;
}

function fromClient(d: usize, headroom: usize, peer: u32, now: f64): u32 {
  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = load<u32>(d, DESC_LENGTH);
  if (!fits(offset, <usize>len + headroom)) return STATUS_OUT_OF_BOUNDS;
  if (!(now < deadline)) return STATUS_GATEWAY_SLOW;
  const p = arena + offset + headroom;
  if (parsePacket(p, len) != PARSE_OK) return STATUS_BAD_INNER_PACKET;
  if (!clientLive(peer)) return STATUS_GATEWAY_SLOW;
  const c = clientPtr(peer);
  const v6 = pVersion == IPV6_VERSION;
  const src = p + addressOffset(false);
  const dst = p + addressOffset(true);
  if (!addressEqual(src, c + (v6 ? C_V6 : C_V4), v6)) return STATUS_SOURCE_NOT_ALLOWED;
  if (pFragmentOffset > 0 || pMoreFragments) return STATUS_GATEWAY_FRAGMENT;
  if (pProtocol == PROTOCOL_UDP && pDstPort == controlPort && addressEqual(dst, config + (v6 ? G_OWN6 : G_OWN4), v6)) {
    return STATUS_GATEWAY_SLOW;
  }

  if (inProxyRange(p)) {
    const e = keyedFind(proxies, proxyMask, peer, pVersion, dst);
    if (e != 0) return toProxy(d, p, e, src, dst, now);
    if ((load<u32>(c, C_FLAGS) & CLIENT_PROXIES_INCOMPLETE) != 0) return STATUS_GATEWAY_SLOW;
  }

  // Longest prefix; ties: any rule of that length allowing the packet allows it.
  if ((load<u32>(c, C_FLAGS) & CLIENT_RULES_INCOMPLETE) != 0) return STATUS_GATEWAY_SLOW;
  let best: i32 = -1;
  let allow = false;
  let slow = false;
  let next = load<u32>(c, C_FIRST_RULE);
  while (next != 0) {
    const r = rulePtr(next - 1);
    next = load<u32>(r, R_NEXT);
    if (<u32>load<u8>(r, R_KIND) != RULE_PREFIX || <u32>load<u8>(r, R_VERSION) != pVersion) continue;
    const length = <i32>load<u8>(r, R_LENGTH);
    if (length < best || !prefixHolds(r, dst)) continue;
    if (length > best) {
      best = length;
      allow = false;
      slow = false;
    }
    const verdict = filtersDecide(r);
    if (verdict > 0) allow = true;
    else if (verdict < 0) slow = true;
  }
  if (best < 0) return (load<u32>(c, C_FLAGS) & CLIENT_SLOW_UNMATCHED) != 0 ? STATUS_GATEWAY_SLOW : STATUS_GATEWAY_REFUSED;
  if (allow) {
    store<u32>(d, pLength, DESC_LENGTH);
    return STATUS_OK;
  }
  return slow ? STATUS_GATEWAY_SLOW : STATUS_GATEWAY_REFUSED;
}

@inline function isIcmpError(): bool {
  if (!pHasIcmp) return false;
  if (pProtocol == PROTOCOL_ICMP) {
    return pIcmpType == ICMP_TYPE_DESTINATION_UNREACHABLE || pIcmpType == ICMP_TYPE_TIME_EXCEEDED || pIcmpType == ICMP_TYPE_PARAMETER_PROBLEM
      || pIcmpType == ICMP_TYPE_SOURCE_QUENCH || pIcmpType == ICMP_TYPE_REDIRECT;
  }
  return pProtocol == PROTOCOL_ICMPV6 && pIcmpType < ICMPV6_INFORMATIONAL_MIN_TYPE;
}

function fromResource(d: usize, headroom: usize, now: f64): u32 {
  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = load<u32>(d, DESC_LENGTH);
  store<u32>(d, NO_PEER, DESC_SESSION);
  if (!fits(offset, <usize>len + headroom)) return STATUS_OUT_OF_BOUNDS;
  if (!(now < deadline)) return STATUS_GATEWAY_SLOW;
  const p = arena + offset + headroom;
  if (parsePacket(p, len) != PARSE_OK) return STATUS_BAD_INNER_PACKET;
  const dst = p + addressOffset(true);
  const peer = lookupTunnelAddress(pVersion, dst);
  if (peer == NO_PEER) return addressesIncomplete ? STATUS_GATEWAY_SLOW : STATUS_GATEWAY_UNKNOWN_CLIENT;
  if (pFragmentOffset > 0 || pMoreFragments) return STATUS_GATEWAY_FRAGMENT;
  store<u32>(d, peer, DESC_SESSION);
  let tracked = false;
  let clientPort: u32 = 0;
  let port: u32 = 0;
  if ((pProtocol == PROTOCOL_TCP || pProtocol == PROTOCOL_UDP) && pHasPorts) {
    tracked = true;
    clientPort = pDstPort;
    port = pSrcPort;
  } else if (pHasIdentifier && !isEchoRequest()) {
    tracked = true;
    clientPort = pIcmpIdentifier;
  }
  if (tracked) {
    const src = p + addressOffset(false);
    const slot = findFlow(true, pVersion, pProtocol, dst, clientPort, src, port);
    if (slot >= 0 && flowUsable(<u32>slot, now)) {
      const f = flowPtr(<u32>slot);
      touchFlow(<u32>slot, true, now);
      rewriteAddress(p, false, f + F_PROXY);
      const original = <u32>load<u16>(f, F_CLIENT_PORT);
      if (original != clientPort) {
        if (pHasPorts) rewritePort(p, true, original);
        else rewriteIdentifier(p, original);
      }
    } else {
      const flags = clientLive(peer) ? load<u32>(clientPtr(peer), C_FLAGS) : CLIENT_FLOWS_INCOMPLETE;
      if ((flags & CLIENT_FLOWS_INCOMPLETE) != 0) return STATUS_GATEWAY_SLOW;
    }
  } else if (isIcmpError()) {
    return STATUS_GATEWAY_SLOW;
  }
  store<u32>(d, pLength, DESC_LENGTH);
  return STATUS_OK;
}

/** gatewayFromClients flags: the session field holds a session slot; stop after the first SLOW packet. */
export const BY_SESSION: u32 = 1;
export const STOP_AT_SLOW: u32 = 2;

/**
 * Decides the packets from clients' tunnels in descriptors start..count-1 (header comment); headroom
 * bytes precede each IP packet. BY_SESSION: the session field holds a session slot whose peer is the
 * client, and packets whose status is not OK are skipped. STOP_AT_SLOW: stop after the first SLOW
 * packet, so the caller can let GatewayState have it before the packets behind it are decided (as
 * one packet's control message or new flow may change how the next is decided). Returns the index
 * after the last packet decided, or -1 for a bad range.
 */
export function gatewayFromClients(start: u32, count: u32, headroom: u32, flags: u32, now: f64): i32 {
  if (count > batchSize || start > count || clients == 0) return -1;
  for (let i = start; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    let peer = load<u32>(d, DESC_SESSION);
    if (flags & BY_SESSION) {
      if (load<u32>(d, DESC_STATUS) != STATUS_OK) continue;
      peer = sessionPeer(peer);
    }
    const status = fromClient(d, headroom, peer, now);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_GATEWAY_SLOW && (flags & STOP_AT_SLOW) != 0) return <i32>(i + 1);
  }
  return <i32>count;
}

/** Decides the packets from the network in descriptors start..count-1 (header comment); as gatewayFromClients. */
export function gatewayFromResources(start: u32, count: u32, headroom: u32, flags: u32, now: f64): i32 {
  if (count > batchSize || start > count || clients == 0) return -1;
  for (let i = start; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    const status = fromResource(d, headroom, now);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_GATEWAY_SLOW && (flags & STOP_AT_SLOW) != 0) return <i32>(i + 1);
  }
  return <i32>count;
}
