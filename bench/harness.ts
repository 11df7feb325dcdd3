// Measuring and reporting for every benchmark suite (`wardline bench <suite>`).
//
// How a figure is measured:
//   1. a suite groups the cases it wants to compare (ours and its anchors at one size, say);
//   2. each case is warmed up with doubling iteration counts until the warmup budget is spent, which
//      also calibrates how many iterations fill one sample;
//   3. samples are then taken round-robin across the group (rotating who goes first), so a drift in
//      clock speed or a noisy neighbour hits every case of a comparison alike;
//   4. a figure is the median of its samples, with min, max and quartiles kept beside it.
// A case runs its own loop (`run(iterations)`) so the measured call site stays monomorphic, and the
// harness adds one timer read per sample, never per operation.
//
// Output: a readable table on stdout, or with --json exactly one JSON object on stdout and nothing
// else there (progress goes to stderr, and only to a terminal). --record rewrites the suite's own
// section of bench/RESULTS.md and leaves the other suites' sections alone.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** How long to warm up and sample each case. */
export interface BenchBudget {
  warmupMs: number;
  sampleMs: number;
  samples: number;
  /** How samples are taken, for a suite whose samples are not timed loops (replaces the budget's line). */
  sampling?: string;
}

/** A few seconds for a whole suite: checks that everything runs, figures are rough. */
export const QUICK_BUDGET: BenchBudget = { warmupMs: 20, sampleMs: 15, samples: 3 };

/** Enough samples for medians that repeat within a few percent; about 1.5 s per case. */
export const FULL_BUDGET: BenchBudget = { warmupMs: 200, sampleMs: 150, samples: 9 };

/** One thing to measure: `run(n)` performs n iterations, each handling `bytes` payload bytes in `ops` operations. */
export interface BenchCase {
  /** Stable identifier used in JSON and ratios, e.g. `seal/1420/ours-batch`. */
  id: string;
  /** Who does the work, e.g. `node:crypto`; shown as a column or row name. */
  impl: string;
  /** The operation, e.g. `seal`. */
  op: string;
  /** Payload size of one operation in bytes. */
  size: number;
  /** Operations (messages, packets, calls) per iteration. */
  ops: number;
  /** Payload bytes per iteration; 0 when throughput in bytes means nothing (a bare call). */
  bytes: number;
  /** Free-form details that belong with the figure (batch size, API used). */
  detail?: string;
  run(iterations: number): void;
}

/** Order statistics of a set of samples. */
export interface Stats {
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

/** The measured figures of one case. */
export interface Figure extends Omit<BenchCase, "run"> {
  samples: number;
  iterationsPerSample: number;
  /** Payload throughput, 10^6 bytes per second; null when the case has no payload. */
  mbPerSec: Stats | null;
  opsPerSec: Stats;
  /** Median time of one operation, in nanoseconds. */
  nsPerOp: number;
}

/** ours ÷ anchor, from medians of the same run. */
export interface Ratio {
  op: string;
  size: number;
  ours: string;
  anchor: string;
  ratio: number;
}

/** A ratio with the floor the issue sets for it. */
export interface TargetResult extends Ratio {
  /** The ratio must be at least this. */
  min: number;
  met: boolean;
  /** (ratio ÷ min) − 1: how far above (positive) or below (negative) the floor. */
  margin: number;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  ramBytes: number;
  platform: string;
  arch: string;
  kernel: string;
  node: string;
  v8: string;
  /** One-minute load average when the suite started; it lags, so see busyCores too. */
  loadAverage: number;
  /** Cores kept busy by other processes in the moment before the suite started (0 when idle). */
  busyCores: number;
}

/** Everything a suite run produced; this is the --json output. */
export interface SuiteReport {
  suite: string;
  mode: "quick" | "full";
  /** Which engine build was measured. */
  build: string;
  startedAt: string;
  durationMs: number;
  command: string;
  machine: MachineInfo;
  budget: BenchBudget;
  units: Record<string, string>;
  /** Suite-specific facts about what was measured (engine file hash, batch sizes). */
  subject: Record<string, unknown>;
  figures: Figure[];
  ratios: Ratio[];
  targets: TargetResult[];
  notes: string[];
}

/** A table a suite wants shown: rendered as text on a terminal and as Markdown in RESULTS.md. */
export interface ReportTable {
  title: string;
  headers: string[];
  rows: string[][];
  /** Per column: right-align (numbers) unless false. The first column defaults to left. */
  alignRight?: boolean[];
}

export interface SuiteOptions {
  quick: boolean;
  build: "release" | "debug";
  /** The command line as typed, for the record. */
  command: string;
  /** Overrides the quick/full budget (tests use a tiny one). */
  budget?: BenchBudget;
  /** Progress lines; the CLI sends them to a terminal's stderr. */
  progress?: (line: string) => void;
}

/** A benchmark suite the CLI can run by name. */
export interface BenchSuite {
  name: string;
  summary: string;
  run(options: SuiteOptions): Promise<SuiteReport>;
  tables(report: SuiteReport): ReportTable[];
}

/** What every suite run starts from: the budget, progress output, and the report's common fields. */
export interface SuiteRun {
  budget: BenchBudget;
  progress: (line: string) => void;
  /** The fields every report starts with, durationMs taken now. */
  header(): Pick<SuiteReport, "suite" | "mode" | "build" | "startedAt" | "durationMs" | "command" | "machine" | "budget">;
}

/** Starts a suite run: reads the machine, picks the budget for the mode, starts the clock. */
export async function startRun(suite: string, options: SuiteOptions): Promise<SuiteRun> {
  const machine = await machineInfo();
  const started = Date.now();
  const budget = options.budget ?? (options.quick ? QUICK_BUDGET : FULL_BUDGET);
  return {
    budget,
    progress: options.progress ?? ((): void => {}),
    header: () => ({
      suite,
      mode: options.quick ? "quick" : "full",
      build: options.build,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      command: options.command,
      machine,
      budget,
    }),
  };
}

// --- Measuring ---

const now = (): number => performance.now();

function timeRun(c: BenchCase, iterations: number): number {
  const start = now();
  c.run(iterations);
  return now() - start;
}

/** Warms a case up and returns how many iterations fill one sample. */
function calibrate(c: BenchCase, budget: BenchBudget): number {
  let iterations = 1;
  let spent = 0;
  let perIteration = Number.POSITIVE_INFINITY;
  // At least two timed runs, so the estimate never comes from a cold first call alone.
  for (let runs = 0; spent < budget.warmupMs || runs < 2; runs++) {
    const ms = timeRun(c, iterations);
    spent += ms;
    if (ms > 0) perIteration = ms / iterations;
    if (ms < budget.warmupMs / 8) iterations *= 2;
  }
  if (!Number.isFinite(perIteration)) return iterations;
  return Math.max(1, Math.round(budget.sampleMs / perIteration));
}

function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (at - lo);
}

/** Median, quartiles and extremes of a non-empty list. */
export function stats(values: readonly number[]): Stats {
  if (values.length === 0) throw new Error("stats: no samples");
  const sorted = [...values].sort((x, y) => x - y);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
  };
}

/** Measures a group of cases that will be compared, sampling them round-robin. */
export function measureGroup(cases: readonly BenchCase[], budget: BenchBudget): Figure[] {
  const iterations = cases.map((c) => calibrate(c, budget));
  const seconds: number[][] = cases.map(() => []);
  for (let s = 0; s < budget.samples; s++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (s + k) % cases.length;
      seconds[i]!.push(timeRun(cases[i]!, iterations[i]!) / 1000);
    }
  }
  return cases.map((c, i) => {
    const n = iterations[i]!;
    const times = seconds[i]!.map((t) => Math.max(t, 1e-9));
    const ops = stats(times.map((t) => (n * c.ops) / t));
    const figure: Figure = {
      id: c.id,
      impl: c.impl,
      op: c.op,
      size: c.size,
      ops: c.ops,
      bytes: c.bytes,
      samples: times.length,
      iterationsPerSample: n,
      mbPerSec: c.bytes > 0 ? stats(times.map((t) => (n * c.bytes) / t / 1e6)) : null,
      opsPerSec: ops,
      nsPerOp: 1e9 / ops.median,
    };
    if (c.detail !== undefined) figure.detail = c.detail;
    return figure;
  });
}

/** ours ÷ anchor on median MB/s (or ops/s when a case has no payload). */
export function ratioOf(figures: readonly Figure[], oursId: string, anchorId: string): Ratio {
  const ours = findFigure(figures, oursId);
  const anchor = findFigure(figures, anchorId);
  const rate = (f: Figure): number => f.mbPerSec?.median ?? f.opsPerSec.median;
  return { op: ours.op, size: ours.size, ours: ours.id, anchor: anchor.id, ratio: rate(ours) / rate(anchor) };
}

/** Checks a ratio against its floor. */
export function checkTarget(ratio: Ratio, min: number): TargetResult {
  return { ...ratio, min, met: ratio.ratio >= min, margin: ratio.ratio / min - 1 };
}

export function findFigure(figures: readonly Figure[], id: string): Figure {
  const figure = figures.find((f) => f.id === id);
  if (!figure) throw new Error(`bench: no figure with id ${id}`);
  return figure;
}

// --- Machine ---

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    busy += all - times.idle;
    total += all;
  }
  return { busy, total };
}

/** Describes the machine, watching for ms first how busy other processes keep it (we sleep meanwhile). */
export async function machineInfo(ms = 250): Promise<MachineInfo> {
  const before = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = cpuTimes();
  const cpuList = cpus();
  const share = after.total > before.total ? (after.busy - before.busy) / (after.total - before.total) : 0;
  return {
    cpuModel: cpuList[0]?.model.trim() || "unknown",
    cores: availableParallelism(),
    ramBytes: totalmem(),
    platform: platform(),
    arch: arch(),
    kernel: release(),
    node: process.version,
    v8: process.versions.v8,
    loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    busyCores: Math.round(share * cpuList.length * 100) / 100,
  };
}

/** A warning for the notes when other processes were competing for the CPU as the suite started. */
export function loadWarning(m: MachineInfo): string | undefined {
  if (m.busyCores < 0.25) return undefined;
  return `${m.busyCores} of ${m.cores} cores were busy with other processes as the suite started: figures may be low and spreads wide; ratios suffer less, since compared cases are sampled interleaved.`;
}

export function describeMachine(m: MachineInfo): string {
  const gib = (m.ramBytes / 2 ** 30).toFixed(1);
  return `${m.cpuModel}, ${m.cores} cores, ${gib} GiB RAM, ${m.platform} ${m.arch} ${m.kernel}, Node ${m.node} (V8 ${m.v8}); at start ${m.busyCores} cores busy elsewhere, load average ${m.loadAverage}`;
}

// --- Formatting ---

/** A rate with three significant digits at most, thousands grouped (12,345 / 812 / 45.6 / 3.21). */
export function formatRate(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 1000) return Math.round(value).toLocaleString("en-US");
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Half the min–max spread relative to the median, e.g. `±1.8%`. */
export function formatSpread(s: Stats): string {
  if (s.median <= 0) return "";
  return `±${(((s.max - s.min) / 2 / s.median) * 100).toFixed(1)}%`;
}

export function formatRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

export function formatTarget(t: TargetResult): string {
  const pct = `${t.margin >= 0 ? "+" : "−"}${Math.abs(t.margin * 100).toFixed(0)}%`;
  return t.met ? `met (${pct} over)` : `MISSED (${pct} short)`;
}

function alignments(table: ReportTable): boolean[] {
  return table.headers.map((_, i) => table.alignRight?.[i] ?? i > 0);
}

/** Plain-text table with aligned columns. */
export function renderText(table: ReportTable): string {
  const right = alignments(table);
  const widths = table.headers.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [table.title, line(table.headers), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const row of table.rows) out.push(line(row));
  return out.join("\n");
}

/** GitHub-flavoured Markdown table under a bold title. */
export function renderMarkdown(table: ReportTable): string {
  const right = alignments(table);
  const escape = (cell: string): string => cell.replaceAll("|", "\\|");
  const out = [
    `**${table.title}**`,
    "",
    `| ${table.headers.map(escape).join(" | ")} |`,
    `|${right.map((r) => (r ? "---:" : ":---")).join("|")}|`,
  ];
  for (const row of table.rows) out.push(`| ${row.map(escape).join(" | ")} |`);
  return out.join("\n");
}

/** The human-readable report: header lines, the suite's tables, then its notes. */
export function renderReportText(report: SuiteReport, tables: readonly ReportTable[]): string {
  const seconds = (report.durationMs / 1000).toFixed(1);
  const out = [
    `wardline bench ${report.suite} (${report.mode} mode, ${report.build} build, ${seconds} s)`,
    `machine: ${describeMachine(report.machine)}`,
    `samples: ${report.budget.sampling ?? `${report.budget.samples} per figure, interleaved; median shown, ±half the min–max spread`}`,
    "",
  ];
  for (const table of tables) out.push(renderText(table), "");
  if (report.notes.length > 0) {
    out.push("notes:");
    for (const note of report.notes) out.push(`  - ${note}`);
  }
  return out.join("\n");
}

// --- RESULTS.md ---

/** The repository root: the nearest directory above this file holding package.json and bench/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bench"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("bench: cannot find the repository root (package.json next to bench/)");
}

export function resultsPath(): string {
  return join(repoRoot(), "bench", "RESULTS.md");
}

const RESULTS_PREAMBLE = `# Benchmark results

Figures recorded with \`wardline bench <suite> --record\`. Each suite owns one section, between its
\`bench:<suite>:begin\` and \`bench:<suite>:end\` markers, and a record rewrites only that section, so
suites (and later, machines) sit side by side. MB/s is 10^6 payload bytes per second; every figure is
the median of interleaved samples, and every ratio compares figures taken in the same run.
`;

function sectionMarkers(suite: string): { begin: string; end: string } {
  return { begin: `<!-- bench:${suite}:begin -->`, end: `<!-- bench:${suite}:end -->` };
}

/** The Markdown section a suite records: when, where, how, the tables and the notes. */
export function renderSection(report: SuiteReport, tables: readonly ReportTable[]): string {
  const { begin, end } = sectionMarkers(report.suite);
  const recorded = `${report.startedAt.slice(0, 16).replace("T", " ")} UTC`;
  const b = report.budget;
  const out = [
    begin,
    `## ${report.suite}`,
    "",
    `- Recorded: ${recorded}, ${report.mode} mode, ${(report.durationMs / 1000).toFixed(1)} s`,
    `- Machine: ${describeMachine(report.machine)}`,
    `- Command: \`${report.command}\``,
    `- Samples: ${b.sampling ?? `${b.samples} per figure of ${b.sampleMs} ms each after ${b.warmupMs} ms warmup, interleaved across the compared cases; median shown, ±half the min–max spread`}`,
  ];
  for (const [key, value] of Object.entries(report.subject)) {
    out.push(`- ${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  }
  out.push("");
  for (const table of tables) out.push(renderMarkdown(table), "");
  if (report.notes.length > 0) {
    out.push("Notes:", "");
    for (const note of report.notes) out.push(`- ${note}`);
    out.push("");
  }
  out.push(end);
  return out.join("\n");
}

/** Writes or replaces the suite's section of bench/RESULTS.md; returns the file's path. */
export function recordSection(report: SuiteReport, tables: readonly ReportTable[], path = resultsPath()): string {
  const section = renderSection(report, tables);
  const { begin, end } = sectionMarkers(report.suite);
  const current = existsSync(path) ? readFileSync(path, "utf8") : RESULTS_PREAMBLE;
  const from = current.indexOf(begin);
  const to = current.indexOf(end);
  let next: string;
  if (from >= 0 && to > from) {
    next = current.slice(0, from) + section + current.slice(to + end.length);
  } else {
    next = `${current.trimEnd()}\n\n${section}\n`;
  }
  writeFileSync(path, next);
  return path;
}
