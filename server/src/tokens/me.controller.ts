// /api/me: who the presented token acts as (every actor may ask, whatever its role, from a browser,
// an API token or a client), and the client tokens a signed-in person mints for their own devices.

import { Body, Controller, Get, Post } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiOkResponse, ApiTags } from "@nestjs/swagger";
import { issueToken } from "../accounts/accounts.service.js";
import { Access, Caller, Scope } from "../auth/access.js";
import type { Principal } from "../auth/principal.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, type ActorType, type TokenKind } from "../database/entities.js";
import { BodyReader } from "../http/input.js";
import { Problem } from "../http/problem.js";
import { tokenView, type TokenView } from "../sites/sites.controller.js";

/** How long a client token lives when its request names no expiry. */
export const CLIENT_TOKEN_DAYS = 30;

export interface MeView {
  account: { id: string; slug: string; name: string };
  actor: { id: string; type: ActorType; name: string; email: string | null };
  /** expires_at: when this token (a browser's session, say) stops working; null if never. */
  token: { id: string; kind: TokenKind; expires_at: string | null };
}

@ApiTags("me")
@ApiBearerAuth()
@Controller("api/me")
export class MeController {
  @Get()
  @Access({ kinds: ["browser", "api", "client"], roles: ["user", "admin", "service_account", "api_client"] })
  @ApiOkResponse({ description: "The account, the actor and the token of this request." })
  async get(@Scope() scope: AccountScope, @Caller() caller: Principal): Promise<MeView> {
    const [account, actor] = await Promise.all([scope.account(), caller.actorId === null ? null : scope.repository(ActorEntity).get(caller.actorId)]);
    // Deleted between the guard's check and here: the token no longer stands for anyone.
    if (actor === null) throw Problem.unauthenticated("the token's actor no longer exists");
    return {
      account: { id: account.id, slug: account.slug, name: account.name },
      actor: { id: actor.id, type: actor.type, name: actor.name, email: actor.email },
      token: { id: caller.tokenId, kind: caller.tokenKind, expires_at: caller.tokenExpiresAt?.toISOString() ?? null },
    };
  }

  @Post("client_tokens")
  @Access({ kinds: ["browser"], roles: ["user", "admin"] })
  @ApiBody({ schema: { type: "object", properties: { name: { type: "string", maxLength: 255 }, expires_at: { type: "string", format: "date-time" } }, additionalProperties: false } })
  @ApiCreatedResponse({ description: `A client token for one of the caller's own devices; \`token\` is shown this once. Expires after ${CLIENT_TOKEN_DAYS} days unless expires_at says otherwise.` })
  async clientToken(@Scope() scope: AccountScope, @Caller() caller: Principal, @Body() body: unknown): Promise<TokenView & { token: string }> {
    const input = new BodyReader(body ?? {}, ["name", "expires_at"], "a client token");
    const name = input.text("name", { required: false });
    const now = new Date();
    const expiresAt = input.futureTime("expires_at", now) ?? new Date(now.getTime() + CLIENT_TOKEN_DAYS * 86_400_000);
    input.done();
    // The session's sign-in provider goes with it: the client's requests are checked against it.
    const issued = await issueToken(scope, { kind: "client", actorId: caller.actorId, name: name ?? "", expiresAt, providerId: caller.providerId });
    return { ...tokenView(issued.row), token: issued.token };
  }
}
