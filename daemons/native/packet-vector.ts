// The per-batch arrays a TUN or UDP batch call reads and writes, allocated once per driver: where
// each packet goes in the memory (offsets), how much room it has (capacities), how long it is
// (lengths), what became of it on send (statuses: 0 or the errno that dropped it) and, for UDP,
// its peer's endpoint (addresses, ADDRESS_SIZE bytes each).

import { ADDRESS_SIZE } from "./endpoint.js";

/** Preallocated descriptors for up to maxPackets packets in one batch call. */
export class PacketVector {
  readonly offsets: Uint32Array;
  readonly capacities: Uint32Array;
  readonly lengths: Uint32Array;
  readonly statuses: Int32Array;
  readonly addresses: Uint8Array;

  /**
   * addresses may be given: a view of ADDRESS_SIZE bytes per packet in other memory (the engine's
   * endpoint array), so received sources land where the engine reads them.
   */
  constructor(readonly maxPackets: number, addresses?: Uint8Array) {
    if (!Number.isInteger(maxPackets) || maxPackets < 1 || maxPackets > 65536) {
      throw new RangeError(`PacketVector: maxPackets must be an integer in [1, 65536], got ${maxPackets}`);
    }
    if (addresses !== undefined && addresses.length < maxPackets * ADDRESS_SIZE) {
      throw new RangeError(`PacketVector: addresses must hold ${maxPackets} × ${ADDRESS_SIZE} bytes, got ${addresses.length}`);
    }
    this.offsets = new Uint32Array(maxPackets);
    this.capacities = new Uint32Array(maxPackets);
    this.lengths = new Uint32Array(maxPackets);
    this.statuses = new Int32Array(maxPackets);
    this.addresses = addresses ?? new Uint8Array(maxPackets * ADDRESS_SIZE);
  }

  /** Sets packet i's region: at offset, with room for capacity bytes (receive) or length bytes (send). */
  set(i: number, offset: number, size: number): void {
    this.offsets[i] = offset;
    this.capacities[i] = size;
    this.lengths[i] = size;
  }
}
