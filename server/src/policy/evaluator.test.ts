// The evaluator: a table per condition (CIDR edges, regions, providers, verified clients, time windows
// across daylight-saving changes, empty lists), the choice among several policies, and two seeded
// differential tests against policy-rules.ts's conditionsHold, the slow oracle: the verdict and the
// violated conditions agree, and `until` is exactly where the oracle stops holding.

import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure, type Rng } from "../../../test/support/prng.js";
import { conditionsHold, type PolicyCondition } from "../domain/policy-rules.js";
import { compilePolicy, type CompiledPolicy } from "./compiled-policy.js";
import { evaluate, type Subject } from "./evaluator.js";
import { compileTimeWindows, windowsAdmit, windowsEnd, zoneOffset } from "./time-windows.js";
import { parseTimeWindow } from "../domain/policy-rules.js";

beforeEach(reportSeedOnFailure);

const GROUP = "00000000-0000-4000-8000-00000000000a";
const OTHER_GROUP = "00000000-0000-4000-8000-00000000000b";
const RESOURCE = "00000000-0000-4000-8000-000000000001";
const PROVIDER = "11111111-1111-4111-8111-111111111111";
let ids = 0;

function policy(conditions: unknown, options: { groupId?: string; resourceId?: string; disabled?: boolean } = {}): CompiledPolicy {
  return compilePolicy({
    id: `p${++ids}`,
    groupId: options.groupId ?? GROUP,
    resourceId: options.resourceId ?? RESOURCE,
    disabled: options.disabled ?? false,
    conditions,
  });
}

function subject(overrides: Partial<Subject> = {}): Subject {
  return {
    actorId: "actor",
    groupIds: new Set([GROUP]),
    providerId: PROVIDER,
    clientIp: "203.0.113.7",
    region: "DE",
    clientVerified: true,
    tokenExpiresAt: null,
    ...overrides,
  };
}

const NOW = new Date("2025-06-04T12:00:00Z"); // a Wednesday
const cond = (property: string, operator: string, values: string[]): PolicyCondition => ({ property, operator, values }) as PolicyCondition;

describe("evaluate: one condition at a time", () => {
  const table: [string, PolicyCondition, Partial<Subject>, boolean][] = [
    ["cidr: inside", cond("remote_ip", "is_in_cidr", ["203.0.113.0/24"]), {}, true],
    ["cidr: first address", cond("remote_ip", "is_in_cidr", ["203.0.113.0/24"]), { clientIp: "203.0.113.0" }, true],
    ["cidr: last address", cond("remote_ip", "is_in_cidr", ["203.0.113.0/24"]), { clientIp: "203.0.113.255" }, true],
    ["cidr: one past the end", cond("remote_ip", "is_in_cidr", ["203.0.113.0/24"]), { clientIp: "203.0.114.0" }, false],
    ["cidr: one before", cond("remote_ip", "is_in_cidr", ["203.0.113.0/24"]), { clientIp: "203.0.112.255" }, false],
    ["cidr: /0 holds every IPv4", cond("remote_ip", "is_in_cidr", ["0.0.0.0/0"]), { clientIp: "255.255.255.255" }, true],
    ["cidr: /0 IPv4 holds no IPv6", cond("remote_ip", "is_in_cidr", ["0.0.0.0/0"]), { clientIp: "2001:db8::1" }, false],
    ["cidr: /32 host", cond("remote_ip", "is_in_cidr", ["198.51.100.9"]), { clientIp: "198.51.100.9" }, true],
    ["cidr: /32 neighbour", cond("remote_ip", "is_in_cidr", ["198.51.100.9/32"]), { clientIp: "198.51.100.10" }, false],
    ["cidr: high bit set (unsigned compare)", cond("remote_ip", "is_in_cidr", ["128.0.0.0/1"]), { clientIp: "200.1.1.1" }, true],
    ["cidr: IPv6", cond("remote_ip", "is_in_cidr", ["2001:db8::/32"]), { clientIp: "2001:db8:ffff::1" }, true],
    ["cidr: IPv6 outside", cond("remote_ip", "is_in_cidr", ["2001:db8::/32"]), { clientIp: "2001:db9::1" }, false],
    ["cidr: ::/0", cond("remote_ip", "is_in_cidr", ["::/0"]), { clientIp: "::1" }, true],
    ["cidr: IPv4-mapped client counts as IPv4", cond("remote_ip", "is_in_cidr", ["203.0.113.0/24"]), { clientIp: "::ffff:203.0.113.9" }, true],
    ["cidr: not in, outside", cond("remote_ip", "is_not_in_cidr", ["10.0.0.0/8"]), {}, true],
    ["cidr: not in, inside", cond("remote_ip", "is_not_in_cidr", ["10.0.0.0/8"]), { clientIp: "10.1.2.3" }, false],
    ["cidr: no client IP fails is_in", cond("remote_ip", "is_in_cidr", ["0.0.0.0/0"]), { clientIp: null }, false],
    ["cidr: no client IP fails is_not_in", cond("remote_ip", "is_not_in_cidr", ["10.0.0.0/8"]), { clientIp: null }, false],
    ["cidr: garbage client IP fails", cond("remote_ip", "is_not_in_cidr", ["10.0.0.0/8"]), { clientIp: "10.0.0.256" }, false],
    ["region: in", cond("remote_ip_location_region", "is_in", ["DE", "FR"]), {}, true],
    ["region: lowercase subject", cond("remote_ip_location_region", "is_in", ["DE"]), { region: "de" }, true],
    ["region: not in", cond("remote_ip_location_region", "is_not_in", ["US"]), {}, true],
    ["region: not in, listed", cond("remote_ip_location_region", "is_not_in", ["DE"]), {}, false],
    ["region: unknown fails is_in", cond("remote_ip_location_region", "is_in", ["DE"]), { region: null }, false],
    ["region: unknown fails is_not_in", cond("remote_ip_location_region", "is_not_in", ["US"]), { region: null }, false],
    ["region: unassigned code fails", cond("remote_ip_location_region", "is_not_in", ["US"]), { region: "ZZ" }, false],
    ["region: dotless i is not I", cond("remote_ip_location_region", "is_in", ["IN"]), { region: "ın" }, false],
    ["provider: in", cond("provider_id", "is_in", [PROVIDER]), {}, true],
    ["provider: case-insensitive", cond("provider_id", "is_in", [PROVIDER]), { providerId: PROVIDER.toUpperCase() }, true],
    ["provider: not in", cond("provider_id", "is_not_in", [PROVIDER]), {}, false],
    ["provider: none fails is_not_in", cond("provider_id", "is_not_in", [PROVIDER]), { providerId: null }, false],
    ["verified: true wanted", cond("client_verified", "is", ["true"]), {}, true],
    ["verified: true wanted, unverified", cond("client_verified", "is", ["true"]), { clientVerified: false }, false],
    ["verified: false wanted, unverified", cond("client_verified", "is", ["false"]), { clientVerified: false }, true],
    ["time: inside (Berlin 14:00 Wed)", cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/09:00-17:00/Europe/Berlin"]), {}, true],
    ["time: other day", cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["T/09:00-17:00/Europe/Berlin"]), {}, false],
    ["time: end excluded (Berlin 14:00)", cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/09:00-14:00/Europe/Berlin"]), {}, false],
    ["time: start included", cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/14:00-15:00/Europe/Berlin"]), {}, true],
    ["time: whole day", cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/true/UTC"]), {}, true],
    ["time: other zone (New York 08:00)", cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/09:00-17:00/America/New_York"]), {}, false],
  ];
  it.each(table)("%s", (_name, condition, overrides, allowed) => {
    const p = policy([condition]);
    const decision = evaluate([p], subject(overrides), RESOURCE, NOW);
    expect(decision.allowed).toBe(allowed);
    if (!decision.allowed) expect(decision).toEqual({ allowed: false, reason: "conditions", violated: [{ policyId: p.id, conditions: p.conditions }] });
    // The oracle agrees.
    const s = subject(overrides);
    const oracle = conditionsHold([condition], {
      now: NOW,
      clientVerified: s.clientVerified,
      ...(s.clientIp !== null ? { remoteIp: s.clientIp } : {}),
      ...(s.region !== null ? { region: s.region } : {}),
      ...(s.providerId !== null ? { providerId: s.providerId } : {}),
    });
    expect(oracle.holds).toBe(allowed);
  });
});

describe("evaluate: policies, groups, expiry", () => {
  it("no policies at all: denied, nothing violated", () => {
    expect(evaluate([], subject(), RESOURCE, NOW)).toEqual({ allowed: false, violated: [], reason: "no_policy" });
  });

  it("an empty condition list allows, until the token expires", () => {
    const p = policy([]);
    expect(evaluate([p], subject(), RESOURCE, NOW)).toEqual({ allowed: true, policyId: p.id, until: null });
    const expires = new Date(NOW.getTime() + 60_000);
    expect(evaluate([p], subject({ tokenExpiresAt: expires }), RESOURCE, NOW)).toEqual({ allowed: true, policyId: p.id, until: expires });
  });

  it("an expired token denies even an unconditional policy; expiry at now counts as expired", () => {
    const p = policy([]);
    expect(evaluate([p], subject({ tokenExpiresAt: NOW }), RESOURCE, NOW)).toMatchObject({ allowed: false, reason: "token_expired" });
    expect(evaluate([p], subject(), RESOURCE, new Date(Number.NaN))).toMatchObject({ allowed: false, reason: "invalid_time" });
  });

  it("policies of other groups, other resources and disabled ones neither allow nor are reported", () => {
    const others = [policy([], { groupId: OTHER_GROUP }), policy([], { resourceId: "other" }), policy([], { disabled: true })];
    expect(evaluate(others, subject(), RESOURCE, NOW)).toEqual({ allowed: false, violated: [], reason: "no_policy" });
  });

  it("any allowing policy suffices, and the one allowing longest wins", () => {
    const denied = policy([cond("client_verified", "is", ["false"])]);
    const short = policy([cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/12:00-13:00/UTC"])], { groupId: OTHER_GROUP });
    const long = policy([cond("current_utc_datetime", "is_in_day_of_week_time_ranges", ["W/10:00-18:00/UTC"])]);
    const groups = new Set([GROUP, OTHER_GROUP]);
    const decision = evaluate([denied, short, long], subject({ groupIds: groups }), RESOURCE, NOW);
    expect(decision).toEqual({ allowed: true, policyId: long.id, until: new Date("2025-06-04T18:00:00Z") });
    const unbounded = policy([], { groupId: OTHER_GROUP });
    expect(evaluate([long, unbounded, short], subject({ groupIds: groups }), RESOURCE, NOW)).toEqual({ allowed: true, policyId: unbounded.id, until: null });
    // The token's expiry caps every until.
    const expires = new Date("2025-06-04T12:30:00Z");
    expect(evaluate([short, long], subject({ groupIds: groups, tokenExpiresAt: expires }), RESOURCE, NOW)).toMatchObject({ allowed: true, until: expires });
  });

  it("a denial lists every failing condition of every applicable policy", () => {
    const a = policy([cond("client_verified", "is", ["true"]), cond("remote_ip_location_region", "is_in", ["US"]), cond("remote_ip", "is_in_cidr", ["10.0.0.0/8"])]);
    const b = policy([cond("provider_id", "is_not_in", [PROVIDER])], { groupId: OTHER_GROUP });
    const decision = evaluate([a, b], subject({ groupIds: new Set([GROUP, OTHER_GROUP]) }), RESOURCE, NOW);
    expect(decision).toEqual({
      allowed: false,
      reason: "conditions",
      violated: [
        { policyId: a.id, conditions: [a.conditions[1], a.conditions[2]] },
        { policyId: b.id, conditions: [b.conditions[0]] },
      ],
    });
  });

  it("stored conditions that do not validate never allow, and are reported as they are", () => {
    const broken = [{ property: "remote_ip", operator: "is_in_cidr", values: ["not a cidr"] }];
    const p = policy(broken);
    expect(p.checks).toBeNull();
    expect(evaluate([p], subject(), RESOURCE, NOW)).toEqual({ allowed: false, reason: "conditions", violated: [{ policyId: p.id, conditions: broken }] });
    const q = policy("not even a list");
    expect(evaluate([q], subject(), RESOURCE, NOW)).toEqual({ allowed: false, reason: "conditions", violated: [{ policyId: q.id, conditions: [] }] });
  });
});

describe("time windows: until, across daylight-saving changes", () => {
  const until = (windows: string[], now: string): string | null | undefined => {
    const compiled = compileTimeWindows(windows.map((w) => (parseTimeWindow(w) as { ok: true; window: never }).window));
    const end = windowsEnd(compiled, Date.parse(now));
    return end === undefined || end === null ? end : new Date(end).toISOString();
  };
  const table: [string, string[], string, string | null | undefined][] = [
    ["plain end", ["W/09:00-17:00/Europe/Berlin"], "2025-06-04T12:00:00Z", "2025-06-04T15:00:00.000Z"],
    ["not admitted", ["W/09:00-10:00/Europe/Berlin"], "2025-06-04T12:00:00Z", undefined],
    ["24:00 is the next midnight", ["W/12:00-24:00/UTC"], "2025-06-04T12:00:00Z", "2025-06-05T00:00:00.000Z"],
    ["a night shift over midnight is one span", ["W/22:00-24:00/UTC", "R/00:00-06:00/UTC"], "2025-06-04T23:00:00Z", "2025-06-05T06:00:00.000Z"],
    ["all week never ends", ["M/true/UTC", "T/true/UTC", "W/true/UTC", "R/true/UTC", "F/true/UTC", "S/true/UTC", "U/true/UTC"], "2025-06-04T12:00:00Z", null],
    // Berlin springs forward on 2025-03-30 at 01:00 UTC (02:00 CET -> 03:00 CEST).
    ["spring forward skips past the end: closes at the jump", ["U/01:00-02:30/Europe/Berlin"], "2025-03-30T00:30:00Z", "2025-03-30T01:00:00.000Z"],
    ["spring forward inside the window: the end is in summer time", ["U/01:00-05:00/Europe/Berlin"], "2025-03-30T00:30:00Z", "2025-03-30T03:00:00.000Z"],
    ["whole day of 23 hours", ["U/true/Europe/Berlin"], "2025-03-30T10:00:00Z", "2025-03-30T22:00:00.000Z"],
    // Berlin falls back on 2025-10-26 at 01:00 UTC (03:00 CEST -> 02:00 CET).
    ["fall back inside the window: the end is in winter time", ["U/01:00-04:00/Europe/Berlin"], "2025-10-25T23:30:00Z", "2025-10-26T03:00:00.000Z"],
    ["fall back behind the start: closes at the jump", ["U/02:30-05:00/Europe/Berlin"], "2025-10-26T00:45:00Z", "2025-10-26T01:00:00.000Z"],
    ["whole day of 25 hours", ["U/true/Europe/Berlin"], "2025-10-26T10:00:00Z", "2025-10-26T23:00:00.000Z"],
    ["New York spring forward", ["U/00:00-12:00/America/New_York"], "2025-03-09T06:00:00Z", "2025-03-09T16:00:00.000Z"],
    ["zones hand over", ["W/13:00-15:00/Europe/Berlin", "W/09:00-11:00/America/New_York"], "2025-06-04T12:00:00Z", "2025-06-04T15:00:00.000Z"],
    ["half-hour zone", ["W/true/Asia/Kolkata"], "2025-06-04T12:00:00Z", "2025-06-04T18:30:00.000Z"],
  ];
  it.each(table)("%s", (_name, windows, now, expected) => {
    expect(until(windows, now)).toBe(expected);
  });

  it("the cached offset matches Intl's wall clock at random instants around transitions", () => {
    const r = rng("zone offsets");
    const zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago", "UTC", "Pacific/Chatham"];
    for (let i = 0; i < 3000; i++) {
      const zone = r.pick(zones);
      const ms = Date.UTC(2025, 0, 1) + r.int(0, 365 * 24 * 3600) * 1000;
      const off = zoneOffset(zone, ms)!;
      const fmt = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" }).format(new Date(ms));
      const m = /GMT(?:([+-])(\d\d):(\d\d))?/.exec(fmt)!;
      const expected = m[1] === undefined ? 0 : (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60);
      expect(off, r.where(`${zone} ${new Date(ms).toISOString()}`)).toBe(expected);
    }
  });

  it("until is exactly where conditionsHold stops holding (seeded, near DST changes)", () => {
    const r = rng("until vs oracle");
    const zones = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "America/Santiago", "Asia/Kolkata"];
    const transitions = [Date.UTC(2025, 2, 30, 1), Date.UTC(2025, 9, 26, 1), Date.UTC(2025, 2, 9, 7), Date.UTC(2025, 10, 2, 6), Date.UTC(2025, 3, 5, 15), Date.UTC(2025, 8, 6, 3)];
    let checked = 0;
    for (let i = 0; i < 400; i++) {
      const values = randomWindows(r, r.pick(zones.slice(0, r.int(1, zones.length))), zones);
      const condition = cond("current_utc_datetime", "is_in_day_of_week_time_ranges", values);
      const p = policy([condition]);
      if (p.checks === null) continue;
      const compiled = (p.checks[0] as { windows: ReturnType<typeof compileTimeWindows> }).windows;
      const now = r.pick(transitions) + r.int(-36 * 3600, 36 * 3600) * 1000;
      const oracle = (ms: number): boolean => conditionsHold([condition], { now: new Date(ms) }).holds;
      const where = r.where(`${JSON.stringify(values)} at ${new Date(now).toISOString()}`);
      expect(windowsAdmit(compiled, now), where).toBe(oracle(now));
      const end = windowsEnd(compiled, now);
      if (!oracle(now)) {
        expect(end, where).toBeUndefined();
        continue;
      }
      checked++;
      if (end === null) {
        for (let k = 0; k < 20; k++) expect(oracle(now + r.int(0, 30 * 24 * 3600) * 1000), where).toBe(true);
        continue;
      }
      expect(end!, where).toBeGreaterThan(now);
      expect(oracle(end!), `${where} closed at ${new Date(end!).toISOString()}`).toBe(false);
      expect(oracle(end! - 1000), `${where} open just before ${new Date(end!).toISOString()}`).toBe(true);
      for (let t = now; t < end!; t += Math.max(1000, Math.floor((end! - now) / 50))) expect(oracle(t), `${where} open at ${new Date(t).toISOString()}`).toBe(true);
    }
    expect(checked).toBeGreaterThan(50);
  });
});

function randomWindows(r: Rng, zone: string, zones: string[]): string[] {
  const days = ["M", "T", "W", "R", "F", "S", "U"];
  const out: string[] = [];
  const count = r.int(1, 9);
  for (let i = 0; i < count; i++) {
    const z = r.bool(0.8) ? zone : r.pick(zones);
    const clock = (s: number): string => `${String(Math.floor(s / 3600)).padStart(2, "0")}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}`;
    if (r.bool(0.25)) {
      out.push(`${r.pick(days)}/true/${z}`);
      continue;
    }
    const start = r.int(0, 47) * 1800;
    const end = r.bool(0.3) ? 86400 : Math.min(86400, start + r.int(1, 24) * 1800);
    out.push(`${r.pick(days)}/${clock(start)}-${end === 86400 ? "24:00" : clock(end)}/${z}`);
  }
  return out;
}

describe("evaluate against conditionsHold (seeded)", () => {
  it("agrees on the verdict and the violated properties for random policies and subjects", () => {
    const r = rng("evaluate vs oracle");
    const regions = ["DE", "US", "FR", "de", "ZZ", null, " us "];
    const ips = ["10.1.2.3", "203.0.113.7", "2001:db8::5", "::ffff:10.9.9.9", null, "bogus", "192.168.0.1"];
    const providers = [PROVIDER, "22222222-2222-4222-8222-222222222222", null, "nope"];
    const cidrs = ["10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32", "192.168.0.0/16", "0.0.0.0/0", "::/0", "10.1.2.3"];
    for (let i = 0; i < 2000; i++) {
      const conditions: PolicyCondition[] = [];
      if (r.bool(0.4)) conditions.push(cond("remote_ip", r.pick(["is_in_cidr", "is_not_in_cidr"]), r.shuffle([...cidrs]).slice(0, r.int(1, 3))));
      if (r.bool(0.4)) conditions.push(cond("remote_ip_location_region", r.pick(["is_in", "is_not_in"]), r.shuffle(["DE", "US", "FR", "GB"]).slice(0, r.int(1, 2))));
      if (r.bool(0.4)) conditions.push(cond("provider_id", r.pick(["is_in", "is_not_in"]), [r.pick(providers.slice(0, 2)) as string]));
      if (r.bool(0.4)) conditions.push(cond("client_verified", "is", [r.pick(["true", "false"])]));
      if (r.bool(0.4)) conditions.push(cond("current_utc_datetime", "is_in_day_of_week_time_ranges", randomWindows(r, "Europe/Berlin", ["UTC", "America/New_York"])));
      r.shuffle(conditions);
      const s = subject({ clientIp: r.pick(ips), region: r.pick(regions), providerId: r.pick(providers), clientVerified: r.bool() });
      const now = new Date(Date.UTC(2025, 0, 1) + r.int(0, 365 * 24 * 3600) * 1000);
      const p = policy(conditions);
      const decision = evaluate([p], s, RESOURCE, now);
      const oracle = conditionsHold(conditions, {
        now,
        clientVerified: s.clientVerified,
        ...(s.clientIp !== null ? { remoteIp: s.clientIp } : {}),
        ...(s.region !== null ? { region: s.region } : {}),
        ...(s.providerId !== null ? { providerId: s.providerId } : {}),
      });
      const where = r.where(JSON.stringify({ conditions, s: { ...s, groupIds: undefined }, now }));
      expect(decision.allowed, where).toBe(oracle.holds);
      if (!decision.allowed) expect(decision.violated[0]!.conditions.map((c) => c.property), where).toEqual(oracle.violated);
    }
  });
});
