// GET /api/auth/:slug/providers on both databases: without a token, the account's OpenID Connect
// providers by name with a start URL that reaches the flow's start; nothing of another account's,
// no issuer or client details; an unknown or malformed slug answers like an account without providers.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import type { SignInProviderView } from "./sign-in-options.controller.js";

describe.each(DATABASES)("sign-in options on $name", (kind) => {
  let t: TestPortal;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  const providers = async (slug: string): Promise<SignInProviderView[]> => {
    const res = await t.call<{ data: SignInProviderView[] }>("GET", `/api/auth/${encodeURIComponent(slug)}/providers`, { token: undefined });
    expect(res.status, slug).toBe(200);
    return res.body.data;
  };
  const addProvider = async (token: string, name: string, issuer = "https://idp.example.com"): Promise<string> => {
    const res = await t.call("POST", "/api/auth_providers", { token, body: { name, issuer, client_id: "client-of-" + name, client_secret: "secret-of-" + name } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  run("lists an account's providers by name without a token, each with a start URL that starts its flow", async () => {
    expect(await providers(t.a.account.slug), "none configured yet").toEqual([]);
    // An issuer nothing listens on: the start route answers, and says the provider cannot be reached.
    const okta = await addProvider(t.a.token, "Okta", "http://127.0.0.1:1");
    const entra = await addProvider(t.a.token, "Entra ID");
    await addProvider(t.b.token, "Globex SSO");

    const listed = await providers(t.a.account.slug);
    expect(listed.map((p) => p.name)).toEqual(["Entra ID", "Okta"]);
    expect(listed.map((p) => p.id)).toEqual([entra, okta]);
    for (const p of listed) {
      expect(Object.keys(p).sort()).toEqual(["id", "name", "start_url"]);
      expect(p.start_url).toBe(`${t.portal.url}/api/auth/${t.a.account.slug}/oidc/${p.id}/start`);
    }
    const body = JSON.stringify(listed);
    for (const secret of ["client-of-", "secret-of-", "idp.example.com", "127.0.0.1:1/"]) expect(body).not.toContain(secret);

    const start = await fetch(listed.find((p) => p.id === okta)!.start_url, { redirect: "manual" });
    expect(start.status).toBe(502);
    expect(await start.json()).toMatchObject({ code: "provider_unavailable" });

    expect((await providers(t.b.account.slug)).map((p) => p.name)).toEqual(["Globex SSO"]);

    // A provider deleted is offered no more.
    expect((await t.call("DELETE", `/api/auth_providers/${entra}`)).status).toBe(204);
    expect((await providers(t.a.account.slug)).map((p) => p.id)).toEqual([okta]);
  });

  run("answers an unknown or malformed account with an empty list, as it answers an account without providers", async () => {
    const known = await t.call("GET", `/api/auth/${t.b.account.slug}/providers`, { token: undefined });
    const unknown = await t.call("GET", "/api/auth/no-such-account-here/providers", { token: undefined });
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual({ data: [] });
    expect(known.status).toBe(200);
    for (const slug of ["NO SUCH", "a".repeat(300), "%00", "x.y", "-"]) {
      expect(await providers(slug), slug).toEqual([]);
    }
    expect(unknown.headers.get("content-type")).toBe(known.headers.get("content-type"));
  });

  run("is in the OpenAPI document as a route that takes no token", async () => {
    const doc = (await (await fetch(`${t.portal.url}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const operation = doc.paths["/api/auth/{slug}/providers"]?.get;
    expect(operation).toBeDefined();
    expect(Object.keys(operation!.responses)).toContain("200");
    expect(Object.keys(operation!.responses)).not.toContain("401");
  });
});
