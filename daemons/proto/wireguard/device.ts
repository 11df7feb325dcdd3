// A WireGuard device: one static identity, its peers, the index table that routes handshake
// messages to them, the DoS defence under load, and endpoint roaming (whitepaper §2.1, §5.4).
//
// Driving contract: as WireGuardPeer's. Call an input (handshakeDatagram, authenticated, send,
// handleTimeout) with monotonic `now` in ms, then drain pollTransmit() (addressed datagrams) and
// pollEvent() (per-peer events for the engine), then arm a timer for pollTimeout().
//
// 1. Handshake datagrams: mac1 first (junk costs no Diffie-Hellman); under load, mac2 or a cookie
//    reply; then an initiation goes to the peer whose static key it carries, a response or cookie
//    reply to the peer whose pending index it names.
// 2. authenticated: the engine opened a transport packet: the peer learns of it, and its endpoint
//    moves to the packet's source (roaming).
// 3. Every local index the peers use is unique and maps back to its peer.

import { CookieChecker } from "./cookie.js";
import {
  COOKIE_REPLY_OFFSET_RECEIVER, MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_COOKIE_REPLY_TYPE, MESSAGE_INITIATION_SIZE,
  MESSAGE_INITIATION_TYPE, MESSAGE_RESPONSE_SIZE, MESSAGE_RESPONSE_TYPE, RESPONSE_OFFSET_RECEIVER,
} from "./constants.js";
import { consumeInitiation, HandshakePeer, type StaticIdentity } from "./noise.js";
import { WireGuardPeer, type PeerEvent } from "./peer.js";

/** A UDP endpoint: the address as text (IPv4 dotted quad or IPv6) and the port. */
export interface Endpoint {
  address: string;
  port: number;
}

/** A handshake datagram to send: to the peer's endpoint, or (a cookie reply) to whoever asked. */
export interface DeviceTransmit {
  to: Endpoint;
  bytes: Uint8Array;
  /** The peer it belongs to, for its counters; absent for a cookie reply. */
  peer?: number;
}

export interface DeviceOptions {
  identity: StaticIdentity;
  random: (length: number) => Uint8Array;
  /** Unix time in ns at monotonic time 0. */
  wallClockAtZeroNanos: bigint;
  /** Handshake messages per second above which the device demands cookies (mac2). */
  underLoadRate?: number;
}

export interface PeerSettings {
  presharedKey?: Uint8Array;
  endpoint?: Endpoint;
  /** ms; 0 or absent for none. */
  persistentKeepalive?: number;
}

/** Counters an operator (and the tests) can read. */
export interface DeviceStats {
  handshakesConsumed: number;
  junkDropped: number;
  cookieRepliesSent: number;
  roamed: number;
}

interface PeerEntry {
  id: number;
  machine: WireGuardPeer;
  handshake: HandshakePeer;
  endpoint: Endpoint | undefined;
  /** The local index of the initiation awaiting a response, as of the last drain. */
  pendingIndex: number | undefined;
}

const LOAD_WINDOW = 1000;

/** The device's protocol state; see the driving contract above. */
export class WireGuardDevice {
  readonly stats: DeviceStats = { handshakesConsumed: 0, junkDropped: 0, cookieRepliesSent: 0, roamed: 0 };
  private readonly checker: CookieChecker;
  private readonly peersByKey = new Map<string, PeerEntry>();
  private readonly peersById = new Map<number, PeerEntry>();
  /** Every local index in use (sessions and pending initiations) → peer id. */
  private readonly indices = new Map<number, number>();
  private readonly transmits: DeviceTransmit[] = [];
  private readonly events: { peer: number; event: PeerEvent }[] = [];
  private nextPeerId = 1;
  private recentHandshakes: number[] = [];

  constructor(private readonly options: DeviceOptions) {
    this.checker = new CookieChecker(options.identity.publicKey, options.random);
  }

  /** Adds a peer; returns its id. Throws on a duplicate or a low-order key (configuration errors). */
  addPeer(publicKey: Uint8Array, settings: PeerSettings = {}): number {
    const key = hexKey(publicKey);
    if (this.peersByKey.has(key)) throw new Error(`peer ${key.slice(0, 8)}… is already configured`);
    const id = this.nextPeerId++;
    const handshake = new HandshakePeer(this.options.identity, publicKey, settings.presharedKey);
    const machine = new WireGuardPeer({
      handshake,
      random: this.options.random,
      allocateIndex: () => this.allocateIndex(id),
      wallClockAtZeroNanos: this.options.wallClockAtZeroNanos,
      persistentKeepalive: settings.persistentKeepalive ?? 0,
    });
    const entry: PeerEntry = { id, machine, handshake, endpoint: settings.endpoint, pendingIndex: undefined };
    this.peersByKey.set(key, entry);
    this.peersById.set(id, entry);
    return id;
  }

  /** Removes a peer: its sessions are dropped (events) and its indices freed. */
  removePeer(id: number): void {
    const entry = this.peersById.get(id);
    if (entry === undefined) return;
    for (const localIndex of entry.machine.localIndices) this.events.push({ peer: id, event: { type: "drop", localIndex } });
    entry.handshake.abandonInitiation();
    for (const [index, owner] of this.indices) if (owner === id) this.indices.delete(index);
    this.peersByKey.delete(hexKey(entry.handshake.remoteStatic));
    this.peersById.delete(id);
  }

  /** Sets where a peer's packets go until it roams; undefined forgets it (nothing is sent until the peer speaks). */
  setEndpoint(id: number, endpoint: Endpoint | undefined): void {
    const entry = this.peersById.get(id);
    if (entry !== undefined) entry.endpoint = endpoint;
  }

  /** Changes a peer's persistent keepalive interval (ms, 0 for none); see WireGuardPeer.setPersistentKeepalive. */
  setPersistentKeepalive(now: number, id: number, interval: number): void {
    const entry = this.peersById.get(id);
    if (entry !== undefined) this.run(entry, () => entry.machine.setPersistentKeepalive(now, interval));
  }

  /** Ids of the peers, in the order they were added. */
  get peerIds(): number[] {
    return [...this.peersById.keys()];
  }

  endpointOf(id: number): Endpoint | undefined {
    return this.peersById.get(id)?.endpoint;
  }

  /** The peer that owns a local index (a session the engine authenticated a packet with). */
  peerOfIndex(localIndex: number): number | undefined {
    return this.indices.get(localIndex);
  }

  /** A handshake message (type 1, 2 or 3) from source. */
  handshakeDatagram(now: number, bytes: Uint8Array, source: Endpoint): void {
    const type = bytes[0];
    if (type === MESSAGE_COOKIE_REPLY_TYPE) {
      if (bytes.length !== MESSAGE_COOKIE_REPLY_SIZE) return this.junk();
      const entry = this.byIndex(readU32(bytes, COOKIE_REPLY_OFFSET_RECEIVER));
      if (entry === undefined) return this.junk();
      this.run(entry, () => entry.machine.handshakeMessage(now, bytes));
      return;
    }
    const expectedSize = type === MESSAGE_INITIATION_TYPE ? MESSAGE_INITIATION_SIZE : type === MESSAGE_RESPONSE_TYPE ? MESSAGE_RESPONSE_SIZE : -1;
    if (bytes.length !== expectedSize) return this.junk();
    const verdict = this.checker.check(bytes, sourceBytes(source), this.underLoad(now), now);
    if (verdict === "bad-mac1") return this.junk();
    if (verdict === "needs-cookie") {
      this.transmits.push({ to: source, bytes: this.checker.createReply(bytes, sourceBytes(source), now) });
      this.stats.cookieRepliesSent++;
      return;
    }
    if (type === MESSAGE_INITIATION_TYPE) {
      const consumed = consumeInitiation(this.options.identity, bytes, (pub) => this.peersByKey.get(hexKey(pub))?.handshake, now);
      this.stats.handshakesConsumed++;
      if (!consumed.ok) return;
      const entry = this.peersByKey.get(hexKey(consumed.value.peer.remoteStatic))!;
      entry.endpoint = source;
      this.run(entry, () => entry.machine.handshakeInitiation(now, consumed.value));
      return;
    }
    const entry = this.byIndex(readU32(bytes, RESPONSE_OFFSET_RECEIVER));
    if (entry === undefined) return this.junk();
    this.stats.handshakesConsumed++;
    // Only a response that authenticated (it installs a session) may move the endpoint.
    const produced = this.run(entry, () => entry.machine.handshakeMessage(now, bytes));
    if (produced.some((e) => e.type === "install")) entry.endpoint = source;
  }

  /** The engine authenticated a transport packet on localIndex from source (data: not a keepalive). */
  authenticated(now: number, localIndex: number, source: Endpoint, data: boolean): void {
    const entry = this.byIndex(localIndex);
    if (entry === undefined) return;
    if (entry.endpoint === undefined || entry.endpoint.address !== source.address || entry.endpoint.port !== source.port) {
      entry.endpoint = source;
      this.stats.roamed++;
    }
    this.run(entry, () => entry.machine.received(now, localIndex, data));
  }

  /** The session to seal count packets for peer id with, or undefined (then stage them). */
  send(now: number, id: number, count: number): number | undefined {
    const entry = this.peersById.get(id);
    if (entry === undefined) return undefined;
    let localIndex: number | undefined;
    this.run(entry, () => {
      localIndex = entry.machine.send(now, count);
    });
    return localIndex;
  }

  stage(id: number, packets: readonly Uint8Array[]): void {
    this.peersById.get(id)?.machine.stage(packets);
  }

  handleTimeout(now: number): void {
    for (const entry of this.peersById.values()) {
      const t = entry.machine.pollTimeout();
      if (t !== undefined && t <= now) this.run(entry, () => entry.machine.handleTimeout(now));
    }
  }

  pollTransmit(): DeviceTransmit | undefined {
    return this.transmits.shift();
  }

  pollEvent(): { peer: number; event: PeerEvent } | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    let earliest: number | undefined;
    for (const entry of this.peersById.values()) {
      const t = entry.machine.pollTimeout();
      if (t !== undefined && (earliest === undefined || t < earliest)) earliest = t;
    }
    return earliest;
  }

  /**
   * Runs an input on a peer and drains it (a composite drains its children in its own handlers);
   * returns the peer's events of this input.
   */
  private run(entry: PeerEntry, input: () => void): PeerEvent[] {
    input();
    for (let bytes = entry.machine.pollTransmit(); bytes !== undefined; bytes = entry.machine.pollTransmit()) {
      if (entry.endpoint !== undefined) this.transmits.push({ to: entry.endpoint, bytes, peer: entry.id });
    }
    const produced: PeerEvent[] = [];
    for (let event = entry.machine.pollEvent(); event !== undefined; event = entry.machine.pollEvent()) {
      if (event.type === "drop") this.indices.delete(event.localIndex);
      produced.push(event);
      this.events.push({ peer: entry.id, event });
    }
    // A superseded or abandoned initiation frees its index, unless it became a session's.
    const pending = entry.handshake.pendingIndex;
    if (entry.pendingIndex !== undefined && entry.pendingIndex !== pending && !entry.machine.localIndices.includes(entry.pendingIndex)) {
      this.indices.delete(entry.pendingIndex);
    }
    entry.pendingIndex = pending;
    return produced;
  }

  private byIndex(localIndex: number): PeerEntry | undefined {
    const id = this.indices.get(localIndex);
    return id === undefined ? undefined : this.peersById.get(id);
  }

  private allocateIndex(peer: number): number {
    for (;;) {
      const b = this.options.random(4);
      const index = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (!this.indices.has(index)) {
        this.indices.set(index, peer);
        return index;
      }
    }
  }

  private underLoad(now: number): boolean {
    const rate = this.options.underLoadRate ?? 200;
    this.recentHandshakes.push(now);
    while (this.recentHandshakes.length > 0 && this.recentHandshakes[0]! <= now - LOAD_WINDOW) this.recentHandshakes.shift();
    return this.recentHandshakes.length > rate;
  }

  private junk(): void {
    this.stats.junkDropped++;
  }
}

function readU32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(offset, true);
}

function hexKey(key: Uint8Array): string {
  let s = "";
  for (const b of key) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The bytes a cookie is bound to: the source address and port. */
function sourceBytes(source: Endpoint): Uint8Array {
  return new TextEncoder().encode(`${source.address}|${source.port}`);
}
