// A UDP socket of one family, received and sent per batch (recvmmsg/sendmmsg) straight in the
// engine's memory, peers' endpoints alongside in vector.addresses (endpoint.ts).

import { nativeAddon } from "./addon.js";
import type { PacketVector } from "./packet-vector.js";
import { PolledFd } from "./readiness.js";

/** A bound, non-blocking UDP socket; IPv6 sockets are IPv6-only. */
export class UdpSocket extends PolledFd {
  /** 1 while segmented sends work; src/udp.c sets it to 0 when the kernel refuses one. */
  private readonly gso = Int32Array.of(1);
  private constructor(
    fd: number,
    readonly family: 4 | 6,
    /** The bound port (the kernel's choice when opened with port 0). */
    readonly port: number,
  ) {
    super(fd);
  }

  /** Binds a socket to address ("" for any) and port (0 for any); throws an errno-coded Error. */
  static open(family: 4 | 6, address = "", port = 0): UdpSocket {
    const opened = nativeAddon().udpOpen(family, address, port);
    return new UdpSocket(opened.fd, family, opened.port);
  }

  /**
   * Receives up to max datagrams into memory at vector.offsets[i] (room: vector.capacities[i]) and
   * returns how many, setting vector.lengths and vector.addresses; 0 when none is waiting. A length
   * greater than its capacity marks a truncated datagram, to be dropped.
   */
  recv(memory: Uint8Array, vector: PacketVector, max = vector.maxPackets): number {
    return nativeAddon().udpRecv(
      this.fd, memory, vector.offsets, vector.capacities, vector.lengths, vector.addresses, max,
    );
  }

  /**
   * Sends count datagrams from memory (vector.offsets, vector.lengths) to vector.addresses and
   * returns how many are done, from the front: fewer than count when the socket buffer is full (wait
   * with onWritable). A datagram the kernel refuses is dropped with its errno in vector.statuses.
   * With `segment`, runs of same-length datagrams to one endpoint go as one UDP_SEGMENT message each
   * (src/udp.c); once the kernel refuses to segment, this socket sends them singly.
   */
  send(memory: Uint8Array, vector: PacketVector, count: number, segment = false): number {
    return nativeAddon().udpSend(
      this.fd, memory, vector.offsets, vector.lengths, vector.addresses, count, vector.statuses,
      segment && this.gso[0] === 1 ? this.gso : undefined,
    );
  }

  /** Whether segmented sends still work here (true until the kernel refused one). */
  get segmenting(): boolean {
    return this.gso[0] === 1;
  }
}
