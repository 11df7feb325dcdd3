// /api/devices on both databases: 200 clients and 200 gateways registering at once get 400 distinct
// address pairs inside the plan, the database's unique indexes deciding (a tiny pool forces the
// collisions and their retries); the same key again is the same device; a key is one owner's; a user
// sees only their own devices; only admins verify; bad keys are refused naming public_key.

import { BlockList } from "node:net";
import { x25519 } from "@noble/curves/ed25519.js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { createAccount, createActor, issueToken } from "../accounts/accounts.service.js";
import { AccountScope } from "../database/account-scope.js";
import { DeviceEntity, type Actor } from "../database/entities.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { DevicesService } from "./devices.service.js";
import { TunnelAddressPool } from "./tunnel-addresses.js";

beforeEach(reportSeedOnFailure);

const ranges = new BlockList();
ranges.addSubnet("100.64.0.0", 11, "ipv4");
ranges.addSubnet("fd00:2021:1111::", 107, "ipv6");

const newKey = (r: Rng): string => Buffer.from(x25519.getPublicKey(r.bytes(32))).toString("base64");

interface DeviceBody {
  id: string;
  kind: string;
  name: string;
  actor_id: string | null;
  site_id: string | null;
  public_key: string;
  ipv4: string;
  ipv6: string;
  verified_at: string | null;
  last_seen_at: string | null;
}

describe.each(DATABASES)("devices API on $name", (kind) => {
  let t: TestPortal;
  let r: Rng;
  beforeAll(async () => {
    if (kind.missing === undefined) t = await startTestPortal(kind);
  }, 60_000);
  afterAll(async () => t?.close());
  beforeEach((ctx) => {
    r = rng(`devices ${kind.name} ${ctx.task.name}`);
  });
  const run = it.skipIf(kind.missing !== undefined);

  /** A client token of a new actor of tenant A. */
  let made = 0;
  const clientOf = async (type: Actor["type"], name = `${type}-${++made}`): Promise<{ actor: Actor; token: string }> => {
    const actor = await createActor(t.a.scope, { type, name, email: type === "user" || type === "admin" ? `${name}@acme.test` : null });
    return { actor, token: (await issueToken(t.a.scope, { kind: "client", actorId: actor.id })).token };
  };

  const register = (token: string, body: unknown) => t.call("POST", "/api/devices/register", { token, body });

  const expectDistinctInRange = (devices: DeviceBody[], count: number): void => {
    expect(new Set(devices.map((d) => d.id)).size).toBe(count);
    expect(new Set(devices.map((d) => d.ipv4)).size).toBe(count);
    expect(new Set(devices.map((d) => d.ipv6)).size).toBe(count);
    for (const d of devices) {
      expect(ranges.check(d.ipv4, "ipv4"), d.ipv4).toBe(true);
      expect(ranges.check(d.ipv6, "ipv6"), d.ipv6).toBe(true);
      expect(d.ipv4).not.toBe("100.64.0.0");
      expect(d.ipv4).not.toBe("100.95.255.255");
    }
  };

  run("200 clients and then 200 gateways registering at once get 400 distinct addresses in the plan", async () => {
    const owners = await Promise.all([clientOf("user"), clientOf("user"), clientOf("admin"), clientOf("service_account")]);
    const keys = Array.from({ length: 200 }, () => newKey(r));
    const replies = await Promise.all(keys.map((public_key, i) => register(owners[i % owners.length]!.token, { name: `laptop ${i}`, public_key })));
    expect(replies.map((x) => x.status)).toEqual(Array(200).fill(201));
    const clients = replies.map((x) => x.body as DeviceBody);
    expectDistinctInRange(clients, 200);
    clients.forEach((d, i) => expect(d).toMatchObject({ kind: "client", actor_id: owners[i % owners.length]!.actor.id, site_id: null, public_key: keys[i], name: `laptop ${i}`, verified_at: null }));

    const sites = await Promise.all([1, 2, 3].map(async (i) => (await t.call("POST", "/api/sites", { body: { name: `register-${kind.name}-${i}` } })).body as { id: string }));
    const gatewayTokens = await Promise.all(sites.map(async (s) => (await t.call("POST", `/api/sites/${s.id}/gateway_tokens`, { body: {} })).body.token as string));
    const gwReplies = await Promise.all(Array.from({ length: 200 }, (_, i) => register(gatewayTokens[i % 3]!, { name: `gw ${i}`, public_key: newKey(r) })));
    expect(gwReplies.map((x) => x.status)).toEqual(Array(200).fill(201));
    const gateways = gwReplies.map((x) => x.body as DeviceBody);
    gateways.forEach((d, i) => expect(d).toMatchObject({ kind: "gateway", site_id: sites[i % 3]!.id, actor_id: null }));
    expectDistinctInRange([...clients, ...gateways], 400);

    const stored = await t.a.scope.repository(DeviceEntity).list();
    expect(new Set(stored.map((d) => d.ipv4)).size).toBe(stored.length);
  }, 60_000);

  run("the unique indexes decide: a tiny pool forces collisions, every retry lands on a free pair, and a full pool says so", async () => {
    const account = await createAccount(t.portal.database, { slug: `pool-${kind.name.toLowerCase()}-${r.u32()}`, name: "Pool" });
    const scope = new AccountScope(t.portal.database, account.id);
    const owner = await createActor(scope, { type: "service_account", name: "Fleet" });
    // Two services as two portal nodes on one database: neither knows what the other hands out.
    const nodes = [new DevicesService(new TunnelAddressPool(1, 400)), new DevicesService(new TunnelAddressPool(1, 400))];
    const made = await Promise.all(Array.from({ length: 200 }, (_, i) => nodes[i % 2]!.register(scope, { kind: "client", actorId: owner.id }, { name: `d${i}`, publicKey: newKey(r) })));
    expect(made.every((m) => m.created)).toBe(true);
    expect(new Set(made.map((m) => m.device.ipv4)).size).toBe(200);
    expect(new Set(made.map((m) => m.device.ipv6)).size).toBe(200);
    // 200 random draws from 400 offsets cannot all miss each other (odds below 1e-20).
    expect(nodes[0]!.collisions + nodes[1]!.collisions).toBeGreaterThan(0);

    const full = new DevicesService(new TunnelAddressPool(401, 402));
    for (let i = 0; i < 2; i++) await full.register(scope, { kind: "client", actorId: owner.id }, { name: `f${i}`, publicKey: newKey(r) });
    await expect(full.register(scope, { kind: "client", actorId: owner.id }, { name: "one too many", publicKey: newKey(r) })).rejects.toMatchObject({ status: 503, code: "tunnel_addresses_exhausted" });
    expect(await scope.repository(DeviceEntity).count()).toBe(202);
  }, 60_000);

  run("the same key again is the same device with the same addresses; another owner cannot take it", async () => {
    const alice = await clientOf("user");
    const key = newKey(r);
    const first = await register(alice.token, { name: "Alice's laptop", public_key: key });
    expect(first.status).toBe(201);
    // The same key from the same owner, many times at once (a client retrying): one device.
    const again = await Promise.all(Array.from({ length: 10 }, (_, i) => register(alice.token, { name: `renamed ${i}`, public_key: key })));
    expect(again.map((x) => x.status)).toEqual(Array(10).fill(200));
    for (const x of again) expect(x.body).toMatchObject({ id: first.body.id, ipv4: first.body.ipv4, ipv6: first.body.ipv6 });
    const stored = await t.a.scope.repository(DeviceEntity).list({ where: { publicKey: key } });
    expect(stored).toHaveLength(1);
    expect(stored[0]!.name).toMatch(/^renamed \d$/);
    expect(stored[0]!.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(new Date(first.body.last_seen_at).getTime());

    const racing = newKey(r);
    const raced = await Promise.all(Array.from({ length: 8 }, () => register(alice.token, { name: "race", public_key: racing })));
    expect(new Set(raced.map((x) => x.body.id)).size).toBe(1);
    expect(raced.filter((x) => x.status === 201)).toHaveLength(1);

    const mallory = await clientOf("user");
    const stolen = await register(mallory.token, { name: "mine now", public_key: key });
    expect(stolen.status).toBe(409);
    expect(stolen.body.code).toBe("public_key_taken");
    expect(stolen.body.errors).toContainEqual(expect.objectContaining({ field: "public_key", code: "public_key.taken" }));
    expect(JSON.stringify(stolen.body)).not.toContain(first.body.ipv4);
    // A key is unique within an account only: another account's device may hold it.
    const bUser = await createActor(t.b.scope, { type: "user", name: "Bea", email: "bea@globex.test" });
    const bToken = (await issueToken(t.b.scope, { kind: "client", actorId: bUser.id })).token;
    const inB = await register(bToken, { name: "same key elsewhere", public_key: key });
    expect(inB.status).toBe(201);
    expect(inB.body.id).not.toBe(first.body.id);
  });

  run("refuses bad keys and names naming the field, and takes only client and gateway tokens", async () => {
    const { token } = await clientOf("service_account");
    const good = newKey(r);
    for (const [body, field, code] of [
      [{ name: "x" }, "public_key", "public_key.required"],
      [{ name: "x", public_key: "" }, "public_key", "public_key.invalid"],
      [{ name: "x", public_key: 42 }, "public_key", "public_key.invalid"],
      [{ name: "x", public_key: good.slice(0, 40) }, "public_key", "public_key.invalid"],
      [{ name: "x", public_key: Buffer.alloc(33, 1).toString("base64") }, "public_key", "public_key.invalid"],
      [{ name: "x", public_key: Buffer.alloc(32).toString("base64") }, "public_key", "public_key.small_order"],
      [{ name: "x", public_key: Buffer.from(Buffer.from(good, "base64")).toString("hex") }, "public_key", "public_key.invalid"],
      [{ public_key: good }, "name", "name.required"],
      [{ name: "x", public_key: good, ipv4: "100.64.0.9" }, "ipv4", "field.unknown"],
    ] as const) {
      const res = await register(token, body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field, code }));
    }
    expect(await t.a.scope.repository(DeviceEntity).count({ publicKey: good })).toBe(0);
    // An admin's API token is not a device.
    expect((await t.call("POST", "/api/devices/register", { body: { name: "x", public_key: good } })).status).toBe(403);
  });

  run("a user sees and manages only their own client devices; admins see all", async () => {
    const [ann, ben] = await Promise.all([clientOf("user"), clientOf("user")]);
    const annDevice = (await register(ann.token, { name: "ann-1", public_key: newKey(r) })).body as DeviceBody;
    const annSecond = (await register(ann.token, { name: "ann-2", public_key: newKey(r) })).body as DeviceBody;
    const benDevice = (await register(ben.token, { name: "ben-1", public_key: newKey(r) })).body as DeviceBody;
    const annApi = (await issueToken(t.a.scope, { kind: "api", actorId: ann.actor.id })).token;

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { data: DeviceBody[]; next_cursor: string | null } } = await t.call("GET", `/api/devices?limit=1${cursor ? `&cursor=${cursor}` : ""}`, { token: annApi });
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((d) => d.id));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual([annDevice.id, annSecond.id].sort());
    for (const query of [`actor_id=${ben.actor.id}`, "kind=gateway", `site_id=${t.a.admin.id}`]) {
      expect((await t.call("GET", `/api/devices?${query}`, { token: annApi })).body.data, query).toEqual([]);
    }
    expect((await t.call("GET", `/api/devices/${annDevice.id}`, { token: annApi })).body.name).toBe("ann-1");
    for (const [method, path, body] of [
      ["GET", `/api/devices/${benDevice.id}`, undefined],
      ["PATCH", `/api/devices/${benDevice.id}`, { name: "hijacked" }],
      ["DELETE", `/api/devices/${benDevice.id}`, undefined],
    ] as const) {
      expect((await t.call(method, path, { token: annApi, body })).status, `${method} ${path}`).toBe(404);
    }
    expect((await t.a.scope.repository(DeviceEntity).get(benDevice.id))?.name).toBe("ben-1");
    const renamed = await t.call("PATCH", `/api/devices/${annDevice.id}`, { token: annApi, body: { name: "Ann's laptop" } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: "Ann's laptop", ipv4: annDevice.ipv4 });
    expect((await t.call("PATCH", `/api/devices/${annDevice.id}`, { token: annApi, body: { verified_at: "2030-01-01T00:00:00Z" } })).status).toBe(422);
    expect((await t.call("DELETE", `/api/devices/${annSecond.id}`, { token: annApi })).status).toBe(204);
    expect((await t.call("GET", `/api/devices/${annSecond.id}`)).status).toBe(404);

    const all = await t.call("GET", "/api/devices?limit=500&kind=client");
    const ids = all.body.data.map((d: DeviceBody) => d.id);
    expect(ids).toEqual(expect.arrayContaining([annDevice.id, benDevice.id]));
    const byBen = await t.call("GET", `/api/devices?actor_id=${ben.actor.id}`);
    expect(byBen.body.data.map((d: DeviceBody) => d.id)).toEqual([benDevice.id]);
    expect((await t.call("GET", "/api/devices?kind=phone")).status).toBe(422);
    // Another account's devices are not found, and are not in the list.
    expect((await t.call("GET", `/api/devices/${benDevice.id}`, { token: t.b.token })).status).toBe(404);
    expect((await t.call("GET", "/api/devices?limit=500", { token: t.b.token })).body.data.map((d: DeviceBody) => d.id)).not.toContain(benDevice.id);
    // Service accounts do not browse the API.
    const svc = await t.actorWithToken(t.a, "service_account");
    expect((await t.call("GET", "/api/devices", { token: svc.token })).status).toBe(403);
  });

  run("admins verify and unverify devices; users cannot", async () => {
    const owner = await clientOf("user");
    const device = (await register(owner.token, { name: "to verify", public_key: newKey(r) })).body as DeviceBody;
    const ownerApi = (await issueToken(t.a.scope, { kind: "api", actorId: owner.actor.id })).token;
    expect((await t.call("POST", `/api/devices/${device.id}/verify`, { token: ownerApi })).status).toBe(403);
    const verified = await t.call("POST", `/api/devices/${device.id}/verify`);
    expect(verified.status).toBe(200);
    expect(verified.body.verified_at).toEqual(expect.any(String));
    expect((await t.a.scope.repository(DeviceEntity).get(device.id))?.verifiedAt).toBeInstanceOf(Date);
    expect((await t.call("POST", `/api/devices/${device.id}/verify`)).body.verified_at, "verifying twice keeps the first time").toBe(verified.body.verified_at);
    // Re-registering does not touch verification.
    expect((await register(owner.token, { name: "to verify", public_key: device.public_key })).body.verified_at).toBe(verified.body.verified_at);
    expect((await t.call("POST", `/api/devices/${device.id}/unverify`, { token: ownerApi })).status).toBe(403);
    const unverified = await t.call("POST", `/api/devices/${device.id}/unverify`);
    expect(unverified.status).toBe(200);
    expect(unverified.body.verified_at).toBeNull();
    expect((await t.a.scope.repository(DeviceEntity).get(device.id))?.verifiedAt).toBeNull();
    expect((await t.call("POST", `/api/devices/${device.id}/verify`, { token: t.b.token })).status).toBe(404);
    expect((await t.call("POST", "/api/devices/not-a-uuid/verify")).status).toBe(404);
  });
});
