// The gateway's fast path in the engine (engine/gateway.ts, engine/packet.ts) against its oracles:
// 1. the parser against daemons/proto/ip's parseIpPacket, on seeded well-formed, mutated, truncated
//    and garbage packets (it never traps, and agrees field by field);
// 2. the incremental rewrites against daemons/proto/ip/rewrite.ts (byte-identical) and against a
//    full recomputation of every checksum;
// 3. GatewayState behind the engine (daemons/io/engine-gateway.ts) against GatewayState alone:
//    seeded sequences of authorizations (ip, cidr, dns, internet, with filters), DNS mappings sent
//    in band, resolver answers, packets both ways and time passing every timeout must give the same
//    decisions, the same bytes, the same events and the same drop counts.

import { beforeEach, describe, expect, it } from "vitest";
import { Engine, GatewayStatus, type EngineBuild } from "../daemons/engine/index.js";
import {
  CONTROL_PORT, encodeControl, GatewayState, TCP_ESTABLISHED_TIMEOUT, type DropReason, type GatewayEvent,
} from "../daemons/proto/gateway/index.js";
import { formatIp, parseIp } from "../daemons/proto/ip/address.js";
import { PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP } from "../daemons/proto/ip/constants.js";
import { parseIpPacket, type IpPacket } from "../daemons/proto/ip/packet.js";
import {
  fillIpv4HeaderChecksum, fillTransportChecksum, rewriteAddress, rewriteIcmpIdentifier, rewritePort,
  transportChecksumValid,
} from "../daemons/proto/ip/rewrite.js";
import { buildPacket, type PacketSpec } from "../daemons/proto/ip/testing.js";
import type { AuthorizationForGateway, Filter, GatewayResource } from "../daemons/proto/portal/schema.js";
import { BUILDS } from "./support/engine.js";
import { EngineBackedGateway } from "../daemons/io/engine-gateway.js";
import { reportSeedOnFailure, rng, type Rng } from "./support/prng.js";

beforeEach(reportSeedOnFailure);

const TABLES = { maxClients: 16, maxRules: 64, maxFlows: 256 };

function engineFor(build: EngineBuild, tables = TABLES): Engine {
  return Engine.create({ build, maxSessions: 4, maxRoutes: 4, maxChannels: 1, maxBatch: 64, arenaBytes: 1 << 20, gateway: tables });
}

// --- Packets ---

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/** Inserts four bytes of IPv4 options (NOPs) after the fixed header: IHL 6. */
function withOptions(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(packet.length + 4);
  out.set(packet.subarray(0, 20));
  out.fill(1, 20, 24);
  out.set(packet.subarray(20), 24);
  out[0] = 0x46;
  out[2] = out.length >>> 8;
  out[3] = out.length & 0xff;
  fillIpv4HeaderChecksum(out, 24);
  return out;
}

/** Marks an IPv4 packet a fragment: more fragments, or an offset past the first. */
function fragment(packet: Uint8Array, r: Rng): Uint8Array {
  const out = packet.slice();
  const offset = r.bool() ? 0 : r.int(1, 100);
  out[6] = 0x20 | (offset >>> 8);
  out[7] = offset & 0xff;
  fillIpv4HeaderChecksum(out, (out[0]! & 0x0f) * 4);
  return out;
}

/** One of the ways a packet goes bad on the wire. */
function mangle(packet: Uint8Array, r: Rng): Uint8Array {
  switch (r.int(0, 5)) {
    case 0:
      return packet.subarray(0, r.int(0, packet.length - 1)).slice();
    case 1:
      return r.bytes(r.int(0, 80));
    case 2: {
      const out = packet.slice();
      const at = r.int(0, Math.min(out.length, 48) - 1);
      out[at] = out[at]! ^ (1 << r.int(0, 7));
      return out;
    }
    case 3: {
      // A length field that lies.
      const out = packet.slice();
      const at = (out[0]! >>> 4) === 4 ? 2 : 4;
      const value = r.int(0, 0xffff);
      out[at] = value >>> 8;
      out[at + 1] = value & 0xff;
      if ((out[0]! >>> 4) === 4) fillIpv4HeaderChecksum(out, Math.min(60, Math.max(20, (out[0]! & 0x0f) * 4)));
      return out;
    }
    case 4: {
      const out = packet.slice();
      out[0] = (out[0]! & 0xf0) | r.int(0, 15);
      return out;
    }
    default: {
      // A transport length field that lies (TCP data offset, UDP length).
      const out = packet.slice();
      const at = (out[0]! >>> 4) === 4 ? (out[0]! & 0x0f) * 4 : 40;
      if (at + 13 < out.length) out[at + (r.bool() ? 12 : 4)] = r.int(0, 255);
      return out;
    }
  }
}

function randomWellFormed(r: Rng): Uint8Array {
  const v4 = r.bool();
  const address = (): string => formatIp(r.bytes(v4 ? 4 : 16));
  const base = { src: address(), dst: address(), payload: r.bytes(r.int(0, 64)) };
  const kind = r.int(0, 5);
  let packet: Uint8Array;
  if (kind === 0) packet = buildPacket({ ...base, protocol: PROTOCOL_TCP, srcPort: r.int(0, 65535), dstPort: r.int(0, 65535), tcpFlags: r.int(0, 255) });
  else if (kind === 1) packet = buildPacket({ ...base, protocol: PROTOCOL_UDP, srcPort: r.int(0, 65535), dstPort: r.int(0, 65535), noUdpChecksum: v4 && r.bool(0.3) });
  else if (kind === 2) packet = buildPacket({ ...base, icmpType: r.pick(v4 ? [0, 8, 3, 11] : [128, 129, 1, 3]), icmpIdentifier: r.int(0, 65535) });
  else if (kind === 3) packet = buildPacket({ ...base, protocol: v4 ? PROTOCOL_ICMPV6 : PROTOCOL_ICMP, payload: r.bytes(r.int(0, 30)) });
  else packet = buildPacket({ ...base, protocol: r.pick([47, 50, 0, 43]) });
  if (v4 && r.bool(0.2)) packet = withOptions(packet);
  if (r.bool(0.2)) {
    const padded = new Uint8Array(packet.length + r.int(1, 20));
    padded.set(packet);
    packet = padded;
  }
  return packet;
}

// --- 1. and 2. ---

describe.each(BUILDS)("the fast path's packet code (%s build)", (build) => {
  it("parses as daemons/proto/ip does: well-formed, mutated, truncated and garbage packets", () => {
    const r = rng(`fast-path parse ${build}`);
    const gw = engineFor(build).gateway;
    let rejected = 0;
    for (let n = 0; n < 4000; n++) {
      let packet = randomWellFormed(r);
      if (r.bool(0.15)) packet = fragment(packet, r);
      if (r.bool(0.4)) packet = mangle(packet, r);
      const ours = gw.parse(packet);
      const theirs = parseIpPacket(packet);
      const where = r.where(`#${n}`);
      if (!theirs.ok) {
        rejected++;
        expect(ours, where).toEqual({ ok: false, error: theirs.error });
        continue;
      }
      const p = theirs.packet;
      expect(ours, where).toEqual({
        ok: true, version: p.version, headerLength: p.headerLength, length: p.length, protocol: p.protocol, fragmentOffset: p.fragmentOffset,
        moreFragments: p.moreFragments,
        ...(p.srcPort === undefined ? {} : { srcPort: p.srcPort, dstPort: p.dstPort }),
        ...(p.tcpFlags === undefined ? {} : { tcpFlags: p.tcpFlags }),
        ...(p.icmpType === undefined ? {} : { icmpType: p.icmpType, icmpCode: p.icmpCode }),
        ...(p.icmpIdentifier === undefined ? {} : { icmpIdentifier: p.icmpIdentifier }),
      });
    }
    // Both sides of the oracle were exercised.
    expect(rejected).toBeGreaterThan(400);
    expect(rejected).toBeLessThan(3600);
  });

  it("rewrites addresses, ports and echo identifiers byte for byte as daemons/proto/ip/rewrite.ts, checksums equal to a full recomputation", () => {
    const r = rng(`fast-path rewrite ${build}`);
    const gw = engineFor(build).gateway;
    for (let n = 0; n < 3000; n++) {
      const packet = randomWellFormed(r);
      const parsed = parseIpPacket(packet);
      if (!parsed.ok) throw new Error(parsed.error);
      const v = parsed.packet;
      const where = r.where(`#${n} v${v.version} proto ${v.protocol}`);
      const op = r.int(0, 2);
      const end = r.pick(["src", "dst"] as const);
      const expected = packet.slice();
      let ours: Uint8Array | { error: string };
      if (op === 0) {
        const address = r.bytes(v.version === 4 ? 4 : 16);
        rewriteAddress(expected, v, end, address);
        ours = gw.rewrite(packet, "address", end, address);
      } else if (op === 1) {
        const port = r.pick([0, 0xffff, r.int(0, 0xffff)]);
        rewritePort(expected, v, end, port);
        ours = gw.rewrite(packet, "port", end, port);
      } else {
        const id = r.int(0, 0xffff);
        rewriteIcmpIdentifier(expected, v, id);
        ours = gw.rewrite(packet, "identifier", end, id);
      }
      expect(ours, where).toEqual(expected);
      // And the result is what a full recomputation gives: it verifies, and the checksums agree.
      const after = parseIpPacket(expected);
      expect(after.ok, where).toBe(true);
      if (!after.ok) continue;
      expect(transportChecksumValid(expected, after.packet), where).toBe(true);
      const full = expected.slice();
      if (v.version === 4) fillIpv4HeaderChecksum(full, v.headerLength);
      fillTransportChecksum(full, after.packet);
      const zero = (x: number): number => (x === 0xffff ? 0 : x);
      const at = checksumOffset(v);
      if (at !== undefined) expect(zero(u16(expected, at)), `${where} transport checksum`).toBe(zero(u16(full, at)));
      if (v.version === 4) expect(u16(expected, 10), `${where} header checksum`).toBe(u16(full, 10));
      if (v.version === 4 && v.protocol === PROTOCOL_UDP && u16(packet, v.payloadOffset + 6) === 0) {
        expect(u16(expected, v.payloadOffset + 6), `${where} UDP checksum 0 stays 0`).toBe(0);
      }
    }
  });
});

function checksumOffset(v: IpPacket): number | undefined {
  if (v.protocol === PROTOCOL_TCP) return v.payloadOffset + 16;
  if (v.protocol === PROTOCOL_UDP) return v.payloadOffset + 6;
  if ((v.version === 4 && v.protocol === PROTOCOL_ICMP) || (v.version === 6 && v.protocol === PROTOCOL_ICMPV6)) return v.payloadOffset + 2;
  return undefined;
}

// --- 3. The differential ---

const EPOCH = Date.parse("2026-01-01T00:00:00Z");
const GATEWAY = { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" };
const KEYS = ["A".repeat(43) + "=", "B".repeat(43) + "="];
const PSK = "C".repeat(43) + "=";
const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

const CLIENT_ADDRESSES = [0, 1, 2, 3].map((i) => ({ id: uuid(0xc000 + i), ipv4: `100.64.0.${10 + i}`, ipv6: `fd00:2021:1111::${(16 + i).toString(16)}` }));
/** The same clients at other tunnel addresses, so a peer update moves them. */
const MOVED = CLIENT_ADDRESSES.map((c, i) => ({ ...c, ipv4: `100.64.1.${10 + i}`, ipv6: `fd00:2021:1111::1:${(16 + i).toString(16)}` }));

const RESOURCE_SHAPES: [GatewayResource["type"], string | null][] = [
  ["ip", "10.0.0.1"], ["ip", "10.0.0.2"], ["ip", "fd00:1::1"], ["ip", "100.96.0.5"],
  ["cidr", "10.0.0.0/24"], ["cidr", "10.0.0.0/16"], ["cidr", "10.0.0.0/24"], ["cidr", "10.0.0.1/32"], ["cidr", "fd00:1::/64"],
  ["cidr", "100.96.0.0/16"], ["cidr", "0.0.0.0/0"],
  ["dns", "app.test"], ["dns", "*.corp.test"], ["dns", "**.wild.test"], ["dns", "app.test"],
  ["internet", null],
];
const NAMES = ["app.test", "a.corp.test", "b.corp.test", "x.y.wild.test", "nope.test"];
/** Names each DNS resource shape covers. */
const MATCHING: Record<number, string[]> = { 11: ["app.test"], 12: ["a.corp.test", "b.corp.test"], 13: ["x.y.wild.test"], 14: ["app.test"] };
const PROXIES = [
  ...[1, 2, 3, 4, 5, 6].map((i) => `100.96.0.${i}`),
  ...[1, 2, 3, 4].map((i) => `fd00:2021:1111:8000::${i}`),
];
const REALS = ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"];
const OTHER_DESTINATIONS = ["10.0.0.1", "10.0.0.2", "10.0.0.9", "10.0.7.7", "10.9.9.9", "8.8.8.8", "100.64.0.99", "100.100.111.1", "fd00:1::1", "fd00:1::9", "2001:db8::9", "192.0.2.1"];
const PORTS = [53, 80, 443, 5353, 8080];
const CLIENT_PORTS = [40000, 40001, 50000];

function randomFilters(r: Rng): Filter[] {
  switch (r.int(0, 7)) {
    case 0:
    case 1:
      return [];
    case 2:
      return [{ protocol: "tcp" }];
    case 3:
      return [{ protocol: "tcp", ports: ["80", "443"] }, { protocol: "icmp" }];
    case 4:
      return [{ protocol: "udp", ports: ["53", "5000-6000"] }, { protocol: "tcp", ports: ["8000-8080"] }];
    case 5:
      return [{ protocol: "icmp" }];
    case 6:
      // More ranges than a rule holds: the engine sends what it would decide to the slow path.
      return [{ protocol: "tcp", ports: ["1", "2", "3", "4", "5", "6", "7", "8", "443"] }, { protocol: "udp" }];
    default:
      return [{ protocol: "udp", ports: ["x"] }];
  }
}

/** GatewayState alone and GatewayState behind the engine, driven alike and compared after every step. */
class Pair {
  readonly oracle: GatewayState;
  readonly fast: EngineBackedGateway;
  readonly forwarded: Uint8Array[] = [];
  readonly pendingNames = new Set<string>();
  readonly authorizationIds: string[] = [];
  /** Clients with a peer now, and packets they sent (resent, so flows see more than one packet). */
  readonly live = new Set<string>();
  readonly sent: { clientId: string; spec: PacketSpec }[] = [];
  /** Proxy IPs each client mapped (as far as the test knows). */
  readonly mapped = new Map<string, Set<string>>();
  /** DNS resource shapes each client was last authorized for. */
  readonly dnsHeld = new Map<string, number[]>();
  now = 0;
  private nextId = 1;

  constructor(readonly r: Rng, engine: Engine, readonly seedLabel: string) {
    const a = rng(seedLabel);
    const b = rng(seedLabel);
    this.oracle = new GatewayState({ ...GATEWAY, epochMs: EPOCH, random: (n) => a.bytes(n) });
    this.fast = new EngineBackedGateway({ ...GATEWAY, epochMs: EPOCH, random: (n) => b.bytes(n) }, engine);
  }

  where(step: number, what: string): string {
    return this.r.where(`step ${step} (${what}) t=${this.now}`);
  }

  authorization(): AuthorizationForGateway {
    const r = this.r;
    const index = r.int(0, CLIENT_ADDRESSES.length - 1);
    const client = r.bool(0.05) ? MOVED[index]! : CLIENT_ADDRESSES[index]!;
    const shape = r.int(0, RESOURCE_SHAPES.length - 1);
    const [type, address] = RESOURCE_SHAPES[shape]!;
    const id = r.bool(0.1) && this.authorizationIds.length > 0 ? r.pick(this.authorizationIds) : uuid(0x1000 + this.nextId++);
    this.authorizationIds.push(id);
    return {
      authorization_id: id,
      client: { id: client.id, public_key: r.bool(0.05) ? KEYS[1]! : KEYS[0]!, ipv4: client.ipv4, ipv6: client.ipv6, preshared_key: PSK },
      resource: { id: uuid(0x2000 + shape), type, name: `r${shape}`, address, filters: randomFilters(r) },
      client_ice: { username: "ufrag", password: "p".repeat(22) },
      gateway_ice: { username: "gfrag", password: "q".repeat(22) },
      expires_at: new Date(EPOCH + this.now + r.pick([-1000, 30_000, 5 * 60_000, 3 * 3_600_000, 3 * 3_600_000, 3 * 3_600_000])).toISOString(),
    };
  }

  clientPacket(): { clientId: string; bytes: Uint8Array; proxies?: string[] } {
    const r = this.r;
    if (this.sent.length > 0 && r.bool(0.5)) {
      const { clientId, spec } = r.pick(this.sent);
      const again = { ...spec, payload: r.bytes(r.int(0, 24)), tcpFlags: r.pick([0x10, 0x18, 0x10, 0x11, 0x04]) };
      return { clientId, bytes: buildPacket(again) };
    }
    const holders = CLIENT_ADDRESSES.filter((c) => this.live.has(c.id));
    const client = holders.length > 0 && r.bool(0.9) ? r.pick(holders) : r.pick(r.bool(0.1) ? MOVED : CLIENT_ADDRESSES);
    const kind = r.int(0, 19);
    if (kind === 0) {
      // A DNS mapping in band.
      const held = this.dnsHeld.get(client.id) ?? [];
      const shape = held.length > 0 && r.bool(0.8) ? r.pick(held) : r.pick([11, 12, 13, 14, 4]);
      const name = r.bool(0.8) ? r.pick(MATCHING[shape] ?? NAMES) : r.pick(NAMES);
      const proxies = r.shuffle([...PROXIES]).slice(0, r.int(1, 4));
      const v6 = r.bool(0.3);
      const payload = encodeControl({ resource_id: uuid(0x2000 + shape), name, proxy_ips: proxies })!;
      const spec = { src: v6 ? client.ipv6 : client.ipv4, dst: v6 ? GATEWAY.ipv6 : GATEWAY.ipv4, protocol: PROTOCOL_UDP, srcPort: 40001, dstPort: CONTROL_PORT, payload };
      return { clientId: client.id, bytes: buildPacket(spec), proxies };
    }
    const mapped = [...(this.mapped.get(client.id) ?? [])];
    const dst = r.bool(0.5) ? (mapped.length > 0 && r.bool(0.8) ? r.pick(mapped) : r.pick(PROXIES)) : r.pick(OTHER_DESTINATIONS);
    const v6 = dst.includes(":");
    let src = v6 ? client.ipv6 : client.ipv4;
    if (kind === 1) src = v6 ? r.pick(CLIENT_ADDRESSES).ipv6 : "100.64.0.77";
    const spec = this.transport({ src, dst }, v6, true);
    let bytes = buildPacket(spec);
    if (kind > 3) this.sent.push({ clientId: client.id, spec });
    if (this.sent.length > 40) this.sent.shift();
    if (!v6 && r.bool(0.1)) bytes = withOptions(bytes);
    if (!v6 && kind === 2) bytes = fragment(bytes, r);
    if (kind === 3) bytes = mangle(bytes, r);
    if (r.bool(0.1)) {
      const padded = new Uint8Array(bytes.length + r.int(1, 9));
      padded.set(bytes);
      bytes = padded;
    }
    return { clientId: r.bool(0.03) ? uuid(0xdead) : client.id, bytes };
  }

  /** Ports, flags and protocol for a packet between src and dst. */
  transport(ends: { src: string; dst: string }, v6: boolean, fromClient: boolean): PacketSpec {
    const r = this.r;
    const payload = r.bytes(r.int(0, 24));
    const flags = r.pick([0x02, 0x10, 0x18, 0x11, 0x04, 0x12]);
    switch (r.int(0, 9)) {
      case 0:
      case 1:
      case 2:
        return { ...ends, protocol: PROTOCOL_TCP, srcPort: r.pick(CLIENT_PORTS), dstPort: r.pick(PORTS), tcpFlags: flags, payload };
      case 3:
      case 4:
      case 5:
        return { ...ends, protocol: PROTOCOL_UDP, srcPort: r.pick(CLIENT_PORTS), dstPort: r.pick(PORTS), noUdpChecksum: !v6 && r.bool(0.3), payload };
      case 6:
      case 7:
        return { ...ends, icmpType: fromClient === r.bool(0.8) ? (v6 ? 128 : 8) : (v6 ? 129 : 0), icmpIdentifier: r.pick([7, 8, 40000]), payload };
      case 8:
        return { ...ends, icmpType: v6 ? 2 : 11, payload };
      default:
        return { ...ends, protocol: 47, payload };
    }
  }

  /** An answer to something forwarded, or a stray packet, from the network. */
  resourcePacket(): Uint8Array {
    const r = this.r;
    const original = this.forwarded.length > 0 && r.bool(0.8) ? r.pick(this.forwarded) : undefined;
    const parsed = original && parseIpPacket(original);
    if (!parsed || !parsed.ok) {
      const client = r.pick(CLIENT_ADDRESSES);
      const v6 = r.bool(0.3);
      const dst = r.bool(0.9) ? (v6 ? client.ipv6 : client.ipv4) : v6 ? "fd00:2021:1111::99" : "100.64.0.99";
      let bytes = buildPacket(this.transport({ src: r.pick(REALS.filter((a) => a.includes(":") === v6)), dst }, v6, false));
      if (r.bool(0.1)) bytes = mangle(bytes, r);
      return bytes;
    }
    const v = parsed.packet;
    const ends = { src: v.dstText, dst: v.srcText };
    if (r.bool(0.15)) {
      // An ICMP error quoting what was forwarded (from its destination or a router on the way).
      const quote = original!.subarray(0, Math.min(original!.length, v.headerLength + r.pick([8, 28, 200])));
      const from = r.bool(0.7) ? v.dstText : v.version === 4 ? "198.51.100.1" : "2001:db8::ff";
      return buildPacket({ src: from, dst: v.srcText, icmpType: v.version === 4 ? 3 : 1, icmpCode: 1, payload: quote });
    }
    if (v.protocol === PROTOCOL_TCP || v.protocol === PROTOCOL_UDP) {
      let bytes = buildPacket({
        ...ends, protocol: v.protocol, srcPort: v.dstPort, dstPort: v.srcPort, tcpFlags: r.pick([0x10, 0x12, 0x11, 0x04, 0x18]),
        noUdpChecksum: v.version === 4 && r.bool(0.2), payload: r.bytes(r.int(0, 24)),
      });
      if (v.version === 4 && r.bool(0.05)) bytes = fragment(bytes, r);
      return bytes;
    }
    if (v.icmpIdentifier !== undefined) {
      return buildPacket({ ...ends, icmpType: r.bool(0.9) ? (v.version === 4 ? 0 : 129) : v.version === 4 ? 8 : 128, icmpIdentifier: v.icmpIdentifier });
    }
    return buildPacket({ ...ends, protocol: v.protocol, payload: r.bytes(8) });
  }

  events(step: number, what: string): void {
    const oracle: GatewayEvent[] = [];
    for (let e = this.oracle.pollEvent(); e; e = this.oracle.pollEvent()) oracle.push(e);
    const fast: GatewayEvent[] = [];
    for (let e = this.fast.pollEvent(); e; e = this.fast.pollEvent()) fast.push(e);
    expect(fast, this.where(step, `${what}: events`)).toEqual(oracle);
    for (const e of oracle) {
      if (e.type === "resolve") this.pendingNames.add(e.name);
      else if (e.type === "peer_added") this.live.add(e.clientId);
      else if (e.type === "peer_removed") this.live.delete(e.clientId);
    }
    expect(this.fast.state.authorizationIds(), this.where(step, `${what}: authorizations`)).toEqual(this.oracle.authorizationIds());
  }

  drops(step: number): void {
    const sum: Partial<Record<DropReason, number>> = {};
    for (const [reason, n] of Object.entries(this.fast.drops) as [DropReason, number][]) sum[reason] = n + this.fast.state.drops[reason];
    expect(sum, this.where(step, "drop counts")).toEqual(this.oracle.drops);
  }

  step(step: number): void {
    const r = this.r;
    const roll = r.int(0, 99);
    if (this.pendingNames.size > 0 && r.bool(0.5)) {
      const name = r.pick([...this.pendingNames]);
      this.pendingNames.delete(name);
      const answer = r.bool(0.1) ? [] : r.shuffle([...REALS]).slice(0, r.int(1, 4));
      this.fast.handleResolved(this.now, name, answer);
      this.oracle.handleResolved(this.now, name, answer);
      this.events(step, "handleResolved");
    } else if (roll < 6) {
      const a = this.authorization();
      const result = this.oracle.createAuthorization(this.now, a);
      expect(this.fast.createAuthorization(this.now, a), this.where(step, "createAuthorization")).toEqual(result);
      if (result.ok && a.resource.type === "dns") this.dnsHeld.set(a.client.id, [...(this.dnsHeld.get(a.client.id) ?? []), Number.parseInt(a.resource.id.slice(-4), 16) - 0x2000]);
      this.events(step, "createAuthorization");
    } else if (roll < 8 && this.authorizationIds.length > 0) {
      const reject = { authorization_id: r.pick(this.authorizationIds) };
      this.fast.rejectAccess(this.now, reject);
      this.oracle.rejectAccess(this.now, reject);
      this.events(step, "rejectAccess");
    } else if (roll < 9) {
      // The portal names an authorization once per list.
      const list = Array.from({ length: r.int(0, 6) }, () => this.authorization()).filter((a, i, all) => all.findIndex((b) => b.authorization_id === a.authorization_id) === i);
      expect(this.fast.init(this.now, list), this.where(step, "init")).toEqual(this.oracle.init(this.now, list));
      this.events(step, "init");
    } else if (roll < 13 && this.pendingNames.size > 0) {
      const name = r.pick([...this.pendingNames]);
      this.pendingNames.delete(name);
      const answer = r.shuffle([...REALS]).slice(0, r.int(0, 3));
      this.fast.handleResolved(this.now, name, answer);
      this.oracle.handleResolved(this.now, name, answer);
      this.events(step, "handleResolved");
    } else if (roll < 20) {
      this.now += r.pick([r.int(0, 2000), r.int(0, 2000), r.int(10_000, 90_000), r.int(100_000, 600_000), TCP_ESTABLISHED_TIMEOUT + r.int(-1, 1)]);
    } else if (roll < 65) {
      const batch = Array.from({ length: r.int(1, 12) }, () => this.clientPacket());
      const fast = this.fast.fromClients(this.now, batch);
      const oracle = batch.map((p) => this.oracle.handleFromClient(this.now, p.clientId, p.bytes.slice()));
      expect(fast, this.where(step, "fromClients")).toEqual(oracle);
      oracle.forEach((d, i) => {
        if (d.action === "forward") this.forwarded.push(d.packet.slice());
        const proxies = batch[i]!.proxies;
        if (d.action === "consumed" && proxies) this.mapped.set(batch[i]!.clientId, new Set([...(this.mapped.get(batch[i]!.clientId) ?? []), ...proxies]));
      });
      if (this.forwarded.length > 60) this.forwarded.splice(0, 20);
      this.events(step, "fromClients");
    } else {
      const batch = Array.from({ length: r.int(1, 12) }, () => this.resourcePacket());
      const fast = this.fast.fromResources(this.now, batch);
      const oracle = batch.map((bytes) => this.oracle.handleFromResource(this.now, bytes.slice()));
      expect(fast, this.where(step, "fromResources")).toEqual(oracle);
      this.events(step, "fromResources");
    }
    this.drops(step);
    expect(this.fast.desyncs, this.where(step, "timers carried back")).toBe(0);
  }
}

describe("GatewayState behind the engine's fast path, against GatewayState alone", () => {
  it.each([
    ["release", TABLES, 24, 400, 24],
    ["debug", TABLES, 4, 300, 0],
    // Tables too small for the sequence: rules, proxies and flows the engine cannot take go to the slow path.
    ["release", { maxClients: 8, maxRules: 3, maxFlows: 3, maxProxies: 2 }, 8, 300, 0],
  ] as const)("%s build, tables %o: %i seeded sequences of %i steps agree", (build, tables, sequences, steps, minFlowHits) => {
    let fast = 0;
    let slow = 0;
    let flowHits = 0;
    for (let s = 0; s < sequences; s++) {
      const label = `fast-path differential ${build} ${tables.maxFlows} #${s}`;
      const pair = new Pair(rng(label), engineFor(build, tables), `${label} ports`);
      for (let step = 0; step < steps; step++) pair.step(step);
      fast += pair.fast.fast;
      slow += pair.fast.slow;
      flowHits += pair.fast.flowHits;
    }
    // The engine decided most of the traffic, and the slow path was exercised too.
    expect(fast).toBeGreaterThan(slow);
    expect(slow).toBeGreaterThan(0);
    expect(flowHits).toBeGreaterThanOrEqual(minFlowHits);
  });
});

// --- Targeted cases: what the random sequences must have covered, shown once each ---

describe("the fast path on known flows", () => {
  const ALICE = CLIENT_ADDRESSES[0]!;

  function setup(filters: Filter[] = []): { pair: Pair; gw: EngineBackedGateway; dns: string } {
    const pair = new Pair(rng("fast-path known"), engineFor("release"), "fast-path known ports");
    const dns = uuid(0x2000 + 11);
    const a: AuthorizationForGateway = {
      authorization_id: uuid(0x1001),
      client: { id: ALICE.id, public_key: KEYS[0]!, ipv4: ALICE.ipv4, ipv6: ALICE.ipv6, preshared_key: PSK },
      resource: { id: dns, type: "dns", name: "app", address: "app.test", filters },
      client_ice: { username: "ufrag", password: "p".repeat(22) },
      gateway_ice: { username: "gfrag", password: "q".repeat(22) },
      expires_at: new Date(EPOCH + 3_600_000).toISOString(),
    };
    for (const g of [pair.oracle, pair.fast]) g.createAuthorization(0, a);
    const control = buildPacket({
      src: ALICE.ipv4, dst: GATEWAY.ipv4, protocol: PROTOCOL_UDP, srcPort: 40001, dstPort: CONTROL_PORT,
      payload: encodeControl({ resource_id: dns, name: "app.test", proxy_ips: ["100.96.0.1", "100.96.0.2", "fd00:2021:1111:8000::1"] })!,
    });
    expect(pair.fast.fromClients(0, [{ clientId: ALICE.id, bytes: control }])).toEqual([{ action: "consumed" }]);
    pair.oracle.handleFromClient(0, ALICE.id, control.slice());
    for (const g of [pair.oracle, pair.fast]) g.handleResolved(0, "app.test", ["192.0.2.1", "2001:db8::1"]);
    pair.events(0, "setup");
    return { pair, gw: pair.fast, dns };
  }

  it("translates a flow's later packets in the engine, both ways, IPv4 and IPv6, and two proxies on one real address stay apart", () => {
    const { pair, gw } = setup();
    const sends: PacketSpec[] = [
      { src: ALICE.ipv4, dst: "100.96.0.1", protocol: PROTOCOL_UDP, srcPort: 40000, dstPort: 53, payload: Uint8Array.of(1) },
      { src: ALICE.ipv4, dst: "100.96.0.2", protocol: PROTOCOL_UDP, srcPort: 40000, dstPort: 53, payload: Uint8Array.of(2) },
      { src: ALICE.ipv6, dst: "fd00:2021:1111:8000::1", icmpType: 128, icmpIdentifier: 9 },
      { src: ALICE.ipv4, dst: "100.96.0.1", protocol: PROTOCOL_TCP, srcPort: 40001, dstPort: 443, tcpFlags: 0x02 },
    ];
    const first = gw.fromClients(1, sends.map((s) => ({ clientId: ALICE.id, bytes: buildPacket(s) })));
    expect(first.map((d) => d.action)).toEqual(["forward", "forward", "forward", "forward"]);
    const slowAfterFirst = gw.slow;
    // The same flows again: all four decided in the engine, each exactly as GatewayState decides it.
    const again = sends.map((s) => ({ clientId: ALICE.id, bytes: buildPacket(s) }));
    const fast = gw.fromClients(2, again);
    expect(fast).toEqual(again.map((p) => pair.oracle.handleFromClient(2, p.clientId, p.bytes.slice())));
    expect(gw.slow).toBe(slowAfterFirst);
    const out = fast.map((d) => (d.action === "forward" ? parseIpPacket(d.packet) : undefined));
    const [a, b, echo] = out.map((p) => (p?.ok ? p.packet : undefined));
    expect(a?.dstText).toBe("192.0.2.1");
    expect(b?.dstText).toBe("192.0.2.1");
    // The second proxy's flow had to move to another outside port: its answers must find their way back.
    expect(a?.srcPort).toBe(40000);
    expect(b?.srcPort).not.toBe(40000);
    expect(echo?.dstText).toBe("2001:db8::1");
    for (const p of out) expect(p?.ok && transportChecksumValid((fast[out.indexOf(p)] as { packet: Uint8Array }).packet, p.packet)).toBe(true);
    // Answers come back through the engine translated to the proxy and the client's own port.
    const answers = [
      buildPacket({ src: "192.0.2.1", dst: ALICE.ipv4, protocol: PROTOCOL_UDP, srcPort: 53, dstPort: b!.srcPort!, payload: Uint8Array.of(3) }),
      buildPacket({ src: "2001:db8::1", dst: ALICE.ipv6, icmpType: 129, icmpIdentifier: 9 }),
    ];
    const slowBefore = gw.slow;
    const back = gw.fromResources(3, answers);
    expect(back).toEqual(answers.map((bytes) => pair.oracle.handleFromResource(3, bytes.slice())));
    expect(gw.slow).toBe(slowBefore);
    const udp = back[0]!.action === "forward" ? parseIpPacket(back[0]!.packet) : undefined;
    expect(udp?.ok && [udp.packet.srcText, udp.packet.dstPort]).toEqual(["100.96.0.2", 40000]);
    pair.events(4, "after");
  });

  it("keeps an answered TCP flow for the established timeout, carried back into GatewayState", () => {
    const { pair, gw } = setup([{ protocol: "tcp", ports: ["443"] }]);
    const syn = { src: ALICE.ipv4, dst: "100.96.0.1", protocol: PROTOCOL_TCP, srcPort: 40000, dstPort: 443 };
    const both = (now: number, spec: PacketSpec): void => {
      const bytes = buildPacket(spec);
      expect(gw.fromClients(now, [{ clientId: ALICE.id, bytes }])).toEqual([pair.oracle.handleFromClient(now, ALICE.id, bytes.slice())]);
    };
    both(0, { ...syn, tcpFlags: 0x02 });
    const synAck = buildPacket({ src: "192.0.2.1", dst: ALICE.ipv4, protocol: PROTOCOL_TCP, srcPort: 443, dstPort: 40000, tcpFlags: 0x12 });
    expect(gw.fromResources(1, [synAck])).toEqual([pair.oracle.handleFromResource(1, synAck.slice())]);
    const decided = gw.fast;
    // Past the transitory timeout, the flow lives on because the engine saw it established.
    both(1 + 30 * 60_000, { ...syn, tcpFlags: 0x10 });
    expect(gw.fast).toBe(decided + 1);
    // A refused port on the same proxy: the engine answers Refused, and the reply is GatewayState's.
    both(1 + 30 * 60_000, { ...syn, dstPort: 80, tcpFlags: 0x02 });
    pair.events(5, "after");
    pair.drops(5);
  });

  it("refuses, drops and forwards ip and cidr traffic in the engine with GatewayState's statuses", () => {
    const r = rng("fast-path statuses");
    const engine = engineFor("release");
    const fast = new EngineBackedGateway({ ...GATEWAY, epochMs: EPOCH, random: (n) => r.bytes(n) }, engine);
    const a: AuthorizationForGateway = {
      authorization_id: uuid(0x1001),
      client: { id: ALICE.id, public_key: KEYS[0]!, ipv4: ALICE.ipv4, ipv6: ALICE.ipv6, preshared_key: PSK },
      resource: { id: uuid(0x3001), type: "cidr", name: "net", address: "10.0.0.0/24", filters: [{ protocol: "tcp", ports: ["443"] }] },
      client_ice: { username: "ufrag", password: "p".repeat(22) },
      gateway_ice: { username: "gfrag", password: "q".repeat(22) },
      expires_at: new Date(EPOCH + 3_600_000).toISOString(),
    };
    fast.createAuthorization(0, a);
    const packets = [
      buildPacket({ src: ALICE.ipv4, dst: "10.0.0.5", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }),
      buildPacket({ src: ALICE.ipv4, dst: "10.0.0.5", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 80 }),
      buildPacket({ src: ALICE.ipv4, dst: "10.0.1.5", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }),
      buildPacket({ src: "100.64.0.99", dst: "10.0.0.5", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }),
      fragment(buildPacket({ src: ALICE.ipv4, dst: "10.0.0.5", protocol: PROTOCOL_TCP, srcPort: 1, dstPort: 443 }), r),
      Uint8Array.of(0x45, 0, 0),
    ];
    const decisions = fast.fromClients(1, packets.map((bytes) => ({ clientId: ALICE.id, bytes })));
    expect(decisions.map((d) => (d.action === "drop" ? d.reason : d.action))).toEqual(["forward", "reply", "reply", "spoofed", "fragment", "malformed"]);
    expect(fast.slow).toBe(0);
    expect(fast.engine.gateway.status(0)).toBe(GatewayStatus.Ok);
    // Past the authorization's expiry nothing is forwarded: GatewayState expires it before the batch.
    expect(fast.fromClients(3_600_000, [{ clientId: ALICE.id, bytes: packets[0]! }])).toEqual([{ action: "drop", reason: "unknown_client" }]);
    expect(fast.engine.gateway.lookupAddress(parseIp(ALICE.ipv4)!)).toBeUndefined();
  });
});
