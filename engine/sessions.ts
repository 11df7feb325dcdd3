// Transport sessions: one slot per WireGuard keypair (send key, receive key, send counter, replay
// window), and an open-addressing table from our receiver index to slot, so the receive path finds
// a session from the packet header without leaving the engine.
//
// Each slot also names the peer its keypair belongs to, so the receive path can hold the inner
// source address to that peer's allowed IPs (engine/cryptokey.ts) without leaving the engine.
//
// The index table uses linear probing with backward-shift deletion (no tombstones), sized to twice
// the next power of two above the slot count, so probes stay short even when every slot is live.

import { REPLAY_STATE_SIZE } from "./replay";
import { NO_PEER, RESULT_BAD_ARGUMENT, RESULT_INDEX_IN_USE, RESULT_OK, RESULT_TABLE_FULL } from "./constants";

// Slot layout.
export const SESSION_SEND_KEY: usize = 0;
export const SESSION_RECV_KEY: usize = 32;
export const SESSION_SEND_COUNTER: usize = 64;
export const SESSION_LOCAL_INDEX: usize = 72;
export const SESSION_REMOTE_INDEX: usize = 76;
export const SESSION_LIVE: usize = 80;
export const SESSION_PEER: usize = 84;
export const SESSION_REPLAY: usize = 96;
export const SESSION_SIZE: usize = SESSION_REPLAY + REPLAY_STATE_SIZE;

let slots: usize = 0;
let slotCount: u32 = 0;
let table: usize = 0;
let tableMask: u32 = 0;
let liveCount: u32 = 0;

export function sessionTableBytes(maxSessions: u32): usize {
  return <usize>maxSessions * SESSION_SIZE + (<usize>tableCapacity(maxSessions) << 3);
}

function tableCapacity(maxSessions: u32): u32 {
  let cap: u32 = 16;
  while (cap < maxSessions * 2) cap <<= 1;
  return cap;
}

export function setSessionMemory(ptr: usize, maxSessions: u32): void {
  slots = ptr;
  slotCount = maxSessions;
  table = ptr + <usize>maxSessions * SESSION_SIZE;
  tableMask = tableCapacity(maxSessions) - 1;
  memory.fill(ptr, 0, sessionTableBytes(maxSessions));
}

@inline export function sessionPtr(slot: u32): usize {
  return slots + <usize>slot * SESSION_SIZE;
}

@inline function home(index: u32): u32 {
  return (index * 0x9e3779b1) & tableMask;
}

/** Slot of the live session with this receiver index, or -1. */
export function findSession(index: u32): i32 {
  let i = home(index);
  while (true) {
    const entry = table + (<usize>i << 3);
    const value = load<u32>(entry, 4);
    if (value == 0) return -1;
    if (load<u32>(entry, 0) == index) return <i32>(value - 1);
    i = (i + 1) & tableMask;
  }
}

/** Whether slot holds a live session. */
export function sessionLive(slot: u32): bool {
  return slot < slotCount && load<u32>(sessionPtr(slot), SESSION_LIVE) != 0;
}

/**
 * Installs a keypair in slot under receiver index localIndex. Keys are copied from sendKey and
 * recvKey (32 bytes each); the counter and replay window start from zero.
 */
export function installSession(slot: u32, localIndex: u32, remoteIndex: u32, sendKey: usize, recvKey: usize): i32 {
  if (slot >= slotCount || sessionLive(slot)) return RESULT_BAD_ARGUMENT;
  if (findSession(localIndex) >= 0) return RESULT_INDEX_IN_USE;
  if (liveCount >= slotCount) return RESULT_TABLE_FULL;
  let i = home(localIndex);
  while (load<u32>(table + (<usize>i << 3), 4) != 0) i = (i + 1) & tableMask;
  store<u32>(table + (<usize>i << 3), localIndex, 0);
  store<u32>(table + (<usize>i << 3), slot + 1, 4);
  const s = sessionPtr(slot);
  memory.fill(s, 0, SESSION_SIZE);
  memory.copy(s + SESSION_SEND_KEY, sendKey, 32);
  memory.copy(s + SESSION_RECV_KEY, recvKey, 32);
  store<u32>(s, localIndex, SESSION_LOCAL_INDEX);
  store<u32>(s, remoteIndex, SESSION_REMOTE_INDEX);
  store<u32>(s, 1, SESSION_LIVE);
  // No peer until the binding names one: until then no inner source is allowed (keepalives only).
  store<u32>(s, NO_PEER, SESSION_PEER);
  liveCount++;
  return RESULT_OK;
}

/** Names the peer whose allowed IPs the session's inner source addresses must fall in. */
export function setSessionPeer(slot: u32, peer: u32): i32 {
  if (!sessionLive(slot)) return RESULT_BAD_ARGUMENT;
  store<u32>(sessionPtr(slot), peer, SESSION_PEER);
  return RESULT_OK;
}

/** The peer of the session in slot, or NO_PEER when the slot is not live or has no peer. */
export function sessionPeer(slot: u32): u32 {
  return sessionLive(slot) ? load<u32>(sessionPtr(slot), SESSION_PEER) : NO_PEER;
}

/** Removes the session in slot and wipes its keys, counters and window. */
export function dropSession(slot: u32): i32 {
  if (!sessionLive(slot)) return RESULT_BAD_ARGUMENT;
  const s = sessionPtr(slot);
  const index = load<u32>(s, SESSION_LOCAL_INDEX);
  let i = home(index);
  while (load<u32>(table + (<usize>i << 3), 4) != slot + 1) i = (i + 1) & tableMask;
  // Backward-shift deletion: pull later entries of the probe run into the hole when their home
  // position allows it, so lookups never stop early at a false empty entry.
  let hole = i;
  let j = (i + 1) & tableMask;
  while (load<u32>(table + (<usize>j << 3), 4) != 0) {
    const h = home(load<u32>(table + (<usize>j << 3), 0));
    // Entry j may move to the hole if its home is not in the cyclic range (hole, j].
    const inRange = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
    if (!inRange) {
      store<u64>(table + (<usize>hole << 3), load<u64>(table + (<usize>j << 3)));
      hole = j;
    }
    j = (j + 1) & tableMask;
  }
  store<u64>(table + (<usize>hole << 3), 0);
  memory.fill(s, 0, SESSION_SIZE);
  liveCount--;
  return RESULT_OK;
}

export function liveSessions(): u32 {
  return liveCount;
}
