// Byte helpers shared by the engine tests: hex in and out, and a comparison that reports the first
// differing byte instead of dumping two 64 KiB arrays.

import { expect } from "vitest";

/** Decodes hex; spaces, newlines and colons (as the RFCs print bytes) are ignored. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/[\s:]/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${text.slice(0, 40)}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Index of the first byte where a and b differ (a length mismatch counts), or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Asserts two byte strings are equal, naming the first difference and the context on failure. */
export function expectBytes(actual: Uint8Array | null | undefined, expected: Uint8Array, context: string): void {
  expect(actual, `${context}: got null/undefined`).toBeInstanceOf(Uint8Array);
  const a = actual!;
  const at = firstDifference(a, expected);
  const detail = at < 0 ? "" :
    `${context}: lengths ${a.length} vs ${expected.length}, first difference at byte ${at}: ` +
    `${toHex(a.subarray(at, at + 16))} vs ${toHex(expected.subarray(at, at + 16))}`;
  expect(at, detail).toBe(-1);
}
