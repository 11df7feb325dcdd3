// Standard base64 with padding (RFC 4648 §4), the form `wg` prints keys in. Written here rather
// than taken from Buffer or atob: daemons/proto runs without node:*, and atob accepts what a key
// file must not (missing padding, whitespace, non-zero trailing bits), so the same key could be
// spelled several ways.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PAD = "=";

/** Sextet value per char code, -1 for characters outside the alphabet. */
const SEXTET = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) SEXTET[ALPHABET.charCodeAt(i)] = i;

/** Encodes bytes as padded standard base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + PAD + PAD;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + PAD;
  }
  return out;
}

/**
 * Decodes padded standard base64, or returns undefined unless the text is the one canonical
 * encoding of its bytes: whole quads, alphabet characters only, padding only at the end, and zero
 * bits in the unused low bits of the last character.
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const padding = text.endsWith(PAD + PAD) ? 2 : text.endsWith(PAD) ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let at = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    // In the last quad the padded positions count as zero sextets; anywhere else "=" is refused below.
    const live = last ? 4 - padding : 4;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      let sextet = 0;
      if (j < live) {
        const code = text.charCodeAt(i + j);
        sextet = code < 128 ? SEXTET[code]! : -1;
        if (sextet < 0) return undefined;
      }
      n = (n << 6) | sextet;
    }
    if (live === 2 && (n & 0xffff) !== 0) return undefined;
    if (live === 3 && (n & 0xff) !== 0) return undefined;
    out[at++] = n >>> 16;
    if (live >= 3) out[at++] = (n >>> 8) & 0xff;
    if (live === 4) out[at++] = n & 0xff;
  }
  return out;
}
