// Allowed IPs for cryptokey routing (whitepaper §2): a longest-prefix-match table from IPv4 and IPv6
// prefixes to peer ids, one trie per address family, in a node pool laid out once by init.
//
// Each trie is a path-compressed binary trie, as the Linux and wireguard-go allowedips are: a node
// holds a whole masked prefix and branches on the bit right after it, so a chain of single-child
// bits costs no nodes, a lookup visits one node per branch or nested prefix on its path (at most 33
// or 129), and the pool needs at most two nodes per route. A multibit (stride) trie would visit fewer
// nodes, but expands a prefix into as many as 2^(stride - 1) slots, which makes memory hard to bound
// for a fixed pool and makes removing a prefix restore the shorter prefixes it had shadowed.
//
// Keys are 128 bits as two u64 words (hi, lo), most significant bit first. An IPv4 address sits in
// the top 32 bits of hi with everything after it zero, so both families share insert and remove;
// IPv4 lookups, the commonest, have their own loop that never touches lo.
//
// Invariants: every node without a peer (an intermediate) has exactly two children; every stored
// key is masked to its length. The first makes intermediates fewer than routes, so a pool of
// 2 * maxRoutes nodes never runs out before the route count does.
//
// Insert (the placement walk, then one of four splices):
//   1. walk down from the root while a node's prefix covers the new one; an equal prefix just takes
//      the new peer;
//   2. below the last covering node: an empty side takes the new node;
//   3. otherwise the new prefix covers the node there: it goes in between;
//   4. otherwise both hang under a new intermediate node at the bits they share.
// Lookup: walk down while nodes cover the address, remembering the last one with a peer.
// Remove: the node drops its peer; if it has under two children it is spliced out, and so is an
// intermediate parent left with one child.

import {
  IPV4_ADDRESS_BITS, IPV4_VERSION, IPV6_ADDRESS_BITS, IPV6_VERSION, NO_PEER, RESULT_BAD_ARGUMENT, RESULT_NOT_FOUND,
  RESULT_OK, RESULT_TABLE_FULL,
} from "./constants";

// Node layout: 32 bytes, so two share a cache line. Node index 0 means "none".
const NODE_HI: usize = 0;
const NODE_LO: usize = 8;
const NODE_CHILD: usize = 16; // two u32 node indices: child 0 at 16, child 1 at 20
const NODE_PEER: usize = 24;
/** The prefix length in the low byte and the parent's index in the upper 24 bits. */
const NODE_META: usize = 28;
const NODE_SHIFT: usize = 5;
/** Parent indices have 24 bits; 2 * MAX_ROUTES + 1 nodes fit. */
export const MAX_ROUTES: u32 = 1 << 20;

const KEY_BITS: u32 = IPV6_ADDRESS_BITS;

let pool: usize = 0;
let capacity: u32 = 0;
let total: u32 = 0;
/** Nodes from here on have never been used; below it, unused nodes are on the free list. */
let fresh: u32 = 1;
let freeHead: u32 = 0;
let root4: u32 = 0;
let root6: u32 = 0;
/** Set by placement(): whether the node it returned has exactly the prefix looked for. */
let placedExact = false;

export function routeTableBytes(maxRoutes: u32): usize {
  return (<usize>maxRoutes * 2 + 1) << NODE_SHIFT;
}

export function setRouteMemory(ptr: usize, maxRoutes: u32): void {
  pool = ptr;
  capacity = maxRoutes;
  clearRoutes();
}

/** Removes every route of both families. */
export function clearRoutes(): void {
  memory.fill(pool, 0, routeTableBytes(capacity));
  total = 0;
  fresh = 1;
  freeHead = 0;
  root4 = 0;
  root6 = 0;
}

export function routeCount(): u32 {
  return total;
}

@inline function node(i: u32): usize {
  return pool + (<usize>i << NODE_SHIFT);
}

@inline function cidrOf(n: usize): u32 {
  return <u32>load<u8>(n, NODE_META);
}

@inline function parentOf(n: usize): u32 {
  return load<u32>(n, NODE_META) >>> 8;
}

@inline function setParent(i: u32, parent: u32): void {
  const n = node(i);
  store<u32>(n, (parent << 8) | cidrOf(n), NODE_META);
}

@inline function childOf(n: usize, side: u32): u32 {
  return load<u32>(n + NODE_CHILD + (<usize>side << 2));
}

@inline function maskHi(cidr: u32): u64 {
  return cidr >= 64 ? <u64>-1 : ~(<u64>-1 >>> cidr);
}

@inline function maskLo(cidr: u32): u64 {
  // Shifts are taken mod 64, so /128 (shift 0) is right and /64 must be special-cased.
  return cidr <= 64 ? 0 : <u64>-1 << (KEY_BITS - cidr);
}

/** Bit pos (0 = most significant) of the key; pos must be below 128. */
@inline function bitAt(hi: u64, lo: u64, pos: u32): u32 {
  return pos < 64 ? <u32>(hi >>> (63 - pos)) & 1 : <u32>(lo >>> (127 - pos)) & 1;
}

@inline function covers(n: usize, cidr: u32, hi: u64, lo: u64): bool {
  return (((hi ^ load<u64>(n, NODE_HI)) & maskHi(cidr)) | ((lo ^ load<u64>(n, NODE_LO)) & maskLo(cidr))) == 0;
}

/** Length of the prefix the node's key and (hi, lo) share, up to 128. */
@inline function commonBits(n: usize, hi: u64, lo: u64): u32 {
  const x = hi ^ load<u64>(n, NODE_HI);
  return x != 0 ? <u32>clz(x) : 64 + <u32>clz(lo ^ load<u64>(n, NODE_LO));
}

@inline function keyHi(v6: bool, addr: usize): u64 {
  return v6 ? bswap<u64>(load<u64>(addr)) : <u64>bswap<u32>(load<u32>(addr)) << 32;
}

@inline function keyLo(v6: bool, addr: usize): u64 {
  return v6 ? bswap<u64>(load<u64>(addr, 8)) : 0;
}

// --- Lookup ---

/** Peer of the longest prefix covering (hi, lo) in the trie at root, or NO_PEER. */
@inline function lookupKey(root: u32, hi: u64, lo: u64): u32 {
  let found = NO_PEER;
  let i = root;
  while (i != 0) {
    const n = node(i);
    const cidr = cidrOf(n);
    if (!covers(n, cidr, hi, lo)) break;
    const peer = load<u32>(n, NODE_PEER);
    if (peer != NO_PEER) found = peer;
    if (cidr >= KEY_BITS) break;
    i = childOf(n, bitAt(hi, lo, cidr));
  }
  return found;
}

/** lookupKey for IPv4, whose keys and nodes are all in hi: half the loads and masks per node. */
@inline function lookupKey4(hi: u64): u32 {
  let found = NO_PEER;
  let i = root4;
  while (i != 0) {
    const n = node(i);
    const cidr = cidrOf(n);
    if (((hi ^ load<u64>(n, NODE_HI)) & maskHi(cidr)) != 0) break;
    const peer = load<u32>(n, NODE_PEER);
    if (peer != NO_PEER) found = peer;
    if (cidr >= IPV4_ADDRESS_BITS) break;
    i = childOf(n, <u32>(hi >>> (63 - cidr)) & 1);
  }
  return found;
}

/** Peer of the longest prefix covering the address at addr (4 or 16 bytes, network order), or NO_PEER. */
export function lookupAddress(v6: bool, addr: usize): u32 {
  if (!v6) return lookupKey4(keyHi(false, addr));
  return lookupKey(root6, keyHi(true, addr), keyLo(true, addr));
}

// --- Insert ---

/** The deepest node whose prefix covers (hi, lo)/cidr, or 0; sets placedExact. */
function placement(root: u32, hi: u64, lo: u64, cidr: u32): u32 {
  let parent: u32 = 0;
  let i = root;
  placedExact = false;
  while (i != 0) {
    const n = node(i);
    const c = cidrOf(n);
    if (c > cidr || !covers(n, c, hi, lo)) break;
    parent = i;
    if (c == cidr) {
      placedExact = true;
      break;
    }
    i = childOf(n, bitAt(hi, lo, c));
  }
  return parent;
}

function newNode(hi: u64, lo: u64, cidr: u32, peer: u32): u32 {
  let i = freeHead;
  if (i != 0) freeHead = load<u32>(node(i), NODE_CHILD);
  else i = fresh++;
  // The two-children invariant bounds the pool; running past it would be a bug, not an input error.
  assert(i <= capacity << 1);
  const n = node(i);
  store<u64>(n, hi, NODE_HI);
  store<u64>(n, lo, NODE_LO);
  store<u64>(n, 0, NODE_CHILD);
  store<u32>(n, peer, NODE_PEER);
  store<u32>(n, cidr, NODE_META);
  return i;
}

function freeNode(i: u32): void {
  const n = node(i);
  // NO_PEER marks it unused for removePeer's scan of the pool.
  store<u32>(n, NO_PEER, NODE_PEER);
  store<u32>(n, 0, NODE_META);
  store<u32>(n + NODE_CHILD, freeHead);
  store<u32>(n + NODE_CHILD, 0, 4);
  freeHead = i;
}

/** Puts child under parent on side (parent 0: the root of the v6 or v4 trie). */
function attach(v6: bool, parent: u32, side: u32, child: u32): void {
  if (parent == 0) {
    if (v6) root6 = child;
    else root4 = child;
  } else {
    store<u32>(node(parent) + NODE_CHILD + (<usize>side << 2), child);
  }
  if (child != 0) setParent(child, parent);
}

/** Puts replacement where old hangs under parent (parent 0: whichever root old is). */
function replace(parent: u32, old: u32, replacement: u32): void {
  if (parent == 0) {
    if (root4 == old) root4 = replacement;
    else root6 = replacement;
  } else {
    const p = node(parent);
    store<u32>(p + NODE_CHILD + (childOf(p, 1) == old ? 4 : 0), replacement);
  }
  if (replacement != 0) setParent(replacement, parent);
}

/**
 * Routes the prefix at addr (4 bytes for version 4, 16 for 6) of length cidr to peer; bits past
 * the length are ignored, and a prefix already in the table moves to the new peer.
 */
export function insertRoute(version: u32, addr: usize, cidr: u32, peer: u32): i32 {
  if ((version != IPV4_VERSION && version != IPV6_VERSION) || peer == NO_PEER) return RESULT_BAD_ARGUMENT;
  const v6 = version == IPV6_VERSION;
  if (cidr > (v6 ? IPV6_ADDRESS_BITS : IPV4_ADDRESS_BITS)) return RESULT_BAD_ARGUMENT;
  const hi = keyHi(v6, addr) & maskHi(cidr);
  const lo = keyLo(v6, addr) & maskLo(cidr);
  const root = v6 ? root6 : root4;

  // 1. Placement; an equal prefix (a route, or an intermediate becoming one) just takes the peer.
  const parent = placement(root, hi, lo, cidr);
  if (placedExact) {
    const p = node(parent);
    if (load<u32>(p, NODE_PEER) == NO_PEER) {
      if (total >= capacity) return RESULT_TABLE_FULL;
      total++;
    }
    store<u32>(p, peer, NODE_PEER);
    return RESULT_OK;
  }
  if (total >= capacity) return RESULT_TABLE_FULL;
  total++;
  const added = newNode(hi, lo, cidr, peer);

  // 2. An empty trie or an empty side takes the new node.
  let down = root;
  if (parent != 0) {
    const side = bitAt(hi, lo, cidrOf(node(parent)));
    down = childOf(node(parent), side);
    if (down == 0) {
      attach(v6, parent, side, added);
      return RESULT_OK;
    }
  } else if (root == 0) {
    attach(v6, 0, 0, added);
    return RESULT_OK;
  }

  // 3. The new prefix covers down: it goes in between.
  const d = node(down);
  const downHi = load<u64>(d, NODE_HI);
  const downLo = load<u64>(d, NODE_LO);
  const shared = min(cidr, commonBits(d, hi, lo));
  if (shared == cidr) {
    replace(parent, down, added);
    attach(v6, added, bitAt(downHi, downLo, cidr), down);
    return RESULT_OK;
  }

  // 4. Neither covers the other: they part at bit `shared`, under a new intermediate.
  const mid = newNode(hi & maskHi(shared), lo & maskLo(shared), shared, NO_PEER);
  replace(parent, down, mid);
  attach(v6, mid, bitAt(downHi, downLo, shared), down);
  attach(v6, mid, bitAt(hi, lo, shared), added);
  return RESULT_OK;
}

// --- Remove ---

function removeNode(i: u32): void {
  const n = node(i);
  store<u32>(n, NO_PEER, NODE_PEER);
  total--;
  const c0 = childOf(n, 0);
  const c1 = childOf(n, 1);
  if (c0 != 0 && c1 != 0) return; // stays as an intermediate
  const child = c0 | c1;
  const parent = parentOf(n);
  replace(parent, i, child);
  freeNode(i);
  if (child != 0 || parent == 0) return;
  const p = node(parent);
  if (load<u32>(p, NODE_PEER) != NO_PEER) return;
  // An intermediate left with one child no longer parts anything: its child takes its place.
  replace(parentOf(p), parent, childOf(p, 0) | childOf(p, 1));
  freeNode(parent);
}

/** Removes the route of exactly this prefix (bits past the length ignored). */
export function removeRoute(version: u32, addr: usize, cidr: u32): i32 {
  if (version != IPV4_VERSION && version != IPV6_VERSION) return RESULT_BAD_ARGUMENT;
  const v6 = version == IPV6_VERSION;
  if (cidr > (v6 ? IPV6_ADDRESS_BITS : IPV4_ADDRESS_BITS)) return RESULT_BAD_ARGUMENT;
  const hi = keyHi(v6, addr) & maskHi(cidr);
  const lo = keyLo(v6, addr) & maskLo(cidr);
  const i = placement(v6 ? root6 : root4, hi, lo, cidr);
  if (!placedExact || load<u32>(node(i), NODE_PEER) == NO_PEER) return RESULT_NOT_FOUND;
  removeNode(i);
  return RESULT_OK;
}

/**
 * Removes every route of peer; returns how many. It scans the pool rather than keeping a list per
 * peer: peers come and go about once per authorization, while lookups run per packet.
 */
export function removePeerRoutes(peer: u32): u32 {
  if (peer == NO_PEER) return 0;
  let removed: u32 = 0;
  // Removal only frees nodes (never moves one), so the scan sees each route once.
  for (let i: u32 = 1; i < fresh; i++) {
    if (load<u32>(node(i), NODE_PEER) == peer) {
      removeNode(i);
      removed++;
    }
  }
  return removed;
}
