// The anti-replay window of one receiving session: RFC 6479's ring of bit blocks, so sliding
// forward clears whole blocks instead of shifting a bitmap. A counter is accepted once, and only if
// it is newer than the newest one seen minus WINDOW_SIZE.

import { BLOCK_BITS, REJECT_AFTER_MESSAGES, RING_BLOCKS, WINDOW_SIZE } from "./constants.js";

const BLOCK_SHIFT = 5n; // log2(BLOCK_BITS)
const RING_MASK = BigInt(RING_BLOCKS - 1);
const WINDOW = BigInt(WINDOW_SIZE);

/** RFC 6479 sliding replay window (WINDOW_SIZE counters behind the newest). */
export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_BLOCKS);
  /** The newest counter accepted; -1 before the first. */
  private last = -1n;

  /** Whether counter could still be accepted (not behind the window), without marking it. */
  couldAccept(counter: bigint): boolean {
    return counter >= 0n && counter < REJECT_AFTER_MESSAGES && (counter > this.last || this.last - counter <= WINDOW);
  }

  /**
   * Whether counter is new and in the window; marks it seen when it is. Call only after the packet
   * authenticated, so a forged counter cannot move the window.
   */
  accept(counter: bigint): boolean {
    if (counter < 0n || counter >= REJECT_AFTER_MESSAGES) return false;
    if (counter > this.last) {
      const current = this.last < 0n ? -1n : this.last >> BLOCK_SHIFT;
      const target = counter >> BLOCK_SHIFT;
      // Clear the blocks the window slides over (at most the whole ring).
      const steps = target - current < BigInt(RING_BLOCKS) ? Number(target - current) : RING_BLOCKS;
      for (let i = 1; i <= steps; i++) this.ring[Number((current + BigInt(i)) & RING_MASK)] = 0;
      this.last = counter;
    } else if (this.last - counter > WINDOW) {
      return false;
    }
    const block = Number((counter >> BLOCK_SHIFT) & RING_MASK);
    const bit = 1 << Number(counter & BigInt(BLOCK_BITS - 1));
    if ((this.ring[block]! & bit) !== 0) return false;
    this.ring[block] = this.ring[block]! | bit;
    return true;
  }
}
