// The handshake suite runs end to end and reports what it claims: every figure a positive rate, every
// ratio the quotient of its two figures. Speed itself is measured by the suite, not asserted here.

import { describe, expect, it } from "vitest";
import { handshakeSuite } from "./handshake.js";

describe("bench handshake", () => {
  it("reports positive rates and consistent ratios", async () => {
    const report = await handshakeSuite.run({ quick: true, build: "release", command: "test", budget: { warmupMs: 5, sampleMs: 5, samples: 2 } });
    expect(report.figures.map((f) => f.id).sort()).toEqual(["handshake/node", "handshake/precomputed", "handshake/rebuilt", "x25519/noble", "x25519/node"]);
    for (const f of report.figures) expect(f.opsPerSec.median, f.id).toBeGreaterThan(0);
    for (const r of report.ratios) {
      const rate = (id: string) => report.figures.find((f) => f.id === id)!.opsPerSec.median;
      expect(r.ratio).toBeCloseTo(rate(r.ours) / rate(r.anchor), 10);
    }
    expect(JSON.parse(JSON.stringify(report)).suite).toBe("handshake");
    expect(handshakeSuite.tables(report).length).toBe(3);
  });
});
