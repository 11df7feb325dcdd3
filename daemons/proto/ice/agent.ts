// The ICE agent (RFC 8445 with trickle, RFC 8838, and consent freshness, RFC 7675) of one
// client ↔ gateway connection: one data stream, one component (WireGuard's UDP flow).
//
// Driving contract: call one input method (addLocalCandidate, removeLocalCandidate,
// addRemoteCandidate, removeRemoteCandidate, noteActivity, handleInput, handleTimeout) with the
// current monotonic time in ms, then drain pollTransmit() and pollEvent() until they return
// undefined, then arm a timer for pollTimeout(). Nothing here reads a clock or a random source: the
// tie-breaker and transaction IDs come from the `random` option.
//
// The pipeline, in the order of this file:
// 1. Candidates: local ones come from the driver (host sockets, the server-reflexive and relayed
//    addresses its TURN allocations report) and are announced as local_candidate events to trickle;
//    remote ones come from the portal. Peer-reflexive candidates are learned from checks (remote,
//    §7.3.1.3) and from responses (local, §7.2.5.3.1).
// 2. Pairs (§6.1.2): every local candidate with every remote one of its address family; a
//    server-reflexive candidate stands for its base (§6.1.2.4), so pairs are keyed by (local socket,
//    remote address) and only the highest-priority one of a key is kept. A new pair is Frozen while
//    another of its foundation is Waiting or In-Progress, else Waiting (§6.1.2.6).
// 3. Checks (§7.2.4, §7.2.5): one new check every Ta, triggered checks first (§6.1.4.2); each is a
//    Binding request with USERNAME, PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED,
//    USE-CANDIDATE when nominating, MESSAGE-INTEGRITY (the remote password) and FINGERPRINT,
//    retransmitted at 0, RTO, 3 RTO, 7 RTO, 15 RTO and given up CHECK_RM × RTO later.
// 4. Datagrams in (handleInput): a Binding request for our ufrag is checked (FINGERPRINT,
//    USERNAME, MESSAGE-INTEGRITY with our password), role conflicts are resolved (§7.3.1.1) and it
//    is answered with XOR-MAPPED-ADDRESS, then triggers a check of its pair (§7.3.1.4); a Binding
//    response to one of our transactions must come from where the request went (§7.2.5.2.1) and
//    carry MESSAGE-INTEGRITY with the remote password. Anything else is not ours: handleInput
//    returns false and the driver hands the datagram to WireGuard (or the next agent).
// 5. Nomination (§8.1.1, regular nomination): the controlling agent re-checks the best valid pair
//    with USE-CANDIDATE and uses it from then on; it does so again whenever a better pair becomes
//    valid, so a direct path replaces a relayed one when it works, and its consent checks of the
//    pair in use carry USE-CANDIDATE too, so a lost or overtaken nomination is repaired. The
//    controlled agent selects the pair nominated last.
// 6. Consent and background checks (RFC 7675): the selected pair is checked every
//    CONSENT_INTERVAL, other valid pairs every BACKGROUND_CHECK_INTERVAL, failed pairs every
//    FAILED_RECHECK_INTERVAL (so a path that comes back is found), every pair every
//    IDLE_CHECK_INTERVAL while the connection is idle, each wait randomised by ±20% (RFC 7675
//    §5.1). A valid pair whose check times out with no answer for CONSENT_TIMEOUT fails; if it was
//    selected, another takes over with a `selected` event and nothing reset: the controlling agent
//    nominates the best valid pair at once, the controlled one takes the pair nominated before it
//    or else the best valid pair, until the controlling agent's nomination says otherwise.
// 7. Selection and state events: selected, connected (whenever there is a selected pair again
//    after there was none), disconnected (the selected pair failed and no valid pair is left),
//    failed (every pair has failed; checks go on at the slow pace, so this may be undone).
//
// Left out of RFC 8445 (a subset, by design): several data streams and components (one checklist,
// component 1 only); aggressive nomination; ICE lite; TCP candidates (RFC 6544) and FQDN or mDNS
// candidate addresses; the valid list as a separate set of pairs built from mapped addresses
// (§7.2.5.3.2: here the checked pair itself becomes valid, and an unknown mapped address is only
// recorded as a local peer-reflexive candidate); RTO scaled by the number of pairs (§14.3);
// end-of-candidates and ICE restarts (new credentials mean a new agent); ending the checks once a
// pair is nominated: instead checks go on at a slow pace and the controlling agent nominates again
// (a subset of renomination, draft-thatcher-ice-renomination), and a controlled agent whose pair
// failed uses the best valid pair before it is nominated. Decoding never throws: a datagram that
// is not ours, malformed or forged is dropped and counted in `dropped`.

import type { IceCredentials } from "../portal/schema.js";
import { type TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import {
  ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ERROR_BAD_REQUEST, ERROR_ROLE_CONFLICT, ERROR_UNKNOWN_ATTRIBUTE, METHOD_BINDING,
  TRANSACTION_ID_SIZE,
} from "../stun/constants.js";
import { shortTermKey, verifyIntegrity } from "../stun/integrity.js";
import { decodeStun, type StunMessage } from "../stun/message.js";
import { candidatePriority, familyOf, pairPriority, parseCandidate, type Candidate, type CandidateType } from "./candidate.js";
import {
  BACKGROUND_CHECK_INTERVAL, CHECK_INTERVAL_JITTER_MIN, CHECK_INTERVAL_JITTER_SPAN, CHECK_RC, CHECK_RM, CHECK_RTO,
  CHECK_TRANSACTION_TIMEOUT, COMPONENT_ID, CONSENT_INTERVAL, CONSENT_TIMEOUT, ENDED_TRANSACTIONS_KEPT, FAILED_RECHECK_INTERVAL,
  IDLE_CHECK_INTERVAL, IDLE_TIMEOUT, LOCAL_PEER_REFLEXIVE_MAX, LOCAL_PREFERENCE_MAX, NOMINATION_WAIT, PORT_MAX,
  REMOTE_CANDIDATES_MAX, TA, TIE_BREAKER_BYTES,
} from "./constants.js";

/** Which agent decides the pair (RFC 8445 §6.1.1): the client's is controlling, the gateway's controlled. */
export type IceRole = "controlling" | "controlled";

export type { IceCredentials };

/** What an agent is made with: its role and both sides' credentials, from the portal's authorization. */
export interface IceAgentOptions {
  role: IceRole;
  /** Ours: checks to us carry our ufrag and are keyed with our password. */
  local: IceCredentials;
  /** The peer's: our checks carry its ufrag and are keyed with its password. */
  remote: IceCredentials;
  /** Randomness, from the driver: the tie-breaker and transaction IDs. */
  random: (length: number) => Uint8Array;
}

/**
 * Where a datagram leaves from or arrives at: a host UDP socket, or a TURN allocation (the driver
 * wraps what it sends from one through its TurnAllocation, and hands the agent what arrives on it).
 */
export type IceSocket = { type: "host"; address: string; port: number } | { type: "relay"; relayAddress: string; relayPort: number };

/** What addLocalCandidate takes. */
export interface LocalCandidateOptions {
  type: "host" | "srflx" | "relay";
  address: string;
  port: number;
  /** srflx: the host socket the mapping was learned through. */
  base?: { address: string; port: number };
  /** srflx, relay: the STUN or TURN server's IP, for the foundation (RFC 8445 §5.1.1.3). */
  server?: string;
  /** relay: the allocation's mapped address, signalled as raddr / rport. */
  related?: { address: string; port: number };
  /** 0 to 65535 (RFC 8445 §5.1.2.1); the highest unless told. */
  localPreference?: number;
}

/** A candidate pair as the driver sees it. */
export interface IcePairView {
  local: Candidate;
  remote: Candidate;
  /** Send from here (a relay socket: through that TURN allocation)... */
  source: IceSocket;
  /** ...to here. */
  to: TransportAddress;
  /** Whether either end is a TURN relay. */
  relayed: boolean;
}

/** A pair's checklist state (RFC 8445 §6.1.2.6). */
export type PairState = "frozen" | "waiting" | "in-progress" | "succeeded" | "failed";

/** A pair with its checklist state, for tests and diagnostics. */
export interface IcePairStatus extends IcePairView {
  state: PairState;
  priority: bigint;
  nominated: boolean;
}

/** What the driver learns from pollEvent(). */
export type IceAgentEvent =
  /** A candidate to trickle to the peer (formatCandidate, then ice_candidates). */
  | { type: "local_candidate"; candidate: Candidate }
  /** A candidate the peer should forget (invalidate_ice_candidates). */
  | { type: "local_candidate_invalidated"; candidate: Candidate }
  /** WireGuard should now go over this pair. */
  | { type: "selected"; pair: IcePairView }
  | { type: "connected" }
  | { type: "disconnected" }
  | { type: "failed" };

/** A datagram to send. */
export interface IceTransmit {
  source: IceSocket;
  to: TransportAddress;
  bytes: Uint8Array;
}

/** Why handleInput dropped a datagram it consumed, one counter each. */
export interface IceAgentDrops {
  /** A Binding message for us without FINGERPRINT, or a response that is neither success nor error. */
  malformed: number;
  /** A request for our ufrag from another peer's ufrag, or with a wrong MESSAGE-INTEGRITY. */
  unauthenticated: number;
  /** A response without a valid MESSAGE-INTEGRITY. */
  integrity: number;
  /** A request on a socket we have no candidate on (not answered). */
  unknownSocket: number;
  /** A response to a check that had already given up or been answered. */
  late: number;
}

interface LocalEntry {
  candidate: Candidate;
  socket: IceSocket;
  socketKey: string;
  localPreference: number;
}

interface RemoteEntry {
  candidate: Candidate;
  key: string;
  to: TransportAddress;
}

interface Pair {
  key: string;
  local: LocalEntry;
  remote: RemoteEntry;
  foundation: string;
  priority: bigint;
  state: PairState;
  removed: boolean;
  /** A check of it has completed (succeeded or failed) at least once. */
  checked: boolean;
  lastResponseAt: number | undefined;
  /** When the first check since the last answer went out; undefined while none is unanswered. */
  unansweredSince: number | undefined;
  /** When it became valid this time; undefined while not valid. */
  validSince: number | undefined;
  /** The next consent, background or recheck; undefined until its first check completes. */
  nextCheckAt: number | undefined;
  nominated: boolean;
  nominatedAt: number;
  /** Controlling: a USE-CANDIDATE check waits or runs. */
  nominating: boolean;
  /** Controlled: USE-CANDIDATE arrived before the pair was valid (§7.3.1.5). */
  nominateOnSuccess: boolean;
}

interface Transaction {
  key: string;
  pair: Pair;
  bytes: Uint8Array;
  /** PRIORITY sent: the priority of a peer-reflexive candidate learned from the response. */
  priority: number;
  useCandidate: boolean;
  /** Our role when it was sent: a 487 switches roles only if it has not switched since (§7.2.5.1). */
  role: IceRole;
  sends: number;
  interval: number;
  nextAt: number;
  /** Superseded by a triggered check (§7.3.1.4): no more sends, and no answer is not a failure. */
  cancelled: boolean;
}

interface Triggered {
  pair: Pair;
  useCandidate: boolean;
}

const NEVER = Number.POSITIVE_INFINITY;

function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function socketKeyOf(socket: IceSocket): string {
  return socket.type === "host" ? `h ${socket.address} ${socket.port}` : `r ${socket.relayAddress} ${socket.relayPort}`;
}

const addressKey = (address: string, port: number): string => `${address} ${port}`;

/** The normalised form of an IP literal, or undefined: our own input is checked with the network parser's rules. */
function normaliseIp(address: string): string | undefined {
  const parsed = parseCandidate(`candidate:x 1 udp 1 ${address} 1 typ host`);
  return parsed.ok ? parsed.candidate.address : undefined;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > PORT_MAX) throw new RangeError(`port ${port} is not in 0..${PORT_MAX}`);
}

function toTieBreaker(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = 0; i < TIE_BREAKER_BYTES; i++) value = (value << 8n) | BigInt(bytes[i] ?? 0);
  return value;
}

/** The ICE agent of one connection; see the driving contract above. */
export class IceAgent {
  readonly dropped: IceAgentDrops = { malformed: 0, unauthenticated: 0, integrity: 0, unknownSocket: 0, late: 0 };

  private currentRole: IceRole;
  private readonly tieBreaker: bigint;
  /** Keys our responses and checks to us (our password), and our checks and their responses (theirs). */
  private readonly localKey: Uint8Array;
  private readonly remoteKey: Uint8Array;

  private readonly locals: LocalEntry[] = [];
  private readonly remotes: RemoteEntry[] = [];
  private readonly pairs: Pair[] = [];
  private readonly foundations = new Map<string, string>();
  private prflxCount = 0;

  private readonly transactions = new Map<string, Transaction>();
  /** Transactions that gave up lately, so a late answer is still recognised as ours (and dropped). */
  private readonly ended: string[] = [];
  private readonly triggered: Triggered[] = [];
  private nextPaceAt = 0;
  private nominationDeadline: number | undefined;

  private selected: Pair | undefined;
  private failedReported = false;
  private lastActivity: number | undefined;

  private readonly transmits: IceTransmit[] = [];
  private readonly events: IceAgentEvent[] = [];

  constructor(private readonly options: IceAgentOptions) {
    this.currentRole = options.role;
    this.tieBreaker = toTieBreaker(options.random(TIE_BREAKER_BYTES));
    this.localKey = shortTermKey(options.local.password);
    this.remoteKey = shortTermKey(options.remote.password);
  }

  /** Our current role: a role conflict (RFC 8445 §7.3.1.1) may have switched it. */
  get role(): IceRole {
    return this.currentRole;
  }

  // --- 1. Candidates ---

  /**
   * Adds a local candidate and announces it (a local_candidate event); returns it, or the one
   * already known at that address. Throws on an address or port that is not one (a driver bug).
   */
  addLocalCandidate(now: number, options: LocalCandidateOptions): Candidate {
    this.touch(now);
    const address = normaliseIp(options.address);
    if (address === undefined) throw new TypeError(`${options.address} is not an IP address`);
    checkPort(options.port);
    const existing = this.locals.find((l) => l.candidate.type === options.type && l.candidate.address === address && l.candidate.port === options.port);
    if (existing !== undefined) return existing.candidate;

    let socket: IceSocket;
    let related: { address: string; port: number } | undefined;
    if (options.type === "host") {
      socket = { type: "host", address, port: options.port };
    } else if (options.type === "srflx") {
      if (options.base === undefined) throw new TypeError("a server-reflexive candidate needs its base");
      const baseAddress = normaliseIp(options.base.address);
      if (baseAddress === undefined) throw new TypeError(`${options.base.address} is not an IP address`);
      checkPort(options.base.port);
      socket = { type: "host", address: baseAddress, port: options.base.port };
      related = { address: baseAddress, port: options.base.port };
    } else {
      // A relayed candidate is its own base (§5.1.1.2).
      socket = { type: "relay", relayAddress: address, relayPort: options.port };
      if (options.related !== undefined) {
        const relatedAddress = normaliseIp(options.related.address);
        if (relatedAddress === undefined) throw new TypeError(`${options.related.address} is not an IP address`);
        checkPort(options.related.port);
        related = { address: relatedAddress, port: options.related.port };
      }
    }
    const localPreference = options.localPreference ?? LOCAL_PREFERENCE_MAX;
    const baseIp = socket.type === "host" ? socket.address : socket.relayAddress;
    const candidate: Candidate = {
      foundation: this.foundation(options.type, baseIp, options.server ?? ""),
      component: COMPONENT_ID,
      transport: "udp",
      priority: candidatePriority(options.type, localPreference),
      address,
      port: options.port,
      type: options.type,
      ...(related === undefined ? {} : { relatedAddress: related.address, relatedPort: related.port }),
    };
    const entry: LocalEntry = { candidate, socket, socketKey: socketKeyOf(socket), localPreference };
    this.locals.push(entry);
    this.events.push({ type: "local_candidate", candidate: { ...candidate } });
    for (const remote of this.remotes) this.formPair(entry, remote);
    this.drive(now);
    return { ...candidate };
  }

  /**
   * Forgets a local candidate (its socket closed, its allocation ended) and announces that
   * (local_candidate_invalidated). Forgetting a host or relayed candidate forgets every candidate on
   * its socket. Pairs using them go; if the selected pair was one, the next one takes over.
   */
  removeLocalCandidate(now: number, candidate: { type: CandidateType; address: string; port: number }): void {
    this.touch(now);
    const address = normaliseIp(candidate.address) ?? candidate.address;
    const entry = this.locals.find((l) => l.candidate.type === candidate.type && l.candidate.address === address && l.candidate.port === candidate.port);
    if (entry === undefined) return;
    const gone = entry.candidate.type === "host" || entry.candidate.type === "relay"
      ? this.locals.filter((l) => l.socketKey === entry.socketKey)
      : [entry];
    for (const local of gone) {
      this.locals.splice(this.locals.indexOf(local), 1);
      if (local.candidate.type !== "prflx") this.events.push({ type: "local_candidate_invalidated", candidate: { ...local.candidate } });
    }
    this.removePairs(now, (pair) => gone.includes(pair.local));
    // A server-reflexive candidate that was pruned in favour of its (now gone) base pairs again.
    for (const local of this.locals) for (const remote of this.remotes) this.formPair(local, remote);
    this.drive(now);
  }

  /**
   * Adds a candidate the peer trickled; false if it is not one this agent can use (another
   * component or transport). A candidate at the address of a peer-reflexive one replaces it.
   */
  /** The local candidates announced so far (host, server-reflexive, relayed), to announce again to a peer that lost them. */
  announcedCandidates(): Candidate[] {
    return this.locals.filter((l) => l.candidate.type !== "prflx").map((l) => l.candidate);
  }

  addRemoteCandidate(now: number, candidate: Candidate): boolean {
    this.touch(now);
    if (candidate.component !== COMPONENT_ID || candidate.transport !== "udp") return false;
    const address = normaliseIp(candidate.address);
    if (address === undefined || !Number.isInteger(candidate.port) || candidate.port < 0 || candidate.port > PORT_MAX) return false;
    const key = addressKey(address, candidate.port);
    const existing = this.remotes.find((r) => r.key === key);
    if (existing !== undefined) {
      // RFC 8838 §11.4: the signalled candidate replaces a peer-reflexive one learned first.
      if (existing.candidate.type === "prflx" && candidate.type !== "prflx") {
        existing.candidate = { ...candidate, address };
        for (const pair of this.pairs) if (pair.remote === existing) this.computePriority(pair);
      }
      // A peer-reflexive candidate was paired only with the socket its check arrived on.
      for (const local of this.locals) this.formPair(local, existing);
      this.drive(now);
      return true;
    }
    if (this.remotes.length >= REMOTE_CANDIDATES_MAX) return false;
    const remote: RemoteEntry = { candidate: { ...candidate, address }, key, to: { family: familyOf(address), address, port: candidate.port } };
    this.remotes.push(remote);
    for (const local of this.locals) this.formPair(local, remote);
    this.drive(now);
    return true;
  }

  /** Forgets a candidate the peer invalidated, and the pairs using it. */
  removeRemoteCandidate(now: number, candidate: { address: string; port: number }): void {
    this.touch(now);
    const key = addressKey(normaliseIp(candidate.address) ?? candidate.address, candidate.port);
    const index = this.remotes.findIndex((r) => r.key === key);
    if (index < 0) return;
    const [remote] = this.remotes.splice(index, 1);
    this.removePairs(now, (pair) => pair.remote === remote);
    this.drive(now);
  }

  /** Tells the agent traffic flows over the connection: an idle one checks less often. */
  noteActivity(now: number): void {
    const wasIdle = this.isIdle(now);
    this.lastActivity = now;
    if (wasIdle) {
      for (const pair of this.pairs) {
        if (pair.nextCheckAt === undefined) continue;
        // After a quiet spell, make sure the selected path still works before much is sent over it.
        const due = pair === this.selected ? now : now + this.activeInterval(pair);
        pair.nextCheckAt = Math.min(pair.nextCheckAt, due);
      }
      this.drive(now);
    }
    // Otherwise nothing fell due because of the packet: what is due anyway runs at pollTimeout.
  }

  /** The pair WireGuard should use, if any. */
  selectedPair(): IcePairView | undefined {
    return this.selected === undefined ? undefined : this.view(this.selected);
  }

  /**
   * Whether the path from our socket `local` to the peer's address `to` is a valid pair: a check
   * over it succeeded and its consent has not lapsed since. The driver asks this of a datagram it
   * cannot authenticate any other way, to tell which peer's path it came over.
   */
  isValidPath(local: IceSocket, to: TransportAddress): boolean {
    const address = normaliseIp(to.address);
    if (address === undefined) return false;
    const key = `${socketKeyOf(local)}|${addressKey(address, to.port)}`;
    return this.pairs.some((p) => p.key === key && p.state === "succeeded");
  }

  /** Every pair with its state, highest priority first. */
  pairStatus(): IcePairStatus[] {
    return [...this.pairs]
      .sort((a, b) => (a.priority < b.priority ? 1 : a.priority > b.priority ? -1 : 0))
      .map((p) => ({ ...this.view(p), state: p.state, priority: p.priority, nominated: p.nominated }));
  }

  private foundation(type: CandidateType, baseIp: string, server: string): string {
    const key = `${type} ${baseIp} ${server}`;
    let foundation = this.foundations.get(key);
    if (foundation === undefined) {
      foundation = String(this.foundations.size + 1);
      this.foundations.set(key, foundation);
    }
    return foundation;
  }

  private view(pair: Pair): IcePairView {
    const relayed = pair.local.candidate.type === "relay" || pair.remote.candidate.type === "relay";
    return { local: { ...pair.local.candidate }, remote: { ...pair.remote.candidate }, source: { ...pair.local.socket }, to: { ...pair.remote.to }, relayed };
  }

  // --- 2. Pairs ---

  private formPair(local: LocalEntry, remote: RemoteEntry): void {
    // Local peer-reflexive candidates only describe what a valid pair looks like from outside (§6.1.2.2).
    if (local.candidate.type === "prflx") return;
    if (familyOf(local.candidate.address) !== remote.to.family) return;
    const key = `${local.socketKey}|${remote.key}`;
    const existing = this.pairs.find((p) => p.key === key);
    if (existing !== undefined) {
      // §6.1.2.4: a pair redundant with one of the same base and remote keeps the higher priority.
      if (local.candidate.priority > existing.local.candidate.priority) {
        existing.local = local;
        this.computePriority(existing);
      }
      return;
    }
    const foundation = `${local.candidate.foundation}:${remote.candidate.foundation}`;
    const busy = this.foundationBusy(foundation);
    const pair: Pair = {
      key, local, remote, foundation, priority: 0n, state: busy ? "frozen" : "waiting", removed: false, checked: false,
      lastResponseAt: undefined, unansweredSince: undefined, validSince: undefined, nextCheckAt: undefined, nominated: false, nominatedAt: 0,
      nominating: false, nominateOnSuccess: false,
    };
    this.computePriority(pair);
    this.pairs.push(pair);
  }

  private computePriority(pair: Pair): void {
    const local = pair.local.candidate.priority;
    const remote = pair.remote.candidate.priority;
    pair.priority = this.currentRole === "controlling" ? pairPriority(local, remote) : pairPriority(remote, local);
  }

  private foundationBusy(foundation: string): boolean {
    return this.pairs.some((p) => p.foundation === foundation && (p.state === "waiting" || p.state === "in-progress"));
  }

  private removePairs(now: number, which: (pair: Pair) => boolean): void {
    for (let i = this.pairs.length - 1; i >= 0; i--) {
      const pair = this.pairs[i]!;
      if (!which(pair)) continue;
      pair.removed = true;
      this.pairs.splice(i, 1);
    }
    for (const [key, transaction] of this.transactions) if (transaction.pair.removed) this.transactions.delete(key);
    if (this.selected?.removed === true) this.loseSelected(now);
  }

  // --- 3. Checks ---

  /** Runs whatever is due: retransmissions, the paced check, rechecks, nomination, state events. */
  private drive(now: number): void {
    this.touch(now);
    for (const transaction of [...this.transactions.values()]) {
      if (now >= transaction.nextAt) this.retransmitOrGiveUp(now, transaction);
    }
    this.pace(now);
    for (const pair of [...this.pairs]) if (now >= this.consentDeadline(pair)) this.failPair(now, pair);
    for (const pair of this.pairs) {
      if (pair.nextCheckAt !== undefined && now >= pair.nextCheckAt) {
        // A failed pair's recheck is not a new In-Progress check: it stays failed until it works.
        // The controlling agent's consent checks nominate again, so the controlled agent converges
        // on the pair in use even after losing or reordering an earlier nomination.
        this.sendCheck(now, pair, this.currentRole === "controlling" && pair === this.selected);
        pair.nextCheckAt = now + this.interval(now, pair);
      }
    }
    this.nominate(now);
    this.reportFailure();
  }

  /** Sends one new check if Ta has passed since the last one (§6.1.4.2). */
  private pace(now: number): void {
    if (now < this.nextPaceAt) return;
    const next = this.nextPaced();
    if (next === undefined) return;
    if (next.pair.state !== "succeeded") next.pair.state = "in-progress";
    this.sendCheck(now, next.pair, next.useCandidate);
    this.nextPaceAt = now + TA;
  }

  /** The check the pacer sends next (§6.1.4.2): a triggered one, else the best Waiting pair, else an unfrozen one. */
  private nextPaced(): Triggered | undefined {
    while (this.triggered.length > 0) {
      const next = this.triggered.shift()!;
      if (!next.pair.removed) return next;
    }
    const waiting = this.best(this.pairs.filter((p) => p.state === "waiting"));
    if (waiting !== undefined) return { pair: waiting, useCandidate: false };
    const unfrozen = this.unfreezable();
    return unfrozen === undefined ? undefined : { pair: unfrozen, useCandidate: false };
  }

  /** The best Frozen pair whose foundation has nothing Waiting or In-Progress. */
  private unfreezable(): Pair | undefined {
    return this.best(this.pairs.filter((p) => p.state === "frozen" && !this.foundationBusy(p.foundation)));
  }

  private hasPacedWork(): boolean {
    return this.triggered.some((t) => !t.pair.removed) || this.pairs.some((p) => p.state === "waiting") || this.unfreezable() !== undefined;
  }

  private best(pairs: Pair[]): Pair | undefined {
    let best: Pair | undefined;
    for (const pair of pairs) if (best === undefined || pair.priority > best.priority) best = pair;
    return best;
  }

  private sendCheck(now: number, pair: Pair, useCandidate: boolean): void {
    const id = this.options.random(TRANSACTION_ID_SIZE).slice(0, TRANSACTION_ID_SIZE);
    // §7.2.5.3.1: PRIORITY is what a peer-reflexive candidate learned from this check would have.
    const priority = candidatePriority("prflx", pair.local.localPreference);
    const request = new StunBuilder(METHOD_BINDING, "request", id)
      .addUsername(`${this.options.remote.username}:${this.options.local.username}`)
      .addPriority(priority);
    if (this.currentRole === "controlling") {
      request.addIceControlling(this.tieBreaker);
      if (useCandidate) request.addUseCandidate();
    } else {
      request.addIceControlled(this.tieBreaker);
    }
    const bytes = request.build({ integrity: this.remoteKey, fingerprint: true });
    const key = hexOf(id);
    this.transactions.set(key, {
      key, pair, bytes, priority, useCandidate, role: this.currentRole, sends: 1, interval: CHECK_RTO, nextAt: now + CHECK_RTO, cancelled: false,
    });
    pair.unansweredSince ??= now;
    this.transmits.push({ source: { ...pair.local.socket }, to: { ...pair.remote.to }, bytes });
  }

  /**
   * When a valid pair loses consent (RFC 7675 §5.1): CONSENT_TIMEOUT after its last answer, but
   * not before a check sent since has had its full transaction time, so an idle pair checked
   * rarely is not failed the moment its next check goes out.
   */
  private consentDeadline(pair: Pair): number {
    if (pair.state !== "succeeded" || pair.unansweredSince === undefined) return NEVER;
    return Math.max((pair.lastResponseAt ?? 0) + CONSENT_TIMEOUT, pair.unansweredSince + CHECK_TRANSACTION_TIMEOUT);
  }

  private retransmitOrGiveUp(now: number, transaction: Transaction): void {
    if (transaction.sends < CHECK_RC) {
      transaction.sends++;
      transaction.interval *= 2;
      transaction.nextAt = now + (transaction.sends < CHECK_RC ? transaction.interval : CHECK_RM * CHECK_RTO);
      const { pair } = transaction;
      this.transmits.push({ source: { ...pair.local.socket }, to: { ...pair.remote.to }, bytes: transaction.bytes });
      return;
    }
    this.endTransaction(transaction);
    const { pair } = transaction;
    // A check superseded by a triggered one has still gone unanswered: the pair has been tried, so a
    // pair whose checks keep being superseded (the peer checks it more often than ours time out)
    // still counts towards "failed".
    if (transaction.cancelled) {
      pair.checked = true;
      return;
    }
    // A valid pair fails by its consent deadline (consentDeadline), not by one unanswered check.
    if (pair.state === "in-progress") {
      this.failPair(now, pair);
    }
  }

  private endTransaction(transaction: Transaction): void {
    this.transactions.delete(transaction.key);
    this.ended.push(transaction.key);
    if (this.ended.length > ENDED_TRANSACTIONS_KEPT) this.ended.shift();
    if (transaction.useCandidate) transaction.pair.nominating = false;
  }

  private failPair(now: number, pair: Pair): void {
    pair.state = "failed";
    pair.unansweredSince = undefined;
    pair.checked = true;
    pair.validSince = undefined;
    // The controlling agent nominates a pair that comes back again; the controlled one remembers
    // the nomination, so the pair is used again when it works again unless another was nominated since.
    if (this.currentRole === "controlling") pair.nominated = false;
    pair.nominating = false;
    pair.nominateOnSuccess = false;
    pair.nextCheckAt = now + this.interval(now, pair);
    // §7.2.5.4: a failure unfreezes nothing by itself, but the pacer unfreezes the next of its foundation.
    if (pair === this.selected) this.loseSelected(now);
  }

  private succeedPair(now: number, pair: Pair): void {
    const wasValid = pair.state === "succeeded";
    pair.state = "succeeded";
    pair.checked = true;
    pair.lastResponseAt = now;
    pair.unansweredSince = undefined;
    if (!wasValid) {
      pair.validSince = now;
      pair.nextCheckAt = now + this.interval(now, pair);
      this.failedReported = false;
      // §7.2.5.3.3: pairs of the same foundation are likely to work too.
      for (const other of this.pairs) if (other.state === "frozen" && other.foundation === pair.foundation) other.state = "waiting";
    }
  }

  // --- 4. Datagrams in ---

  /**
   * Takes a datagram that arrived on socket `local` from `from`; true if it was an ICE check or
   * response for this agent (consumed, maybe dropped), false if it is not ours (WireGuard's, or
   * another agent's). Never throws.
   */
  handleInput(now: number, via: { local: IceSocket; from: TransportAddress }, bytes: Uint8Array): boolean {
    this.touch(now);
    const decoded = decodeStun(bytes);
    if (!decoded.ok) return false;
    const message = decoded.message;
    if (message.method !== METHOD_BINDING) return false;
    // Addresses are compared as text, so the driver's spelling of an IPv6 source must not matter.
    const from = normaliseIp(via.from.address);
    if (from === undefined || from.includes(":") !== (via.from.family === 6)) return false;
    via = { local: via.local, from: { family: via.from.family, address: from, port: via.from.port } };
    let consumed: boolean;
    if (message.class === "request") consumed = this.handleRequest(now, via, message, bytes);
    else if (message.class === "success" || message.class === "error") consumed = this.handleResponse(now, via, message, bytes);
    else consumed = false;
    if (consumed) this.drive(now);
    return consumed;
  }

  private handleRequest(now: number, via: { local: IceSocket; from: TransportAddress }, message: StunMessage, bytes: Uint8Array): boolean {
    const username = message.username();
    if (username === undefined) return false;
    const colon = username.indexOf(":");
    if (colon < 0 || username.slice(0, colon) !== this.options.local.username) return false;
    if (!message.has(ATTR_FINGERPRINT)) {
      this.dropped.malformed++;
      return true;
    }
    if (!message.has(ATTR_MESSAGE_INTEGRITY)) {
      // RFC 8489 §9.1.3: a request without MESSAGE-INTEGRITY gets a 400, itself unprotected.
      this.respondError(via, message, ERROR_BAD_REQUEST, "MESSAGE-INTEGRITY missing", false);
      return true;
    }
    // A wrong ufrag pair or HMAC is dropped rather than answered 401: an answer would only tell
    // whoever guesses at our ufrag that they got it right, and costs a datagram per forgery.
    if (username.slice(colon + 1) !== this.options.remote.username || !verifyIntegrity(message, bytes, this.localKey).ok) {
      this.dropped.unauthenticated++;
      return true;
    }
    const unknown = message.unknownComprehensionRequired();
    if (unknown.length > 0) {
      this.respondError(via, message, ERROR_UNKNOWN_ATTRIBUTE, "Unknown Attribute", true, unknown);
      return true;
    }
    const priority = message.priority();
    const theirControlling = message.iceControlling();
    const theirControlled = message.iceControlled();
    if (priority === undefined || priority === 0 || (theirControlling === undefined) === (theirControlled === undefined)) {
      this.respondError(via, message, ERROR_BAD_REQUEST, "PRIORITY and one ICE role attribute required", true);
      return true;
    }

    // §7.3.1.1: the larger tie-breaker is controlling; the agent that must change does so, or is told to by a 487.
    if (this.currentRole === "controlling" && theirControlling !== undefined) {
      if (this.tieBreaker >= theirControlling) {
        this.respondError(via, message, ERROR_ROLE_CONFLICT, "Role Conflict", true);
        return true;
      }
      this.switchRole("controlled");
    } else if (this.currentRole === "controlled" && theirControlled !== undefined) {
      if (this.tieBreaker >= theirControlled) {
        this.switchRole("controlling");
      } else {
        this.respondError(via, message, ERROR_ROLE_CONFLICT, "Role Conflict", true);
        return true;
      }
    }

    // A socket we have no candidate on (one just invalidated, or never announced) is not answered
    // for: a success there would rebuild a path the peer was told to forget.
    const socketKey = socketKeyOf(via.local);
    const local = this.locals.find((l) => l.socketKey === socketKey && l.candidate.type !== "prflx");
    if (local === undefined) {
      this.dropped.unknownSocket++;
      return true;
    }
    const response = new StunBuilder(METHOD_BINDING, "success", message.transactionId.slice()).addXorMappedAddress(via.from);
    this.transmits.push({ source: { ...via.local }, to: { ...via.from }, bytes: response.build({ integrity: this.localKey, fingerprint: true }) });

    const remote = this.remoteFor(via.from, priority);
    if (remote === undefined) return true;
    this.formPair(local, remote);
    const pair = this.pairs.find((p) => p.key === `${socketKey}|${remote.key}`);
    if (pair === undefined) return true;

    // §7.3.1.4: a triggered check unless the pair already works. One in progress is cancelled
    // (its answer still counts): our earlier request was likely dropped by the peer's NAT before
    // the peer's own check opened it, and waiting for the next retransmission costs up to seconds.
    if (pair.state !== "succeeded") {
      if (pair.state === "in-progress") {
        for (const transaction of this.transactions.values()) {
          if (transaction.pair === pair && !transaction.cancelled) {
            transaction.cancelled = true;
            transaction.nextAt = Math.max(transaction.nextAt, now + CHECK_RM * CHECK_RTO);
            transaction.sends = CHECK_RC;
          }
        }
      }
      pair.state = "waiting";
      this.trigger(pair, false);
    }
    // §7.3.1.5: the controlled agent's side of nomination.
    if (message.useCandidate() && this.currentRole === "controlled") {
      if (pair.state === "succeeded") this.markNominated(now, pair);
      else pair.nominateOnSuccess = true;
    }
    return true;
  }

  private trigger(pair: Pair, useCandidate: boolean): void {
    if (!this.triggered.some((t) => t.pair === pair && t.useCandidate === useCandidate)) this.triggered.push({ pair, useCandidate });
  }

  /** The remote candidate at an address, learning a peer-reflexive one (§7.3.1.3) if there is none and room for it. */
  private remoteFor(from: TransportAddress, priority: number): RemoteEntry | undefined {
    const key = addressKey(from.address, from.port);
    const known = this.remotes.find((r) => r.key === key);
    if (known !== undefined) return known;
    if (this.remotes.length >= REMOTE_CANDIDATES_MAX) return undefined;
    const candidate: Candidate = {
      foundation: `p${++this.prflxCount}`, component: COMPONENT_ID, transport: "udp", priority, address: from.address, port: from.port, type: "prflx",
    };
    const remote: RemoteEntry = { candidate, key, to: { ...from } };
    this.remotes.push(remote);
    return remote;
  }

  private respondError(
    via: { local: IceSocket; from: TransportAddress }, message: StunMessage, code: number, reason: string, protect: boolean, unknown?: number[],
  ): void {
    const response = new StunBuilder(METHOD_BINDING, "error", message.transactionId.slice()).addErrorCode(code, reason);
    if (unknown !== undefined) response.addUnknownAttributes(unknown);
    const bytes = response.build(protect ? { integrity: this.localKey, fingerprint: true } : { fingerprint: true });
    this.transmits.push({ source: { ...via.local }, to: { ...via.from }, bytes });
  }

  private switchRole(role: IceRole): void {
    this.currentRole = role;
    for (const pair of this.pairs) {
      this.computePriority(pair);
      pair.nominating = false;
    }
  }

  private handleResponse(now: number, via: { local: IceSocket; from: TransportAddress }, message: StunMessage, bytes: Uint8Array): boolean {
    const key = hexOf(message.transactionId);
    const transaction = this.transactions.get(key);
    if (transaction === undefined) {
      if (!this.ended.includes(key)) return false;
      this.dropped.late++;
      return true;
    }
    if (!message.has(ATTR_FINGERPRINT)) {
      this.dropped.malformed++;
      return true;
    }
    // §7.2.5.1 via RFC 8489 §9.1.4: an unprotected or forged response is dropped; retransmission goes on.
    if (!verifyIntegrity(message, bytes, this.remoteKey).ok) {
      this.dropped.integrity++;
      return true;
    }
    this.endTransaction(transaction);
    const { pair } = transaction;
    // §7.2.5.2.1: a response from elsewhere, or on another socket, means the path is not symmetric.
    if (via.from.address !== pair.remote.to.address || via.from.port !== pair.remote.to.port || socketKeyOf(via.local) !== pair.local.socketKey) {
      this.failPair(now, pair);
      return true;
    }
    if (message.class === "error") {
      if (message.errorCode()?.code === ERROR_ROLE_CONFLICT) {
        // §7.2.5.1: switch, unless a request of the peer made us switch since, then check again.
        if (transaction.role === this.currentRole) this.switchRole(this.currentRole === "controlling" ? "controlled" : "controlling");
        if (pair.state !== "succeeded") pair.state = "waiting";
        this.trigger(pair, false);
      } else if (pair.state !== "succeeded" || now - (pair.lastResponseAt ?? 0) >= CONSENT_TIMEOUT) {
        this.failPair(now, pair);
      }
      return true;
    }
    const mapped = message.xorMappedAddress();
    if (mapped === undefined) {
      this.dropped.malformed++;
      if (pair.state === "in-progress") this.failPair(now, pair);
      return true;
    }
    // §7.2.5.3.1: a mapped address we did not know is a local peer-reflexive candidate on that base.
    const known = this.locals.some((l) => l.candidate.address === mapped.address && l.candidate.port === mapped.port);
    if (!known && this.locals.filter((l) => l.candidate.type === "prflx").length < LOCAL_PEER_REFLEXIVE_MAX) {
      this.locals.push({
        candidate: {
          foundation: this.foundation("prflx", socketBaseIp(pair.local.socket), ""), component: COMPONENT_ID, transport: "udp",
          priority: transaction.priority, address: mapped.address, port: mapped.port, type: "prflx",
        },
        socket: { ...pair.local.socket }, socketKey: pair.local.socketKey, localPreference: pair.local.localPreference,
      });
    }
    this.succeedPair(now, pair);
    if (transaction.useCandidate && this.currentRole === "controlling") this.markNominated(now, pair);
    if (pair.nominateOnSuccess && this.currentRole === "controlled") this.markNominated(now, pair);
    this.updateSelected(now);
    return true;
  }

  // --- 5. Nomination ---

  private markNominated(now: number, pair: Pair): void {
    pair.nominated = true;
    pair.nominatedAt = now;
    pair.nominating = false;
    pair.nominateOnSuccess = false;
    this.updateSelected(now);
  }

  /**
   * Controlling: nominates the best valid pair if it beats the selected one and nothing better is
   * still untested; when falling back from a pair that failed, at once.
   */
  private nominate(now: number, fallback = false): void {
    this.nominationDeadline = undefined;
    if (this.currentRole !== "controlling") return;
    const current = this.selected !== undefined && this.selected.state === "succeeded" && !this.selected.removed ? this.selected : undefined;
    const best = this.best(this.pairs.filter((p) => p.state === "succeeded"));
    if (best === undefined || best === current || best.nominating) return;
    if (current !== undefined && best.priority <= current.priority) return;
    if (fallback) {
      this.startNomination(now, best);
      return;
    }
    // A better pair still waiting for its first check may work a moment later: give it NOMINATION_WAIT.
    const betterUntested = this.pairs.some((p) => p.priority > best.priority && !p.checked && p.state !== "failed");
    const deadline = (best.validSince ?? now) + NOMINATION_WAIT;
    if (betterUntested && now < deadline) {
      this.nominationDeadline = deadline;
      return;
    }
    this.startNomination(now, best);
    this.updateSelected(now);
  }

  private startNomination(now: number, pair: Pair): void {
    // An earlier nomination still retransmitting could reach the controlled agent after this one
    // and undo it: stop it (its answer, if any, still counts).
    for (const transaction of this.transactions.values()) {
      if (transaction.useCandidate && transaction.pair !== pair && !transaction.cancelled) {
        transaction.cancelled = true;
        transaction.sends = CHECK_RC;
        transaction.pair.nominating = false;
      }
    }
    for (let i = this.triggered.length - 1; i >= 0; i--) {
      if (this.triggered[i]!.useCandidate && this.triggered[i]!.pair !== pair) {
        this.triggered[i]!.pair.nominating = false;
        this.triggered.splice(i, 1);
      }
    }
    pair.nominating = true;
    this.triggered.unshift({ pair, useCandidate: true });
    // The pacer may have nothing else to do: send the nomination now rather than at the next input.
    this.pace(now);
  }

  // --- 6. Consent and background checks ---

  private isIdle(now: number): boolean {
    return this.lastActivity !== undefined && now - this.lastActivity >= IDLE_TIMEOUT;
  }

  private activeInterval(pair: Pair): number {
    if (pair === this.selected) return CONSENT_INTERVAL;
    return pair.state === "succeeded" ? BACKGROUND_CHECK_INTERVAL : FAILED_RECHECK_INTERVAL;
  }

  /**
   * The wait before a pair's next check, randomised over 0.8 to 1.2 times the nominal interval as
   * RFC 7675 §5.1 asks of consent checks, so the checks of many connections do not synchronise.
   */
  private interval(now: number, pair: Pair): number {
    const nominal = this.isIdle(now) ? IDLE_CHECK_INTERVAL : this.activeInterval(pair);
    const [high = 0, low = 0] = this.options.random(2);
    return Math.round(nominal * (CHECK_INTERVAL_JITTER_MIN + CHECK_INTERVAL_JITTER_SPAN * (((high << 8) | low) / 0xffff)));
  }

  /** The first input starts the idle clock: the connection is new, so it counts as active. */
  private touch(now: number): void {
    this.lastActivity ??= now;
  }

  // --- 7. Selection and state events ---

  /**
   * The selected pair failed or went: the controlling agent moves to the next valid pair at once
   * (nominating it), the controlled one to the pair nominated before; "disconnected" only if none.
   */
  private loseSelected(now: number): void {
    this.nominate(now, true);
    this.updateSelected(now);
  }

  private updateSelected(now: number): void {
    let next: Pair | undefined;
    if (this.currentRole === "controlling") {
      // Our own decision: a valid pair is used from the moment its USE-CANDIDATE check goes out.
      next = this.best(this.pairs.filter((p) => p.state === "succeeded" && (p.nominated || p.nominating)));
    } else {
      // The controlled agent follows the controlling one: its latest nomination wins.
      for (const pair of this.pairs.filter((p) => p.nominated && p.state === "succeeded")) {
        if (next === undefined || pair.nominatedAt > next.nominatedAt || (pair.nominatedAt === next.nominatedAt && pair.priority > next.priority)) next = pair;
      }
      if (next === undefined && this.selected !== undefined) {
        // The pair in use failed before the controlling agent nominated another: rather than stop,
        // use the best valid pair (the one it will most likely nominate) until it says otherwise.
        const current = this.selected.state === "succeeded" && !this.selected.removed ? this.selected : undefined;
        next = current ?? this.best(this.pairs.filter((p) => p.state === "succeeded"));
      }
    }
    if (next === this.selected) return;
    const had = this.selected !== undefined;
    this.selected = next;
    if (next === undefined) {
      if (had) this.events.push({ type: "disconnected" });
      return;
    }
    next.nextCheckAt = Math.min(next.nextCheckAt ?? NEVER, now + this.interval(now, next));
    this.events.push({ type: "selected", pair: this.view(next) });
    if (!had) this.events.push({ type: "connected" });
  }

  private reportFailure(): void {
    if (this.failedReported || this.pairs.length === 0) return;
    // A pair checked again after failing (a triggered check, a recheck) still counts as failed until it works.
    if (this.pairs.every((p) => p.checked && p.state !== "succeeded")) {
      this.failedReported = true;
      this.events.push({ type: "failed" });
    }
  }

  // --- Timers and output ---

  /** Runs retransmissions and scheduled checks that are due. */
  handleTimeout(now: number): void {
    this.drive(now);
  }

  /** The next datagram to send, or undefined. */
  pollTransmit(): IceTransmit | undefined {
    return this.transmits.shift();
  }

  /** The next event, or undefined. */
  pollEvent(): IceAgentEvent | undefined {
    return this.events.shift();
  }

  /** When to call handleTimeout next (possibly now or in the past), or undefined if nothing is scheduled. */
  pollTimeout(): number | undefined {
    let t = NEVER;
    for (const transaction of this.transactions.values()) t = Math.min(t, transaction.nextAt);
    if (this.hasPacedWork()) t = Math.min(t, this.nextPaceAt);
    for (const pair of this.pairs) {
      if (pair.nextCheckAt !== undefined) t = Math.min(t, pair.nextCheckAt);
      t = Math.min(t, this.consentDeadline(pair));
    }
    if (this.nominationDeadline !== undefined) t = Math.min(t, this.nominationDeadline);
    return t === NEVER ? undefined : t;
  }
}

function socketBaseIp(socket: IceSocket): string {
  return socket.type === "host" ? socket.address : socket.relayAddress;
}
