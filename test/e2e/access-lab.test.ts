// The end-to-end lab (bench/access.ts) on easy NATs: the portal from this checkout answers in its
// namespace, provisioning through the API produced what the API lists, a refused resource address
// comes back as problem details, the tokens are 0600 files that authenticate as what they were
// issued for, DNS answers as the daemons will need it, the portal survives a SIGKILL with its data,
// and destroy() leaves nothing. The relay joins when `wardline relay` takes --portal-url; gateway
// and client are not started here (their daemons are being written).

import { readFileSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessLab, ApiError, INTERNAL_ZONE, missingAccessLabPrerequisites, missingDaemonFlags, PUBLIC_ZONE } from "../../bench/access.js";
import type { MemberView } from "../../server/src/groups/groups.controller.js";
import type { MeView } from "../../server/src/tokens/me.controller.js";
import type { PolicyView } from "../../server/src/policies/policies.controller.js";
import type { ResourceView } from "../../server/src/resources/resources.controller.js";
import type { TokenView } from "../../server/src/sites/sites.controller.js";

const ci = process.env.CI === "true";
const missing = missingAccessLabPrerequisites();
if (missing !== undefined && ci) throw new Error(`the access lab cannot run under CI: ${missing}`);
if (missing !== undefined) console.warn(`skipping the access lab tests: ${missing}`);

let lab: AccessLab | undefined;
beforeAll(async () => {
  if (missing === undefined) lab = await AccessLab.start({ clientNat: "easy", gatewayNat: "easy" });
}, 120_000);
afterAll(async () => {
  await lab?.destroy();
}, 30_000);

function started(): AccessLab {
  if (lab === undefined) throw new Error("the lab did not start");
  return lab;
}

describe.skipIf(missing !== undefined)("the access lab", () => {
  it("runs the portal in its namespace: it answers at its WAN address there, and the API token works", async () => {
    const l = started();
    expect((await l.api("GET", "/api/health")).body).toEqual({ status: "ok" });
    const me = (await l.api<MeView>("GET", "/api/me")).body;
    expect(me.actor).toMatchObject({ id: l.ids.apiClientId, type: "api_client" });
    expect(me.token.kind).toBe("api");
    // Without the token the API refuses, with problem details.
    const refused = await l.api<{ code: string }>("GET", "/api/resources", undefined, { token: "wla_not.a-token", expectStatus: 401 });
    expect(refused.body.code).toBe("unauthenticated");
  });

  it("provisioned through the API: the resources, the policies, the group's members and the tokens are what the API lists", async () => {
    const l = started();
    const t = l.topology;
    const resources = await l.list<ResourceView>("/api/resources");
    expect(resources.map((r) => [r.id, r.type, r.address, r.site_ids]).sort()).toEqual(
      [
        [l.ids.resources.wildcard, "dns", `*.${INTERNAL_ZONE}`, [l.ids.siteId]],
        [l.ids.resources.cidr, "cidr", `${t.resource.address}/32`, [l.ids.siteId]],
        [l.ids.resources.restricted, "ip", l.restrictedAddress, [l.ids.siteId]],
      ].sort(),
    );
    const policies = await l.list<PolicyView>("/api/policies");
    expect(policies.map((p) => [p.id, p.group_id, p.resource_id, p.disabled, p.conditions]).sort()).toEqual(
      [
        [l.ids.policies.wildcard, l.ids.groupId, l.ids.resources.wildcard, false, []],
        [l.ids.policies.cidr, l.ids.groupId, l.ids.resources.cidr, false, []],
        [l.ids.policies.restricted, l.ids.otherGroupId, l.ids.resources.restricted, false, []],
      ].sort(),
    );
    expect(await l.list<MemberView>(`/api/groups/${l.ids.groupId}/members`)).toEqual([expect.objectContaining({ actor_id: l.ids.clientActorId, type: "service_account" })]);
    expect(await l.list<MemberView>(`/api/groups/${l.ids.otherGroupId}/members`)).toEqual([]);
    const tokens = await l.list<TokenView>("/api/tokens");
    const kinds = (kind: string): TokenView[] => tokens.filter((token) => token.kind === kind);
    expect(kinds("gateway").map((token) => [token.name, token.site_id])).toEqual(t.gateways.map((g) => [g.role, l.ids.siteId]));
    expect(kinds("relay")).toHaveLength(1);
    expect(kinds("client").map((token) => token.actor_id)).toEqual([l.ids.clientActorId]);
    // The admin's browser session was signed out: the API token is the only credential left.
    expect(kinds("browser")).toEqual([]);
  });

  it("refuses a resource address in a reserved range with the API's problem details, and creates nothing", async () => {
    const l = started();
    const before = (await l.list<ResourceView>("/api/resources")).length;
    const error = await l.addResource({ type: "ip", name: "sentinel", address: "100.100.111.1" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApiError);
    const { status, problem } = error as ApiError;
    expect(status).toBe(422);
    expect(problem).toMatchObject({ status: 422, code: "invalid_request", type: "https://wardline.dev/problems/invalid_request", errors: [{ field: "address", code: "ip.reserved" }] });
    const expected = await l.api<{ errors: { code: string }[] }>("POST", "/api/resources", { type: "cidr", name: "tunnels", address: "100.64.0.0/10", site_ids: [l.ids.siteId] }, { expectStatus: 422 });
    expect(expected.body.errors.map((e) => e.code)).toEqual(["cidr.reserved"]);
    expect(await l.list<ResourceView>("/api/resources")).toHaveLength(before);
  });

  it("adds a resource and a policy, and deletes them, as the API then lists", async () => {
    const l = started();
    const added = await l.addResource({ type: "dns", name: "later", address: `later.${INTERNAL_ZONE}`, filters: [{ protocol: "tcp", ports: ["80"] }] });
    const policy = await l.addPolicy(l.ids.groupId, added.id);
    expect((await l.list<PolicyView>("/api/policies")).map((p) => p.id)).toContain(policy.id);
    await l.deletePolicy(policy.id);
    expect((await l.list<PolicyView>("/api/policies")).map((p) => p.id)).not.toContain(policy.id);
    await expect(l.deletePolicy(policy.id)).rejects.toMatchObject({ status: 404, problem: { code: "not_found" } });
    await l.deleteResource(added.id);
    expect((await l.list<ResourceView>("/api/resources")).map((r) => r.id)).not.toContain(added.id);
  });

  it("writes every token to a 0600 file, and each authenticates as what it was issued for", async () => {
    const l = started();
    const files = [l.tokenFiles.relay, l.tokenFiles.client, ...l.tokenFiles.gateways];
    for (const file of files) expect({ file, mode: statSync(file).mode & 0o777 }).toEqual({ file, mode: 0o600 });
    const token = (file: string): string => readFileSync(file, "utf8");
    expect(token(l.tokenFiles.relay)).toMatch(/^wlr_/);
    for (const file of l.tokenFiles.gateways) expect(token(file)).toMatch(/^wlg_/);
    const me = (await l.api<MeView>("GET", "/api/me", undefined, { token: token(l.tokenFiles.client) })).body;
    expect(me.actor).toMatchObject({ id: l.ids.clientActorId, type: "service_account" });
    expect(me.token.kind).toBe("client");
    // A client token is a device's: it administers nothing.
    await l.api("GET", "/api/resources", undefined, { token: token(l.tokenFiles.client), expectStatus: 403 });
  });

  it("resolves as the daemons need: the gateway finds internal names at the resource host, the client's resolver answers public names", async () => {
    const l = started();
    const t = l.topology;
    expect((await t.run(t.gateways[0]!, "dig", ["+short", "+time=2", `app.${INTERNAL_ZONE}`])).trim()).toBe(t.resource.address);
    expect(readFileSync(`/etc/netns/${t.client.ns}/resolv.conf`, "utf8")).toBe(`nameserver ${t.portal.address}\n`);
    expect((await t.run(t.client, "dig", ["+short", "+time=2", `www.${PUBLIC_ZONE}`])).trim()).toBe(t.portal.address);
    expect(await t.run(t.client, "dig", ["+short", "+time=2", `app.${INTERNAL_ZONE}`])).toBe("");
    // The restricted address is the resource host's second one.
    expect(await t.run(t.resource, "ip", ["-4", "-o", "addr", "show", "dev", "eth0"])).toContain(` ${l.restrictedAddress}/24 `);
  });

  it("starts the relay registered with the portal, ready once joined", async (ctx) => {
    const l = started();
    const notYet = missingDaemonFlags("relay");
    if (notYet !== undefined) {
      if (ci) throw new Error(`the relay cannot join the portal: ${notYet}`);
      console.warn(`not starting the relay: ${notYet}`);
      ctx.skip();
    }
    const relay = await l.startRelay();
    expect(relay.running).toBe(true);
    await expect(l.startRelay()).rejects.toThrow(/running/);
    await relay.stop(3000);
  }, 60_000);

  it("restarts the portal after a SIGKILL on the same data: provisioning and the API token survive", async () => {
    const l = started();
    const killed = l.portal!;
    await expect(l.startPortal()).rejects.toThrow(/running/);
    killed.child.kill("SIGKILL");
    await killed.exited;
    await expect(l.api("GET", "/api/health")).rejects.toThrow();
    const again = await l.startPortal();
    expect(again.pid).not.toBe(killed.pid);
    expect((await l.list<ResourceView>("/api/resources")).map((r) => r.id)).toEqual(expect.arrayContaining(Object.values(l.ids.resources)));
  }, 90_000);

  it("destroy() stops every process and leaves no namespace, /etc/netns entry or temp dir", async () => {
    const l = started();
    const portal = l.portal!;
    await l.destroy();
    expect(portal.running).toBe(false);
    expect(l.topology.leftovers()).toEqual([]);
    expect(() => statSync(l.dir)).toThrow();
    await l.destroy();
  }, 30_000);
});
