// /api/sites on both databases: create, read, rename, list in pages, delete; gateway tokens shown once
// and stored as a hash; refused input names its field and writes nothing.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeLogEntity, SiteEntity, TokenEntity } from "../database/entities.js";
import { hashSecret, parseToken } from "../auth/secrets.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";

describe.each(DATABASES)("sites API on $name", (kind) => {
  let t: TestPortal;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  run("creates, reads, renames and deletes a site, and logs each change", async () => {
    const created = await t.call("POST", "/api/sites", { body: { name: "  Frankfurt  " } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Frankfurt" });
    const id = created.body.id as string;
    expect((await t.call("GET", `/api/sites/${id}`)).body.name).toBe("Frankfurt");
    const renamed = await t.call("PATCH", `/api/sites/${id}`, { body: { name: "FRA" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("FRA");
    expect((await t.call("DELETE", `/api/sites/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/sites/${id}`)).status).toBe(404);
    const log = await t.portal.database.getRepository(ChangeLogEntity).find({ where: { objectId: id } });
    expect(log.map((e) => e.action).sort()).toEqual(["delete", "insert", "update"]);
    expect(log.every((e) => e.actorId === t.a.admin.id)).toBe(true);
  });

  run("refuses bad input naming the field, and writes nothing", async () => {
    const before = await t.a.scope.repository(SiteEntity).count();
    for (const [body, field, code] of [
      [{}, "name", "name.required"],
      [{ name: "" }, "name", "name.required"],
      [{ name: 7 }, "name", "name.not_string"],
      [{ name: "x".repeat(256) }, "name", "name.too_long"],
      [{ name: "a\u0000b" }, "name", "name.invalid_character"],
      [{ name: "ok", nmae: "typo" }, "nmae", "field.unknown"],
      [[1, 2], "", "body.not_object"],
    ] as const) {
      const res = await t.call("POST", "/api/sites", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(res.body.code).toBe("invalid_request");
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    const malformed = await t.call("POST", "/api/sites", { raw: "{not json" });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get("content-type")).toContain("application/problem+json");
    expect(await t.a.scope.repository(SiteEntity).count()).toBe(before);
    expect((await t.call("POST", "/api/sites", { body: { name: "dup" } })).status).toBe(201);
    const dup = await t.call("POST", "/api/sites", { body: { name: "dup" } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe("conflict");
  });

  run("pages through sites with a cursor: every site once, in id order", async () => {
    for (let i = 0; i < 7; i++) expect((await t.call("POST", "/api/sites", { body: { name: `page-${i}` } })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { data: { id: string }[]; next_cursor: string | null } } = await t.call("GET", `/api/sites?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.data.map((s) => s.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null);
    const all = (await t.a.scope.repository(SiteEntity).list()).map((s) => s.id).sort();
    expect(seen).toEqual(all);
    expect(pages).toBeGreaterThanOrEqual(3);
    for (const query of ["limit=0", "limit=501", "limit=x", "cursor=nope", "cursor=aWQ6bm90LWEtdXVpZA"]) {
      const res = await t.call("GET", `/api/sites?${query}`);
      expect(res.status, query).toBe(422);
    }
  });

  run("issues a gateway token once, stores only its hash, lists and revokes it", async () => {
    const site = (await t.call("POST", "/api/sites", { body: { name: "tokens" } })).body;
    const issued = await t.call("POST", `/api/sites/${site.id}/gateway_tokens`, { body: { name: "gw-1" } });
    expect(issued.status).toBe(201);
    const parsed = parseToken(issued.body.token);
    expect(parsed?.kind).toBe("gateway");
    const row = await t.portal.database.getRepository(TokenEntity).findOneByOrFail({ id: issued.body.id });
    expect(row.secretHash).toBe(hashSecret(parsed!.secret));
    expect(JSON.stringify(row)).not.toContain(parsed!.secret);
    const listed = await t.call("GET", `/api/sites/${site.id}/gateway_tokens`);
    expect(listed.body.data.map((x: { id: string }) => x.id)).toEqual([issued.body.id]);
    expect(JSON.stringify(listed.body)).not.toContain(parsed!.secret);
    const log = await t.portal.database.getRepository(ChangeLogEntity).findOneByOrFail({ objectId: issued.body.id });
    expect(JSON.stringify(log.after)).not.toContain(row.secretHash);
    expect((await t.call("POST", `/api/sites/${site.id}/gateway_tokens`, { body: { expires_at: "2001-01-01T00:00:00Z" } })).body.errors[0].code).toBe("expires_at.in_past");
    expect((await t.call("DELETE", `/api/sites/${site.id}/gateway_tokens/${issued.body.id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/sites/${site.id}/gateway_tokens`)).body.data).toEqual([]);
  });
});
