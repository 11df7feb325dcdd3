// Time-limited TURN credentials from a shared secret: the "TURN REST API" scheme
// (draft-uberti-behave-turn-rest-00) that coturn serves with `use-auth-secret` and
// `static-auth-secret`. The portal mints them; the relay checks them with the same secret and no
// per-user state:
//
//   username = "<expiry, Unix seconds>:<id>"
//   password = base64(HMAC-SHA1(secret, username))
//
// The STUN long-term key is then MD5(username ":" realm ":" password) as for any user (integrity.ts).
// coturn reads the timestamp before the first ":" and accepts it while timestamp >= now
// (`!turn_time_before(ts, ctime)` in get_user_key, src/apps/relay/userdb.c); checkUsername agrees,
// so a credential is still good during the second it expires in.

import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { encodeBase64 } from "../wireguard/base64.js";
import { USERNAME_MAX_ENCODE_BYTES } from "./constants.js";

export interface TurnCredentials {
  username: string;
  password: string;
}

const utf8 = new TextEncoder();
const SEPARATOR = ":";
/** Expiry timestamps are plain decimal seconds: no sign, no leading zeros, at most 2^53 - 1. */
const TIMESTAMP = /^(?:0|[1-9][0-9]{0,15})$/;

const secretBytes = (secret: string | Uint8Array): Uint8Array => (typeof secret === "string" ? utf8.encode(secret) : secret);

/** The password of a username under a shared secret: base64(HMAC-SHA1(secret, username)). */
export function passwordFor(secret: string | Uint8Array, username: string): string {
  return encodeBase64(hmac(sha1, secretBytes(secret), utf8.encode(username)));
}

/** Credentials for id that expire at expiresAtUnix (seconds); throws on an id or time that cannot be one. */
export function mintCredentials(secret: string | Uint8Array, id: string, expiresAtUnix: number): TurnCredentials {
  if (!Number.isSafeInteger(expiresAtUnix) || expiresAtUnix < 0) throw new RangeError(`expiry ${expiresAtUnix} is not a Unix time in seconds`);
  if (id.length === 0) throw new RangeError("credential id is empty");
  const username = `${expiresAtUnix}${SEPARATOR}${id}`;
  if (utf8.encode(username).length > USERNAME_MAX_ENCODE_BYTES) throw new RangeError(`username of over ${USERNAME_MAX_ENCODE_BYTES} bytes`);
  return { username, password: passwordFor(secret, username) };
}

export type UsernameCheck =
  | { ok: true; expiresAtUnix: number; id: string }
  | { ok: false; reason: "malformed" | "expired"; detail: string };

/**
 * Reads a REST API username and refuses it when malformed (no ":", a timestamp that is not plain
 * decimal, an empty id) or expired (its timestamp before nowUnix). The password still has to be
 * checked, through MESSAGE-INTEGRITY with the key from passwordFor.
 */
export function checkUsername(username: string, nowUnix: number): UsernameCheck {
  const separator = username.indexOf(SEPARATOR);
  if (separator < 0) return { ok: false, reason: "malformed", detail: "no ':' between expiry and id" };
  const timestamp = username.slice(0, separator);
  const id = username.slice(separator + 1);
  if (!TIMESTAMP.test(timestamp) || !Number.isSafeInteger(Number(timestamp))) {
    return { ok: false, reason: "malformed", detail: `expiry ${JSON.stringify(timestamp.slice(0, 24))} is not decimal seconds` };
  }
  if (id.length === 0) return { ok: false, reason: "malformed", detail: "empty id" };
  const expiresAtUnix = Number(timestamp);
  if (expiresAtUnix < nowUnix) return { ok: false, reason: "expired", detail: `expired at ${expiresAtUnix}, now ${nowUnix}` };
  return { ok: true, expiresAtUnix, id };
}
