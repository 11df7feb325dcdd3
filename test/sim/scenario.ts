// Runs one scenario over many seeds and names the seed that failed, so a randomized run can be
// replayed exactly: each seed is drawn from the run's base seed (WARDLINE_SEED) and the scenario's
// name, and WARDLINE_SIM_SEED=<seed> runs that one seed alone.

import { Rng, SEED } from "../support/prng.js";

/** Which seeds a run uses, and whether it stops at the first failure. */
export interface SeedRunOptions {
  /** How many seeds (16 unless told); ignored when WARDLINE_SIM_SEED or `seeds` names them. */
  count?: number;
  /** Exactly these seeds. */
  seeds?: readonly number[];
  /** The base seed the seeds are drawn from; SEED unless told. */
  baseSeed?: number;
  /** Keep going after a failure, to collect every failing seed; false unless told. */
  all?: boolean;
}

/** One failed run. */
export interface SeedFailure {
  seed: number;
  error: unknown;
}

/** "0x" and eight hex digits. */
export function hexSeed(seed: number): string {
  return `0x${(seed >>> 0).toString(16).padStart(8, "0")}`;
}

/** The seeds a run of `name` uses: WARDLINE_SIM_SEED alone if set, else `seeds`, else `count` drawn from the base seed. */
export function seedsFor(name: string, options: SeedRunOptions = {}): number[] {
  const pinned = process.env.WARDLINE_SIM_SEED;
  if (pinned !== undefined && pinned.trim() !== "") {
    const seed = Number(pinned.trim());
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`WARDLINE_SIM_SEED must be an integer from 0 to 0xffffffff, got ${JSON.stringify(pinned)}`);
    return [seed];
  }
  if (options.seeds !== undefined) return [...options.seeds];
  const draw = new Rng(`scenario/${name}`, options.baseSeed ?? SEED);
  return Array.from({ length: options.count ?? 16 }, () => draw.u32());
}

/** Runs scenario(seed) for each seed; the failures (the first one only unless `all`), without throwing. */
export async function findFailingSeeds(
  name: string,
  scenario: (seed: number) => void | Promise<void>,
  options: SeedRunOptions = {},
): Promise<SeedFailure[]> {
  const failures: SeedFailure[] = [];
  for (const seed of seedsFor(name, options)) {
    try {
      await scenario(seed);
    } catch (error) {
      failures.push({ seed, error });
      if (options.all !== true) break;
    }
  }
  return failures;
}

/**
 * Runs scenario(seed) for each seed and throws on a failure, saying which seed and how to replay
 * it (the original error is the cause); prints the same to stderr, so it shows whatever the runner
 * does with the error.
 */
export async function runSeeds(name: string, scenario: (seed: number) => void | Promise<void>, options: SeedRunOptions = {}): Promise<void> {
  const seeds = seedsFor(name, options);
  const failures = await findFailingSeeds(name, scenario, { ...options, seeds });
  if (failures.length === 0) return;
  const list = failures.map((f) => hexSeed(f.seed)).join(", ");
  const first = failures[0]!;
  const reason = first.error instanceof Error ? first.error.message : String(first.error);
  const message =
    `scenario "${name}" failed for seed ${list} (${failures.length} of ${seeds.length} run); ` +
    `replay with WARDLINE_SIM_SEED=${hexSeed(first.seed)} (or the whole run with WARDLINE_SEED=${hexSeed(options.baseSeed ?? SEED)}): ${reason}`;
  console.error(message);
  throw new Error(message, { cause: first.error });
}

/**
 * The most of n independent trials, each lost with probability p, that are lost but for a chance
 * below `risk`: the smallest k with P(X > k) < risk, X ~ Binomial(n, p).
 */
export function binomialBound(n: number, p: number, risk: number): number {
  const pmf = [(1 - p) ** n];
  for (let k = 0; k < n; k++) pmf.push(pmf[k]! * ((n - k) / (k + 1)) * (p / (1 - p)));
  let k = n;
  let above = 0; // P(X > k)
  while (k > 0 && above + pmf[k]! < risk) above += pmf[k--]!;
  return k;
}
