// /api/sites: sites (where gateways run and resources are reached) and their gateway tokens. A gateway
// token is issued for one site; the gateway that holds it registers and connects as that site's.

import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { issueToken } from "../accounts/accounts.service.js";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { SiteEntity, TokenEntity, type Site, type Token } from "../database/entities.js";
import { BodyReader, idParam, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";

export interface SiteView {
  id: string;
  name: string;
  created_at: string;
}

export interface TokenView {
  id: string;
  kind: Token["kind"];
  name: string;
  actor_id: string | null;
  site_id: string | null;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
}

export const siteView = (s: Site): SiteView => ({ id: s.id, name: s.name, created_at: s.createdAt.toISOString() });

export const tokenView = (t: Token): TokenView => ({
  id: t.id,
  kind: t.kind,
  name: t.name,
  actor_id: t.actorId,
  site_id: t.siteId,
  expires_at: t.expiresAt?.toISOString() ?? null,
  last_used_at: t.lastUsedAt?.toISOString() ?? null,
  created_at: t.createdAt.toISOString(),
});

const SITE_SCHEMA: Schema = { type: "object", required: ["name"], properties: { name: { type: "string", maxLength: 255 } }, additionalProperties: false };
const TOKEN_REQUEST: Schema = {
  type: "object",
  properties: { name: { type: "string", maxLength: 255 }, expires_at: { type: "string", format: "date-time" } },
  additionalProperties: false,
};

function readSite(body: unknown, required: boolean): { name?: string } {
  const input = new BodyReader(body, ["name"], "a site");
  const name = input.text("name", { required });
  input.done();
  return name === undefined ? {} : { name };
}

async function existingSite(scope: AccountScope, id: string): Promise<Site> {
  const site = await scope.repository(SiteEntity).get(idParam(id, "the site"));
  if (site === null) throw Problem.notFound("the site");
  return site;
}

@ApiTags("sites")
@ApiBearerAuth()
@Controller("api/sites")
export class SitesController {

  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({ description: "One page of the account's sites, in id order." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<SiteView>> {
    return listBody(await scope.repository(SiteEntity).page(pageQuery(query)), siteView);
  }

  @Post()
  @ApiBody({ schema: SITE_SCHEMA })
  @ApiCreatedResponse({ description: "The new site." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<SiteView> {
    const { name } = readSite(body, true);
    return siteView(await scope.repository(SiteEntity).insert({ name: name! }));
  }

  @Get(":id")
  async get(@Scope() scope: AccountScope, @Param("id") id: string): Promise<SiteView> {
    return siteView(await existingSite(scope, id));
  }

  @Patch(":id")
  @ApiBody({ schema: { ...SITE_SCHEMA, required: [] } })
  async update(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<SiteView> {
    const patch = readSite(body, false);
    const updated = await scope.repository(SiteEntity).update(idParam(id, "the site"), patch);
    if (updated === null) throw Problem.notFound("the site");
    return siteView(updated);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The site is gone, with its gateways and gateway tokens." })
  async remove(@Scope() scope: AccountScope, @Param("id") id: string): Promise<void> {
    if (!(await scope.repository(SiteEntity).delete(idParam(id, "the site")))) throw Problem.notFound("the site");
  }

  @Get(":id/gateway_tokens")
  async listTokens(@Scope() scope: AccountScope, @Param("id") id: string, @Query() query: Record<string, unknown>): Promise<ListBody<TokenView>> {
    const site = await existingSite(scope, id);
    return listBody(await scope.repository(TokenEntity).page({ where: { siteId: site.id, kind: "gateway" }, ...pageQuery(query) }), tokenView);
  }

  @Post(":id/gateway_tokens")
  @ApiBody({ schema: TOKEN_REQUEST })
  @ApiCreatedResponse({ description: "The token; `token` is shown this once and never again." })
  async createToken(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<TokenView & { token: string }> {
    const site = await existingSite(scope, id);
    const input = new BodyReader(body ?? {}, ["name", "expires_at"], "a gateway token");
    const name = input.text("name", { required: false });
    const expiresAt = input.futureTime("expires_at", new Date());
    input.done();
    const issued = await issueToken(scope, { kind: "gateway", siteId: site.id, name: name ?? "", expiresAt: expiresAt ?? null });
    return { ...tokenView(issued.row), token: issued.token };
  }

  @Delete(":id/gateway_tokens/:tokenId")
  @HttpCode(204)
  async revokeToken(@Scope() scope: AccountScope, @Param("id") id: string, @Param("tokenId") tokenId: string): Promise<void> {
    const site = await existingSite(scope, id);
    const tokens = scope.repository(TokenEntity);
    const token = await tokens.get(idParam(tokenId, "the gateway token"));
    if (token === null || token.siteId !== site.id || token.kind !== "gateway") throw Problem.notFound("the gateway token");
    await tokens.delete(token.id);
  }
}
