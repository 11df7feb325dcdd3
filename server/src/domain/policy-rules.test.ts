// Policy validation: accepted and refused examples for every rule (each refusal by code and field),
// time windows against a daylight-saving oracle written here from the EU and US rules, evaluation that
// fails closed, and a fuzz pass: random conditions never throw, and what is accepted is canonical.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import {
  CONDITION_OPERATORS,
  DESCRIPTION_MAX,
  canonicalTimeZone,
  conditionsHold,
  formatTimeWindow,
  parseTimeWindow,
  validatePolicy,
  validatePolicyConditions,
  wallClock,
  type ConditionContext,
  type ConditionOperator,
  type ConditionProperty,
  type ConditionsValidation,
  type ConditionsVerdict,
  type NormalizedPolicy,
  type PolicyCondition,
  type PolicyContext,
  type TimeWindow,
} from "./policy-rules.js";
import type { FieldError } from "./resource-rules.js";

beforeEach(reportSeedOnFailure);

const GROUP = "0b7c4a2e-6f1d-4c3b-9a8e-2d5f7e9c1a01";
const RESOURCE = "5e3d1c9b-7a6f-4e2d-8c1b-0a9f8e7d6c02";
const PROVIDER = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e03";
const OTHER_PROVIDER = "d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f04";

type Refusal = Pick<FieldError, "field" | "code">;

function accepted(input: unknown, context: PolicyContext = {}): NormalizedPolicy {
  const result = validatePolicy(input, context);
  if (!result.ok) throw new Error(`refused ${JSON.stringify(input)}: ${JSON.stringify(result.errors)}`);
  return result.value;
}

function refusals(input: unknown, context: PolicyContext = {}): Refusal[] {
  const result = validatePolicy(input, context);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(input)}: ${JSON.stringify(result.value)}`);
  for (const error of result.errors) expect(error.message.length, JSON.stringify(error)).toBeGreaterThan(0);
  return result.errors.map(({ field, code }) => ({ field, code }));
}

function conditionsOf(conditions: unknown): PolicyCondition[] {
  const result = validatePolicyConditions(conditions);
  if (!result.ok) throw new Error(`refused ${JSON.stringify(conditions)}: ${JSON.stringify(result.errors)}`);
  return result.value;
}

function conditionRefusals(conditions: unknown): Refusal[] {
  const result = validatePolicyConditions(conditions);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(conditions)}: ${JSON.stringify(result.value)}`);
  for (const error of result.errors) expect(error.message.length, JSON.stringify(error)).toBeGreaterThan(0);
  return result.errors.map(({ field, code }) => ({ field, code }));
}

const condition = (property: string, operator: string, values: unknown): Record<string, unknown> => ({ property, operator, values });
const window = (...values: string[]): Record<string, unknown> => condition("current_utc_datetime", "is_in_day_of_week_time_ranges", values);

/** A valid first condition, so the one under test sits at conditions/1. */
const VERIFIED = condition("client_verified", "is", ["true"]);

describe("validatePolicy", () => {
  it("accepts a group and a resource, lowercasing and trimming ids; disabled defaults to false", () => {
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE })).toStrictEqual({ groupId: GROUP, resourceId: RESOURCE, disabled: false, conditions: [] });
    expect(accepted({ groupId: ` ${GROUP.toUpperCase()} `, resourceId: RESOURCE.toUpperCase(), disabled: null, conditions: null })).toStrictEqual({
      groupId: GROUP,
      resourceId: RESOURCE,
      disabled: false,
      conditions: [],
    });
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE, disabled: true, conditions: [] }).disabled).toBe(true);
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE, disabled: false }).disabled).toBe(false);
  });

  it("trims the description, drops an empty one, and counts characters, not UTF-16 units", () => {
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE, description: "  Engineering reaches the wiki  " }).description).toBe("Engineering reaches the wiki");
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE, description: "   " })).not.toHaveProperty("description");
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE, description: null })).not.toHaveProperty("description");
    expect([...accepted({ groupId: GROUP, resourceId: RESOURCE, description: "🔑".repeat(DESCRIPTION_MAX) }).description!]).toHaveLength(DESCRIPTION_MAX);
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE, description: ` ${"x".repeat(DESCRIPTION_MAX)} ` }).description).toHaveLength(DESCRIPTION_MAX);
  });

  it("drops unknown fields rather than storing them", () => {
    const value = accepted({ groupId: GROUP, resourceId: RESOURCE, id: "x", accountId: GROUP, actorGroupId: 7, conditions: [{ ...VERIFIED, note: "x" }] });
    expect(value).toStrictEqual({ groupId: GROUP, resourceId: RESOURCE, disabled: false, conditions: [VERIFIED] });
  });

  it("normalizes its conditions and passes their notices on", () => {
    const result = validatePolicy({ groupId: GROUP, resourceId: RESOURCE, conditions: [VERIFIED, condition("remote_ip", "is_in_cidr", ["10.1.2.3/8"])] });
    expect(result).toStrictEqual({
      ok: true,
      value: { groupId: GROUP, resourceId: RESOURCE, disabled: false, conditions: [VERIFIED, condition("remote_ip", "is_in_cidr", ["10.0.0.0/8"])] },
      notices: [{ field: "conditions/1/values/0", code: "remote_ip.host_bits_masked", message: expect.stringContaining("10.0.0.0/8") }],
    });
  });

  it("refuses a taken group-resource pair, on resourceId, and only when both ids are valid", () => {
    expect(refusals({ groupId: GROUP, resourceId: RESOURCE }, { pairExists: true })).toStrictEqual([{ field: "resourceId", code: "policy.duplicate" }]);
    expect(refusals({ groupId: "g", resourceId: RESOURCE }, { pairExists: true })).toStrictEqual([{ field: "groupId", code: "policy.group_id" }]);
    expect(accepted({ groupId: GROUP, resourceId: RESOURCE }, { pairExists: false }).groupId).toBe(GROUP);
  });

  it("refuses each wrong field, and reports every wrong field at once", () => {
    const base = { groupId: GROUP, resourceId: RESOURCE };
    const cases: [input: unknown, errors: Refusal[]][] = [
      [null, [{ field: "", code: "policy.type" }]],
      ["policy", [{ field: "", code: "policy.type" }]],
      [[base], [{ field: "", code: "policy.type" }]],
      [{ resourceId: RESOURCE }, [{ field: "groupId", code: "policy.group_id" }]],
      [{ ...base, groupId: "" }, [{ field: "groupId", code: "policy.group_id" }]],
      [{ ...base, groupId: "engineering" }, [{ field: "groupId", code: "policy.group_id" }]],
      [{ ...base, groupId: GROUP.replace(/-/g, "") }, [{ field: "groupId", code: "policy.group_id" }]],
      [{ ...base, groupId: `{${GROUP}}` }, [{ field: "groupId", code: "policy.group_id" }]],
      [{ ...base, groupId: 7 }, [{ field: "groupId", code: "policy.group_id" }]],
      [{ groupId: GROUP }, [{ field: "resourceId", code: "policy.resource_id" }]],
      [{ ...base, resourceId: `${RESOURCE}0` }, [{ field: "resourceId", code: "policy.resource_id" }]],
      [{ ...base, resourceId: RESOURCE.replace("5", "g") }, [{ field: "resourceId", code: "policy.resource_id" }]],
      [{ ...base, description: 5 }, [{ field: "description", code: "description.type" }]],
      [{ ...base, description: "x".repeat(DESCRIPTION_MAX + 1) }, [{ field: "description", code: "description.too_long" }]],
      [{ ...base, description: "🔑".repeat(DESCRIPTION_MAX + 1) }, [{ field: "description", code: "description.too_long" }]],
      [{ ...base, disabled: "yes" }, [{ field: "disabled", code: "disabled.type" }]],
      [{ ...base, disabled: 0 }, [{ field: "disabled", code: "disabled.type" }]],
      [{ ...base, conditions: {} }, [{ field: "conditions", code: "conditions.type" }]],
      [{ ...base, conditions: "client_verified" }, [{ field: "conditions", code: "conditions.type" }]],
      [{ ...base, conditions: [VERIFIED, condition("client_verified", "is", ["false"])] }, [{ field: "conditions/1/property", code: "condition.duplicate_property" }]],
      [
        { groupId: "", resourceId: 1, description: [], disabled: "no", conditions: [condition("remote_ip", "is_in", ["10.0.0.0/8"])] },
        [
          { field: "groupId", code: "policy.group_id" },
          { field: "resourceId", code: "policy.resource_id" },
          { field: "description", code: "description.type" },
          { field: "disabled", code: "disabled.type" },
          { field: "conditions/0/operator", code: "condition.operator" },
        ],
      ],
    ];
    for (const [input, errors] of cases) expect(refusals(input), JSON.stringify(input).slice(0, 200)).toStrictEqual(errors);
  });
});

describe("validatePolicyConditions: shape", () => {
  it("no conditions: undefined, null or an empty list", () => {
    expect(conditionsOf(undefined)).toStrictEqual([]);
    expect(conditionsOf(null)).toStrictEqual([]);
    expect(conditionsOf([])).toStrictEqual([]);
  });

  it("refuses malformed conditions, naming the condition and its part", () => {
    const cases: [conditions: unknown, errors: Refusal[]][] = [
      [{}, [{ field: "conditions", code: "conditions.type" }]],
      [VERIFIED, [{ field: "conditions", code: "conditions.type" }]],
      [[VERIFIED, null], [{ field: "conditions/1", code: "condition.type" }]],
      [[VERIFIED, ["client_verified", "is", ["true"]]], [{ field: "conditions/1", code: "condition.type" }]],
      [[VERIFIED, condition("device_os", "is_in", ["linux"])], [{ field: "conditions/1/property", code: "condition.property" }]],
      [[VERIFIED, condition("Remote_IP", "is_in_cidr", ["10.0.0.0/8"])], [{ field: "conditions/1/property", code: "condition.property" }]],
      [[VERIFIED, { operator: "is", values: ["true"] }], [{ field: "conditions/1/property", code: "condition.property" }]],
      [[VERIFIED, condition("remote_ip", "is_in_cidr", undefined)], [{ field: "conditions/1/values", code: "condition.values_required" }]],
      [[VERIFIED, condition("remote_ip", "is_in_cidr", [])], [{ field: "conditions/1/values", code: "condition.values_required" }]],
      [[VERIFIED, condition("remote_ip", "is_in_cidr", "10.0.0.0/8")], [{ field: "conditions/1/values", code: "condition.values_required" }]],
      [[VERIFIED, condition("remote_ip", "is_in_cidr", ["10.0.0.0/8", 10, null])], [
        { field: "conditions/1/values/1", code: "condition.value_type" },
        { field: "conditions/1/values/2", code: "condition.value_type" },
      ]],
      // A hole is no value; the condition must not vanish with it.
      [[VERIFIED, condition("remote_ip", "is_in_cidr", new Array(1))], [{ field: "conditions/1/values/0", code: "condition.value_type" }]],
      // Every condition is checked, and every error reported.
      [
        [condition("provider_id", "is_in", ["x"]), null, condition("client_verified", "is", ["maybe"])],
        [
          { field: "conditions/0/values/0", code: "provider_id.invalid" },
          { field: "conditions/1", code: "condition.type" },
          { field: "conditions/2/values/0", code: "client_verified.value" },
        ],
      ],
    ];
    for (const [conditions, errors] of cases) expect(conditionRefusals(conditions), JSON.stringify(conditions)).toStrictEqual(errors);
  });

  it("one condition per property: a second one is refused, pointing at the first", () => {
    const result = validatePolicyConditions([
      condition("remote_ip", "is_in_cidr", ["10.0.0.0/8"]),
      VERIFIED,
      condition("remote_ip", "is_not_in_cidr", ["10.1.0.0/16"]),
    ]);
    expect(result).toStrictEqual({
      ok: false,
      errors: [{ field: "conditions/2/property", code: "condition.duplicate_property", message: expect.stringContaining("conditions/0") }],
    });
  });

  it("each property takes exactly its own operators", () => {
    const valid: Record<ConditionProperty, string> = {
      remote_ip: "10.0.0.0/8",
      remote_ip_location_region: "DE",
      provider_id: PROVIDER,
      current_utc_datetime: "M/true/UTC",
      client_verified: "true",
    };
    const allOperators = [...new Set(Object.values(CONDITION_OPERATORS).flat())];
    expect(allOperators).toHaveLength(6);
    expect(CONDITION_OPERATORS).toStrictEqual({
      remote_ip: ["is_in_cidr", "is_not_in_cidr"],
      remote_ip_location_region: ["is_in", "is_not_in"],
      provider_id: ["is_in", "is_not_in"],
      current_utc_datetime: ["is_in_day_of_week_time_ranges"],
      client_verified: ["is"],
    });
    for (const [property, operators] of Object.entries(CONDITION_OPERATORS) as [ConditionProperty, readonly ConditionOperator[]][]) {
      for (const operator of [...allOperators, "IS", "contains", "", undefined, 1]) {
        const input = [VERIFIED, condition(property, operator as string, [valid[property]])].slice(property === "client_verified" ? 1 : 0);
        const at = property === "client_verified" ? 0 : 1;
        const result = validatePolicyConditions(input);
        const where = `${property} ${String(operator)}`;
        if ((operators as readonly unknown[]).includes(operator)) {
          expect(result.ok, where).toBe(true);
        } else {
          expect(result.ok, where).toBe(false);
          if (!result.ok) expect(result.errors.map(({ field, code }) => ({ field, code })), where).toStrictEqual([{ field: `conditions/${at}/operator`, code: "condition.operator" }]);
        }
      }
    }
  });
});

describe("validatePolicyConditions: values", () => {
  it("remote_ip: CIDRs and bare addresses (a host), IPv4 and IPv6, canonical, deduplicated, host bits masked with a notice", () => {
    for (const operator of ["is_in_cidr", "is_not_in_cidr"]) {
      const result = validatePolicyConditions([
        condition("remote_ip", operator, [
          "10.0.0.0/8",
          " 192.168.1.77/24 ",
          "203.0.113.5",
          "2001:DB8:0:0:0:0:0:1",
          "2001:db8::/32",
          "0.0.0.0/0",
          "::/0",
          "10.0.0.0/8",
          "203.0.113.5/32",
          "64:ff9b::192.0.2.33",
        ]),
      ]);
      expect(result, operator).toStrictEqual({
        ok: true,
        value: [
          condition("remote_ip", operator, ["10.0.0.0/8", "192.168.1.0/24", "203.0.113.5/32", "2001:db8::1/128", "2001:db8::/32", "0.0.0.0/0", "::/0", "64:ff9b::c000:221/128"]),
        ],
        notices: [{ field: "conditions/0/values/1", code: "remote_ip.host_bits_masked", message: expect.stringContaining("192.168.1.0/24") }],
      });
    }
  });

  it("remote_ip: refuses what is not an address or a CIDR, and IPv4-mapped IPv6", () => {
    const cases: [value: string, code: string][] = [
      ["", "remote_ip.invalid"],
      ["example.com", "remote_ip.invalid"],
      ["10.0.0", "remote_ip.invalid"],
      ["10.0.0.256", "remote_ip.invalid"],
      ["010.0.0.1", "remote_ip.invalid"],
      ["[2001:db8::1]", "remote_ip.invalid"],
      ["fe80::1%eth0", "remote_ip.invalid"],
      ["10.0.0.1:443", "remote_ip.invalid"],
      ["10.0.0/8", "remote_ip.invalid"],
      ["/24", "remote_ip.invalid"],
      ["10.0.0.0/33", "remote_ip.prefix_length"],
      ["10.0.0.0/", "remote_ip.prefix_length"],
      ["10.0.0.0/08", "remote_ip.prefix_length"],
      ["2001:db8::/129", "remote_ip.prefix_length"],
      ["::ffff:10.0.0.1", "remote_ip.ipv4_mapped"],
      ["::ffff:0:0/96", "remote_ip.ipv4_mapped"],
      ["::ffff:10.0.0.0/104", "remote_ip.ipv4_mapped"],
    ];
    for (const [value, code] of cases) {
      expect(conditionRefusals([VERIFIED, condition("remote_ip", "is_in_cidr", ["10.0.0.0/8", value])]), value).toStrictEqual([{ field: "conditions/1/values/1", code }]);
    }
  });

  it("remote_ip_location_region: ISO 3166-1 alpha-2 codes and XK, uppercased, deduplicated", () => {
    for (const operator of ["is_in", "is_not_in"]) {
      expect(conditionsOf([condition("remote_ip_location_region", operator, ["de", " US ", "XK", "DE", "Gb", "AQ"])])).toStrictEqual([
        condition("remote_ip_location_region", operator, ["DE", "US", "XK", "GB", "AQ"]),
      ]);
    }
    const cases: [value: string, code: string][] = [
      ["", "region.invalid"],
      ["D", "region.invalid"],
      ["DEU", "region.invalid"],
      ["276", "region.invalid"],
      ["D1", "region.invalid"],
      ["ß", "region.invalid"], // upper-cases to "SS", South Sudan
      ["ﬆ", "region.invalid"], // upper-cases to "ST"
      ["ZZ", "region.unknown"],
      ["UK", "region.unknown"], // the United Kingdom is GB
      ["EU", "region.unknown"],
      ["AA", "region.unknown"],
    ];
    for (const [value, code] of cases) {
      expect(conditionRefusals([VERIFIED, condition("remote_ip_location_region", "is_in", ["FR", value])]), value).toStrictEqual([{ field: "conditions/1/values/1", code }]);
    }
  });

  it("provider_id: UUIDs, lowercased, deduplicated", () => {
    for (const operator of ["is_in", "is_not_in"]) {
      expect(conditionsOf([condition("provider_id", operator, [` ${PROVIDER.toUpperCase()} `, OTHER_PROVIDER, PROVIDER])])).toStrictEqual([
        condition("provider_id", operator, [PROVIDER, OTHER_PROVIDER]),
      ]);
    }
    for (const value of ["", "google", PROVIDER.replace(/-/g, ""), `{${PROVIDER}}`, `urn:uuid:${PROVIDER}`, PROVIDER.slice(1), PROVIDER.replace("c", "x")]) {
      expect(conditionRefusals([VERIFIED, condition("provider_id", "is_in", [PROVIDER, value])]), value).toStrictEqual([{ field: "conditions/1/values/1", code: "provider_id.invalid" }]);
    }
  });

  it('client_verified: one value, "true" or "false"', () => {
    expect(conditionsOf([condition("client_verified", "is", ["true"])])).toStrictEqual([condition("client_verified", "is", ["true"])]);
    expect(conditionsOf([condition("client_verified", "is", [" FALSE "])])).toStrictEqual([condition("client_verified", "is", ["false"])]);
    const cases: [values: unknown, errors: Refusal[]][] = [
      [["yes"], [{ field: "conditions/1/values/0", code: "client_verified.value" }]],
      [["1"], [{ field: "conditions/1/values/0", code: "client_verified.value" }]],
      [[""], [{ field: "conditions/1/values/0", code: "client_verified.value" }]],
      [[true], [{ field: "conditions/1/values/0", code: "condition.value_type" }]],
      [["true", "false"], [{ field: "conditions/1/values", code: "client_verified.values" }]],
      [["true", "true"], [{ field: "conditions/1/values", code: "client_verified.values" }]],
      [[], [{ field: "conditions/1/values", code: "condition.values_required" }]],
    ];
    for (const [values, errors] of cases) {
      expect(conditionRefusals([condition("remote_ip", "is_in_cidr", ["10.0.0.0/8"]), condition("client_verified", "is", values)]), JSON.stringify(values)).toStrictEqual(errors);
    }
  });

  it("current_utc_datetime: time windows in canonical form, each refusal on its value", () => {
    expect(conditionsOf([window("Mon/09:00-17:00/Europe/Berlin", "sat/TRUE/utc")])).toStrictEqual([window("M/09:00-17:00/Europe/Berlin", "S/true/UTC")]);
    expect(conditionRefusals([VERIFIED, window("M/true/UTC", "M/17:00-09:00/UTC", "X/true/UTC")])).toStrictEqual([
      { field: "conditions/1/values/1", code: "time.inverted_range" },
      { field: "conditions/1/values/2", code: "time.day" },
    ]);
  });
});

describe("time windows", () => {
  it("parses Firezone's form and writes it back canonical", () => {
    const cases: [given: string, written: string, parsed: TimeWindow][] = [
      ["M/09:00-17:00/Europe/Berlin", "M/09:00-17:00/Europe/Berlin", { day: 1, ranges: [[32400, 61200]], zone: "Europe/Berlin" }],
      ["Mon/09:00-17:00/Europe/Berlin", "M/09:00-17:00/Europe/Berlin", { day: 1, ranges: [[32400, 61200]], zone: "Europe/Berlin" }],
      ["T/true/UTC", "T/true/UTC", { day: 2, ranges: [[0, 86400]], zone: "UTC" }],
      ["tue/True/UTC", "T/true/UTC", { day: 2, ranges: [[0, 86400]], zone: "UTC" }],
      ["W/00:00-24:00/UTC", "W/true/UTC", { day: 3, ranges: [[0, 86400]], zone: "UTC" }],
      ["WED/00:00-12:00,12:00-24:00/UTC", "W/true/UTC", { day: 3, ranges: [[0, 86400]], zone: "UTC" }],
      ["R/22:00-24:00/America/New_York", "R/22:00-24:00/America/New_York", { day: 4, ranges: [[79200, 86400]], zone: "America/New_York" }],
      ["Thu/00:00-06:00/America/New_York", "R/00:00-06:00/America/New_York", { day: 4, ranges: [[0, 21600]], zone: "America/New_York" }],
      ["f/13:00-14:00, 09:00-12:00/UTC", "F/09:00-12:00,13:00-14:00/UTC", { day: 5, ranges: [[32400, 43200], [46800, 50400]], zone: "UTC" }],
      ["Fri/09:00-12:00,11:00-13:00,13:00-14:00/UTC", "F/09:00-14:00/UTC", { day: 5, ranges: [[32400, 50400]], zone: "UTC" }],
      ["S/09:00:30-17:00:00/UTC", "S/09:00:30-17:00/UTC", { day: 6, ranges: [[32430, 61200]], zone: "UTC" }],
      ["Sat/23:59:59-24:00:00/Etc/GMT-14", "S/23:59:59-24:00/Etc/GMT-14", { day: 6, ranges: [[86399, 86400]], zone: "Etc/GMT-14" }],
      [" u / 00:00 - 00:01 / europe/berlin ", "U/00:00-00:01/Europe/Berlin", { day: 7, ranges: [[0, 60]], zone: "Europe/Berlin" }],
      ["Sun/true/US/Eastern", "U/true/America/New_York", { day: 7, ranges: [[0, 86400]], zone: "America/New_York" }],
    ];
    for (const [given, written, parsed] of cases) {
      expect(parseTimeWindow(given), given).toStrictEqual({ ok: true, window: parsed });
      expect(formatTimeWindow(parsed), given).toBe(written);
      expect(parseTimeWindow(written), written).toStrictEqual({ ok: true, window: parsed });
    }
  });

  it("refuses wrong days, ranges and zones, each with its code", () => {
    const cases: [text: string, code: string][] = [
      ["", "time.format"],
      ["M", "time.format"],
      ["M/09:00-17:00", "time.format"],
      ["M 09:00-17:00 UTC", "time.format"],
      ["/09:00-17:00/UTC", "time.day"],
      ["X/09:00-17:00/UTC", "time.day"],
      ["1/09:00-17:00/UTC", "time.day"],
      ["Mo/09:00-17:00/UTC", "time.day"],
      ["Monday/09:00-17:00/UTC", "time.day"],
      ["Th/09:00-17:00/UTC", "time.day"],
      ["ſ/09:00-17:00/UTC", "time.day"], // upper-cases to "S"
      ["X/bad/Mars/Olympus", "time.day"], // the day is checked first
      ["M//UTC", "time.range"],
      ["M/false/UTC", "time.range"],
      ["M/09:00/UTC", "time.range"],
      ["M/9:00-17:00/UTC", "time.range"],
      ["M/09-17/UTC", "time.range"],
      ["M/09:00-17:00,/UTC", "time.range"],
      ["M/09:60-10:00/UTC", "time.range"],
      ["M/09:00-17:00:60/UTC", "time.range"],
      ["M/25:00-26:00/UTC", "time.range"],
      ["M/09:00-24:01/UTC", "time.range"],
      ["M/09:00-24:00:01/UTC", "time.range"],
      ["M/24:00-24:00/UTC", "time.range"], // 24:00 only ends a range
      ["M/9am-5pm/UTC", "time.range"],
      ["M/17:00-09:00/UTC", "time.inverted_range"],
      ["M/22:00-06:00/UTC", "time.inverted_range"],
      ["M/09:00-09:00/UTC", "time.inverted_range"],
      ["M/09:00-10:00,12:00-11:00/UTC", "time.inverted_range"],
      ["M/09:00-17:00/", "time.zone"],
      ["M/09:00-17:00/Mars/Olympus", "time.zone"],
      ["M/09:00-17:00/+01:00", "time.zone"],
      ["M/09:00-17:00/UTC+1", "time.zone"],
      ["M/09:00-17:00/Europe/Berlin/x", "time.zone"],
      ["M/09:00-17:00/Europe Berlin", "time.zone"],
    ];
    for (const [text, code] of cases) {
      const result = parseTimeWindow(text);
      expect(result, text).toStrictEqual({ ok: false, code, message: expect.any(String) });
      expect(conditionRefusals([VERIFIED, window("M/true/UTC", text)]), text).toStrictEqual([{ field: "conditions/1/values/1", code }]);
    }
  });

  it("canonicalTimeZone: the runtime's name for a zone; offsets and unknown names are not zones", () => {
    const cases: [zone: string, canonical: string | undefined][] = [
      ["UTC", "UTC"],
      ["utc", "UTC"],
      ["Etc/UTC", "UTC"],
      ["Europe/Berlin", "Europe/Berlin"],
      ["europe/berlin", "Europe/Berlin"],
      ["EUROPE/BERLIN", "Europe/Berlin"],
      ["America/New_York", "America/New_York"],
      ["US/Eastern", "America/New_York"],
      ["Etc/GMT+5", "Etc/GMT+5"],
      ["", undefined],
      ["+01:00", undefined],
      ["-05:00", undefined],
      ["UTC+01:00", undefined],
      ["Mars/Olympus", undefined],
      ["Europe/Berlin ", undefined],
      ["Europe/Berlin\n", undefined],
      ["../etc/localtime", undefined],
      ["/Europe/Berlin", undefined],
    ];
    for (const [zone, canonical] of cases) expect(canonicalTimeZone(zone), JSON.stringify(zone)).toBe(canonical);
    // The cache answers the same the second time.
    expect(canonicalTimeZone("Mars/Olympus")).toBeUndefined();
    expect(canonicalTimeZone("europe/berlin")).toBe("Europe/Berlin");
  });

  it("wallClock reads the zone's clock across daylight-saving changes", () => {
    const cases: [instant: string, zone: string, day: number, clock: string][] = [
      // Europe/Berlin springs forward on Sunday 2026-03-29 at 01:00Z: 02:00 CET becomes 03:00 CEST.
      ["2026-03-29T00:59:59Z", "Europe/Berlin", 7, "01:59:59"],
      ["2026-03-29T01:00:00Z", "Europe/Berlin", 7, "03:00:00"],
      ["2026-03-28T23:00:00Z", "Europe/Berlin", 7, "00:00:00"],
      ["2026-03-29T22:00:00Z", "Europe/Berlin", 1, "00:00:00"],
      // ...and falls back on Sunday 2026-10-25 at 01:00Z: 03:00 CEST becomes 02:00 CET.
      ["2026-10-25T00:59:59Z", "Europe/Berlin", 7, "02:59:59"],
      ["2026-10-25T01:00:00Z", "Europe/Berlin", 7, "02:00:00"],
      // America/New_York springs forward on Sunday 2026-03-08 at 07:00Z, falls back on 2026-11-01 at 06:00Z.
      ["2026-03-08T06:59:59Z", "America/New_York", 7, "01:59:59"],
      ["2026-03-08T07:00:00Z", "America/New_York", 7, "03:00:00"],
      ["2026-11-01T05:59:59Z", "America/New_York", 7, "01:59:59"],
      ["2026-11-01T06:00:00Z", "America/New_York", 7, "01:00:00"],
      ["2026-03-10T03:00:00Z", "America/New_York", 1, "23:00:00"],
      ["2026-03-10T03:00:00Z", "UTC", 2, "03:00:00"],
      ["2026-01-01T00:00:00Z", "UTC", 4, "00:00:00"],
      ["2026-01-01T23:59:59Z", "Etc/GMT-14", 5, "13:59:59"],
    ];
    const seconds = (clock: string): number => clock.split(":").reduce((sum, part) => sum * 60 + Number(part), 0);
    for (const [instant, zone, day, clock] of cases) {
      expect(wallClock(new Date(instant), zone), `${instant} ${zone}`).toStrictEqual({ day, seconds: seconds(clock) });
    }
    expect(wallClock(new Date(Number.NaN), "UTC")).toBeUndefined();
    expect(wallClock(new Date("2026-01-01T00:00:00Z"), "Mars/Olympus")).toBeUndefined();
  });

  it("property: wallClock agrees with the EU and US daylight-saving rules, and windows with the clock", () => {
    const zones = ["Europe/Berlin", "America/New_York", "UTC", "Etc/GMT+5", "Etc/GMT-14"];
    const from = Date.UTC(2010, 0, 1);
    const to = Date.UTC(2036, 0, 1);
    for (let i = 0; i < 1500; i++) {
      const r = rng(`policy/wall-clock#${i}`);
      // Half the instants within two hours of a change, where mistakes live.
      let ms = r.int(from / 1000, to / 1000) * 1000;
      if (r.bool()) {
        const year = new Date(ms).getUTCFullYear();
        const changes = [...dstChanges("Europe/Berlin", year), ...dstChanges("America/New_York", year)];
        ms = r.pick(changes) + r.int(-7200, 7200) * 1000;
      }
      const instant = new Date(ms);
      const zone = r.pick(zones);
      const expected = oracleWallClock(ms, zone);
      expect(wallClock(instant, zone), r.where(`${instant.toISOString()} ${zone}`)).toStrictEqual(expected);

      const windows = Array.from({ length: r.int(1, 3) }, () => randomWindow(r, zone));
      const holds = windows.some((w) => w.day === expected.day && w.ranges.some(([start, end]) => expected.seconds >= start && expected.seconds < end));
      const values = windows.map(formatTimeWindow);
      expect(conditionsHold([window(...values) as unknown as PolicyCondition], { now: instant }).holds, r.where(`${values.join(" ")} at ${instant.toISOString()}`)).toBe(holds);
    }
  });
});

// --- Daylight-saving oracle ---

const HOUR = 3600_000;

/** The UTC instants of a zone's two changes in `year`: EU last Sundays of March and October at 01:00Z; US since 2007. */
function dstChanges(zone: "Europe/Berlin" | "America/New_York", year: number): [start: number, end: number] {
  const sunday = (month: number, nth: number): number => {
    // nth > 0: the nth Sunday of the month; nth = -1: the last.
    if (nth > 0) {
      const first = new Date(Date.UTC(year, month, 1)).getUTCDay();
      return Date.UTC(year, month, 1 + ((7 - first) % 7) + 7 * (nth - 1));
    }
    const last = new Date(Date.UTC(year, month + 1, 0));
    return Date.UTC(year, month, last.getUTCDate() - last.getUTCDay());
  };
  if (zone === "Europe/Berlin") return [sunday(2, -1) + HOUR, sunday(9, -1) + HOUR];
  return [sunday(2, 2) + 7 * HOUR, sunday(10, 1) + 6 * HOUR];
}

function oracleWallClock(ms: number, zone: string): { day: number; seconds: number } {
  const year = new Date(ms).getUTCFullYear();
  let offsetHours: number;
  if (zone === "Europe/Berlin" || zone === "America/New_York") {
    const [start, end] = dstChanges(zone, year);
    const summer = ms >= start && ms < end;
    offsetHours = zone === "Europe/Berlin" ? (summer ? 2 : 1) : summer ? -4 : -5;
  } else {
    // POSIX-style Etc names: Etc/GMT+5 is five hours behind.
    const match = /^Etc\/GMT([+-]\d+)$/.exec(zone);
    offsetHours = match === null ? 0 : -Number(match[1]);
  }
  const local = new Date(ms + offsetHours * HOUR);
  return { day: ((local.getUTCDay() + 6) % 7) + 1, seconds: local.getUTCHours() * 3600 + local.getUTCMinutes() * 60 + local.getUTCSeconds() };
}

function randomClock(r: Rng): number {
  return r.pick([0, 0, r.int(0, 24) * 3600, r.int(0, 24 * 60) * 60, r.int(0, 86400)]);
}

function randomWindow(r: Rng, zone: string): TimeWindow {
  const ranges: [number, number][] = [];
  for (let k = r.int(1, 3); k > 0; k--) {
    const a = randomClock(r);
    const b = randomClock(r);
    if (a !== b) ranges.push([Math.min(a, b), Math.max(a, b)]);
  }
  if (ranges.length === 0) ranges.push([0, 86400]);
  ranges.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return { day: r.int(1, 7), ranges: merged, zone };
}

describe("conditionsHold", () => {
  const NOW = new Date("2026-03-10T12:00:00Z"); // a Tuesday
  const at = (context: Partial<ConditionContext>): ConditionContext => ({ now: NOW, ...context });
  const holds = (conditions: Record<string, unknown>[], context: Partial<ConditionContext>): boolean =>
    conditionsHold(conditions as unknown as PolicyCondition[], at(context)).holds;

  it("no conditions always hold", () => {
    expect(conditionsHold([], at({}))).toStrictEqual({ holds: true, violated: [] });
  });

  it("remote_ip: in and not in, IPv4, IPv6 and IPv4-mapped clients; no address fails closed", () => {
    const ranges = ["10.0.0.0/8", "203.0.113.5", "2001:db8::/32"];
    const cases: [remoteIp: string | undefined, inside: boolean | undefined][] = [
      ["10.1.2.3", true],
      [" 10.255.255.255 ", true],
      ["11.0.0.0", false],
      ["203.0.113.5", true],
      ["203.0.113.6", false],
      ["2001:db8::1", true],
      ["2001:DB8:FFFF::1", true],
      ["2001:db9::1", false],
      ["::ffff:10.1.2.3", true], // IPv4-mapped counts as IPv4
      ["::ffff:203.0.113.5", true],
      ["::ffff:11.0.0.1", false],
      ["::a01:203", false], // IPv4-compatible is not mapped: 10.1.2.3 only in the low bits
      // Fail closed: neither operator holds without a usable address.
      [undefined, undefined],
      ["", undefined],
      ["not an address", undefined],
      ["10.1.2.3/32", undefined],
      ["fe80::1%eth0", undefined],
    ];
    for (const [remoteIp, inside] of cases) {
      const where = String(remoteIp);
      expect(holds([condition("remote_ip", "is_in_cidr", ranges)], { remoteIp }), where).toBe(inside === true);
      expect(holds([condition("remote_ip", "is_not_in_cidr", ranges)], { remoteIp }), where).toBe(inside === false);
    }
    expect(holds([condition("remote_ip", "is_in_cidr", ["0.0.0.0/0"])], { remoteIp: "::ffff:192.0.2.1" })).toBe(true);
    expect(holds([condition("remote_ip", "is_in_cidr", ["::/0"])], { remoteIp: "2001:db8::1" })).toBe(true);
  });

  it("remote_ip_location_region: in and not in; no region or an unknown one fails closed", () => {
    const cases: [region: string | undefined, inside: boolean | undefined][] = [
      ["DE", true],
      [" at ", true],
      ["US", false],
      [undefined, undefined],
      ["", undefined],
      ["ZZ", undefined],
      ["DEU", undefined],
      ["ß", undefined], // not "SS"
    ];
    for (const [region, inside] of cases) {
      expect(holds([condition("remote_ip_location_region", "is_in", ["DE", "AT"])], { region }), String(region)).toBe(inside === true);
      expect(holds([condition("remote_ip_location_region", "is_not_in", ["DE", "AT"])], { region }), String(region)).toBe(inside === false);
    }
  });

  it("provider_id: in and not in; no provider fails closed", () => {
    const cases: [providerId: string | undefined, inside: boolean | undefined][] = [
      [PROVIDER, true],
      [PROVIDER.toUpperCase(), true],
      [OTHER_PROVIDER, false],
      [undefined, undefined],
      ["", undefined],
      ["google", undefined],
    ];
    for (const [providerId, inside] of cases) {
      expect(holds([condition("provider_id", "is_in", [PROVIDER])], { providerId }), String(providerId)).toBe(inside === true);
      expect(holds([condition("provider_id", "is_not_in", [PROVIDER])], { providerId }), String(providerId)).toBe(inside === false);
    }
  });

  it("client_verified: holds only when known and equal", () => {
    const cases: [expected: string, clientVerified: boolean | undefined, result: boolean][] = [
      ["true", true, true],
      ["true", false, false],
      ["true", undefined, false],
      ["false", false, true],
      ["false", true, false],
      ["false", undefined, false],
    ];
    for (const [expected, clientVerified, result] of cases) {
      expect(holds([condition("client_verified", "is", [expected])], { clientVerified }), `${expected} ${String(clientVerified)}`).toBe(result);
    }
  });

  it("time windows: the zone's wall clock, across daylight-saving changes, end exclusive", () => {
    const cases: [windows: string[], instant: string, result: boolean][] = [
      // Berlin office hours, the Sunday before and the Sunday of the spring change: 08:00Z, then 07:00Z.
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-22T07:59:59Z", false],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-22T08:00:00Z", true],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-22T15:59:59Z", true],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-22T16:00:00Z", false],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-29T06:59:59Z", false],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-29T07:00:00Z", true],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-29T14:59:59Z", true],
      [["U/09:00-17:00/Europe/Berlin"], "2026-03-29T15:00:00Z", false],
      // 02:00-03:00 does not happen on the spring Sunday, and happens twice on the autumn one.
      [["U/02:00-03:00/Europe/Berlin"], "2026-03-22T01:30:00Z", true],
      [["U/02:00-03:00/Europe/Berlin"], "2026-03-29T00:59:59Z", false],
      [["U/02:00-03:00/Europe/Berlin"], "2026-03-29T01:00:00Z", false],
      [["U/02:00-03:00/Europe/Berlin"], "2026-10-25T00:30:00Z", true],
      [["U/02:00-03:00/Europe/Berlin"], "2026-10-25T01:30:00Z", true],
      [["U/02:00-03:00/Europe/Berlin"], "2026-10-25T02:00:00Z", false],
      // New York office hours before and after its spring change: 14:00Z, then 13:00Z.
      [["U/09:00-17:00/America/New_York"], "2026-03-01T13:59:59Z", false],
      [["U/09:00-17:00/America/New_York"], "2026-03-01T14:00:00Z", true],
      [["U/09:00-17:00/America/New_York"], "2026-03-08T12:59:59Z", false],
      [["U/09:00-17:00/America/New_York"], "2026-03-08T13:00:00Z", true],
      [["U/09:00-17:00/America/New_York"], "2026-03-08T20:59:59Z", true],
      [["U/09:00-17:00/America/New_York"], "2026-03-08T21:00:00Z", false],
      // The day is the zone's day: Monday 23:00 in New York is Tuesday in UTC.
      [["M/true/America/New_York"], "2026-03-10T03:00:00Z", true],
      [["M/true/UTC"], "2026-03-10T03:00:00Z", false],
      [["T/true/UTC"], "2026-03-10T03:00:00Z", true],
      // A night shift is two windows; 24:00 reaches the end of the day, 00:00 starts the next.
      [["M/22:00-24:00/UTC", "T/00:00-06:00/UTC"], "2026-03-09T21:59:59Z", false],
      [["M/22:00-24:00/UTC", "T/00:00-06:00/UTC"], "2026-03-09T23:59:59Z", true],
      [["M/22:00-24:00/UTC", "T/00:00-06:00/UTC"], "2026-03-10T00:00:00Z", true],
      [["M/22:00-24:00/UTC", "T/00:00-06:00/UTC"], "2026-03-10T05:59:59Z", true],
      [["M/22:00-24:00/UTC", "T/00:00-06:00/UTC"], "2026-03-10T06:00:00Z", false],
      [["T/09:00-09:00:01/UTC"], "2026-03-10T09:00:00.999Z", true],
      [["T/09:00-09:00:01/UTC"], "2026-03-10T09:00:01Z", false],
      [["T/true/UTC"], "invalid", false],
    ];
    for (const [windows, instant, result] of cases) {
      expect(conditionsHold([window(...windows) as unknown as PolicyCondition], { now: new Date(instant) }).holds, `${windows.join(" ")} at ${instant}`).toBe(result);
    }
  });

  it("every condition must hold; violated names those that did not, in order", () => {
    const conditions = [
      condition("client_verified", "is", ["true"]),
      condition("remote_ip", "is_in_cidr", ["10.0.0.0/8"]),
      window("T/09:00-17:00/UTC"),
      condition("provider_id", "is_in", [PROVIDER]),
    ] as unknown as PolicyCondition[];
    expect(conditionsHold(conditions, at({ clientVerified: true, remoteIp: "10.0.0.1", providerId: PROVIDER }))).toStrictEqual({ holds: true, violated: [] });
    expect(conditionsHold(conditions, at({ clientVerified: false, remoteIp: "10.0.0.1" }))).toStrictEqual({ holds: false, violated: ["client_verified", "provider_id"] });
    expect(conditionsHold(conditions, { now: new Date("2026-03-10T17:00:00Z"), clientVerified: true, providerId: PROVIDER })).toStrictEqual({
      holds: false,
      violated: ["remote_ip", "current_utc_datetime"],
    });
  });

  it("conditions that do not validate never hold", () => {
    const invalid = (conditions: unknown[]): ReturnType<typeof conditionsHold> =>
      conditionsHold(conditions as PolicyCondition[], at({ remoteIp: "10.0.0.1", clientVerified: true }));
    expect(invalid([condition("remote_ip", "is_in", ["10.0.0.0/8"])])).toStrictEqual({ holds: false, violated: ["remote_ip"] });
    expect(invalid([condition("client_verified", "is", ["true"]), condition("remote_ip", "is_in_cidr", ["bad"])])).toStrictEqual({
      holds: false,
      violated: ["client_verified", "remote_ip"],
    });
    expect(invalid([condition("remote_ip", "is_in_cidr", new Array(1))])).toStrictEqual({ holds: false, violated: ["remote_ip"] });
    expect(invalid([condition("device_os", "is", ["linux"])]).holds).toBe(false);
    expect(invalid([condition("device_os", "is", ["linux"])]).violated).toHaveLength(5);
    expect(invalid([null]).holds).toBe(false);
  });
});

// --- Fuzz ---

const PROPERTIES = Object.keys(CONDITION_OPERATORS) as ConditionProperty[];
const OPERATORS = [...new Set(Object.values(CONDITION_OPERATORS).flat())];
const FUZZ_ALPHABET = [..."0123456789abcdefxMTWRFSU:/.-, ", "::", "/24", "true", "24:00", "ffff:", "Europe/Berlin", "UTC", "ß", "ſ", "\u0000", "é"];
const ZONES = ["UTC", "utc", "Europe/Berlin", "europe/berlin", "America/New_York", "US/Eastern", "Asia/Kolkata", "Europe/Kyiv", "Etc/GMT+5", "Mars/Olympus", "+01:00"];

function randomText(r: Rng): string {
  return Array.from({ length: r.int(0, 16) }, () => (r.bool(0.1) ? String.fromCodePoint(r.int(0, 0x2ffff)) : r.pick(FUZZ_ALPHABET))).join("");
}

function randomClockText(r: Rng): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  const text = `${pad(r.int(0, r.bool(0.95) ? 23 : 25))}:${pad(r.int(0, r.bool(0.95) ? 59 : 60))}`;
  return r.bool(0.2) ? `${text}:${pad(r.int(0, 60))}` : text;
}

/** A value for `property`, usually well-formed, sometimes spoiled or random. */
function randomValue(r: Rng, property: ConditionProperty): unknown {
  if (r.bool(0.02)) return r.pick([7, null, true, {}]);
  if (r.bool(0.04)) return randomText(r);
  switch (property) {
    case "remote_ip": {
      const v4 = (): string => Array.from({ length: 4 }, () => r.int(0, r.bool(0.98) ? 255 : 300)).join(".");
      const v6 = (): string =>
        Array.from({ length: 8 }, () => (r.bool(0.4) ? "0" : r.int(0, 0xffff).toString(16)))
          .join(":")
          .replace(r.bool(0.5) ? /(^|:)0(:0)+(:|$)/ : /$^/, "::");
      const address = r.bool(0.1) ? `::ffff:${v4()}` : r.pick([v4, v6])();
      return r.bool(0.3) ? address : `${address}/${r.int(0, address.includes(":") ? 130 : 34)}`;
    }
    case "remote_ip_location_region":
      return r.bool(0.9) ? r.pick(["DE", "de", " us ", "GB", "XK", "at"]) : r.pick(["UK", "ZZ", "D", "DEU", "ß", "ﬆ"]);
    case "provider_id":
      return r.bool(0.9) ? r.pick([PROVIDER, OTHER_PROVIDER.toUpperCase(), ` ${PROVIDER} `]) : r.pick([PROVIDER.slice(1), "google"]);
    case "current_utc_datetime": {
      const day = r.bool(0.9) ? r.pick(["M", "T", "W", "R", "F", "S", "U", "m", "Mon", "thu", "SUN"]) : r.pick(["X", "Monday", "ſ", ""]);
      const range = (): string => {
        const ends = [randomClockText(r), randomClockText(r)];
        return (r.bool(0.8) ? ends.sort() : ends).join("-");
      };
      const ranges = r.bool(0.2) ? r.pick(["true", "TRUE", "false", ""]) : Array.from({ length: r.int(1, 3) }, range).join(r.pick([",", ", "]));
      return `${day}/${ranges}/${r.bool(0.9) ? r.pick(ZONES.slice(0, -2)) : r.pick(ZONES)}`;
    }
    case "client_verified":
      return r.bool(0.9) ? r.pick(["true", "false", " TRUE "]) : r.pick(["yes", ""]);
  }
}

function randomConditions(r: Rng): unknown {
  if (r.bool(0.03)) return r.pick([undefined, null, {}, "x", 0]);
  // Mostly distinct properties, since a repeated one is refused.
  const distinct = r.shuffle([...PROPERTIES]);
  return Array.from({ length: r.int(0, 4) }, (_, i) => {
    if (r.bool(0.03)) return r.pick([null, "x", [], 1]);
    const property = r.bool(0.03) ? randomText(r) : r.bool(0.9) ? distinct[i]! : r.pick(PROPERTIES);
    const known = (PROPERTIES as string[]).includes(property);
    const operator = known && r.bool(0.9) ? r.pick(CONDITION_OPERATORS[property as ConditionProperty]) : r.pick([...OPERATORS, randomText(r)]);
    const values = r.bool(0.05)
      ? r.pick([undefined, [], "x"])
      : Array.from({ length: property === "client_verified" && r.bool(0.8) ? 1 : r.int(1, 4) }, () => randomValue(r, known ? (property as ConditionProperty) : r.pick(PROPERTIES)));
    return { property, operator, values };
  });
}

function randomContext(r: Rng): ConditionContext {
  const context: ConditionContext = { now: new Date(Date.UTC(2026, 0, 1) + r.int(0, 365 * 86400) * 1000) };
  if (r.bool(0.9)) context.remoteIp = r.pick(["10.1.2.3", "192.0.2.1", "::ffff:10.1.2.3", "2001:db8::1", "fe80::1", "junk"]);
  if (r.bool(0.9)) context.region = r.pick(["DE", "us", "GB", "ZZ"]);
  if (r.bool(0.9)) context.providerId = r.pick([PROVIDER, OTHER_PROVIDER]);
  if (r.bool(0.9)) context.clientVerified = r.bool();
  return context;
}

const FIELD = /^conditions(?:\/\d+(?:\/property|\/operator|\/values(?:\/\d+)?)?)?$/;

describe("fuzz", () => {
  it("random conditions never throw; accepted ones are canonical and mean what their input meant", () => {
    let ok = 0;
    let nonEmpty = 0;
    for (let i = 0; i < 1500; i++) {
      const r = rng(`policy/fuzz#${i}`);
      const input = randomConditions(r);
      const where = r.where(JSON.stringify(input));
      let result: ConditionsValidation | undefined;
      expect(() => (result = validatePolicyConditions(input)), where).not.toThrow();
      if (!result!.ok) {
        expect(result!.errors.length, where).toBeGreaterThan(0);
        const malformed = result!.errors.filter((e) => !FIELD.test(e.field) || !/^[a-z_]+\.[a-z0-9_]+$/.test(e.code) || e.message.length === 0);
        expect(malformed, where).toStrictEqual([]);
        if (Array.isArray(input)) {
          let verdict: ConditionsVerdict | undefined;
          expect(() => (verdict = conditionsHold(input as PolicyCondition[], randomContext(r))), where).not.toThrow();
          expect(verdict!.holds, where).toBe(false);
        }
        continue;
      }
      ok++;
      const value = result!.value;
      if (value.length > 0) nonEmpty++;
      expect(validatePolicyConditions(value), `revalidating ${where}`).toStrictEqual({ ok: true, value, notices: [] });
      expect(validatePolicy({ groupId: GROUP, resourceId: RESOURCE, conditions: input }), `as a policy ${where}`).toStrictEqual({
        ok: true,
        value: { groupId: GROUP, resourceId: RESOURCE, disabled: false, conditions: value },
        notices: result!.notices,
      });
      const contexts = Array.from({ length: 3 }, () => randomContext(r));
      const raw = Array.isArray(input) ? contexts.map((context) => conditionsHold(input as PolicyCondition[], context)) : contexts.map(() => ({ holds: true, violated: [] }));
      expect(contexts.map((context) => conditionsHold(value, context)), `evaluating ${where} at ${JSON.stringify(contexts)}`).toStrictEqual(raw);
    }
    expect(ok, "accepted condition lists").toBeGreaterThan(400);
    expect(nonEmpty, "accepted non-empty condition lists").toBeGreaterThan(200);
  });

  it("property: formatted time windows parse back to themselves", () => {
    const zones = ["UTC", "Europe/Berlin", "America/New_York", "Etc/GMT-14", "Asia/Kathmandu"];
    for (let i = 0; i < 2000; i++) {
      const r = rng(`policy/window-round-trip#${i}`);
      const w = randomWindow(r, canonicalTimeZone(r.pick(zones))!);
      const text = formatTimeWindow(w);
      expect(parseTimeWindow(text), r.where(text)).toStrictEqual({ ok: true, window: w });
    }
  });
});
