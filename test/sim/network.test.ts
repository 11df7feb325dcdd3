// The simulated network's links, partitions, roaming, timers and determinism, with recording
// endpoints on public hosts (NAT behaviour is in nat.test.ts, the TURN relay in turn.test.ts).

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../support/prng.js";
import { symmetric } from "./nat.js";
import { Network } from "./network.js";
import { addr, RecordingEndpoint, type SimEndpoint, type SimTransmit } from "./node.js";

beforeEach(reportSeedOnFailure);

const seq = (n: number): Uint8Array => new Uint8Array([n >>> 24, n >>> 16, n >>> 8, n]);
const seqOf = (bytes: Uint8Array): number => ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;

/** Two public hosts with recording endpoints on port 5000. */
function pair(seed: number, link: Parameters<Network["setPairLink"]>[2] = {}) {
  const net = new Network({ seed, label: "pair" });
  const a = net.addHost("a", "203.0.113.1");
  const b = net.addHost("b", "203.0.113.2");
  const ea = new RecordingEndpoint();
  const eb = new RecordingEndpoint();
  a.bind(ea, 5000);
  b.bind(eb, 5000);
  net.setPairLink("a", "b", link);
  return { net, a, b, ea, eb };
}

/** Sends n numbered datagrams from a to b, one every `every` ms, then runs until all could have arrived. */
function stream(w: ReturnType<typeof pair>, n: number, every = 1): void {
  for (let i = 0; i < n; i++) w.net.at(i * every, () => w.ea.send(addr("203.0.113.2:5000"), seq(i)));
  w.net.runFor(n * every + 10_000);
}

describe("links", () => {
  it("delivers after the configured delay, and jitter stays within its bound", () => {
    const r = rng("delay");
    const w = pair(r.u32(), { delay: 37 });
    w.net.at(100, () => w.ea.send(addr("203.0.113.2:5000"), seq(1)));
    w.net.run(1000);
    expect(w.eb.received.map((d) => d.at)).toEqual([137]);
    expect(w.eb.received[0]!.from).toEqual(addr("203.0.113.1:5000"));
    expect(w.eb.received[0]!.local).toEqual(addr("203.0.113.2:5000"));

    const j = pair(r.u32(), { delay: 30, jitter: 15 });
    for (let i = 0; i < 200; i++) j.net.at(i * 100, () => j.ea.send(addr("203.0.113.2:5000"), seq(i)));
    j.net.run(30_000);
    const delays = j.eb.received.map((d) => d.at - seqOf(d.bytes) * 100);
    expect(delays.length).toBe(200);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(30);
    expect(Math.max(...delays)).toBeLessThanOrEqual(45);
    expect(new Set(delays).size, r.where("jitter varies")).toBeGreaterThan(5);
  });

  it("loses about the configured fraction", () => {
    const r = rng("loss");
    for (const loss of [0.01, 0.1, 0.5]) {
      const w = pair(r.u32(), { loss });
      const n = 20_000;
      stream(w, n);
      const lost = 1 - w.eb.received.length / n;
      // 20,000 draws: the standard deviation is at most 0.0036; these bounds are over 4 of them.
      expect(lost, r.where(`loss ${loss}`)).toBeGreaterThan(loss - 0.015);
      expect(lost, r.where(`loss ${loss}`)).toBeLessThan(loss + 0.015);
      expect(w.net.stats.dropped.loss).toBe(n - w.eb.received.length);
    }
  });

  it("reorders: held-back datagrams arrive after later ones, none lost", () => {
    const r = rng("reorder");
    const w = pair(r.u32(), { delay: 10, reorder: 0.2, reorderDelay: 50 });
    const n = 1000;
    stream(w, n);
    const order = w.eb.received.map((d) => seqOf(d.bytes));
    expect(order.length).toBe(n);
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
    let inversions = 0;
    for (let i = 1; i < n; i++) if (order[i]! < order[i - 1]!) inversions++;
    const held = w.eb.received.filter((d) => d.at - seqOf(d.bytes) === 60).length;
    expect(inversions, r.where()).toBeGreaterThan(50);
    expect(held / n, r.where()).toBeGreaterThan(0.15);
    expect(held / n, r.where()).toBeLessThan(0.25);
  });

  it("keeps order without jitter or reordering, and duplicates when told", () => {
    const r = rng("fifo");
    const w = pair(r.u32(), { delay: 5 });
    stream(w, 100, 0); // all at t=0: same arrival time, so insertion order decides
    expect(w.eb.received.map((d) => seqOf(d.bytes))).toEqual(Array.from({ length: 100 }, (_, i) => i));

    const d = pair(r.u32(), { duplicate: 0.3 });
    stream(d, 2000);
    const copies = d.eb.received.length - 2000;
    expect(copies / 2000, r.where()).toBeGreaterThan(0.25);
    expect(copies / 2000, r.where()).toBeLessThan(0.35);
  });

  it("applies pair over node over realm profiles", () => {
    const net = new Network({ seed: 1, internet: { delay: 7 } });
    const hosts = ["x", "y", "z"].map((name, i) => net.addHost(name, `198.51.100.${i + 1}`));
    net.setNodeLink("x", { delay: 50 });
    net.setPairLink("x", "y", { delay: 3 });
    expect(net.linkBetween(net.internet, "y", "z").delay).toBe(7);
    expect(net.linkBetween(net.internet, "x", "z").delay).toBe(50);
    expect(net.linkBetween(net.internet, "z", "x").delay).toBe(50);
    expect(net.linkBetween(net.internet, "x", "y").delay).toBe(3);
    expect(net.linkBetween(net.internet, "y", "x").loss).toBe(0);
    expect(hosts.length).toBe(3);
  });
});

describe("partitions, cuts and roaming", () => {
  it("a partition drops everything to and from the host, in flight too; heal restores", () => {
    const w = pair(rng("partition").u32(), { delay: 20 });
    const c = w.net.addHost("c", "203.0.113.3");
    const ec = new RecordingEndpoint();
    c.bind(ec, 5000);
    const everyone = () => {
      for (const [from, to] of [[w.ea, "203.0.113.2"], [w.eb, "203.0.113.1"], [ec, "203.0.113.1"], [ec, "203.0.113.2"]] as const) {
        from.send(addr(to, 5000), seq(w.net.now));
      }
    };
    w.net.act(everyone);
    w.net.runFor(10); // in flight
    const cut = w.net.partition(["a"]);
    w.net.runFor(100);
    // Sent before the partition, judged on arrival: only c's datagram to b gets through.
    expect(w.ea.received).toEqual([]);
    expect(w.eb.received.map((d) => d.from.address)).toEqual(["203.0.113.3"]);
    w.net.act(everyone);
    w.net.runFor(100);
    expect(w.ea.received).toEqual([]);
    expect(w.eb.received.map((d) => d.from.address)).toEqual(["203.0.113.3", "203.0.113.3"]);
    expect(w.net.stats.dropped.partition).toBe(6);
    cut.heal();
    w.net.act(everyone);
    w.net.runFor(100);
    expect(w.ea.received.length).toBe(2);
    expect(w.eb.received.length).toBe(4);
    expect(ec.received.length).toBe(0);
  });

  it("a set partition keeps its members together", () => {
    const net = new Network({ seed: 2 });
    const eps = ["p", "q", "r"].map((name, i) => {
      const e = new RecordingEndpoint();
      net.addHost(name, `192.0.2.${i + 1}`).bind(e, 1);
      return e;
    });
    net.partition(["p", "q"]);
    net.act(() => {
      eps[0]!.send(addr("192.0.2.2:1"), seq(0));
      eps[0]!.send(addr("192.0.2.3:1"), seq(0));
      eps[2]!.send(addr("192.0.2.2:1"), seq(0));
    });
    net.runFor(100);
    expect(eps.map((e) => e.received.length)).toEqual([0, 1, 0]);
  });

  it("a cut drops one path, end to end through NATs, and heals", () => {
    const net = new Network({ seed: 3 });
    const nat = net.addNat("home", "198.51.100.1", symmetric);
    const client = net.addHost("client", "192.168.1.10", nat.inside);
    const server = net.addHost("server", "192.0.2.1");
    const other = net.addHost("other", "192.0.2.2");
    expect(net.realm("lan/home")).toBe(nat.inside);
    const [ec, es, eo] = [new RecordingEndpoint(), new RecordingEndpoint(), new RecordingEndpoint()];
    client.bind(ec, 4000);
    server.bind(es, 3478);
    other.bind(eo, 3478);
    const ping = () => net.act(() => {
      ec.send(addr("192.0.2.1:3478"), seq(1));
      ec.send(addr("192.0.2.2:3478"), seq(2));
    });
    const cut = net.cut("client", "server");
    ping();
    net.runFor(100);
    expect([es.received.length, eo.received.length]).toEqual([0, 1]);
    expect(net.stats.dropped.cut).toBe(1);
    cut.heal();
    ping();
    net.runFor(100);
    expect([es.received.length, eo.received.length]).toEqual([1, 2]);
  });

  it("a roaming host sends from its new address; datagrams to the old one are dropped", () => {
    const net = new Network({ seed: 4 });
    const nat = net.addNat("cafe", "198.51.100.9");
    const phone = net.addHost("phone", "203.0.113.50");
    const server = net.addHost("server", "192.0.2.1");
    const [ep, es] = [new RecordingEndpoint(), new RecordingEndpoint()];
    phone.bind(ep, 7000);
    server.bind(es, 443);
    net.act(() => ep.send(addr("192.0.2.1:443"), seq(0)));
    net.runFor(10); // in flight to the server
    net.act(() => es.send(addr("203.0.113.50:7000"), seq(1))); // and one to the phone
    net.at(15, () => net.roam(phone, "192.168.7.2", nat.inside));
    net.runFor(100);
    expect(es.received.map((d) => d.from)).toEqual([addr("203.0.113.50:7000")]);
    expect(ep.received).toEqual([]);
    expect(net.stats.dropped["stale-address"]).toBe(1);
    net.act(() => es.send(addr("203.0.113.50:7000"), seq(1)));
    net.runFor(100);
    expect(net.stats.dropped["no-route"]).toBe(1); // nobody holds 203.0.113.50 any more
    net.act(() => ep.send(addr("192.0.2.1:443"), seq(2)));
    net.runFor(100);
    expect(es.received[1]!.from).toEqual(addr("198.51.100.9:7000")); // behind the NAT now, port preserved
    expect(phone.local()).toEqual(addr("192.168.7.2:7000"));
  });

  it("carries IPv6 as well", () => {
    const net = new Network({ seed: 10 });
    const [a, b] = [new RecordingEndpoint(), new RecordingEndpoint()];
    net.addHost("a", "2001:db8::1").bind(a, 1000);
    const hb = net.addHost("b", "2001:db8::2");
    hb.bind(b, 2000);
    net.act(() => a.send(addr("[2001:db8::2]:2000"), seq(6)));
    net.runFor(100);
    expect(b.received.map((d) => [d.from, d.local])).toEqual([[addr("[2001:db8::1]:1000"), addr("[2001:db8::2]:2000")]]);
    expect(hb.local()).toEqual({ family: 6, address: "2001:db8::2", port: 2000 });
  });

  it("drops what nothing routes: private addresses from the internet, unbound ports", () => {
    const w = pair(5);
    w.net.act(() => {
      w.ea.send(addr("10.0.0.1:5000"), seq(0));
      w.ea.send(addr("203.0.113.2:5001"), seq(0));
    });
    w.net.runFor(100);
    expect(w.net.stats.dropped).toEqual({ "no-route": 1, "port-unreachable": 1 });
  });
});

/** An endpoint with a periodic timer: sends a tick to `to` every period ms, from its second port. */
class Ticker implements SimEndpoint<string> {
  fired: number[] = [];
  private next: number;
  private out: SimTransmit[] = [];
  private events: string[] = [];

  constructor(private readonly to: ReturnType<typeof addr>, private readonly period: number, start: number) {
    this.next = start;
  }
  handleDatagram(): void {}
  handleTimeout(now: number): void {
    if (now < this.next) return;
    this.fired.push(now);
    this.events.push(`tick ${now}`);
    this.out.push({ from: addr("0.0.0.0", 2), to: this.to, bytes: seq(now) });
    this.next = now + this.period;
  }
  pollTransmit(): SimTransmit | undefined {
    return this.out.shift();
  }
  pollTimeout(): number {
    return this.next;
  }
  pollEvent(): string | undefined {
    return this.events.shift();
  }
}

describe("time", () => {
  it("fires timeouts at their virtual times, sends from the chosen port, and records events", () => {
    const net = new Network({ seed: 6 });
    const h = net.addHost("h", "192.0.2.1");
    const sink = new RecordingEndpoint();
    net.addHost("sink", "192.0.2.2").bind(sink, 9);
    const ticker = new Ticker(addr("192.0.2.2:9"), 250, 100);
    const attachment = h.bind(ticker, 1, 2);
    const reactions: string[] = [];
    attachment.onEvent = (now, event) => reactions.push(`${now} ${event}`);
    net.drainAll(); // arms the first timer
    net.run(1000);
    expect(reactions).toEqual(["100 tick 100", "350 tick 350", "600 tick 600", "850 tick 850"]);
    expect(ticker.fired).toEqual([100, 350, 600, 850]);
    expect(attachment.events).toEqual([100, 350, 600, 850].map((at) => ({ at, event: `tick ${at}` })));
    expect(sink.received.map((d) => [d.at, d.from.port])).toEqual([[120, 2], [370, 2], [620, 2], [870, 2]]);
    expect(net.now).toBe(1000);
  });

  it("runUntil stops when the condition holds", () => {
    const w = pair(7, { delay: 25 });
    w.net.act(() => w.ea.send(addr("203.0.113.2:5000"), seq(0)));
    expect(w.net.runUntil(() => w.eb.received.length > 0, 1000)).toBe(true);
    expect(w.net.now).toBe(25);
    expect(w.net.runUntil(() => false, 500)).toBe(false);
    expect(w.net.now).toBe(525);
  });

  it("throws, naming the seed, when a timeout never clears", () => {
    const net = new Network({ seed: 0xabc, maxEventsPerInstant: 1000 });
    const stuck: SimEndpoint = {
      handleDatagram: () => {},
      handleTimeout: () => {},
      pollTransmit: () => undefined,
      pollTimeout: () => 5,
    };
    net.addHost("h", "192.0.2.1").bind(stuck, 1);
    net.drainAll();
    expect(() => net.run(100)).toThrow(/no progress.*seed=0x00000abc/);
  });

  it("refuses a transmit from a port the endpoint has not bound", () => {
    const net = new Network({ seed: 8 });
    const e = new RecordingEndpoint();
    net.addHost("h", "192.0.2.1").bind(e, 1);
    expect(() => net.act(() => e.send(addr("192.0.2.9:1"), seq(0), 2))).toThrow(/port 2/);
  });
});

describe("determinism", () => {
  /** A busy lossy world: NATs with random ports, jitter, loss, reordering, duplication, a partition. */
  function busy(seed: number): Network {
    const net = new Network({ seed, label: "busy", internet: { delay: 15, jitter: 10, loss: 0.1, reorder: 0.1, duplicate: 0.05 } });
    const servers = [1, 2, 3].map((i) => {
      const e = new RecordingEndpoint();
      e.reply = (d) => d.bytes;
      net.addHost(`s${i}`, `192.0.2.${i}`).bind(e, 3478);
      return e;
    });
    const clients = [1, 2, 3, 4].map((i) => {
      const nat = net.addNat(`nat${i}`, `198.51.100.${i}`, i % 2 === 0 ? symmetric : {});
      const e = new RecordingEndpoint();
      net.addHost(`c${i}`, `192.168.${i}.2`, nat.inside).bind(e, 4000, 4001);
      return e;
    });
    const traffic = net.rng("traffic");
    for (let t = 0; t < 2000; t += 10) {
      net.at(t, () => {
        const c = traffic.pick(clients);
        c.send(addr(`192.0.2.${traffic.int(1, 3)}`, 3478), traffic.bytes(traffic.int(1, 40)), traffic.pick([4000, 4001]));
      });
    }
    net.at(700, () => net.partition(["nat2"]));
    net.at(1200, () => net.healAll());
    net.run(5000);
    expect(servers.length).toBe(3);
    return net;
  }

  it("the same seed gives the same trace; another seed another", () => {
    const r = rng("determinism");
    const seed = r.u32();
    const first = busy(seed);
    const second = busy(seed);
    expect(second.trace).toEqual(first.trace);
    expect(second.traceDigest).toBe(first.traceDigest);
    expect(second.stats).toEqual(first.stats);
    expect(first.trace.length).toBeGreaterThan(500);
    const other = busy((seed + 1) >>> 0);
    expect(other.traceDigest, r.where()).not.toBe(first.traceDigest);
    expect(other.trace).not.toEqual(first.trace);
  });

  it("keeps only the last traceLimit lines, while the digest covers all", () => {
    const full = pair(9, { delay: 1 });
    stream(full, 50);
    const net = new Network({ seed: 9, label: "pair", traceLimit: 10 });
    const a = net.addHost("a", "203.0.113.1");
    const b = net.addHost("b", "203.0.113.2");
    const ea = new RecordingEndpoint();
    a.bind(ea, 5000);
    b.bind(new RecordingEndpoint(), 5000);
    net.setPairLink("a", "b", { delay: 1 });
    stream({ net, a, b, ea, eb: new RecordingEndpoint() }, 50);
    expect(net.trace).toEqual(full.net.trace.slice(-10));
    expect(net.traceDigest).toBe(full.net.traceDigest);
  });
});
