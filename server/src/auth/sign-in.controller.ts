// Sign-in without a third party, per account slug (the account's sign-in page):
//
// 1. POST /api/auth/:slug/password: email and password against the actor's argon2id hash.
// 2. POST /api/auth/:slug/email: mails a one-time code if the email is a user's; always 202.
// 3. POST /api/auth/:slug/email/verify: the code, for a session.
// 4. GET /api/auth/:slug/magic?token=: a one-time link (wardline portal --init-admin prints one).
// 5. POST /api/auth/sign_out, PUT /api/me/password: for a signed-in person.
//
// A refusal never says which part was wrong (no such account, no such email, a disabled actor, a
// service account, a wrong password): one 401 for all, after the same argon2id work, so neither the
// answer nor its timing tells an attacker which emails have accounts. Failures count per
// (account, email); past the limit the email gets 429 until the window passes.

import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Query, Redirect, Res } from "@nestjs/common";
import { ApiAcceptedResponse, ApiBody, ApiCookieAuth, ApiFoundResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { AccountScope } from "../database/account-scope.js";
import { ActorEntity, TokenEntity, type Account, type Actor } from "../database/entities.js";
import { BodyReader } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem } from "../http/problem.js";
import { DATA_SOURCE } from "../tokens.js";
import { Access, Caller, Public, Scope } from "./access.js";
import { burnChallenges, createChallenge, EMAIL_CODE_DIGITS, EMAIL_CODE_TTL_MS, randomCode, redeemChallenge, redeemCode } from "./challenges.js";
import { MAILER, type Mailer } from "./mail.js";
import { hashPassword, PASSWORD_MAX_BYTES, verifyNothing, verifyPassword } from "./password-hash.js";
import type { Principal } from "./principal.js";
import { accountBySlug, clearSession, isEmail, signInActor, SIGN_IN_ROLES, startSession, type CookieJar, type SessionBody } from "./sessions.js";
import { AUTH_SETTINGS, type AuthSettings } from "./settings.js";
import { SIGN_IN_THROTTLES, type SignInThrottles } from "./sign-in-throttle.js";

export const PASSWORD_MIN_LENGTH = 12;

const CREDENTIALS: Schema = {
  type: "object",
  required: ["email", "password"],
  properties: { email: { type: "string", format: "email" }, password: { type: "string" } },
  additionalProperties: false,
};
const EMAIL_ONLY: Schema = { type: "object", required: ["email"], properties: { email: { type: "string", format: "email" } }, additionalProperties: false };
const EMAIL_CODE: Schema = {
  type: "object",
  required: ["email", "code"],
  properties: { email: { type: "string", format: "email" }, code: { type: "string", pattern: `^\\d{${EMAIL_CODE_DIGITS}}$` } },
  additionalProperties: false,
};
const PASSWORD_CHANGE: Schema = {
  type: "object",
  required: ["current_password", "new_password"],
  properties: { current_password: { type: "string" }, new_password: { type: "string", minLength: PASSWORD_MIN_LENGTH } },
  additionalProperties: false,
};
const SESSION_DOCS = { description: "Signed in: the session is in the HttpOnly wardline_session cookie; send csrf_token as X-CSRF-Token on changes." };

/** A string field taken as is (passwords are not trimmed), present and at most PASSWORD_MAX_BYTES. */
function secretField(input: BodyReader, field: string): string | undefined {
  const value = input.raw(field);
  if (value === undefined || value === null || value === "") return input.fail(field, `${field}.required`, `${field} is required`);
  if (typeof value !== "string") return input.fail(field, `${field}.not_string`, `${field} must be a string`);
  if (Buffer.byteLength(value) > PASSWORD_MAX_BYTES) return input.fail(field, `${field}.too_long`, `${field} is longer than ${PASSWORD_MAX_BYTES} bytes`);
  return value;
}

function emailField(input: BodyReader): string | undefined {
  const email = input.text("email", { required: true, max: 254 });
  if (email !== undefined && !isEmail(email)) return input.fail("email", "email.invalid", "email must be a mail address");
  return email;
}

const refused = (): Problem => Problem.unauthenticated("sign-in refused: the email, password or code is wrong, or this person cannot sign in here");

function tooManyAttempts(seconds: number): Problem {
  return new Problem(429, "too_many_attempts", "Too many requests", `too many failed sign-ins for this email; retry in ${seconds} s`, undefined, { "Retry-After": String(seconds) });
}

@ApiTags("sign-in")
@Controller("api")
export class SignInController {
  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(AUTH_SETTINGS) private readonly settings: AuthSettings,
    @Inject(SIGN_IN_THROTTLES) private readonly throttles: SignInThrottles,
    @Inject(MAILER) private readonly mailer: Mailer,
  ) {}

  @Public()
  @Post("auth/:slug/password")
  @HttpCode(200)
  @ApiBody({ schema: CREDENTIALS })
  @ApiOkResponse(SESSION_DOCS)
  async password(@Param("slug") slug: string, @Body() body: unknown, @Res({ passthrough: true }) res: CookieJar): Promise<SessionBody> {
    const input = new BodyReader(body, ["email", "password"], "a password sign-in");
    const email = emailField(input);
    const password = secretField(input, "password");
    input.done();
    const { account, actor, key } = await this.target(slug, email!);
    const ok = actor?.passwordHash ? await verifyPassword(password!, actor.passwordHash) : await verifyNothing(password!);
    if (!ok || account === null || actor === null) {
      this.throttles.failures.record(key);
      throw refused();
    }
    this.throttles.failures.clear(key);
    return startSession(this.db, this.settings, actor, "password", res);
  }

  @Public()
  @Post("auth/:slug/email")
  @HttpCode(202)
  @ApiBody({ schema: EMAIL_ONLY })
  @ApiAcceptedResponse({ description: "If the email is a user's of this account, a sign-in code is on its way; the answer is the same either way." })
  async emailCode(@Param("slug") slug: string, @Body() body: unknown): Promise<void> {
    const input = new BodyReader(body, ["email"], "an email sign-in");
    const email = emailField(input);
    input.done();
    // Done after answering: neither the answer nor its timing (a lookup, a write, a mail relay) may
    // tell whether the email was known.
    void this.mailCode(slug, email!).catch((error: unknown) => this.settings.log("error", "cannot send a sign-in code", { slug, error: String(error) }));
  }

  private async mailCode(slug: string, email: string): Promise<void> {
    const account = await accountBySlug(this.db, slug);
    if (account === null) return;
    const key = `${account.id}:${email.toLowerCase()}`;
    const actor = await signInActor(new AccountScope(this.db, account.id, null), email);
    if (actor === null || actor.email === null || this.throttles.mails.blockedFor(key) > 0) return;
    this.throttles.mails.record(key);
    const scope = new AccountScope(this.db, account.id, actor.id);
    await burnChallenges(scope, "email_code", actor.id);
    const code = randomCode();
    await createChallenge(scope, { kind: "email_code", actorId: actor.id, ttlMs: EMAIL_CODE_TTL_MS, secret: code });
    await this.mailer.send({
      to: actor.email,
      subject: `Your Wardline sign-in code for ${account.slug}`,
      text: `Your sign-in code for ${account.name} (${account.slug}) is:\n\n    ${code}\n\nIt works once, within ${EMAIL_CODE_TTL_MS / 60_000} minutes.\nIf you did not ask to sign in, ignore this mail.\n`,
    });
  }

  @Public()
  @Post("auth/:slug/email/verify")
  @HttpCode(200)
  @ApiBody({ schema: EMAIL_CODE })
  @ApiOkResponse(SESSION_DOCS)
  async verifyEmailCode(@Param("slug") slug: string, @Body() body: unknown, @Res({ passthrough: true }) res: CookieJar): Promise<SessionBody> {
    const input = new BodyReader(body, ["email", "code"], "an email code");
    const email = emailField(input);
    const code = input.text("code", { required: true, max: 32 });
    if (code !== undefined && !/^\d+$/.test(code)) input.fail("code", "code.invalid", "code is the digits from the mail");
    input.done();
    const { account, actor, key } = await this.target(slug, email!);
    const ok = account !== null && actor !== null && (await redeemCode(new AccountScope(this.db, account.id, actor.id), actor.id, code!));
    if (!ok) {
      this.throttles.failures.record(key);
      throw refused();
    }
    this.throttles.failures.clear(key);
    return startSession(this.db, this.settings, actor!, "email", res);
  }

  @Public()
  @Get("auth/:slug/magic")
  @Redirect()
  @ApiQuery({ name: "token", required: true, description: "the one-time token of the link" })
  @ApiFoundResponse({ description: "Signed in; on to the portal." })
  async magicLink(@Param("slug") slug: string, @Query("token") token: unknown, @Res({ passthrough: true }) res: CookieJar): Promise<{ url: string; statusCode: number }> {
    const account = await accountBySlug(this.db, slug);
    if (account === null || typeof token !== "string") throw refused();
    const used = await redeemChallenge(new AccountScope(this.db, account.id, null), "magic_link", token);
    const actor = used?.actorId ? await this.enabledActor(account, used.actorId) : null;
    if (actor === null) throw Problem.unauthenticated("this sign-in link is not valid: it is malformed, used, or expired");
    await startSession(this.db, this.settings, actor, "link", res);
    return { url: `${this.settings.publicUrl}/`, statusCode: 302 };
  }

  @Access({ kinds: ["browser"], roles: SIGN_IN_ROLES })
  @Post("auth/sign_out")
  @HttpCode(204)
  @ApiCookieAuth()
  @ApiNoContentResponse({ description: "The session is revoked and its cookies cleared." })
  async signOut(@Scope() scope: AccountScope, @Caller() caller: Principal, @Res({ passthrough: true }) res: CookieJar): Promise<void> {
    await scope.repository(TokenEntity).delete(caller.tokenId);
    clearSession(this.settings, res);
  }

  @Access({ kinds: ["browser", "api"], roles: SIGN_IN_ROLES })
  @Put("me/password")
  @HttpCode(204)
  @ApiCookieAuth()
  @ApiBody({ schema: PASSWORD_CHANGE })
  @ApiNoContentResponse({ description: "Changed; the actor's other browser sessions are signed out." })
  async changePassword(@Scope() scope: AccountScope, @Caller() caller: Principal, @Body() body: unknown): Promise<void> {
    const input = new BodyReader(body, ["current_password", "new_password"], "a password change");
    const current = secretField(input, "current_password");
    const next = secretField(input, "new_password");
    if (next !== undefined && [...next].length < PASSWORD_MIN_LENGTH) input.fail("new_password", "new_password.too_short", `new_password needs at least ${PASSWORD_MIN_LENGTH} characters`);
    input.done();
    const actors = scope.repository(ActorEntity);
    const actor = (await actors.get(caller.actorId!))!;
    const key = `${scope.accountId}:${(actor.email ?? actor.id).toLowerCase()}`;
    const wait = this.throttles.failures.blockedFor(key);
    if (wait > 0) throw tooManyAttempts(wait);
    const ok = actor.passwordHash ? await verifyPassword(current!, actor.passwordHash) : await verifyNothing(current!);
    if (!ok) {
      this.throttles.failures.record(key);
      throw Problem.invalid([{ field: "current_password", code: "current_password.incorrect", message: "current_password is not this actor's password" }]);
    }
    this.throttles.failures.clear(key);
    await actors.update(actor.id, { passwordHash: await hashPassword(next!) });
    const tokens = scope.repository(TokenEntity);
    for (const token of await tokens.list({ where: { actorId: actor.id, kind: "browser" } })) {
      if (token.id !== caller.tokenId) await tokens.delete(token.id);
    }
  }

  /** The account and actor a sign-in names, after the throttle; both null when either is unknown. */
  private async target(slug: string, email: string): Promise<{ account: Account | null; actor: Actor | null; key: string }> {
    const account = await accountBySlug(this.db, slug);
    const key = `${account?.id ?? `slug:${slug}`}:${email.toLowerCase()}`;
    const wait = this.throttles.failures.blockedFor(key);
    if (wait > 0) throw tooManyAttempts(wait);
    const actor = account === null ? null : await signInActor(new AccountScope(this.db, account.id, null), email);
    return { account, actor, key };
  }

  private async enabledActor(account: Account, actorId: string): Promise<Actor | null> {
    const actor = await new AccountScope(this.db, account.id, null).repository(ActorEntity).get(actorId);
    return actor !== null && actor.disabledAt === null && SIGN_IN_ROLES.includes(actor.type) ? actor : null;
  }
}
