// The seed runner: seeds drawn from the base seed, the failing seed found and named, one seed
// pinned with WARDLINE_SIM_SEED, and a network scenario replayed from its seed alone.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { reportSeedOnFailure } from "../support/prng.js";
import { Network } from "./network.js";
import { addr, RecordingEndpoint } from "./node.js";
import { binomialBound, findFailingSeeds, hexSeed, runSeeds, seedsFor } from "./scenario.js";

beforeEach(reportSeedOnFailure);
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe("scenario seeds", () => {
  it("draws the same seeds from the same base seed, others from another", () => {
    vi.stubEnv("WARDLINE_SIM_SEED", "");
    const a = seedsFor("x", { count: 8, baseSeed: 1 });
    expect(seedsFor("x", { count: 8, baseSeed: 1 })).toEqual(a);
    expect(new Set(a).size).toBe(8);
    expect(seedsFor("x", { count: 8, baseSeed: 2 })).not.toEqual(a);
    expect(seedsFor("y", { count: 8, baseSeed: 1 })).not.toEqual(a);
    expect(seedsFor("x", { seeds: [5, 6] })).toEqual([5, 6]);
  });

  it("runs every seed of a passing scenario", async () => {
    vi.stubEnv("WARDLINE_SIM_SEED", "");
    const seen: number[] = [];
    await runSeeds("passes", (seed) => void seen.push(seed), { count: 5, baseSeed: 7 });
    expect(seen).toEqual(seedsFor("passes", { count: 5, baseSeed: 7 }));
  });

  it("finds the failing seed, names it and how to replay it", async () => {
    vi.stubEnv("WARDLINE_SIM_SEED", "");
    const seeds = [10, 11, 12, 13, 14, 15];
    const failsOnThrees = async (seed: number) => {
      await Promise.resolve();
      if (seed % 3 === 0) throw new Error(`bad seed ${seed}`);
    };
    expect((await findFailingSeeds("threes", failsOnThrees, { seeds })).map((f) => f.seed)).toEqual([12]);
    expect((await findFailingSeeds("threes", failsOnThrees, { seeds, all: true })).map((f) => f.seed)).toEqual([12, 15]);
    const printed = vi.spyOn(console, "error").mockImplementation(() => {});
    const error = await runSeeds("threes", failsOnThrees, { seeds, all: true }).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toContain(`failed for seed ${hexSeed(12)}, ${hexSeed(15)} (2 of 6 run)`);
    expect(error?.message).toContain(`WARDLINE_SIM_SEED=${hexSeed(12)}`);
    expect(error?.message).toContain("bad seed 12");
    expect((error?.cause as Error).message).toBe("bad seed 12");
    expect(printed).toHaveBeenCalledWith(error?.message);
  });

  it("runs only the pinned seed when WARDLINE_SIM_SEED is set", async () => {
    vi.stubEnv("WARDLINE_SIM_SEED", "0x2a");
    const seen: number[] = [];
    await runSeeds("pinned", (seed) => void seen.push(seed), { count: 9 });
    expect(seen).toEqual([42]);
    vi.stubEnv("WARDLINE_SIM_SEED", "nope");
    expect(() => seedsFor("pinned")).toThrow(/WARDLINE_SIM_SEED/);
  });

  it("a failing network scenario replays exactly from its seed", async () => {
    vi.stubEnv("WARDLINE_SIM_SEED", "");
    // Fails when any of 20 datagrams over a 10 % lossy link is lost: most seeds do.
    const traces = new Map<number, number>();
    const scenario = (seed: number) => {
      const net = new Network({ seed, label: "replay", internet: { loss: 0.1, jitter: 5 } });
      const sink = new RecordingEndpoint();
      const source = new RecordingEndpoint();
      net.addHost("a", "192.0.2.1").bind(source, 1);
      net.addHost("b", "192.0.2.2").bind(sink, 1);
      for (let i = 0; i < 20; i++) net.at(i, () => source.send(addr("192.0.2.2:1"), new Uint8Array([i])));
      net.run(1000);
      traces.set(seed, net.traceDigest);
      if (sink.received.length < 20) throw new Error(`${20 - sink.received.length} lost ${net.where()}`);
    };
    const [failure] = await findFailingSeeds("lossy", scenario, { count: 50, baseSeed: 3 });
    expect(failure).toBeDefined();
    const digest = traces.get(failure!.seed);
    expect(() => scenario(failure!.seed)).toThrow((failure!.error as Error).message);
    expect(traces.get(failure!.seed)).toBe(digest);
  });
});

describe("bounds on random loss", () => {
  it("bounds the lost pings by the binomial tail", () => {
    // P(X > 10) ≈ 0.41 < 0.5 ≤ P(X > 9) ≈ 0.59 for Binomial(20, 1/2); P(X > 7) ≈ 5.0e-7 < 1e-6 ≤ P(X > 6) ≈ 7.5e-6 for p = 3.96 %.
    expect(binomialBound(20, 0.5, 0.5)).toBe(10);
    expect(binomialBound(20, 1 - 0.98 ** 2, 1e-6)).toBe(7);
    expect(binomialBound(20, 0, 1e-6)).toBe(0);
    // The relayed scenario's: P(X > 13) < 1e-6 ≤ P(X > 12) for Binomial(40, 1 − 0.98⁴).
    expect(binomialBound(40, 1 - 0.98 ** 4, 1e-6)).toBe(13);
  });
});
