// The client's two longest-prefix tables must pick the same resource for every destination: the
// sans-IO ResourceTable (daemons/proto/client), which ClientState consults once per new flow, and the
// engine's allowed-IPs trie, which the client daemon's data path consults per packet. The engine's
// table is filled here as the daemon fills it: every resource's routes, the peer being the resource's
// index, inserted in descending id order so that of two equal prefixes the smaller id is written last
// and wins, as ResourceTable's rule says.
//
// Seeded random resource sets (ip, cidr with host bits set, the Internet resource on and off, DNS
// proxy addresses, IPv4-mapped IPv6 prefixes) and lookups at and around every prefix edge, both
// builds of the engine.

import { beforeEach, describe, expect, it } from "vitest";
import { Engine } from "../daemons/engine/index.js";
import { ResourceTable } from "../daemons/proto/client/resource-table.js";
import { formatIp } from "../daemons/proto/ip/address.js";
import type { ClientResource, ResourceType } from "../daemons/proto/portal/schema.js";
import { parsePrefix } from "../daemons/proto/wireguard/uapi.js";
import { BUILDS } from "./support/engine.js";
import { reportSeedOnFailure, rng, type Rng } from "./support/prng.js";

beforeEach(reportSeedOnFailure);

const resource = (id: string, type: ResourceType, address: string | null): ClientResource => ({
  id, type, name: id, address, address_description: null, sites: [], filters: [],
});

/** An address near a few shared networks, so prefixes nest and collide often. */
function nearAddress(r: Rng, v6: boolean): Uint8Array {
  if (!v6) return Uint8Array.of(10, r.pick([0, 1, 255]), r.int(0, 3), r.int(0, 255));
  const out = new Uint8Array(16);
  if (r.bool(0.2)) {
    // IPv4-mapped: ::ffff:10.x.y.z
    out[10] = 0xff;
    out[11] = 0xff;
    out.set(nearAddress(r, false), 12);
  } else {
    out.set([0xfd, 0x00, 0, r.pick([0, 1])], 0);
    out[15] = r.int(0, 255);
    out[14] = r.int(0, 3);
  }
  return out;
}

/** A prefix length, biased towards the edges that matter. */
function prefixLength(r: Rng, bits: number): number {
  return r.bool(0.5) ? r.pick([0, 1, 8, 16, 24, bits - 8, bits - 1, bits]) : r.int(0, bits);
}

const hostRoute = (address: string): string => `${address}/${address.includes(":") ? 128 : 32}`;

interface Table {
  resources: ClientResource[];
  proxies: { address: string; resourceId: string }[];
  internet: boolean;
}

function randomTable(r: Rng): Table {
  const resources: ClientResource[] = [];
  const count = r.int(1, 24);
  for (let i = 0; i < count; i++) {
    // Ids collide in order with their index only by chance: a random id, so the tie rule is exercised.
    const id = `r-${r.int(0, 99).toString().padStart(2, "0")}-${i}`;
    const v6 = r.bool(0.4);
    const roll = r.int(0, 9);
    if (roll < 4) resources.push(resource(id, "ip", formatIp(nearAddress(r, v6))));
    else if (roll < 8) resources.push(resource(id, "cidr", `${formatIp(nearAddress(r, v6))}/${prefixLength(r, v6 ? 128 : 32)}`));
    else if (roll < 9) resources.push(resource(id, "dns", `*.${id}.example`));
    else resources.push(resource(id, "internet", null));
  }
  const dns = resources.filter((x) => x.type === "dns");
  // The stub resolver never hands one proxy address to two names: each address is mapped once.
  const proxies = new Map<string, string>();
  if (dns.length > 0) for (let i = r.int(0, 12); i > 0; i--) proxies.set(formatIp(nearAddress(r, r.bool(0.5))), r.pick(dns).id);
  return { resources, proxies: [...proxies].map(([address, resourceId]) => ({ address, resourceId })), internet: r.bool(0.5) };
}

/** The engine's table, filled as the client daemon does; returns resource index → id. */
function fillEngine(engine: Engine, table: Table): string[] {
  engine.routes.clear();
  const ids = table.resources.map((x) => x.id);
  const order = [...table.resources.keys()].sort((a, b) => (ids[a]! < ids[b]! ? 1 : ids[a]! > ids[b]! ? -1 : 0));
  for (const index of order) {
    const x = table.resources[index]!;
    if (x.type === "ip") engine.routes.insert(hostRoute(x.address!), index);
    else if (x.type === "cidr") engine.routes.insert(x.address!, index);
    else if (x.type === "internet" && table.internet) {
      engine.routes.insert("0.0.0.0/0", index);
      engine.routes.insert("::/0", index);
    } else if (x.type === "dns") {
      for (const p of table.proxies) if (p.resourceId === x.id) engine.routes.insert(hostRoute(p.address), index);
    }
  }
  return ids;
}

function probes(r: Rng, table: Table): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const x of table.resources) {
    if (x.address === null || x.type === "dns") continue;
    const p = parsePrefix(x.type === "ip" ? hostRoute(x.address) : x.address);
    if (!p) continue;
    out.push(p.address.slice());
    // The last address inside, and the first outside on either side.
    const last = p.address.slice();
    for (let bit = p.length; bit < last.length * 8; bit++) last[bit >> 3]! |= 0x80 >> (bit & 7);
    out.push(last, step(last, 1), step(p.address, -1));
  }
  for (const p of table.proxies) out.push(parsePrefix(hostRoute(p.address))!.address);
  for (let i = 0; i < 64; i++) out.push(nearAddress(r, r.bool(0.5)));
  // A packet is looked up by its own version: an IPv6 packet to a mapped address meets only IPv6
  // routes (::/0). The binding's lookup() unmaps such an address, which the data path never does, so
  // mapped destinations are left out here; mapped prefixes stay in the resources.
  return out.filter((a) => !(a.length === 16 && a[10] === 0xff && a[11] === 0xff && a.subarray(0, 10).every((b) => b === 0)));
}

function step(address: Uint8Array, by: 1 | -1): Uint8Array {
  const out = address.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    const v = out[i]! + by;
    out[i] = v & 0xff;
    if (v >= 0 && v <= 0xff) break;
  }
  return out;
}

describe.each(BUILDS)("client routing: ResourceTable and the engine's table agree (%s build)", (build) => {
  it("pick the same resource for every destination over hundreds of random resource sets", () => {
    const r = rng(`client routes ${build}`);
    const engine = Engine.create({ build, maxRoutes: 256 });
    let lookups = 0;
    let routed = 0;
    for (let round = 0; round < 300; round++) {
      const table = randomTable(r);
      const oracle = new ResourceTable();
      oracle.setResources(table.resources, table.internet);
      for (const p of table.proxies) oracle.mapProxy(p.address, p.resourceId);
      const ids = fillEngine(engine, table);
      for (const address of probes(r, table)) {
        const index = engine.routes.lookup(address);
        const got = index === undefined ? undefined : ids[index];
        const want = oracle.lookup(address);
        expect(got, r.where(`round ${round}: ${formatIp(address)} in ${JSON.stringify(table)}`)).toBe(want);
        lookups++;
        if (want !== undefined) routed++;
      }
    }
    // The sets are dense enough that most probes hit something and some miss.
    expect(routed).toBeGreaterThan(lookups / 3);
    expect(routed).toBeLessThan(lookups);
  });
});
