// /api/actors on both databases: create, read, change, list, delete; email required for people and
// refused for machines, unique per account in any case; no password hash in any reply; disabling
// stops the actor's tokens; nobody disables or deletes themselves, and the last enabled admin stays,
// even against concurrent requests.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccount, createActor, issueToken } from "../accounts/accounts.service.js";
import { AccountScope } from "../database/account-scope.js";
import { ActorEntity, ChangeLogEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";

describe.each(DATABASES)("actors API on $name", (kind) => {
  let t: TestPortal;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  run("creates, reads, changes, lists and deletes actors, and logs each change", async () => {
    const created = await t.call("POST", "/api/actors", { body: { type: "user", name: "  Ada  ", email: "Ada@Example.com" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ type: "user", name: "Ada", email: "Ada@Example.com", disabled_at: null });
    const id = created.body.id as string;
    expect((await t.call("GET", `/api/actors/${id}`)).body.name).toBe("Ada");
    const changed = await t.call("PATCH", `/api/actors/${id}`, { body: { name: "Ada L.", email: "ada@example.org" } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: "Ada L.", email: "ada@example.org", type: "user" });
    const promoted = await t.call("PATCH", `/api/actors/${id}`, { body: { type: "admin" } });
    expect(promoted.body.type).toBe("admin");

    const bot = await t.call("POST", "/api/actors", { body: { type: "api_client", name: "CI" } });
    expect(bot.status).toBe(201);
    expect(bot.body.email).toBeNull();
    const listed = await t.call("GET", "/api/actors?type=api_client");
    expect(listed.body.data.map((a: { id: string }) => a.id)).toContain(bot.body.id);
    expect(listed.body.data.every((a: { type: string }) => a.type === "api_client")).toBe(true);
    expect((await t.call("GET", "/api/actors?type=robot")).status).toBe(422);

    expect((await t.call("DELETE", `/api/actors/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/actors/${id}`)).status).toBe(404);
    const log = await t.portal.database.getRepository(ChangeLogEntity).find({ where: { objectId: id } });
    expect(log.map((e) => e.action).sort()).toEqual(["delete", "insert", "update", "update"]);
  });

  run("never shows a password hash, in one actor or in a list", async () => {
    const hashed = await createActor(t.a.scope, { type: "user", name: "Hashed", email: "hashed@acme.test", passwordHash: "$scrypt$secret-hash-value" });
    for (const res of [await t.call("GET", `/api/actors/${hashed.id}`), await t.call("GET", "/api/actors?limit=500"), await t.call("PATCH", `/api/actors/${hashed.id}`, { body: { name: "H" } })]) {
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain("secret-hash-value");
      expect(JSON.stringify(res.body)).not.toMatch(/password/i);
    }
  });

  run("refuses bad input naming the field, and writes nothing", async () => {
    const before = await t.a.scope.repository(ActorEntity).count();
    for (const [body, field, code] of [
      [{ name: "x", email: "x@y.test" }, "type", "type.required"],
      [{ type: "root", name: "x" }, "type", "type.invalid"],
      [{ type: "user", email: "x@y.test" }, "name", "name.required"],
      [{ type: "user", name: "No Email" }, "email", "email.required"],
      [{ type: "admin", name: "Null Email", email: null }, "email", "email.required"],
      [{ type: "user", name: "Bad", email: "not-an-email" }, "email", "email.invalid"],
      [{ type: "user", name: "Long", email: `${"a".repeat(250)}@x.test` }, "email", "email.too_long"],
      [{ type: "api_client", name: "Bot", email: "bot@acme.test" }, "email", "email.not_allowed"],
      [{ type: "service_account", name: "Svc", email: "svc@acme.test" }, "email", "email.not_allowed"],
      [{ type: "user", name: "x", email: "x@y.test", disabled_at: null }, "disabled_at", "field.unknown"],
      [{ type: "user", name: "x", email: "x@y.test", password_hash: "h" }, "password_hash", "field.unknown"],
    ] as const) {
      const res = await t.call("POST", "/api/actors", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    expect(await t.a.scope.repository(ActorEntity).count()).toBe(before);

    const svc = (await t.call("POST", "/api/actors", { body: { type: "service_account", name: "Svc" } })).body;
    const user = (await t.call("POST", "/api/actors", { body: { type: "user", name: "Bo", email: "bo@acme.test" } })).body;
    for (const [id, body, field, code] of [
      [svc.id, { email: "svc@acme.test" }, "email", "email.not_allowed"],
      [svc.id, { type: "admin" }, "type", "type.not_changeable"],
      [user.id, { type: "api_client" }, "type", "type.not_changeable"],
      [user.id, { email: null }, "email", "email.required"],
      [user.id, { name: "" }, "name", "name.required"],
    ] as const) {
      const res = await t.call("PATCH", `/api/actors/${id}`, { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    expect((await t.call("GET", `/api/actors/${user.id}`)).body).toMatchObject({ type: "user", email: "bo@acme.test", name: "Bo" });
    expect((await t.call("GET", "/api/actors/not-a-uuid")).status).toBe(404);
  });

  run("an email is unique per account in any case, and free in another account", async () => {
    expect((await t.call("POST", "/api/actors", { body: { type: "user", name: "Cy", email: "cy@acme.test" } })).status).toBe(201);
    const dup = await t.call("POST", "/api/actors", { body: { type: "admin", name: "Cy 2", email: "CY@ACME.test" } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe("email_taken");
    expect(dup.body.errors).toContainEqual(expect.objectContaining({ field: "email", code: "email.taken" }));
    const other = (await t.call("POST", "/api/actors", { body: { type: "user", name: "Dee", email: "dee@acme.test" } })).body;
    const taken = await t.call("PATCH", `/api/actors/${other.id}`, { body: { email: "Cy@Acme.Test" } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("email_taken");
    // Changing one's own email's case is not a clash with oneself.
    expect((await t.call("PATCH", `/api/actors/${other.id}`, { body: { email: "DEE@acme.test" } })).status).toBe(200);
    expect((await t.call("POST", "/api/actors", { token: t.b.token, body: { type: "user", name: "Cy", email: "cy@acme.test" } })).status).toBe(201);
  });

  run("disabling an actor stops its tokens at once; enabling lets them work again", async () => {
    const bot = await t.actorWithToken(t.a, "api_client");
    expect((await t.call("GET", "/api/sites", { token: bot.token })).status).toBe(200);
    const disabled = await t.call("POST", `/api/actors/${bot.actor.id}/disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled_at).toEqual(expect.any(String));
    expect((await t.call("GET", "/api/sites", { token: bot.token })).status).toBe(401);
    const again = await t.call("POST", `/api/actors/${bot.actor.id}/disable`);
    expect(again.body.disabled_at, "disabling twice keeps the first time").toBe(disabled.body.disabled_at);
    const enabled = await t.call("POST", `/api/actors/${bot.actor.id}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.body.disabled_at).toBeNull();
    expect((await t.call("GET", "/api/sites", { token: bot.token })).status).toBe(200);
  });

  run("nobody disables or deletes themselves, and the last enabled admin stays", async () => {
    // A fresh account, so the admin count is known.
    const account = await createAccount(t.portal.database, { slug: `solo-${kind.name.toLowerCase()}-${Date.now()}`, name: "Solo" });
    const scope = new AccountScope(t.portal.database, account.id);
    const admin = await createActor(scope, { type: "admin", name: "Only", email: "only@solo.test" });
    const adminToken = (await issueToken(scope, { kind: "api", actorId: admin.id })).token;
    const bot = await createActor(scope, { type: "api_client", name: "Bot" });
    const botToken = (await issueToken(scope, { kind: "api", actorId: bot.id })).token;

    const self = await t.call("POST", `/api/actors/${admin.id}/disable`, { token: adminToken });
    expect(self.status).toBe(409);
    expect(self.body.code).toBe("cannot_disable_self");
    const selfDelete = await t.call("DELETE", `/api/actors/${admin.id}`, { token: adminToken });
    expect(selfDelete.body.code).toBe("cannot_delete_self");
    for (const [method, path, body] of [
      ["POST", `/api/actors/${admin.id}/disable`, undefined],
      ["DELETE", `/api/actors/${admin.id}`, undefined],
      ["PATCH", `/api/actors/${admin.id}`, { type: "user" }],
    ] as const) {
      const res = await t.call(method, path, { token: botToken, body });
      expect(res.status, `${method} ${path}`).toBe(409);
      expect(res.body.code).toBe("last_admin");
    }
    expect((await scope.repository(ActorEntity).get(admin.id))).toMatchObject({ type: "admin", disabledAt: null });

    // A second admin: now either may go, but a disabled admin does not count as one.
    const second = (await t.call("POST", "/api/actors", { token: adminToken, body: { type: "admin", name: "Second", email: "second@solo.test" } })).body;
    expect((await t.call("POST", `/api/actors/${second.id}/disable`, { token: adminToken })).status).toBe(200);
    expect((await t.call("PATCH", `/api/actors/${admin.id}`, { token: botToken, body: { type: "user" } })).body.code).toBe("last_admin");
    // Demoting or deleting the disabled admin takes no enabled admin away.
    expect((await t.call("PATCH", `/api/actors/${second.id}`, { token: adminToken, body: { type: "user" } })).status).toBe(200);
    expect((await t.call("PATCH", `/api/actors/${second.id}`, { token: adminToken, body: { type: "admin" } })).status).toBe(200);
    expect((await t.call("POST", `/api/actors/${second.id}/enable`, { token: adminToken })).status).toBe(200);
    expect((await t.call("PATCH", `/api/actors/${admin.id}`, { token: botToken, body: { type: "user" } })).status).toBe(200);
  });

  run("two admins disabled at once: one request wins, one admin stays enabled", async () => {
    for (let round = 0; round < 3; round++) {
      const account = await createAccount(t.portal.database, { slug: `race-${kind.name.toLowerCase()}-${round}-${Date.now()}`, name: "Race" });
      const scope = new AccountScope(t.portal.database, account.id);
      const admins = await Promise.all([1, 2].map((i) => createActor(scope, { type: "admin", name: `Admin ${i}`, email: `a${i}@race.test` })));
      const bot = await createActor(scope, { type: "api_client", name: "Bot" });
      const token = (await issueToken(scope, { kind: "api", actorId: bot.id })).token;
      const [one, two] = await Promise.all([
        t.call("POST", `/api/actors/${admins[0]!.id}/disable`, { token }),
        round === 2 ? t.call("DELETE", `/api/actors/${admins[1]!.id}`, { token }) : t.call("POST", `/api/actors/${admins[1]!.id}/disable`, { token }),
      ]);
      expect([one.status, two.status].filter((s) => s === 409)).toHaveLength(1);
      expect([one.body.code, two.body.code]).toContain("last_admin");
      expect((await scope.repository(ActorEntity).list({ where: { type: "admin" } })).filter((a) => a.disabledAt === null)).toHaveLength(1);
    }
  });

  run("users cannot manage actors, and another account's actors are not found", async () => {
    const user = await t.actorWithToken(t.a, "user");
    expect((await t.call("GET", "/api/actors", { token: user.token })).status).toBe(403);
    expect((await t.call("POST", `/api/actors/${t.a.admin.id}/disable`, { token: user.token })).status).toBe(403);
    for (const [method, path] of [
      ["GET", `/api/actors/${t.b.admin.id}`],
      ["PATCH", `/api/actors/${t.b.admin.id}`],
      ["DELETE", `/api/actors/${t.b.admin.id}`],
      ["POST", `/api/actors/${t.b.admin.id}/disable`],
      ["POST", `/api/actors/${t.b.admin.id}/enable`],
    ] as const) {
      const res = await t.call(method, path, { body: method === "PATCH" ? { name: "stolen" } : undefined });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect(await t.b.scope.repository(ActorEntity).get(t.b.admin.id)).toMatchObject({ name: t.b.admin.name, disabledAt: null });
    const listed = await t.call("GET", "/api/actors?limit=500");
    expect(listed.body.data.map((a: { id: string }) => a.id)).not.toContain(t.b.admin.id);
  });
});
