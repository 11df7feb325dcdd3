// The connection layer of one client or gateway (Firezone's snownet Node, sans-IO): its WireGuard
// identity, its TURN allocations, and per remote peer a Connection: an IceAgent that finds the
// path and a WireGuard peer whose sessions seal and open the traffic. One UDP socket (`port`)
// carries everything: ICE checks, TURN to the relays, WireGuard handshakes and transport data.
//
// Driving contract: call one input (init, updateRelays, setLocalAddresses, connect,
// addRemoteCandidate, removeRemoteCandidate, send, disconnect, handleDatagram, handleTimeout) with
// the current monotonic time in ms, then drain pollTransmit() and pollEvent() until they return
// undefined, then arm a timer for pollTimeout(). The children (TurnAllocations, IceAgents, the
// WireGuardDevice) are drained inside each input, so their outputs are already in the queues.
// Nothing here reads a clock or a random source: randomness comes from the `random` option.
//
// The pipeline, in the order of this file:
// 1. Local addresses and relays: setLocalAddresses gives the host candidates (a change is a roam:
//    host candidates are replaced and every allocation is made again, since the relays now see
//    another 5-tuple); init makes one TurnAllocation per relay at once, so server-reflexive and
//    relayed candidates exist before the first connection. init again, after the portal
//    reconnected, keeps the allocations on relays still listed, and also the working ones on relays
//    it does not list: after a portal restart the relays join it again at their own pace (each
//    arrives later as relays_presence), so a missing relay is not a relay gone, and withdrawing its
//    candidates (the server-reflexive one too: the peer's direct path may end on it) would break
//    the paths the data plane is using. updateRelays (relays_presence) ends the allocations on
//    relays that went away and makes them on relays that came. Fresh credentials for a relay keep
//    its allocation. An allocation that ends takes its candidates with it and is made again after
//    RELAY_RETRY_INTERVAL, with the credentials the portal gave last; one on a relay the portal no
//    longer lists is not made again.
// 2. Connections: connect makes the IceAgent (client controlling, gateway controlled) with every
//    local candidate known, and the WireGuard peer; its candidates trickle out as candidate events;
//    remote candidates come in through addRemoteCandidate and get a TURN permission on every
//    allocation, so the peer's checks and data reach us through our relays. connect again with the
//    same keys and ICE credentials (ICE failed, the peer is still wanted) is an ICE restart: a new
//    agent, the WireGuard sessions kept; with others, the connection is made anew. Both keep the
//    candidates the peer trickled.
// 3. Datagrams in (handleDatagram): from a relay server → its TurnAllocation, whose data events are
//    the peers' datagrams arriving on that relayed socket; STUN → the agents, until one takes it;
//    WireGuard handshake (types 1-3) → the device; transport (type 4) → opened (replay window,
//    AEAD), the device told (timers, roaming), a non-empty packet → a packet event. Transport data
//    for a session we do not hold, over a path ICE validated with a peer we hold no session with,
//    means that peer kept a session our side dropped (we connected afresh): we start the handshake
//    at once rather than leave it to the peer's timers, which notice only after 15 s of silence.
// 4. Send: plaintext → the current session's seal → the ICE-selected pair, through the TURN
//    allocation when the pair's local end is relayed (a Send indication, or ChannelData once the
//    channel bound for the selected pair is confirmed; the allocation holds a datagram for a peer
//    IP whose permission is still on its way until it is). Packets wait in the connection until ICE
//    selects a pair, and in the device until a session exists. Before the controlled side has a selected
//    pair, a handshake answer goes back where the handshake came from, and other packets where the
//    peer's last authenticated packet came from (the initiation may overtake the nomination).
// 5. Path and sessions: ICE selecting another pair (a better one, or a fallback after consent
//    failed) only changes where sealed packets go; WireGuard sessions are untouched. Each selection
//    is a connected event saying whether the path is relayed. A new session that our packets go out
//    on (as initiator at once, as responder once the initiator's first packet confirmed it) is a
//    session event: the peer may have started afresh and lost what it was told in-band.
// 6. Timers: the earliest of the agents', the allocations', the device's and the retries'.
//
// Decoding never throws: datagrams that are no one's are dropped and counted in `dropped`.

import { formatCandidate, parseCandidate, type Candidate } from "../ice/candidate.js";
import { REMOTE_CANDIDATES_MAX } from "../ice/constants.js";
import { IceAgent, type IceCredentials, type IcePairView, type IceSocket, type LocalCandidateOptions } from "../ice/agent.js";
import type { TransportAddress } from "../stun/attributes.js";
import { HEADER_OFFSET_COOKIE, HEADER_SIZE, MAGIC_COOKIE } from "../stun/constants.js";
import { TurnAllocation, type TurnClientEvent, type TurnSendDrops } from "../turn/client.js";
import { MESSAGE_COOKIE_REPLY_TYPE, MESSAGE_INITIATION_TYPE, MESSAGE_RESPONSE_TYPE } from "../wireguard/constants.js";
import { WireGuardDevice, type Endpoint } from "../wireguard/device.js";
import type { X25519 } from "../wireguard/crypto.js";
import { StaticIdentity } from "../wireguard/noise.js";
import type { PeerEvent } from "../wireguard/peer.js";
import { PENDING_PACKETS_MAX, RELAY_RETRY_INTERVAL } from "./constants.js";
import { isTransportMessage, TransportSessions, type TransportAead } from "./transport.js";

/** A TURN relay and our credentials for it (from the portal's init). */
export interface TunnelRelay {
  id: string;
  server: TransportAddress;
  username: string;
  password: string;
}

export interface TunnelNodeOptions {
  /** The client's agents are controlling, the gateway's controlled. */
  role: "client" | "gateway";
  /** Our WireGuard static private key (32 bytes, clamped or not). */
  privateKey: Uint8Array;
  /** The one UDP port everything is sent from and received on. */
  port: number;
  /** Randomness, from the driver: handshakes, indices, ICE and TURN transaction IDs. */
  random: (length: number) => Uint8Array;
  /** Unix time in ns at monotonic time 0 (WireGuard's TAI64N timestamps). */
  wallClockAtZeroNanos: bigint;
  /** The transport AEAD (default: @noble); a driver may give a faster one. */
  aead?: TransportAead;
  /** X25519 for the handshakes (default: @noble); a driver may give a faster one. */
  x25519?: X25519;
}

/** What connect takes: the peer's keys and both sides' ICE credentials, from the authorization. */
export interface ConnectOptions {
  publicKey: Uint8Array;
  presharedKey: Uint8Array;
  localIce: IceCredentials;
  remoteIce: IceCredentials;
}

/** A datagram to send from our port. */
export interface TunnelTransmit {
  fromPort: number;
  to: TransportAddress;
  bytes: Uint8Array;
}

export type TunnelEvent =
  /** A local candidate to trickle to the peer (ice_candidates). */
  | { type: "candidate"; peerId: string; candidate: string }
  /** A local candidate the peer should forget (invalidate_ice_candidates). */
  | { type: "candidate_invalidated"; peerId: string; candidate: string }
  /** ICE selected a path (the first, or another one): packets flow over it. */
  | { type: "connected"; peerId: string; relayed: boolean }
  /**
   * A new WireGuard session carries our packets from now on (the first, a rekey, or one the peer
   * started after it lost its side): in-band state the peer keeps (DNS mappings) is worth resending.
   */
  | { type: "session"; peerId: string }
  /** A plaintext IP packet from the peer's tunnel. */
  | { type: "packet"; peerId: string; packet: Uint8Array }
  /** No path is left (ICE disconnected or failed); checks go on, a later connected may follow. */
  | { type: "disconnected"; peerId: string; reason: "ice-disconnected" | "ice-failed" };

/** Why datagrams were dropped, one counter each. */
export interface TunnelDrops {
  /** Neither STUN for one of our agents, nor WireGuard, nor from a relay. */
  unknown: number;
  /** A transport message that did not open (see `sessions.dropped` for why). */
  transport: number;
  /** Sealed while there was no selected pair: nowhere to send. */
  noPath: number;
  /** Waiting for a path, beyond PENDING_PACKETS_MAX. */
  pendingOverflow: number;
}

interface RelaySlot {
  relay: TunnelRelay;
  allocation: TurnAllocation;
  /** The candidates this allocation gave, to withdraw when it ends. */
  relayed: TransportAddress | undefined;
  mapped: TransportAddress | undefined;
  retryAt: number | undefined;
  /**
   * Missing from the portal's last init (it re-synced before this relay joined it again): the
   * allocation is kept while it works, and dropped, not made again, once it ends. Listed again
   * (init or relays_presence), it is a relay like any other.
   */
  unlisted: boolean;
}

interface Connection {
  peerId: string;
  /** What it was made with: connect with the same restarts its ICE only. */
  options: ConnectOptions;
  wgId: number;
  agent: IceAgent;
  selected: IcePairView | undefined;
  /** Packets waiting for ICE to select a pair. */
  pending: Uint8Array[];
  remoteCandidates: Candidate[];
  /** Where the peer's last authenticated packet came from: a way back while ICE has selected nothing. */
  lastPath: { source: IceSocket; to: TransportAddress } | undefined;
  /** Local indices of the peer's installed sessions. */
  sessions: Set<number>;
  /** Those of them we answered a handshake for, until the initiator's first packet on one confirms it. */
  unconfirmed: Set<number>;
}

const NEVER = Number.POSITIVE_INFINITY;

function sameAddress(a: { address: string; port: number }, b: { address: string; port: number }): boolean {
  return a.address === b.address && a.port === b.port;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function sameConnectOptions(a: ConnectOptions, b: ConnectOptions): boolean {
  const sameIce = (x: IceCredentials, y: IceCredentials) => x.username === y.username && x.password === y.password;
  return sameBytes(a.publicKey, b.publicKey) && sameBytes(a.presharedKey, b.presharedKey) && sameIce(a.localIce, b.localIce) && sameIce(a.remoteIce, b.remoteIce);
}

function isStun(bytes: Uint8Array): boolean {
  if (bytes.length < HEADER_SIZE || (bytes[0]! & 0xc0) !== 0) return false;
  const cookie = ((bytes[HEADER_OFFSET_COOKIE]! << 24) | (bytes[HEADER_OFFSET_COOKIE + 1]! << 16) | (bytes[HEADER_OFFSET_COOKIE + 2]! << 8) | bytes[HEADER_OFFSET_COOKIE + 3]!) >>> 0;
  return cookie === MAGIC_COOKIE;
}

function isHandshake(bytes: Uint8Array): boolean {
  const type = bytes[0];
  return (type === MESSAGE_INITIATION_TYPE || type === MESSAGE_RESPONSE_TYPE || type === MESSAGE_COOKIE_REPLY_TYPE) && bytes[1] === 0 && bytes[2] === 0 && bytes[3] === 0;
}

function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

/** One client's or gateway's tunnels to its peers; see the driving contract above. */
export class TunnelNode {
  readonly dropped: TunnelDrops = { unknown: 0, transport: 0, noPath: 0, pendingOverflow: 0 };
  /** WireGuard sessions installed (handshakes completed), ICE path changes and ICE restarts, for operators and tests. */
  readonly stats = { sessionsInstalled: 0, pathChanges: 0, iceRestarts: 0 };
  /** Our WireGuard public key. */
  readonly publicKey: Uint8Array;
  /** The transport sessions (read `sessions.dropped` for open failures). */
  readonly sessions: TransportSessions;

  private readonly options: TunnelNodeOptions;
  private readonly device: WireGuardDevice;
  private hostAddresses: string[] = [];
  private relays: RelaySlot[] = [];
  private readonly connections = new Map<string, Connection>();
  private readonly byWgId = new Map<number, Connection>();
  private readonly transmits: TunnelTransmit[] = [];
  private readonly events: TunnelEvent[] = [];
  /**
   * Where the datagram being handled came from: a handshake can arrive before the controlled
   * agent selects a pair (the nomination and the initiation race), and its answer goes back there.
   */
  private replyPath: { source: IceSocket; to: TransportAddress } | undefined;

  private readonly identity: StaticIdentity;

  constructor(options: TunnelNodeOptions) {
    this.options = options;
    this.identity = new StaticIdentity(options.privateKey, options.x25519);
    this.publicKey = this.identity.publicKey;
    this.sessions = new TransportSessions(options.aead);
    this.device = new WireGuardDevice({ identity: this.identity, random: options.random, wallClockAtZeroNanos: options.wallClockAtZeroNanos });
  }

  /**
   * Why connect would refuse these keys, or undefined: they come from the portal, and a key of the
   * wrong length, or a public key of low order (no session can be keyed with it), must be refused
   * as input, not thrown from deep in the handshake.
   */
  refusesPeer(options: Pick<ConnectOptions, "publicKey" | "presharedKey">): string | undefined {
    if (options.publicKey.length !== 32) return `the public key is ${options.publicKey.length} bytes, not 32`;
    if (options.presharedKey.length !== 32) return `the preshared key is ${options.presharedKey.length} bytes, not 32`;
    if (this.identity.x25519.sharedSecret(this.identity.privateKey, options.publicKey) === null) return "the public key is of low order";
    return undefined;
  }

  // --- 1. Local addresses and relays ---

  /**
   * The host's addresses (host candidates on `port`). A change after the first call is a roam:
   * the old host candidates go, and every allocation is made again from the new address.
   */
  setLocalAddresses(now: number, addresses: readonly string[]): void {
    const before = this.hostAddresses;
    const next = [...addresses];
    const removed = before.filter((a) => !next.includes(a));
    const added = next.filter((a) => !before.includes(a));
    this.hostAddresses = next;
    for (const connection of this.connections.values()) {
      for (const address of removed) connection.agent.removeLocalCandidate(now, { type: "host", address, port: this.options.port });
      for (const address of added) connection.agent.addLocalCandidate(now, this.hostCandidate(address));
    }
    if (before.length > 0 && removed.length > 0) {
      // The relays see a new 5-tuple: the old allocations are unreachable; make new ones.
      this.reallocate(now);
      return;
    }
    this.drain(now);
  }

  /** Every allocation ends and is made again on the same relays (after a roam); an unlisted one stays unlisted. */
  private reallocate(now: number): void {
    for (const slot of this.relays) this.withdraw(now, slot);
    this.relays = this.relays.map((slot) => ({ ...this.allocateOn(now, slot.relay), unlisted: slot.unlisted }));
    this.drain(now);
  }

  /** The relays to allocate on: each allocation is requested at once (an existing one on the same relay is kept). */
  init(now: number, relays: readonly TunnelRelay[]): void {
    // Again (the portal reconnected): an allocation on a relay still listed at the same address is
    // kept, its fresh credentials noted for a later re-allocation. Allocating anew from the same
    // socket would meet the old allocation on the server (437 Allocation Mismatch) and leave the
    // connections without their server-reflexive and relayed candidates until it lapsed.
    const keep: RelaySlot[] = [];
    for (const slot of this.relays) {
      const listed = relays.find((relay) => relay.id === slot.relay.id && sameAddress(relay.server, slot.relay.server));
      if (listed !== undefined) {
        slot.relay = listed;
        slot.unlisted = false;
        keep.push(slot);
        continue;
      }
      // Not listed, and working: kept with its candidates. The portal lists the relays that have
      // joined it so far, and after a restart that may be none yet; paths over this relay, and
      // direct ones ending on the server-reflexive candidate it reported, carry on meanwhile.
      // relays_presence says whether it comes back or went; if it ends first, it is not made again.
      if (slot.allocation.allocated && !relays.some((relay) => relay.id === slot.relay.id)) {
        slot.unlisted = true;
        keep.push(slot);
        continue;
      }
      // Listed at another address (a new relay under the old id), or not working: given back.
      this.withdraw(now, slot);
      slot.allocation.release(now);
      for (let t = slot.allocation.pollTransmit(); t !== undefined; t = slot.allocation.pollTransmit()) this.transmits.push({ fromPort: this.options.port, to: t.to, bytes: t.bytes });
    }
    this.relays = [...keep, ...relays.filter((relay) => !keep.some((slot) => slot.relay.id === relay.id)).map((relay) => this.allocateOn(now, relay))];
    this.drain(now);
  }

  /**
   * The portal's relays_presence: the allocations on relays that went away end, their candidates
   * leave every agent (the peers hear invalidate_ice_candidates, and paths over them fall back), and
   * relays that came are allocated on at once. A relay listed again with another address is
   * allocated on afresh; with fresh credentials only, its allocation stays (they serve the next
   * one). An ended allocation is not released: its server is gone, or lets it lapse with its
   * lifetime.
   */
  updateRelays(now: number, connected: readonly TunnelRelay[], disconnectedIds: readonly string[]): void {
    // Fresh credentials alone (every message carries new ones) keep the allocation: allocating again
    // from the same socket would meet the old one on the server. They are noted for a re-allocation.
    const keep = this.relays.filter((slot) => {
      const listed = connected.find((relay) => relay.id === slot.relay.id);
      if (disconnectedIds.includes(slot.relay.id) || (listed !== undefined && !sameAddress(slot.relay.server, listed.server))) return false;
      if (listed !== undefined) {
        slot.relay = listed;
        slot.unlisted = false;
      }
      return true;
    });
    const gone = this.relays.filter((slot) => !keep.includes(slot));
    this.relays = keep;
    for (const slot of gone) this.withdraw(now, slot);
    for (const relay of connected) if (!keep.some((slot) => slot.relay.id === relay.id)) this.relays.push(this.allocateOn(now, relay));
    this.drain(now);
  }

  /** A slot for a relay, its allocation requested at once. */
  private allocateOn(now: number, relay: TunnelRelay): RelaySlot {
    const allocation = this.allocationOn(relay);
    allocation.allocate(now);
    return { relay, allocation, relayed: undefined, mapped: undefined, retryAt: undefined, unlisted: false };
  }

  private allocationOn(relay: TunnelRelay): TurnAllocation {
    return new TurnAllocation({ server: relay.server, username: relay.username, password: relay.password, random: this.options.random });
  }

  private hostCandidate(address: string): LocalCandidateOptions {
    return { type: "host", address, port: this.options.port };
  }

  /** The base of a server-reflexive candidate: our host socket of its family. */
  private baseFor(family: 4 | 6): { address: string; port: number } | undefined {
    const address = this.hostAddresses.find((a) => familyOf(a) === family);
    return address === undefined ? undefined : { address, port: this.options.port };
  }

  private relayCandidates(slot: RelaySlot): LocalCandidateOptions[] {
    const out: LocalCandidateOptions[] = [];
    const server = slot.relay.server.address;
    if (slot.mapped !== undefined) {
      const base = this.baseFor(slot.mapped.family);
      if (base !== undefined && !sameAddress(base, slot.mapped)) out.push({ type: "srflx", address: slot.mapped.address, port: slot.mapped.port, base, server });
    }
    if (slot.relayed !== undefined) {
      const candidate: LocalCandidateOptions = { type: "relay", address: slot.relayed.address, port: slot.relayed.port, server };
      if (slot.mapped !== undefined) candidate.related = { address: slot.mapped.address, port: slot.mapped.port };
      out.push(candidate);
    }
    return out;
  }

  private localCandidates(): LocalCandidateOptions[] {
    return [...this.hostAddresses.map((a) => this.hostCandidate(a)), ...this.relays.flatMap((slot) => this.relayCandidates(slot))];
  }

  private handleAllocationEvent(now: number, slot: RelaySlot, event: TurnClientEvent): void {
    switch (event.type) {
      case "allocated": {
        slot.relayed = event.relayed[0];
        slot.mapped = event.mapped;
        const candidates = this.relayCandidates(slot);
        for (const connection of this.connections.values()) {
          for (const candidate of candidates) connection.agent.addLocalCandidate(now, candidate);
          for (const remote of connection.remoteCandidates) slot.allocation.createPermission(now, { family: familyOf(remote.address), address: remote.address, port: remote.port });
        }
        return;
      }
      case "data":
        if (slot.relayed !== undefined) this.fromPeer(now, { type: "relay", relayAddress: slot.relayed.address, relayPort: slot.relayed.port }, event.peer, event.data);
        return;
      case "failed":
        if (!slot.allocation.allocated && (event.operation === "allocate" || event.operation === "refresh" || event.code !== undefined)) {
          this.withdraw(now, slot);
          // A relay the portal no longer lists is not asked again: relays_presence brings it back if it returns.
          if (slot.unlisted) this.relays = this.relays.filter((s) => s !== slot);
          else slot.retryAt = now + RELAY_RETRY_INTERVAL;
        }
        return;
      default:
        return;
    }
  }

  /** An allocation ended (or is replaced): its candidates leave every agent (a shared srflx stays while another allocation reports it). */
  private withdraw(now: number, slot: RelaySlot): void {
    // Removal goes by type and address only, so no base is needed (after a roam there may be none).
    const candidates: { type: "srflx" | "relay"; address: string; port: number }[] = [];
    if (slot.mapped !== undefined) candidates.push({ type: "srflx", address: slot.mapped.address, port: slot.mapped.port });
    if (slot.relayed !== undefined) candidates.push({ type: "relay", address: slot.relayed.address, port: slot.relayed.port });
    slot.relayed = undefined;
    slot.mapped = undefined;
    const still = this.localCandidates();
    for (const candidate of candidates) {
      if (still.some((c) => c.type === candidate.type && c.address === candidate.address && c.port === candidate.port)) continue;
      for (const connection of this.connections.values()) connection.agent.removeLocalCandidate(now, candidate);
    }
  }

  // --- 2. Connections ---

  /**
   * Starts the connection to a peer, or restarts it. With other keys or ICE credentials, the old
   * one goes (its WireGuard sessions too). With the same ones (the peer is still wanted after ICE
   * failed), only ICE restarts: a new agent runs the checks afresh over today's candidates, and the
   * WireGuard sessions stay (a peer that lost its side meanwhile handshakes on our first packet).
   * Either way the candidates the peer trickled are kept: it sent them once and withdraws them
   * itself, and without them the new agent could only wait for the peer's checks to find it.
   */
  connect(now: number, peerId: string, options: ConnectOptions): void {
    const previous = this.connections.get(peerId);
    if (previous !== undefined && sameConnectOptions(previous.options, options)) {
      this.restartIce(now, previous);
      return;
    }
    if (previous !== undefined) this.forget(peerId);
    // The device only emits handshakes for a peer with an endpoint; ours is the ICE-selected pair,
    // so any placeholder will do (transmits are routed by peer, never by this address).
    const wgId = this.device.addPeer(options.publicKey, { presharedKey: options.presharedKey, endpoint: { address: "0.0.0.0", port: 0 } });
    const remoteCandidates = (previous?.remoteCandidates ?? []).slice();
    const connection: Connection = {
      peerId, options: { ...options, publicKey: options.publicKey.slice(), presharedKey: options.presharedKey.slice() }, wgId,
      agent: this.newAgent(now, options, remoteCandidates), selected: undefined, pending: [], remoteCandidates, lastPath: undefined,
      sessions: new Set(), unconfirmed: new Set(),
    };
    this.connections.set(peerId, connection);
    this.byWgId.set(wgId, connection);
    this.drain(now);
  }

  /** A new agent for the connection (an ICE restart); the WireGuard peer and what waits for a path stay. */
  private restartIce(now: number, connection: Connection): void {
    connection.agent = this.newAgent(now, connection.options, connection.remoteCandidates);
    connection.selected = undefined;
    this.stats.iceRestarts++;
    this.drain(now);
  }

  /** An agent with every local candidate known and the peer's candidates given. */
  private newAgent(now: number, options: ConnectOptions, remoteCandidates: readonly Candidate[]): IceAgent {
    const agent = new IceAgent({
      role: this.options.role === "client" ? "controlling" : "controlled",
      local: options.localIce,
      remote: options.remoteIce,
      random: this.options.random,
    });
    for (const candidate of this.localCandidates()) agent.addLocalCandidate(now, candidate);
    for (const candidate of remoteCandidates) agent.addRemoteCandidate(now, candidate);
    return agent;
  }

  /** A candidate the peer trickled (RFC 8839 text); malformed ones are ignored (false). */
  addRemoteCandidate(now: number, peerId: string, text: string): boolean {
    const connection = this.connections.get(peerId);
    const parsed = parseCandidate(text);
    if (connection === undefined || !parsed.ok) return false;
    const candidate = parsed.candidate;
    // The agent bounds what a peer may trickle (REMOTE_CANDIDATES_MAX), and so does this list.
    if (!connection.agent.addRemoteCandidate(now, candidate)) {
      this.drain(now);
      return false;
    }
    const known = connection.remoteCandidates.some((c) => c.address === candidate.address && c.port === candidate.port);
    if (!known && connection.remoteCandidates.length < REMOTE_CANDIDATES_MAX) connection.remoteCandidates.push(candidate);
    // The peer's checks and data from this address must pass our relays.
    for (const slot of this.relays) {
      if (slot.allocation.allocated) slot.allocation.createPermission(now, { family: familyOf(candidate.address), address: candidate.address, port: candidate.port });
    }
    this.drain(now);
    return true;
  }

  /** A candidate the peer invalidated. */
  removeRemoteCandidate(now: number, peerId: string, text: string): void {
    const connection = this.connections.get(peerId);
    const parsed = parseCandidate(text);
    if (connection === undefined || !parsed.ok) return;
    const { address, port } = parsed.candidate;
    connection.remoteCandidates = connection.remoteCandidates.filter((c) => !(c.address === address && c.port === port));
    connection.agent.removeRemoteCandidate(now, { address, port });
    this.drain(now);
  }

  /** Ends the connection: the ICE agent and the WireGuard peer (its sessions) go at once. */
  disconnect(now: number, peerId: string): void {
    this.forget(peerId);
    this.drain(now);
  }

  private forget(peerId: string): void {
    const connection = this.connections.get(peerId);
    if (connection === undefined) return;
    this.connections.delete(peerId);
    this.byWgId.delete(connection.wgId);
    this.device.removePeer(connection.wgId);
    this.sessions.dropPeer(connection.wgId);
  }

  /** What the TURN allocations could not relay (held for a permission that never came, and so on), summed over the relays. */
  get relayDropped(): TurnSendDrops {
    const sum: TurnSendDrops = { noAllocation: 0, heldOverflow: 0, permissionFailed: 0 };
    for (const slot of this.relays) {
      sum.noAllocation += slot.allocation.sendDropped.noAllocation;
      sum.heldOverflow += slot.allocation.sendDropped.heldOverflow;
      sum.permissionFailed += slot.allocation.sendDropped.permissionFailed;
    }
    return sum;
  }

  /**
   * Announces a peer's connection's local candidates again (candidate events): the peer may be a
   * new process with our connection's keys and credentials (it restarted), which never heard them,
   * and without them it cannot check a path through its NAT to us. Nothing for an unknown peer.
   */
  reannounceCandidates(peerId: string): void {
    const connection = this.connections.get(peerId);
    if (connection === undefined) return;
    for (const candidate of connection.agent.announcedCandidates()) this.events.push({ type: "candidate", peerId, candidate: formatCandidate(candidate) });
  }

  /** Peers with a connection. */
  get peerIds(): string[] {
    return [...this.connections.keys()];
  }

  /** The path in use to a peer, if any. */
  selectedPair(peerId: string): IcePairView | undefined {
    return this.connections.get(peerId)?.selected;
  }

  /** The ICE agent of a peer (diagnostics and tests). */
  agentOf(peerId: string): IceAgent | undefined {
    return this.connections.get(peerId)?.agent;
  }

  // --- 3. Datagrams in ---

  /** A datagram that arrived on our port. */
  handleDatagram(now: number, localPort: number, from: TransportAddress, bytes: Uint8Array): void {
    const slot = this.relays.find((s) => sameAddress(s.relay.server, from));
    if (slot !== undefined) {
      slot.allocation.handleDatagram(now, from, bytes);
    } else {
      const local = this.hostAddresses.find((a) => familyOf(a) === from.family) ?? this.hostAddresses[0] ?? "0.0.0.0";
      this.fromPeer(now, { type: "host", address: local, port: localPort }, from, bytes);
    }
    this.drain(now);
    this.replyPath = undefined;
  }

  /** A datagram from a peer, on a host socket or a relayed one. */
  private fromPeer(now: number, local: IceSocket, from: TransportAddress, bytes: Uint8Array): void {
    if (isStun(bytes)) {
      for (const connection of this.connections.values()) if (connection.agent.handleInput(now, { local, from }, bytes)) return;
      this.dropped.unknown++;
      return;
    }
    const source: Endpoint = { address: from.address, port: from.port };
    if (isHandshake(bytes)) {
      this.replyPath = { source: local, to: from };
      this.device.handshakeDatagram(now, bytes, source);
      return;
    }
    if (!isTransportMessage(bytes)) {
      this.dropped.unknown++;
      return;
    }
    const opened = this.sessions.open(bytes);
    if (!opened.ok) {
      this.dropped.transport++;
      if (opened.reason === "unknown-receiver") this.handshakeForStaleSession(now, local, from);
      return;
    }
    this.device.authenticated(now, opened.localIndex, source, opened.packet.length > 0);
    const connection = this.byWgId.get(opened.peer);
    if (connection === undefined) return;
    connection.lastPath = { source: local, to: from };
    connection.agent.noteActivity(now);
    if (connection.unconfirmed.delete(opened.localIndex)) this.events.push({ type: "session", peerId: connection.peerId });
    // The AEAD made the plaintext afresh: no copy needed to own it.
    if (opened.packet.length > 0) this.events.push({ type: "packet", peerId: connection.peerId, packet: opened.packet });
  }

  /**
   * Transport data no session of ours opens. When it came over a path ICE validated with a peer we
   * hold no session with, that peer still seals with a session our side dropped (it kept its
   * connection while we connected afresh, with the same keys and ICE credentials, so ICE never
   * noticed); we start a handshake, which replaces the peer's stale session. One initiation per
   * REKEY_TIMEOUT at most, however much stale data arrives: the device runs one handshake at a time.
   */
  private handshakeForStaleSession(now: number, local: IceSocket, from: TransportAddress): void {
    for (const connection of this.connections.values()) {
      if (connection.sessions.size > 0 || !connection.agent.isValidPath(local, from)) continue;
      this.replyPath = { source: local, to: from };
      this.device.send(now, connection.wgId, 0);
      return;
    }
  }

  // --- 4. Send ---

  /** Sends an IP packet to a peer through its tunnel (held until there is a path and a session). */
  send(now: number, peerId: string, packet: Uint8Array): void {
    const connection = this.connections.get(peerId);
    if (connection === undefined) return;
    if (connection.selected === undefined) {
      connection.pending.push(packet.slice());
      if (connection.pending.length > PENDING_PACKETS_MAX) {
        connection.pending.shift();
        this.dropped.pendingOverflow++;
      }
      this.drain(now);
      return;
    }
    connection.agent.noteActivity(now);
    this.sendPackets(now, connection, [packet]);
    this.drain(now);
  }

  private sendPackets(now: number, connection: Connection, packets: Uint8Array[]): void {
    const localIndex = this.device.send(now, connection.wgId, packets.length);
    if (localIndex === undefined) {
      this.device.stage(connection.wgId, packets);
      return;
    }
    for (const packet of packets) this.sealAndSend(now, connection, localIndex, packet);
  }

  private sealAndSend(now: number, connection: Connection, localIndex: number, packet: Uint8Array): void {
    const sealed = this.sessions.seal(localIndex, packet);
    if (sealed !== undefined) this.overPath(now, connection, sealed);
  }

  /** Sends bytes over the connection's selected pair (before there is one: back where the peer spoke from). */
  private overPath(now: number, connection: Connection, bytes: Uint8Array): void {
    const pair = connection.selected ?? connection.lastPath ?? this.replyPath;
    if (pair === undefined) {
      this.dropped.noPath++;
      return;
    }
    this.transmitFrom(now, pair.source, pair.to, bytes);
  }

  /** Sends from a socket: our port directly, or a relayed socket through its allocation. */
  private transmitFrom(now: number, source: IceSocket, to: TransportAddress, bytes: Uint8Array): void {
    if (source.type === "host") {
      this.transmits.push({ fromPort: this.options.port, to, bytes });
      return;
    }
    const slot = this.slotOf(source);
    if (slot === undefined) {
      this.dropped.noPath++;
      return;
    }
    // A peer-reflexive address may have no permission yet: the allocation asks for one and holds
    // the datagram meanwhile.
    slot.allocation.send(now, to, bytes);
  }

  private slotOf(source: { relayAddress: string; relayPort: number }): RelaySlot | undefined {
    return this.relays.find((s) => s.relayed !== undefined && s.relayed.address === source.relayAddress && s.relayed.port === source.relayPort);
  }

  // --- 5. Path, and draining the children ---

  private handleDeviceEvent(now: number, wgId: number, event: PeerEvent): void {
    const connection = this.byWgId.get(wgId);
    switch (event.type) {
      case "install":
        if (connection === undefined) return;
        this.sessions.install(wgId, event.keys);
        this.stats.sessionsInstalled++;
        connection.sessions.add(event.keys.localIndex);
        if (event.keys.initiator) this.events.push({ type: "session", peerId: connection.peerId });
        else connection.unconfirmed.add(event.keys.localIndex);
        return;
      case "drop":
        this.sessions.drop(event.localIndex);
        connection?.sessions.delete(event.localIndex);
        connection?.unconfirmed.delete(event.localIndex);
        return;
      case "flush":
        if (connection !== undefined) for (const packet of event.packets) this.sealAndSend(now, connection, event.localIndex, packet);
        return;
      case "keepalive":
        if (connection !== undefined) this.sealAndSend(now, connection, event.localIndex, new Uint8Array(0));
        return;
      case "handshake-failed":
        return;
    }
  }

  private handleIceEvents(now: number, connection: Connection): boolean {
    let progress = false;
    for (let t = connection.agent.pollTransmit(); t !== undefined; t = connection.agent.pollTransmit()) {
      progress = true;
      this.transmitFrom(now, t.source, t.to, t.bytes);
    }
    for (let e = connection.agent.pollEvent(); e !== undefined; e = connection.agent.pollEvent()) {
      progress = true;
      if (!this.connections.has(connection.peerId)) continue;
      switch (e.type) {
        case "local_candidate":
          this.events.push({ type: "candidate", peerId: connection.peerId, candidate: formatCandidate(e.candidate) });
          break;
        case "local_candidate_invalidated":
          this.events.push({ type: "candidate_invalidated", peerId: connection.peerId, candidate: formatCandidate(e.candidate) });
          break;
        case "selected": {
          const first = connection.selected === undefined;
          if (!first) this.stats.pathChanges++;
          connection.selected = e.pair;
          // The path in use gets a channel: 4 bytes of framing instead of a Send indication's 36.
          // One per connection, so the 4096 channel numbers of an allocation are never the limit.
          const source = e.pair.source;
          if (source.type === "relay") this.slotOf(source)?.allocation.bindChannel(now, e.pair.to);
          this.events.push({ type: "connected", peerId: connection.peerId, relayed: e.pair.relayed });
          if (first) this.pathUp(now, connection);
          break;
        }
        case "connected":
          break;
        case "disconnected":
          connection.selected = undefined;
          this.events.push({ type: "disconnected", peerId: connection.peerId, reason: "ice-disconnected" });
          break;
        case "failed":
          this.events.push({ type: "disconnected", peerId: connection.peerId, reason: "ice-failed" });
          break;
      }
    }
    return progress;
  }

  /**
   * A path exists: what waited goes, and the client starts the handshake even with nothing to send
   * (after an ICE restart, with a session: a keepalive, so a gateway that lost its side hears of it).
   */
  private pathUp(now: number, connection: Connection): void {
    const pending = connection.pending;
    connection.pending = [];
    if (pending.length > 0) {
      this.sendPackets(now, connection, pending);
    } else if (this.options.role === "client") {
      const localIndex = this.device.send(now, connection.wgId, 0);
      if (localIndex !== undefined) this.sealAndSend(now, connection, localIndex, new Uint8Array(0));
    }
  }

  /** Drains every child until none has anything left (one's output is another's input). */
  private drain(now: number): void {
    for (let progress = true; progress; ) {
      progress = false;
      for (const slot of this.relays) {
        for (let t = slot.allocation.pollTransmit(); t !== undefined; t = slot.allocation.pollTransmit()) {
          progress = true;
          this.transmits.push({ fromPort: this.options.port, to: t.to, bytes: t.bytes });
        }
        for (let e = slot.allocation.pollEvent(); e !== undefined; e = slot.allocation.pollEvent()) {
          progress = true;
          this.handleAllocationEvent(now, slot, e);
        }
      }
      for (const connection of [...this.connections.values()]) if (this.handleIceEvents(now, connection)) progress = true;
      for (let t = this.device.pollTransmit(); t !== undefined; t = this.device.pollTransmit()) {
        progress = true;
        const connection = t.peer === undefined ? undefined : this.byWgId.get(t.peer);
        // A cookie reply (no peer) goes back where the handshake came from, over our port.
        if (connection === undefined) this.transmits.push({ fromPort: this.options.port, to: { family: familyOf(t.to.address), address: t.to.address, port: t.to.port }, bytes: t.bytes });
        else this.overPath(now, connection, t.bytes);
      }
      for (let e = this.device.pollEvent(); e !== undefined; e = this.device.pollEvent()) {
        progress = true;
        this.handleDeviceEvent(now, e.peer, e.event);
      }
    }
  }

  // --- 6. Timers and output ---

  /** Runs whatever is due in the children and the relay retries. */
  handleTimeout(now: number): void {
    for (const slot of this.relays) {
      if (slot.retryAt !== undefined && now >= slot.retryAt) {
        slot.retryAt = undefined;
        // With the credentials the portal gave last: the ones it was made with may have run out.
        slot.allocation = this.allocationOn(slot.relay);
        slot.allocation.allocate(now);
      }
      const t = slot.allocation.pollTimeout();
      if (t !== undefined && t <= now) slot.allocation.handleTimeout(now);
    }
    for (const connection of this.connections.values()) {
      const t = connection.agent.pollTimeout();
      if (t !== undefined && t <= now) connection.agent.handleTimeout(now);
    }
    const t = this.device.pollTimeout();
    if (t !== undefined && t <= now) this.device.handleTimeout(now);
    this.drain(now);
  }

  pollTransmit(): TunnelTransmit | undefined {
    return this.transmits.shift();
  }

  pollEvent(): TunnelEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    let t = NEVER;
    for (const slot of this.relays) t = Math.min(t, slot.retryAt ?? NEVER, slot.allocation.pollTimeout() ?? NEVER);
    for (const connection of this.connections.values()) t = Math.min(t, connection.agent.pollTimeout() ?? NEVER);
    t = Math.min(t, this.device.pollTimeout() ?? NEVER);
    return t === NEVER ? undefined : t;
  }
}
