// What the client's and the gateway's device machines (../client/device.ts, ../gateway/device.ts)
// share: their TunnelNode, its transmits and timers alongside their own state machine's, the ICE
// candidates both ways (the peer's, kept until its connection exists; ours, announced), and the loop
// that drains the node and the state machine into each other until both are quiet.

import type { DeviceRole, EventName, PayloadOf, Relay } from "../portal/schema.js";
import { TunnelNode, type TunnelEvent, type TunnelNodeOptions, type TunnelRelay, type TunnelTransmit } from "./node.js";

/** A message from the portal to a device of `R`, as the channel hands it over. */
export type PortalIn<R extends DeviceRole> = { [E in EventName<R, "to_device">]: { event: E; payload: PayloadOf<R, "to_device", E> } }[EventName<R, "to_device">];

/** A relay from the portal (init, relays_presence) as the node takes it. */
export function tunnelRelay(relay: Relay): TunnelRelay {
  const colon = relay.addr.lastIndexOf(":");
  const host = relay.addr.slice(0, colon).replace(/^\[|\]$/g, "");
  return { id: relay.id, server: { family: host.includes(":") ? 6 : 4, address: host, port: Number(relay.addr.slice(colon + 1)) }, username: relay.username, password: relay.password };
}

/** The state machine a device composes with its node: its timers run with the node's. */
export interface TimedMachine {
  pollTimeout(): number | undefined;
  handleTimeout(now: number): void;
}

/** The node, the early candidates and the drain loop of a device (see the file comment). */
export abstract class DeviceCore<Output> {
  readonly node: TunnelNode;
  protected readonly outputs: Output[] = [];
  /** Candidates that arrived before the connection they belong to. */
  private readonly early = new Map<string, string[]>();

  constructor(nodeOptions: TunnelNodeOptions) {
    this.node = new TunnelNode(nodeOptions);
  }

  abstract readonly state: TimedMachine;

  /** The host's own addresses (host candidates); a change is a roam. */
  setLocalAddresses(now: number, addresses: readonly string[]): void {
    this.node.setLocalAddresses(now, addresses);
    this.pump(now);
  }

  /** A UDP datagram on the device's port. */
  handleDatagram(now: number, localPort: number, from: TunnelTransmit["to"], bytes: Uint8Array): void {
    this.node.handleDatagram(now, localPort, from, bytes);
    this.pump(now);
  }

  handleTimeout(now: number): void {
    const t = this.node.pollTimeout();
    if (t !== undefined && t <= now) this.node.handleTimeout(now);
    const s = this.state.pollTimeout();
    if (s !== undefined && s <= now) this.state.handleTimeout(now);
    this.pump(now);
  }

  pollTransmit(): TunnelTransmit | undefined {
    return this.node.pollTransmit();
  }

  pollOutput(): Output | undefined {
    return this.outputs.shift();
  }

  pollTimeout(): number | undefined {
    const times = [this.node.pollTimeout(), this.state.pollTimeout()].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /** A peer's trickled candidates: applied now, or kept until its connection exists. */
  protected remoteCandidates(now: number, peerId: string, candidates: readonly string[]): void {
    if (!this.node.peerIds.includes(peerId)) {
      this.early.set(peerId, [...(this.early.get(peerId) ?? []), ...candidates]);
      return;
    }
    for (const c of candidates) this.node.addRemoteCandidate(now, peerId, c);
  }

  /** A peer's candidates from the portal: added (ice_candidates) or withdrawn (invalidate_ice_candidates). */
  protected trickle(now: number, event: "ice_candidates" | "invalidate_ice_candidates", peerId: string, candidates: readonly string[]): void {
    if (event === "ice_candidates") this.remoteCandidates(now, peerId, candidates);
    else for (const c of candidates) this.node.removeRemoteCandidate(now, peerId, c);
  }

  /** Connects a peer, then gives it the candidates that came early. */
  protected connectPeer(now: number, peerId: string, options: Parameters<TunnelNode["connect"]>[2]): void {
    this.node.connect(now, peerId, options);
    const early = this.early.get(peerId) ?? [];
    this.early.delete(peerId);
    for (const c of early) this.node.addRemoteCandidate(now, peerId, c);
  }

  /** Node events and the state machine's outputs, each routed, until neither has more. */
  protected pump(now: number): void {
    for (let progress = true; progress; ) {
      progress = false;
      for (let e = this.node.pollEvent(); e !== undefined; e = this.node.pollEvent()) {
        progress = true;
        if (e.type === "candidate") this.announce("ice_candidates", e.peerId, e.candidate);
        else if (e.type === "candidate_invalidated") this.announce("invalidate_ice_candidates", e.peerId, e.candidate);
        else this.nodeEvent(now, e);
      }
      if (this.drainState(now)) progress = true;
    }
  }

  /** Tells the portal of one of our candidates for a peer, or that it is gone. */
  protected abstract announce(event: "ice_candidates" | "invalidate_ice_candidates", peerId: string, candidate: string): void;
  /** The node's other events: packets, paths, sessions. */
  protected abstract nodeEvent(now: number, event: Exclude<TunnelEvent, { type: "candidate" | "candidate_invalidated" }>): void;
  /** Routes the state machine's outputs; whether there were any. */
  protected abstract drainState(now: number): boolean;
}
