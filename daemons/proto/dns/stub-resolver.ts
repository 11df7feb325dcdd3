// The client's DNS stub resolver, answering on the sentinel addresses (address-plan.ts): names of
// DNS resources resolve to proxy IPs the client routes into its tunnels; every other question goes
// to the upstream resolvers the portal configured, and their answers come back unchanged.
//
// Driving contract: call one input method (setResources, setUpstreams, handleQuery,
// handleUpstreamResponse, handleTimeout) with the current monotonic time in ms where it takes one,
// then drain pollTransmit() and pollEvent() until they return undefined, then arm a timer for
// pollTimeout(). Nothing here reads a clock or a random source: upstream query IDs come from the
// `random` option.
//
// The pipeline, in the order of this file:
// 1. Commands: setResources keeps the DNS resources' patterns (patterns.ts); setUpstreams the
//    upstream servers, upstream i standing behind sentinel i.
// 2. Queries in (handleQuery), to a sentinel only: a datagram that is no message is answered
//    FORMERR when its header was readable, else dropped and counted; responses are dropped; an
//    opcode other than QUERY gets NOTIMP, a question count other than one FORMERR.
// 3. Local answers: PTR for a proxy IP → the name it stands for, NXDOMAIN when it stands for none.
//    A name matching a DNS resource (the most specific wins): A and AAAA get the name's four proxy
//    IPs of that family, TTL RESOURCE_TTL_SECONDS; any other type NOERROR with no data. A name gets
//    its IPs of both families on its first A or AAAA question and keeps them for the life of the
//    resolver; the first answer for a (resource, name) pair raises resource_resolved, again after
//    the resource went away and came back.
// 4. Forwarding: everything else goes to the sentinel's upstream with a fresh ID, at most
//    FORWARDED_QUERIES_MAX at once (REFUSED beyond). No upstream: SERVFAIL.
// 5. Upstream answers in (handleUpstreamResponse): matched by ID, question and (when given) the
//    upstream it came from, then relayed to the asker with the asker's ID. Anything else is dropped
//    and counted, so a spoofed answer has to guess a random ID and the question.
// 6. Timers (handleTimeout): an upstream silent for UPSTREAM_TIMEOUT_MS hands the query to the next
//    upstream, once; after UPSTREAM_ATTEMPTS the asker gets SERVFAIL.
//
// Local answers carry an OPT record when the query did (RFC 6891 §7). Nothing here speaks TCP: an
// upstream's truncated answer reaches the asker as it is.

import type { ClientResource } from "../portal/schema.js";
import { canonicalIp, isProxyIp, ProxyIpPool, sentinelIndex } from "./address-plan.js";
import { decodeDnsMessage, encodeDnsMessage, responseMessage, type DnsMessage, type DnsQuestion, type DnsRecord } from "./codec.js";
import {
  CLASS_IN, DNS_PORT, EDNS_UDP_PAYLOAD_SIZE, FORWARDED_QUERIES_MAX, HEADER_OFFSET_ID, OPCODE_QUERY, PROXY_IPS_PER_NAME,
  QUERY_ID_DRAWS_MAX, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL,
  RESOURCE_TTL_SECONDS, TYPE_A, TYPE_AAAA, TYPE_OPT, TYPE_PTR, UPSTREAM_ATTEMPTS, UPSTREAM_TIMEOUT_MS,
} from "./constants.js";
import { nameKey, parseName } from "./name.js";
import { bestMatch, compilePattern, type DnsPattern } from "./patterns.js";
import { addressOfReverseName } from "./reverse-name.js";

/** An IP address and UDP port. */
export interface DnsEndpoint {
  address: string;
  port: number;
}

/**
 * A datagram to send. Answers to an asker carry `from`, the sentinel it asked, as their source;
 * queries to an upstream have none (any local socket will do).
 */
export interface DnsTransmit {
  from?: DnsEndpoint;
  to: DnsEndpoint;
  bytes: Uint8Array;
}

export type StubResolverEvent =
  /** A name was answered for a resource for the first time: the client asks for access and tells the gateway the mapping. */
  { type: "resource_resolved"; resourceId: string; name: string; ipv4: string[]; ipv6: string[] };

/** Why a datagram was dropped, one counter each. */
export interface StubResolverDrops {
  /** A query to an address that is no sentinel. */
  notSentinel: number;
  /** A query that was no message, not even a header. */
  malformed: number;
  /** A response (QR set) sent as a query. */
  notQuery: number;
  /** An upstream datagram that was no message, or a query. */
  upstreamMalformed: number;
  /** An upstream answer whose ID no query in flight has. */
  upstreamUnmatched: number;
  /** An upstream answer with an ID in flight but another question or source. */
  upstreamSpoofed: number;
}

export interface StubResolverOptions {
  /** Randomness, from the driver: upstream query IDs. */
  random: (length: number) => Uint8Array;
  /** UPSTREAM_TIMEOUT_MS unless told. */
  upstreamTimeout?: number;
  /** FORWARDED_QUERIES_MAX unless told. */
  maxForwarded?: number;
}

interface DnsResource {
  id: string;
  pattern: DnsPattern;
}

interface ProxyIps {
  ipv4: string[];
  ipv6: string[];
}

interface Forwarded {
  /** The ID the upstreams see. */
  id: number;
  query: DnsMessage;
  asker: DnsEndpoint;
  sentinel: string;
  /** The query as forwarded, with our ID. */
  bytes: Uint8Array;
  /** Index into the upstream list of the last upstream asked. */
  upstream: number;
  /** Upstream addresses asked so far; an answer from any of them counts. */
  asked: Set<string>;
  /** Times the query was sent. */
  attempts: number;
  deadline: number;
}

const sameQuestion = (a: DnsQuestion, b: DnsQuestion): boolean =>
  a.type === b.type && a.class === b.class && nameKey(parseName(a.name) ?? []) === nameKey(parseName(b.name) ?? []);

function withId(bytes: Uint8Array, id: number): Uint8Array {
  const out = bytes.slice();
  out[HEADER_OFFSET_ID] = id >>> 8;
  out[HEADER_OFFSET_ID + 1] = id & 0xff;
  return out;
}

/** The client's resolver on the sentinel addresses; see the driving contract above. */
export class StubResolver {
  readonly dropped: StubResolverDrops = {
    notSentinel: 0, malformed: 0, notQuery: 0, upstreamMalformed: 0, upstreamUnmatched: 0, upstreamSpoofed: 0,
  };

  private readonly random: (length: number) => Uint8Array;
  private readonly upstreamTimeout: number;
  private readonly maxForwarded: number;
  private resources: DnsResource[] = [];
  private upstreams: string[] = [];
  private readonly pool = new ProxyIpPool();
  /** Name key → its proxy IPs, never removed. */
  private readonly proxyIps = new Map<string, ProxyIps>();
  /** Proxy IP (canonical text) → the name key it stands for. */
  private readonly names = new Map<string, string>();
  /** `${resourceId}\n${name key}` of the pairs resource_resolved was raised for. */
  private readonly announced = new Set<string>();
  /** Upstream ID → the query waiting for it. */
  private readonly forwarded = new Map<number, Forwarded>();
  private readonly transmits: DnsTransmit[] = [];
  private readonly events: StubResolverEvent[] = [];

  constructor(options: StubResolverOptions) {
    this.random = options.random;
    this.upstreamTimeout = options.upstreamTimeout ?? UPSTREAM_TIMEOUT_MS;
    this.maxForwarded = options.maxForwarded ?? FORWARDED_QUERIES_MAX;
  }

  // --- 1. Commands ---

  /** The resources the client may see; only DNS ones matter here, their address being the pattern. */
  setResources(resources: readonly ClientResource[]): void {
    this.resources = [];
    for (const resource of resources) {
      if (resource.type !== "dns" || resource.address === null) continue;
      const pattern = compilePattern(resource.address);
      if (pattern !== undefined) this.resources.push({ id: resource.id, pattern });
    }
    const ids = new Set(this.resources.map((r) => r.id));
    for (const key of this.announced) if (!ids.has(key.slice(0, key.indexOf("\n")))) this.announced.delete(key);
  }

  /** The upstream resolvers, in sentinel order; what is no IP address, or is a sentinel, is left out. */
  setUpstreams(servers: readonly string[]): void {
    this.upstreams = [];
    for (const server of servers) {
      const address = canonicalIp(server);
      if (address !== undefined && sentinelIndex(address) === undefined) this.upstreams.push(address);
    }
  }

  // --- 2. Queries in ---

  /** A UDP datagram from `from` to the address `to` (a sentinel, port 53). */
  handleQuery(now: number, from: DnsEndpoint, to: string, bytes: Uint8Array): void {
    const sentinel = sentinelIndex(to);
    if (sentinel === undefined) {
      this.dropped.notSentinel++;
      return;
    }
    const reply = (message: DnsMessage): void => {
      this.transmits.push({ from: { address: to, port: DNS_PORT }, to: { ...from }, bytes: encodeDnsMessage(message) });
    };
    const decoded = decodeDnsMessage(bytes);
    if (!decoded.ok) {
      if (decoded.header === undefined) this.dropped.malformed++;
      else if (decoded.header.qr) this.dropped.notQuery++;
      else reply(responseMessage(decoded.header, { rcode: RCODE_FORMERR }));
      return;
    }
    const query = decoded.message;
    if (query.qr) {
      this.dropped.notQuery++;
      return;
    }
    if (query.opcode !== OPCODE_QUERY) return reply(this.response(query, RCODE_NOTIMP));
    if (query.questions.length !== 1) return reply(responseMessage(query, { rcode: RCODE_FORMERR }));
    const local = this.answerLocally(query);
    if (local !== undefined) return reply(local);
    this.forward(now, query, { ...from }, to, sentinel, bytes);
  }

  // --- 3. Local answers ---

  /** The local answer to a one-question query, or undefined when it goes upstream. */
  private answerLocally(query: DnsMessage): DnsMessage | undefined {
    const question = query.questions[0]!;
    if (question.class !== CLASS_IN) return undefined;
    const labels = parseName(question.name) ?? [];
    if (question.type === TYPE_PTR) {
      const address = addressOfReverseName(labels);
      if (address !== undefined && isProxyIp(address)) {
        const name = this.names.get(address);
        if (name === undefined) return this.response(query, RCODE_NXDOMAIN);
        return this.response(query, RCODE_NOERROR, [{ name: question.name, type: TYPE_PTR, class: CLASS_IN, ttl: RESOURCE_TTL_SECONDS, data: { kind: "ptr", name } }]);
      }
    }
    const resource = bestMatch(this.resources, labels);
    if (resource === undefined) return undefined;
    if (question.type !== TYPE_A && question.type !== TYPE_AAAA) return this.response(query, RCODE_NOERROR);
    const key = nameKey(labels);
    const ips = this.proxyIpsOf(key);
    if (ips === undefined) return this.response(query, RCODE_SERVFAIL);
    const announcement = `${resource.id}\n${key}`;
    if (!this.announced.has(announcement)) {
      this.announced.add(announcement);
      this.events.push({ type: "resource_resolved", resourceId: resource.id, name: key, ipv4: [...ips.ipv4], ipv6: [...ips.ipv6] });
    }
    const answers: DnsRecord[] = (question.type === TYPE_A ? ips.ipv4 : ips.ipv6).map((address) => ({
      name: question.name, type: question.type, class: CLASS_IN, ttl: RESOURCE_TTL_SECONDS,
      data: question.type === TYPE_A ? { kind: "a", address } : { kind: "aaaa", address },
    }));
    return this.response(query, RCODE_NOERROR, answers);
  }

  /** The name's proxy IPs, allocated on first use; undefined once the pool is used up. */
  private proxyIpsOf(key: string): ProxyIps | undefined {
    const known = this.proxyIps.get(key);
    if (known !== undefined) return known;
    const ipv4 = this.pool.take(4, PROXY_IPS_PER_NAME);
    const ipv6 = this.pool.take(6, PROXY_IPS_PER_NAME);
    if (ipv4 === undefined || ipv6 === undefined) return undefined;
    const ips = { ipv4, ipv6 };
    this.proxyIps.set(key, ips);
    for (const address of [...ipv4, ...ipv6]) this.names.set(address, key);
    return ips;
  }

  /** Our own response to `query`: authoritative, with an OPT record when the query had one. */
  private response(query: DnsMessage, rcode: number, answers: DnsRecord[] = []): DnsMessage {
    const edns = query.additionals.some((r) => r.type === TYPE_OPT);
    const additionals: DnsRecord[] = edns
      ? [{ name: ".", type: TYPE_OPT, class: EDNS_UDP_PAYLOAD_SIZE, ttl: 0, data: { kind: "opaque", bytes: new Uint8Array(0) } }]
      : [];
    return responseMessage(query, { rcode, answers, additionals, aa: rcode === RCODE_NOERROR || rcode === RCODE_NXDOMAIN });
  }

  // --- 4. Forwarding ---

  private forward(now: number, query: DnsMessage, asker: DnsEndpoint, sentinel: string, index: number, bytes: Uint8Array): void {
    const fail = (rcode: number): void => {
      this.transmits.push({ from: { address: sentinel, port: DNS_PORT }, to: asker, bytes: encodeDnsMessage(this.response(query, rcode)) });
    };
    if (this.upstreams.length === 0) return fail(RCODE_SERVFAIL);
    if (this.forwarded.size >= this.maxForwarded) return fail(RCODE_REFUSED);
    const id = this.freshId();
    if (id === undefined) return fail(RCODE_REFUSED);
    const upstream = index % this.upstreams.length;
    const address = this.upstreams[upstream]!;
    const entry: Forwarded = { id, query, asker, sentinel, bytes: withId(bytes, id), upstream, asked: new Set([address]), attempts: 1, deadline: now + this.upstreamTimeout };
    this.forwarded.set(id, entry);
    this.transmits.push({ to: { address, port: DNS_PORT }, bytes: entry.bytes });
  }

  private freshId(): number | undefined {
    for (let i = 0; i < QUERY_ID_DRAWS_MAX; i++) {
      const b = this.random(2);
      const id = (b[0]! << 8) | b[1]!;
      if (!this.forwarded.has(id)) return id;
    }
    return undefined;
  }

  // --- 5. Upstream answers in ---

  /** A UDP datagram from an upstream resolver; `from`, when given, must be an upstream the query went to. */
  handleUpstreamResponse(_now: number, bytes: Uint8Array, from?: DnsEndpoint): void {
    const decoded = decodeDnsMessage(bytes);
    if (!decoded.ok || !decoded.message.qr) {
      this.dropped.upstreamMalformed++;
      return;
    }
    const answer = decoded.message;
    const entry = this.forwarded.get(answer.id);
    if (entry === undefined) {
      this.dropped.upstreamUnmatched++;
      return;
    }
    const source = from === undefined ? undefined : canonicalIp(from.address);
    const fromAsked = from === undefined || (from.port === DNS_PORT && source !== undefined && entry.asked.has(source));
    if (!fromAsked || answer.questions.length !== 1 || !sameQuestion(answer.questions[0]!, entry.query.questions[0]!)) {
      this.dropped.upstreamSpoofed++;
      return;
    }
    this.forwarded.delete(answer.id);
    this.transmits.push({ from: { address: entry.sentinel, port: DNS_PORT }, to: entry.asker, bytes: withId(bytes, entry.query.id) });
  }

  // --- 6. Timers ---

  /** Moves queries whose upstream stayed silent on to the next upstream, or answers them SERVFAIL. */
  handleTimeout(now: number): void {
    for (const entry of [...this.forwarded.values()]) {
      if (entry.deadline > now) continue;
      if (entry.attempts < UPSTREAM_ATTEMPTS && this.upstreams.length > 0) {
        entry.upstream = (entry.upstream + 1) % this.upstreams.length;
        const address = this.upstreams[entry.upstream]!;
        entry.asked.add(address);
        entry.attempts++;
        entry.deadline = now + this.upstreamTimeout;
        this.transmits.push({ to: { address, port: DNS_PORT }, bytes: entry.bytes });
        continue;
      }
      this.forwarded.delete(entry.id);
      this.transmits.push({
        from: { address: entry.sentinel, port: DNS_PORT }, to: entry.asker, bytes: encodeDnsMessage(this.response(entry.query, RCODE_SERVFAIL)),
      });
    }
  }

  // --- Outputs ---

  /** The next datagram to send, or undefined. */
  pollTransmit(): DnsTransmit | undefined {
    return this.transmits.shift();
  }

  /** The next event, or undefined. */
  pollEvent(): StubResolverEvent | undefined {
    return this.events.shift();
  }

  /** When handleTimeout is next due, or undefined when no query waits for an upstream. */
  pollTimeout(): number | undefined {
    let earliest: number | undefined;
    for (const entry of this.forwarded.values()) if (earliest === undefined || entry.deadline < earliest) earliest = entry.deadline;
    return earliest;
  }

  /** Forwarded queries waiting for an upstream. */
  get inFlight(): number {
    return this.forwarded.size;
  }
}
