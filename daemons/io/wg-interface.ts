// A standalone userspace WireGuard interface: the TUN device, one UDP socket per address family,
// the engine (sessions, allowed IPs, batched seal and open) and the protocol (WireGuardDevice),
// configured through WireGuardConfig, which the UAPI socket and `wardline wg --config` both feed.
//
// Outbound (TUN readable), per batch of up to engine.batch.maxPackets packets:
//   1. read packets straight into regions the batch reserved; set each packet's real length;
//   2. routeOutbound picks each packet's peer by destination (allowed IPs, in the engine);
//   3. per peer, the protocol names the session to seal with, or the packets are staged and a
//      handshake starts;
//   4. one seal call; sendmmsg straight from engine memory to each peer's current endpoint.
// Inbound (UDP readable, through UdpDriver):
//   1. recvmmsg straight into the batch; one open call, then checkInbound (the inner source must be
//      an allowed IP of the session's peer);
//   2. authenticated packets go to the TUN in one batch; each session that spoke tells the protocol
//      once per batch (timers, key confirmation, roaming to the packet's source);
//   3. handshake messages (which open reports as BadType) go to the protocol one by one.
// After every input, the protocol's transmits and events are drained (install and drop sessions,
// seal and send staged packets and keepalives) and one timer is armed for its next deadline.
//
// Everything runs on the event loop: a batch is filled, handled and sent within one callback, so
// the one engine batch is never shared between two callers.

import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Engine, MESSAGE_TRANSPORT_HEADER_SIZE, TransportStatus, type EngineOptions } from "../engine/index.js";
import {
  ADDRESS_SIZE, PacketVector, readEndpoint, TunDevice, UdpSocket, writeEndpoint,
} from "../native/index.js";
import { MESSAGE_COOKIE_REPLY_TYPE, MESSAGE_INITIATION_TYPE, MESSAGE_RESPONSE_TYPE } from "../proto/wireguard/constants.js";
import type { Endpoint as ProtoEndpoint } from "../proto/wireguard/device.js";
import { WireGuardDevice, type DeviceTransmit } from "../proto/wireguard/device.js";
import { StaticIdentity } from "../proto/wireguard/noise.js";
import {
  toHex, WireGuardConfig, type DeviceUpdate, type PeerCounters, type PeerConfig,
} from "../proto/wireguard/uapi.js";
import { UdpDriver, type UdpBatchSink } from "./udp-driver.js";
import { nodeX25519 } from "./x25519-node.js";

/** wireguard-go's default: 1500 minus the largest outer headers (IPv6 40 + UDP 8 + WireGuard 32). */
export const DEFAULT_MTU = 1420;

/** errno values the UAPI reports when the data plane cannot follow a set. */
const EADDRINUSE = -98;
const EINVAL = -22;

export interface InterfaceOptions {
  /** The TUN device's name ("" or a template like "wl%d" lets the kernel choose). */
  name: string;
  /** Largest inner packet the interface carries; buffers are sized for it (default DEFAULT_MTU). */
  mtu?: number;
  engine?: EngineOptions;
  /** Where diagnostics go (handshake failures, drops); nothing by default. */
  log?: (line: string) => void;
  /**
   * The TUN device failed for good (deleted with `ip link del`, as wg-quick down does): the
   * interface has closed itself; the owner should exit, as wireguard-go does.
   */
  onFatal?: (reason: string) => void;
}

/** Packets the interface dropped, per reason, for operators and tests. */
export interface InterfaceDrops {
  /** Outbound packets whose destination is no peer's allowed IP (or that are not IP). */
  noRoute: number;
  /** Outbound packets for a peer that has no endpoint yet. */
  noEndpoint: number;
  /** Inbound packets that failed to open, by engine status name. */
  inbound: Record<string, number>;
  /** Packets the kernel would not take (a full socket or TUN queue, or an errno). */
  sendFailed: number;
  tunWriteFailed: number;
}

interface PeerState {
  id: number;
  hex: string;
  presharedKeyHex: string;
  keepaliveMs: number;
  allowedIpsKey: string;
  tx: number;
  rx: number;
  lastHandshakeUnixNanos: bigint;
}

interface EndpointCache {
  /** The protocol's endpoint object this was encoded from (it replaces the object when it changes). */
  source: ProtoEndpoint;
  family: 4 | 6;
  bytes: Uint8Array;
}

const align16 = (n: number): number => (n + 15) & ~15;

function familyOf(endpoint: ProtoEndpoint): 4 | 6 {
  return endpoint.address.includes(":") ? 6 : 4;
}

/** A running WireGuard interface; see the file comment. */
export class WireGuardInterface {
  readonly config = new WireGuardConfig();
  readonly drops: InterfaceDrops = { noRoute: 0, noEndpoint: 0, inbound: {}, sendFailed: 0, tunWriteFailed: 0 };
  readonly engine: Engine;
  readonly tun: TunDevice;
  readonly mtu: number;

  private device: WireGuardDevice | undefined;
  private privateKeyHex: string | null = null;
  private readonly peers = new Map<string, PeerState>();
  private readonly peersById = new Map<number, PeerState>();
  /** Session slot by local index, and back: a slot is in use while peerOfSlot holds a peer id (not -1). */
  private readonly slotOf = new Map<number, number>();
  private readonly localIndexOfSlot: Uint32Array;
  private readonly peerOfSlot: Int32Array;
  private readonly endpoints = new Map<number, EndpointCache>();

  private readonly sockets: { 4?: UdpSocket; 6?: UdpSocket } = {};
  private readonly drivers: UdpDriver[] = [];
  private boundPort = -1;

  private readonly mem: Uint8Array;
  private readonly tunVector: PacketVector;
  private readonly sendVectors: { 4: PacketVector; 6: PacketVector };
  private readonly recvVector: PacketVector;
  private readonly controlMemory = new Uint8Array(256);
  private readonly controlVector = new PacketVector(1);
  private readonly txCapacity: number;
  private readonly rxCapacity: number;
  private readonly tunBatch: number;
  private readonly rxBatch: number;
  private readonly peerOfPacket: Int32Array;

  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private closed = false;
  private readonly log: (line: string) => void;
  private readonly onFatal: ((reason: string) => void) | undefined;
  private readonly wallClockAtZeroNanos = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n;

  private constructor(tun: TunDevice, engine: Engine, options: InterfaceOptions) {
    this.tun = tun;
    this.engine = engine;
    this.mtu = options.mtu ?? DEFAULT_MTU;
    this.log = options.log ?? (() => {});
    this.onFatal = options.onFatal;
    this.mem = engine.batch.memory;
    const batch = engine.batch;
    this.txCapacity = Math.max(this.mtu, 1500);
    this.rxCapacity = align16(Math.max(this.mtu + 64, 4096));
    this.tunBatch = Math.max(1, Math.min(batch.maxPackets, Math.floor(batch.arenaBytes / (align16(this.txCapacity) + 32))));
    this.rxBatch = Math.max(1, Math.min(batch.maxPackets, Math.floor(batch.arenaBytes / this.rxCapacity)));
    this.tunVector = new PacketVector(batch.maxPackets);
    this.sendVectors = { 4: new PacketVector(batch.maxPackets), 6: new PacketVector(batch.maxPackets) };
    this.recvVector = new PacketVector(batch.maxPackets);
    this.peerOfPacket = new Int32Array(batch.maxPackets);
    this.localIndexOfSlot = new Uint32Array(engine.sessions.capacity);
    this.peerOfSlot = new Int32Array(engine.sessions.capacity).fill(-1);
  }

  /** Creates the TUN device and the engine; the interface is unconfigured until apply(). */
  static open(options: InterfaceOptions): WireGuardInterface {
    const mtu = options.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new RangeError(`mtu must be 576..65535, got ${mtu}`);
    const engine = Engine.create(options.engine);
    const tun = TunDevice.open(options.name);
    const wg = new WireGuardInterface(tun, engine, options);
    tun.onReadable((error) => {
      if (error) wg.fail(`the TUN device failed (${error.message}); was it deleted?`);
      else wg.onTunReadable();
    });
    return wg;
  }

  get name(): string {
    return this.tun.name;
  }

  /** The UDP port the interface listens on (0 before the first apply). */
  get listenPort(): number {
    return Math.max(this.boundPort, 0);
  }

  /**
   * Applies a configuration change to config and carries it into the data plane; returns 0, or a
   * negative errno when the data plane could not follow (the UAPI answers it).
   */
  apply(update: DeviceUpdate): number {
    this.config.apply(update);
    return this.reconcile(update);
  }

  /** UAPI hook: config was already changed by the socket; follow it. */
  onApplied(update: DeviceUpdate): number {
    return this.reconcile(update);
  }

  /** Counters for `wg show`, by hex public key. */
  counters(publicKeyHex: string): PeerCounters | undefined {
    const peer = this.peers.get(publicKeyHex);
    if (peer === undefined) return undefined;
    // Report where the peer is now (it may have roamed), as wg show does.
    const endpoint = this.device?.endpointOf(peer.id);
    const configured = this.config.peers.get(publicKeyHex);
    if (endpoint !== undefined && configured !== undefined) configured.endpoint = { address: endpoint.address, port: endpoint.port };
    return { lastHandshakeUnixNanos: peer.lastHandshakeUnixNanos, txBytes: BigInt(peer.tx), rxBytes: BigInt(peer.rx) };
  }

  /** Stops everything and closes the TUN (the kernel removes the device) and the sockets. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const driver of this.drivers) driver.stop();
    for (const socket of [this.sockets[4], this.sockets[6]]) socket?.close();
    this.tun.close();
    this.dropAllSessions();
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.log(reason);
    this.close();
    this.onFatal?.(reason);
  }

  // --- Configuration ---

  private reconcile(update: DeviceUpdate): number {
    const now = performance.now();
    const key = this.config.privateKey === null ? null : toHex(this.config.privateKey);
    if (key !== this.privateKeyHex) {
      this.privateKeyHex = key;
      this.rebuildDevice();
    }
    const errno = this.bind(this.config.listenPort);
    const device = this.device;
    if (device !== undefined) {
      for (const [hex, peer] of this.peers) if (!this.config.peers.has(hex)) this.removePeer(peer);
      for (const [hex, configured] of this.config.peers) {
        let peer = this.peers.get(hex);
        const pskHex = toHex(configured.presharedKey);
        if (peer !== undefined && peer.presharedKeyHex !== pskHex) {
          this.removePeer(peer);
          peer = undefined;
        }
        const fresh = peer === undefined;
        if (peer === undefined) {
          peer = this.addPeer(device, hex, configured, pskHex);
          if (peer === undefined) continue;
        }
        const told = update.peers.find((p) => toHex(p.publicKey) === hex && !p.remove);
        if (fresh || told?.endpoint !== undefined) device.setEndpoint(peer.id, configured.endpoint);
        const keepaliveMs = configured.persistentKeepaliveInterval * 1000;
        if (keepaliveMs !== peer.keepaliveMs) {
          peer.keepaliveMs = keepaliveMs;
          device.setPersistentKeepalive(now, peer.id, keepaliveMs);
        }
        this.syncAllowedIps(peer, configured);
      }
    }
    this.drain(now);
    return errno;
  }

  private addPeer(device: WireGuardDevice, hex: string, configured: PeerConfig, pskHex: string): PeerState | undefined {
    let id: number;
    try {
      const psk = configured.presharedKey.some((b) => b !== 0) ? configured.presharedKey : undefined;
      id = device.addPeer(configured.publicKey, { presharedKey: psk, endpoint: configured.endpoint });
    } catch (error) {
      this.log(`peer ${hex.slice(0, 8)}…: ${(error as Error).message}; not added`);
      return undefined;
    }
    const peer: PeerState = {
      id, hex, presharedKeyHex: pskHex, keepaliveMs: 0, allowedIpsKey: "", tx: 0, rx: 0, lastHandshakeUnixNanos: 0n,
    };
    this.peers.set(hex, peer);
    this.peersById.set(id, peer);
    return peer;
  }

  private removePeer(peer: PeerState): void {
    this.device?.removePeer(peer.id);
    this.engine.routes.removePeer(peer.id);
    this.peers.delete(peer.hex);
    this.peersById.delete(peer.id);
    this.endpoints.delete(peer.id);
    this.drain(performance.now());
  }

  private syncAllowedIps(peer: PeerState, configured: PeerConfig): void {
    const key = configured.allowedIps.map((p) => `${toHex(p.address)}/${p.length}`).join(",");
    if (key === peer.allowedIpsKey) return;
    peer.allowedIpsKey = key;
    this.engine.routes.removePeer(peer.id);
    for (const prefix of configured.allowedIps) this.engine.routes.insert(prefix, peer.id);
  }

  /** A new private key (or none): every session and peer of the old identity goes. */
  private rebuildDevice(): void {
    this.dropAllSessions();
    this.engine.routes.clear();
    this.peers.clear();
    this.peersById.clear();
    this.endpoints.clear();
    const key = this.config.privateKey;
    this.device =
      key === null
        ? undefined
        : new WireGuardDevice({
            identity: new StaticIdentity(key, nodeX25519),
            random: (n) => new Uint8Array(randomBytes(n)),
            wallClockAtZeroNanos: this.wallClockAtZeroNanos,
          });
  }

  private dropAllSessions(): void {
    for (const slot of this.slotOf.values()) {
      this.engine.sessions.drop(slot);
      this.peerOfSlot[slot] = -1;
    }
    this.slotOf.clear();
  }

  /** Binds the sockets to port (0: any, the same for both families); returns 0 or an errno. */
  private bind(port: number): number {
    if (this.boundPort >= 0 && (port === this.boundPort || port === 0)) {
      this.config.listenPort = this.boundPort;
      return 0;
    }
    let v4: UdpSocket;
    try {
      v4 = UdpSocket.open(4, "", port);
    } catch (error) {
      const code = (error as { code?: string }).code;
      this.log(`listen port ${port}: ${(error as Error).message}`);
      this.config.listenPort = Math.max(this.boundPort, 0);
      return code === "EADDRINUSE" ? EADDRINUSE : EINVAL;
    }
    let v6: UdpSocket | undefined;
    try {
      v6 = UdpSocket.open(6, "", v4.port);
    } catch (error) {
      this.log(`no IPv6 socket on port ${v4.port}: ${(error as Error).message}; IPv4 endpoints only`);
    }
    for (const driver of this.drivers) driver.stop();
    this.drivers.length = 0;
    this.sockets[4]?.close();
    this.sockets[6]?.close();
    this.sockets[4] = v4;
    this.sockets[6] = v6;
    this.boundPort = v4.port;
    this.config.listenPort = v4.port;
    for (const socket of [v4, v6]) {
      if (socket === undefined) continue;
      const driver = new UdpDriver(socket, this.mem, this.recvVector, this.receiveSink);
      driver.start();
      this.drivers.push(driver);
    }
    return 0;
  }

  // --- Outbound: TUN → peers ---

  private onTunReadable(): void {
    const device = this.device;
    const batch = this.engine.batch;
    const vector = this.tunVector;
    for (let round = 0; round < 8; round++) {
      batch.reset();
      const max = this.tunBatch;
      for (let i = 0; i < max; i++) vector.set(i, batch.reservePlaintextOffset(0, this.txCapacity), this.txCapacity);
      let count: number;
      try {
        count = this.tun.read(this.mem, vector, max);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === "EBADFD" || code === "EBADF" || code === "EIO" || code === "ENODEV") {
          this.fail(`the TUN device is gone (${code}); was it deleted?`);
        } else {
          this.log(`tun: read failed: ${(error as Error).message}`);
        }
        return;
      }
      if (count === 0) return;
      batch.truncate(count);
      for (let i = 0; i < count; i++) batch.setLength(i, Math.min(vector.lengths[i]!, this.txCapacity));
      if (device === undefined) {
        this.drops.noRoute += count; // no private key yet: nothing can be sent
      } else {
        this.sealAndSendBatch(device, count);
      }
      this.drain(performance.now());
      if (count < max) return;
    }
  }

  /** Routes, assigns sessions (or stages), seals and sends the count plaintexts in the batch. */
  private sealAndSendBatch(device: WireGuardDevice, count: number): void {
    const batch = this.engine.batch;
    const now = performance.now();
    batch.routeOutbound();
    const peerOf = this.peerOfPacket;
    // The distinct peers of this batch; nearly always one or two.
    const distinct: number[] = [];
    for (let i = 0; i < count; i++) {
      const peer = batch.status(i) === TransportStatus.Ok ? batch.peer(i) : undefined;
      if (peer === undefined) {
        peerOf[i] = -1;
        this.drops.noRoute++;
        continue;
      }
      peerOf[i] = peer;
      if (!distinct.includes(peer)) distinct.push(peer);
    }
    for (const peer of distinct) {
      let n = 0;
      for (let i = 0; i < count; i++) if (peerOf[i] === peer) n++;
      const localIndex = device.send(now, peer, n);
      const slot = localIndex === undefined ? undefined : this.slotOf.get(localIndex);
      if (slot === undefined) {
        const staged: Uint8Array[] = [];
        for (let i = 0; i < count; i++) {
          if (peerOf[i] !== peer) continue;
          staged.push(batch.plaintext(i));
          batch.hold(i);
          peerOf[i] = -1;
        }
        device.stage(peer, staged);
        continue;
      }
      for (let i = 0; i < count; i++) if (peerOf[i] === peer) batch.setSession(i, slot);
    }
    batch.seal();
    this.sendSealed(count, peerOf);
  }

  /** Sends the batch's sealed packets i < count to the endpoint of peerOf[i] (skipping -1). */
  private sendSealed(count: number, peerOf: Int32Array): void {
    const batch = this.engine.batch;
    const v4 = this.sendVectors[4];
    const v6 = this.sendVectors[6];
    let n4 = 0;
    let n6 = 0;
    for (let i = 0; i < count; i++) {
      const id = peerOf[i]!;
      if (id < 0 || batch.status(i) !== TransportStatus.Ok) continue;
      const endpoint = this.endpointOf(id);
      if (endpoint === undefined) {
        this.drops.noEndpoint++;
        continue;
      }
      const length = batch.packetLength(i);
      const vector = endpoint.family === 4 ? v4 : v6;
      const at = endpoint.family === 4 ? n4++ : n6++;
      vector.offsets[at] = batch.packetOffset(i);
      vector.lengths[at] = length;
      vector.addresses.set(endpoint.bytes, at * ADDRESS_SIZE);
      this.peersById.get(id)!.tx += length;
    }
    if (n4 > 0) this.sendVector(4, v4, n4);
    if (n6 > 0) this.sendVector(6, v6, n6);
  }

  private sendVector(family: 4 | 6, vector: PacketVector, count: number): void {
    const socket = this.sockets[family];
    if (socket === undefined) {
      this.drops.sendFailed += count;
      return;
    }
    let sent: number;
    try {
      sent = socket.send(this.mem, vector, count, true);
    } catch (error) {
      this.log(`udp: send failed: ${(error as Error).message}`);
      sent = 0;
    }
    let failed = count - sent;
    for (let i = 0; i < sent; i++) if (vector.statuses[i] !== 0) failed++;
    this.drops.sendFailed += failed;
  }

  /** The peer's current endpoint, encoded once each time the protocol changes it. */
  private endpointOf(id: number): EndpointCache | undefined {
    const source = this.device?.endpointOf(id);
    if (source === undefined) return undefined;
    const cached = this.endpoints.get(id);
    if (cached !== undefined && cached.source === source) return cached;
    const family = familyOf(source);
    const bytes = new Uint8Array(ADDRESS_SIZE);
    writeEndpoint(bytes, 0, { family, address: source.address, port: source.port });
    const entry = { source, family, bytes };
    this.endpoints.set(id, entry);
    return entry;
  }

  // --- Inbound: peers → TUN ---

  private readonly receiveSink: UdpBatchSink = {
    prepare: (vector) => {
      const batch = this.engine.batch;
      batch.reset();
      const max = this.rxBatch;
      for (let i = 0; i < max; i++) vector.set(i, batch.reservePacketOffset(this.rxCapacity), this.rxCapacity);
      return max;
    },
    deliver: (vector, count) => this.openBatch(vector, count),
  };

  private openBatch(vector: PacketVector, count: number): void {
    const batch = this.engine.batch;
    const device = this.device;
    batch.truncate(count);
    for (let i = 0; i < count; i++) batch.setLength(i, vector.lengths[i]!);
    batch.open();
    batch.checkInbound();
    const now = performance.now();
    const tun = this.tunVector;
    let toTun = 0;
    /** Per session that spoke: the last packet's index and whether any carried data. */
    const spoke = new Map<number, { last: number; data: boolean }>();
    const handshakes: number[] = [];
    for (let i = 0; i < count; i++) {
      const status = batch.status(i);
      if (status === TransportStatus.Ok) {
        const slot = batch.session(i);
        const length = batch.packetLength(i);
        const peer = this.peersById.get(this.peerOfSlot[slot]!);
        if (peer !== undefined) peer.rx += vector.lengths[i]!;
        const seen = spoke.get(slot);
        if (seen === undefined) spoke.set(slot, { last: i, data: length > 0 });
        else {
          seen.last = i;
          seen.data ||= length > 0;
        }
        if (length > 0) {
          tun.offsets[toTun] = batch.packetOffset(i) + MESSAGE_TRANSPORT_HEADER_SIZE;
          tun.lengths[toTun] = length;
          toTun++;
        }
        continue;
      }
      const type = this.mem[batch.packetOffset(i)];
      if (status === TransportStatus.BadType && (type === MESSAGE_INITIATION_TYPE || type === MESSAGE_RESPONSE_TYPE || type === MESSAGE_COOKIE_REPLY_TYPE)) {
        handshakes.push(i);
        continue;
      }
      const name = TransportStatus[status] ?? String(status);
      this.drops.inbound[name] = (this.drops.inbound[name] ?? 0) + 1;
    }
    if (toTun > 0) {
      let written = 0;
      try {
        written = this.tun.write(this.mem, tun, toTun);
      } catch (error) {
        this.log(`tun: write failed: ${(error as Error).message}`);
      }
      let failed = toTun - written;
      for (let i = 0; i < written; i++) if (tun.statuses[i] !== 0) failed++;
      this.drops.tunWriteFailed += failed;
    }
    if (device === undefined) return;
    for (const [slot, { last, data }] of spoke) {
      const source = readEndpoint(vector.addresses, last);
      // Indices are u32: half of them are 2^31 or more, so "in use" is peerOfSlot's to say.
      if (source !== undefined && this.peerOfSlot[slot]! >= 0) device.authenticated(now, this.localIndexOfSlot[slot]!, source, data);
    }
    for (const i of handshakes) {
      const source = readEndpoint(vector.addresses, i);
      if (source === undefined) continue;
      const at = batch.packetOffset(i);
      const bytes = this.mem.slice(at, at + vector.lengths[i]!);
      const peerBefore = this.handshakePeer(device, bytes);
      device.handshakeDatagram(now, bytes, { address: source.address, port: source.port });
      if (peerBefore !== undefined) peerBefore.rx += bytes.length;
    }
    this.drain(now);
  }

  /** The peer a response or cookie reply is addressed to (by our index), for its rx counter. */
  private handshakePeer(device: WireGuardDevice, bytes: Uint8Array): PeerState | undefined {
    if (bytes[0] === MESSAGE_INITIATION_TYPE || bytes.length < 12) return undefined;
    const index = (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16) | (bytes[11]! << 24)) >>> 0;
    const id = device.peerOfIndex(index);
    return id === undefined ? undefined : this.peersById.get(id);
  }

  // --- The protocol's output ---

  /** Carries out the protocol's transmits and events, then arms the timer for its next deadline. */
  private drain(now: number): void {
    const device = this.device;
    if (device === undefined || this.closed) return;
    for (let t = device.pollTransmit(); t !== undefined; t = device.pollTransmit()) this.sendControl(t);
    for (let e = device.pollEvent(); e !== undefined; e = device.pollEvent()) {
      const { peer: id, event } = e;
      switch (event.type) {
        case "install": {
          const slot = this.engine.sessions.install({ ...event.keys, peer: id });
          this.slotOf.set(event.keys.localIndex, slot);
          this.localIndexOfSlot[slot] = event.keys.localIndex;
          this.peerOfSlot[slot] = id;
          const peer = this.peersById.get(id);
          if (peer !== undefined) peer.lastHandshakeUnixNanos = this.wallClockAtZeroNanos + BigInt(Math.round(now * 1e6));
          break;
        }
        case "drop": {
          const slot = this.slotOf.get(event.localIndex);
          if (slot === undefined) break;
          this.slotOf.delete(event.localIndex);
          this.engine.sessions.drop(slot);
          this.peerOfSlot[slot] = -1;
          break;
        }
        case "flush":
          this.sealControl(id, event.localIndex, event.packets);
          break;
        case "keepalive":
          this.sealControl(id, event.localIndex, [new Uint8Array(0)]);
          break;
        case "handshake-failed":
          this.log(`peer ${this.peersById.get(id)?.hex.slice(0, 8) ?? id}…: no handshake answer in 90 s; ${event.dropped} queued packets dropped`);
          break;
      }
      // Sealing may produce more transmits (a rekey started by a flush).
      for (let t = device.pollTransmit(); t !== undefined; t = device.pollTransmit()) this.sendControl(t);
    }
    this.arm(now);
  }

  /** Seals packets for one peer with one session outside the data path (staged packets, keepalives). */
  private sealControl(id: number, localIndex: number, packets: readonly Uint8Array[]): void {
    const slot = this.slotOf.get(localIndex);
    if (slot === undefined) return;
    const batch = this.engine.batch;
    const peerOf = this.peerOfPacket;
    let at = 0;
    while (at < packets.length) {
      batch.reset();
      let count = 0;
      while (at < packets.length && batch.hasRoomForPlaintext(packets[at]!.length)) {
        batch.addPlaintext(slot, packets[at]!);
        peerOf[count++] = id;
        at++;
      }
      if (count === 0) {
        at++; // larger than the whole arena: cannot happen with MTU-sized packets
        continue;
      }
      batch.seal();
      this.sendSealed(count, peerOf);
    }
  }

  /** Sends one handshake datagram (counted in its peer's tx, as wireguard-go counts it). */
  private sendControl({ to, bytes, peer }: DeviceTransmit): void {
    const state = peer === undefined ? undefined : this.peersById.get(peer);
    if (state !== undefined) state.tx += bytes.length;
    const family = familyOf(to);
    const vector = this.controlVector;
    this.controlMemory.set(bytes, 0);
    vector.offsets[0] = 0;
    vector.lengths[0] = bytes.length;
    writeEndpoint(vector.addresses, 0, { family, address: to.address, port: to.port });
    const socket = this.sockets[family];
    if (socket === undefined) {
      this.drops.sendFailed++;
      return;
    }
    try {
      if (socket.send(this.controlMemory, vector, 1) !== 1 || vector.statuses[0] !== 0) this.drops.sendFailed++;
    } catch (error) {
      this.log(`udp: send failed: ${(error as Error).message}`);
      this.drops.sendFailed++;
    }
  }

  private arm(now: number): void {
    const next = this.device?.pollTimeout();
    if (next === undefined || next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(next - now)));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    this.device?.handleTimeout(now);
    this.drain(now);
  }
}
