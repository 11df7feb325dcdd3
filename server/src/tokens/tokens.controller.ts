// /api/tokens: every token of the account (listed without secrets), API tokens for API clients and
// client tokens for service accounts, revocation; /api/relay_tokens: tokens for relays. A secret is
// shown once, in the reply that issues it; the database keeps only its hash.

import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, TokenEntity, type TokenKind } from "../database/entities.js";
import { BodyReader, idParam, isUuid, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem, type FieldProblem } from "../http/problem.js";
import { tokenView, type TokenView } from "../sites/sites.controller.js";
import { TokensService } from "./tokens.service.js";

const TOKEN_KINDS: readonly TokenKind[] = ["browser", "client", "gateway", "relay", "api"];

const ACTOR_TOKEN_REQUEST: Schema = {
  type: "object",
  required: ["actor_id"],
  properties: {
    actor_id: { type: "string", format: "uuid", description: "an API client (gets an `api` token) or a service account (gets a `client` token)" },
    name: { type: "string", maxLength: 255 },
    expires_at: { type: "string", format: "date-time" },
  },
  additionalProperties: false,
};
const RELAY_TOKEN_REQUEST: Schema = {
  type: "object",
  properties: { name: { type: "string", maxLength: 255 }, expires_at: { type: "string", format: "date-time" } },
  additionalProperties: false,
};

type IssuedView = TokenView & { token: string };

@ApiTags("tokens")
@ApiBearerAuth()
@Controller("api/tokens")
export class TokensController {
  constructor(@Inject(TokensService) private readonly tokens: TokensService) {}

  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiQuery({ name: "actor_id", required: false, description: "only this actor's tokens", schema: { type: "string", format: "uuid" } })
  @ApiQuery({ name: "kind", required: false, enum: [...TOKEN_KINDS], description: "only tokens of this kind" })
  @ApiOkResponse({ description: "One page of the account's tokens, in id order, without their secrets." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<TokenView>> {
    const { actor_id: actorId, kind, ...page } = query;
    const errors: FieldProblem[] = [];
    if (actorId !== undefined && !isUuid(actorId)) errors.push({ field: "actor_id", code: "actor_id.invalid", message: "actor_id must be a UUID" });
    else if (actorId !== undefined && (await scope.repository(ActorEntity).get(actorId.toLowerCase())) === null) {
      errors.push({ field: "actor_id", code: "actor_id.not_found", message: "actor_id names no actor of this account" });
    }
    if (kind !== undefined && !(TOKEN_KINDS as readonly unknown[]).includes(kind)) errors.push({ field: "kind", code: "kind.invalid", message: `kind must be one of ${TOKEN_KINDS.join(", ")}` });
    if (errors.length > 0) throw Problem.invalid(errors);
    const where = { ...(actorId !== undefined ? { actorId: String(actorId).toLowerCase() } : {}), ...(kind !== undefined ? { kind: kind as TokenKind } : {}) };
    return listBody(await scope.repository(TokenEntity).page({ where, ...pageQuery(page) }), tokenView);
  }

  @Post()
  @ApiBody({ schema: ACTOR_TOKEN_REQUEST })
  @ApiCreatedResponse({ description: "The token; `token` is shown this once and never again." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<IssuedView> {
    const input = new BodyReader(body, ["actor_id", "name", "expires_at"], "a token");
    const actorId = input.uuid("actor_id", true);
    const name = input.text("name", { required: false });
    const expiresAt = input.futureTime("expires_at", new Date());
    input.done();
    const issued = await this.tokens.issueForActor(scope, { actorId: actorId!, name: name ?? "", expiresAt: expiresAt ?? null });
    return { ...tokenView(issued.row), token: issued.token };
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The token is revoked: the next request that presents it gets 401." })
  async revoke(@Scope() scope: AccountScope, @Param("id") id: string): Promise<void> {
    if (!(await scope.repository(TokenEntity).delete(idParam(id, "the token")))) throw Problem.notFound("the token");
  }
}

@ApiTags("tokens")
@ApiBearerAuth()
@Controller("api/relay_tokens")
export class RelayTokensController {
  constructor(@Inject(TokensService) private readonly tokens: TokensService) {}

  @Post()
  @ApiBody({ schema: RELAY_TOKEN_REQUEST })
  @ApiCreatedResponse({ description: "The relay token; `token` is shown this once and never again. List and revoke it under /api/tokens." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<IssuedView> {
    const input = new BodyReader(body ?? {}, ["name", "expires_at"], "a relay token");
    const name = input.text("name", { required: false });
    const expiresAt = input.futureTime("expires_at", new Date());
    input.done();
    const issued = await this.tokens.issueRelay(scope, { name: name ?? "", expiresAt: expiresAt ?? null });
    return { ...tokenView(issued.row), token: issued.token };
  }
}
