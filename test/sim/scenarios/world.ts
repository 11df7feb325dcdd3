// The whole data path in the simulated network: a client host (ClientState + TunnelNode), a
// gateway host (GatewayState + TunnelNode) with an in-process echo resource behind it, two real
// TURN relays, and a stub portal that routes init, request_authorization (policy: allow) →
// create_authorization → authorization_created, reject_access, and trickled ICE candidates.
//
// Each daemon is one SimEndpoint: the Network drives its node; inside, the daemon pumps the
// node's events into its state machine and the state machine's outputs into the node or the
// portal until both are quiet (what daemons/client and daemons/gateway will do with real I/O).

import { ClientState, type ClientOutput } from "../../../daemons/proto/client/state.js";
import { GatewayState, type GatewayEvent } from "../../../daemons/proto/gateway/state.js";
import { parseIpPacket } from "../../../daemons/proto/ip/packet.js";
import { buildPacket } from "../../../daemons/proto/ip/testing.js";
import { PROTOCOL_UDP } from "../../../daemons/proto/ip/constants.js";
import type { AuthorizationForGateway, ClientAuthorizationCreated, ClientInit, GatewayResource, IceCredentials, RejectAccess, RequestAuthorization } from "../../../daemons/proto/portal/schema.js";
import { mintCredentials } from "../../../daemons/proto/stun/credentials.js";
import { TunnelNode, type TunnelEvent, type TunnelRelay } from "../../../daemons/proto/tunnel/node.js";
import { decodeBase64, encodeBase64 } from "../../../daemons/proto/wireguard/base64.js";
import type { NatBehaviour } from "../nat.js";
import { Network, type Attachment, type LinkProfile } from "../network.js";
import type { Addr, SimEndpoint, SimTransmit } from "../node.js";
import { StubPortal } from "../portal.js";
import { SIM_EPOCH_UNIX, TurnRelayNode } from "../turn.js";

export const REALM = "wardline";
export const RELAY_SECRET = "relay-shared-secret";
export const WG_PORT = 51820;
export const CLIENT_ID = "c1000000-0000-4000-8000-000000000001";
export const GATEWAY_ID = "a2000000-0000-4000-8000-000000000002";
export const RESOURCE_ID = "b3000000-0000-4000-8000-000000000003";
export const SITE_ID = "d4000000-0000-4000-8000-000000000004";
export const RELAY_IDS = ["e5000000-0000-4000-8000-000000000005", "e6000000-0000-4000-8000-000000000006"] as const;
export const CLIENT_TUNNEL = { ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2" };
export const GATEWAY_TUNNEL = { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" };
/** The resource: an ip resource the gateway reaches (an in-process UDP echo). */
export const RESOURCE_IP = "203.0.113.50";
export const ECHO_PORT = 7;
const WALL_CLOCK_AT_ZERO_MS = SIM_EPOCH_UNIX * 1000;
/** Far beyond any scenario: nothing here is about expiry. */
const EXPIRES_AT = new Date((SIM_EPOCH_UNIX + 30 * 86_400) * 1000).toISOString();

/** What the stub portal carries, in the wire schema's payload shapes. */
export type PortalMessage =
  | { event: "init_client"; payload: ClientInit }
  | { event: "init_gateway"; relays: TunnelRelay[] }
  | { event: "request_authorization"; payload: RequestAuthorization }
  | { event: "create_authorization"; payload: AuthorizationForGateway }
  | { event: "authorization_ack"; payload: AuthorizationForGateway }
  | { event: "authorization_created"; payload: ClientAuthorizationCreated }
  | { event: "reject_access"; payload: RejectAccess }
  | { event: "ice_candidates"; peerId: string; candidates: string[] }
  | { event: "invalidate_ice_candidates"; peerId: string; candidates: string[] };

/** What the daemons record for the tests, with the Network's time in the attachment. */
export type DaemonEvent = TunnelEvent | { type: "tun"; packet: Uint8Array } | { type: "forwarded"; packet: Uint8Array };

/** The pieces common to both daemons: the node on its port, driven by the Network. */
abstract class Daemon implements SimEndpoint<DaemonEvent> {
  protected readonly log: DaemonEvent[] = [];
  /** Candidates that arrived before the connection they belong to. */
  private readonly early = new Map<string, string[]>();

  constructor(readonly node: TunnelNode, protected readonly portal: StubPortal<PortalMessage>, readonly name: string) {}

  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void {
    this.node.handleDatagram(now, local.port, from, bytes);
    this.pump(now);
  }

  handleTimeout(now: number): void {
    const t = this.node.pollTimeout();
    if (t !== undefined && t <= now) this.node.handleTimeout(now);
    this.stateTimeout(now);
    this.pump(now);
  }

  pollTransmit(): SimTransmit | undefined {
    const t = this.node.pollTransmit();
    return t === undefined ? undefined : { from: { family: t.to.family, address: "0.0.0.0", port: t.fromPort }, to: t.to, bytes: t.bytes };
  }

  pollTimeout(): number | undefined {
    const times = [this.node.pollTimeout(), this.statePollTimeout()].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  pollEvent(): DaemonEvent | undefined {
    return this.log.shift();
  }

  /** Candidates for a peer: applied now, or kept until connect. */
  protected remoteCandidates(now: number, peerId: string, candidates: string[]): void {
    if (!this.node.peerIds.includes(peerId)) {
      this.early.set(peerId, [...(this.early.get(peerId) ?? []), ...candidates]);
      return;
    }
    for (const c of candidates) this.node.addRemoteCandidate(now, peerId, c);
  }

  protected applyEarly(now: number, peerId: string): void {
    const early = this.early.get(peerId) ?? [];
    this.early.delete(peerId);
    for (const c of early) this.node.addRemoteCandidate(now, peerId, c);
  }

  /** Node events until quiet, each routed. */
  protected pump(now: number): void {
    for (let progress = true; progress; ) {
      progress = false;
      for (let e = this.node.pollEvent(); e !== undefined; e = this.node.pollEvent()) {
        progress = true;
        this.log.push(e);
        if (e.type === "candidate") this.portal.send(this.name, "portal", { event: "ice_candidates", peerId: e.peerId, candidates: [e.candidate] });
        else if (e.type === "candidate_invalidated") this.portal.send(this.name, "portal", { event: "invalidate_ice_candidates", peerId: e.peerId, candidates: [e.candidate] });
        else this.nodeEvent(now, e);
      }
      if (this.drainState(now)) progress = true;
    }
  }

  protected abstract nodeEvent(now: number, event: TunnelEvent): void;
  protected abstract drainState(now: number): boolean;
  /** The daemon's state machine (ClientState or GatewayState): its timers run with the node's. */
  abstract readonly state: { pollTimeout(): number | undefined; handleTimeout(now: number): void };

  private stateTimeout(now: number): void {
    const t = this.state.pollTimeout();
    if (t !== undefined && t <= now) this.state.handleTimeout(now);
  }

  private statePollTimeout(): number | undefined {
    return this.state.pollTimeout();
  }
}

/** A client: ClientState and its TunnelNode. */
export class ClientDaemon extends Daemon {
  readonly state: ClientState;

  constructor(node: TunnelNode, portal: StubPortal<PortalMessage>, random: (n: number) => Uint8Array) {
    super(node, portal, "client");
    this.state = new ClientState({ wallClockAtZeroMs: WALL_CLOCK_AT_ZERO_MS, random });
  }

  /** A portal message for the client. */
  fromPortal(now: number, message: PortalMessage): void {
    switch (message.event) {
      case "init_client":
        this.state.handlePortalEvent(now, "init", message.payload);
        this.node.init(now, message.payload.relays.map(toTunnelRelay));
        break;
      case "authorization_created":
        this.state.handlePortalEvent(now, "authorization_created", message.payload);
        break;
      case "ice_candidates":
        this.remoteCandidates(now, message.peerId, message.candidates);
        break;
      case "invalidate_ice_candidates":
        for (const c of message.candidates) this.node.removeRemoteCandidate(now, message.peerId, c);
        break;
      default:
        break;
    }
    this.pump(now);
  }

  /** An application writes a packet into the TUN device. */
  tunWrite(now: number, packet: Uint8Array): void {
    this.state.handleTunPacket(now, packet);
    this.pump(now);
  }

  protected nodeEvent(now: number, event: TunnelEvent): void {
    if (event.type === "packet") this.state.handleGatewayPacket(now, event.peerId, event.packet);
    else if (event.type === "disconnected" && event.reason === "ice-failed") this.state.handleTunnelDown(now, event.peerId);
    else if (event.type === "session") this.state.handleTunnelSession(now, event.peerId);
  }

  protected drainState(now: number): boolean {
    let progress = false;
    for (let out = this.state.pollEvent(); out !== undefined; out = this.state.pollEvent()) {
      progress = true;
      this.output(now, out);
    }
    return progress;
  }

  private output(now: number, out: ClientOutput): void {
    switch (out.type) {
      case "portal":
        this.portal.send("client", "portal", { event: "request_authorization", payload: out.payload });
        return;
      case "tun":
        this.log.push({ type: "tun", packet: out.packet });
        return;
      case "gateway":
        this.node.send(now, out.gatewayId, out.packet);
        return;
      case "connect": {
        const a = out.authorization;
        this.node.connect(now, out.gatewayId, { publicKey: decodeBase64(a.gateway_public_key)!, presharedKey: decodeBase64(a.preshared_key)!, localIce: a.client_ice, remoteIce: a.gateway_ice });
        this.applyEarly(now, out.gatewayId);
        return;
      }
      case "disconnect":
        this.node.disconnect(now, out.gatewayId);
        return;
      default:
        return;
    }
  }
}

/** A gateway: GatewayState, its TunnelNode, and the echo resource behind it. */
export class GatewayDaemon extends Daemon {
  readonly state: GatewayState;
  /** Packets the echo resource answered. */
  echoed = 0;
  /** Answers GatewayState's resolve events at once (a DNS resource's real addresses); unset: they go unanswered. */
  resolver: ((name: string) => string[]) | undefined;

  constructor(node: TunnelNode, portal: StubPortal<PortalMessage>, random: (n: number) => Uint8Array) {
    super(node, portal, "gateway");
    this.state = new GatewayState({ ...GATEWAY_TUNNEL, epochMs: WALL_CLOCK_AT_ZERO_MS, random });
  }

  fromPortal(now: number, message: PortalMessage): void {
    switch (message.event) {
      case "init_gateway":
        this.node.init(now, message.relays);
        break;
      case "create_authorization": {
        const a = message.payload;
        const result = this.state.createAuthorization(now, a);
        // Acknowledged before the node's candidates go out, so the client connects before they land.
        if (result.ok) this.portal.send("gateway", "portal", { event: "authorization_ack", payload: a });
        break;
      }
      case "reject_access":
        this.state.rejectAccess(now, message.payload);
        break;
      case "ice_candidates":
        this.remoteCandidates(now, message.peerId, message.candidates);
        break;
      case "invalidate_ice_candidates":
        for (const c of message.candidates) this.node.removeRemoteCandidate(now, message.peerId, c);
        break;
      default:
        break;
    }
    this.pump(now);
  }

  protected nodeEvent(now: number, event: TunnelEvent): void {
    if (event.type === "disconnected" && event.reason === "ice-failed") this.state.handleTunnelDown(now, event.peerId);
    if (event.type !== "packet") return;
    const decision = this.state.handleFromClient(now, event.peerId, event.packet);
    if (decision.action === "reply") this.node.send(now, event.peerId, decision.packet);
    if (decision.action === "forward") this.toResource(now, decision.packet);
  }

  /** A packet GatewayState forwards: the echo resource answers it, and the answer goes back through GatewayState. */
  private toResource(now: number, packet: Uint8Array): void {
    this.log.push({ type: "forwarded", packet });
    const answer = echo(packet);
    if (answer === undefined) return;
    this.echoed++;
    const back = this.state.handleFromResource(now, answer);
    if (back.action === "forward") this.node.send(now, back.clientId, back.packet);
  }

  protected drainState(now: number): boolean {
    let progress = false;
    for (let e = this.state.pollEvent(); e !== undefined; e = this.state.pollEvent()) {
      progress = true;
      this.gatewayEvent(now, e);
    }
    return progress;
  }

  private gatewayEvent(now: number, e: GatewayEvent): void {
    switch (e.type) {
      case "peer_added":
      case "peer_updated":
      case "peer_reconnect":
        this.node.connect(now, e.clientId, { publicKey: decodeBase64(e.publicKey)!, presharedKey: decodeBase64(e.presharedKey)!, localIce: e.gatewayIce, remoteIce: e.clientIce });
        this.applyEarly(now, e.clientId);
        return;
      case "peer_removed":
        this.node.disconnect(now, e.clientId);
        return;
      case "resolve":
        if (this.resolver !== undefined) this.state.handleResolved(now, e.name, this.resolver(e.name));
        return;
      case "forward":
        this.toResource(now, e.packet);
        return;
      case "reply":
        this.node.send(now, e.clientId, e.packet);
        return;
      default:
        return;
    }
  }
}

/** The echo resource: a UDP datagram to ECHO_PORT comes back with addresses and ports swapped. */
function echo(packet: Uint8Array): Uint8Array | undefined {
  const parsed = parseIpPacket(packet);
  if (!parsed.ok) return undefined;
  const p = parsed.packet;
  if (p.protocol !== PROTOCOL_UDP || p.dstPort !== ECHO_PORT) return undefined;
  return buildPacket({ src: p.dstText, dst: p.srcText, protocol: PROTOCOL_UDP, srcPort: ECHO_PORT, dstPort: p.srcPort!, payload: packet.slice(p.payloadOffset + 8, p.length) });
}

function toTunnelRelay(relay: ClientInit["relays"][number]): TunnelRelay {
  const colon = relay.addr.lastIndexOf(":");
  const host = relay.addr.slice(0, colon).replace(/^\[|\]$/g, "");
  return { id: relay.id, server: { family: host.includes(":") ? 6 : 4, address: host, port: Number(relay.addr.slice(colon + 1)) }, username: relay.username, password: relay.password };
}

/** ICE credentials in the portal's alphabet, from the network's randomness. */
function iceCredentials(random: (n: number) => Uint8Array): IceCredentials {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const text = (n: number) => [...random(n)].map((b) => alphabet[b % alphabet.length]).join("");
  return { username: text(8), password: text(24) };
}

export interface WorldOptions {
  clientNat: Partial<NatBehaviour>;
  gatewayNat: Partial<NatBehaviour>;
  internet?: Partial<LinkProfile>;
  /** What the portal lists and authorizes (all allowed); the echo ip resource RESOURCE_ID unless told. */
  resources?: GatewayResource[];
  /** The gateway's resolver for DNS resources' names. */
  resolve?: (name: string) => string[];
  /**
   * The preshared key and ICE credentials minted once for the client–gateway pair, as the portal
   * derives them (a later authorization reuses the tunnel); unless told, afresh per authorization.
   */
  pairSecrets?: boolean;
}

/** The scenario world; see the file comment. */
/** The stub portal's authorization_created for the client, from what the gateway acknowledged. */
export function authorizationCreatedFor(a: AuthorizationForGateway, gatewayPublicKey: Uint8Array): { event: "authorization_created"; payload: ClientAuthorizationCreated } {
  return {
    event: "authorization_created",
    payload: {
      resource_id: a.resource.id, gateway_id: GATEWAY_ID, gateway_public_key: encodeBase64(gatewayPublicKey), gateway_ipv4: GATEWAY_TUNNEL.ipv4, gateway_ipv6: GATEWAY_TUNNEL.ipv6,
      site_id: SITE_ID, preshared_key: a.client.preshared_key, client_ice: a.client_ice, gateway_ice: a.gateway_ice, expires_at: a.expires_at,
    },
  };
}

export function buildWorld(seed: number, label: string, options: WorldOptions) {
  const net = new Network({ seed, label, internet: options.internet ?? {} });
  const portal = new StubPortal<PortalMessage>(net);
  const relayHosts = [net.addHost("relay-a", "192.0.2.10"), net.addHost("relay-b", "192.0.2.20")];
  const relays = relayHosts.map((host) => new TurnRelayNode(net, host, { realm: REALM, secrets: [RELAY_SECRET] }));
  const clientNat = net.addNat("client-nat", "198.51.100.1", options.clientNat);
  const gatewayNat = net.addNat("gateway-nat", "198.51.100.2", options.gatewayNat);
  const clientHost = net.addHost("client", "192.168.1.10", clientNat.inside);
  const gatewayHost = net.addHost("gateway", "192.168.2.10", gatewayNat.inside);
  const random = (name: string) => net.randomBytes(name);

  const clientKey = random("client-key")(32);
  const gatewayKey = random("gateway-key")(32);
  const wallClockAtZeroNanos = BigInt(SIM_EPOCH_UNIX) * 1_000_000_000n;
  const client = new ClientDaemon(new TunnelNode({ role: "client", privateKey: clientKey, port: WG_PORT, random: random("client-node"), wallClockAtZeroNanos }), portal, random("client-state"));
  const gateway = new GatewayDaemon(new TunnelNode({ role: "gateway", privateKey: gatewayKey, port: WG_PORT, random: random("gateway-node"), wallClockAtZeroNanos }), portal, random("gateway-state"));
  gateway.resolver = options.resolve;
  const resources: GatewayResource[] = options.resources ?? [{ id: RESOURCE_ID, type: "ip", name: "echo", address: RESOURCE_IP, filters: [] }];
  const clientAttachment: Attachment<DaemonEvent> = clientHost.bind(client, WG_PORT);
  const gatewayAttachment: Attachment<DaemonEvent> = gatewayHost.bind(gateway, WG_PORT);

  const relayList = (who: string) =>
    relayHosts.map((host, i) => {
      const credentials = mintCredentials(RELAY_SECRET, who, SIM_EPOCH_UNIX + 30 * 86_400);
      return { id: RELAY_IDS[i]!, type: "turn" as const, addr: `${host.address}:3478`, username: credentials.username, password: credentials.password, expires_at: EXPIRES_AT };
    });
  const iceRandom = random("portal-ice");
  const pskRandom = random("portal-psk");
  let authorizationCount = 0;
  const mintSecrets = () => ({ psk: encodeBase64(pskRandom(32)), clientIce: iceCredentials(iceRandom), gatewayIce: iceCredentials(iceRandom) });
  let pairSecrets: ReturnType<typeof mintSecrets> | undefined;

  // The portal: policy allows everything; it mints the pair's secrets and relays candidates.
  const authorizations: AuthorizationForGateway[] = [];
  portal.connect("portal", (now, from, message) => {
    switch (message.event) {
      case "request_authorization": {
        const resource = resources.find((r) => r.id === message.payload.resource_id);
        if (resource === undefined) return;
        const secrets = options.pairSecrets === true ? (pairSecrets ??= mintSecrets()) : mintSecrets();
        const authorization: AuthorizationForGateway = {
          authorization_id: `f7000000-0000-4000-8000-${String(++authorizationCount).padStart(12, "0")}`,
          client: { id: CLIENT_ID, public_key: encodeBase64(client.node.publicKey), ...CLIENT_TUNNEL, preshared_key: secrets.psk },
          resource,
          client_ice: secrets.clientIce,
          gateway_ice: secrets.gatewayIce,
          expires_at: EXPIRES_AT,
        };
        authorizations.push(authorization);
        portal.send("portal", "gateway", { event: "create_authorization", payload: authorization });
        return;
      }
      case "authorization_ack": {
        const a = message.payload;
        portal.send("portal", "client", authorizationCreatedFor(a, gateway.node.publicKey));
        return;
      }
      case "ice_candidates":
      case "invalidate_ice_candidates":
        // peerId names the receiver on the way in; on the way out it names the sender.
        if (from === "client") portal.send("portal", "gateway", { ...message, peerId: CLIENT_ID });
        else portal.send("portal", "client", { ...message, peerId: GATEWAY_ID });
        return;
      default:
        return;
    }
  });
  const clientParty = portal.connect("client", (now, _from, message) => client.fromPortal(now, message));
  const gatewayParty = portal.connect("gateway", (now, _from, message) => gateway.fromPortal(now, message));

  const start = () => {
    net.act((now) => {
      client.node.setLocalAddresses(now, [clientHost.address]);
      gateway.node.setLocalAddresses(now, [gatewayHost.address]);
    });
    net.act(() => {
      portal.send("portal", "gateway", { event: "init_gateway", relays: relayList(GATEWAY_ID).map(toTunnelRelay) });
      portal.send("portal", "client", {
        event: "init_client",
        payload: {
          interface: { ...CLIENT_TUNNEL, upstream_dns: [] },
          resources: resources.map((r) => ({ ...r, address_description: null, sites: [{ id: SITE_ID, name: "site" }] })),
          relays: relayList(CLIENT_ID),
        },
      });
    });
  };

  let sequence = 0;
  /** Sends one UDP datagram to the echo resource; returns its payload text, to find the answer by. */
  const ping = (): string => {
    const text = `ping ${++sequence}`;
    const packet = buildPacket({ src: CLIENT_TUNNEL.ipv4, dst: RESOURCE_IP, protocol: PROTOCOL_UDP, srcPort: 40_000, dstPort: ECHO_PORT, payload: new TextEncoder().encode(text) });
    net.act((now) => client.tunWrite(now, packet));
    return text;
  };
  /** Whether the client's TUN device got the echo of `text`. */
  const answered = (text: string): boolean =>
    clientAttachment.events.some((e) => e.event.type === "tun" && new TextDecoder().decode(e.event.packet).endsWith(text));
  /**
   * Starts everything and pings (once a second, as an application retries) until an echo comes
   * back; whether one did within timeout.
   */
  const establish = (timeout = 20_000): boolean => {
    start();
    net.runFor(2_000);
    const texts: string[] = [];
    const until = net.now + timeout;
    while (net.now < until) {
      texts.push(ping());
      if (net.runUntil(() => texts.some(answered), 1_000)) return true;
    }
    return false;
  };
  /** Pings every `every` ms for `ms`: each ping with when it was sent and whether it came back. */
  const pingFor = (ms: number, every: number): { sentAt: number; answered: () => boolean }[] => {
    const pings: { sentAt: number; answered: () => boolean }[] = [];
    const end = net.now + ms;
    while (net.now < end) {
      const sentAt = net.now;
      const text = ping();
      pings.push({ sentAt, answered: () => answered(text) });
      net.runFor(every);
    }
    return pings;
  };
  const clientEvents = <T extends DaemonEvent["type"]>(type: T) =>
    clientAttachment.events.filter((e) => e.event.type === type).map((e) => ({ at: e.at, ...(e.event as Extract<DaemonEvent, { type: T }>) }));

  return { net, portal, clientParty, gatewayParty, relays, relayHosts, clientNat, gatewayNat, clientHost, gatewayHost, client, gateway, clientAttachment, gatewayAttachment, start, establish, ping, pingFor, answered, clientEvents, authorizations };
}

export type World = ReturnType<typeof buildWorld>;
