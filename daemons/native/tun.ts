// A TUN device (layer 3, no packet-information header) read and written per batch straight in the
// engine's memory. Addresses, MTU and link state are not set here: the caller runs `ip` for now.

import { nativeAddon } from "./addon.js";
import type { PacketVector } from "./packet-vector.js";
import { PolledFd } from "./readiness.js";

/** An open TUN device; packets are whole IPv4 or IPv6 datagrams. */
export class TunDevice extends PolledFd {
  private constructor(
    fd: number,
    /** The interface name the kernel gave the device. */
    readonly name: string,
  ) {
    super(fd);
  }

  /**
   * Creates a TUN device: name "" lets the kernel choose, a template like "wl%d" numbers it.
   * Needs CAP_NET_ADMIN; throws an Error whose code is the errno name (EPERM, ENOENT, EBUSY...).
   */
  static open(name = ""): TunDevice {
    const { fd, name: actual } = nativeAddon().tunOpen(name);
    return new TunDevice(fd, actual);
  }

  /**
   * Reads up to max packets into memory at vector.offsets[i] (room: vector.capacities[i]) and
   * returns how many, setting vector.lengths; 0 when none is waiting. A capacity below the MTU
   * truncates packets.
   */
  read(memory: Uint8Array, vector: PacketVector, max = vector.maxPackets): number {
    return nativeAddon().tunRead(this.fd, memory, vector.offsets, vector.capacities, vector.lengths, max);
  }

  /**
   * Writes count packets from memory (vector.offsets, vector.lengths) and returns how many are done,
   * from the front: fewer than count when the device queue is full. A packet the kernel refuses is
   * dropped, with its errno in vector.statuses (0 for a packet written).
   */
  write(memory: Uint8Array, vector: PacketVector, count: number): number {
    return nativeAddon().tunWrite(this.fd, memory, vector.offsets, vector.lengths, count, vector.statuses);
  }
}
