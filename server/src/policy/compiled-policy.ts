// A policy as the evaluator reads it: its conditions validated and parsed once (CIDRs as numeric
// prefixes, regions and providers as sets, time windows grouped by zone), so evaluating one is a few
// comparisons. Stored conditions that no longer validate compile to a policy that never allows
// (fail closed), and a denial names all of them.

import { parseTimeWindow, validatePolicyConditions, type PolicyCondition, type TimeWindow } from "../domain/policy-rules.js";
import { parseCidr } from "../domain/resource-rules.js";
import { compileTimeWindows, type CompiledTimeWindows } from "./time-windows.js";

/** One condition, compiled; `source` is the condition as stored, which a denial reports. */
export type CompiledCondition =
  | {
      readonly property: "remote_ip";
      readonly source: PolicyCondition;
      readonly negate: boolean;
      /** IPv4 prefixes as [network, mask], 32-bit unsigned. */
      readonly v4: readonly (readonly [number, number])[];
      /** IPv6 prefixes as [network, mask]. */
      readonly v6: readonly (readonly [bigint, bigint])[];
    }
  | { readonly property: "remote_ip_location_region" | "provider_id"; readonly source: PolicyCondition; readonly negate: boolean; readonly values: ReadonlySet<string> }
  | { readonly property: "current_utc_datetime"; readonly source: PolicyCondition; readonly windows: CompiledTimeWindows }
  | { readonly property: "client_verified"; readonly source: PolicyCondition; readonly expected: boolean };

/** A policy ready for `evaluate`. */
export interface CompiledPolicy {
  readonly id: string;
  readonly groupId: string;
  readonly resourceId: string;
  readonly disabled: boolean;
  /** The conditions in canonical form (as stored when they do not validate). */
  readonly conditions: readonly PolicyCondition[];
  /** The compiled conditions; null when the stored ones do not validate, so the policy never allows. */
  readonly checks: readonly CompiledCondition[] | null;
}

/** What compilePolicy needs of a policy row (the entity, or its change-log JSON). */
export interface PolicySource {
  id: string;
  groupId: string;
  resourceId: string;
  disabled: boolean;
  conditions: unknown;
}

/** Compiles one policy; never throws, whatever its stored conditions hold. */
export function compilePolicy(source: PolicySource): CompiledPolicy {
  const base = { id: source.id, groupId: source.groupId, resourceId: source.resourceId, disabled: source.disabled };
  const validated = validatePolicyConditions(source.conditions);
  if (!validated.ok) {
    const stored = Array.isArray(source.conditions) ? (source.conditions as PolicyCondition[]) : [];
    return { ...base, conditions: stored, checks: null };
  }
  const checks: CompiledCondition[] = [];
  for (const condition of validated.value) {
    const compiled = compileCondition(condition);
    if (compiled === undefined) return { ...base, conditions: validated.value, checks: null };
    checks.push(compiled);
  }
  return { ...base, conditions: validated.value, checks };
}

const V6_ALL = (1n << 128n) - 1n;

function compileCondition(condition: PolicyCondition): CompiledCondition | undefined {
  switch (condition.property) {
    case "remote_ip": {
      const v4: [number, number][] = [];
      const v6: [bigint, bigint][] = [];
      for (const value of condition.values) {
        // Canonical values are address/length with host bits clear (validatePolicyConditions wrote them).
        const parsed = parseCidr(value, "remote_ip");
        if (!parsed.ok) return undefined;
        const { family, value: network, length } = parsed.prefix;
        if (family === 4) {
          const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
          v4.push([Number(network), mask]);
        } else {
          v6.push([network, (V6_ALL << BigInt(128 - length)) & V6_ALL]);
        }
      }
      return { property: "remote_ip", source: condition, negate: condition.operator === "is_not_in_cidr", v4, v6 };
    }
    case "remote_ip_location_region":
    case "provider_id":
      return { property: condition.property, source: condition, negate: condition.operator === "is_not_in", values: new Set(condition.values) };
    case "current_utc_datetime": {
      const windows: TimeWindow[] = [];
      for (const value of condition.values) {
        const parsed = parseTimeWindow(value);
        if (!parsed.ok) return undefined;
        windows.push(parsed.window);
      }
      return { property: "current_utc_datetime", source: condition, windows: compileTimeWindows(windows) };
    }
    case "client_verified":
      return { property: "client_verified", source: condition, expected: condition.values[0] === "true" };
    default:
      return undefined;
  }
}
