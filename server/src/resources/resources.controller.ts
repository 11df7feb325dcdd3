// /api/resources: what clients reach through the gateways of the resource's sites. The rules of a
// valid resource live in ../domain/resource-rules.ts; this controller maps the snake_case API onto
// them, checks what needs the database (the sites exist in this account, the account has no other
// Internet resource), and stores the normalized form with the resource's sites in one transaction.
//
// 1. Read the body: known fields only, site_ids as a list of UUIDs.
// 2. Validate: create validates the body; PATCH validates the stored resource with the body laid
//    over it, so a change cannot leave an invalid resource behind.
// 3. Look up the sites through the scope; another account's site is not found in this one.
// 4. Write the row and its resource_sites links together, and answer with the validator's notices.

import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { In, Not } from "typeorm";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { ResourceEntity, ResourceSiteEntity, SiteEntity, type Resource } from "../database/entities.js";
import { formatPortRange, isRecord, validateResource, type FieldError, type FieldNotice, type NormalizedFilter } from "../domain/resource-rules.js";
import { BodyReader, idParam, isUuid, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";

/** A filter as the API and the database carry it, Firezone's shape: ports are "443" or "8000-8080"; none is every port. */
export type FilterView = { protocol: "tcp" | "udp"; ports: string[] } | { protocol: "icmp" };

export interface ResourceView {
  id: string;
  type: Resource["type"];
  name: string;
  address: string | null;
  address_description: string | null;
  filters: FilterView[];
  site_ids: string[];
  created_at: string;
  updated_at: string;
}

/** The reply to a write: the resource and what the validator changed on the way (masked host bits). */
export type ResourceWriteView = ResourceView & { notices: FieldNotice[] };

export const resourceView = (r: Resource, siteIds: readonly string[]): ResourceView => ({
  id: r.id,
  type: r.type,
  name: r.name,
  address: r.address,
  address_description: r.addressDescription,
  filters: r.filters as FilterView[],
  site_ids: [...siteIds].sort(),
  created_at: r.createdAt.toISOString(),
  updated_at: r.updatedAt.toISOString(),
});

const FIELDS = ["type", "name", "address", "address_description", "filters", "site_ids"] as const;

const RESOURCE_SCHEMA: Schema = {
  type: "object",
  required: ["type", "name", "site_ids"],
  properties: {
    type: { type: "string", enum: ["dns", "ip", "cidr", "internet"] },
    name: { type: "string", maxLength: 255 },
    address: { type: "string", description: "dns: a name or wildcard pattern (*.example.com, **.example.com, ?); ip: an address; cidr: address/length; internet: none" },
    address_description: { type: "string", maxLength: 512 },
    filters: {
      type: "array",
      description: "one per protocol; empty allows all traffic",
      items: {
        type: "object",
        required: ["protocol"],
        properties: { protocol: { type: "string", enum: ["tcp", "udp", "icmp"] }, ports: { type: "array", items: { type: "string", example: "8000-8080" } } },
      },
    },
    site_ids: { type: "array", items: { type: "string", format: "uuid" }, description: "the sites whose gateways serve it; at least one, except for the Internet resource" },
  },
  additionalProperties: false,
};

/** The validator's camelCase field names, as the API spells them. */
const apiField = (field: string): string => (field === "addressDescription" ? "address_description" : field);
const apiProblem = (e: FieldError): FieldError => ({ ...e, field: apiField(e.field) });

const storedFilter = (f: NormalizedFilter): FilterView => (f.protocol === "icmp" ? { protocol: "icmp" } : { protocol: f.protocol, ports: f.ports.map(formatPortRange) });

/** site_ids: a list of UUIDs, duplicates dropped; undefined when absent. */
function readSiteIds(input: BodyReader): string[] | undefined {
  const raw = input.raw("site_ids");
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    input.fail("site_ids", "site_ids.not_array", "site_ids must be a list of site ids");
    return undefined;
  }
  const ids: string[] = [];
  Array.from(raw as unknown[]).forEach((id, i) => {
    if (!isUuid(id)) input.fail(`site_ids/${i}`, "site_ids.invalid", "a site id is a UUID");
    else if (!ids.includes(id.toLowerCase())) ids.push(id.toLowerCase());
  });
  return ids;
}

interface ResourceWrite {
  values: Pick<Resource, "type" | "name" | "address" | "addressDescription" | "filters">;
  siteIds: string[];
  notices: FieldNotice[];
}

/**
 * Steps 2 and 3: validates `merged` (the resource as it would be stored, in the API's spelling) and
 * its sites, adding every problem to `input`; throws the 422 (or the 409 when the only fault is a
 * second Internet resource) naming them all.
 */
async function checkResource(scope: AccountScope, input: BodyReader, merged: Record<string, unknown>, siteIds: string[], exceptId?: string): Promise<ResourceWrite> {
  const resources = scope.repository(ResourceEntity);
  const internetResourceExists = (await resources.count({ type: "internet", ...(exceptId !== undefined ? { id: Not(exceptId) } : {}) })) > 0;
  const result = validateResource(
    { type: merged.type, name: merged.name, address: merged.address, addressDescription: merged.address_description, filters: merged.filters },
    { internetResourceExists },
  );
  const ruleErrors = result.ok ? [] : result.errors.map(apiProblem);
  for (const e of ruleErrors) input.fail(e.field, e.code, e.message);

  // Firezone connects every resource to at least one site; the Internet resource may wait for one.
  if (merged.type !== "internet" && siteIds.length === 0 && !input.errors.some((e) => e.field.startsWith("site_ids"))) {
    input.fail("site_ids", "site_ids.required", "a resource needs at least one site whose gateways reach it");
  }
  if (siteIds.length > 0) {
    const found = new Set((await scope.repository(SiteEntity).list({ where: { id: In(siteIds) } })).map((s) => s.id));
    const raw = Array.isArray(merged.site_ids) ? (merged.site_ids as unknown[]) : siteIds;
    raw.forEach((id, i) => {
      if (isUuid(id) && !found.has(id.toLowerCase())) input.fail(`site_ids/${i}`, "site_ids.not_found", `site ${id} does not exist in this account`);
    });
  }

  const onlyInternetClash = input.errors.length > 0 && input.errors.every((e) => e.code === "internet.already_exists");
  if (onlyInternetClash) throw Problem.conflict("this account already has the Internet resource", input.errors, "internet.already_exists");
  input.done();
  if (!result.ok) throw new Error("validateResource failed without errors"); // unreachable: its errors are in input
  const value = result.value;
  return {
    values: {
      type: value.type,
      name: value.name,
      address: value.type === "internet" ? null : value.address,
      addressDescription: value.addressDescription ?? null,
      filters: value.filters.map(storedFilter),
    },
    siteIds,
    notices: result.notices.map(apiProblem),
  };
}

async function siteIdsOf(scope: AccountScope, resourceId: string): Promise<string[]> {
  return (await scope.links(ResourceSiteEntity).list({ resourceId })).map((l) => l.siteId);
}

async function existingResource(scope: AccountScope, id: string): Promise<Resource> {
  const resource = await scope.repository(ResourceEntity).get(idParam(id, "the resource"));
  if (resource === null) throw Problem.notFound("the resource");
  return resource;
}

@ApiTags("resources")
@ApiBearerAuth()
@Controller("api/resources")
export class ResourcesController {
  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({ description: "One page of the account's resources, in id order, each with its sites." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<ResourceView>> {
    const page = await scope.repository(ResourceEntity).page(pageQuery(query));
    const ids = page.rows.map((r) => r.id);
    const links = ids.length === 0 ? [] : await scope.links(ResourceSiteEntity).list({ resourceId: In(ids) });
    const sites = new Map<string, string[]>(ids.map((id) => [id, []]));
    for (const link of links) sites.get(link.resourceId)?.push(link.siteId);
    return listBody(page, (r) => resourceView(r, sites.get(r.id) ?? []));
  }

  @Post()
  @ApiBody({ schema: RESOURCE_SCHEMA })
  @ApiCreatedResponse({ description: "The new resource in normalized form, with notices of what normalizing changed." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<ResourceWriteView> {
    const input = new BodyReader(body, FIELDS, "a resource");
    input.done();
    const siteIds = readSiteIds(input) ?? [];
    const write = await checkResource(scope, input, body as Record<string, unknown>, siteIds);
    return scope.transaction(async (tx) => {
      const row = await tx.repository(ResourceEntity).insert(write.values);
      const links = tx.links(ResourceSiteEntity);
      for (const siteId of write.siteIds) await links.add({ resourceId: row.id, siteId });
      return { ...resourceView(row, write.siteIds), notices: write.notices };
    });
  }

  @Get(":id")
  async get(@Scope() scope: AccountScope, @Param("id") id: string): Promise<ResourceView> {
    const resource = await existingResource(scope, id);
    return resourceView(resource, await siteIdsOf(scope, resource.id));
  }

  @Patch(":id")
  @ApiBody({ schema: { ...RESOURCE_SCHEMA, required: [] } })
  @ApiOkResponse({ description: "The changed resource; the whole of it is validated again." })
  async update(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<ResourceWriteView> {
    const current = await existingResource(scope, id);
    const input = new BodyReader(body, FIELDS, "a resource");
    input.done();
    const currentSites = await siteIdsOf(scope, current.id);
    const siteIds = readSiteIds(input) ?? currentSites;
    const merged: Record<string, unknown> = {
      type: current.type,
      name: current.name,
      address: current.address,
      address_description: current.addressDescription,
      filters: current.filters,
      ...(isRecord(body) ? body : {}),
    };
    const write = await checkResource(scope, input, merged, siteIds, current.id);
    return scope.transaction(async (tx) => {
      const updated = await tx.repository(ResourceEntity).update(current.id, write.values);
      if (updated === null) throw Problem.notFound("the resource");
      const links = tx.links(ResourceSiteEntity);
      for (const siteId of currentSites) if (!write.siteIds.includes(siteId)) await links.remove({ resourceId: current.id, siteId });
      for (const siteId of write.siteIds) if (!currentSites.includes(siteId)) await links.add({ resourceId: current.id, siteId });
      return { ...resourceView(updated, write.siteIds), notices: write.notices };
    });
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The resource is gone, with its policies." })
  async remove(@Scope() scope: AccountScope, @Param("id") id: string): Promise<void> {
    if (!(await scope.repository(ResourceEntity).delete(idParam(id, "the resource")))) throw Problem.notFound("the resource");
  }
}
