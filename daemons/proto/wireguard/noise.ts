// The WireGuard handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (whitepaper §5.4.2-5.4.5).
//
// 1. Initiator: createInitiation → 148 bytes (ephemeral, encrypted static, encrypted TAI64N).
// 2. Responder: consumeInitiation finds the peer by its decrypted static key, refuses a timestamp
//    that is not newer than the last one accepted and initiations faster than the rate limit.
// 3. Responder: createResponse → 92 bytes and the responder's transport keys.
// 4. Initiator: consumeResponse → the initiator's transport keys.
// mac1/mac2 are written and checked by cookie.ts around these steps.
//
// Nothing here reads a clock or a random source: ephemeral keys, sender indices, the wall-clock time
// of the timestamp and the monotonic `now` arrive as arguments. Failures are values, never throws.

import {
  CONSTRUCTION, HANDSHAKE_INITIATION_RATE, IDENTIFIER, INITIATION_OFFSET_EPHEMERAL, INITIATION_OFFSET_MAC1,
  INITIATION_OFFSET_SENDER, INITIATION_OFFSET_STATIC, INITIATION_OFFSET_TIMESTAMP, KEY_SIZE,
  MESSAGE_INITIATION_SIZE, MESSAGE_INITIATION_TYPE, MESSAGE_RESPONSE_SIZE, MESSAGE_RESPONSE_TYPE,
  RESPONSE_OFFSET_EMPTY, RESPONSE_OFFSET_EPHEMERAL, RESPONSE_OFFSET_MAC1, RESPONSE_OFFSET_RECEIVER,
  RESPONSE_OFFSET_SENDER, TIMESTAMP_SIZE,
} from "./constants.js";
import { aeadOpen, aeadSeal, hash, kdf, nobleX25519, type X25519 } from "./crypto.js";
import { tai64nAfter } from "./tai64n.js";

/** The keys and indices of a fresh session, ready for the engine's transport. */
export interface TransportKeys {
  /** Our index: the peer's packets carry it as receiver. */
  localIndex: number;
  /** The peer's index: our packets carry it as receiver. */
  remoteIndex: number;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  /** Whether we initiated: the initiator may send at once, the responder only after it hears first. */
  initiator: boolean;
}

export type HandshakeFailure =
  | "malformed"
  | "unknown-peer"
  | "decrypt-failed"
  | "replayed-timestamp"
  | "rate-limited"
  | "low-order-key"
  | "no-pending-handshake"
  | "wrong-receiver";

export type HandshakeResult<T> = { ok: true; value: T } | { ok: false; reason: HandshakeFailure };

const fail = <T>(reason: HandshakeFailure): HandshakeResult<T> => ({ ok: false, reason });

/** C0 = HASH(CONSTRUCTION) and H0 = HASH(C0 ‖ IDENTIFIER): the same for every handshake. */
const CHAIN0 = hash(CONSTRUCTION);
const HASH0 = hash(CHAIN0, IDENTIFIER);

/** Our static key pair, with what every handshake derives from it precomputed. */
export class StaticIdentity {
  readonly publicKey: Uint8Array;
  /** H after mixing in our static public key: where a responder's hash starts. */
  readonly responderHash0: Uint8Array;

  constructor(
    readonly privateKey: Uint8Array,
    /** The X25519 every handshake of this identity uses. */
    readonly x25519: X25519 = nobleX25519,
  ) {
    if (privateKey.length !== KEY_SIZE) throw new RangeError(`a private key is ${KEY_SIZE} bytes, got ${privateKey.length}`);
    this.publicKey = x25519.publicKey(privateKey);
    this.responderHash0 = hash(HASH0, this.publicKey);
  }
}

/** The initiator's state between sending an initiation and taking the response. */
interface PendingInitiation {
  localIndex: number;
  ephemeralPrivate: Uint8Array;
  chainingKey: Uint8Array;
  hash: Uint8Array;
}

/**
 * One remote peer as the handshake sees it: its static key, the preshared key, the static-static
 * DH computed once (X25519 is the handshake's cost: about 870 per second in JavaScript), replay and
 * rate-limit state as responder, and the pending initiation as initiator.
 */
export class HandshakePeer {
  readonly presharedKey: Uint8Array;
  /** H after mixing in the peer's static public key: where an initiator's hash starts. */
  private readonly initiatorHash0: Uint8Array;
  private readonly staticStatic: Uint8Array;
  private latestTimestamp = new Uint8Array(TIMESTAMP_SIZE);
  private lastInitiationAt = Number.NEGATIVE_INFINITY;
  private pending: PendingInitiation | undefined;

  constructor(
    readonly identity: StaticIdentity,
    readonly remoteStatic: Uint8Array,
    presharedKey?: Uint8Array,
  ) {
    if (remoteStatic.length !== KEY_SIZE) throw new RangeError(`a public key is ${KEY_SIZE} bytes, got ${remoteStatic.length}`);
    if (presharedKey !== undefined && presharedKey.length !== KEY_SIZE) {
      throw new RangeError(`a preshared key is ${KEY_SIZE} bytes, got ${presharedKey.length}`);
    }
    const ss = identity.x25519.sharedSecret(identity.privateKey, remoteStatic);
    if (ss === null) throw new RangeError("the peer's public key is of low order: no session can be keyed with it");
    this.staticStatic = ss;
    this.presharedKey = presharedKey ?? new Uint8Array(KEY_SIZE);
    this.initiatorHash0 = hash(HASH0, remoteStatic);
  }

  /** Whether an initiation of ours awaits its response. */
  get awaitingResponse(): boolean {
    return this.pending !== undefined;
  }

  /** The local index of the initiation awaiting its response. */
  get pendingIndex(): number | undefined {
    return this.pending?.localIndex;
  }

  /**
   * Builds an initiation (mac1/mac2 left zero for the CookieJar to fill). ephemeralPrivate is 32
   * random bytes, owned by the handshake from here on and wiped when it ends; timestamp is
   * tai64n(wall clock).
   */
  createInitiation(localIndex: number, ephemeralPrivate: Uint8Array, timestamp: Uint8Array): HandshakeResult<Uint8Array> {
    const { x25519 } = this.identity;
    const ephemeralPublic = x25519.publicKey(ephemeralPrivate);
    const es = x25519.sharedSecret(ephemeralPrivate, this.remoteStatic);
    if (es === null) return fail("low-order-key");
    const msg = new Uint8Array(MESSAGE_INITIATION_SIZE);
    const view = new DataView(msg.buffer);
    view.setUint32(0, MESSAGE_INITIATION_TYPE, true);
    view.setUint32(INITIATION_OFFSET_SENDER, localIndex >>> 0, true);

    const [c] = kdf(1, CHAIN0, ephemeralPublic) as [Uint8Array];
    msg.set(ephemeralPublic, INITIATION_OFFSET_EPHEMERAL);
    let h = hash(this.initiatorHash0, ephemeralPublic);
    const [c1, k1] = kdf(2, c, es) as [Uint8Array, Uint8Array];
    const encryptedStatic = aeadSeal(k1, 0n, this.identity.publicKey, h);
    msg.set(encryptedStatic, INITIATION_OFFSET_STATIC);
    h = hash(h, encryptedStatic);
    const [c2, k2] = kdf(2, c1, this.staticStatic) as [Uint8Array, Uint8Array];
    const encryptedTimestamp = aeadSeal(k2, 0n, timestamp, h);
    msg.set(encryptedTimestamp, INITIATION_OFFSET_TIMESTAMP);
    h = hash(h, encryptedTimestamp);
    wipe(es, c, c1, k1, k2);

    this.abandonInitiation();
    this.pending = { localIndex: localIndex >>> 0, ephemeralPrivate, chainingKey: c2, hash: h };
    return { ok: true, value: msg };
  }

  /** Takes the response to our pending initiation: the initiator's transport keys. */
  consumeResponse(msg: Uint8Array): HandshakeResult<TransportKeys> {
    if (!isMessage(msg, MESSAGE_RESPONSE_TYPE, MESSAGE_RESPONSE_SIZE)) return fail("malformed");
    const pending = this.pending;
    if (pending === undefined) return fail("no-pending-handshake");
    const view = new DataView(msg.buffer, msg.byteOffset, msg.length);
    if (view.getUint32(RESPONSE_OFFSET_RECEIVER, true) !== pending.localIndex) return fail("wrong-receiver");
    const ephemeralPublic = msg.subarray(RESPONSE_OFFSET_EPHEMERAL, RESPONSE_OFFSET_EMPTY);

    let [c] = kdf(1, pending.chainingKey, ephemeralPublic) as [Uint8Array];
    let h = hash(pending.hash, ephemeralPublic);
    const ee = this.identity.x25519.sharedSecret(pending.ephemeralPrivate, ephemeralPublic);
    const se = this.identity.x25519.sharedSecret(this.identity.privateKey, ephemeralPublic);
    if (ee === null || se === null) return fail("low-order-key");
    [c] = kdf(1, c, ee) as [Uint8Array];
    [c] = kdf(1, c, se) as [Uint8Array];
    const [c3, tau, k] = kdf(3, c, this.presharedKey) as [Uint8Array, Uint8Array, Uint8Array];
    h = hash(h, tau);
    const empty = msg.subarray(RESPONSE_OFFSET_EMPTY, RESPONSE_OFFSET_MAC1);
    if (aeadOpen(k, 0n, empty, h) === null) {
      wipe(c, c3, tau, k, ee, se);
      return fail("decrypt-failed");
    }
    const [sendKey, recvKey] = kdf(2, c3, new Uint8Array(0)) as [Uint8Array, Uint8Array];
    wipe(c, c3, tau, k, ee, se, pending.ephemeralPrivate, pending.chainingKey);
    this.pending = undefined;
    return {
      ok: true,
      value: { localIndex: pending.localIndex, remoteIndex: view.getUint32(RESPONSE_OFFSET_SENDER, true), sendKey, recvKey, initiator: true },
    };
  }

  /** Forgets a pending initiation (given up, or superseded), wiping its ephemeral key. */
  abandonInitiation(): void {
    if (this.pending === undefined) return;
    wipe(this.pending.ephemeralPrivate, this.pending.chainingKey);
    this.pending = undefined;
  }

  /** Responder: whether a decrypted timestamp arriving at now may start a handshake, or why not. */
  admitInitiation(timestamp: Uint8Array, now: number): HandshakeFailure | undefined {
    if (!tai64nAfter(timestamp, this.latestTimestamp)) return "replayed-timestamp";
    if (now - this.lastInitiationAt < HANDSHAKE_INITIATION_RATE) return "rate-limited";
    return undefined;
  }

  /** Responder: remembers an admitted initiation for the replay and rate-limit rules. */
  recordInitiation(timestamp: Uint8Array, now: number): void {
    this.latestTimestamp = timestamp.slice();
    this.lastInitiationAt = now;
  }

  /** DH(our static, their static), for consumeInitiation. */
  get staticStaticSecret(): Uint8Array {
    return this.staticStatic;
  }
}

/** What a responder keeps between consuming an initiation and writing the response. */
export interface ConsumedInitiation {
  peer: HandshakePeer;
  remoteIndex: number;
  remoteEphemeral: Uint8Array;
  chainingKey: Uint8Array;
  hash: Uint8Array;
}

/**
 * Responder: decrypts an initiation (mac1 already checked), finds the peer by its static key with
 * findPeer, and applies the replay and rate-limit rules at monotonic time now.
 */
export function consumeInitiation(
  identity: StaticIdentity,
  msg: Uint8Array,
  findPeer: (remoteStatic: Uint8Array) => HandshakePeer | undefined,
  now: number,
): HandshakeResult<ConsumedInitiation> {
  if (!isMessage(msg, MESSAGE_INITIATION_TYPE, MESSAGE_INITIATION_SIZE)) return fail("malformed");
  const view = new DataView(msg.buffer, msg.byteOffset, msg.length);
  const ephemeralPublic = msg.slice(INITIATION_OFFSET_EPHEMERAL, INITIATION_OFFSET_STATIC);

  const [c] = kdf(1, CHAIN0, ephemeralPublic) as [Uint8Array];
  let h = hash(identity.responderHash0, ephemeralPublic);
  const es = identity.x25519.sharedSecret(identity.privateKey, ephemeralPublic);
  if (es === null) return fail("low-order-key");
  const [c1, k1] = kdf(2, c, es) as [Uint8Array, Uint8Array];
  wipe(c, es);
  const encryptedStatic = msg.subarray(INITIATION_OFFSET_STATIC, INITIATION_OFFSET_TIMESTAMP);
  const remoteStatic = aeadOpen(k1, 0n, encryptedStatic, h);
  k1.fill(0);
  const peer = remoteStatic === null ? undefined : findPeer(remoteStatic);
  if (peer === undefined) {
    c1.fill(0);
    return fail(remoteStatic === null ? "decrypt-failed" : "unknown-peer");
  }
  h = hash(h, encryptedStatic);
  const [c2, k2] = kdf(2, c1, peer.staticStaticSecret) as [Uint8Array, Uint8Array];
  const encryptedTimestamp = msg.subarray(INITIATION_OFFSET_TIMESTAMP, INITIATION_OFFSET_MAC1);
  const timestamp = aeadOpen(k2, 0n, encryptedTimestamp, h);
  wipe(c1, k2);
  const refused = timestamp === null ? "decrypt-failed" : peer.admitInitiation(timestamp, now);
  if (refused !== undefined) {
    c2.fill(0);
    return fail(refused);
  }
  peer.recordInitiation(timestamp!, now);
  h = hash(h, encryptedTimestamp);
  return {
    ok: true,
    value: { peer, remoteIndex: view.getUint32(INITIATION_OFFSET_SENDER, true), remoteEphemeral: ephemeralPublic, chainingKey: c2, hash: h },
  };
}

/**
 * Responder: builds the response to a consumed initiation (mac1/mac2 left zero for the CookieJar)
 * and the responder's transport keys.
 */
export function createResponse(
  consumed: ConsumedInitiation,
  localIndex: number,
  ephemeralPrivate: Uint8Array,
): HandshakeResult<{ message: Uint8Array; keys: TransportKeys }> {
  const { peer } = consumed;
  const msg = new Uint8Array(MESSAGE_RESPONSE_SIZE);
  const view = new DataView(msg.buffer);
  view.setUint32(0, MESSAGE_RESPONSE_TYPE, true);
  view.setUint32(RESPONSE_OFFSET_SENDER, localIndex >>> 0, true);
  view.setUint32(RESPONSE_OFFSET_RECEIVER, consumed.remoteIndex >>> 0, true);
  const { x25519 } = peer.identity;
  const ephemeralPublic = x25519.publicKey(ephemeralPrivate);
  msg.set(ephemeralPublic, RESPONSE_OFFSET_EPHEMERAL);

  let [c] = kdf(1, consumed.chainingKey, ephemeralPublic) as [Uint8Array];
  let h = hash(consumed.hash, ephemeralPublic);
  const ee = x25519.sharedSecret(ephemeralPrivate, consumed.remoteEphemeral);
  const se = x25519.sharedSecret(ephemeralPrivate, peer.remoteStatic);
  if (ee === null || se === null) return fail("low-order-key");
  [c] = kdf(1, c, ee) as [Uint8Array];
  [c] = kdf(1, c, se) as [Uint8Array];
  const [c3, tau, k] = kdf(3, c, peer.presharedKey) as [Uint8Array, Uint8Array, Uint8Array];
  h = hash(h, tau);
  msg.set(aeadSeal(k, 0n, new Uint8Array(0), h), RESPONSE_OFFSET_EMPTY);
  // The responder's receive key is the initiator's send key: KDF2's first output.
  const [recvKey, sendKey] = kdf(2, c3, new Uint8Array(0)) as [Uint8Array, Uint8Array];
  wipe(c, c3, tau, k, ee, se, consumed.chainingKey, ephemeralPrivate);
  return {
    ok: true,
    value: { message: msg, keys: { localIndex: localIndex >>> 0, remoteIndex: consumed.remoteIndex, sendKey, recvKey, initiator: false } },
  };
}

/** Type field (a little-endian u32: the type byte and three zero reserved bytes) and exact size. */
function isMessage(msg: Uint8Array, type: number, size: number): boolean {
  return msg.length === size && msg[0] === type && msg[1] === 0 && msg[2] === 0 && msg[3] === 0;
}

function wipe(...secrets: Uint8Array[]): void {
  for (const s of secrets) s.fill(0);
}

