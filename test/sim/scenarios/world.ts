// The whole data path in the simulated network: a client host (ClientDevice: ClientState +
// TunnelNode), a gateway host (GatewayDevice: GatewayState + TunnelNode) with an in-process echo
// resource behind it, two real TURN relays, and a stub portal that routes init,
// request_authorization (policy: allow) → create_authorization → authorization_created,
// reject_access, relays_presence, and trickled ICE candidates.
//
// Each daemon is one SimEndpoint: the Network drives its device, the wiring the real daemons run
// (daemons/proto/client/device.ts, daemons/proto/gateway/device.ts); the daemon here only turns the
// stub portal's messages into the wire schema's and back, and puts the echo resource behind the
// gateway.

import { ClientDevice, type ClientDeviceOutput } from "../../../daemons/proto/client/device.js";
import type { ClientState } from "../../../daemons/proto/client/state.js";
import { GatewayDevice, type GatewayDeviceOutput } from "../../../daemons/proto/gateway/device.js";
import type { GatewayState } from "../../../daemons/proto/gateway/state.js";
import { parseIpPacket } from "../../../daemons/proto/ip/packet.js";
import { buildPacket } from "../../../daemons/proto/ip/testing.js";
import { PROTOCOL_UDP } from "../../../daemons/proto/ip/constants.js";
import type {
  AuthorizationForGateway, ClientAuthorizationCreated, ClientInit, GatewayResource, IceCredentials, RejectAccess, Relay, RelaysPresence,
  RequestAuthorization,
} from "../../../daemons/proto/portal/schema.js";
import { mintCredentials } from "../../../daemons/proto/stun/credentials.js";
import type { DeviceCore } from "../../../daemons/proto/tunnel/device-core.js";
import type { TunnelEvent, TunnelNode, TunnelNodeOptions } from "../../../daemons/proto/tunnel/node.js";
import { encodeBase64 } from "../../../daemons/proto/wireguard/base64.js";
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
  /** The gateway's init; `authorizations` are what it still holds (a re-sync after a reconnect), none unless told. */
  | { event: "init_gateway"; relays: Relay[]; authorizations?: AuthorizationForGateway[] }
  /** A relay that joined or left the portal, to one device. */
  | { event: "relays_presence"; payload: RelaysPresence }
  | { event: "request_authorization"; payload: RequestAuthorization }
  | { event: "create_authorization"; payload: AuthorizationForGateway }
  | { event: "authorization_ack"; payload: AuthorizationForGateway }
  | { event: "authorization_created"; payload: ClientAuthorizationCreated }
  | { event: "reject_access"; payload: RejectAccess }
  | { event: "ice_candidates"; peerId: string; candidates: string[] }
  | { event: "invalidate_ice_candidates"; peerId: string; candidates: string[] };

/** What the daemons record for the tests, with the Network's time in the attachment. */
export type DaemonEvent = TunnelEvent | { type: "tun"; packet: Uint8Array } | { type: "forwarded"; packet: Uint8Array };

/**
 * A daemon on the simulated network: the device machine (daemons/proto/client/device.ts,
 * daemons/proto/gateway/device.ts, the wiring the real daemons run) on its port, driven by the
 * Network; the stub portal's messages are turned into the wire schema's and back.
 */
abstract class Daemon<O, D extends DeviceCore<O>> implements SimEndpoint<DaemonEvent> {
  protected readonly log: DaemonEvent[] = [];

  constructor(readonly device: D, protected readonly portal: StubPortal<PortalMessage>, readonly name: "client" | "gateway") {}

  get node(): TunnelNode {
    return this.device.node;
  }

  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void {
    this.device.handleDatagram(now, local.port, from, bytes);
    this.drain(now);
  }

  handleTimeout(now: number): void {
    this.device.handleTimeout(now);
    this.drain(now);
  }

  pollTransmit(): SimTransmit | undefined {
    const t = this.device.pollTransmit();
    return t === undefined ? undefined : { from: { family: t.to.family, address: "0.0.0.0", port: t.fromPort }, to: t.to, bytes: t.bytes };
  }

  pollTimeout(): number | undefined {
    return this.device.pollTimeout();
  }

  pollEvent(): DaemonEvent | undefined {
    return this.log.shift();
  }

  /** The device's outputs until there are none. */
  protected drain(now: number): void {
    for (let out = this.device.pollOutput(); out !== undefined; out = this.device.pollOutput()) this.output(now, out);
  }

  protected abstract output(now: number, out: O): void;

  /** A candidate message for the stub portal, which names the peer itself. */
  protected candidates(event: "ice_candidates" | "invalidate_ice_candidates", peerId: string, candidates: string[]): void {
    this.portal.send(this.name, "portal", { event, peerId, candidates });
  }
}

/** A client: its ClientDevice. */
export class ClientDaemon extends Daemon<ClientDeviceOutput, ClientDevice> {
  constructor(node: Omit<TunnelNodeOptions, "role">, portal: StubPortal<PortalMessage>, random: (n: number) => Uint8Array) {
    super(new ClientDevice({ node, state: { wallClockAtZeroMs: WALL_CLOCK_AT_ZERO_MS, random } }), portal, "client");
  }

  get state(): ClientState {
    return this.device.state;
  }

  /** A portal message for the client. */
  fromPortal(now: number, message: PortalMessage): void {
    switch (message.event) {
      case "init_client":
        this.device.handlePortal(now, { event: "init", payload: message.payload });
        break;
      case "authorization_created":
      case "relays_presence":
        this.device.handlePortal(now, message);
        break;
      case "ice_candidates":
      case "invalidate_ice_candidates":
        this.device.handlePortal(now, { event: message.event, payload: { gateway_id: message.peerId, candidates: message.candidates } });
        break;
      default:
        break;
    }
    this.drain(now);
  }

  /** An application writes a packet into the TUN device. */
  tunWrite(now: number, packet: Uint8Array): void {
    this.device.handleTunPacket(now, packet);
    this.drain(now);
  }

  protected output(_now: number, out: ClientDeviceOutput): void {
    switch (out.type) {
      case "portal":
        if (out.message.event === "request_authorization") this.portal.send("client", "portal", { event: "request_authorization", payload: out.message.payload });
        else this.candidates(out.message.event, out.message.payload.gateway_id, out.message.payload.candidates);
        return;
      case "tun":
        this.log.push({ type: "tun", packet: out.packet });
        return;
      case "tunnel":
        this.log.push(out.event);
        return;
      default:
        return;
    }
  }
}

/** A gateway: its GatewayDevice, and the echo resource behind it. */
export class GatewayDaemon extends Daemon<GatewayDeviceOutput, GatewayDevice> {
  /** Packets the echo resource answered. */
  echoed = 0;
  /** Answers the device's resolve outputs at once (a DNS resource's real addresses); unset: they go unanswered. */
  resolver: ((name: string) => string[]) | undefined;
  /** What the portal asked to install, by id: the stub portal's acknowledgement carries it whole. */
  private readonly asked = new Map<string, AuthorizationForGateway>();

  constructor(node: Omit<TunnelNodeOptions, "role">, portal: StubPortal<PortalMessage>, random: (n: number) => Uint8Array) {
    super(new GatewayDevice({ node, state: { ...GATEWAY_TUNNEL, epochMs: WALL_CLOCK_AT_ZERO_MS, random } }), portal, "gateway");
  }

  get state(): GatewayState {
    return this.device.state;
  }

  fromPortal(now: number, message: PortalMessage): void {
    switch (message.event) {
      case "init_gateway":
        this.device.handlePortal(now, { event: "init", payload: { interface: { ...GATEWAY_TUNNEL, upstream_dns: [] }, relays: message.relays, authorizations: message.authorizations ?? [] } });
        break;
      case "create_authorization":
        this.asked.set(message.payload.authorization_id, message.payload);
        this.device.handlePortal(now, message);
        break;
      case "reject_access":
      case "relays_presence":
        this.device.handlePortal(now, message);
        break;
      case "ice_candidates":
      case "invalidate_ice_candidates":
        this.device.handlePortal(now, { event: message.event, payload: { client_id: message.peerId, candidates: message.candidates } });
        break;
      default:
        break;
    }
    this.drain(now);
  }

  protected output(now: number, out: GatewayDeviceOutput): void {
    switch (out.type) {
      case "portal": {
        const m = out.message;
        if (m.event === "authorization_created") {
          const a = this.asked.get(m.payload.authorization_id);
          this.asked.delete(m.payload.authorization_id);
          if (a !== undefined) this.portal.send("gateway", "portal", { event: "authorization_ack", payload: a });
        } else if (m.event === "ice_candidates" || m.event === "invalidate_ice_candidates") {
          this.candidates(m.event, m.payload.client_id, m.payload.candidates);
        }
        return;
      }
      case "network": {
        // The echo resource answers, and the answer comes back through the device.
        this.log.push({ type: "forwarded", packet: out.packet });
        const answer = echo(out.packet);
        if (answer === undefined) return;
        this.echoed++;
        this.device.handleNetworkPacket(now, answer);
        return;
      }
      case "resolve":
        if (this.resolver !== undefined) this.device.handleResolved(now, out.name, this.resolver(out.name));
        return;
      case "tunnel":
        this.log.push(out.event);
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

/** The stub portal passes candidates on to the other side, naming the side they came from. */
export function relayCandidates(portal: StubPortal<PortalMessage>, from: string, message: Extract<PortalMessage, { peerId: string }>): void {
  if (from === "client") portal.send("portal", "gateway", { ...message, peerId: CLIENT_ID });
  else portal.send("portal", "client", { ...message, peerId: GATEWAY_ID });
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
  const client = new ClientDaemon({ privateKey: clientKey, port: WG_PORT, random: random("client-node"), wallClockAtZeroNanos }, portal, random("client-state"));
  const gateway = new GatewayDaemon({ privateKey: gatewayKey, port: WG_PORT, random: random("gateway-node"), wallClockAtZeroNanos }, portal, random("gateway-state"));
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
        relayCandidates(portal, from, message);
        return;
      default:
        return;
    }
  });
  const clientParty = portal.connect("client", (now, _from, message) => client.fromPortal(now, message));
  const gatewayParty = portal.connect("gateway", (now, _from, message) => gateway.fromPortal(now, message));

  /** The client's init: its interface, the resources, and `relays` (each relay's credentials for the client). */
  const clientInit = (relays: Relay[] = relayList(CLIENT_ID)): PortalMessage => ({
    event: "init_client",
    payload: {
      interface: { ...CLIENT_TUNNEL, upstream_dns: [] },
      resources: resources.map((r) => ({ ...r, address_description: null, sites: [{ id: SITE_ID, name: "site" }] })),
      relays,
    },
  });

  const start = () => {
    net.act((now) => {
      client.node.setLocalAddresses(now, [clientHost.address]);
      gateway.node.setLocalAddresses(now, [gatewayHost.address]);
    });
    net.act(() => {
      portal.send("portal", "gateway", { event: "init_gateway", relays: relayList(GATEWAY_ID) });
      portal.send("portal", "client", clientInit());
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

  return {
    net, portal, clientParty, gatewayParty, relays, relayHosts, clientNat, gatewayNat, clientHost, gatewayHost, client, gateway, clientAttachment, gatewayAttachment, start, establish, ping,
    pingFor, answered, clientEvents, authorizations, relayList, clientInit,
  };
}

export type World = ReturnType<typeof buildWorld>;
