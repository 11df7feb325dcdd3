// /api/policies on both databases: create, read, change, disable, list in pages, delete; conditions
// stored in canonical form and refused conditions named by their path; one policy per group and
// resource (409 policy.duplicate); a group or resource of another account is not found here (422
// naming the field), and a refused policy writes nothing. POST /api/policies/check answers as the
// policy engine does: allowed inside a time window until it closes, denied outside it naming the
// window, a verified device only through a device that is, nothing through a disabled policy; bad
// input names its field and unknown ids are 404s.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueToken } from "../accounts/accounts.service.js";
import { ChangeLogEntity, PolicyEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { randomPublicKey } from "../testing/device.js";

const NO_SUCH_ID = "00000000-0000-4000-8000-000000000000";

describe.each(DATABASES)("policies API on $name", (kind) => {
  let t: TestPortal;
  let site: string;
  let group: string;
  let everyone: string;
  let theirGroup: string;
  let theirResource: string;
  let resourceCount = 0;
  beforeAll(async () => {
    if (kind.missing === undefined) {
      t = await startTestPortal(kind);
      site = (await t.call("POST", "/api/sites", { body: { name: "Frankfurt" } })).body.id;
      group = (await t.call("POST", "/api/groups", { body: { name: "Engineering" } })).body.id;
      everyone = (await t.call("GET", "/api/groups")).body.data.find((g: { kind: string }) => g.kind === "everyone").id;
      const theirSite = (await t.call("POST", "/api/sites", { token: t.b.token, body: { name: "Theirs" } })).body.id;
      theirGroup = (await t.call("POST", "/api/groups", { token: t.b.token, body: { name: "Theirs" } })).body.id;
      theirResource = (await t.call("POST", "/api/resources", { token: t.b.token, body: { type: "dns", name: "t", address: "t.example.com", site_ids: [theirSite] } })).body.id;
    }
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  /** A fresh resource of tenant A, so each policy has a pair of its own. */
  const resource = async (): Promise<string> => {
    const n = ++resourceCount;
    const res = await t.call("POST", "/api/resources", { body: { type: "dns", name: `r${n}`, address: `r${n}.example.com`, site_ids: [site] } });
    expect(res.status).toBe(201);
    return res.body.id;
  };
  const create = async (body: Record<string, unknown>) => t.call("POST", "/api/policies", { body: { group_id: group, resource_id: await resource(), ...body } });
  const count = (): Promise<number> => t.a.scope.repository(PolicyEntity).count();

  /** Sends `body`, expects a 422 naming `field` with `code`, and no policy written or changed. */
  const refused = async (body: unknown, field: string, code: string, path = "/api/policies", method = "POST"): Promise<void> => {
    const before = await t.a.scope.repository(PolicyEntity).list();
    const res = await t.call(method, path, { body });
    expect(res.status, JSON.stringify(body)).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.errors, JSON.stringify(body)).toContainEqual(expect.objectContaining({ field, code }));
    expect(await t.a.scope.repository(PolicyEntity).list()).toEqual(before);
  };

  run("creates, reads, changes, disables and deletes a policy, and logs each change", async () => {
    const resourceId = await resource();
    const created = await t.call("POST", "/api/policies", { body: { group_id: group.toUpperCase(), resource_id: resourceId, description: "  engineers reach the wiki " } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ group_id: group, resource_id: resourceId, description: "engineers reach the wiki", disabled: false, disabled_at: null, conditions: [], notices: [] });
    const id = created.body.id as string;
    const read = await t.call("GET", `/api/policies/${id}`);
    expect(read.body).toMatchObject({ id, group_id: group, resource_id: resourceId });
    expect(read.body.notices).toBeUndefined();

    const disabled = await t.call("PATCH", `/api/policies/${id}`, { body: { disabled: true } });
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled).toBe(true);
    expect(Date.parse(disabled.body.disabled_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(disabled.body.description).toBe("engineers reach the wiki");
    // Disabled stays disabled since the first time, across other changes.
    const described = await t.call("PATCH", `/api/policies/${id}`, { body: { description: null } });
    expect(described.body).toMatchObject({ description: "", disabled: true, disabled_at: disabled.body.disabled_at });
    const enabled = await t.call("PATCH", `/api/policies/${id}`, { body: { disabled: false } });
    expect(enabled.body).toMatchObject({ disabled: false, disabled_at: null });
    const created2 = await t.call("POST", "/api/policies", { body: { group_id: everyone, resource_id: resourceId, disabled: true } });
    expect(created2.status).toBe(201);
    expect(created2.body.disabled_at).not.toBeNull();

    const moved = await t.call("PATCH", `/api/policies/${id}`, { body: { resource_id: await resource() } });
    expect(moved.status).toBe(200);
    expect(moved.body.resource_id).not.toBe(resourceId);

    expect((await t.call("DELETE", `/api/policies/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/policies/${id}`)).status).toBe(404);
    expect((await t.call("DELETE", `/api/policies/${id}`)).status).toBe(404);
    const log = await t.portal.database.getRepository(ChangeLogEntity).find({ where: { objectId: id } });
    expect(log.map((e) => e.action).sort()).toEqual(["delete", "insert", "update", "update", "update", "update"]);
  });

  run("refuses bad input naming the field, and writes nothing", async () => {
    const resourceId = await resource();
    await refused({ resource_id: resourceId }, "group_id", "policy.group_id");
    await refused({ group_id: group }, "resource_id", "policy.resource_id");
    await refused({ group_id: "engineering", resource_id: resourceId }, "group_id", "policy.group_id");
    await refused({ group_id: NO_SUCH_ID, resource_id: resourceId }, "group_id", "group_id.not_found");
    await refused({ group_id: group, resource_id: NO_SUCH_ID }, "resource_id", "resource_id.not_found");
    await refused({ group_id: group, resource_id: resourceId, description: 7 }, "description", "description.type");
    await refused({ group_id: group, resource_id: resourceId, description: "d".repeat(1025) }, "description", "description.too_long");
    await refused({ group_id: group, resource_id: resourceId, disabled: "yes" }, "disabled", "disabled.type");
    await refused({ group_id: group, resource_id: resourceId, conditions: {} }, "conditions", "conditions.type");
    await refused({ group_id: group, resource_id: resourceId, groupId: group }, "groupId", "field.unknown");
    await refused([group, resourceId], "", "body.not_object");
    const all = await t.call("POST", "/api/policies", { body: { group_id: NO_SUCH_ID, resource_id: "x", disabled: 1 } });
    expect(all.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(["disabled", "group_id", "resource_id"]);
  });

  run("stores conditions in canonical form, with notices for masked host bits", async () => {
    const provider = "5F0C1A5E-8C1B-4B5E-9D55-0A1B2C3D4E5F";
    const res = await create({
      conditions: [
        { property: "remote_ip", operator: "is_in_cidr", values: ["10.0.0.1/8", "192.168.1.1", "2001:db8::/32"] },
        { property: "remote_ip_location_region", operator: "is_not_in", values: ["ru", "KP"] },
        { property: "provider_id", operator: "is_in", values: [provider] },
        { property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: ["M/09:00-17:00/Europe/Berlin", "Sat/true/UTC", "t/08:00-12:00,13:00-17:00/America/New_York"] },
        { property: "client_verified", operator: "is", values: ["true"] },
      ],
    });
    expect(res.status).toBe(201);
    expect(res.body.conditions).toEqual([
      { property: "remote_ip", operator: "is_in_cidr", values: ["10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32"] },
      { property: "remote_ip_location_region", operator: "is_not_in", values: ["RU", "KP"] },
      { property: "provider_id", operator: "is_in", values: [provider.toLowerCase()] },
      { property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: ["M/09:00-17:00/Europe/Berlin", "S/true/UTC", "T/08:00-12:00,13:00-17:00/America/New_York"] },
      { property: "client_verified", operator: "is", values: ["true"] },
    ]);
    expect(res.body.notices).toEqual([expect.objectContaining({ field: "conditions/0/values/0", code: "remote_ip.host_bits_masked" })]);
    expect((await t.a.scope.repository(PolicyEntity).get(res.body.id))?.conditions).toEqual(res.body.conditions);
    // PATCH replaces the conditions; an empty list removes them.
    const cleared = await t.call("PATCH", `/api/policies/${res.body.id}`, { body: { conditions: [] } });
    expect(cleared.body.conditions).toEqual([]);
  });

  run("refuses conditions that are not Firezone's, naming each by its path", async () => {
    const resourceId = await resource();
    const base = { group_id: group, resource_id: resourceId };
    const time = (value: string): unknown => [{ property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: [value] }];
    for (const [conditions, field, code] of [
      [[{ property: "remote_country", operator: "is_in", values: ["DE"] }], "conditions/0/property", "condition.property"],
      [[{ property: "remote_ip", operator: "is_in", values: ["10.0.0.0/8"] }], "conditions/0/operator", "condition.operator"],
      [[{ property: "remote_ip", operator: "is_in_cidr", values: [] }], "conditions/0/values", "condition.values_required"],
      [[{ property: "remote_ip", operator: "is_in_cidr", values: ["10.0.0.0/8", "10.0.0.0/33"] }], "conditions/0/values/1", "remote_ip.prefix_length"],
      [[{ property: "remote_ip", operator: "is_in_cidr", values: ["nope"] }], "conditions/0/values/0", "remote_ip.invalid"],
      [[{ property: "remote_ip", operator: "is_in_cidr", values: [10] }], "conditions/0/values/0", "condition.value_type"],
      [[{ property: "remote_ip_location_region", operator: "is_in", values: ["XX"] }], "conditions/0/values/0", "region.unknown"],
      [[{ property: "remote_ip_location_region", operator: "is_in", values: ["Germany"] }], "conditions/0/values/0", "region.invalid"],
      [[{ property: "provider_id", operator: "is_in", values: ["google"] }], "conditions/0/values/0", "provider_id.invalid"],
      [time("M/17:00-09:00/Europe/Berlin"), "conditions/0/values/0", "time.inverted_range"],
      [time("M/09:00-17:00/Mars/Olympus"), "conditions/0/values/0", "time.zone"],
      [time("X/09:00-17:00/UTC"), "conditions/0/values/0", "time.day"],
      [time("M/09:00-25:00/UTC"), "conditions/0/values/0", "time.range"],
      [time("09:00-17:00"), "conditions/0/values/0", "time.format"],
      [[{ property: "client_verified", operator: "is", values: ["maybe"] }], "conditions/0/values/0", "client_verified.value"],
      [
        [
          { property: "client_verified", operator: "is", values: ["true"] },
          { property: "client_verified", operator: "is", values: ["false"] },
        ],
        "conditions/1/property",
        "condition.duplicate_property",
      ],
      [["remote_ip"], "conditions/0", "condition.type"],
    ] as const) {
      await refused({ ...base, conditions }, field, code);
    }
    expect(await t.a.scope.repository(PolicyEntity).count({ resourceId })).toBe(0);
  });

  run("keeps one policy per group and resource: a second is a 409 policy.duplicate", async () => {
    const resourceId = await resource();
    const first = await t.call("POST", "/api/policies", { body: { group_id: group, resource_id: resourceId } });
    expect(first.status).toBe(201);
    const before = await count();
    const second = await t.call("POST", "/api/policies", { body: { group_id: group, resource_id: resourceId, description: "again" } });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe("policy.duplicate");
    expect(second.body.errors).toContainEqual(expect.objectContaining({ field: "resource_id", code: "policy.duplicate" }));
    // Another group may have the same resource; moving onto a taken pair is the same conflict.
    const other = await t.call("POST", "/api/policies", { body: { group_id: everyone, resource_id: resourceId } });
    expect(other.status).toBe(201);
    const moved = await t.call("PATCH", `/api/policies/${other.body.id}`, { body: { group_id: group } });
    expect(moved.status).toBe(409);
    expect((await t.call("GET", `/api/policies/${other.body.id}`)).body.group_id).toBe(everyone);
    // A PATCH that keeps its own pair is no duplicate of itself.
    expect((await t.call("PATCH", `/api/policies/${first.body.id}`, { body: { group_id: group, description: "same pair" } })).status).toBe(200);
    expect(await count()).toBe(before + 1);
  });

  run("does not reach another account's groups, resources or policies", async () => {
    const resourceId = await resource();
    await refused({ group_id: theirGroup, resource_id: resourceId }, "group_id", "group_id.not_found");
    await refused({ group_id: group, resource_id: theirResource }, "resource_id", "resource_id.not_found");
    const ours = (await t.call("POST", "/api/policies", { body: { group_id: group, resource_id: resourceId } })).body;
    await refused({ group_id: theirGroup }, "group_id", "group_id.not_found", `/api/policies/${ours.id}`, "PATCH");
    await refused({ resource_id: theirResource }, "resource_id", "resource_id.not_found", `/api/policies/${ours.id}`, "PATCH");
    const theirs = await t.call("POST", "/api/policies", { token: t.b.token, body: { group_id: theirGroup, resource_id: theirResource } });
    expect(theirs.status).toBe(201);
    // B's token cannot point B's policy at A's objects either.
    const reversed = await t.call("POST", "/api/policies", { token: t.b.token, body: { group_id: group, resource_id: resourceId } });
    expect(reversed.status).toBe(422);
    expect(reversed.body.errors.map((e: { code: string }) => e.code).sort()).toEqual(["group_id.not_found", "resource_id.not_found"]);
    expect((await t.call("GET", `/api/policies/${theirs.body.id}`)).status).toBe(404);
    expect((await t.call("PATCH", `/api/policies/${theirs.body.id}`, { body: { disabled: true } })).status).toBe(404);
    expect((await t.call("DELETE", `/api/policies/${theirs.body.id}`)).status).toBe(404);
    expect((await t.call("GET", `/api/policies/${theirs.body.id}`, { token: t.b.token })).body.disabled).toBe(false);
    expect(await t.b.scope.repository(PolicyEntity).count()).toBe(1);
  });

  run("goes with its group or its resource", async () => {
    const resourceId = await resource();
    const doomed = (await t.call("POST", "/api/groups", { body: { name: "Doomed" } })).body.id;
    const byGroup = (await t.call("POST", "/api/policies", { body: { group_id: doomed, resource_id: resourceId } })).body.id;
    const byResource = (await t.call("POST", "/api/policies", { body: { group_id: group, resource_id: resourceId } })).body.id;
    expect((await t.call("DELETE", `/api/groups/${doomed}`)).status).toBe(204);
    expect((await t.call("GET", `/api/policies/${byGroup}`)).status).toBe(404);
    expect((await t.call("GET", `/api/policies/${byResource}`)).status).toBe(200);
    expect((await t.call("DELETE", `/api/resources/${resourceId}`)).status).toBe(204);
    expect((await t.call("GET", `/api/policies/${byResource}`)).status).toBe(404);
  });

  run("pages through policies with a cursor: every policy once, in id order", async () => {
    for (let i = 0; i < 5; i++) expect((await create({ description: `page-${i}` })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { data: { id: string }[]; next_cursor: string | null } } = await t.call("GET", `/api/policies?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.data.map((p) => p.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual((await t.a.scope.repository(PolicyEntity).list()).map((p) => p.id).sort());
    expect((await t.call("GET", "/api/policies?limit=501")).status).toBe(422);
  });

  describe("check access", () => {
    const WINDOW = { property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: ["M/09:00-17:00/Europe/Berlin"] };
    // Monday 7 December 2026; Berlin is at +01:00 then.
    const INSIDE = "2026-12-07T10:30:00+01:00";
    const OUTSIDE = "2026-12-07T18:00:00+01:00";
    const check = (body: unknown) => t.call("POST", "/api/policies/check", { body });
    let user: string;
    let team: string;
    beforeAll(async () => {
      if (kind.missing !== undefined) return;
      user = (await t.call("POST", "/api/actors", { body: { type: "user", name: "Ada", email: `ada-${kind.name}@acme.test` } })).body.id;
      team = (await t.call("POST", "/api/groups", { body: { name: "On call" } })).body.id;
      expect((await t.call("PUT", `/api/groups/${team}/members/${user}`)).status).toBe(204);
    });

    run("allows inside a time window until it closes, and denies outside it naming the window", async () => {
      const resourceId = await resource();
      const policy = (await t.call("POST", "/api/policies", { body: { group_id: team, resource_id: resourceId, conditions: [WINDOW] } })).body;
      const inside = await check({ actor_id: user, resource_id: resourceId, at: INSIDE });
      expect(inside.status).toBe(200);
      expect(inside.body).toEqual({ allowed: true, policy_id: policy.id, until: "2026-12-07T16:00:00.000Z" });
      const outside = await check({ actor_id: user.toUpperCase(), resource_id: resourceId, at: OUTSIDE });
      expect(outside.status).toBe(200);
      expect(outside.body).toEqual({ allowed: false, reason: "conditions", violated: [{ policy_id: policy.id, conditions: [WINDOW] }] });
      // Another Monday at the same wall-clock time, in summer time (+02:00): still inside.
      expect((await check({ actor_id: user, resource_id: resourceId, at: "2026-06-01T09:15:00+02:00" })).body.allowed).toBe(true);
      // Someone outside the group has no policy at all.
      const stranger = (await t.call("POST", "/api/actors", { body: { type: "service_account", name: `bot-${kind.name}` } })).body.id;
      expect((await check({ actor_id: stranger, resource_id: resourceId, at: INSIDE })).body).toEqual({ allowed: false, reason: "no_policy", violated: [] });
    });

    run("names every failing condition: client IP, region, provider, and a device that is not verified", async () => {
      const resourceId = await resource();
      const provider = (await t.call("POST", "/api/auth_providers", { body: { name: "IdP", issuer: "https://idp.example.com", client_id: "c", client_secret: "s" } })).body.id as string;
      const conditions = [
        { property: "remote_ip", operator: "is_in_cidr", values: ["10.0.0.0/8"] },
        { property: "remote_ip_location_region", operator: "is_in", values: ["DE"] },
        { property: "provider_id", operator: "is_in", values: [provider] },
        { property: "client_verified", operator: "is", values: ["true"] },
      ];
      const policy = (await t.call("POST", "/api/policies", { body: { group_id: team, resource_id: resourceId, conditions } })).body;
      const { token } = await issueToken(t.a.scope, { kind: "client", actorId: user });
      const device = (await t.call("POST", "/api/devices/register", { token, body: { name: "laptop", public_key: randomPublicKey() } })).body.id as string;
      const bare = await check({ actor_id: user, resource_id: resourceId, device_id: device });
      expect(bare.body).toEqual({ allowed: false, reason: "conditions", violated: [{ policy_id: policy.id, conditions }] });
      expect((await t.call("POST", `/api/devices/${device}/verify`)).status).toBe(200);
      const full = { actor_id: user, resource_id: resourceId, device_id: device, client_ip: "10.1.2.3", region: "de", auth_provider_id: provider };
      expect((await check(full)).body).toEqual({ allowed: true, policy_id: policy.id, until: null });
      const abroad = await check({ ...full, client_ip: "192.0.2.1", region: "FR" });
      expect(abroad.body.violated[0].conditions.map((c: { property: string }) => c.property)).toEqual(["remote_ip", "remote_ip_location_region"]);
      const unverified = await check({ ...full, device_id: undefined });
      expect(unverified.body.violated[0].conditions.map((c: { property: string }) => c.property)).toEqual(["client_verified"]);
    });

    run("a disabled policy grants nothing, and is not reported", async () => {
      const resourceId = await resource();
      const policy = (await t.call("POST", "/api/policies", { body: { group_id: team, resource_id: resourceId } })).body;
      expect((await check({ actor_id: user, resource_id: resourceId })).body).toMatchObject({ allowed: true, policy_id: policy.id, until: null });
      expect((await t.call("PATCH", `/api/policies/${policy.id}`, { body: { disabled: true } })).status).toBe(200);
      expect((await check({ actor_id: user, resource_id: resourceId })).body).toEqual({ allowed: false, reason: "no_policy", violated: [] });
      // A disabled actor is in no group, so nothing grants them anything either.
      await t.call("PATCH", `/api/policies/${policy.id}`, { body: { disabled: false } });
      const other = (await t.call("POST", "/api/actors", { body: { type: "user", name: "Bo", email: `bo-${kind.name}@acme.test` } })).body.id;
      await t.call("PUT", `/api/groups/${team}/members/${other}`);
      expect((await check({ actor_id: other, resource_id: resourceId })).body.allowed).toBe(true);
      expect((await t.call("POST", `/api/actors/${other}/disable`)).status).toBe(200);
      expect((await check({ actor_id: other, resource_id: resourceId })).body).toMatchObject({ allowed: false, reason: "no_policy" });
    });

    run("refuses bad input naming the field; unknown ids are 404s", async () => {
      const resourceId = await resource();
      const bad = async (body: unknown, field: string, code: string): Promise<void> => {
        const res = await check(body);
        expect(res.status, JSON.stringify(body)).toBe(422);
        expect(res.body.errors, JSON.stringify(body)).toContainEqual(expect.objectContaining({ field, code }));
      };
      await bad({ resource_id: resourceId }, "actor_id", "actor_id.required");
      await bad({ actor_id: user }, "resource_id", "resource_id.required");
      await bad({ actor_id: "ada", resource_id: resourceId }, "actor_id", "actor_id.invalid");
      await bad({ actor_id: user, resource_id: resourceId, at: "next monday" }, "at", "at.invalid");
      await bad({ actor_id: user, resource_id: resourceId, at: "2026-02-30T10:00:00Z" }, "at", "at.invalid");
      await bad({ actor_id: user, resource_id: resourceId, client_ip: "10.0.0.0/8" }, "client_ip", "client_ip.invalid");
      await bad({ actor_id: user, resource_id: resourceId, region: "XX" }, "region", "region.unknown");
      await bad({ actor_id: user, resource_id: resourceId, auth_provider_id: "google" }, "auth_provider_id", "auth_provider_id.invalid");
      await bad({ actor_id: user, resource_id: resourceId, when: INSIDE }, "when", "field.unknown");
      await bad([user, resourceId], "", "body.not_object");
      const all = await check({ actor_id: 1, resource_id: resourceId, at: 7, client_ip: "x" });
      expect(all.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(["actor_id", "at", "client_ip"]);

      for (const [body, what] of [
        [{ actor_id: NO_SUCH_ID, resource_id: resourceId }, "the actor"],
        [{ actor_id: user, resource_id: NO_SUCH_ID }, "the resource"],
        [{ actor_id: user, resource_id: theirResource }, "the resource"],
        [{ actor_id: t.b.admin.id, resource_id: resourceId }, "the actor"],
        [{ actor_id: user, resource_id: resourceId, device_id: NO_SUCH_ID }, "the device"],
        [{ actor_id: user, resource_id: resourceId, auth_provider_id: NO_SUCH_ID }, "the auth provider"],
      ] as const) {
        const res = await check(body);
        expect(res.status, JSON.stringify(body)).toBe(404);
        expect(res.body.detail).toContain(what);
      }
      // Someone else's device does not stand in for the actor's.
      const { token } = await issueToken(t.a.scope, { kind: "client", actorId: t.a.admin.id });
      const adminDevice = (await t.call("POST", "/api/devices/register", { token, body: { name: "admin laptop", public_key: randomPublicKey() } })).body.id;
      await bad({ actor_id: user, resource_id: resourceId, device_id: adminDevice }, "device_id", "device_id.not_actors");
      // Admins only.
      const { token: userToken } = await t.actorWithToken(t.a, "user");
      expect((await t.call("POST", "/api/policies/check", { token: userToken, body: { actor_id: user, resource_id: resourceId } })).status).toBe(403);
    });
  });
});
