// What a simulated endpoint is: any sans-IO UDP state machine, driven by the Network the way a
// daemon's event loop drives it (DESIGN.md, Sans-IO contract), and a few small endpoints and adapters.
//
// The contract, from the Network's side:
// 1. An input: handleDatagram(now, local, from, bytes) for a datagram that reached one of the
//    endpoint's bound ports (`local` says which), or handleTimeout(now) once `now` reaches the last
//    pollTimeout(); or a command a test ran inside Network.act / Network.at.
// 2. Then drain: pollTransmit() until undefined (each datagram leaves from `from.port` if given, else
//    the endpoint's first bound port), pollEvent() until undefined if the endpoint has it (the
//    Network records each event with its time in the Attachment, and queues its onEvent reaction
//    for the same instant), then pollTimeout() to arm the one timer.
//
// Machines with one socket and handleDatagram(now, from, bytes), like TurnAllocation, plug in
// through singleSocket().

import type { TransportAddress } from "../../daemons/proto/stun/attributes.js";

/** A transport address: the same shape as the STUN codec's, so protocol machines take it as is. */
export type Addr = TransportAddress;

/** A datagram an endpoint wants sent. */
export interface SimTransmit {
  /** The local socket it leaves from (only its port is read); the endpoint's first port when absent. */
  from?: Addr;
  to: Addr;
  bytes: Uint8Array;
}

/** A sans-IO UDP endpoint the Network can drive; see the contract above. */
export interface SimEndpoint<E = unknown> {
  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void;
  handleTimeout(now: number): void;
  pollTransmit(): SimTransmit | undefined;
  pollTimeout(): number | undefined;
  /** Drained after every input when present; the Network keeps what it returns, with the time. */
  pollEvent?(): E | undefined;
}

/** The shape of a one-socket sans-IO machine (TurnAllocation, and the like). */
export interface SingleSocketMachine<E> {
  handleDatagram(now: number, from: Addr, bytes: Uint8Array): void;
  handleTimeout(now: number): void;
  pollTransmit(): { to: Addr; bytes: Uint8Array } | undefined;
  pollTimeout(): number | undefined;
  pollEvent?(): E | undefined;
}

/** A one-socket machine as a SimEndpoint: it sends from the endpoint's first bound port. */
export function singleSocket<E>(machine: SingleSocketMachine<E>): SimEndpoint<E> & { machine: SingleSocketMachine<E> } {
  const endpoint: SimEndpoint<E> & { machine: SingleSocketMachine<E> } = {
    machine,
    handleDatagram: (now, _local, from, bytes) => machine.handleDatagram(now, from, bytes),
    handleTimeout: (now) => machine.handleTimeout(now),
    pollTransmit: () => machine.pollTransmit(),
    pollTimeout: () => machine.pollTimeout(),
  };
  if (machine.pollEvent !== undefined) endpoint.pollEvent = () => machine.pollEvent!();
  return endpoint;
}

/** A datagram an endpoint received. */
export interface Received {
  at: number;
  local: Addr;
  from: Addr;
  bytes: Uint8Array;
}

/**
 * An endpoint for tests: keeps what it receives, sends what it is told to (call send inside
 * Network.act so it is drained), and optionally answers every datagram through `reply`.
 */
export class RecordingEndpoint implements SimEndpoint {
  readonly received: Received[] = [];
  /** Called for every datagram received; what it returns is sent back to the sender from the same port. */
  reply: ((datagram: Received) => Uint8Array | undefined) | undefined;
  private readonly outbox: SimTransmit[] = [];

  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void {
    const datagram = { at: now, local: { ...local }, from: { ...from }, bytes: bytes.slice() };
    this.received.push(datagram);
    const answer = this.reply?.(datagram);
    if (answer !== undefined) this.outbox.push({ from: local, to: from, bytes: answer });
  }

  handleTimeout(_now: number): void {}

  /** Queues a datagram; fromPort picks the local socket (the first bound one otherwise). */
  send(to: Addr, bytes: Uint8Array, fromPort?: number): void {
    const transmit: SimTransmit = { to: { ...to }, bytes };
    if (fromPort !== undefined) transmit.from = { family: to.family, address: "0.0.0.0", port: fromPort };
    this.outbox.push(transmit);
  }

  pollTransmit(): SimTransmit | undefined {
    return this.outbox.shift();
  }

  pollTimeout(): number | undefined {
    return undefined;
  }
}

const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An address from "a.b.c.d:port" or "[v6]:port", or from an IP and a port; throws on anything else (test input, not packets). */
export function addr(text: string, port?: number): Addr {
  let address = text;
  let portNumber = port;
  if (portNumber === undefined) {
    const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
    if (match === null) throw new RangeError(`not an address with a port: ${text}`);
    address = match[1]!;
    portNumber = Number(match[2]);
  }
  if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 0xffff) throw new RangeError(`bad port in ${text}`);
  if (IPV4.test(address)) return { family: 4, address, port: portNumber };
  if (address.includes(":")) return { family: 6, address: address.toLowerCase(), port: portNumber };
  throw new RangeError(`not an IP address: ${address}`);
}

/** "a.b.c.d:port" or "[v6]:port". */
export function formatAddr(a: Addr): string {
  return a.family === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Whether two addresses are the same transport address. */
export function sameAddr(a: Addr, b: Addr): boolean {
  return a.port === b.port && a.address === b.address && a.family === b.family;
}
