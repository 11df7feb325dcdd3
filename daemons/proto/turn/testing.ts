// Test doubles for TURN in virtual time: a scripted TURN server built on the STUN codec (enough of
// RFC 8656 to check a client against: long-term auth with 401 and 438, Allocate, Refresh,
// CreatePermission, ChannelBind, Send and Data, ChannelData, lifetimes, a response cache for
// retransmissions) and a world that runs a TurnAllocation against it over a link with delay and loss.
//
// The server keeps a log of what it granted, so a test can check that nothing lapsed while wanted,
// and takes an `intercept` hook to answer, corrupt or lose any request.

import type { TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import { decodeChannelData, encodeChannelData, firstByteKind, isChannelNumber } from "../stun/channel-data.js";
import {
  ATTR_MESSAGE_INTEGRITY, ERROR_ADDRESS_FAMILY_NOT_SUPPORTED, ERROR_ALLOCATION_MISMATCH, ERROR_BAD_REQUEST, ERROR_STALE_NONCE, ERROR_UNAUTHENTICATED, METHOD_ALLOCATE,
  METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_REFRESH, METHOD_SEND,
} from "../stun/constants.js";
import { longTermKey, verifyIntegrity } from "../stun/integrity.js";
import { decodeStun, type StunMessage } from "../stun/message.js";
import type { TurnAllocation, TurnClientEvent } from "./client.js";
import { CHANNEL_LIFETIME_SECONDS, PERMISSION_LIFETIME_SECONDS } from "./constants.js";

const SECOND = 1000;
const PERMISSION_LIFETIME = PERMISSION_LIFETIME_SECONDS * SECOND;
const CHANNEL_LIFETIME = CHANNEL_LIFETIME_SECONDS * SECOND;
/** How long the fake caches a response for a retransmitted request (RFC 8489 §6.3.1: 40 s). */
const RESPONSE_CACHE_TIME = 40 * SECOND;

export interface ScriptedServerOptions {
  address: TransportAddress;
  realm: string;
  username: string;
  password: string;
  /** Relayed addresses handed out, by family. */
  relayed: { 4: TransportAddress; 6?: TransportAddress };
  /** The most lifetime granted, in s (the fake grants min(asked, this)). */
  maxLifetime?: number;
  /** Transaction IDs for indications and nonces. */
  random: (length: number) => Uint8Array;
}

/** A request the server received, decoded, with when. */
export interface ServerRequest {
  at: number;
  from: TransportAddress;
  message: StunMessage;
  bytes: Uint8Array;
}

/** What an intercept returns: answer these bytes, drop the request, or handle it as usual. */
export type Interception = Uint8Array | "drop" | undefined;

interface Granted {
  at: number;
  expiresAt: number;
}

/** A scripted TURN server for one client; see the file comment. */
export class ScriptedTurnServer {
  nonce = "nonce-0";
  readonly key: Uint8Array;
  /** Every STUN request and indication received, in order. */
  readonly received: ServerRequest[] = [];
  /** Data the client relayed to peers (Send indications and ChannelData), with when. */
  readonly toPeers: { at: number; peer: TransportAddress; data: Uint8Array; via: "send" | "channel" }[] = [];
  /** Every grant (allocation, refresh, permission, channel), for timeline checks. */
  readonly log: { at: number; kind: "allocate" | "refresh" | "permission" | "channel" | "release"; subject: string; lifetime: number }[] = [];
  /** Asked before the usual handling (and the response cache) of every request. */
  intercept: (request: ServerRequest) => Interception = () => undefined;

  allocation: { expiresAt: number; relayed: TransportAddress[] } | undefined;
  readonly permissions = new Map<string, Granted>();
  readonly channels = new Map<number, Granted & { peer: TransportAddress }>();
  private readonly cache = new Map<string, { bytes: Uint8Array; until: number }>();
  private nonces = 0;

  constructor(readonly options: ScriptedServerOptions) {
    this.key = longTermKey(options.username, options.realm, options.password);
  }

  get address(): TransportAddress {
    return this.options.address;
  }

  /** A new nonce: the old one gets 438 from now on. */
  rotateNonce(): void {
    this.nonce = `nonce-${++this.nonces}`;
  }

  /** Whether a permission for ip is in force at now. */
  permitted(now: number, ip: string): boolean {
    const p = this.permissions.get(ip);
    return p !== undefined && now < p.expiresAt;
  }

  /** The answers to one datagram from the client. */
  receive(now: number, from: TransportAddress, bytes: Uint8Array): Uint8Array[] {
    this.expire(now);
    if (bytes.length === 0) return [];
    if (firstByteKind(bytes[0]!) === "channel-data") {
      const decoded = decodeChannelData(bytes);
      const channel = decoded.ok ? this.channels.get(decoded.channel) : undefined;
      if (decoded.ok && channel !== undefined && this.allocation !== undefined) {
        this.toPeers.push({ at: now, peer: channel.peer, data: decoded.data.slice(), via: "channel" });
      }
      return [];
    }
    const decoded = decodeStun(bytes);
    if (!decoded.ok) return [];
    const message = decoded.message;
    const request: ServerRequest = { at: now, from, message, bytes };
    this.received.push(request);
    if (message.class === "indication") {
      const peer = message.xorPeerAddress();
      const data = message.data();
      if (message.method === METHOD_SEND && peer !== undefined && data !== undefined && this.allocation !== undefined && this.permitted(now, peer.address)) {
        this.toPeers.push({ at: now, peer, data: data.slice(), via: "send" });
      }
      return [];
    }
    if (message.class !== "request") return [];
    const id = Array.from(message.transactionId, (b) => b.toString(16).padStart(2, "0")).join("");
    const cached = this.cache.get(id);
    if (cached !== undefined && now < cached.until) return [cached.bytes];
    // What intercept answers is not cached: it is asked again for each retransmission.
    const intercepted = this.intercept(request);
    if (intercepted === "drop") return [];
    if (intercepted !== undefined) return [intercepted];
    const answer = this.handle(now, from, message, bytes);
    if (answer === undefined) return [];
    this.cache.set(id, { bytes: answer, until: now + RESPONSE_CACHE_TIME });
    return [answer];
  }

  /** Data from a peer to the client: ChannelData on a bound channel, else a Data indication; undefined without a permission. */
  fromPeer(now: number, peer: TransportAddress, data: Uint8Array, { indication = false }: { indication?: boolean } = {}): Uint8Array | undefined {
    this.expire(now);
    if (this.allocation === undefined || !this.permitted(now, peer.address)) return undefined;
    if (!indication) {
      for (const [number, channel] of this.channels) {
        if (channel.peer.address === peer.address && channel.peer.port === peer.port) return encodeChannelData(number, data);
      }
    }
    return new StunBuilder(METHOD_DATA, "indication", this.options.random(12)).addXorPeerAddress(peer).addData(data).build();
  }

  /** A success response to request, signed with the server's key (another key, or null for none); add attributes in fill. */
  success(request: StunMessage, fill: (b: StunBuilder) => void = () => {}, key: Uint8Array | null = this.key): Uint8Array {
    const b = new StunBuilder(request.method, "success", request.transactionId);
    fill(b);
    return b.build(key === null ? {} : { integrity: key });
  }

  /** An error response to request, signed with the server's key (another key, or null for none). */
  error(request: StunMessage, code: number, reason: string, key: Uint8Array | null = this.key, fill: (b: StunBuilder) => void = () => {}): Uint8Array {
    const b = new StunBuilder(request.method, "error", request.transactionId).addErrorCode(code, reason);
    fill(b);
    return b.build(key === null ? {} : { integrity: key });
  }

  /** 401 or 438 with REALM and the current NONCE, unsigned (RFC 8489 §9.2.4). */
  challenge(request: StunMessage, code: typeof ERROR_UNAUTHENTICATED | typeof ERROR_STALE_NONCE): Uint8Array {
    return this.error(request, code, code === ERROR_UNAUTHENTICATED ? "Unauthenticated" : "Stale Nonce", null, (b) =>
      b.addRealm(this.options.realm).addNonce(this.nonce));
  }

  private expire(now: number): void {
    if (this.allocation !== undefined && now >= this.allocation.expiresAt) {
      this.allocation = undefined;
      this.permissions.clear();
      this.channels.clear();
    }
    for (const [ip, p] of this.permissions) if (now >= p.expiresAt) this.permissions.delete(ip);
    for (const [n, c] of this.channels) if (now >= c.expiresAt) this.channels.delete(n);
  }

  private handle(now: number, from: TransportAddress, m: StunMessage, bytes: Uint8Array): Uint8Array | undefined {
    // Long-term authentication (RFC 8489 §9.2.4).
    if (!m.has(ATTR_MESSAGE_INTEGRITY)) return this.challenge(m, ERROR_UNAUTHENTICATED);
    if (m.username() !== this.options.username || m.realm() !== this.options.realm) return this.challenge(m, ERROR_UNAUTHENTICATED);
    if (!verifyIntegrity(m, bytes, this.key).ok) return this.challenge(m, ERROR_UNAUTHENTICATED);
    if (m.nonce() !== this.nonce) return this.challenge(m, ERROR_STALE_NONCE);

    switch (m.method) {
      case METHOD_ALLOCATE: {
        if (this.allocation !== undefined) return this.error(m, ERROR_ALLOCATION_MISMATCH, "Allocation Mismatch");
        const lifetime = Math.min(m.lifetime() ?? 600, this.options.maxLifetime ?? 3600);
        const family = m.requestedAddressFamily() ?? 4;
        const relayed: TransportAddress[] = [];
        const first = this.options.relayed[family];
        if (first === undefined) return this.error(m, ERROR_ADDRESS_FAMILY_NOT_SUPPORTED, "Address Family not Supported");
        relayed.push(first);
        if (m.additionalAddressFamily() === 6 && this.options.relayed[6] !== undefined) relayed.push(this.options.relayed[6]);
        this.allocation = { expiresAt: now + lifetime * SECOND, relayed };
        this.log.push({ at: now, kind: "allocate", subject: "", lifetime });
        return this.success(m, (b) => {
          for (const r of relayed) b.addXorRelayedAddress(r);
          b.addXorMappedAddress(from).addLifetime(lifetime);
        });
      }
      case METHOD_REFRESH: {
        if (this.allocation === undefined) return this.error(m, ERROR_ALLOCATION_MISMATCH, "Allocation Mismatch");
        const lifetime = Math.min(m.lifetime() ?? 600, this.options.maxLifetime ?? 3600);
        if (lifetime === 0) {
          this.allocation = undefined;
          this.permissions.clear();
          this.channels.clear();
          this.log.push({ at: now, kind: "release", subject: "", lifetime: 0 });
        } else {
          this.allocation.expiresAt = now + lifetime * SECOND;
          this.log.push({ at: now, kind: "refresh", subject: "", lifetime });
        }
        return this.success(m, (b) => b.addLifetime(lifetime));
      }
      case METHOD_CREATE_PERMISSION: {
        if (this.allocation === undefined) return this.error(m, ERROR_ALLOCATION_MISMATCH, "Allocation Mismatch");
        const peers = m.xorPeerAddresses();
        if (peers === undefined) return this.error(m, ERROR_BAD_REQUEST, "Bad Request");
        for (const peer of peers) {
          this.permissions.set(peer.address, { at: now, expiresAt: now + PERMISSION_LIFETIME });
          this.log.push({ at: now, kind: "permission", subject: peer.address, lifetime: PERMISSION_LIFETIME_SECONDS });
        }
        return this.success(m);
      }
      case METHOD_CHANNEL_BIND: {
        if (this.allocation === undefined) return this.error(m, ERROR_ALLOCATION_MISMATCH, "Allocation Mismatch");
        const number = m.channelNumber();
        const peer = m.xorPeerAddress();
        if (number === undefined || peer === undefined || !isChannelNumber(number)) return this.error(m, ERROR_BAD_REQUEST, "Bad Request");
        const bound = this.channels.get(number);
        if (bound !== undefined && (bound.peer.address !== peer.address || bound.peer.port !== peer.port)) return this.error(m, ERROR_BAD_REQUEST, "Channel in use");
        for (const [n, c] of this.channels) {
          if (n !== number && c.peer.address === peer.address && c.peer.port === peer.port) return this.error(m, ERROR_BAD_REQUEST, "Peer bound elsewhere");
        }
        this.channels.set(number, { at: now, expiresAt: now + CHANNEL_LIFETIME, peer });
        this.permissions.set(peer.address, { at: now, expiresAt: now + PERMISSION_LIFETIME });
        this.log.push({ at: now, kind: "channel", subject: `${number}`, lifetime: CHANNEL_LIFETIME_SECONDS });
        return this.success(m);
      }
      default:
        return this.error(m, ERROR_BAD_REQUEST, "Bad Request");
    }
  }
}

/** One datagram in flight. */
interface InFlight {
  at: number;
  toServer: boolean;
  bytes: Uint8Array;
}

/** A TurnAllocation and a ScriptedTurnServer over a link with a one-way delay and a loss hook. */
export class TurnWorld {
  now = 0;
  /** Everything the client transmitted, lost or not. */
  readonly sent: { at: number; bytes: Uint8Array; message: StunMessage | undefined }[] = [];
  readonly events: { at: number; event: TurnClientEvent }[] = [];
  /** Return true to lose a datagram. */
  lose: (datagram: { at: number; toServer: boolean; bytes: Uint8Array }) => boolean = () => false;
  private queue: InFlight[] = [];

  constructor(
    readonly client: TurnAllocation,
    readonly server: ScriptedTurnServer,
    readonly clientAddress: TransportAddress,
    readonly delay = 10,
  ) {}

  /** Events of one type, in order. */
  eventsOf<T extends TurnClientEvent["type"]>(type: T): (Extract<TurnClientEvent, { type: T }> & { at: number })[] {
    return this.events.filter((e) => e.event.type === type).map((e) => ({ ...(e.event as Extract<TurnClientEvent, { type: T }>), at: e.at }));
  }

  /** Requests the client sent (every transmission, retransmissions too) of one method. */
  sentOf(method: number): { at: number; message: StunMessage }[] {
    return this.sent.filter((s) => s.message?.method === method && s.message.class === "request").map((s) => ({ at: s.at, message: s.message! }));
  }

  /** Runs a client command now, then drains it. */
  act(run: (client: TurnAllocation, now: number) => void): void {
    run(this.client, this.now);
    this.drain();
  }

  /** Delivers a datagram from the server to the client after the link delay. */
  fromServer(bytes: Uint8Array): void {
    this.schedule(false, bytes);
  }

  drain(): void {
    for (let t = this.client.pollTransmit(); t !== undefined; t = this.client.pollTransmit()) {
      const decoded = decodeStun(t.bytes);
      this.sent.push({ at: this.now, bytes: t.bytes, message: decoded.ok ? decoded.message : undefined });
      this.schedule(true, t.bytes);
    }
    for (let e = this.client.pollEvent(); e !== undefined; e = this.client.pollEvent()) this.events.push({ at: this.now, event: e });
  }

  private schedule(toServer: boolean, bytes: Uint8Array): void {
    if (this.lose({ at: this.now, toServer, bytes })) return;
    this.queue.push({ at: this.now + this.delay, toServer, bytes });
  }

  /** Runs until virtual time `until`, with actions at their times. */
  run(until: number, actions: { at: number; run: () => void }[] = []): void {
    const pending = [...actions].sort((x, y) => x.at - y.at);
    let stuck = 0;
    for (;;) {
      const net = this.queue.reduce((m, q) => Math.min(m, q.at), Infinity);
      const timer = this.client.pollTimeout() ?? Infinity;
      const app = pending[0]?.at ?? Infinity;
      const t = Math.min(net, timer, app);
      if (t > until) break;
      if (t < this.now) throw new Error(`time went back: ${t} < ${this.now}`);
      stuck = t === this.now ? stuck + 1 : 0;
      if (stuck > 100_000) throw new Error(`no progress at ${t}: a timer that handleTimeout does not clear?`);
      this.now = t;
      if (app === t) {
        pending.shift()!.run();
        this.drain();
      } else if (net === t) {
        const i = this.queue.findIndex((q) => q.at === t);
        const [item] = this.queue.splice(i, 1);
        if (item!.toServer) {
          for (const answer of this.server.receive(this.now, this.clientAddress, item!.bytes)) this.schedule(false, answer);
        } else {
          this.client.handleDatagram(this.now, this.server.address, item!.bytes);
          this.drain();
        }
      } else {
        this.client.handleTimeout(this.now);
        this.drain();
      }
    }
    this.now = until;
  }
}
