// Two portal nodes on one PostgreSQL database, as a rolling deployment runs them: a client on node A is
// authorized to a gateway on node B (create_authorization and its acknowledgement cross the node bus);
// a policy deleted through B's API revokes on both sides; node B stopping drops none of A's sockets,
// its gateway reconnects to A and gets back the authorizations still valid.
//
// PostgreSQL only: PGlite is one process's database, so it has one node (hub.test.ts covers it).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueToken } from "../accounts/accounts.service.js";
import { startPortal, type Portal } from "../portal.js";
import { DATABASES, startTestPortal, type TestPortal } from "../testing/api.js";
import { randomPublicKey, ScriptedDevice } from "../testing/device.js";

const postgres = DATABASES.find((kind) => kind.name === "PostgreSQL")!;

describe("two portal nodes on one PostgreSQL", () => {
  let t: TestPortal;
  let nodeB: Portal | undefined;
  const open: ScriptedDevice[] = [];

  beforeAll(async () => {
    if (postgres.missing !== undefined) return;
    t = await startTestPortal(postgres);
    nodeB = await startPortal({ host: "127.0.0.1", port: 0, database: t.location });
  }, 60_000);
  afterAll(async () => {
    for (const d of open) await d.close();
    await nodeB?.close();
    await t?.close();
  });

  it.skipIf(postgres.missing !== undefined)("a client on A reaches a gateway on B; revocation from B's API reaches both; B stopping drops nothing on A", async () => {
    const onB = async (method: string, path: string, body?: unknown): Promise<{ id: string; token: string }> => {
      const res = await fetch(`${nodeB!.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${t.a.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      expect(res.status, `${method} ${path}`).toBeLessThan(300);
      return (res.status === 204 ? {} : await res.json()) as { id: string; token: string };
    };
    const connect = async (url: string, role: "client" | "gateway", token: string, key = randomPublicKey()): Promise<ScriptedDevice> => {
      const device = await ScriptedDevice.connect(url, role, token, { public_key: key });
      open.push(device);
      expect((await device.join()).status).toBe("ok");
      await device.next("init");
      return device;
    };

    const site = await onB("POST", "/api/sites", { name: "hq" });
    const group = await onB("POST", "/api/groups", { name: "eng" });
    const user = await t.actorWithToken(t.a, "user");
    await onB("PUT", `/api/groups/${group.id}/members/${user.actor.id}`);
    const wiki = await onB("POST", "/api/resources", { type: "dns", name: "wiki", address: "wiki.corp.example", site_ids: [site.id] });
    const db = await onB("POST", "/api/resources", { type: "ip", name: "db", address: "10.0.0.5", site_ids: [site.id] });
    const wikiPolicy = await onB("POST", "/api/policies", { group_id: group.id, resource_id: wiki.id });
    await onB("POST", "/api/policies", { group_id: group.id, resource_id: db.id });
    const gatewayToken = (await onB("POST", `/api/sites/${site.id}/gateway_tokens`, {})).token;
    const clientToken = (await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id })).token;

    const gatewayKey = randomPublicKey();
    const gateway = await connect(nodeB!.url, "gateway", gatewayToken, gatewayKey);
    const clientKey = randomPublicKey();
    const client = await connect(t.portal.url, "client", clientToken, clientKey);

    const authorize = async (gw: ScriptedDevice, resourceId: string): Promise<string> => {
      // Answered once the outcome is pushed: after the gateway has acknowledged.
      const asked = client.request("request_authorization", { resource_id: resourceId });
      const create = (await gw.next("create_authorization")).payload as { authorization_id: string; client: { preshared_key: string } };
      await gw.request("authorization_created", { authorization_id: create.authorization_id });
      const created = (await client.next("authorization_created")).payload as { resource_id: string; preshared_key: string };
      expect((await asked).status).toBe("ok");
      expect(created.resource_id).toBe(resourceId);
      expect(created.preshared_key).toBe(create.client.preshared_key);
      return create.authorization_id;
    };
    const wikiAuthorization = await authorize(gateway, wiki.id);
    const dbAuthorization = await authorize(gateway, db.id);

    // ICE candidates cross the nodes both ways: the client's reach the gateway on B, the gateway's the client on A.
    const devices = (await t.call("GET", "/api/devices?limit=500")).body.data as { id: string; kind: string; public_key: string }[];
    const gatewayId = devices.find((d) => d.public_key === gatewayKey)!.id;
    const clientId = devices.find((d) => d.kind === "client" && d.public_key === clientKey)!.id;
    const clientCandidate = ["candidate:1 1 udp 2130706431 192.0.2.10 40000 typ host"];
    const gatewayCandidate = ["candidate:2 1 udp 1694498815 198.51.100.2 41000 typ srflx raddr 0.0.0.0 rport 0"];
    await client.request("ice_candidates", { gateway_id: gatewayId, candidates: clientCandidate });
    expect((await gateway.next("ice_candidates")).payload).toEqual({ client_id: clientId, candidates: clientCandidate });
    await gateway.request("ice_candidates", { client_id: clientId, candidates: gatewayCandidate });
    expect((await client.next("ice_candidates")).payload).toEqual({ gateway_id: gatewayId, candidates: gatewayCandidate });

    // Revoked through node B's API: the client on A and the gateway on B both hear.
    await onB("DELETE", `/api/policies/${wikiPolicy.id}`);
    expect(((await gateway.next("reject_access")).payload as { authorization_id: string }).authorization_id).toBe(wikiAuthorization);
    expect((await client.next((f) => f.event === "resource_deleted" && (f.payload as { id: string }).id === wiki.id)).payload).toEqual({ id: wiki.id });

    // Node B goes away: its gateway is told (1001) and reconnects to A with what it still holds.
    await nodeB!.close();
    nodeB = undefined;
    expect((await gateway.whenClosed()).code).toBe(1001);
    expect(await client.heartbeat(), "A's sockets are untouched").toEqual({ status: "ok", response: {} });
    const again = await ScriptedDevice.connect(t.portal.url, "gateway", gatewayToken, { public_key: gatewayKey });
    open.push(again);
    await again.join();
    const init = (await again.next("init")).payload as { authorizations: { authorization_id: string }[] };
    expect(init.authorizations.map((a) => a.authorization_id)).toEqual([dbAuthorization]);
    // And new authorizations now go to it on A.
    await authorize(again, db.id);
  }, 60_000);
});
