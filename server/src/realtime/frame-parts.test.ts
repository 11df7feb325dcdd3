// The authorization payloads written from parts are the text JSON.stringify writes for the same
// objects, over random devices, resources and secrets (strings with quotes, backslashes, control and
// non-ASCII characters included), and a device row replaced gets new parts.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import type { Device } from "../database/entities.js";
import { authorizationCreatedJson, createAuthorizationJson, DeviceParts, pairParts } from "./frame-parts.js";

beforeEach(reportSeedOnFailure);

const ALPHABET = ['a', 'Z', '0', '"', "\\", "/", "\n", "\u0001", "\u00e9", "\u2028", "\u{1f600}", " ", "-"];
const text = (r: Rng): string => Array.from({ length: r.int(0, 12) }, () => r.pick(ALPHABET)).join("");

function device(r: Rng): Device {
  return {
    accountId: text(r),
    id: text(r),
    kind: r.pick(["client", "gateway"] as const),
    actorId: null,
    siteId: r.bool() ? text(r) : null,
    name: text(r),
    publicKey: text(r),
    ipv4: text(r),
    ipv6: text(r),
    verifiedAt: null,
    lastSeenAt: null,
    createdAt: new Date(0),
  } as Device;
}

describe("authorization payloads from parts", () => {
  it("are exactly JSON.stringify of the same objects", () => {
    const r = rng("frame parts");
    const parts = new DeviceParts();
    for (let i = 0; i < 500; i++) {
      const client = device(r);
      const gateway = device(r);
      const secrets = { presharedKey: text(r), clientIce: { username: text(r), password: text(r) }, gatewayIce: { username: text(r), password: text(r) } };
      const resource = { id: text(r), type: "dns", name: text(r), address: r.bool() ? text(r) : null, filters: r.bool() ? [] : [{ protocol: "tcp", ports: [{ from: r.int(1, 100), to: r.int(100, 65535) }], note: text(r) }] };
      const id = text(r);
      const expiresAt = text(r);
      const pair = pairParts(secrets);
      expect(createAuthorizationJson(id, parts.client(client), pair, JSON.stringify(resource), expiresAt), r.where()).toBe(
        JSON.stringify({
          authorization_id: id,
          client: { id: client.id, public_key: client.publicKey, ipv4: client.ipv4, ipv6: client.ipv6, preshared_key: secrets.presharedKey },
          resource,
          client_ice: secrets.clientIce,
          gateway_ice: secrets.gatewayIce,
          expires_at: expiresAt,
        }),
      );
      expect(authorizationCreatedJson(resource.id, parts.gateway(gateway), pair, expiresAt), r.where()).toBe(
        JSON.stringify({
          resource_id: resource.id,
          gateway_id: gateway.id,
          gateway_public_key: gateway.publicKey,
          gateway_ipv4: gateway.ipv4,
          gateway_ipv6: gateway.ipv6,
          site_id: gateway.siteId,
          preshared_key: secrets.presharedKey,
          client_ice: secrets.clientIce,
          gateway_ice: secrets.gatewayIce,
          expires_at: expiresAt,
        }),
      );
    }
  });

  it("a device row replaced gets new parts; the same row keeps them", () => {
    const parts = new DeviceParts();
    const before = device(rng("replaced"));
    const first = parts.gateway(before);
    expect(parts.gateway(before)).toBe(first);
    const after = { ...before, ipv4: "100.64.0.9" };
    expect(parts.gateway(after)).toContain('"gateway_ipv4":"100.64.0.9"');
    expect(parts.client(after)).toContain('"ipv4":"100.64.0.9"');
  });
});
