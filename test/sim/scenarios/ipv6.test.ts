// Scenario: IPv6 end to end over the IPv4 underlay. The tunnel carries the client's IPv6 packets
// (from its fd00:2021:1111::/107 tunnel address) to three resources behind the gateway:
// 1. an IPv6 ip resource and a host in an IPv6 cidr resource, echoed back unchanged;
// 2. a DNS resource whose AAAA records the client's resolver answers with proxy IPs from
//    fd00:2021:1111:8000::/107; the gateway maps the proxy IP onto the name's real IPv6 address
//    and back;
// 3. a port the resource's filters leave out: the gateway answers ICMPv6 destination unreachable,
//    administratively prohibited (type 1, code 1), from the address the client sent to, and the
//    packet never reaches the resource.
// The underlay (hosts, NATs, relays) is IPv4 only: what is IPv6 here is the tunnel's inner traffic.

import { beforeEach, describe, expect, it } from "vitest";
import { canonicalIp, isProxyIp } from "../../../daemons/proto/dns/address-plan.js";
import { TYPE_A, TYPE_AAAA } from "../../../daemons/proto/dns/constants.js";
import { ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED, ICMPV6_TYPE_DESTINATION_UNREACHABLE, PROTOCOL_ICMPV6 } from "../../../daemons/proto/ip/constants.js";
import type { GatewayResource } from "../../../daemons/proto/portal/schema.js";
import { Rng, reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted, symmetric } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { forwardedPackets, lookup, sendUntil, type SeenPacket } from "./apps.js";
import { buildWorld, CLIENT_TUNNEL, ECHO_PORT, GATEWAY_ID, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

/** A port no filter below allows. */
const REFUSED_PORT = 9;
const APP_PORT = 41_000;
const V6_IP = "2001:db8:50::50";
const V6_CIDR = "2001:db8:60::/64";
const DNS_NAME = "v6.example.test";
const DNS_REAL_V4 = "203.0.113.60";
const DNS_REAL_V6 = "2001:db8:70::70";
const ECHO_ONLY = [{ protocol: "udp" as const, ports: [String(ECHO_PORT)] }];

const RESOURCES: GatewayResource[] = [
  { id: "b3000000-0000-4000-8000-000000000601", type: "ip", name: "v6 ip", address: V6_IP, filters: ECHO_ONLY },
  { id: "b3000000-0000-4000-8000-000000000602", type: "cidr", name: "v6 cidr", address: V6_CIDR, filters: [] },
  { id: "b3000000-0000-4000-8000-000000000603", type: "dns", name: "v6 dns", address: DNS_NAME, filters: ECHO_ONLY },
];

function world(seed: number, kind: string, nat: typeof portRestricted): World {
  return buildWorld(seed, `ipv6 ${kind}`, {
    clientNat: nat, gatewayNat: nat, internet: { jitter: 5, loss: 0.02 }, resources: RESOURCES,
    resolve: (name) => (name === DNS_NAME ? [DNS_REAL_V4, DNS_REAL_V6] : []),
  });
}

/** The echo of a datagram to dst: IPv6 from dst's port 7 to the client's tunnel address and port. */
function expectEcho(w: World, answer: SeenPacket | undefined, dst: string, what: string): void {
  expect(answer, w.net.where(`no echo from ${what} ${dst}\n${w.net.traceTail(40)}`)).toBeDefined();
  const p = answer!.packet;
  expect([p.version, p.srcText, p.dstText, p.srcPort, p.dstPort], w.net.where(what)).toEqual([6, canonicalIp(dst), canonicalIp(CLIENT_TUNNEL.ipv6), ECHO_PORT, APP_PORT]);
}

/** ICMPv6 1/1 about a datagram to dst's refused port, from dst, quoting it whole, with a valid checksum. */
function expectProhibited(w: World, error: SeenPacket | undefined, dst: string, what: string): void {
  expect(error, w.net.where(`no ICMPv6 for ${what} ${dst}:${REFUSED_PORT}`)).toBeDefined();
  const p = error!.packet;
  expect([p.version, p.protocol, p.icmpType, p.icmpCode], w.net.where(what)).toEqual([6, PROTOCOL_ICMPV6, ICMPV6_TYPE_DESTINATION_UNREACHABLE, ICMPV6_CODE_ADMINISTRATIVELY_PROHIBITED]);
  expect([p.srcText, p.dstText], w.net.where(what)).toEqual([canonicalIp(dst), canonicalIp(CLIENT_TUNNEL.ipv6)]);
  expect(error!.checksumOk, w.net.where(`${what}: ICMPv6 checksum`)).toBe(true);
  expect([error!.quoted?.dstText, error!.quoted?.dstPort, error!.quoted?.srcPort], w.net.where(what)).toEqual([canonicalIp(dst), REFUSED_PORT, APP_PORT]);
}

function scenario(seed: number, kind: string, nat: typeof portRestricted, relayed: boolean): void {
  const w = world(seed, kind, nat);
  const rng = new Rng("ipv6 hosts", seed);
  w.start();
  w.net.runFor(2_000);

  // 1. The ip resource, then a random host of the cidr resource.
  expectEcho(w, sendUntil(w, { dst: V6_IP, srcPort: APP_PORT, dstPort: ECHO_PORT, text: "ip" }, "echo"), V6_IP, "ip resource");
  expect(w.client.node.selectedPair(GATEWAY_ID)?.relayed, w.net.where()).toBe(relayed);
  const cidrHost = `2001:db8:60::${rng.int(1, 0xffff).toString(16)}:${rng.int(1, 0xffff).toString(16)}`;
  expectEcho(w, sendUntil(w, { dst: cidrHost, srcPort: APP_PORT, dstPort: ECHO_PORT, text: "cidr" }, "echo"), cidrHost, "cidr resource");

  // 2. The DNS resource: AAAA over the IPv6 sentinel gives proxy IPs; A still gives IPv4 ones.
  const aaaa = lookup(w, DNS_NAME, TYPE_AAAA, 6);
  expect(aaaa?.length, w.net.where("AAAA answer")).toBeGreaterThan(0);
  expect(aaaa!.every((a) => a.includes(":") && isProxyIp(a)), w.net.where(`AAAA ${aaaa!.join(",")}`)).toBe(true);
  const a = lookup(w, DNS_NAME, TYPE_A, 6);
  expect(a!.length > 0 && a!.every((x) => !x.includes(":") && isProxyIp(x)), w.net.where(`A ${a?.join(",")}`)).toBe(true);
  const proxy = rng.pick(aaaa!);
  const forwardedBefore = w.gatewayAttachment.events.length;
  expectEcho(w, sendUntil(w, { dst: proxy, srcPort: APP_PORT, dstPort: ECHO_PORT, text: "dns" }, "echo"), proxy, "dns resource");
  // At the resource, the packet came to the real IPv6 address from the client's tunnel address.
  const atResource = forwardedPackets(w, forwardedBefore).filter((p) => p.text?.startsWith("dns #"));
  expect(atResource.length, w.net.where()).toBeGreaterThan(0);
  expect(atResource.every((p) => p.packet.dstText === canonicalIp(DNS_REAL_V6) && p.packet.srcText === canonicalIp(CLIENT_TUNNEL.ipv6)), w.net.where(atResource.map((p) => `${p.packet.srcText}>${p.packet.dstText}`).join(","))).toBe(true);

  // 3. Filters: a refused port on the ip and the dns resource; the cidr resource has none.
  expectProhibited(w, sendUntil(w, { dst: V6_IP, srcPort: APP_PORT, dstPort: REFUSED_PORT, text: "refused ip" }, "icmp"), V6_IP, "ip resource");
  expectProhibited(w, sendUntil(w, { dst: proxy, srcPort: APP_PORT, dstPort: REFUSED_PORT, text: "refused dns" }, "icmp"), proxy, "dns resource");
  w.net.runFor(1_000);
  const leaked = forwardedPackets(w).filter((p) => p.packet.dstPort === REFUSED_PORT);
  expect(leaked.map((p) => `${p.packet.dstText}:${p.packet.dstPort} ${p.text}`), w.net.where()).toEqual([]);
}

describe("scenario: IPv6 inside the tunnel (IPv4 underlay)", () => {
  for (const [kind, nat, relayed] of [["direct, port-restricted NATs", portRestricted, false], ["relayed, symmetric NATs", symmetric, true]] as const) {
    it(`ip, cidr and dns resources over IPv6; a filtered port gets ICMPv6 1/1 (${kind})`, async () => {
      await runSeeds(`ipv6 ${kind}`, (seed) => scenario(seed, kind, nat, relayed), { count: 4 });
    }, 60_000);
  }
});
