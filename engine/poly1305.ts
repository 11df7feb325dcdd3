// Poly1305 (RFC 8439 §2.5): the accumulator h and the key r are held in five 26-bit limbs, so each
// product fits a u64 with room for the five-term sums (26 + 26 + 3 bits). WebAssembly has no 64x64→128
// multiply, which rules out the wider 44-bit limb layout.
//
// Long inputs take a four-lane path: lane k accumulates blocks k, k+4, k+8, ... multiplied by r^4 per
// step, and the last step multiplies the lanes by r^4, r^3, r^2, r before they are summed, which equals
// Horner's rule over the blocks in order. i64x2.extmul gives two 26x26-bit products per instruction.
//
// State lives in engine memory (POLY_STATE_SIZE bytes at the pointer the caller passes), so a MAC can
// be fed in several pieces: AAD, ciphertext, zero padding and the length block of the AEAD.

const MASK26: u32 = 0x3ffffff;

// State layout: r0..r4, s1..s4 (= r * 5), h0..h4, pad0..pad3, all u32.
const R0 = 0; const R1 = 4; const R2 = 8; const R3 = 12; const R4 = 16;
const S1 = 20; const S2 = 24; const S3 = 28; const S4 = 32;
const H0 = 36; const H1 = 40; const H2 = 44; const H3 = 48; const H4 = 52;
const PAD0 = 56; const PAD1 = 60; const PAD2 = 64; const PAD3 = 68;
// r^2, r^3, r^4 as five limbs each, filled when the four-lane path runs.
const RP2 = 72; const RP3 = 92; const RP4 = 112;
export const POLY_STATE_SIZE: usize = 132;

/** Below this many blocks the four-lane path's setup (three multiplications for r^2..r^4) costs more than it saves. */
const SIMD_MIN_BLOCKS: usize = 16;

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
  if (nblocks >= SIMD_MIN_BLOCKS) {
    const groups = nblocks >>> 2;
    blocksFourLane(st, m, groups, hibit);
    m += groups << 6;
    nblocks -= groups << 2;
  }
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

/** out = a * b mod 2^130 - 5 over five-limb operands (any limbs below 2^27), carried to 26-bit limbs. */
function mulLimbs(a: usize, b: usize, out: usize): void {
  const a0 = <u64>load<u32>(a, 0), a1 = <u64>load<u32>(a, 4), a2 = <u64>load<u32>(a, 8);
  const a3 = <u64>load<u32>(a, 12), a4 = <u64>load<u32>(a, 16);
  const b0 = <u64>load<u32>(b, 0), b1 = <u64>load<u32>(b, 4), b2 = <u64>load<u32>(b, 8);
  const b3 = <u64>load<u32>(b, 12), b4 = <u64>load<u32>(b, 16);
  const s1 = b1 * 5, s2 = b2 * 5, s3 = b3 * 5, s4 = b4 * 5;
  let d0 = a0 * b0 + a1 * s4 + a2 * s3 + a3 * s2 + a4 * s1;
  let d1 = a0 * b1 + a1 * b0 + a2 * s4 + a3 * s3 + a4 * s2;
  let d2 = a0 * b2 + a1 * b1 + a2 * b0 + a3 * s4 + a4 * s3;
  let d3 = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + a4 * s4;
  let d4 = a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0;
  const M: u64 = MASK26;
  d1 += d0 >>> 26; d0 &= M;
  d2 += d1 >>> 26; d1 &= M;
  d3 += d2 >>> 26; d2 &= M;
  d4 += d3 >>> 26; d3 &= M;
  d0 += (d4 >>> 26) * 5; d4 &= M;
  d1 += d0 >>> 26; d0 &= M;
  store<u32>(out, <u32>d0, 0); store<u32>(out, <u32>d1, 4); store<u32>(out, <u32>d2, 8);
  store<u32>(out, <u32>d3, 12); store<u32>(out, <u32>d4, 16);
}

@inline function lanes(st: usize, limb: usize): v128 {
  return i32x4(load<u32>(st + RP4 + limb), load<u32>(st + RP3 + limb), load<u32>(st + RP2 + limb), load<u32>(st + R0 + limb));
}

/** Absorbs groups * 4 blocks with four lanes, then folds the lanes back into the scalar h. */
function blocksFourLane(st: usize, m: usize, groups: usize, hibit: u32): void {
  mulLimbs(st + R0, st + R0, st + RP2);
  mulLimbs(st + RP2, st + R0, st + RP3);
  mulLimbs(st + RP2, st + RP2, st + RP4);
  const mask = i32x4.splat(MASK26);
  const m64 = i64x2.splat(MASK26);
  const hib = i32x4.splat(hibit);
  const five = i32x4.splat(5);
  // Multiplier for every step but the last: r^4 in all lanes (a = limbs, b = 5 * limbs).
  let a0 = i32x4.splat(load<u32>(st, RP4)), a1 = i32x4.splat(load<u32>(st, RP4 + 4));
  let a2 = i32x4.splat(load<u32>(st, RP4 + 8)), a3 = i32x4.splat(load<u32>(st, RP4 + 12));
  let a4 = i32x4.splat(load<u32>(st, RP4 + 16));
  let b1 = i32x4.mul(a1, five), b2 = i32x4.mul(a2, five), b3 = i32x4.mul(a3, five), b4 = i32x4.mul(a4, five);
  // The running h enters lane 0, in front of block 0.
  let h0 = i32x4.replace_lane(i32x4.splat(0), 0, load<u32>(st, H0));
  let h1 = i32x4.replace_lane(i32x4.splat(0), 0, load<u32>(st, H1));
  let h2 = i32x4.replace_lane(i32x4.splat(0), 0, load<u32>(st, H2));
  let h3 = i32x4.replace_lane(i32x4.splat(0), 0, load<u32>(st, H3));
  let h4 = i32x4.replace_lane(i32x4.splat(0), 0, load<u32>(st, H4));
  let c: v128;
  while (true) {
    // Four blocks, transposed so that lane k holds block k, split into 26-bit limbs and added.
    const w0 = v128.load(m, 0), w1 = v128.load(m, 16), w2 = v128.load(m, 32), w3 = v128.load(m, 48);
    const t0 = i32x4.shuffle(w0, w1, 0, 4, 1, 5), t1 = i32x4.shuffle(w2, w3, 0, 4, 1, 5);
    const t2 = i32x4.shuffle(w0, w1, 2, 6, 3, 7), t3 = i32x4.shuffle(w2, w3, 2, 6, 3, 7);
    const x0 = i64x2.shuffle(t0, t1, 0, 2), x1 = i64x2.shuffle(t0, t1, 1, 3);
    const x2 = i64x2.shuffle(t2, t3, 0, 2), x3 = i64x2.shuffle(t2, t3, 1, 3);
    h0 = i32x4.add(h0, v128.and(x0, mask));
    h1 = i32x4.add(h1, v128.and(v128.or(i32x4.shr_u(x0, 26), i32x4.shl(x1, 6)), mask));
    h2 = i32x4.add(h2, v128.and(v128.or(i32x4.shr_u(x1, 20), i32x4.shl(x2, 12)), mask));
    h3 = i32x4.add(h3, v128.and(v128.or(i32x4.shr_u(x2, 14), i32x4.shl(x3, 18)), mask));
    h4 = i32x4.add(h4, v128.or(i32x4.shr_u(x3, 8), hib));
    m += 64;
    groups--;
    if (groups == 0) {
      // Last step: lane k is multiplied by r^(4-k).
      a0 = lanes(st, 0); a1 = lanes(st, 4); a2 = lanes(st, 8); a3 = lanes(st, 12); a4 = lanes(st, 16);
      b1 = i32x4.mul(a1, five); b2 = i32x4.mul(a2, five); b3 = i32x4.mul(a3, five); b4 = i32x4.mul(a4, five);
    }
    let d0l = i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h0, a0), i64x2.extmul_low_i32x4_u(h1, b4)),
      i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h2, b3), i64x2.extmul_low_i32x4_u(h3, b2)), i64x2.extmul_low_i32x4_u(h4, b1)));
    let d1l = i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h0, a1), i64x2.extmul_low_i32x4_u(h1, a0)),
      i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h2, b4), i64x2.extmul_low_i32x4_u(h3, b3)), i64x2.extmul_low_i32x4_u(h4, b2)));
    let d2l = i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h0, a2), i64x2.extmul_low_i32x4_u(h1, a1)),
      i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h2, a0), i64x2.extmul_low_i32x4_u(h3, b4)), i64x2.extmul_low_i32x4_u(h4, b3)));
    let d3l = i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h0, a3), i64x2.extmul_low_i32x4_u(h1, a2)),
      i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h2, a1), i64x2.extmul_low_i32x4_u(h3, a0)), i64x2.extmul_low_i32x4_u(h4, b4)));
    let d4l = i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h0, a4), i64x2.extmul_low_i32x4_u(h1, a3)),
      i64x2.add(i64x2.add(i64x2.extmul_low_i32x4_u(h2, a2), i64x2.extmul_low_i32x4_u(h3, a1)), i64x2.extmul_low_i32x4_u(h4, a0)));
    let d0h = i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h0, a0), i64x2.extmul_high_i32x4_u(h1, b4)),
      i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h2, b3), i64x2.extmul_high_i32x4_u(h3, b2)), i64x2.extmul_high_i32x4_u(h4, b1)));
    let d1h = i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h0, a1), i64x2.extmul_high_i32x4_u(h1, a0)),
      i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h2, b4), i64x2.extmul_high_i32x4_u(h3, b3)), i64x2.extmul_high_i32x4_u(h4, b2)));
    let d2h = i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h0, a2), i64x2.extmul_high_i32x4_u(h1, a1)),
      i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h2, a0), i64x2.extmul_high_i32x4_u(h3, b4)), i64x2.extmul_high_i32x4_u(h4, b3)));
    let d3h = i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h0, a3), i64x2.extmul_high_i32x4_u(h1, a2)),
      i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h2, a1), i64x2.extmul_high_i32x4_u(h3, a0)), i64x2.extmul_high_i32x4_u(h4, b4)));
    let d4h = i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h0, a4), i64x2.extmul_high_i32x4_u(h1, a3)),
      i64x2.add(i64x2.add(i64x2.extmul_high_i32x4_u(h2, a2), i64x2.extmul_high_i32x4_u(h3, a1)), i64x2.extmul_high_i32x4_u(h4, a0)));
    c = i64x2.shr_u(d0l, 26); d0l = v128.and(d0l, m64); d1l = i64x2.add(d1l, c);
    c = i64x2.shr_u(d1l, 26); d1l = v128.and(d1l, m64); d2l = i64x2.add(d2l, c);
    c = i64x2.shr_u(d2l, 26); d2l = v128.and(d2l, m64); d3l = i64x2.add(d3l, c);
    c = i64x2.shr_u(d3l, 26); d3l = v128.and(d3l, m64); d4l = i64x2.add(d4l, c);
    c = i64x2.shr_u(d4l, 26); d4l = v128.and(d4l, m64); d0l = i64x2.add(d0l, i64x2.add(c, i64x2.shl(c, 2)));
    c = i64x2.shr_u(d0l, 26); d0l = v128.and(d0l, m64); d1l = i64x2.add(d1l, c);
    c = i64x2.shr_u(d0h, 26); d0h = v128.and(d0h, m64); d1h = i64x2.add(d1h, c);
    c = i64x2.shr_u(d1h, 26); d1h = v128.and(d1h, m64); d2h = i64x2.add(d2h, c);
    c = i64x2.shr_u(d2h, 26); d2h = v128.and(d2h, m64); d3h = i64x2.add(d3h, c);
    c = i64x2.shr_u(d3h, 26); d3h = v128.and(d3h, m64); d4h = i64x2.add(d4h, c);
    c = i64x2.shr_u(d4h, 26); d4h = v128.and(d4h, m64); d0h = i64x2.add(d0h, i64x2.add(c, i64x2.shl(c, 2)));
    c = i64x2.shr_u(d0h, 26); d0h = v128.and(d0h, m64); d1h = i64x2.add(d1h, c);
    h0 = i32x4.shuffle(d0l, d0h, 0, 2, 4, 6);
    h1 = i32x4.shuffle(d1l, d1h, 0, 2, 4, 6);
    h2 = i32x4.shuffle(d2l, d2h, 0, 2, 4, 6);
    h3 = i32x4.shuffle(d3l, d3h, 0, 2, 4, 6);
    h4 = i32x4.shuffle(d4l, d4h, 0, 2, 4, 6);
    if (groups == 0) break;
  }
  // Sum the lanes (each limb below 2^27, so four fit a u32) and carry back to 26-bit limbs.
  let s0 = i32x4.extract_lane(h0, 0) + i32x4.extract_lane(h0, 1) + i32x4.extract_lane(h0, 2) + i32x4.extract_lane(h0, 3);
  let s1 = i32x4.extract_lane(h1, 0) + i32x4.extract_lane(h1, 1) + i32x4.extract_lane(h1, 2) + i32x4.extract_lane(h1, 3);
  let s2 = i32x4.extract_lane(h2, 0) + i32x4.extract_lane(h2, 1) + i32x4.extract_lane(h2, 2) + i32x4.extract_lane(h2, 3);
  let s3 = i32x4.extract_lane(h3, 0) + i32x4.extract_lane(h3, 1) + i32x4.extract_lane(h3, 2) + i32x4.extract_lane(h3, 3);
  let s4 = i32x4.extract_lane(h4, 0) + i32x4.extract_lane(h4, 1) + i32x4.extract_lane(h4, 2) + i32x4.extract_lane(h4, 3);
  s1 += <u32>s0 >>> 26; s0 &= MASK26;
  s2 += <u32>s1 >>> 26; s1 &= MASK26;
  s3 += <u32>s2 >>> 26; s2 &= MASK26;
  s4 += <u32>s3 >>> 26; s3 &= MASK26;
  s0 += (<u32>s4 >>> 26) * 5; s4 &= MASK26;
  s1 += <u32>s0 >>> 26; s0 &= MASK26;
  store<u32>(st, s0, H0); store<u32>(st, s1, H1); store<u32>(st, s2, H2);
  store<u32>(st, s3, H3); store<u32>(st, s4, H4);
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
