// Route access: every route needs a token unless marked @Public(). By default a route takes browser
// sessions and API tokens of admins and API clients; @Access widens or narrows that per route.
// @Caller() and @Scope() hand a handler the principal and its account scope, which the guard put on
// the request after checking the token.

import { SetMetadata, createParamDecorator, type ExecutionContext } from "@nestjs/common";
import type { AccountScope } from "../database/account-scope.js";
import type { ActorType, TokenKind } from "../database/entities.js";
import { ADMIN_ROLES, type Principal } from "./principal.js";

export const PUBLIC_ROUTE = "wardline:public";
export const ROUTE_ACCESS = "wardline:access";

export interface RouteAccess {
  /** Token kinds the route takes. */
  kinds: readonly TokenKind[];
  /** Roles of the acting actor the route takes; gateway and relay tokens have none and skip this. */
  roles: readonly ActorType[];
}

export const DEFAULT_ACCESS: RouteAccess = { kinds: ["browser", "api"], roles: ADMIN_ROLES };

/** The route needs no token (health, sign-in, the OpenAPI document). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/** Who may call the route, replacing DEFAULT_ACCESS for the parts given. */
export const Access = (access: Partial<RouteAccess>): MethodDecorator & ClassDecorator => SetMetadata(ROUTE_ACCESS, { ...DEFAULT_ACCESS, ...access });

/** What the guard leaves on an authenticated request. */
export interface AuthenticatedRequest {
  wardline?: { principal: Principal; scope: AccountScope };
}

function authenticated(ctx: ExecutionContext): NonNullable<AuthenticatedRequest["wardline"]> {
  const found = ctx.switchToHttp().getRequest<AuthenticatedRequest>().wardline;
  // A handler asking for these on a public route is a programming error, not a client's.
  if (found === undefined) throw new Error("no principal on this request: is the route @Public()?");
  return found;
}

/** The authenticated principal. */
export const Caller = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => authenticated(ctx).principal);

/** The principal's account scope: the only way a handler reaches tenant tables. */
export const Scope = createParamDecorator((_data: unknown, ctx: ExecutionContext): AccountScope => authenticated(ctx).scope);
