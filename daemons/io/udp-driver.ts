// Drives the receive side of a UdpSocket: readiness → batch receive → hand the batch on.
//
// 1. The socket's fd becomes readable (libuv poll, level-triggered).
// 2. prepare() fills the vector's offsets and capacities (normally engine.batch.reservePacketOffset)
//    and says how many datagrams the batch can take.
// 3. One recvmmsg batch lands straight in the memory; truncated datagrams are dropped and counted.
// 4. deliver() gets the batch; repeat while batches come back full, up to a budget per wake-up, so
//    one busy socket cannot starve the event loop (libuv calls again while data is waiting).

import type { PacketVector, UdpSocket } from "../native/index.js";
import { ADDRESS_SIZE } from "../native/index.js";

/** Where a UdpDriver puts datagrams and whom it gives them to. */
export interface UdpBatchSink {
  /** Sets vector.offsets/capacities for the next batch; returns how many datagrams it may hold (0: none now). */
  prepare(vector: PacketVector): number;
  /** Takes the first count datagrams of vector (lengths, addresses); they are intact, not truncated. */
  deliver(vector: PacketVector, count: number): void;
}

/** Datagrams a UdpDriver dropped, per reason. */
export interface UdpDriverDrops {
  /** Bigger than the capacity prepare() gave them. */
  truncated: number;
}

/** Receives from one UdpSocket in batches whenever it is readable. */
export class UdpDriver {
  readonly drops: UdpDriverDrops = { truncated: 0 };
  /** Error from the last failed poll or receive, kept for the owner to log; receiving goes on. */
  lastError: Error | undefined;

  constructor(
    private readonly socket: UdpSocket,
    private readonly memory: Uint8Array,
    private readonly vector: PacketVector,
    private readonly sink: UdpBatchSink,
    private readonly batchesPerWake = 8,
  ) {}

  start(): void {
    this.socket.onReadable((error) => {
      if (error) this.lastError = error;
      else this.drain();
    });
  }

  stop(): void {
    this.socket.onReadable(undefined);
  }

  /** Receives and delivers batches until the socket is empty or the budget is spent. */
  drain(): void {
    for (let round = 0; round < this.batchesPerWake; round++) {
      const max = this.sink.prepare(this.vector);
      if (max <= 0) return;
      let count: number;
      try {
        count = this.socket.recv(this.memory, this.vector, max);
      } catch (error) {
        this.lastError = error as Error;
        return;
      }
      if (count === 0) return;
      const kept = this.dropTruncated(count);
      if (kept > 0) this.sink.deliver(this.vector, kept);
      if (count < max) return;
    }
  }

  /** Moves intact datagrams to the front of the vector; returns how many there are. */
  private dropTruncated(count: number): number {
    const { offsets, capacities, lengths, addresses } = this.vector;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      if (lengths[i]! > capacities[i]!) {
        this.drops.truncated++;
        continue;
      }
      if (kept !== i) {
        offsets[kept] = offsets[i]!;
        capacities[kept] = capacities[i]!;
        lengths[kept] = lengths[i]!;
        addresses.copyWithin(kept * ADDRESS_SIZE, i * ADDRESS_SIZE, (i + 1) * ADDRESS_SIZE);
      }
      kept++;
    }
    return kept;
  }
}
