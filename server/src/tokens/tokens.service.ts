// Which token an actor may be given through the API: an API client gets API tokens (it calls this
// API), a service account gets client tokens (it runs the client headless). People get theirs by
// signing in, never from an admin's hands; gateway tokens come from their site, relay tokens alone.

import { issueToken, type IssuedToken } from "../accounts/accounts.service.js";
import type { AccountScope } from "../database/account-scope.js";
import { ActorEntity, type ActorType, type TokenKind } from "../database/entities.js";
import { Problem } from "../http/problem.js";

/** The token kind each actor type is issued through /api/tokens. */
export const ISSUED_KIND: Partial<Record<ActorType, TokenKind>> = { api_client: "api", service_account: "client" };

/** Issues the tokens that admins hand out: to API clients, service accounts and relays. */
export class TokensService {
  /** A token for an actor of the account, of the kind its type holds; the secret is in the result once. */
  async issueForActor(scope: AccountScope, values: { actorId: string; name: string; expiresAt: Date | null }): Promise<IssuedToken> {
    const actor = await scope.repository(ActorEntity).get(values.actorId);
    if (actor === null) throw Problem.invalid([{ field: "actor_id", code: "actor_id.not_found", message: "actor_id names no actor of this account" }]);
    const kind = ISSUED_KIND[actor.type];
    if (kind === undefined) {
      throw Problem.invalid([{ field: "actor_id", code: "actor_id.wrong_type", message: `a ${actor.type} gets tokens by signing in; tokens are issued here for API clients and service accounts` }]);
    }
    if (actor.disabledAt !== null) throw Problem.invalid([{ field: "actor_id", code: "actor_id.disabled", message: "the actor is disabled: enable it first" }]);
    return issueToken(scope, { kind, actorId: actor.id, name: values.name, expiresAt: values.expiresAt });
  }

  /** A relay's token: it belongs to the account and to no actor or site. */
  issueRelay(scope: AccountScope, values: { name: string; expiresAt: Date | null }): Promise<IssuedToken> {
    return issueToken(scope, { kind: "relay", name: values.name, expiresAt: values.expiresAt });
  }
}
