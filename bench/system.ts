// What the benchmarks read of the machine they run on: whether a tool is installed and its version,
// and CPU time from /proc (USER_HZ ticks of all CPUs, and of one process).

import { execFileSync, spawnSync } from "node:child_process";

/** Whether a command is on PATH. */
export function onPath(tool: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", tool], { stdio: "ignore" }).status === 0;
}

/** The first non-empty line a command prints (a version, say), or "unknown". */
export function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  const text = `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n").find((l) => l.trim() !== "");
  return text?.trim() ?? "unknown";
}

let clockTicks: number | undefined;

/** USER_HZ, the unit of /proc/stat: 100 on every mainstream Linux, read once to be sure. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    let value = Number.NaN;
    try {
      value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    } catch {
      // no getconf: keep the universal default
    }
    clockTicks = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return clockTicks;
}

/** CPU time of all CPUs in clock ticks: busy (user, nice, system, irq, softirq) and everything. */
export interface CpuTicks {
  busy: number;
  total: number;
}

/** Reads the aggregate `cpu` line of /proc/stat. */
export function parseProcStat(text: string): CpuTicks {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (line === undefined) throw new Error("/proc/stat: no aggregate cpu line");
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait + steal };
}

/** utime + stime, in clock ticks, from /proc/<pid>/stat (all of the process's threads). */
export function parsePidStat(text: string): number {
  // The command name is in parentheses and may hold spaces or parentheses itself: fields count from the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).trim().split(/\s+/);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error("/proc/<pid>/stat: no utime or stime");
  return utime + stime;
}
