// Stateful NAT for DNS resources: a client sends to a proxy IP, the gateway forwards to the real
// address, and the answer comes back from the real address as if from the proxy IP.
//
// 1. A flow is keyed inside by (protocol, client address, client port, proxy address, destination
//    port) and outside by (protocol, client address, outside port, real address, destination port);
//    ICMP echo uses its identifier as the client's "port" and 0 as the destination's. The client's
//    address is never rewritten (the host's own masquerading, if any, comes after).
// 2. The outside port is the client's own unless another flow holds that outside key: two proxy IPs
//    (two DNS resources, or two names) may resolve to one real address, and their flows must stay
//    apart on the way back; then a random port of NAT_PORT_MIN..NAT_PORT_MAX is taken.
// 3. Timeouts (./constants.ts): UDP idle, ICMP query, TCP transitory until the resource has answered,
//    established after, transitory again after any FIN or RST; every packet of the flow refreshes it.
// 4. Entries expire in virtual time: the owner calls expire(now); a lookup never returns an entry
//    whose time has come.

import { formatIp } from "../ip/address.js";
import { PROTOCOL_TCP, PROTOCOL_UDP, TCP_FLAG_ACK, TCP_FLAG_FIN, TCP_FLAG_RST } from "../ip/constants.js";
import type { IpPacket } from "../ip/packet.js";
import {
  ICMP_QUERY_TIMEOUT, NAT_PORT_ATTEMPTS, NAT_PORT_MAX, NAT_PORT_MIN, TCP_ESTABLISHED_TIMEOUT, TCP_TRANSITORY_TIMEOUT,
  UDP_MAPPING_TIMEOUT,
} from "./constants.js";

/** One translated flow. */
export interface NatFlow {
  protocol: number;
  clientId: string;
  resourceId: string;
  client: Uint8Array;
  /** The client's port or echo identifier. */
  clientPort: number;
  proxy: Uint8Array;
  real: Uint8Array;
  /** The destination port (0 for echo); never rewritten. */
  port: number;
  /** The client port as the resource sees it. */
  outsidePort: number;
  /** TCP only: whether the resource answered and no FIN or RST has been seen. */
  tcp: "opening" | "established" | "closing";
  expiresAt: number;
}

/** The transport identity of a packet for NAT: which port or identifier is the client's and which the resource's. */
export interface FlowPorts {
  clientPort: number;
  port: number;
}

const key = (protocol: number, client: string, clientPort: number, other: string, port: number): string =>
  `${protocol}|${client}|${clientPort}|${other}|${port}`;

/** The NAT flows of all clients, with their timers. */
export class NatTable {
  private readonly inside = new Map<string, NatFlow>();
  private readonly outside = new Map<string, NatFlow>();

  constructor(private readonly random: (length: number) => Uint8Array) {}

  /** Live flows, for tests and metrics. */
  get size(): number {
    return this.inside.size;
  }

  /** The flow a client's packet belongs to, if any. */
  lookupInside(now: number, protocol: number, client: Uint8Array, ports: FlowPorts, proxy: Uint8Array): NatFlow | undefined {
    const flow = this.inside.get(key(protocol, formatIp(client), ports.clientPort, formatIp(proxy), ports.port));
    return flow && flow.expiresAt > now ? flow : undefined;
  }

  /** The flow an answer from a real address belongs to, if any. */
  lookupOutside(now: number, protocol: number, client: Uint8Array, outsidePort: number, real: Uint8Array, port: number): NatFlow | undefined {
    const flow = this.outside.get(key(protocol, formatIp(client), outsidePort, formatIp(real), port));
    return flow && flow.expiresAt > now ? flow : undefined;
  }

  /** Creates a flow; undefined when no outside port is free (after NAT_PORT_ATTEMPTS random tries). */
  create(now: number, fields: Omit<NatFlow, "outsidePort" | "tcp" | "expiresAt">): NatFlow | undefined {
    const client = formatIp(fields.client);
    const real = formatIp(fields.real);
    const free = (port: number): boolean => {
      const held = this.outside.get(key(fields.protocol, client, port, real, fields.port));
      return held === undefined || held.expiresAt <= now;
    };
    let outsidePort = fields.clientPort;
    for (let attempt = 0; !free(outsidePort); attempt++) {
      if (attempt === NAT_PORT_ATTEMPTS) return undefined;
      const bytes = this.random(2);
      outsidePort = NAT_PORT_MIN + (((bytes[0]! << 8) | bytes[1]!) % (NAT_PORT_MAX - NAT_PORT_MIN + 1));
    }
    const flow: NatFlow = { ...fields, outsidePort, tcp: "opening", expiresAt: now };
    this.remove(this.inside.get(key(fields.protocol, client, fields.clientPort, formatIp(fields.proxy), fields.port)));
    this.remove(this.outside.get(key(fields.protocol, client, outsidePort, real, fields.port)));
    this.inside.set(key(fields.protocol, client, fields.clientPort, formatIp(fields.proxy), fields.port), flow);
    this.outside.set(key(fields.protocol, client, outsidePort, real, fields.port), flow);
    return flow;
  }

  /** Refreshes a flow's timer after a packet in either direction; `fromResource`: the answer direction. */
  touch(now: number, flow: NatFlow, packet: IpPacket, fromResource: boolean): void {
    if (flow.protocol === PROTOCOL_TCP) {
      const flags = packet.tcpFlags ?? 0;
      if (flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) flow.tcp = "closing";
      else if (fromResource && flow.tcp === "opening" && flags & TCP_FLAG_ACK) flow.tcp = "established";
      flow.expiresAt = now + (flow.tcp === "established" ? TCP_ESTABLISHED_TIMEOUT : TCP_TRANSITORY_TIMEOUT);
    } else if (flow.protocol === PROTOCOL_UDP) flow.expiresAt = now + UDP_MAPPING_TIMEOUT;
    else flow.expiresAt = now + ICMP_QUERY_TIMEOUT;
  }

  /** Drops flows whose time has come; returns the earliest expiry left (Infinity: none). */
  expire(now: number): number {
    let next = Infinity;
    for (const flow of [...this.inside.values()]) {
      if (flow.expiresAt <= now) this.remove(flow);
      else next = Math.min(next, flow.expiresAt);
    }
    return next;
  }

  /** Drops the flows of one client (all its resources, or one). */
  removeClient(clientId: string, resourceId?: string): void {
    for (const flow of [...this.inside.values()]) {
      if (flow.clientId === clientId && (resourceId === undefined || flow.resourceId === resourceId)) this.remove(flow);
    }
  }

  /** Drops a client's flows to these proxy IPs (canonical text). */
  removeProxies(clientId: string, proxies: ReadonlySet<string>): void {
    if (proxies.size === 0) return;
    for (const flow of [...this.inside.values()]) {
      if (flow.clientId === clientId && proxies.has(formatIp(flow.proxy))) this.remove(flow);
    }
  }

  private remove(flow: NatFlow | undefined): void {
    if (!flow) return;
    const client = formatIp(flow.client);
    const inKey = key(flow.protocol, client, flow.clientPort, formatIp(flow.proxy), flow.port);
    const outKey = key(flow.protocol, client, flow.outsidePort, formatIp(flow.real), flow.port);
    if (this.inside.get(inKey) === flow) this.inside.delete(inKey);
    if (this.outside.get(outKey) === flow) this.outside.delete(outKey);
  }
}
