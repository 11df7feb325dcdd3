// Browser sessions: a successful sign-in, whichever way, ends here. The session is a `browser` token
// in an HttpOnly cookie (script cannot read it, so cross-site script cannot steal it); its CSRF token
// goes back in the body and in a readable cookie, for the page to echo in X-CSRF-Token on changes.
// Also: finding the account of a sign-in page by slug, and the actor that may sign in by email.

import { IsNull, Raw, type DataSource } from "typeorm";
import { issueToken, SLUG } from "../accounts/accounts.service.js";
import { AccountScope } from "../database/account-scope.js";
import { AccountEntity, ActorEntity, type Account, type Actor, type ActorType } from "../database/entities.js";
import { SESSION_COOKIE } from "./auth.guard.js";
import { csrfTokenFor, parseToken } from "./secrets.js";
import { secureCookies, type AuthSettings } from "./settings.js";

export const CSRF_COOKIE = "wardline_csrf";
export const SESSION_TTL_MS = 7 * 24 * 3600_000;
/** Actors that sign in as people; service accounts and API clients use API tokens only. */
export const SIGN_IN_ROLES: readonly ActorType[] = ["user", "admin"];

/** The part of an HTTP response sign-in writes to. */
export interface CookieJar {
  append(field: string, value: string): unknown;
}

export interface SessionBody {
  csrf_token: string;
  expires_at: string;
}

/** A Set-Cookie value. */
export function cookie(name: string, value: string, options: { maxAgeSeconds: number; path?: string; httpOnly: boolean; secure: boolean }): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    `Path=${options.path ?? "/"}`,
    `Max-Age=${options.maxAgeSeconds}`,
    "SameSite=Lax",
    ...(options.httpOnly ? ["HttpOnly"] : []),
    ...(options.secure ? ["Secure"] : []),
  ].join("; ");
}

/** Issues a browser session for `actor` and sets its cookies. */
/** `providerId`: the auth provider the sign-in went through (OIDC), kept on the session for policies' conditions. */
export async function startSession(db: DataSource, settings: AuthSettings, actor: Actor, method: string, res: CookieJar, providerId: string | null = null): Promise<SessionBody> {
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  const scope = new AccountScope(db, actor.accountId, actor.id);
  const issued = await issueToken(scope, { kind: "browser", actorId: actor.id, name: `signed in with ${method}`, expiresAt, providerId });
  const csrf = csrfTokenFor(parseToken(issued.token)!.secret);
  const options = { maxAgeSeconds: Math.floor(SESSION_TTL_MS / 1000), secure: secureCookies(settings) };
  res.append("Set-Cookie", cookie(SESSION_COOKIE, issued.token, { ...options, httpOnly: true }));
  res.append("Set-Cookie", cookie(CSRF_COOKIE, csrf, { ...options, httpOnly: false }));
  settings.log("info", "signed in", { account: actor.accountId, actor: actor.id, method });
  return { csrf_token: csrf, expires_at: expiresAt.toISOString() };
}

/** Expires the session cookies. */
export function clearSession(settings: AuthSettings, res: CookieJar): void {
  const options = { maxAgeSeconds: 0, secure: secureCookies(settings) };
  res.append("Set-Cookie", cookie(SESSION_COOKIE, "", { ...options, httpOnly: true }));
  res.append("Set-Cookie", cookie(CSRF_COOKIE, "", { ...options, httpOnly: false }));
}

/** The account a sign-in URL names, or null. */
export async function accountBySlug(db: DataSource, slug: string): Promise<Account | null> {
  if (!SLUG.test(slug)) return null;
  return db.getRepository(AccountEntity).findOne({ where: { slug } });
}

/** The enabled user or admin of the scope's account with this email (case-insensitive), or null. */
export async function signInActor(scope: AccountScope, email: string): Promise<Actor | null> {
  const [actor] = await scope.repository(ActorEntity).list({
    where: { email: Raw((column) => `lower(${column}) = lower(:email)`, { email }), disabledAt: IsNull() },
    take: 1,
  });
  return actor !== undefined && SIGN_IN_ROLES.includes(actor.type) ? actor : null;
}

/** Whether `text` looks like a mail address: one @, no spaces or angle brackets, at most 254 characters. */
export const isEmail = (text: string): boolean => text.length <= 254 && /^[^\s<>@"(),:;[\]\\]+@[^\s<>@"(),:;[\]\\.]+(\.[^\s<>@"(),:;[\]\\.]+)*$/.test(text);
