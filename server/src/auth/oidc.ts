// OpenID Connect against an account's auth providers, through openid-client (authorization code flow
// with PKCE S256, state and nonce). The browser's side of a flow is one random secret in an HttpOnly
// cookie; state, nonce and the PKCE verifier are HMACs of it, so the database (which holds only the
// secret's hash, to make the flow single use) never holds what redeems an authorization code.

import { createHmac } from "node:crypto";
import * as client from "openid-client";
import type { AuthProvider } from "./entities.js";

export const OIDC_CLIENTS = Symbol("OIDC_CLIENTS");
/** How long a provider's discovery document is reused before it is fetched again. */
const DISCOVERY_TTL_MS = 10 * 60_000;

export interface FlowSecrets {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The flow values a cookie secret stands for. */
export function flowSecrets(secret: string): FlowSecrets {
  const derive = (label: string): string => createHmac("sha256", secret).update(`wardline oidc ${label}`).digest("base64url");
  return { state: derive("state"), nonce: derive("nonce"), codeVerifier: derive("pkce") };
}

/** Whether an issuer URL is acceptable: https, or http on a loopback address (development, tests). */
export function issuerProblem(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return "issuer must be a URL";
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") return "issuer must not have a query, fragment or credentials";
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopback(url.hostname)) return undefined;
  return "issuer must be an https URL (http only on a loopback address)";
}

const isLoopback = (host: string): boolean => host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);

/** Client configurations per provider, from each issuer's discovery document. */
export class OidcClients {
  private readonly cache = new Map<string, { key: string; at: number; config: Promise<client.Configuration> }>();

  configuration(provider: AuthProvider): Promise<client.Configuration> {
    const key = JSON.stringify([provider.issuer, provider.clientId, provider.clientSecret]);
    const cached = this.cache.get(provider.id);
    if (cached !== undefined && cached.key === key && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    const issuer = new URL(provider.issuer);
    const config = client.discovery(issuer, provider.clientId, provider.clientSecret, client.ClientSecretPost(provider.clientSecret), {
      ...(issuer.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : {}),
      timeout: 10,
    });
    // A failed discovery is not cached: the next sign-in tries again.
    config.catch(() => this.cache.delete(provider.id));
    this.cache.set(provider.id, { key, at: Date.now(), config });
    return config;
  }

  /** The URL to send the browser to. */
  async authorizationUrl(provider: AuthProvider, redirectUri: string, secrets: FlowSecrets): Promise<URL> {
    const config = await this.configuration(provider);
    return client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: provider.scopes,
      response_type: "code",
      code_challenge: await client.calculatePKCECodeChallenge(secrets.codeVerifier),
      code_challenge_method: "S256",
      state: secrets.state,
      nonce: secrets.nonce,
    });
  }

  /**
   * Redeems the provider's answer at `callbackUrl` (the redirect URI with the provider's query) and
   * returns the verified identity: the ID token's claims, completed from UserInfo when the provider
   * keeps email there.
   */
  async identity(provider: AuthProvider, callbackUrl: URL, secrets: FlowSecrets): Promise<{ subject: string; email: string | undefined; emailVerified: boolean }> {
    const config = await this.configuration(provider);
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: secrets.codeVerifier,
      expectedState: secrets.state,
      expectedNonce: secrets.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims()!;
    let email = claims.email;
    let verified = claims.email_verified;
    if (typeof email !== "string") {
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      email = info.email;
      verified = info.email_verified;
    }
    return { subject: claims.sub, email: typeof email === "string" ? email : undefined, emailVerified: verified === true };
  }
}
