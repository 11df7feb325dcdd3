// /api/auth_providers: an account's OIDC providers (admins only). The client secret is write-only: it
// is stored as given, used to redeem codes, and never shown again nor written to the change log.

import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import { Scope } from "./access.js";
import type { AccountScope } from "../database/account-scope.js";
import { BodyReader, idParam, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";
import { AuthProviderEntity, type AuthProvider } from "./entities.js";
import { issuerProblem } from "./oidc.js";

export interface AuthProviderView {
  id: string;
  kind: AuthProvider["kind"];
  name: string;
  issuer: string;
  client_id: string;
  scopes: string;
  created_at: string;
}

export const authProviderView = (p: AuthProvider): AuthProviderView => ({
  id: p.id,
  kind: p.kind,
  name: p.name,
  issuer: p.issuer,
  client_id: p.clientId,
  scopes: p.scopes,
  created_at: p.createdAt.toISOString(),
});

export const DEFAULT_SCOPES = "openid email profile";
const FIELDS = ["kind", "name", "issuer", "client_id", "client_secret", "scopes"];

const PROVIDER_SCHEMA: Schema = {
  type: "object",
  required: ["name", "issuer", "client_id", "client_secret"],
  properties: {
    kind: { type: "string", enum: ["oidc"] },
    name: { type: "string", maxLength: 255 },
    issuer: { type: "string", format: "uri", description: "the OpenID Provider's issuer identifier (https; http only on loopback)" },
    client_id: { type: "string" },
    client_secret: { type: "string", description: "write-only" },
    scopes: { type: "string", description: `space-separated; must include openid and email (default "${DEFAULT_SCOPES}")` },
  },
  additionalProperties: false,
};

type ProviderInput = Partial<Pick<AuthProvider, "name" | "issuer" | "clientId" | "clientSecret" | "scopes">>;

function readProvider(body: unknown, required: boolean): ProviderInput {
  const input = new BodyReader(body, FIELDS, "an auth provider");
  input.oneOf("kind", ["oidc"] as const, false);
  const name = input.text("name", { required });
  const issuer = input.text("issuer", { required, max: 2048 });
  if (issuer !== undefined) {
    const problem = issuerProblem(issuer);
    if (problem !== undefined) input.fail("issuer", "issuer.invalid", problem);
  }
  const clientId = input.text("client_id", { required, max: 1024 });
  const clientSecret = input.text("client_secret", { required, max: 4096 });
  let scopes = input.text("scopes", { required: false, max: 1024 });
  if (scopes !== undefined) {
    const list = scopes.split(/\s+/);
    if (!list.every((s) => /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) input.fail("scopes", "scopes.invalid", "scopes are space-separated OAuth scope tokens");
    else if (!list.includes("openid") || !list.includes("email")) input.fail("scopes", "scopes.missing_openid_email", "scopes must include openid and email: sign-in matches the verified email");
    scopes = list.join(" ");
  }
  input.done();
  const values: ProviderInput = {};
  if (name !== undefined) values.name = name;
  if (issuer !== undefined) values.issuer = issuer;
  if (clientId !== undefined) values.clientId = clientId;
  if (clientSecret !== undefined) values.clientSecret = clientSecret;
  if (scopes !== undefined) values.scopes = scopes;
  return values;
}

@ApiTags("auth providers")
@ApiBearerAuth()
@Controller("api/auth_providers")
export class AuthProvidersController {
  @Get()
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiOkResponse({ description: "One page of the account's auth providers, in id order; client secrets are never shown." })
  async list(@Scope() scope: AccountScope, @Query() query: Record<string, unknown>): Promise<ListBody<AuthProviderView>> {
    return listBody(await scope.repository(AuthProviderEntity).page(pageQuery(query)), authProviderView);
  }

  @Post()
  @ApiBody({ schema: PROVIDER_SCHEMA })
  @ApiCreatedResponse({ description: "The new provider. Register <public URL>/api/auth/<slug>/oidc/<id>/callback as its redirect URI." })
  async create(@Scope() scope: AccountScope, @Body() body: unknown): Promise<AuthProviderView> {
    const values = readProvider(body, true);
    return authProviderView(await scope.repository(AuthProviderEntity).insert({ kind: "oidc", scopes: DEFAULT_SCOPES, ...values }));
  }

  @Get(":id")
  async get(@Scope() scope: AccountScope, @Param("id") id: string): Promise<AuthProviderView> {
    const provider = await scope.repository(AuthProviderEntity).get(idParam(id, "the auth provider"));
    if (provider === null) throw Problem.notFound("the auth provider");
    return authProviderView(provider);
  }

  @Patch(":id")
  @ApiBody({ schema: { ...PROVIDER_SCHEMA, required: [] } })
  async update(@Scope() scope: AccountScope, @Param("id") id: string, @Body() body: unknown): Promise<AuthProviderView> {
    const providerId = idParam(id, "the auth provider");
    const patch = readProvider(body, false);
    const updated = await scope.repository(AuthProviderEntity).update(providerId, patch);
    if (updated === null) throw Problem.notFound("the auth provider");
    return authProviderView(updated);
  }

  @Delete(":id")
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The provider is gone, with its sign-ins in progress." })
  async remove(@Scope() scope: AccountScope, @Param("id") id: string): Promise<void> {
    if (!(await scope.repository(AuthProviderEntity).delete(idParam(id, "the auth provider")))) throw Problem.notFound("the auth provider");
  }
}
