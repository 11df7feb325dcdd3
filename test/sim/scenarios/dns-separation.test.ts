// Scenario: two DNS resources whose names resolve to the same real address stay separate, in the
// whole simulated world (client → tunnel → gateway → echo host and back):
// 1. each name gets its own proxy IPs from the client's resolver;
// 2. an application sends from one client port to a proxy IP of each: at the real address the two
//    flows arrive from different ports (the gateway's NAT keeps them apart), and each echo comes
//    back from the proxy IP it was sent to, never the other;
// 3. each resource's filters apply to its own name only: a port one allows and the other does not
//    reaches the real address through the first and gets ICMP prohibited through the second;
// 4. reject_access for one of them, landing in the middle of a burst, stops its flow at the gateway
//    at once (nothing of it is forwarded from that instant on), while the other goes on answering
//    on the same client port.
// With the portal's pair secrets (one preshared key and ICE credentials per client and gateway) the
// second authorization reuses the tunnel; with secrets per authorization it rebuilds it.

import { beforeEach, describe, expect, it } from "vitest";
import { isProxyIp } from "../../../daemons/proto/dns/address-plan.js";
import { TYPE_A } from "../../../daemons/proto/dns/constants.js";
import { ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED, ICMP_TYPE_DESTINATION_UNREACHABLE, PROTOCOL_ICMP, PROTOCOL_UDP } from "../../../daemons/proto/ip/constants.js";
import type { GatewayResource } from "../../../daemons/proto/portal/schema.js";
import { Rng, reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted, symmetric } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { forwardedPackets, lookup, sendUdp, sendUntil, tunPackets, type SeenPacket } from "./apps.js";
import { buildWorld, CLIENT_ID, ECHO_PORT, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

const SHARED_V4 = "203.0.113.77";
const SHARED_V6 = "2001:db8:77::77";
/** The one client port every flow here leaves from. */
const APP_PORT = 40_000;
/** Allowed for alpha (no filters), refused for beta (udp 7 only). */
const OTHER_PORT = 9;
const BURST = 20;
/** Between two datagrams of a burst, ms. */
const BURST_GAP = 50;
/** Time for reject_access to land (the stub portal's 10 ms) and a round trip to settle. */
const SETTLE_MS = 200;

interface Name {
  label: "alpha" | "beta";
  resource: GatewayResource;
}

const NAMES: Name[] = [
  { label: "alpha", resource: { id: "b3000000-0000-4000-8000-000000000701", type: "dns", name: "alpha", address: "alpha.example.test", filters: [] } },
  { label: "beta", resource: { id: "b3000000-0000-4000-8000-000000000702", type: "dns", name: "beta", address: "beta.example.test", filters: [{ protocol: "udp", ports: [String(ECHO_PORT)] }] } },
];

function world(seed: number, rng: Rng, pairSecrets: boolean): World {
  const [kind, nat] = rng.pick([["port-restricted", portRestricted], ["symmetric", symmetric]] as const);
  return buildWorld(seed, `dns separation (${kind} NATs, ${pairSecrets ? "pair" : "per-authorization"} secrets)`, {
    clientNat: nat, gatewayNat: nat, internet: { jitter: 5 }, resources: NAMES.map((n) => n.resource), pairSecrets,
    resolve: (name) => (NAMES.some((n) => n.resource.address === name) ? [SHARED_V4, SHARED_V6] : []),
  });
}

/** Which name a datagram of this test belongs to, by the label its text starts with. */
function labelOf(text: string | undefined): string | undefined {
  return NAMES.find((n) => text?.startsWith(`${n.label} `))?.label;
}

/**
 * Every echo into the TUN device comes from the proxy IP its name was given, to the one client port;
 * and at the real address, each name's datagrams came from ports the other's never used.
 */
function expectApart(w: World, proxyOf: Map<string, string>, seen: { tun: SeenPacket[]; forwarded: SeenPacket[] }): void {
  const echoes = seen.tun.filter((p) => p.packet.protocol === PROTOCOL_UDP && labelOf(p.text) !== undefined);
  const crossed = echoes.filter((p) => p.packet.srcText !== proxyOf.get(labelOf(p.text)!) || p.packet.dstPort !== APP_PORT || p.packet.srcPort !== ECHO_PORT);
  expect(crossed.map((p) => `${p.text} from ${p.packet.srcText}:${p.packet.srcPort} to ${p.packet.dstPort}`), w.net.where()).toEqual([]);
  const ports = new Map<string, Set<number>>();
  for (const p of seen.forwarded) {
    const label = labelOf(p.text);
    if (label === undefined) continue;
    expect(p.packet.dstText, w.net.where(`${p.text} forwarded`)).toBe(SHARED_V4);
    ports.set(label, (ports.get(label) ?? new Set()).add(p.packet.srcPort!));
  }
  const [alpha, beta] = [ports.get("alpha") ?? new Set<number>(), ports.get("beta") ?? new Set<number>()];
  expect([...alpha].filter((port) => beta.has(port)), w.net.where(`alpha from ${[...alpha].join(",")}, beta from ${[...beta].join(",")}`)).toEqual([]);
}

/** Both names, interleaved, from the one client port; the texts sent per name. */
function burst(w: World, proxyOf: Map<string, string>, tag: string): Map<string, string[]> {
  const sent = new Map<string, string[]>(NAMES.map((n) => [n.label, []]));
  for (let i = 0; i < BURST; i++) {
    for (const n of NAMES) {
      const text = `${n.label} ${tag} ${i}`;
      sent.get(n.label)!.push(text);
      sendUdp(w, { dst: proxyOf.get(n.label)!, srcPort: APP_PORT, dstPort: ECHO_PORT, text });
    }
    w.net.runFor(BURST_GAP);
  }
  w.net.runFor(1_000);
  return sent;
}

function scenario(seed: number, pairSecrets: boolean): void {
  const rng = new Rng("dns separation plan", seed);
  const w = world(seed, rng, pairSecrets);
  w.start();
  w.net.runFor(2_000);

  // 1. Each name its own proxy IPs.
  const proxyOf = new Map<string, string>();
  const all = new Map<string, string[]>();
  for (const n of NAMES) {
    const answer = lookup(w, n.resource.address!, TYPE_A);
    expect(answer !== undefined && answer.length > 0 && answer.every(isProxyIp), w.net.where(`${n.label}: ${answer?.join(",")}`)).toBe(true);
    all.set(n.label, answer!);
    proxyOf.set(n.label, rng.pick(answer!));
  }
  expect(all.get("alpha")!.filter((a) => all.get("beta")!.includes(a)), w.net.where("proxy IPs shared by both names")).toEqual([]);

  // 2. One flow per name from the same client port, then both interleaved.
  const start = { tun: w.clientAttachment.events.length, forwarded: w.gatewayAttachment.events.length };
  for (const n of NAMES) {
    const echo = sendUntil(w, { dst: proxyOf.get(n.label)!, srcPort: APP_PORT, dstPort: ECHO_PORT, text: `${n.label} first` }, "echo");
    expect(echo, w.net.where(`${n.label} never answered\n${w.net.traceTail(40)}`)).toBeDefined();
  }
  const sent = burst(w, proxyOf, "both");
  const echoed = new Set(tunPackets(w, start.tun).map((p) => p.text));
  for (const n of NAMES) {
    const lost = sent.get(n.label)!.filter((text) => !echoed.has(text));
    expect(lost, w.net.where(`${n.label}: unanswered`)).toEqual([]);
  }
  expect(w.gateway.state.natFlows, w.net.where("NAT flows")).toBeGreaterThanOrEqual(2);
  expectApart(w, proxyOf, { tun: tunPackets(w, start.tun), forwarded: forwardedPackets(w, start.forwarded) });

  // 3. The other port: through alpha to the real address, refused through beta.
  const forwardedBefore = w.gatewayAttachment.events.length;
  const refused = sendUntil(w, { dst: proxyOf.get("beta")!, srcPort: APP_PORT, dstPort: OTHER_PORT, text: "beta other port" }, "icmp");
  expect([refused?.packet.protocol, refused?.packet.icmpType, refused?.packet.icmpCode, refused?.packet.srcText], w.net.where("beta's refusal"))
    .toEqual([PROTOCOL_ICMP, ICMP_TYPE_DESTINATION_UNREACHABLE, ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED, proxyOf.get("beta")]);
  sendUdp(w, { dst: proxyOf.get("alpha")!, srcPort: APP_PORT, dstPort: OTHER_PORT, text: "alpha other port" });
  w.net.runFor(500);
  const other = forwardedPackets(w, forwardedBefore).filter((p) => p.packet.dstPort === OTHER_PORT);
  expect(other.map((p) => `${p.text} to ${p.packet.dstText}`), w.net.where()).toEqual([`alpha other port to ${SHARED_V4}`]);

  // 4. One of them revoked at the gateway in the middle of a burst, then a burst after it.
  const [revoked, kept] = rng.bool() ? [NAMES[0]!, NAMES[1]!] : [NAMES[1]!, NAMES[0]!];
  const authorization = w.authorizations.findLast((a) => a.resource.id === revoked.resource.id)!;
  const reject = { authorization_id: authorization.authorization_id, client_id: CLIENT_ID, resource_id: revoked.resource.id };
  w.net.at(w.net.now + (BURST * BURST_GAP) / 2, () => w.portal.send("portal", "gateway", { event: "reject_access", payload: reject }));
  const during = { tun: w.clientAttachment.events.length, forwarded: w.gatewayAttachment.events.length };
  const sentDuring = burst(w, proxyOf, "during");
  const rejectedAt = w.gatewayParty.received.find((r) => r.message.event === "reject_access")!.at;
  const detail = `${revoked.label} revoked at ${rejectedAt}`;
  const revokedForwarded = forwardedPackets(w, during.forwarded).filter((p) => labelOf(p.text) === revoked.label);
  expect(revokedForwarded.length, w.net.where(`${detail}: nothing of ${revoked.label} forwarded before`)).toBeGreaterThan(0);
  expect(revokedForwarded.filter((p) => p.at >= rejectedAt).map((p) => `${p.text} at ${p.at}`), w.net.where(detail)).toEqual([]);
  const tunDuring = tunPackets(w, during.tun);
  const echoedDuring = new Set(tunDuring.filter((p) => p.packet.protocol === PROTOCOL_UDP).map((p) => p.text));
  const forwardedBeforeReject = new Set(revokedForwarded.map((p) => p.text));
  expect(sentDuring.get(revoked.label)!.filter((text) => echoedDuring.has(text) && !forwardedBeforeReject.has(text)), w.net.where(detail)).toEqual([]);
  expect(sentDuring.get(kept.label)!.filter((text) => !echoedDuring.has(text)), w.net.where(`${detail}: ${kept.label} unanswered`)).toEqual([]);

  w.net.runFor(SETTLE_MS);
  const after = { tun: w.clientAttachment.events.length, forwarded: w.gatewayAttachment.events.length };
  const sentAfter = burst(w, proxyOf, "after");
  const tunAfter = tunPackets(w, after.tun);
  const forwardedAfter = forwardedPackets(w, after.forwarded);
  const echoedAfter = new Set(tunAfter.filter((p) => p.packet.protocol === PROTOCOL_UDP).map((p) => p.text));
  expect(sentAfter.get(kept.label)!.filter((text) => !echoedAfter.has(text)), w.net.where(`${detail}: ${kept.label} unanswered`)).toEqual([]);
  expect(forwardedAfter.filter((p) => labelOf(p.text) === revoked.label).map((p) => `${p.text} at ${p.at}`), w.net.where(detail)).toEqual([]);
  expect(sentAfter.get(revoked.label)!.filter((text) => echoedAfter.has(text)), w.net.where(detail)).toEqual([]);
  // What the revoked name gets instead is ICMP prohibited from its proxy IP (or nothing).
  const refusals = [...tunDuring, ...tunAfter].filter((p) => p.packet.protocol === PROTOCOL_ICMP);
  expect(refusals.every((p) => p.packet.icmpType === ICMP_TYPE_DESTINATION_UNREACHABLE && p.packet.icmpCode === ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED && p.packet.srcText === proxyOf.get(revoked.label)), w.net.where(detail)).toBe(true);
  expectApart(w, proxyOf, { tun: [...tunDuring, ...tunAfter], forwarded: forwardedPackets(w, during.forwarded) });
}

describe("scenario: two DNS resources resolving to the same real address", () => {
  it("stay separate: own proxy IPs, own NAT flows, own filters, revoked one at a time", async () => {
    await runSeeds("dns separation", (seed) => scenario(seed, true), { count: 8 });
  }, 60_000);

  // The second authorization's new keys rebuild the tunnel while the first one's DNS mapping may
  // still wait in the old connection: the client must tell the gateway again on the new session.
  it("the same, when each authorization brings new keys (the tunnel is rebuilt for the second)", async () => {
    await runSeeds("dns separation per-authorization", (seed) => scenario(seed, false), { count: 8 });
  }, 60_000);
});
