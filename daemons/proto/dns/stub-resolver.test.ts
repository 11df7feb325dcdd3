// The stub resolver in virtual time, spoken to in real DNS bytes: local answers for resource names
// (exact and wildcard, precedence among overlapping patterns, stable proxy IPs, case), PTR both ways,
// forwarding with the ID rewritten and the answer matched, spoofed answers ignored, the timeout →
// next upstream → SERVFAIL timeline, the in-flight bound, malformed queries, and fuzzed datagrams.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import type { ClientResource } from "../portal/schema.js";
import { decodeDnsMessage, encodeDnsMessage, queryMessage, responseMessage, type DnsMessage, type DnsQuestion } from "./codec.js";
import {
  CLASS_IN, DNS_PORT, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA,
  TYPE_MX, TYPE_OPT, TYPE_PTR, UDP_MESSAGE_MAX, UPSTREAM_TIMEOUT_MS,
} from "./constants.js";
import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";
import { reverseNameOf } from "./reverse-name.js";
import { StubResolver, type DnsEndpoint, type DnsTransmit, type StubResolverEvent, type StubResolverOptions } from "./stub-resolver.js";

beforeEach(reportSeedOnFailure);

const ASKER: DnsEndpoint = { address: "100.64.0.2", port: 40_000 };
const SENTINEL = "100.100.111.1";
const SENTINEL_2 = "100.100.111.2";
const SENTINEL_V6 = "fd00:2021:1111:8000:100:100:111:1";
const UPSTREAMS = ["192.0.2.53", "2001:db8::53"];

function dnsResource(id: string, address: string): ClientResource {
  return { id, type: "dns", name: id, address, address_description: null, sites: [], filters: [] };
}

function setup(label: string, options: Partial<StubResolverOptions> = {}) {
  const r = rng(label);
  const resolver = new StubResolver({ random: (n) => r.bytes(n), ...options });
  resolver.setUpstreams(UPSTREAMS);
  const drain = () => {
    const transmits: DnsTransmit[] = [];
    const events: StubResolverEvent[] = [];
    for (let t = resolver.pollTransmit(); t !== undefined; t = resolver.pollTransmit()) transmits.push(t);
    for (let e = resolver.pollEvent(); e !== undefined; e = resolver.pollEvent()) events.push(e);
    return { transmits, events };
  };
  let nextId = 0x1000;
  /** Sends a query and drains; the query's ID is returned with the outputs. */
  const ask = (now: number, name: string, type: number, more: { to?: string; edns?: boolean; id?: number } = {}) => {
    const id = more.id ?? nextId++;
    const query = queryMessage(id, { name, type, class: CLASS_IN });
    if (more.edns === true) query.additionals.push({ name: ".", type: TYPE_OPT, class: 1232, ttl: 0, data: { kind: "opaque", bytes: new Uint8Array(0) } });
    resolver.handleQuery(now, ASKER, more.to ?? SENTINEL, encodeDnsMessage(query));
    return { id, query, ...drain() };
  };
  return { r, resolver, drain, ask };
}

function decoded(t: DnsTransmit): DnsMessage {
  const result = decodeDnsMessage(t.bytes);
  if (!result.ok) throw new Error(`undecodable transmit: ${result.error}`);
  return result.message;
}

/** The one transmit, an answer from `sentinel` to the asker; decoded. */
function answerOf(out: { transmits: DnsTransmit[] }, sentinel = SENTINEL): DnsMessage {
  expect(out.transmits).toHaveLength(1);
  const t = out.transmits[0]!;
  expect(t.from).toEqual({ address: sentinel, port: DNS_PORT });
  expect(t.to).toEqual(ASKER);
  return decoded(t);
}

function addresses(m: DnsMessage): string[] {
  return m.answers.map((a) => (a.data.kind === "a" || a.data.kind === "aaaa" ? a.data.address : "?"));
}

/** An upstream's answer to the forwarded query `bytes`, with one A record. */
function upstreamAnswer(bytes: Uint8Array, change: Partial<DnsQuestion> = {}, id?: number): Uint8Array {
  const q = decoded({ to: ASKER, bytes });
  const question = { ...q.questions[0]!, ...change };
  return encodeDnsMessage(
    responseMessage({ ...q, id: id ?? q.id, questions: [question] }, {
      rcode: RCODE_NOERROR,
      answers: [{ name: question.name, type: TYPE_A, class: CLASS_IN, ttl: 300, data: { kind: "a", address: "93.184.216.34" } }],
    }),
  );
}

describe("names of DNS resources", () => {
  it("answers A and AAAA with four proxy IPs each, TTL 1, and announces the name once", () => {
    const { resolver, ask } = setup("dns exact");
    resolver.setResources([dnsResource("r-app", "app.example.com"), { ...dnsResource("r-ip", "10.0.0.1"), type: "ip" }]);
    const a = ask(0, "app.example.com", TYPE_A);
    const m = answerOf(a);
    expect(m).toMatchObject({ id: a.id, qr: true, aa: true, rd: true, ra: true, rcode: RCODE_NOERROR, questions: a.query.questions });
    expect(addresses(m)).toEqual(["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4"]);
    expect(m.answers.every((rr) => rr.ttl === 1 && rr.type === TYPE_A && rr.name === "app.example.com")).toBe(true);
    const ipv6 = ["fd00:2021:1111:8000::1", "fd00:2021:1111:8000::2", "fd00:2021:1111:8000::3", "fd00:2021:1111:8000::4"];
    expect(a.events).toEqual([{ type: "resource_resolved", resourceId: "r-app", name: "app.example.com", ipv4: addresses(m), ipv6 }]);

    const aaaa = ask(5, "app.example.com", TYPE_AAAA);
    expect(addresses(answerOf(aaaa))).toEqual(ipv6);
    expect(aaaa.events).toEqual([]);
    expect(resolver.pollTimeout()).toBeUndefined();
  });

  it("gives every name under a wildcard its own IPs, in order, and answers other types with no data", () => {
    const { resolver, ask } = setup("dns wildcard");
    resolver.setResources([dnsResource("r-star", "*.example.com")]);
    expect(addresses(answerOf(ask(0, "a.example.com", TYPE_AAAA)))[0]).toBe("fd00:2021:1111:8000::1");
    expect(addresses(answerOf(ask(0, "b.example.com", TYPE_A)))).toEqual(["100.96.0.5", "100.96.0.6", "100.96.0.7", "100.96.0.8"]);
    const apex = ask(0, "example.com", TYPE_A);
    expect(addresses(answerOf(apex))[0]).toBe("100.96.0.9");
    expect(apex.events).toMatchObject([{ resourceId: "r-star", name: "example.com" }]);
    const mx = ask(0, "a.example.com", TYPE_MX);
    expect(answerOf(mx)).toMatchObject({ rcode: RCODE_NOERROR, answers: [] });
    expect(mx.events).toEqual([]);
    // Two labels down is no match for `*`: it goes upstream.
    expect(ask(0, "x.a.example.com", TYPE_A).transmits[0]!.to).toEqual({ address: UPSTREAMS[0], port: DNS_PORT });
  });

  it("resolves overlapping patterns by precedence: exact > ? > * > **", () => {
    const { resolver, ask } = setup("dns precedence");
    resolver.setResources([
      dnsResource("r-dstar", "**.example.com"),
      dnsResource("r-star", "*.example.com"),
      dnsResource("r-q", "ap?.example.com"),
      dnsResource("r-exact", "app.example.com"),
    ]);
    const owner = (name: string) => ask(0, name, TYPE_A).events.map((e) => e.resourceId);
    expect(owner("app.example.com")).toEqual(["r-exact"]);
    expect(owner("apx.example.com")).toEqual(["r-q"]);
    expect(owner("web.example.com")).toEqual(["r-star"]);
    expect(owner("example.com")).toEqual(["r-star"]);
    expect(owner("a.b.example.com")).toEqual(["r-dstar"]);
  });

  it("ignores case, echoes the asked case, and keys IPs and events by the lowercase name", () => {
    const { resolver, ask } = setup("dns case");
    resolver.setResources([dnsResource("r-app", "App.Example.com")]);
    const upper = ask(0, "APP.EXAMPLE.COM", TYPE_A);
    const m = answerOf(upper);
    expect(m.questions[0]!.name).toBe("APP.EXAMPLE.COM");
    expect(m.answers[0]!.name).toBe("APP.EXAMPLE.COM");
    expect(upper.events).toMatchObject([{ name: "app.example.com" }]);
    const lower = ask(0, "app.example.com.", TYPE_A);
    expect(addresses(answerOf(lower))).toEqual(addresses(m));
    expect(lower.events).toEqual([]);
  });

  it("keeps a name's IPs when its resource goes away and comes back, and announces it again", () => {
    const { resolver, ask } = setup("dns stability");
    const resource = dnsResource("r-app", "app.example.com");
    resolver.setResources([resource]);
    const first = addresses(answerOf(ask(0, "app.example.com", TYPE_A)));
    resolver.setResources([dnsResource("r-other", "other.example.com")]);
    // Gone: the name is an ordinary one now, asked upstream.
    expect(ask(1, "app.example.com", TYPE_A).transmits[0]!.to.address).toBe(UPSTREAMS[0]);
    expect(addresses(answerOf(ask(2, "other.example.com", TYPE_A)))).toEqual(["100.96.0.5", "100.96.0.6", "100.96.0.7", "100.96.0.8"]);
    resolver.setResources([resource]);
    const again = ask(3, "app.example.com", TYPE_A);
    expect(addresses(answerOf(again))).toEqual(first);
    expect(again.events).toMatchObject([{ resourceId: "r-app", name: "app.example.com", ipv4: first }]);
  });

  it("answers a query with EDNS with an OPT record", () => {
    const { resolver, ask } = setup("dns edns");
    resolver.setResources([dnsResource("r-app", "app.example.com")]);
    expect(answerOf(ask(0, "app.example.com", TYPE_A, { edns: true })).additionals).toMatchObject([{ name: ".", type: TYPE_OPT }]);
    expect(answerOf(ask(0, "app.example.com", TYPE_A)).additionals).toEqual([]);
  });

  it("answers on the IPv6 sentinel from that sentinel", () => {
    const { resolver, ask } = setup("dns v6 sentinel");
    resolver.setResources([dnsResource("r-app", "app.example.com")]);
    expect(answerOf(ask(0, "app.example.com", TYPE_A, { to: SENTINEL_V6 }), SENTINEL_V6).answers).toHaveLength(4);
  });
});

describe("PTR", () => {
  const ptrName = (address: string) => reverseNameOf((parseIpv4(address) ?? parseIpv6(address))!).join(".");

  it("maps every proxy IP of a name back to it, an unallocated one to NXDOMAIN, others upstream", () => {
    const { resolver, ask } = setup("dns ptr");
    resolver.setResources([dnsResource("r-star", "*.example.com")]);
    const { events } = ask(0, "db.example.com", TYPE_A);
    const { ipv4, ipv6 } = events[0]!;
    for (const address of [...ipv4, ...ipv6]) {
      const m = answerOf(ask(1, ptrName(address), TYPE_PTR));
      expect(m.rcode).toBe(RCODE_NOERROR);
      expect(m.answers).toEqual([{ name: ptrName(address), type: TYPE_PTR, class: CLASS_IN, ttl: 1, data: { kind: "ptr", name: "db.example.com" } }]);
    }
    expect(answerOf(ask(2, ptrName("100.96.200.1"), TYPE_PTR))).toMatchObject({ rcode: RCODE_NXDOMAIN, answers: [] });
    expect(answerOf(ask(2, ptrName("fd00:2021:1111:8000::99"), TYPE_PTR))).toMatchObject({ rcode: RCODE_NXDOMAIN });
    expect(ask(3, ptrName("192.0.2.1"), TYPE_PTR).transmits[0]!.to.address).toBe(UPSTREAMS[0]);
  });
});

describe("forwarding", () => {
  it("sends the query to the sentinel's upstream with a fresh ID and relays the answer with the asker's", () => {
    const { resolver, ask, drain } = setup("dns forward");
    const out = ask(0, "www.example.org", TYPE_A, { edns: true, id: 0x4242 });
    expect(out.transmits).toHaveLength(1);
    const sent = out.transmits[0]!;
    expect(sent).toMatchObject({ to: { address: UPSTREAMS[0], port: DNS_PORT } });
    expect(sent.from).toBeUndefined();
    // Everything but the ID is the asker's query.
    const original = encodeDnsMessage(out.query);
    expect(Array.from(sent.bytes.subarray(2))).toEqual(Array.from(original.subarray(2)));
    expect(resolver.inFlight).toBe(1);
    expect(resolver.pollTimeout()).toBe(UPSTREAM_TIMEOUT_MS);

    const answer = upstreamAnswer(sent.bytes);
    resolver.handleUpstreamResponse(30, answer, { address: UPSTREAMS[0]!, port: DNS_PORT });
    const relayed = drain().transmits;
    expect(relayed).toHaveLength(1);
    expect(relayed[0]!).toMatchObject({ from: { address: SENTINEL, port: DNS_PORT }, to: ASKER });
    expect(decoded(relayed[0]!).id).toBe(0x4242);
    expect(Array.from(relayed[0]!.bytes.subarray(2))).toEqual(Array.from(answer.subarray(2)));
    expect(resolver.inFlight).toBe(0);
    expect(resolver.pollTimeout()).toBeUndefined();

    // The second sentinel stands for the second upstream.
    expect(ask(40, "www.example.org", TYPE_A, { to: SENTINEL_2 }).transmits[0]!.to).toEqual({ address: UPSTREAMS[1], port: DNS_PORT });
  });

  it("ignores answers with an unknown ID, another question or from elsewhere, and still takes the real one", () => {
    const { resolver, ask, drain } = setup("dns spoof");
    const sent = ask(0, "bank.example.org", TYPE_A, { id: 7 }).transmits[0]!;
    const id = decoded(sent).id;
    const from = { address: UPSTREAMS[0]!, port: DNS_PORT };
    resolver.handleUpstreamResponse(1, upstreamAnswer(sent.bytes, {}, (id + 1) & 0xffff), from);
    resolver.handleUpstreamResponse(2, upstreamAnswer(sent.bytes, { name: "evil.example.org" }), from);
    resolver.handleUpstreamResponse(3, upstreamAnswer(sent.bytes, { type: TYPE_AAAA }), from);
    resolver.handleUpstreamResponse(4, upstreamAnswer(sent.bytes), { address: "203.0.113.66", port: DNS_PORT });
    resolver.handleUpstreamResponse(5, upstreamAnswer(sent.bytes), { address: UPSTREAMS[0]!, port: 5353 });
    resolver.handleUpstreamResponse(6, sent.bytes, from); // a query, not an answer
    resolver.handleUpstreamResponse(7, Uint8Array.of(1, 2, 3), from);
    expect(drain().transmits).toEqual([]);
    expect(resolver.dropped).toMatchObject({ upstreamUnmatched: 1, upstreamSpoofed: 4, upstreamMalformed: 2 });
    // The question's case does not matter; the real answer goes through once.
    resolver.handleUpstreamResponse(8, upstreamAnswer(sent.bytes, { name: "BANK.example.org" }), from);
    expect(drain().transmits.map((t) => decoded(t).id)).toEqual([7]);
    resolver.handleUpstreamResponse(9, upstreamAnswer(sent.bytes), from);
    expect(drain().transmits).toEqual([]);
    expect(resolver.dropped.upstreamUnmatched).toBe(2);
  });

  it("asks the next upstream after a timeout, then answers SERVFAIL; a late answer from the first still counts", () => {
    const { resolver, ask, drain } = setup("dns timeout");
    const out = ask(0, "slow.example.org", TYPE_A, { id: 99 });
    const first = out.transmits[0]!;
    resolver.handleTimeout(UPSTREAM_TIMEOUT_MS - 1);
    expect(drain().transmits).toEqual([]);
    resolver.handleTimeout(UPSTREAM_TIMEOUT_MS);
    const retry = drain().transmits;
    expect(retry).toEqual([{ to: { address: UPSTREAMS[1], port: DNS_PORT }, bytes: first.bytes }]);
    expect(resolver.pollTimeout()).toBe(2 * UPSTREAM_TIMEOUT_MS);
    resolver.handleTimeout(2 * UPSTREAM_TIMEOUT_MS);
    const fail = answerOf(drain());
    expect(fail).toMatchObject({ id: 99, qr: true, rd: true, ra: true, rcode: RCODE_SERVFAIL, questions: out.query.questions, answers: [] });
    expect(resolver.inFlight).toBe(0);
    expect(resolver.pollTimeout()).toBeUndefined();

    // Again, but the first upstream answers late, after the second was asked.
    const again = ask(10_000, "slow.example.org", TYPE_A, { id: 100 }).transmits[0]!;
    resolver.handleTimeout(10_000 + UPSTREAM_TIMEOUT_MS);
    drain();
    resolver.handleUpstreamResponse(10_000 + UPSTREAM_TIMEOUT_MS + 50, upstreamAnswer(again.bytes), { address: UPSTREAMS[0]!, port: DNS_PORT });
    expect(answerOf(drain())).toMatchObject({ id: 100, rcode: RCODE_NOERROR, answers: [{ name: "slow.example.org" }] });
  });

  it("with one upstream, asks it twice before SERVFAIL; with none, answers SERVFAIL at once", () => {
    const { resolver, ask, drain } = setup("dns one upstream");
    resolver.setUpstreams(["192.0.2.53"]);
    ask(0, "x.example.org", TYPE_A);
    resolver.handleTimeout(UPSTREAM_TIMEOUT_MS);
    expect(drain().transmits.map((t) => t.to.address)).toEqual(["192.0.2.53"]);
    resolver.handleTimeout(2 * UPSTREAM_TIMEOUT_MS);
    expect(answerOf(drain()).rcode).toBe(RCODE_SERVFAIL);
    resolver.setUpstreams([]);
    expect(answerOf(ask(0, "x.example.org", TYPE_A)).rcode).toBe(RCODE_SERVFAIL);
  });

  it("refuses queries beyond the in-flight bound, and forwards again once one is answered", () => {
    const { resolver, ask, drain } = setup("dns in flight", { maxForwarded: 3 });
    const sent = [0, 1, 2].map((i) => ask(0, `n${i}.example.org`, TYPE_A).transmits[0]!);
    expect(new Set(sent.map((t) => decoded(t).id)).size).toBe(3);
    const refused = ask(0, "n3.example.org", TYPE_A, { id: 3 });
    expect(answerOf(refused)).toMatchObject({ id: 3, rcode: RCODE_REFUSED });
    resolver.handleUpstreamResponse(5, upstreamAnswer(sent[1]!.bytes), { address: UPSTREAMS[0]!, port: DNS_PORT });
    expect(drain().transmits).toHaveLength(1);
    expect(ask(6, "n4.example.org", TYPE_A).transmits[0]!.to.address).toBe(UPSTREAMS[0]);
    expect(resolver.inFlight).toBe(3);
  });

  it("draws another ID when the random one is in flight", () => {
    const ids = [[0, 1], [0, 1], [0, 2]];
    const { ask } = setup("dns id collision", { random: () => Uint8Array.from(ids.shift() ?? [0, 3]) });
    expect(decoded(ask(0, "a.example.org", TYPE_A).transmits[0]!).id).toBe(1);
    expect(decoded(ask(0, "b.example.org", TYPE_A).transmits[0]!).id).toBe(2);
  });
});

describe("malformed and unexpected queries", () => {
  it("FORMERR when the header is readable, drops otherwise, and never answers a response", () => {
    const { resolver, drain } = setup("dns malformed");
    // A header with QDCOUNT 1 and a question cut short.
    resolver.handleQuery(0, ASKER, SENTINEL, Uint8Array.of(0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0x61));
    expect(answerOf(drain())).toMatchObject({ id: 0xabcd, qr: true, rd: true, rcode: RCODE_FORMERR, questions: [] });
    resolver.handleQuery(0, ASKER, SENTINEL, Uint8Array.of(1, 2, 3));
    const response = encodeDnsMessage(responseMessage(queryMessage(1, { name: "a.example", type: TYPE_A, class: CLASS_IN }), { rcode: 0 }));
    resolver.handleQuery(0, ASKER, SENTINEL, response);
    resolver.handleQuery(0, ASKER, SENTINEL, Uint8Array.of(0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0));
    resolver.handleQuery(0, ASKER, "192.0.2.1", encodeDnsMessage(queryMessage(2, { name: "a.example", type: TYPE_A, class: CLASS_IN })));
    expect(drain().transmits).toEqual([]);
    expect(resolver.dropped).toMatchObject({ malformed: 1, notQuery: 2, notSentinel: 1 });
  });

  it("NOTIMP for another opcode, FORMERR for other than one question", () => {
    const { resolver, drain } = setup("dns opcode");
    const q = queryMessage(5, { name: "a.example", type: TYPE_A, class: CLASS_IN });
    resolver.handleQuery(0, ASKER, SENTINEL, encodeDnsMessage({ ...q, opcode: 2 }));
    expect(answerOf(drain())).toMatchObject({ id: 5, opcode: 2, rcode: RCODE_NOTIMP });
    resolver.handleQuery(0, ASKER, SENTINEL, encodeDnsMessage({ ...q, questions: [] }));
    expect(answerOf(drain())).toMatchObject({ id: 5, rcode: RCODE_FORMERR });
    resolver.handleQuery(0, ASKER, SENTINEL, encodeDnsMessage({ ...q, questions: [q.questions[0]!, q.questions[0]!] }));
    expect(answerOf(drain())).toMatchObject({ id: 5, rcode: RCODE_FORMERR });
  });

  it("fuzz: random and mutated datagrams, both ways, never throw", () => {
    const { r, resolver, drain } = setup("dns resolver fuzz");
    resolver.setResources([dnsResource("r-star", "*.example.com"), dnsResource("r-dstar", "**.corp")]);
    const names = ["a.example.com", "example.com", "x.y.corp", "other.org", "1.0.96.100.in-addr.arpa"];
    let now = 0;
    const forwarded: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) {
      now += r.int(0, 500);
      let bytes = encodeDnsMessage(queryMessage(r.int(0, 0xffff), { name: r.pick(names), type: r.pick([TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_MX]), class: CLASS_IN }));
      if (r.bool(0.5)) for (let k = r.int(1, 3); k > 0; k--) bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
      if (r.bool(0.2)) bytes = bytes.slice(0, r.int(0, bytes.length));
      if (r.bool(0.1)) bytes = r.bytes(r.int(0, 40));
      expect(() => resolver.handleQuery(now, ASKER, r.pick([SENTINEL, SENTINEL_2, SENTINEL_V6, "10.0.0.1"]), bytes), r.where(`query ${i}`)).not.toThrow();
      if (forwarded.length > 0 && r.bool(0.5)) {
        let answer = upstreamAnswer(forwarded.splice(r.int(0, forwarded.length - 1), 1)[0]!);
        if (r.bool(0.5)) answer = answer.slice(0, r.int(0, answer.length));
        expect(() => resolver.handleUpstreamResponse(now, answer, { address: r.pick(UPSTREAMS), port: DNS_PORT }), r.where(`answer ${i}`)).not.toThrow();
      }
      expect(() => resolver.handleTimeout(now), r.where(`timeout ${i}`)).not.toThrow();
      for (const t of drain().transmits) {
        if (t.from === undefined) {
          forwarded.push(t.bytes);
        } else {
          expect(decodeDnsMessage(t.bytes).ok, r.where(`answer to the asker ${i}`)).toBe(true);
          expect(t.bytes.length).toBeLessThanOrEqual(UDP_MESSAGE_MAX);
        }
      }
    }
  });
});
