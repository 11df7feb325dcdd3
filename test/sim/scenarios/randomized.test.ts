// Randomized policy scenarios (issue 7): per seed, one client and one gateway behind NATs of random
// kinds, a few resources (cidr, ip, dns) behind the gateway's echo host, and a random policy; then a
// random sequence of actions in virtual time — packets to allowed, denied and unknown destinations,
// revocations (reject_access at the gateway, resource_deleted at the client, or both), re-grants and
// idle time — checked after every step against a plain reference model, a Set of allowed resource ids:
//   1. a packet sent while the model denies its resource never reaches the resource host;
//   2. a packet to an allowed resource is answered within ANSWER_BOUND_MS (the application retries);
//   3. once the gateway has a resource's reject_access, nothing reaches that resource until it is
//      granted again;
//   4. a denied or unknown destination gets ICMP prohibited or nothing, never an echo.
//
// world.ts's portal allows everything and knows one resource, so this file builds its own portal
// around world.ts's daemons: the policy decides request_authorization (authorization_creation_failed
// "denied" otherwise), and the pair's secrets (preshared key, ICE credentials) are minted, per seed,
// either once per client and gateway (a second resource reuses the tunnel) or per authorization as
// world.ts does. world.ts's gateway daemon does not answer GatewayState's resolve events; a wrapper
// here answers them at once from the DNS resources' real addresses.
//
// CI runs 200 seeds; RANDOMIZED_SEEDS=3000 proves a change (a few minutes), and RANDOMIZED_DEBUG=1
// goes on past a failure to name every failing seed (WARDLINE_SIM_SEED=0x… replays one).

import { beforeEach, describe, expect, it } from "vitest";
import { encodeDnsMessage, decodeDnsMessage, queryMessage } from "../../../daemons/proto/dns/codec.js";
import { sentinelAddresses } from "../../../daemons/proto/dns/address-plan.js";
import { CLASS_IN, DNS_PORT, TYPE_A } from "../../../daemons/proto/dns/constants.js";
import { PROTOCOL_ICMP, PROTOCOL_UDP } from "../../../daemons/proto/ip/constants.js";
import { parseIpPacket } from "../../../daemons/proto/ip/packet.js";
import { buildPacket } from "../../../daemons/proto/ip/testing.js";
import type {
  AuthorizationForGateway, ClientAuthorizationCreationFailed, ClientResource, IceCredentials, ResourceDeleted,
} from "../../../daemons/proto/portal/schema.js";
import { mintCredentials } from "../../../daemons/proto/stun/credentials.js";
import { encodeBase64 } from "../../../daemons/proto/wireguard/base64.js";
import { Rng, reportSeedOnFailure } from "../../support/prng.js";
import { fullCone, portRestricted, restrictedCone, symmetric, type NatBehaviour } from "../nat.js";
import { Network } from "../network.js";
import { StubPortal } from "../portal.js";
import { runSeeds } from "../scenario.js";
import { SIM_EPOCH_UNIX, TurnRelayNode } from "../turn.js";
import {
  authorizationCreatedFor, CLIENT_ID, CLIENT_TUNNEL, ClientDaemon, ECHO_PORT, GATEWAY_ID, GatewayDaemon, REALM, RELAY_IDS, RELAY_SECRET,
  relayCandidates, SITE_ID, WG_PORT, type PortalMessage,
} from "./world.js";

beforeEach(reportSeedOnFailure);

/** How long an allowed resource may take to answer, the application sending once a second. */
const ANSWER_BOUND_MS = 30_000;
/** Time for a portal message to land (10 ms each way, twice) and its effects to settle. */
const SETTLE_MS = 200;
/** How long a packet to a denied or unknown destination is watched. */
const DENIED_WATCH_MS = 500;
const EXPIRES_AT = new Date((SIM_EPOCH_UNIX + 30 * 86_400) * 1000).toISOString();
/** An address no resource holds. */
const NOWHERE = "203.0.113.250";
const NAT_KINDS: [string, NatBehaviour][] = [["full-cone", fullCone], ["restricted-cone", restrictedCone], ["port-restricted", portRestricted], ["symmetric", symmetric]];

/** The portal events this file adds to world.ts's. */
type PolicyMessage =
  | PortalMessage
  | { event: "resource_deleted"; payload: ResourceDeleted }
  | { event: "resource_created_or_updated"; payload: ClientResource }
  | { event: "authorization_creation_failed"; payload: ClientAuthorizationCreationFailed };

/** world.ts's client, also taking the resource and refusal events a policy needs. */
class PolicyClient extends ClientDaemon {
  fromPolicyPortal(now: number, message: PolicyMessage): void {
    switch (message.event) {
      case "resource_deleted":
      case "resource_created_or_updated":
      case "authorization_creation_failed":
        this.device.handlePortal(now, message);
        break;
      default:
        this.fromPortal(now, message);
        return;
    }
    this.drain(now);
  }
}

interface SimResource {
  id: string;
  type: "ip" | "cidr" | "dns";
  /** As the portal lists it: an address, a prefix or a name. */
  address: string;
  /** Where the echo host sees packets for it (a dns resource's name resolves here; a cidr's prefix is /24). */
  holds: (address: string) => boolean;
  /** A destination for a packet (cidr: a random host in the prefix; dns: the real address, the client uses a proxy IP). */
  target: (rng: Rng) => string;
}

function makeResources(rng: Rng): SimResource[] {
  const count = rng.int(2, 5);
  return Array.from({ length: count }, (_, i): SimResource => {
    const id = `b3000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`;
    const type = rng.pick(["ip", "cidr", "dns"] as const);
    if (type === "ip") {
      const address = `203.0.113.${10 + i}`;
      return { id, type, address, holds: (a) => a === address, target: () => address };
    }
    if (type === "cidr") {
      const base = `198.18.${i}.`;
      return { id, type, address: `${base}0/24`, holds: (a) => a.startsWith(base), target: (r) => `${base}${r.int(1, 254)}` };
    }
    const real = `203.0.113.${100 + i}`;
    return { id, type, address: `svc${i}.example.test`, holds: (a) => a === real, target: () => real };
  });
}

function clientResource(r: SimResource): ClientResource {
  return { id: r.id, type: r.type, name: `resource ${r.id.slice(-2)}`, address: r.address, address_description: null, sites: [{ id: SITE_ID, name: "site" }], filters: [] };
}

function iceCredentials(random: (n: number) => Uint8Array): IceCredentials {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const text = (n: number) => [...random(n)].map((b) => alphabet[b % alphabet.length]).join("");
  return { username: text(8), password: text(24) };
}

/** One packet the test wrote into the client's TUN device. */
interface Sent {
  id: number;
  /** The resource it was meant for; undefined: an address no resource holds. */
  resourceId: string | undefined;
  /** Whether the model allowed its resource when it was sent. */
  allowed: boolean;
  sentAt: number;
}

/** A world with a policy: world.ts's daemons, relays and NATs, and a portal that consults `allowed`. */
function buildPolicyWorld(seed: number, rng: Rng) {
  const resources = makeResources(rng);
  const allowed = new Set(resources.filter(() => rng.bool()).map((r) => r.id));
  const [clientNatKind, clientNat] = rng.pick(NAT_KINDS);
  const [gatewayNatKind, gatewayNat] = rng.pick(NAT_KINDS);
  const jitter = rng.int(0, 10);
  const net = new Network({ seed, label: `randomized policy (${clientNatKind}/${gatewayNatKind})`, internet: { jitter }, traceLimit: 2_000 });
  const portal = new StubPortal<PolicyMessage>(net);
  const relayHosts = [net.addHost("relay-a", "192.0.2.10"), net.addHost("relay-b", "192.0.2.20")];
  for (const host of relayHosts) new TurnRelayNode(net, host, { realm: REALM, secrets: [RELAY_SECRET] });
  const clientHost = net.addHost("client", "192.168.1.10", net.addNat("client-nat", "198.51.100.1", clientNat).inside);
  const gatewayHost = net.addHost("gateway", "192.168.2.10", net.addNat("gateway-nat", "198.51.100.2", gatewayNat).inside);
  const random = (name: string) => net.randomBytes(name);
  const wallClockAtZeroNanos = BigInt(SIM_EPOCH_UNIX) * 1_000_000_000n;
  // The daemons only send world.ts's messages; the extra ones go the other way.
  const daemonPortal = portal as unknown as StubPortal<PortalMessage>;
  const client = new PolicyClient({ privateKey: random("client-key")(32), port: WG_PORT, random: random("client-node"), wallClockAtZeroNanos }, daemonPortal, random("client-state"));
  const gateway = new GatewayDaemon({ privateKey: random("gateway-key")(32), port: WG_PORT, random: random("gateway-node"), wallClockAtZeroNanos }, daemonPortal, random("gateway-state"));
  const clientAttachment = clientHost.bind(client, WG_PORT);
  const gatewayAttachment = gatewayHost.bind(gateway, WG_PORT);

  // The gateway's resolver: a dns resource's name has one real address, answered at once.
  gateway.resolver = (name) => {
    const i = resources.findIndex((r) => r.type === "dns" && r.address === name);
    return i < 0 ? [] : [resources[i]!.target(rng)];
  };

  const relayList = (who: string) =>
    relayHosts.map((host, i) => {
      const credentials = mintCredentials(RELAY_SECRET, who, SIM_EPOCH_UNIX + 30 * 86_400);
      return { id: RELAY_IDS[i]!, type: "turn" as const, addr: `${host.address}:3478`, username: credentials.username, password: credentials.password, expires_at: EXPIRES_AT };
    });
  // The pair's secrets: minted once for the client–gateway pair (a second resource reuses the
  // tunnel), or afresh for each authorization as world.ts does (each one rebuilds the tunnel).
  const pairSecrets = rng.bool();
  const pairRandom = random("portal-pair");
  const mint = () => ({ psk: encodeBase64(pairRandom(32)), clientIce: iceCredentials(pairRandom), gatewayIce: iceCredentials(pairRandom) });
  const pair = mint();
  let authorizationCount = 0;
  /** The authorization the portal last created per resource. */
  const authorizationOf = new Map<string, string>();

  portal.connect("portal", (_now, from, message) => {
    switch (message.event) {
      case "request_authorization": {
        const resource = resources.find((r) => r.id === message.payload.resource_id);
        if (resource === undefined || !allowed.has(resource.id)) {
          portal.send("portal", "client", { event: "authorization_creation_failed", payload: { resource_id: message.payload.resource_id, reason: "denied" } });
          return;
        }
        const secrets = pairSecrets ? pair : mint();
        const authorization: AuthorizationForGateway = {
          authorization_id: `f7000000-0000-4000-8000-${String(++authorizationCount).padStart(12, "0")}`,
          client: { id: CLIENT_ID, public_key: encodeBase64(client.node.publicKey), ...CLIENT_TUNNEL, preshared_key: secrets.psk },
          resource: { id: resource.id, type: resource.type, name: "r", address: resource.address, filters: [] },
          client_ice: secrets.clientIce,
          gateway_ice: secrets.gatewayIce,
          expires_at: EXPIRES_AT,
        };
        authorizationOf.set(resource.id, authorization.authorization_id);
        portal.send("portal", "gateway", { event: "create_authorization", payload: authorization });
        return;
      }
      case "authorization_ack": {
        const a = message.payload;
        // Revoked while the gateway installed it: the client is not told it may.
        if (!allowed.has(a.resource.id) || authorizationOf.get(a.resource.id) !== a.authorization_id) return;
        portal.send("portal", "client", authorizationCreatedFor(a, gateway.node.publicKey));
        return;
      }
      case "ice_candidates":
      case "invalidate_ice_candidates":
        relayCandidates(daemonPortal, from, message);
        return;
      default:
        return;
    }
  });
  portal.connect("client", (now, _from, message) => client.fromPolicyPortal(now, message));
  const gatewayParty = portal.connect("gateway", (now, _from, message) => gateway.fromPortal(now, message as PortalMessage));

  net.act((now) => {
    client.node.setLocalAddresses(now, [clientHost.address]);
    gateway.node.setLocalAddresses(now, [gatewayHost.address]);
  });
  net.act(() => {
    portal.send("portal", "gateway", { event: "init_gateway", relays: relayList(GATEWAY_ID) });
    portal.send("portal", "client", {
      event: "init_client",
      payload: { interface: { ...CLIENT_TUNNEL, upstream_dns: [] }, resources: resources.map(clientResource), relays: relayList(CLIENT_ID) },
    });
  });
  net.runFor(2_000);

  return { net, portal, rng, resources, allowed, client, gateway, clientAttachment, gatewayAttachment, gatewayParty, authorizationOf, describe: `${clientNatKind}/${gatewayNatKind}, jitter ${jitter}, ${pairSecrets ? "pair" : "per-authorization"} secrets` };
}

type PolicyWorld = ReturnType<typeof buildPolicyWorld>;

/** The runner: the model, the actions, and the invariants checked after each. */
class PolicyRun {
  readonly sent: Sent[] = [];
  readonly log: string[] = [];
  /** Per resource: since when (gateway time) a reject_access holds there, until a new authorization lands. */
  private readonly rejectedAtGateway = new Map<string, number>();
  /** Resources the client was told are deleted (and not yet told again). */
  private readonly deletedAtClient = new Set<string>();
  /** Resources rejected at the gateway only: the client still believes it holds them. */
  private readonly rejectedOnly = new Set<string>();
  /** Per dns resource: the proxy IP the client last answered. */
  private readonly proxyOf = new Map<string, string>();
  private readonly sentinel = sentinelAddresses(1).ipv4[0]!;
  private dnsId = 0;
  /** Forwarded / TUN events already checked. */
  private forwardedChecked = 0;
  private tunChecked = 0;
  /** Packets that came back (echoes), by id. */
  readonly answered = new Set<number>();
  /** Echo host receptions per destination address. */
  readonly reached = new Map<string, number>();

  constructor(readonly w: PolicyWorld) {}

  fail(message: string): string {
    return this.w.net.where(`${message}\n[${this.w.describe}] policy ${[...this.w.allowed].map((id) => id.slice(-2)).join(",")}\nactions:\n${this.log.join("\n")}\n${this.w.net.traceTail(40)}`);
  }

  // --- Actions ---

  /** Writes one UDP datagram for the echo host into the TUN device; its id. */
  private send(resource: SimResource | undefined): Sent {
    const { w } = this;
    const id = this.sent.length + 1;
    let dst = resource === undefined ? NOWHERE : resource.target(w.rng);
    if (resource?.type === "dns") dst = this.resolve(resource) ?? this.proxyOf.get(resource.id) ?? NOWHERE;
    const record: Sent = { id, resourceId: resource?.id, allowed: resource !== undefined && w.allowed.has(resource.id), sentAt: w.net.now };
    this.sent.push(record);
    const packet = buildPacket({ src: CLIENT_TUNNEL.ipv4, dst, protocol: PROTOCOL_UDP, srcPort: 40_000 + (id % 20_000), dstPort: ECHO_PORT, payload: new TextEncoder().encode(`probe ${id}`) });
    w.net.act((now) => w.client.tunWrite(now, packet));
    return record;
  }

  /** Asks the client's stub resolver for a dns resource's name, as an application would; its first A record. */
  private resolve(resource: SimResource): string | undefined {
    const { w } = this;
    const id = ++this.dnsId & 0xffff;
    const query = encodeDnsMessage(queryMessage(id, { name: resource.address, type: TYPE_A, class: CLASS_IN }));
    const before = w.clientAttachment.events.length;
    w.net.act((now) => w.client.tunWrite(now, buildPacket({ src: CLIENT_TUNNEL.ipv4, dst: this.sentinel, protocol: PROTOCOL_UDP, srcPort: 33_333, dstPort: DNS_PORT, payload: query })));
    for (const e of w.clientAttachment.events.slice(before)) {
      if (e.event.type !== "tun") continue;
      const parsed = parseIpPacket(e.event.packet);
      if (!parsed.ok || parsed.packet.srcPort !== DNS_PORT) continue;
      const message = decodeDnsMessage(e.event.packet.slice(parsed.packet.payloadOffset + 8, parsed.packet.length));
      if (!message.ok || message.message.id !== id) continue;
      const a = message.message.answers.find((r) => r.data.kind === "a");
      if (a?.data.kind === "a") {
        this.proxyOf.set(resource.id, a.data.address);
        return a.data.address;
      }
    }
    return undefined;
  }

  /** A packet to an allowed resource, sent again each second until one comes back; whether one did. */
  sendAllowed(resource: SimResource): void {
    const { w } = this;
    const start = w.net.now;
    const ids: number[] = [];
    // One side may have torn the pair's tunnel down while the other kept it (reject_access at the
    // gateway only, resource_deleted at the client only) and then connect again with the pair's same
    // keys and ICE credentials, so the other side keeps its connection: ICE stays up, and the
    // WireGuard session one side holds is stale. The tunnel node that gets data it cannot open then
    // starts a handshake at once, and the client tells the gateway its DNS mappings again on the
    // new session; invariant 2 holds through that too.
    while (w.net.now - start < ANSWER_BOUND_MS) {
      ids.push(this.send(resource).id);
      if (w.net.runUntil(() => { this.scan(); return ids.some((id) => this.answered.has(id)); }, 1_000)) break;
    }
    this.log.push(`${start}: send to allowed ${resource.type} ${resource.id.slice(-2)} x${ids.length}`);
    this.check();
    const answered = ids.some((id) => this.answered.has(id));
    // Invariant 2.
    expect(answered, this.fail(`allowed ${resource.type} resource ${resource.id.slice(-2)} not answered within ${ANSWER_BOUND_MS} ms`)).toBe(true);
  }

  /** One packet to a denied resource (or to no resource), watched for a while. */
  sendDenied(resource: SimResource | undefined): void {
    const { w } = this;
    this.log.push(`${w.net.now}: send to ${resource === undefined ? "no resource" : `denied ${resource.type} ${resource.id.slice(-2)}`}`);
    this.send(resource);
    w.net.runFor(DENIED_WATCH_MS);
    this.check();
  }

  /** Takes a resource away: at the gateway (reject_access), at the client (resource_deleted), or both. */
  revoke(resource: SimResource, where: "gateway" | "client" | "both"): void {
    const { w } = this;
    this.log.push(`${w.net.now}: revoke ${resource.type} ${resource.id.slice(-2)} at ${where}`);
    w.allowed.delete(resource.id);
    w.net.act(() => {
      if (where !== "client") {
        const authorizationId = w.authorizationOf.get(resource.id);
        if (authorizationId !== undefined) w.portal.send("portal", "gateway", { event: "reject_access", payload: { authorization_id: authorizationId, client_id: CLIENT_ID, resource_id: resource.id } });
        w.authorizationOf.delete(resource.id);
      }
      if (where !== "gateway" && !this.deletedAtClient.has(resource.id)) {
        w.portal.send("portal", "client", { event: "resource_deleted", payload: { id: resource.id } });
        this.deletedAtClient.add(resource.id);
      }
    });
    w.net.runFor(SETTLE_MS);
    if (where !== "client") {
      // When the gateway had it: forwarding must stop from there on.
      const at = w.gatewayParty.received.findLast((r) => r.message.event === "reject_access" && r.message.payload.resource_id === resource.id)?.at;
      if (at !== undefined && !this.rejectedAtGateway.has(resource.id)) this.rejectedAtGateway.set(resource.id, at);
      if (!this.deletedAtClient.has(resource.id)) this.rejectedOnly.add(resource.id);
    }
    this.check();
  }

  /** Grants a resource again; the client hears of it again (a client that never lost it re-syncs: deleted, then listed). */
  grant(resource: SimResource): void {
    const { w } = this;
    this.log.push(`${w.net.now}: grant ${resource.type} ${resource.id.slice(-2)}`);
    w.allowed.add(resource.id);
    w.net.act(() => {
      if (this.rejectedOnly.delete(resource.id)) w.portal.send("portal", "client", { event: "resource_deleted", payload: { id: resource.id } });
      this.deletedAtClient.delete(resource.id);
      w.portal.send("portal", "client", { event: "resource_created_or_updated", payload: clientResource(resource) });
    });
    w.net.runFor(SETTLE_MS);
    this.check();
    // From its next authorization on, the gateway may forward again.
    this.rejectedAtGateway.delete(resource.id);
  }

  idle(ms: number): void {
    this.log.push(`${this.w.net.now}: idle ${ms} ms`);
    this.w.net.runFor(ms);
    this.check();
  }

  // --- Invariants ---

  /** Echoes the client's TUN device got, by packet id; and every ICMP message there must be "prohibited". */
  private scan(): void {
    const events = this.w.clientAttachment.events;
    for (; this.tunChecked < events.length; this.tunChecked++) {
      const e = events[this.tunChecked]!;
      if (e.event.type !== "tun") continue;
      const parsed = parseIpPacket(e.event.packet);
      if (!parsed.ok) continue;
      const p = parsed.packet;
      if (p.protocol === PROTOCOL_UDP && p.srcPort === ECHO_PORT) {
        const text = new TextDecoder().decode(e.event.packet.slice(p.payloadOffset + 8, p.length));
        const id = Number(/^probe (\d+)$/.exec(text)?.[1]);
        if (Number.isInteger(id)) this.answered.add(id);
      } else if (p.protocol === PROTOCOL_ICMP) {
        // Invariant 4: a refusal is ICMP destination unreachable, administratively prohibited (3/13).
        expect([p.icmpType, p.icmpCode], this.fail(`ICMP ${p.icmpType}/${p.icmpCode} into the TUN device`)).toEqual([3, 13]);
      }
    }
  }

  check(): void {
    const { w } = this;
    this.scan();
    const byId = new Map(this.sent.map((s) => [s.id, s]));
    // Invariant 4: nothing sent while denied (or to no resource) came back.
    for (const id of this.answered) {
      const s = byId.get(id)!;
      expect(s.allowed, this.fail(`packet ${id} to ${s.resourceId?.slice(-2) ?? "no resource"}, sent at ${s.sentAt} while denied, was echoed`)).toBe(true);
    }
    const events = w.gatewayAttachment.events;
    for (; this.forwardedChecked < events.length; this.forwardedChecked++) {
      const e = events[this.forwardedChecked]!;
      if (e.event.type !== "forwarded") continue;
      const parsed = parseIpPacket(e.event.packet);
      if (!parsed.ok) continue;
      const p = parsed.packet;
      this.reached.set(p.dstText, (this.reached.get(p.dstText) ?? 0) + 1);
      const resource = w.resources.find((r) => r.holds(p.dstText));
      // Invariant 1: only resources' addresses are reached, and only by packets sent while allowed.
      expect(resource, this.fail(`the echo host got a packet for ${p.dstText}, which no resource holds`)).toBeDefined();
      const text = new TextDecoder().decode(e.event.packet.slice(p.payloadOffset + 8, p.length));
      const id = Number(/^probe (\d+)$/.exec(text)?.[1]);
      const s = byId.get(id);
      expect(s, this.fail(`forwarded packet ${JSON.stringify(text)} was never sent`)).toBeDefined();
      expect(s!.resourceId, this.fail(`packet ${id} reached ${p.dstText}, not its resource`)).toBe(resource!.id);
      expect(s!.allowed, this.fail(`packet ${id} to ${resource!.type} ${resource!.id.slice(-2)}, sent at ${s!.sentAt} while denied, reached the resource at ${e.at}`)).toBe(true);
      // Invariant 3: after reject_access landed at the gateway, nothing more is forwarded there.
      const rejectedAt = this.rejectedAtGateway.get(resource!.id);
      expect(rejectedAt === undefined || e.at < rejectedAt, this.fail(`packet ${id} reached ${resource!.id.slice(-2)} at ${e.at}, after reject_access landed at ${rejectedAt}`)).toBe(true);
    }
  }
}

/** One seed: a world, a policy, and ACTIONS random actions, each followed by the checks. */
function scenario(seed: number, actions: number): PolicyRun {
  const rng = new Rng("randomized policy plan", seed);
  const w = buildPolicyWorld(seed, rng);
  const run = new PolicyRun(w);
  for (let step = 0; step < actions; step++) {
    const roll = rng.int(0, 99);
    const resource = rng.pick(w.resources);
    if (roll < 55) {
      if (rng.int(0, 9) === 0) run.sendDenied(undefined);
      else if (w.allowed.has(resource.id)) run.sendAllowed(resource);
      else run.sendDenied(resource);
    } else if (roll < 72) {
      if (w.allowed.has(resource.id)) run.revoke(resource, rng.pick(["gateway", "client", "both"] as const));
      else run.grant(resource);
    } else if (roll < 85) {
      if (!w.allowed.has(resource.id)) run.grant(resource);
      else run.sendAllowed(resource);
    } else {
      run.idle(rng.pick([100, 1_000, 5_000, 20_000, 130_000]));
    }
  }
  run.check();
  return run;
}

/** Seeds per run: CI keeps the default; RANDOMIZED_SEEDS asks for more (a few thousand to prove a fix). */
const SEED_COUNT = Number(process.env.RANDOMIZED_SEEDS ?? 200);

describe("scenario: randomized policy against a reference model", () => {
  it("never reaches a denied resource, always reaches an allowed one, refuses with ICMP or silence", async () => {
    const started = performance.now();
    let seeds = 0;
    let packets = 0;
    await runSeeds("randomized policy", (seed) => {
      const run = scenario(seed, 14);
      seeds++;
      packets += run.sent.length;
      // RANDOMIZED_DEBUG goes on past a failure, to name every failing seed.
    }, { count: SEED_COUNT, all: process.env.RANDOMIZED_DEBUG !== undefined });
    console.log(`randomized policy: ${seeds} seeds, ${packets} packets, ${Math.round(performance.now() - started)} ms`);
    expect(seeds).toBeGreaterThan(0);
  }, Math.max(120_000, SEED_COUNT * 500));
});
