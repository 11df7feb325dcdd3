// /api/tokens, /api/relay_tokens and /api/me on both databases: API tokens for API clients and client
// tokens for service accounts, shown once and stored as a hash; nobody else gets one here; lists
// filter and page without secrets; a revoked token gets 401; relay tokens have no actor; every actor
// learns who it is from /api/me.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueToken } from "../accounts/accounts.service.js";
import { csrfTokenFor, hashSecret, parseToken } from "../auth/secrets.js";
import { ChangeLogEntity, TokenEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";

describe.each(DATABASES)("tokens API on $name", (kind) => {
  let t: TestPortal;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  const newActor = async (body: Record<string, unknown>): Promise<{ id: string }> => {
    const res = await t.call("POST", "/api/actors", { body });
    expect(res.status).toBe(201);
    return res.body;
  };

  run("issues an API token to an API client once, stores only its hash, and the token works", async () => {
    const bot = await newActor({ type: "api_client", name: "Deployer" });
    const issued = await t.call("POST", "/api/tokens", { body: { actor_id: bot.id, name: "ci", expires_at: "2999-01-01T00:00:00Z" } });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ kind: "api", actor_id: bot.id, site_id: null, name: "ci", expires_at: "2999-01-01T00:00:00.000Z" });
    const parsed = parseToken(issued.body.token);
    expect(parsed).toMatchObject({ kind: "api", id: issued.body.id });
    const row = await t.portal.database.getRepository(TokenEntity).findOneByOrFail({ id: issued.body.id });
    expect(row.secretHash).toBe(hashSecret(parsed!.secret));
    expect(JSON.stringify(row)).not.toContain(parsed!.secret);
    const log = await t.portal.database.getRepository(ChangeLogEntity).findOneByOrFail({ objectId: issued.body.id });
    expect(JSON.stringify(log.after)).not.toContain(row.secretHash);
    expect((await t.call("GET", "/api/sites", { token: issued.body.token })).status).toBe(200);
    const shown = await t.call("GET", `/api/tokens?actor_id=${bot.id}`);
    expect(shown.body.data.map((x: { id: string }) => x.id)).toEqual([issued.body.id]);
    expect(JSON.stringify(shown.body)).not.toContain(parsed!.secret);
    expect(shown.body.data[0]).not.toHaveProperty("token");
  });

  run("issues a client token to a service account: a client, not an API caller", async () => {
    const svc = await newActor({ type: "service_account", name: "Headless" });
    const issued = await t.call("POST", "/api/tokens", { body: { actor_id: svc.id } });
    expect(issued.status).toBe(201);
    expect(issued.body.kind).toBe("client");
    expect(parseToken(issued.body.token)?.kind).toBe("client");
    expect((await t.call("GET", "/api/sites", { token: issued.body.token })).status).toBe(403);
    const me = await t.call("GET", "/api/me", { token: issued.body.token });
    expect(me.status).toBe(200);
    expect(me.body.actor).toMatchObject({ id: svc.id, type: "service_account", name: "Headless" });
  });

  run("refuses tokens for people, disabled actors, other accounts' actors and bad input, naming the field", async () => {
    const user = await newActor({ type: "user", name: "Person", email: "person@acme.test" });
    const disabled = await newActor({ type: "api_client", name: "Off" });
    expect((await t.call("POST", `/api/actors/${disabled.id}/disable`)).status).toBe(200);
    const before = await t.a.scope.repository(TokenEntity).count();
    for (const [body, field, code] of [
      [{}, "actor_id", "actor_id.required"],
      [{ actor_id: "nope" }, "actor_id", "actor_id.invalid"],
      [{ actor_id: user.id }, "actor_id", "actor_id.wrong_type"],
      [{ actor_id: t.a.admin.id }, "actor_id", "actor_id.wrong_type"],
      [{ actor_id: disabled.id }, "actor_id", "actor_id.disabled"],
      [{ actor_id: t.b.admin.id }, "actor_id", "actor_id.not_found"],
      [{ actor_id: disabled.id, expires_at: "2001-01-01T00:00:00Z" }, "expires_at", "expires_at.in_past"],
      [{ actor_id: disabled.id, expires_at: "tomorrow" }, "expires_at", "expires_at.invalid"],
      [{ actor_id: disabled.id, kind: "api" }, "kind", "field.unknown"],
    ] as const) {
      const res = await t.call("POST", "/api/tokens", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    expect(await t.a.scope.repository(TokenEntity).count()).toBe(before);
    const otherBot = (await t.call("POST", "/api/actors", { token: t.b.token, body: { type: "api_client", name: "B bot" } })).body;
    const res = await t.call("POST", "/api/tokens", { body: { actor_id: otherBot.id } });
    expect(res.body.errors).toContainEqual(expect.objectContaining({ field: "actor_id", code: "actor_id.not_found" }));
  });

  run("lists tokens in pages, filtered by actor and kind, and only the account's own", async () => {
    const bot = await newActor({ type: "api_client", name: "Pager" });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.call("POST", "/api/tokens", { body: { actor_id: bot.id, name: `t${i}` } })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { data: { id: string; actor_id: string }[]; next_cursor: string | null } } = await t.call("GET", `/api/tokens?actor_id=${bot.id}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(res.body.data.every((x) => x.actor_id === bot.id)).toBe(true);
      seen.push(...res.body.data.map((x) => x.id));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual([...ids].sort());
    const apiOnly = await t.call("GET", "/api/tokens?kind=api&limit=500");
    expect(apiOnly.body.data.length).toBeGreaterThanOrEqual(6);
    expect(apiOnly.body.data.every((x: { kind: string }) => x.kind === "api")).toBe(true);
    const all = await t.call("GET", "/api/tokens?limit=500");
    const bTokens = await t.b.scope.repository(TokenEntity).list();
    expect(all.body.data.map((x: { id: string }) => x.id)).not.toContain(bTokens[0]!.id);
    for (const query of ["actor_id=nope", `actor_id=${t.b.admin.id}`, "kind=root", "limit=0"]) {
      expect((await t.call("GET", `/api/tokens?${query}`)).status, query).toBe(422);
    }
  });

  run("a revoked token gets 401 from then on; another account's token is not found", async () => {
    const bot = await newActor({ type: "api_client", name: "Revokee" });
    const issued = (await t.call("POST", "/api/tokens", { body: { actor_id: bot.id } })).body;
    expect((await t.call("GET", "/api/me", { token: issued.token })).status).toBe(200);
    expect((await t.call("DELETE", `/api/tokens/${issued.id}`)).status).toBe(204);
    const refused = await t.call("GET", "/api/me", { token: issued.token });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("unauthenticated");
    expect((await t.call("DELETE", `/api/tokens/${issued.id}`)).status).toBe(404);
    expect((await t.call("DELETE", "/api/tokens/not-a-uuid")).status).toBe(404);
    const bToken = (await t.b.scope.repository(TokenEntity).list())[0]!;
    expect((await t.call("DELETE", `/api/tokens/${bToken.id}`)).status).toBe(404);
    expect((await t.call("GET", "/api/me", { token: t.b.token })).status).toBe(200);
  });

  run("issues relay tokens with no actor, for admins only", async () => {
    const issued = await t.call("POST", "/api/relay_tokens", { body: { name: "relay-eu" } });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ kind: "relay", actor_id: null, site_id: null, name: "relay-eu" });
    expect(parseToken(issued.body.token)?.kind).toBe("relay");
    const row = await t.portal.database.getRepository(TokenEntity).findOneByOrFail({ id: issued.body.id });
    expect(row).toMatchObject({ accountId: t.a.account.id, actorId: null, secretHash: hashSecret(parseToken(issued.body.token)!.secret) });
    expect((await t.call("GET", "/api/tokens?kind=relay")).body.data.map((x: { id: string }) => x.id)).toContain(issued.body.id);
    // A relay token is for a relay, not for this API.
    expect((await t.call("GET", "/api/me", { token: issued.body.token })).status).toBe(403);
    expect((await t.call("POST", "/api/relay_tokens", { body: { nmae: "x" } })).body.errors[0].code).toBe("field.unknown");
    const user = await t.actorWithToken(t.a, "user");
    expect((await t.call("POST", "/api/relay_tokens", { token: user.token, body: {} })).status).toBe(403);
    expect((await t.call("POST", "/api/tokens", { token: user.token, body: {} })).status).toBe(403);
    expect((await t.call("GET", "/api/tokens", { token: user.token })).status).toBe(403);
  });

  run("/api/me tells every kind of actor who it is, from API, browser and client tokens", async () => {
    const me = await t.call("GET", "/api/me");
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      account: { id: t.a.account.id, slug: t.a.account.slug, name: t.a.account.name },
      actor: { id: t.a.admin.id, type: "admin", name: t.a.admin.name, email: t.a.admin.email },
      token: { id: parseToken(t.a.token)!.id, kind: "api", expires_at: null },
    });
    for (const type of ["user", "service_account", "api_client"] as const) {
      const { actor, token } = await t.actorWithToken(t.b, type);
      const res = await t.call("GET", "/api/me", { token });
      expect(res.status, type).toBe(200);
      expect(res.body.account.slug).toBe(t.b.account.slug);
      expect(res.body.actor).toMatchObject({ id: actor.id, type });
    }
    const user = await t.actorWithToken(t.a, "user");
    const client = await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id });
    expect((await t.call("GET", "/api/me", { token: client.token })).body.token).toEqual({ id: client.row.id, kind: "client", expires_at: client.row.expiresAt?.toISOString() ?? null });
    const session = await issueToken(t.a.scope, { kind: "browser", actorId: user.actor.id });
    const viaCookie = await t.call("GET", "/api/me", { token: undefined, headers: { cookie: `wardline_session=${encodeURIComponent(session.token)}` } });
    expect(viaCookie.body.actor.id).toBe(user.actor.id);
    expect(viaCookie.body.token.expires_at).toBe(session.row.expiresAt?.toISOString() ?? null);
    expect((await t.call("GET", "/api/me", { token: undefined })).status).toBe(401);
    const site = (await t.call("POST", "/api/sites", { body: { name: "me-site" } })).body;
    const gateway = (await t.call("POST", `/api/sites/${site.id}/gateway_tokens`, { body: {} })).body.token as string;
    expect((await t.call("GET", "/api/me", { token: gateway })).status).toBe(403);
  });

  run("a signed-in person mints client tokens for their own devices, and the client registers with one", async () => {
    const user = await t.actorWithToken(t.a, "user");
    const session = await issueToken(t.a.scope, { kind: "browser", actorId: user.actor.id });
    const headers = { cookie: `wardline_session=${encodeURIComponent(session.token)}`, "x-csrf-token": csrfTokenFor(parseToken(session.token)!.secret) };
    const minted = await t.call("POST", "/api/me/client_tokens", { token: undefined, headers, body: { name: "laptop" } });
    expect(minted.status).toBe(201);
    expect(parseToken(minted.body.token)?.kind).toBe("client");
    expect(minted.body.actor_id).toBe(user.actor.id);
    const days = (Date.parse(minted.body.expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    const stored = await t.portal.database.getRepository(TokenEntity).findOneByOrFail({ id: minted.body.id });
    expect(stored.secretHash).toBe(hashSecret(parseToken(minted.body.token)!.secret));

    const key = Buffer.alloc(32, 9);
    key[0] = 0x42;
    const device = await t.call("POST", "/api/devices/register", { token: minted.body.token, body: { name: "laptop", public_key: key.toString("base64") } });
    expect(device.status).toBe(201);
    expect(device.body.actor_id).toBe(user.actor.id);

    // Only from a browser session: an API token, a client token or a service account cannot mint one.
    expect((await t.call("POST", "/api/me/client_tokens", { token: user.token, body: {} })).status).toBe(403);
    expect((await t.call("POST", "/api/me/client_tokens", { token: minted.body.token, body: {} })).status).toBe(403);
    const bad = await t.call("POST", "/api/me/client_tokens", { token: undefined, headers, body: { expires_at: "yesterday", actor_id: t.a.admin.id } });
    expect(bad.status).toBe(422);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(["actor_id", "expires_at"]);
  });
});
