// Who a request acts as, once the guard has checked its token: the account (the scope of everything it
// touches), the actor and its role, and the token (for rate limiting and last-used bookkeeping).

import type { ActorType, TokenKind } from "../database/entities.js";

export interface Principal {
  accountId: string;
  /** The acting actor; null for gateway and relay tokens, which act for a site or a relay. */
  actorId: string | null;
  /** The actor's role; undefined for gateway and relay tokens. */
  role: ActorType | undefined;
  tokenId: string;
  tokenKind: TokenKind;
  /** When the token stops working (a realtime session ends then, and authorizations with it). */
  tokenExpiresAt: Date | null;
  /** The gateway token's site. */
  siteId: string | null;
  /** The auth provider the sign-in behind the token went through (OIDC); null otherwise. */
  providerId: string | null;
}

/** Roles that administer an account through the API; users see only what is theirs. */
export const ADMIN_ROLES: readonly ActorType[] = ["admin", "api_client"];
