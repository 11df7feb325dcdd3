// ClientDevice's own wiring (the simulator's scenarios drive the rest of it end to end): a packet for
// a resource asks the portal, the answer connects the gateway, and keys no tunnel can be made with
// fail the authorization instead of throwing.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { PROTOCOL_UDP } from "../ip/constants.js";
import { buildPacket } from "../ip/testing.js";
import type { ClientAuthorizationCreated } from "../portal/schema.js";
import { encodeBase64 } from "../wireguard/base64.js";
import { StaticIdentity } from "../wireguard/noise.js";
import { ClientDevice, type ClientDeviceOutput } from "./device.js";

beforeEach(reportSeedOnFailure);

const EPOCH = Date.parse("2026-01-01T00:00:00Z");
const RESOURCE = "b3000000-0000-4000-8000-000000000003";
const GATEWAY = "a2000000-0000-4000-8000-000000000002";

function device(): ClientDevice {
  const r = rng("client device");
  const d = new ClientDevice({
    node: { privateKey: r.bytes(32), port: 51820, random: (n) => r.bytes(n), wallClockAtZeroNanos: BigInt(EPOCH) * 1_000_000n },
    state: { wallClockAtZeroMs: EPOCH, random: (n) => r.bytes(n) },
  });
  d.handlePortal(0, {
    event: "init",
    payload: {
      interface: { ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2", upstream_dns: [] },
      resources: [{ id: RESOURCE, type: "cidr", name: "net", address: "10.0.0.0/8", address_description: null, sites: [{ id: "d4000000-0000-4000-8000-000000000004", name: "hq" }], filters: [] }],
      relays: [],
    },
  });
  return d;
}

function outputs(d: ClientDevice): ClientDeviceOutput[] {
  const out: ClientDeviceOutput[] = [];
  for (let o = d.pollOutput(); o; o = d.pollOutput()) out.push(o);
  return out;
}

function created(gatewayKey: string): ClientAuthorizationCreated {
  const r = rng("secrets");
  return {
    resource_id: RESOURCE, gateway_id: GATEWAY, gateway_public_key: gatewayKey, gateway_ipv4: "100.64.0.1", gateway_ipv6: "fd00:2021:1111::1",
    site_id: "d4000000-0000-4000-8000-000000000004", preshared_key: encodeBase64(r.bytes(32)),
    client_ice: { username: "ufrag", password: "p".repeat(22) }, gateway_ice: { username: "gfrag", password: "q".repeat(22) }, expires_at: "2026-01-02T00:00:00Z",
  };
}

const packet = (): Uint8Array => buildPacket({ src: "100.64.0.2", dst: "10.1.2.3", protocol: PROTOCOL_UDP, srcPort: 4000, dstPort: 53, payload: new Uint8Array(8) });

describe("ClientDevice", () => {
  it("asks the portal for a resource's first packet, and connects the gateway it names", () => {
    const d = device();
    outputs(d);
    d.handleTunPacket(1, packet());
    expect(outputs(d).filter((o) => o.type === "portal")).toEqual([{ type: "portal", message: { event: "request_authorization", payload: { resource_id: RESOURCE } } }]);
    d.handlePortal(2, { event: "authorization_created", payload: created(encodeBase64(new StaticIdentity(rng("gateway key").bytes(32)).publicKey)) });
    expect(d.node.peerIds).toEqual([GATEWAY]);
  });

  it("a gateway key no tunnel can be made with is refused with the reason, and nothing throws", () => {
    const d = device();
    outputs(d);
    d.handleTunPacket(1, packet());
    outputs(d);
    // All zeros: a point of low order.
    d.handlePortal(2, { event: "authorization_created", payload: created("A".repeat(43) + "=") });
    expect(outputs(d).filter((o) => o.type === "gateway_refused")).toEqual([{ type: "gateway_refused", gatewayId: GATEWAY, reason: "the public key is of low order" }]);
    expect(d.node.peerIds).toEqual([]);
    d.handleTunPacket(3, packet());
    expect(d.pollTransmit()).toBeUndefined();
  });
});
