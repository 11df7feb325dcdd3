// Sign-in through an account's OIDC provider:
//
// 1. GET .../oidc/:providerId/start: a flow secret goes into an HttpOnly cookie scoped to the callback,
//    its hash into a single-use challenge row; 302 to the provider with PKCE, state and nonce.
// 2. The person signs in at the provider, which sends the browser back to the callback.
// 3. GET .../oidc/:providerId/callback: the cookie's challenge is used up, the code redeemed with the
//    verifier, the ID token checked (issuer, audience, nonce, signature) by openid-client.
// 4. The verified email (email_verified true) must be an enabled user or admin of the account: no one
//    is created here. Then a session, and 302 to the portal.

import { Controller, Get, Inject, Param, Redirect, Req, Res } from "@nestjs/common";
import { ApiFoundResponse, ApiTags } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { AccountScope } from "../database/account-scope.js";
import { idParam } from "../http/input.js";
import { Problem } from "../http/problem.js";
import { DATA_SOURCE } from "../tokens.js";
import { Public } from "./access.js";
import { readCookie } from "./auth.guard.js";
import { challengeToken, createChallenge, OIDC_FLOW_TTL_MS, redeemChallenge } from "./challenges.js";
import { AuthProviderEntity, type AuthProvider } from "./entities.js";
import { flowSecrets, OIDC_CLIENTS, type OidcClients } from "./oidc.js";
import { accountBySlug, cookie, signInActor, startSession, type CookieJar } from "./sessions.js";
import { AUTH_SETTINGS, secureCookies, type AuthSettings } from "./settings.js";

export const OIDC_FLOW_COOKIE = "wardline_oidc";

interface CallbackRequest {
  originalUrl: string;
  headers: Record<string, string | string[] | undefined>;
}

@ApiTags("sign-in")
@Controller("api/auth/:slug/oidc/:providerId")
export class OidcSignInController {
  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(AUTH_SETTINGS) private readonly settings: AuthSettings,
    @Inject(OIDC_CLIENTS) private readonly clients: OidcClients,
  ) {}

  @Public()
  @Get("start")
  @Redirect()
  @ApiFoundResponse({ description: "On to the provider's authorization endpoint." })
  async start(@Param("slug") slug: string, @Param("providerId") providerId: string, @Res({ passthrough: true }) res: CookieJar): Promise<{ url: string; statusCode: number }> {
    const { scope, provider } = await this.provider(slug, providerId);
    const { row, secret } = await createChallenge(scope, { kind: "oidc", providerId: provider.id, ttlMs: OIDC_FLOW_TTL_MS });
    let target: URL;
    try {
      target = await this.clients.authorizationUrl(provider, this.callbackUrl(slug, provider.id), flowSecrets(secret));
    } catch (error) {
      this.settings.log("warn", "an OIDC provider cannot be reached or is misconfigured", { account: scope.accountId, provider: provider.id, error: String(error) });
      throw new Problem(502, "provider_unavailable", "Bad gateway", `the sign-in provider ${provider.name} cannot be used right now`);
    }
    res.append(
      "Set-Cookie",
      cookie(OIDC_FLOW_COOKIE, challengeToken(row, secret), {
        path: new URL(this.callbackUrl(slug, provider.id)).pathname,
        maxAgeSeconds: OIDC_FLOW_TTL_MS / 1000,
        httpOnly: true,
        secure: secureCookies(this.settings),
      }),
    );
    return { url: target.href, statusCode: 302 };
  }

  @Public()
  @Get("callback")
  @Redirect()
  @ApiFoundResponse({ description: "Signed in; on to the portal." })
  async callback(
    @Param("slug") slug: string,
    @Param("providerId") providerId: string,
    @Req() req: CallbackRequest,
    @Res({ passthrough: true }) res: CookieJar,
  ): Promise<{ url: string; statusCode: number }> {
    const { scope, provider } = await this.provider(slug, providerId);
    const callbackUrl = this.callbackUrl(slug, provider.id);
    res.append("Set-Cookie", cookie(OIDC_FLOW_COOKIE, "", { path: new URL(callbackUrl).pathname, maxAgeSeconds: 0, httpOnly: true, secure: secureCookies(this.settings) }));
    const flow = readCookie(req.headers.cookie, OIDC_FLOW_COOKIE);
    const used = flow === undefined ? null : await redeemChallenge(scope, "oidc", flow, (row) => row.providerId === provider.id);
    if (used === null) throw Problem.unauthenticated("this sign-in has no flow in progress (it expired, was used, or started in another browser): start again");
    const secret = flow!.slice(flow!.indexOf(".") + 1);
    const query = req.originalUrl.includes("?") ? req.originalUrl.slice(req.originalUrl.indexOf("?")) : "";
    let identity;
    try {
      identity = await this.clients.identity(provider, new URL(callbackUrl + query), flowSecrets(secret));
    } catch (error) {
      this.settings.log("info", "an OIDC sign-in did not verify", { account: scope.accountId, provider: provider.id, error: String(error) });
      throw Problem.unauthenticated("the provider's answer did not verify (state, code, PKCE verifier or ID token): start again");
    }
    if (identity.email === undefined || !identity.emailVerified) {
      throw Problem.forbidden(`${provider.name} did not vouch for an email address (email_verified): ask its administrator to verify it`, "email_not_verified");
    }
    const actor = await signInActor(scope, identity.email);
    if (actor === null) throw Problem.forbidden(`no enabled user of this account has the email ${provider.name} gave`, "no_such_user");
    await startSession(this.db, this.settings, actor, `oidc:${provider.id}`, res, provider.id);
    return { url: `${this.settings.publicUrl}/`, statusCode: 302 };
  }

  private callbackUrl(slug: string, providerId: string): string {
    return `${this.settings.publicUrl}/api/auth/${encodeURIComponent(slug)}/oidc/${providerId}/callback`;
  }

  private async provider(slug: string, providerId: string): Promise<{ scope: AccountScope; provider: AuthProvider }> {
    const account = await accountBySlug(this.db, slug);
    if (account === null) throw new Problem(404, "not_found", "Not found", "no account signs in at this address");
    const scope = new AccountScope(this.db, account.id, null);
    const provider = await scope.repository(AuthProviderEntity).get(idParam(providerId, "the auth provider"));
    if (provider === null) throw Problem.notFound("the auth provider");
    return { scope, provider };
  }
}
