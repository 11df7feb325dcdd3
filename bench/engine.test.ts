// The engine suite's report shape, its RESULTS.md section handling and the CLI's usage errors.
// Speed is not asserted here: that is what the benchmark itself measures.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../bin/cli.js";
import { captureIo } from "../test/support/cli.js";
import { IMPL, SIZES, TARGETS, caseId, engineSuite, runEngineSuite } from "./engine.js";
import { QUICK_BUDGET, recordSection, stats } from "./harness.js";
import type { SuiteReport } from "./harness.js";

const positiveFinite = (x: number): boolean => Number.isFinite(x) && x > 0;

describe("engine suite", () => {
  let report: SuiteReport;

  it("runs in quick mode and reports every figure as a positive finite rate", async () => {
    report = await runEngineSuite({ quick: true, build: "release", command: "test", budget: { ...QUICK_BUDGET, samples: 2 } });
    expect(report.suite).toBe("engine");
    expect(report.mode).toBe("quick");
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    const ids = new Set(report.figures.map((f) => f.id));
    for (const op of ["seal", "open"]) {
      for (const size of SIZES) {
        for (const impl of [IMPL.oursBatch, IMPL.oursOneShot, IMPL.node, IMPL.noble, IMPL.sodium]) {
          expect(ids.has(caseId(op, size, impl))).toBe(true);
        }
      }
    }
    for (const f of report.figures) {
      expect(positiveFinite(f.opsPerSec.median), f.id).toBe(true);
      expect(positiveFinite(f.nsPerOp), f.id).toBe(true);
      if (f.bytes > 0) {
        expect(f.mbPerSec, f.id).not.toBeNull();
        for (const v of Object.values(f.mbPerSec!)) expect(positiveFinite(v), f.id).toBe(true);
      }
    }
  }, 60_000);

  it("computes each ratio as ours ÷ anchor from the medians", () => {
    const byId = new Map(report.figures.map((f) => [f.id, f]));
    expect(report.ratios.length).toBeGreaterThan(0);
    for (const r of report.ratios) {
      const ours = byId.get(r.ours)!.mbPerSec!.median;
      const anchor = byId.get(r.anchor)!.mbPerSec!.median;
      expect(r.ratio).toBeCloseTo(ours / anchor, 9);
    }
    expect(report.targets.map((t) => [t.size, t.anchor, t.min])).toEqual(
      TARGETS.map((t) => [t.size, caseId("seal", t.size, t.anchor), t.min]),
    );
    for (const t of report.targets) {
      expect(t.met).toBe(t.ratio >= t.min);
      expect(t.margin).toBeCloseTo(t.ratio / t.min - 1, 9);
    }
  });

  it("serializes to JSON and back unchanged", () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it("records its own section of RESULTS.md and leaves other sections alone", () => {
    const path = join(mkdtempSync(join(tmpdir(), "wardline-bench-")), "RESULTS.md");
    const other = "<!-- bench:relay:begin -->\n## relay\nkept\n<!-- bench:relay:end -->";
    writeFileSync(path, `# Benchmark results\n\n${other}\n`);
    const tables = engineSuite.tables(report);
    recordSection(report, tables, path);
    recordSection(report, tables, path);
    const text = readFileSync(path, "utf8");
    expect(text).toContain(other);
    expect(text.split("<!-- bench:engine:begin -->").length).toBe(2);
    expect(text).toContain("| size | ours-batch |");
  });
});

describe("harness stats", () => {
  it("takes the median and quartiles by interpolation", () => {
    expect(stats([5, 1, 3, 2, 4])).toEqual({ median: 3, min: 1, max: 5, q1: 2, q3: 4 });
    expect(stats([1, 2]).median).toBe(1.5);
  });
});

describe("wardline CLI", () => {
  const capture = captureIo;

  it("lists its commands on --help and help", async () => {
    for (const argv of [["--help"], ["help"]]) {
      const io = capture();
      expect(await main(argv, io)).toBe(0);
      expect(io.out).toContain("bench <suite>");
      for (const command of ["portal", "relay", "gateway", "client", "up", "wg"]) expect(io.out).toMatch(new RegExp(`^  ${command}\\s`, "m"));
    }
  });

  it("exits 2 with usage on unknown commands and bad bench options", async () => {
    for (const argv of [["frobnicate"], [], ["bench"], ["bench", "nope"], ["bench", "engine", "--build", "fast"], ["bench", "engine", "--nope"]]) {
      const io = capture();
      expect(await main(argv, io), argv.join(" ")).toBe(2);
      expect(io.err).toMatch(/^wardline: /);
      expect(io.err).toContain("Usage: wardline");
      expect(io.out).toBe("");
    }
  });

  it("documents the bench options", async () => {
    const io = capture();
    expect(await main(["bench", "--help"], io)).toBe(0);
    for (const flag of ["--quick", "--json", "--build", "--record", "engine"]) expect(io.out).toContain(flag);
  });
});
