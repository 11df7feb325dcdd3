// /api/groups on both databases: create, read, rename, list in pages, delete; memberships added
// idempotently and removed; the Everyone group neither renamed, deleted nor given members by hand;
// another account's group or actor is not found here.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createActor } from "../accounts/accounts.service.js";
import { ChangeLogEntity, GroupEntity, MembershipEntity, type Actor } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";

describe.each(DATABASES)("groups API on $name", (kind) => {
  let t: TestPortal;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  const everyone = async (): Promise<{ id: string; name: string; kind: string }> => {
    const groups = (await t.call("GET", "/api/groups?limit=500")).body.data as { id: string; name: string; kind: string }[];
    return groups.find((g) => g.kind === "everyone")!;
  };

  run("creates, reads, renames and deletes a group, and logs each change", async () => {
    const created = await t.call("POST", "/api/groups", { body: { name: "  Engineering " } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Engineering", kind: "static" });
    const id = created.body.id as string;
    expect((await t.call("GET", `/api/groups/${id}`)).body.name).toBe("Engineering");
    const renamed = await t.call("PATCH", `/api/groups/${id}`, { body: { name: "Eng" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("Eng");
    expect((await t.call("DELETE", `/api/groups/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/groups/${id}`)).status).toBe(404);
    expect((await t.call("DELETE", `/api/groups/${id}`)).status).toBe(404);
    const log = await t.portal.database.getRepository(ChangeLogEntity).find({ where: { objectId: id } });
    expect(log.map((e) => e.action).sort()).toEqual(["delete", "insert", "update"]);
  });

  run("refuses bad input naming the field, a duplicate name with 409, and writes nothing", async () => {
    const before = await t.a.scope.repository(GroupEntity).count();
    for (const [body, field, code] of [
      [{}, "name", "name.required"],
      [{ name: "  " }, "name", "name.required"],
      [{ name: 7 }, "name", "name.not_string"],
      [{ name: "x".repeat(256) }, "name", "name.too_long"],
      [{ name: "ok", kind: "everyone" }, "kind", "field.unknown"],
      [["Engineering"], "", "body.not_object"],
    ] as const) {
      const res = await t.call("POST", "/api/groups", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    expect(await t.a.scope.repository(GroupEntity).count()).toBe(before);
    expect((await t.call("POST", "/api/groups", { body: { name: "Sales" } })).status).toBe(201);
    const dup = await t.call("POST", "/api/groups", { body: { name: "Sales" } });
    expect(dup.status).toBe(409);
    expect((await t.call("POST", "/api/groups", { body: { name: "Everyone" } })).status).toBe(409);
    expect(await t.a.scope.repository(GroupEntity).count()).toBe(before + 1);
    // The same name in another account is another group.
    expect((await t.call("POST", "/api/groups", { token: t.b.token, body: { name: "Sales" } })).status).toBe(201);
  });

  run("keeps the Everyone group: no rename, no delete, no members by hand; lists every user and admin", async () => {
    const group = await everyone();
    expect(group.name).toBe("Everyone");
    const rename = await t.call("PATCH", `/api/groups/${group.id}`, { body: { name: "All" } });
    expect(rename.status).toBe(403);
    expect(rename.body.code).toBe("group.everyone_fixed");
    const del = await t.call("DELETE", `/api/groups/${group.id}`);
    expect(del.status).toBe(403);
    expect(del.body.code).toBe("group.everyone_fixed");
    const user = await createActor(t.a.scope, { type: "user", name: "Everyone Member", email: "member@acme.test" });
    const bot = await createActor(t.a.scope, { type: "service_account", name: "Bot" });
    for (const method of ["PUT", "DELETE"]) {
      const res = await t.call(method, `/api/groups/${group.id}/members/${user.id}`);
      expect(res.status, method).toBe(403);
      expect(res.body.code).toBe("group.everyone_implicit");
    }
    expect(await t.a.scope.links(MembershipEntity).list({ groupId: group.id })).toEqual([]);
    const members = (await t.call("GET", `/api/groups/${group.id}/members?limit=500`)).body.data as { actor_id: string; type: string }[];
    const ids = members.map((m) => m.actor_id);
    expect(ids).toContain(user.id);
    expect(ids).toContain(t.a.admin.id);
    expect(ids).not.toContain(bot.id);
    expect(ids).not.toContain(t.b.admin.id);
    expect((await everyone()).name).toBe("Everyone");
  });

  run("adds members idempotently, lists them in pages, removes them, and 404s a non-member", async () => {
    const group = (await t.call("POST", "/api/groups", { body: { name: "Members" } })).body;
    const actors: Actor[] = [];
    for (let i = 0; i < 5; i++) actors.push(await createActor(t.a.scope, { type: i % 2 === 0 ? "user" : "service_account", name: `Member ${i}` }));
    for (const actor of actors) {
      const added = await t.call("PUT", `/api/groups/${group.id}/members/${actor.id}`);
      expect(added.status).toBe(204);
    }
    expect((await t.call("PUT", `/api/groups/${group.id}/members/${actors[0]!.id}`)).status).toBe(204);
    expect(await t.a.scope.links(MembershipEntity).list({ groupId: group.id })).toHaveLength(5);

    const seen: { actor_id: string; name: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { data: { actor_id: string; name: string }[]; next_cursor: string | null } } = await t.call(
        "GET",
        `/api/groups/${group.id}/members?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen.map((m) => m.actor_id)).toEqual(actors.map((a) => a.id).sort());
    expect(seen.find((m) => m.actor_id === actors[1]!.id)?.name).toBe("Member 1");

    expect((await t.call("DELETE", `/api/groups/${group.id}/members/${actors[0]!.id}`)).status).toBe(204);
    const again = await t.call("DELETE", `/api/groups/${group.id}/members/${actors[0]!.id}`);
    expect(again.status).toBe(404);
    expect((await t.call("DELETE", `/api/groups/${group.id}/members/not-a-uuid`)).status).toBe(404);
    expect((await t.call("PUT", `/api/groups/${group.id}/members/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect(await t.a.scope.links(MembershipEntity).list({ groupId: group.id })).toHaveLength(4);

    // Deleting the group takes its memberships with it.
    expect((await t.call("DELETE", `/api/groups/${group.id}`)).status).toBe(204);
    expect(await t.a.scope.links(MembershipEntity).list({ groupId: group.id })).toEqual([]);
  });

  run("does not reach another account's groups or actors", async () => {
    const theirs = (await t.call("POST", "/api/groups", { token: t.b.token, body: { name: "Theirs" } })).body;
    const ours = (await t.call("POST", "/api/groups", { body: { name: "Ours" } })).body;
    expect((await t.call("GET", `/api/groups/${theirs.id}`)).status).toBe(404);
    expect((await t.call("PATCH", `/api/groups/${theirs.id}`, { body: { name: "Mine" } })).status).toBe(404);
    expect((await t.call("DELETE", `/api/groups/${theirs.id}`)).status).toBe(404);
    expect((await t.call("GET", `/api/groups/${theirs.id}/members`)).status).toBe(404);
    expect((await t.call("PUT", `/api/groups/${theirs.id}/members/${t.a.admin.id}`)).status).toBe(404);
    const foreignActor = await t.call("PUT", `/api/groups/${ours.id}/members/${t.b.admin.id}`);
    expect(foreignActor.status).toBe(404);
    expect(foreignActor.body.detail).toContain("actor");
    expect(await t.b.scope.links(MembershipEntity).list()).toEqual([]);
    expect(await t.a.scope.links(MembershipEntity).list({ groupId: ours.id })).toEqual([]);
    expect((await t.call("GET", `/api/groups/${theirs.id}`, { token: t.b.token })).body.name).toBe("Theirs");
    const listed = (await t.call("GET", "/api/groups?limit=500")).body.data.map((g: { id: string }) => g.id);
    expect(listed).not.toContain(theirs.id);
  });

  run("pages through groups with a cursor: every group once, in id order", async () => {
    for (let i = 0; i < 6; i++) expect((await t.call("POST", "/api/groups", { body: { name: `page-${i}` } })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { data: { id: string }[]; next_cursor: string | null } } = await t.call("GET", `/api/groups?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((g) => g.id));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual((await t.a.scope.repository(GroupEntity).list()).map((g) => g.id).sort());
    expect((await t.call("GET", "/api/groups?limit=0")).status).toBe(422);
  });
});
