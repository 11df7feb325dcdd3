// The ui suite runs for real on two pages and reports what it claims: the JSON shape, every load's
// figures from the page's own timeline, no layout shift, warm loads fetching less than cold ones,
// ratios and targets computed from the figures. Speed is measured by the suite (`wardline bench ui`),
// not asserted here. Without Chromium it is skipped with the reason, except under CI.

import { describe, expect, it } from "vitest";
import { browserMissing } from "../test/browser/support.js";
import { loadPlaywright } from "../test/support/chromium.js";
import { CLS_NONE, CLS_TARGET, FLOOR, READY_TARGET_MS, runUiBench, uiFigure, uiRatios, uiSuite, type LoadSample, type UiFigure } from "./ui.js";

const playwright = await loadPlaywright();

const sample = (readyMs: number, cls = 0): LoadSample => ({ readyMs, fcpMs: readyMs / 2, lcpMs: readyMs, domContentLoadedMs: readyMs / 3, cls, bytes: 1000, requests: 3 });

describe("bench ui: figures and ratios", () => {
  it("takes medians over rounds, the largest shift, and ratios against the floor's median", () => {
    const sites = uiFigure("sites", [sample(300), sample(100), sample(200, 0.02)], [sample(50), sample(60), sample(70)]);
    expect(sites.cold.readyMs.median).toBe(200);
    expect(sites.cold.clsMax).toBe(0.02);
    expect(sites.warm.readyMs.median).toBe(60);
    expect(sites.nsPerOp).toBe(200e6);
    const floor = uiFigure(FLOOR, [sample(40), sample(50), sample(60)], [sample(20), sample(20), sample(20)]);
    const groups = uiFigure("groups", [sample(600)], [sample(100, 0.3)]);
    const { ratios, targets } = uiRatios([sites, groups, floor]);
    expect(ratios.map((r) => [r.op, r.ratio])).toEqual([["sites cold ready", 4], ["groups cold ready", 12]]);
    expect(targets[0]).toMatchObject({ op: "slowest page cold ready (groups)", ratio: READY_TARGET_MS / 600 });
    expect(targets[1]).toMatchObject({ op: "largest layout shift (groups)", ratio: CLS_TARGET / 0.3 });
  });

  it("no shift anywhere meets the layout target with a finite ratio", () => {
    const { targets } = uiRatios([uiFigure("sites", [sample(100)], [sample(50)]), uiFigure(FLOOR, [sample(10)], [sample(10)])]);
    expect(targets[1]).toMatchObject({ op: "largest layout shift (none on any page)", ratio: CLS_TARGET / CLS_NONE });
  });
});

describe("bench ui: a real run", () => {
  if (browserMissing(playwright)) return;

  it("loads the pages and the floor, cold and warm, and reports them", async () => {
    const report = await runUiBench({ quick: true, build: "release", command: "test" }, { rounds: 2, settleMs: 50, warmup: false, pages: ["sign_in", "policies"] });
    const parsed = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(parsed.suite).toBe("ui");
    const figures = report.figures as UiFigure[];
    expect(figures.map((f) => f.id)).toEqual(["sign_in/cold", "policies/cold", "floor/cold"]);
    for (const f of figures) {
      for (const load of [f.cold, f.warm]) {
        expect(load.samples).toBe(2);
        expect(load.readyMs.median).toBeGreaterThan(0);
        expect(load.fcpMs.median).toBeGreaterThan(0);
        expect(load.domContentLoadedMs.median).toBeGreaterThan(0);
        expect(load.clsMax, `${f.page}: the layout does not jump`).toBe(0);
      }
    }
    const policies = figures[1]!;
    // The document, the stylesheet, app.js, lib.js, the page's module, /api/me and the page's own calls.
    expect(policies.cold.requests.median).toBeGreaterThanOrEqual(8);
    expect(policies.cold.bytes.median).toBeGreaterThan(figures[2]!.cold.bytes.median);
    // Warm, every asset is revalidated (304, no body): far fewer bytes.
    expect(policies.warm.bytes.median).toBeLessThan(policies.cold.bytes.median / 2);
    expect(report.ratios.map((r) => r.op)).toEqual(["sign_in cold ready", "policies cold ready"]);
    expect(report.ratios[1]!.ratio).toBeCloseTo(policies.cold.readyMs.median / figures[2]!.cold.readyMs.median, 9);
    expect(report.targets).toHaveLength(2);
    const text = uiSuite.tables(report).map((t) => t.rows.length);
    expect(text).toEqual([3, 2]);
  }, 120_000);
});
