// Tenant isolation, route by route: for every route the portal answers (read from the application's own
// route table, so a new route is covered the day it is added), an admin token of account A is pointed
// at account B's objects, through the path and through the references in the body, and:
//
// 1. a route naming one of B's objects answers 404 (or refuses with 403/422), never 2xx;
// 2. no answer to A contains any of B's ids or names;
// 3. afterwards every row of B, in every tenant table, is exactly as it was;
// 4. as a control, the same GET routes pointed at A's own objects answer 200, so the 404s above are
//    about the account and not a broken route.
//
// A path parameter is resolved by the collection it follows (/api/sites/:id is a site); a collection
// this test has no fixture for fails the test, naming it, instead of going untested.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueToken, createActor } from "./accounts/accounts.service.js";
import { AuthProviderEntity } from "./auth/entities.js";
import type { AccountScope } from "./database/account-scope.js";
import { DeviceEntity, GroupEntity, MembershipEntity, PolicyEntity, ResourceEntity, ResourceSiteEntity, SiteEntity } from "./database/entities.js";
import { DATABASES, startTestPortal, type Tenant, type TestPortal } from "./testing/api.js";

/** Routes outside the tenant API: the OpenAPI explorer's files and the health check. */
const NOT_TENANT = [/^\/api\/docs/, /^\/api\/openapi\.json$/, /^\/api\/health$/];
/** Streams never end, so a request-and-answer probe cannot read them: events.test.ts checks that A's stream carries none of B's devices. */
const STREAMS = [/^\/api\/events$/];

type Fixtures = Record<string, string>;

/** One object of every kind in a tenant; returns ids by the collection name that routes use. */
async function fixtures(tenant: Tenant, marker: string): Promise<Fixtures> {
  const scope: AccountScope = tenant.scope;
  const site = await scope.repository(SiteEntity).insert({ name: `${marker} site` });
  const user = await createActor(scope, { type: "user", name: `${marker} user`, email: `user@${marker}.test` });
  const apiClient = await createActor(scope, { type: "api_client", name: `${marker} api client` });
  const apiToken = await issueToken(scope, { kind: "api", actorId: apiClient.id, name: `${marker} api token` });
  const gatewayToken = await issueToken(scope, { kind: "gateway", siteId: site.id, name: `${marker} gateway token` });
  const relayToken = await issueToken(scope, { kind: "relay", name: `${marker} relay token` });
  const group = await scope.repository(GroupEntity).insert({ name: `${marker} group`, kind: "static" });
  await scope.links(MembershipEntity).add({ groupId: group.id, actorId: user.id });
  const resource = await scope.repository(ResourceEntity).insert({ type: "dns", name: `${marker} resource`, address: `app.${marker}.test`, addressDescription: null, filters: [] });
  await scope.links(ResourceSiteEntity).add({ resourceId: resource.id, siteId: site.id });
  const policy = await scope.repository(PolicyEntity).insert({ groupId: group.id, resourceId: resource.id, description: `${marker} policy`, conditions: [], disabledAt: null });
  const n = marker === "globex" ? 2 : 1;
  const device = await scope.repository(DeviceEntity).insert({
    kind: "client",
    actorId: user.id,
    siteId: null,
    name: `${marker} laptop`,
    publicKey: Buffer.alloc(32, n).toString("base64"),
    ipv4: `100.64.0.${10 + n}`,
    ipv6: `fd00:2021:1111::${10 + n}`,
    verifiedAt: null,
    lastSeenAt: null,
  });
  const provider = await scope.repository(AuthProviderEntity).insert({
    kind: "oidc",
    name: `${marker} idp`,
    issuer: `https://idp.${marker}.test`,
    clientId: `${marker}-client`,
    clientSecret: `${marker}-client-secret`,
    scopes: "openid email",
  });
  const ids: Fixtures = {
    sites: site.id,
    auth_providers: provider.id,
    gateway_tokens: gatewayToken.row.id,
    relay_tokens: relayToken.row.id,
    actors: user.id,
    members: user.id,
    groups: group.id,
    resources: resource.id,
    policies: policy.id,
    devices: device.id,
    tokens: apiToken.row.id,
    // Not a route's collection: the actor a token request names.
    api_clients: apiClient.id,
  };
  return ids;
}

/** The body a probe sends to a changing route: valid in shape, but every reference is B's. */
function probeBody(path: string, b: Fixtures): Record<string, unknown> | undefined {
  if (/\/members\//.test(path)) return undefined;
  if (/^\/api\/policies/.test(path)) return { group_id: b.groups, resource_id: b.resources, description: "probe" };
  if (/^\/api\/resources/.test(path)) return { type: "dns", name: "probe", address: "probe.example.com", site_ids: [b.sites] };
  if (/^\/api\/tokens/.test(path)) return { actor_id: b.api_clients, name: "probe" };
  if (/\/(verify|unverify|enable|disable)$/.test(path)) return undefined;
  return { name: "probe" };
}

/** Every tenant row of an account, for before/after comparison (bookkeeping columns left out). */
async function snapshot(t: TestPortal, accountId: string): Promise<Record<string, unknown[]>> {
  const tables = (await t.portal.database.query(
    `SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'account_id' AND table_name <> 'change_log' ORDER BY table_name`,
  )) as { table_name: string }[];
  const result: Record<string, unknown[]> = {};
  for (const { table_name } of tables) {
    const rows = (await t.portal.database.query(`SELECT * FROM "${table_name}" WHERE account_id = $1`, [accountId])) as Record<string, unknown>[];
    result[table_name] = rows
      .map((row) => {
        const copy = { ...row };
        delete copy.last_used_at;
        delete copy.last_seen_at;
        return JSON.stringify(copy, Object.keys(copy).sort());
      })
      .sort();
  }
  return result;
}

describe.each(DATABASES)("tenant isolation on $name", (kind) => {
  let t: TestPortal;
  let A: Fixtures;
  let B: Fixtures;
  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    t = await startTestPortal(kind, { rateLimit: { burst: 10_000, perSecond: 10_000 } });
    A = await fixtures(t.a, "acme");
    B = await fixtures(t.b, "globex");
  }, 60_000);
  afterAll(async () => t?.close());

  it.skipIf(kind.missing !== undefined)("no route lets account A read or change account B's objects", async () => {
    const routes = t.portal.routes().filter((r) => r.path.startsWith("/api/") && ![...NOT_TENANT, ...STREAMS].some((re) => re.test(r.path)));
    expect(routes.length).toBeGreaterThan(10);
    const bSecrets = [...Object.values(B), t.b.account.id, t.b.admin.id, "globex"];
    const before = await snapshot(t, t.b.account.id);
    const probed: string[] = [];

    const resolve = (path: string, ids: Fixtures): string =>
      path.replace(/\/([a-z_]+)\/:(\w+)/g, (_all, collection: string) => {
        const id = ids[collection];
        if (id === undefined) throw new Error(`no fixture for the collection '${collection}' in ${path}: add one to tenant-isolation.test.ts`);
        return `/${collection}/${id}`;
      });

    for (const route of routes) {
      // Sign-in routes name an account by its slug and take no token: there is no A token to misuse.
      if (/:slug/.test(route.path)) continue;
      const path = resolve(route.path, B);
      const body = route.method === "GET" || route.method === "DELETE" ? undefined : probeBody(route.path, B);
      const res = await t.call(route.method, path, body === undefined ? {} : { body });
      const label = `${route.method} ${route.path} -> ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`;
      probed.push(`${route.method} ${route.path} ${res.status}`);
      const namesB = path !== route.path;
      const refersB = body !== undefined && Object.values(B).some((id) => JSON.stringify(body).includes(id));
      if (namesB || refersB) expect([403, 404, 422], label).toContain(res.status);
      else expect(res.status, label).toBeLessThan(500);
      // An answer may repeat what the request carried ("site_ids/0: no such site"), nothing more of B's.
      const text = JSON.stringify(res.body);
      const sent = `${path} ${JSON.stringify(body ?? {})}`;
      for (const secret of bSecrets) if (!sent.includes(secret)) expect(text.includes(secret), `${label} leaks ${secret}`).toBe(false);
    }
    expect(await snapshot(t, t.b.account.id)).toEqual(before);
    console.log(`probed ${probed.length} routes:\n  ${probed.join("\n  ")}`);

    // Control: the same reads pointed at A's own objects work.
    for (const route of routes.filter((r) => r.method === "GET" && !/:slug/.test(r.path) && r.path.includes("/:"))) {
      const res = await t.call("GET", resolve(route.path, A));
      expect(res.status, `control GET ${route.path}: ${JSON.stringify(res.body).slice(0, 200)}`).toBe(200);
    }
  }, 120_000);
});
