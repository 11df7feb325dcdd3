// ChaCha20-Poly1305 AEAD (RFC 8439 §2.8) and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha §2.3).
//
// 1. One four-block pass at counter 0 yields the Poly1305 one-time key (block 0) and the keystream
//    for the first 192 bytes of data (blocks 1-3), so a small packet costs a single pass.
// 2. Seal: encrypt in place, then MAC (AAD ‖ pad ‖ ciphertext ‖ pad ‖ len(AAD) ‖ len(ciphertext)).
// 3. Open: MAC the ciphertext first and compare tags in constant time; decrypt only if they match,
//    so a forged packet leaves memory untouched.

import { chacha20Blocks4, chacha20Xor, hchacha20, xorBytes } from "./chacha20";
import { poly1305Blocks, poly1305Finish, poly1305Init, poly1305Wipe, POLY_STATE_SIZE, tagsEqual } from "./poly1305";

// Scratch set by the memory layout: 256 bytes of first-pass keystream, the Poly1305 state, a 16-byte
// padding/length block, a computed tag, and a 32-byte XChaCha subkey.
let firstPass: usize = 0;
let polyState: usize = 0;
let padBlock: usize = 0;
let computedTag: usize = 0;
let subkey: usize = 0;

export const AEAD_SCRATCH_SIZE: usize = 256 + POLY_STATE_SIZE + 16 + 16 + 32;

export function setAeadScratch(ptr: usize): void {
  firstPass = ptr;
  polyState = ptr + 256;
  padBlock = polyState + POLY_STATE_SIZE;
  computedTag = padBlock + 16;
  subkey = computedTag + 16;
}

/** Absorbs len bytes as full blocks plus one zero-padded block (the AEAD's pad16). */
function macPadded(data: usize, len: usize): void {
  const full = len >>> 4;
  if (full > 0) poly1305Blocks(polyState, data, full, 1 << 24);
  const rest = len & 15;
  if (rest > 0) {
    v128.store(padBlock, i32x4.splat(0));
    memory.copy(padBlock, data + (full << 4), rest);
    poly1305Blocks(polyState, padBlock, 1, 1 << 24);
  }
}

/** Runs the first pass and computes the tag over aad and the ciphertext at ct into computedTag. */
function macCiphertext(aad: usize, aadLen: usize, ct: usize, len: usize): void {
  poly1305Init(polyState, firstPass);
  macPadded(aad, aadLen);
  macPadded(ct, len);
  store<u64>(padBlock, <u64>aadLen, 0);
  store<u64>(padBlock, <u64>len, 8);
  poly1305Blocks(polyState, padBlock, 1, 1 << 24);
  poly1305Finish(polyState, computedTag);
  poly1305Wipe(polyState);
}

/** XORs the data with the keystream from counter 1 on, reusing blocks 1-3 of the first pass. */
function cryptFromFirstPass(key: usize, n0: u32, n1: u32, n2: u32, data: usize, len: usize): void {
  const head = len < 192 ? len : 192;
  xorBytes(data, data, firstPass + 64, head);
  if (len > 192) chacha20Xor(key, 4, n0, n1, n2, data + 192, data + 192, len - 192);
}

/** Encrypts len bytes at data in place and writes the 16-byte tag at tag. */
export function aeadSeal(key: usize, n0: u32, n1: u32, n2: u32, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): void {
  chacha20Blocks4(key, 0, n0, n1, n2, 0, firstPass);
  cryptFromFirstPass(key, n0, n1, n2, data, len);
  macCiphertext(aad, aadLen, data, len);
  memory.copy(tag, computedTag, 16);
  memory.fill(firstPass, 0, 256);
}

/** Verifies the tag and, only if it matches, decrypts len bytes at data in place. */
export function aeadOpen(key: usize, n0: u32, n1: u32, n2: u32, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): bool {
  chacha20Blocks4(key, 0, n0, n1, n2, 0, firstPass);
  macCiphertext(aad, aadLen, data, len);
  const ok = tagsEqual(computedTag, tag);
  if (ok) cryptFromFirstPass(key, n0, n1, n2, data, len);
  memory.fill(firstPass, 0, 256);
  return ok;
}

/** XChaCha20-Poly1305 seal: HChaCha20 subkey from the first 16 nonce bytes, then the RFC 8439 AEAD. */
export function xaeadSeal(key: usize, nonce: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): void {
  hchacha20(key, nonce, subkey);
  aeadSeal(subkey, 0, load<u32>(nonce, 16), load<u32>(nonce, 20), aad, aadLen, data, len, tag);
  memory.fill(subkey, 0, 32);
}

/** XChaCha20-Poly1305 open; see xaeadSeal. */
export function xaeadOpen(key: usize, nonce: usize, aad: usize, aadLen: usize, data: usize, len: usize, tag: usize): bool {
  hchacha20(key, nonce, subkey);
  const ok = aeadOpen(subkey, 0, load<u32>(nonce, 16), load<u32>(nonce, 20), aad, aadLen, data, len, tag);
  memory.fill(subkey, 0, 32);
  return ok;
}
