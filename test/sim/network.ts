// A simulated UDP network in virtual time: realms (the internet and private LANs), hosts with one
// address each, NATs between realms, links with delay, jitter, loss, reordering and duplication,
// partitions, and sans-IO endpoints (node.ts) bound to hosts' ports. One seed decides everything:
// each random stream is derived from it and a label, and events at the same time run in the order
// they were scheduled, so a run replays exactly.
//
// The pipeline of one datagram, in the order of this file:
// 1. Topology: realms, hosts, NATs, endpoints bound to ports; link profiles, partitions and cuts.
// 2. Send: an endpoint's transmit leaves its host from a bound port at the host's current address.
// 3. Route: within a realm straight to the node owning the destination address; otherwise up to
//    the realm's NAT (its inside interface); nowhere else to go is a drop ("no-route").
// 4. Hop: partitions and cuts, then the link's loss, delay (+ jitter, + reorder hold-back) and
//    duplication decide when (and whether, and how often) it arrives at the next node.
// 5. Arrive: at a NAT's inside, translate outbound (or hairpin) and route on from the outside; at a
//    NAT's outside, translate inbound (mapping, filtering) and route on inside; at a host, hand it
//    to the endpoint bound to the port, then drain that endpoint (node.ts, the contract).
// 6. Time: the event queue (datagram arrivals, endpoint timers, scheduled actions) ordered by time,
//    then insertion; run / runFor / step / runUntil; a bounded trace and a digest of all of it.

import { Rng, SEED } from "../support/prng.js";
import { NatBox, type NatBehaviour } from "./nat.js";
import { formatAddr, type Addr, type SimEndpoint, type SimTransmit } from "./node.js";

/** How one hop treats datagrams. */
export interface LinkProfile {
  /** One-way delay, ms. */
  delay: number;
  /** Extra delay drawn uniformly from 0..jitter whole ms, per datagram (which alone can reorder). */
  jitter: number;
  /** Probability a datagram is lost. */
  loss: number;
  /** Probability a datagram is held back reorderDelay ms more, so that later ones overtake it. */
  reorder: number;
  reorderDelay: number;
  /** Probability a datagram arrives twice (the copy takes its own delay). */
  duplicate: number;
}

/** The internet's default hop: 20 ms, clean. */
export const INTERNET_LINK: LinkProfile = { delay: 20, jitter: 0, loss: 0, reorder: 0, reorderDelay: 50, duplicate: 0 };
/** A LAN's default hop: 1 ms, clean. */
export const LAN_LINK: LinkProfile = { delay: 1, jitter: 0, loss: 0, reorder: 0, reorderDelay: 10, duplicate: 0 };

/** How to build a Network. */
export interface NetworkOptions {
  /** Everything random derives from it; SEED (WARDLINE_SEED, else random) unless told. */
  seed?: number;
  /** Names this network's random streams and its failure messages. */
  label?: string;
  /** The internet's hop profile (INTERNET_LINK, with these changes). */
  internet?: Partial<LinkProfile>;
  /** Trace lines kept (the last ones); 0 keeps none, but the digest still covers every line. Default 10,000. */
  traceLimit?: number;
  /** Events allowed at one instant before the run is declared stuck (a timer that never clears). Default 100,000. */
  maxEventsPerInstant?: number;
}

/** An address space: the internet, or a LAN behind a NAT. */
export class Realm {
  /** The node owning each address. */
  readonly nodes = new Map<string, Host | NatNode>();

  constructor(
    readonly name: string,
    /** The default hop profile here; may be changed at any time, for hops that start afterwards. */
    public link: LinkProfile,
    /** The NAT this LAN reaches the outside through; undefined for the internet. */
    readonly uplink: NatNode | undefined,
  ) {}
}

/** A NAT device: its translation table, its public address in the outside realm, and the LAN behind it. */
export interface NatNode {
  kind: "nat";
  name: string;
  box: NatBox;
  publicAddress: string;
  outside: Realm;
  inside: Realm;
}

/** An endpoint bound to ports of a host, with the events it produced. */
export interface Attachment<E = unknown> {
  host: Host;
  endpoint: SimEndpoint<E>;
  /** Bound ports, in bind order; the first is where a transmit without `from` leaves. */
  ports: number[];
  /** What pollEvent returned, with the time. */
  events: { at: number; event: E }[];
  /**
   * Reacts to each event (wiring: trickle a candidate, hand a relayed address to an agent): run as
   * an action at the same instant, after what is already queued for it, then every endpoint drained.
   */
  onEvent: ((now: number, event: E) => void) | undefined;
  /** The pending timer: its deadline and the generation of its queue entry (older entries are stale). */
  deadline: number | undefined;
  generation: number;
}

/** A simulated machine: one address in one realm, endpoints on its ports. */
export class Host {
  readonly kind = "host";
  /** Port → the attachment bound to it. */
  readonly sockets = new Map<number, Attachment>();

  constructor(
    private readonly network: Network,
    readonly name: string,
    public realm: Realm,
    public address: string,
    public family: 4 | 6,
  ) {}

  /** The transport address of a port here (the first bound one by default). */
  local(port?: number): Addr {
    const p = port ?? this.sockets.keys().next().value;
    if (p === undefined) throw new Error(`host ${this.name} has no bound port`);
    return { family: this.family, address: this.address, port: p };
  }

  /** Binds ports to an endpoint (adding to its ports if it is already here); returns its attachment. */
  bind<E>(endpoint: SimEndpoint<E>, ...ports: number[]): Attachment<E> {
    return this.network.bind(this, endpoint, ports);
  }

  /** Frees a port (a closed socket): datagrams to it are dropped from now on. */
  unbind(port: number): void {
    const attachment = this.sockets.get(port);
    if (attachment === undefined) return;
    this.sockets.delete(port);
    attachment.ports.splice(attachment.ports.indexOf(port), 1);
  }
}

/** One datagram in flight; copies made by duplication share the id. */
interface Datagram {
  id: number;
  /** The host that sent it (for end-to-end cuts). */
  origin: string;
  src: Addr;
  dst: Addr;
  bytes: Uint8Array;
}

type QueuedEvent =
  | { kind: "arrive"; at: number; seq: number; to: Host | NatNode; side: "inside" | "outside" | "host"; from: string; datagram: Datagram }
  | { kind: "timer"; at: number; seq: number; attachment: Attachment; generation: number }
  | { kind: "action"; at: number; seq: number; run: (now: number) => void };

/** Something that can be undone: a partition, a cut, a link override. */
export interface Undo {
  heal(): void;
}

/** Why datagrams were dropped, one counter each. */
export type DropReason =
  | "loss" | "partition" | "cut" | "no-route" | "stale-address" | "port-unreachable"
  | "nat-no-mapping" | "nat-filtered" | "nat-ports-exhausted" | "hairpin";

/** The simulated network; see the pipeline above. */
export class Network {
  readonly seed: number;
  readonly label: string;
  readonly internet: Realm;
  private clock = 0;
  readonly stats = { sent: 0, delivered: 0, dropped: {} as Partial<Record<DropReason, number>> };
  /** Every trace line ever, in hash form (FNV-1a over the text): equal digests, equal runs. */
  traceDigest = 0x811c9dc5;
  /** Gets every trace line as it happens (e.g. to print a scenario's story). */
  onTrace: ((line: string) => void) | undefined;

  private readonly links: Rng;
  private readonly realms = new Map<string, Realm>();
  private readonly nodes = new Map<string, Host | NatNode>();
  private readonly attachments: Attachment[] = [];
  private readonly queue = new EventHeap();
  private seq = 0;
  private datagrams = 0;
  private readonly traceLimit: number;
  /** The last traceLimit lines, as a ring from traceStart. */
  private readonly traceRing: string[] = [];
  private traceStart = 0;
  private readonly maxEventsPerInstant: number;
  private eventsThisInstant = 0;
  private readonly nodeLinks = new Map<string, Partial<LinkProfile>>();
  private readonly pairLinks = new Map<string, Partial<LinkProfile>>();
  private readonly partitions = new Set<ReadonlySet<string>>();
  private readonly cuts = new Map<string, number>();

  constructor(options: NetworkOptions = {}) {
    this.seed = (options.seed ?? SEED) >>> 0;
    this.label = options.label ?? "network";
    this.links = this.rng("links");
    this.traceLimit = options.traceLimit ?? 10_000;
    this.maxEventsPerInstant = options.maxEventsPerInstant ?? 100_000;
    this.internet = new Realm("internet", { ...INTERNET_LINK, ...options.internet }, undefined);
    this.realms.set(this.internet.name, this.internet);
  }

  /** Virtual time, ms. */
  get now(): number {
    return this.clock;
  }

  /** A realm by name: "internet", or "lan/<nat name>". */
  realm(name: string): Realm {
    const realm = this.realms.get(name);
    if (realm === undefined) throw new Error(`no realm ${name}`);
    return realm;
  }

  /** A random stream of this network's seed for a purpose (streams do not disturb each other). */
  rng(purpose: string): Rng {
    return new Rng(`${this.label}/${purpose}`, this.seed);
  }

  /** A `random` option for a sans-IO machine: bytes from its own stream. */
  randomBytes(purpose: string): (length: number) => Uint8Array {
    const r = this.rng(`random/${purpose}`);
    return (length) => r.bytes(length);
  }

  /** How to replay this run, for assertion messages. */
  where(detail = ""): string {
    return `[seed=0x${this.seed.toString(16).padStart(8, "0")} ${this.label} t=${this.now}${detail ? ` ${detail}` : ""}]`;
  }

  // --- 1. Topology ---

  /** Adds a host to a realm (the internet unless told). */
  addHost(name: string, address: string, realm: Realm = this.internet): Host {
    this.claimName(name);
    const host = new Host(this, name, realm, address, familyOf(address));
    this.claimAddress(realm, address, host);
    this.nodes.set(name, host);
    return host;
  }

  /**
   * Adds a NAT at publicAddress in `outside` (the internet unless told) and the LAN behind it;
   * hosts added to nat.inside reach everything else through it.
   */
  addNat(name: string, publicAddress: string, behaviour: Partial<NatBehaviour> = {}, options: { outside?: Realm; lan?: Partial<LinkProfile> } = {}): NatNode {
    this.claimName(name);
    const outside = options.outside ?? this.internet;
    const node = { kind: "nat", name, publicAddress, outside } as NatNode;
    node.box = new NatBox(publicAddress, behaviour, this.rng(`nat/${name}`));
    node.inside = new Realm(`lan/${name}`, { ...LAN_LINK, ...options.lan }, node);
    this.claimAddress(outside, publicAddress, node);
    this.realms.set(node.inside.name, node.inside);
    this.nodes.set(name, node);
    return node;
  }

  /** Binds ports of host to endpoint; see Host.bind. */
  bind<E>(host: Host, endpoint: SimEndpoint<E>, ports: number[]): Attachment<E> {
    for (const port of ports) {
      if (!Number.isInteger(port) || port <= 0 || port > 0xffff) throw new RangeError(`port ${port}`);
      if (host.sockets.has(port)) throw new Error(`${host.name}:${port} is already bound`);
    }
    let attachment = this.attachments.find((a) => a.host === host && a.endpoint === endpoint) as Attachment<E> | undefined;
    if (attachment === undefined) {
      attachment = { host, endpoint, ports: [], events: [], onEvent: undefined, deadline: undefined, generation: 0 };
      this.attachments.push(attachment as Attachment);
    }
    for (const port of ports) {
      attachment.ports.push(port);
      host.sockets.set(port, attachment as Attachment);
    }
    return attachment;
  }

  /** A host or NAT by name. */
  node(name: string): Host | NatNode {
    const node = this.nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  /**
   * Moves a host to a new address, in its realm or another (behind another NAT, or onto the
   * internet). Datagrams in flight to the old address are dropped when they arrive; its endpoints
   * are not told (a test tells them, as an OS would signal a changed interface).
   */
  roam(host: Host, address: string, realm: Realm = host.realm): void {
    const holder = realm.nodes.get(address);
    if (holder !== undefined && holder !== host) throw new Error(`${address} is taken in ${realm.name} by ${holder.name}`);
    host.realm.nodes.delete(host.address);
    realm.nodes.set(address, host);
    this.log(`roam ${host.name} ${host.realm.name}/${host.address} -> ${realm.name}/${address}`);
    host.realm = realm;
    host.address = address;
    host.family = familyOf(address);
  }

  private claimName(name: string): void {
    if (this.nodes.has(name)) throw new Error(`node name ${name} is taken`);
  }

  private claimAddress(realm: Realm, address: string, node: Host | NatNode): void {
    const holder = realm.nodes.get(address);
    if (holder !== undefined) throw new Error(`${address} is taken in ${realm.name} by ${holder.name}`);
    realm.nodes.set(address, node);
  }

  // --- 1. Topology: link profiles, partitions, cuts (applied per hop, 4.) ---

  /** Overrides the hop profile of every hop that touches a node (host or NAT), over its realm's. */
  setNodeLink(name: string, profile: Partial<LinkProfile>): Undo {
    this.node(name);
    this.nodeLinks.set(name, profile);
    return { heal: () => void this.nodeLinks.delete(name) };
  }

  /** Overrides the hop profile between two nodes (both directions), over node and realm profiles. */
  setPairLink(a: string, b: string, profile: Partial<LinkProfile>): Undo {
    this.node(a);
    this.node(b);
    const key = pairKey(a, b);
    this.pairLinks.set(key, profile);
    return { heal: () => void this.pairLinks.delete(key) };
  }

  /** The profile of a hop from a to b in realm. */
  linkBetween(realm: Realm, a: string, b: string): LinkProfile {
    return { ...realm.link, ...this.nodeLinks.get(b), ...this.nodeLinks.get(a), ...this.pairLinks.get(pairKey(a, b)) };
  }

  /**
   * Cuts a set of nodes off from all others: a hop with one end inside the set and one outside is
   * dropped, and so is a datagram whose sender and receiver are on different sides. Hosts in the set
   * still reach each other; to cut a LAN off whole, name its NAT. Datagrams in flight are judged
   * when they arrive.
   */
  partition(names: readonly string[]): Undo {
    for (const name of names) this.node(name);
    const set = new Set(names);
    this.partitions.add(set);
    this.log(`partition ${names.join(",")}`);
    return {
      heal: () => {
        if (this.partitions.delete(set)) this.log(`heal ${names.join(",")}`);
      },
    };
  }

  /** Cuts the path between two nodes (either direction): their direct hops, and anything one sent to the other. */
  cut(a: string, b: string): Undo {
    this.node(a);
    this.node(b);
    const key = pairKey(a, b);
    this.cuts.set(key, (this.cuts.get(key) ?? 0) + 1);
    this.log(`cut ${a}-${b}`);
    let healed = false;
    return {
      heal: () => {
        if (healed) return;
        healed = true;
        const n = (this.cuts.get(key) ?? 1) - 1;
        if (n === 0) this.cuts.delete(key);
        else this.cuts.set(key, n);
        this.log(`heal ${a}-${b}`);
      },
    };
  }

  /** Heals every partition and cut. */
  healAll(): void {
    this.partitions.clear();
    this.cuts.clear();
    this.log("heal all");
  }

  private severed(a: string, b: string): DropReason | undefined {
    if (this.cuts.has(pairKey(a, b))) return "cut";
    for (const set of this.partitions) if (set.has(a) !== set.has(b)) return "partition";
    return undefined;
  }

  // --- 2. Send ---

  private send(attachment: Attachment, transmit: SimTransmit): void {
    const host = attachment.host;
    const port = transmit.from?.port ?? attachment.ports[0];
    if (port === undefined || host.sockets.get(port) !== attachment) {
      throw new Error(`${host.name}: transmit from port ${port ?? "(none bound)"}, which this endpoint has not bound ${this.where()}`);
    }
    const datagram: Datagram = {
      id: ++this.datagrams,
      origin: host.name,
      src: { family: host.family, address: host.address, port },
      dst: { ...transmit.to },
      bytes: transmit.bytes.slice(),
    };
    this.stats.sent++;
    this.log(`send ${host.name} ${describe(datagram)}`);
    this.route(host.realm, host, datagram);
  }

  // --- 3. Route ---

  private route(realm: Realm, from: Host | NatNode, datagram: Datagram): void {
    const target = realm.nodes.get(datagram.dst.address);
    if (target !== undefined && target !== from) {
      this.hop(realm, from, target, target.kind === "nat" ? "outside" : "host", datagram);
    } else if (target === from && from.kind === "host") {
      this.hop(realm, from, from, "host", datagram); // to itself
    } else if (target === undefined && realm.uplink !== undefined && realm.uplink !== from) {
      this.hop(realm, from, realm.uplink, "inside", datagram);
    } else {
      this.drop("no-route", datagram, `in ${realm.name}`);
    }
  }

  // --- 4. Hop ---

  private hop(realm: Realm, from: Host | NatNode, to: Host | NatNode, side: "inside" | "outside" | "host", datagram: Datagram): void {
    const severed = this.severed(from.name, to.name) ?? this.severed(datagram.origin, to.name);
    if (severed !== undefined) return this.drop(severed, datagram, `${from.name}->${to.name}`);
    const link = this.linkBetween(realm, from.name, to.name);
    if (link.loss > 0 && this.links.bool(link.loss)) return this.drop("loss", datagram, `${from.name}->${to.name}`);
    const copies = link.duplicate > 0 && this.links.bool(link.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = link.delay;
      if (link.jitter > 0) delay += this.links.int(0, Math.floor(link.jitter));
      if (link.reorder > 0 && this.links.bool(link.reorder)) delay += link.reorderDelay;
      this.push({ kind: "arrive", at: this.now + delay, seq: 0, to, side, from: from.name, datagram });
    }
  }

  // --- 5. Arrive ---

  private arrive(event: Extract<QueuedEvent, { kind: "arrive" }>): void {
    const { to, datagram } = event;
    // A partition or cut made while it flew.
    const severed = this.severed(event.from, to.name) ?? this.severed(datagram.origin, to.name);
    if (severed !== undefined) return this.drop(severed, datagram, `${event.from}->${to.name} on arrival`);
    if (to.kind === "host") return this.deliver(to, datagram);
    if (event.side === "inside") return this.natOutbound(to, datagram);
    return this.natInbound(to, datagram);
  }

  private natOutbound(nat: NatNode, datagram: Datagram): void {
    const mapped = nat.box.outbound(this.now, datagram.src, datagram.dst);
    if (!mapped.ok) return this.drop("nat-ports-exhausted", datagram, nat.name);
    this.log(`nat ${nat.name} out ${formatAddr(datagram.src)} as ${formatAddr(mapped.external)}`);
    const translated = { ...datagram, src: mapped.external };
    if (datagram.dst.address === nat.publicAddress) {
      // RFC 4787 §6: hairpinned, the datagram comes back in from the external source.
      if (!nat.box.behaviour.hairpinning) return this.drop("hairpin", datagram, nat.name);
      return this.natInbound(nat, translated);
    }
    this.route(nat.outside, nat, translated);
  }

  private natInbound(nat: NatNode, datagram: Datagram): void {
    const result = nat.box.inbound(this.now, datagram.dst.port, datagram.src);
    if (!result.ok) return this.drop(result.reason === "filtered" ? "nat-filtered" : "nat-no-mapping", datagram, nat.name);
    this.log(`nat ${nat.name} in ${formatAddr(datagram.dst)} to ${formatAddr(result.internal)}`);
    this.route(nat.inside, nat, { ...datagram, dst: result.internal });
  }

  private deliver(host: Host, datagram: Datagram): void {
    if (host.address !== datagram.dst.address) return this.drop("stale-address", datagram, host.name);
    const attachment = host.sockets.get(datagram.dst.port);
    if (attachment === undefined) return this.drop("port-unreachable", datagram, host.name);
    this.stats.delivered++;
    this.log(`deliver ${host.name} ${describe(datagram)}`);
    attachment.endpoint.handleDatagram(this.now, { ...datagram.dst }, { ...datagram.src }, datagram.bytes.slice());
    this.drain(attachment);
  }

  private drop(reason: DropReason, datagram: Datagram, detail: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
    this.log(`drop ${reason} ${describe(datagram)} ${detail}`);
  }

  // --- 6. Time ---

  /** Runs fn(now) at time `at` (not before now), then drains every endpoint. */
  at(at: number, fn: (now: number) => void): void {
    this.push({ kind: "action", at: Math.max(at, this.now), seq: 0, run: fn });
  }

  /** Runs fn(now) now (a command to some endpoint), then drains every endpoint. */
  act(fn: (now: number) => void): void {
    fn(this.now);
    this.drainAll();
  }

  /** Processes the next event, if any; false when the queue is empty. */
  step(): boolean {
    const event = this.queue.pop();
    if (event === undefined) return false;
    if (event.at > this.clock) {
      this.clock = event.at;
      this.eventsThisInstant = 0;
    }
    if (++this.eventsThisInstant > this.maxEventsPerInstant) {
      throw new Error(`no progress: over ${this.maxEventsPerInstant} events at one instant (a timeout that handleTimeout does not clear?) ${this.where()}`);
    }
    switch (event.kind) {
      case "arrive":
        this.arrive(event);
        return true;
      case "timer": {
        const attachment = event.attachment;
        if (event.generation !== attachment.generation) return true; // superseded
        attachment.deadline = undefined;
        attachment.endpoint.handleTimeout(this.now);
        this.drain(attachment);
        return true;
      }
      case "action":
        event.run(this.now);
        this.drainAll();
        return true;
    }
  }

  /** Runs every event up to and including time `until`, then sets the clock to it. */
  run(until: number): void {
    for (let next = this.queue.peek(); next !== undefined && next.at <= until; next = this.queue.peek()) this.step();
    if (until > this.clock) {
      this.clock = until;
      this.eventsThisInstant = 0;
    }
  }

  /** Runs for ms of virtual time. */
  runFor(ms: number): void {
    this.run(this.now + ms);
  }

  /** Runs until done() holds (checked before each event) or `timeout` ms pass; whether it held. */
  runUntil(done: () => boolean, timeout: number): boolean {
    const until = this.now + timeout;
    for (;;) {
      if (done()) return true;
      const next = this.queue.peek();
      if (next === undefined || next.at > until) break;
      this.step();
    }
    this.run(until);
    return done();
  }

  /** Drains every endpoint, in the order they were bound (after a command run outside act/at). */
  drainAll(): void {
    for (const attachment of this.attachments) this.drain(attachment);
  }

  private drain(attachment: Attachment): void {
    const endpoint = attachment.endpoint;
    for (let t = endpoint.pollTransmit(); t !== undefined; t = endpoint.pollTransmit()) this.send(attachment, t);
    if (endpoint.pollEvent !== undefined) {
      for (let e = endpoint.pollEvent(); e !== undefined; e = endpoint.pollEvent()) {
        attachment.events.push({ at: this.now, event: e });
        const react = attachment.onEvent;
        const event = e;
        if (react !== undefined) this.push({ kind: "action", at: this.now, seq: 0, run: (now) => react(now, event) });
      }
    }
    const deadline = endpoint.pollTimeout();
    if (deadline === attachment.deadline) return;
    attachment.deadline = deadline;
    attachment.generation++;
    if (deadline !== undefined) this.push({ kind: "timer", at: Math.max(deadline, this.now), seq: 0, attachment, generation: attachment.generation });
  }

  private push(event: QueuedEvent): void {
    event.seq = ++this.seq;
    this.queue.push(event);
  }

  /** Adds a line of the caller's own to the trace (a scenario's milestones, a stub portal's messages). */
  note(text: string): void {
    this.log(`note ${text}`);
  }

  private log(text: string): void {
    const line = `${this.now} ${text}`;
    let h = this.traceDigest;
    for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), 0x01000193) >>> 0;
    this.traceDigest = h;
    this.onTrace?.(line);
    if (this.traceLimit === 0) return;
    if (this.traceRing.length < this.traceLimit) {
      this.traceRing.push(line);
    } else {
      this.traceRing[this.traceStart] = line;
      this.traceStart = (this.traceStart + 1) % this.traceLimit;
    }
  }

  /** The last `lines` trace lines as one text, for a failure message. */
  traceTail(lines = 40): string {
    return this.trace.slice(-lines).join("\n");
  }

  /** The last traceLimit trace lines ("<ms> <what> …"), oldest first. */
  get trace(): string[] {
    return [...this.traceRing.slice(this.traceStart), ...this.traceRing.slice(0, this.traceStart)];
  }
}

function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

/** A datagram in a trace line: id, addresses, length and a hash of the bytes (so equal traces mean equal payloads). */
function describe(d: Datagram): string {
  let h = 0x811c9dc5;
  for (const b of d.bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return `#${d.id} ${formatAddr(d.src)}>${formatAddr(d.dst)} ${d.bytes.length}B ${h.toString(16).padStart(8, "0")}`;
}

/** A binary min-heap of events by (at, seq): same-time events run in the order they were queued. */
class EventHeap {
  private readonly items: QueuedEvent[] = [];

  peek(): QueuedEvent | undefined {
    return this.items[0];
  }

  push(event: QueuedEvent): void {
    const items = this.items;
    items.push(event);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): QueuedEvent | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && before(items[l]!, items[m]!)) m = l;
      if (r < items.length && before(items[r]!, items[m]!)) m = r;
      if (m === i) break;
      [items[i], items[m]] = [items[m]!, items[i]!];
      i = m;
    }
    return top;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
