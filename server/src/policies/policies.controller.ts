// /api/policies: a policy grants a group a resource, under conditions. The rules of a valid policy
// live in ../domain/policy-rules.ts; this controller maps the snake_case API onto them and checks
// what needs the database: the group and the resource exist in this account, and the pair has no
// other policy (the unique index on the pair stays the guard against a concurrent writer).
// PATCH validates the stored policy with the body laid over it.
//
// POST /api/policies/check asks the policy engine itself whether an actor may reach a resource: the
// account's view is loaded as a realtime node loads it (AccountView.load), the subject is built as the
// hub builds it for a connected client (groups from the view, verified from the device), and the
// evaluator's decision is returned as it stands: allowed until T, or why not and, per policy, which
// conditions failed (the same objects authorization_creation_failed lists). What a socket would
// supply (client address, its region, the sign-in's auth provider) is given in the body: the REST
// side has no geolocation database, so region is the admin's to state.

import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { Not } from "typeorm";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { AuthProviderEntity } from "../auth/entities.js";
import { ActorEntity, DeviceEntity, GroupEntity, PolicyEntity, ResourceEntity, type Policy } from "../database/entities.js";
import { CONDITION_OPERATORS, REGION_CODES, validatePolicy, type PolicyCondition } from "../domain/policy-rules.js";
import { isRecord, parseIp, type FieldError, type FieldNotice } from "../domain/resource-rules.js";
import { BodyReader, idParam, isUuid, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";
import { AccountView } from "../policy/account-view.js";
import { evaluate, type DenialReason } from "../policy/evaluator.js";

export interface PolicyView {
  id: string;
  group_id: string;
  resource_id: string;
  description: string;
  disabled: boolean;
  disabled_at: string | null;
  conditions: PolicyCondition[];
  created_at: string;
  updated_at: string;
}

/** The reply to a write: the policy and what the validator changed on the way (masked host bits). */
export type PolicyWriteView = PolicyView & { notices: FieldNotice[] };

export const policyView = (p: Policy): PolicyView => ({
  id: p.id,
  group_id: p.groupId,
  resource_id: p.resourceId,
  description: p.description,
  disabled: p.disabledAt !== null,
  disabled_at: p.disabledAt?.toISOString() ?? null,
  conditions: p.conditions as PolicyCondition[],
  created_at: p.createdAt.toISOString(),
  updated_at: p.updatedAt.toISOString(),
});

const FIELDS = ["group_id", "resource_id", "description", "disabled", "conditions"] as const;

const POLICY_SCHEMA: Schema = {
  type: "object",
  required: ["group_id", "resource_id"],
  properties: {
    group_id: { type: "string", format: "uuid" },
    resource_id: { type: "string", format: "uuid" },
    description: { type: "string", maxLength: 1024 },
    disabled: { type: "boolean" },
    conditions: {
      type: "array",
      description: "all must hold; at most one per property",
      items: {
        type: "object",
        required: ["property", "operator", "values"],
        properties: {
          property: { type: "string", enum: Object.keys(CONDITION_OPERATORS) },
          operator: { type: "string", enum: [...new Set(Object.values(CONDITION_OPERATORS).flat())] },
          values: { type: "array", items: { type: "string", example: "M/09:00-17:00/Europe/Berlin" } },
        },
      },
    },
  },
  additionalProperties: false,
};

const CHECK_FIELDS = ["actor_id", "resource_id", "device_id", "at", "client_ip", "region", "auth_provider_id"] as const;

const CHECK_SCHEMA: Schema = {
  type: "object",
  required: ["actor_id", "resource_id"],
  properties: {
    actor_id: { type: "string", format: "uuid" },
    resource_id: { type: "string", format: "uuid" },
    device_id: { type: "string", format: "uuid", description: "one of the actor's client devices; its verification is what client_verified sees (none: not verified)" },
    at: { type: "string", format: "date-time", description: "RFC 3339; default now" },
    client_ip: { type: "string", description: "the client's public address; none fails every remote_ip condition" },
    region: { type: "string", description: "ISO 3166-1 alpha-2 region of client_ip; none fails every region condition" },
    auth_provider_id: { type: "string", format: "uuid", description: "the auth provider the client signed in with; none fails every provider_id condition" },
  },
  additionalProperties: false,
};

/** The evaluator's decision in the API's spelling. */
export type AccessCheckView =
  | { allowed: true; policy_id: string; until: string | null }
  | { allowed: false; reason: DenialReason; violated: { policy_id: string; conditions: PolicyCondition[] }[] };

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?(Z|[+-](\d\d):(\d\d))$/i;

/** An RFC 3339 time, or undefined: Date alone would read 30 February as 2 March. */
function rfc3339(value: unknown): Date | undefined {
  const m = typeof value === "string" ? RFC3339.exec(value) : null;
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0", m[8] ?? "0", m[9] ?? "0"].map(Number) as number[];
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth || hour! > 23 || minute! > 59 || second! > 59 || offsetHours! > 23 || offsetMinutes! > 59) return undefined;
  const time = new Date(value as string);
  return Number.isNaN(time.getTime()) ? undefined : time;
}

/** The validator's camelCase field names, as the API spells them. */
const API_FIELDS: Record<string, string> = { groupId: "group_id", resourceId: "resource_id" };
const apiProblem = (e: FieldError): FieldError => ({ ...e, field: API_FIELDS[e.field] ?? e.field });

type PolicyValues = Pick<Policy, "groupId" | "resourceId" | "description" | "conditions"> & { disabled: boolean };

/**
 * Validates `merged` (the policy as it would be stored, in the API's spelling), adding every problem
 * to `input`; throws the 422 naming them all, or the 409 when the only fault is a taken pair.
 */
async function checkPolicy(scope: AccountScope, input: BodyReader, merged: Record<string, unknown>, exceptId?: string): Promise<{ values: PolicyValues; notices: FieldNotice[] }> {
  const lookups = [
    ["group_id", "group", scope.repository(GroupEntity)],
    ["resource_id", "resource", scope.repository(ResourceEntity)],
  ] as const;
  const found: Record<string, boolean> = {};
  for (const [field, what, repository] of lookups) {
    const id = merged[field];
    if (!isUuid(id)) continue;
    found[field] = (await repository.get(id.toLowerCase())) !== null;
    if (!found[field]) input.fail(field, `${field}.not_found`, `the ${what} ${id} does not exist in this account`);
  }
  let pairExists = false;
  if (found.group_id === true && found.resource_id === true) {
    const pair = { groupId: (merged.group_id as string).toLowerCase(), resourceId: (merged.resource_id as string).toLowerCase() };
    pairExists = (await scope.repository(PolicyEntity).count({ ...pair, ...(exceptId !== undefined ? { id: Not(exceptId) } : {}) })) > 0;
  }
  const result = validatePolicy(
    { groupId: merged.group_id, resourceId: merged.resource_id, description: merged.description, disabled: merged.disabled, conditions: merged.conditions },
    { pairExists },
  );
  if (!result.ok) for (const e of result.errors.map(apiProblem)) input.fail(e.field, e.code, e.message);

  if (input.errors.length > 0 && input.errors.every((e) => e.code === "policy.duplicate")) {
    throw Problem.conflict("this group already has a policy for this resource; edit that one", input.errors, "policy.duplicate");
  }
  input.done();
  if (!result.ok) throw new Error("validatePolicy failed without errors"); // unreachable: its errors are in input
  const value = result.value;
  return {
    values: { groupId: value.groupId, resourceId: value.resourceId, description: value.description ?? "", conditions: value.conditions, disabled: value.disabled },
    notices: result.notices.map(apiProblem),
  };
}

/** disabled as stored: the time it was first disabled, kept while it stays disabled. */
function disabledAt(disabled: boolean, current: Date | null): Date | null {
  if (!disabled) return null;
  return current ?? new Date();
}

async function existingPolicy(scope: AccountScope, id: string): Promise<Policy> {
  const policy = await scope.repository(PolicyEntity).get(idParam(id, "the policy"));
  if (policy === null) throw Problem.notFound("the policy");
  return policy;
}

@ApiTags("policies")
@ApiBearerAuth()
@Controller("api/policies")
export class PoliciesController {
  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({ description: "One page of the account's policies, in id order." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<PolicyView>> {
    return listBody(await scope.repository(PolicyEntity).page(pageQuery(query)), policyView);
  }

  @Post()
  @ApiBody({ schema: POLICY_SCHEMA })
  @ApiCreatedResponse({ description: "The new policy, conditions in canonical form, with notices of what that changed." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<PolicyWriteView> {
    const input = new BodyReader(body, FIELDS, "a policy");
    input.done();
    const { values, notices } = await checkPolicy(scope, input, body as Record<string, unknown>);
    const { disabled, ...columns } = values;
    const row = await scope.repository(PolicyEntity).insert({ ...columns, disabledAt: disabledAt(disabled, null) });
    return { ...policyView(row), notices };
  }

  @Post("check")
  @HttpCode(200)
  @ApiBody({ schema: CHECK_SCHEMA })
  @ApiOkResponse({
    description:
      "The policy engine's answer: `{allowed: true, policy_id, until}` (until: when the granting policy's time window closes, null for never) or `{allowed: false, reason, violated: [{policy_id, conditions}]}`, reason one of no_policy, conditions.",
  })
  async check(@Scope() scope: AccountScope, @Body() body: unknown): Promise<AccessCheckView> {
    const input = new BodyReader(body, CHECK_FIELDS, "an access check");
    const actorId = input.uuid("actor_id", true);
    const resourceId = input.uuid("resource_id", true);
    const deviceId = input.uuid("device_id", false);
    const providerId = input.uuid("auth_provider_id", false);
    let at = new Date();
    const atText = input.raw("at");
    if (atText !== undefined && atText !== null) {
      const parsed = rfc3339(atText);
      if (parsed === undefined) input.fail("at", "at.invalid", "at must be an RFC 3339 time such as 2027-01-31T09:30:00+01:00");
      else at = parsed;
    }
    const clientIp = input.text("client_ip", { required: false, max: 64 });
    if (clientIp !== undefined && parseIp(clientIp) === undefined) input.fail("client_ip", "client_ip.invalid", "client_ip must be an IPv4 or IPv6 address");
    const regionText = input.text("region", { required: false, max: 2 });
    const region = regionText?.toUpperCase();
    if (region !== undefined && !REGION_CODES.has(region)) input.fail("region", "region.unknown", "region must be an ISO 3166-1 alpha-2 code such as DE");
    input.done();

    if ((await scope.repository(ActorEntity).get(actorId!)) === null) throw Problem.notFound("the actor");
    if ((await scope.repository(ResourceEntity).get(resourceId!)) === null) throw Problem.notFound("the resource");
    let verified = false;
    if (deviceId !== undefined) {
      const device = await scope.repository(DeviceEntity).get(deviceId);
      if (device === null) throw Problem.notFound("the device");
      if (device.kind !== "client" || device.actorId !== actorId) throw Problem.invalid([{ field: "device_id", code: "device_id.not_actors", message: "device_id must be one of the actor's client devices" }]);
      verified = device.verifiedAt !== null;
    }
    if (providerId !== undefined && (await scope.repository(AuthProviderEntity).get(providerId)) === null) throw Problem.notFound("the auth provider");

    // The same view and subject the realtime hub decides with (hub.ts decide), minus the token: an
    // admin's question is about the policies, not about a session that may or may not exist.
    const view = await AccountView.load(scope);
    const decision = evaluate(
      view.policiesFor(resourceId!),
      { actorId: actorId!, groupIds: view.groupsOf(actorId!), providerId: providerId ?? null, clientIp: clientIp ?? null, region: region ?? null, clientVerified: verified, tokenExpiresAt: null },
      resourceId!,
      at,
    );
    if (decision.allowed) return { allowed: true, policy_id: decision.policyId, until: decision.until?.toISOString() ?? null };
    return { allowed: false, reason: decision.reason, violated: decision.violated.map((v) => ({ policy_id: v.policyId, conditions: v.conditions })) };
  }

  @Get(":id")
  async get(@Scope() scope: AccountScope, @Param("id") id: string): Promise<PolicyView> {
    return policyView(await existingPolicy(scope, id));
  }

  @Patch(":id")
  @ApiBody({ schema: { ...POLICY_SCHEMA, required: [] } })
  @ApiOkResponse({ description: "The changed policy; the whole of it is validated again." })
  async update(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<PolicyWriteView> {
    const current = await existingPolicy(scope, id);
    const input = new BodyReader(body, FIELDS, "a policy");
    input.done();
    const merged: Record<string, unknown> = {
      group_id: current.groupId,
      resource_id: current.resourceId,
      description: current.description,
      disabled: current.disabledAt !== null,
      conditions: current.conditions,
      ...(isRecord(body) ? body : {}),
    };
    const { values, notices } = await checkPolicy(scope, input, merged, current.id);
    const { disabled, ...columns } = values;
    const updated = await scope.repository(PolicyEntity).update(current.id, { ...columns, disabledAt: disabledAt(disabled, current.disabledAt) });
    if (updated === null) throw Problem.notFound("the policy");
    return { ...policyView(updated), notices };
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The policy is gone; the group no longer reaches the resource through it." })
  async remove(@Scope() scope: AccountScope, @Param("id") id: string): Promise<void> {
    if (!(await scope.repository(PolicyEntity).delete(idParam(id, "the policy")))) throw Problem.notFound("the policy");
  }
}
