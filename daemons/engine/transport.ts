// Transport sessions and the packet batch: the binding's side of engine/transport.ts.
//
// A batch fills the engine's arena front to back. Each packet gets its own 16-byte-aligned region
// with header room in front and tag room behind, so the engine seals and opens in place; a driver
// (TUN read, UDP recvmmsg) writes straight into the views reserve*() returns. One engine call then
// handles the whole batch, and results are read back from the descriptors.
//
// Cryptokey routing (engine/cryptokey.ts) runs on the same batch: routeOutbound() before seal picks
// each plaintext's peer by destination, and checkInbound() after open drops packets whose inner
// source is not an allowed IP of the peer whose session opened them.

import {
  DESC_LENGTH, DESC_OFFSET, DESC_SESSION, DESC_STATUS, DESC_WORDS, ENDPOINT_SIZE, KEY_SIZE, MAX_CONTENT_SIZE, MAX_MESSAGE_SIZE,
  MESSAGE_TRANSPORT_HEADER_SIZE, MESSAGE_TRANSPORT_SIZE, NO_PEER, RESULT_INDEX_IN_USE, RESULT_OK,
  RESULT_TABLE_FULL, TransportStatus,
} from "./constants.js";
import type { EngineExports } from "./engine.js";
import { EngineError, checkBytes, checkInteger, checkPeer } from "./errors.js";

/** The keys and indices of one WireGuard keypair, as the handshake produces them. */
export interface SessionKeys {
  /** Our receiver index: incoming packets carry it. */
  localIndex: number;
  /** The peer's receiver index: outgoing packets carry it. */
  remoteIndex: number;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  /**
   * The peer the keypair belongs to, as its allowed IPs are keyed in engine.routes; checkInbound()
   * lets through only keepalives from a session without one.
   */
  peer?: number;
}

/** Keypairs held in engine memory, addressed by slot; keys never come back out. */
export class TransportSessions {
  private readonly free: number[] = [];

  constructor(
    private readonly x: EngineExports,
    private readonly mem: Uint8Array,
    readonly capacity: number,
  ) {
    for (let slot = capacity - 1; slot >= 0; slot--) this.free.push(slot);
  }

  /** Installs a keypair and returns its slot; counters and the replay window start at zero. */
  install(keys: SessionKeys): number {
    checkInteger("localIndex", keys.localIndex, 0, 0xffffffff);
    checkInteger("remoteIndex", keys.remoteIndex, 0, 0xffffffff);
    checkBytes("sessions.install", "key", keys.sendKey, KEY_SIZE);
    checkBytes("sessions.install", "key", keys.recvKey, KEY_SIZE);
    if (keys.peer !== undefined) checkPeer("sessions.install", keys.peer);
    const slot = this.free.pop();
    if (slot === undefined) {
      throw new EngineError("TABLE_FULL", `sessions.install: all ${this.capacity} session slots are in use`);
    }
    const scratch = this.x.scratchPtr();
    this.mem.set(keys.sendKey, scratch);
    this.mem.set(keys.recvKey, scratch + KEY_SIZE);
    const rc = this.x.sessionInstall(slot, keys.localIndex >>> 0, keys.remoteIndex >>> 0, scratch, scratch + KEY_SIZE);
    this.mem.fill(0, scratch, scratch + 2 * KEY_SIZE);
    if (rc !== RESULT_OK) {
      this.free.push(slot);
      if (rc === RESULT_INDEX_IN_USE) {
        throw new EngineError("INDEX_IN_USE", `sessions.install: receiver index ${keys.localIndex} is already in use`);
      }
      if (rc === RESULT_TABLE_FULL) throw new EngineError("TABLE_FULL", "sessions.install: session table is full");
      throw new EngineError("BAD_ARGUMENT", `sessions.install: engine refused slot ${slot} (code ${rc})`);
    }
    if (keys.peer !== undefined) this.x.sessionSetPeer(slot, keys.peer >>> 0);
    return slot;
  }

  /** Names the peer of the session in slot (a rekeyed session belongs to the same peer). */
  setPeer(slot: number, peer: number): void {
    checkInteger("slot", slot, 0, this.capacity - 1);
    checkPeer("sessions.setPeer", peer);
    if (this.x.sessionSetPeer(slot, peer >>> 0) !== RESULT_OK) {
      throw new EngineError("NO_SESSION", `sessions.setPeer: slot ${slot} holds no session`);
    }
  }

  /** The peer of the session in slot, if it has one. */
  peer(slot: number): number | undefined {
    checkInteger("slot", slot, 0, this.capacity - 1);
    const peer = this.x.sessionGetPeer(slot) >>> 0;
    return peer === NO_PEER ? undefined : peer;
  }

  /** Drops a session; the engine wipes its keys, counter and window. */
  drop(slot: number): void {
    checkInteger("slot", slot, 0, this.capacity - 1);
    if (this.x.sessionDrop(slot) !== RESULT_OK) {
      throw new EngineError("NO_SESSION", `sessions.drop: slot ${slot} holds no session`);
    }
    this.free.push(slot);
  }

  /** Slot of the session with this receiver index, if any. */
  find(localIndex: number): number | undefined {
    checkInteger("localIndex", localIndex, 0, 0xffffffff);
    const slot = this.x.sessionFind(localIndex >>> 0);
    return slot < 0 ? undefined : slot;
  }

  /** The counter the session's next sealed packet will carry. */
  sendCounter(slot: number): bigint {
    checkInteger("slot", slot, 0, this.capacity - 1);
    const counter = this.x.sessionSendCounter(slot);
    if (counter < 0n) throw new EngineError("NO_SESSION", `sessions.sendCounter: slot ${slot} holds no session`);
    return counter;
  }

  get size(): number {
    return this.x.sessionCount();
  }
}

const align16 = (n: number): number => (n + 15) & ~15;

/** A batch of transport packets in the engine's arena, sealed or opened with one call. */
export class TransportBatch {
  readonly maxPackets: number;
  readonly arenaBytes: number;
  private readonly arena: number;
  private readonly desc: Uint32Array;
  private readonly peers: Uint32Array;
  /** ENDPOINT_SIZE bytes per packet: for the relay, each packet's source, then its destination. */
  readonly endpoints: Uint8Array;
  private cursor = 0;
  private count = 0;
  /** What the batch holds: plaintexts to seal or packets to open; set by the first reserve. */
  private kind: "seal" | "open" | undefined;
  /** Sealed or opened already: the descriptors now describe results, so nothing may be added. */
  private done = false;
  /** routeOutbound() ran since the last change, so peer(i) is current. */
  private routed = false;

  constructor(
    private readonly x: EngineExports,
    private readonly mem: Uint8Array,
    private readonly sessions: TransportSessions,
  ) {
    this.arena = x.arenaPtr();
    this.arenaBytes = x.arenaSize();
    this.maxPackets = x.descriptorCount();
    this.desc = new Uint32Array(x.memory.buffer, x.descriptorsPtr(), this.maxPackets * DESC_WORDS);
    this.peers = new Uint32Array(x.memory.buffer, x.routePeersPtr(), this.maxPackets);
    this.endpoints = new Uint8Array(x.memory.buffer, x.relayEndpointsPtr(), this.maxPackets * ENDPOINT_SIZE);
  }

  /** Packets currently in the batch. */
  get length(): number {
    return this.count;
  }

  /** Empties the batch; views returned earlier must not be used after this. */
  reset(): void {
    this.cursor = 0;
    this.count = 0;
    this.kind = undefined;
    this.done = false;
    this.routed = false;
  }

  /** Whether a plaintext of len bytes still fits (as a sealed packet) in the batch. */
  hasRoomForPlaintext(len: number): boolean {
    return this.count < this.maxPackets && this.cursor + align16(len) + MESSAGE_TRANSPORT_SIZE <= this.arenaBytes;
  }

  /** Whether a received packet of len bytes still fits in the batch. */
  hasRoomForPacket(len: number): boolean {
    return this.count < this.maxPackets && this.cursor + align16(len) <= this.arenaBytes;
  }

  /** The engine's whole memory; the *Offset methods return positions in it. */
  get memory(): Uint8Array {
    return this.mem;
  }

  /**
   * Reserves room to seal a plaintext of len bytes with session slot, and returns the view to write
   * it into (header room in front, padding and tag room behind).
   */
  reservePlaintext(slot: number, len: number): Uint8Array {
    const at = this.reservePlaintextOffset(slot, len);
    return this.mem.subarray(at, at + len);
  }

  /**
   * Like reservePlaintext, but returns where the plaintext goes in `memory` instead of a view, so a
   * driver that writes packets itself allocates nothing per packet.
   */
  reservePlaintextOffset(slot: number, len: number): number {
    checkInteger("slot", slot, 0, this.sessions.capacity - 1);
    checkInteger("plaintext length", len, 0, MAX_CONTENT_SIZE);
    const offset = this.take("seal", align16(len) + MESSAGE_TRANSPORT_SIZE);
    this.describe(offset, len, slot);
    return this.arena + offset + MESSAGE_TRANSPORT_HEADER_SIZE;
  }

  /** Copies a plaintext in for sealing with session slot; returns its index in the batch. */
  addPlaintext(slot: number, plaintext: Uint8Array): number {
    checkBytes("batch.addPlaintext", "plaintext", plaintext);
    this.mem.set(plaintext, this.reservePlaintextOffset(slot, plaintext.length));
    return this.count - 1;
  }

  /** Reserves room for a received packet of len bytes and returns the view to write it into. */
  reservePacket(len: number): Uint8Array {
    const at = this.reservePacketOffset(len);
    return this.mem.subarray(at, at + len);
  }

  /**
   * Like reservePacket, but returns where the packet goes in `memory` instead of a view. headroom
   * bytes stay free in front of it: relayFromPeers writes the ChannelData header there.
   */
  reservePacketOffset(len: number, headroom = 0): number {
    checkInteger("packet length", len, 0, MAX_MESSAGE_SIZE);
    checkInteger("headroom", headroom, 0, 64);
    const offset = this.take("open", align16(len + headroom)) + headroom;
    this.describe(offset, len, 0);
    return this.arena + offset;
  }

  /**
   * Relay, datagrams from clients: every ChannelData on a bound (source endpoint, channel) becomes
   * its payload, addressed (endpoints) to the peer, with the relay id to send it from as session(i).
   * Statuses otherwise: BadType (not ChannelData), TooShort, NoChannel, OutOfBounds. Returns how
   * many are Ok. Before: endpoints(i) holds each packet's source.
   */
  relayFromClients(): number {
    this.finishRelay("relayFromClients");
    return this.x.relayFromClients(this.count);
  }

  /**
   * Relay, datagrams from peers at relay socket relayId (reserved with CHANNEL_HEADER_SIZE of
   * headroom): every one from a peer with a channel becomes ChannelData addressed to the client.
   * NoChannel otherwise (a Data indication, if a permission allows, is the caller's). Returns how
   * many are Ok.
   */
  relayFromPeers(relayId: number): number {
    checkInteger("relayId", relayId, 0, 0xffffffff);
    this.finishRelay("relayFromPeers");
    return this.x.relayFromPeers(relayId >>> 0, this.count);
  }

  /** Copies a received packet in for opening; returns its index in the batch. */
  addPacket(packet: Uint8Array): number {
    checkBytes("batch.addPacket", "packet", packet);
    this.mem.set(packet, this.reservePacketOffset(packet.length));
    return this.count - 1;
  }

  /**
   * Sets packet i's length to what a driver actually wrote into its reserved region (a TUN read or
   * recvmmsg fills less than the room reserved); it may only shrink, and only before seal or open.
   */
  setLength(i: number, len: number): void {
    const at = this.index(i);
    if (this.done) throw new EngineError("BATCH_DONE", "batch.setLength: already sealed or opened; reset() it first");
    checkInteger("length", len, 0, this.desc[at + DESC_LENGTH]!);
    this.desc[at + DESC_LENGTH] = len;
    this.routed = false;
  }

  /** Forgets the packets from index count on (reserved but never filled); their room is not reused. */
  truncate(count: number): void {
    checkInteger("count", count, 0, this.count);
    if (this.done) throw new EngineError("BATCH_DONE", "batch.truncate: already sealed or opened; reset() it first");
    this.count = count;
  }

  /** Before seal: leaves plaintext i unsealed (status NoSession), for a driver that queued it for a handshake. */
  hold(i: number): void {
    const at = this.index(i);
    if (this.kind === "open") throw new EngineError("BATCH_MIXED", "batch.hold: holds received packets, not plaintexts");
    if (this.done) throw new EngineError("BATCH_DONE", "batch.hold: already sealed; reset() it first");
    this.desc[at + DESC_STATUS] = TransportStatus.NoSession;
  }

  /**
   * Picks each plaintext's peer by its inner destination (longest match in engine.routes); read it
   * with peer(i). status(i) says why a packet has none: NoRoute, BadInnerPacket or OutOfBounds, and
   * seal() then leaves such a packet unsealed. Sealing uses the slots given at reserve time or by
   * setSession().
   */
  routeOutbound(): void {
    if (this.done) throw new EngineError("BATCH_DONE", "batch.routeOutbound: already sealed or opened; reset() it first");
    if (this.kind === "open") throw new EngineError("BATCH_MIXED", "batch.routeOutbound: holds received packets, not plaintexts");
    this.x.routeOutbound(this.count);
    this.routed = true;
  }

  /** After routeOutbound(): the peer packet i goes to, or undefined when none routes it. */
  peer(i: number): number | undefined {
    const at = this.index(i) / DESC_WORDS;
    if (!this.routed) throw new EngineError("BATCH_NOT_ROUTED", "batch.peer: call routeOutbound() first");
    const peer = this.peers[at]!;
    return peer === NO_PEER ? undefined : peer;
  }

  /** Before seal: sets the session slot packet i is sealed with, as chosen from its peer. */
  setSession(i: number, slot: number): void {
    const at = this.index(i);
    checkInteger("slot", slot, 0, this.sessions.capacity - 1);
    if (this.kind === "open") throw new EngineError("BATCH_MIXED", "batch.setSession: holds received packets, not plaintexts");
    if (this.done) throw new EngineError("BATCH_DONE", "batch.setSession: already sealed; reset() it first");
    this.desc[at + DESC_SESSION] = slot;
  }

  /**
   * After open: drops (status SourceNotAllowed or BadInnerPacket) every authenticated packet whose
   * inner source is not an allowed IP of its session's peer, and trims the rest to the IP packet's
   * own length, padding removed; keepalives pass. Returns how many packets are still Ok.
   */
  checkInbound(): number {
    if (this.kind === "seal") throw new EngineError("BATCH_MIXED", "batch.checkInbound: holds plaintexts, not received packets");
    if (!this.done) throw new EngineError("BATCH_NOT_OPENED", "batch.checkInbound: call open() first");
    return this.x.checkInbound(this.count);
  }

  /** Seals every packet in place; returns how many sealed. Per-packet results: status(i). */
  seal(): number {
    this.finish("seal");
    return this.x.transportSeal(this.count);
  }

  /** Opens every packet in place; returns how many authenticated. Per-packet results: status(i). */
  open(): number {
    this.finish("open");
    return this.x.transportOpen(this.count);
  }

  status(i: number): TransportStatus {
    return this.desc[this.index(i) + DESC_STATUS] as TransportStatus;
  }

  /** Session slot of packet i: the sealing slot, or after open the slot that authenticated it. */
  session(i: number): number {
    return this.desc[this.index(i) + DESC_SESSION]!;
  }

  /** After seal: the whole packet (header, ciphertext, tag). Before open: the packet as received. */
  packet(i: number): Uint8Array {
    const at = this.packetOffset(i);
    return this.mem.subarray(at, at + this.desc[i * DESC_WORDS + DESC_LENGTH]!);
  }

  /**
   * After open: the decrypted plaintext, padding included (the inner IP header gives its length);
   * after checkInbound(), the IP packet alone.
   */
  plaintext(i: number): Uint8Array {
    const at = this.packetOffset(i) + MESSAGE_TRANSPORT_HEADER_SIZE;
    return this.mem.subarray(at, at + this.desc[i * DESC_WORDS + DESC_LENGTH]!);
  }

  /** Where packet i starts in `memory` (its plaintext starts MESSAGE_TRANSPORT_HEADER_SIZE later). */
  packetOffset(i: number): number {
    return this.arena + this.desc[this.index(i) + DESC_OFFSET]!;
  }

  /** After seal: the packet's length. After open: the plaintext's length (checkInbound: the IP packet's). Before: as reserved. */
  packetLength(i: number): number {
    return this.desc[this.index(i) + DESC_LENGTH]!;
  }

  private index(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new EngineError("BAD_ARGUMENT", `batch: packet index ${i} is outside 0..${this.count - 1}`);
    }
    return i * DESC_WORDS;
  }

  private describe(offset: number, len: number, slot: number): void {
    this.routed = false;
    const i = this.count++ * DESC_WORDS;
    this.desc[i + DESC_OFFSET] = offset;
    this.desc[i + DESC_LENGTH] = len;
    this.desc[i + DESC_SESSION] = slot;
    this.desc[i + DESC_STATUS] = 0;
  }

  private finishRelay(op: string): void {
    if (this.kind === "seal") throw new EngineError("BATCH_MIXED", `batch.${op}: holds plaintexts, not received packets`);
    if (this.done) throw new EngineError("BATCH_DONE", `batch.${op}: already handled; reset() it first`);
    this.kind = "open";
    this.done = true;
  }

  /** Sealing twice would re-encrypt sealed packets past their regions; mixing kinds likewise. */
  private finish(kind: "seal" | "open"): void {
    if (this.done) throw new EngineError("BATCH_DONE", `batch: already ${this.kind === "open" ? "opened" : "sealed"}; reset() it first`);
    if (this.kind !== undefined && this.kind !== kind) {
      throw new EngineError("BATCH_MIXED", `batch: holds ${this.kind === "open" ? "received packets" : "plaintexts"}, cannot ${kind} it`);
    }
    this.kind = kind;
    this.done = true;
  }

  private take(kind: "seal" | "open", size: number): number {
    if (this.done) throw new EngineError("BATCH_DONE", "batch: already sealed or opened; reset() it before adding packets");
    if (this.kind !== undefined && this.kind !== kind) {
      throw new EngineError("BATCH_MIXED", `batch: holds ${this.kind === "open" ? "received packets" : "plaintexts"}; one batch is either sealed or opened`);
    }
    this.kind = kind;
    if (this.count >= this.maxPackets) {
      throw new EngineError("BATCH_FULL", `batch: already holds ${this.maxPackets} packets; seal or open it first`);
    }
    if (this.cursor + size > this.arenaBytes) {
      throw new EngineError(
        "ARENA_FULL",
        `batch: ${size} more bytes do not fit the ${this.arenaBytes}-byte arena (${this.cursor} in use); seal or open it first`,
      );
    }
    const offset = this.cursor;
    this.cursor += size;
    return offset;
  }
}

