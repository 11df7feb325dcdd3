// Stateless nonces for the long-term credential mechanism (RFC 8489 §9.2). The server keeps no
// record of the nonces it hands out, so a flood of unauthenticated requests costs it no memory: a
// nonce names the epoch it was minted in and carries a MAC over that epoch and the client's
// transport address, under a key only this server process knows.
//
//   nonce = base64(epoch mod 256: u8 || HMAC-SHA256(key, epoch: u64 || client)[0..5])
//
// 6 bytes, 8 characters, so the 401 that carries it stays small enough to answer a client's first
// Allocate without sending more than it received (server.ts, Amplification). Why 40 bits of MAC
// are enough: the nonce sits inside the MESSAGE-INTEGRITY of every request that uses it, so without
// the key a forged nonce gets nowhere, and a captured request cannot have its nonce changed. What
// the MAC does stop is replaying a captured request from other (spoofed) addresses, or after its
// epoch: 2^40 spoofed datagrams per success. A nonce this short cannot start with RFC 8489's
// "obMatJos2" security feature cookie (§9.2), so clients read it as plain RFC 5389 style.

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { decodeBase64, encodeBase64 } from "../wireguard/base64.js";
import { NONCE_EPOCH_SECONDS, NONCE_MAC_SIZE } from "./constants.js";

/** Characters of a nonce: base64 of 6 bytes, no padding. */
export const NONCE_TEXT_LENGTH = 8;

const NONCE_SIZE = 1 + NONCE_MAC_SIZE;
const utf8 = new TextEncoder();

/** Issues and checks the nonces of one server process; see above. */
export class NonceMinter {
  constructor(
    private readonly key: Uint8Array,
    private readonly epochSeconds: number = NONCE_EPOCH_SECONDS,
  ) {}

  /** A nonce for client, good in the epoch of nowUnix and the next. */
  issue(nowUnix: number, client: string): string {
    const epoch = this.epochOf(nowUnix);
    const out = new Uint8Array(NONCE_SIZE);
    out[0] = epoch & 0xff;
    out.set(this.mac(epoch, client), 1);
    return encodeBase64(out);
  }

  /** Whether nonce is one this server issued to client in this epoch or the one before; never throws. */
  check(nonce: string, nowUnix: number, client: string): boolean {
    const bytes = nonce.length === NONCE_TEXT_LENGTH ? decodeBase64(nonce) : undefined;
    if (bytes === undefined || bytes.length !== NONCE_SIZE) return false;
    const now = this.epochOf(nowUnix);
    // The low byte says which of the two epochs it claims; the MAC proves it.
    const epoch = (now & 0xff) === bytes[0] ? now : ((now - 1) & 0xff) === bytes[0] ? now - 1 : undefined;
    if (epoch === undefined) return false;
    const expected = this.mac(epoch, client);
    let diff = 0;
    for (let i = 0; i < NONCE_MAC_SIZE; i++) diff |= expected[i]! ^ bytes[1 + i]!;
    return diff === 0;
  }

  private epochOf(nowUnix: number): number {
    return Math.floor(nowUnix / this.epochSeconds);
  }

  private mac(epoch: number, client: string): Uint8Array {
    const epochBytes = new Uint8Array(8);
    new DataView(epochBytes.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(epoch)));
    return hmac.create(sha256, this.key).update(epochBytes).update(utf8.encode(client)).digest().subarray(0, NONCE_MAC_SIZE);
  }
}
