// The ICE agent in virtual time: two agents (a client, controlling, and a gateway, controlled)
// wired by a tiny in-test network that delivers every transmit to the other agent after a delay or
// drops it: "direct" datagrams go host to host, "relayed" ones leave from or arrive at a TURN
// relayed address. Candidates trickle between them as SDP text, as through the portal.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import type { TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import { METHOD_BINDING } from "../stun/constants.js";
import { shortTermKey } from "../stun/integrity.js";
import { decodeStun } from "../stun/message.js";
import { IceAgent, type IceAgentEvent, type IceCredentials, type IceRole, type IceSocket, type IceTransmit } from "./agent.js";
import { candidatePriority, formatCandidate, pairPriority, parseCandidate } from "./candidate.js";
import { CHECK_RTO, CONSENT_INTERVAL, TA } from "./constants.js";

beforeEach(reportSeedOnFailure);

type Name = "A" | "B";
const other = (name: Name): Name => (name === "A" ? "B" : "A");

const HOST: Record<Name, { address: string; port: number }> = { A: { address: "10.0.0.1", port: 1000 }, B: { address: "192.0.2.2", port: 2000 } };
const RELAY: Record<Name, { address: string; port: number }> = { A: { address: "198.51.100.1", port: 40000 }, B: { address: "198.51.100.1", port: 40001 } };
const CREDENTIALS: Record<Name, IceCredentials> = {
  A: { username: "clientufrag", password: "client-password-0123456789" },
  B: { username: "gatewayufrag", password: "gateway-password-0123456789" },
};

const v4 = (a: { address: string; port: number }): TransportAddress => ({ family: 4, address: a.address, port: a.port });
const same = (a: { address: string; port: number }, b: { address: string; port: number }): boolean => a.address === b.address && a.port === b.port;

interface InFlight {
  at: number;
  to: Name;
  local: IceSocket;
  from: TransportAddress;
  bytes: Uint8Array;
}

interface NetOptions {
  label: string;
  roles?: Record<Name, IceRole>;
  /** Overrides what an agent believes the other's credentials are. */
  remoteCredentials?: Partial<Record<Name, IceCredentials>>;
  relays?: boolean;
  /** How long candidates take through the portal to reach each agent; 0 unless told. */
  signalDelay?: Partial<Record<Name, number>>;
  /** B sits behind a NAT: direct datagrams reach it only from addresses it has sent to. */
  natB?: boolean;
}

/** Two agents and the wire between them. */
class Net {
  now = 0;
  direct = true;
  relay = true;
  delay = 20;
  /** Probability that a datagram is lost. */
  loss = 0;
  readonly agents: Record<Name, IceAgent>;
  readonly events: Record<Name, { at: number; event: IceAgentEvent }[]> = { A: [], B: [] };
  readonly sent: { at: number; by: Name; transmit: IceTransmit }[] = [];
  readonly refused: Record<Name, number> = { A: 0, B: 0 };
  private queue: InFlight[] = [];
  private signals: { at: number; apply: () => void }[] = [];
  private readonly natBindings = new Set<string>();
  private readonly wire: ReturnType<typeof rng>;

  constructor(private readonly options: NetOptions) {
    const r = rng(options.label);
    this.wire = rng(`${options.label}/wire`);
    const roles = options.roles ?? { A: "controlling", B: "controlled" };
    const make = (name: Name): IceAgent =>
      new IceAgent({
        role: roles[name],
        local: CREDENTIALS[name],
        remote: options.remoteCredentials?.[name] ?? CREDENTIALS[other(name)],
        random: (n) => r.bytes(n),
      });
    this.agents = { A: make("A"), B: make("B") };
    for (const name of ["A", "B"] as const) {
      this.agents[name].addLocalCandidate(0, { type: "host", ...HOST[name] });
      if (options.relays !== false) this.agents[name].addLocalCandidate(0, { type: "relay", ...RELAY[name], server: "198.51.100.1", related: HOST[name] });
    }
  }

  /** Drains both agents: datagrams onto the wire, candidates trickled as text, other events recorded. */
  private drain(): void {
    for (const name of ["A", "B"] as const) {
      const agent = this.agents[name];
      for (let t = agent.pollTransmit(); t !== undefined; t = agent.pollTransmit()) this.route(name, t);
      for (let e = agent.pollEvent(); e !== undefined; e = agent.pollEvent()) {
        this.events[name].push({ at: this.now, event: e });
        const peer = this.agents[other(name)];
        const at = this.now + (this.options.signalDelay?.[other(name)] ?? 0);
        if (e.type === "local_candidate") {
          const parsed = parseCandidate(formatCandidate(e.candidate));
          if (!parsed.ok) throw new Error(`our own candidate did not parse: ${parsed.reason}`);
          this.signals.push({ at, apply: () => peer.addRemoteCandidate(this.now, parsed.candidate) });
        } else if (e.type === "local_candidate_invalidated") {
          const gone = e.candidate;
          this.signals.push({ at, apply: () => peer.removeRemoteCandidate(this.now, gone) });
        }
      }
    }
  }

  private route(by: Name, transmit: IceTransmit): void {
    this.sent.push({ at: this.now, by, transmit });
    const to = other(by);
    const from = transmit.source.type === "host"
      ? { address: transmit.source.address, port: transmit.source.port }
      : { address: transmit.source.relayAddress, port: transmit.source.relayPort };
    let local: IceSocket;
    if (same(transmit.to, HOST[to])) local = { type: "host", ...HOST[to] };
    else if (same(transmit.to, RELAY[to])) local = { type: "relay", relayAddress: RELAY[to].address, relayPort: RELAY[to].port };
    else return; // nobody there
    const relayed = transmit.source.type === "relay" || local.type === "relay";
    if (relayed ? !this.relay : !this.direct) return;
    if (this.loss > 0 && this.wire.bool(this.loss)) return;
    if (this.options.natB === true && !relayed) {
      if (by === "B") this.natBindings.add(`${transmit.to.address} ${transmit.to.port}`);
      else if (!this.natBindings.has(`${from.address} ${from.port}`)) return;
    }
    this.queue.push({ at: this.now + (relayed ? 2 * this.delay : this.delay), to, local, from: v4(from), bytes: transmit.bytes });
  }

  /** Runs virtual time up to `until`; every agent timer, delivery and signal on the way. */
  run(until: number, everyStep?: (now: number) => void): void {
    for (let guard = 0; ; guard++) {
      if (guard > 1_000_000) throw new Error(`no progress at ${this.now}`);
      this.drain();
      const signalled = this.signals.filter((x) => x.at <= this.now);
      if (signalled.length > 0) {
        this.signals = this.signals.filter((x) => x.at > this.now);
        for (const x of signalled) x.apply();
        continue;
      }
      let next = Infinity;
      for (const x of this.signals) next = Math.min(next, x.at);
      for (const d of this.queue) next = Math.min(next, d.at);
      for (const name of ["A", "B"] as const) next = Math.min(next, this.agents[name].pollTimeout() ?? Infinity);
      if (next > until) {
        this.now = until;
        return;
      }
      this.now = Math.max(this.now, next);
      everyStep?.(this.now);
      const due = this.queue.filter((d) => d.at <= this.now).sort((a, b) => a.at - b.at);
      this.queue = this.queue.filter((d) => d.at > this.now);
      for (const d of due) {
        if (!this.agents[d.to].handleInput(this.now, { local: d.local, from: d.from }, d.bytes)) this.refused[d.to]++;
      }
      for (const name of ["A", "B"] as const) {
        const t = this.agents[name].pollTimeout();
        if (t !== undefined && t <= this.now) this.agents[name].handleTimeout(this.now);
      }
    }
  }

  eventsOf(name: Name, type: IceAgentEvent["type"], since = 0): { at: number; event: IceAgentEvent }[] {
    return this.events[name].filter((e) => e.event.type === type && e.at >= since);
  }

  /** The selected pair of an agent in words: "direct" or "relayed", undefined if none. */
  path(name: Name): "direct" | "relayed" | undefined {
    const pair = this.agents[name].selectedPair();
    return pair === undefined ? undefined : pair.relayed ? "relayed" : "direct";
  }

  /** Requests sent by an agent in [from, to). */
  requests(by: Name, from: number, to: number): number {
    return this.sent.filter((s) => s.by === by && s.at >= from && s.at < to && decodeStun(s.transmit.bytes).ok && (decodeStun(s.transmit.bytes) as { ok: true; message: { class: string } }).message.class === "request").length;
  }

  /** Success responses sent by an agent. */
  successes(by: Name): number {
    return this.sent.filter((s) => {
      const d = decodeStun(s.transmit.bytes);
      return s.by === by && d.ok && d.message.class === "success";
    }).length;
  }
}

/** The two agents agree on the path: each one's selected pair is the other's, mirrored. */
function expectAgreement(net: Net): void {
  const a = net.agents.A.selectedPair();
  const b = net.agents.B.selectedPair();
  expect(a).toBeDefined();
  expect(b).toBeDefined();
  expect(same(a!.to, b!.source.type === "host" ? b!.source : { address: b!.source.relayAddress, port: b!.source.relayPort })).toBe(true);
  expect(same(b!.to, a!.source.type === "host" ? a!.source : { address: a!.source.relayAddress, port: a!.source.relayPort })).toBe(true);
}

describe("connectivity", () => {
  it("connects directly, with one selected and one connected event on each side", () => {
    const net = new Net({ label: "ice/direct" });
    net.run(5_000);
    for (const name of ["A", "B"] as const) {
      expect(net.path(name)).toBe("direct");
      expect(net.eventsOf(name, "connected")).toHaveLength(1);
      // Both work, and the direct path is chosen first rather than after a detour through the relay.
      expect(net.eventsOf(name, "selected")).toHaveLength(1);
      expect(net.eventsOf(name, "failed")).toHaveLength(0);
    }
    expect(net.eventsOf("A", "connected")[0]!.at).toBeLessThan(500);
    expectAgreement(net);
    const a = net.agents.A.selectedPair()!;
    expect(a.local.type).toBe("host");
    expect(a.remote).toMatchObject({ type: "host", ...HOST.B });
    expect(a.source).toEqual({ type: "host", ...HOST.A });
  });

  it("connects through the relay when the direct path is blocked", () => {
    const net = new Net({ label: "ice/relay-only" });
    net.direct = false;
    net.run(30_000);
    for (const name of ["A", "B"] as const) {
      expect(net.path(name)).toBe("relayed");
      expect(net.eventsOf(name, "connected")).toHaveLength(1);
      expect(net.eventsOf(name, "disconnected")).toHaveLength(0);
    }
    // Nothing better was waiting for a first check, so the relay did not wait for the direct checks to time out.
    expect(net.eventsOf("A", "connected")[0]!.at).toBeLessThan(2_000);
    expectAgreement(net);
    const status = net.agents.A.pairStatus();
    expect(status.find((p) => !p.relayed)!.state).toBe("failed");
  });

  it("says which paths are valid: those a check succeeded over, until their consent lapses", () => {
    const net = new Net({ label: "ice/valid path" });
    const hostA: IceSocket = { type: "host", ...HOST.A };
    expect(net.agents.A.isValidPath(hostA, v4(HOST.B))).toBe(false);
    net.run(5_000);
    expect(net.agents.A.isValidPath(hostA, v4(HOST.B))).toBe(true);
    expect(net.agents.B.isValidPath({ type: "host", ...HOST.B }, v4(HOST.A))).toBe(true);
    // Another socket, another address or port: not a path of this agent.
    expect(net.agents.A.isValidPath({ type: "host", address: HOST.A.address, port: HOST.A.port + 1 }, v4(HOST.B))).toBe(false);
    expect(net.agents.A.isValidPath(hostA, v4({ address: HOST.B.address, port: HOST.B.port + 1 }))).toBe(false);
    expect(net.agents.A.isValidPath(hostA, v4({ address: "not an address", port: 1 }))).toBe(false);
    net.direct = false;
    net.run(40_000);
    expect(net.agents.A.isValidPath(hostA, v4(HOST.B))).toBe(false);
  });

  it("falls back to the relay when the direct path dies, without a reset, and returns when it comes back", () => {
    const net = new Net({ label: "ice/fallback" });
    net.run(30_000);
    expect(net.path("A")).toBe("direct");
    net.direct = false;
    const died = net.now;
    net.run(died + 20_000);
    for (const name of ["A", "B"] as const) {
      expect(net.path(name), name).toBe("relayed");
      const switched = net.eventsOf(name, "selected", died);
      expect(switched.length, name).toBe(1);
      expect(switched[0]!.at - died, name).toBeLessThanOrEqual(20_000);
      // Nothing else happened: no disconnect, no failure, no second "connected".
      expect(net.events[name].filter((e) => e.at >= died).map((e) => e.event.type), name).toEqual(["selected"]);
    }
    expectAgreement(net);

    net.direct = true;
    const healed = net.now;
    net.run(healed + 30_000);
    for (const name of ["A", "B"] as const) {
      expect(net.path(name), name).toBe("direct");
      expect(net.events[name].filter((e) => e.at >= healed).map((e) => e.event.type), name).toEqual(["selected"]);
      expect(net.eventsOf(name, "selected", healed)[0]!.at - healed).toBeLessThanOrEqual(15_000);
    }
    expectAgreement(net);
  });

  it("answers a NAT-blocked first check with a triggered check rather than waiting for the retransmission", () => {
    // A checks B at once; B's NAT drops that until B, told of A's candidates 300 ms later, sends to A.
    const net = new Net({ label: "ice/nat-punch", signalDelay: { B: 300 }, natB: true });
    net.run(5_000);
    const selected = net.eventsOf("A", "selected");
    expect(selected).toHaveLength(1);
    expect(net.path("A")).toBe("direct");
    // Without the triggered check A would have waited for its retransmission at RTO (500 ms).
    expect(selected[0]!.at).toBeLessThan(CHECK_RTO);
    expect(selected[0]!.at).toBeGreaterThan(300);
    expect(net.path("B")).toBe("direct");
    expectAgreement(net);
  });

  it("moves to the relay at once when the peer invalidates the candidate in use", () => {
    const net = new Net({ label: "ice/invalidate" });
    net.run(10_000);
    expect(net.path("A")).toBe("direct");
    const at = net.now;
    net.agents.B.removeLocalCandidate(at, { type: "host", ...HOST.B });
    net.run(at + 1_000);
    expect(net.path("A")).toBe("relayed");
    expect(net.path("B")).toBe("relayed");
    expect(net.eventsOf("B", "local_candidate_invalidated")).toHaveLength(1);
    expect(net.eventsOf("A", "disconnected")).toHaveLength(0);
  });

  it("reports failure when nothing works, and recovers when a path appears", () => {
    const net = new Net({ label: "ice/nothing" });
    net.direct = false;
    net.relay = false;
    net.run(30_000);
    expect(net.eventsOf("A", "failed")).toHaveLength(1);
    expect(net.eventsOf("A", "connected")).toHaveLength(0);
    net.relay = true;
    net.run(60_000);
    expect(net.path("A")).toBe("relayed");
    expect(net.eventsOf("A", "connected")).toHaveLength(1);
  });
});

describe("soak", () => {
  it("survives loss and flapping paths, and settles on the direct path once the network is good", () => {
    const r = rng("ice/soak");
    for (let run = 0; run < 8; run++) {
      const net = new Net({ label: `ice/soak-${run}`, roles: r.bool(0.8) ? undefined : { A: "controlling", B: "controlling" } });
      net.loss = r.pick([0, 0.05, 0.2]);
      let t = 0;
      for (let step = 0; step < 12; step++) {
        net.direct = r.bool(0.6);
        net.relay = r.bool(0.8);
        t += r.int(500, 30_000);
        net.run(t);
        for (const name of ["A", "B"] as const) {
          // Whatever is selected was working when last checked.
          const pair = net.agents[name].selectedPair();
          if (pair !== undefined) {
            const status = net.agents[name].pairStatus().find((p) => same(p.to, pair.to) && JSON.stringify(p.source) === JSON.stringify(pair.source));
            expect(status?.state, r.where(`run ${run} step ${step} ${name}`)).toBe("succeeded");
          }
        }
      }
      net.loss = 0;
      net.direct = true;
      net.relay = true;
      net.run(t + 60_000);
      expect([net.path("A"), net.path("B")], r.where(`run ${run}`)).toEqual(["direct", "direct"]);
      expectAgreement(net);
      expect(new Set([net.agents.A.role, net.agents.B.role]).size).toBe(2);
    }
  });
});

describe("roles", () => {
  for (const role of ["controlling", "controlled"] as const) {
    it(`resolves a role conflict when both start ${role}`, () => {
      const net = new Net({ label: `ice/conflict-${role}`, roles: { A: role, B: role } });
      net.run(10_000);
      expect(new Set([net.agents.A.role, net.agents.B.role])).toEqual(new Set(["controlling", "controlled"]));
      for (const name of ["A", "B"] as const) {
        expect(net.path(name), name).toBe("direct");
        expect(net.eventsOf(name, "connected")).toHaveLength(1);
      }
      expectAgreement(net);
    });
  }

  it("answers 487 to a controlling peer with a smaller tie-breaker, and yields to a larger one", () => {
    // Tie-breaker bytes come first from random: all 0xff (the largest) for one agent, all 0 for the other.
    const make = (fill: number): IceAgent => {
      let first = true;
      return new IceAgent({
        role: "controlling", local: CREDENTIALS.B, remote: CREDENTIALS.A,
        random: (n) => {
          const out = new Uint8Array(n).fill(first ? fill : 7);
          first = false;
          return out;
        },
      });
    };
    const request = (tieBreaker: bigint): Uint8Array =>
      new StunBuilder(METHOD_BINDING, "request", new Uint8Array(12).fill(1))
        .addUsername(`${CREDENTIALS.B.username}:${CREDENTIALS.A.username}`)
        .addPriority(candidatePriority("prflx"))
        .addIceControlling(tieBreaker)
        .build({ integrity: shortTermKey(CREDENTIALS.B.password), fingerprint: true });
    const via = { local: { type: "host" as const, ...HOST.B }, from: v4(HOST.A) };

    const strong = make(0xff);
    strong.addLocalCandidate(0, { type: "host", ...HOST.B });
    expect(strong.handleInput(1, via, request(5n))).toBe(true);
    const answer = decodeStun(strong.pollTransmit()!.bytes);
    expect(answer.ok && answer.message.class).toBe("error");
    expect(answer.ok && answer.message.errorCode()?.code).toBe(487);
    expect(strong.role).toBe("controlling");

    const weak = make(0);
    weak.addLocalCandidate(0, { type: "host", ...HOST.B });
    expect(weak.handleInput(1, via, request(5n))).toBe(true);
    const yielded = decodeStun(weak.pollTransmit()!.bytes);
    expect(yielded.ok && yielded.message.class).toBe("success");
    expect(weak.role).toBe("controlled");
  });
});

describe("authentication and demultiplexing", () => {
  it("does not answer checks keyed with the wrong password", () => {
    const net = new Net({
      label: "ice/wrong-password",
      remoteCredentials: { A: { username: CREDENTIALS.B.username, password: "not-the-gateway-password" } },
    });
    net.run(30_000);
    expect(net.successes("B")).toBe(0);
    expect(net.agents.B.dropped.unauthenticated).toBeGreaterThan(0);
    expect(net.eventsOf("A", "connected")).toHaveLength(0);
    expect(net.eventsOf("B", "connected")).toHaveLength(0);
    expect(net.eventsOf("A", "failed")).toHaveLength(1);
    // B's checks, keyed right, were answered, but A's answers do not make B select anything unnominated.
    expect(net.successes("A")).toBeGreaterThan(0);
  });

  it("answers a check without MESSAGE-INTEGRITY with 400, and leaves what is not its own to others", () => {
    const agent = new IceAgent({ role: "controlled", local: CREDENTIALS.B, remote: CREDENTIALS.A, random: (n) => new Uint8Array(n).fill(3) });
    agent.addLocalCandidate(0, { type: "host", ...HOST.B });
    const via = { local: { type: "host" as const, ...HOST.B }, from: v4(HOST.A) };
    const base = (username: string): StunBuilder =>
      new StunBuilder(METHOD_BINDING, "request", new Uint8Array(12).fill(9)).addUsername(username).addPriority(1).addIceControlling(1n);

    expect(agent.handleInput(1, via, base(`${CREDENTIALS.B.username}:${CREDENTIALS.A.username}`).build({ fingerprint: true }))).toBe(true);
    const bad = decodeStun(agent.pollTransmit()!.bytes);
    expect(bad.ok && bad.message.errorCode()?.code).toBe(400);

    // Another agent's ufrag, a WireGuard handshake initiation, a stray response, a TURN message: not ours.
    expect(agent.handleInput(1, via, base("otheragent:x").build({ integrity: shortTermKey("x"), fingerprint: true }))).toBe(false);
    const wireguard = new Uint8Array(148);
    wireguard[0] = 1;
    expect(agent.handleInput(1, via, wireguard)).toBe(false);
    expect(agent.handleInput(1, via, new StunBuilder(METHOD_BINDING, "success", new Uint8Array(12)).build({ fingerprint: true }))).toBe(false);
    expect(agent.handleInput(1, via, new StunBuilder(0x003, "request", new Uint8Array(12)).build())).toBe(false);
    expect(agent.pollTransmit()).toBeUndefined();

    // Our ufrag without FINGERPRINT, or with a forged HMAC: consumed and dropped silently.
    expect(agent.handleInput(1, via, base(`${CREDENTIALS.B.username}:${CREDENTIALS.A.username}`).build({ integrity: shortTermKey(CREDENTIALS.B.password) }))).toBe(true);
    expect(agent.handleInput(1, via, base(`${CREDENTIALS.B.username}:${CREDENTIALS.A.username}`).build({ integrity: shortTermKey("guess"), fingerprint: true }))).toBe(true);
    expect(agent.pollTransmit()).toBeUndefined();
    expect(agent.dropped).toMatchObject({ malformed: 1, unauthenticated: 1 });
  });

  it("never throws on random or mutated datagrams", () => {
    const r = rng("ice/input-fuzz");
    const net = new Net({ label: "ice/input-fuzz-net" });
    net.run(3_000);
    const samples = net.sent.map((s) => s.transmit.bytes);
    const agent = net.agents.B;
    const via = { local: { type: "host" as const, ...HOST.B }, from: v4(HOST.A) };
    for (let i = 0; i < 3000; i++) {
      const bytes = r.bool(0.3) ? r.bytes(r.int(0, 120)) : r.pick(samples).slice();
      const flips = r.int(0, 3);
      for (let f = 0; f < flips && bytes.length > 0; f++) {
        const at = r.int(0, bytes.length - 1);
        bytes[at] = bytes[at]! ^ (1 << r.int(0, 7));
      }
      expect(() => agent.handleInput(net.now + i, via, bytes), r.where()).not.toThrow();
      while (agent.pollTransmit() !== undefined);
    }
  });

  it("never throws on well-formed messages with random attributes, keys, classes and sources", () => {
    const r = rng("ice/structured-fuzz");
    const net = new Net({ label: "ice/structured-fuzz-net" });
    net.run(3_000);
    const agent = net.agents.B;
    const classes = ["request", "indication", "success", "error"] as const;
    // Answers to B's own checks reach the response path: their transaction IDs are reused.
    const ours: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) {
      const id = ours.length > 0 && r.bool(0.5) ? r.pick(ours) : r.bytes(12);
      const message = new StunBuilder(METHOD_BINDING, r.pick(classes), id);
      if (r.bool(0.8)) message.addUsername(r.bool(0.8) ? `${CREDENTIALS.B.username}:${r.bool(0.8) ? CREDENTIALS.A.username : "x"}` : "garbage");
      if (r.bool(0.8)) message.addPriority(r.int(0, 2 ** 32 - 1));
      if (r.bool(0.5)) message.addIceControlling(r.u64());
      if (r.bool(0.5)) message.addIceControlled(r.u64());
      if (r.bool(0.2)) message.addUseCandidate();
      if (r.bool(0.3)) message.addXorMappedAddress(r.bool() ? { family: 4, address: "203.0.113.9", port: r.int(0, 65535) } : { family: 6, address: "2001:db8::9", port: r.int(0, 65535) });
      if (r.bool(0.1)) message.addErrorCode(r.pick([400, 401, 487, 500]), "x");
      if (r.bool(0.1)) message.add(r.int(0, 0x7fff), r.bytes(r.int(0, 9)));
      const key = r.pick([CREDENTIALS.A.password, CREDENTIALS.B.password, "wrong"]);
      const bytes = message.build({ ...(r.bool(0.9) ? { integrity: shortTermKey(key) } : {}), fingerprint: r.bool(0.9) });
      const local: IceSocket = r.bool() ? { type: "host", ...HOST.B } : { type: "relay", relayAddress: RELAY.B.address, relayPort: RELAY.B.port };
      const from = v4({ address: `203.0.113.${r.int(1, 200)}`, port: r.int(1, 65535) });
      expect(() => agent.handleInput(net.now, { local, from }, bytes), r.where(`#${i}`)).not.toThrow();
      net.now += r.int(0, 50);
      expect(() => agent.handleTimeout(net.now)).not.toThrow();
      for (let t = agent.pollTransmit(); t !== undefined; t = agent.pollTransmit()) {
        const d = decodeStun(t.bytes);
        if (d.ok && d.message.class === "request") ours.push(d.message.transactionId.slice());
      }
      if (ours.length > 50) ours.splice(0, ours.length - 50);
      while (agent.pollEvent() !== undefined);
      const next = agent.pollTimeout();
      expect(next === undefined || Number.isFinite(next)).toBe(true);
    }
    // Peer-reflexive candidates learned from forged sources are bounded.
    expect(agent.pairStatus().length).toBeLessThanOrEqual(2 * 64);
  });
});

describe("timing", () => {
  it("paces new checks one per Ta and retransmits at 0, RTO, 3 RTO, 7 RTO, 15 RTO before failing", () => {
    const r = rng("ice/timing");
    const agent = new IceAgent({ role: "controlling", local: CREDENTIALS.A, remote: CREDENTIALS.B, random: (n) => r.bytes(n) });
    agent.addLocalCandidate(0, { type: "host", ...HOST.A });
    for (let i = 0; i < 3; i++) {
      const line = `candidate:${i + 1} 1 udp ${candidatePriority("host", 100 - i)} 192.0.2.${i + 1} 9 typ host`;
      const parsed = parseCandidate(line);
      if (parsed.ok) agent.addRemoteCandidate(0, parsed.candidate);
    }
    const sends: { at: number; to: string; id: string }[] = [];
    const events: string[] = [];
    let now = 0;
    agent.handleTimeout(0);
    for (let guard = 0; guard < 1000; guard++) {
      for (let t = agent.pollTransmit(); t !== undefined; t = agent.pollTransmit()) {
        const d = decodeStun(t.bytes);
        sends.push({ at: now, to: t.to.address, id: d.ok ? Buffer.from(d.message.transactionId).toString("hex") : "" });
      }
      for (let e = agent.pollEvent(); e !== undefined; e = agent.pollEvent()) events.push(`${now} ${e.type}`);
      const next = agent.pollTimeout();
      if (next === undefined || next > 12_000) break;
      now = next;
      agent.handleTimeout(now);
    }
    const first = sends.filter((s) => s.to === "192.0.2.1");
    expect(first.map((s) => s.at)).toEqual([0, 1, 3, 7, 15].map((k) => k * CHECK_RTO));
    expect(new Set(first.map((s) => s.id)).size).toBe(1); // retransmissions, one transaction
    // Highest priority first, then one per Ta.
    expect(sends.slice(0, 3).map((s) => [s.at, s.to])).toEqual([[0, "192.0.2.1"], [TA, "192.0.2.2"], [2 * TA, "192.0.2.3"]]);
    // The last pair gives up 15 RTO + CHECK_RM × RTO after its first send; then everything has failed.
    expect(events.filter((e) => !e.endsWith("local_candidate"))).toEqual([`${2 * TA + 15 * CHECK_RTO + 4 * CHECK_RTO} failed`]);
  });

  it("recognises a late answer to a check that gave up as its own, and drops it", () => {
    const agent = new IceAgent({ role: "controlling", local: CREDENTIALS.A, remote: CREDENTIALS.B, random: ((r) => (n: number) => r.bytes(n))(rng("ice/late")) });
    agent.addLocalCandidate(0, { type: "host", ...HOST.A });
    agent.addRemoteCandidate(0, { foundation: "1", component: 1, transport: "udp", priority: candidatePriority("host"), ...HOST.B, type: "host" });
    const request = decodeStun(agent.pollTransmit()!.bytes);
    if (!request.ok) throw new Error("our own check did not decode");
    for (let now = 0; now <= 10_000; now += 250) agent.handleTimeout(now);
    expect(agent.pairStatus()[0]!.state).toBe("failed");
    const answer = new StunBuilder(METHOD_BINDING, "success", request.message.transactionId.slice())
      .addXorMappedAddress(v4(HOST.A))
      .build({ integrity: shortTermKey(CREDENTIALS.B.password), fingerprint: true });
    expect(agent.handleInput(10_000, { local: { type: "host", ...HOST.A }, from: v4(HOST.B) }, answer)).toBe(true);
    expect(agent.dropped.late).toBe(1);
    expect(agent.pairStatus()[0]!.state).toBe("failed");
  });

  it("slows its checks when the connection is idle, and keeps the path", () => {
    const net = new Net({ label: "ice/idle" });
    let lastNote = 0;
    const active = (until: number): void =>
      net.run(until, (now) => {
        if (now - lastNote >= 1_000) {
          lastNote = now;
          net.agents.A.noteActivity(now);
          net.agents.B.noteActivity(now);
        }
      });
    active(120_000);
    const busy = net.requests("A", 60_000, 120_000) + net.requests("B", 60_000, 120_000);
    net.run(300_000); // no activity: idle after IDLE_TIMEOUT
    const idle = net.requests("A", 240_000, 300_000) + net.requests("B", 240_000, 300_000);
    expect(busy).toBeGreaterThanOrEqual(2 * (60_000 / CONSENT_INTERVAL));
    expect(idle).toBeGreaterThan(0);
    expect(idle * 2.5).toBeLessThan(busy);
    expect(net.path("A")).toBe("direct");
    expect(net.eventsOf("A", "disconnected")).toHaveLength(0);

    // Activity again: checks speed up at once (the selected pair is checked right away).
    const resumed = net.now;
    active(resumed + 60_000);
    expect(net.requests("A", resumed, resumed + 60_000) + net.requests("B", resumed, resumed + 60_000)).toBeGreaterThan(idle * 2);
  });
});

describe("candidates", () => {
  it("announces host, server-reflexive and relayed candidates, and prunes pairs redundant with their base", () => {
    const agent = new IceAgent({ role: "controlling", local: CREDENTIALS.A, remote: CREDENTIALS.B, random: (n) => new Uint8Array(n) });
    const host = agent.addLocalCandidate(0, { type: "host", ...HOST.A });
    const srflx = agent.addLocalCandidate(0, { type: "srflx", address: "203.0.113.5", port: 6000, base: HOST.A, server: "198.51.100.1" });
    const relay = agent.addLocalCandidate(0, { type: "relay", ...RELAY.A, server: "198.51.100.1", related: { address: "203.0.113.5", port: 6000 } });
    expect(agent.addLocalCandidate(0, { type: "host", ...HOST.A })).toEqual(host); // a duplicate is not announced again
    const announced: string[] = [];
    for (let e = agent.pollEvent(); e !== undefined; e = agent.pollEvent()) if (e.type === "local_candidate") announced.push(formatCandidate(e.candidate));
    expect(announced).toEqual([
      `candidate:1 1 udp 2130706431 10.0.0.1 1000 typ host`,
      `candidate:2 1 udp 1694498815 203.0.113.5 6000 typ srflx raddr 10.0.0.1 rport 1000`,
      `candidate:3 1 udp 16777215 198.51.100.1 40000 typ relay raddr 203.0.113.5 rport 6000`,
    ]);
    expect(new Set([host.foundation, srflx.foundation, relay.foundation]).size).toBe(3);

    const parsed = parseCandidate("candidate:9 1 udp 2130706431 192.0.2.2 2000 typ host");
    expect(parsed.ok && agent.addRemoteCandidate(0, parsed.candidate)).toBe(true);
    // The srflx candidate stands for its base, the host socket: one pair from it, one from the relay.
    const pairs = agent.pairStatus();
    expect(pairs.map((p) => [p.local.type, p.source.type])).toEqual([["host", "host"], ["relay", "relay"]]);
    expect(pairs[0]!.priority).toBe(pairPriority(2130706431, 2130706431));
    expect(pairs[1]!.priority).toBe(pairPriority(16777215, 2130706431));
    // The best pair's check went out at once; the next waits for Ta.
    expect(pairs.map((p) => p.state)).toEqual(["in-progress", "waiting"]);

    // An IPv6 remote pairs with nothing IPv4; another component or transport is refused.
    const v6 = parseCandidate("candidate:8 1 udp 2130706431 2001:db8::1 2000 typ host");
    expect(v6.ok && agent.addRemoteCandidate(0, v6.candidate)).toBe(true);
    expect(agent.pairStatus()).toHaveLength(2);
    const rtcp = parseCandidate("candidate:8 2 udp 2130706431 192.0.2.9 2001 typ host");
    expect(rtcp.ok && agent.addRemoteCandidate(0, rtcp.candidate)).toBe(false);

    agent.removeLocalCandidate(1, { type: "host", ...HOST.A });
    const gone: string[] = [];
    for (let e = agent.pollEvent(); e !== undefined; e = agent.pollEvent()) if (e.type === "local_candidate_invalidated") gone.push(e.candidate.type);
    // The srflx candidate goes with its base socket.
    expect(gone).toEqual(["host", "srflx"]);
    expect(agent.pairStatus().map((p) => p.local.type)).toEqual(["relay"]);

    agent.removeRemoteCandidate(2, { address: "192.0.2.2", port: 2000 });
    expect(agent.pairStatus()).toHaveLength(0);
  });

  it("throws on a local candidate that is not an address (a driver bug)", () => {
    const agent = new IceAgent({ role: "controlling", local: CREDENTIALS.A, remote: CREDENTIALS.B, random: (n) => new Uint8Array(n) });
    expect(() => agent.addLocalCandidate(0, { type: "host", address: "example.com", port: 1 })).toThrow(TypeError);
    expect(() => agent.addLocalCandidate(0, { type: "host", address: "10.0.0.1", port: 70000 })).toThrow(RangeError);
    expect(() => agent.addLocalCandidate(0, { type: "srflx", address: "10.0.0.1", port: 1 })).toThrow(TypeError);
  });

  it("learns a peer-reflexive candidate from a check that comes from an unsignalled address", () => {
    const net = new Net({ label: "ice/prflx", relays: false });
    // B never hears of A's candidate: A's checks reveal its address.
    const realAdd = net.agents.B.addRemoteCandidate.bind(net.agents.B);
    net.agents.B.addRemoteCandidate = () => true;
    net.run(5_000);
    net.agents.B.addRemoteCandidate = realAdd;
    expect(net.path("A")).toBe("direct");
    expect(net.path("B")).toBe("direct");
    expect(net.agents.B.selectedPair()!.remote).toMatchObject({ type: "prflx", ...HOST.A, priority: candidatePriority("prflx") });
    // Signalled late, the candidate replaces the peer-reflexive one.
    realAdd(net.now, { foundation: "1", component: 1, transport: "udp", priority: candidatePriority("host"), ...HOST.A, type: "host" });
    expect(net.agents.B.pairStatus()[0]!.remote.type).toBe("host");
  });
});
