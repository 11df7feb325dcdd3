// A device's WireGuard public key as the API takes it: standard base64 of 32 bytes, the form `wg`
// prints. Keys of small order are refused: a Diffie-Hellman with one gives a shared secret that does
// not depend on our private key (RFC 7748 §6.1), so such a peer would be no peer at all.

export const PUBLIC_KEY_BYTES = 32;

// The u-coordinates of Curve25519's points of small order, and the same values past the field
// prime p = 2^255 - 19 that reduce to them (the list libsodium refuses). X25519 ignores the top bit.
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

export type PublicKeyCheck = { ok: true; key: string } | { ok: false; code: "invalid" | "small_order"; message: string };

/** Whether `value` is a usable X25519 public key in canonical base64; the key as stored if so. */
export function checkPublicKey(value: unknown): PublicKeyCheck {
  // 43 characters carry 258 bits: the last one may only use its top 4 bits (canonical encoding), so
  // one key has exactly one text form and the unique index on it sees every duplicate.
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(value)) {
    return { ok: false, code: "invalid", message: `public_key must be the base64 of a ${PUBLIC_KEY_BYTES}-byte X25519 key, as \`wg pubkey\` prints it (44 characters ending in =)` };
  }
  const bytes = Buffer.from(value, "base64");
  bytes[31]! &= 0x7f;
  if (SMALL_ORDER.includes(bytes.toString("hex"))) return { ok: false, code: "small_order", message: "public_key is a point of small order, which no real key is" };
  return { ok: true, key: value };
}
