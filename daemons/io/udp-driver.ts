// Drives the receive side of a UdpSocket: readiness → batch receive → hand the batch on.
//
// 1. The socket's fd becomes readable (libuv poll, level-triggered).
// 2. prepare() fills the vector's offsets and capacities (normally engine.batch.reservePacketOffset)
//    and says how many datagrams the batch can take.
// 3. One recvmmsg batch lands straight in the memory; a truncated datagram is counted and its length
//    set to 0, in place (the batch's regions stay where prepare() put them): every consumer treats an
//    empty datagram as junk (the engine reports TooShort).
// 4. deliver() gets the batch; repeat while batches come back full, up to a budget per wake-up, so
//    one busy socket cannot starve the event loop (libuv calls again while data is waiting).

import type { PacketVector, UdpSocket } from "../native/index.js";

/** Where a UdpDriver puts datagrams and whom it gives them to. */
export interface UdpBatchSink {
  /** Sets vector.offsets/capacities for the next batch; returns how many datagrams it may hold (0: none now). */
  prepare(vector: PacketVector): number;
  /** Takes the first count datagrams of vector (lengths, addresses); a truncated one has length 0. */
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
      this.emptyTruncated(count);
      this.sink.deliver(this.vector, count);
      if (count < max) return;
    }
  }

  /** Sets the length of every truncated datagram to 0 (it is junk now), counting it. */
  private emptyTruncated(count: number): void {
    const { capacities, lengths } = this.vector;
    for (let i = 0; i < count; i++) {
      if (lengths[i]! > capacities[i]!) {
        this.drops.truncated++;
        lengths[i] = 0;
      }
    }
  }
}
