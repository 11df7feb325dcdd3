// /api/resources on both databases: create, read, change, list in pages, delete, with the sites that
// serve each resource; every Firezone-style resource rule through the API (DNS wildcards, IP literal
// or port in a DNS name, full tunnel, loopback, Wardline's reserved ranges, overlapping ports, one
// Internet resource); a refused resource names its field and writes nothing; another account's
// sites and resources are not found here.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeLogEntity, ResourceEntity, ResourceSiteEntity } from "../database/entities.js";
import { DATABASES, startTestPortal, type Tenant, type TestPortal } from "../testing/api.js";

describe.each(DATABASES)("resources API on $name", (kind) => {
  let t: TestPortal;
  let site: string;
  let site2: string;
  let theirSite: string;
  beforeAll(async () => {
    if (kind.missing === undefined) {
      t = await startTestPortal(kind);
      site = (await t.call("POST", "/api/sites", { body: { name: "Frankfurt" } })).body.id;
      site2 = (await t.call("POST", "/api/sites", { body: { name: "Dublin" } })).body.id;
      theirSite = (await t.call("POST", "/api/sites", { token: t.b.token, body: { name: "Theirs" } })).body.id;
    }
  }, 60_000);
  afterAll(async () => t?.close());
  const run = it.skipIf(kind.missing !== undefined);

  const stored = async (tenant: Tenant = t.a): Promise<[number, number]> => [
    await tenant.scope.repository(ResourceEntity).count(),
    (await tenant.scope.links(ResourceSiteEntity).list()).length,
  ];
  const create = (body: Record<string, unknown>) => t.call("POST", "/api/resources", { body: { site_ids: [site], ...body } });
  const dns = (address: string) => create({ type: "dns", name: address, address });

  /** POSTs `body`, expects a 422 naming `field` with `code`, and nothing stored. */
  const refused = async (body: unknown, field: string, code: string, path = "/api/resources", method = "POST"): Promise<void> => {
    const before = await stored();
    const res = await t.call(method, path, { body });
    expect(res.status, JSON.stringify(body)).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.errors, JSON.stringify(body)).toContainEqual(expect.objectContaining({ field, code }));
    expect(await stored()).toEqual(before);
  };

  run("creates, reads, changes and deletes a resource with its sites, and logs each change", async () => {
    const created = await create({
      type: "dns",
      name: " Wiki ",
      address: "Wiki.Example.COM.",
      address_description: "https://wiki.example.com",
      filters: [{ protocol: "udp", ports: ["53"] }, { protocol: "tcp", ports: ["8000-8080", "443"] }, { protocol: "icmp" }],
      site_ids: [site, site2, site],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      type: "dns",
      name: "Wiki",
      address: "wiki.example.com",
      address_description: "https://wiki.example.com",
      filters: [{ protocol: "tcp", ports: ["443", "8000-8080"] }, { protocol: "udp", ports: ["53"] }, { protocol: "icmp" }],
      site_ids: [site, site2].sort(),
      notices: [],
    });
    const id = created.body.id as string;
    const read = await t.call("GET", `/api/resources/${id}`);
    expect(read.body).toEqual({ ...created.body, notices: undefined, updated_at: read.body.updated_at });
    expect(read.body.notices).toBeUndefined();

    const changed = await t.call("PATCH", `/api/resources/${id}`, { body: { name: "Wiki 2", site_ids: [site2] } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: "Wiki 2", address: "wiki.example.com", site_ids: [site2], filters: created.body.filters });
    expect((await t.a.scope.links(ResourceSiteEntity).list({ resourceId: id })).map((l) => l.siteId)).toEqual([site2]);

    expect((await t.call("DELETE", `/api/resources/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/api/resources/${id}`)).status).toBe(404);
    expect((await t.call("PATCH", `/api/resources/${id}`, { body: { name: "x" } })).status).toBe(404);
    expect(await t.a.scope.links(ResourceSiteEntity).list({ resourceId: id })).toEqual([]);
    const log = await t.portal.database.getRepository(ChangeLogEntity).find({ where: { objectId: id, objectTable: "resources" } });
    expect(log.map((e) => e.action).sort()).toEqual(["delete", "insert", "update"]);
  });

  run("refuses bad input naming the field, and writes nothing", async () => {
    await refused({ name: "x", address: "a.example.com", site_ids: [site] }, "type", "type.invalid");
    await refused({ type: "ftp", name: "x", address: "a.example.com", site_ids: [site] }, "type", "type.invalid");
    await refused({ type: "dns", address: "a.example.com", site_ids: [site] }, "name", "name.required");
    await refused({ type: "dns", name: "x".repeat(256), address: "a.example.com", site_ids: [site] }, "name", "name.too_long");
    await refused({ type: "dns", name: "x", site_ids: [site] }, "address", "address.required");
    await refused({ type: "dns", name: "x", address: "a.example.com", address_description: "d".repeat(513), site_ids: [site] }, "address_description", "address_description.too_long");
    await refused({ type: "dns", name: "x", address: "a.example.com", site_ids: [site], sites: [] }, "sites", "field.unknown");
    await refused({ type: "dns", name: "x", address: "a.example.com" }, "site_ids", "site_ids.required");
    await refused({ type: "dns", name: "x", address: "a.example.com", site_ids: [] }, "site_ids", "site_ids.required");
    await refused({ type: "dns", name: "x", address: "a.example.com", site_ids: site }, "site_ids", "site_ids.not_array");
    await refused({ type: "dns", name: "x", address: "a.example.com", site_ids: [site, "frankfurt"] }, "site_ids/1", "site_ids.invalid");
    await refused({ type: "dns", name: "x", address: "a.example.com", site_ids: [site, "00000000-0000-4000-8000-000000000000"] }, "site_ids/1", "site_ids.not_found");
    await refused({ type: "dns", name: "x", address: "a.example.com", site_ids: [site], filters: "tcp" }, "filters", "filters.type");
    await refused([{ type: "dns" }], "", "body.not_object");
    // Every fault at once, each named.
    const all = await t.call("POST", "/api/resources", { body: { type: "dns", name: "", address: "*.com", site_ids: ["x"] } });
    expect(all.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(["address", "name", "site_ids/0"]);
  });

  run("takes Firezone's DNS wildcards and refuses names that are not a domain", async () => {
    for (const [address, normalized] of [
      ["*.a.com", "*.a.com"],
      ["**.a.com", "**.a.com"],
      ["app?.a.com", "app?.a.com"],
      ["a.**.b.com", "a.**.b.com"],
      ["*.corp.internal", "*.corp.internal"],
      ["Mixed.Case.COM.", "mixed.case.com"],
      ["bücher.example", "xn--bcher-kva.example"],
    ] as const) {
      const res = await dns(address);
      expect(res.status, address).toBe(201);
      expect(res.body.address).toBe(normalized);
    }
    for (const [address, code] of [
      ["*.com", "dns.wildcard_public_suffix"],
      ["**.de", "dns.wildcard_public_suffix"],
      ["example.*", "dns.wildcard_tld"],
      ["10.0.0.1", "dns.ip_literal"],
      ["[2001:db8::1]", "dns.ip_literal"],
      ["app.example.com:443", "dns.port"],
      ["https://app.example.com", "dns.url"],
      ["localhost", "dns.localhost"],
      ["a..example.com", "dns.empty_label"],
      ["-a.example.com", "dns.label_hyphen"],
      ["a**.example.com", "dns.double_wildcard_in_label"],
    ] as const) {
      await refused({ type: "dns", name: address, address, site_ids: [site] }, "address", code);
    }
  });

  run("takes IP and CIDR resources, masks host bits with a notice, and refuses full tunnel, loopback and reserved ranges", async () => {
    const v6 = await create({ type: "ip", name: "v6 host", address: "2001:DB8:0:0::1" });
    expect(v6.status).toBe(201);
    expect(v6.body.address).toBe("2001:db8::1");
    const v4 = await create({ type: "ip", name: "v4 host", address: "192.168.1.10" });
    expect(v4.body.address).toBe("192.168.1.10");
    const masked = await create({ type: "cidr", name: "office", address: "10.1.2.3/16" });
    expect(masked.status).toBe(201);
    expect(masked.body.address).toBe("10.1.0.0/16");
    expect(masked.body.notices).toEqual([expect.objectContaining({ field: "address", code: "cidr.host_bits_masked" })]);
    const just = await create({ type: "cidr", name: "lab", address: "172.16.0.0/12" });
    expect(just.body.notices).toEqual([]);
    // 100.128.0.0/10 sits beside the tunnel and proxy ranges without touching them.
    expect((await create({ type: "cidr", name: "beside", address: "100.128.0.0/10" })).status).toBe(201);

    for (const [type, address, code] of [
      ["cidr", "0.0.0.0/0", "cidr.full_tunnel"],
      ["cidr", "::/0", "cidr.full_tunnel"],
      ["cidr", "127.0.0.0/8", "cidr.loopback"],
      ["ip", "127.0.0.1", "ip.loopback"],
      ["ip", "::1", "ip.loopback"],
      ["ip", "0.0.0.0", "ip.unspecified"],
      ["cidr", "100.64.0.0/11", "cidr.reserved"],
      ["cidr", "100.64.0.0/10", "cidr.reserved"],
      ["ip", "100.70.1.1", "ip.reserved"],
      ["ip", "100.100.111.1", "ip.reserved"],
      ["cidr", "fd00:2021:1111::/48", "cidr.reserved"],
      ["ip", "::ffff:10.0.0.1", "ip.ipv4_mapped"],
      ["ip", "10.0.0.1:22", "ip.port"],
      ["ip", "10.0.0.0/8", "ip.prefix_length"],
      ["ip", "10.0.0.256", "ip.invalid"],
      ["cidr", "10.0.0.0", "cidr.prefix_length_missing"],
      ["cidr", "10.0.0.0/33", "cidr.prefix_length"],
    ] as const) {
      await refused({ type, name: address, address, site_ids: [site] }, "address", code);
    }
  });

  run("merges port filters and refuses overlapping ranges, ports out of range, and ports on icmp", async () => {
    const merged = await create({ type: "dns", name: "ports", address: "ports.example.com", filters: [{ protocol: "tcp", ports: ["80", "81-90", "22"] }] });
    expect(merged.status).toBe(201);
    expect(merged.body.filters).toEqual([{ protocol: "tcp", ports: ["22", "80-90"] }]);
    const every = await create({ type: "dns", name: "all ports", address: "all.example.com", filters: [{ protocol: "udp", ports: ["1-1000", "1001-65535"] }] });
    expect(every.body.filters).toEqual([{ protocol: "udp", ports: [] }]);
    const base = { type: "dns", name: "f", address: "f.example.com", site_ids: [site] };
    await refused({ ...base, filters: [{ protocol: "tcp", ports: ["8000-8080", "8080"] }] }, "filters/0/ports/1", "port.overlap");
    await refused({ ...base, filters: [{ protocol: "udp", ports: ["100-200", "150-160"] }] }, "filters/0/ports/1", "port.overlap");
    await refused({ ...base, filters: [{ protocol: "tcp", ports: ["70000"] }] }, "filters/0/ports/0", "port.out_of_range");
    await refused({ ...base, filters: [{ protocol: "tcp", ports: ["90-80"] }] }, "filters/0/ports/0", "port.inverted_range");
    await refused({ ...base, filters: [{ protocol: "icmp", ports: ["1"] }] }, "filters/0/ports", "filter.icmp_ports");
    await refused({ ...base, filters: [{ protocol: "tcp" }, { protocol: "tcp", ports: ["1"] }] }, "filters/1/protocol", "filter.duplicate_protocol");
    await refused({ ...base, filters: [{ protocol: "sctp" }] }, "filters/0/protocol", "filter.protocol");
  });

  run("keeps one Internet resource per account: a second is a 409, and it takes no address or filters", async () => {
    await refused({ type: "internet", name: "Internet", address: "0.0.0.0/0", site_ids: [] }, "address", "internet.address");
    await refused({ type: "internet", name: "Internet", filters: [{ protocol: "tcp" }] }, "filters", "internet.filters");
    const internet = await t.call("POST", "/api/resources", { body: { type: "internet", name: "Internet" } });
    expect(internet.status).toBe(201);
    expect(internet.body).toMatchObject({ type: "internet", address: null, filters: [], site_ids: [] });
    const before = await stored();
    const second = await t.call("POST", "/api/resources", { body: { type: "internet", name: "Internet 2", site_ids: [site] } });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe("internet.already_exists");
    expect(second.body.errors).toContainEqual(expect.objectContaining({ field: "type", code: "internet.already_exists" }));
    // Turning another resource into a second Internet resource is the same conflict.
    const other = (await dns("becomes-internet.example.com")).body;
    const turned = await t.call("PATCH", `/api/resources/${other.id}`, { body: { type: "internet", address: null } });
    expect(turned.status).toBe(409);
    expect((await t.call("GET", `/api/resources/${other.id}`)).body.type).toBe("dns");
    // Changing the Internet resource itself is not a second one.
    const renamed = await t.call("PATCH", `/api/resources/${internet.body.id}`, { body: { name: "The Internet", site_ids: [site] } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: "The Internet", site_ids: [site] });
    expect((await stored())[0]).toBe(before[0] + 1);
    // Another account has an Internet resource of its own.
    expect((await t.call("POST", "/api/resources", { token: t.b.token, body: { type: "internet", name: "Internet" } })).status).toBe(201);
  });

  run("validates a PATCH as the whole resource it leaves, and refused changes write nothing", async () => {
    const res = (await create({ type: "cidr", name: "net", address: "10.9.0.0/16", filters: [{ protocol: "tcp", ports: ["22"] }] })).body;
    const path = `/api/resources/${res.id}`;
    await refused({ type: "ip" }, "address", "ip.prefix_length", path, "PATCH");
    await refused({ type: "dns" }, "address", "dns.ip_literal", path, "PATCH");
    await refused({ address: "127.0.0.0/16" }, "address", "cidr.loopback", path, "PATCH");
    await refused({ filters: [{ protocol: "tcp", ports: ["22", "20-30"] }] }, "filters/0/ports/1", "port.overlap", path, "PATCH");
    await refused({ site_ids: [] }, "site_ids", "site_ids.required", path, "PATCH");
    await refused({ site_ids: [theirSite] }, "site_ids/0", "site_ids.not_found", path, "PATCH");
    await refused({ name: null }, "name", "name.required", path, "PATCH");
    await refused({ nmae: "typo" }, "nmae", "field.unknown", path, "PATCH");
    const unchanged = await t.call("GET", path);
    expect(unchanged.body).toMatchObject({ type: "cidr", name: "net", address: "10.9.0.0/16", filters: [{ protocol: "tcp", ports: ["22"] }], site_ids: [site] });
    const ok = await t.call("PATCH", path, { body: { address: "10.9.8.7/24", filters: [], address_description: "lab" } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ address: "10.9.8.0/24", filters: [], address_description: "lab", site_ids: [site] });
    expect(ok.body.notices[0].code).toBe("cidr.host_bits_masked");
    const retyped = await t.call("PATCH", path, { body: { type: "dns", address: "net.example.com", address_description: null } });
    expect(retyped.body).toMatchObject({ type: "dns", address: "net.example.com", address_description: null });
  });

  run("does not reach another account's sites or resources", async () => {
    const before = await stored();
    const bBefore = await stored(t.b);
    await refused({ type: "dns", name: "x", address: "x.example.com", site_ids: [theirSite] }, "site_ids/0", "site_ids.not_found");
    expect(await stored(t.b)).toEqual(bBefore);
    const theirs = (await t.call("POST", "/api/resources", { token: t.b.token, body: { type: "dns", name: "t", address: "t.example.com", site_ids: [theirSite] } })).body;
    expect(theirs.id).toBeDefined();
    const theirsBefore = await stored(t.b);
    expect((await t.call("GET", `/api/resources/${theirs.id}`)).status).toBe(404);
    expect((await t.call("PATCH", `/api/resources/${theirs.id}`, { body: { name: "mine" } })).status).toBe(404);
    expect((await t.call("DELETE", `/api/resources/${theirs.id}`)).status).toBe(404);
    expect((await t.call("GET", "/api/resources/not-a-uuid")).status).toBe(404);
    expect(await stored(t.b)).toEqual(theirsBefore);
    expect((await t.call("GET", `/api/resources/${theirs.id}`, { token: t.b.token })).body.name).toBe("t");
    expect(await stored()).toEqual(before);
  });

  run("pages through resources with a cursor: every resource once, in id order, with its sites", async () => {
    for (let i = 0; i < 5; i++) {
      expect((await create({ type: "dns", name: `page-${i}`, address: `page-${i}.example.com`, site_ids: i % 2 === 0 ? [site] : [site, site2] })).status).toBe(201);
    }
    const seen: { id: string; site_ids: string[] }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { data: { id: string; site_ids: string[] }[]; next_cursor: string | null } } = await t.call(
        "GET",
        `/api/resources?limit=4${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(4);
      seen.push(...res.body.data);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(seen.map((r) => r.id)).toEqual((await t.a.scope.repository(ResourceEntity).list()).map((r) => r.id).sort());
    const links = await t.a.scope.links(ResourceSiteEntity).list();
    for (const r of seen) expect(r.site_ids).toEqual(links.filter((l) => l.resourceId === r.id).map((l) => l.siteId).sort());
    expect((await t.call("GET", "/api/resources?cursor=nope")).status).toBe(422);
  });
});
