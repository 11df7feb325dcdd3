// TunnelNode in the simulated network (test/sim), without the client and gateway state machines:
// two nodes on public addresses and one TURN relay. A direct path, packets both ways, packets held
// until the path exists; a path change (the direct path cut, ICE falls back to the relay) that
// keeps the WireGuard sessions; disconnect; a side that connected afresh while the other kept its
// stale session (a handshake at once, not after 15 s); and datagrams of every kind of garbage, which
// never throw.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { Network, type Attachment } from "../../../test/sim/network.js";
import { portRestricted } from "../../../test/sim/nat.js";
import type { Addr, SimEndpoint, SimTransmit } from "../../../test/sim/node.js";
import { runSeeds } from "../../../test/sim/scenario.js";
import { SIM_EPOCH_UNIX, TurnRelayNode } from "../../../test/sim/turn.js";
import { encodeChannelData } from "../stun/channel-data.js";
import { mintCredentials } from "../stun/credentials.js";
import { REKEY_TIMEOUT } from "../wireguard/constants.js";
import { RELAY_RETRY_INTERVAL } from "./constants.js";
import { TunnelNode, type TunnelEvent } from "./node.js";

beforeEach(reportSeedOnFailure);

const PORT = 51820;
const SECRET = "relay-secret";
const RELAY = { family: 4 as const, address: "192.0.2.10", port: 3478 };
/** A relay that comes later (relays_presence), when a world asks for it. */
const RELAY_2 = { family: 4 as const, address: "192.0.2.11", port: 3478 };

/** A TunnelNode as a SimEndpoint. */
class NodeEndpoint implements SimEndpoint<TunnelEvent> {
  /** Set when its process dies: it takes in nothing and sends nothing from then on. */
  dead = false;
  constructor(readonly node: TunnelNode) {}
  handleDatagram(now: number, local: Addr, from: Addr, bytes: Uint8Array): void {
    if (!this.dead) this.node.handleDatagram(now, local.port, from, bytes);
  }
  handleTimeout(now: number): void {
    if (!this.dead) this.node.handleTimeout(now);
  }
  pollTransmit(): SimTransmit | undefined {
    if (this.dead) return undefined;
    const t = this.node.pollTransmit();
    return t && { from: { family: t.to.family, address: "0.0.0.0", port: t.fromPort }, to: t.to, bytes: t.bytes };
  }
  pollTimeout(): number | undefined {
    return this.dead ? undefined : this.node.pollTimeout();
  }
  pollEvent(): TunnelEvent | undefined {
    return this.dead ? undefined : this.node.pollEvent();
  }
}

/** A minimal IPv4 packet whose payload is text (the tunnel does not look inside but for the length). */
function packet(text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p.set(body, 20);
  return p;
}
const textOf = (p: Uint8Array) => new TextDecoder().decode(p.subarray(20));

function world(seed: number, { secondRelay = false, natted = false } = {}) {
  const net = new Network({ seed, label: "tunnel node", internet: { jitter: 3 } });
  const relayNode = new TurnRelayNode(net, net.addHost("relay", RELAY.address), { realm: "wardline", secrets: [SECRET] });
  if (secondRelay) new TurnRelayNode(net, net.addHost("relay-2", RELAY_2.address), { realm: "wardline", secrets: [SECRET] });
  const sides = [
    { name: "client", address: "203.0.113.1", role: "client" as const },
    { name: "gateway", address: "203.0.113.2", role: "gateway" as const },
  ];
  const ice = [{ username: "clnt", password: "client-password-0123456789" }, { username: "gwgw", password: "gateway-password-012345678" }];
  const keys = sides.map((side) => net.randomBytes(`${side.name}-key`)(32));
  const nodes = sides.map((side, i) => new TunnelNode({ role: side.role, privateKey: keys[i]!, port: PORT, random: net.randomBytes(side.name), wallClockAtZeroNanos: BigInt(SIM_EPOCH_UNIX) * 1_000_000_000n }));
  // Behind port-restricted cone NATs (nftables masquerade with conntrack filtering does the same), when asked.
  const realms = natted ? sides.map((side, i) => net.addNat(`${side.name}-nat`, `198.51.100.${i + 1}`, portRestricted).inside) : [undefined, undefined];
  const attachments: Attachment<TunnelEvent>[] = sides.map((side, i) => net.addHost(side.name, natted ? `192.168.${i + 1}.10` : side.address, realms[i] ?? net.internet).bind(new NodeEndpoint(nodes[i]!), PORT));
  attachments.forEach((attachment, i) => {
    // Trickle straight to the other node (the portal's job in the scenarios).
    attachment.onEvent = (now, event) => {
      if (event.type === "candidate") nodes[1 - i]!.addRemoteCandidate(now, sides[i]!.name, event.candidate);
      if (event.type === "candidate_invalidated") nodes[1 - i]!.removeRemoteCandidate(now, sides[i]!.name, event.candidate);
    };
  });
  net.act((now) => {
    sides.forEach((side, i) => {
      nodes[i]!.setLocalAddresses(now, [attachments[i]!.host.address]);
      nodes[i]!.init(now, [{ id: "relay", server: RELAY, ...mintCredentials(SECRET, side.name, SIM_EPOCH_UNIX + 86_400) }]);
    });
  });
  net.runFor(1_000);
  const connectSide = (now: number, i: number) =>
    nodes[i]!.connect(now, sides[1 - i]!.name, { publicKey: nodes[1 - i]!.publicKey, presharedKey: new Uint8Array(32).fill(7), localIce: ice[i]!, remoteIce: ice[1 - i]! });
  const connect = () =>
    net.act((now) => {
      connectSide(now, 0);
      connectSide(now, 1);
    });
  const received = (i: number) => attachments[i]!.events.filter((e) => e.event.type === "packet").map((e) => textOf((e.event as Extract<TunnelEvent, { type: "packet" }>).packet));
  /** Connects both sides and gets a first packet, "one", across. */
  const establish = () => {
    connect();
    net.act((now) => nodes[0]!.send(now, "gateway", packet("one")));
    expect(net.runUntil(() => received(1).includes("one"), 10_000), net.where()).toBe(true);
  };
  const events = (i: number, type: TunnelEvent["type"]) => attachments[i]!.events.filter((e) => e.event.type === type);
  const relay = (id: string, server: typeof RELAY, i: number) => ({ id, server, ...mintCredentials(SECRET, sides[i]!.name, SIM_EPOCH_UNIX + 86_400) });
  return { net, relayNode, keys, nodes, attachments, connect, connectSide, establish, received, events, relay };
}

describe("TunnelNode", () => {
  it("holds packets until there is a path and a session, then delivers them both ways over a direct path", async () => {
    await runSeeds("tunnel node direct", (seed) => {
      const w = world(seed);
      w.connect();
      w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("early")));
      expect(w.net.runUntil(() => w.received(1).includes("early"), 10_000), w.net.where()).toBe(true);
      expect(w.nodes[0]!.selectedPair("gateway")?.relayed).toBe(false);
      w.net.act((now) => w.nodes[1]!.send(now, "client", packet("back")));
      expect(w.net.runUntil(() => w.received(0).includes("back"), 1_000), w.net.where()).toBe(true);
      const connected = w.attachments[0]!.events.find((e) => e.event.type === "connected")!.event;
      expect(connected).toEqual({ type: "connected", peerId: "gateway", relayed: false });
    }, { count: 4 });
  });

  it("falls back to the relay when the direct path breaks", async () => {
    await runSeeds("tunnel node path change", (seed) => {
      const w = world(seed);
      w.establish();
      w.net.runFor(2_000);
      w.net.cut("client", "gateway");
      let ok = false;
      for (let n = 0; n < 80 && !ok; n++) {
        w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet(`p${n}`)));
        w.net.runFor(500);
        ok = w.received(1).some((t) => t.startsWith("p")) && w.nodes[0]!.selectedPair("gateway")?.relayed === true;
      }
      expect(ok, w.net.where()).toBe(true);
      w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("relayed")));
      expect(w.net.runUntil(() => w.received(1).includes("relayed"), 1_000), w.net.where()).toBe(true);
      expect(w.nodes[0]!.stats.pathChanges).toBeGreaterThan(0);
      // The relay's permissions came before anything held for them overflowed or failed.
      for (const node of w.nodes) expect(node.relayDropped).toEqual({ noAllocation: 0, heldOverflow: 0, permissionFailed: 0 });
    }, { count: 4 });
  });

  it("moves from the relay to a direct path that appears, without a new handshake", async () => {
    await runSeeds("tunnel node path upgrade", (seed) => {
      const w = world(seed);
      const cut = w.net.cut("client", "gateway");
      w.establish();
      expect(w.nodes[0]!.selectedPair("gateway")?.relayed).toBe(true);
      const installed = w.nodes.map((n) => n.stats.sessionsInstalled);
      cut.heal();
      const sent: string[] = [];
      for (let n = 0; n < 60 && w.nodes[0]!.selectedPair("gateway")?.relayed !== false; n++) {
        sent.push(`p${n}`);
        w.net.act((now) => {
          w.nodes[0]!.send(now, "gateway", packet(sent.at(-1)!));
          w.nodes[1]!.send(now, "client", packet(sent.at(-1)!));
        });
        w.net.runFor(500);
      }
      expect(w.nodes[0]!.selectedPair("gateway")?.relayed, w.net.where()).toBe(false);
      w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("direct")));
      expect(w.net.runUntil(() => w.received(1).includes("direct"), 1_000), w.net.where()).toBe(true);
      // Every packet made it across the switch, and WireGuard never noticed it.
      expect(sent.filter((t) => !w.received(1).includes(t)), w.net.where()).toEqual([]);
      expect(w.nodes.map((node) => node.stats.sessionsInstalled)).toEqual(installed);
    }, { count: 4 });
  });

  it("relays_presence: a relay that went away takes its candidates and paths along; one that came is allocated on and used", async () => {
    await runSeeds("tunnel node relays presence", (seed) => {
      const w = world(seed, { secondRelay: true });
      w.net.cut("client", "gateway");
      w.establish();
      expect(w.nodes[0]!.selectedPair("gateway")?.relayed).toBe(true);
      const installed = w.nodes.map((n) => n.stats.sessionsInstalled);
      w.net.partition(["relay"]);
      w.net.act((now) => w.nodes.forEach((node, i) => node.updateRelays(now, [w.relay("relay-2", RELAY_2, i)], ["relay"])));
      // The old relay's candidates are withdrawn at once, on both sides.
      for (const i of [0, 1]) {
        const invalidated = w.events(i, "candidate_invalidated").map((e) => (e.event as Extract<TunnelEvent, { type: "candidate_invalidated" }>).candidate);
        expect(invalidated.some((c) => c.includes(` ${RELAY.address} `)), w.net.where()).toBe(true);
      }
      const viaNewRelay = () => {
        const pair = w.nodes[0]!.selectedPair("gateway");
        return pair !== undefined && [pair.local.address, pair.remote.address, pair.local.relatedAddress].some((a) => a === RELAY_2.address);
      };
      let ok = false;
      for (let n = 0; n < 40 && !ok; n++) {
        w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet(`p${n}`)));
        w.net.runFor(500);
        ok = w.received(1).includes(`p${n}`) && viaNewRelay();
      }
      expect(ok, w.net.where()).toBe(true);
      // Only the path changed: WireGuard kept its sessions.
      expect(w.nodes.map((n) => n.stats.sessionsInstalled)).toEqual(installed);
    }, { count: 4 });
  });

  it("disconnect forgets the peer: its packets no longer open", () => {
    const w = world(rng("disconnect").u32());
    w.establish();
    w.net.act((now) => w.nodes[1]!.disconnect(now, "client"));
    expect(w.nodes[1]!.peerIds).toEqual([]);
    w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("two")));
    w.net.runFor(1_000);
    expect(w.received(1)).not.toContain("two");
    expect(w.nodes[1]!.sessions.dropped["unknown-receiver"]).toBeGreaterThan(0);
  });

  it("a side that connected afresh with the same keys answers the other's stale session with a handshake at once", async () => {
    await runSeeds("tunnel node stale session", (seed) => {
      const w = world(seed);
      w.establish();
      const sessionEvents = w.events(0, "session").length;
      expect(sessionEvents).toBeGreaterThan(0);
      // The gateway drops its side and takes the client back with the same keys and ICE
      // credentials; the client keeps its connection, its ICE agent and its (now stale) session.
      w.net.act((now) => {
        w.nodes[1]!.disconnect(now, "client");
        w.connectSide(now, 1);
      });
      const start = w.net.now;
      const sent: string[] = [];
      for (let n = 0; n < 40 && !sent.some((t) => w.received(1).includes(t)); n++) {
        sent.push(`again ${n}`);
        w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet(sent.at(-1)!)));
        w.net.runFor(250);
      }
      // The client's own timers would start a handshake only after 15 s without an answer
      // (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT); the gateway starts one on the first stale packet
      // that arrives over a path its ICE agent validated (checks run every few seconds).
      expect(sent.some((t) => w.received(1).includes(t)), w.net.where()).toBe(true);
      expect(w.net.now - start).toBeLessThan(10_000);
      expect(w.nodes[1]!.sessions.dropped["unknown-receiver"]).toBeGreaterThan(0);
      // The client hears of the new session: what it told the gateway in-band is worth saying again.
      expect(w.events(0, "session").length).toBeGreaterThan(sessionEvents);
    }, { count: 4 });
  });

  it("a client process that restarts (same key and ICE credentials, another port) is reached again within a handshake retry", async () => {
    await runSeeds("tunnel node restarted peer", (seed) => {
      const w = world(seed, { natted: true });
      w.establish();
      // The client dies: its socket closes. A new process comes up with the same key on another
      // port and connects with the same credentials (they derive from the keys); the gateway keeps
      // its connection, and hears the new candidates through the portal.
      const clientHost = w.attachments[0]!.host;
      (w.attachments[0]!.endpoint as NodeEndpoint).dead = true;
      clientHost.unbind(PORT);
      const fresh = new TunnelNode({ role: "client", privateKey: w.keys[0]!, port: PORT + 1, random: w.net.randomBytes("client-2"), wallClockAtZeroNanos: BigInt(SIM_EPOCH_UNIX) * 1_000_000_000n });
      const attachment = clientHost.bind(new NodeEndpoint(fresh), PORT + 1);
      attachment.onEvent = (now, event) => {
        if (event.type === "candidate") w.nodes[1]!.addRemoteCandidate(now, "client", event.candidate);
      };
      w.net.act((now) => {
        fresh.setLocalAddresses(now, [clientHost.address]);
        fresh.init(now, [{ id: "relay", server: RELAY, ...mintCredentials(SECRET, "client", SIM_EPOCH_UNIX + 86_400) }]);
      });
      w.net.runFor(500);
      const start = w.net.now;
      // The gateway's candidates now go to the new process; the portal's create_authorization makes
      // the gateway announce them again (GatewayDevice), which is what reannounceCandidates does here.
      w.attachments[1]!.onEvent = (now, event) => {
        if (event.type === "candidate") fresh.addRemoteCandidate(now, "gateway", event.candidate);
      };
      w.net.act((now) => {
        fresh.connect(now, "gateway", { publicKey: w.nodes[1]!.publicKey, presharedKey: new Uint8Array(32).fill(7), localIce: { username: "clnt", password: "client-password-0123456789" }, remoteIce: { username: "gwgw", password: "gateway-password-012345678" } });
        fresh.send(now, "gateway", packet("after restart"));
        w.nodes[1]!.reannounceCandidates("client");
      });
      expect(w.net.runUntil(() => w.received(1).includes("after restart"), 20_000), w.net.where()).toBe(true);
      const took = w.net.now - start;
      w.net.act((now) => w.nodes[1]!.send(now, "client", packet("answer")));
      expect(w.net.runUntil(() => attachment.events.some((e) => e.event.type === "packet"), 5_000), w.net.where()).toBe(true);
      // Its first initiation is answered over the gateway's selected pair, still the old port's,
      // until the new process's nomination moves it; its retry after REKEY_TIMEOUT gets through.
      // Without the gateway announcing its candidates again, this took 20 s (ICE failing first).
      expect(took, "from the restarted client's connect to its first packet through").toBeLessThan(REKEY_TIMEOUT + 3_000);
    }, { count: 4 });
  });

  it("init again (the portal reconnected) or relays_presence keeps the allocation on a relay still listed, with its candidates; init keeps a working one it does not list, until relays_presence says it went", async () => {
    await runSeeds("tunnel node re-init", (seed) => {
      const w = world(seed, { natted: true });
      w.establish();
      const types = (): string[] => w.nodes[1]!.agentOf("client")!.announcedCandidates().map((c) => c.type).sort();
      expect(types()).toEqual(["host", "relay", "srflx"]);
      expect(w.relayNode.server.stats.allocations).toBe(2);
      // Fresh credentials for the same relay, as every init carries.
      w.net.act((now) => w.nodes[1]!.init(now, [{ id: "relay", server: RELAY, ...mintCredentials(SECRET, "gateway", SIM_EPOCH_UNIX + 90_000) }]));
      w.net.runFor(3_000);
      expect(types()).toEqual(["host", "relay", "srflx"]);
      expect(w.relayNode.server.stats.allocations).toBe(2);
      w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("still")));
      expect(w.net.runUntil(() => w.received(1).includes("still"), 2_000), w.net.where()).toBe(true);
      // relays_presence naming it again (with fresh credentials, as every message carries) keeps it too.
      w.net.act((now) => w.nodes[1]!.updateRelays(now, [{ id: "relay", server: RELAY, ...mintCredentials(SECRET, "gateway", SIM_EPOCH_UNIX + 95_000) }], []));
      w.net.runFor(3_000);
      expect(types()).toEqual(["host", "relay", "srflx"]);
      expect(w.relayNode.server.stats.allocations).toBe(2);
      // No relay listed: a restarted portal the relay has not joined again yet. Nothing is withdrawn
      // (the client's direct path ends on the gateway's server-reflexive candidate), nothing given back.
      const path = w.nodes[0]!.selectedPair("gateway");
      const counts = () => [w.events(1, "candidate_invalidated").length, w.events(0, "disconnected").length, w.events(0, "connected").length];
      const before = counts();
      w.net.act((now) => w.nodes[1]!.init(now, []));
      w.net.runFor(3_000);
      expect(types()).toEqual(["host", "relay", "srflx"]);
      expect(w.relayNode.server.stats.allocations).toBe(2);
      expect(counts(), "invalidated, disconnected, connected").toEqual(before);
      expect(w.nodes[0]!.selectedPair("gateway"), w.net.where()).toEqual(path);
      w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("after re-init")));
      expect(w.net.runUntil(() => w.received(1).includes("after re-init"), 2_000), w.net.where()).toBe(true);
      // relays_presence saying it left: now its candidates go.
      w.net.act((now) => w.nodes[1]!.updateRelays(now, [], ["relay"]));
      w.net.runFor(1_000);
      expect(types()).toEqual(["host"]);
    }, { count: 4 });
  });

  it("an allocation on a relay the last init did not list is not made again once it ends", () => {
    const w = world(rng("unlisted relay ends").u32(), { natted: true });
    w.establish();
    const types = (): string[] => w.nodes[1]!.agentOf("client")!.announcedCandidates().map((c) => c.type).sort();
    w.net.act((now) => w.nodes[1]!.init(now, []));
    w.net.runFor(1_000);
    expect(types()).toEqual(["host", "relay", "srflx"]);
    // The relay is gone for good: the allocation lapses without a Refresh, and its candidates go.
    const cut = w.net.partition(["relay"]);
    expect(w.net.runUntil(() => types().length === 1, 900_000), w.net.where()).toBe(true);
    expect(types()).toEqual(["host"]);
    // Back, it is not asked again (a listed relay would be, after RELAY_RETRY_INTERVAL): only relays_presence brings it back.
    cut.heal();
    w.net.runFor(4 * RELAY_RETRY_INTERVAL);
    expect(types()).toEqual(["host"]);
    w.net.act((now) => w.nodes[1]!.updateRelays(now, [{ id: "relay", server: RELAY, ...mintCredentials(SECRET, "gateway", SIM_EPOCH_UNIX + 95_000) }], []));
    expect(w.net.runUntil(() => types().length === 3, 20_000), w.net.where()).toBe(true);
  });

  it("a restart keeps the candidates the peer trickled: the new agent checks them at once", () => {
    const w = world(rng("restart candidates").u32());
    w.establish();
    const remotes = (i: number) => new Set(w.nodes[i]!.agentOf(i === 0 ? "gateway" : "client")!.pairStatus().map((p) => `${p.remote.address}:${p.remote.port}`));
    const before = remotes(0);
    expect(before.size).toBeGreaterThan(0);
    // Nothing is trickled again: the client's agent alone has what the gateway sent the first time.
    w.attachments[1]!.onEvent = undefined;
    w.net.act((now) => w.connectSide(now, 0));
    expect(remotes(0)).toEqual(before);
  });

  it("an ICE restart (connect again with the same keys after ICE failed) finds a path afresh and keeps the WireGuard sessions", async () => {
    await runSeeds("tunnel node ice restart", (seed) => {
      const w = world(seed);
      w.establish();
      const installed = w.nodes.map((n) => n.stats.sessionsInstalled);
      const agents = [w.nodes[0]!.agentOf("gateway"), w.nodes[1]!.agentOf("client")];
      // Every path dies, long enough for both agents to give up.
      const cuts = [w.net.cut("client", "gateway"), w.net.partition(["relay"])];
      const failed = (i: number) => w.events(i, "disconnected").some((e) => (e.event as Extract<TunnelEvent, { type: "disconnected" }>).reason === "ice-failed");
      expect(w.net.runUntil(() => failed(0) && failed(1), 120_000), w.net.where()).toBe(true);
      for (const cut of cuts) cut.heal();
      // What the state machines do on ice-failed while they still want the peer: connect again, as it was.
      w.net.act((now) => {
        w.connectSide(now, 0);
        w.connectSide(now, 1);
      });
      expect(w.nodes.map((n) => n.stats.iceRestarts)).toEqual([1, 1]);
      expect([w.nodes[0]!.agentOf("gateway"), w.nodes[1]!.agentOf("client")].every((agent, i) => agent !== agents[i])).toBe(true);
      w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("two")));
      expect(w.net.runUntil(() => w.received(1).includes("two"), 10_000), w.net.where()).toBe(true);
      w.net.act((now) => w.nodes[1]!.send(now, "client", packet("back")));
      expect(w.net.runUntil(() => w.received(0).includes("back"), 2_000), w.net.where()).toBe(true);
      expect(w.nodes.map((n) => n.stats.sessionsInstalled)).toEqual(installed);
    }, { count: 4 });
  });

  it("starts no handshake for data it cannot open from a path ICE has not validated", () => {
    const w = world(rng("stale from elsewhere").u32());
    w.establish();
    w.net.act((now) => {
      w.nodes[1]!.disconnect(now, "client");
      w.connectSide(now, 1);
    });
    w.net.runFor(8_000);
    const installed = w.nodes.map((n) => n.stats.sessionsInstalled);
    // Transport data for no session of ours, from an address that is no validated path of any peer.
    const forged = new Uint8Array(48);
    forged[0] = 4;
    const elsewhere = { family: 4 as const, address: "203.0.113.99", port: PORT };
    w.net.act((now) => {
      for (let i = 0; i < 10; i++) w.nodes[1]!.handleDatagram(now, PORT, elsewhere, forged);
    });
    w.net.runFor(2_000);
    expect(w.nodes[1]!.sessions.dropped["unknown-receiver"]).toBe(10);
    expect(w.nodes.map((n) => n.stats.sessionsInstalled)).toEqual(installed);
  });

  it("never throws on garbage, from peers or from the relay's address", () => {
    const r = rng("node fuzz");
    const w = world(r.u32());
    w.connect();
    w.net.act((now) => w.nodes[0]!.send(now, "gateway", packet("x")));
    w.net.runUntil(() => w.received(1).includes("x"), 10_000);
    const node = w.nodes[1]!;
    const peer = { family: 4 as const, address: "203.0.113.1", port: PORT };
    for (let i = 0; i < 3000; i++) {
      const kind = r.int(0, 4);
      let bytes = r.bytes(r.int(0, 200));
      if (kind === 1 && bytes.length >= 20) bytes.set([0, 1, 0, bytes.length - 20, 0x21, 0x12, 0xa4, 0x42]); // STUN-looking
      if (kind === 2 && bytes.length >= 4) bytes.set([r.int(1, 4), 0, 0, 0]); // WireGuard-looking
      if (kind === 3) bytes = encodeChannelData(0x4000 + r.int(0, 3), bytes); // ChannelData
      const from = kind >= 3 ? RELAY : peer;
      expect(() => {
        node.handleDatagram(w.net.now, PORT, from, bytes);
        while (node.pollTransmit() !== undefined || node.pollEvent() !== undefined);
      }).not.toThrow();
    }
  });
});
