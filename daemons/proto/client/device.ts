// The client as one sans-IO machine: ClientState (resources, DNS, authorizations, routing) and a
// TunnelNode (ICE, TURN, WireGuard per gateway), wired to each other and to the portal's messages.
// The client daemon drives it with real sockets, its TUN device and the portal socket; the simulator
// drives the same wiring.
//
// Driving contract: call one input (handlePortal, setLocalAddresses, handleDatagram, handleTunPacket,
// handleUpstreamDns, setInternetResource, handleTimeout) with the current monotonic time in ms, then
// drain pollTransmit() (UDP datagrams) and pollOutput() until they return undefined, then arm a timer
// for pollTimeout().
//
// 1. Portal messages: init, resource and config changes and the authorization answers go to
//    ClientState; init also allocates on the relays, relays_presence updates the allocations; ICE
//    candidates go to the gateway's connection (kept until it exists).
// 2. ClientState's outputs: request_authorization to the portal; packets into the TUN device; packets
//    for a gateway into its tunnel; connect and disconnect of gateways in the node; DNS queries for the
//    upstream resolvers; the routes and DNS servers the host must use.
// 3. The node: a gateway's decrypted packets go to ClientState; its candidates to the portal (naming
//    the gateway); an ICE failure (handleTunnelDown) and a new session (handleTunnelSession) to
//    ClientState; path and session changes come out as `tunnel` outputs for logs and metrics.

import type { DnsEndpoint } from "../dns/stub-resolver.js";
import type { PayloadOf } from "../portal/schema.js";
import { DeviceCore, tunnelRelay, type PortalIn } from "../tunnel/device-core.js";
import type { TunnelEvent, TunnelNodeOptions } from "../tunnel/node.js";
import { decodeBase64 } from "../wireguard/base64.js";
import { ClientState, type ClientOutput, type ClientStateOptions } from "./state.js";

type PortalOut<E extends "request_authorization" | "ice_candidates" | "invalidate_ice_candidates"> = {
  [K in E]: { event: K; payload: PayloadOf<"client", "from_device", K> };
}[E];

export type ClientDeviceOutput =
  /** A message for the portal. */
  | { type: "portal"; message: PortalOut<"request_authorization" | "ice_candidates" | "invalidate_ice_candidates"> }
  /** ClientState's outputs for the host: TUN packets, upstream DNS queries, routes and DNS servers. */
  | Extract<ClientOutput, { type: "tun" | "dns_upstream" | "routes" | "dns_servers" }>
  /** A path or session change of a gateway's connection, for logs and metrics. */
  | { type: "tunnel"; event: Exclude<TunnelEvent, { type: "packet" | "candidate" | "candidate_invalidated" }> }
  /** The portal named a gateway whose keys no tunnel can be made with (wrong length, low order): not connected. */
  | { type: "gateway_refused"; gatewayId: string; reason: string };

/** The client's state and connections in one machine (driving contract in the file header). */
export class ClientDevice extends DeviceCore<ClientDeviceOutput> {
  readonly state: ClientState;

  constructor(options: { node: Omit<TunnelNodeOptions, "role">; state: ClientStateOptions }) {
    super({ ...options.node, role: "client" });
    this.state = new ClientState(options.state);
  }

  /** A message from the portal, validated against the schema by the channel. */
  handlePortal(now: number, message: PortalIn<"client">): void {
    switch (message.event) {
      case "init":
        this.state.handlePortalEvent(now, "init", message.payload);
        this.node.init(now, message.payload.relays.map(tunnelRelay));
        break;
      case "resource_created_or_updated":
        this.state.handlePortalEvent(now, message.event, message.payload);
        break;
      case "resource_deleted":
        this.state.handlePortalEvent(now, message.event, message.payload);
        break;
      case "config_changed":
        this.state.handlePortalEvent(now, message.event, message.payload);
        break;
      case "authorization_created":
        this.state.handlePortalEvent(now, message.event, message.payload);
        break;
      case "authorization_creation_failed":
        this.state.handlePortalEvent(now, message.event, message.payload);
        break;
      case "ice_candidates":
      case "invalidate_ice_candidates":
        this.trickle(now, message.event, message.payload.gateway_id, message.payload.candidates);
        break;
      case "relays_presence":
        this.node.updateRelays(now, message.payload.connected.map(tunnelRelay), message.payload.disconnected_ids);
        break;
      default:
        // phx_reply, disconnect: the driver's.
        break;
    }
    this.pump(now);
  }

  /** A packet an application wrote into the TUN device. */
  handleTunPacket(now: number, packet: Uint8Array): void {
    this.state.handleTunPacket(now, packet);
    this.pump(now);
  }

  /** An upstream resolver's answer to a dns_upstream output. */
  handleUpstreamDns(now: number, from: DnsEndpoint, bytes: Uint8Array): void {
    this.state.handleUpstreamDns(now, from, bytes);
    this.pump(now);
  }

  /** Switches the Internet resource's routes on or off. */
  setInternetResource(now: number, on: boolean): void {
    this.state.setInternetResource(now, on);
    this.pump(now);
  }

  protected announce(event: "ice_candidates" | "invalidate_ice_candidates", peerId: string, candidate: string): void {
    this.outputs.push({ type: "portal", message: { event, payload: { gateway_id: peerId, candidates: [candidate] } } });
  }

  protected nodeEvent(now: number, event: Exclude<TunnelEvent, { type: "candidate" | "candidate_invalidated" }>): void {
    switch (event.type) {
      case "packet":
        this.state.handleGatewayPacket(now, event.peerId, event.packet);
        return;
      default:
        if (event.type === "disconnected" && event.reason === "ice-failed") this.state.handleTunnelDown(now, event.peerId);
        else if (event.type === "session") this.state.handleTunnelSession(now, event.peerId);
        this.outputs.push({ type: "tunnel", event });
    }
  }

  protected drainState(now: number): boolean {
    let progress = false;
    for (let out = this.state.pollEvent(); out !== undefined; out = this.state.pollEvent()) {
      progress = true;
      switch (out.type) {
        case "portal":
          this.outputs.push({ type: "portal", message: { event: out.event, payload: out.payload } });
          break;
        case "gateway":
          this.node.send(now, out.gatewayId, out.packet);
          break;
        case "connect": {
          const a = out.authorization;
          const publicKey = decodeBase64(a.gateway_public_key);
          const presharedKey = decodeBase64(a.preshared_key);
          const refused = publicKey === undefined || presharedKey === undefined ? "keys are not base64" : this.node.refusesPeer({ publicKey, presharedKey });
          // Keys no tunnel can be made with: no connection (its packets are dropped as having no path), and the driver logs why.
          if (refused !== undefined) this.outputs.push({ type: "gateway_refused", gatewayId: out.gatewayId, reason: refused });
          else this.connectPeer(now, out.gatewayId, { publicKey: publicKey!, presharedKey: presharedKey!, localIce: a.client_ice, remoteIce: a.gateway_ice });
          break;
        }
        case "disconnect":
          this.node.disconnect(now, out.gatewayId);
          break;
        default:
          this.outputs.push(out);
      }
    }
    return progress;
  }
}
