// /api/me: who the presented token acts as. Every actor may ask, whatever its role, from a browser,
// an API token or a client.

import { Controller, Get } from "@nestjs/common";
import { ApiBearerAuth, ApiOkResponse, ApiTags } from "@nestjs/swagger";
import { Access, Caller, Scope } from "../auth/access.js";
import type { Principal } from "../auth/principal.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, type ActorType, type TokenKind } from "../database/entities.js";
import { Problem } from "../http/problem.js";

export interface MeView {
  account: { id: string; slug: string; name: string };
  actor: { id: string; type: ActorType; name: string; email: string | null };
  token: { id: string; kind: TokenKind };
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
      token: { id: caller.tokenId, kind: caller.tokenKind },
    };
  }
}
