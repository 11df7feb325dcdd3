// The I/O under a client's or gateway's device machine (ClientDevice, GatewayDevice): its TUN
// device, its one UDP socket, the host's addresses and one timer. The role's daemon decides what
// each output means; this file only moves bytes and time.
//
// 1. Open (DeviceIo.open): the TUN device and the UDP socket (IPv4, any address, the given port;
//    the native one, with large kernel buffers), so a missing capability or a port in use fails the
//    start, before the portal is asked anything.
// 2. Attach a device (attach): from then on, a readable TUN device is read in batches, each packet
//    copied out and handed to `onTunPacket`; a readable socket is read in batches too (recvmmsg,
//    through UdpDriver), each datagram copied out and given to the device's handleDatagram; the
//    host's addresses (./host-addresses.ts: not our TUN device's or another VPN tunnel's) are its host
//    candidates, checked again every LOCAL_ADDRESSES_INTERVAL_MS (a change is a roam).
// 3. After the inputs of one event-loop turn (`input`), or a TUN or socket batch: the device's
//    datagrams are sent in batches (sendmmsg, each peer's address encoded once, runs to one peer
//    segmented), its outputs handed to `onOutput` (which may queue packets for the TUN device with
//    writeTun), the queued packets written in one batch, and the one timer armed for the device's
//    next deadline. Flushes never nest: an input made while flushing is flushed by the loop already
//    running.
// 4. Close: timer, polls, socket and device (the kernel removes a TUN device with its last fd).
//
// Time is performance.now() in ms; the device machines take it as their monotonic clock.

import { performance } from "node:perf_hooks";
import { ADDRESS_SIZE, PacketVector, TunDevice, UdpSocket, writeEndpoint } from "../native/index.js";
import type { TransportAddress } from "../proto/stun/attributes.js";
import type { DeviceCore } from "../proto/tunnel/device-core.js";
import type { TunnelTransmit } from "../proto/tunnel/node.js";
import { candidateAddresses } from "./host-addresses.js";
import { UdpDriver, type UdpBatchSink } from "./udp-driver.js";

/** How often the host's addresses are read again (a change is a roam). */
export const LOCAL_ADDRESSES_INTERVAL_MS = 5_000;
/** Packets per TUN read or write call, and datagrams per recvmmsg or sendmmsg call. */
const TUN_BATCH = 64;
const UDP_BATCH = 64;
/** Room per received datagram beyond the MTU: WireGuard's 32 bytes and a TURN Data indication's 36, with margin. */
const DATAGRAM_OVERHEAD = 256;
/** Datagrams are at most this large whatever the MTU (a STUN message, a TURN-framed packet). */
const MIN_DATAGRAM_ROOM = 2048;

/** Packets and bytes through the device's two ends, and what the kernel would not take. */
export interface DeviceIoCounters {
  tunRxPackets: number;
  tunRxBytes: number;
  tunTxPackets: number;
  tunTxBytes: number;
  udpRxPackets: number;
  udpRxBytes: number;
  udpTxPackets: number;
  udpTxBytes: number;
  /** TUN writes the kernel refused or had no room for. */
  tunWriteFailed: number;
  /** Datagrams the socket refused or had no room for (or to a family it cannot reach). */
  udpSendFailed: number;
  /** Datagrams larger than the receive room, dropped. */
  udpTruncated: number;
}

export interface DeviceIoOptions {
  /** The TUN device's name (or a template like "wl%d"). */
  tunName: string;
  /** Largest packet the TUN device carries. */
  mtu: number;
  /** The UDP port (0: any). */
  port: number;
}

/** What the daemon does with what DeviceIo reads and the device outputs. */
export interface DeviceIoHandlers<Output> {
  onTunPacket: (now: number, packet: Uint8Array) => void;
  onOutput: (now: number, output: Output) => void;
  /** The TUN device is gone (deleted under us): nothing more can pass; the daemon should stop. */
  onFatal: (reason: string) => void;
}

/** The TUN device, UDP socket and timer of one device machine (file header). */
export class DeviceIo<Output> {
  readonly counters: DeviceIoCounters = {
    tunRxPackets: 0, tunRxBytes: 0, tunTxPackets: 0, tunTxBytes: 0, udpRxPackets: 0, udpRxBytes: 0, udpTxPackets: 0, udpTxBytes: 0, tunWriteFailed: 0, udpSendFailed: 0, udpTruncated: 0,
  };
  private device: DeviceCore<Output> | undefined;
  private handlers: DeviceIoHandlers<Output> | undefined;
  private readonly readMemory: Uint8Array;
  private readonly readVector = new PacketVector(TUN_BATCH);
  private readonly writeMemory: Uint8Array;
  private readonly writeVector = new PacketVector(TUN_BATCH);
  private readonly toTun: Uint8Array[] = [];
  private readonly recvMemory: Uint8Array;
  private readonly recvVector = new PacketVector(UDP_BATCH);
  private readonly recvSlot: number;
  private readonly sendMemory: Uint8Array;
  private readonly sendVector = new PacketVector(UDP_BATCH);
  private readonly sendSlot: number;
  private sendCount = 0;
  /** Each destination's encoded address, by the object the device names it with (stable per path). */
  private readonly encoded = new WeakMap<TransportAddress, Uint8Array>();
  /** The sources of received datagrams, decoded once each: IPv4 address × 65536 + port → object. */
  private readonly sources = new Map<number, TransportAddress>();
  private driver: UdpDriver | undefined;
  private timer: NodeJS.Timeout | undefined;
  private addressTimer: NodeJS.Timeout | undefined;
  private addresses = "";
  private flushing = false;
  private flushScheduled = false;
  private closed = false;
  /** Last error of a TUN read, for the owner to log. */
  lastTunError: Error | undefined;

  private constructor(
    readonly tun: TunDevice,
    private readonly udp: UdpSocket,
    /** The bound UDP port. */
    readonly port: number,
    private readonly mtu: number,
  ) {
    const slot = mtu + 64;
    this.readMemory = new Uint8Array(slot * TUN_BATCH);
    this.writeMemory = new Uint8Array(slot * TUN_BATCH);
    for (let i = 0; i < TUN_BATCH; i++) this.readVector.set(i, i * slot, slot);
    this.recvSlot = Math.max(MIN_DATAGRAM_ROOM, mtu + DATAGRAM_OVERHEAD);
    this.recvMemory = new Uint8Array(this.recvSlot * UDP_BATCH);
    this.sendSlot = this.recvSlot;
    this.sendMemory = new Uint8Array(this.sendSlot * UDP_BATCH);
  }

  /** Opens the TUN device and binds the UDP socket; throws naming what failed. */
  static async open<Output>(options: DeviceIoOptions): Promise<DeviceIo<Output>> {
    let tun: TunDevice;
    try {
      tun = TunDevice.open(options.tunName);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(`cannot open the TUN device '${options.tunName}': ${(error as Error).message}${code === "EPERM" ? " (needs root or CAP_NET_ADMIN)" : ""}`);
    }
    // The native socket asks for large kernel buffers: a burst the event loop is too busy to read at
    // once waits in the kernel instead of being dropped (the default, about 200 KB, lost one
    // datagram in nine of a TCP transfer).
    let udp: UdpSocket;
    try {
      udp = UdpSocket.open(4, "", options.port);
    } catch (error) {
      tun.close();
      throw new Error(`cannot bind UDP port ${options.port}: ${(error as Error).message}`);
    }
    return new DeviceIo<Output>(tun, udp, udp.port, options.mtu);
  }

  /** Starts moving packets for `device`: TUN reads, datagrams, host addresses, timers (2.). */
  attach(device: DeviceCore<Output>, handlers: DeviceIoHandlers<Output>): void {
    this.device = device;
    this.handlers = handlers;
    this.driver = new UdpDriver(this.udp, this.recvMemory, this.recvVector, this.receiveSink);
    this.driver.start();
    this.tun.onReadable((error) => {
      if (error === undefined) {
        this.readTun();
        return;
      }
      // The poll fails for good when the device is deleted (`ip link del`): nothing can pass any more.
      this.lastTunError = error;
      this.tun.onReadable(undefined);
      handlers.onFatal(`the TUN device ${this.tun.name} is gone (${error.message}); was it deleted?`);
    });
    this.checkAddresses();
  }

  /**
   * Runs an input of the device at the current time; the flush (3.) follows once the event loop's
   * current phase is over, so every datagram of one socket wake-up (libuv reads up to 32) is taken
   * in before their answers go out and their packets are written to the TUN device in one batch.
   */
  input(apply: (now: number) => void): void {
    if (this.closed) return;
    apply(performance.now());
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Queues a packet for the TUN device; written at the end of the flush. */
  writeTun(packet: Uint8Array): void {
    this.toTun.push(packet);
  }

  /** The host addresses the device was last given. */
  get localAddresses(): string[] {
    return this.addresses === "" ? [] : this.addresses.split(",");
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.addressTimer) clearTimeout(this.addressTimer);
    this.tun.onReadable(undefined);
    this.tun.close();
    this.driver?.stop();
    this.udp.close();
  }

  /** Last error of a UDP poll or receive, for the owner to log. */
  get lastUdpError(): Error | undefined {
    return this.driver?.lastError;
  }

  private readonly receiveSink: UdpBatchSink = {
    prepare: (vector) => {
      if (this.closed) return 0;
      for (let i = 0; i < UDP_BATCH; i++) vector.set(i, i * this.recvSlot, this.recvSlot);
      return UDP_BATCH;
    },
    deliver: (vector, count) => {
      const device = this.device;
      if (device === undefined || this.closed) return;
      const now = performance.now();
      for (let i = 0; i < count; i++) {
        const length = vector.lengths[i]!;
        if (length === 0) {
          this.counters.udpTruncated++;
          continue;
        }
        const from = this.sourceOf(vector.addresses, i);
        if (from === undefined) continue;
        this.counters.udpRxPackets++;
        this.counters.udpRxBytes += length;
        const offset = vector.offsets[i]!;
        // Copied out: the memory takes the next batch, and the machines may hold what they parsed.
        device.handleDatagram(now, this.port, from, this.recvMemory.slice(offset, offset + length));
      }
      this.flush();
    },
  };

  /** Datagram i's source, one object per address and port (the machines compare them by value). */
  private sourceOf(addresses: Uint8Array, i: number): TransportAddress | undefined {
    const at = i * ADDRESS_SIZE;
    if (addresses[at] !== 4) return undefined;
    const port = (addresses[at + 2]! << 8) | addresses[at + 3]!;
    const ip = ((addresses[at + 4]! << 24) | (addresses[at + 5]! << 16) | (addresses[at + 6]! << 8) | addresses[at + 7]!) >>> 0;
    const key = ip * 65536 + port;
    let source = this.sources.get(key);
    if (source === undefined) {
      // Bounded: a flood from many sources must not grow it without end.
      if (this.sources.size >= 4096) this.sources.clear();
      source = { family: 4, address: `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`, port };
      this.sources.set(key, source);
    }
    return source;
  }

  private readTun(): void {
    const device = this.device;
    if (!device || this.closed) return;
    const now = performance.now();
    for (let round = 0; round < 8; round++) {
      let count: number;
      try {
        count = this.tun.read(this.readMemory, this.readVector);
      } catch (error) {
        this.lastTunError = error as Error;
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EBADFD" || code === "EBADF" || code === "EIO" || code === "ENODEV") {
          this.tun.onReadable(undefined);
          this.handlers!.onFatal(`the TUN device ${this.tun.name} is gone (${code}); was it deleted?`);
          return;
        }
        break;
      }
      for (let i = 0; i < count; i++) {
        const offset = this.readVector.offsets[i]!;
        const length = Math.min(this.readVector.lengths[i]!, this.readVector.capacities[i]!);
        this.counters.tunRxPackets++;
        this.counters.tunRxBytes += length;
        // Copied out: the state machines may hold a packet (waiting for a path or a DNS answer).
        this.handlers!.onTunPacket(now, this.readMemory.slice(offset, offset + length));
      }
      if (count < TUN_BATCH) break;
    }
    this.flush();
  }

  private flush(): void {
    if (this.flushing) return;
    const device = this.device;
    if (!device) return;
    this.flushing = true;
    try {
      for (let progress = true; progress; ) {
        progress = false;
        for (let t = device.pollTransmit(); t !== undefined; t = device.pollTransmit()) {
          progress = true;
          this.send(t);
        }
        for (let out = device.pollOutput(); out !== undefined; out = device.pollOutput()) {
          progress = true;
          this.handlers!.onOutput(performance.now(), out);
        }
      }
      this.sendQueued();
      this.writeQueued();
    } finally {
      this.flushing = false;
    }
    this.arm();
  }

  /** Queues a datagram in the send batch (sent when full and at the end of the flush). */
  private send(t: TunnelTransmit): void {
    if (t.to.family !== 4 || t.bytes.length > this.sendSlot) {
      this.counters.udpSendFailed++;
      return;
    }
    let address = this.encoded.get(t.to);
    if (address === undefined) {
      address = new Uint8Array(ADDRESS_SIZE);
      try {
        writeEndpoint(address, 0, t.to);
      } catch {
        this.counters.udpSendFailed++;
        return;
      }
      this.encoded.set(t.to, address);
    }
    const i = this.sendCount++;
    const offset = i * this.sendSlot;
    this.sendMemory.set(t.bytes, offset);
    this.sendVector.offsets[i] = offset;
    this.sendVector.lengths[i] = t.bytes.length;
    this.sendVector.addresses.set(address, i * ADDRESS_SIZE);
    if (this.sendCount === UDP_BATCH) this.sendQueued();
  }

  /** Sends the batch (sendmmsg); what the kernel refused or had no room for is counted and dropped, as UDP may. */
  private sendQueued(): void {
    const count = this.sendCount;
    if (count === 0) return;
    this.sendCount = 0;
    let sent = 0;
    try {
      sent = this.udp.send(this.sendMemory, this.sendVector, count, true);
    } catch {
      sent = 0;
    }
    for (let i = 0; i < sent; i++) {
      if (this.sendVector.statuses[i] !== 0) this.counters.udpSendFailed++;
      else {
        this.counters.udpTxPackets++;
        this.counters.udpTxBytes += this.sendVector.lengths[i]!;
      }
    }
    this.counters.udpSendFailed += count - sent;
  }

  private writeQueued(): void {
    const slot = this.mtu + 64;
    while (this.toTun.length > 0) {
      const batch = this.toTun.splice(0, TUN_BATCH);
      let count = 0;
      for (const packet of batch) {
        if (packet.length > slot) {
          this.counters.tunWriteFailed++;
          continue;
        }
        this.writeMemory.set(packet, count * slot);
        this.writeVector.set(count, count * slot, packet.length);
        count++;
      }
      let written = 0;
      try {
        written = this.tun.write(this.writeMemory, this.writeVector, count);
      } catch (error) {
        this.lastTunError = error as Error;
      }
      for (let i = 0; i < written; i++) {
        if (this.writeVector.statuses[i] !== 0) this.counters.tunWriteFailed++;
        else {
          this.counters.tunTxPackets++;
          this.counters.tunTxBytes += this.writeVector.lengths[i]!;
        }
      }
      this.counters.tunWriteFailed += count - written;
    }
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const at = this.device?.pollTimeout();
    if (at === undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.input((now) => this.device!.handleTimeout(now));
    }, Math.max(0, Math.ceil(at - performance.now())));
  }

  /** Gives the device the host's addresses when they changed, and checks again later. */
  private checkAddresses(): void {
    if (this.closed) return;
    const found = candidateAddresses(this.tun.name);
    const text = found.join(",");
    if (text !== this.addresses) {
      this.addresses = text;
      this.input((now) => this.device!.setLocalAddresses(now, found));
    }
    this.addressTimer = setTimeout(() => this.checkAddresses(), LOCAL_ADDRESSES_INTERVAL_MS);
    this.addressTimer.unref();
  }
}
