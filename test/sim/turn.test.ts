// The real TURN relay (TurnServer with the forwarding table, turn.ts) on a public host and the real
// TurnAllocation on a host behind a symmetric NAT, in the simulated network: the allocation succeeds,
// a peer on the internet reaches the client through the relay over a channel and over a permission
// alone, the client reaches the peer, nobody else gets in; over lossy, reordering links on many seeds;
// and an idle NAT mapping cuts the client off the relay, which is why keepalives exist.

import { beforeEach, describe, expect, it } from "vitest";
import type { TurnClientEvent } from "../../daemons/proto/turn/client.js";
import { ERROR_ALLOCATION_MISMATCH } from "../../daemons/proto/stun/constants.js";
import { mintCredentials } from "../../daemons/proto/stun/credentials.js";
import { reportSeedOnFailure, rng } from "../support/prng.js";
import { portRestricted, symmetric, type NatBehaviour } from "./nat.js";
import { Network, type LinkProfile } from "./network.js";
import { addr, formatAddr, RecordingEndpoint, type Addr } from "./node.js";
import { runSeeds } from "./scenario.js";
import { attachTurnClient, SIM_EPOCH_UNIX, TurnRelayNode } from "./turn.js";

beforeEach(reportSeedOnFailure);

const REALM = "wardline";
const SECRET = "relay-shared-secret";
const RELAY = addr("192.0.2.10:3478");
const PEER = addr("203.0.113.9:5000");
const PEER2 = addr("203.0.113.20:6000");
const utf8 = new TextEncoder();
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

function world(seed: number, internet: Partial<LinkProfile> = {}, behaviour: Partial<NatBehaviour> = symmetric) {
  const net = new Network({ seed, label: "turn", internet });
  const relayHost = net.addHost("relay", RELAY.address);
  const relay = new TurnRelayNode(net, relayHost, { realm: REALM, secrets: [SECRET] });
  const nat = net.addNat("home", "198.51.100.1", behaviour);
  const clientHost = net.addHost("client", "192.168.1.10", nat.inside);
  const credentials = mintCredentials(SECRET, "client-1", SIM_EPOCH_UNIX + 86_400);
  const client = attachTurnClient(net, clientHost, 50_000, { server: RELAY, ...credentials });
  const peer = new RecordingEndpoint();
  net.addHost("peer", PEER.address).bind(peer, PEER.port);
  const peer2 = new RecordingEndpoint();
  net.addHost("peer2", PEER2.address).bind(peer2, PEER2.port);
  const events = <T extends TurnClientEvent["type"]>(type: T) =>
    client.attachment.events.filter((e) => e.event.type === type).map((e) => ({ at: e.at, ...(e.event as Extract<TurnClientEvent, { type: T }>) }));
  return { net, nat, relay, client, allocation: client.allocation, peer, peer2, events };
}

type World = ReturnType<typeof world>;

function allocate(w: World, timeout = 60_000): Addr {
  w.net.act((now) => w.allocation.allocate(now));
  const ok = w.net.runUntil(() => w.allocation.allocated || w.events("failed").length > 0, timeout);
  expect(ok && w.allocation.allocated, w.net.where(`allocation: ${JSON.stringify(w.events("failed"))}`)).toBe(true);
  return w.allocation.relayedAddresses[0]!;
}

describe("TURN through a symmetric NAT", () => {
  it("allocates: the relayed address is the relay's, the mapped one the NAT's", () => {
    const w = world(rng("allocate").u32());
    const relayed = allocate(w);
    expect(relayed.address).toBe(RELAY.address);
    const [mapping] = w.nat.box.mappings(w.net.now);
    expect(mapping!.remote).toBe(formatAddr(RELAY));
    expect(w.allocation.mappedAddress).toEqual(mapping!.external);
    // 401, then the authenticated Allocate: two round trips of 1 + 20 ms each way.
    expect(w.events("allocated")[0]!.at).toBe(4 * 21);
    expect(w.relay.server.stats.allocations).toBe(1);
  });

  it("a peer reaches the client over a channel, through the forwarding table, and back", () => {
    const w = world(rng("channel").u32());
    const relayed = allocate(w);
    let channel = 0;
    w.net.act((now) => (channel = w.allocation.bindChannel(now, PEER)));
    expect(w.net.runUntil(() => w.events("channel").length > 0, 10_000)).toBe(true);
    expect(w.events("channel")[0]!.channel).toBe(channel);

    w.net.act(() => w.peer.send(relayed, utf8.encode("hello client")));
    expect(w.net.runUntil(() => w.events("data").length > 0, 1000)).toBe(true);
    const [data] = w.events("data");
    expect([text(data!.data), formatAddr(data!.peer)]).toEqual(["hello client", formatAddr(PEER)]);
    expect(w.relay.forwarded.toClient).toBe(1);

    w.net.act((now) => w.allocation.send(now, PEER, utf8.encode("hello peer")));
    expect(w.net.runUntil(() => w.peer.received.length > 0, 1000)).toBe(true);
    expect([text(w.peer.received[0]!.bytes), formatAddr(w.peer.received[0]!.from)]).toEqual(["hello peer", formatAddr(relayed)]);
    expect(w.relay.forwarded.toPeer).toBe(1);
  });

  it("a peer with a permission alone reaches the client by Data indication; one without none", () => {
    const w = world(rng("permission").u32());
    const relayed = allocate(w);
    w.net.act((now) => w.allocation.createPermission(now, PEER2));
    expect(w.net.runUntil(() => w.events("permission").length > 0, 10_000)).toBe(true);
    w.net.act(() => {
      w.peer2.send(relayed, utf8.encode("via indication"));
      w.peer.send(relayed, utf8.encode("no permission"));
    });
    w.net.runFor(1000);
    expect(w.events("data").map((d) => [text(d.data), formatAddr(d.peer)])).toEqual([["via indication", formatAddr(PEER2)]]);
    expect(w.relay.server.stats.dropped["peer-no-permission"]).toBe(1);
    expect(w.relay.forwarded).toEqual({ toPeer: 0, toClient: 0 });

    w.net.act((now) => w.allocation.send(now, PEER2, utf8.encode("via send")));
    w.net.runFor(1000);
    expect(w.peer2.received.map((d) => [text(d.bytes), formatAddr(d.from)])).toEqual([["via send", formatAddr(relayed)]]);
  });

  it("an idle NAT mapping expires and the relay's datagrams are dropped at the NAT", () => {
    const w = world(rng("idle").u32());
    const relayed = allocate(w);
    w.net.act((now) => w.allocation.bindChannel(now, PEER));
    w.net.runUntil(() => w.events("channel").length > 0, 10_000);
    w.net.runFor(31_000); // past the 30 s mapping timeout; the client's first refresh is minutes away
    w.net.act(() => w.peer.send(relayed, utf8.encode("lost")));
    w.net.runFor(1000);
    expect(w.events("data")).toEqual([]);
    expect(w.relay.forwarded.toClient).toBe(1);
    expect(w.net.stats.dropped["nat-no-mapping"]).toBe(1);
  });

  it("over an hour of virtual time: refreshes keep the allocation behind a port-preserving NAT, a symmetric one loses it", () => {
    const r = rng("an hour");
    // Port-restricted with port preservation: each refresh after an idle mapping expired gets the
    // same external port again, so the relay sees the same 5-tuple.
    const kept = world(r.u32(), {}, portRestricted);
    allocate(kept);
    kept.net.act((now) => kept.allocation.bindChannel(now, PEER));
    kept.net.runFor(3_600_000);
    expect(kept.allocation.allocated, kept.net.where()).toBe(true);
    expect(kept.events("failed")).toEqual([]);
    expect(kept.nat.box.stats.expired, kept.net.where()).toBeGreaterThan(5);
    expect(kept.relay.server.stats.allocations).toBe(1);

    // Symmetric: the first renewal after the mapping expired leaves from a new random port, and the
    // relay answers 437 (Allocation Mismatch) to a 5-tuple without an allocation.
    const lost = world(r.u32());
    allocate(lost);
    lost.net.act((now) => lost.allocation.bindChannel(now, PEER));
    lost.net.runFor(3_600_000);
    expect(lost.allocation.allocated).toBe(false);
    expect(lost.events("failed").map((f) => f.code), lost.net.where()).toContain(ERROR_ALLOCATION_MISMATCH);
  });

  it("over lossy, jittery, reordering links, on many seeds, retransmissions get it through", async () => {
    let runs = 0;
    await runSeeds("turn over a bad internet", (seed) => {
      runs++;
      const w = world(seed, { delay: 30, jitter: 40, loss: 0.15, reorder: 0.1, duplicate: 0.05 });
      const relayed = allocate(w);
      w.net.act((now) => w.allocation.bindChannel(now, PEER));
      expect(w.net.runUntil(() => w.events("channel").length > 0, 60_000), w.net.where("channel")).toBe(true);
      // The peer repeats itself until the client hears it, as an application would.
      for (let i = 0; i < 50; i++) w.net.at(w.net.now + i * 200, () => w.peer.send(relayed, utf8.encode(`ping ${i}`)));
      expect(w.net.runUntil(() => w.events("data").length > 0, 20_000), w.net.where("data")).toBe(true);
      expect(text(w.events("data")[0]!.data)).toMatch(/^ping \d+$/);
    }, { count: 12 });
    expect(runs).toBe(12);
  });
});
