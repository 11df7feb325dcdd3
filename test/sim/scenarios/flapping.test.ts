// Scenario: ICE flapping under 20 % loss. With 20 % loss on the internet hop (each way), the
// direct path between the two NATs is cut and healed again and again while a stream flows from the
// client's application to a sink behind the gateway:
// 1. each cut makes ICE fall back to a relayed pair (consent to the direct one lapses), each heal
//    brings it back to the direct pair (failed pairs are re-checked), and the last word is direct;
// 2. none of it tears the connection down: the same ICE agents and WireGuard peers throughout, no
//    ice-failed, and no WireGuard handshake when the path returns to direct (the session goes on
//    over the new path); the handshakes that do happen are rekeys or WireGuard's own reaction to
//    silence (15 s of sending without receiving) during a cut;
// 3. the stream arrives complete and in order (SHA-256 of the sink's bytes in order).
//
// The stream: a paced selective-repeat transfer over UDP, written here since the tunnel promises
// nothing. Every TICK ms the sender resends what has waited RTO ms unacknowledged (at most
// RESEND_PER_TICK, so a dead path costs a bounded trickle) and sends PACE new chunks while fewer
// than WINDOW are unacknowledged; each datagram is [u32 sequence][bytes]. The sink acknowledges
// each datagram with [u32 its sequence][u32 the next sequence it needs], buffers out-of-order
// chunks and hashes strictly in order.

import { createHash } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { PROTOCOL_UDP } from "../../../daemons/proto/ip/constants.js";
import { parseIpPacket } from "../../../daemons/proto/ip/packet.js";
import { buildPacket } from "../../../daemons/proto/ip/testing.js";
import { KEEPALIVE_TIMEOUT, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT } from "../../../daemons/proto/wireguard/constants.js";
import { REKEY_TIMEOUT_JITTER_MAX } from "../../../daemons/proto/wireguard/peer.js";
import { Rng, reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { buildWorld, CLIENT_ID, CLIENT_TUNNEL, GATEWAY_ID, RESOURCE_IP, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

const LOSS = 0.2;
const CHUNK = 1_000;
const PACE = 1;
const WINDOW = 64;
/** Above the relayed round trip (four 20 ms internet hops, two LAN hops, jitter). */
const RTO = 400;
const RESEND_PER_TICK = 8;
const TICK = 20;
const SINK_PORT = 9;
const APP_PORT = 40_002;
/** Cut and healed this many times. */
const CYCLES = 2;
/** How long the direct path stays cut: past consent's 15 s and a check round, so ICE must fall back. */
const CUT_MS = 30_000;
/** How long it stays healed: failed pairs are re-checked every 10 s (±20 %), so ICE finds it again. */
const HEALED_MS = 30_000;
/** The stream lasts about the flapping: PACE chunks a TICK. */
const STREAM_BYTES = Math.round(((CYCLES * (CUT_MS + HEALED_MS) + 10_000) / TICK) * PACE * CHUNK);
/** A handshake's retransmissions (REKEY_TIMEOUT plus jitter), and a round trip. */
const HANDSHAKE_RETRY_MS = REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + 500;
/** WireGuard's own new handshake after sending without receiving for this long (wireguard-go's timers). */
const SILENCE_HANDSHAKE_MS = KEEPALIVE_TIMEOUT + REKEY_TIMEOUT;

/** The sending half: which chunks are out, since when, which are acknowledged. */
class PacedSender {
  readonly chunks: number;
  private next = 0;
  private lowest = 0;
  private readonly acked: Uint8Array;
  private readonly sentAt: Float64Array;
  transmissions = 0;
  resent = 0;

  constructor(private readonly data: Uint8Array) {
    this.chunks = Math.ceil(data.length / CHUNK);
    this.acked = new Uint8Array(this.chunks);
    this.sentAt = new Float64Array(this.chunks);
  }

  get done(): boolean {
    return this.lowest === this.chunks;
  }

  /** This tick's datagrams: overdue chunks first (bounded), then new ones as pace and window allow. */
  tick(now: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let seq = this.lowest; seq < this.next && out.length < RESEND_PER_TICK; seq++) {
      if (this.acked[seq] === 0 && now - this.sentAt[seq]! >= RTO) {
        this.resent++;
        out.push(this.datagram(now, seq));
      }
    }
    for (let n = 0; n < PACE && this.next < this.chunks && this.next - this.lowest < WINDOW; n++) out.push(this.datagram(now, this.next++));
    return out;
  }

  handleAck(ack: Uint8Array): void {
    if (ack.length !== 8) return;
    const view = new DataView(ack.buffer, ack.byteOffset, ack.byteLength);
    const seq = view.getUint32(0);
    if (seq < this.chunks) this.acked[seq] = 1;
    const needed = Math.min(view.getUint32(4), this.chunks);
    for (let s = this.lowest; s < needed; s++) this.acked[s] = 1;
    while (this.lowest < this.chunks && this.acked[this.lowest] === 1) this.lowest++;
  }

  private datagram(now: number, seq: number): Uint8Array {
    this.sentAt[seq] = now;
    this.transmissions++;
    const body = this.data.subarray(seq * CHUNK, Math.min((seq + 1) * CHUNK, this.data.length));
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, seq);
    out.set(body, 4);
    return out;
  }
}

/** The receiving half: holds what came early, hashes in order, acknowledges each datagram. */
class OrderedSink {
  private needed = 0;
  private readonly early = new Map<number, Uint8Array>();
  private readonly sha = createHash("sha256");
  bytes = 0;
  private finalDigest: string | undefined;

  constructor(private readonly chunks: number) {}

  get complete(): boolean {
    return this.needed === this.chunks;
  }

  digest(): string {
    this.finalDigest ??= this.sha.digest("hex");
    return this.finalDigest;
  }

  receive(datagram: Uint8Array): Uint8Array | undefined {
    if (datagram.length < 4) return undefined;
    const seq = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength).getUint32(0);
    if (seq >= this.needed && seq < this.chunks) this.early.set(seq, datagram.slice(4));
    for (let chunk = this.early.get(this.needed); chunk !== undefined; chunk = this.early.get(this.needed)) {
      this.early.delete(this.needed++);
      this.sha.update(chunk);
      this.bytes += chunk.length;
    }
    const ack = new Uint8Array(8);
    const view = new DataView(ack.buffer);
    view.setUint32(0, seq);
    view.setUint32(4, this.needed);
    return ack;
  }
}

/** The UDP payload of a parsed packet between two ports, or undefined. */
function udpPayload(bytes: Uint8Array, srcPort: number, dstPort: number): { payload: Uint8Array; src: string; dst: string } | undefined {
  const parsed = parseIpPacket(bytes);
  if (!parsed.ok) return undefined;
  const p = parsed.packet;
  if (p.protocol !== PROTOCOL_UDP || (srcPort !== 0 && p.srcPort !== srcPort) || (dstPort !== 0 && p.dstPort !== dstPort)) return undefined;
  return { payload: bytes.slice(p.payloadOffset + 8, p.length), src: p.srcText, dst: p.dstText };
}

/** What the run observed: path selections, WireGuard sessions installed on each side, ICE failures. */
interface Timeline {
  paths: { at: number; relayed: boolean }[];
  installs: { at: number; side: "client" | "gateway" }[];
  failures: { at: number; side: string; reason: string }[];
  /** When each side last heard a stream packet through the tunnel (WireGuard's silence counts from there). */
  heard: { client: number; gateway: number };
}

/**
 * Records, from now on, when each side installs a WireGuard session (its counter, looked at every
 * TICK and at every event of the stream): the install times, to within TICK ms.
 */
function watchSessions(w: World, timeline: Timeline): (now: number) => void {
  const installed = { client: 0, gateway: 0 };
  const look = (now: number) => {
    for (const side of ["client", "gateway"] as const) {
      const count = (side === "client" ? w.client : w.gateway).node.stats.sessionsInstalled;
      for (; installed[side] < count; installed[side]++) timeline.installs.push({ at: now, side });
    }
  };
  const every = (now: number) => {
    look(now);
    w.net.at(now + TICK, every);
  };
  w.net.act(every);
  return look;
}

/** The stream, wired into the world; the timeline is filled as it goes. */
function attachStream(w: World, data: Uint8Array, timeline: Timeline, watchSessions: (now: number) => void) {
  const sender = new PacedSender(data);
  const sink = new OrderedSink(sender.chunks);
  w.gatewayAttachment.onEvent = (now, event) => {
    watchSessions(now);
    if (event.type === "disconnected") timeline.failures.push({ at: now, side: "gateway", reason: event.reason });
    if (event.type !== "forwarded") return;
    timeline.heard.gateway = now;
    const datagram = udpPayload(event.packet, APP_PORT, SINK_PORT);
    const ack = datagram && sink.receive(datagram.payload);
    if (ack === undefined) return;
    const back = w.gateway.state.handleFromResource(now, buildPacket({ src: datagram!.dst, dst: datagram!.src, protocol: PROTOCOL_UDP, srcPort: SINK_PORT, dstPort: APP_PORT, payload: ack }));
    if (back.action === "forward") w.gateway.node.send(now, back.clientId, back.packet);
  };
  w.clientAttachment.onEvent = (now, event) => {
    watchSessions(now);
    if (event.type === "connected") timeline.paths.push({ at: now, relayed: event.relayed });
    if (event.type === "disconnected") timeline.failures.push({ at: now, side: "client", reason: event.reason });
    if (event.type !== "tun") return;
    timeline.heard.client = now;
    const ack = udpPayload(event.packet, SINK_PORT, APP_PORT);
    if (ack !== undefined) sender.handleAck(ack.payload);
  };
  const tick = (now: number) => {
    watchSessions(now);
    for (const payload of sender.tick(now)) {
      w.client.tunWrite(now, buildPacket({ src: CLIENT_TUNNEL.ipv4, dst: RESOURCE_IP, protocol: PROTOCOL_UDP, srcPort: APP_PORT, dstPort: SINK_PORT, payload }));
    }
    // The recorded events would otherwise hold every datagram of the stream; the timeline has what matters.
    w.clientAttachment.events.length = 0;
    w.gatewayAttachment.events.length = 0;
    if (!sender.done) w.net.at(now + TICK, tick);
  };
  return { sender, sink, start: () => w.net.act(tick) };
}

/**
 * When each handshake began: the first session either side installed for it. The responder installs
 * a session for every initiation that reaches it (the initiator retries every REKEY_TIMEOUT, plus
 * jitter, for up to REKEY_ATTEMPT_TIME while no response comes back), the initiator one when the
 * response does; so installs belong to one handshake until both sides have installed, and a
 * retry already on its way may still land a moment after.
 */
function handshakeStarts(installs: Timeline["installs"]): number[] {
  const starts: number[] = [];
  let sides = new Set<string>();
  let last = -Infinity;
  for (const install of [...installs].sort((a, b) => a.at - b.at)) {
    const open = starts.length > 0 && sides.size < 2 && install.at - starts.at(-1)! <= REKEY_ATTEMPT_TIME;
    if (!open && install.at - last > HANDSHAKE_RETRY_MS) {
      starts.push(install.at);
      sides = new Set();
    }
    sides.add(install.side);
    last = install.at;
  }
  return starts;
}

/** Path changes as "d"/"r" transitions with times, for failure messages. */
function describePaths(paths: Timeline["paths"], from: number): string {
  return paths.map((p) => `${p.at - from}:${p.relayed ? "r" : "d"}`).join(" ");
}

function scenario(seed: number): void {
  const w = buildWorld(seed, "ice flapping", { clientNat: portRestricted, gatewayNat: portRestricted, internet: { jitter: 5, loss: LOSS } });
  const timeline: Timeline = { paths: [], installs: [], failures: [], heard: { client: -Infinity, gateway: -Infinity } };
  const sessions = watchSessions(w, timeline);
  expect(w.establish(180_000), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
  // Under this loss the relayed pair may win the first race; the direct one takes over soon after.
  expect(w.net.runUntil(() => w.client.node.selectedPair(GATEWAY_ID)?.relayed === false, 60_000), w.net.where("never direct")).toBe(true);
  const agents = { client: w.client.node.agentOf(GATEWAY_ID), gateway: w.gateway.node.agentOf(CLIENT_ID) };

  const data = new Rng("ice flapping data", seed).bytes(STREAM_BYTES);
  const stream = attachStream(w, data, timeline, sessions);
  const startedAt = w.net.now;
  stream.start();
  // lastHeard: the earlier of the two sides' last stream packet before the cut, where a side's
  // silence (and so its silence handshake, SILENCE_HANDSHAKE_MS later) begins; a packet already in
  // flight when the cut comes may land a moment after it.
  const cuts: { at: number; healedAt: number; lastHeard: number }[] = [];
  for (let i = 0; i < CYCLES; i++) {
    const at = startedAt + 5_000 + i * (CUT_MS + HEALED_MS);
    const cutInfo = { at, healedAt: at + CUT_MS, lastHeard: at };
    cuts.push(cutInfo);
    w.net.at(at, () => {
      cutInfo.lastHeard = Math.min(at, timeline.heard.client, timeline.heard.gateway);
      const cut = w.net.cut("client-nat", "gateway-nat");
      w.net.at(at + CUT_MS, () => cut.heal());
    });
  }
  const finished = w.net.runUntil(() => stream.sender.done && stream.sink.complete, 600_000);
  const lastHeal = cuts.at(-1)!.healedAt;
  // The flapping is over before the stream is: then ICE settles on the direct pair again.
  w.net.runUntil(() => w.net.now > lastHeal + 20_000 && w.client.node.selectedPair(GATEWAY_ID)?.relayed === false, 120_000);
  const paths = describePaths(timeline.paths, startedAt);
  const detail = `after ${w.net.now - startedAt} ms: ${stream.sink.bytes} of ${data.length} bytes, ${stream.sender.transmissions} sent, ${stream.sender.resent} again; cuts at ${cuts.map((c) => c.at - startedAt).join(",")}; paths ${paths}`;

  // 3. The stream, whole and in order.
  expect(finished, w.net.where(detail)).toBe(true);
  expect(stream.sink.bytes, w.net.where(detail)).toBe(data.length);
  expect(stream.sink.digest(), w.net.where(detail)).toBe(createHash("sha256").update(data).digest("hex"));

  // 1. Each cut: relayed before it heals; each heal: direct again before the next cut.
  for (const [i, cut] of cuts.entries()) {
    const fellBack = timeline.paths.find((p) => p.relayed && p.at >= cut.at && p.at <= cut.healedAt);
    expect(fellBack, w.net.where(`cut ${i}: no fallback to a relay; ${detail}`)).toBeDefined();
    const nextCut = cuts[i + 1]?.at ?? Infinity;
    const back = timeline.paths.find((p) => !p.relayed && p.at >= cut.healedAt && p.at < nextCut);
    expect(back, w.net.where(`heal ${i}: no return to direct; ${detail}`)).toBeDefined();
  }
  expect(w.client.node.selectedPair(GATEWAY_ID)?.relayed, w.net.where(detail)).toBe(false);

  // 2. No teardown: the same agents (connect was never called again), no ice-failed.
  expect(w.client.node.agentOf(GATEWAY_ID) === agents.client && w.gateway.node.agentOf(CLIENT_ID) === agents.gateway, w.net.where(`agents replaced; ${detail}`)).toBe(true);
  expect(timeline.failures.filter((f) => f.reason === "ice-failed"), w.net.where(detail)).toEqual([]);
  // No handshake because the path changed: every one is a rekey, or WireGuard's answer to a cut's silence.
  const installs = timeline.installs.map((i) => `${i.side}@${i.at - startedAt}`).join(" ");
  const starts = handshakeStarts(timeline.installs);
  for (const [i, start] of starts.entries()) {
    if (start < startedAt || i === 0) continue;
    const rekey = start - starts[i - 1]! >= REKEY_AFTER_TIME;
    const silence = cuts.some((c) => start >= c.lastHeard + SILENCE_HANDSHAKE_MS && start <= c.healedAt);
    expect(rekey || silence, w.net.where(`a handshake at ${start - startedAt} is neither a rekey nor a cut's; installs ${installs}; ${detail}`)).toBe(true);
  }
}

describe("scenario: ICE flapping under 20 % loss", () => {
  it("falls back to a relay and returns to direct, WireGuard untouched, the stream whole and in order", async () => {
    await runSeeds("ice flapping", scenario, { count: 3 });
  }, 120_000);
});
