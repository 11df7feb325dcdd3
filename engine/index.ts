// The engine's exported surface. Everything crosses the boundary as scalars: pointers into this
// module's memory, lengths and counts. The binding (daemons/engine) is the only caller; it checks
// every length before calling, and the engine checks again wherever memory safety depends on it.
//
// Memory is laid out once by init() and never grows after, so the binding's views stay valid:
//   scratch (one-shot AEAD, Poly1305 and BLAKE2s I/O) | AEAD/ChaCha/BLAKE2s working state |
//   session slots + receiver index table | route nodes | relay channel bindings | batch descriptors |
//   per-packet peers | per-packet endpoints (relay) | packet arena
// and, when gatewayInit() follows init() (before the binding takes its views), the gateway's tables
// (engine/gateway.ts).

import { aeadOpen, aeadSeal, AEAD_SCRATCH_SIZE, setAeadScratch, xaeadOpen, xaeadSeal } from "./aead";
import { blake2sFinal, blake2sInit, blake2sUpdate, BLAKE2S_STATE_SIZE } from "./blake2s";
import { chacha20Xor, hchacha20, setChachaScratch } from "./chacha20";
import {
  BLAKE2S_KEY_MAX, BLAKE2S_OUT_MAX, IPV4_VERSION, IPV6_VERSION, NO_PEER, RESULT_ALREADY_INITIALIZED,
  RESULT_BAD_ARGUMENT, RESULT_NOT_INITIALIZED, RESULT_OK,
} from "./constants";
import { poly1305Blocks, poly1305Finish, poly1305Init, poly1305Wipe, POLY_STATE_SIZE } from "./poly1305";
import {
  dropSession, findSession, installSession, liveSessions, sessionLive, sessionPeer, sessionPtr, sessionTableBytes,
  SESSION_SEND_COUNTER, setSessionMemory, setSessionPeer,
} from "./sessions";
import { DESC_SIZE, setTransportMemory } from "./transport";
import { setCryptokeyMemory } from "./cryptokey";
import {
  bindChannel, channelCount, ENDPOINT_SIZE, findByClient, findByPeer, MAX_CHANNELS, relayTableBytes, setRelayMemory,
  unbindChannel,
} from "./relay";
import {
  gatewayTableBytes, MAX_GATEWAY_CLIENTS, MAX_GATEWAY_FLOWS, MAX_GATEWAY_RULES, setGatewayMemory,
} from "./gateway";
import {
  parsePacket, pDstPort, pFragmentOffset, pHasIcmp, pHasIdentifier, pHasPorts, pHeaderLength, pIcmpCode,
  pIcmpIdentifier, pIcmpType, pLength, pMoreFragments, pProtocol, pSrcPort, pTcpFlags, pVersion, rewriteAddress,
  rewriteIdentifier, rewritePort,
} from "./packet";
import {
  clearRoutes, insertRoute, lookupAddress, MAX_ROUTES, removePeerRoutes, removeRoute, routeCount as routesLive,
  routeTableBytes, setRouteMemory,
} from "./routes";

export { transportOpen, transportSeal } from "./transport";
export { checkInbound, routeOutbound } from "./cryptokey";
export { relayFromClients, relayFromPeers } from "./relay";
export {
  clearTouched as gatewayClearTouched, configureGateway as gatewayConfigure, flowCount as gatewayFlowCount,
  flowExpiresAt as gatewayFlowExpiresAt, flowLastUsed as gatewayFlowLastUsed, flowLookup as gatewayFlowLookup,
  flowTcpState as gatewayFlowTcpState, gatewayFromClients, gatewayFromResources, lookupTunnelAddress as gatewayAddressLookup,
  removeClient as gatewayClientRemove, removeFlow as gatewayFlowRemove, removeRule as gatewayRuleRemove,
  removeTunnelAddress as gatewayAddressRemove, setProxy as gatewayProxySet, removeProxy as gatewayProxyRemove,
  proxyCount as gatewayProxyCount, ruleCount as gatewayRuleCount, ruleGeneration as gatewayRuleGeneration,
  setAddressesIncomplete as gatewaySetAddressesIncomplete, setClient as gatewayClientSet, setFlow as gatewayFlowSet,
  setGatewayDeadline as gatewaySetDeadline, setRule as gatewayRuleSet, setTunnelAddress as gatewayAddressSet,
  touchedFlows as gatewayTouchedCount, touchedPtr as gatewayTouchedPtr,
} from "./gateway";

/** One-shot I/O: room for a 64 KiB message, its AAD and tag, keys and nonces. */
const SCRATCH_SIZE: usize = 192 * 1024;
const MAX_SESSIONS: u32 = 1 << 20;
const MAX_ARENA: u32 = 1 << 30;
const MAX_BATCH: u32 = 1 << 16;

let scratch: usize = 0;
let blake2sState: usize = 0;
let polyState: usize = 0;
let polyBlock: usize = 0;
let arena: usize = 0;
let arenaBytes: u32 = 0;
let descriptors: usize = 0;
let batchSize: u32 = 0;
let peers: usize = 0;
let endpoints: usize = 0;
let gatewayTables: usize = 0;

function alloc(size: usize): usize {
  // heap.alloc (stub runtime) aligns to 16; pad so every region starts on a 64-byte line.
  const raw = heap.alloc(size + 64);
  return (raw + 63) & ~<usize>63;
}

/**
 * Lays out memory for maxSessions sessions, a packet arena of arenaSize bytes, batches of maxBatch,
 * maxRoutes allowed IPs and maxChannels relay channel bindings (0 for either leaves its table always
 * full, as for a caller that does not use it).
 */
export function init(maxSessions: u32, arenaSize: u32, maxBatch: u32, maxRoutes: u32, maxChannels: u32): i32 {
  if (scratch != 0) return RESULT_ALREADY_INITIALIZED;
  if (maxSessions == 0 || maxSessions > MAX_SESSIONS) return RESULT_BAD_ARGUMENT;
  if (arenaSize == 0 || arenaSize > MAX_ARENA || maxBatch == 0 || maxBatch > MAX_BATCH) return RESULT_BAD_ARGUMENT;
  if (maxRoutes > MAX_ROUTES || maxChannels > MAX_CHANNELS) return RESULT_BAD_ARGUMENT;
  scratch = alloc(SCRATCH_SIZE);
  const work = alloc(AEAD_SCRATCH_SIZE + 256 + BLAKE2S_STATE_SIZE + POLY_STATE_SIZE + 16);
  setAeadScratch(work);
  setChachaScratch(work + AEAD_SCRATCH_SIZE);
  blake2sState = work + AEAD_SCRATCH_SIZE + 256;
  polyState = blake2sState + BLAKE2S_STATE_SIZE;
  polyBlock = polyState + POLY_STATE_SIZE;
  setSessionMemory(alloc(sessionTableBytes(maxSessions)), maxSessions);
  setRouteMemory(alloc(routeTableBytes(maxRoutes)), maxRoutes);
  const relayTable = alloc(relayTableBytes(maxChannels));
  descriptors = alloc(<usize>maxBatch * DESC_SIZE);
  batchSize = maxBatch;
  peers = alloc(<usize>maxBatch << 2);
  endpoints = alloc(<usize>maxBatch * ENDPOINT_SIZE);
  arena = alloc(arenaSize);
  arenaBytes = arenaSize;
  setTransportMemory(arena, arenaSize, descriptors, maxBatch);
  setCryptokeyMemory(arena, arenaSize, descriptors, peers, maxBatch);
  setRelayMemory(relayTable, maxChannels, arena, arenaSize, descriptors, endpoints, maxBatch);
  return RESULT_OK;
}

export function scratchPtr(): usize { return scratch; }
export function scratchSize(): usize { return SCRATCH_SIZE; }
export function arenaPtr(): usize { return arena; }
export function arenaSize(): u32 { return arenaBytes; }
export function descriptorsPtr(): usize { return descriptors; }
export function descriptorCount(): u32 { return batchSize; }
/** One u32 per descriptor: the peer routeOutbound chose for it. */
export function routePeersPtr(): usize { return peers; }
/** ENDPOINT_SIZE bytes per descriptor: the relay's source and destination endpoints (engine/relay.ts). */
export function relayEndpointsPtr(): usize { return endpoints; }

// --- One-shot primitives over scratch ---

/** ChaCha20-Poly1305 seal in place; the 12-byte nonce is read from nonce. */
export function aeadSealAt(key: usize, nonce: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): void {
  aeadSeal(key, load<u32>(nonce, 0), load<u32>(nonce, 4), load<u32>(nonce, 8), aad, aadLen, data, len, tag);
}

/** ChaCha20-Poly1305 open in place: 1 when the tag verified (data decrypted), 0 otherwise. */
export function aeadOpenAt(key: usize, nonce: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): i32 {
  return aeadOpen(key, load<u32>(nonce, 0), load<u32>(nonce, 4), load<u32>(nonce, 8), aad, aadLen, data, len, tag) ? 1 : 0;
}

export function xaeadSealAt(key: usize, nonce: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): void {
  xaeadSeal(key, nonce, aad, aadLen, data, len, tag);
}

export function xaeadOpenAt(key: usize, nonce: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): i32 {
  return xaeadOpen(key, nonce, aad, aadLen, data, len, tag) ? 1 : 0;
}

/** Raw ChaCha20 (RFC 8439 §2.4) in place from block counter. */
export function chacha20At(key: usize, nonce: usize, counter: u32, data: usize, len: usize): void {
  chacha20Xor(key, counter, load<u32>(nonce, 0), load<u32>(nonce, 4), load<u32>(nonce, 8), data, data, len);
}

export function hchacha20At(key: usize, nonce: usize, out: usize): void {
  hchacha20(key, nonce, out);
}

/** Standalone Poly1305 (RFC 8439 §2.5) with the final partial block padded by 0x01 then zeros. */
export function poly1305At(key: usize, msg: usize, len: usize, tag: usize): void {
  poly1305Init(polyState, key);
  const full = len >>> 4;
  if (full > 0) poly1305Blocks(polyState, msg, full, 1 << 24);
  const rest = len & 15;
  if (rest > 0) {
    memory.fill(polyBlock, 0, 16);
    memory.copy(polyBlock, msg + (full << 4), rest);
    store<u8>(polyBlock + rest, 1);
    poly1305Blocks(polyState, polyBlock, 1, 0);
  }
  poly1305Finish(polyState, tag);
  poly1305Wipe(polyState);
}

export function blake2sInitAt(outLen: u32, key: usize, keyLen: u32): i32 {
  if (outLen == 0 || outLen > BLAKE2S_OUT_MAX || keyLen > BLAKE2S_KEY_MAX) return RESULT_BAD_ARGUMENT;
  blake2sInit(blake2sState, outLen, key, keyLen);
  return RESULT_OK;
}

export function blake2sUpdateAt(data: usize, len: usize): void {
  blake2sUpdate(blake2sState, data, len);
}

export function blake2sFinalAt(out: usize): void {
  blake2sFinal(blake2sState, out);
}

/** Wipes the hash state (key block included) of a hash abandoned before its final. */
export function blake2sWipe(): void {
  memory.fill(blake2sState, 0, BLAKE2S_STATE_SIZE);
}

// --- Sessions ---

export function sessionInstall(slot: u32, localIndex: u32, remoteIndex: u32, sendKey: usize, recvKey: usize): i32 {
  return installSession(slot, localIndex, remoteIndex, sendKey, recvKey);
}

export function sessionDrop(slot: u32): i32 {
  return dropSession(slot);
}

export function sessionFind(localIndex: u32): i32 {
  return findSession(localIndex);
}

/** The next counter the session will send with, or -1 if the slot is not live. */
export function sessionSendCounter(slot: u32): i64 {
  if (!sessionLive(slot)) return -1;
  return <i64>load<u64>(sessionPtr(slot), SESSION_SEND_COUNTER);
}

export function sessionCount(): u32 {
  return liveSessions();
}

export function sessionSetPeer(slot: u32, peer: u32): i32 {
  return setSessionPeer(slot, peer);
}

export function sessionGetPeer(slot: u32): u32 {
  return sessionPeer(slot);
}

// --- Allowed IPs (engine/routes.ts); addresses are 4 or 16 bytes in network order at addr ---

export function routeInsert(version: u32, addr: usize, cidr: u32, peer: u32): i32 {
  return insertRoute(version, addr, cidr, peer);
}

export function routeRemove(version: u32, addr: usize, cidr: u32): i32 {
  return removeRoute(version, addr, cidr);
}

export function routeRemovePeer(peer: u32): u32 {
  return removePeerRoutes(peer);
}

/** The peer of the longest prefix covering the address, or NO_PEER (also for a version not 4 or 6). */
export function routeLookup(version: u32, addr: usize): u32 {
  if (version != IPV4_VERSION && version != IPV6_VERSION) return NO_PEER;
  return lookupAddress(version == IPV6_VERSION, addr);
}

export function routeClear(): void {
  clearRoutes();
}

export function routeCount(): u32 {
  return routesLive();
}

// --- Relay channel bindings (engine/relay.ts); endpoints are ENDPOINT_SIZE bytes at clientEp, peerEp ---

export function relayBind(slot: u32, clientEp: usize, channel: u32, relayId: u32, peerEp: usize): i32 {
  return bindChannel(slot, clientEp, channel, relayId, peerEp);
}

export function relayUnbind(slot: u32): i32 {
  return unbindChannel(slot);
}

/** The binding slot of (client endpoint, channel), or -1. */
export function relayFindClient(clientEp: usize, channel: u32): i32 {
  return findByClient(clientEp, channel);
}

/** The binding slot of (relay id, peer endpoint), or -1. */
export function relayFindPeer(relayId: u32, peerEp: usize): i32 {
  return findByPeer(relayId, peerEp);
}

export function relayChannelCount(): u32 {
  return channelCount();
}

// --- The gateway's fast path (engine/gateway.ts, engine/packet.ts) ---

/**
 * Lays out the gateway's tables for maxClients peer ids, maxRules rules, maxFlows NAT flows and
 * maxProxies mapped proxy IPs; once,
 * after init, and before the binding takes its views of memory (the tables grow it).
 */
export function gatewayInit(maxClients: u32, maxRules: u32, maxFlows: u32, maxProxies: u32): i32 {
  if (scratch == 0) return RESULT_NOT_INITIALIZED;
  if (gatewayTables != 0) return RESULT_ALREADY_INITIALIZED;
  if (maxClients == 0 || maxClients > MAX_GATEWAY_CLIENTS || maxRules == 0 || maxRules > MAX_GATEWAY_RULES) return RESULT_BAD_ARGUMENT;
  if (maxFlows == 0 || maxFlows > MAX_GATEWAY_FLOWS || maxProxies == 0 || maxProxies > MAX_GATEWAY_FLOWS) return RESULT_BAD_ARGUMENT;
  gatewayTables = alloc(gatewayTableBytes(maxClients, maxRules, maxFlows, maxProxies));
  setGatewayMemory(gatewayTables, maxClients, maxRules, maxFlows, maxProxies, arena, arenaBytes, descriptors, batchSize);
  return RESULT_OK;
}

/**
 * Parses the packet of len bytes at ptr as the fast path does; writes the view at out as u32 words
 * (version, header length, length, protocol, fragment offset, more fragments, has ports, source
 * port, destination port, TCP flags, has ICMP, ICMP type, ICMP code, has identifier, identifier)
 * and returns 0 or the parse error. For the binding's tests against the TypeScript parser.
 */
export function ipParseAt(ptr: usize, len: u32, out: usize): u32 {
  const error = parsePacket(ptr, len);
  // Stored one by one: an array literal would allocate, and memory must not grow after init.
  store<u32>(out, pVersion, 0);
  store<u32>(out, pHeaderLength, 4);
  store<u32>(out, pLength, 8);
  store<u32>(out, pProtocol, 12);
  store<u32>(out, pFragmentOffset, 16);
  store<u32>(out, pMoreFragments ? 1 : 0, 20);
  store<u32>(out, pHasPorts ? 1 : 0, 24);
  store<u32>(out, pSrcPort, 28);
  store<u32>(out, pDstPort, 32);
  store<u32>(out, pTcpFlags, 36);
  store<u32>(out, pHasIcmp ? 1 : 0, 40);
  store<u32>(out, pIcmpType, 44);
  store<u32>(out, pIcmpCode, 48);
  store<u32>(out, pHasIdentifier ? 1 : 0, 52);
  store<u32>(out, pIcmpIdentifier, 56);
  return error;
}

/**
 * Parses the packet at ptr, then rewrites in place with the incremental checksum updates: op 0 the
 * source (dst 0) or destination address to the bytes at value, 1 the TCP or UDP port to value, 2
 * the echo identifier to value. Returns 0 or the parse error (nothing rewritten).
 */
export function ipRewriteAt(ptr: usize, len: u32, op: u32, dst: u32, value: usize): u32 {
  const error = parsePacket(ptr, len);
  if (error != 0) return error;
  if (op == 0) rewriteAddress(ptr, dst != 0, value);
  else if (op == 1) rewritePort(ptr, dst != 0, <u32>value & 0xffff);
  else if (op == 2) rewriteIdentifier(ptr, <u32>value & 0xffff);
  return 0;
}
