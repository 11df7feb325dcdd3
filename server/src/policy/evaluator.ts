// The policy engine's decision (STYLE.md 11, Firezone's Policies.Evaluator): a pure function of the
// compiled policies, who asks, for which resource, and when. No DI, no database, no clock of its own.
//
// 1. A token already expired, or an unreadable `now`, denies everything.
// 2. The policies that apply are those for the resource whose group the subject is in; disabled ones
//    never allow and are not reported.
// 3. Each applicable policy's conditions are checked, all of them (a denial lists every one that
//    failed). A condition needing what the subject lacks (no client IP, unknown region, no provider)
//    fails, whatever its operator; stored conditions that do not validate fail (compiled-policy.ts).
// 4. Any allowing policy suffices; among them the one allowing longest wins: its `until` is the end
//    of its time window (time-windows.ts) or the token's expiry, whichever comes first; null is never.
//
// The hot path allocates only the decision: conditions arrive compiled, and the client address is
// parsed once per distinct string.

import { REGION_CODES, type PolicyCondition } from "../domain/policy-rules.js";
import { parseIp, unmapIpv4, type IpAddress } from "../domain/resource-rules.js";
import type { CompiledCondition, CompiledPolicy } from "./compiled-policy.js";
import { windowsEnd } from "./time-windows.js";

/** Who asks for access: the actor, the groups it is in now, and what is known about its connection. */
export interface Subject {
  actorId: string;
  groupIds: ReadonlySet<string>;
  /** The auth provider the client's identity signed in with. */
  providerId: string | null;
  /** The client's public address as the portal sees it. */
  clientIp: string | null;
  /** ISO 3166-1 alpha-2 region of clientIp (geoip.ts), null when unknown. */
  region: string | null;
  clientVerified: boolean;
  tokenExpiresAt: Date | null;
}

/** A policy that applied but did not allow, and which of its conditions failed. */
export interface Violation {
  policyId: string;
  conditions: PolicyCondition[];
}

/** Why a request was denied: no policy applies, every applicable one has a failing condition, or the token has expired. */
export type DenialReason = "no_policy" | "conditions" | "token_expired" | "invalid_time";

export type Decision =
  | { allowed: true; policyId: string; until: Date | null }
  | { allowed: false; violated: Violation[]; reason: DenialReason };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Decides whether `subject` may reach `resourceId` at `now` under `policies`; fails closed. */
export function evaluate(policies: readonly CompiledPolicy[], subject: Subject, resourceId: string, now: Date): Decision {
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) return { allowed: false, violated: [], reason: "invalid_time" };
  const expiresMs = subject.tokenExpiresAt === null ? null : subject.tokenExpiresAt.getTime();
  if (expiresMs !== null && !(expiresMs > nowMs)) return { allowed: false, violated: [], reason: "token_expired" };

  let bestId: string | undefined;
  let bestUntil: number | null = -1; // -1: none yet; null: unbounded
  let violated: Violation[] | undefined;
  for (let i = 0; i < policies.length; i++) {
    const policy = policies[i]!;
    if (policy.resourceId !== resourceId || policy.disabled || !subject.groupIds.has(policy.groupId)) continue;
    const checks = policy.checks;
    if (checks === null) {
      (violated ??= []).push({ policyId: policy.id, conditions: [...policy.conditions] });
      continue;
    }
    let failed: PolicyCondition[] | undefined;
    let until: number | null = expiresMs;
    for (let j = 0; j < checks.length; j++) {
      const check = checks[j]!;
      if (check.property === "current_utc_datetime") {
        const end = windowsEnd(check.windows, nowMs);
        if (end === undefined) (failed ??= []).push(check.source);
        else if (end !== null && (until === null || end < until)) until = end;
      } else if (!holds(check, subject)) {
        (failed ??= []).push(check.source);
      }
    }
    if (failed !== undefined) {
      (violated ??= []).push({ policyId: policy.id, conditions: failed });
      continue;
    }
    if (bestId === undefined || (bestUntil !== null && (until === null || until > bestUntil))) {
      bestId = policy.id;
      bestUntil = until;
    }
  }
  if (bestId !== undefined) return { allowed: true, policyId: bestId, until: bestUntil === null ? null : new Date(bestUntil) };
  return violated === undefined ? { allowed: false, violated: [], reason: "no_policy" } : { allowed: false, violated, reason: "conditions" };
}

/** Whether one condition other than a time window holds for the subject. */
function holds(check: Exclude<CompiledCondition, { property: "current_utc_datetime" }>, subject: Subject): boolean {
  switch (check.property) {
    case "remote_ip": {
      const address = clientAddress(subject.clientIp);
      if (address === undefined) return false;
      let inside = false;
      if (address.family === 4) {
        const value = Number(address.value);
        for (const [network, mask] of check.v4) {
          if ((value & mask) >>> 0 === network) {
            inside = true;
            break;
          }
        }
      } else {
        for (const [network, mask] of check.v6) {
          if ((address.value & mask) === network) {
            inside = true;
            break;
          }
        }
      }
      return inside !== check.negate;
    }
    case "remote_ip_location_region": {
      const region = normalizeRegion(subject.region);
      return region !== undefined && check.values.has(region) !== check.negate;
    }
    case "provider_id": {
      const id = subject.providerId?.trim().toLowerCase();
      return id !== undefined && UUID.test(id) && check.values.has(id) !== check.negate;
    }
    case "client_verified":
      return subject.clientVerified === check.expected;
  }
}

function normalizeRegion(given: string | null): string | undefined {
  if (given === null) return undefined;
  // ASCII before case-folding, as policy-rules: "ın".toUpperCase() is "IN".
  const trimmed = given.trim();
  if (!/^[A-Za-z]{2}$/.test(trimmed)) return undefined;
  const upper = trimmed.toUpperCase();
  return REGION_CODES.has(upper) ? upper : undefined;
}

// One entry is enough: a request's conditions are checked against one address, and a benchmark or a
// burst from one client repeats it.
let lastIpText: string | null = null;
let lastIp: IpAddress | undefined;

function clientAddress(text: string | null): IpAddress | undefined {
  if (text === null) return undefined;
  if (text === lastIpText) return lastIp;
  const parsed = parseIp(text.trim());
  lastIpText = text;
  lastIp = parsed === undefined ? undefined : unmapIpv4(parsed);
  return lastIp;
}

export type { CompiledPolicy } from "./compiled-policy.js";
export { compilePolicy } from "./compiled-policy.js";
