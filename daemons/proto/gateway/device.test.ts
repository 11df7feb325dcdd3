// GatewayDevice's own wiring (the simulator's scenarios drive the rest of it end to end): the portal
// hears of every authorization it asked for, installed or not and why; relays from init are allocated
// on; candidates that come before their client's connection wait for it.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import type { AuthorizationForGateway, Relay } from "../portal/schema.js";
import { encodeBase64 } from "../wireguard/base64.js";
import { StaticIdentity } from "../wireguard/noise.js";
import { GatewayDevice, type GatewayDeviceOutput } from "./device.js";

beforeEach(reportSeedOnFailure);

const EPOCH = Date.parse("2026-01-01T00:00:00Z");
const RELAY: Relay = { id: "e5000000-0000-4000-8000-000000000005", type: "turn", addr: "192.0.2.10:3478", username: "1900000000:g", password: "secret", expires_at: "2030-01-01T00:00:00Z" };

const CLIENT_KEY = encodeBase64(new StaticIdentity(rng("client key").bytes(32)).publicKey);
const PSK = encodeBase64(rng("psk").bytes(32));
/** All zeros: a point of low order, with which no WireGuard session can be keyed. */
const LOW_ORDER_KEY = "A".repeat(43) + "=";

function authorization(id: number, expiresAt = "2026-01-02T00:00:00Z", address = "10.0.0.0/8", publicKey = CLIENT_KEY): AuthorizationForGateway {
  return {
    authorization_id: `f7000000-0000-4000-8000-${String(id).padStart(12, "0")}`,
    client: { id: "c1000000-0000-4000-8000-000000000001", public_key: publicKey, ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2", preshared_key: PSK },
    resource: { id: `b3000000-0000-4000-8000-${String(id).padStart(12, "0")}`, type: "cidr", name: "net", address, filters: [] },
    client_ice: { username: "ufrag", password: "p".repeat(22) },
    gateway_ice: { username: "gfrag", password: "q".repeat(22) },
    expires_at: expiresAt,
  };
}

function device(): GatewayDevice {
  const r = rng("gateway device");
  return new GatewayDevice({
    node: { privateKey: r.bytes(32), port: 51820, random: (n) => r.bytes(n), wallClockAtZeroNanos: BigInt(EPOCH) * 1_000_000n },
    state: { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1", epochMs: EPOCH, random: (n) => r.bytes(n) },
  });
}

function outputs(d: GatewayDevice): GatewayDeviceOutput[] {
  const out: GatewayDeviceOutput[] = [];
  for (let o = d.pollOutput(); o; o = d.pollOutput()) out.push(o);
  return out;
}

describe("GatewayDevice", () => {
  it("answers every create_authorization: created, or failed with the reason", () => {
    const d = device();
    d.handlePortal(0, { event: "create_authorization", payload: authorization(1) });
    d.handlePortal(0, { event: "create_authorization", payload: authorization(2, "2025-01-01T00:00:00Z") });
    d.handlePortal(0, { event: "create_authorization", payload: authorization(3, undefined, "not a prefix") });
    d.handlePortal(0, { event: "create_authorization", payload: authorization(4, undefined, undefined, LOW_ORDER_KEY) });
    const portal = outputs(d).flatMap((o) => (o.type === "portal" ? [o.message] : []));
    expect(portal).toEqual([
      { event: "authorization_created", payload: { authorization_id: authorization(1).authorization_id } },
      { event: "authorization_creation_failed", payload: { authorization_id: authorization(2).authorization_id, reason: "already expired" } },
      { event: "authorization_creation_failed", payload: { authorization_id: authorization(3).authorization_id, reason: "resource address unusable" } },
      { event: "authorization_creation_failed", payload: { authorization_id: authorization(4).authorization_id, reason: "client keys unusable: the public key is of low order" } },
    ]);
    expect(d.node.peerIds).toEqual(["c1000000-0000-4000-8000-000000000001"]);
  });

  it("announces its candidates again when a client it is connected to asks again (it may be a restarted process that lost them)", () => {
    const d = device();
    d.setLocalAddresses(0, ["192.0.2.50"]);
    outputs(d);
    d.handlePortal(0, { event: "create_authorization", payload: authorization(1) });
    const first = outputs(d).flatMap((o) => (o.type === "portal" ? [o.message] : []));
    const candidates = first.filter((m) => m.event === "ice_candidates");
    expect(candidates.length).toBeGreaterThan(0);
    d.handlePortal(10, { event: "create_authorization", payload: authorization(5) });
    const again = outputs(d).flatMap((o) => (o.type === "portal" ? [o.message] : []));
    expect(again).toEqual([{ event: "authorization_created", payload: { authorization_id: authorization(5).authorization_id } }, ...candidates]);
    // A refused one announces nothing.
    d.handlePortal(20, { event: "create_authorization", payload: authorization(6, "2025-01-01T00:00:00Z") });
    expect(outputs(d).flatMap((o) => (o.type === "portal" ? [o.message.event] : []))).toEqual(["authorization_creation_failed"]);
  });

  it("init re-syncs (reporting what it could not install) and allocates on the relays at once", () => {
    const d = device();
    d.handlePortal(0, { event: "init", payload: { interface: { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1", upstream_dns: [] }, relays: [RELAY], authorizations: [authorization(1), authorization(2, "2025-01-01T00:00:00Z"), authorization(3, undefined, undefined, LOW_ORDER_KEY)] } });
    const portal = outputs(d).flatMap((o) => (o.type === "portal" ? [o.message] : []));
    expect(portal).toEqual([
      { event: "authorization_creation_failed", payload: { authorization_id: authorization(3).authorization_id, reason: "client keys unusable: the public key is of low order" } },
      { event: "authorization_creation_failed", payload: { authorization_id: authorization(2).authorization_id, reason: "already expired" } },
    ]);
    expect(d.state.authorizationIds()).toEqual([authorization(1).authorization_id]);
    const sent = [];
    for (let t = d.pollTransmit(); t; t = d.pollTransmit()) sent.push(`${t.to.address}:${t.to.port}`);
    expect(sent).toContain("192.0.2.10:3478");
  });

  it("keeps candidates that come before the client's connection, and gives them to it", () => {
    const d = device();
    d.setLocalAddresses(0, ["192.168.2.10"]);
    d.handlePortal(0, { event: "ice_candidates", payload: { client_id: "c1000000-0000-4000-8000-000000000001", candidates: ["candidate:1 1 udp 2130706431 192.168.1.10 51820 typ host"] } });
    for (let t = d.pollTransmit(); t; t = d.pollTransmit());
    d.handlePortal(1, { event: "create_authorization", payload: authorization(1) });
    const checks = [];
    for (let t = d.pollTransmit(); t; t = d.pollTransmit()) checks.push(`${t.to.address}:${t.to.port}`);
    // The gateway's agent is controlled, but it checks the candidates it has (triggered or ordinary).
    d.handleTimeout(1_000);
    for (let t = d.pollTransmit(); t; t = d.pollTransmit()) checks.push(`${t.to.address}:${t.to.port}`);
    expect(checks).toContain("192.168.1.10:51820");
  });
});
