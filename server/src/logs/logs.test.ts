// /api/authorizations and /api/change_log on both databases: records appear once written, newest first
// with the names of what they refer to; each filter narrows; paging yields every row once, even rows
// written within one millisecond; another account's rows never appear, not even through a cursor; bad
// filters are refused naming the field; a user may not read either log.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceEntity, ResourceEntity, SiteEntity, type Device } from "../database/entities.js";
import { encodeCursor } from "../http/input.js";
import { AuthorizationRecorder, type AuthorizationRecord } from "../realtime/authorization-recorder.js";
import { DATABASES, startTestPortal, type Tenant, type TestPortal } from "../testing/api.js";

interface Listed<T> {
  data: T[];
  next_cursor: string | null;
}

describe.each(DATABASES)("logs API on $name", (kind) => {
  let t: TestPortal;
  let recorder: AuthorizationRecorder;
  let keys = 0;

  /** A site, a resource, a client device of the admin and a gateway in `tenant`. */
  async function world(tenant: Tenant, label: string) {
    const scope = tenant.scope;
    const site = await scope.repository(SiteEntity).insert({ name: `site ${label}` });
    const resource = await scope.repository(ResourceEntity).insert({ type: "ip", name: `db ${label}`, address: "10.0.0.1", addressDescription: null, filters: [] });
    const device = (kind: Device["kind"], name: string) => {
      const n = ++keys;
      return scope.repository(DeviceEntity).insert({
        kind,
        actorId: kind === "client" ? tenant.admin.id : null,
        siteId: kind === "gateway" ? site.id : null,
        name,
        publicKey: Buffer.alloc(32, n).toString("base64"),
        ipv4: `100.64.0.${n + 1}`,
        ipv6: `fd00:2021:1111::${n + 1}`,
        verifiedAt: null,
        lastSeenAt: null,
      });
    };
    const client = await device("client", `laptop ${label}`);
    const gateway = await device("gateway", `gw ${label}`);
    return { site, resource, client, gateway };
  }

  function record(tenant: Tenant, w: Awaited<ReturnType<typeof world>>, changes: Partial<AuthorizationRecord> = {}): AuthorizationRecord {
    return {
      accountId: tenant.account.id,
      id: randomUUID(),
      clientDeviceId: w.client.id,
      gatewayDeviceId: w.gateway.id,
      resourceId: w.resource.id,
      policyId: randomUUID(),
      actorId: tenant.admin.id,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 3_600_000),
      ...changes,
    };
  }

  /** Every page of `path` at `limit` rows a page. */
  async function pages<T>(path: string, limit: number): Promise<{ rows: T[]; pages: number }> {
    const rows: T[] = [];
    let cursor: string | null = null;
    let count = 0;
    do {
      const sep = path.includes("?") ? "&" : "?";
      const res: { status: number; body: Listed<T> } = await t.call("GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(limit);
      rows.push(...res.body.data);
      cursor = res.body.next_cursor;
      count++;
    } while (cursor !== null);
    return { rows, pages: count };
  }

  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    t = await startTestPortal(kind);
    recorder = new AuthorizationRecorder(t.portal.database);
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  run("lists authorization records newest first, named, and narrows them by each filter", async () => {
    const a = await world(t.a, "a");
    const other = await world(t.a, "a2");
    const b = await world(t.b, "b");
    const user = await t.actorWithToken(t.a, "user", "Ursula");
    const hour = 3_600_000;
    const base = Date.now() - 10 * hour;
    const oldest = record(t.a, a, { createdAt: new Date(base), expiresAt: new Date(base + hour) });
    const revoked = record(t.a, a, { createdAt: new Date(base + hour) });
    const usersOther = record(t.a, other, { actorId: user.actor.id, createdAt: new Date(base + 2 * hour), expiresAt: new Date(Date.now() + hour) });
    const newest = record(t.a, a, { createdAt: new Date(base + 3 * hour), expiresAt: null });
    const theirs = record(t.b, b, { createdAt: new Date(base + 4 * hour) });
    await Promise.all([oldest, revoked, usersOther, newest, theirs].map((r) => recorder.record(r)));
    await recorder.revoke(t.a.account.id, [revoked.id], "policy_deleted");

    const all = await t.call("GET", "/api/authorizations");
    expect(all.status).toBe(200);
    expect(all.body.next_cursor).toBeNull();
    expect(all.body.data.map((r: { id: string }) => r.id)).toEqual([newest.id, usersOther.id, revoked.id, oldest.id]);
    expect(all.body.data[0]).toEqual({
      id: newest.id,
      actor_id: t.a.admin.id,
      actor_name: t.a.admin.name,
      client_device_id: a.client.id,
      client_device_name: "laptop a",
      gateway_device_id: a.gateway.id,
      gateway_device_name: "gw a",
      resource_id: a.resource.id,
      resource_name: "db a",
      policy_id: newest.policyId,
      created_at: newest.createdAt.toISOString(),
      expires_at: null,
      revoked_at: null,
      revoke_reason: null,
      active: true,
    });
    const byId = new Map(all.body.data.map((r: { id: string }) => [r.id, r]));
    expect(byId.get(revoked.id)).toMatchObject({ revoke_reason: "policy_deleted", active: false });
    expect(byId.get(oldest.id)).toMatchObject({ expires_at: oldest.expiresAt!.toISOString(), active: false });
    expect(byId.get(usersOther.id)).toMatchObject({ actor_name: "Ursula", resource_name: "db a2", gateway_device_name: "gw a2", active: true });

    const ids = async (query: string) => {
      const res = await t.call("GET", `/api/authorizations?${query}`);
      expect(res.status, query).toBe(200);
      return res.body.data.map((r: { id: string }) => r.id);
    };
    expect(await ids(`actor_id=${user.actor.id}`)).toEqual([usersOther.id]);
    expect(await ids(`resource_id=${a.resource.id}`)).toEqual([newest.id, revoked.id, oldest.id]);
    expect(await ids(`client_device_id=${other.client.id}`)).toEqual([usersOther.id]);
    expect(await ids(`gateway_device_id=${a.gateway.id}&active=true`)).toEqual([newest.id]);
    expect(await ids("active=true")).toEqual([newest.id, usersOther.id]);
    expect(await ids("active=false")).toEqual([revoked.id, oldest.id]);
    // Upper-case ids are the same ids; another account's are no filter that reaches its rows.
    expect(await ids(`actor_id=${t.a.admin.id.toUpperCase()}&active=false`)).toEqual([revoked.id, oldest.id]);
    expect(await ids(`gateway_device_id=${b.gateway.id}`)).toEqual([]);

    // Account B sees its own record only; A's ids are nothing to it.
    const theirsListed = await t.call("GET", "/api/authorizations", { token: t.b.token });
    expect(theirsListed.body.data.map((r: { id: string }) => r.id)).toEqual([theirs.id]);
    // A cursor naming B's record is refused to A rather than paging through from it.
    const crossed = await t.call("GET", `/api/authorizations?cursor=${encodeCursor(theirs.id)}`);
    expect(crossed.status).toBe(422);
    expect(crossed.body.errors).toContainEqual(expect.objectContaining({ field: "cursor", code: "cursor.invalid" }));

    // A record outlives what it names; the names go, the ids stay.
    await t.a.scope.repository(DeviceEntity).delete(other.client.id);
    const after = await t.call("GET", `/api/authorizations?actor_id=${user.actor.id}`);
    expect(after.body.data[0]).toMatchObject({ client_device_id: other.client.id, client_device_name: null, resource_name: "db a2" });

    // Admins only.
    expect((await t.call("GET", "/api/authorizations", { token: user.token })).status).toBe(403);
    expect((await t.call("GET", "/api/change_log", { token: user.token })).status).toBe(403);
  });

  run("pages through authorizations: every record once, newest first, even those of one millisecond", async () => {
    const w = await world(t.a, "paging");
    const same = new Date(Date.now() + 86_400_000);
    const records = Array.from({ length: 8 }, (_, i) => record(t.a, w, { createdAt: i < 5 ? same : new Date(same.getTime() - i * 1000) }));
    await Promise.all(records.map((r) => recorder.record(r)));
    const { rows, pages: count } = await pages<{ id: string; created_at: string }>(`/api/authorizations?resource_id=${w.resource.id}`, 3);
    expect(count).toBe(3);
    expect(rows.map((r) => r.id).sort()).toEqual(records.map((r) => r.id).sort());
    const times = rows.map((r) => Date.parse(r.created_at));
    expect(times).toEqual([...times].sort((x, y) => y - x));
  });

  run("lists the change log newest first, with who and what, narrowed by each filter and paged", async () => {
    const created = await t.call("POST", "/api/sites", { body: { name: "Frankfurt" } });
    expect(created.status).toBe(201);
    const siteId = created.body.id as string;
    expect((await t.call("PATCH", `/api/sites/${siteId}`, { body: { name: "FRA" } })).status).toBe(200);
    const theirSite = await t.call("POST", "/api/sites", { token: t.b.token, body: { name: "Theirs" } });

    const log = await t.call("GET", `/api/change_log?object_id=${siteId}`);
    expect(log.status).toBe(200);
    expect(log.body.data).toHaveLength(2);
    const [update, insert] = log.body.data;
    expect(update).toMatchObject({ action: "update", object_type: "sites", object_id: siteId, object_name: "FRA", actor_id: t.a.admin.id, actor_name: t.a.admin.name });
    expect(update.before).toMatchObject({ name: "Frankfurt" });
    expect(update.after).toMatchObject({ name: "FRA" });
    expect(insert).toMatchObject({ action: "insert", object_name: "Frankfurt", before: null });
    expect(Date.parse(update.at)).toBeGreaterThanOrEqual(Date.parse(insert.at));

    const sites = await t.call("GET", "/api/change_log?object_type=sites");
    expect(sites.body.data.every((e: { object_type: string }) => e.object_type === "sites")).toBe(true);
    expect(sites.body.data.map((e: { object_id: string }) => e.object_id)).toContain(siteId);
    const actor = await t.actorWithToken(t.a, "api_client", "robot");
    expect((await t.call("POST", "/api/sites", { token: actor.token, body: { name: "robot's" } })).status).toBe(201);
    const robots = await t.call("GET", `/api/change_log?actor_id=${actor.actor.id}`);
    expect(robots.body.data.map((e: { object_name: string; actor_name: string }) => [e.object_name, e.actor_name])).toEqual([["robot's", "robot"]]);
    expect((await t.call("GET", `/api/change_log?actor_id=${actor.actor.id}&object_type=actors`)).body.data).toEqual([]);

    // B's site is in B's log, never in A's.
    const mine = await pages<{ id: string; object_id: string }>("/api/change_log", 4);
    expect(mine.pages).toBeGreaterThanOrEqual(2);
    expect(new Set(mine.rows.map((e) => e.id)).size).toBe(mine.rows.length);
    expect(mine.rows.map((e) => e.object_id)).not.toContain(theirSite.body.id);
    const total = (await t.portal.database.query(`SELECT count(*)::int AS n FROM change_log WHERE account_id = $1`, [t.a.account.id])) as { n: number }[];
    expect(mine.rows).toHaveLength(total[0]!.n);
    const theirs = await t.call("GET", "/api/change_log?object_type=sites", { token: t.b.token });
    const theirIds = theirs.body.data.map((e: { object_id: string }) => e.object_id);
    expect(theirIds).toContain(theirSite.body.id);
    expect(theirIds).not.toContain(siteId);
  });

  run("refuses bad filters and paging naming each field", async () => {
    for (const [path, fields] of [
      ["/api/authorizations?actor_id=nope", ["actor_id"]],
      ["/api/authorizations?resource_id=1&client_device_id=x&gateway_device_id=", ["resource_id", "client_device_id", "gateway_device_id"]],
      ["/api/authorizations?active=yes", ["active"]],
      ["/api/authorizations?actor_id=a&actor_id=b", ["actor_id"]],
      ["/api/authorizations?actor=" + randomUUID(), ["actor"]],
      ["/api/authorizations?limit=0&active=1", ["limit", "active"]],
      ["/api/authorizations?cursor=nope", ["cursor"]],
      ["/api/change_log?object_type=nothing", ["object_type"]],
      ["/api/change_log?object_type=change_log", ["object_type"]],
      ["/api/change_log?object_id=" + "x".repeat(256), ["object_id"]],
      ["/api/change_log?actor_id=42&limit=501", ["actor_id", "limit"]],
      ["/api/change_log?objecttype=sites", ["objecttype"]],
    ] as const) {
      const res = await t.call("GET", path);
      expect(res.status, path).toBe(422);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(res.body.code).toBe("invalid_request");
      expect(res.body.errors.map((e: { field: string }) => e.field).sort(), path).toEqual([...fields].sort());
    }
  });
});
