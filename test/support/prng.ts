// Seeded randomness for differential and property tests (STYLE.md §6): every random input comes from
// here, so a failure is replayed exactly with WARDLINE_SEED=<seed> npx vitest run <file>.
//
// One base seed per test file (WARDLINE_SEED, decimal or 0x-hex, else random); each test derives its
// own stream from the base seed and a label, so tests stay reproducible whatever order they run in.

import type { TestContext } from "vitest";

function parseSeed(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return (Math.random() * 2 ** 32) >>> 0;
  const value = Number(raw.trim());
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`WARDLINE_SEED must be an integer from 0 to 0xffffffff, got ${JSON.stringify(raw)}`);
  }
  return value >>> 0;
}

/** The base seed of this run. */
export const SEED: number = parseSeed(process.env.WARDLINE_SEED);

const seedText = `WARDLINE_SEED=0x${SEED.toString(16).padStart(8, "0")}`;

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** xoshiro128** (Blackman and Vigna), seeded through splitmix32. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly label: string, seed: number = SEED) {
    const next = splitmix32(seed ^ fnv1a(label));
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform integer in [lo, hi] (inclusive), for spans below 2^32. */
  int(lo: number, hi: number): number {
    const span = hi - lo + 1;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || span <= 0 || span > 2 ** 32) {
      throw new Error(`Rng.int: bad range ${lo}..${hi}`);
    }
    // Rejection sampling keeps the distribution exact.
    const limit = Math.floor(2 ** 32 / span) * span;
    let x = this.u32();
    while (x >= limit) x = this.u32();
    return lo + (x % span);
  }

  /** Uniform 64-bit unsigned integer. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  /** Uniform bigint in [lo, hi] (inclusive). */
  bigint(lo: bigint, hi: bigint): bigint {
    const span = hi - lo + 1n;
    if (span <= 0n) throw new Error(`Rng.bigint: bad range ${lo}..${hi}`);
    if (span <= 2n ** 32n) return lo + BigInt(this.int(0, Number(span - 1n)));
    let bits = 0n;
    for (let s = span - 1n; s > 0n; s >>= 1n) bits++;
    for (;;) {
      let x = 0n;
      for (let have = 0n; have < bits; have += 32n) x = (x << 32n) | BigInt(this.u32());
      x &= (1n << bits) - 1n;
      if (x < span) return lo + x;
    }
  }

  bool(probability = 0.5): boolean {
    return this.u32() < probability * 2 ** 32;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) {
      const x = this.u32();
      out[i] = x;
      out[i + 1] = x >>> 8;
      out[i + 2] = x >>> 16;
      out[i + 3] = x >>> 24;
    }
    for (; i < length; i++) out[i] = this.u32();
    return out;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.pick: empty list");
    return items[this.int(0, items.length - 1)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** Context for an assertion message: how to replay this run, and what was being checked. */
  where(detail = ""): string {
    return `[${seedText} ${this.label}${detail ? ` ${detail}` : ""}]`;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Register with beforeEach: prints how to replay the run when a test fails. */
export function reportSeedOnFailure(ctx: TestContext): void {
  if (ctx.task.fails) return; // an expected failure (it.fails) is not news
  ctx.onTestFailed(() => {
    console.error(`"${ctx.task.name}" failed; replay with ${seedText}`);
  });
}

/** A random stream for one test, derived from the run's seed and the label. */
export function rng(label: string): Rng {
  return new Rng(label);
}
