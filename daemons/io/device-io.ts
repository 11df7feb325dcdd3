// The I/O under a client's or gateway's device machine (ClientDevice, GatewayDevice): its TUN
// device, its one UDP socket, the host's addresses and one timer. The role's daemon decides what
// each output means; this file only moves bytes and time.
//
// 1. Open (DeviceIo.open): the TUN device and the UDP socket (IPv4, any address, the given port),
//    so a missing capability or a port in use fails the start, before the portal is asked anything.
// 2. Attach a device (attach): from then on, a readable TUN device is read in batches, each packet
//    copied out and handed to `onTunPacket`; a datagram goes to the device's handleDatagram; the
//    host's addresses (./host-addresses.ts: not our TUN device's or another VPN tunnel's) are its host
//    candidates, checked again every LOCAL_ADDRESSES_INTERVAL_MS (a change is a roam).
// 3. After the inputs of one event-loop turn (`input`), or a TUN batch: the device's datagrams are
//    sent, its outputs handed to `onOutput` (which may queue packets for the TUN device with
//    writeTun), the queued packets written in one batch, and the one timer armed for the device's
//    next deadline. Flushes never nest: an input made while flushing is flushed by the loop already
//    running.
// 4. Close: timer, polls, socket and device (the kernel removes a TUN device with its last fd).
//
// Time is performance.now() in ms; the device machines take it as their monotonic clock.

import { createSocket, type Socket } from "node:dgram";
import { performance } from "node:perf_hooks";
import { PacketVector, TunDevice } from "../native/index.js";
import type { DeviceCore } from "../proto/tunnel/device-core.js";
import type { TunnelTransmit } from "../proto/tunnel/node.js";
import { candidateAddresses } from "./host-addresses.js";

/** How often the host's addresses are read again (a change is a roam). */
export const LOCAL_ADDRESSES_INTERVAL_MS = 5_000;
/** Asked for as the UDP socket's receive and send buffers (the kernel caps them at net.core.[rw]mem_max). */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Packets per TUN read or write call. */
const TUN_BATCH = 64;

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
  /** Datagrams the socket refused (or to a family it cannot reach). */
  udpSendFailed: number;
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
    tunRxPackets: 0, tunRxBytes: 0, tunTxPackets: 0, tunTxBytes: 0, udpRxPackets: 0, udpRxBytes: 0, udpTxPackets: 0, udpTxBytes: 0, tunWriteFailed: 0, udpSendFailed: 0,
  };
  private device: DeviceCore<Output> | undefined;
  private handlers: DeviceIoHandlers<Output> | undefined;
  private readonly readMemory: Uint8Array;
  private readonly readVector = new PacketVector(TUN_BATCH);
  private readonly writeMemory: Uint8Array;
  private readonly writeVector = new PacketVector(TUN_BATCH);
  private readonly toTun: Uint8Array[] = [];
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
    private readonly udp: Socket,
    /** The bound UDP port. */
    readonly port: number,
    private readonly mtu: number,
  ) {
    const slot = mtu + 64;
    this.readMemory = new Uint8Array(slot * TUN_BATCH);
    this.writeMemory = new Uint8Array(slot * TUN_BATCH);
    for (let i = 0; i < TUN_BATCH; i++) this.readVector.set(i, i * slot, slot);
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
    // Large buffers: a burst the event loop is too busy to read at once waits in the kernel instead
    // of being dropped (the default, about 200 KB, lost one datagram in nine of a TCP transfer).
    const udp = createSocket({ type: "udp4", recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(options.port, () => {
          udp.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      tun.close();
      udp.close();
      throw new Error(`cannot bind UDP port ${options.port}: ${(error as Error).message}`);
    }
    return new DeviceIo<Output>(tun, udp, udp.address().port, options.mtu);
  }

  /** Starts moving packets for `device`: TUN reads, datagrams, host addresses, timers (2.). */
  attach(device: DeviceCore<Output>, handlers: DeviceIoHandlers<Output>): void {
    this.device = device;
    this.handlers = handlers;
    this.udp.on("message", (bytes, rinfo) => {
      this.counters.udpRxPackets++;
      this.counters.udpRxBytes += bytes.length;
      this.input((now) => device.handleDatagram(now, this.port, { family: rinfo.family === "IPv6" ? 6 : 4, address: rinfo.address, port: rinfo.port }, bytes));
    });
    this.udp.on("error", () => {
      // A failed send is counted where it is made; the socket itself keeps working.
    });
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
    this.udp.removeAllListeners("message");
    try {
      this.udp.close();
    } catch {
      // closed already
    }
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
      this.writeQueued();
    } finally {
      this.flushing = false;
    }
    this.arm();
  }

  private send(t: TunnelTransmit): void {
    if (t.to.family !== 4) {
      this.counters.udpSendFailed++;
      return;
    }
    this.counters.udpTxPackets++;
    this.counters.udpTxBytes += t.bytes.length;
    this.udp.send(t.bytes, t.to.port, t.to.address, (error) => {
      if (error) this.counters.udpSendFailed++;
    });
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
