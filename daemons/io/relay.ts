// The TURN relay's data plane: listening sockets for clients, one relay socket per allocation and
// family, the engine's forwarding table for ChannelData, and the TurnServer (daemons/proto/turn) for
// everything else.
//
// From clients (listening socket readable), per batch:
//   1. recvmmsg straight into the batch; the sources land in the engine's endpoint array;
//   2. one relayFromClients call: bound ChannelData becomes the bare payload addressed to its peer,
//      with the relay socket to send it from;
//   3. sendmmsg per relay socket; STUN (BadType) goes to the TurnServer one by one.
// From peers (relay socket readable), per batch:
//   1. recvmmsg with four bytes of headroom in front of each datagram;
//   2. one relayFromPeers call: datagrams from peers with a channel become ChannelData to the client;
//   3. sendmmsg per client family from the listening sockets; the rest (no channel) goes to the
//      TurnServer, which sends a Data indication where a permission allows.
// After every input: the server's transmits are sent, its events carried out (bind and unbind
// channels in the engine, close relay sockets) and one timer armed.

import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { CHANNEL_HEADER_SIZE, Engine, TransportStatus } from "../engine/index.js";
import { ADDRESS_SIZE, PacketVector, readEndpoint, UdpSocket, writeEndpoint, type Endpoint } from "../native/index.js";
import { TurnServer, type TurnEvent, type TurnTransmit } from "../proto/turn/server.js";
import { UdpDriver, type UdpBatchSink } from "./udp-driver.js";

export interface RelayOptions {
  /** Listening address per family ("" for any); a family left out is not served. */
  listen: { 4?: string; 6?: string };
  /** The listening UDP port (3478 by default; 0 lets the kernel choose, for tests). */
  port: number;
  /** Public addresses per family, advertised as relayed addresses. */
  publicAddress: { 4?: string; 6?: string };
  /** Relay port range, inclusive. */
  ports: [number, number];
  realm: string;
  secrets: readonly string[];
  allowPrivatePeers?: boolean;
  maxAllocationsPerUser?: number;
  /** Channel bindings the forwarding table holds (default 65536). */
  maxChannels?: number;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

/** What /metrics reports beyond the server's own counts. */
export interface RelayCounters {
  clientToPeerPackets: number;
  clientToPeerBytes: number;
  peerToClientPackets: number;
  peerToClientBytes: number;
  /** Packets dropped, by reason. */
  dropped: Record<string, number>;
}

const WORDS_PER_ENDPOINT = ADDRESS_SIZE / 4;

/** Largest datagram taken in one slot; a bigger one is counted as truncated and dropped. */
const SLOT_BYTES = 2048;

interface RelaySocket {
  relayId: number;
  family: 4 | 6;
  port: number;
  socket: UdpSocket;
  driver: UdpDriver;
}

/** A running relay; see the file comment. */
export class Relay {
  readonly counters: RelayCounters = { clientToPeerPackets: 0, clientToPeerBytes: 0, peerToClientPackets: 0, peerToClientBytes: 0, dropped: {} };
  readonly server: TurnServer;
  readonly engine: Engine;
  private readonly listeners: { 4?: UdpSocket; 6?: UdpSocket } = {};
  private readonly listenerDrivers: UdpDriver[] = [];
  private readonly relays = new Map<number, RelaySocket>();
  private readonly portsInUse = new Set<number>();
  private nextRelayId = 1;
  private portCursor: number;
  /** Engine binding slot per "relayId/channel". */
  private readonly bindings = new Map<string, number>();

  private readonly mem: Uint8Array;
  private readonly recvVector: PacketVector;
  /** One send vector, reused per destination socket. */
  private readonly sendVector: PacketVector;
  private readonly controlMemory = new Uint8Array(65536);
  private readonly controlVector = new PacketVector(1);
  private readonly slots: number;
  /** Per packet of a client batch: already sent or set aside (reused, never reallocated). */
  private readonly handled: Uint8Array;
  /** The batch's endpoints and the send vector's, as 32-bit words (endpoints are 20 bytes, 4-aligned). */
  private readonly batchEndpointWords: Uint32Array;
  private readonly sendEndpointWords: Uint32Array;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private closed = false;
  private readonly log: NonNullable<RelayOptions["log"]>;

  private constructor(private readonly options: RelayOptions) {
    this.log = options.log ?? (() => {});
    this.engine = Engine.create({ maxSessions: 1, maxChannels: options.maxChannels ?? 65536, maxBatch: 256, arenaBytes: 1 << 20 });
    const batch = this.engine.batch;
    this.mem = batch.memory;
    this.slots = Math.min(batch.maxPackets, Math.floor(batch.arenaBytes / (SLOT_BYTES + 16)));
    this.recvVector = new PacketVector(batch.maxPackets, batch.endpoints);
    this.sendVector = new PacketVector(batch.maxPackets);
    this.handled = new Uint8Array(batch.maxPackets);
    const words = (bytes: Uint8Array): Uint32Array => new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    this.batchEndpointWords = words(batch.endpoints);
    this.sendEndpointWords = words(this.sendVector.addresses);
    const [low, high] = options.ports;
    this.portCursor = low + Math.floor(Math.random() * (high - low + 1));
    this.server = new TurnServer({
      realm: options.realm,
      secrets: options.secrets,
      random: (n) => new Uint8Array(randomBytes(n)),
      wallClockAtZeroSeconds: performance.timeOrigin / 1000,
      relayAddress: options.publicAddress,
      openRelay: (family) => this.openRelay(family),
      allowPrivatePeers: options.allowPrivatePeers ?? false,
      ...(options.maxAllocationsPerUser !== undefined ? { maxAllocationsPerUser: options.maxAllocationsPerUser } : {}),
    });
  }

  /** Binds the listening sockets and starts relaying. */
  static start(options: RelayOptions): Relay {
    const relay = new Relay(options);
    try {
      for (const family of [4, 6] as const) {
        const address = options.listen[family];
        if (address === undefined) continue;
        const socket = UdpSocket.open(family, address, options.port);
        relay.listeners[family] = socket;
        const driver = new UdpDriver(socket, relay.mem, relay.recvVector, relay.clientSink);
        driver.start();
        relay.listenerDrivers.push(driver);
      }
    } catch (error) {
      relay.close();
      throw error;
    }
    if (relay.listeners[4] === undefined && relay.listeners[6] === undefined) throw new Error("relay: no listening address given");
    return relay;
  }

  /** The listening port per family (the kernel's choice when started with port 0). */
  port(family: 4 | 6): number | undefined {
    return this.listeners[family]?.port;
  }

  get relaySockets(): number {
    return this.relays.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const driver of this.listenerDrivers) driver.stop();
    this.listeners[4]?.close();
    this.listeners[6]?.close();
    for (const relay of this.relays.values()) {
      relay.driver.stop();
      relay.socket.close();
    }
    this.relays.clear();
  }

  private drop(reason: string, count = 1): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + count;
  }

  // --- Relay sockets ---

  /** Binds a relay socket on the next free port of the range; undefined when none is left. */
  private openRelay(family: 4 | 6): { relayId: number; port: number } | undefined {
    const [low, high] = this.options.ports;
    const span = high - low + 1;
    for (let tried = 0; tried < span; tried++) {
      const port = low + ((this.portCursor - low + tried) % span);
      if (this.portsInUse.has(port)) continue;
      let socket: UdpSocket;
      try {
        socket = UdpSocket.open(family, "", port);
      } catch (error) {
        if ((error as { code?: string }).code === "EADDRINUSE") continue;
        this.log("error", "relay socket failed", { family, port, error: (error as Error).message });
        return undefined;
      }
      this.portCursor = port + 1 > high ? low : port + 1;
      const relayId = this.nextRelayId++;
      const driver = new UdpDriver(socket, this.mem, this.recvVector, this.peerSink(relayId));
      driver.start();
      this.relays.set(relayId, { relayId, family, port, socket, driver });
      this.portsInUse.add(port);
      return { relayId, port };
    }
    return undefined;
  }

  private closeRelay(relayId: number): void {
    const relay = this.relays.get(relayId);
    if (relay === undefined) return;
    relay.driver.stop();
    relay.socket.close();
    this.relays.delete(relayId);
    this.portsInUse.delete(relay.port);
  }

  // --- From clients ---

  private readonly clientSink: UdpBatchSink = {
    prepare: (vector) => {
      const batch = this.engine.batch;
      batch.reset();
      for (let i = 0; i < this.slots; i++) vector.set(i, batch.reservePacketOffset(SLOT_BYTES), SLOT_BYTES);
      return this.slots;
    },
    deliver: (vector, count) => this.fromClients(vector, count),
  };

  private fromClients(vector: PacketVector, count: number): void {
    const batch = this.engine.batch;
    batch.truncate(count);
    for (let i = 0; i < count; i++) batch.setLength(i, vector.lengths[i]!);
    batch.relayFromClients();
    // Send per relay socket: one pass per distinct relay of the batch (nearly always few).
    const done = this.handled;
    done.fill(0, 0, count);
    const stun: number[] = [];
    for (let i = 0; i < count; i++) {
      const status = batch.status(i);
      if (status === TransportStatus.Ok) continue;
      done[i] = 1;
      if (status === TransportStatus.BadType) stun.push(i);
      else this.drop(`client-${TransportStatus[status] ?? status}`);
    }
    for (let i = 0; i < count; i++) {
      if (done[i]) continue;
      const relayId = batch.session(i) >>> 0;
      const relay = this.relays.get(relayId);
      const out = this.sendVector;
      let n = 0;
      for (let j = i; j < count; j++) {
        if (done[j] || batch.session(j) >>> 0 !== relayId) continue;
        done[j] = 1;
        if (relay === undefined) continue;
        out.offsets[n] = batch.packetOffset(j);
        out.lengths[n] = batch.packetLength(j);
        this.copyEndpoint(j, n);
        n++;
      }
      if (relay === undefined) this.drop("client-relay-closed");
      else this.send(relay.socket, out, n, "client-to-peer");
    }
    const now = performance.now();
    for (const i of stun) {
      const from = readEndpoint(batch.endpoints, i);
      if (from === undefined) continue;
      const at = batch.packetOffset(i);
      this.server.handleClientDatagram(now, from, this.mem.slice(at, at + batch.packetLength(i)));
    }
    this.drain(now);
  }

  // --- From peers ---

  private peerSink(relayId: number): UdpBatchSink {
    return {
      prepare: (vector) => {
        const batch = this.engine.batch;
        batch.reset();
        const room = SLOT_BYTES - CHANNEL_HEADER_SIZE;
        for (let i = 0; i < this.slots; i++) vector.set(i, batch.reservePacketOffset(room, CHANNEL_HEADER_SIZE), room);
        return this.slots;
      },
      deliver: (vector, count) => this.fromPeers(relayId, vector, count),
    };
  }

  private fromPeers(relayId: number, vector: PacketVector, count: number): void {
    const batch = this.engine.batch;
    batch.truncate(count);
    for (let i = 0; i < count; i++) batch.setLength(i, vector.lengths[i]!);
    batch.relayFromPeers(relayId);
    const slow: number[] = [];
    for (const family of [4, 6] as const) {
      const out = this.sendVector;
      let n = 0;
      for (let i = 0; i < count; i++) {
        if (batch.status(i) !== TransportStatus.Ok) {
          if (family === 4) slow.push(i);
          continue;
        }
        if (batch.endpoints[i * ADDRESS_SIZE] !== family) continue;
        out.offsets[n] = batch.packetOffset(i);
        out.lengths[n] = batch.packetLength(i);
        this.copyEndpoint(i, n);
        n++;
      }
      if (n === 0) continue;
      const listener = this.listeners[family];
      if (listener === undefined) this.drop("peer-no-listener", n);
      else this.send(listener, out, n, "peer-to-client");
    }
    const now = performance.now();
    for (const i of slow) {
      const status = batch.status(i);
      if (status !== TransportStatus.NoChannel) {
        this.drop(`peer-${TransportStatus[status] ?? status}`);
        continue;
      }
      const from = readEndpoint(batch.endpoints, i);
      if (from === undefined) continue;
      const at = batch.packetOffset(i);
      this.server.handlePeerDatagram(now, relayId, from, this.mem.slice(at, at + batch.packetLength(i)));
    }
    this.drain(now);
  }

  /** Copies batch endpoint i to send slot n as five words: no view, no allocation, per packet. */
  private copyEndpoint(i: number, n: number): void {
    const from = this.batchEndpointWords;
    const to = this.sendEndpointWords;
    const a = i * WORDS_PER_ENDPOINT;
    const b = n * WORDS_PER_ENDPOINT;
    for (let k = 0; k < WORDS_PER_ENDPOINT; k++) to[b + k] = from[a + k]!;
  }

  /** sendmmsg from engine memory; counts what went and what the kernel refused. */
  private send(socket: UdpSocket, vector: PacketVector, count: number, direction: "client-to-peer" | "peer-to-client"): void {
    let sent = 0;
    try {
      sent = socket.send(this.mem, vector, count, true);
    } catch (error) {
      this.log("warn", "send failed", { error: (error as Error).message });
    }
    let ok = 0;
    let bytes = 0;
    for (let i = 0; i < sent; i++) {
      if (vector.statuses[i] !== 0) continue;
      ok++;
      bytes += vector.lengths[i]!;
    }
    if (direction === "client-to-peer") {
      this.counters.clientToPeerPackets += ok;
      this.counters.clientToPeerBytes += bytes;
    } else {
      this.counters.peerToClientPackets += ok;
      this.counters.peerToClientBytes += bytes;
    }
    if (count - ok > 0) this.drop(`${direction}-send-failed`, count - ok);
  }

  // --- The server's output ---

  private drain(now: number): void {
    if (this.closed) return;
    for (let t = this.server.pollTransmit(); t !== undefined; t = this.server.pollTransmit()) this.sendControl(t);
    for (let e = this.server.pollEvent(); e !== undefined; e = this.server.pollEvent()) this.apply(e);
    this.arm(now);
  }

  private apply(event: TurnEvent): void {
    if (event.type === "allocation-closed") {
      this.closeRelay(event.relayId);
      return;
    }
    const key = `${event.relayId}/${event.channel}`;
    if (event.type === "channel-unbound") {
      const slot = this.bindings.get(key);
      if (slot === undefined) return;
      this.engine.channels.unbind(slot);
      this.bindings.delete(key);
      return;
    }
    const old = this.bindings.get(key);
    if (old !== undefined) {
      this.engine.channels.unbind(old);
      this.bindings.delete(key);
    }
    try {
      const slot = this.engine.channels.bind({
        client: encode(event.client),
        channel: event.channel,
        relayId: event.relayId,
        peer: encode(event.peer),
      });
      this.bindings.set(key, slot);
    } catch (error) {
      // The table is full: this channel's data then takes the slow path, and is dropped there.
      this.log("warn", "channel not installed in the forwarding table", { error: (error as Error).message });
    }
  }

  private sendControl(t: TurnTransmit): void {
    const socket = t.via === "listener" ? this.listeners[t.to.family] : this.relays.get(t.relayId)?.socket;
    if (socket === undefined || t.bytes.length > this.controlMemory.length) {
      this.drop("control-no-socket");
      return;
    }
    this.controlMemory.set(t.bytes, 0);
    this.controlVector.offsets[0] = 0;
    this.controlVector.lengths[0] = t.bytes.length;
    writeEndpoint(this.controlVector.addresses, 0, t.to);
    try {
      if (socket.send(this.controlMemory, this.controlVector, 1) !== 1 || this.controlVector.statuses[0] !== 0) this.drop("control-send-failed");
    } catch (error) {
      this.log("warn", "send failed", { error: (error as Error).message });
      this.drop("control-send-failed");
    }
  }

  private arm(now: number): void {
    const next = this.server.pollTimeout();
    if (next === undefined || next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      const t = performance.now();
      this.server.handleTimeout(t);
      this.drain(t);
    }, Math.max(0, Math.ceil(next - now)));
  }
}

function encode(endpoint: Endpoint): Uint8Array {
  const bytes = new Uint8Array(ADDRESS_SIZE);
  writeEndpoint(bytes, 0, endpoint);
  return bytes;
}
