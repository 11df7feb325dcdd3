// One WireGuard peer: its handshakes, its keypairs and the timers of whitepaper §6, in virtual time.
//
// Driving contract: call one input method (send, handshake*, received, handleTimeout) with the
// current monotonic time in ms, then drain pollTransmit() and pollEvent() until they return
// undefined, then arm a timer for pollTimeout(). Nothing here reads a clock or a random source:
// `now` and the wall-clock offset are passed in, randomness comes from the `random` option.
//
// The engine holds the transport sessions; this machine only tells the driver what to install, what
// to drop and which session (by local index) to seal with:
// 1. send: a usable current keypair → its local index; otherwise the packets are staged and a
//    handshake starts. The initiator rekeys after REKEY_AFTER_TIME or REKEY_AFTER_MESSAGES.
// 2. Handshake messages in and out; a responder's new keypair waits as `next` until the initiator's
//    first packet confirms it.
// 3. received: an authenticated packet on a keypair confirms it, and feeds the keepalive timers. A
//    confirmed `next` completes the handshake as a response does (wireguard-go and Linux call
//    timersHandshakeComplete on "key confirmation via the first data message"): when both sides
//    initiated at once, one answer is enough, and our own initiation is no longer retried.
// 4. Timers: retransmit the initiation every REKEY_TIMEOUT (+ jitter) until a handshake completes
//    or REKEY_ATTEMPT_TIME passes;
//    keepalive after KEEPALIVE_TIMEOUT of receiving without sending; a new handshake after
//    KEEPALIVE_TIMEOUT + REKEY_TIMEOUT of sending without receiving; persistent keepalives; each
//    keypair dropped REJECT_AFTER_TIME after it was made (the engine would otherwise still accept
//    packets on it); everything wiped after 3 × REJECT_AFTER_TIME without a new session.

import { CookieJar } from "./cookie.js";
import {
  KEEPALIVE_TIMEOUT, KEY_SIZE, MESSAGE_COOKIE_REPLY_TYPE, MESSAGE_RESPONSE_TYPE, REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT,
} from "./constants.js";
import { clampPrivateKey } from "./crypto.js";
import { createResponse, type ConsumedInitiation, type HandshakePeer, type TransportKeys } from "./noise.js";
import { tai64n } from "./tai64n.js";

/** Up to this much random jitter is added to each handshake retransmission (as Linux and Go do). */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** Packets staged while a handshake is pending; the oldest are dropped beyond this. */
export const MAX_STAGED_PACKETS = 1024;

export interface PeerOptions {
  handshake: HandshakePeer;
  /** Randomness, from the driver: ephemeral keys and jitter. */
  random: (length: number) => Uint8Array;
  /** A fresh, unused local index (the device keeps them unique). */
  allocateIndex: () => number;
  /** Unix time in ns at monotonic time 0, for TAI64N timestamps. */
  wallClockAtZeroNanos: bigint;
  /** Persistent keepalive interval in ms; 0 for none. */
  persistentKeepalive?: number;
}

export type PeerEvent =
  /** Install these keys in the engine. */
  | { type: "install"; keys: TransportKeys }
  /** Drop the engine session with this local index (its keys are wiped there). */
  | { type: "drop"; localIndex: number }
  /** Seal and send these staged packets with the session of this local index. */
  | { type: "flush"; localIndex: number; packets: Uint8Array[] }
  /** Seal and send an empty packet (a keepalive) with this session. */
  | { type: "keepalive"; localIndex: number }
  /** REKEY_ATTEMPT_TIME passed without an answer: staged packets were dropped. */
  | { type: "handshake-failed"; dropped: number };

interface Keypair {
  keys: TransportKeys;
  createdAt: number;
  /** Packets sealed with it, as reported by the driver (for REKEY_AFTER_MESSAGES). */
  sent: bigint;
}

const NEVER = Number.POSITIVE_INFINITY;

/** A WireGuard peer's protocol state; see the driving contract above. */
export class WireGuardPeer {
  private current: Keypair | undefined;
  private previous: Keypair | undefined;
  private next: Keypair | undefined;
  private staged: Uint8Array[] = [];
  private readonly transmits: Uint8Array[] = [];
  private readonly events: PeerEvent[] = [];
  private readonly jar: CookieJar;

  private handshakeStartedAt = NEVER;
  private retransmitAt = NEVER;
  private keepaliveAt = NEVER;
  private newHandshakeAt = NEVER;
  private persistentAt = NEVER;
  private zeroKeysAt = NEVER;

  private readonly options: PeerOptions;

  constructor(options: PeerOptions) {
    this.options = { ...options };
    this.jar = new CookieJar(options.handshake.remoteStatic);
  }

  /** Local indices of the keypairs held, for the device's index table. */
  get localIndices(): number[] {
    return [this.current, this.previous, this.next].filter((k): k is Keypair => k !== undefined).map((k) => k.keys.localIndex);
  }

  /**
   * The session to seal `count` data packets with now (0 for a keepalive), or undefined: then stage
   * them with stage() and a handshake is on its way.
   */
  send(now: number, count: number): number | undefined {
    const kp = this.current;
    const usable = kp !== undefined && now - kp.createdAt < REJECT_AFTER_TIME && kp.sent + BigInt(count) < REJECT_AFTER_MESSAGES;
    if (!usable) {
      this.startHandshake(now);
      return undefined;
    }
    kp.sent += BigInt(count);
    this.sentPacket(now, count > 0);
    if (kp.sent >= REKEY_AFTER_MESSAGES || (kp.keys.initiator && now - kp.createdAt >= REKEY_AFTER_TIME)) this.startHandshake(now);
    return kp.keys.localIndex;
  }

  /**
   * Changes the persistent keepalive interval (ms, 0 for none). A new non-zero interval sends a
   * keepalive at once, as wireguard-go does, so a configured peer handshakes without waiting for traffic.
   */
  setPersistentKeepalive(now: number, interval: number): void {
    const before = this.options.persistentKeepalive ?? 0;
    this.options.persistentKeepalive = interval;
    if (interval <= 0) this.persistentAt = NEVER;
    else if (interval !== before) this.persistentAt = now;
  }

  /** Keeps packets until a session exists (copies them; the oldest go first past MAX_STAGED_PACKETS). */
  stage(packets: readonly Uint8Array[]): void {
    for (const p of packets) this.staged.push(p.slice());
    if (this.staged.length > MAX_STAGED_PACKETS) this.staged.splice(0, this.staged.length - MAX_STAGED_PACKETS);
  }

  /** Responder: answer an initiation consumed for this peer (consumeInitiation, at device level). */
  handshakeInitiation(now: number, consumed: ConsumedInitiation): void {
    const response = createResponse(consumed, this.options.allocateIndex(), clampPrivateKey(this.options.random(KEY_SIZE)));
    if (!response.ok) return;
    this.jar.writeMacs(response.value.message, now);
    this.transmits.push(response.value.message);
    if (this.next !== undefined) this.events.push({ type: "drop", localIndex: this.next.keys.localIndex });
    this.next = { keys: response.value.keys, createdAt: now, sent: 0n };
    this.events.push({ type: "install", keys: response.value.keys });
    this.sentPacket(now, false);
    this.zeroKeysAt = now + 3 * REJECT_AFTER_TIME;
  }

  /** Initiator: a response or a cookie reply from the network. */
  handshakeMessage(now: number, message: Uint8Array): void {
    if (message[0] === MESSAGE_COOKIE_REPLY_TYPE) {
      this.jar.consumeReply(message, now);
      return;
    }
    if (message[0] !== MESSAGE_RESPONSE_TYPE) return;
    const result = this.options.handshake.consumeResponse(message);
    if (!result.ok) return;
    this.receivedPacket(now, false);
    this.events.push({ type: "install", keys: result.value });
    this.rotateIn({ keys: result.value, createdAt: now, sent: 0n });
    this.handshakeComplete();
    this.zeroKeysAt = now + 3 * REJECT_AFTER_TIME;
    this.flush(now);
    // The responder may not send until it hears from us: confirm at once if nothing was staged.
    if (this.current!.sent === 0n) {
      const localIndex = this.send(now, 0);
      if (localIndex !== undefined) this.events.push({ type: "keepalive", localIndex });
    }
  }

  /**
   * An authenticated packet arrived on the session with this local index (the engine opened it);
   * data is false for a keepalive.
   */
  received(now: number, localIndex: number, data: boolean): void {
    if (this.next !== undefined && this.next.keys.localIndex === localIndex) {
      const confirmed = this.next;
      this.next = undefined;
      this.rotateIn(confirmed);
      this.handshakeComplete();
      this.flush(now);
    }
    this.receivedPacket(now, data);
    const kp = this.current;
    // An initiator whose session nears REJECT_AFTER_TIME rekeys even if it only receives.
    if (kp !== undefined && kp.keys.initiator && now - kp.createdAt >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
      this.startHandshake(now);
    }
  }

  handleTimeout(now: number): void {
    if (now >= this.retransmitAt) {
      if (now - this.handshakeStartedAt >= REKEY_ATTEMPT_TIME) {
        this.events.push({ type: "handshake-failed", dropped: this.staged.length });
        this.staged = [];
        this.handshakeStartedAt = NEVER;
        this.retransmitAt = NEVER;
        this.options.handshake.abandonInitiation();
      } else {
        this.sendInitiation(now);
      }
    }
    if (now >= this.keepaliveAt || now >= this.persistentAt) {
      this.keepaliveAt = NEVER;
      this.persistentAt = NEVER;
      const localIndex = this.send(now, 0);
      if (localIndex !== undefined) this.events.push({ type: "keepalive", localIndex });
    }
    if (now >= this.newHandshakeAt) {
      this.newHandshakeAt = NEVER;
      this.startHandshake(now);
    }
    this.expireKeypairs(now);
    if (now >= this.zeroKeysAt) {
      this.zeroKeysAt = NEVER;
      for (const kp of [this.current, this.previous, this.next]) if (kp) this.events.push({ type: "drop", localIndex: kp.keys.localIndex });
      this.current = this.previous = this.next = undefined;
    }
  }

  pollTransmit(): Uint8Array | undefined {
    return this.transmits.shift();
  }

  pollEvent(): PeerEvent | undefined {
    return this.events.shift();
  }

  pollTimeout(): number | undefined {
    const expiry = Math.min(...[this.current, this.previous, this.next].map((kp) => (kp ? kp.createdAt + REJECT_AFTER_TIME : NEVER)));
    const t = Math.min(this.retransmitAt, this.keepaliveAt, this.newHandshakeAt, this.persistentAt, this.zeroKeysAt, expiry);
    return t === NEVER ? undefined : t;
  }

  /** Drops every keypair REJECT_AFTER_TIME old: no packet may be sent or accepted on it. */
  private expireKeypairs(now: number): void {
    const expired = (kp: Keypair | undefined): kp is Keypair => kp !== undefined && now - kp.createdAt >= REJECT_AFTER_TIME;
    if (expired(this.current)) {
      this.events.push({ type: "drop", localIndex: this.current.keys.localIndex });
      this.current = undefined;
    }
    if (expired(this.previous)) {
      this.events.push({ type: "drop", localIndex: this.previous.keys.localIndex });
      this.previous = undefined;
    }
    if (expired(this.next)) {
      this.events.push({ type: "drop", localIndex: this.next.keys.localIndex });
      this.next = undefined;
    }
  }

  /**
   * A session both sides hold exists (a response came, or the initiator's first packet confirmed
   * ours): no more retransmissions. An initiation of ours that crossed the peer's is given up too,
   * its ephemeral key wiped: a late response to it could only key a second session for a handshake
   * that is done (wireguard-go, whose one handshake state the peer's initiation overwrites, mostly
   * rejects it).
   */
  private handshakeComplete(): void {
    this.handshakeStartedAt = NEVER;
    this.retransmitAt = NEVER;
    this.options.handshake.abandonInitiation();
  }

  private startHandshake(now: number): void {
    if (this.handshakeStartedAt !== NEVER) return; // one at a time; the retransmit timer drives it
    this.handshakeStartedAt = now;
    this.sendInitiation(now);
  }

  private sendInitiation(now: number): void {
    const localIndex = this.options.allocateIndex();
    const wall = this.options.wallClockAtZeroNanos + BigInt(Math.floor(now)) * 1_000_000n;
    const result = this.options.handshake.createInitiation(localIndex, clampPrivateKey(this.options.random(KEY_SIZE)), tai64n(wall));
    if (!result.ok) return;
    this.jar.writeMacs(result.value, now);
    this.transmits.push(result.value);
    const jitter = this.options.random(2);
    this.retransmitAt = now + REKEY_TIMEOUT + (((jitter[0]! << 8) | jitter[1]!) % REKEY_TIMEOUT_JITTER_MAX);
    this.sentPacket(now, false);
  }

  /** A new keypair becomes current; the old current becomes previous, the old previous is dropped. */
  private rotateIn(kp: Keypair): void {
    if (this.previous !== undefined) this.events.push({ type: "drop", localIndex: this.previous.keys.localIndex });
    this.previous = this.current;
    this.current = kp;
  }

  private flush(now: number): void {
    if (this.staged.length === 0 || this.current === undefined) return;
    const packets = this.staged;
    this.staged = [];
    const localIndex = this.send(now, packets.length);
    if (localIndex === undefined) {
      this.staged = packets;
      return;
    }
    this.events.push({ type: "flush", localIndex, packets });
  }

  /** Timer bookkeeping for any packet we send (data: not a keepalive or handshake). */
  private sentPacket(now: number, data: boolean): void {
    this.keepaliveAt = NEVER;
    if (data && this.newHandshakeAt === NEVER) this.newHandshakeAt = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT;
    this.armPersistent(now);
  }

  /** Timer bookkeeping for any authenticated packet we receive. */
  private receivedPacket(now: number, data: boolean): void {
    this.newHandshakeAt = NEVER;
    if (data && this.keepaliveAt === NEVER) this.keepaliveAt = now + KEEPALIVE_TIMEOUT;
    this.armPersistent(now);
  }

  private armPersistent(now: number): void {
    const interval = this.options.persistentKeepalive ?? 0;
    if (interval > 0) this.persistentAt = now + interval;
  }
}
