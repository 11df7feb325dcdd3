// The client side of one TURN allocation (RFC 8656 over UDP) with RFC 8489 transactions and
// long-term credentials: the allocation, its permissions and its channel bindings, kept alive in
// virtual time. The client and the gateway hold one per relay; the ICE agent drives them.
//
// Driving contract: call one input method (a command, handleDatagram, handleTimeout) with the
// current monotonic time in ms, then drain pollTransmit() and pollEvent() until they return
// undefined, then arm a timer for pollTimeout(). Nothing here reads a clock or a random source:
// transaction IDs come from the `random` option.
//
// The pipeline, in the order of this file:
// 1. Commands: allocate, createPermission, bindChannel, send, release. Permissions and channels are
//    wanted from the call on and requested once the allocation exists (a channel wants its peer's
//    permission too); send frames ChannelData on a confirmed channel, else a Send indication once
//    the peer's permission is installed. Until then the datagram is held (the server would drop it,
//    and a lost first ICE check costs a retransmission): send wants the permission if nothing did,
//    and what it holds goes out when the permission is confirmed, or is dropped and counted when the
//    permission fails or the allocation ends.
// 2. Requests: at most MAX_OUTSTANDING_TRANSACTIONS run at once, the rest wait their turn. Each is
//    built when it starts: USERNAME, REALM, NONCE and MESSAGE-INTEGRITY once a 401 has told us the
//    realm and nonce. The first Allocate goes without, to learn them, padded with SOFTWARE so a
//    server that never answers with more bytes than it got still sends its 401.
// 3. Retransmission (RFC 8489 §6.2.1): sends at 0, RTO, 3 RTO, 7 RTO … Rc sends in all, then a last
//    wait of Rm × RTO; no answer by then fails the operation.
// 4. Datagrams in, from the server only: ChannelData on our channels and Data indications become
//    data events; responses are matched by transaction ID and method, and a response to an
//    authenticated request counts only with a valid MESSAGE-INTEGRITY (401 and 438 excepted, which
//    servers send without): one that fails is dropped and retransmission goes on (§9.2.5).
// 5. Responses: 401 → learn REALM and NONCE, retry once with credentials; 438 → retry with the new
//    NONCE (a few times at most); success → the lease is (re)installed; any other error fails the
//    operation; a failed Allocate or Refresh, or a 437 to anything, ends the allocation.
// 6. Timers: the allocation is refreshed ALLOCATION_REFRESH_MARGIN before it expires, permissions
//    every PERMISSION_REFRESH_INTERVAL, channels every CHANNEL_REFRESH_INTERVAL. A renewal that
//    times out is retried until its lease expires; then the lease is gone (a failed event).
//
// Decoding never throws: a datagram that is not ours, malformed or unexpected is dropped and
// counted in `dropped`.

import type { TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import { decodeChannelData, encodeChannelData, firstByteKind } from "../stun/channel-data.js";
import {
  ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTRIBUTE_HEADER_SIZE, CHANNEL_NUMBER_MAX, ERROR_ALLOCATION_MISMATCH, CHANNEL_NUMBER_MIN,
  ERROR_STALE_NONCE, ERROR_UNAUTHENTICATED, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION,
  METHOD_DATA, METHOD_REFRESH, METHOD_SEND, TEXT_MAX_CHARACTERS, TRANSACTION_ID_SIZE, TRANSPORT_UDP,
} from "../stun/constants.js";
import { longTermKey, verifyIntegrity, verifyIntegritySha256 } from "../stun/integrity.js";
import { decodeStun, type StunMessage } from "../stun/message.js";
import {
  CHANNEL_LIFETIME_SECONDS, CHANNEL_REBIND_DELAY_SECONDS, DEFAULT_LIFETIME_SECONDS, PERMISSION_HELD_MAX, PERMISSION_LIFETIME_SECONDS,
} from "./constants.js";

// --- Timing (RFC 8489 §6.2.1, RFC 8656 §9, §12), in ms; the RFC's lifetimes are in ./constants.ts ---

/** The initial retransmission timeout: "SHOULD be greater than 500 ms" (RFC 8489 §6.2.1). */
export const RTO = 500;
/** Requests sent in all before giving up (RFC 8489 §6.2.1, default Rc). */
export const RC = 7;
/** The last wait is Rm × RTO (RFC 8489 §6.2.1, default Rm). */
export const RM = 16;
/** "A client SHOULD limit itself to ten outstanding transactions to the same server" (RFC 8489 §6.2). */
export const MAX_OUTSTANDING_TRANSACTIONS = 10;
/** Refresh the allocation this long before it expires (half its lifetime if that is shorter). */
export const ALLOCATION_REFRESH_MARGIN = 60_000;
/** Permissions last PERMISSION_LIFETIME_SECONDS (300); refreshed a minute early. */
export const PERMISSION_REFRESH_INTERVAL = 240_000;
/** Channel bindings last CHANNEL_LIFETIME_SECONDS (600); rebound a minute early. */
export const CHANNEL_REFRESH_INTERVAL = 540_000;
const PERMISSION_LIFETIME = PERMISSION_LIFETIME_SECONDS * 1000;
const CHANNEL_LIFETIME = CHANNEL_LIFETIME_SECONDS * 1000;
/**
 * After a binding ends, its number and its peer stay tied for 5 minutes (RFC 8656 §12): neither may
 * be bound to anything else meanwhile, though the same pair may be bound again.
 */
const CHANNEL_REUSE_DELAY = CHANNEL_REBIND_DELAY_SECONDS * 1000;
/**
 * A request without credentials (the first Allocate) is padded with SOFTWARE to at least this
 * many bytes: a server that guards against amplification answers nothing larger than the request
 * (ours, server.ts minimumRequestSize), and its 401 carries REALM and NONCE. 128 bytes covers a
 * realm of up to 76 bytes there.
 */
export const UNAUTHENTICATED_REQUEST_MIN_SIZE = 128;
/** Retries after 438 (Stale Nonce) per operation, so a server that keeps answering 438 is not a loop. */
export const STALE_NONCE_RETRIES_MAX = 3;

export interface TurnClientOptions {
  /** The TURN server; datagrams from anywhere else are dropped. */
  server: TransportAddress;
  username: string;
  /** The long-term credential password (e.g. minted by credentials.ts). */
  password: string;
  /** Randomness, from the driver: transaction IDs. */
  random: (length: number) => Uint8Array;
  /** The relayed address family (REQUESTED-ADDRESS-FAMILY); 4 unless told. */
  family?: 4 | 6;
  /** Also ask for an IPv6 relayed address (ADDITIONAL-ADDRESS-FAMILY): a dual allocation; family must be 4. */
  additionalFamily?: boolean;
  /** The lifetime to ask for, in seconds; DEFAULT_LIFETIME_SECONDS unless told. */
  lifetime?: number;
  /** SOFTWARE, sent in every request. */
  software?: string;
  /** Bytes to pad a request without credentials to (UNAUTHENTICATED_REQUEST_MIN_SIZE unless told; 0: no padding). */
  padUnauthenticated?: number;
}

/** The operation a failed event is about. */
export type TurnOperation = "allocate" | "refresh" | "create-permission" | "channel-bind" | "release";

export type TurnClientEvent =
  /** The allocation exists: its relayed addresses (two for a dual allocation), our reflexive address, its lifetime in s. */
  | { type: "allocated"; relayed: TransportAddress[]; mapped: TransportAddress | undefined; lifetime: number }
  /** A permission for this peer IP is installed (sent once; refreshes are silent). */
  | { type: "permission"; peer: string }
  /** This channel is bound to this peer (sent once; refreshes are silent). */
  | { type: "channel"; peer: TransportAddress; channel: number }
  /** Data from a peer, from a Data indication or ChannelData (a copy: the datagram's buffer may be reused). */
  | { type: "data"; peer: TransportAddress; data: Uint8Array }
  /**
   * An operation gave up: an error response (code) or no valid answer. A failed allocate or refresh,
   * or a 437 (Allocation Mismatch) to anything, means the allocation is gone, with its permissions
   * and channels; otherwise a failed create-permission or channel-bind drops that one (peer says which).
   */
  | { type: "failed"; operation: TurnOperation; code?: number; reason: string; peer?: TransportAddress }
  /** release() is done: the server deleted the allocation (or had already). */
  | { type: "released" };

/** Why send could not relay a datagram, one counter each. */
export interface TurnSendDrops {
  /** There was no allocation (yet, or any more). */
  noAllocation: number;
  /** Held for a pending permission beyond PERMISSION_HELD_MAX (the oldest go first). */
  heldOverflow: number;
  /** Held for a permission that failed, or when the allocation ended. */
  permissionFailed: number;
}

/** Why handleDatagram dropped something, one counter each. */
export interface TurnClientDrops {
  /** Not from the server, or not STUN or ChannelData. */
  foreign: number;
  /** Failed decodeStun or decodeChannelData. */
  malformed: number;
  /** ChannelData on a channel we have not bound, data with no allocation, a response to no transaction of ours. */
  unexpected: number;
  /** A response to an authenticated request without a valid MESSAGE-INTEGRITY. */
  integrity: number;
}

interface Lease {
  /** When the server's state lapses: NEVER until the first success. */
  expiresAt: number;
  /** When to renew: NEVER while a request for it waits or runs. */
  renewAt: number;
  /** Whether a request for it waits or runs. */
  busy: boolean;
}

interface Permission extends Lease {
  peer: TransportAddress;
  installed: boolean;
  /** Datagrams for this IP waiting for the permission's first success (copies). */
  held: { peer: TransportAddress; data: Uint8Array }[];
}

interface Channel extends Lease {
  number: number;
  peer: TransportAddress;
  /** The server confirmed the binding: ChannelData may be sent on it. */
  bound: boolean;
}

interface Request {
  operation: TurnOperation;
  permission?: Permission;
  channel?: Channel;
  /** A 401 was already answered with credentials for this operation. */
  authRetried: boolean;
  staleRetries: number;
}

interface Transaction {
  request: Request;
  /** Map key: the transaction ID in hex. */
  key: string;
  bytes: Uint8Array;
  /** The long-term key the request was sent with; undefined for an unauthenticated request. */
  integrityKey: Uint8Array | undefined;
  sends: number;
  nextAt: number;
  /** Responses dropped for their integrity: if all were, the failure says so (§9.2.5). */
  forged: number;
}

const NEVER = Number.POSITIVE_INFINITY;
const utf8 = new TextEncoder();
const CHANNEL_COUNT = CHANNEL_NUMBER_MAX - CHANNEL_NUMBER_MIN + 1;

const METHODS: Record<TurnOperation, number> = {
  allocate: METHOD_ALLOCATE,
  refresh: METHOD_REFRESH,
  "create-permission": METHOD_CREATE_PERMISSION,
  "channel-bind": METHOD_CHANNEL_BIND,
  release: METHOD_REFRESH,
};

function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function sameAddress(a: TransportAddress, b: TransportAddress): boolean {
  return a.port === b.port && a.family === b.family && a.address === b.address;
}

/** One TURN allocation on one server, seen from the client; see the driving contract above. */
export class TurnAllocation {
  readonly dropped: TurnClientDrops = { foreign: 0, malformed: 0, unexpected: 0, integrity: 0 };
  /** Datagrams send() could not relay. */
  readonly sendDropped: TurnSendDrops = { noAllocation: 0, heldOverflow: 0, permissionFailed: 0 };

  private readonly options: Required<Omit<TurnClientOptions, "software">> & { software: string | undefined };
  private phase: "idle" | "allocating" | "allocated" = "idle";
  private readonly allocation: Lease = { expiresAt: NEVER, renewAt: NEVER, busy: false };
  private relayed: TransportAddress[] = [];
  private mapped: TransportAddress | undefined;

  // Learned from the server's 401 and 438 answers; kept across allocations, so the next Allocate
  // is authenticated at once (a stale nonce costs one 438).
  private realm: string | undefined;
  private nonce: string | undefined;
  private key: Uint8Array | undefined;

  /** By peer IP. */
  private readonly permissions = new Map<string, Permission>();
  private readonly channels = new Map<number, Channel>();
  /** address → port → channel, so send() finds a channel without building a key. */
  private readonly channelsByPeer = new Map<string, Map<number, Channel>>();
  /** Numbers of ended bindings, with the peer they stay tied to until `until` (CHANNEL_REUSE_DELAY). */
  private readonly coolingChannels = new Map<number, { peer: TransportAddress; until: number }>();
  private nextChannel = CHANNEL_NUMBER_MIN;

  private readonly transactions = new Map<string, Transaction>();
  private waiting: Request[] = [];
  private readonly transmits: { to: TransportAddress; bytes: Uint8Array }[] = [];
  private readonly events: TurnClientEvent[] = [];

  constructor(options: TurnClientOptions) {
    const family = options.family ?? 4;
    const additionalFamily = options.additionalFamily ?? false;
    // RFC 8656 §7.2: a request with both REQUESTED- and ADDITIONAL-ADDRESS-FAMILY is a 400.
    if (additionalFamily && family !== 4) throw new RangeError("a dual allocation (additionalFamily) starts from family 4");
    const lifetime = options.lifetime ?? DEFAULT_LIFETIME_SECONDS;
    if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > 0xffffffff) throw new RangeError(`lifetime ${lifetime} is not a positive number of seconds`);
    this.options = {
      server: { ...options.server },
      username: options.username,
      password: options.password,
      random: options.random,
      family,
      additionalFamily,
      lifetime,
      software: options.software,
      padUnauthenticated: options.padUnauthenticated ?? UNAUTHENTICATED_REQUEST_MIN_SIZE,
    };
  }

  /** The relayed addresses of the allocation; empty while there is none. */
  get relayedAddresses(): readonly TransportAddress[] {
    return this.relayed;
  }

  /** Our server-reflexive address as the server saw it, once allocated. */
  get mappedAddress(): TransportAddress | undefined {
    return this.mapped;
  }

  get allocated(): boolean {
    return this.phase === "allocated";
  }

  // --- 1. Commands ---

  /** Asks for the allocation (nothing if one exists or is on its way). */
  allocate(now: number): void {
    if (this.phase !== "idle") return;
    this.phase = "allocating";
    this.allocation.busy = true;
    this.submit(now, { operation: "allocate", authRetried: false, staleRetries: 0 });
  }

  /**
   * Wants a permission for the IP of peer (its port does not matter): installed once the allocation
   * exists, then refreshed every PERMISSION_REFRESH_INTERVAL until the allocation ends.
   */
  createPermission(now: number, peer: TransportAddress): void {
    if (this.permissions.has(peer.address)) return;
    const permission: Permission = { peer: { ...peer }, installed: false, held: [], expiresAt: NEVER, renewAt: NEVER, busy: false };
    this.permissions.set(peer.address, permission);
    if (this.phase === "allocated") this.renew(now, permission);
  }

  /**
   * The channel for peer: a free number from 0x4000-0x4FFF, bound once the allocation exists and
   * rebound every CHANNEL_REFRESH_INTERVAL. Until the server confirms it, send() uses Send
   * indications. Also wants a permission for the peer's IP: a ChannelBind installs one, but it
   * lasts 300 s to the binding's 600 (RFC 8656 §12), and the server relays nothing on a channel
   * whose permission lapsed. Throws when all 4096 numbers are taken or cooling down.
   */
  bindChannel(now: number, peer: TransportAddress): number {
    const existing = this.channelsByPeer.get(peer.address)?.get(peer.port);
    if (existing !== undefined) return existing.number;
    this.createPermission(now, peer);
    const channel: Channel = { number: this.pickChannel(now, peer), peer: { ...peer }, bound: false, expiresAt: NEVER, renewAt: NEVER, busy: false };
    this.coolingChannels.delete(channel.number);
    this.channels.set(channel.number, channel);
    let ports = this.channelsByPeer.get(peer.address);
    if (ports === undefined) this.channelsByPeer.set(peer.address, (ports = new Map()));
    ports.set(peer.port, channel);
    if (this.phase === "allocated") this.renew(now, channel);
    return channel.number;
  }

  /**
   * Relays data to peer: ChannelData on a confirmed channel, else a Send indication once a
   * permission for the peer's IP is installed. Before that the datagram is held (a copy; at most
   * PERMISSION_HELD_MAX per IP) and the permission wanted, and it goes out on the permission's
   * confirmation. Dropped while there is no allocation. Every drop is counted in `sendDropped`.
   */
  send(now: number, peer: TransportAddress, data: Uint8Array): void {
    if (this.phase !== "allocated") {
      this.sendDropped.noAllocation++;
      return;
    }
    const channel = this.channelsByPeer.get(peer.address)?.get(peer.port);
    if (channel !== undefined && channel.bound) {
      this.transmits.push({ to: this.options.server, bytes: encodeChannelData(channel.number, data) });
      return;
    }
    this.createPermission(now, peer);
    const permission = this.permissions.get(peer.address)!;
    if (!permission.installed) {
      permission.held.push({ peer: { ...peer }, data: data.slice() });
      if (permission.held.length > PERMISSION_HELD_MAX) {
        permission.held.shift();
        this.sendDropped.heldOverflow++;
      }
      return;
    }
    const indication = new StunBuilder(METHOD_SEND, "indication", this.transactionId()).addXorPeerAddress(peer).addData(data);
    this.transmits.push({ to: this.options.server, bytes: indication.build() });
  }

  /**
   * Deletes the allocation (a Refresh with LIFETIME 0) and forgets its permissions and channels at
   * once; a released event follows the server's answer.
   */
  release(now: number): void {
    if (this.phase === "idle") return;
    const mayExist = this.phase === "allocated" || this.key !== undefined;
    this.teardown();
    // Without credentials the server has answered nothing but a 401 yet, so there is nothing to delete.
    if (mayExist) this.submit(now, { operation: "release", authRetried: false, staleRetries: 0 });
    else this.events.push({ type: "released" });
  }

  // --- 2. Requests ---

  private submit(now: number, request: Request): void {
    if (this.transactions.size >= MAX_OUTSTANDING_TRANSACTIONS) this.waiting.push(request);
    else this.start(now, request);
  }

  private start(now: number, request: Request): void {
    const id = this.transactionId();
    const builder = new StunBuilder(METHODS[request.operation], "request", id);
    switch (request.operation) {
      case "allocate":
        builder.addRequestedTransport(TRANSPORT_UDP);
        // IPv4 is what a server allocates when neither family attribute is present (RFC 8656 §7.2).
        if (this.options.additionalFamily) builder.addAdditionalAddressFamily(6);
        else if (this.options.family === 6) builder.addRequestedAddressFamily(6);
        builder.addLifetime(this.options.lifetime);
        break;
      case "refresh":
        builder.addLifetime(this.options.lifetime);
        break;
      case "release":
        builder.addLifetime(0);
        break;
      case "create-permission":
        builder.addXorPeerAddress(request.permission!.peer);
        break;
      case "channel-bind":
        builder.addChannelNumber(request.channel!.number).addXorPeerAddress(request.channel!.peer);
        break;
    }
    const integrityKey = this.key;
    if (integrityKey === undefined) {
      const software = this.paddedSoftware(builder.build().length);
      if (software !== undefined) builder.addSoftware(software);
    } else {
      if (this.options.software !== undefined) builder.addSoftware(this.options.software);
      builder.addUsername(this.options.username).addRealm(this.realm!).addNonce(this.nonce!);
    }
    const transaction: Transaction = {
      request,
      key: hexOf(id),
      bytes: builder.build(integrityKey === undefined ? {} : { integrity: integrityKey }),
      integrityKey,
      sends: 0,
      nextAt: NEVER,
      forged: 0,
    };
    this.transactions.set(transaction.key, transaction);
    this.transmit(now, transaction);
  }

  /**
   * SOFTWARE for a request without credentials of `size` bytes without it: padded with spaces so
   * the request reaches padUnauthenticated bytes, as far as SOFTWARE's 127 characters allow.
   */
  private paddedSoftware(size: number): string | undefined {
    const software = this.options.software ?? "";
    const missing = this.options.padUnauthenticated - size - ATTRIBUTE_HEADER_SIZE - utf8.encode(software).length;
    const text = software + " ".repeat(Math.max(0, Math.min(missing, TEXT_MAX_CHARACTERS - [...software].length)));
    return text === "" ? undefined : text;
  }

  private transactionId(): Uint8Array {
    const id = this.options.random(TRANSACTION_ID_SIZE);
    if (id.length !== TRANSACTION_ID_SIZE) throw new RangeError(`random(${TRANSACTION_ID_SIZE}) gave ${id.length} bytes`);
    return id;
  }

  /** Ends a transaction and starts waiting requests in the slot it frees. */
  private finish(now: number, transaction: Transaction): void {
    this.transactions.delete(transaction.key);
    while (this.waiting.length > 0 && this.transactions.size < MAX_OUTSTANDING_TRANSACTIONS) this.start(now, this.waiting.shift()!);
  }

  // --- 3. Retransmission ---

  private transmit(now: number, transaction: Transaction): void {
    transaction.sends++;
    // RTO doubles after each send; after the last, the wait is Rm × RTO.
    transaction.nextAt = now + (transaction.sends < RC ? RTO * 2 ** (transaction.sends - 1) : RM * RTO);
    this.transmits.push({ to: this.options.server, bytes: transaction.bytes });
  }

  private retransmitOrGiveUp(now: number, transaction: Transaction): void {
    if (transaction.sends < RC) {
      this.transmit(now, transaction);
      return;
    }
    this.finish(now, transaction);
    const reason = transaction.forged > 0
      ? `every response (${transaction.forged}) failed MESSAGE-INTEGRITY`
      : `no response to ${RC} requests in ${((2 ** (RC - 1) - 1 + RM) * RTO) / 1000} s`;
    this.failed(now, transaction.request, undefined, reason, true);
  }

  // --- 4. Datagrams in ---

  /** A datagram from the network: only the server's count. */
  handleDatagram(now: number, from: TransportAddress, bytes: Uint8Array): void {
    if (!sameAddress(from, this.options.server) || bytes.length === 0) {
      this.dropped.foreign++;
      return;
    }
    switch (firstByteKind(bytes[0]!)) {
      case "channel-data":
        this.receiveChannelData(bytes);
        return;
      case "stun": {
        const decoded = decodeStun(bytes);
        if (!decoded.ok) {
          this.dropped.malformed++;
          return;
        }
        const message = decoded.message;
        if (message.class === "indication" && message.method === METHOD_DATA) this.receiveDataIndication(message);
        else if (message.class === "success" || message.class === "error") this.receiveResponse(now, message, bytes);
        else this.dropped.unexpected++;
        return;
      }
      default:
        this.dropped.foreign++;
    }
  }

  private receiveChannelData(bytes: Uint8Array): void {
    const decoded = decodeChannelData(bytes);
    if (!decoded.ok) {
      this.dropped.malformed++;
      return;
    }
    // A channel still waiting for its ChannelBind response counts: the server may have bound it
    // and the response been lost.
    const channel = this.channels.get(decoded.channel);
    if (channel === undefined || this.phase !== "allocated") {
      this.dropped.unexpected++;
      return;
    }
    this.events.push({ type: "data", peer: { ...channel.peer }, data: decoded.data.slice() });
  }

  private receiveDataIndication(message: StunMessage): void {
    const peer = message.xorPeerAddress();
    const data = message.data();
    // §6.3.2: an indication with unknown comprehension-required attributes is discarded.
    if (peer === undefined || data === undefined || message.unknownComprehensionRequired().length > 0) {
      this.dropped.malformed++;
      return;
    }
    if (this.phase !== "allocated") {
      this.dropped.unexpected++;
      return;
    }
    this.events.push({ type: "data", peer, data: data.slice() });
  }

  private receiveResponse(now: number, message: StunMessage, bytes: Uint8Array): void {
    const transaction = this.transactions.get(hexOf(message.transactionId));
    if (transaction === undefined || METHODS[transaction.request.operation] !== message.method) {
      this.dropped.unexpected++;
      return;
    }
    const error = message.class === "error" ? message.errorCode() : undefined;
    const challenge = error !== undefined && (error.code === ERROR_UNAUTHENTICATED || error.code === ERROR_STALE_NONCE);
    if (transaction.integrityKey !== undefined && !challenge && !authentic(message, bytes, transaction.integrityKey)) {
      // §9.2.5, over UDP: "the response MUST be discarded, as if it had never been received".
      transaction.forged++;
      this.dropped.integrity++;
      return;
    }
    this.finish(now, transaction);
    const request = transaction.request;
    // §6.3.3, §6.3.4: a response with unknown comprehension-required attributes fails the transaction.
    const unknown = message.unknownComprehensionRequired();
    if (unknown.length > 0) {
      this.failed(now, request, error?.code, `response with unknown attributes ${unknown.map((t) => `0x${t.toString(16)}`).join(", ")}`);
      return;
    }
    if (message.class === "success") this.succeeded(now, request, message);
    else if (error === undefined) this.failed(now, request, undefined, "error response without a valid ERROR-CODE");
    else this.rejected(now, request, message, error.code, error.reason);
  }

  // --- 5. Responses ---

  private succeeded(now: number, request: Request, message: StunMessage): void {
    switch (request.operation) {
      case "allocate": {
        const relayed = message.xorRelayedAddresses();
        if (relayed === undefined) {
          this.failed(now, request, undefined, "Allocate success without a valid XOR-RELAYED-ADDRESS");
          return;
        }
        // LIFETIME is mandatory in the answer; a server that leaves it out granted what we asked.
        const lifetime = message.lifetime() ?? this.options.lifetime;
        this.phase = "allocated";
        this.relayed = relayed;
        this.mapped = message.xorMappedAddress();
        this.leaseAllocation(now, lifetime);
        this.events.push({ type: "allocated", relayed: relayed.map((a) => ({ ...a })), mapped: this.mapped && { ...this.mapped }, lifetime });
        for (const permission of this.permissions.values()) this.renew(now, permission);
        for (const channel of this.channels.values()) this.renew(now, channel);
        return;
      }
      case "refresh":
        this.leaseAllocation(now, message.lifetime() ?? this.options.lifetime);
        return;
      case "release":
        this.events.push({ type: "released" });
        return;
      case "create-permission": {
        const permission = request.permission!;
        extendLease(permission, now, PERMISSION_LIFETIME, PERMISSION_REFRESH_INTERVAL);
        if (!permission.installed) {
          permission.installed = true;
          this.events.push({ type: "permission", peer: permission.peer.address });
          const held = permission.held;
          permission.held = [];
          for (const datagram of held) this.send(now, datagram.peer, datagram.data);
        }
        return;
      }
      case "channel-bind": {
        const channel = request.channel!;
        extendLease(channel, now, CHANNEL_LIFETIME, CHANNEL_REFRESH_INTERVAL);
        if (!channel.bound) {
          channel.bound = true;
          this.events.push({ type: "channel", peer: { ...channel.peer }, channel: channel.number });
        }
        return;
      }
    }
  }

  private leaseAllocation(now: number, lifetimeSeconds: number): void {
    const lifetime = lifetimeSeconds * 1000;
    extendLease(this.allocation, now, lifetime, Math.max(lifetime - ALLOCATION_REFRESH_MARGIN, lifetime / 2));
  }

  /** An error response with a valid ERROR-CODE. */
  private rejected(now: number, request: Request, message: StunMessage, code: number, reason: string): void {
    if (code === ERROR_UNAUTHENTICATED && !request.authRetried) {
      const realm = message.realm();
      const nonce = message.nonce();
      if (realm === undefined || nonce === undefined) {
        this.failed(now, request, code, `401 without REALM and NONCE: ${reason}`);
        return;
      }
      this.learn(realm, nonce);
      this.submit(now, { ...request, authRetried: true });
      return;
    }
    if (code === ERROR_STALE_NONCE && request.staleRetries < STALE_NONCE_RETRIES_MAX) {
      const nonce = message.nonce();
      const realm = message.realm() ?? this.realm;
      if (realm === undefined || nonce === undefined) {
        this.failed(now, request, code, `438 without REALM and NONCE: ${reason}`);
        return;
      }
      this.learn(realm, nonce);
      this.submit(now, { ...request, staleRetries: request.staleRetries + 1 });
      return;
    }
    this.failed(now, request, code, reason);
  }

  private learn(realm: string, nonce: string): void {
    if (this.key === undefined || realm !== this.realm) this.key = longTermKey(this.options.username, realm, this.options.password);
    this.realm = realm;
    this.nonce = nonce;
  }

  /** An operation gave up: code from an error response, undefined for an answer without one or none at all (timedOut). */
  private failed(now: number, request: Request, code: number | undefined, reason: string, timedOut = false): void {
    const target = request.permission ?? request.channel;
    const leased = request.operation === "refresh" ? this.allocation : target;
    // A renewal that timed out is worth another try while the server still holds the lease (not
    // one that got a broken answer: retrying that at once could go on for a round trip each).
    if (timedOut && leased !== undefined && leased.expiresAt !== NEVER && now < leased.expiresAt) {
      this.submit(now, { ...request, authRetried: false, staleRetries: 0 });
      return;
    }
    const event: Extract<TurnClientEvent, { type: "failed" }> = { type: "failed", operation: request.operation, reason };
    if (code !== undefined) event.code = code;
    if (request.permission !== undefined) event.peer = { ...request.permission.peer };
    if (request.channel !== undefined) event.peer = { ...request.channel.peer };
    // 437 to any request on the allocation: the server holds none for our 5-tuple (RFC 8656 §7-12).
    if (code === ERROR_ALLOCATION_MISMATCH && request.operation !== "allocate" && request.operation !== "release") {
      this.teardown();
      this.events.push(event);
      return;
    }
    switch (request.operation) {
      case "allocate":
      case "refresh":
        this.teardown();
        break;
      case "release":
        // A 437 to our release: the allocation was already gone, which is what we wanted.
        if (code === ERROR_ALLOCATION_MISMATCH) {
          this.events.push({ type: "released" });
          return;
        }
        break;
      case "create-permission":
        this.dropPermission(request.permission!);
        break;
      case "channel-bind":
        this.dropChannel(now, request.channel!);
        break;
    }
    this.events.push(event);
  }

  // --- 6. Timers ---

  handleTimeout(now: number): void {
    for (const transaction of [...this.transactions.values()]) {
      // An earlier give-up may have torn everything down.
      if (this.transactions.get(transaction.key) === transaction && now >= transaction.nextAt) this.retransmitOrGiveUp(now, transaction);
    }
    if (this.phase !== "allocated") return;
    if (now >= this.allocation.expiresAt) {
      this.teardown();
      this.events.push({ type: "failed", operation: "refresh", reason: "the allocation expired before a Refresh succeeded" });
      return;
    }
    if (now >= this.allocation.renewAt) {
      this.allocation.renewAt = NEVER;
      this.allocation.busy = true;
      this.submit(now, { operation: "refresh", authRetried: false, staleRetries: 0 });
    }
    for (const permission of [...this.permissions.values()]) {
      if (now >= permission.expiresAt) {
        this.dropPermission(permission);
        this.events.push({ type: "failed", operation: "create-permission", reason: "the permission expired before a refresh succeeded", peer: { ...permission.peer } });
      } else if (now >= permission.renewAt) {
        this.renew(now, permission);
      }
    }
    for (const channel of [...this.channels.values()]) {
      if (now >= channel.expiresAt) {
        this.dropChannel(now, channel);
        this.events.push({ type: "failed", operation: "channel-bind", reason: "the channel binding expired before a refresh succeeded", peer: { ...channel.peer } });
      } else if (now >= channel.renewAt) {
        this.renew(now, channel);
      }
    }
  }

  pollTransmit(): { to: TransportAddress; bytes: Uint8Array } | undefined {
    return this.transmits.shift();
  }

  pollEvent(): TurnClientEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    let t = NEVER;
    for (const transaction of this.transactions.values()) t = Math.min(t, transaction.nextAt);
    if (this.phase === "allocated") {
      t = Math.min(t, this.allocation.renewAt, this.allocation.expiresAt);
      for (const permission of this.permissions.values()) t = Math.min(t, permission.renewAt, permission.expiresAt);
      for (const channel of this.channels.values()) t = Math.min(t, channel.renewAt, channel.expiresAt);
    }
    return t === NEVER ? undefined : t;
  }

  /** Starts the CreatePermission or ChannelBind of a lease unless one waits or runs. */
  private renew(now: number, target: Permission | Channel): void {
    if (target.busy) return;
    target.busy = true;
    target.renewAt = NEVER;
    if ("number" in target) this.submit(now, { operation: "channel-bind", channel: target, authRetried: false, staleRetries: 0 });
    else this.submit(now, { operation: "create-permission", permission: target, authRetried: false, staleRetries: 0 });
  }

  private dropPermission(permission: Permission): void {
    this.cancel((r) => r.permission === permission);
    this.permissions.delete(permission.peer.address);
    this.sendDropped.permissionFailed += permission.held.length;
    permission.held = [];
  }

  private dropChannel(now: number, channel: Channel): void {
    this.cancel((r) => r.channel === channel);
    this.channels.delete(channel.number);
    const ports = this.channelsByPeer.get(channel.peer.address);
    ports?.delete(channel.peer.port);
    if (ports?.size === 0) this.channelsByPeer.delete(channel.peer.address);
    this.coolingChannels.set(channel.number, { peer: channel.peer, until: now + CHANNEL_REUSE_DELAY });
  }

  /** Forgets the requests that match, waiting or running (their answers will find no transaction). */
  private cancel(match: (request: Request) => boolean): void {
    this.waiting = this.waiting.filter((r) => !match(r));
    for (const [key, transaction] of this.transactions) if (match(transaction.request)) this.transactions.delete(key);
  }

  /**
   * A number for peer: the one it was last bound to if that is still cooling down, else the next
   * one neither in use nor cooling down.
   */
  private pickChannel(now: number, peer: TransportAddress): number {
    for (const [number, cooling] of this.coolingChannels) {
      if (now >= cooling.until) this.coolingChannels.delete(number);
      else if (sameAddress(cooling.peer, peer)) return number;
    }
    for (let i = 0; i < CHANNEL_COUNT; i++) {
      const number = CHANNEL_NUMBER_MIN + ((this.nextChannel - CHANNEL_NUMBER_MIN + i) % CHANNEL_COUNT);
      if (this.channels.has(number) || this.coolingChannels.has(number)) continue;
      this.nextChannel = number === CHANNEL_NUMBER_MAX ? CHANNEL_NUMBER_MIN : number + 1;
      return number;
    }
    throw new RangeError(`all ${CHANNEL_COUNT} channel numbers are bound or cooling down`);
  }

  /** The allocation is gone (or going): every request, lease, permission and channel with it. */
  private teardown(): void {
    this.phase = "idle";
    Object.assign(this.allocation, { expiresAt: NEVER, renewAt: NEVER, busy: false });
    this.relayed = [];
    this.mapped = undefined;
    this.transactions.clear();
    this.waiting = [];
    for (const permission of this.permissions.values()) this.sendDropped.permissionFailed += permission.held.length;
    this.permissions.clear();
    this.channels.clear();
    this.channelsByPeer.clear();
    this.coolingChannels.clear();
    this.nextChannel = CHANNEL_NUMBER_MIN;
  }
}

/** Sets a lease's expiry and its next renewal after a success at now. */
function extendLease(target: Lease, now: number, lifetime: number, renewAfter: number): void {
  target.expiresAt = now + lifetime;
  target.renewAt = now + renewAfter;
  target.busy = false;
}

/** Whether a response carries a valid MESSAGE-INTEGRITY (or, without one, MESSAGE-INTEGRITY-SHA256) under key. */
function authentic(message: StunMessage, bytes: Uint8Array, key: Uint8Array): boolean {
  if (message.has(ATTR_MESSAGE_INTEGRITY)) return verifyIntegrity(message, bytes, key).ok;
  if (message.has(ATTR_MESSAGE_INTEGRITY_SHA256)) return verifyIntegritySha256(message, bytes, key).ok;
  return false;
}
