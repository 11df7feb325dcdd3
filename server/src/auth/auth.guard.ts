// The one gate in front of every route:
//
// 1. @Public() routes pass, within a rate limit per client address.
// 2. The credential: `Authorization: Bearer <token>`, else the `wardline_session` cookie of a browser.
// 3. The token row by its id, its secret against the stored hash, its expiry, its actor (not disabled)
//    and account. Every failure is the same 401, so a caller learns nothing about which part was wrong.
// 4. A browser session changing something (any method but GET, HEAD, OPTIONS) must send the session's
//    CSRF token in X-CSRF-Token: a cookie rides along on another site's form, the header cannot.
// 5. The route's access: token kind, then the actor's role.
// 6. The token's rate limit.
// 7. The principal and its account scope go on the request for @Caller() and @Scope().

import { Inject, type CanActivate, type ExecutionContext } from "@nestjs/common";
import { Reflector } from "@nestjs/core";
import { IsNull, type DataSource } from "typeorm";
import { AccountScope } from "../database/account-scope.js";
import { ActorEntity, TokenEntity } from "../database/entities.js";
import { Problem } from "../http/problem.js";
import { DATA_SOURCE, RATE_LIMITER } from "../tokens.js";
import { DEFAULT_ACCESS, PUBLIC_ROUTE, ROUTE_ACCESS, type AuthenticatedRequest, type RouteAccess } from "./access.js";
import type { Principal } from "./principal.js";
import type { RateLimiter } from "./rate-limit.js";
import { csrfTokenFor, parseToken, secretMatches } from "./secrets.js";

export const SESSION_COOKIE = "wardline_session";
export const CSRF_HEADER = "x-csrf-token";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** last_used_at is written at most this often per token, so reads stay reads. */
const LAST_USED_EVERY_MS = 60_000;

interface HttpRequest extends AuthenticatedRequest {
  method: string;
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The value of one cookie in a Cookie header. */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join("; ") : (header ?? "");
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export class AuthGuard implements CanActivate {
  private readonly lastUsedWritten = new Map<string, number>();

  constructor(
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(RATE_LIMITER) private readonly limiter: RateLimiter,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    const request = ctx.switchToHttp().getRequest<HttpRequest>();
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true) {
      // No token to count against: sign-in routes write rows (challenges, mail), so they are limited
      // per client address instead.
      const wait = this.limiter.take(`ip:${request.ip ?? "unknown"}`);
      if (wait > 0) throw Problem.rateLimited(wait, "this client address");
      return true;
    }
    const access = this.reflector.getAllAndOverride<RouteAccess>(ROUTE_ACCESS, targets) ?? DEFAULT_ACCESS;

    const authorization = request.headers.authorization;
    const bearer = typeof authorization === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
    const cookie = bearer === undefined ? readCookie(request.headers.cookie, SESSION_COOKIE) : undefined;
    const presented = bearer ?? cookie;
    if (presented === undefined) throw Problem.unauthenticated("this route needs a token: send Authorization: Bearer <token>, or sign in");

    const principal = await this.authenticate(presented);
    if (cookie !== undefined && principal.tokenKind !== "browser") throw Problem.unauthenticated("the session cookie holds a token that is not a browser session");
    if (cookie !== undefined && !SAFE_METHODS.has(request.method.toUpperCase())) {
      const sent = request.headers[CSRF_HEADER];
      if (typeof sent !== "string" || sent !== csrfTokenFor(parseToken(presented)!.secret)) {
        throw Problem.forbidden(`a change made with the session cookie needs the session's CSRF token in the ${CSRF_HEADER} header`, "csrf_failed");
      }
    }
    if (!access.kinds.includes(principal.tokenKind)) throw Problem.forbidden(`a ${principal.tokenKind} token cannot use this route`);
    if (principal.role !== undefined && !access.roles.includes(principal.role)) throw Problem.forbidden(`the ${principal.role.replace("_", " ")} role cannot use this route`);

    const wait = this.limiter.take(principal.tokenId);
    if (wait > 0) throw Problem.rateLimited(wait);

    request.wardline = { principal, scope: new AccountScope(this.db, principal.accountId, principal.actorId) };
    return true;
  }

  /** The principal a token stands for, or the one 401 for every way it can fail. */
  async authenticate(presented: string): Promise<Principal> {
    const refused = Problem.unauthenticated("the token is not valid: it is malformed, unknown, revoked, expired, or its actor is disabled");
    const parsed = parseToken(presented);
    if (parsed === undefined) throw refused;
    const token = await this.db.getRepository(TokenEntity).findOne({ where: { id: parsed.id } });
    if (token === null || token.kind !== parsed.kind || !secretMatches(parsed.secret, token.secretHash)) throw refused;
    if (token.expiresAt !== null && token.expiresAt.getTime() <= Date.now()) throw refused;
    let role: Principal["role"];
    if (token.actorId !== null) {
      const actor = await this.db.getRepository(ActorEntity).findOne({ where: { accountId: token.accountId, id: token.actorId, disabledAt: IsNull() } });
      if (actor === null) throw refused;
      role = actor.type;
    }
    await this.touch(token.accountId, token.id);
    return { accountId: token.accountId, actorId: token.actorId, role, tokenId: token.id, tokenKind: token.kind, siteId: token.siteId, tokenExpiresAt: token.expiresAt, providerId: token.providerId ?? null };
  }

  private async touch(accountId: string, tokenId: string): Promise<void> {
    const now = Date.now();
    if (now - (this.lastUsedWritten.get(tokenId) ?? 0) < LAST_USED_EVERY_MS) return;
    this.lastUsedWritten.set(tokenId, now);
    if (this.lastUsedWritten.size > 100_000) this.lastUsedWritten.clear();
    await this.db.getRepository(TokenEntity).update({ accountId, id: tokenId }, { lastUsedAt: new Date(now) });
  }
}
