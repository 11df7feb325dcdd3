// ClientState in virtual time against the real GatewayState: a scripted portal answers
// request_authorization (and installs the same authorization on the gateway), a fake resource host
// behind the gateway echoes UDP, and its answers come back through the gateway's NAT to the client's
// TUN device. Covered: a DNS resource by name end to end, a CIDR resource, a denied resource (ICMP
// prohibited), forwarding upstream, resource_deleted, routes, two DNS resources on one real address,
// spoofed sources, the gateway's own prohibited replies, expiry, the tunnel going down or getting a
// new session (the DNS mappings said again), and fuzzed packets on both inputs.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { decodeDnsMessage, encodeDnsMessage, queryMessage, responseMessage, type DnsMessage } from "../dns/codec.js";
import { CLASS_IN, DNS_PORT, RCODE_NOERROR, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA } from "../dns/constants.js";
import { CONTROL_PORT } from "../gateway/constants.js";
import { decodeControl } from "../gateway/control.js";
import { GatewayState } from "../gateway/state.js";
import { parseIp } from "../ip/address.js";
import { ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED, ICMP_TYPE_DESTINATION_UNREACHABLE, ICMPV6_TYPE_DESTINATION_UNREACHABLE, PROTOCOL_UDP } from "../ip/constants.js";
import { parseIpPacket, type IpPacket } from "../ip/packet.js";
import { transportChecksumValid } from "../ip/rewrite.js";
import { buildPacket } from "../ip/testing.js";
import type { AuthorizationForGateway, ClientAuthorizationCreated, ClientResource, Filter } from "../portal/schema.js";
import { CONTROL_REFRESH_INTERVAL_MS, REFUSAL_HOLDOFF_MS } from "./constants.js";
import { buildUdpPacket } from "./datagram.js";
import { ClientState, type ClientOutput } from "./state.js";

beforeEach(reportSeedOnFailure);

// --- Fixtures ---

const ZERO = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const CLIENT = { id: uuid(0xc1), ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2" };
const GATEWAY = { id: uuid(0x91), ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" };
const GATEWAY_2 = { id: uuid(0x92), ipv4: "100.64.0.5", ipv6: "fd00:2021:1111::5" };
const SENTINEL = "100.100.111.1";
const UPSTREAM = "192.0.2.53";
const KEY = "A".repeat(43) + "=";
const PSK = "B".repeat(43) + "=";
const APP_PORT = 40_000;

const R_APP = uuid(0x101);
const R_NET = uuid(0x102);
const R_DENIED = uuid(0x103);
const R_OTHER = uuid(0x104);
const R_IP = uuid(0x105);
const R_INTERNET = uuid(0x106);
const R_WEB = uuid(0x107);
const R_WILD = uuid(0x108);

function res(id: string, type: ClientResource["type"], address: string | null, filters: Filter[] = []): ClientResource {
  return { id, type, name: id.slice(-3), address, address_description: null, sites: [{ id: uuid(0x5), name: "site" }], filters };
}

const RESOURCES: ClientResource[] = [
  res(R_APP, "dns", "app.example.com"),
  res(R_OTHER, "dns", "other.example.com"),
  res(R_NET, "cidr", "10.1.0.0/16"),
  res(R_DENIED, "cidr", "10.9.0.0/16"),
  res(R_IP, "ip", "192.0.2.10"),
  res(R_WEB, "ip", "192.0.2.80", [{ protocol: "tcp", ports: ["443"] }]),
  res(R_INTERNET, "internet", null),
  res(R_WILD, "dns", "*.corp.example.com"),
];

/** Where the fake DNS says each name lives (the gateway's resolver). */
const REAL: Record<string, string[]> = {
  "app.example.com": ["198.51.100.7", "2001:db8::7"],
  "other.example.com": ["198.51.100.7", "2001:db8::7"],
  "a.corp.example.com": ["198.51.100.21"],
  "b.corp.example.com": ["198.51.100.22"],
};

const udpPayload = (bytes: Uint8Array, p: IpPacket): Uint8Array => bytes.slice(p.payloadOffset + 8, p.length);

function view(bytes: Uint8Array): IpPacket {
  const parsed = parseIpPacket(bytes);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.packet;
}

/**
 * The client, the real gateway, a scripted portal and a resource host that echoes UDP, wired the way
 * the connection layer and the gateway's driver would wire them, in one virtual clock.
 */
class World {
  readonly client: ClientState;
  readonly gateways = new Map<string, GatewayState>();
  /** What the portal grants: resource id → gateway; absent: denied. */
  readonly policy = new Map<string, typeof GATEWAY>();
  /** Outputs that the world does not consume itself, in order. */
  readonly tun: Uint8Array[] = [];
  readonly other: ClientOutput[] = [];
  readonly requests: string[] = [];
  /** What reached the resource host: the packets as the gateway forwarded them. */
  readonly atHost: IpPacket[] = [];
  readonly gatewayDrops: string[] = [];
  /** The authorizations the portal installed on gateways, in order. */
  readonly granted: AuthorizationForGateway[] = [];
  /** Whether the portal answers requests at once. */
  answering = true;
  expiresAfter = HOUR;
  now = 0;
  private nextAuthorization = 1;

  constructor(readonly r: Rng, upstreams: string[] = [UPSTREAM]) {
    this.client = new ClientState({ wallClockAtZeroMs: ZERO, random: (n) => r.bytes(n) });
    for (const g of [GATEWAY, GATEWAY_2]) this.gateways.set(g.id, new GatewayState({ ipv4: g.ipv4, ipv6: g.ipv6, epochMs: ZERO, random: (n) => r.bytes(n) }));
    for (const resource of RESOURCES) if (resource.id !== R_DENIED) this.policy.set(resource.id, GATEWAY);
    this.client.handlePortalEvent(0, "init", { interface: { ...CLIENT, upstream_dns: upstreams }, resources: RESOURCES, relays: [] });
    this.pump();
  }

  /** Moves every output on until the system is quiet. */
  pump(): void {
    for (let out = this.client.pollEvent(); out !== undefined; out = this.client.pollEvent()) {
      switch (out.type) {
        case "tun":
          this.tun.push(out.packet);
          break;
        case "portal":
          this.requests.push(out.payload.resource_id);
          if (this.answering) this.answer(out.payload.resource_id);
          break;
        case "gateway":
          this.toGateway(out.gatewayId, out.packet);
          break;
        default:
          this.other.push(out);
      }
    }
  }

  /** The portal's answer to a request_authorization: grant through the policy's gateway, or deny. */
  answer(resourceId: string): void {
    const gateway = this.policy.get(resourceId);
    if (gateway === undefined) {
      this.client.handlePortalEvent(this.now, "authorization_creation_failed", { resource_id: resourceId, reason: "denied" });
      return;
    }
    const resource = RESOURCES.find((r) => r.id === resourceId)!;
    const expires_at = new Date(ZERO + this.now + this.expiresAfter).toISOString();
    const ice = { client_ice: { username: "cuser", password: "c".repeat(22) }, gateway_ice: { username: "guser", password: "g".repeat(22) } };
    const forGateway: AuthorizationForGateway = {
      authorization_id: uuid(0x1000 + this.nextAuthorization++),
      client: { id: CLIENT.id, public_key: KEY, ipv4: CLIENT.ipv4, ipv6: CLIENT.ipv6, preshared_key: PSK },
      resource: { id: resource.id, type: resource.type, name: resource.name, address: resource.address, filters: resource.filters },
      ...ice,
      expires_at,
    };
    expect(this.gateways.get(gateway.id)!.createAuthorization(this.now, forGateway)).toEqual({ ok: true });
    this.granted.push(forGateway);
    const forClient: ClientAuthorizationCreated = {
      resource_id: resourceId, gateway_id: gateway.id, gateway_public_key: KEY, gateway_ipv4: gateway.ipv4, gateway_ipv6: gateway.ipv6,
      site_id: uuid(0x5), preshared_key: PSK, ...ice, expires_at,
    };
    this.client.handlePortalEvent(this.now, "authorization_created", forClient);
  }

  private toGateway(gatewayId: string, packet: Uint8Array): void {
    const gateway = this.gateways.get(gatewayId)!;
    const decision = gateway.handleFromClient(this.now, CLIENT.id, packet.slice());
    for (let e = gateway.pollEvent(); e !== undefined; e = gateway.pollEvent()) {
      if (e.type === "resolve") gateway.handleResolved(this.now, e.name, REAL[e.name] ?? []);
    }
    if (decision.action === "drop") this.gatewayDrops.push(decision.reason);
    else if (decision.action === "reply") this.client.handleGatewayPacket(this.now, gatewayId, decision.packet);
    else if (decision.action === "forward") this.host(gatewayId, decision.packet);
  }

  /** The resource host: records what arrived and echoes UDP back to its sender through the gateway. */
  private host(gatewayId: string, bytes: Uint8Array): void {
    const p = view(bytes);
    this.atHost.push(p);
    if (p.protocol !== PROTOCOL_UDP) return;
    const echo = buildPacket({ src: p.dstText, dst: p.srcText, srcPort: p.dstPort!, dstPort: p.srcPort!, payload: udpPayload(bytes, p) });
    this.fromHost(gatewayId, echo);
  }

  /** A packet from the network side to the gateway, and on to the client. */
  fromHost(gatewayId: string, bytes: Uint8Array): void {
    const decision = this.gateways.get(gatewayId)!.handleFromResource(this.now, bytes);
    if (decision.action === "forward") this.client.handleGatewayPacket(this.now, gatewayId, decision.packet);
    else if (decision.action === "drop") this.gatewayDrops.push(decision.reason);
  }

  /** An application's UDP datagram from the client's tunnel address. */
  send(dst: string, payload: string, srcPort = APP_PORT, dstPort = 7): void {
    const v6 = dst.includes(":");
    this.client.handleTunPacket(this.now, buildPacket({ src: v6 ? CLIENT.ipv6 : CLIENT.ipv4, dst, srcPort, dstPort, payload: new TextEncoder().encode(payload) }));
    this.pump();
  }

  /** A DNS question to the sentinel; returns the answer the client wrote into its TUN device, if any. */
  ask(name: string, type = TYPE_A, id = 0x4242): DnsMessage | undefined {
    const query = encodeDnsMessage(queryMessage(id, { name, type, class: CLASS_IN }));
    const before = this.tun.length;
    this.client.handleTunPacket(this.now, buildPacket({ src: CLIENT.ipv4, dst: SENTINEL, srcPort: 5353, dstPort: DNS_PORT, payload: query }));
    this.pump();
    const answers = this.tun.slice(before).map(view).filter((p) => p.srcText === SENTINEL);
    if (answers.length === 0) return undefined;
    const bytes = this.tun[before + this.tun.slice(before).findIndex((b) => view(b).srcText === SENTINEL)]!;
    const p = view(bytes);
    expect(p.srcPort).toBe(DNS_PORT);
    expect(p.dstText).toBe(CLIENT.ipv4);
    expect(p.dstPort).toBe(5353);
    expect(transportChecksumValid(bytes, p)).toBe(true);
    const decoded = decodeDnsMessage(udpPayload(bytes, p));
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.message;
  }

  /** The echoes the client wrote into its TUN device since `from`, as (source, text) pairs. */
  echoes(from = 0): { src: string; text: string }[] {
    return this.tun.slice(from).map((b) => ({ b, p: view(b) })).filter(({ p }) => p.protocol === PROTOCOL_UDP && p.srcPort !== DNS_PORT)
      .map(({ b, p }) => ({ src: p.srcText, text: new TextDecoder().decode(udpPayload(b, p)) }));
  }

  /** Runs timers up to `until`. */
  advance(until: number): void {
    for (let t = this.client.pollTimeout(); t !== undefined && t <= until; t = this.client.pollTimeout()) {
      this.now = Math.max(this.now, t);
      this.client.handleTimeout(this.now);
      this.pump();
    }
    this.now = until;
  }

  take<T extends ClientOutput["type"]>(type: T): Extract<ClientOutput, { type: T }>[] {
    const found = this.other.filter((o): o is Extract<ClientOutput, { type: T }> => o.type === type);
    this.other.splice(0, this.other.length, ...this.other.filter((o) => o.type !== type));
    return found;
  }
}

/** The control messages the client sends GATEWAY from now on, with when they arrived. */
function watchControls(w: World): { at: number; proxies: string[] }[] {
  const controls: { at: number; proxies: string[] }[] = [];
  const gateway = w.gateways.get(GATEWAY.id)!;
  const original = gateway.handleFromClient.bind(gateway);
  gateway.handleFromClient = (now, clientId, bytes) => {
    const p = view(bytes);
    if (p.dstPort === CONTROL_PORT && p.dstText === GATEWAY.ipv4) {
      const decoded = decodeControl(udpPayload(bytes, p));
      if (decoded.ok) controls.push({ at: now, proxies: decoded.message.proxy_ips });
    }
    return original(now, clientId, bytes);
  };
  return controls;
}

const addressesOf = (m: DnsMessage): string[] => m.answers.map((a) => (a.data.kind === "a" || a.data.kind === "aaaa" ? a.data.address : "?"));

// --- Tests ---

describe("ClientState with the real GatewayState", () => {
  it("reaches a DNS resource by name: proxy IP answer, authorization, control message, NAT, echo from the proxy IP", () => {
    const w = new World(rng("dns resource"));
    w.answering = false;
    const answer = w.ask("App.Example.com")!;
    expect(answer.rcode).toBe(RCODE_NOERROR);
    const proxies = addressesOf(answer);
    expect(proxies).toHaveLength(4);
    // The DNS answer asks for access before the application sends a byte.
    expect(w.requests).toEqual([R_APP]);
    w.send(proxies[0]!, "hello");
    w.send(proxies[0]!, "again");
    expect(w.atHost).toEqual([]);
    expect(w.requests).toEqual([R_APP]);

    w.now = 100;
    w.answer(R_APP);
    w.pump();
    expect(w.take("connect")).toMatchObject([{ gatewayId: GATEWAY.id, authorization: { resource_id: R_APP } }]);
    // The control message went first (consumed), then both held packets reached the real address.
    expect(w.gatewayDrops).toEqual([]);
    expect(w.atHost.map((p) => p.dstText)).toEqual(["198.51.100.7", "198.51.100.7"]);
    expect(w.atHost[0]!.srcText).toBe(CLIENT.ipv4);
    expect(w.echoes()).toEqual([{ src: proxies[0], text: "hello" }, { src: proxies[0], text: "again" }]);

    // Authorized: the next packet goes straight through; IPv6 too.
    const v6 = addressesOf(w.ask("app.example.com", TYPE_AAAA, 7)!);
    expect(v6).toHaveLength(4);
    const before = w.tun.length;
    w.send(proxies[1]!, "third");
    w.send(v6[2]!, "six", APP_PORT, 9);
    expect(w.echoes(before)).toEqual([{ src: proxies[1], text: "third" }, { src: v6[2], text: "six" }]);
    expect(w.atHost.slice(2).map((p) => p.dstText)).toEqual(["198.51.100.7", "2001:db8::7"]);
    expect(w.requests).toEqual([R_APP]);
  });

  it("answers on the IPv6 sentinel too, from the sentinel to the asker's port", () => {
    const w = new World(rng("ipv6 sentinel"));
    const sentinel6 = "fd00:2021:1111:8000:100:100:111:1";
    const query = encodeDnsMessage(queryMessage(77, { name: "app.example.com", type: TYPE_AAAA, class: CLASS_IN }));
    w.client.handleTunPacket(w.now, buildPacket({ src: CLIENT.ipv6, dst: sentinel6, srcPort: 5454, dstPort: DNS_PORT, payload: query }));
    w.pump();
    const bytes = w.tun.at(-1)!;
    const p = view(bytes);
    expect(p).toMatchObject({ version: 6, srcText: sentinel6, srcPort: DNS_PORT, dstText: CLIENT.ipv6, dstPort: 5454 });
    expect(transportChecksumValid(bytes, p)).toBe(true);
    const decoded = decodeDnsMessage(udpPayload(bytes, p));
    expect(decoded.ok && decoded.message.id).toBe(77);
    expect(decoded.ok && addressesOf(decoded.message)).toHaveLength(4);
    // TCP to the sentinel is not served.
    w.client.handleTunPacket(w.now, buildPacket({ src: CLIENT.ipv4, dst: SENTINEL, protocol: 6, srcPort: 5454, dstPort: DNS_PORT }));
    expect(w.client.drops.sentinel_not_dns).toBe(1);
  });

  it("repeats the control message every CONTROL_REFRESH_INTERVAL_MS while authorized", () => {
    const w = new World(rng("control refresh"));
    const proxies = addressesOf(w.ask("app.example.com")!);
    w.send(proxies[0]!, "x");
    // Watch what the client sends the gateway from here on.
    const controls = watchControls(w);
    w.advance(CONTROL_REFRESH_INTERVAL_MS * 3 + 1);
    expect(controls.map((c) => c.at)).toEqual([1, 2, 3].map((n) => n * CONTROL_REFRESH_INTERVAL_MS));
    expect(controls[0]!.proxies.slice(0, 4)).toEqual(proxies);
    expect(controls[0]!.proxies).toHaveLength(8);
  });

  it("reaches a CIDR resource and an ip resource unchanged, over one gateway connection", () => {
    const w = new World(rng("cidr"));
    w.send("10.1.2.3", "net");
    w.send("192.0.2.10", "ip");
    expect(w.requests).toEqual([R_NET, R_IP]);
    expect(w.atHost.map((p) => `${p.srcText}>${p.dstText}`)).toEqual([`${CLIENT.ipv4}>10.1.2.3`, `${CLIENT.ipv4}>192.0.2.10`]);
    expect(w.echoes()).toEqual([{ src: "10.1.2.3", text: "net" }, { src: "192.0.2.10", text: "ip" }]);
    expect(w.take("connect")).toHaveLength(1);
    expect(w.gatewayDrops).toEqual([]);
  });

  it("answers packets to a denied resource with ICMP administratively prohibited, and asks again later", () => {
    const w = new World(rng("denied"));
    w.send("10.9.0.1", "no");
    // Within the holdoff the refusal stands without another request.
    w.send("10.9.0.1", "still no");
    expect(w.requests).toEqual([R_DENIED]);
    const errors = w.tun.map(view);
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e).toMatchObject({ srcText: "10.9.0.1", dstText: CLIENT.ipv4, icmpType: ICMP_TYPE_DESTINATION_UNREACHABLE, icmpCode: ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED });
    }
    expect(w.atHost).toEqual([]);
    expect(w.take("connect")).toEqual([]);
    w.advance(REFUSAL_HOLDOFF_MS);
    w.send("10.9.0.1", "third");
    expect(w.requests).toEqual([R_DENIED, R_DENIED]);
    expect(w.tun).toHaveLength(3);
  });

  it("refuses held packets when the portal never answers", () => {
    const w = new World(rng("silent portal"));
    w.answering = false;
    w.send("2001:db8::1", "v6 via internet? no: the internet resource is off");
    expect(w.client.drops.no_resource).toBe(1);
    w.send("10.1.0.9", "waits");
    expect(w.tun).toEqual([]);
    w.advance(60_000);
    expect(w.tun.map(view)).toMatchObject([{ srcText: "10.1.0.9", icmpType: ICMP_TYPE_DESTINATION_UNREACHABLE }]);
  });

  it("forwards names outside every resource upstream and relays the answer; SERVFAIL without upstreams", () => {
    const w = new World(rng("upstream"));
    w.ask("www.example.org", TYPE_A, 0x1234);
    const [out] = w.take("dns_upstream");
    expect(out!.to).toEqual({ address: UPSTREAM, port: DNS_PORT });
    const query = decodeDnsMessage(out!.bytes);
    if (!query.ok) throw new Error(query.error);
    expect(query.message.questions[0]!.name).toBe("www.example.org");
    const reply = responseMessage(query.message, { rcode: RCODE_NOERROR, answers: [{ name: "www.example.org", type: TYPE_A, class: CLASS_IN, ttl: 60, data: { kind: "a", address: "203.0.113.5" } }] });
    w.client.handleUpstreamDns(w.now, { address: UPSTREAM, port: DNS_PORT }, encodeDnsMessage(reply));
    w.pump();
    const answer = view(w.tun.at(-1)!);
    expect(answer).toMatchObject({ srcText: SENTINEL, srcPort: DNS_PORT, dstText: CLIENT.ipv4, dstPort: 5353 });
    const decoded = decodeDnsMessage(udpPayload(w.tun.at(-1)!, answer));
    expect(decoded.ok && decoded.message.id).toBe(0x1234);
    expect(decoded.ok && addressesOf(decoded.message)).toEqual(["203.0.113.5"]);
    expect(w.requests).toEqual([]);

    const none = new World(rng("no upstream"), []);
    expect(none.ask("www.example.org")!.rcode).toBe(RCODE_SERVFAIL);
    expect(none.take("dns_upstream")).toEqual([]);
  });

  it("stops traffic at once on resource_deleted, and disconnects when no authorization uses the gateway", () => {
    const w = new World(rng("deleted"));
    const proxies = addressesOf(w.ask("app.example.com")!);
    w.send(proxies[0]!, "one");
    w.send("10.1.0.1", "net");
    expect(w.echoes()).toHaveLength(2);
    expect(w.take("connect")).toHaveLength(1);

    w.client.handlePortalEvent(w.now, "resource_deleted", { id: R_APP });
    w.pump();
    expect(w.take("disconnect")).toEqual([]);
    const hostBefore = w.atHost.length;
    w.send(proxies[0]!, "gone");
    expect(w.atHost.length).toBe(hostBefore);
    expect(w.client.drops.no_resource).toBe(1);
    // An answer in flight from the gateway, with the proxy IP as source, is no longer let in.
    const late = buildPacket({ src: proxies[0]!, dst: CLIENT.ipv4, srcPort: 7, dstPort: APP_PORT, payload: new Uint8Array(3) });
    const tunBefore = w.tun.length;
    w.client.handleGatewayPacket(w.now, GATEWAY.id, late);
    w.pump();
    expect(w.tun.length).toBe(tunBefore);
    expect(w.client.drops.unauthorized_source).toBe(1);

    w.client.handlePortalEvent(w.now, "resource_deleted", { id: R_NET });
    w.pump();
    expect(w.take("disconnect")).toEqual([{ type: "disconnect", gatewayId: GATEWAY.id }]);
  });

  it("connects afresh when the tunnel to a gateway in use goes down and tells it the DNS mappings again; not for a gateway no longer used", () => {
    const w = new World(rng("tunnel down"));
    const proxies = addressesOf(w.ask("app.example.com")!);
    w.send(proxies[0]!, "one");
    const [first] = w.take("connect") as { authorization: unknown }[];
    const controls = watchControls(w);

    w.client.handleTunnelDown(w.now, GATEWAY.id);
    w.pump();
    const again = w.take("connect") as { gatewayId: string; authorization: unknown }[];
    expect(again).toEqual([{ type: "connect", gatewayId: GATEWAY.id, authorization: first!.authorization }]);
    expect(controls).toHaveLength(1);
    expect(controls[0]!.proxies.slice(0, 4)).toEqual(proxies);
    w.send(proxies[0]!, "two");
    expect(w.echoes().at(-1)).toEqual({ src: proxies[0], text: "two" });

    w.client.handlePortalEvent(w.now, "resource_deleted", { id: R_APP });
    w.pump();
    w.take("disconnect");
    w.client.handleTunnelDown(w.now, GATEWAY.id);
    w.pump();
    expect(w.take("connect")).toEqual([]);
  });

  it("tells a gateway the DNS mappings again when its tunnel has a new session; not a gateway it has no tunnel to", () => {
    const w = new World(rng("new session"));
    const proxies = addressesOf(w.ask("app.example.com")!);
    w.send(proxies[0]!, "one");
    expect(w.echoes()).toEqual([{ src: proxies[0], text: "one" }]);
    // The gateway drops its side and takes the client back (its authorization again, same keys):
    // the mappings it was told went with its side.
    const fresh = new GatewayState({ ipv4: GATEWAY.ipv4, ipv6: GATEWAY.ipv6, epochMs: ZERO, random: (n) => w.r.bytes(n) });
    w.gateways.set(GATEWAY.id, fresh);
    expect(fresh.createAuthorization(w.now, w.granted.at(-1)!)).toEqual({ ok: true });
    const controls = watchControls(w);
    w.send(proxies[0]!, "lost");
    expect(w.echoes(0).map((e) => e.text)).toEqual(["one"]);

    w.client.handleTunnelSession(w.now, GATEWAY.id);
    w.pump();
    expect(controls).toHaveLength(1);
    expect(controls[0]!.proxies.slice(0, 4)).toEqual(proxies);
    w.send(proxies[0]!, "two");
    expect(w.echoes().at(-1)).toEqual({ src: proxies[0], text: "two" });

    const before = w.other.length;
    w.client.handleTunnelSession(w.now, GATEWAY_2.id);
    w.pump();
    expect(controls).toHaveLength(1);
    expect(w.other.length).toBe(before);
  });

  it("tells the gateway a wildcard resource's new name at once, without asking the portal again", () => {
    const w = new World(rng("wildcard"));
    const a = addressesOf(w.ask("a.corp.example.com")!);
    w.send(a[0]!, "to a");
    const b = addressesOf(w.ask("b.corp.example.com", TYPE_A, 8)!);
    w.send(b[0]!, "to b");
    expect(w.requests).toEqual([R_WILD]);
    expect(w.gatewayDrops).toEqual([]);
    expect(w.atHost.map((p) => p.dstText)).toEqual(["198.51.100.21", "198.51.100.22"]);
    expect(w.echoes()).toEqual([{ src: a[0], text: "to a" }, { src: b[0], text: "to b" }]);
  });

  it("refuses held packets of a deleted resource; a resource that comes back works again with its old proxy IPs", () => {
    const w = new World(rng("comes back"));
    w.answering = false;
    const proxies = addressesOf(w.ask("app.example.com")!);
    w.send(proxies[0]!, "held");
    w.client.handlePortalEvent(w.now, "resource_deleted", { id: R_APP });
    w.pump();
    expect(w.tun.slice(1).map(view)).toMatchObject([{ srcText: proxies[0], icmpType: ICMP_TYPE_DESTINATION_UNREACHABLE }]);

    // Back again: the application still holds the old answer, and no new DNS query comes.
    w.answering = true;
    w.client.handlePortalEvent(w.now, "resource_created_or_updated", RESOURCES[0]!);
    w.pump();
    w.send(proxies[0]!, "again");
    expect(w.gatewayDrops).toEqual([]);
    expect(w.echoes()).toEqual([{ src: proxies[0], text: "again" }]);
  });

  it("re-syncs on a second init: a resource no longer listed loses its authorization", () => {
    const w = new World(rng("re-init"));
    w.send("10.1.0.1", "a");
    expect(w.take("connect")).toHaveLength(1);
    w.client.handlePortalEvent(w.now, "init", { interface: { ...CLIENT, upstream_dns: [UPSTREAM] }, resources: RESOURCES.filter((r) => r.id !== R_NET), relays: [] });
    w.pump();
    expect(w.take("disconnect")).toEqual([{ type: "disconnect", gatewayId: GATEWAY.id }]);
    expect(w.take("routes").at(-1)!.ipv4).not.toContain("10.1.0.0/16");
    w.send("10.1.0.1", "b");
    expect(w.client.drops.no_resource).toBe(1);
  });

  it("emits routes and DNS servers when they change, and only then", () => {
    const w = new World(rng("routes"));
    const routes = w.take("routes");
    expect(routes).toEqual([{
      type: "routes",
      ipv4: ["10.1.0.0/16", "10.9.0.0/16", "100.100.111.1/32", "100.96.0.0/11", "192.0.2.10/32", "192.0.2.80/32"],
      ipv6: ["fd00:2021:1111:8000:100:100:111:1/128", "fd00:2021:1111:8000::/107"],
    }]);
    expect(w.take("dns_servers")).toEqual([{ type: "dns_servers", ipv4: [SENTINEL], ipv6: ["fd00:2021:1111:8000:100:100:111:1"] }]);

    w.client.setInternetResource(w.now, true);
    w.pump();
    const [on] = w.take("routes");
    expect(on!.ipv4).toContain("0.0.0.0/0");
    expect(on!.ipv6).toContain("::/0");

    // The same resource sent again changes nothing.
    w.client.handlePortalEvent(w.now, "resource_created_or_updated", RESOURCES[2]!);
    w.pump();
    expect(w.take("routes")).toEqual([]);
    // A CIDR written with host bits is routed as its prefix.
    w.client.handlePortalEvent(w.now, "resource_created_or_updated", res(uuid(0x200), "cidr", "172.16.5.9/12"));
    w.pump();
    expect(w.take("routes")[0]!.ipv4).toContain("172.16.0.0/12");

    w.client.setInternetResource(w.now, false);
    w.pump();
    expect(w.take("routes")[0]!.ipv4).not.toContain("0.0.0.0/0");
    // Two upstreams: two sentinels.
    w.client.handlePortalEvent(w.now, "config_changed", { interface: { ...CLIENT, upstream_dns: [UPSTREAM, "2001:db8::53"] } });
    w.pump();
    expect(w.take("dns_servers")[0]!.ipv4).toEqual([SENTINEL, "100.100.111.2"]);
    expect(w.take("routes")[0]!.ipv4).toContain("100.100.111.2/32");
  });

  it("routes through the Internet resource while it is on", () => {
    const w = new World(rng("internet"));
    w.client.setInternetResource(w.now, true);
    w.pump();
    w.send("203.0.113.9", "out");
    w.send("10.1.0.3", "more specific");
    expect(w.requests).toEqual([R_INTERNET, R_NET]);
    expect(w.echoes()).toEqual([{ src: "203.0.113.9", text: "out" }, { src: "10.1.0.3", text: "more specific" }]);
    w.client.setInternetResource(w.now, false);
    w.pump();
    w.send("203.0.113.9", "off");
    expect(w.client.drops.no_resource).toBe(1);
  });

  it("keeps two DNS resources that resolve to one real address apart, end to end", () => {
    const w = new World(rng("same real address"));
    const app = addressesOf(w.ask("app.example.com")!);
    const other = addressesOf(w.ask("other.example.com", TYPE_A, 9)!);
    expect(app.filter((a) => other.includes(a))).toEqual([]);
    // Same client port, same real destination and port: only the proxy IP tells them apart.
    w.send(app[0]!, "to app");
    w.send(other[0]!, "to other");
    expect(w.requests).toEqual([R_APP, R_OTHER]);
    expect(w.atHost.map((p) => p.dstText)).toEqual(["198.51.100.7", "198.51.100.7"]);
    expect(w.echoes()).toEqual([{ src: app[0], text: "to app" }, { src: other[0], text: "to other" }]);
    // Deleting one leaves the other working.
    w.client.handlePortalEvent(w.now, "resource_deleted", { id: R_APP });
    w.pump();
    const before = w.tun.length;
    w.send(app[0]!, "x");
    w.send(other[0]!, "still");
    expect(w.echoes(before)).toEqual([{ src: other[0], text: "still" }]);
  });

  it("drops packets from the TUN device with a source other than its tunnel address", () => {
    const w = new World(rng("spoofed"));
    w.other.length = 0;
    for (const src of ["100.64.0.99", "10.1.0.1"]) w.client.handleTunPacket(w.now, buildPacket({ src, dst: "10.1.0.1", srcPort: 1, dstPort: 2 }));
    w.client.handleTunPacket(w.now, buildPacket({ src: "fd00:2021:1111::99", dst: "fd00:2021:1111::1", srcPort: 1, dstPort: 2 }));
    w.client.handleTunPacket(w.now, buildPacket({ src: "100.64.0.99", dst: SENTINEL, srcPort: 1, dstPort: DNS_PORT, payload: encodeDnsMessage(queryMessage(1, { name: "app.example.com", type: TYPE_A, class: CLASS_IN })) }));
    w.pump();
    expect(w.client.drops.spoofed).toBe(4);
    expect(w.requests).toEqual([]);
    expect(w.tun).toEqual([]);
    expect(w.other).toEqual([]);
  });

  it("lets in the gateway's prohibited reply and nothing else a resource did not authorize", () => {
    const w = new World(rng("gateway prohibited"));
    // The gateway's filter allows only TCP 443: the UDP datagram is refused there.
    w.send("192.0.2.80", "udp");
    expect(w.atHost).toEqual([]);
    const [error] = w.tun.map(view);
    expect(error).toMatchObject({ srcText: "192.0.2.80", dstText: CLIENT.ipv4, icmpType: ICMP_TYPE_DESTINATION_UNREACHABLE, icmpCode: ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED });

    // Sources of resources authorized elsewhere, or of none, are dropped.
    const tunBefore = w.tun.length;
    w.client.handleGatewayPacket(w.now, GATEWAY.id, buildPacket({ src: "10.1.0.1", dst: CLIENT.ipv4, srcPort: 7, dstPort: APP_PORT }));
    w.client.handleGatewayPacket(w.now, GATEWAY.id, buildPacket({ src: "192.0.2.80", dst: "100.64.0.77", srcPort: 443, dstPort: APP_PORT }));
    w.client.handleGatewayPacket(w.now, GATEWAY_2.id, buildPacket({ src: "192.0.2.80", dst: CLIENT.ipv4, srcPort: 443, dstPort: APP_PORT }));
    // A prohibited error from a gateway the client has no tunnel to.
    const foreign = buildPacket({ src: CLIENT.ipv4, dst: "10.1.0.1", srcPort: APP_PORT, dstPort: 7 });
    const forged = buildPacket({ src: "10.1.0.1", dst: CLIENT.ipv4, icmpType: ICMP_TYPE_DESTINATION_UNREACHABLE, icmpCode: ICMP_CODE_COMMUNICATION_ADMINISTRATIVELY_PROHIBITED, payload: foreign.slice(0, 28) });
    w.client.handleGatewayPacket(w.now, GATEWAY_2.id, forged);
    w.pump();
    expect(w.tun.length).toBe(tunBefore);
    expect(w.client.drops).toMatchObject({ unauthorized_source: 3, not_for_client: 1 });
  });

  it("ends an authorization at its expiry: disconnect, and the next packet asks again", () => {
    const w = new World(rng("expiry"));
    w.expiresAfter = 10_000;
    w.send("10.1.0.1", "a");
    expect(w.take("connect")).toHaveLength(1);
    w.advance(10_000);
    expect(w.take("disconnect")).toEqual([{ type: "disconnect", gatewayId: GATEWAY.id }]);
    w.send("10.1.0.1", "b");
    expect(w.requests).toEqual([R_NET, R_NET]);
    expect(w.take("connect")).toHaveLength(1);
    expect(w.echoes().map((e) => e.text)).toEqual(["a", "b"]);
  });

  it("moves a resource to another gateway: connect to the new one, disconnect the old", () => {
    const w = new World(rng("move"));
    w.send("10.1.0.1", "a");
    w.policy.set(R_NET, GATEWAY_2);
    w.answer(R_NET);
    w.pump();
    expect(w.take("connect").map((c) => c.gatewayId)).toEqual([GATEWAY.id, GATEWAY_2.id]);
    expect(w.take("disconnect")).toEqual([{ type: "disconnect", gatewayId: GATEWAY.id }]);
    w.send("10.1.0.1", "b");
    expect(w.echoes().map((e) => e.text)).toEqual(["a", "b"]);
    // The old gateway's answers no longer get in.
    w.client.handleGatewayPacket(w.now, GATEWAY.id, buildPacket({ src: "10.1.0.1", dst: CLIENT.ipv4, srcPort: 7, dstPort: APP_PORT }));
    expect(w.client.drops.unauthorized_source).toBe(1);
  });
});

describe("ClientState never throws on packets", () => {
  it("fuzzed and mutated packets from the TUN device and from gateways are dropped or handled", () => {
    const r = rng("fuzz");
    const w = new World(r);
    const proxies = addressesOf(w.ask("app.example.com")!);
    w.send(proxies[0]!, "seed");
    const seeds = [
      buildPacket({ src: CLIENT.ipv4, dst: proxies[0]!, srcPort: APP_PORT, dstPort: 7, payload: new Uint8Array(20) }),
      buildPacket({ src: CLIENT.ipv4, dst: SENTINEL, srcPort: 5353, dstPort: DNS_PORT, payload: encodeDnsMessage(queryMessage(1, { name: "app.example.com", type: TYPE_A, class: CLASS_IN })) }),
      buildPacket({ src: CLIENT.ipv6, dst: "fd00:2021:1111:8000:100:100:111:1", srcPort: 5353, dstPort: DNS_PORT, payload: encodeDnsMessage(queryMessage(2, { name: "x.example.org", type: TYPE_AAAA, class: CLASS_IN })) }),
      buildPacket({ src: "10.1.0.1", dst: CLIENT.ipv4, icmpType: ICMPV6_TYPE_DESTINATION_UNREACHABLE }),
      buildPacket({ src: proxies[0]!, dst: CLIENT.ipv4, srcPort: 7, dstPort: APP_PORT }),
    ];
    for (let i = 0; i < 3000; i++) {
      let bytes: Uint8Array;
      if (r.bool(0.2)) bytes = r.bytes(r.int(0, 80));
      else {
        bytes = r.pick(seeds).slice();
        for (let n = r.int(1, 4); n > 0; n--) bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
        if (r.bool(0.2)) bytes = bytes.slice(0, r.int(0, bytes.length));
      }
      expect(() => {
        if (r.bool()) w.client.handleTunPacket(i, bytes);
        else w.client.handleGatewayPacket(i, r.bool() ? GATEWAY.id : "nobody", bytes);
        w.client.handleUpstreamDns(i, { address: UPSTREAM, port: DNS_PORT }, bytes);
        for (let o = w.client.pollEvent(); o !== undefined; o = w.client.pollEvent()) {
          if (o.type === "tun" || o.type === "gateway") expect(parseIpPacket(o.packet).ok, r.where(`output ${i}`)).toBe(true);
        }
      }, r.where(`packet ${i}`)).not.toThrow();
    }
    const drops = w.client.drops;
    expect(drops.malformed).toBeGreaterThan(0);
  });
});

describe("buildUdpPacket", () => {
  it("builds packets that parse, with valid checksums, for random addresses, ports and payloads", () => {
    const r = rng("udp builder");
    for (let i = 0; i < 500; i++) {
      const v6 = r.bool();
      const src = r.bytes(v6 ? 16 : 4);
      const dst = r.bytes(v6 ? 16 : 4);
      const payload = r.bytes(r.int(0, 300));
      const srcPort = r.int(0, 65535);
      const dstPort = r.int(0, 65535);
      const bytes = buildUdpPacket(src, srcPort, dst, dstPort, payload)!;
      const parsed = parseIpPacket(bytes);
      expect(parsed.ok, r.where(`${i}`)).toBe(true);
      if (!parsed.ok) continue;
      expect(parsed.packet).toMatchObject({ version: v6 ? 6 : 4, protocol: PROTOCOL_UDP, srcPort, dstPort, src, dst });
      expect(transportChecksumValid(bytes, parsed.packet), r.where(`${i}`)).toBe(true);
      expect(bytes.slice(parsed.packet.payloadOffset + 8)).toEqual(payload);
    }
    expect(buildUdpPacket(parseIp("10.0.0.1")!, 1, parseIp("::1")!, 2, new Uint8Array(0))).toBeUndefined();
    expect(buildUdpPacket(parseIp("10.0.0.1")!, 1, parseIp("10.0.0.2")!, 2, new Uint8Array(70_000))).toBeUndefined();
  });
});
