// Password hashes: argon2id (RFC 9106) at OWASP's minimum (19 MiB, 2 passes, 1 lane), stored as a PHC
// string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (unpadded standard base64, as the reference
// implementation writes it). A hash carries its own parameters, so raising the cost later leaves old
// hashes verifiable. Hashing runs in @noble/hashes' async variant, which yields to the event loop.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { argon2idAsync } from "@noble/hashes/argon2.js";

export interface Argon2Params {
  /** Memory in KiB. */
  m: number;
  /** Passes over memory. */
  t: number;
  /** Lanes. */
  p: number;
}

/** OWASP Password Storage Cheat Sheet, argon2id option 2. */
export const OWASP_ARGON2ID: Argon2Params = { m: 19456, t: 2, p: 1 };
const ARGON2_VERSION = 0x13;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Longest password hashed: argon2 takes up to 2^32 bytes, a request body should not make us try. */
export const PASSWORD_MAX_BYTES = 1024;
/** Bounds on parameters read back from a stored hash, so a planted hash cannot exhaust memory. */
const LIMITS = { m: [8, 1 << 20], t: [1, 16], p: [1, 16] } as const;

export interface PhcArgon2id {
  params: Argon2Params;
  salt: Uint8Array;
  hash: Uint8Array;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64").replace(/=+$/, "");

function unb64(text: string): Uint8Array | undefined {
  // Unpadded standard base64 only: a trailing "=" or a URL-safe alphabet is another encoder's string.
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, "base64");
  return b64(bytes) === text ? new Uint8Array(bytes) : undefined;
}

/** The PHC string of an argon2id hash. */
export function encodePhc(phc: PhcArgon2id): string {
  const { m, t, p } = phc.params;
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${b64(phc.salt)}$${b64(phc.hash)}`;
}

/** The parts of an argon2id v19 PHC string, or undefined when it is anything else. */
export function decodePhc(text: string): PhcArgon2id | undefined {
  const match = /^\$argon2id\$v=19\$m=([1-9]\d{0,9}),t=([1-9]\d{0,9}),p=([1-9]\d{0,9})\$([^$]+)\$([^$]+)$/.exec(text);
  if (match === null) return undefined;
  const params = { m: Number(match[1]), t: Number(match[2]), p: Number(match[3]) };
  for (const key of ["m", "t", "p"] as const) {
    if (params[key] < LIMITS[key][0] || params[key] > LIMITS[key][1]) return undefined;
  }
  if (params.m < 8 * params.p) return undefined;
  const salt = unb64(match[4]!);
  const hash = unb64(match[5]!);
  if (salt === undefined || hash === undefined || salt.length < 8 || salt.length > 64 || hash.length < 16 || hash.length > 64) return undefined;
  return { params, salt, hash };
}

const derive = (password: string, salt: Uint8Array, params: Argon2Params, dkLen: number): Promise<Uint8Array> =>
  argon2idAsync(new TextEncoder().encode(password), salt, { ...params, dkLen, version: ARGON2_VERSION, maxmem: (LIMITS.m[1] + 1) * 1024 });

/** A fresh salted argon2id hash of `password`, as a PHC string. */
export async function hashPassword(password: string, params: Argon2Params = OWASP_ARGON2ID): Promise<string> {
  if (Buffer.byteLength(password) > PASSWORD_MAX_BYTES) throw new RangeError(`a password is at most ${PASSWORD_MAX_BYTES} bytes`);
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  return encodePhc({ params, salt, hash: await derive(password, salt, params, HASH_BYTES) });
}

/** Whether `password` matches the PHC string `stored`; false for a malformed or foreign string. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const phc = decodePhc(stored);
  if (phc === undefined || Buffer.byteLength(password) > PASSWORD_MAX_BYTES) return false;
  const computed = await derive(password, phc.salt, phc.params, phc.hash.length);
  return timingSafeEqual(computed, phc.hash);
}

let dummy: Promise<string> | undefined;

/**
 * Spends what verifying a real password costs and answers false: for a sign-in whose email matches
 * nobody, so the time taken does not tell an attacker which emails have accounts.
 */
export async function verifyNothing(password: string): Promise<false> {
  dummy ??= hashPassword("wardline: no such actor");
  await verifyPassword(password.slice(0, PASSWORD_MAX_BYTES), await dummy);
  return false;
}
