// What makes a Policy valid, and whether its conditions hold for one connection attempt. Pure
// functions: the REST API validates with them, the policy engine evaluates with conditionsHold.
// Conditions keep Firezone's shape, { property, operator, values: string[] }, so stored policies and
// API payloads read the same as Firezone's.
//
// 1. A policy grants one group one resource (one policy per pair; the caller says whether the pair
//    is taken, the database's unique index stays the guard against a race), with an optional
//    description and a disabled flag.
// 2. Conditions: at most one per property, all of them must hold; within one, the values are
//    alternatives ("is in any of", "is in none of"). Each property takes its own operators:
//      remote_ip                  is_in_cidr | is_not_in_cidr    CIDRs; a bare address is a host
//      remote_ip_location_region  is_in | is_not_in              ISO 3166-1 alpha-2 codes (and XK)
//      provider_id                is_in | is_not_in              auth provider UUIDs
//      current_utc_datetime       is_in_day_of_week_time_ranges  time windows, below
//      client_verified            is                             "true" or "false", one value
// 3. A time window is `<day>/<ranges>/<zone>`, Firezone's form: day M T W R F S U (Monday to Sunday;
//    Mon..Sun is read too and written back as the letter), ranges "true" for the whole day or
//    comma-separated HH:MM-HH:MM (seconds optional, end up to 24:00), each from its start up to,
//    not including, its end, in the wall-clock time of the IANA zone, e.g. "M/09:00-17:00/Europe/Berlin".
//    An end before its start is refused: a night shift is two windows, "M/22:00-24:00/..." and
//    "T/00:00-06:00/...". Evaluation reads the wall clock of the zone at `now` through Intl, so
//    daylight-saving changes move the window with the clock, as a person there expects.
// 4. Evaluation fails closed: a condition that needs what the context lacks (no client IP, unknown
//    region, no provider) does not hold, whichever its operator.

import {
  formatPrefix,
  isRecord,
  networkOf,
  parseCidr,
  parseIp,
  prefixContains,
  prefixesOverlap,
  show,
  unmapIpv4,
  type FieldError,
  type FieldNotice,
  type IpPrefix,
} from "./resource-rules.js";

export type ConditionProperty = "remote_ip" | "remote_ip_location_region" | "provider_id" | "current_utc_datetime" | "client_verified";
export type ConditionOperator = "is_in_cidr" | "is_not_in_cidr" | "is_in" | "is_not_in" | "is_in_day_of_week_time_ranges" | "is";

export interface PolicyCondition {
  property: ConditionProperty;
  operator: ConditionOperator;
  values: string[];
}

export interface PolicyInput {
  groupId: string;
  resourceId: string;
  description?: string;
  disabled?: boolean;
  conditions?: PolicyCondition[];
}

export interface NormalizedPolicy {
  groupId: string;
  resourceId: string;
  description?: string;
  disabled: boolean;
  conditions: PolicyCondition[];
}

export interface PolicyContext {
  /** True when the group already has a policy for the resource (other than the one being updated). */
  pairExists?: boolean;
}

export type PolicyValidation = { ok: true; value: NormalizedPolicy; notices: FieldNotice[] } | { ok: false; errors: FieldError[] };
export type ConditionsValidation = { ok: true; value: PolicyCondition[]; notices: FieldNotice[] } | { ok: false; errors: FieldError[] };

/** What is known about the connection attempt a policy is evaluated for. */
export interface ConditionContext {
  /** The client's public address as the portal sees it; IPv4-mapped IPv6 counts as IPv4. */
  remoteIp?: string;
  /** ISO 3166-1 alpha-2 region of remoteIp, from geolocation. */
  region?: string;
  /** The auth provider the client's identity signed in with. */
  providerId?: string;
  now: Date;
  clientVerified?: boolean;
}

/** The verdict on a list of conditions; `violated` names, in order, the properties that did not hold. */
export interface ConditionsVerdict {
  holds: boolean;
  violated: ConditionProperty[];
}

export const DESCRIPTION_MAX = 1024;

export const CONDITION_OPERATORS: Readonly<Record<ConditionProperty, readonly ConditionOperator[]>> = {
  remote_ip: ["is_in_cidr", "is_not_in_cidr"],
  remote_ip_location_region: ["is_in", "is_not_in"],
  provider_id: ["is_in", "is_not_in"],
  current_utc_datetime: ["is_in_day_of_week_time_ranges"],
  client_verified: ["is"],
};
const PROPERTIES = Object.keys(CONDITION_OPERATORS) as ConditionProperty[];

/** ISO 3166-1 alpha-2, the officially assigned codes, plus XK (Kosovo), which geolocation databases use. */
export const REGION_CODES: ReadonlySet<string> = new Set(
  `AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
   CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
   GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
   KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT
   MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
   SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
   UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK`.split(/\s+/),
);

/** Firezone's day letters, Monday first; index + 1 is the ISO weekday. */
const DAY_LETTERS = ["M", "T", "W", "R", "F", "S", "U"] as const;
const DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
const SECONDS_PER_DAY = 86400;

// --- Parsed conditions ---

/** One day's ranges in a zone; ranges are [start, end) in seconds of the local day, sorted, disjoint. */
export interface TimeWindow {
  /** ISO weekday: 1 Monday .. 7 Sunday. */
  day: number;
  ranges: [number, number][];
  zone: string;
}

type ParsedCondition =
  | { property: "remote_ip"; negate: boolean; prefixes: IpPrefix[] }
  | { property: "remote_ip_location_region"; negate: boolean; values: string[] }
  | { property: "provider_id"; negate: boolean; values: string[] }
  | { property: "current_utc_datetime"; windows: TimeWindow[] }
  | { property: "client_verified"; expected: boolean };

type ParsedConditions = { ok: true; conditions: ParsedCondition[]; notices: FieldNotice[] } | { ok: false; errors: FieldError[] };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseConditions(raw: unknown): ParsedConditions {
  const errors: FieldError[] = [];
  const notices: FieldNotice[] = [];
  if (raw === undefined || raw === null) return { ok: true, conditions: [], notices };
  if (!Array.isArray(raw)) {
    return { ok: false, errors: [{ field: "conditions", code: "conditions.type", message: "conditions must be a list; an empty list means no conditions" }] };
  }
  const out: ParsedCondition[] = [];
  const seen = new Map<string, number>();
  raw.forEach((condition: unknown, i) => {
    const at = `conditions/${i}`;
    if (!isRecord(condition)) {
      errors.push({ field: at, code: "condition.type", message: "a condition is an object: { property, operator, values }" });
      return;
    }
    const { property, operator, values } = condition;
    if (typeof property !== "string" || !(PROPERTIES as string[]).includes(property)) {
      errors.push({ field: `${at}/property`, code: "condition.property", message: `property ${show(String(property))} is not one of ${PROPERTIES.join(", ")}` });
      return;
    }
    const first = seen.get(property);
    if (first !== undefined) {
      errors.push({ field: `${at}/property`, code: "condition.duplicate_property", message: `${property} already has a condition (conditions/${first}); put all its values there` });
      return;
    }
    seen.set(property, i);
    const prop = property as ConditionProperty;
    const allowed = CONDITION_OPERATORS[prop];
    if (typeof operator !== "string" || !(allowed as readonly string[]).includes(operator)) {
      errors.push({ field: `${at}/operator`, code: "condition.operator", message: `${property} takes the operator ${allowed.join(" or ")}, not ${show(String(operator))}` });
      return;
    }
    if (!Array.isArray(values) || values.length === 0) {
      errors.push({ field: `${at}/values`, code: "condition.values_required", message: `a ${property} condition needs at least one value` });
      return;
    }
    const texts: string[] = [];
    // Array.from turns holes into undefined; forEach would skip them and drop the condition unreported.
    Array.from(values as unknown[]).forEach((value: unknown, j) => {
      if (typeof value === "string") texts.push(value);
      else errors.push({ field: `${at}/values/${j}`, code: "condition.value_type", message: "a condition value is a string" });
    });
    if (texts.length !== values.length) return;
    const negate = operator === "is_not_in_cidr" || operator === "is_not_in";
    const fail = (j: number, code: string, message: string): void => {
      errors.push({ field: `${at}/values/${j}`, code, message });
    };

    switch (prop) {
      case "remote_ip": {
        const prefixes: IpPrefix[] = [];
        texts.forEach((text, j) => {
          const trimmed = text.trim();
          let prefix: IpPrefix;
          if (trimmed.includes("/")) {
            const parsed = parseCidr(trimmed, "remote_ip");
            if (!parsed.ok) return fail(j, parsed.code, parsed.message);
            prefix = parsed.prefix;
            if (parsed.masked) {
              notices.push({ field: `${at}/values/${j}`, code: "remote_ip.host_bits_masked", message: `${show(text)} has host bits set; stored as ${formatPrefix(prefix)}` });
            }
          } else {
            const address = parseIp(trimmed);
            if (address === undefined) return fail(j, "remote_ip.invalid", `${show(text)} is not an IP address or CIDR range`);
            prefix = networkOf(address, address.family === 4 ? 32 : 128);
          }
          if (prefix.family === 6 && prefix.length >= 96 && prefixesOverlap(prefix, IPV4_MAPPED)) {
            return fail(j, "remote_ip.ipv4_mapped", `${show(text)} is IPv4-mapped; write the IPv4 address or range itself`);
          }
          if (!prefixes.some((p) => p.family === prefix.family && p.value === prefix.value && p.length === prefix.length)) prefixes.push(prefix);
        });
        out.push({ property: prop, negate, prefixes });
        break;
      }
      case "remote_ip_location_region": {
        const regions: string[] = [];
        texts.forEach((text, j) => {
          // ASCII before case-folding: "ß".toUpperCase() is "SS".
          const code = text.trim().toUpperCase();
          if (!/^[A-Za-z]{2}$/.test(text.trim())) return fail(j, "region.invalid", `${show(text)} is not a two-letter ISO 3166-1 region code, like DE or US`);
          if (!REGION_CODES.has(code)) return fail(j, "region.unknown", `${show(text)} is not an assigned ISO 3166-1 region code`);
          if (!regions.includes(code)) regions.push(code);
        });
        out.push({ property: prop, negate, values: regions });
        break;
      }
      case "provider_id": {
        const ids: string[] = [];
        texts.forEach((text, j) => {
          const id = text.trim().toLowerCase();
          if (!UUID.test(id)) return fail(j, "provider_id.invalid", `${show(text)} is not an auth provider id (a UUID)`);
          if (!ids.includes(id)) ids.push(id);
        });
        out.push({ property: prop, negate, values: ids });
        break;
      }
      case "current_utc_datetime": {
        const windows: TimeWindow[] = [];
        texts.forEach((text, j) => {
          const parsed = parseTimeWindow(text);
          if (!parsed.ok) return fail(j, parsed.code, parsed.message);
          windows.push(parsed.window);
        });
        out.push({ property: prop, windows });
        break;
      }
      case "client_verified": {
        if (texts.length !== 1) {
          errors.push({ field: `${at}/values`, code: "client_verified.values", message: "client_verified takes exactly one value, \"true\" or \"false\"" });
          break;
        }
        const value = texts[0]!.trim().toLowerCase();
        if (value !== "true" && value !== "false") fail(0, "client_verified.value", `${show(texts[0]!)} is neither "true" nor "false"`);
        else out.push({ property: prop, expected: value === "true" });
        break;
      }
    }
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, conditions: out, notices };
}

const IPV4_MAPPED: IpPrefix = networkOf({ family: 6, value: 0xffffn << 32n }, 96);

// --- Time windows ---

type WindowParse = { ok: true; window: TimeWindow } | { ok: false; code: string; message: string };

/** Canonical zone name through Intl, or undefined when the runtime does not know it. Offsets are not zones. */
export function canonicalTimeZone(zone: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(zone)) return undefined;
  const cached = zoneNames.get(zone);
  if (cached !== undefined) return cached || undefined;
  let canonical = "";
  try {
    canonical = new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    canonical = "";
  }
  if (zoneNames.size < 4096) zoneNames.set(zone, canonical);
  return canonical || undefined;
}
const zoneNames = new Map<string, string>();

/** "HH:MM" or "HH:MM:SS" as seconds of the day; 24:00 only where `allowEnd`. */
function parseClock(text: string, allowEnd: boolean): number | undefined {
  const match = /^([01][0-9]|2[0-4]):([0-5][0-9])(?::([0-5][0-9]))?$/.exec(text.trim());
  if (match === null) return undefined;
  const seconds = Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3] ?? 0);
  if (seconds > SECONDS_PER_DAY || (seconds === SECONDS_PER_DAY && !allowEnd)) return undefined;
  return seconds;
}

function formatClock(seconds: number): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  const hm = `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}`;
  return seconds % 60 === 0 ? hm : `${hm}:${pad(seconds % 60)}`;
}

/** `<day>/<ranges>/<zone>`, as the file header describes. */
export function parseTimeWindow(text: string): WindowParse {
  const trimmed = text.trim();
  const firstSlash = trimmed.indexOf("/");
  const secondSlash = firstSlash < 0 ? -1 : trimmed.indexOf("/", firstSlash + 1);
  if (secondSlash < 0) {
    return { ok: false, code: "time.format", message: `${show(text)} is not day/ranges/zone, like M/09:00-17:00/Europe/Berlin` };
  }
  const dayText = trimmed.slice(0, firstSlash).trim();
  const rangesText = trimmed.slice(firstSlash + 1, secondSlash).trim();
  const zoneText = trimmed.slice(secondSlash + 1).trim();

  const letter = DAY_LETTERS.indexOf(dayText.toUpperCase() as (typeof DAY_LETTERS)[number]);
  const name = DAY_NAMES.indexOf(dayText.toLowerCase() as (typeof DAY_NAMES)[number]);
  // ASCII only: "ſ".toUpperCase() is "S".
  const dayIndex = !/^[A-Za-z]+$/.test(dayText) ? -1 : dayText.length === 1 ? letter : name;
  if (dayIndex < 0) {
    return { ok: false, code: "time.day", message: `${show(dayText)} is not a day: M T W R F S U (Monday to Sunday) or Mon..Sun` };
  }

  const ranges: [number, number][] = [];
  if (rangesText.toLowerCase() === "true") {
    ranges.push([0, SECONDS_PER_DAY]);
  } else {
    for (const item of rangesText.split(",")) {
      const dash = item.indexOf("-");
      const start = dash < 0 ? undefined : parseClock(item.slice(0, dash), false);
      const end = dash < 0 ? undefined : parseClock(item.slice(dash + 1), true);
      if (start === undefined || end === undefined) {
        return { ok: false, code: "time.range", message: `${show(item)} is not a time range HH:MM-HH:MM (24-hour, end up to 24:00), nor "true" for all day` };
      }
      if (end <= start) {
        return {
          ok: false,
          code: "time.inverted_range",
          message: `${show(item.trim())} ends before it starts; a range crossing midnight is two windows, one on each day`,
        };
      }
      ranges.push([start, end]);
    }
  }

  const zone = canonicalTimeZone(zoneText);
  if (zone === undefined) {
    return { ok: false, code: "time.zone", message: `${show(zoneText)} is not an IANA time zone, like Europe/Berlin or UTC` };
  }
  return { ok: true, window: { day: dayIndex + 1, ranges: mergeRanges(ranges), zone } };
}

function mergeRanges(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

export function formatTimeWindow(window: TimeWindow): string {
  const whole = window.ranges.length === 1 && window.ranges[0]![0] === 0 && window.ranges[0]![1] === SECONDS_PER_DAY;
  const ranges = whole ? "true" : window.ranges.map(([s, e]) => `${formatClock(s)}-${formatClock(e)}`).join(",");
  return `${DAY_LETTERS[window.day - 1]}/${ranges}/${window.zone}`;
}

/** The wall clock in `zone` at `instant`: ISO weekday and seconds of the local day. */
export function wallClock(instant: Date, zone: string): { day: number; seconds: number } | undefined {
  if (Number.isNaN(instant.getTime())) return undefined;
  let format = wallFormats.get(zone);
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        weekday: "short",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      });
    } catch {
      return undefined;
    }
    wallFormats.set(zone, format);
  }
  let day = 0;
  let seconds = 0;
  for (const part of format.formatToParts(instant)) {
    if (part.type === "weekday") day = DAY_NAMES.indexOf(part.value.toLowerCase() as (typeof DAY_NAMES)[number]) + 1;
    else if (part.type === "hour") seconds += (Number(part.value) % 24) * 3600;
    else if (part.type === "minute") seconds += Number(part.value) * 60;
    else if (part.type === "second") seconds += Number(part.value);
  }
  return day === 0 ? undefined : { day, seconds };
}
const wallFormats = new Map<string, Intl.DateTimeFormat>();

// --- Public API ---

/** Validates a policy's conditions (any JSON value) and returns them in canonical form. */
export function validatePolicyConditions(conditions: unknown): ConditionsValidation {
  const parsed = parseConditions(conditions);
  if (!parsed.ok) return parsed;
  return { ok: true, value: parsed.conditions.map(formatCondition), notices: parsed.notices };
}

function formatCondition(condition: ParsedCondition): PolicyCondition {
  switch (condition.property) {
    case "remote_ip":
      return { property: condition.property, operator: condition.negate ? "is_not_in_cidr" : "is_in_cidr", values: condition.prefixes.map(formatPrefix) };
    case "remote_ip_location_region":
    case "provider_id":
      return { property: condition.property, operator: condition.negate ? "is_not_in" : "is_in", values: condition.values };
    case "current_utc_datetime":
      return { property: condition.property, operator: "is_in_day_of_week_time_ranges", values: condition.windows.map(formatTimeWindow) };
    case "client_verified":
      return { property: condition.property, operator: "is", values: [String(condition.expected)] };
  }
}

/** Validates a policy as the REST API receives it (any JSON value) and returns its normalized form. */
export function validatePolicy(input: unknown, context: PolicyContext = {}): PolicyValidation {
  if (!isRecord(input)) {
    return { ok: false, errors: [{ field: "", code: "policy.type", message: "a policy is an object: { groupId, resourceId, conditions }" }] };
  }
  const errors: FieldError[] = [];
  const id = (field: "groupId" | "resourceId", what: string): string | undefined => {
    const value = input[field];
    if (typeof value === "string" && UUID.test(value.trim())) return value.trim().toLowerCase();
    errors.push({ field, code: `policy.${field === "groupId" ? "group_id" : "resource_id"}`, message: `${what} must be an id (a UUID)` });
    return undefined;
  };
  const groupId = id("groupId", "the group");
  const resourceId = id("resourceId", "the resource");
  if (groupId !== undefined && resourceId !== undefined && context.pairExists === true) {
    errors.push({ field: "resourceId", code: "policy.duplicate", message: "this group already has a policy for this resource; edit that one" });
  }

  let description: string | undefined;
  const rawDescription = input.description;
  if (rawDescription !== undefined && rawDescription !== null) {
    if (typeof rawDescription !== "string") errors.push({ field: "description", code: "description.type", message: "the description is a string" });
    else if ([...rawDescription.trim()].length > DESCRIPTION_MAX) {
      errors.push({ field: "description", code: "description.too_long", message: `the description is longer than ${DESCRIPTION_MAX} characters` });
    } else if (rawDescription.trim() !== "") description = rawDescription.trim();
  }

  const disabled = input.disabled ?? false;
  if (typeof disabled !== "boolean") errors.push({ field: "disabled", code: "disabled.type", message: "disabled is true or false" });

  const conditions = validatePolicyConditions(input.conditions);
  if (!conditions.ok) errors.push(...conditions.errors);
  if (errors.length > 0 || !conditions.ok) return { ok: false, errors };
  const value: NormalizedPolicy = { groupId: groupId!, resourceId: resourceId!, disabled: disabled as boolean, conditions: conditions.value };
  if (description !== undefined) value.description = description;
  return { ok: true, value, notices: conditions.notices };
}

/**
 * Whether every condition holds for the connection attempt in `context`. Conditions that do not
 * validate never hold (the engine fails closed); `violated` lists them all then.
 */
export function conditionsHold(conditions: readonly PolicyCondition[], context: ConditionContext): ConditionsVerdict {
  const parsed = parseConditions(conditions);
  if (!parsed.ok) {
    const named = conditions.map((c) => (isRecord(c) && (PROPERTIES as unknown[]).includes(c.property) ? (c.property as ConditionProperty) : undefined));
    const violated = named.filter((p): p is ConditionProperty => p !== undefined);
    return { holds: false, violated: violated.length > 0 ? violated : [...PROPERTIES] };
  }
  const violated = parsed.conditions.filter((condition) => !conditionHolds(condition, context)).map((c) => c.property);
  return { holds: violated.length === 0, violated };
}

function conditionHolds(condition: ParsedCondition, context: ConditionContext): boolean {
  switch (condition.property) {
    case "remote_ip": {
      const address = context.remoteIp === undefined ? undefined : parseIp(context.remoteIp.trim());
      if (address === undefined) return false;
      const client = unmapIpv4(address);
      return condition.prefixes.some((prefix) => prefixContains(prefix, client)) !== condition.negate;
    }
    case "remote_ip_location_region": {
      const given = context.region?.trim();
      const region = given !== undefined && /^[A-Za-z]{2}$/.test(given) ? given.toUpperCase() : undefined;
      if (region === undefined || !REGION_CODES.has(region)) return false;
      return condition.values.includes(region) !== condition.negate;
    }
    case "provider_id": {
      const id = context.providerId?.trim().toLowerCase();
      if (id === undefined || !UUID.test(id)) return false;
      return condition.values.includes(id) !== condition.negate;
    }
    case "current_utc_datetime":
      return condition.windows.some((window) => {
        const clock = wallClock(context.now, window.zone);
        return clock !== undefined && clock.day === window.day && window.ranges.some(([start, end]) => clock.seconds >= start && clock.seconds < end);
      });
    case "client_verified":
      return context.clientVerified === condition.expected;
  }
}
