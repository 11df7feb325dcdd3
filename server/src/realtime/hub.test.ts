// The hub end to end, over real WebSockets and both databases, with scripted clients and gateways:
// init brings what the policy lets the client see; an allowed request reaches the gateway and comes
// back as authorization_created with the same pair secrets on both sides; denials name the violated
// conditions; an offline gateway or a silent one fails closed; changes made through the REST API are
// pushed at once, and a deleted policy revokes what it granted on both sides.

import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { relayTurnSecretFromTokenSecret, turnPassword } from "../../../daemons/proto/portal/index.js";
import { issueToken } from "../accounts/accounts.service.js";
import { parseToken } from "../auth/secrets.js";
import { GeoIpReader } from "../policy/geoip.js";
import { writeMmdb, type Typed } from "../policy/mmdb-writer.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { randomPublicKey, ScriptedDevice } from "../testing/device.js";
import { greatCircleKm } from "./hub.js";

describe.each(DATABASES)("the realtime hub on $name", (kind) => {
  let t: TestPortal;
  const open: ScriptedDevice[] = [];
  let site: { id: string };
  let group: { id: string };
  let user: { actor: { id: string } };
  let clientToken: string;
  let gatewayToken: string;

  // Reply bodies are read loosely; each test asserts the shape it relies on.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const api = async (method: string, path: string, body?: unknown): Promise<Record<string, any>> => {
    const res = await t.call(method, path, body === undefined ? {} : { body });
    expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
    return res.body;
  };
  const device = async (role: "client" | "gateway", token: string): Promise<ScriptedDevice> => {
    const d = await ScriptedDevice.connect(t.portal.url, role, token, { public_key: randomPublicKey(), name: `${role}-${open.length}` });
    open.push(d);
    expect((await d.join()).status).toBe("ok");
    return d;
  };
  const revokeReason = async (authorizationId: string): Promise<string | null> =>
    ((await t.portal.database.query(`SELECT revoke_reason FROM authorizations WHERE id = $1`, [authorizationId])) as { revoke_reason: string | null }[])[0]?.revoke_reason ?? null;
  /** The client asks for the resource and the gateway acknowledges: the authorization's id, once the client holds it. */
  const authorizeThrough = async (client: ScriptedDevice, gateway: ScriptedDevice, resourceId: string): Promise<string> => {
    const asked = client.request("request_authorization", { resource_id: resourceId });
    const create = (await gateway.next("create_authorization")).payload as { authorization_id: string };
    await gateway.request("authorization_created", { authorization_id: create.authorization_id });
    expect((await client.next("authorization_created")).payload).toMatchObject({ resource_id: resourceId });
    expect((await asked).status).toBe("ok");
    return create.authorization_id;
  };
  /** The id the portal gave the device of this kind with this WireGuard key. */
  const deviceIdOf = async (kind: "client" | "gateway", publicKey: string): Promise<string> =>
    ((await t.call("GET", `/api/devices?kind=${kind}&limit=500`)).body.data as { id: string; public_key: string }[]).find((d) => d.public_key === publicKey)!.id;
  /** A client with a key of its own, joined and given its init, and its device id. */
  const keyedClient = async (token: string): Promise<{ client: ScriptedDevice; deviceId: string }> => {
    const publicKey = randomPublicKey();
    const client = await ScriptedDevice.connect(t.portal.url, "client", token, { public_key: publicKey });
    open.push(client);
    await client.join();
    await client.next("init");
    return { client, deviceId: await deviceIdOf("client", publicKey) };
  };
  const resource = async (name: string): Promise<{ id: string }> =>
    api("POST", "/api/resources", { type: "dns", name, address: `${name}.corp.example`, site_ids: [site.id] }) as Promise<{ id: string }>;

  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    // A gateway that does not answer is given 1.5 s here, not 15, so the timeout can be tested.
    t = await startTestPortal(kind, { portal: { realtime: { authorizationTimeoutMs: 1500, gatewayOfflineGraceMs: 500 } } });
    site = (await api("POST", "/api/sites", { name: "hq" })) as { id: string };
    group = (await api("POST", "/api/groups", { name: "engineering" })) as { id: string };
    user = await t.actorWithToken(t.a, "user");
    await api("PUT", `/api/groups/${group.id}/members/${user.actor.id}`);
    clientToken = (await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id, expiresAt: new Date(Date.now() + 86_400_000) })).token;
    gatewayToken = (await api("POST", `/api/sites/${site.id}/gateway_tokens`, {})).token as string;
  }, 60_000);
  // Each test starts with no device of an earlier one online, so it knows which gateway is picked.
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close();
  });
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  run("authorizes an allowed resource through an online gateway, with matching secrets on both sides", async () => {
    const wiki = await resource("wiki");
    const policy = await api("POST", "/api/policies", { group_id: group.id, resource_id: wiki.id });
    const hidden = await resource("hidden");

    const gateway = await device("gateway", gatewayToken);
    const gatewayInit = await gateway.next("init");
    expect(gatewayInit.payload).toMatchObject({ authorizations: [] });
    const client = await device("client", clientToken);
    const init = (await client.next("init")).payload as { interface: { ipv4: string }; resources: { id: string; sites: { id: string }[] }[] };
    expect(init.interface.ipv4).toMatch(/^100\.(6[4-9]|[7-9]\d)\./);
    expect(init.resources.map((r) => r.id)).toEqual([wiki.id]);
    expect(init.resources[0]!.sites).toEqual([{ id: site.id, name: "hq" }]);

    // Answered once the outcome is pushed: after the gateway has acknowledged.
    const asked = client.request("request_authorization", { resource_id: wiki.id });
    const create = (await gateway.next("create_authorization")).payload as { authorization_id: string; client: { preshared_key: string; public_key: string }; resource: { id: string; address: string }; gateway_ice: unknown };
    expect(create.resource).toMatchObject({ id: wiki.id, address: "wiki.corp.example" });
    expect((await gateway.request("authorization_created", { authorization_id: create.authorization_id })).status).toBe("ok");
    const created = (await client.next("authorization_created")).payload as { resource_id: string; preshared_key: string; gateway_ice: unknown; site_id: string };
    expect((await asked).status).toBe("ok");
    expect(created).toMatchObject({ resource_id: wiki.id, site_id: site.id });
    expect(created.preshared_key).toBe(create.client.preshared_key);
    expect(created.gateway_ice).toEqual(create.gateway_ice);
    const records = (await t.portal.database.query(`SELECT resource_id, policy_id, actor_id, revoked_at FROM authorizations WHERE id = $1`, [create.authorization_id])) as Record<string, unknown>[];
    expect(records).toEqual([{ resource_id: wiki.id, policy_id: policy.id, actor_id: user.actor.id, revoked_at: null }]);

    // A resource no policy grants: denied, before any gateway hears of it.
    await client.request("request_authorization", { resource_id: hidden.id });
    expect((await client.next("authorization_creation_failed")).payload).toMatchObject({ resource_id: hidden.id, reason: "not_found" });
  });

  run("denials name the violated conditions; an offline gateway and a silent one fail closed", async () => {
    const guarded = await resource("guarded");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: guarded.id, conditions: [{ property: "remote_ip", operator: "is_in_cidr", values: ["192.0.2.0/24"] }] });
    const client = await device("client", clientToken);
    await client.next("init");
    await client.request("request_authorization", { resource_id: guarded.id });
    const denied = (await client.next("authorization_creation_failed")).payload as { reason: string; violated_conditions: { property: string }[] };
    expect(denied.reason).toBe("denied");
    expect(denied.violated_conditions.map((c) => c.property)).toEqual(["remote_ip"]);

    const elsewhere = await api("POST", "/api/sites", { name: "branch" });
    const far = await api("POST", "/api/resources", { type: "ip", name: "far", address: "10.9.9.9", site_ids: [elsewhere.id] });
    await api("POST", "/api/policies", { group_id: group.id, resource_id: far.id });
    await client.next("resource_created_or_updated");
    await client.request("request_authorization", { resource_id: far.id });
    expect((await client.next("authorization_creation_failed")).payload).toMatchObject({ resource_id: far.id, reason: "offline" });

    // A gateway that never acknowledges: the client hears "timeout", the gateway is told to drop it,
    // and the record says it was revoked.
    const silent = await device("gateway", gatewayToken);
    await silent.next("init");
    const plain = await resource("plain");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: plain.id });
    await client.next((f) => f.event === "resource_created_or_updated" && (f.payload as { id: string }).id === plain.id);
    const asked = client.request("request_authorization", { resource_id: plain.id });
    const create = (await silent.next("create_authorization")).payload as { authorization_id: string };
    expect((await client.next("authorization_creation_failed", 5000)).payload).toMatchObject({ resource_id: plain.id, reason: "timeout" });
    expect((await asked).status).toBe("ok");
    expect(((await silent.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(create.authorization_id);
    expect(await revokeReason(create.authorization_id)).toBe("timeout");
  });

  run("pushes resource changes and revokes on a deleted policy: reject_access to the gateway, resource_deleted to the client", async () => {
    const gateway = await device("gateway", gatewayToken);
    await gateway.next("init");
    const client = await device("client", clientToken);
    await client.next("init");

    const app = await resource("app");
    const policy = await api("POST", "/api/policies", { group_id: group.id, resource_id: app.id });
    expect(((await client.next((f) => f.event === "resource_created_or_updated" && (f.payload as { id: string }).id === app.id)).payload as { name: string }).name).toBe("app");
    await api("PATCH", `/api/resources/${app.id}`, { name: "app-renamed" });
    expect(((await client.next((f) => f.event === "resource_created_or_updated" && (f.payload as { id: string }).id === app.id)).payload as { name: string }).name).toBe("app-renamed");

    const asked = client.request("request_authorization", { resource_id: app.id });
    const create = (await gateway.next("create_authorization")).payload as { authorization_id: string };
    await gateway.request("authorization_created", { authorization_id: create.authorization_id });
    await client.next("authorization_created");
    expect((await asked).status).toBe("ok");

    const started = performance.now();
    await api("DELETE", `/api/policies/${policy.id}`);
    const reject = (await gateway.next("reject_access")).payload as { authorization_id: string; resource_id: string };
    const revokedMs = performance.now() - started;
    expect(reject).toMatchObject({ authorization_id: create.authorization_id, resource_id: app.id });
    expect((await client.next((f) => f.event === "resource_deleted" && (f.payload as { id: string }).id === app.id)).payload).toEqual({ id: app.id });
    // The record is marked after the gateway and the client are told.
    await expect.poll(() => revokeReason(create.authorization_id)).toBe("policy");
    // Told once, though both the client's side and the gateway's side of the hub ended it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gateway.pending().filter((f) => f.event === "reject_access")).toEqual([]);
    console.log(`revocation on ${kind.name}: ${revokedMs.toFixed(1)} ms from the API call to reject_access`);

    // Removing the user from the group takes the rest of what the group granted.
    await api("DELETE", `/api/groups/${group.id}/members/${user.actor.id}`);
    const gone = await client.next("resource_deleted");
    expect(gone.payload).toHaveProperty("id");
    await api("PUT", `/api/groups/${group.id}/members/${user.actor.id}`);
  });

  run("hands clients and gateways two relays with working TURN credentials, and tells them as relays come and go", async () => {
    const relayTokens = await Promise.all([1, 2, 3].map(() => issueToken(t.a.scope, { kind: "relay" })));
    const relays: ScriptedDevice[] = [];
    for (const [i, token] of relayTokens.entries()) {
      const relay = await ScriptedDevice.connect(t.portal.url, "relay", token.token);
      open.push(relay);
      expect((await relay.join({ ipv4: `203.0.113.${i + 1}`, port: 3478 })).status).toBe("ok");
      await relay.next("init");
      relays.push(relay);
    }
    const client = await device("client", clientToken);
    const init = (await client.next("init")).payload as { relays: { id: string; addr: string; username: string; password: string; expires_at: string }[] };
    expect(init.relays).toHaveLength(2);
    for (const relay of init.relays) {
      const index = relayTokens.findIndex((r) => r.row.id === relay.id);
      expect(index).toBeGreaterThanOrEqual(0);
      expect(relay.addr).toBe(`203.0.113.${index + 1}:3478`);
      // The relay derives the same TURN secret from its own token, so it accepts these credentials.
      const turnSecret = relayTurnSecretFromTokenSecret(parseToken(relayTokens[index]!.token)!.secret);
      expect(relay.password).toBe(turnPassword(turnSecret, relay.username));
      expect(Date.parse(relay.expires_at)).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    }
    const gateway = await device("gateway", gatewayToken);
    expect(((await gateway.next("init")).payload as { relays: unknown[] }).relays).toHaveLength(2);

    // One of the client's relays leaves: the client hears it gone, and gets the third in its place.
    const leaving = relays[relayTokens.findIndex((r) => r.row.id === init.relays[0]!.id)]!;
    await leaving.close();
    const presence = (await client.next("relays_presence")).payload as { connected: { id: string }[]; disconnected_ids: string[] };
    expect(presence.disconnected_ids).toEqual([init.relays[0]!.id]);
    expect(presence.connected.map((r) => r.id)).not.toContain(init.relays[0]!.id);
    expect(presence.connected).toHaveLength(2);
    for (const relay of relays) if (relay !== leaving) await relay.close();
  });

  run("passes ICE candidates both ways only between a client and a gateway an authorization joins, also after the gateway re-syncs", async () => {
    const ice = await resource("ice");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: ice.id });
    const gatewayKey = randomPublicKey();
    const joinGateway = async (): Promise<ScriptedDevice> => {
      const g = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: gatewayKey });
      open.push(g);
      await g.join();
      await g.next("init");
      return g;
    };
    const gateway = await joinGateway();
    const gatewayId = await deviceIdOf("gateway", gatewayKey);
    const otherKey = randomPublicKey();
    const other = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: otherKey });
    open.push(other);
    await other.join();
    await other.next("init");
    const otherId = await deviceIdOf("gateway", otherKey);
    const { client, deviceId: clientId } = await keyedClient(clientToken);
    const asked = client.request("request_authorization", { resource_id: ice.id, connected_gateway_ids: [gatewayId] });
    const create = (await gateway.next("create_authorization")).payload as { authorization_id: string };
    await gateway.request("authorization_created", { authorization_id: create.authorization_id });
    await client.next("authorization_created");
    expect((await asked).status).toBe("ok");

    const host = ["candidate:1 1 udp 2130706431 192.0.2.10 40000 typ host"];
    const relayed = ["candidate:2 1 udp 16777215 198.51.100.10 50000 typ relay raddr 0.0.0.0 rport 0"];
    expect((await client.request("ice_candidates", { gateway_id: gatewayId, candidates: host })).status).toBe("ok");
    expect((await gateway.next("ice_candidates")).payload).toEqual({ client_id: clientId, candidates: host });
    await gateway.request("ice_candidates", { client_id: clientId, candidates: relayed });
    expect((await client.next("ice_candidates")).payload).toEqual({ gateway_id: gatewayId, candidates: relayed });
    await gateway.request("invalidate_ice_candidates", { client_id: clientId, candidates: relayed });
    expect((await client.next("invalidate_ice_candidates")).payload).toEqual({ gateway_id: gatewayId, candidates: relayed });

    // No authorization joins the client and the other gateway: neither hears the other.
    expect((await client.request("ice_candidates", { gateway_id: otherId, candidates: host })).status).toBe("ok");
    expect((await other.request("ice_candidates", { client_id: clientId, candidates: relayed })).status).toBe("ok");
    await expect(other.next("ice_candidates", 500)).rejects.toThrow(/no ice_candidates/);
    await expect(client.next("ice_candidates", 500)).rejects.toThrow(/no ice_candidates/);

    // The gateway reconnects and re-syncs its authorizations from the database: its candidates still reach the client.
    await gateway.close();
    const again = await joinGateway();
    await again.request("ice_candidates", { client_id: clientId, candidates: host });
    expect((await client.next("ice_candidates")).payload).toEqual({ gateway_id: gatewayId, candidates: host });
  });

  run("a gateway going offline ends what clients hold through it (authorization_creation_failed, offline); asking again gets the site's other gateway", async () => {
    const app = await resource("failover");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: app.id });
    const keys = [randomPublicKey(), randomPublicKey()];
    const gateways: ScriptedDevice[] = [];
    for (const key of keys) {
      const g = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: key });
      open.push(g);
      await g.join();
      await g.next("init");
      gateways.push(g);
    }
    const ids = [await deviceIdOf("gateway", keys[0]!), await deviceIdOf("gateway", keys[1]!)];
    const { client } = await keyedClient(clientToken);
    const asked = client.request("request_authorization", { resource_id: app.id, connected_gateway_ids: [ids[0]] });
    const create = (await gateways[0]!.next("create_authorization")).payload as { authorization_id: string };
    await gateways[0]!.request("authorization_created", { authorization_id: create.authorization_id });
    expect((await client.next("authorization_created")).payload).toMatchObject({ resource_id: app.id, gateway_id: ids[0] });
    await asked;

    await gateways[0]!.close();
    expect((await client.next("authorization_creation_failed")).payload).toEqual({ resource_id: app.id, reason: "offline" });
    await expect.poll(() => revokeReason(create.authorization_id)).toBe("gateway_offline");
    const again = client.request("request_authorization", { resource_id: app.id, connected_gateway_ids: [ids[0]] });
    const second = (await gateways[1]!.next("create_authorization")).payload as { authorization_id: string };
    await gateways[1]!.request("authorization_created", { authorization_id: second.authorization_id });
    expect((await client.next("authorization_created")).payload).toMatchObject({ resource_id: app.id, gateway_id: ids[1] });
    await again;
  });

  run("a gateway that reconnects gets back the authorizations still valid; revoked ones stay gone", async () => {
    const db = await resource("db");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: db.id });
    const gatewayKey = randomPublicKey();
    const first = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: gatewayKey });
    open.push(first);
    await first.join();
    await first.next("init");
    const client = await device("client", clientToken);
    await client.next("init");
    const gatewayId = await deviceIdOf("gateway", gatewayKey);
    const asked = client.request("request_authorization", { resource_id: db.id, connected_gateway_ids: [gatewayId] });
    const create = (await first.next("create_authorization")).payload as { authorization_id: string };
    await first.request("authorization_created", { authorization_id: create.authorization_id });
    await client.next("authorization_created");
    expect((await asked).status).toBe("ok");
    await first.close();

    const again = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: gatewayKey });
    open.push(again);
    await again.join();
    const init = (await again.next("init")).payload as { authorizations: { authorization_id: string; resource: { id: string } }[] };
    expect(init.authorizations.map((a) => a.authorization_id)).toContain(create.authorization_id);
    await t.portal.database.query(`UPDATE authorizations SET revoked_at = now(), revoke_reason = 'test' WHERE id = $1`, [create.authorization_id]);
    await again.close();
    const third = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: gatewayKey });
    open.push(third);
    await third.join();
    const after = (await third.next("init")).payload as { authorizations: { authorization_id: string }[] };
    expect(after.authorizations.map((a) => a.authorization_id)).not.toContain(create.authorization_id);
  });

  run("disconnects a disabled actor's clients, a revoked token's socket, and a socket whose token expires, ending their access on the gateway", async () => {
    const person = await t.actorWithToken(t.a, "user");
    const gateway = await device("gateway", gatewayToken);
    await gateway.next("init");
    const held = await resource("held");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: held.id });
    await api("PUT", `/api/groups/${group.id}/members/${person.actor.id}`);
    const token = await issueToken(t.a.scope, { kind: "client", actorId: person.actor.id });
    const client = await device("client", token.token);
    await client.next("init");
    await api("POST", `/api/actors/${person.actor.id}/disable`);
    expect((await client.next("disconnect")).payload).toEqual({ reason: "actor_disabled" });
    expect((await client.whenClosed()).code).toBe(4003);
    await api("POST", `/api/actors/${person.actor.id}/enable`);

    const revoked = await issueToken(t.a.scope, { kind: "client", actorId: person.actor.id });
    const second = await device("client", revoked.token);
    await second.next("init");
    const underRevoked = await authorizeThrough(second, gateway, held.id);
    await api("DELETE", `/api/tokens/${revoked.row.id}`);
    expect(((await gateway.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(underRevoked);
    expect((await second.next("disconnect")).payload).toEqual({ reason: "token_revoked" });
    await expect.poll(() => revokeReason(underRevoked)).toBe("token_revoked");

    const shortLived = await issueToken(t.a.scope, { kind: "client", actorId: person.actor.id, expiresAt: new Date(Date.now() + 2500) });
    const third = await device("client", shortLived.token);
    await third.next("init");
    const underExpiring = await authorizeThrough(third, gateway, held.id);
    expect(((await gateway.next("reject_access", 6000)).payload as { authorization_id: string }).authorization_id).toBe(underExpiring);
    expect((await third.next("disconnect", 6000)).payload).toEqual({ reason: "token_expired" });
  });

  run("a policy that needs a verified client: denied, allowed once an admin verifies the device, revoked when unverified", async () => {
    const vault = await resource("vault");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: vault.id, conditions: [{ property: "client_verified", operator: "is", values: ["true"] }] });
    const gateway = await device("gateway", gatewayToken);
    await gateway.next("init");
    const key = randomPublicKey();
    const client = await ScriptedDevice.connect(t.portal.url, "client", clientToken, { public_key: key });
    open.push(client);
    await client.join();
    await client.next("init");
    await client.request("request_authorization", { resource_id: vault.id });
    expect(((await client.next("authorization_creation_failed")).payload as { violated_conditions: { property: string }[] }).violated_conditions.map((c) => c.property)).toEqual(["client_verified"]);

    const deviceId = await deviceIdOf("client", key);
    await api("POST", `/api/devices/${deviceId}/verify`);
    // The verification reaches the hub through the change bus: wait until its connection shows it.
    const connection = [...t.portal.realtime.channels.connections].find((c) => c.device?.publicKey === key)!;
    for (let waited = 0; connection.device?.verifiedAt === null && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    const asked = client.request("request_authorization", { resource_id: vault.id });
    const create = (await gateway.next("create_authorization")).payload as { authorization_id: string };
    await gateway.request("authorization_created", { authorization_id: create.authorization_id });
    await client.next("authorization_created");
    expect((await asked).status).toBe("ok");
    await api("POST", `/api/devices/${deviceId}/unverify`);
    expect(((await gateway.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(create.authorization_id);
  });

  run("a client is given only gateways of a compatible version, and hears version_mismatch when none is", async () => {
    const app = await resource("versioned");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: app.id });
    const connect = async (role: "client" | "gateway", token: string, publicKey: string, version: string): Promise<ScriptedDevice> => {
      const d = await ScriptedDevice.connect(t.portal.url, role, token, { public_key: publicKey, version });
      open.push(d);
      expect((await d.join()).status).toBe("ok");
      await d.next("init");
      return d;
    };
    const gatewayKey = randomPublicKey();
    const gateway = await connect("gateway", gatewayToken, gatewayKey, "1.4.2");
    const listed = ((await t.call("GET", "/api/devices?kind=gateway&limit=500")).body.data as { public_key: string; version: string | null }[]).find((d) => d.public_key === gatewayKey);
    expect(listed?.version).toBe("1.4.2");

    // Two minors ahead of the only gateway: refused before the gateway hears of it.
    const ahead = await connect("client", clientToken, randomPublicKey(), "1.6.0");
    expect((await ahead.request("request_authorization", { resource_id: app.id })).status).toBe("ok");
    expect((await ahead.next("authorization_creation_failed")).payload).toMatchObject({ resource_id: app.id, reason: "version_mismatch" });
    expect(gateway.pending().filter((f) => f.event === "create_authorization")).toEqual([]);

    // One minor ahead: served.
    const near = await connect("client", clientToken, randomPublicKey(), "1.5.0");
    await authorizeThrough(near, gateway, app.id);
  });

  run("revocation reaches the gateway while the client is offline, and when the client's device is deleted", async () => {
    const gateway = await device("gateway", gatewayToken);
    await gateway.next("init");

    // The client goes offline; its policy is then deleted: the gateway still hears of it.
    const away = await resource("away");
    const awayPolicy = await api("POST", "/api/policies", { group_id: group.id, resource_id: away.id });
    const { client: leaving, deviceId: leavingId } = await keyedClient(clientToken);
    const leftBehind = await authorizeThrough(leaving, gateway, away.id);
    await leaving.close();
    // Its presence is gone before the change: nobody but the gateway's side of the hub can end it now.
    await expect.poll(async () => (await t.portal.realtime.presence.online(t.a.account.id, [leavingId])).get(leavingId)?.length ?? 0, { timeout: 5000 }).toBe(0);
    await api("DELETE", `/api/policies/${awayPolicy.id}`);
    expect(((await gateway.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(leftBehind);
    await expect.poll(() => revokeReason(leftBehind)).toBe("policy");

    // A connected client's device is deleted: its authorization ends on the gateway too.
    const kept = await resource("kept");
    await api("POST", "/api/policies", { group_id: group.id, resource_id: kept.id });
    const { client: doomed, deviceId } = await keyedClient(clientToken);
    const held = await authorizeThrough(doomed, gateway, kept.id);
    await api("DELETE", `/api/devices/${deviceId}`);
    expect(((await gateway.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(held);
    await expect.poll(() => revokeReason(held)).toBe("device_deleted");
  });

  run("asking again for a resource: on the same gateway the new authorization replaces the old without reject_access; on another the old is rejected", async () => {
    const repo = await resource("repo");
    const repoPolicy = await api("POST", "/api/policies", { group_id: group.id, resource_id: repo.id });
    const firstKey = randomPublicKey();
    const first = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: firstKey });
    open.push(first);
    await first.join();
    await first.next("init");
    const firstId = await deviceIdOf("gateway", firstKey);
    const { client } = await keyedClient(clientToken);

    const replaced = await authorizeThrough(client, first, repo.id);
    const standing = await authorizeThrough(client, first, repo.id);
    expect(standing).not.toBe(replaced);
    await expect.poll(() => revokeReason(replaced)).toBe("superseded");
    expect(await revokeReason(standing)).toBeNull();

    // A second gateway, less loaded: the next one goes there, and the first gateway is told to drop
    // `standing`. Frames arrive in order, so the first reject_access it hears shows none came for `replaced`.
    const second = await device("gateway", gatewayToken);
    await second.next("init");
    const moved = await authorizeThrough(client, second, repo.id);
    expect(((await first.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(standing);
    await expect.poll(() => revokeReason(standing)).toBe("superseded");

    // The gateway's node forgot `replaced` as well: back on the first gateway, then with the client
    // offline and the policy deleted, that gateway hears of its one live authorization only.
    const back = await authorizeThrough(client, first, repo.id);
    void client.request("request_authorization", { resource_id: repo.id, connected_gateway_ids: [firstId] });
    const latest = ((await first.next("create_authorization")).payload as { authorization_id: string }).authorization_id;
    await first.request("authorization_created", { authorization_id: latest });
    await client.next("authorization_created");
    expect(((await second.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(moved);
    await client.close();
    await api("DELETE", `/api/policies/${repoPolicy.id}`);
    expect(((await first.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(latest);
    await expect.poll(() => revokeReason(latest)).toBe("policy");
    expect(await revokeReason(back)).toBe("superseded");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(first.pending().filter((f) => f.event === "reject_access")).toEqual([]);
  });

  run("a policy's auth-provider condition is checked against the provider the client token's sign-in went through", async () => {
    const sso = await resource("sso-only");
    const provider = randomUUID();
    await api("POST", "/api/policies", { group_id: group.id, resource_id: sso.id, conditions: [{ property: "provider_id", operator: "is_in", values: [provider] }] });
    const gateway = await device("gateway", gatewayToken);
    await gateway.next("init");
    // Signed in some other way (the token has no provider): denied, naming the condition.
    const other = await device("client", clientToken);
    await other.next("init");
    await other.request("request_authorization", { resource_id: sso.id });
    const denied = (await other.next("authorization_creation_failed")).payload as { reason: string; violated_conditions: { property: string }[] };
    expect(denied.reason).toBe("denied");
    expect(denied.violated_conditions.map((c) => c.property)).toEqual(["provider_id"]);
    // Through that provider: allowed.
    const ssoToken = (await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id, expiresAt: new Date(Date.now() + 86_400_000), providerId: provider })).token;
    const viaSso = await device("client", ssoToken);
    await viaSso.next("init");
    await authorizeThrough(viaSso, gateway, sso.id);
  });

  run("account DNS settings: validated by the API, in init, and pushed as config_changed to every device", async () => {
    const bad = await t.call("PATCH", "/api/account", { body: { upstream_dns: ["1.1.1.1", "not-an-ip", "1.1.1.1"] } });
    expect(bad.status).toBe(422);
    expect(bad.body.errors.map((e: { field: string; code: string }) => `${e.field} ${e.code}`)).toEqual(["upstream_dns/1 upstream_dns.invalid", "upstream_dns/2 upstream_dns.duplicate"]);
    const client = await device("client", clientToken);
    expect(((await client.next("init")).payload as { interface: { upstream_dns: string[] } }).interface.upstream_dns).toEqual([]);
    const gateway = await device("gateway", gatewayToken);
    await gateway.next("init");
    const changed = await api("PATCH", "/api/account", { upstream_dns: ["1.1.1.1", "2606:4700:4700:0:0:0:0:1111"] });
    expect(changed.upstream_dns).toEqual(["1.1.1.1", "2606:4700:4700::1111"]);
    for (const d of [client, gateway]) {
      const pushed = (await d.next("config_changed")).payload as { interface: { upstream_dns: string[]; ipv4: string } };
      expect(pushed.interface.upstream_dns).toEqual(["1.1.1.1", "2606:4700:4700::1111"]);
      expect(pushed.interface.ipv4).toMatch(/^100\./);
    }
    const later = await device("client", clientToken);
    expect(((await later.next("init")).payload as { interface: { upstream_dns: string[] } }).interface.upstream_dns).toEqual(["1.1.1.1", "2606:4700:4700::1111"]);
  });
});

describe("relays by distance", () => {
  it("the great-circle distance matches known ones", () => {
    const zurich = { latitude: 47.3769, longitude: 8.5417 };
    const frankfurt = { latitude: 50.1109, longitude: 8.6821 };
    const sydney = { latitude: -33.8688, longitude: 151.2093 };
    expect(greatCircleKm(zurich, zurich)).toBe(0);
    expect(greatCircleKm(zurich, frankfurt)).toBeCloseTo(304, -1);
    expect(greatCircleKm(zurich, sydney)).toBeCloseTo(16_560, -2);
    expect(greatCircleKm({ latitude: 0, longitude: 0 }, { latitude: 0, longitude: 180 })).toBeCloseTo(Math.PI * 6371, 6);
  });
});

// With a GeoIP City database, a client gets the relays nearest to it. The database here is written by
// the test: the loopback address the scripted client connects from is in Zurich, and each relay's
// documentation address is somewhere else.
describe.each(DATABASES)("the realtime hub with a GeoIP database on $name", (kind) => {
  const run = it.skipIf(kind.missing !== undefined);
  const place = (latitude: number, longitude: number): Typed => ({ t: "map", v: [["location", { t: "map", v: [["latitude", { t: "double", v: latitude }], ["longitude", { t: "double", v: longitude }]] }]] });
  const PLACES: [string, string, Typed][] = [
    ["127.0.0.0/8", "client, Zurich", place(47.3769, 8.5417)],
    ["203.0.113.1/32", "Sydney", place(-33.8688, 151.2093)],
    ["203.0.113.2/32", "Frankfurt", place(50.1109, 8.6821)],
    ["203.0.113.3/32", "Zurich Oerlikon", place(47.4111, 8.5442)],
    ["203.0.113.4/32", "New York", place(40.7128, -74.006)],
  ];

  run("hands a client the two relays nearest to it, nearest first", async () => {
    const opened = GeoIpReader.open(writeMmdb({ ipVersion: 6, recordSize: 28, aliasIpv4Mapped: true, networks: PLACES.map(([network, , value]) => ({ network, value })) }));
    if (!opened.ok) throw new Error(opened.error);
    const t = await startTestPortal(kind, { portal: { realtime: { geoip: opened.reader } } });
    const open: ScriptedDevice[] = [];
    try {
      const relayTokens = await Promise.all(PLACES.slice(1).map(() => issueToken(t.a.scope, { kind: "relay" })));
      for (const [i, token] of relayTokens.entries()) {
        const relay = await ScriptedDevice.connect(t.portal.url, "relay", token.token);
        open.push(relay);
        expect((await relay.join({ ipv4: `203.0.113.${i + 1}`, port: 3478 })).status).toBe("ok");
        await relay.next("init");
      }
      const user = await t.actorWithToken(t.a, "user");
      const { token } = await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id, expiresAt: new Date(Date.now() + 86_400_000) });
      const client = await ScriptedDevice.connect(t.portal.url, "client", token, { public_key: randomPublicKey() });
      open.push(client);
      await client.join();
      const init = (await client.next("init")).payload as { relays: { addr: string }[] };
      expect(init.relays.map((r) => r.addr), "Zurich Oerlikon, then Frankfurt").toEqual(["203.0.113.3:3478", "203.0.113.2:3478"]);
    } finally {
      for (const d of open) await d.close();
      await t.close();
    }
  });
});
