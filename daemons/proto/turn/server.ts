// The TURN server (RFC 8656 over UDP, with RFC 8489 long-term credentials minted by the portal
// under a shared secret, credentials.ts) as a sans-IO state machine.
//
// Driving contract: call an input (handleClientDatagram, handlePeerDatagram, handleTimeout) with
// monotonic `now` in ms, then drain pollTransmit() (datagrams to send from the listening socket or
// a relay socket) and pollEvent() (forwarding-table changes for the engine, relay sockets to
// close), then arm a timer for pollTimeout(). Nothing here reads a clock, a socket or a random
// source: `now` comes with each input, randomness and relay sockets through the options.
//
// The data path is not here: ChannelData and peer datagrams on bound channels go through the
// engine's forwarding table (DESIGN.md, Hot paths), which the channel-bound / channel-unbound
// events keep in step with the channels and permissions below. This class sees the control
// traffic, Send and Data indications, and whatever the engine could not forward.
//
// 1. Client datagrams: ChannelData here found no channel in the engine (counted, dropped); the rest
//    must decode as STUN (RFC 8489 §6.3), else it is counted and dropped; responses are dropped.
// 2. Requests: Binding needs no credentials (RFC 8489 §6.3.1); every TURN request is authenticated
//    first (RFC 8656 §5, RFC 8489 §9.2.4): no MESSAGE-INTEGRITY → 401 with REALM and NONCE; no
//    USERNAME, REALM or NONCE → 400; a stale or foreign nonce → 438 with a new one; an expired or
//    malformed username, or an HMAC no secret verifies → 401. Then unknown comprehension-required
//    attributes → 420 (RFC 8489 §6.3.1, "once the authentication checks are done").
// 3. Allocate (RFC 8656 §7.2), Refresh (§8.2), CreatePermission (§10.2), ChannelBind (§12.2), each
//    on the allocation of the request's 5-tuple (437 without one, 441 for another user's).
// 4. Send indications (§11.2): relayed to the peer if a permission exists, else dropped.
// 5. Peer datagrams the engine did not forward (§11.3): ChannelData if a channel is bound to the
//    peer, else a Data indication, if a permission exists; else dropped (§9).
// 6. Timers: allocation lifetime, permissions (300 s, §9), channels (600 s, §12) and the 5 minutes
//    a channel's number and peer stay reserved after it expires (§12).
//
// Amplification. Nothing sent to an unauthenticated source is larger than the datagram it sent: a
// source is authenticated when its datagram carries MESSAGE-INTEGRITY that verifies, or when its
// 5-tuple holds an allocation (it proved its credentials to create it). Answers to everyone else
// (Binding, 400, 401, 420, 438) are built small: no SOFTWARE, an empty reason phrase, FINGERPRINT
// only if it fits, an 8-character stateless nonce (nonce.ts); an answer still larger than its
// request is not sent (counted as "amplification"). With the realm "wardline" a 401 is 52 bytes,
// which coturn's turnutils_uclient's first Allocate (52 or 60 bytes) gets; a bare 20-byte Binding
// or a 28-byte Allocate with REQUESTED-TRANSPORT alone gets nothing, so a client pads these with
// SOFTWARE to minimumRequestSize (below). Unauthenticated requests create no state: the nonce is a
// MAC, and the drop counters are per reason, not per source.

import type { TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import { encodeChannelData, isAcceptedChannelNumber } from "../stun/channel-data.js";
import {
  ADDRESS_FAMILY_IPV4, ADDRESS_FAMILY_IPV6, ADDRESS_OFFSET_ADDRESS, ATTR_ADDITIONAL_ADDRESS_FAMILY, ATTR_EVEN_PORT,
  ATTR_FINGERPRINT, ATTR_LIFETIME, ATTR_MESSAGE_INTEGRITY, ATTR_REQUESTED_ADDRESS_FAMILY,
  ATTR_RESERVATION_TOKEN, ATTR_USERHASH, ATTRIBUTE_ALIGNMENT, ATTRIBUTE_HEADER_SIZE,
  ERROR_ADDRESS_FAMILY_NOT_SUPPORTED, ERROR_ALLOCATION_MISMATCH, ERROR_ALLOCATION_QUOTA_REACHED, ERROR_BAD_REQUEST,
  ERROR_FORBIDDEN, ERROR_INSUFFICIENT_CAPACITY, ERROR_PEER_ADDRESS_FAMILY_MISMATCH, ERROR_STALE_NONCE,
  ERROR_OFFSET_REASON, ERROR_UNAUTHENTICATED, ERROR_UNKNOWN_ATTRIBUTE, ERROR_UNSUPPORTED_TRANSPORT_PROTOCOL, ERROR_WRONG_CREDENTIALS,
  HEADER_SIZE, IPV4_SIZE, IPV6_SIZE,
  MESSAGE_LENGTH_MAX, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_DATA,
  METHOD_REFRESH, METHOD_SEND, TRANSACTION_ID_SIZE, TRANSPORT_UDP,
} from "../stun/constants.js";
import { checkUsername, passwordFor } from "../stun/credentials.js";
import { longTermKey, verifyIntegrity } from "../stun/integrity.js";
import { decodeStun, KNOWN_ATTRIBUTES, type StunMessage } from "../stun/message.js";
import {
  CHANNEL_LIFETIME_SECONDS, CHANNEL_REBIND_DELAY_SECONDS, DEFAULT_LIFETIME_SECONDS, DEFAULT_MAX_ALLOCATIONS_PER_USER,
  MAX_ALLOWED_LIFETIME_SECONDS, MAX_PERMISSIONS_PER_ALLOCATION, PERMISSION_LIFETIME_SECONDS, REASON_PHRASES,
} from "./constants.js";
import { NONCE_TEXT_LENGTH, NonceMinter } from "./nonce.js";
import { canonicalAddress, ipKey, peerAllowed, transportKey } from "./peer-policy.js";

export type { TransportAddress } from "../stun/attributes.js";

export interface TurnServerOptions {
  realm: string;
  /** use-auth-secret shared secrets (coturn's static-auth-secret); several allow rotation: any may verify. */
  secrets: readonly (string | Uint8Array)[];
  /** SOFTWARE in responses; default "wardline". */
  software?: string;
  /** Nonce keys and indication transaction IDs. */
  random: (length: number) => Uint8Array;
  /** Unix seconds at monotonic time 0 (credential expiry and nonces are judged on wall time = this + now/1000). */
  wallClockAtZeroSeconds: number;
  /** Public relay addresses per family (what XOR-RELAYED-ADDRESS says); a family without one cannot be allocated (440). */
  relayAddress: { 4?: string; 6?: string };
  /** Opens a relay socket of family for a new allocation; the driver owns the port range; undefined when exhausted (→ 508). */
  openRelay: (family: 4 | 6) => { relayId: number; port: number } | undefined;
  /** Seconds; 600. */
  defaultLifetime?: number;
  /** Seconds; 3600. */
  maxLifetime?: number;
  /** Whether peers in private ranges (RFC 1918, 100.64/10, fc00::/7) may be reached; default false (peer-policy.ts). */
  allowPrivatePeers?: boolean;
  /** Allocations one credential id may hold at once; default 10 (→ 486 Allocation Quota Reached). */
  maxAllocationsPerUser?: number;
}

/** A datagram to send: from the listening socket to a client, or from a relay socket to a peer. */
export type TurnTransmit =
  | { via: "listener"; to: TransportAddress; bytes: Uint8Array }
  | { via: "relay"; relayId: number; to: TransportAddress; bytes: Uint8Array };

export type TurnEvent =
  /**
   * Install in the engine's forwarding table: ChannelData from client on channel ↔ datagrams with
   * peer, via relay socket relayId. Emitted when a channel is bound AND the peer's permission is
   * valid; -unbound when either lapses, the channel is rebound elsewhere (not allowed anyway), or
   * the allocation ends.
   */
  | { type: "channel-bound"; relayId: number; client: TransportAddress; channel: number; peer: TransportAddress }
  | { type: "channel-unbound"; relayId: number; client: TransportAddress; channel: number; peer: TransportAddress }
  /**
   * The allocation is gone (deleted with lifetime 0, or expired): close its relay socket. Also
   * returns a socket opened for an EVEN-PORT Allocate that came with an odd port.
   */
  | { type: "allocation-closed"; relayId: number };

/** What an operator (and the tests) can read; the first three are current counts. */
export interface TurnServerStats {
  allocations: number;
  /** Bound channels (not those in their 5 minutes of reservation after expiry). */
  channels: number;
  permissions: number;
  /** STUN requests received, answered or not. */
  requests: number;
  /** Datagrams dropped, and answers not sent, per reason. */
  dropped: Record<string, number>;
}

/**
 * The smallest request an unauthenticated source gets an answer to (see Amplification above), for
 * clients to pad theirs: a Binding (answered with XOR-MAPPED-ADDRESS) or a TURN request without
 * MESSAGE-INTEGRITY (answered with 401, REALM and NONCE). Add 8 for a request that carries
 * FINGERPRINT (the answer then carries it too).
 */
export function minimumRequestSize(answer: { kind: "binding"; family: 4 | 6 } | { kind: "challenge"; realm: string }): number {
  const pad = (n: number): number => (n + ATTRIBUTE_ALIGNMENT - 1) & ~(ATTRIBUTE_ALIGNMENT - 1);
  // XOR-MAPPED-ADDRESS of the source's family.
  if (answer.kind === "binding") return HEADER_SIZE + ATTRIBUTE_HEADER_SIZE + ADDRESS_OFFSET_ADDRESS + (answer.family === 6 ? IPV6_SIZE : IPV4_SIZE);
  // ERROR-CODE with an empty reason phrase, REALM, and an 8-character NONCE.
  const realm = new TextEncoder().encode(answer.realm).length;
  return HEADER_SIZE + (ATTRIBUTE_HEADER_SIZE + ERROR_OFFSET_REASON) + (ATTRIBUTE_HEADER_SIZE + pad(realm)) + (ATTRIBUTE_HEADER_SIZE + NONCE_TEXT_LENGTH);
}

/**
 * Comprehension-required attributes the server accepts in a request (RFC 8489 §6.3.1); any other
 * gets 420. USERHASH is left out: credentials from a shared secret have no user table to look a
 * hash up in, and the server never offers it (no security feature bits in its nonces).
 */
const UNDERSTOOD: ReadonlySet<number> = new Set([...KNOWN_ATTRIBUTES].filter((type) => type !== ATTR_USERHASH));

/** How many relay sockets an EVEN-PORT Allocate may open in search of an even port. */
const EVEN_PORT_ATTEMPTS = 8;

/** The largest DATA a Data indication can carry: Length is 16 bits (RFC 8489 §5), an IPv6 XOR-PEER-ADDRESS is 24 bytes. */
const MAX_DATA_INDICATION_PAYLOAD =
  (MESSAGE_LENGTH_MAX - (ATTRIBUTE_HEADER_SIZE + ADDRESS_OFFSET_ADDRESS + IPV6_SIZE) - ATTRIBUTE_HEADER_SIZE) & ~(ATTRIBUTE_ALIGNMENT - 1);

interface Relay {
  family: 4 | 6;
  relayId: number;
  address: TransportAddress;
}

/** A deadline-bearing object of the timer heap; see schedule(). */
interface Timed {
  /** False once removed: its heap entries are then skipped. */
  live: boolean;
  /** The deadline of its one current heap entry, if any. */
  scheduled: number | undefined;
}

interface Allocation extends Timed {
  kind: "allocation";
  client: TransportAddress;
  clientKey: string;
  /** The credential id (the part of the username after the expiry) that created it: its owner. */
  userId: string;
  /** The Allocate's transaction ID (hex) and the success response sent to it, for retransmissions. */
  allocateTransaction: string;
  allocateResponse: Uint8Array;
  relays: Relay[];
  expiresAt: number;
  /** By ipKey. */
  permissions: Map<string, Permission>;
  channels: Map<number, Channel>;
  /** By transportKey of the peer. */
  channelsByPeer: Map<string, Channel>;
}

interface Permission extends Timed {
  kind: "permission";
  allocation: Allocation;
  key: string;
  family: 4 | 6;
  expiresAt: number;
}

interface Channel extends Timed {
  kind: "channel";
  allocation: Allocation;
  number: number;
  peer: TransportAddress;
  peerKey: string;
  ipKey: string;
  /** False during the reservation after expiry (§12): unusable, but its number and peer stay taken. */
  bound: boolean;
  expiresAt: number;
  /** Whether the engine has it (bound and permitted): channel-bound was emitted, channel-unbound not yet. */
  installed: boolean;
}

type TimedObject = Allocation | Permission | Channel;

/** The credential a request authenticated with. */
interface Credential {
  id: string;
  key: Uint8Array;
}

/** One request being answered. */
interface Request {
  now: number;
  client: TransportAddress;
  clientKey: string;
  message: StunMessage;
  bytes: Uint8Array;
}

type FamilyAttribute = 4 | 6 | "malformed" | "unsupported";

/** The relay server's protocol state; see the driving contract above. */
export class TurnServer {
  readonly stats: TurnServerStats;
  private readonly realm: string;
  private readonly software: string;
  private readonly secrets: readonly Uint8Array[];
  private readonly nonces: NonceMinter;
  private readonly relayAddress: { 4?: string; 6?: string } = {};
  private readonly defaultLifetime: number;
  private readonly maxLifetime: number;
  private readonly maxAllocationsPerUser: number;
  private readonly allocationsByClient = new Map<string, Allocation>();
  private readonly allocationsByRelay = new Map<number, Allocation>();
  private readonly allocationsPerUser = new Map<string, number>();
  private readonly timers = new DeadlineHeap<TimedObject>();
  private readonly transmits: TurnTransmit[] = [];
  private readonly events: TurnEvent[] = [];

  constructor(private readonly options: TurnServerOptions) {
    this.realm = options.realm;
    this.software = options.software ?? "wardline";
    // Configuration errors throw here, so building a response never can: both must fit their attribute.
    new StunBuilder(METHOD_BINDING, "success", new Uint8Array(TRANSACTION_ID_SIZE)).addRealm(this.realm).addSoftware(this.software);
    if (options.secrets.length === 0) throw new RangeError("TURN server: no shared secret");
    const utf8 = new TextEncoder();
    this.secrets = options.secrets.map((secret) => (typeof secret === "string" ? utf8.encode(secret) : secret));
    for (const family of [4, 6] as const) {
      const text = options.relayAddress[family];
      if (text === undefined) continue;
      const address = canonicalAddress({ family, address: text, port: 0 });
      if (address === undefined) throw new RangeError(`TURN server: relay address ${text} is not an IPv${family} address`);
      this.relayAddress[family] = address.address;
    }
    this.defaultLifetime = options.defaultLifetime ?? DEFAULT_LIFETIME_SECONDS;
    this.maxLifetime = options.maxLifetime ?? MAX_ALLOWED_LIFETIME_SECONDS;
    if (!(Number.isInteger(this.defaultLifetime) && this.defaultLifetime > 0 && Number.isInteger(this.maxLifetime) && this.maxLifetime >= this.defaultLifetime)) {
      throw new RangeError(`TURN server: lifetimes default ${this.defaultLifetime} s, max ${this.maxLifetime} s`);
    }
    this.maxAllocationsPerUser = options.maxAllocationsPerUser ?? DEFAULT_MAX_ALLOCATIONS_PER_USER;
    this.nonces = new NonceMinter(options.random(32));
    // The counts are read from the state itself, so they cannot drift from it; the relay reads them rarely.
    const allocations = this.allocationsByClient;
    const count = (f: (a: Allocation) => number): number => [...allocations.values()].reduce((n, a) => n + f(a), 0);
    this.stats = {
      get allocations() { return allocations.size; },
      get channels() { return count((a) => [...a.channels.values()].filter((c) => c.bound).length); },
      get permissions() { return count((a) => a.permissions.size); },
      requests: 0,
      dropped: {},
    };
  }

  // --- 1. Client datagrams ---

  /** A datagram from a client at the listening socket: STUN requests/indications (ChannelData the engine could not forward also lands here: count and drop). */
  handleClientDatagram(now: number, client: TransportAddress, bytes: Uint8Array): void {
    const source = canonicalAddress(client);
    if (source === undefined) return this.drop("bad-client-address");
    // RFC 8656 §12.6: ChannelData on a channel with no binding is discarded; a bound one the engine forwards.
    // ChannelData the engine did not forward (RFC 5766 numbers too: first bytes 0x40-0x7F).
    if (bytes.length > 0 && bytes[0]! >= 0x40 && bytes[0]! <= 0x7f) return this.drop("channel-data");
    const decoded = decodeStun(bytes);
    if (!decoded.ok) return this.drop(`malformed-${decoded.reason}`);
    const message = decoded.message;
    const clientKey = transportKey(source);
    if (message.class === "indication") return this.indication(clientKey, message);
    if (message.class !== "request") return this.drop("not-request");
    this.stats.requests++;
    this.request({ now, client: source, clientKey, message, bytes });
  }

  // --- 2. Requests ---

  private request(req: Request): void {
    const { message } = req;
    if (message.method === METHOD_BINDING) return this.binding(req);
    if (![METHOD_ALLOCATE, METHOD_REFRESH, METHOD_CREATE_PERMISSION, METHOD_CHANNEL_BIND].includes(message.method)) {
      // RFC 8489 §6.3.1: a request of a method the server does not know is a Bad Request.
      return this.reject(req, undefined, ERROR_BAD_REQUEST);
    }
    const credential = this.authenticate(req);
    if (credential === undefined) return;
    const unknown = message.unknownComprehensionRequired(UNDERSTOOD);
    if (unknown.length > 0) return this.reject(req, credential, ERROR_UNKNOWN_ATTRIBUTE, (b) => b.addUnknownAttributes(unknown));
    switch (message.method) {
      case METHOD_ALLOCATE:
        return this.allocate(req, credential);
      case METHOD_REFRESH:
        return this.refresh(req, credential);
      case METHOD_CREATE_PERMISSION:
        return this.createPermission(req, credential);
      default:
        return this.channelBind(req, credential);
    }
  }

  /** RFC 8489 §6.3.1 (and §14.2): the source's transport address, to anyone who asks. */
  private binding(req: Request): void {
    const unknown = req.message.unknownComprehensionRequired(UNDERSTOOD);
    if (unknown.length > 0) return this.reject(req, undefined, ERROR_UNKNOWN_ATTRIBUTE, (b) => b.addUnknownAttributes(unknown));
    this.respond(req, undefined, "success", (b) => b.addXorMappedAddress(req.client));
  }

  /**
   * The long-term credential checks of RFC 8489 §9.2.4, in its order, with the username and
   * password of the TURN REST API (credentials.ts): the credential, or undefined once the error
   * response is queued.
   */
  private authenticate(req: Request): Credential | undefined {
    const { message } = req;
    // A request with MESSAGE-INTEGRITY-SHA256 alone is treated as unauthenticated: the server offers
    // no PASSWORD-ALGORITHMS, so a client answering its 401 falls back to MD5 and MESSAGE-INTEGRITY.
    if (!message.has(ATTR_MESSAGE_INTEGRITY)) return this.challenge(req, ERROR_UNAUTHENTICATED);
    const username = message.username();
    const nonce = message.nonce();
    if (username === undefined || message.realm() === undefined || nonce === undefined) {
      this.reject(req, undefined, ERROR_BAD_REQUEST);
      return undefined;
    }
    const nowUnix = this.wallSeconds(req.now);
    if (!this.nonces.check(nonce, nowUnix, req.clientKey)) return this.challenge(req, ERROR_STALE_NONCE);
    const checked = checkUsername(username, nowUnix);
    if (!checked.ok) return this.challenge(req, ERROR_UNAUTHENTICATED);
    // The key uses our realm whatever the request says: a client with another realm fails the HMAC.
    for (const secret of this.secrets) {
      const key = longTermKey(username, this.realm, passwordFor(secret, username));
      if (verifyIntegrity(message, req.bytes, key).ok) return { id: checked.id, key };
    }
    return this.challenge(req, ERROR_UNAUTHENTICATED);
  }

  /** 401 or 438 with REALM and a fresh NONCE (RFC 8489 §9.2.4); always undefined, for authenticate's returns. */
  private challenge(req: Request, code: number): undefined {
    const nonce = this.nonces.issue(this.wallSeconds(req.now), req.clientKey);
    this.reject(req, undefined, code, (b) => b.addRealm(this.realm).addNonce(nonce));
    return undefined;
  }

  // --- 3. Allocate, Refresh, CreatePermission, ChannelBind ---

  /** RFC 8656 §7.2, its checks in its order. */
  private allocate(req: Request, credential: Credential): void {
    const { message } = req;
    // 2. One allocation per 5-tuple; a retransmission of the request that created it gets the same answer.
    const existing = this.allocationsByClient.get(req.clientKey);
    if (existing !== undefined) {
      if (existing.allocateTransaction === hex(message.transactionId) && existing.userId === credential.id) {
        this.transmits.push({ via: "listener", to: req.client, bytes: existing.allocateResponse });
        return;
      }
      return this.reject(req, credential, ERROR_ALLOCATION_MISMATCH);
    }
    // 3. UDP relaying only.
    const transport = message.requestedTransport();
    if (transport === undefined) return this.reject(req, credential, ERROR_BAD_REQUEST);
    if (transport !== TRANSPORT_UDP) return this.reject(req, credential, ERROR_UNSUPPORTED_TRANSPORT_PROTOCOL);
    // 4. DONT-FRAGMENT is accepted: for UDP-to-UDP relaying "the DONT-FRAGMENT attribute MUST be
    //    ignored by the server" (§13.1), which follows the DF bit of what it relays instead.
    const hasEvenPort = message.has(ATTR_EVEN_PORT);
    const hasRequested = message.has(ATTR_REQUESTED_ADDRESS_FAMILY);
    const hasAdditional = message.has(ATTR_ADDITIONAL_ADDRESS_FAMILY);
    // 5. No reservations are ever made (EVEN-PORT's R bit is refused below), so no token is valid.
    if (message.has(ATTR_RESERVATION_TOKEN)) {
      if (hasEvenPort || hasRequested || hasAdditional) return this.reject(req, credential, ERROR_BAD_REQUEST);
      return this.reject(req, credential, ERROR_INSUFFICIENT_CAPACITY);
    }
    // 6.
    if (hasRequested && hasAdditional) return this.reject(req, credential, ERROR_BAD_REQUEST);
    // 7. IPv4 unless asked otherwise.
    let family: 4 | 6 = 4;
    if (hasRequested) {
      const requested = familyAttribute(message, ATTR_REQUESTED_ADDRESS_FAMILY);
      if (requested === "malformed") return this.reject(req, credential, ERROR_BAD_REQUEST);
      if (requested === "unsupported") return this.reject(req, credential, ERROR_ADDRESS_FAMILY_NOT_SUPPORTED);
      family = requested;
    }
    if (this.relayAddress[family] === undefined) return this.reject(req, credential, ERROR_ADDRESS_FAMILY_NOT_SUPPORTED);
    // 8. An even port is found by asking the driver again (openRelay); reserving the next one for
    //    a later allocation (R) is not offered: the driver owns the port range.
    let even = false;
    if (hasEvenPort) {
      const evenPort = message.evenPort();
      if (evenPort === undefined || (evenPort.reserveNext && hasAdditional)) return this.reject(req, credential, ERROR_BAD_REQUEST);
      if (evenPort.reserveNext) return this.reject(req, credential, ERROR_INSUFFICIENT_CAPACITY);
      even = true;
    }
    // 9. ADDITIONAL-ADDRESS-FAMILY asks for IPv6 besides IPv4 (a dual allocation).
    let dual = false;
    if (hasAdditional) {
      const additional = familyAttribute(message, ATTR_ADDITIONAL_ADDRESS_FAMILY);
      if (additional === "malformed" || additional === 4) return this.reject(req, credential, ERROR_BAD_REQUEST);
      if (additional === "unsupported") return this.reject(req, credential, ERROR_ADDRESS_FAMILY_NOT_SUPPORTED);
      dual = true;
    }
    // 10. The quota is per credential id (§7.2: "based on the username"; ours changes with its expiry).
    if ((this.allocationsPerUser.get(credential.id) ?? 0) >= this.maxAllocationsPerUser) {
      return this.reject(req, credential, ERROR_ALLOCATION_QUOTA_REACHED);
    }
    const lifetime = this.desiredLifetime(message);
    if (lifetime === undefined) return this.reject(req, credential, ERROR_BAD_REQUEST);
    const primary = this.openRelay(family, even);
    if (primary === undefined) return this.reject(req, credential, ERROR_INSUFFICIENT_CAPACITY);
    const relays = [primary];
    // A dual allocation that gets only IPv4 says why in ADDRESS-ERROR-CODE (§7.2 step 9).
    let addressError: number | undefined;
    if (dual) {
      const second = this.relayAddress[6] === undefined ? undefined : this.openRelay(6, even);
      if (second === undefined) addressError = this.relayAddress[6] === undefined ? ERROR_ADDRESS_FAMILY_NOT_SUPPORTED : ERROR_INSUFFICIENT_CAPACITY;
      else relays.push(second);
    }

    const allocation: Allocation = {
      kind: "allocation", live: true, scheduled: undefined,
      client: req.client, clientKey: req.clientKey, userId: credential.id,
      allocateTransaction: hex(message.transactionId), allocateResponse: new Uint8Array(0),
      relays, expiresAt: req.now + lifetime * 1000,
      permissions: new Map(), channels: new Map(), channelsByPeer: new Map(),
    };
    const response = this.respond(req, credential, "success", (b) => {
      for (const relay of relays) b.addXorRelayedAddress(relay.address);
      if (addressError !== undefined) b.addAddressErrorCode(6, addressError, REASON_PHRASES[addressError]!);
      b.addLifetime(lifetime).addXorMappedAddress(req.client);
    });
    allocation.allocateResponse = response!; // authenticated: never held back
    this.allocationsByClient.set(req.clientKey, allocation);
    for (const relay of relays) this.allocationsByRelay.set(relay.relayId, allocation);
    this.allocationsPerUser.set(credential.id, (this.allocationsPerUser.get(credential.id) ?? 0) + 1);
    this.schedule(allocation);
  }

  /** RFC 8656 §8.2. */
  private refresh(req: Request, credential: Credential): void {
    const allocation = this.ownAllocation(req, credential);
    if (allocation === undefined) return;
    const { message } = req;
    // A dual allocation refreshes or deletes one family with REQUESTED-ADDRESS-FAMILY (§8.1); the
    // lifetime is shared, so a refresh of either refreshes both.
    let family: 4 | 6 | undefined;
    if (message.has(ATTR_REQUESTED_ADDRESS_FAMILY)) {
      const requested = familyAttribute(message, ATTR_REQUESTED_ADDRESS_FAMILY);
      if (requested === "malformed") return this.reject(req, credential, ERROR_BAD_REQUEST);
      if (requested === "unsupported") return this.reject(req, credential, ERROR_ADDRESS_FAMILY_NOT_SUPPORTED);
      if (relayOf(allocation, requested) === undefined) return this.reject(req, credential, ERROR_PEER_ADDRESS_FAMILY_MISMATCH);
      family = requested;
    }
    const lifetime = this.desiredLifetime(message, true);
    if (lifetime === undefined) return this.reject(req, credential, ERROR_BAD_REQUEST);
    this.respond(req, credential, "success", (b) => b.addLifetime(lifetime));
    if (lifetime === 0) {
      if (family !== undefined && allocation.relays.length > 1) this.closeRelay(allocation, family);
      else this.closeAllocation(allocation);
      return;
    }
    allocation.expiresAt = req.now + lifetime * 1000;
    this.schedule(allocation);
  }

  /** RFC 8656 §10.2: all the request's permissions are installed, or none. */
  private createPermission(req: Request, credential: Credential): void {
    const allocation = this.ownAllocation(req, credential);
    if (allocation === undefined) return;
    const peers = req.message.xorPeerAddresses();
    if (peers === undefined) return this.reject(req, credential, ERROR_BAD_REQUEST);
    if (peers.some((peer) => relayOf(allocation, peer.family) === undefined)) {
      return this.reject(req, credential, ERROR_PEER_ADDRESS_FAMILY_MISMATCH);
    }
    if (!peers.every((peer) => this.peerAllowed(peer))) return this.reject(req, credential, ERROR_FORBIDDEN);
    const added = new Set(peers.map(ipKey).filter((key) => !allocation.permissions.has(key))).size;
    if (allocation.permissions.size + added > MAX_PERMISSIONS_PER_ALLOCATION) return this.reject(req, credential, ERROR_INSUFFICIENT_CAPACITY);
    for (const peer of peers) this.permit(allocation, peer, req.now);
    this.respond(req, credential, "success", () => {});
  }

  /** RFC 8656 §12.2: binds or refreshes a channel, and installs or refreshes its peer's permission. */
  private channelBind(req: Request, credential: Credential): void {
    const allocation = this.ownAllocation(req, credential);
    if (allocation === undefined) return;
    const { message } = req;
    const number = message.channelNumber();
    const peer = message.xorPeerAddress();
    if (number === undefined || !isAcceptedChannelNumber(number) || peer === undefined) return this.reject(req, credential, ERROR_BAD_REQUEST);
    const relay = relayOf(allocation, peer.family);
    if (relay === undefined) return this.reject(req, credential, ERROR_PEER_ADDRESS_FAMILY_MISMATCH);
    if (!this.peerAllowed(peer)) return this.reject(req, credential, ERROR_FORBIDDEN);
    // A channel names one peer and a peer has one channel, also during the reservation after expiry.
    const peerKey = transportKey(peer);
    const byNumber = allocation.channels.get(number);
    const byPeer = allocation.channelsByPeer.get(peerKey);
    if ((byNumber !== undefined && byNumber.peerKey !== peerKey) || (byPeer !== undefined && byPeer.number !== number)) {
      return this.reject(req, credential, ERROR_BAD_REQUEST);
    }
    if (!allocation.permissions.has(ipKey(peer)) && allocation.permissions.size >= MAX_PERMISSIONS_PER_ALLOCATION) {
      return this.reject(req, credential, ERROR_INSUFFICIENT_CAPACITY);
    }
    let channel = byNumber;
    if (channel === undefined) {
      channel = {
        kind: "channel", live: true, scheduled: undefined, allocation, number, peer, peerKey, ipKey: ipKey(peer),
        bound: true, expiresAt: 0, installed: false,
      };
      allocation.channels.set(number, channel);
      allocation.channelsByPeer.set(peerKey, channel);
    }
    channel.bound = true;
    channel.expiresAt = req.now + CHANNEL_LIFETIME_SECONDS * 1000;
    this.schedule(channel);
    this.permit(allocation, peer, req.now); // installs the channel if its permission is new
    if (!channel.installed) this.install(channel);
    this.respond(req, credential, "success", () => {});
  }

  /** The allocation of the request's 5-tuple, if the request's credential owns it; else the error is queued (RFC 8656 §5). */
  private ownAllocation(req: Request, credential: Credential): Allocation | undefined {
    const allocation = this.allocationsByClient.get(req.clientKey);
    if (allocation === undefined) {
      this.reject(req, credential, ERROR_ALLOCATION_MISMATCH);
      return undefined;
    }
    // §5 wants "the same username as used to create the allocation" (441 otherwise). A REST username
    // carries its expiry, and the portal hands out fresh credentials before the old ones lapse, so the
    // owner is the credential id after the expiry; a client refreshing with its new username keeps
    // its allocation.
    if (allocation.userId !== credential.id) {
      this.reject(req, credential, ERROR_WRONG_CREDENTIALS);
      return undefined;
    }
    return allocation;
  }

  /** Installs or refreshes the permission for peer's IP (RFC 8656 §9); a new one installs the bound channels to that IP. */
  private permit(allocation: Allocation, peer: TransportAddress, now: number): void {
    const key = ipKey(peer);
    let permission = allocation.permissions.get(key);
    const fresh = permission === undefined;
    if (permission === undefined) {
      permission = { kind: "permission", live: true, scheduled: undefined, allocation, key, family: peer.family, expiresAt: 0 };
      allocation.permissions.set(key, permission);
    }
    permission.expiresAt = now + PERMISSION_LIFETIME_SECONDS * 1000;
    this.schedule(permission);
    if (fresh) {
      for (const channel of allocation.channels.values()) if (channel.bound && !channel.installed && channel.ipKey === key) this.install(channel);
    }
  }

  // --- 4. Send indications ---

  private indication(clientKey: string, message: StunMessage): void {
    // A Binding indication is a keepalive (RFC 8489 §6.3.2): nothing to do.
    if (message.method === METHOD_BINDING) return;
    if (message.method !== METHOD_SEND) return this.drop("unexpected-indication");
    // RFC 8656 §11.2.
    const allocation = this.allocationsByClient.get(clientKey);
    if (allocation === undefined) return this.drop("send-no-allocation");
    // RFC 8489 §6.3.2: an indication with unknown comprehension-required attributes is discarded.
    if (message.unknownComprehensionRequired(UNDERSTOOD).length > 0) return this.drop("send-unknown-attribute");
    const peer = message.xorPeerAddress();
    const data = message.data();
    if (peer === undefined || data === undefined) return this.drop("send-malformed");
    const relay = relayOf(allocation, peer.family);
    if (relay === undefined) return this.drop("send-family-mismatch");
    if (!allocation.permissions.has(ipKey(peer))) return this.drop("send-no-permission");
    this.transmits.push({ via: "relay", relayId: relay.relayId, to: peer, bytes: data.slice() });
  }

  // --- 5. Peer datagrams ---

  /** A datagram from a peer at relay socket relayId that the engine did not forward (no channel): a Data indication to the client if a permission for the peer's IP exists, else dropped. */
  handlePeerDatagram(_now: number, relayId: number, peer: TransportAddress, bytes: Uint8Array): void {
    const allocation = this.allocationsByRelay.get(relayId);
    if (allocation === undefined) return this.drop("peer-no-allocation");
    const source = canonicalAddress(peer);
    if (source === undefined) return this.drop("peer-bad-address");
    if (relayOf(allocation, source.family)?.relayId !== relayId) return this.drop("peer-family-mismatch");
    // §9: only addresses are compared, not ports.
    if (!allocation.permissions.has(ipKey(source))) return this.drop("peer-no-permission");
    // §11.3, §12.7: a peer with a channel gets its data to the client as ChannelData.
    const channel = allocation.channelsByPeer.get(transportKey(source));
    if (channel !== undefined && channel.bound) {
      if (bytes.length > 0xffff) return this.drop("peer-oversize");
      this.transmits.push({ via: "listener", to: allocation.client, bytes: encodeChannelData(channel.number, bytes) });
      return;
    }
    if (bytes.length > MAX_DATA_INDICATION_PAYLOAD) return this.drop("peer-oversize");
    const indication = new StunBuilder(METHOD_DATA, "indication", this.options.random(TRANSACTION_ID_SIZE))
      .addXorPeerAddress(source)
      .addData(bytes)
      .build();
    this.transmits.push({ via: "listener", to: allocation.client, bytes: indication });
  }

  // --- 6. Timers ---

  handleTimeout(now: number): void {
    for (let entry = this.timers.peek(); entry !== undefined && entry.at <= now; entry = this.timers.peek()) {
      this.timers.pop();
      const target = entry.target;
      if (!target.live || target.scheduled !== entry.at) continue; // removed, or superseded by an earlier entry
      target.scheduled = undefined;
      if (deadlineOf(target) > now) this.schedule(target); // refreshed since it was scheduled
      else this.expire(target);
    }
  }

  pollTransmit(): TurnTransmit | undefined {
    return this.transmits.shift();
  }

  pollEvent(): TurnEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    for (let entry = this.timers.peek(); entry !== undefined; entry = this.timers.peek()) {
      if (entry.target.live && entry.target.scheduled === entry.at) return entry.at;
      this.timers.pop();
    }
    return undefined;
  }

  /**
   * Keeps one heap entry per object, at or before its deadline: a refresh that moves the deadline
   * later pushes nothing (the old entry fires, sees the later deadline and reschedules), so
   * however often a client refreshes, the heap holds at most two entries per object.
   */
  private schedule(target: TimedObject): void {
    const at = deadlineOf(target);
    if (target.scheduled !== undefined && target.scheduled <= at) return;
    target.scheduled = at;
    this.timers.push(at, target);
  }

  private expire(target: TimedObject): void {
    switch (target.kind) {
      case "allocation":
        return this.closeAllocation(target);
      case "permission": {
        // §9: an expired permission is deleted; the channels to its IP stop forwarding.
        const allocation = target.allocation;
        target.live = false;
        allocation.permissions.delete(target.key);
        for (const channel of allocation.channels.values()) if (channel.ipKey === target.key) this.uninstall(channel);
        return;
      }
      case "channel":
        if (target.bound) {
          // §12: unbound, but its number and peer stay reserved for 5 more minutes.
          target.bound = false;
          this.uninstall(target);
          this.schedule(target);
        } else {
          this.removeChannel(target);
        }
        return;
    }
  }

  // --- Teardown ---

  /** Deletes an allocation: its channels leave the engine, then its relay sockets close. */
  private closeAllocation(allocation: Allocation): void {
    allocation.live = false;
    for (const channel of allocation.channels.values()) this.removeChannel(channel);
    for (const permission of allocation.permissions.values()) permission.live = false;
    allocation.permissions.clear();
    for (const relay of allocation.relays) {
      this.allocationsByRelay.delete(relay.relayId);
      this.events.push({ type: "allocation-closed", relayId: relay.relayId });
    }
    this.allocationsByClient.delete(allocation.clientKey);
    const held = (this.allocationsPerUser.get(allocation.userId) ?? 1) - 1;
    if (held > 0) this.allocationsPerUser.set(allocation.userId, held);
    else this.allocationsPerUser.delete(allocation.userId);
  }

  /** Deletes one family of a dual allocation (a Refresh with lifetime 0 and REQUESTED-ADDRESS-FAMILY). */
  private closeRelay(allocation: Allocation, family: 4 | 6): void {
    const relay = relayOf(allocation, family)!;
    for (const channel of [...allocation.channels.values()]) if (channel.peer.family === family) this.removeChannel(channel);
    for (const permission of [...allocation.permissions.values()]) {
      if (permission.family !== family) continue;
      permission.live = false;
      allocation.permissions.delete(permission.key);
    }
    allocation.relays = allocation.relays.filter((r) => r !== relay);
    this.allocationsByRelay.delete(relay.relayId);
    this.events.push({ type: "allocation-closed", relayId: relay.relayId });
  }

  private removeChannel(channel: Channel): void {
    this.uninstall(channel);
    channel.live = false;
    channel.allocation.channels.delete(channel.number);
    channel.allocation.channelsByPeer.delete(channel.peerKey);
  }

  private install(channel: Channel): void {
    channel.installed = true;
    this.events.push({ type: "channel-bound", ...this.channelIdentity(channel) });
  }

  private uninstall(channel: Channel): void {
    if (!channel.installed) return;
    channel.installed = false;
    this.events.push({ type: "channel-unbound", ...this.channelIdentity(channel) });
  }

  private channelIdentity(channel: Channel): { relayId: number; client: TransportAddress; channel: number; peer: TransportAddress } {
    const relay = relayOf(channel.allocation, channel.peer.family)!; // a channel's family is always allocated
    return { relayId: relay.relayId, client: channel.allocation.client, channel: channel.number, peer: channel.peer };
  }

  // --- Responses ---

  /**
   * Queues a response: with MESSAGE-INTEGRITY, FINGERPRINT and SOFTWARE to an authenticated request;
   * to any other, as small as it can be and never larger than the request unless the source holds
   * an allocation (Amplification, above). Returns the bytes, or undefined when held back.
   */
  private respond(req: Request, credential: Credential | undefined, messageClass: "success" | "error", fill: (b: StunBuilder) => void): Uint8Array | undefined {
    const capped = this.capped(req, credential);
    const b = new StunBuilder(req.message.method, messageClass, req.message.transactionId);
    fill(b);
    if (!capped) b.addSoftware(this.software);
    let bytes = b.build({ integrity: credential?.key, fingerprint: credential !== undefined || req.message.has(ATTR_FINGERPRINT) });
    // FINGERPRINT is optional (RFC 8489 §14.7): a capped answer leaves it out when that makes it fit.
    if (capped && bytes.length > req.bytes.length) bytes = b.build();
    if (capped && bytes.length > req.bytes.length) {
      this.drop("amplification");
      return undefined;
    }
    this.transmits.push({ via: "listener", to: req.client, bytes });
    return bytes;
  }

  private reject(req: Request, credential: Credential | undefined, code: number, more: (b: StunBuilder) => void = () => {}): void {
    const reason = this.capped(req, credential) ? "" : REASON_PHRASES[code]!;
    this.respond(req, credential, "error", (b) => more(b.addErrorCode(code, reason)));
  }

  private capped(req: Request, credential: Credential | undefined): boolean {
    return credential === undefined && !this.allocationsByClient.has(req.clientKey);
  }

  // --- Helpers ---

  /**
   * The lifetime a request asks for, in seconds (RFC 8656 §7.2, §8.2): the default without LIFETIME;
   * 0 for a Refresh's 0 (delete); else min(requested, max), raised to the default. Undefined for a
   * malformed LIFETIME.
   */
  private desiredLifetime(message: StunMessage, zeroDeletes = false): number | undefined {
    if (!message.has(ATTR_LIFETIME)) return this.defaultLifetime;
    const requested = message.lifetime();
    if (requested === undefined) return undefined;
    if (requested === 0 && zeroDeletes) return 0;
    return Math.max(Math.min(requested, this.maxLifetime), this.defaultLifetime);
  }

  /**
   * A relay socket from the driver; for EVEN-PORT (RFC 8656 §7.2) one with an even port, asking up
   * to EVEN_PORT_ATTEMPTS times and handing the odd ones straight back (allocation-closed).
   */
  private openRelay(family: 4 | 6, even = false): Relay | undefined {
    for (let attempt = 0; attempt < (even ? EVEN_PORT_ATTEMPTS : 1); attempt++) {
      const opened = this.options.openRelay(family);
      if (opened === undefined) return undefined;
      if (!even || opened.port % 2 === 0) {
        return { family, relayId: opened.relayId, address: { family, address: this.relayAddress[family]!, port: opened.port } };
      }
      this.events.push({ type: "allocation-closed", relayId: opened.relayId });
    }
    return undefined;
  }

  private peerAllowed(peer: TransportAddress): boolean {
    return peerAllowed(peer, this.options.allowPrivatePeers ?? false);
  }

  private wallSeconds(now: number): number {
    return Math.floor(this.options.wallClockAtZeroSeconds + now / 1000);
  }

  private drop(reason: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
  }
}

function relayOf(allocation: Allocation, family: 4 | 6): Relay | undefined {
  return allocation.relays.find((relay) => relay.family === family);
}

function deadlineOf(target: TimedObject): number {
  if (target.kind === "channel" && !target.bound) return target.expiresAt + CHANNEL_REBIND_DELAY_SECONDS * 1000;
  return target.expiresAt;
}

/**
 * REQUESTED-ADDRESS-FAMILY or ADDITIONAL-ADDRESS-FAMILY of a message that has it: the family, or
 * "unsupported" for a family byte other than IPv4 and IPv6 (440), or "malformed" (400).
 */
function familyAttribute(message: StunMessage, type: number): FamilyAttribute {
  const value = message.get(type)!.value;
  if (value.length !== 4) return "malformed";
  return value[0] === ADDRESS_FAMILY_IPV4 ? 4 : value[0] === ADDRESS_FAMILY_IPV6 ? 6 : "unsupported";
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** A binary min-heap of deadlines. */
class DeadlineHeap<T> {
  private readonly items: { at: number; target: T }[] = [];

  peek(): { at: number; target: T } | undefined {
    return this.items[0];
  }

  push(at: number, target: T): void {
    const items = this.items;
    items.push({ at, target });
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= items[i]!.at) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  pop(): void {
    const items = this.items;
    const last = items.pop();
    if (last === undefined || items.length === 0) return;
    items[0] = last;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && items[left]!.at < items[smallest]!.at) smallest = left;
      if (right < items.length && items[right]!.at < items[smallest]!.at) smallest = right;
      if (smallest === i) break;
      [items[smallest], items[i]] = [items[i]!, items[smallest]!];
      i = smallest;
    }
  }
}
