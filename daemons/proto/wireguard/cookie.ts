// MAC1, MAC2 and cookies (whitepaper §5.4.4, §5.4.7): the DoS defence around the handshake.
//
// Every handshake message carries mac1 = MAC(HASH(LABEL_MAC1 ‖ receiver's static), message up to
// mac1), so a receiver drops junk without any Diffie-Hellman. Under load, a receiver also demands
// mac2 = MAC(cookie, message up to mac2), where cookie = MAC(secret, source address), and answers a
// message without a valid one with a cookie reply instead of a handshake. The secret changes every
// COOKIE_REFRESH_TIME; a cookie is used for that long after it arrives.

import {
  COOKIE_NONCE_SIZE, COOKIE_REFRESH_TIME, COOKIE_REPLY_OFFSET_COOKIE, COOKIE_REPLY_OFFSET_NONCE,
  COOKIE_REPLY_OFFSET_RECEIVER, INITIATION_OFFSET_MAC1, KEY_SIZE, LABEL_COOKIE, LABEL_MAC1, MAC_SIZE,
  MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_COOKIE_REPLY_TYPE, MESSAGE_INITIATION_SIZE, MESSAGE_INITIATION_TYPE,
  MESSAGE_RESPONSE_SIZE, MESSAGE_RESPONSE_TYPE, RESPONSE_OFFSET_MAC1,
} from "./constants.js";
import { bytesEqual, hash, mac, xaeadOpen, xaeadSeal } from "./crypto.js";

/** Where mac1 sits in a handshake message (mac2 follows it), or undefined for other messages. */
export function mac1Offset(message: Uint8Array): number | undefined {
  if (message.length === MESSAGE_INITIATION_SIZE && message[0] === MESSAGE_INITIATION_TYPE) return INITIATION_OFFSET_MAC1;
  if (message.length === MESSAGE_RESPONSE_SIZE && message[0] === MESSAGE_RESPONSE_TYPE) return RESPONSE_OFFSET_MAC1;
  return undefined;
}

/** The key a sender uses for mac1 towards a receiver with this static public key. */
export function mac1Key(staticPublic: Uint8Array): Uint8Array {
  return hash(LABEL_MAC1, staticPublic);
}

/** The key cookies for this static public key's owner are encrypted with. */
export function cookieKey(staticPublic: Uint8Array): Uint8Array {
  return hash(LABEL_COOKIE, staticPublic);
}

/**
 * The sender's side, one per remote peer: writes mac1 and mac2 into outgoing handshake messages and
 * takes the cookies the peer sends back.
 */
export class CookieJar {
  private readonly mac1KeyOfPeer: Uint8Array;
  private readonly cookieKeyOfPeer: Uint8Array;
  private lastMac1: Uint8Array | undefined;
  private cookie: Uint8Array | undefined;
  private cookieReceivedAt = 0;

  constructor(peerStaticPublic: Uint8Array) {
    this.mac1KeyOfPeer = mac1Key(peerStaticPublic);
    this.cookieKeyOfPeer = cookieKey(peerStaticPublic);
  }

  /** Fills mac1 (always) and mac2 (while a cookie is fresh, else zeros) of an outgoing message. */
  writeMacs(message: Uint8Array, now: number): void {
    const at = mac1Offset(message);
    if (at === undefined) throw new RangeError("writeMacs: not a handshake initiation or response");
    const mac1 = mac(this.mac1KeyOfPeer, message.subarray(0, at));
    message.set(mac1, at);
    this.lastMac1 = mac1;
    const fresh = this.cookie !== undefined && now - this.cookieReceivedAt < COOKIE_REFRESH_TIME;
    message.set(fresh ? mac(this.cookie!, message.subarray(0, at + MAC_SIZE)) : new Uint8Array(MAC_SIZE), at + MAC_SIZE);
  }

  /**
   * Takes a cookie reply to the last message this jar wrote macs for; false when it does not decrypt
   * (not for that message, or forged).
   */
  consumeReply(reply: Uint8Array, now: number): boolean {
    if (reply.length !== MESSAGE_COOKIE_REPLY_SIZE || reply[0] !== MESSAGE_COOKIE_REPLY_TYPE || this.lastMac1 === undefined) return false;
    const cookie = xaeadOpen(
      this.cookieKeyOfPeer,
      reply.subarray(COOKIE_REPLY_OFFSET_NONCE, COOKIE_REPLY_OFFSET_COOKIE),
      reply.subarray(COOKIE_REPLY_OFFSET_COOKIE),
      this.lastMac1,
    );
    if (cookie === null) return false;
    this.cookie = cookie;
    this.cookieReceivedAt = now;
    return true;
  }
}

/** What a receiver concludes from a handshake message's macs. */
export type MacVerdict = "ok" | "bad-mac1" | "needs-cookie";

/**
 * The receiver's side, one per local identity: checks mac1 and, under load, mac2, and writes cookie
 * replies. Randomness for the rotating secret is passed in.
 */
export class CookieChecker {
  private readonly mac1KeyOfSelf: Uint8Array;
  private readonly cookieKeyOfSelf: Uint8Array;
  private secret: Uint8Array = new Uint8Array(KEY_SIZE);
  private secretSetAt = Number.NEGATIVE_INFINITY;

  constructor(
    selfStaticPublic: Uint8Array,
    private readonly random: (length: number) => Uint8Array,
  ) {
    this.mac1KeyOfSelf = mac1Key(selfStaticPublic);
    this.cookieKeyOfSelf = cookieKey(selfStaticPublic);
  }

  /**
   * Checks a handshake message from source (its address and port, as bytes). underLoad is the
   * caller's judgement of whether to demand a cookie.
   */
  check(message: Uint8Array, source: Uint8Array, underLoad: boolean, now: number): MacVerdict {
    const at = mac1Offset(message);
    if (at === undefined) return "bad-mac1";
    if (!bytesEqual(mac(this.mac1KeyOfSelf, message.subarray(0, at)), message.subarray(at, at + MAC_SIZE))) return "bad-mac1";
    if (!underLoad) return "ok";
    const expected = mac(this.cookieFor(source, now), message.subarray(0, at + MAC_SIZE));
    return bytesEqual(expected, message.subarray(at + MAC_SIZE, at + 2 * MAC_SIZE)) ? "ok" : "needs-cookie";
  }

  /** A cookie reply to message (whose mac1 already verified), for the sender index it carried. */
  createReply(message: Uint8Array, source: Uint8Array, now: number): Uint8Array {
    const at = mac1Offset(message);
    if (at === undefined) throw new RangeError("createReply: not a handshake initiation or response");
    const reply = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
    const view = new DataView(reply.buffer);
    view.setUint32(0, MESSAGE_COOKIE_REPLY_TYPE, true);
    // The receiver of the reply is the sender of the message: its sender index sits right after the type.
    view.setUint32(COOKIE_REPLY_OFFSET_RECEIVER, new DataView(message.buffer, message.byteOffset).getUint32(4, true), true);
    const nonce = this.random(COOKIE_NONCE_SIZE);
    reply.set(nonce, COOKIE_REPLY_OFFSET_NONCE);
    reply.set(xaeadSeal(this.cookieKeyOfSelf, nonce, this.cookieFor(source, now), message.subarray(at, at + MAC_SIZE)), COOKIE_REPLY_OFFSET_COOKIE);
    return reply;
  }

  private cookieFor(source: Uint8Array, now: number): Uint8Array {
    if (now - this.secretSetAt >= COOKIE_REFRESH_TIME) {
      this.secret = this.random(KEY_SIZE);
      this.secretSetAt = now;
    }
    return mac(this.secret, source);
  }
}
