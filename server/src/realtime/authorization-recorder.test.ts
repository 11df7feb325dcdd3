// Authorization records on both databases: every record resolves only once it is in the table;
// concurrent records share batches; a batch that cannot be written rejects every record in it and
// leaves none of them behind; revocation keeps the first reason; a record outlives the devices it names.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceEntity, ResourceEntity, SiteEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { AuthorizationRecorder, REVOKE_SQL, type AuthorizationRecord } from "./authorization-recorder.js";

describe.each(DATABASES)("authorization records on $name", (kind) => {
  let t: TestPortal;
  let base: Omit<AuthorizationRecord, "id">;
  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    t = await startTestPortal(kind);
    const scope = t.a.scope;
    const site = await scope.repository(SiteEntity).insert({ name: "s" });
    const resource = await scope.repository(ResourceEntity).insert({ type: "ip", name: "r", address: "10.0.0.1", addressDescription: null, filters: [] });
    const client = await scope.repository(DeviceEntity).insert({ kind: "client", actorId: t.a.admin.id, siteId: null, name: "c", publicKey: Buffer.alloc(32, 1).toString("base64"), ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2", verifiedAt: null, lastSeenAt: null });
    const gateway = await scope.repository(DeviceEntity).insert({ kind: "gateway", actorId: null, siteId: site.id, name: "g", publicKey: Buffer.alloc(32, 2).toString("base64"), ipv4: "100.64.0.3", ipv6: "fd00:2021:1111::3", verifiedAt: null, lastSeenAt: null });
    base = { accountId: t.a.account.id, clientDeviceId: client.id, gatewayDeviceId: gateway.id, resourceId: resource.id, policyId: randomUUID(), actorId: t.a.admin.id, createdAt: new Date(), expiresAt: new Date(Date.now() + 3_600_000) };
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);
  const count = async (ids: string[]): Promise<number> =>
    ((await t.portal.database.query(`SELECT count(*)::int AS n FROM authorizations WHERE id = ANY($1::uuid[])`, [ids])) as { n: number }[])[0]!.n;

  run("writes concurrent records in shared batches, each resolved once it is stored", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const ids = Array.from({ length: 300 }, () => randomUUID());
    await Promise.all(
      ids.map(async (id) => {
        await recorder.record({ ...base, id });
        expect(await count([id]), "stored when resolved").toBe(1);
      }),
    );
    expect(recorder.written).toBe(300);
    expect(recorder.batches).toBeLessThan(300);
    expect(recorder.batches).toBeGreaterThanOrEqual(1);
  });

  run("a batch that fails rejects every record in it and stores none of them", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const first = randomUUID();
    const held = recorder.record({ ...base, id: first });
    // While the first write is in flight these queue into one batch; one of them names no account.
    const good = [randomUUID(), randomUUID()];
    const batch = [...good.map((id) => recorder.record({ ...base, id })), recorder.record({ ...base, id: randomUUID(), accountId: randomUUID() })];
    await held;
    const results = await Promise.allSettled(batch);
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    expect(await count(good)).toBe(0);
    await recorder.record({ ...base, id: randomUUID() });
    expect(recorder.written).toBe(2);
  });

  run("a record without an expiry is stored with none", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const ids = [randomUUID(), randomUUID()];
    await Promise.all([recorder.record({ ...base, id: ids[0]!, expiresAt: null }), recorder.record({ ...base, id: ids[1]! })]);
    const rows = (await t.portal.database.query(`SELECT id, expires_at FROM authorizations WHERE id = ANY($1::uuid[])`, [ids])) as { id: string; expires_at: Date | null }[];
    const byId = new Map(rows.map((r) => [r.id, r.expires_at]));
    expect(byId.get(ids[0]!)).toBeNull();
    expect(new Date(byId.get(ids[1]!)!).getTime()).toBe(base.expiresAt!.getTime());
  });

  run("once the table has grown, revocations look their ids up in the primary key", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    // The statistics were taken while the table was empty; 10,000 records written are the second time
    // the recorder has it analyzed.
    const ids = Array.from({ length: 10_500 }, () => randomUUID());
    await Promise.all(ids.map((id) => recorder.record({ ...base, id })));
    await expect.poll(() => recorder.analyzed, { timeout: 10_000 }).toBe(2);
    const some = ids.slice(0, 50);
    const now = new Date().toISOString();
    const plan = (await t.portal.database.query(`EXPLAIN ${REVOKE_SQL}`, [`{${some.map(() => base.accountId).join(",")}}`, `{${some.join(",")}}`, `{${some.map(() => now).join(",")}}`, `{${some.map(() => "x").join(",")}}`])) as Record<string, string>[];
    const text = plan.map((row) => Object.values(row)[0]).join("\n");
    expect(text).toContain("authorizations_pkey");
  });

  run("a record is an audit trail: it outlives the client device it names", async () => {
    const scope = t.a.scope;
    const client = await scope.repository(DeviceEntity).insert({ kind: "client", actorId: t.a.admin.id, siteId: null, name: "gone", publicKey: Buffer.alloc(32, 9).toString("base64"), ipv4: "100.64.0.9", ipv6: "fd00:2021:1111::9", verifiedAt: null, lastSeenAt: null });
    const recorder = new AuthorizationRecorder(t.portal.database);
    const id = randomUUID();
    await recorder.record({ ...base, id, clientDeviceId: client.id });
    await scope.repository(DeviceEntity).delete(client.id);
    expect(await count([id])).toBe(1);
  });

  const reasonOf = async (id: string): Promise<string | null> =>
    ((await t.portal.database.query(`SELECT revoke_reason FROM authorizations WHERE id = $1`, [id])) as { revoke_reason: string | null }[])[0]!.revoke_reason;

  run("revocations ride in the statement of the next records, and both are stored", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const earlier = Array.from({ length: 20 }, () => randomUUID());
    await Promise.all(earlier.map((id) => recorder.record({ ...base, id })));
    const statementsBefore = recorder.batches + recorder.revocationWrites;
    // One write in flight; then records and revocations queue together behind it.
    const inFlight = recorder.record({ ...base, id: randomUUID() });
    const later = Array.from({ length: 10 }, () => randomUUID());
    const queued = [...later.map((id) => recorder.record({ ...base, id })), ...earlier.map((id, i) => recorder.revoke(base.accountId, [id], i % 2 === 0 ? "superseded" : "policy"))];
    await Promise.all([inFlight, ...queued]);
    expect(await count(later)).toBe(10);
    for (const [i, id] of earlier.entries()) expect(await reasonOf(id)).toBe(i % 2 === 0 ? "superseded" : "policy");
    // The in-flight write, then one statement for the ten records and twenty revocations.
    expect(recorder.batches + recorder.revocationWrites - statementsBefore).toBe(3);
    expect(recorder.revocationWrites).toBe(1);
    expect(recorder.revocationsWritten).toBe(20);
  });

  run("a bad record does not cost the revocations that shared its statement", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const revoked = randomUUID();
    await recorder.record({ ...base, id: revoked });
    const inFlight = recorder.record({ ...base, id: randomUUID() });
    // Queued behind it, into one statement: a record naming no account, and a revocation.
    const bad = recorder.record({ ...base, id: randomUUID(), accountId: randomUUID() });
    const revocation = recorder.revoke(base.accountId, [revoked], "superseded");
    await inFlight;
    await expect(bad).rejects.toThrow();
    await revocation;
    expect(await reasonOf(revoked)).toBe("superseded");
  });

  run("a revocation naming something other than a uuid fails alone, before it reaches a statement", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const id = randomUUID();
    const inFlight = recorder.record({ ...base, id: randomUUID() });
    const bad = recorder.revoke(base.accountId, ["1}, {2"], "superseded");
    const good = recorder.record({ ...base, id });
    await expect(bad).rejects.toThrow(/neither a uuid nor a timestamp/);
    await Promise.all([inFlight, good]);
    expect(await count([id])).toBe(1);
  });

  run("a reason is stored as the text it is, quotes and backslashes included; NUL, which PostgreSQL's text cannot hold, as U+FFFD", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const ids = [randomUUID(), randomUUID()];
    await Promise.all(ids.map((id) => recorder.record({ ...base, id })));
    await Promise.all([recorder.revoke(base.accountId, [ids[0]!], `gateway said "no" \\ {at, all}`), recorder.revoke(base.accountId, [ids[1]!], "nul\0here")]);
    expect(await reasonOf(ids[0]!)).toBe(`gateway said "no" \\ {at, all}`);
    expect(await reasonOf(ids[1]!)).toBe("nul\uFFFDhere");
  });

  run("revoking twice in one statement keeps the first reason", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const id = randomUUID();
    await recorder.record({ ...base, id });
    const inFlight = recorder.record({ ...base, id: randomUUID() });
    const both = [recorder.revoke(base.accountId, [id], "policy"), recorder.revoke(base.accountId, [id, id], "expired")];
    await Promise.all([inFlight, ...both]);
    expect(await reasonOf(id)).toBe("policy");
  });

  run("revoking keeps the first reason", async () => {
    const recorder = new AuthorizationRecorder(t.portal.database);
    const id = randomUUID();
    await recorder.record({ ...base, id });
    await recorder.revoke(base.accountId, [id], "policy");
    await recorder.revoke(base.accountId, [id], "expired");
    const rows = (await t.portal.database.query(`SELECT revoke_reason FROM authorizations WHERE id = $1`, [id])) as { revoke_reason: string }[];
    expect(rows[0]!.revoke_reason).toBe("policy");
  });
});
