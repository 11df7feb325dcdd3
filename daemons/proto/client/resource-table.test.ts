// The client's resource table against a linear scan over every route, on seeded random resources
// and addresses near their prefixes; plus the cases a user would notice.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { formatAddress as formatIp } from "../stun/attributes.js";
import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";
import type { ClientResource } from "../portal/schema.js";
import { ResourceTable } from "./resource-table.js";

beforeEach(reportSeedOnFailure);

const parseIp = (text: string): Uint8Array | undefined => parseIpv4(text) ?? parseIpv6(text);
const resource = (id: string, type: ClientResource["type"], address: string | null): ClientResource => ({ id, type, name: id, address, address_description: null, sites: [], filters: [] });

/** The slow oracle: every route checked on every lookup. */
function linearLookup(routes: { address: Uint8Array; length: number; id: string }[], address: Uint8Array): string | undefined {
  let best: { length: number; id: string } | undefined;
  for (const route of routes) {
    if (route.address.length !== address.length) continue;
    let inside = true;
    for (let bit = 0; bit < route.length && inside; bit++) {
      const mask = 0x80 >> bit % 8;
      if ((route.address[bit >> 3]! & mask) !== (address[bit >> 3]! & mask)) inside = false;
    }
    if (!inside) continue;
    if (best === undefined || route.length > best.length || (route.length === best.length && route.id < best.id)) best = { length: route.length, id: route.id };
  }
  return best?.id;
}

/** An address inside or just outside a prefix: its bits, then some flipped after `length`, sometimes one before. */
function near(r: Rng, address: Uint8Array, length: number): Uint8Array {
  const out = Uint8Array.from(address);
  for (let bit = length; bit < out.length * 8; bit++) if (r.bool()) out[bit >> 3]! ^= 0x80 >> bit % 8;
  if (length > 0 && r.bool(0.3)) {
    const bit = r.int(0, length - 1);
    out[bit >> 3]! ^= 0x80 >> bit % 8;
  }
  return out;
}

describe("ResourceTable", () => {
  it("picks the longest prefix, then the smaller id; the Internet resource only while switched on", () => {
    const table = new ResourceTable();
    const resources = [
      resource("b-wide", "cidr", "10.0.0.0/8"),
      resource("c-narrow", "cidr", "10.1.0.0/16"),
      resource("a-narrow-too", "cidr", "10.1.0.0/16"),
      resource("d-host", "ip", "10.1.2.3"),
      resource("e-v6", "cidr", "2001:db8::/32"),
      resource("f-internet", "internet", null),
      resource("g-dns", "dns", "*.corp.example"),
    ];
    table.setResources(resources, false);
    const at = (text: string): string | undefined => table.lookup(parseIp(text)!);
    expect(at("10.9.9.9")).toBe("b-wide");
    expect(at("10.1.9.9")).toBe("a-narrow-too");
    expect(at("10.1.2.3")).toBe("d-host");
    expect(at("2001:db8:5::1")).toBe("e-v6");
    expect(at("192.0.2.1")).toBeUndefined();
    table.setResources(resources, true);
    expect(at("192.0.2.1")).toBe("f-internet");
    expect(at("2001:db9::1")).toBe("f-internet");
    expect(at("10.9.9.9")).toBe("b-wide");

    // Proxy addresses route to their DNS resource, go with it, and come back with it.
    table.mapProxy("100.96.0.1", "g-dns");
    table.mapProxy("fd00:2021:1111:8000::1", "g-dns");
    expect(at("100.96.0.1")).toBe("g-dns");
    expect(at("fd00:2021:1111:8000::1")).toBe("g-dns");
    table.setResources(resources.filter((r) => r.id !== "g-dns"), false);
    expect(at("100.96.0.1")).toBeUndefined();
    table.setResources(resources, false);
    expect(at("100.96.0.1")).toBe("g-dns");
    expect(at("100.96.0.2")).toBeUndefined();
  });

  it("agrees with a linear scan over seeded random resources", () => {
    const r = rng("client resource table");
    for (let round = 0; round < 40; round++) {
      const routes: { address: Uint8Array; length: number; id: string }[] = [];
      const resources: ClientResource[] = [];
      const count = r.int(0, 60);
      for (let i = 0; i < count; i++) {
        const id = `r${r.int(0, 999).toString().padStart(3, "0")}-${i}`;
        const v4 = r.bool();
        // Few distinct high bits, so prefixes nest and collide.
        const address = r.bytes(v4 ? 4 : 16);
        address[0] = r.pick([10, 172, 0x20]);
        const length = r.int(0, v4 ? 32 : 128);
        if (length === (v4 ? 32 : 128) && r.bool()) {
          resources.push(resource(id, "ip", formatIp(address)));
        } else {
          for (let bit = length; bit < address.length * 8; bit++) address[bit >> 3]! &= ~(0x80 >> bit % 8);
          resources.push(resource(id, "cidr", `${formatIp(address)}/${length}`));
        }
        routes.push({ address, length: resources.at(-1)!.type === "ip" ? address.length * 8 : length, id });
      }
      const table = new ResourceTable();
      table.setResources(resources, false);
      for (let k = 0; k < 200; k++) {
        const route = routes.length > 0 && r.bool(0.8) ? r.pick(routes) : undefined;
        const address = route !== undefined ? near(r, route.address, route.length) : r.bytes(r.bool() ? 4 : 16);
        expect(table.lookup(address), r.where(`${formatIp(address)} among ${resources.map((x) => `${x.id}=${x.address}`).join(" ")}`)).toBe(linearLookup(routes, address));
      }
    }
  });
});
