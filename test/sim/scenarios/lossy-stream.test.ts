// Scenario: 20 % packet loss on every hop still delivers a 10 MB stream, byte for byte.
//
// The client's application streams to a sink on the resource through the tunnel with the small
// reliable transfer of ../stream.ts (at most WINDOW chunks out, resent after RTO ms, checked every
// TICK ms); the test compares the sink's SHA-256 with the data's.
// The sink sits where the echo host is: it reacts to the gateway's "forwarded" events and hands
// its answers to the gateway as packets from the resource, as world.ts's echo does.

import { createHash } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { PROTOCOL_UDP } from "../../../daemons/proto/ip/constants.js";
import { parseIpPacket } from "../../../daemons/proto/ip/packet.js";
import { buildPacket } from "../../../daemons/proto/ip/testing.js";
import { Rng, reportSeedOnFailure } from "../../support/prng.js";
import { portRestricted, symmetric } from "../nat.js";
import { runSeeds } from "../scenario.js";
import { StreamSender, StreamSink } from "../stream.js";
import { buildWorld, CLIENT_TUNNEL, GATEWAY_ID, RESOURCE_IP, type World } from "./world.js";

beforeEach(reportSeedOnFailure);

const STREAM_BYTES = 10 * 1024 * 1024;
const CHUNK = 1_200;
const WINDOW = 64;
/** Well above the slowest round trip here (relayed: four 20 ms internet hops and two LAN hops, plus jitter). */
const RTO = 300;
const TICK = 20;
const SINK_PORT = 9;
const APP_PORT = 40_001;
const LOSS = 0.2;

/** Wires a transfer of `data` into the world: the app on the client, the sink behind the gateway. */
function attachStream(w: World, data: Uint8Array) {
  const sender = new StreamSender(data, { chunk: CHUNK, window: WINDOW, rto: RTO });
  const sink = new StreamSink(sender.chunks);
  const send = (now: number) => {
    for (const payload of sender.due(now)) {
      w.client.tunWrite(now, buildPacket({ src: CLIENT_TUNNEL.ipv4, dst: RESOURCE_IP, protocol: PROTOCOL_UDP, srcPort: APP_PORT, dstPort: SINK_PORT, payload }));
    }
  };
  w.gatewayAttachment.onEvent = (now, event) => {
    if (event.type !== "forwarded") return;
    const parsed = parseIpPacket(event.packet);
    if (!parsed.ok) return;
    const p = parsed.packet;
    if (p.protocol !== PROTOCOL_UDP || p.dstPort !== SINK_PORT) return;
    const ack = sink.handle(event.packet.slice(p.payloadOffset + 8, p.length));
    const answer = buildPacket({ src: p.dstText, dst: p.srcText, protocol: PROTOCOL_UDP, srcPort: SINK_PORT, dstPort: p.srcPort!, payload: ack });
    const back = w.gateway.state.handleFromResource(now, answer);
    if (back.action === "forward") w.gateway.node.send(now, back.clientId, back.packet);
  };
  w.clientAttachment.onEvent = (now, event) => {
    if (event.type !== "tun") return;
    const parsed = parseIpPacket(event.packet);
    if (!parsed.ok) return;
    const p = parsed.packet;
    if (p.protocol !== PROTOCOL_UDP || p.srcPort !== SINK_PORT || p.dstPort !== APP_PORT) return;
    sender.handleAck(event.packet.slice(p.payloadOffset + 8, p.length));
    send(now);
  };
  const tick = (now: number) => {
    send(now);
    // The recorded events would otherwise hold every chunk of the stream twice over.
    w.clientAttachment.events.length = 0;
    w.gatewayAttachment.events.length = 0;
    if (!sender.done) w.net.at(now + TICK, tick);
  };
  return { sender, sink, start: () => w.net.act(tick) };
}

/** Every hop lossy: the internet's and both LANs'. */
function lossEverywhere(w: World): void {
  w.net.internet.link = { ...w.net.internet.link, loss: LOSS };
  w.clientNat.inside.link = { ...w.clientNat.inside.link, loss: LOSS };
  w.gatewayNat.inside.link = { ...w.gatewayNat.inside.link, loss: LOSS };
}

describe("scenario: a 10 MB stream through 20 % loss on every hop", () => {
  for (const [kind, behaviour, relayed] of [["direct, port-restricted NATs", portRestricted, false], ["relayed, symmetric NATs", symmetric, true]] as const) {
    it(`arrives whole and in order (${kind})`, async () => {
      await runSeeds(`lossy stream ${kind}`, (seed) => {
        const w = buildWorld(seed, `lossy stream ${kind}`, { clientNat: behaviour, gatewayNat: behaviour, internet: { jitter: 5 } });
        lossEverywhere(w);
        // The loss is on from the start: ICE, TURN and the WireGuard handshake retry through it.
        // Measured over 60 seeds, setup takes 3–107 s of virtual time (median about 15 s).
        expect(w.establish(180_000), w.net.where(`\n${w.net.traceTail(60)}`)).toBe(true);
        // Under this loss the direct pair can lose the race at first: a relayed pair carries the
        // first echo and the direct one takes over seconds later (seen: 6 s after). It also falls
        // back to a relay for a few seconds now and then (consent checks lost, presumably), so the
        // path is checked as the stream starts, and the relays' share of the stream after it.
        w.net.runUntil(() => w.client.node.selectedPair(GATEWAY_ID)?.relayed === relayed, 60_000);
        expect(w.client.node.selectedPair(GATEWAY_ID)?.relayed, w.net.where()).toBe(relayed);
        const relayedBefore = w.relays.reduce((n, r) => n + r.forwarded.toPeer + r.forwarded.toClient, 0);

        const data = new Rng(`lossy stream data`, seed).bytes(STREAM_BYTES);
        const stream = attachStream(w, data);
        const lostBefore = w.net.stats.dropped.loss ?? 0;
        const sentBefore = w.net.stats.sent;
        const startedAt = w.net.now;
        stream.start();
        const finished = w.net.runUntil(() => stream.sender.done && stream.sink.complete, 900_000);
        const detail = `after ${w.net.now - startedAt} ms: ${stream.sink.bytes} bytes, ${stream.sender.transmissions} sent, ${stream.sender.retransmissions} again`;
        expect(finished, w.net.where(detail)).toBe(true);

        expect(stream.sink.bytes, w.net.where(detail)).toBe(STREAM_BYTES);
        expect(stream.sink.digest(), w.net.where(detail)).toBe(createHash("sha256").update(data).digest("hex"));
        // The loss was real: the network dropped many of the stream's datagrams, and the sender resent.
        const lost = (w.net.stats.dropped.loss ?? 0) - lostBefore;
        const sent = w.net.stats.sent - sentBefore;
        // (Each send crosses two or three lossy hops: a third to a half of them are lost.)
        expect(lost, w.net.where(`${detail}, lost ${lost} of ${sent}`)).toBeGreaterThan(sent * LOSS * 0.8);
        expect(stream.sender.retransmissions, w.net.where(detail)).toBeGreaterThan(stream.sender.chunks * 0.3);
        const viaRelays = w.relays.reduce((n, r) => n + r.forwarded.toPeer + r.forwarded.toClient, 0) - relayedBefore;
        const share = `relays forwarded ${viaRelays} datagrams (data and acks) for ${stream.sender.transmissions} data datagrams sent`;
        if (relayed) expect(viaRelays, w.net.where(share)).toBeGreaterThan(stream.sender.transmissions * 0.5);
        else expect(viaRelays, w.net.where(share)).toBeLessThan(stream.sender.transmissions * 0.5);
      }, { count: 2 });
    }, 120_000);
  }
});
