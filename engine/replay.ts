// Anti-replay sliding window (RFC 6479): a ring of REPLAY_RING_BLOCKS 64-bit blocks indexed by
// counter. Advancing the window clears only the blocks it moves past, so each update costs O(1)
// amortised, whatever the jump. Bits are indexed by counter + 1 so that "nothing seen" is top = 0.
//
// Check and update are split: the receive path checks before spending an AEAD open, and commits
// only after the tag verified, so forged packets cannot move the window.

import {
  REJECT_AFTER_MESSAGES, REPLAY_RING_BLOCKS, REPLAY_WINDOW_SIZE,
  STATUS_COUNTER_EXHAUSTED, STATUS_OK, STATUS_REPLAYED, STATUS_TOO_OLD,
} from "./constants";

// Layout at the window pointer: top (highest accepted counter + 1) u64, then the ring.
const WIN_TOP: usize = 0;
const WIN_RING: usize = 8;
export const REPLAY_STATE_SIZE: usize = 8 + <usize>REPLAY_RING_BLOCKS * 8;
const RING_MASK: u64 = <u64>REPLAY_RING_BLOCKS - 1;

@inline function blockAddr(win: usize, n: u64): usize {
  return win + WIN_RING + (<usize>((n >>> 6) & RING_MASK) << 3);
}

/** Whether counter would be accepted now; does not change the window. */
export function replayCheck(win: usize, counter: u64): u32 {
  if (counter >= REJECT_AFTER_MESSAGES) return STATUS_COUNTER_EXHAUSTED;
  const n = counter + 1;
  const top = load<u64>(win, WIN_TOP);
  if (n > top) return STATUS_OK;
  if (n + REPLAY_WINDOW_SIZE < top) return STATUS_TOO_OLD;
  const bit = (load<u64>(blockAddr(win, n)) >>> (n & 63)) & 1;
  return bit != 0 ? STATUS_REPLAYED : STATUS_OK;
}

/** Records counter as received; call only after replayCheck passed and the packet authenticated. */
export function replayUpdate(win: usize, counter: u64): void {
  const n = counter + 1;
  const top = load<u64>(win, WIN_TOP);
  if (n > top) {
    const current = top >>> 6;
    let advance = (n >>> 6) - current;
    if (advance > <u64>REPLAY_RING_BLOCKS) advance = <u64>REPLAY_RING_BLOCKS;
    for (let i: u64 = 1; i <= advance; i++) {
      store<u64>(blockAddr(win, (current + i) << 6), 0);
    }
    store<u64>(win, n, WIN_TOP);
  }
  const at = blockAddr(win, n);
  store<u64>(at, load<u64>(at) | (<u64>1 << (n & 63)));
}
