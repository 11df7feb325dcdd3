// Poly1305 (RFC 8439 §2.5): the accumulator h and the key r are held in five 26-bit limbs, so each
// product fits a u64 with room for the five-term sums (26 + 26 + 3 bits). WebAssembly has no 64x64→128
// multiply, which rules out the wider 44-bit limb layout.
//
// State lives in engine memory (POLY_STATE_SIZE bytes at the pointer the caller passes), so a MAC can
// be fed in several pieces: AAD, ciphertext, zero padding and the length block of the AEAD.

const MASK26: u32 = 0x3ffffff;

// State layout: r0..r4, s1..s4 (= r * 5), h0..h4, pad0..pad3, all u32.
const R0 = 0; const R1 = 4; const R2 = 8; const R3 = 12; const R4 = 16;
const S1 = 20; const S2 = 24; const S3 = 28; const S4 = 32;
const H0 = 36; const H1 = 40; const H2 = 44; const H3 = 48; const H4 = 52;
const PAD0 = 56; const PAD1 = 60; const PAD2 = 64; const PAD3 = 68;
export const POLY_STATE_SIZE: usize = 72;

/** Loads the one-time key (r clamped as §2.5.1 requires, s kept for the final addition). */
export function poly1305Init(st: usize, key: usize): void {
  const r0 = load<u32>(key, 0) & 0x3ffffff;
  const r1 = (load<u32>(key, 3) >>> 2) & 0x3ffff03;
  const r2 = (load<u32>(key, 6) >>> 4) & 0x3ffc0ff;
  const r3 = (load<u32>(key, 9) >>> 6) & 0x3f03fff;
  const r4 = (load<u32>(key, 12) >>> 8) & 0x00fffff;
  store<u32>(st, r0, R0); store<u32>(st, r1, R1); store<u32>(st, r2, R2);
  store<u32>(st, r3, R3); store<u32>(st, r4, R4);
  store<u32>(st, r1 * 5, S1); store<u32>(st, r2 * 5, S2);
  store<u32>(st, r3 * 5, S3); store<u32>(st, r4 * 5, S4);
  store<u32>(st, 0, H0); store<u32>(st, 0, H1); store<u32>(st, 0, H2);
  store<u32>(st, 0, H3); store<u32>(st, 0, H4);
  store<u32>(st, load<u32>(key, 16), PAD0); store<u32>(st, load<u32>(key, 20), PAD1);
  store<u32>(st, load<u32>(key, 24), PAD2); store<u32>(st, load<u32>(key, 28), PAD3);
}

/**
 * Absorbs nblocks full 16-byte blocks from m. hibit is 1 << 24 for ordinary blocks (the appended 0x01
 * byte of §2.5.1) and 0 for a final partial block the caller has already padded.
 */
export function poly1305Blocks(st: usize, m: usize, nblocks: usize, hibit: u32): void {
  const r0 = <u64>load<u32>(st, R0), r1 = <u64>load<u32>(st, R1), r2 = <u64>load<u32>(st, R2);
  const r3 = <u64>load<u32>(st, R3), r4 = <u64>load<u32>(st, R4);
  const s1 = <u64>load<u32>(st, S1), s2 = <u64>load<u32>(st, S2);
  const s3 = <u64>load<u32>(st, S3), s4 = <u64>load<u32>(st, S4);
  let h0 = load<u32>(st, H0), h1 = load<u32>(st, H1), h2 = load<u32>(st, H2);
  let h3 = load<u32>(st, H3), h4 = load<u32>(st, H4);
  while (nblocks > 0) {
    h0 += load<u32>(m, 0) & MASK26;
    h1 += (load<u32>(m, 3) >>> 2) & MASK26;
    h2 += (load<u32>(m, 6) >>> 4) & MASK26;
    h3 += load<u32>(m, 9) >>> 6;
    h4 += (load<u32>(m, 12) >>> 8) | hibit;

    const g0 = <u64>h0, g1 = <u64>h1, g2 = <u64>h2, g3 = <u64>h3, g4 = <u64>h4;
    const d0 = g0 * r0 + g1 * s4 + g2 * s3 + g3 * s2 + g4 * s1;
    let d1 = g0 * r1 + g1 * r0 + g2 * s4 + g3 * s3 + g4 * s2;
    let d2 = g0 * r2 + g1 * r1 + g2 * r0 + g3 * s4 + g4 * s3;
    let d3 = g0 * r3 + g1 * r2 + g2 * r1 + g3 * r0 + g4 * s4;
    let d4 = g0 * r4 + g1 * r3 + g2 * r2 + g3 * r1 + g4 * r0;

    let c = <u32>(d0 >>> 26); h0 = <u32>d0 & MASK26;
    d1 += c; c = <u32>(d1 >>> 26); h1 = <u32>d1 & MASK26;
    d2 += c; c = <u32>(d2 >>> 26); h2 = <u32>d2 & MASK26;
    d3 += c; c = <u32>(d3 >>> 26); h3 = <u32>d3 & MASK26;
    d4 += c; c = <u32>(d4 >>> 26); h4 = <u32>d4 & MASK26;
    h0 += c * 5; c = h0 >>> 26; h0 &= MASK26;
    h1 += c;

    m += 16;
    nblocks--;
  }
  store<u32>(st, h0, H0); store<u32>(st, h1, H1); store<u32>(st, h2, H2);
  store<u32>(st, h3, H3); store<u32>(st, h4, H4);
}

/** Fully reduces h mod 2^130 - 5, adds s mod 2^128 and writes the 16-byte tag. */
export function poly1305Finish(st: usize, tag: usize): void {
  let h0 = load<u32>(st, H0), h1 = load<u32>(st, H1), h2 = load<u32>(st, H2);
  let h3 = load<u32>(st, H3), h4 = load<u32>(st, H4);

  let c = h1 >>> 26; h1 &= MASK26;
  h2 += c; c = h2 >>> 26; h2 &= MASK26;
  h3 += c; c = h3 >>> 26; h3 &= MASK26;
  h4 += c; c = h4 >>> 26; h4 &= MASK26;
  h0 += c * 5; c = h0 >>> 26; h0 &= MASK26;
  h1 += c;

  // g = h + 5 - 2^130; keep g when it did not go negative (h >= p), without branching.
  let g0 = h0 + 5; c = g0 >>> 26; g0 &= MASK26;
  let g1 = h1 + c; c = g1 >>> 26; g1 &= MASK26;
  let g2 = h2 + c; c = g2 >>> 26; g2 &= MASK26;
  let g3 = h3 + c; c = g3 >>> 26; g3 &= MASK26;
  const g4 = h4 + c - (1 << 26);
  const useG = (g4 >>> 31) - 1; // all ones when g4 is non-negative
  const useH = ~useG;
  h0 = (h0 & useH) | (g0 & useG);
  h1 = (h1 & useH) | (g1 & useG);
  h2 = (h2 & useH) | (g2 & useG);
  h3 = (h3 & useH) | (g3 & useG);
  h4 = (h4 & useH) | (g4 & useG);

  // Repack to four 32-bit words and add s.
  const w0 = h0 | (h1 << 26);
  const w1 = (h1 >>> 6) | (h2 << 20);
  const w2 = (h2 >>> 12) | (h3 << 14);
  const w3 = (h3 >>> 18) | (h4 << 8);
  let f = <u64>w0 + <u64>load<u32>(st, PAD0);
  store<u32>(tag, <u32>f, 0);
  f = <u64>w1 + <u64>load<u32>(st, PAD1) + (f >>> 32);
  store<u32>(tag, <u32>f, 4);
  f = <u64>w2 + <u64>load<u32>(st, PAD2) + (f >>> 32);
  store<u32>(tag, <u32>f, 8);
  f = <u64>w3 + <u64>load<u32>(st, PAD3) + (f >>> 32);
  store<u32>(tag, <u32>f, 12);
}

/** Wipes the key material and accumulator. */
export function poly1305Wipe(st: usize): void {
  memory.fill(st, 0, POLY_STATE_SIZE);
}

/** Constant-time comparison of two 16-byte tags: true when equal. */
export function tagsEqual(a: usize, b: usize): bool {
  const d = (load<u32>(a, 0) ^ load<u32>(b, 0)) | (load<u32>(a, 4) ^ load<u32>(b, 4)) |
    (load<u32>(a, 8) ^ load<u32>(b, 8)) | (load<u32>(a, 12) ^ load<u32>(b, 12));
  return d == 0;
}
