// A TurnAllocation on a real UDP socket, driven over pipes, for test/interop/turn-client.test.ts. The
// test runs it inside a network namespace (`ip netns exec <ns> node --import tsx <this file> <config>`),
// where the test process itself cannot bind, and runs it from source so it tests this checkout's
// client, not whatever dist/ holds.
//
// 1. argv[2] is a DriverConfig in JSON: the socket is bound to config.bind, then a ready event says
//    where.
// 2. Commands (DriverCommand) arrive as JSON lines on stdin and are applied at the monotonic time.
// 3. After every input (a command, a datagram, the timer) the transmits go out, the events go to
//    stdout as JSON lines (DriverEvent), and the timer is armed for pollTimeout.
// 4. Closing stdin, or an exit command, ends it.

import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { createInterface } from "node:readline";
import type { TransportAddress } from "../../daemons/proto/stun/attributes.js";
import { firstByteKind } from "../../daemons/proto/stun/channel-data.js";
import { TurnAllocation, type TurnClientDrops, type TurnClientEvent } from "../../daemons/proto/turn/client.js";

export interface DriverConfig {
  server: TransportAddress;
  username: string;
  password: string;
  /** The local IPv4 address to bind the client's socket to (port: any). */
  bind: string;
}

export type DriverCommand =
  | { op: "allocate" }
  | { op: "permission"; peer: TransportAddress }
  | { op: "channel"; peer: TransportAddress }
  /** data in hex. */
  | { op: "send"; peer: TransportAddress; data: string }
  | { op: "release" }
  | { op: "stats" }
  | { op: "exit" };

/** How a datagram between the client and the server was framed. */
export type Framing = "channel-data" | "stun";

export type DriverEvent =
  | { type: "ready"; local: TransportAddress }
  /** The number bindChannel picked; a channel event follows once the server confirms it. */
  | { type: "channel-number"; peer: TransportAddress; channel: number }
  | Exclude<TurnClientEvent, { type: "data" }>
  /** A data event, with its bytes in hex and the framing of the datagram it came in. */
  | { type: "data"; peer: TransportAddress; data: string; framing: Framing }
  | { type: "stats"; sent: Record<Framing, number>; received: Record<Framing, number>; dropped: TurnClientDrops }
  /** Something the driver could not do (a socket error, a bad command line). */
  | { type: "error"; message: string };

const framingOf = (bytes: Uint8Array): Framing => (firstByteKind(bytes[0] ?? 0xff) === "channel-data" ? "channel-data" : "stun");
const emit = (event: DriverEvent): void => void process.stdout.write(`${JSON.stringify(event)}\n`);
const now = (): number => performance.now();

const config = JSON.parse(process.argv[2] ?? "{}") as DriverConfig;
const client = new TurnAllocation({
  server: config.server,
  username: config.username,
  password: config.password,
  random: (n) => new Uint8Array(randomBytes(n)),
  software: "wardline turn-client interop",
});
const sent: Record<Framing, number> = { "channel-data": 0, stun: 0 };
const received: Record<Framing, number> = { "channel-data": 0, stun: 0 };
const socket = createSocket("udp4");
let timer: NodeJS.Timeout | undefined;
let stopped = false;

/** Sends what the client wants sent and reports its events; framing is that of the datagram just handled. */
function drain(framing?: Framing): void {
  for (let t = client.pollTransmit(); t !== undefined; t = client.pollTransmit()) {
    sent[framingOf(t.bytes)]++;
    socket.send(t.bytes, t.to.port, t.to.address, (error) => {
      if (error) emit({ type: "error", message: `send to ${t.to.address}:${t.to.port}: ${error.message}` });
    });
  }
  for (let e = client.pollEvent(); e !== undefined; e = client.pollEvent()) {
    emit(e.type === "data" ? { type: "data", peer: e.peer, data: Buffer.from(e.data).toString("hex"), framing: framing ?? "stun" } : e);
  }
  clearTimeout(timer);
  const at = client.pollTimeout();
  if (at !== undefined && !stopped) {
    timer = setTimeout(() => {
      client.handleTimeout(now());
      drain();
    }, Math.max(0, at - now()));
  }
}

function apply(command: DriverCommand): void {
  switch (command.op) {
    case "allocate":
      client.allocate(now());
      break;
    case "permission":
      client.createPermission(now(), command.peer);
      break;
    case "channel":
      emit({ type: "channel-number", peer: command.peer, channel: client.bindChannel(now(), command.peer) });
      break;
    case "send":
      client.send(now(), command.peer, Buffer.from(command.data, "hex"));
      break;
    case "release":
      client.release(now());
      break;
    case "stats":
      emit({ type: "stats", sent: { ...sent }, received: { ...received }, dropped: { ...client.dropped } });
      break;
    case "exit":
      stop();
      return;
  }
  drain();
}

function stop(): void {
  if (stopped) return;
  stopped = true;
  clearTimeout(timer);
  socket.close();
  process.stdin.destroy();
}

socket.on("message", (message, info) => {
  const framing = framingOf(message);
  received[framing]++;
  client.handleDatagram(now(), { family: 4, address: info.address, port: info.port }, message);
  drain(framing);
});
socket.on("error", (error) => emit({ type: "error", message: `socket: ${error.message}` }));
socket.bind(0, config.bind, () => {
  emit({ type: "ready", local: { family: 4, address: config.bind, port: socket.address().port } });
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    try {
      apply(JSON.parse(line) as DriverCommand);
    } catch (error) {
      emit({ type: "error", message: `command ${line}: ${(error as Error).message}` });
    }
  });
  lines.on("close", stop);
});
