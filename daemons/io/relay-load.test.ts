// RelayLoadReports in virtual time: a report at each join, on every change of the counts (at most one
// per check), every LOAD_REPORT_MS when nothing changes, and the rate since the report before.

import { describe, expect, it } from "vitest";
import { validatePayload } from "../proto/portal/schema.js";
import { LOAD_CHECK_MS, LOAD_REPORT_MS, RelayLoadReports, type LoadSample } from "./relay-load.js";

const idle: LoadSample = { allocations: 0, channels: 0, bytes: 0 };

describe("RelayLoadReports", () => {
  it("reports at the first check, then only on change or after LOAD_REPORT_MS", () => {
    const reports = new RelayLoadReports();
    reports.joined();
    expect(reports.check(0, idle)).toEqual({ allocations: 0, channels: 0, bytes_per_second: 0 });
    for (let t = LOAD_CHECK_MS; t < LOAD_REPORT_MS; t += LOAD_CHECK_MS) expect(reports.check(t, idle), `at ${t}`).toBeUndefined();
    expect(reports.check(LOAD_REPORT_MS, idle)).toEqual({ allocations: 0, channels: 0, bytes_per_second: 0 });
    expect(reports.check(LOAD_REPORT_MS + LOAD_CHECK_MS, { ...idle, allocations: 1 })).toEqual({ allocations: 1, channels: 0, bytes_per_second: 0 });
    expect(reports.check(LOAD_REPORT_MS + 2 * LOAD_CHECK_MS, { ...idle, allocations: 1 })).toBeUndefined();
    expect(reports.check(LOAD_REPORT_MS + 3 * LOAD_CHECK_MS, { ...idle, allocations: 1, channels: 2 })).toEqual({ allocations: 1, channels: 2, bytes_per_second: 0 });
  });

  it("the rate is the bytes since the report before over the time since it", () => {
    const reports = new RelayLoadReports();
    reports.joined();
    reports.check(0, { allocations: 2, channels: 2, bytes: 1_000 });
    // Bytes alone are no change: the rate waits for the periodic report.
    expect(reports.check(LOAD_CHECK_MS, { allocations: 2, channels: 2, bytes: 500_000 })).toBeUndefined();
    expect(reports.check(LOAD_REPORT_MS, { allocations: 2, channels: 2, bytes: 1_000 + 12_500_000 })).toEqual({ allocations: 2, channels: 2, bytes_per_second: 1_250_000 });
    expect(reports.check(LOAD_REPORT_MS + 500, { allocations: 1, channels: 1, bytes: 1_000 + 12_500_000 + 1_001 })).toEqual({ allocations: 1, channels: 1, bytes_per_second: 2_002 });
  });

  it("a rejoin reports at once, unchanged counts too, with the rate since the last report", () => {
    const reports = new RelayLoadReports();
    reports.joined();
    reports.check(0, { allocations: 1, channels: 1, bytes: 0 });
    reports.joined();
    expect(reports.check(2_000, { allocations: 1, channels: 1, bytes: 4_000 })).toEqual({ allocations: 1, channels: 1, bytes_per_second: 2_000 });
    expect(reports.check(3_000, { allocations: 1, channels: 1, bytes: 4_000 })).toBeUndefined();
  });

  it("every report is a valid load event, whatever the counts and clock do", () => {
    const reports = new RelayLoadReports();
    let seed = 0x1234abcd;
    const random = (): number => {
      seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
      return seed / 2 ** 32;
    };
    let now = 0;
    let bytes = 0;
    let sent = 0;
    for (let i = 0; i < 2_000; i++) {
      if (random() < 0.05) reports.joined();
      // The clock may stand still between checks; counts jump anywhere in their range.
      now += random() < 0.1 ? 0 : Math.floor(random() * 3 * LOAD_CHECK_MS);
      bytes += Math.floor(random() * 2 ** 40);
      const report = reports.check(now, { allocations: Math.floor(random() * 4), channels: Math.floor(random() * 4), bytes });
      if (report === undefined) continue;
      sent++;
      expect(validatePayload("relay", "from_device", "load", report)).toMatchObject({ ok: true });
    }
    expect(sent).toBeGreaterThan(100);
  });
});
