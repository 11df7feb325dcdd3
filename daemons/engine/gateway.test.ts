// The gateway's fast path binding (daemons/engine/gateway.ts) on both builds: arguments refused with
// clear codes, the tunnel address index and the flow indices against Maps through random churn, a
// batch of garbage that never traps, the longest-prefix rules with ties, and the path a real
// gateway takes: open → checkInbound → fromClientsOpened on one transport batch. GatewayState itself
// is the oracle of test/gateway-fast-path.test.ts; this layer may not import it.

import { beforeEach, describe, expect, it } from "vitest";
import { BUILDS, expectCode, randomKeys } from "../../test/support/engine.js";
import { ip, ipv4Packet } from "../../test/support/ip.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { buildTransport } from "../../test/support/wireguard.js";
import { Engine, GatewayStatus, type FastFilters, type GatewayFastPath } from "./index.js";

beforeEach(reportSeedOnFailure);

const ALL: FastFilters = { all: true, icmp: false, tcp: undefined, udp: undefined };
const NONE: FastFilters = { all: false, icmp: false, tcp: undefined, udp: undefined };
const CLIENT = { ipv4: ip("100.64.0.2"), ipv6: ip("fd00:2021:1111::2") };

function configured(build: "debug" | "release", sizes = { maxClients: 8, maxRules: 32, maxFlows: 64 }): GatewayFastPath {
  const gw = Engine.create({ build, maxSessions: 4, maxRoutes: 8, maxChannels: 1, maxBatch: 64, arenaBytes: 1 << 18, gateway: sizes }).gateway;
  gw.configure({
    ipv4: ip("100.64.0.1"), ipv6: ip("fd00:2021:1111::1"), controlPort: 53535,
    proxyIpv4: { address: ip("100.96.0.0"), length: 11 }, proxyIpv6: { address: ip("fd00:2021:1111:8000::"), length: 107 },
    timeouts: { udp: 120_000, tcpEstablished: 7_440_000, tcpTransitory: 240_000, icmpQuery: 60_000 },
  });
  return gw;
}

/** A UDP/IPv4 datagram with no checksum (RFC 768 allows 0 over IPv4). */
function udp4(src: Uint8Array, dst: Uint8Array, srcPort: number, dstPort: number, payload = 4): Uint8Array {
  const packet = ipv4Packet(src, dst, 8 + payload);
  const view = new DataView(packet.buffer);
  view.setUint16(20, srcPort);
  view.setUint16(22, dstPort);
  view.setUint16(24, 8 + payload);
  view.setUint16(26, 0);
  return packet;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

describe("the gateway option", () => {
  it("is off by default, and refuses bad table sizes", () => {
    expectCode(() => Engine.create({ maxSessions: 1 }).gateway, "GATEWAY_NOT_ENABLED", "no gateway option");
    expectCode(() => Engine.create({ gateway: { maxClients: 0, maxRules: 1, maxFlows: 1 } }), "BAD_ARGUMENT", "0 clients");
    expectCode(() => Engine.create({ gateway: { maxClients: 1, maxRules: 1, maxFlows: 1.5 } }), "BAD_ARGUMENT", "fractional flows");
  });
});

describe.each(BUILDS)("the gateway's fast path binding (%s build)", (build) => {
  it("refuses bad arguments with clear codes", () => {
    const fresh = Engine.create({ build, maxSessions: 1, gateway: { maxClients: 2, maxRules: 2, maxFlows: 2 } }).gateway;
    fresh.add(udp4(CLIENT.ipv4, ip("10.0.0.1"), 1, 2), 0);
    expectCode(() => fresh.fromClients(0), "NOT_CONFIGURED", "batch before configure");
    const gw = configured(build, { maxClients: 2, maxRules: 2, maxFlows: 2 });
    expectCode(() => gw.setClient(2, CLIENT), "BAD_PEER", "peer past maxClients");
    expectCode(() => gw.setClient(0, { ...CLIENT, ipv4: ip("fd00::1") }), "BAD_ADDRESS", "16-byte ipv4");
    expectCode(() => gw.addRule(1, undefined, ALL), "NOT_FOUND", "rule for a client not set");
    gw.setClient(0, CLIENT);
    expectCode(() => gw.addRule(0, { address: ip("10.0.0.0"), length: 33 }, ALL), "BAD_ARGUMENT", "/33");
    expectCode(() => gw.addRule(0, undefined, { ...NONE, tcp: [{ start: 9, end: 8 }] }), "BAD_ARGUMENT", "reversed range");
    const prefixRule = gw.addRule(0, { address: ip("10.0.0.0"), length: 8 }, ALL);
    const dnsRule = gw.addRule(0, undefined, ALL);
    expectCode(() => gw.addRule(0, undefined, ALL), "TABLE_FULL", "third rule");
    const flow = {
      protocol: 17, peer: 0, client: CLIENT.ipv4, clientPort: 1000, proxy: ip("100.96.0.1"), port: 53, real: ip("192.0.2.1"), outsidePort: 1000,
      tcp: "opening" as const, expiresAt: 1000, rule: dnsRule,
    };
    expectCode(() => gw.addFlow({ ...flow, rule: prefixRule }), "BAD_ARGUMENT", "flow naming a prefix rule");
    expectCode(() => gw.addFlow({ ...flow, real: ip("2001:db8::1") }), "BAD_ADDRESS", "mixed families");
    expectCode(() => gw.addFlow({ ...flow, tcp: "open" as never }), "BAD_ARGUMENT", "unknown TCP state");
    gw.addFlow(flow);
    expectCode(() => gw.addFlow({ ...flow, real: ip("192.0.2.9") }), "INDEX_IN_USE", "same inside key");
    expectCode(() => gw.addFlow({ ...flow, proxy: ip("100.96.0.9") }), "INDEX_IN_USE", "same outside key");
    gw.addFlow({ ...flow, clientPort: 1001, outsidePort: 1001 });
    expectCode(() => gw.addFlow({ ...flow, clientPort: 1002, outsidePort: 1002 }), "TABLE_FULL", "third flow");
    expectCode(() => gw.removeRule(5), "NOT_FOUND", "free rule slot");
    expectCode(() => gw.setDeadline(Number.NaN), "BAD_ARGUMENT", "NaN deadline");
    expectCode(() => gw.fromClients(Number.POSITIVE_INFINITY), "BAD_ARGUMENT", "infinite now");
    expectCode(() => gw.status(0), "BAD_ARGUMENT", "status of an empty batch");
    expect(gw.removeClient(0)).toBe(true);
    expect([gw.ruleCount, gw.flowCount]).toEqual([0, 0]);
  });

  it("keeps the tunnel address index equal to a Map through random churn", () => {
    const r = rng(`gateway/addresses/${build}`);
    const gw = configured(build, { maxClients: 64, maxRules: 1, maxFlows: 1 });
    const oracle = new Map<string, number>();
    const pool = Array.from({ length: 90 }, () => (r.bool() ? r.bytes(4) : r.bytes(16)));
    for (let i = 0; i < 3000; i++) {
      const address = r.pick(pool);
      const key = hex(address);
      if (r.bool(0.6) && oracle.size < 128) {
        const peer = r.int(0, 63);
        gw.setAddress(address, peer);
        oracle.set(key, peer);
      } else {
        expect(gw.removeAddress(address), r.where(`remove #${i}`)).toBe(oracle.delete(key));
      }
      const probe = r.pick(pool);
      expect(gw.lookupAddress(probe), r.where(`lookup #${i}`)).toBe(oracle.get(hex(probe)));
    }
    for (const address of pool) expect(gw.lookupAddress(address)).toBe(oracle.get(hex(address)));
  });

  it("finds flows by their inside and outside keys through random churn", () => {
    const r = rng(`gateway/flows/${build}`);
    const gw = configured(build, { maxClients: 2, maxRules: 2, maxFlows: 48 });
    gw.setClient(1, CLIENT);
    const rule = gw.addRule(1, undefined, ALL);
    const live = new Map<number, { protocol: number; client: Uint8Array; clientPort: number; proxy: Uint8Array; port: number; real: Uint8Array; outsidePort: number }>();
    const addr = (v6: boolean, pool: number): Uint8Array => (v6 ? ip(`2001:db8::${pool}`) : ip(`192.0.2.${pool}`));
    for (let i = 0; i < 2000; i++) {
      if (live.size > 0 && (r.bool(0.4) || live.size === 48)) {
        const slot = r.pick([...live.keys()]);
        gw.removeFlow(slot);
        live.delete(slot);
      } else {
        const v6 = r.bool(0.3);
        const flow = {
          protocol: r.pick([6, 17, v6 ? 58 : 1]), peer: 1, client: v6 ? CLIENT.ipv6 : CLIENT.ipv4, clientPort: r.int(1, 6),
          proxy: addr(v6, r.int(1, 4)), port: r.int(0, 3), real: addr(v6, r.int(10, 13)), outsidePort: r.int(1, 6), tcp: "opening" as const, expiresAt: 5, rule,
        };
        const clash = [...live.values()].some((f) => f.protocol === flow.protocol && hex(f.client) === hex(flow.client) && f.port === flow.port
          && ((f.clientPort === flow.clientPort && hex(f.proxy) === hex(flow.proxy)) || (f.outsidePort === flow.outsidePort && hex(f.real) === hex(flow.real))));
        if (clash) {
          expectCode(() => gw.addFlow(flow), "INDEX_IN_USE", r.where(`clash #${i}`));
          continue;
        }
        live.set(gw.addFlow(flow), flow);
      }
      for (const [slot, f] of r.shuffle([...live]).slice(0, 4)) {
        expect(gw.findFlow("inside", f.protocol, f.client, f.clientPort, f.proxy, f.port), r.where(`inside #${i}`)).toBe(slot);
        expect(gw.findFlow("outside", f.protocol, f.client, f.outsidePort, f.real, f.port), r.where(`outside #${i}`)).toBe(slot);
      }
    }
    expect(gw.flowCount).toBe(live.size);
    for (const [slot, f] of live) {
      expect(gw.findFlow("inside", f.protocol, f.client, f.clientPort, f.proxy, f.port)).toBe(slot);
      expect(gw.findFlow("outside", f.protocol, f.client, f.outsidePort, f.real, f.port)).toBe(slot);
    }
  });

  it("never traps on a batch of garbage, and leaves what it does not forward as it was", () => {
    const r = rng(`gateway/garbage/${build}`);
    const gw = configured(build);
    gw.setClient(0, CLIENT);
    gw.addRule(0, { address: ip("0.0.0.0"), length: 0 }, ALL);
    gw.setAddress(CLIENT.ipv4, 0);
    for (const direction of ["fromClients", "fromResources"] as const) {
      for (let round = 0; round < 20; round++) {
        gw.reset();
        const packets = Array.from({ length: 64 }, () => garbage(r));
        packets.forEach((p) => gw.add(p, r.pick([0, 1, 7, 0xfffffffe])));
        expect(gw[direction](r.int(0, 1e9), { stopAtSlow: false })).toBe(64);
        packets.forEach((p, i) => {
          const status = gw.status(i);
          expect(GatewayStatus[status], r.where(`${direction} #${i}`)).toBeDefined();
          expect(status, r.where(`${direction} #${i}`)).not.toBe(GatewayStatus.OutOfBounds);
          if (status !== GatewayStatus.Ok) expect(hex(gw.packet(i))).toBe(hex(p));
        });
      }
    }
  });

  it("decides by the longest prefix; of equal ones, any that allows the packet forwards it; no rule refuses", () => {
    const gw = configured(build);
    gw.setClient(3, CLIENT);
    gw.addRule(3, { address: ip("10.0.0.0"), length: 8 }, ALL);
    gw.addRule(3, { address: ip("10.1.0.0"), length: 16 }, { ...NONE, udp: [{ start: 53, end: 53 }] });
    gw.addRule(3, { address: ip("10.1.0.0"), length: 16 }, { ...NONE, tcp: [{ start: 443, end: 443 }] });
    const slow = gw.addRule(3, { address: ip("10.2.0.0"), length: 16 }, { ...NONE, tcp: Array.from({ length: 9 }, (_, i) => ({ start: i + 1, end: i + 1 })) });
    const cases: [string, number, GatewayStatus][] = [
      ["10.9.9.9", 80, GatewayStatus.Ok],
      ["10.1.2.3", 53, GatewayStatus.Ok],
      ["10.1.2.3", 80, GatewayStatus.Refused],
      ["10.2.0.1", 80, GatewayStatus.Slow],
      ["11.0.0.1", 80, GatewayStatus.Refused],
    ];
    gw.reset();
    for (const [dst, port] of cases) gw.add(udp4(CLIENT.ipv4, ip(dst), 1000, port), 3);
    gw.add(udp4(ip("100.64.0.9"), ip("10.9.9.9"), 1000, 80), 3);
    gw.add(udp4(CLIENT.ipv4, ip("100.64.0.1"), 1000, 53535), 3);
    gw.fromClients(1);
    expect(cases.map((_, i) => GatewayStatus[gw.status(i)])).toEqual(cases.map(([, , s]) => GatewayStatus[s]));
    expect([gw.status(5), gw.status(6)]).toEqual([GatewayStatus.SourceNotAllowed, GatewayStatus.Slow]);
    // An internet resource (slowUnmatched) sends what no rule holds to the slow path instead.
    gw.setClient(3, { ...CLIENT, slowUnmatched: true });
    gw.removeRule(slow);
    gw.fromClients(1);
    expect([gw.status(3), gw.status(4)]).toEqual([GatewayStatus.Ok, GatewayStatus.Slow]);
    // Rules the tables could not all take: only the slow path may judge.
    gw.setClient(3, { ...CLIENT, rulesIncomplete: true });
    gw.fromClients(1);
    expect(gw.status(0)).toBe(GatewayStatus.Slow);
    gw.setClient(3, CLIENT);
    // Past the deadline nothing is decided.
    gw.setDeadline(5);
    gw.fromClients(5);
    expect(gw.status(0)).toBe(GatewayStatus.Slow);
  });

  it("judges a mapped proxy IP by its DNS resource's filters, and an unmapped one by the rules once all proxies are held", () => {
    const gw = configured(build);
    gw.setClient(2, CLIENT);
    gw.addRule(2, { address: ip("100.96.0.0"), length: 16 }, ALL);
    const dns = gw.addRule(2, undefined, { ...NONE, udp: [{ start: 53, end: 53 }] });
    gw.setProxy(2, ip("100.96.0.1"), dns);
    expectCode(() => gw.setProxy(2, ip("100.96.0.2"), 99), "BAD_ARGUMENT", "a rule the peer does not hold");
    const gre = udp4(CLIENT.ipv4, ip("100.96.0.1"), 1000, 53);
    gre[9] = 47;
    gre[10] = 0;
    gre[11] = 0;
    const sum = Array.from({ length: 10 }, (_, i) => (gre[2 * i]! << 8) | gre[2 * i + 1]!).reduce((a, b) => a + b, 0);
    const folded = (sum & 0xffff) + (sum >>> 16);
    gre[10] = (~folded >>> 8) & 0xff;
    gre[11] = ~folded & 0xff;
    gw.reset();
    gw.add(udp4(CLIENT.ipv4, ip("100.96.0.1"), 1000, 53), 2); // allowed, no flow yet: GatewayState creates it
    gw.add(udp4(CLIENT.ipv4, ip("100.96.0.1"), 1000, 80), 2); // the resource's filters refuse
    gw.add(gre, 2); // allowed by nothing: refused (and NAT could not track it anyway)
    gw.add(udp4(CLIENT.ipv4, ip("100.96.0.9"), 1000, 80), 2); // not mapped
    gw.fromClients(1);
    expect([0, 1, 2, 3].map((i) => GatewayStatus[gw.status(i)])).toEqual(["Slow", "Refused", "Refused", "Slow"]);
    gw.setClient(2, { ...CLIENT, proxiesComplete: true });
    gw.fromClients(1);
    expect(GatewayStatus[gw.status(3)]).toBe("Ok");
    expect(gw.removeProxy(2, ip("100.96.0.1"))).toBe(true);
    expect(gw.removeProxy(2, ip("100.96.0.1"))).toBe(false);
    gw.fromClients(1);
    expect(GatewayStatus[gw.status(1)]).toBe("Ok");
    expect(gw.proxyCount).toBe(0);
  });

  it("decides a transport batch after open and checkInbound, by each session's peer", () => {
    const r = rng(`gateway/opened/${build}`);
    const engine = Engine.create({ build, maxSessions: 4, maxRoutes: 8, maxChannels: 1, gateway: { maxClients: 8, maxRules: 8, maxFlows: 8 } });
    const gw = engine.gateway;
    gw.configure({
      ipv4: ip("100.64.0.1"), ipv6: ip("fd00:2021:1111::1"), controlPort: 53535,
      proxyIpv4: { address: ip("100.96.0.0"), length: 11 }, proxyIpv6: { address: ip("fd00:2021:1111:8000::"), length: 107 },
      timeouts: { udp: 1, tcpEstablished: 1, tcpTransitory: 1, icmpQuery: 1 },
    });
    const keys = randomKeys(r, 7, 9);
    engine.sessions.install({ ...keys, peer: 5 });
    engine.routes.insert("100.64.0.2/32", 5);
    gw.setClient(5, CLIENT);
    gw.addRule(5, { address: ip("10.0.0.0"), length: 24 }, ALL);
    const plaintexts = [udp4(CLIENT.ipv4, ip("10.0.0.7"), 1, 2), udp4(CLIENT.ipv4, ip("10.0.1.7"), 1, 2), udp4(ip("100.64.0.3"), ip("10.0.0.7"), 1, 2)];
    engine.batch.reset();
    plaintexts.forEach((p, i) => engine.batch.addPacket(buildTransport(keys.recvKey, 7, BigInt(i), p)));
    expect(engine.batch.open()).toBe(3);
    expect(engine.batch.checkInbound()).toBe(2);
    gw.fromClientsOpened(engine.batch, 1);
    expect([0, 1, 2].map((i) => engine.batch.status(i) as number)).toEqual([GatewayStatus.Ok, GatewayStatus.Refused, GatewayStatus.SourceNotAllowed]);
    expect(hex(engine.batch.plaintext(0))).toBe(hex(plaintexts[0]!));
  });
});

function garbage(r: Rng): Uint8Array {
  const kind = r.int(0, 3);
  if (kind === 0) return r.bytes(r.int(0, 70));
  const packet = r.bool() ? udp4(CLIENT.ipv4, r.bytes(4), r.int(0, 65535), r.int(0, 65535), r.int(0, 30)) : ipv4Packet(r.bytes(4), CLIENT.ipv4, r.int(0, 40));
  if (kind === 1) packet[r.int(0, packet.length - 1)] = r.int(0, 255);
  if (kind === 2) return packet.subarray(0, r.int(0, packet.length));
  return packet;
}
