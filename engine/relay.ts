// The TURN relay's forwarding table (RFC 8656 §12): channel bindings, and the batched rewrite of
// ChannelData from clients into datagrams to peers, and of datagrams from peers into ChannelData to
// clients, in place in the packet arena.
//
// A binding joins a client (its 5-tuple at the relay's listening socket: the endpoint the client
// sends from), a channel number, the relayed transport address of the client's allocation (named by
// a relay id the daemon chooses, one per relay socket) and a peer endpoint. Two open-addressing
// tables find a binding from either side:
//   client side  (client endpoint, channel)  → binding
//   peer side    (relay id, peer endpoint)   → binding
// Both use linear probing with backward-shift deletion and hold slot + 1 (0 is empty); the keys
// live in the binding slots, so a table entry is four bytes.
//
// Endpoints are 20 bytes, as the native addon's recvmmsg/sendmmsg use them:
//   [0] family 4 or 6   [1] zero   [2..3] port, big-endian   [4..19] address (IPv4 in 4..7, rest zero)
// Each batch descriptor has one endpoint in the relay address array: the source on input, replaced
// by the destination on output.

import {
  DESC_LENGTH, DESC_OFFSET, DESC_SESSION, DESC_SIZE, DESC_STATUS,
} from "./transport";
import {
  RESULT_BAD_ARGUMENT, RESULT_INDEX_IN_USE, RESULT_OK, RESULT_TABLE_FULL, STATUS_BAD_TYPE, STATUS_NO_CHANNEL,
  STATUS_OK, STATUS_OUT_OF_BOUNDS, STATUS_TOO_LARGE, STATUS_TOO_SHORT,
} from "./constants";

export const ENDPOINT_SIZE: usize = 20;
/** ChannelData header: channel number and length, big-endian u16 each (RFC 8656 §12.4). */
export const CHANNEL_HEADER_SIZE: u32 = 4;
export const CHANNEL_MIN: u32 = 0x4000;
/** RFC 5766's upper end: RFC 8656 narrowed it to 0x4FFF, but older clients still bind above that. */
export const CHANNEL_MAX: u32 = 0x7fff;
export const MAX_CHANNELS: u32 = 1 << 20;

// Binding slot layout.
const B_CLIENT: usize = 0;
const B_CHANNEL: usize = 20;
const B_LIVE: usize = 22;
const B_RELAY: usize = 24;
const B_PEER: usize = 28;
const BINDING_SIZE: usize = 48;

let bindings: usize = 0;
let bindingCount: u32 = 0;
let clientTable: usize = 0;
let peerTable: usize = 0;
let tableMask: u32 = 0;
let live: u32 = 0;

let arena: usize = 0;
let arenaBytes: usize = 0;
let descriptors: usize = 0;
let addresses: usize = 0;
let batchSize: u32 = 0;

function tableCapacity(maxChannels: u32): u32 {
  let cap: u32 = 16;
  while (cap < maxChannels * 2) cap <<= 1;
  return cap;
}

export function relayTableBytes(maxChannels: u32): usize {
  return <usize>maxChannels * BINDING_SIZE + (<usize>tableCapacity(maxChannels) << 3);
}

export function setRelayMemory(ptr: usize, maxChannels: u32, arenaPtr: usize, arenaSize: usize, descPtr: usize, addrPtr: usize, batch: u32): void {
  bindings = ptr;
  bindingCount = maxChannels;
  const cap = tableCapacity(maxChannels);
  clientTable = ptr + <usize>maxChannels * BINDING_SIZE;
  peerTable = clientTable + (<usize>cap << 2);
  tableMask = cap - 1;
  memory.fill(ptr, 0, relayTableBytes(maxChannels));
  arena = arenaPtr;
  arenaBytes = arenaSize;
  descriptors = descPtr;
  addresses = addrPtr;
  batchSize = batch;
}

@inline function bindingPtr(slot: u32): usize {
  return bindings + <usize>slot * BINDING_SIZE;
}

@inline function slotLive(slot: u32): bool {
  return slot < bindingCount && load<u16>(bindingPtr(slot), B_LIVE) != 0;
}

/** A well-formed endpoint: family 4 or 6, the pad byte zero, an IPv4 address's tail zero. */
function endpointValid(ep: usize): bool {
  const family = load<u8>(ep);
  if (load<u8>(ep, 1) != 0) return false;
  if (family == 6) return true;
  return family == 4 && load<u64>(ep, 8) == 0 && load<u64>(ep, 12) == 0;
}

@inline function endpointsEqual(a: usize, b: usize): bool {
  return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8) && load<u32>(a, 16) == load<u32>(b, 16);
}

@inline function hashKey(ep: usize, extra: u32): u32 {
  let h: u32 = extra * 0x85ebca6b;
  h = (h ^ load<u32>(ep, 0)) * 0x9e3779b1;
  h = (h ^ load<u32>(ep, 4)) * 0x9e3779b1;
  h = (h ^ load<u32>(ep, 8)) * 0x9e3779b1;
  h = (h ^ load<u32>(ep, 12)) * 0x9e3779b1;
  h = (h ^ load<u32>(ep, 16)) * 0x9e3779b1;
  return (h ^ (h >>> 15)) & tableMask;
}

// The two tables differ only in which fields of a binding form the key.
@inline function clientHome(slot: u32): u32 {
  const b = bindingPtr(slot);
  return hashKey(b + B_CLIENT, load<u16>(b, B_CHANNEL));
}

@inline function peerHome(slot: u32): u32 {
  const b = bindingPtr(slot);
  return hashKey(b + B_PEER, load<u32>(b, B_RELAY));
}

/** Binding slot for (client endpoint, channel), or -1. */
export function findByClient(ep: usize, channel: u32): i32 {
  let i = hashKey(ep, channel);
  while (true) {
    const v = load<u32>(clientTable + (<usize>i << 2));
    if (v == 0) return -1;
    const b = bindingPtr(v - 1);
    if (<u32>load<u16>(b, B_CHANNEL) == channel && endpointsEqual(b + B_CLIENT, ep)) return <i32>(v - 1);
    i = (i + 1) & tableMask;
  }
}

/** Binding slot for (relay id, peer endpoint), or -1. */
export function findByPeer(relayId: u32, ep: usize): i32 {
  let i = hashKey(ep, relayId);
  while (true) {
    const v = load<u32>(peerTable + (<usize>i << 2));
    if (v == 0) return -1;
    const b = bindingPtr(v - 1);
    if (load<u32>(b, B_RELAY) == relayId && endpointsEqual(b + B_PEER, ep)) return <i32>(v - 1);
    i = (i + 1) & tableMask;
  }
}

function tableInsert(table: usize, home: u32, slot: u32): void {
  let i = home;
  while (load<u32>(table + (<usize>i << 2)) != 0) i = (i + 1) & tableMask;
  store<u32>(table + (<usize>i << 2), slot + 1);
}

/** Removes slot from a table by backward shift (no tombstones); peerSide picks the key. */
function tableRemove(table: usize, home: u32, slot: u32, peerSide: bool): void {
  let i = home;
  while (load<u32>(table + (<usize>i << 2)) != slot + 1) i = (i + 1) & tableMask;
  let hole = i;
  let j = (i + 1) & tableMask;
  while (true) {
    const v = load<u32>(table + (<usize>j << 2));
    if (v == 0) break;
    const h = peerSide ? peerHome(v - 1) : clientHome(v - 1);
    const inRange = hole <= j ? h > hole && h <= j : h > hole || h <= j;
    if (!inRange) {
      store<u32>(table + (<usize>hole << 2), v);
      hole = j;
    }
    j = (j + 1) & tableMask;
  }
  store<u32>(table + (<usize>hole << 2), 0);
}

/**
 * Binds channel for the client at clientEp to peerEp through relay relayId, in slot. Refuses a bad
 * slot, channel or endpoint (BAD_ARGUMENT) and a key either table already holds (INDEX_IN_USE):
 * RFC 8656 §12 lets a channel name one peer and a peer have one channel per allocation.
 */
export function bindChannel(slot: u32, clientEp: usize, channel: u32, relayId: u32, peerEp: usize): i32 {
  if (slot >= bindingCount || slotLive(slot)) return RESULT_BAD_ARGUMENT;
  if (channel < CHANNEL_MIN || channel > CHANNEL_MAX) return RESULT_BAD_ARGUMENT;
  if (!endpointValid(clientEp) || !endpointValid(peerEp)) return RESULT_BAD_ARGUMENT;
  if (live >= bindingCount) return RESULT_TABLE_FULL;
  if (findByClient(clientEp, channel) >= 0 || findByPeer(relayId, peerEp) >= 0) return RESULT_INDEX_IN_USE;
  const b = bindingPtr(slot);
  memory.copy(b + B_CLIENT, clientEp, ENDPOINT_SIZE);
  store<u16>(b, <u16>channel, B_CHANNEL);
  store<u16>(b, 1, B_LIVE);
  store<u32>(b, relayId, B_RELAY);
  memory.copy(b + B_PEER, peerEp, ENDPOINT_SIZE);
  tableInsert(clientTable, clientHome(slot), slot);
  tableInsert(peerTable, peerHome(slot), slot);
  live++;
  return RESULT_OK;
}

export function unbindChannel(slot: u32): i32 {
  if (!slotLive(slot)) return RESULT_BAD_ARGUMENT;
  tableRemove(clientTable, clientHome(slot), slot, false);
  tableRemove(peerTable, peerHome(slot), slot, true);
  memory.fill(bindingPtr(slot), 0, BINDING_SIZE);
  live--;
  return RESULT_OK;
}

export function channelCount(): u32 {
  return live;
}

@inline function fits(offset: usize, len: usize): bool {
  return offset <= arenaBytes && len <= arenaBytes - offset;
}

/**
 * Datagrams from clients at the listening socket: each ChannelData whose (source, channel) is bound
 * becomes its bare payload (offset + 4, length as declared, padding dropped), addressed to the
 * peer, with the relay id to send it from in the descriptor's session field. Anything else keeps
 * its bytes and gets a status: BadType (not ChannelData: STUN, for the daemon), TooShort (shorter
 * than its header or declared length), NoChannel (no such binding), OutOfBounds.
 * Returns how many are Ok.
 */
export function relayFromClients(count: u32): u32 {
  if (count > batchSize) count = batchSize;
  let ok: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    const status = fromClient(d, addresses + <usize>i * ENDPOINT_SIZE);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_OK) ok++;
  }
  return ok;
}

function fromClient(d: usize, ep: usize): u32 {
  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = <usize>load<u32>(d, DESC_LENGTH);
  if (!fits(offset, len)) return STATUS_OUT_OF_BOUNDS;
  if (len < 1) return STATUS_TOO_SHORT;
  const p = arena + offset;
  const first = <u32>load<u8>(p);
  if (first < (CHANNEL_MIN >> 8) || first > (CHANNEL_MAX >> 8)) return STATUS_BAD_TYPE;
  if (len < CHANNEL_HEADER_SIZE) return STATUS_TOO_SHORT;
  const channel = (first << 8) | <u32>load<u8>(p, 1);
  const declared = (<usize>load<u8>(p, 2) << 8) | <usize>load<u8>(p, 3);
  if (declared > len - CHANNEL_HEADER_SIZE) return STATUS_TOO_SHORT;
  const slot = findByClient(ep, channel);
  if (slot < 0) return STATUS_NO_CHANNEL;
  const b = bindingPtr(<u32>slot);
  memory.copy(ep, b + B_PEER, ENDPOINT_SIZE);
  store<u32>(d, <u32>(offset + CHANNEL_HEADER_SIZE), DESC_OFFSET);
  store<u32>(d, <u32>declared, DESC_LENGTH);
  store<u32>(d, load<u32>(b, B_RELAY), DESC_SESSION);
  return STATUS_OK;
}

/**
 * Datagrams from peers at relay socket relayId: each whose source has a channel becomes ChannelData
 * (the header written into the 4 bytes in front of it, which the driver left free), addressed to
 * the client. NoChannel leaves it as it was (the daemon sends a Data indication if a permission
 * allows it); TooLarge for a payload the 16-bit length cannot carry; OutOfBounds without room in
 * front. Returns how many are Ok.
 */
export function relayFromPeers(relayId: u32, count: u32): u32 {
  if (count > batchSize) count = batchSize;
  let ok: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    const status = fromPeer(d, addresses + <usize>i * ENDPOINT_SIZE, relayId);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_OK) ok++;
  }
  return ok;
}

function fromPeer(d: usize, ep: usize, relayId: u32): u32 {
  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = <usize>load<u32>(d, DESC_LENGTH);
  if (offset < CHANNEL_HEADER_SIZE || !fits(offset - CHANNEL_HEADER_SIZE, len + CHANNEL_HEADER_SIZE)) return STATUS_OUT_OF_BOUNDS;
  if (len > 0xffff) return STATUS_TOO_LARGE;
  const slot = findByPeer(relayId, ep);
  if (slot < 0) return STATUS_NO_CHANNEL;
  const b = bindingPtr(<u32>slot);
  const h = arena + offset - CHANNEL_HEADER_SIZE;
  const channel = <u32>load<u16>(b, B_CHANNEL);
  store<u8>(h, <u8>(channel >> 8));
  store<u8>(h, <u8>channel, 1);
  store<u8>(h, <u8>(len >> 8), 2);
  store<u8>(h, <u8>len, 3);
  memory.copy(ep, b + B_CLIENT, ENDPOINT_SIZE);
  store<u32>(d, <u32>(offset - CHANNEL_HEADER_SIZE), DESC_OFFSET);
  store<u32>(d, <u32>(len + CHANNEL_HEADER_SIZE), DESC_LENGTH);
  store<u32>(d, <u32>slot, DESC_SESSION);
  return STATUS_OK;
}
