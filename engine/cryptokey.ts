// Cryptokey routing on the transport batch (whitepaper §2): the allowed IPs of engine/routes.ts pick
// the peer of each outgoing packet and vet the source of each incoming one. Both calls walk the same
// descriptors as seal and open (engine/transport.ts); a bad packet gets a status, never a trap.
//
// Route outbound, per descriptor of a batch of plaintexts, before seal (plaintext at offset + 16,
// `length` bytes):
//   1. the plaintext must hold the fixed header of the IP version its first nibble names;
//   2. look up the destination address in that version's table;
//   3. peers[i] := the peer or NO_PEER; status := OK, NO_ROUTE or BAD_INNER_PACKET (seal overwrites
//      the status, so the caller reads it before sealing).
// Check inbound, per descriptor of a batch after open whose status is OK (plaintext at offset + 16,
// `length` bytes, zero-padded to 16):
//   1. an empty plaintext is a keepalive and stays OK;
//   2. the plaintext must hold an IPv4 or IPv6 header whose own length fits inside it;
//   3. the longest match of the source address must be the peer of the session that opened it;
//   4. length := the IP packet's own length, so the padding never reaches the TUN device.

import {
  IP_VERSION_SHIFT, IPV4_HEADER_SIZE, IPV4_OFFSET_DST, IPV4_OFFSET_SRC, IPV4_OFFSET_TOTAL_LENGTH, IPV4_VERSION,
  IPV6_HEADER_SIZE, IPV6_OFFSET_DST, IPV6_OFFSET_PAYLOAD_LENGTH, IPV6_OFFSET_SRC, IPV6_VERSION,
  MESSAGE_TRANSPORT_OFFSET_CONTENT, NO_PEER, STATUS_BAD_INNER_PACKET, STATUS_NO_ROUTE, STATUS_NO_SESSION,
  STATUS_OK, STATUS_OUT_OF_BOUNDS, STATUS_SOURCE_NOT_ALLOWED,
} from "./constants";
import { lookupAddress } from "./routes";
import { sessionLive, sessionPeer } from "./sessions";
import { DESC_LENGTH, DESC_OFFSET, DESC_SESSION, DESC_SIZE, DESC_STATUS } from "./transport";

let arena: usize = 0;
let arenaSize: usize = 0;
let descriptors: usize = 0;
let peers: usize = 0;
let maxBatch: u32 = 0;

/** peersPtr holds one u32 per descriptor: the peer routeOutbound chose. */
export function setCryptokeyMemory(arenaPtr: usize, arenaBytes: usize, descPtr: usize, peersPtr: usize, batch: u32): void {
  arena = arenaPtr;
  arenaSize = arenaBytes;
  descriptors = descPtr;
  peers = peersPtr;
  maxBatch = batch;
}

/** The descriptor's plaintext, or 0 if it does not lie inside the arena. */
@inline function plaintextAt(d: usize): usize {
  const offset = <usize>load<u32>(d, DESC_OFFSET);
  const len = <usize>load<u32>(d, DESC_LENGTH) + MESSAGE_TRANSPORT_OFFSET_CONTENT;
  if (offset > arenaSize || len > arenaSize - offset) return 0;
  return arena + offset + MESSAGE_TRANSPORT_OFFSET_CONTENT;
}

@inline function loadBe16(p: usize, offset: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p + offset));
}

function routeOne(d: usize, out: usize): u32 {
  store<u32>(out, NO_PEER);
  const p = plaintextAt(d);
  if (p == 0) return STATUS_OUT_OF_BOUNDS;
  const len = load<u32>(d, DESC_LENGTH);
  if (len == 0) return STATUS_BAD_INNER_PACKET;
  const version = <u32>load<u8>(p) >>> IP_VERSION_SHIFT;
  let peer = NO_PEER;
  if (version == IPV4_VERSION) {
    if (len < IPV4_HEADER_SIZE) return STATUS_BAD_INNER_PACKET;
    peer = lookupAddress(false, p + IPV4_OFFSET_DST);
  } else if (version == IPV6_VERSION) {
    if (len < IPV6_HEADER_SIZE) return STATUS_BAD_INNER_PACKET;
    peer = lookupAddress(true, p + IPV6_OFFSET_DST);
  } else {
    return STATUS_BAD_INNER_PACKET;
  }
  store<u32>(out, peer);
  return peer == NO_PEER ? STATUS_NO_ROUTE : STATUS_OK;
}

function checkOne(d: usize): u32 {
  const p = plaintextAt(d);
  if (p == 0) return STATUS_OUT_OF_BOUNDS;
  const len = load<u32>(d, DESC_LENGTH);
  if (len == 0) return STATUS_OK;
  const slot = load<u32>(d, DESC_SESSION);
  if (!sessionLive(slot)) return STATUS_NO_SESSION;
  const version = <u32>load<u8>(p) >>> IP_VERSION_SHIFT;
  let ipLength: u32 = 0;
  let source: u32 = NO_PEER;
  if (version == IPV4_VERSION) {
    if (len < IPV4_HEADER_SIZE) return STATUS_BAD_INNER_PACKET;
    ipLength = loadBe16(p, IPV4_OFFSET_TOTAL_LENGTH);
    if (ipLength < IPV4_HEADER_SIZE || ipLength > len) return STATUS_BAD_INNER_PACKET;
    source = lookupAddress(false, p + IPV4_OFFSET_SRC);
  } else if (version == IPV6_VERSION) {
    if (len < IPV6_HEADER_SIZE) return STATUS_BAD_INNER_PACKET;
    ipLength = IPV6_HEADER_SIZE + loadBe16(p, IPV6_OFFSET_PAYLOAD_LENGTH);
    if (ipLength > len) return STATUS_BAD_INNER_PACKET;
    source = lookupAddress(true, p + IPV6_OFFSET_SRC);
  } else {
    return STATUS_BAD_INNER_PACKET;
  }
  // A session without a peer (NO_PEER) matches nothing: lookups never return NO_PEER as a match.
  if (source == NO_PEER || source != sessionPeer(slot)) return STATUS_SOURCE_NOT_ALLOWED;
  store<u32>(d, ipLength, DESC_LENGTH);
  return STATUS_OK;
}

/** Routes count plaintexts by destination; returns how many found a peer, or -1 if count exceeds the batch size. */
export function routeOutbound(count: u32): i32 {
  if (count > maxBatch) return -1;
  let routed: i32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    const status = routeOne(d, peers + (<usize>i << 2));
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_OK) routed++;
  }
  return routed;
}

/**
 * Checks the inner source of every opened packet against its session's peer; returns how many are
 * still OK, or -1 if count exceeds the batch size. Packets already dropped keep their status.
 */
export function checkInbound(count: u32): i32 {
  if (count > maxBatch) return -1;
  let ok: i32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = descriptors + <usize>i * DESC_SIZE;
    if (load<u32>(d, DESC_STATUS) != STATUS_OK) continue;
    const status = checkOne(d);
    store<u32>(d, status, DESC_STATUS);
    if (status == STATUS_OK) ok++;
  }
  return ok;
}
