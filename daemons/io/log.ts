// The daemons' log lines on stderr: JSON (one object per line: ts, level, msg, fields) for
// machines, or "human" (time, level, message, key=value) for a terminal. Levels below the chosen
// one are dropped.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "human";

/** Writes one log line. */
export type Log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A Log writing to `write` in `format`, keeping lines at `level` and above. */
export function createLog(options: { format: LogFormat; level: LogLevel; write: (line: string) => void; now?: () => Date }): Log {
  const now = options.now ?? (() => new Date());
  const min = RANK[options.level];
  return (level, msg, fields = {}) => {
    if (RANK[level] < min) return;
    if (options.format === "json") {
      options.write(`${JSON.stringify({ ts: now().toISOString(), level, msg, ...fields })}\n`);
      return;
    }
    const pairs = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`);
    options.write(`${now().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${pairs.length > 0 ? ` ${pairs.join(" ")}` : ""}\n`);
  };
}
