// The relay suite's pure parts: the rate search, the step and CPU arithmetic, /proc/net/snmp, figures,
// ratios and targets. The suite itself needs root, namespaces and coturn; it is run by hand
// (`wardline bench relay`), not here.

import { describe, expect, it } from "vitest";
import {
  commonGoodRate, coturnArgs, cpuComparison, cpuSecondsPerMillion, figureId, LOSS_LIMIT, oursArgs, parseSnmpUdp, planRamp,
  relayFigure, relayRatios, relayTargets, stepFigures, type CpuReading, type RampPlan, type RampPoint, type RelayName,
  type RelayStep, type StepCounts,
} from "./relay.js";

const PLAN: RampPlan = { start: 20_000, factor: 2, precision: 1.1, max: 400_000, min: 1000, maxSteps: 20 };

/** Runs the search against a relay that carries everything up to capacity (and a generator that reaches reach). */
function search(capacity: number, reach = Number.POSITIVE_INFINITY, plan = PLAN): RampPoint[] {
  const steps: RampPoint[] = [];
  for (let rate = planRamp(steps, plan); rate !== undefined; rate = planRamp(steps, plan)) {
    steps.push({ rate, good: Math.min(rate, reach) <= capacity, generatorLimited: rate > reach });
  }
  return steps;
}

const bestGood = (steps: readonly RampPoint[]): number => Math.max(0, ...steps.filter((s) => s.good).map((s) => s.rate));

describe("planRamp", () => {
  it("starts at plan.start and grows by the factor while steps are good", () => {
    expect(planRamp([], PLAN)).toBe(20_000);
    expect(planRamp([{ rate: 20_000, good: true, generatorLimited: false }], PLAN)).toBe(40_000);
  });

  it("bisects geometrically between the best good rate and the lowest bad one above it", () => {
    const steps = [
      { rate: 20_000, good: true, generatorLimited: false },
      { rate: 40_000, good: true, generatorLimited: false },
      { rate: 80_000, good: false, generatorLimited: false },
    ];
    expect(planRamp(steps, PLAN)).toBe(Math.round(Math.sqrt(40_000 * 80_000)));
  });

  it("ends within the precision of a relay's capacity, never above it", () => {
    for (const capacity of [23_000, 55_555, 67_000, 138_000, 250_000]) {
      const steps = search(capacity);
      const best = bestGood(steps);
      expect(best).toBeLessThanOrEqual(capacity);
      expect(capacity / best).toBeLessThanOrEqual(PLAN.precision * PLAN.precision);
      const lowestBad = Math.min(...steps.filter((s) => !s.good && s.rate > best).map((s) => s.rate));
      expect(lowestBad / best).toBeLessThanOrEqual(PLAN.precision);
    }
  });

  it("shrinks from the start when the first rate is already too much, and gives up below min", () => {
    const steps = search(7000);
    expect(steps.slice(0, 3).map((s) => s.rate)).toEqual([20_000, 10_000, 5000]);
    expect(bestGood(steps)).toBeGreaterThan(5000);
    expect(search(100).every((s) => !s.good && s.rate >= PLAN.min)).toBe(true);
  });

  it("stops at a good step the generator could not deliver: that is the ceiling of the measurement", () => {
    const steps = search(1e9, 130_000);
    expect(steps.at(-1)).toEqual({ rate: 160_000, good: true, generatorLimited: true });
    expect(planRamp(steps, PLAN)).toBeUndefined();
  });

  it("never goes above max, and stops after maxSteps", () => {
    expect(search(1e9).at(-1)!.rate).toBe(PLAN.max);
    expect(search(55_555, Number.POSITIVE_INFINITY, { ...PLAN, maxSteps: 3 })).toHaveLength(3);
  });
});

describe("commonGoodRate", () => {
  it("is the highest rate both ramps tried and carried", () => {
    const a = [20, 40, 80].map((k, i) => ({ rate: k * 1000, good: i < 2, generatorLimited: false }));
    const b = [20, 40, 80, 160].map((k, i) => ({ rate: k * 1000, good: i < 3, generatorLimited: false }));
    expect(commonGoodRate(a, b)).toBe(40_000);
    expect(commonGoodRate(b, b)).toBe(80_000);
    expect(commonGoodRate(a, [{ rate: 20_000, good: false, generatorLimited: false }])).toBeUndefined();
  });
});

describe("CPU and counters", () => {
  it("cpuSecondsPerMillion divides by millions of packets, infinite for none", () => {
    expect(cpuSecondsPerMillion(1.5, 300_000)).toBeCloseTo(5);
    expect(cpuSecondsPerMillion(1, 0)).toBe(Number.POSITIVE_INFINITY);
  });

  it("parseSnmpUdp reads the Udp counters by name", () => {
    const snmp = [
      "Ip: Forwarding DefaultTTL InReceives",
      "Ip: 1 64 100",
      "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors",
      "Udp: 2662830 3 1583 2663100 1583 0 0 0 0",
      "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors",
      "UdpLite: 0 0 0 0 0 0 0 0 0",
    ].join("\n");
    expect(parseSnmpUdp(snmp)).toEqual({ inDatagrams: 2662830, rcvbufErrors: 1583, noPorts: 3 });
    expect(() => parseSnmpUdp("Ip: 1\n")).toThrow(/no Udp/);
  });
});

const reading = (machineBusy: number, relay: number, generator: number): CpuReading => ({ machine: { busy: machineBusy, total: machineBusy * 2 }, relay, generator });

function counts(sent: number, received: number, seconds = 2, peerReceived = received): StepCounts {
  return { step: 1, sent, peerReceived, received, sendSeconds: seconds, sendShort: 0 };
}

describe("stepFigures", () => {
  it("turns counts and readings into rates, loss and CPU seconds", () => {
    const s = stepFigures(50_000, 64, counts(100_000, 99_950, 2, 99_980), reading(1000, 500, 400), reading(1300, 590, 480), 2.3, 100, { relay: 20, load: 0 });
    expect(s.offeredPerSec).toBe(50_000);
    expect(s.messagesPerSec).toBeCloseTo(49_975);
    expect(s.relayedPacketsPerSec).toBeCloseTo((99_980 + 99_950) / 2);
    expect(s.loss).toBeCloseTo(0.0005);
    expect(s.good).toBe(true);
    expect(s.generatorLimited).toBe(false);
    expect([s.machineCpuSeconds, s.relayCpuSeconds, s.generatorCpuSeconds]).toEqual([3, 0.9, 0.8]);
    expect([s.relayNsDrops, s.loadNsDrops]).toEqual([20, 0]);
  });

  it("a loss over LOSS_LIMIT is bad; a rate the generator fell short of is marked", () => {
    const lossy = stepFigures(50_000, 64, counts(100_000, 100_000 * (1 - LOSS_LIMIT) - 1), reading(0, 0, 0), reading(0, 0, 0), 2, 100, { relay: 0, load: 0 });
    expect(lossy.good).toBe(false);
    const short = stepFigures(100_000, 64, counts(180_000, 180_000), reading(0, 0, 0), reading(0, 0, 0), 2, 100, { relay: 0, load: 0 });
    expect(short.good).toBe(true);
    expect(short.generatorLimited).toBe(true);
    const nothing = stepFigures(100_000, 64, counts(0, 0), reading(0, 0, 0), reading(0, 0, 0), 2, 100, { relay: 0, load: 0 });
    expect([nothing.good, nothing.loss]).toEqual([false, 1]);
  });
});

/** A step at rate carrying deliveredShare of it, with relayCpu seconds for the relay over 2 s. */
function step(size: number, rate: number, deliveredShare: number, relayCpu: number): RelayStep {
  const sent = rate * 2;
  const received = Math.round(sent * deliveredShare);
  return stepFigures(rate, size, counts(sent, received), reading(0, 0, 0), reading(relayCpu * 300, relayCpu * 100, 50), 2.3, 100, { relay: 0, load: 0 });
}

function ramp(relay: RelayName, size: number, capacity: number, cpuPerMillion: number): ReturnType<typeof relayFigure> {
  const steps = [20_000, 40_000, 80_000, 160_000].map((rate) => {
    const share = rate <= capacity ? 1 : capacity / rate;
    const packets = 2 * rate * 2 * share;
    return step(size, rate, share, (cpuPerMillion * packets) / 1e6);
  });
  return relayFigure(relay, size, steps);
}

describe("figures, ratios and targets", () => {
  it("a figure is the best good step, with the peak of any step beside it", () => {
    const f = ramp("coturn", 64, 100_000, 6);
    expect(f.id).toBe(figureId(64, "coturn"));
    expect(f.best?.rate).toBe(80_000);
    expect(f.opsPerSec.median).toBe(80_000);
    expect(f.peakMessagesPerSec).toBe(100_000);
    expect(f.mbitPerSecEachWay).toBeCloseTo((80_000 * 64 * 8) / 1e6);
    expect(f.relayCpuPerMillion).toBeCloseTo(6);
    expect(f.relayCores).toBeCloseTo((6 * 320_000) / 1e6 / 2);
  });

  it("over rounds: the best good step of any round, and the median CPU where a rate was carried more than once", () => {
    const round = (r: number, capacity: number, cpu: number): RelayStep[] => ramp("ours", 64, capacity, cpu).steps.map((s) => ({ ...s, round: r }));
    const ours = relayFigure("ours", 64, [...round(1, 50_000, 4), ...round(2, 90_000, 3), ...round(3, 90_000, 5)]);
    expect(ours.best?.round).toBe(2);
    expect(ours.opsPerSec.median).toBe(80_000);
    const coturn = ramp("coturn", 64, 90_000, 6);
    const cpu = cpuComparison(ours, coturn)!;
    expect(cpu.rate).toBe(80_000);
    expect(cpu.oursCpuPerMillion).toBeCloseTo(4);
    expect(cpu.ratio).toBeCloseTo(6 / 4);
  });

  it("a ramp with no good step has no best and an infinite CPU figure", () => {
    const f = relayFigure("ours", 1200, [step(1200, 20_000, 0.5, 1)]);
    expect(f.best).toBeNull();
    expect(f.relayCpuPerMillion).toBe(Number.POSITIVE_INFINITY);
  });

  it("ratios: messages/s ours ÷ anchor, CPU per packet anchor ÷ ours at the highest common good rate", () => {
    const figures = [ramp("ours", 64, 150_000, 4), ramp("coturn", 64, 70_000, 6), ramp("coturn-2t", 64, 95_000, 5)];
    const ratios = relayRatios(figures);
    const find = (op: string, anchor: RelayName): number => ratios.find((r) => r.op === op && r.anchor === figureId(64, anchor))!.ratio;
    expect(find("channel", "coturn")).toBeCloseTo(80_000 / 40_000);
    expect(find("channel", "coturn-2t")).toBeCloseTo(80_000 / 80_000);
    expect(find("channel/64/cpu-per-packet", "coturn")).toBeCloseTo(6 / 4);
    expect(cpuComparison(figures[0]!, figures[1]!)?.rate).toBe(40_000);
    expect(cpuComparison(figures[0]!, figures[2]!)?.rate).toBe(80_000);
    const targets = relayTargets(ratios);
    expect(targets).toHaveLength(4);
    expect(targets.every((t) => t.min === 1 && t.met)).toBe(true);
    const missed = relayTargets(relayRatios([ramp("ours", 64, 30_000, 7), ramp("coturn", 64, 70_000, 6)]));
    expect(missed.map((t) => t.met)).toEqual([false, false]);
  });
});

describe("command lines", () => {
  it("runs ours as the issue does, and coturn UDP-only with shared-secret credentials", () => {
    expect(oursArgs().slice(1).join(" ")).toBe(
      "relay --secret bench-relay-secret --realm wardline --listen4 198.18.0.1 --listen6 off --public-ip4 198.18.0.1 --port 3478 --ports 50000-59999 --max-allocations 1000 --http off",
    );
    const coturn = coturnArgs("/tmp/x", 0);
    expect(coturn).toEqual(expect.arrayContaining(["--use-auth-secret", "--static-auth-secret=bench-relay-secret", "--no-tcp", "--no-tls", "--no-dtls", "--no-cli", "--relay-threads=0", "--listening-ip=198.18.0.1", "--relay-ip=198.18.0.1"]));
    expect(coturnArgs("/tmp/x", 1)).toContain("--relay-threads=1");
  });
});
