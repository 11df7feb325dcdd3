// The client's authorization per resource in virtual time: one request however many packets wait,
// held packets released in order or refused, bounds on what is held, expiry and revocation.

import { describe, expect, it } from "vitest";
import type { ClientAuthorizationCreated } from "../portal/schema.js";
import { REQUEST_TIMEOUT_MS, ResourceAccess, type AccessEvent } from "./access.js";

const ZERO = Date.UTC(2026, 0, 1);
const drain = (access: ResourceAccess): AccessEvent[] => {
  const events: AccessEvent[] = [];
  for (let e = access.pollEvent(); e !== undefined; e = access.pollEvent()) events.push(e);
  return events;
};
const created = (resourceId: string, gatewayId: string, expiresAtMs: number): ClientAuthorizationCreated => ({
  resource_id: resourceId,
  gateway_id: gatewayId,
  gateway_public_key: "k".repeat(43) + "=",
  gateway_ipv4: "100.64.0.2",
  gateway_ipv6: "fd00:2021:1111::2",
  site_id: "site",
  preshared_key: "p".repeat(43) + "=",
  client_ice: { username: "cuser", password: "c".repeat(22) },
  gateway_ice: { username: "guser", password: "g".repeat(22) },
  expires_at: new Date(ZERO + expiresAtMs).toISOString(),
});
const packet = (n: number, size = 100): Uint8Array => new Uint8Array(size).fill(n);

describe("ResourceAccess", () => {
  it("asks once, holds the packets, and releases them in order when authorized", () => {
    const access = new ResourceAccess({ wallClockAtZeroMs: ZERO });
    expect(access.packetFor(0, "r1", packet(1))).toBe("held");
    expect(access.packetFor(5, "r1", packet(2))).toBe("held");
    expect(drain(access)).toEqual([{ type: "request", resourceId: "r1", connectedGatewayIds: [] }]);
    access.authorizationCreated(10, created("r1", "g1", 60_000));
    const events = drain(access);
    expect(events.map((e) => e.type)).toEqual(["authorized", "release"]);
    expect(events[1]).toMatchObject({ resourceId: "r1", gatewayId: "g1", packets: [packet(1), packet(2)] });
    expect(access.packetFor(20, "r1", packet(3))).toBe("send");
    expect(access.connectedGateways(20)).toEqual(["g1"]);
    // A second resource's request names the gateway already in use.
    access.resolved(30, "r2");
    expect(drain(access)).toEqual([{ type: "request", resourceId: "r2", connectedGatewayIds: ["g1"] }]);
  });

  it("refuses the held packets on a denial and on no answer, and asks again after", () => {
    const access = new ResourceAccess({ wallClockAtZeroMs: ZERO });
    access.packetFor(0, "r1", packet(1));
    drain(access);
    access.authorizationFailed(5, { resource_id: "r1", reason: "denied" });
    expect(drain(access)).toEqual([{ type: "refused", resourceId: "r1", reason: "denied", packets: [packet(1)] }]);
    access.packetFor(6, "r1", packet(2));
    expect(drain(access).map((e) => e.type)).toEqual(["request"]);
    expect(access.pollTimeout()).toBe(6 + REQUEST_TIMEOUT_MS);
    access.handleTimeout(6 + REQUEST_TIMEOUT_MS - 1);
    expect(drain(access)).toEqual([]);
    access.handleTimeout(6 + REQUEST_TIMEOUT_MS);
    expect(drain(access)).toEqual([{ type: "refused", resourceId: "r1", reason: "timeout", packets: [packet(2)] }]);
    expect(access.pollTimeout()).toBeUndefined();
  });

  it("holds a bounded number of packets per resource and bytes in all, dropping the oldest", () => {
    const access = new ResourceAccess({ wallClockAtZeroMs: ZERO, maxHeldPackets: 3, maxHeldBytes: 1000 });
    for (let i = 1; i <= 5; i++) access.packetFor(i, "r1", packet(i));
    expect(access.droppedHeld).toBe(2);
    // 300 bytes held for r1; r2 may hold up to the byte bound, then its own oldest go.
    for (let i = 1; i <= 8; i++) access.packetFor(10 + i, "r2", packet(100 + i));
    expect(access.droppedHeld).toBe(2 + 5);
    expect(access.packetFor(20, "r3", packet(9, 500))).toBe("dropped");
    drain(access);
    access.authorizationCreated(30, created("r1", "g1", 60_000));
    expect(drain(access).find((e) => e.type === "release")).toMatchObject({ packets: [packet(3), packet(4), packet(5)] });
    // r1's bytes are free again: r3 may hold now.
    expect(access.packetFor(31, "r3", packet(9, 500))).toBe("held");
  });

  it("an authorization ends at its expiry and on resource_deleted; a new gateway revokes the old one", () => {
    const access = new ResourceAccess({ wallClockAtZeroMs: ZERO });
    access.resolved(0, "r1");
    access.authorizationCreated(1, created("r1", "g1", 5_000));
    drain(access);
    expect(access.pollTimeout()).toBe(5_000);
    expect(access.packetFor(4_999, "r1", packet(1))).toBe("send");
    access.handleTimeout(5_000);
    expect(drain(access)).toEqual([{ type: "revoked", resourceId: "r1", gatewayId: "g1" }]);
    expect(access.packetFor(5_000, "r1", packet(2))).toBe("held");
    access.authorizationCreated(5_001, created("r1", "g1", 50_000));
    drain(access);
    access.resolved(6_000, "r1");
    access.authorizationCreated(6_001, created("r1", "g2", 60_000));
    expect(drain(access).map((e) => e.type === "revoked" ? `revoked ${e.gatewayId}` : e.type)).toEqual(["revoked g1", "authorized"]);
    access.resourceDeleted(7_000, "r1");
    expect(drain(access)).toEqual([{ type: "revoked", resourceId: "r1", gatewayId: "g2" }]);
    expect(access.gatewayOf(7_000, "r1")).toBeUndefined();
    // An answer whose expiry is already past counts as refused.
    access.packetFor(8_000, "r1", packet(3));
    drain(access);
    access.authorizationCreated(8_001, created("r1", "g1", 8_000));
    expect(drain(access)).toEqual([{ type: "refused", resourceId: "r1", reason: "expired", packets: [packet(3)] }]);
  });

  it("a failure about an authorization held (its gateway went offline) ends it without a refusal; the next packet asks again", () => {
    const access = new ResourceAccess({ wallClockAtZeroMs: ZERO });
    access.resolved(0, "r1");
    access.resolved(0, "r2");
    access.resolved(0, "r3");
    access.authorizationCreated(1, created("r1", "g1", 60_000));
    access.authorizationCreated(1, created("r2", "g1", 60_000));
    access.authorizationCreated(1, created("r3", "g2", 60_000));
    drain(access);
    access.authorizationFailed(10, { resource_id: "r1", reason: "offline" });
    access.authorizationFailed(10, { resource_id: "r2", reason: "offline" });
    expect(drain(access)).toEqual([
      { type: "revoked", resourceId: "r1", gatewayId: "g1" },
      { type: "revoked", resourceId: "r2", gatewayId: "g1" },
    ]);
    expect(access.gatewayOf(11, "r1")).toBeUndefined();
    expect(access.packetFor(11, "r3", packet(1))).toBe("send");
    expect(access.packetFor(11, "r1", packet(2))).toBe("held");
    expect(drain(access)).toEqual([{ type: "request", resourceId: "r1", connectedGatewayIds: ["g2"] }]);
    // About a resource neither held nor asked for: nothing.
    access.authorizationFailed(12, { resource_id: "r9", reason: "offline" });
    expect(drain(access)).toEqual([]);
  });

  it("with a refusal holdoff, refuses packets at once without asking until it has passed", () => {
    const access = new ResourceAccess({ wallClockAtZeroMs: ZERO, refusalHoldoffMs: 5_000 });
    access.packetFor(0, "r1", packet(1));
    drain(access);
    access.authorizationFailed(10, { resource_id: "r1", reason: "denied" });
    drain(access);
    expect(access.packetFor(11, "r1", packet(2))).toBe("refused");
    access.resolved(12, "r1");
    expect(access.packetFor(5_009, "r1", packet(3))).toBe("refused");
    expect(drain(access)).toEqual([]);
    expect(access.packetFor(5_010, "r1", packet(4))).toBe("held");
    expect(drain(access).map((e) => e.type)).toEqual(["request"]);
    // A timeout starts the holdoff too; resource_deleted ends it.
    access.handleTimeout(5_010 + REQUEST_TIMEOUT_MS);
    drain(access);
    expect(access.packetFor(5_011 + REQUEST_TIMEOUT_MS, "r1", packet(5))).toBe("refused");
    access.resourceDeleted(5_012 + REQUEST_TIMEOUT_MS, "r1");
    expect(access.packetFor(5_013 + REQUEST_TIMEOUT_MS, "r1", packet(6))).toBe("held");
  });
});
