// The portal suite runs end to end with tiny populations and reports what it claims: the JSON shape,
// positive figures, percentiles in order, ratios computed from the figures against the targets. Speed
// is measured by the suite (`wardline bench portal`), not asserted here.

import { describe, expect, it } from "vitest";
import { requirePostgres } from "../test/support/postgres.js";
import { percentiles, portalSuite, runPortalBench, TARGETS, type PortalBenchParams, type PortalFigure } from "./portal.js";

const TINY: PortalBenchParams = { durationMs: 1500, warmupMs: 300, clients: 4, gateways: 2, resources: 3, depth: 2, users: 2, revocations: 2, devices: 20 };

describe("bench portal", () => {
  it("percentiles are nearest-rank", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(values)).toEqual({ count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
    expect(percentiles([7])).toEqual({ count: 1, p50: 7, p90: 7, p99: 7, max: 7 });
    expect(percentiles([]).count).toBe(0);
  });

  it("reports positive, consistent figures and target ratios", async (ctx) => {
    requirePostgres(ctx);
    const report = await runPortalBench({ quick: true, build: "release", command: "test" }, TINY);
    const parsed = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(parsed.suite).toBe("portal");
    const figures = report.figures as PortalFigure[];
    expect(figures.map((f) => f.id)).toEqual(["authorize", "revoke", "memory"]);

    const t = figures[0]!.throughput!;
    expect(t.authorizations).toBeGreaterThan(0);
    expect(t.failed).toBe(0);
    expect(t.perSecond).toBeCloseTo(t.authorizations / t.seconds, 6);
    expect(t.latencyMs.count).toBe(t.authorizations);
    expect(t.latencyMs.p50).toBeGreaterThan(0);
    expect(t.latencyMs.p50).toBeLessThanOrEqual(t.latencyMs.p99);
    expect(t.latencyMs.p99).toBeLessThanOrEqual(t.latencyMs.max);
    expect(t.concurrency).toBe(TINY.clients * TINY.depth);
    expect(t.cpu.portal).toBeGreaterThan(0);
    // Every authorization the clients saw was decided and recorded by the node.
    expect(t.node.decisions.allowed).toBeGreaterThanOrEqual(t.authorizations);
    expect(t.node.recordsWritten).toBeGreaterThanOrEqual(t.node.decisions.allowed);

    const r = figures[1]!.revocation!;
    expect(r.latencyMs.count).toBe(TINY.revocations);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p99);
    // The same number of rounds across nodes: the DELETE to node A, the client and gateway on node B.
    expect(parsed.figures[1]).toHaveProperty("revocation.acrossNodes");
    const across = r.acrossNodes;
    expect(across.latencyMs.count).toBe(TINY.revocations);
    expect(across.apiMs.count).toBe(TINY.revocations);
    expect(across.latencyMs.p50).toBeGreaterThan(0);
    expect(across.latencyMs.p50).toBeLessThanOrEqual(across.latencyMs.p99);
    expect(across.latencyMs.p99).toBeLessThanOrEqual(across.latencyMs.max);

    const m = figures[2]!.memory!;
    expect(m.devices).toBe(TINY.devices);
    expect(m.gc).toBe(true);
    expect(m.bytesPerDevice).toBeCloseTo((m.rssAfter - m.rssBefore) / TINY.devices, 6);

    const byOp = new Map(report.ratios.map((x) => [x.op, x.ratio]));
    expect(byOp.get("authorizations/s")).toBeCloseTo(t.perSecond / TARGETS.authorizationsPerSec, 10);
    expect(byOp.get("authorize p99")).toBeCloseTo(TARGETS.authorizeP99Ms / t.latencyMs.p99, 10);
    expect(byOp.get("revoke p99")).toBeCloseTo(TARGETS.revokeP99Ms / r.latencyMs.p99, 10);
    expect(byOp.get("revoke p99 across nodes")).toBeCloseTo(TARGETS.revokeP99Ms / across.latencyMs.p99, 10);
    const revokeTargets = report.ratios.filter((x) => x.op.startsWith("revoke"));
    expect(revokeTargets.map((x) => [x.op, x.ours, x.anchor])).toEqual([
      ["revoke p99", "revoke", `target p99 ≤ ${TARGETS.revokeP99Ms} ms`],
      ["revoke p99 across nodes", "revoke", `target p99 ≤ ${TARGETS.revokeP99Ms} ms`],
    ]);
    expect(report.targets.map((x) => x.met)).toEqual(report.ratios.map((x) => x.ratio >= 1));

    // The revocation table has a row per case, the first column saying which.
    const tables = portalSuite.tables(report);
    const revocationTable = tables.find((x) => x.title.startsWith("Revocation"))!;
    expect(revocationTable.rows.map((row) => row.slice(0, 3))).toEqual([
      ["same node", "node A", String(TINY.revocations)],
      ["across nodes", "node B", String(TINY.revocations)],
    ]);
    const targetsTable = tables.at(-1)!;
    expect(targetsTable.rows.map((row) => row[0])).toContain("revoke p99 across nodes");
  }, 120_000);
});
