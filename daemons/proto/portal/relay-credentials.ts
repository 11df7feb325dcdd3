// TURN credentials for the relays the portal hands out. A relay authenticates to the portal with its
// relay token; the portal stores only SHA-256 of the token's secret. Both sides derive the relay's
// TURN shared secret from that hash, so the relay needs no second secret and the portal never stores
// one: the relay hashes the secret it holds, the portal reads the hash it stored.
//
//   turn secret = hex(HMAC-SHA256(key = hex(SHA-256(token secret)), "wardline turn v1"))
//
// Credentials under it are the TURN REST API scheme our relay and coturn check (../stun/credentials.ts).

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { mintCredentials, type TurnCredentials } from "../stun/credentials.js";

const utf8 = new TextEncoder();
const LABEL = utf8.encode("wardline turn v1");

/** The relay's TURN secret from the stored hash of its token's secret (the portal's side). */
export function relayTurnSecret(tokenSecretHashHex: string): string {
  return bytesToHex(hmac(sha256, utf8.encode(tokenSecretHashHex), LABEL));
}

/** The same secret from the token's secret itself (the relay's side). */
export function relayTurnSecretFromTokenSecret(tokenSecret: string): string {
  return relayTurnSecret(bytesToHex(sha256(utf8.encode(tokenSecret))));
}

/** Credentials on a relay for one device, until expiresAtUnix. */
export function relayCredentials(turnSecret: string, deviceId: string, expiresAtUnix: number): TurnCredentials {
  return mintCredentials(turnSecret, deviceId, expiresAtUnix);
}

/** The password a relay expects for a username under its TURN secret (what it checks credentials with). */
export { passwordFor as turnPassword } from "../stun/credentials.js";
