// /api/authorizations and /api/change_log: the account's two logs, for admins. Authorizations say who
// reached what through which gateway and until when (and why it ended early, if it did); the change
// log says who changed which object, with the object before and after.
//
// 1. Read the query: every filter checked, unknown parameters refused, and the paging parameters'
//    problems joined to the filters' so one 422 names every field at fault.
// 2. Read one page, newest first (newest-first.ts), confined to the caller's account.
// 3. Name what the rows refer to (actors, devices, resources) with one lookup per kind for the page;
//    a record outlives what it names, so a name is null once its object is gone.

import { Controller, Get, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { In, IsNull, Raw, type EntitySchema, type FindOptionsWhere } from "typeorm";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, ChangeLogEntity, DeviceEntity, ENTITIES, ResourceEntity, type ChangeLogEntry, type TenantRow } from "../database/entities.js";
import { BodyReader, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import { Problem } from "../http/problem.js";
import { AuthorizationEntity, REALTIME_ENTITIES, type Authorization } from "../realtime/entities.js";
import { newestFirst, type LogTime } from "./newest-first.js";

export interface AuthorizationView {
  id: string;
  actor_id: string;
  actor_name: string | null;
  client_device_id: string;
  client_device_name: string | null;
  gateway_device_id: string;
  gateway_device_name: string | null;
  resource_id: string;
  resource_name: string | null;
  policy_id: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  revoke_reason: string | null;
  /** Neither revoked nor expired when the page was read. */
  active: boolean;
}

export interface ChangeView {
  id: string;
  at: string;
  actor_id: string | null;
  actor_name: string | null;
  action: ChangeLogEntry["action"];
  /** The table of the object changed: sites, actors, memberships, ... */
  object_type: string;
  object_id: string;
  /** The object's name after the change (before it, for a deletion), when it has one. */
  object_name: string | null;
  before: unknown;
  after: unknown;
}

const AUTHORIZATION_TIME: LogTime<Authorization> = { table: "authorizations", column: "created_at", property: "createdAt" };
const CHANGE_TIME: LogTime<ChangeLogEntry> = { table: "change_log", column: "at", property: "at" };

/**
 * The object types the change log holds: the tables of the portal's entities but the log's own and the
 * realtime ones, which are written past the account scope and so never logged.
 */
const OBJECT_TYPES: readonly string[] = ENTITIES.filter((e) => e !== ChangeLogEntity && !(REALTIME_ENTITIES as EntitySchema[]).includes(e as EntitySchema))
  .map((e) => (e as EntitySchema).options.tableName!)
  .sort();

const uuidQuery = (name: string, description: string) => ({ name, required: false, description, schema: { type: "string" as const, format: "uuid" } });

// --- 1. Reading the query ---

/** Filters of `query` read by `read`, then its page; every problem of either in one 422. */
function readQuery<F>(query: unknown, filters: readonly string[], what: string, read: (input: BodyReader) => F): { filters: F; page: ReturnType<typeof pageQuery> } {
  const input = new BodyReader(query ?? {}, [...filters, "limit", "cursor"], what);
  const values = read(input);
  let page: ReturnType<typeof pageQuery> = { limit: 0 };
  try {
    const { limit, cursor } = (query ?? {}) as Record<string, unknown>;
    page = pageQuery({ limit, cursor });
  } catch (error) {
    if (!(error instanceof Problem) || error.errors === undefined) throw error;
    input.errors.push(...error.errors);
  }
  input.done();
  return { filters: values, page };
}

// --- 3. Names ---

/** The names of the rows of `schema` with these ids (those still in the account). */
async function namesOf<T extends TenantRow & { name: string }>(scope: AccountScope, schema: EntitySchema<T>, ids: Iterable<string | null>): Promise<Map<string, string>> {
  const wanted = [...new Set([...ids].filter((id): id is string => id !== null))];
  if (wanted.length === 0) return new Map();
  const rows = await scope.repository(schema).list({ where: { id: In(wanted) } as FindOptionsWhere<T> });
  return new Map(rows.map((r) => [r.id, r.name]));
}

function objectName(entry: ChangeLogEntry): string | null {
  const named = (entry.after ?? entry.before) as { name?: unknown } | null;
  return typeof named?.name === "string" ? named.name : null;
}

@ApiTags("logs")
@ApiBearerAuth()
@Controller("api")
export class LogsController {
  @Get("authorizations")
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiQuery(uuidQuery("actor_id", "only this actor's authorizations"))
  @ApiQuery(uuidQuery("resource_id", "only authorizations to this resource"))
  @ApiQuery(uuidQuery("client_device_id", "only this client device's authorizations"))
  @ApiQuery(uuidQuery("gateway_device_id", "only authorizations through this gateway"))
  @ApiQuery({ name: "active", required: false, enum: ["true", "false"], description: "true: only those neither revoked nor expired; false: only those that have ended" })
  @ApiOkResponse({ description: "One page of the account's authorization records, newest first, with the names of the actor, devices and resource (null once deleted)." })
  async authorizations(@Scope() scope: AccountScope, @Query() query: unknown): Promise<ListBody<AuthorizationView>> {
    const now = new Date();
    const { filters, page } = readQuery(query, ["actor_id", "resource_id", "client_device_id", "gateway_device_id", "active"], "the authorizations query", (input) => ({
      actorId: input.uuid("actor_id", false),
      resourceId: input.uuid("resource_id", false),
      clientDeviceId: input.uuid("client_device_id", false),
      gatewayDeviceId: input.uuid("gateway_device_id", false),
      active: input.oneOf("active", ["true", "false"], false),
    }));
    const where: FindOptionsWhere<Authorization> = {
      ...(filters.actorId !== undefined ? { actorId: filters.actorId } : {}),
      ...(filters.resourceId !== undefined ? { resourceId: filters.resourceId } : {}),
      ...(filters.clientDeviceId !== undefined ? { clientDeviceId: filters.clientDeviceId } : {}),
      ...(filters.gatewayDeviceId !== undefined ? { gatewayDeviceId: filters.gatewayDeviceId } : {}),
      // A record without an expiry lasts until it is revoked.
      ...(filters.active === "true" ? { revokedAt: IsNull(), expiresAt: Raw((at) => `(${at} IS NULL OR ${at} > :activeAt)`, { activeAt: now }) } : {}),
      ...(filters.active === "false" ? { revokedAt: Raw((at) => `(${at} IS NOT NULL OR ${at.slice(0, -"revokedAt".length)}expiresAt <= :activeAt)`, { activeAt: now }) } : {}),
    };
    const rows = await newestFirst(scope.repository(AuthorizationEntity), AUTHORIZATION_TIME, { where, ...page });
    const actors = await namesOf(scope, ActorEntity, rows.rows.map((r) => r.actorId));
    const devices = await namesOf(scope, DeviceEntity, rows.rows.flatMap((r) => [r.clientDeviceId, r.gatewayDeviceId]));
    const resources = await namesOf(scope, ResourceEntity, rows.rows.map((r) => r.resourceId));
    return listBody(rows, (r) => ({
      id: r.id,
      actor_id: r.actorId,
      actor_name: actors.get(r.actorId) ?? null,
      client_device_id: r.clientDeviceId,
      client_device_name: devices.get(r.clientDeviceId) ?? null,
      gateway_device_id: r.gatewayDeviceId,
      gateway_device_name: devices.get(r.gatewayDeviceId) ?? null,
      resource_id: r.resourceId,
      resource_name: resources.get(r.resourceId) ?? null,
      policy_id: r.policyId,
      created_at: r.createdAt.toISOString(),
      expires_at: r.expiresAt?.toISOString() ?? null,
      revoked_at: r.revokedAt?.toISOString() ?? null,
      revoke_reason: r.revokeReason,
      active: r.revokedAt === null && (r.expiresAt === null || r.expiresAt.getTime() > now.getTime()),
    }));
  }

  @Get("change_log")
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiQuery({ name: "object_type", required: false, description: "only changes to objects of this type: the table's name (sites, actors, memberships, ...)", schema: { type: "string" } })
  @ApiQuery({ name: "object_id", required: false, description: "only changes to this object (a link's id is its key columns joined by colons)", schema: { type: "string" } })
  @ApiQuery(uuidQuery("actor_id", "only changes this actor made"))
  @ApiOkResponse({ description: "One page of the account's change log, newest first: who changed what, with the object before and after (secrets redacted)." })
  async changeLog(@Scope() scope: AccountScope, @Query() query: unknown): Promise<ListBody<ChangeView>> {
    const { filters, page } = readQuery(query, ["object_type", "object_id", "actor_id"], "the change log query", (input) => {
      const objectType = input.text("object_type", { required: false, max: 63 });
      if (objectType !== undefined && !OBJECT_TYPES.includes(objectType)) {
        input.fail("object_type", "object_type.invalid", `object_type must name a type of object the portal logs changes to: ${OBJECT_TYPES.join(", ")}`);
      }
      return { objectType, objectId: input.text("object_id", { required: false, max: 255 }), actorId: input.uuid("actor_id", false) };
    });
    const where: FindOptionsWhere<ChangeLogEntry> = {
      ...(filters.objectType !== undefined ? { objectTable: filters.objectType } : {}),
      ...(filters.objectId !== undefined ? { objectId: filters.objectId } : {}),
      ...(filters.actorId !== undefined ? { actorId: filters.actorId } : {}),
    };
    const rows = await newestFirst(scope.repository(ChangeLogEntity), CHANGE_TIME, { where, ...page });
    const actors = await namesOf(scope, ActorEntity, rows.rows.map((r) => r.actorId));
    return listBody(rows, (r) => ({
      id: r.id,
      at: r.at.toISOString(),
      actor_id: r.actorId,
      actor_name: r.actorId === null ? null : (actors.get(r.actorId) ?? null),
      action: r.action,
      object_type: r.objectTable,
      object_id: r.objectId,
      object_name: objectName(r),
      before: r.before,
      after: r.after,
    }));
  }
}
