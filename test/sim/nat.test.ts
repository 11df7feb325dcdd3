// NAT behaviours of RFC 4787 in the simulated network: mapping (endpoint-independent reuses the
// external port, symmetric makes a new random one per destination), filtering (port-restricted drops
// the unsolicited, lets in who was sent to), mapping timeouts and refresh, hairpinning, nested NATs,
// and a seeded property run of the table against a plain model.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, Rng } from "../support/prng.js";
import { DEFAULT_MAPPING_TIMEOUT } from "./constants.js";
import { fullCone, NatBox, portRestricted, restrictedCone, symmetric, type NatBehaviour } from "./nat.js";
import { Network } from "./network.js";
import { addr, formatAddr, RecordingEndpoint, type Addr } from "./node.js";

beforeEach(reportSeedOnFailure);

const bytes = (n: number): Uint8Array => new Uint8Array([n]);
const S1 = addr("192.0.2.1:3478");
const S2 = addr("192.0.2.2:3478");
const S1_OTHER_PORT = addr("192.0.2.1:9999");

/** A client behind a NAT of the given behaviour, and three public servers (two ports on the first). */
function world(behaviour: Partial<NatBehaviour>, seed = rng("nat world").u32()) {
  const net = new Network({ seed, label: "nat" });
  const nat = net.addNat("nat", "198.51.100.1", behaviour);
  const client = new RecordingEndpoint();
  net.addHost("client", "192.168.1.10", nat.inside).bind(client, 4000);
  const s1 = new RecordingEndpoint();
  const s2 = new RecordingEndpoint();
  net.addHost("s1", S1.address).bind(s1, S1.port, S1_OTHER_PORT.port);
  net.addHost("s2", S2.address).bind(s2, S2.port);
  const send = (from: RecordingEndpoint, to: Addr, n: number, fromPort?: number) => net.act(() => from.send(to, bytes(n), fromPort));
  return { net, nat, client, s1, s2, send };
}

describe("mapping", () => {
  it("endpoint-independent: one external address for every destination, the port preserved", () => {
    const w = world(portRestricted);
    w.send(w.client, S1, 1);
    w.send(w.client, S2, 2);
    w.send(w.client, S1_OTHER_PORT, 3);
    w.net.runFor(100);
    const seen = [...w.s1.received, ...w.s2.received].map((d) => formatAddr(d.from));
    expect(seen).toEqual(["198.51.100.1:4000", "198.51.100.1:4000", "198.51.100.1:4000"]);
    expect(w.nat.box.mappings(w.net.now).length).toBe(1);
  });

  it("symmetric: a new random external port per destination IP:port, reused for the same one", () => {
    const r = rng("symmetric ports");
    const w = world(symmetric, r.u32());
    w.send(w.client, S1, 1);
    w.send(w.client, S2, 2);
    w.send(w.client, S1_OTHER_PORT, 3);
    w.send(w.client, S1, 4);
    w.net.runFor(100);
    const byPayload = new Map([...w.s1.received, ...w.s2.received].map((d) => [d.bytes[0]!, d.from]));
    const ports = [1, 2, 3].map((n) => byPayload.get(n)!.port);
    expect(new Set(ports).size, r.where()).toBe(3);
    expect(byPayload.get(4)).toEqual(byPayload.get(1));
    expect(w.nat.box.mappings(w.net.now).map((m) => m.remote)).toEqual(["192.0.2.1:3478", "192.0.2.2:3478", "192.0.2.1:9999"]);
    // Random, not the internal port: a different seed picks different ports.
    const other = world(symmetric, (r.u32() ^ 1) >>> 0);
    other.send(other.client, S1, 1);
    other.net.runFor(100);
    expect(other.s1.received[0]!.from.port, r.where()).not.toBe(ports[0]);
  });

  it("address-dependent mapping: one port per remote IP, whatever its port", () => {
    const w = world({ mapping: "address-dependent", filtering: "address-dependent", portPreservation: false });
    w.send(w.client, S1, 1);
    w.send(w.client, S1_OTHER_PORT, 2);
    w.send(w.client, S2, 3);
    w.net.runFor(100);
    const [a, b] = w.s1.received.map((d) => d.from.port);
    expect(a).toBe(b);
    expect(w.s2.received[0]!.from.port).not.toBe(a);
  });

  it("runs out of ports without throwing", () => {
    const box = new NatBox("198.51.100.1", symmetric, new Rng("exhaust", 1), [5000, 5002]);
    const client = addr("10.0.0.1:1");
    const results = [1, 2, 3, 4].map((i) => box.outbound(0, client, addr(`192.0.2.${i}:1`)));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(new Set(results.filter((r) => r.ok).map((r) => (r.ok ? r.external.port : 0)))).toEqual(new Set([5000, 5001, 5002]));
    // Expired mappings give their ports back.
    expect(box.outbound(DEFAULT_MAPPING_TIMEOUT, client, addr("192.0.2.9:1")).ok).toBe(true);
  });
});

describe("filtering", () => {
  it("port-restricted: unsolicited inbound is dropped, accepted after an outbound datagram to that peer, only from its port", () => {
    const w = world(portRestricted);
    // A mapping exists (to s2), but s1 was never sent to.
    w.send(w.client, S2, 0);
    w.net.runFor(100);
    w.send(w.s1, addr("198.51.100.1:4000"), 1);
    w.net.runFor(100);
    expect(w.client.received).toEqual([]);
    expect(w.net.stats.dropped["nat-filtered"]).toBe(1);
    // Unsolicited to a port with no mapping at all.
    w.send(w.s1, addr("198.51.100.1:4001"), 2);
    w.net.runFor(100);
    expect(w.net.stats.dropped["nat-no-mapping"]).toBe(1);

    w.send(w.client, S1, 3);
    w.net.runFor(100);
    w.send(w.s1, addr("198.51.100.1:4000"), 4);
    w.send(w.s1, addr("198.51.100.1:4000"), 5, S1_OTHER_PORT.port); // same IP, other port: still filtered
    w.net.runFor(100);
    expect(w.client.received.map((d) => [d.bytes[0], formatAddr(d.from)])).toEqual([[4, "192.0.2.1:3478"]]);
    expect(w.net.stats.dropped["nat-filtered"]).toBe(2);
  });

  it("address-dependent filtering lets in any port of an IP sent to; endpoint-independent lets in anyone", () => {
    const restricted = world(restrictedCone);
    restricted.send(restricted.client, S1, 0);
    restricted.net.runFor(100);
    restricted.send(restricted.s1, addr("198.51.100.1:4000"), 1, S1_OTHER_PORT.port);
    restricted.send(restricted.s2, addr("198.51.100.1:4000"), 2);
    restricted.net.runFor(100);
    expect(restricted.client.received.map((d) => d.bytes[0])).toEqual([1]);

    const cone = world(fullCone);
    cone.send(cone.client, S1, 0);
    cone.net.runFor(100);
    cone.send(cone.s2, addr("198.51.100.1:4000"), 2);
    cone.net.runFor(100);
    expect(cone.client.received.map((d) => d.bytes[0])).toEqual([2]);
  });

  it("symmetric: a reply from the destination gets in, the same server's other port does not", () => {
    const w = world(symmetric);
    w.send(w.client, S1, 0);
    w.net.runFor(100);
    const mapped = w.s1.received[0]!.from;
    w.send(w.s1, mapped, 1);
    w.send(w.s1, mapped, 2, S1_OTHER_PORT.port);
    w.send(w.s2, mapped, 3);
    w.net.runFor(100);
    expect(w.client.received.map((d) => d.bytes[0])).toEqual([1]);
  });
});

describe("mapping timeout", () => {
  it("an idle mapping expires after the timeout; outbound traffic keeps it alive", () => {
    const w = world({ ...portRestricted, mappingTimeout: 30_000 });
    w.send(w.client, S1, 0);
    w.net.runFor(100);
    // Kept alive: outbound every 20 s, and s1 reaches the client at 59 s.
    for (const t of [20_000, 40_000]) w.net.at(t, () => w.client.send(S1, bytes(9)));
    w.net.at(59_000, () => w.s1.send(addr("198.51.100.1:4000"), bytes(1)));
    w.net.run(60_000);
    expect(w.client.received.map((d) => d.bytes[0])).toEqual([1]);
    // Inbound alone does not refresh it (inboundRefresh is off): gone 30 s after the last outbound (at 40,021).
    w.net.at(70_021, () => w.s1.send(addr("198.51.100.1:4000"), bytes(2)));
    w.net.run(70_100);
    expect(w.client.received.map((d) => d.bytes[0])).toEqual([1]);
    expect(w.net.stats.dropped["nat-no-mapping"]).toBe(1);
    expect(w.nat.box.mappings(w.net.now)).toEqual([]);
    expect(w.nat.box.stats.expired).toBe(1);
  });

  it("the boundary: alive 1 ms before the timeout, gone at it", () => {
    const w = world({ ...fullCone, mappingTimeout: 10_000 });
    w.send(w.client, S1, 0); // reaches the NAT at 1 ms: the mapping lives until 10,001
    w.net.at(10_000 - 20, () => w.s1.send(addr("198.51.100.1:4000"), bytes(1))); // arrives at 10,000
    w.net.at(10_001 - 20, () => w.s1.send(addr("198.51.100.1:4000"), bytes(2))); // arrives at 10,001
    w.net.run(20_000);
    expect(w.client.received.map((d) => [d.at, d.bytes[0]])).toEqual([[10_001, 1]]);
  });

  it("with inboundRefresh, inbound traffic keeps it too", () => {
    const w = world({ ...fullCone, mappingTimeout: 10_000, inboundRefresh: true });
    w.send(w.client, S1, 0);
    for (let t = 5000; t <= 60_000; t += 5000) w.net.at(t, () => w.s2.send(addr("198.51.100.1:4000"), bytes(t / 5000)));
    w.net.run(61_000);
    expect(w.client.received.length).toBe(12);
  });

  it("a symmetric NAT maps anew after expiry, on another port", () => {
    const r = rng("remap");
    const w = world({ ...symmetric, mappingTimeout: 5000 }, r.u32());
    w.send(w.client, S1, 0);
    w.net.at(10_000, () => w.client.send(S1, bytes(1)));
    w.net.run(11_000);
    const [first, second] = w.s1.received.map((d) => d.from.port);
    expect(second, r.where()).not.toBe(first);
  });
});

describe("hairpinning and nesting", () => {
  function hairpin(on: boolean) {
    const net = new Network({ seed: 11 });
    const nat = net.addNat("nat", "198.51.100.1", { ...portRestricted, hairpinning: on });
    const [a, b] = [new RecordingEndpoint(), new RecordingEndpoint()];
    net.addHost("a", "192.168.1.2", nat.inside).bind(a, 5000);
    net.addHost("b", "192.168.1.3", nat.inside).bind(b, 6000);
    // b opens its mapping (198.51.100.1:6000) toward a's public address, as ICE would.
    net.act(() => b.send(addr("198.51.100.1:5000"), bytes(0)));
    net.runFor(100);
    net.act(() => a.send(addr("198.51.100.1:6000"), bytes(1)));
    net.runFor(100);
    return { net, b };
  }

  it("off by default: a datagram to the NAT's own public address is dropped", () => {
    const { net, b } = hairpin(false);
    expect(b.received).toEqual([]);
    expect(net.stats.dropped.hairpin).toBe(2);
  });

  it("on: it comes back in, from the sender's external address (RFC 4787 REQ-9)", () => {
    const { b } = hairpin(true);
    expect(b.received.map((d) => [d.bytes[0], formatAddr(d.from)])).toEqual([[1, "198.51.100.1:5000"]]);
  });

  it("a LAN behind a NAT behind a carrier NAT reaches the internet from the carrier's address", () => {
    const net = new Network({ seed: 12 });
    const carrier = net.addNat("cgnat", "198.51.100.200", symmetric);
    const home = net.addNat("home", "100.64.0.7", portRestricted, { outside: carrier.inside });
    const phone = new RecordingEndpoint();
    net.addHost("phone", "192.168.0.5", home.inside).bind(phone, 7000);
    const server = new RecordingEndpoint();
    server.reply = (d) => new Uint8Array([d.bytes[0]! + 1]);
    net.addHost("server", "192.0.2.1").bind(server, 443);
    net.act(() => phone.send(addr("192.0.2.1:443"), bytes(1)));
    net.runFor(200);
    expect(server.received[0]!.from.address).toBe("198.51.100.200");
    expect(phone.received.map((d) => [d.bytes[0], formatAddr(d.from), d.at])).toEqual([[2, "192.0.2.1:443", 2 * (1 + 1 + 20)]]);
  });
});

describe("property: the table against a plain model", () => {
  it("mapping reuse and filtering agree with RFC 4787's definitions over random traffic", () => {
    const r = rng("nat property");
    const kinds: [string, NatBehaviour][] = [["fullCone", fullCone], ["restrictedCone", restrictedCone], ["portRestricted", portRestricted], ["symmetric", symmetric]];
    for (const [name, behaviour] of kinds) {
      const box = new NatBox("198.51.100.1", { ...behaviour, mappingTimeout: 1000 }, new Rng(`property ${name}`, r.u32()));
      const internals = [addr("10.0.0.1:1000"), addr("10.0.0.1:1001"), addr("10.0.0.2:1000")];
      const remotes = [addr("192.0.2.1:1"), addr("192.0.2.1:2"), addr("192.0.2.2:1")];
      // Model: what each (internal, remote) was last mapped to and when; what each external port let in.
      const last = new Map<string, { port: number; at: number }>();
      let now = 0;
      const outcomes = { in: 0, out: 0 };
      for (let step = 0; step < 3000; step++) {
        now += r.int(0, 400);
        const internal = r.pick(internals);
        const remote = r.pick(remotes);
        if (r.bool(0.6)) {
          const out = box.outbound(now, internal, remote);
          expect(out.ok).toBe(true);
          if (!out.ok) continue;
          const live = [...last.entries()].filter(([, v]) => now < v.at + 1000);
          for (const [key, v] of live) {
            const [i, rem] = key.split(">") as [string, string];
            const sameInternal = i === formatAddr(internal);
            const remoteAddr = addr(rem);
            const sameMappingKey =
              behaviour.mapping === "endpoint-independent" ||
              (behaviour.mapping === "address-dependent" ? remoteAddr.address === remote.address : rem === formatAddr(remote));
            // A live mapping for the same key is reused; another internal never shares a port.
            if (sameInternal && sameMappingKey) expect(out.external.port, r.where(`${name} step ${step}`)).toBe(v.port);
            if (!sameInternal) expect(out.external.port, r.where(`${name} step ${step}`)).not.toBe(v.port);
          }
          const key = `${formatAddr(internal)}>${formatAddr(remote)}`;
          // Every live key sharing the mapping was refreshed with it (an expired one stays expired:
          // a new mapping on the same port starts with nobody let in).
          for (const [k, v] of last) if (v.port === out.external.port && k.startsWith(`${formatAddr(internal)}>`) && now < v.at + 1000) v.at = now;
          last.set(key, { port: out.external.port, at: now });
        } else {
          const port = r.pick([...new Set([...last.values()].map((v) => v.port)), 1000, 1001]);
          const result = box.inbound(now, port, remote);
          const mappedFrom = [...last.entries()].filter(([, v]) => v.port === port && now < v.at + 1000);
          const expected =
            mappedFrom.length > 0 &&
            (behaviour.filtering === "endpoint-independent" ||
              mappedFrom.some(([k]) => {
                const sent = addr(k.split(">")[1]!);
                return behaviour.filtering === "address-dependent" ? sent.address === remote.address : formatAddr(sent) === formatAddr(remote);
              }));
          expect(result.ok, r.where(`${name} step ${step} inbound ${port} from ${formatAddr(remote)}`)).toBe(expected);
          outcomes[result.ok ? "in" : "out"]++;
        }
      }
      // The run went through every case: mappings expired, inbound let in and kept out.
      expect(box.stats.expired, r.where(name)).toBeGreaterThan(10);
      expect(outcomes.in, r.where(name)).toBeGreaterThan(10);
      expect(outcomes.out, r.where(name)).toBeGreaterThan(10);
    }
  });
});
