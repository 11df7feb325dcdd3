// OIDC sign-in against a real OpenID Provider (oidc-provider on 127.0.0.1), on both databases: the
// whole authorization code flow driven with fetch through the provider's login and consent
// interactions; refusals for a wrong state, a lost flow cookie (no PKCE verifier), a code redeemed
// without its verifier, an unverified email, an unknown or disabled user. And /api/auth_providers.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createActor } from "../accounts/accounts.service.js";
import { ActorEntity, ChangeLogEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { flowSecrets, issuerProblem } from "./oidc.js";

const CLIENT_ID = "wardline-portal";
const CLIENT_SECRET = "a client secret that is long enough for HS256 signing";

/** The people the provider knows: which one signs in is `login` in the flow driver. */
const PEOPLE: Record<string, { email: string; email_verified: boolean }> = {
  alice: { email: "Alice@Acme.test", email_verified: true },
  bob: { email: "bob@acme.test", email_verified: false },
  carol: { email: "carol@elsewhere.test", email_verified: true },
  dave: { email: "dave@acme.test", email_verified: true },
};

/** Cookies by name, as a browser keeps them for one site (paths ignored: each test site is one app). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(eq + 1));
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  has(name: string): boolean {
    return this.cookies.has(name);
  }
  delete(name: string): void {
    this.cookies.delete(name);
  }
}

interface Idp {
  issuer: string;
  login: string;
  provider: Provider;
  server: Server;
}

async function startIdp(redirectUris: () => string[]): Promise<Idp> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const idp = { issuer, login: "alice", server } as Idp;
  let provider: Provider | undefined;
  const make = (): Provider =>
    new Provider(issuer, {
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: redirectUris(), token_endpoint_auth_method: "client_secret_post" }],
      claims: { openid: ["sub"], email: ["email", "email_verified"] },
      cookies: { keys: ["test cookie key"] },
      features: { devInteractions: { enabled: false } },
      pkce: { required: () => true },
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      findAccount: (_ctx, id) => (PEOPLE[id] === undefined ? undefined : { accountId: id, claims: () => ({ sub: id, ...PEOPLE[id]! }) }),
    });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    provider ??= idp.provider = make();
    if (!req.url!.startsWith("/interaction/")) return void provider.callback()(req, res);
    // The provider's login and consent pages, answered as a person who signs in as idp.login and
    // consents to what was asked.
    void (async () => {
      const details = await provider!.interactionDetails(req, res);
      if (details.prompt.name === "login") {
        await provider!.interactionFinished(req, res, { login: { accountId: idp.login } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider!.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id as string });
      grant.addOIDCScope(details.params.scope as string);
      await provider!.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  return idp;
}

describe("issuer URLs", () => {
  it("are https, or http on loopback only, without query, fragment or credentials", () => {
    for (const ok of ["https://idp.example.com", "https://idp.example.com/tenant/x", "http://127.0.0.1:9000", "http://localhost:8080", "http://[::1]:1"]) expect(issuerProblem(ok), ok).toBeUndefined();
    for (const bad of ["http://idp.example.com", "ftp://x", "not a url", "https://idp.example.com/?a=1", "https://idp.example.com/#x", "https://u:p@idp.example.com"]) expect(issuerProblem(bad), bad).toBeDefined();
  });

  it("flow values derive from the cookie secret: distinct, and a valid PKCE verifier", () => {
    const a = flowSecrets("one");
    expect(new Set([a.state, a.nonce, a.codeVerifier]).size).toBe(3);
    expect(a.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    expect(flowSecrets("two").state).not.toBe(a.state);
  });
});

describe.each(DATABASES)("OIDC sign-in on $name", (kind) => {
  let t: TestPortal;
  let idp: Idp;
  let providerId: string;
  const run = it.skipIf(kind.missing !== undefined);
  const callbackPath = (id: string, slug = t.a.account.slug) => `/api/auth/${slug}/oidc/${id}/callback`;

  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    t = await startTestPortal(kind);
    idp = await startIdp(() => [`${t.portal.url}${callbackPath(providerId)}`]);
    const made = await t.call("POST", "/api/auth_providers", { body: { name: "Test IdP", issuer: idp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET } });
    expect(made.status).toBe(201);
    providerId = made.body.id;
    await t.a.scope.repository(ActorEntity).update(t.a.admin.id, { email: "alice@acme.test" });
    await createActor(t.a.scope, { type: "user", name: "Bob", email: "bob@acme.test" });
    const dave = await createActor(t.a.scope, { type: "user", name: "Dave", email: "dave@acme.test" });
    await t.a.scope.repository(ActorEntity).update(dave.id, { disabledAt: new Date() });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    idp?.server.closeAllConnections();
    await new Promise((done) => idp?.server.close(done));
  });

  /**
   * Starts a sign-in at the portal as `login` and follows the provider's redirects and interactions
   * until it sends the browser back: the callback URL, and the portal's cookies at that moment.
   */
  async function throughProvider(login: string): Promise<{ callback: URL; portal: CookieJar; authorize: URL }> {
    idp.login = login;
    const portal = new CookieJar();
    const provider = new CookieJar();
    const start = await fetch(`${t.portal.url}/api/auth/${t.a.account.slug}/oidc/${providerId}/start`, { redirect: "manual" });
    expect(start.status).toBe(302);
    portal.take(start);
    expect(portal.has("wardline_oidc")).toBe(true);
    const authorize = new URL(start.headers.get("location")!);
    let next = authorize;
    for (let hops = 0; next.origin === idp.issuer; hops++) {
      expect(hops).toBeLessThan(10);
      const res = await fetch(next, { redirect: "manual", headers: { cookie: provider.header() } });
      provider.take(res);
      expect([302, 303], await res.clone().text()).toContain(res.status);
      next = new URL(res.headers.get("location")!, next);
    }
    return { callback: next, portal, authorize };
  }

  const finish = async (callback: URL, portal: CookieJar) => {
    const res = await fetch(callback, { redirect: "manual", headers: { cookie: portal.header() } });
    portal.take(res);
    const text = await res.text();
    return { status: res.status, location: res.headers.get("location"), body: text.startsWith("{") ? JSON.parse(text) : text, portal };
  };

  run("a verified email of an enabled admin signs in: code flow with PKCE S256, state and nonce", async () => {
    const { callback, portal, authorize } = await throughProvider("alice");
    expect(authorize.pathname).toBe("/auth");
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get("state")).toBeTruthy();
    expect(authorize.searchParams.get("nonce")).toBeTruthy();
    expect(authorize.searchParams.get("redirect_uri")).toBe(`${t.portal.url}${callbackPath(providerId)}`);
    expect(authorize.searchParams.get("scope")).toBe("openid email profile");
    expect(callback.searchParams.get("code")).toBeTruthy();
    const flowCookie = portal.header();
    const done = await finish(callback, portal);
    expect(done.status, JSON.stringify(done.body)).toBe(302);
    expect(done.location).toBe(`${t.portal.url}/`);
    expect(portal.has("wardline_session")).toBe(true);
    expect(portal.has("wardline_oidc")).toBe(false);
    const me = await t.call("GET", "/api/auth_providers", { token: undefined, headers: { cookie: portal.header() } });
    expect(me.status).toBe(200);
    // A client token the session makes carries the provider, for policies' auth-provider conditions.
    const csrf = /(?:^|; )wardline_csrf=([^;]+)/.exec(portal.header())?.[1];
    const made = await t.call("POST", "/api/me/client_tokens", { token: undefined, headers: { cookie: portal.header(), "x-csrf-token": decodeURIComponent(csrf ?? "") }, body: { name: "laptop" } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const rows = (await t.portal.database.query(`SELECT provider_id FROM tokens WHERE id = $1`, [made.body.id])) as { provider_id: string | null }[];
    expect(rows[0]?.provider_id).toBe(providerId);
    // The flow is single use: the same answer again is refused.
    const again = await fetch(callback, { redirect: "manual", headers: { cookie: flowCookie } });
    expect(again.status).toBe(401);
  });

  run("a wrong state is refused, and uses up the flow", async () => {
    const { callback, portal } = await throughProvider("alice");
    const forged = new URL(callback);
    forged.searchParams.set("state", "forged-state");
    const refused = await finish(forged, portal);
    expect(refused.status).toBe(401);
    expect(refused.portal.has("wardline_session")).toBe(false);
    expect((await finish(callback, portal)).status).toBe(401);
  });

  run("without the flow cookie there is no PKCE verifier: refused; and the code alone does not redeem", async () => {
    const { callback, portal } = await throughProvider("alice");
    const flow = /wardline_oidc=([^;]+)/.exec(portal.header())![1]!;
    portal.delete("wardline_oidc");
    const refused = await finish(callback, portal);
    expect(refused.status).toBe(401);
    expect(refused.portal.has("wardline_session")).toBe(false);
    const redeem = (verifier?: string) =>
      fetch(`${idp.issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: callback.searchParams.get("code")!,
          redirect_uri: `${t.portal.url}${callbackPath(providerId)}`,
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          ...(verifier !== undefined ? { code_verifier: verifier } : {}),
        }),
      });
    // The code is bound to the flow's PKCE challenge: without the verifier (or with another) it is
    // refused; with the one only the flow cookie's secret derives, it redeems.
    const withoutVerifier = await redeem();
    expect(withoutVerifier.status).toBe(400);
    expect(((await withoutVerifier.json()) as { error: string }).error).toBe("invalid_grant");
    expect((await redeem(flowSecrets("another flow").codeVerifier)).status).toBe(400);
    const secret = decodeURIComponent(flow).split(".")[1]!;
    expect((await redeem(flowSecrets(secret).codeVerifier)).status).toBe(200);
  });

  run("an unverified email, an unknown user and a disabled user are refused", async () => {
    for (const [login, code] of [
      ["bob", "email_not_verified"],
      ["carol", "no_such_user"],
      ["dave", "no_such_user"],
    ] as const) {
      const { callback, portal } = await throughProvider(login);
      const refused = await finish(callback, portal);
      expect(refused.status, login).toBe(403);
      expect(refused.body.code, login).toBe(code);
      expect(refused.portal.has("wardline_session"), login).toBe(false);
    }
  });

  run("another account's provider, or an unknown one, is not found under this account's slug", async () => {
    const other = await t.call("POST", "/api/auth_providers", { token: t.b.token, body: { name: "B IdP", issuer: idp.issuer, client_id: "b", client_secret: "b" } });
    expect(other.status).toBe(201);
    for (const path of [`/api/auth/${t.a.account.slug}/oidc/${other.body.id}/start`, `/api/auth/${t.a.account.slug}/oidc/not-a-uuid/start`, `/api/auth/nobody-here/oidc/${providerId}/start`]) {
      expect((await fetch(`${t.portal.url}${path}`, { redirect: "manual" })).status, path).toBe(404);
    }
    expect((await fetch(`${t.portal.url}/api/auth/${t.b.account.slug}/oidc/${other.body.id}/start`, { redirect: "manual" })).status).toBe(302);
  });

  run("/api/auth_providers: create, read, update, list, delete; the client secret is write-only and kept out of the change log", async () => {
    const made = await t.call("POST", "/api/auth_providers", {
      body: { kind: "oidc", name: "  Okta  ", issuer: "https://acme.okta.example", client_id: "okta-client", client_secret: "okta-secret", scopes: "openid  email groups" },
    });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ kind: "oidc", name: "Okta", issuer: "https://acme.okta.example", client_id: "okta-client", scopes: "openid email groups" });
    expect(JSON.stringify(made.body)).not.toContain("okta-secret");
    const id = made.body.id as string;
    expect((await t.call("GET", `/api/auth_providers/${id}`)).body.name).toBe("Okta");
    const patched = await t.call("PATCH", `/api/auth_providers/${id}`, { body: { client_secret: "rotated-secret", name: "Okta SSO" } });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe("Okta SSO");
    const listed = await t.call("GET", "/api/auth_providers?limit=1");
    expect(listed.body.data).toHaveLength(1);
    expect(listed.body.next_cursor).not.toBeNull();
    expect(JSON.stringify((await t.call("GET", "/api/auth_providers?limit=500")).body)).not.toMatch(/secret/i);
    const log = await t.portal.database.getRepository(ChangeLogEntity).find({ where: { objectId: id } });
    expect(log.length).toBe(2);
    expect(JSON.stringify(log)).not.toMatch(/okta-secret|rotated-secret/);
    expect((await t.call("GET", `/api/auth_providers/${id}`, { token: t.b.token })).status).toBe(404);
    expect((await t.call("DELETE", `/api/auth_providers/${id}`, { token: t.b.token })).status).toBe(404);
    expect((await t.call("DELETE", `/api/auth_providers/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/auth_providers/${id}`)).status).toBe(404);
    expect((await t.call("GET", "/api/auth_providers/not-a-uuid")).status).toBe(404);

    for (const [body, field, code] of [
      [{}, "name", "name.required"],
      [{ name: "x", client_id: "c", client_secret: "s" }, "issuer", "issuer.required"],
      [{ name: "x", issuer: "http://idp.example.com", client_id: "c", client_secret: "s" }, "issuer", "issuer.invalid"],
      [{ name: "x", issuer: "https://idp.example.com", client_secret: "s" }, "client_id", "client_id.required"],
      [{ name: "x", issuer: "https://idp.example.com", client_id: "c" }, "client_secret", "client_secret.required"],
      [{ name: "x", issuer: "https://idp.example.com", client_id: "c", client_secret: "s", scopes: "profile email" }, "scopes", "scopes.missing_openid_email"],
      [{ name: "x", issuer: "https://idp.example.com", client_id: "c", client_secret: "s", kind: "saml" }, "kind", "kind.invalid"],
      [{ name: "x", issuer: "https://idp.example.com", client_id: "c", client_secret: "s", secret: "typo" }, "secret", "field.unknown"],
    ] as const) {
      const res = await t.call("POST", "/api/auth_providers", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    expect((await t.call("PATCH", `/api/auth_providers/${providerId}`, { body: { issuer: "ftp://x" } })).status).toBe(422);
    const dup = await t.call("POST", "/api/auth_providers", { body: { name: "Test IdP", issuer: "https://x.example", client_id: "c", client_secret: "s" } });
    expect(dup.status).toBe(409);
    const apiClient = await t.actorWithToken(t.a, "user");
    expect((await t.call("GET", "/api/auth_providers", { token: apiClient.token })).status).toBe(403);
  });
});
