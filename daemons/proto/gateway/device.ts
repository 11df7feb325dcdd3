// The gateway as one sans-IO machine: GatewayState (what may reach what) and a TunnelNode (ICE, TURN,
// WireGuard per client), wired to each other and to the portal's messages. The gateway daemon drives
// it with real sockets, its TUN device and the portal socket; the simulator drives the same wiring.
//
// Driving contract: call one input (handlePortal, setLocalAddresses, handleDatagram,
// handleNetworkPacket, handleResolved, handleTimeout) with the current monotonic time in ms, then
// drain pollTransmit() (UDP datagrams) and pollOutput() until they return undefined, then arm a timer
// for pollTimeout().
//
// 1. Portal messages: init re-syncs the authorizations and allocates on the relays; a
//    create_authorization is installed and answered (authorization_created, or
//    authorization_creation_failed with why), and for a client already connected our candidates
//    are announced again (it may have restarted and lost them); reject_access removes one; ICE candidates go to the
//    client's connection (kept until it exists); relays_presence updates the allocations.
// 2. GatewayState's peer events connect, reconnect (after ICE failed) and disconnect clients in the
//    node; its resolve events go out for the driver's resolver; held packets it releases go on.
// 3. Packets: a client's decrypted packet → GatewayState → out to the network (`network`) or back
//    into the client's tunnel (an ICMP refusal); a packet from the network → GatewayState → into its
//    client's tunnel.
// 4. The node's candidates go to the portal (ice_candidates, invalidate_ice_candidates, naming the
//    client); an ICE failure tells GatewayState (handleTunnelDown); path and session changes come out
//    as `tunnel` outputs for logs and metrics.

import type { AuthorizationForGateway, PayloadOf } from "../portal/schema.js";
import { DeviceCore, tunnelRelay, type PortalIn } from "../tunnel/device-core.js";
import type { TunnelEvent, TunnelNodeOptions } from "../tunnel/node.js";
import { decodeBase64 } from "../wireguard/base64.js";
import { GatewayState, type GatewayStateOptions } from "./state.js";

type PortalOut<E extends "authorization_created" | "authorization_creation_failed" | "ice_candidates" | "invalidate_ice_candidates"> = {
  [K in E]: { event: K; payload: PayloadOf<"gateway", "from_device", K> };
}[E];

export type GatewayDeviceOutput =
  /** A message for the portal. */
  | { type: "portal"; message: PortalOut<"authorization_created" | "authorization_creation_failed" | "ice_candidates" | "invalidate_ice_candidates"> }
  /** A client's packet, allowed (and translated): write it to the network (the TUN device). */
  | { type: "network"; packet: Uint8Array }
  /** Resolve this name (A and AAAA) and call handleResolved with the answer. */
  | { type: "resolve"; name: string }
  /** A path or session change of a client's connection, for logs and metrics. */
  | { type: "tunnel"; event: Exclude<TunnelEvent, { type: "packet" | "candidate" | "candidate_invalidated" }> };

/** The gateway's state and connections in one machine (driving contract in the file header). */
export class GatewayDevice extends DeviceCore<GatewayDeviceOutput> {
  readonly state: GatewayState;
  /** Clients' packets refused with ICMP administratively prohibited (GatewayState counts silent drops). */
  refused = 0;

  constructor(options: { node: Omit<TunnelNodeOptions, "role">; state: GatewayStateOptions }) {
    super({ ...options.node, role: "gateway" });
    this.state = new GatewayState(options.state);
  }

  /** A message from the portal, validated against the schema by the channel. */
  handlePortal(now: number, message: PortalIn<"gateway">): void {
    switch (message.event) {
      case "init": {
        const usable = message.payload.authorizations.filter((a) => {
          const refused = this.refuses(a);
          if (refused !== undefined) this.failed(a.authorization_id, refused);
          return refused === undefined;
        });
        for (const failed of this.state.init(now, usable)) this.failed(failed.authorizationId, failed.reason);
        this.node.init(now, message.payload.relays.map(tunnelRelay));
        break;
      }
      case "create_authorization": {
        const authorization_id = message.payload.authorization_id;
        const clientId = message.payload.client.id;
        const known = this.node.peerIds.includes(clientId);
        const refused = this.refuses(message.payload);
        const result = refused !== undefined ? { ok: false as const, reason: refused } : this.state.createAuthorization(now, message.payload);
        // Acknowledged before the node's candidates for the client go out, so the client connects before they land.
        this.outputs.push({
          type: "portal",
          message: result.ok ? { event: "authorization_created", payload: { authorization_id } } : { event: "authorization_creation_failed", payload: { authorization_id, reason: result.reason } },
        });
        // A client we are connected to asks again: it may be a new process (restarted, same keys and
        // credentials, so our connection stays) that never heard our candidates; it hears them again.
        if (result.ok && known) this.node.reannounceCandidates(clientId);
        break;
      }
      case "reject_access":
        this.state.rejectAccess(now, message.payload);
        break;
      case "ice_candidates":
      case "invalidate_ice_candidates":
        this.trickle(now, message.event, message.payload.client_id, message.payload.candidates);
        break;
      case "relays_presence":
        this.node.updateRelays(now, message.payload.connected.map(tunnelRelay), message.payload.disconnected_ids);
        break;
      default:
        // phx_reply, config_changed (the gateway's tunnel addresses are fixed for its life), disconnect (the driver's).
        break;
    }
    this.pump(now);
  }

  /** Why the client's keys cannot make a tunnel (refused before GatewayState installs anything), or undefined. */
  private refuses(a: AuthorizationForGateway): string | undefined {
    const publicKey = decodeBase64(a.client.public_key);
    const presharedKey = decodeBase64(a.client.preshared_key);
    if (publicKey === undefined || presharedKey === undefined) return "client keys are not base64";
    const refused = this.node.refusesPeer({ publicKey, presharedKey });
    return refused === undefined ? undefined : `client keys unusable: ${refused}`;
  }

  private failed(authorization_id: string, reason: string): void {
    this.outputs.push({ type: "portal", message: { event: "authorization_creation_failed", payload: { authorization_id, reason } } });
  }

  /** A packet from the network for a client's tunnel address. */
  handleNetworkPacket(now: number, bytes: Uint8Array): void {
    const decision = this.state.handleFromResource(now, bytes);
    if (decision.action === "forward") this.node.send(now, decision.clientId, decision.packet);
    this.pump(now);
  }

  /** The driver's resolver answered a resolve output (empty: no address). */
  handleResolved(now: number, name: string, addresses: readonly string[]): void {
    this.state.handleResolved(now, name, addresses);
    this.pump(now);
  }

  protected announce(event: "ice_candidates" | "invalidate_ice_candidates", peerId: string, candidate: string): void {
    this.outputs.push({ type: "portal", message: { event, payload: { client_id: peerId, candidates: [candidate] } } });
  }

  protected nodeEvent(now: number, event: Exclude<TunnelEvent, { type: "candidate" | "candidate_invalidated" }>): void {
    switch (event.type) {
      case "packet": {
        const decision = this.state.handleFromClient(now, event.peerId, event.packet);
        if (decision.action === "reply") {
          this.refused++;
          this.node.send(now, event.peerId, decision.packet);
        } else if (decision.action === "forward") this.outputs.push({ type: "network", packet: decision.packet });
        return;
      }
      default:
        if (event.type === "disconnected" && event.reason === "ice-failed") this.state.handleTunnelDown(now, event.peerId);
        this.outputs.push({ type: "tunnel", event });
    }
  }

  protected drainState(now: number): boolean {
    let progress = false;
    for (let e = this.state.pollEvent(); e !== undefined; e = this.state.pollEvent()) {
      progress = true;
      switch (e.type) {
        case "peer_added":
        case "peer_updated":
        case "peer_reconnect":
          this.connectPeer(now, e.clientId, { publicKey: decodeBase64(e.publicKey)!, presharedKey: decodeBase64(e.presharedKey)!, localIce: e.gatewayIce, remoteIce: e.clientIce });
          break;
        case "peer_removed":
          this.node.disconnect(now, e.clientId);
          break;
        case "resolve":
          this.outputs.push({ type: "resolve", name: e.name });
          break;
        case "forward":
          this.outputs.push({ type: "network", packet: e.packet });
          break;
        case "reply":
          this.refused++;
          this.node.send(now, e.clientId, e.packet);
          break;
        default:
          break;
      }
    }
    return progress;
  }
}
