// The real TURN relay and client as simulated endpoints.
//
// TurnRelayNode is what daemons/relay will be, minus sockets: the TurnServer state machine on a
// listening port, relay sockets it opens on the same host through openRelay, and the forwarding
// table the engine keeps in the real relay (DESIGN.md, Hot paths): ChannelData from a client on an
// installed channel goes straight out of the relay socket to the peer, and a datagram from that peer
// comes back as ChannelData, without the server seeing either. The table follows the server's
// channel-bound / channel-unbound events; allocation-closed frees the relay port.
//
// Per datagram, in the order of this file:
// 1. At the listening port: ChannelData on an installed channel → the peer; anything else → the server.
// 2. At a relay port: from a peer with an installed channel → ChannelData to the client; else → the server.
// 3. Out: forwarded datagrams first, then the server's transmits, each from its socket's port.
// 4. Events: applied to the forwarding table as the Network drains them, then passed on.

import { decodeChannelData, encodeChannelData, firstByteKind } from "../../daemons/proto/stun/channel-data.js";
import { TurnAllocation, type TurnClientEvent, type TurnClientOptions } from "../../daemons/proto/turn/client.js";
import { TurnServer, type TurnEvent, type TurnServerOptions } from "../../daemons/proto/turn/server.js";
import { DYNAMIC_PORTS_MAX, DYNAMIC_PORTS_MIN, STUN_PORT } from "./constants.js";
import type { Attachment, Host, Network } from "./network.js";
import { formatAddr, singleSocket, type Addr, type SimEndpoint, type SimTransmit } from "./node.js";

/** Ours: Unix seconds at virtual time 0 for the relay's credential and nonce clock (2026-01-01T00:00:00Z). */
export const SIM_EPOCH_UNIX = 1_767_225_600;

/** How to set up a TurnRelayNode. */
export interface TurnRelayOptions {
  realm: string;
  secrets: readonly (string | Uint8Array)[];
  /** The listening port; STUN_PORT unless told. */
  port?: number;
  /** Where relay ports come from; the dynamic range unless told. */
  relayPorts?: readonly [number, number];
  /** Passed through to TurnServer. */
  server?: Partial<Pick<TurnServerOptions, "defaultLifetime" | "maxLifetime" | "allowPrivatePeers" | "maxAllocationsPerUser" | "software" | "wallClockAtZeroSeconds">>;
}

interface Forward {
  relayId: number;
  client: Addr;
  channel: number;
  peer: Addr;
}

/** A TURN relay (TurnServer plus the engine's forwarding table) on a host; see the file comment. */
export class TurnRelayNode implements SimEndpoint<TurnEvent> {
  readonly server: TurnServer;
  readonly attachment: Attachment<TurnEvent>;
  readonly port: number;
  /** Datagrams the forwarding table moved, each way. */
  readonly forwarded = { toPeer: 0, toClient: 0 };
  private readonly relayPort = new Map<number, number>();
  private readonly relayOfPort = new Map<number, number>();
  private readonly byChannel = new Map<string, Forward>();
  private readonly byPeer = new Map<string, Forward>();
  private readonly out: SimTransmit[] = [];
  private nextRelayId = 1;
  private nextPort: number;

  constructor(network: Network, readonly host: Host, options: TurnRelayOptions) {
    this.port = options.port ?? STUN_PORT;
    const [lo, hi] = options.relayPorts ?? [DYNAMIC_PORTS_MIN, DYNAMIC_PORTS_MAX];
    this.nextPort = lo;
    this.server = new TurnServer({
      wallClockAtZeroSeconds: SIM_EPOCH_UNIX,
      ...options.server,
      realm: options.realm,
      secrets: options.secrets,
      random: network.randomBytes(`turn-server/${host.name}`),
      relayAddress: host.family === 4 ? { 4: host.address } : { 6: host.address },
      openRelay: () => {
        // Sequential ports, skipping taken ones: deterministic, and a real relay's choice does not matter here.
        for (let i = 0; i <= hi - lo; i++) {
          const port = this.nextPort;
          this.nextPort = port === hi ? lo : port + 1;
          if (host.sockets.has(port)) continue;
          const relayId = this.nextRelayId++;
          host.bind(this, port);
          this.relayPort.set(relayId, port);
          this.relayOfPort.set(port, relayId);
          return { relayId, port };
        }
        return undefined;
      },
    });
    this.attachment = host.bind(this, this.port);
  }

  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void {
    // --- 1. At the listening port ---
    if (local.port === this.port) {
      if (bytes.length > 0 && firstByteKind(bytes[0]!) === "channel-data") {
        const decoded = decodeChannelData(bytes);
        const forward = decoded.ok ? this.byChannel.get(channelKey(from, decoded.channel)) : undefined;
        if (decoded.ok && forward !== undefined) {
          this.forwarded.toPeer++;
          this.out.push({ from: this.local(this.relayPort.get(forward.relayId)!), to: forward.peer, bytes: decoded.data.slice() });
          return;
        }
      }
      this.server.handleClientDatagram(now, from, bytes);
      return;
    }
    // --- 2. At a relay port ---
    const relayId = this.relayOfPort.get(local.port);
    if (relayId === undefined) return;
    const forward = this.byPeer.get(peerKey(relayId, from));
    if (forward !== undefined) {
      this.forwarded.toClient++;
      this.out.push({ from: this.local(this.port), to: forward.client, bytes: encodeChannelData(forward.channel, bytes) });
      return;
    }
    this.server.handlePeerDatagram(now, relayId, from, bytes);
  }

  handleTimeout(now: number): void {
    this.server.handleTimeout(now);
  }

  // --- 3. Out ---

  pollTransmit(): SimTransmit | undefined {
    const forwarded = this.out.shift();
    if (forwarded !== undefined) return forwarded;
    const t = this.server.pollTransmit();
    if (t === undefined) return undefined;
    const port = t.via === "listener" ? this.port : this.relayPort.get(t.relayId);
    // A transmit for a relay socket already closed has nowhere to leave from.
    if (port === undefined) return this.pollTransmit();
    return { from: this.local(port), to: t.to, bytes: t.bytes };
  }

  pollTimeout(): number | undefined {
    return this.server.pollTimeout();
  }

  // --- 4. Events ---

  pollEvent(): TurnEvent | undefined {
    const event = this.server.pollEvent();
    if (event === undefined) return undefined;
    switch (event.type) {
      case "channel-bound": {
        const forward: Forward = { relayId: event.relayId, client: event.client, channel: event.channel, peer: event.peer };
        this.byChannel.set(channelKey(event.client, event.channel), forward);
        this.byPeer.set(peerKey(event.relayId, event.peer), forward);
        break;
      }
      case "channel-unbound":
        this.byChannel.delete(channelKey(event.client, event.channel));
        this.byPeer.delete(peerKey(event.relayId, event.peer));
        break;
      case "allocation-closed": {
        const port = this.relayPort.get(event.relayId);
        this.relayPort.delete(event.relayId);
        if (port !== undefined) {
          this.relayOfPort.delete(port);
          this.host.unbind(port);
        }
        break;
      }
    }
    return event;
  }

  private local(port: number): Addr {
    return { family: this.host.family, address: this.host.address, port };
  }
}

function channelKey(client: Addr, channel: number): string {
  return `${formatAddr(client)}#${channel}`;
}

function peerKey(relayId: number, peer: Addr): string {
  return `${relayId}/${formatAddr(peer)}`;
}

/** A TurnAllocation on one port of a host, its randomness from the network's seed; its events land in attachment.events. */
export function attachTurnClient(
  network: Network,
  host: Host,
  port: number,
  options: Omit<TurnClientOptions, "random">,
): { allocation: TurnAllocation; attachment: Attachment<TurnClientEvent> } {
  const allocation = new TurnAllocation({ ...options, random: network.randomBytes(`turn-client/${host.name}:${port}`) });
  return { allocation, attachment: host.bind(singleSocket(allocation), port) };
}
