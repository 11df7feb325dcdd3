import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure } from "../../../test/support/prng.js";
import { formatIp, parseIp } from "../ip/address.js";
import { PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP, TCP_FLAG_ACK, TCP_FLAG_FIN, TCP_FLAG_SYN } from "../ip/constants.js";
import { buildIcmpv4Prohibited, buildProhibited } from "../ip/icmp.js";
import { parseIpPacket, type IpPacket } from "../ip/packet.js";
import { fillIpv4HeaderChecksum, fillTransportChecksum, transportChecksumValid } from "../ip/rewrite.js";
import { buildPacket, type PacketSpec } from "../ip/testing.js";
import type { AuthorizationForGateway, Filter, GatewayResource } from "../portal/schema.js";
import {
  CONTROL_PORT, HELD_PACKETS_MAX, HOLD_TIMEOUT, ICMP_QUERY_TIMEOUT, TCP_ESTABLISHED_TIMEOUT, TCP_TRANSITORY_TIMEOUT, UDP_MAPPING_TIMEOUT,
} from "./constants.js";
import { encodeControl } from "./control.js";
import { GatewayState, type FromClientDecision, type FromResourceDecision, type GatewayEvent } from "./state.js";

beforeEach(reportSeedOnFailure);

// --- Fixtures ---

const EPOCH = Date.parse("2026-01-01T00:00:00Z");
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const GATEWAY = { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" };
const KEY_A = "A".repeat(43) + "=";
const KEY_B = "B".repeat(43) + "=";
const PSK = "C".repeat(43) + "=";

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

interface Client {
  id: string;
  ipv4: string;
  ipv6: string;
}
const ALICE: Client = { id: uuid(0xa11ce), ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2" };
const BOB: Client = { id: uuid(0xb0b), ipv4: "100.64.0.3", ipv6: "fd00:2021:1111::3" };

let nextId = 1;
function authorization(client: Client, resource: GatewayResource, expiresAfter = HOUR, publicKey = KEY_A): AuthorizationForGateway {
  return {
    authorization_id: uuid(0x1000 + nextId++),
    client: { id: client.id, public_key: publicKey, ipv4: client.ipv4, ipv6: client.ipv6, preshared_key: PSK },
    resource,
    client_ice: { username: "ufrag", password: "p".repeat(22) },
    gateway_ice: { username: "gfrag", password: "q".repeat(22) },
    expires_at: new Date(EPOCH + expiresAfter).toISOString(),
  };
}

/** The ICE credentials authorization() gives every pair, as peer events carry them. */
const ICE = { clientIce: { username: "ufrag", password: "p".repeat(22) }, gatewayIce: { username: "gfrag", password: "q".repeat(22) } };

function resource(n: number, type: GatewayResource["type"], address: string | null, filters: Filter[] = []): GatewayResource {
  return { id: uuid(n), type, name: `r${n}`, address, filters };
}

function gateway(): GatewayState {
  const r = rng("gateway ports");
  return new GatewayState({ ...GATEWAY, epochMs: EPOCH, random: (n) => r.bytes(n) });
}

function drain(state: GatewayState): GatewayEvent[] {
  const events: GatewayEvent[] = [];
  for (let e = state.pollEvent(); e; e = state.pollEvent()) events.push(e);
  return events;
}

function view(bytes: Uint8Array): IpPacket {
  const parsed = parseIpPacket(bytes);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.packet;
}

/** A packet from a client, and what the gateway decided. */
function send(state: GatewayState, now: number, client: Client, spec: Omit<PacketSpec, "src"> & { src?: string }): FromClientDecision {
  const v6 = spec.dst.includes(":");
  return state.handleFromClient(now, client.id, buildPacket({ src: v6 ? client.ipv6 : client.ipv4, ...spec }));
}

function forwarded(decision: FromClientDecision | FromResourceDecision): IpPacket & { bytes: Uint8Array } {
  if (decision.action !== "forward") throw new Error(`expected forward, got ${JSON.stringify(decision)}`);
  return { ...view(decision.packet), bytes: decision.packet };
}

/** Asserts a prohibited reply to the client about a packet to `dst`. */
function expectProhibited(decision: FromClientDecision, client: Client, dst: string): void {
  expect(decision.action).toBe("reply");
  if (decision.action !== "reply") return;
  const v = view(decision.packet);
  expect(v.dstText).toBe(v.version === 4 ? client.ipv4 : client.ipv6);
  expect(v.srcText).toBe(dst);
  expect([v.icmpType, v.icmpCode]).toEqual(v.version === 4 ? [3, 13] : [1, 1]);
}

/** Full recomputation agrees with what the incremental updates left: header and transport checksums verify. */
function expectChecksumsValid(bytes: Uint8Array): void {
  const v = view(bytes); // the IPv4 header checksum is verified by the parser
  expect(transportChecksumValid(bytes, v)).toBe(true);
  const recomputed = bytes.slice();
  if (v.version === 4) fillIpv4HeaderChecksum(recomputed, v.headerLength);
  fillTransportChecksum(recomputed, v);
  const at = v.protocol === PROTOCOL_TCP ? 16 : v.protocol === PROTOCOL_UDP ? 6 : 2;
  const norm = (x: number): number => (x === 0xffff ? 0 : x);
  const read = (b: Uint8Array): number => (b[v.payloadOffset + at]! << 8) | b[v.payloadOffset + at + 1]!;
  expect(norm(read(bytes))).toBe(norm(read(recomputed)));
  expect(bytes.subarray(0, 12)).toEqual(recomputed.subarray(0, 12));
}

// --- Authorizations ---

describe("authorizations", () => {
  it("adds the peer with the client's first authorization and removes it with the last", () => {
    const state = gateway();
    const a1 = authorization(ALICE, resource(1, "ip", "10.0.0.1"));
    const a2 = authorization(ALICE, resource(2, "ip", "10.0.0.2"));
    state.createAuthorization(0, a1);
    expect(drain(state)).toEqual([{ type: "peer_added", clientId: ALICE.id, publicKey: KEY_A, presharedKey: PSK, ipv4: ALICE.ipv4, ipv6: ALICE.ipv6, ...ICE }]);
    state.createAuthorization(0, a2);
    expect(drain(state)).toEqual([]);
    state.rejectAccess(1, { authorization_id: a1.authorization_id });
    expect(drain(state)).toEqual([{ type: "authorization_removed", authorizationId: a1.authorization_id, clientId: ALICE.id, resourceId: uuid(1), reason: "rejected" }]);
    state.rejectAccess(2, { authorization_id: a2.authorization_id });
    expect(drain(state).map((e) => e.type)).toEqual(["authorization_removed", "peer_removed"]);
    expect(send(state, 3, ALICE, { dst: "10.0.0.2", srcPort: 1, dstPort: 2 })).toEqual({ action: "drop", reason: "unknown_client" });
  });

  it("updates the peer when a later authorization brings another key", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "ip", "10.0.0.1")));
    drain(state);
    state.createAuthorization(0, authorization(ALICE, resource(2, "ip", "10.0.0.2"), HOUR, KEY_B));
    expect(drain(state)).toEqual([{ type: "peer_updated", clientId: ALICE.id, publicKey: KEY_B, presharedKey: PSK, ipv4: ALICE.ipv4, ipv6: ALICE.ipv6, ...ICE }]);
  });

  it("updates the peer when a later authorization brings other ICE credentials, and not for the same ones", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "ip", "10.0.0.1")));
    state.createAuthorization(0, authorization(ALICE, resource(2, "ip", "10.0.0.2")));
    expect(drain(state).map((e) => e.type)).toEqual(["peer_added"]);
    const next = { ...authorization(ALICE, resource(3, "ip", "10.0.0.3")), gateway_ice: { username: "gnew", password: "r".repeat(22) } };
    state.createAuthorization(0, next);
    expect(drain(state)).toEqual([{ type: "peer_updated", clientId: ALICE.id, publicKey: KEY_A, presharedKey: PSK, ipv4: ALICE.ipv4, ipv6: ALICE.ipv6, clientIce: ICE.clientIce, gatewayIce: next.gateway_ice }]);
  });

  it("connects a client afresh when its tunnel goes down while it holds an authorization; not after, nor an unknown one", () => {
    const state = gateway();
    const a1 = authorization(ALICE, resource(1, "ip", "10.0.0.1"), 10 * MINUTE);
    state.createAuthorization(0, a1);
    drain(state);
    state.handleTunnelDown(MINUTE, ALICE.id);
    expect(drain(state)).toEqual([{ type: "peer_reconnect", clientId: ALICE.id, publicKey: KEY_A, presharedKey: PSK, ipv4: ALICE.ipv4, ipv6: ALICE.ipv6, ...ICE }]);
    state.handleTunnelDown(MINUTE, BOB.id);
    expect(drain(state)).toEqual([]);
    // Past its expiry, even before the timer ran: the client is no longer wanted.
    state.handleTunnelDown(10 * MINUTE, ALICE.id);
    expect(drain(state).map((e) => e.type)).toEqual(["authorization_removed", "peer_removed"]);
    state.createAuthorization(11 * MINUTE, authorization(ALICE, resource(2, "ip", "10.0.0.2"), HOUR));
    expect(drain(state).map((e) => e.type)).toEqual(["peer_added"]);
    state.rejectAccess(12 * MINUTE, { authorization_id: state.authorizationIds()[0]! });
    drain(state);
    state.handleTunnelDown(12 * MINUTE, ALICE.id);
    expect(drain(state)).toEqual([]);
  });

  it("follows a client's new tunnel addresses: anti-spoofing and answers use them", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "ip", "10.0.0.1")));
    const moved: Client = { ...ALICE, ipv4: "100.64.0.77", ipv6: "fd00:2021:1111::77" };
    state.createAuthorization(1, authorization(moved, resource(2, "ip", "10.0.0.2")));
    expect(drain(state).map((e) => e.type)).toEqual(["peer_added", "peer_updated"]);
    expect(send(state, 2, ALICE, { dst: "10.0.0.1", srcPort: 1, dstPort: 2 })).toEqual({ action: "drop", reason: "spoofed" });
    expect(send(state, 2, moved, { dst: "10.0.0.1", srcPort: 1, dstPort: 2 }).action).toBe("forward");
    expect(reply(state, 3, { src: "10.0.0.1", dst: ALICE.ipv4, srcPort: 2, dstPort: 1 })).toEqual({ action: "drop", reason: "unknown_client" });
    expect(reply(state, 3, { src: "10.0.0.1", dst: moved.ipv4, srcPort: 2, dstPort: 1 }).action).toBe("forward");
  });

  it("expires exactly at expires_at, with or without the timer", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "ip", "10.0.0.1"), 10 * MINUTE));
    state.createAuthorization(0, authorization(ALICE, resource(2, "ip", "10.0.0.2"), HOUR));
    expect(state.pollTimeout()).toBe(10 * MINUTE);
    expect(send(state, 10 * MINUTE - 1, ALICE, { dst: "10.0.0.1", srcPort: 1, dstPort: 2 }).action).toBe("forward");
    // No handleTimeout: the input itself sees the expiry.
    expectProhibited(send(state, 10 * MINUTE, ALICE, { dst: "10.0.0.1", srcPort: 1, dstPort: 2 }), ALICE, "10.0.0.1");
    expect(drain(state).filter((e) => e.type === "authorization_removed").map((e) => e.type === "authorization_removed" && e.reason)).toEqual(["expired"]);
    expect(state.pollTimeout()).toBe(HOUR);
    state.handleTimeout(HOUR);
    expect(drain(state).map((e) => e.type)).toEqual(["authorization_removed", "peer_removed"]);
    expect(state.pollTimeout()).toBe(undefined);
  });

  it("refuses one that has already expired", () => {
    const state = gateway();
    expect(state.createAuthorization(HOUR, authorization(ALICE, resource(1, "ip", "10.0.0.1"), HOUR))).toEqual({ ok: false, reason: "already expired" });
    expect(drain(state)).toEqual([]);
  });

  it("removes at once on reject_access", () => {
    const state = gateway();
    const a = authorization(ALICE, resource(1, "cidr", "10.0.0.0/8"));
    state.createAuthorization(0, authorization(ALICE, resource(2, "ip", "192.0.2.1")));
    state.createAuthorization(0, a);
    expect(send(state, 5, ALICE, { dst: "10.9.9.9", srcPort: 1, dstPort: 2 }).action).toBe("forward");
    state.rejectAccess(5, { authorization_id: a.authorization_id });
    expectProhibited(send(state, 5, ALICE, { dst: "10.9.9.9", srcPort: 1, dstPort: 2 }), ALICE, "10.9.9.9");
    state.rejectAccess(6, { authorization_id: uuid(0xdead) }); // unknown: ignored
  });

  it("holds one per (client, resource): the one installed replaces the other", () => {
    const state = gateway();
    const old = authorization(ALICE, resource(1, "ip", "10.0.0.1", [{ protocol: "tcp", ports: ["443"] }]), 10 * MINUTE);
    const replacement = authorization(ALICE, resource(1, "ip", "10.0.0.1", [{ protocol: "tcp", ports: ["80"] }]), HOUR);
    const other = authorization(BOB, resource(1, "ip", "10.0.0.1", [{ protocol: "tcp", ports: ["443"] }]), HOUR);
    state.createAuthorization(0, old);
    state.createAuthorization(0, other);
    drain(state);
    state.createAuthorization(1, replacement);
    expect(drain(state)).toEqual([{ type: "authorization_removed", authorizationId: old.authorization_id, clientId: ALICE.id, resourceId: uuid(1), reason: "replaced" }]);
    expect(state.authorizationIds().sort()).toEqual([replacement.authorization_id, other.authorization_id].sort());
    expectProhibited(send(state, 2, ALICE, { dst: "10.0.0.1", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }), ALICE, "10.0.0.1");
    expect(send(state, 2, ALICE, { dst: "10.0.0.1", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 80 }).action).toBe("forward");
    // Bob's, for the same resource, is another pair and stays.
    expect(send(state, 2, BOB, { dst: "10.0.0.1", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }).action).toBe("forward");
    // The replaced one neither expires nor is rejected any more.
    state.rejectAccess(3, { authorization_id: old.authorization_id });
    state.handleTimeout(10 * MINUTE);
    expect(send(state, 10 * MINUTE, ALICE, { dst: "10.0.0.1", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 80 }).action).toBe("forward");
  });

  it("init: a later entry for a pair replaces an earlier one; a re-sync removes what is gone and keeps the rest", () => {
    const state = gateway();
    const first = authorization(ALICE, resource(1, "ip", "10.0.0.1", [{ protocol: "udp" }]));
    const later = authorization(ALICE, resource(1, "ip", "10.0.0.1", [{ protocol: "tcp" }]));
    const bob = authorization(BOB, resource(2, "ip", "10.0.0.2"));
    const expired = authorization(BOB, resource(3, "ip", "10.0.0.3"), 0);
    expect(state.init(0, [first, later, bob, expired])).toEqual([{ authorizationId: expired.authorization_id, reason: "already expired" }]);
    expect(state.authorizationIds().sort()).toEqual([later.authorization_id, bob.authorization_id].sort());
    // The earlier entry is never installed, so nothing is removed.
    expect(drain(state).map((e) => e.type)).toEqual(["peer_added", "peer_added"]);
    expectProhibited(send(state, 1, ALICE, { dst: "10.0.0.1", protocol: PROTOCOL_UDP, srcPort: 1, dstPort: 53 }), ALICE, "10.0.0.1");
    state.init(2, [later]);
    expect(drain(state)).toEqual([
      { type: "authorization_removed", authorizationId: bob.authorization_id, clientId: BOB.id, resourceId: uuid(2), reason: "init" },
      { type: "peer_removed", clientId: BOB.id, publicKey: KEY_A },
    ]);
    expect(state.authorizationIds()).toEqual([later.authorization_id]);
  });
});

// --- Packets from clients ---

describe("from a client", () => {
  it("drops a spoofed source", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "internet", null)));
    state.createAuthorization(0, authorization(BOB, resource(1, "internet", null)));
    expect(send(state, 1, ALICE, { src: BOB.ipv4, dst: "1.1.1.1", srcPort: 1, dstPort: 2 })).toEqual({ action: "drop", reason: "spoofed" });
    expect(send(state, 1, ALICE, { src: "fd00:2021:1111::99", dst: "2001:db8::1", srcPort: 1, dstPort: 2 })).toEqual({ action: "drop", reason: "spoofed" });
    expect(send(state, 1, ALICE, { dst: "1.1.1.1", srcPort: 1, dstPort: 2 }).action).toBe("forward");
    expect(send(state, 1, ALICE, { dst: "2001:db8::1", srcPort: 1, dstPort: 2 }).action).toBe("forward");
    expect(state.handleFromClient(1, ALICE.id, Uint8Array.of(0x45, 0))).toEqual({ action: "drop", reason: "malformed", detail: "truncated" });
  });

  it("filters: port range edges, single ports, protocols, icmp, empty list", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "ip", "10.0.0.1", [{ protocol: "tcp", ports: ["443", "8000-8080"] }, { protocol: "udp", ports: [] }])));
    state.createAuthorization(0, authorization(ALICE, resource(2, "ip", "fd00:aaaa::1", [{ protocol: "icmp" }])));
    state.createAuthorization(0, authorization(ALICE, resource(3, "ip", "10.0.0.3")));
    const tcp = (dst: string, port: number): FromClientDecision => send(state, 1, ALICE, { dst, protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: port });
    for (const [port, allowed] of [[442, false], [443, true], [444, false], [7999, false], [8000, true], [8080, true], [8081, false]] as const) {
      expect(tcp("10.0.0.1", port).action, `tcp ${port}`).toBe(allowed ? "forward" : "reply");
    }
    expect(send(state, 1, ALICE, { dst: "10.0.0.1", protocol: PROTOCOL_UDP, srcPort: 1, dstPort: 65535 }).action).toBe("forward");
    expectProhibited(send(state, 1, ALICE, { dst: "10.0.0.1", icmpType: 8, icmpIdentifier: 1 }), ALICE, "10.0.0.1");
    expectProhibited(send(state, 1, ALICE, { dst: "10.0.0.1", protocol: 47, payload: new Uint8Array(4) }), ALICE, "10.0.0.1");
    // An icmp filter lets ICMPv6 through, and nothing else.
    expect(send(state, 1, ALICE, { dst: "fd00:aaaa::1", icmpType: 128, icmpIdentifier: 1 }).action).toBe("forward");
    expectProhibited(send(state, 1, ALICE, { dst: "fd00:aaaa::1", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }), ALICE, "fd00:aaaa::1");
    // No filters: everything, other protocols included.
    expect(send(state, 1, ALICE, { dst: "10.0.0.3", protocol: 47, payload: new Uint8Array(4) }).action).toBe("forward");
    expect(send(state, 1, ALICE, { dst: "10.0.0.3", icmpType: 8 }).action).toBe("forward");
  });

  it("finds the resource: ip, then the longest cidr, then internet (not the address plan's ranges)", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "cidr", "10.0.0.0/8")));
    state.createAuthorization(0, authorization(ALICE, resource(2, "cidr", "10.1.0.0/16", [{ protocol: "udp" }])));
    state.createAuthorization(0, authorization(ALICE, resource(3, "ip", "10.1.2.3", [{ protocol: "tcp", ports: ["22"] }])));
    const tcp = (dst: string, port = 443): FromClientDecision => send(state, 1, ALICE, { dst, protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: port });
    expect(tcp("10.2.0.1").action).toBe("forward");
    expectProhibited(tcp("10.1.0.1"), ALICE, "10.1.0.1"); // the /16 is tighter and allows only udp
    expect(tcp("10.1.2.3", 22).action).toBe("forward");
    expectProhibited(tcp("10.1.2.3"), ALICE, "10.1.2.3");
    expectProhibited(tcp("192.0.2.1"), ALICE, "192.0.2.1"); // nothing holds it
    state.createAuthorization(0, authorization(ALICE, resource(4, "internet", null)));
    expect(tcp("192.0.2.1").action).toBe("forward");
    expectProhibited(tcp("10.1.0.1"), ALICE, "10.1.0.1"); // internet covers only what nothing else does
    expectProhibited(tcp("100.96.0.7"), ALICE, "100.96.0.7"); // a proxy IP nobody mapped
    expectProhibited(tcp("100.64.0.3"), ALICE, "100.64.0.3"); // another device
  });

  it("answers refusals with ICMPv6 too, and never answers an ICMP error", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "ip", "10.0.0.1")));
    expectProhibited(send(state, 1, ALICE, { dst: "2001:db8::5", protocol: PROTOCOL_UDP, srcPort: 1, dstPort: 2 }), ALICE, "2001:db8::5");
    const error = buildIcmpv4Prohibited(Uint8Array.of(100, 64, 0, 2), buildPacket({ src: "192.0.2.1", dst: ALICE.ipv4, srcPort: 1, dstPort: 2 }), view(buildPacket({ src: "192.0.2.1", dst: ALICE.ipv4, srcPort: 1, dstPort: 2 })))!;
    expect(state.handleFromClient(1, ALICE.id, error)).toEqual({ action: "drop", reason: "prohibited" });
  });

  it("drops fragments", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, resource(1, "internet", null)));
    const bytes = buildPacket({ src: ALICE.ipv4, dst: "1.1.1.1", srcPort: 1, dstPort: 2 });
    bytes[6] = 0x20; // MF
    fillIpv4HeaderChecksum(bytes, 20);
    expect(state.handleFromClient(1, ALICE.id, bytes)).toEqual({ action: "drop", reason: "fragment" });
  });
});

// --- DNS resources and NAT ---

const DNS_A = resource(10, "dns", "*.corp.example");
const DNS_B = resource(11, "dns", "**.other.example");

function control(state: GatewayState, now: number, client: Client, resourceId: string, name: string, proxies: string[], v6 = false): FromClientDecision {
  const payload = encodeControl({ resource_id: resourceId, name, proxy_ips: proxies })!;
  return send(state, now, client, { dst: v6 ? GATEWAY.ipv6 : GATEWAY.ipv4, protocol: PROTOCOL_UDP, srcPort: 40001, dstPort: CONTROL_PORT, payload });
}

/** A gateway with Alice authorized for DNS_A, wiki.corp.example mapped to two proxy IPs per family and resolved. */
function dnsGateway(reals = ["192.0.2.10", "2001:db8::10"]): GatewayState {
  const state = gateway();
  state.createAuthorization(0, authorization(ALICE, DNS_A, 24 * HOUR));
  expect(control(state, 0, ALICE, DNS_A.id, "wiki.corp.example", ["100.96.0.1", "100.96.0.2", "fd00:2021:1111:8000::1"])).toEqual({ action: "consumed" });
  expect(drain(state).filter((e) => e.type === "resolve")).toEqual([{ type: "resolve", name: "wiki.corp.example" }]);
  state.handleResolved(0, "wiki.corp.example", reals);
  return state;
}

function reply(state: GatewayState, now: number, spec: PacketSpec): FromResourceDecision {
  return state.handleFromResource(now, buildPacket(spec));
}

describe("DNS resources", () => {
  it("NATs proxy → real and back, checksums verified by full recompute, both families", () => {
    const state = dnsGateway();
    const out = forwarded(send(state, 1, ALICE, { dst: "100.96.0.1", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 443, tcpFlags: TCP_FLAG_SYN, payload: Uint8Array.of(1, 2, 3) }));
    expect([out.srcText, out.dstText, out.srcPort, out.dstPort]).toEqual([ALICE.ipv4, "192.0.2.10", 40000, 443]);
    expectChecksumsValid(out.bytes);
    const back = reply(state, 2, { src: "192.0.2.10", dst: ALICE.ipv4, protocol: PROTOCOL_TCP, srcPort: 443, dstPort: 40000, tcpFlags: TCP_FLAG_SYN | TCP_FLAG_ACK, payload: Uint8Array.of(9) });
    const b = forwarded(back);
    expect(back.action === "forward" && back.clientId).toBe(ALICE.id);
    expect([b.srcText, b.dstText, b.srcPort, b.dstPort]).toEqual(["100.96.0.1", ALICE.ipv4, 443, 40000]);
    expectChecksumsValid(b.bytes);

    const out6 = forwarded(send(state, 3, ALICE, { dst: "fd00:2021:1111:8000::1", protocol: PROTOCOL_UDP, srcPort: 5000, dstPort: 53, payload: Uint8Array.of(1, 2, 3, 4, 5) }));
    expect(out6.dstText).toBe("2001:db8::10");
    expectChecksumsValid(out6.bytes);
    const back6 = forwarded(reply(state, 4, { src: "2001:db8::10", dst: ALICE.ipv6, protocol: PROTOCOL_UDP, srcPort: 53, dstPort: 5000, payload: Uint8Array.of(7) }));
    expect(back6.srcText).toBe("fd00:2021:1111:8000::1");
    expectChecksumsValid(back6.bytes);

    const ping = forwarded(send(state, 5, ALICE, { dst: "fd00:2021:1111:8000::1", icmpType: 128, icmpIdentifier: 7 }));
    expect(ping.dstText).toBe("2001:db8::10");
    expectChecksumsValid(ping.bytes);
    const pong = forwarded(reply(state, 6, { src: "2001:db8::10", dst: ALICE.ipv6, icmpType: 129, icmpIdentifier: 7 }));
    expect(pong.srcText).toBe("fd00:2021:1111:8000::1");
    expectChecksumsValid(pong.bytes);
  });

  it("keeps a UDP/IPv4 checksum of 0 at 0", () => {
    const state = dnsGateway();
    const out = forwarded(send(state, 1, ALICE, { dst: "100.96.0.1", protocol: PROTOCOL_UDP, srcPort: 1, dstPort: 53, noUdpChecksum: true }));
    expect((out.bytes[26]! << 8) | out.bytes[27]!).toBe(0);
  });

  it("maps proxy IP i to real address i mod count, per family", () => {
    const one = dnsGateway(["192.0.2.10"]);
    expect(forwarded(send(one, 1, ALICE, { dst: "100.96.0.2", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.10");
    const two = dnsGateway(["192.0.2.10", "192.0.2.11", "2001:db8::10"]);
    expect(forwarded(send(two, 1, ALICE, { dst: "100.96.0.1", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.10");
    expect(forwarded(send(two, 1, ALICE, { dst: "100.96.0.2", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.11");
  });

  it("holds packets to a proxy IP not mapped yet or a name not resolved yet, and releases them in order; refuses a family the name has no address of", () => {
    const state = dnsGateway(["192.0.2.10"]);
    // wiki.corp.example has no IPv6 address: its IPv6 proxy IP is refused.
    expectProhibited(send(state, 1, ALICE, { dst: "fd00:2021:1111:8000::1", srcPort: 1, dstPort: 2 }), ALICE, "fd00:2021:1111:8000::1");
    // A packet overtook the mapping of mail.corp.example: held, not refused.
    expect(send(state, 1, ALICE, { dst: "100.96.0.5", srcPort: 1, dstPort: 2 })).toEqual({ action: "held" });
    expect(send(state, 1, ALICE, { dst: "100.96.0.9", srcPort: 1, dstPort: 2 })).toEqual({ action: "held" });
    control(state, 2, ALICE, DNS_A.id, "mail.corp.example", ["100.96.0.5"]);
    expect(drain(state)).toEqual([{ type: "resolve", name: "mail.corp.example" }]);
    // Mapped now, but the name has no answer yet: still held.
    expect(send(state, 3, ALICE, { dst: "100.96.0.5", srcPort: 1, dstPort: 4 })).toEqual({ action: "held" });
    // Another name of the same wildcard resource is not held up.
    expect(forwarded(send(state, 3, ALICE, { dst: "100.96.0.1", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.10");
    state.handleResolved(4, "mail.corp.example", ["192.0.2.20"]);
    const released = drain(state);
    expect(released.map((e) => e.type)).toEqual(["forward", "forward"]);
    expect(released.map((e) => (e.type === "forward" ? [view(e.packet).dstText, view(e.packet).dstPort] : []))).toEqual([["192.0.2.20", 2], ["192.0.2.20", 4]]);
    for (const e of released) if (e.type === "forward") expectChecksumsValid(e.packet);
    expect(forwarded(send(state, 5, ALICE, { dst: "100.96.0.5", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.20");
    // 100.96.0.9 was never mapped: dropped once HOLD_TIMEOUT has passed, with no ICMP.
    expect(state.pollTimeout()).toBe(1 + HOLD_TIMEOUT);
    state.handleTimeout(1 + HOLD_TIMEOUT);
    expect(state.drops.unresolved).toBe(1);
    expect(drain(state)).toEqual([]);
    // The client's last authorization goes: what it had held goes with it, unanswered.
    expect(send(state, 10_000, ALICE, { dst: "100.96.0.7", srcPort: 1, dstPort: 2 })).toEqual({ action: "held" });
    state.rejectAccess(10_001, { authorization_id: state.authorizationIds()[0]! });
    expect(drain(state).map((e) => e.type)).toEqual(["authorization_removed", "peer_removed"]);
  });

  it("refuses a held packet when the mapping it waited for comes under an authorization granted after it arrived", () => {
    const state = dnsGateway();
    const other = authorization(ALICE, DNS_B, 24 * HOUR);
    state.createAuthorization(0, other);
    // DNS_A is revoked; the client, not yet told, still sends to one of its names: held, as a mapping may be on its way.
    state.rejectAccess(1, { authorization_id: state.authorizationIds().find((id) => id !== other.authorization_id)! });
    drain(state);
    expect(send(state, 2, ALICE, { dst: "100.96.0.5", srcPort: 1, dstPort: 2 })).toEqual({ action: "held" });
    // DNS_A is granted again, and the mapping comes: the packet was sent while denied, so it is refused, not forwarded.
    state.createAuthorization(3, authorization(ALICE, DNS_A, 24 * HOUR));
    control(state, 4, ALICE, DNS_A.id, "mail.corp.example", ["100.96.0.5"]);
    state.handleResolved(5, "mail.corp.example", ["192.0.2.20"]);
    const released = drain(state).filter((e) => e.type === "forward" || e.type === "reply");
    expect(released.map((e) => e.type)).toEqual(["reply"]);
    // A packet sent now, under the new authorization, goes through.
    expect(forwarded(send(state, 6, ALICE, { dst: "100.96.0.5", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.20");
  });

  it("holds at most HELD_PACKETS_MAX packets per client, dropping the oldest; a client with no DNS resource is refused at once", () => {
    const state = dnsGateway();
    for (let i = 0; i < HELD_PACKETS_MAX + 3; i++) expect(send(state, 1, ALICE, { dst: "100.96.0.5", srcPort: 1000 + i, dstPort: 2 })).toEqual({ action: "held" });
    expect(state.drops.held_overflow).toBe(3);
    control(state, 2, ALICE, DNS_A.id, "mail.corp.example", ["100.96.0.5"]);
    state.handleResolved(3, "mail.corp.example", ["192.0.2.20"]);
    const ports = drain(state).flatMap((e) => (e.type === "forward" ? [view(e.packet).srcPort] : []));
    expect(ports).toEqual(Array.from({ length: HELD_PACKETS_MAX }, (_, i) => 1003 + i));
    const plain = gateway();
    plain.createAuthorization(0, authorization(BOB, resource(7, "cidr", "10.0.0.0/8")));
    expectProhibited(send(plain, 1, BOB, { dst: "100.96.0.5", srcPort: 1, dstPort: 2 }), BOB, "100.96.0.5");
  });

  it("takes an IPv4-mapped IPv6 resource address or prefix for the IPv4 one it maps", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(BOB, resource(7, "cidr", "::ffff:10.0.0.0/104")));
    state.createAuthorization(0, authorization(BOB, resource(8, "ip", "::ffff:192.0.2.7")));
    expect(forwarded(send(state, 1, BOB, { dst: "10.1.2.3", srcPort: 1, dstPort: 2 })).dstText).toBe("10.1.2.3");
    expect(forwarded(send(state, 1, BOB, { dst: "192.0.2.7", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.7");
    expectProhibited(send(state, 1, BOB, { dst: "11.0.0.1", srcPort: 1, dstPort: 2 }), BOB, "11.0.0.1");
  });

  it("replaces a name's mapping, and moves a proxy IP claimed by another name (ending its flows)", () => {
    const state = dnsGateway();
    forwarded(send(state, 1, ALICE, { dst: "100.96.0.2", srcPort: 1, dstPort: 2 }));
    expect(state.natFlows).toBe(1);
    // wiki.corp.example now has only 100.96.0.1: 100.96.0.2 is unmapped and its flow gone.
    control(state, 2, ALICE, DNS_A.id, "wiki.corp.example", ["100.96.0.1"]);
    expect(state.natFlows).toBe(0);
    // Unmapped now: held, as for a mapping still on its way.
    expect(send(state, 3, ALICE, { dst: "100.96.0.2", srcPort: 1, dstPort: 2 })).toEqual({ action: "held" });
    forwarded(send(state, 3, ALICE, { dst: "100.96.0.1", srcPort: 1, dstPort: 2 }));
    // mail.corp.example claims 100.96.0.1: the flow to it ends, and wiki, left with no proxy IP, goes.
    control(state, 4, ALICE, DNS_A.id, "mail.corp.example", ["100.96.0.1"]);
    expect(state.natFlows).toBe(0);
    drain(state);
    state.handleResolved(5, "mail.corp.example", ["192.0.2.20"]);
    state.handleResolved(5, "wiki.corp.example", ["192.0.2.99"]); // forgotten: ignored
    expect(forwarded(send(state, 6, ALICE, { dst: "100.96.0.1", srcPort: 1, dstPort: 2 })).dstText).toBe("192.0.2.20");
  });

  it("refuses control messages for a resource not held, a name off the pattern, a proxy IP outside the range", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, DNS_A));
    state.createAuthorization(0, authorization(ALICE, resource(12, "ip", "10.0.0.1")));
    drain(state);
    expect(control(state, 1, ALICE, DNS_B.id, "x.other.example", ["100.96.0.1"])).toEqual({ action: "drop", reason: "control_refused" });
    expect(control(state, 1, ALICE, uuid(12), "x.corp.example", ["100.96.0.1"])).toEqual({ action: "drop", reason: "control_refused" });
    expect(control(state, 1, ALICE, DNS_A.id, "a.b.corp.example", ["100.96.0.1"])).toEqual({ action: "drop", reason: "control_refused" });
    expect(control(state, 1, ALICE, DNS_A.id, "x.corp.example", ["10.0.0.1"])).toEqual({ action: "drop", reason: "control_refused" });
    const garbage = send(state, 1, ALICE, { dst: GATEWAY.ipv4, protocol: PROTOCOL_UDP, srcPort: 1, dstPort: CONTROL_PORT, payload: Uint8Array.of(9, 9) });
    expect(garbage).toEqual({ action: "drop", reason: "bad_control" });
    expect(drain(state)).toEqual([]);
    expect(control(state, 1, ALICE, DNS_A.id, "corp.example", ["100.96.0.1"], true)).toEqual({ action: "consumed" });
  });

  it("applies a repeated control message once: flows survive, no second resolve while fresh", () => {
    const state = dnsGateway();
    forwarded(send(state, 1, ALICE, { dst: "100.96.0.1", srcPort: 1000, dstPort: 53 }));
    expect(state.natFlows).toBe(1);
    control(state, 2, ALICE, DNS_A.id, "wiki.corp.example", ["100.96.0.1", "100.96.0.2", "fd00:2021:1111:8000::1"]);
    expect(drain(state)).toEqual([]);
    expect(state.natFlows).toBe(1);
    // After NAME_REFRESH_INTERVAL a repeat asks again.
    control(state, 2 + MINUTE, ALICE, DNS_A.id, "wiki.corp.example", ["100.96.0.1", "100.96.0.2", "fd00:2021:1111:8000::1"]);
    expect(drain(state)).toEqual([{ type: "resolve", name: "wiki.corp.example" }]);
  });

  it("keeps two DNS resources resolving to one real address apart, by flow", () => {
    const state = gateway();
    state.createAuthorization(0, authorization(ALICE, DNS_A));
    state.createAuthorization(0, authorization(ALICE, DNS_B));
    control(state, 0, ALICE, DNS_A.id, "wiki.corp.example", ["100.96.0.1"]);
    control(state, 0, ALICE, DNS_B.id, "git.other.example", ["100.96.0.9"]);
    state.handleResolved(0, "wiki.corp.example", ["192.0.2.10"]);
    state.handleResolved(0, "git.other.example", ["192.0.2.10"]);
    // Same client port, same destination port: only the outside port can tell them apart.
    const a = forwarded(send(state, 1, ALICE, { dst: "100.96.0.1", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 443, tcpFlags: TCP_FLAG_SYN }));
    const b = forwarded(send(state, 1, ALICE, { dst: "100.96.0.9", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 443, tcpFlags: TCP_FLAG_SYN }));
    expect([a.dstText, b.dstText]).toEqual(["192.0.2.10", "192.0.2.10"]);
    expect(a.srcPort).toBe(40000);
    expect(b.srcPort).not.toBe(40000);
    expectChecksumsValid(b.bytes);
    const backB = forwarded(reply(state, 2, { src: "192.0.2.10", dst: ALICE.ipv4, protocol: PROTOCOL_TCP, srcPort: 443, dstPort: b.srcPort!, tcpFlags: TCP_FLAG_ACK }));
    expect([backB.srcText, backB.dstPort]).toEqual(["100.96.0.9", 40000]);
    expectChecksumsValid(backB.bytes);
    const backA = forwarded(reply(state, 2, { src: "192.0.2.10", dst: ALICE.ipv4, protocol: PROTOCOL_TCP, srcPort: 443, dstPort: 40000, tcpFlags: TCP_FLAG_ACK }));
    expect([backA.srcText, backA.dstPort]).toEqual(["100.96.0.1", 40000]);
    // Echo too: the identifier is the port.
    const pa = forwarded(send(state, 3, ALICE, { dst: "100.96.0.1", icmpType: 8, icmpIdentifier: 5 }));
    const pb = forwarded(send(state, 3, ALICE, { dst: "100.96.0.9", icmpType: 8, icmpIdentifier: 5 }));
    expect(pb.icmpIdentifier).not.toBe(5);
    expectChecksumsValid(pb.bytes);
    const backPb = forwarded(reply(state, 4, { src: "192.0.2.10", dst: ALICE.ipv4, icmpType: 0, icmpIdentifier: pb.icmpIdentifier! }));
    expect([backPb.srcText, backPb.icmpIdentifier]).toEqual(["100.96.0.9", 5]);
    expectChecksumsValid(backPb.bytes);
    expect(pa.icmpIdentifier).toBe(5);
  });

  it("translates an ICMP error about a NAT flow back to the proxy IP", () => {
    const state = dnsGateway();
    const out = forwarded(send(state, 1, ALICE, { dst: "100.96.0.1", protocol: PROTOCOL_UDP, srcPort: 5000, dstPort: 9 }));
    const error = buildIcmpv4Prohibited(Uint8Array.of(192, 0, 2, 10), out.bytes, out)!;
    const back = forwarded(state.handleFromResource(2, error));
    expect(back.srcText).toBe("100.96.0.1");
    expect(back.protocol).toBe(PROTOCOL_ICMP);
    const quoted = view(back.bytes.slice(28));
    expect([quoted.srcText, quoted.dstText, quoted.srcPort]).toEqual([ALICE.ipv4, "100.96.0.1", 5000]);
    expect(transportChecksumValid(back.bytes, back)).toBe(true);
  });

  it("translates an ICMPv6 error about a NAT flow, its checksum recomputed over the new pseudo-header", () => {
    const state = dnsGateway();
    const out = forwarded(send(state, 1, ALICE, { dst: "fd00:2021:1111:8000::1", protocol: PROTOCOL_TCP, srcPort: 5000, dstPort: 22, tcpFlags: TCP_FLAG_SYN }));
    const error = buildProhibited(parseIp("2001:db8::10")!, out.bytes, out)!;
    const back = forwarded(state.handleFromResource(2, error));
    expect([back.srcText, back.protocol]).toEqual(["fd00:2021:1111:8000::1", PROTOCOL_ICMPV6]);
    const quoted = view(back.bytes.slice(48));
    expect([quoted.srcText, quoted.dstText, quoted.srcPort]).toEqual([ALICE.ipv6, "fd00:2021:1111:8000::1", 5000]);
    expect(transportChecksumValid(back.bytes, back)).toBe(true);
  });

  it("passes other traffic to the client as it is, and drops what is for no client", () => {
    const state = dnsGateway();
    const plain = buildPacket({ src: "198.51.100.1", dst: ALICE.ipv4, srcPort: 1, dstPort: 2 });
    expect(state.handleFromResource(1, plain.slice())).toEqual({ action: "forward", clientId: ALICE.id, packet: plain });
    expect(reply(state, 1, { src: "198.51.100.1", dst: BOB.ipv4, srcPort: 1, dstPort: 2 })).toEqual({ action: "drop", reason: "unknown_client" });
  });

  it("ends a pair's flows and mapping with its authorization", () => {
    const state = gateway();
    const a = authorization(ALICE, DNS_A);
    state.createAuthorization(0, a);
    state.createAuthorization(0, authorization(ALICE, resource(20, "ip", "10.0.0.1")));
    control(state, 0, ALICE, DNS_A.id, "wiki.corp.example", ["100.96.0.1"]);
    state.handleResolved(0, "wiki.corp.example", ["192.0.2.10"]);
    forwarded(send(state, 1, ALICE, { dst: "100.96.0.1", srcPort: 7, dstPort: 53 }));
    expect(state.natFlows).toBe(1);
    state.rejectAccess(2, { authorization_id: a.authorization_id });
    expect(state.natFlows).toBe(0);
    const back = forwarded(reply(state, 3, { src: "192.0.2.10", dst: ALICE.ipv4, srcPort: 53, dstPort: 7 }));
    expect(back.srcText).toBe("192.0.2.10"); // untranslated: no flow
    expectProhibited(send(state, 3, ALICE, { dst: "100.96.0.1", srcPort: 7, dstPort: 53 }), ALICE, "100.96.0.1");
  });
});

describe("NAT timeouts", () => {
  const translatedBack = (d: FromResourceDecision): boolean => d.action === "forward" && view(d.packet).srcText.startsWith("100.96.");

  it("UDP: idle for UDP_MAPPING_TIMEOUT ends the flow; traffic refreshes it", () => {
    const state = dnsGateway();
    forwarded(send(state, 0, ALICE, { dst: "100.96.0.1", srcPort: 9, dstPort: 53 }));
    expect(state.pollTimeout()).toBe(UDP_MAPPING_TIMEOUT);
    const answer = (now: number): FromResourceDecision => reply(state, now, { src: "192.0.2.10", dst: ALICE.ipv4, srcPort: 53, dstPort: 9 });
    expect(translatedBack(answer(UDP_MAPPING_TIMEOUT - 1))).toBe(true); // refreshes to 2 × timeout - 1
    expect(translatedBack(answer(2 * UDP_MAPPING_TIMEOUT - 2))).toBe(true);
    state.handleTimeout(3 * UDP_MAPPING_TIMEOUT - 2);
    expect(state.natFlows).toBe(0);
    expect(translatedBack(answer(3 * UDP_MAPPING_TIMEOUT - 2))).toBe(false);
  });

  it("TCP: transitory until answered, established after, transitory again after FIN", () => {
    const state = dnsGateway();
    const tcp = (now: number, flags: number): FromClientDecision => send(state, now, ALICE, { dst: "100.96.0.1", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 443, tcpFlags: flags });
    const answer = (now: number, flags: number): FromResourceDecision => reply(state, now, { src: "192.0.2.10", dst: ALICE.ipv4, protocol: PROTOCOL_TCP, srcPort: 443, dstPort: 40000, tcpFlags: flags });
    forwarded(tcp(0, TCP_FLAG_SYN));
    state.handleTimeout(TCP_TRANSITORY_TIMEOUT);
    expect(state.natFlows).toBe(0);
    forwarded(tcp(TCP_TRANSITORY_TIMEOUT, TCP_FLAG_SYN));
    const t0 = TCP_TRANSITORY_TIMEOUT + 10;
    expect(translatedBack(answer(t0, TCP_FLAG_SYN | TCP_FLAG_ACK))).toBe(true);
    state.handleTimeout(t0 + TCP_ESTABLISHED_TIMEOUT - 1);
    expect(state.natFlows).toBe(1);
    const t1 = t0 + TCP_ESTABLISHED_TIMEOUT - 1;
    forwarded(tcp(t1, TCP_FLAG_FIN | TCP_FLAG_ACK));
    state.handleTimeout(t1 + TCP_TRANSITORY_TIMEOUT - 1);
    expect(state.natFlows).toBe(1);
    state.handleTimeout(t1 + TCP_TRANSITORY_TIMEOUT);
    expect(state.natFlows).toBe(0);
  });

  it("ICMP echo: ICMP_QUERY_TIMEOUT per identifier", () => {
    const state = dnsGateway();
    forwarded(send(state, 0, ALICE, { dst: "100.96.0.1", icmpType: 8, icmpIdentifier: 1 }));
    forwarded(send(state, 10, ALICE, { dst: "100.96.0.1", icmpType: 8, icmpIdentifier: 2 }));
    expect(state.natFlows).toBe(2);
    state.handleTimeout(ICMP_QUERY_TIMEOUT);
    expect(state.natFlows).toBe(1);
    expect(translatedBack(reply(state, ICMP_QUERY_TIMEOUT, { src: "192.0.2.10", dst: ALICE.ipv4, icmpType: 0, icmpIdentifier: 1 }))).toBe(false);
    expect(translatedBack(reply(state, ICMP_QUERY_TIMEOUT, { src: "192.0.2.10", dst: ALICE.ipv4, icmpType: 0, icmpIdentifier: 2 }))).toBe(true);
  });
});

describe("robustness", () => {
  it("never throws on random or mutated packets in either direction (fuzz)", () => {
    const r = rng("gateway fuzz");
    const state = dnsGateway();
    state.createAuthorization(0, authorization(ALICE, resource(30, "internet", null, [{ protocol: "tcp", ports: ["1-1000"] }, { protocol: "icmp" }])));
    const dsts = ["100.96.0.1", "100.96.0.2", "fd00:2021:1111:8000::1", "192.0.2.10", "8.8.8.8", GATEWAY.ipv4, "2001:db8::77"];
    for (let n = 0; n < 5000; n++) {
      const dst = r.pick(dsts);
      const v6 = dst.includes(":");
      const protocol = r.pick([PROTOCOL_TCP, PROTOCOL_UDP, v6 ? PROTOCOL_ICMPV6 : PROTOCOL_ICMP, 47]);
      const icmp = protocol === PROTOCOL_ICMP || protocol === PROTOCOL_ICMPV6;
      let bytes = buildPacket({
        src: v6 ? ALICE.ipv6 : ALICE.ipv4, dst, protocol, srcPort: r.int(0, 65535), dstPort: r.pick([53, 443, CONTROL_PORT, r.int(0, 65535)]),
        icmpType: icmp ? r.pick(v6 ? [128, 129, 1] : [8, 0, 3]) : undefined, icmpIdentifier: r.int(0, 3), payload: r.bytes(r.int(0, 64)),
      });
      if (r.bool(0.3)) for (let flips = r.int(1, 3); flips > 0; flips--) bytes[r.int(0, bytes.length - 1)] = r.u32() & 0xff;
      if (r.bool(0.1)) bytes = bytes.subarray(0, r.int(0, bytes.length));
      const now = n * 100;
      const out = state.handleFromClient(now, ALICE.id, bytes.slice());
      if (out.action === "forward" || out.action === "reply") expect(parseIpPacket(out.packet).ok, r.where(`#${n}`)).toBe(true);
      if (out.action === "forward") {
        // Answer it, mirrored, as the resource would.
        const v = view(out.packet);
        const back = buildPacket({
          src: v.dstText, dst: v.srcText, protocol: v.protocol, srcPort: v.dstPort, dstPort: v.srcPort,
          icmpType: v.icmpType === 8 ? 0 : v.icmpType === 128 ? 129 : v.icmpType, icmpIdentifier: v.icmpIdentifier, payload: r.bytes(r.int(0, 16)),
        });
        const answer = state.handleFromResource(now, back);
        expect(answer.action, r.where(`#${n}`)).toBe("forward");
        if (answer.action === "forward") expect(transportChecksumValid(answer.packet, view(answer.packet)), r.where(`#${n}`)).toBe(true);
      }
      state.handleFromResource(now, r.bytes(r.int(0, 80)));
    }
    expect(formatIp(Uint8Array.of(1, 2, 3, 4))).toBe("1.2.3.4");
  });
});

describe("decisions against a naive model", () => {
  /** IPv4 as a 32-bit number, the model's own arithmetic (no shared helper with the code under test). */
  const ipv4Number = (text: string): number => text.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  const inCidr = (cidr: string, address: string): boolean => {
    const [base, length] = cidr.split("/") as [string, string];
    const size = 2 ** (32 - Number(length));
    return Math.floor(ipv4Number(base) / size) === Math.floor(ipv4Number(address) / size);
  };

  it("agrees with a linear scan on resource choice and filters (ip, cidr, internet)", () => {
    const r = rng("gateway model");
    for (let round = 0; round < 40; round++) {
      const state = gateway();
      const resources: GatewayResource[] = [];
      for (let i = 0; i < r.int(1, 6); i++) {
        const type = r.pick(["ip", "cidr", "cidr", "internet"] as const);
        const address = type === "internet" ? null : type === "ip" ? `10.0.${r.int(0, 1)}.${r.int(0, 7)}` : `10.0.${r.int(0, 1)}.${8 * r.int(0, 1)}/${r.pick([16, 23, 24, 29, 30, 32])}`;
        const filters: Filter[] = [];
        for (const protocol of ["tcp", "udp", "icmp"] as const) {
          if (!r.bool(0.4)) continue;
          if (protocol === "icmp") filters.push({ protocol });
          else {
            const start = r.int(1, 100);
            filters.push({ protocol, ports: r.bool(0.3) ? [] : [`${start}`, `${start + 10}-${start + r.int(10, 50)}`] });
          }
        }
        const res = resource(100 + i, type, address, filters);
        resources.push(res);
        state.createAuthorization(0, authorization(ALICE, res));
      }
      const live = resources.filter((res, i) => !resources.slice(i + 1).some((later) => later.id === res.id));
      for (let n = 0; n < 200; n++) {
        const dst = r.bool(0.9) ? `10.0.${r.int(0, 1)}.${r.int(0, 15)}` : r.pick(["192.0.2.1", "100.96.0.1", "100.64.0.9"]);
        const protocol = r.pick([PROTOCOL_TCP, PROTOCOL_UDP, PROTOCOL_ICMP, 47]);
        const port = r.int(1, 170);
        const decision = send(state, 1, ALICE, { dst, protocol, srcPort: 1000, dstPort: port, icmpType: protocol === PROTOCOL_ICMP ? 8 : undefined, payload: protocol === 47 ? new Uint8Array(4) : undefined });

        const specificity = (res: GatewayResource): number => {
          if (res.type === "ip") return res.address === dst ? 32 : -1;
          if (res.type === "cidr") return inCidr(res.address!, dst) ? Number(res.address!.split("/")[1]) : -1;
          return -1;
        };
        const best = Math.max(-1, ...live.map(specificity));
        let chosen = best >= 0 ? live.filter((res) => specificity(res) === best) : [];
        const reserved = ["100.64.0.0/11", "100.96.0.0/11", "100.100.111.0/24"].some((c) => inCidr(c, dst));
        if (chosen.length === 0 && !reserved) chosen = live.filter((res) => res.type === "internet");
        const allows = (res: GatewayResource): boolean => {
          if (res.filters.length === 0) return true;
          const name = protocol === PROTOCOL_TCP ? "tcp" : protocol === PROTOCOL_UDP ? "udp" : protocol === PROTOCOL_ICMP ? "icmp" : undefined;
          return res.filters.some((f) => f.protocol === name && (name === "icmp" || !f.ports?.length || f.ports.some((range) => {
            const [lo, hi = lo] = range.split("-").map(Number) as [number, number?];
            return port >= lo && port <= hi!;
          })));
        };
        const expected = chosen.some(allows) ? "forward" : "reply";
        expect(decision.action, r.where(`round ${round} #${n} ${dst} proto ${protocol} port ${port} ${JSON.stringify(live)}`)).toBe(expected);
      }
    }
  });
});
