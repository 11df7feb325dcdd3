// When a relay registered with a portal reports its load (the relay channel's `load` event), and what
// it says: sans-IO, driven by the caller's clock and the relay's counts.
//
// 1. After every join, a report at once, so the portal never shows the last session's load.
// 2. Then, checked every LOAD_CHECK_MS: a report when the allocations or channel bindings changed
//    since the last one, or when LOAD_REPORT_MS passed without one. A busy relay reports at most once
//    per check; an idle one every LOAD_REPORT_MS.
// 3. The rate is the payload bytes relayed (both directions) since the previous report, over the time
//    since then, in whole bytes a second; 0 for the first report, which has nothing before it.

import type { RelayLoad } from "../proto/portal/schema.js";

/** How often the relay looks at its counts. */
export const LOAD_CHECK_MS = 1_000;
/** The longest a joined relay goes without a report. */
export const LOAD_REPORT_MS = 10_000;

/** The relay's counts at one moment. */
export interface LoadSample {
  allocations: number;
  channels: number;
  /** Payload bytes relayed so far, both directions (a counter: it only grows). */
  bytes: number;
}

export class RelayLoadReports {
  private last: (LoadSample & { at: number }) | undefined;
  private due = false;

  /** The socket (re)joined: the next check reports, whatever changed. */
  joined(): void {
    this.due = true;
  }

  /** The report to send at `now` given the relay's counts, or undefined: see the file comment. */
  check(now: number, sample: LoadSample): RelayLoad | undefined {
    const last = this.last;
    const changed = last === undefined || sample.allocations !== last.allocations || sample.channels !== last.channels;
    if (!this.due && !changed && now - last!.at < LOAD_REPORT_MS) return undefined;
    const elapsed = last === undefined ? 0 : now - last.at;
    const bytesPerSecond = elapsed > 0 ? Math.max(0, Math.round(((sample.bytes - last!.bytes) * 1000) / elapsed)) : 0;
    this.last = { ...sample, at: now };
    this.due = false;
    return { allocations: sample.allocations, channels: sample.channels, bytes_per_second: Math.min(bytesPerSecond, Number.MAX_SAFE_INTEGER) };
  }
}
