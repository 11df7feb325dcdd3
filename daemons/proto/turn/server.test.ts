// TurnServer in virtual time, driven by a small TURN client built from the STUN codec: the whole
// flow (Binding, 401, Allocate, CreatePermission, ChannelBind, Send, Data, ChannelData), every
// error code it answers with, lifetimes of allocations, permissions and channels, credentials that
// expire, nonces that go stale, quotas, dual-stack allocations, forbidden peers, seeded fuzzing and
// the amplification rule (nothing sent to an unauthenticated source is larger than what it sent).

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import type { TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import { decodeChannelData, encodeChannelData } from "../stun/channel-data.js";
import {
  ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_SOFTWARE, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND,
  METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_REFRESH, METHOD_SEND, TRANSPORT_TCP, TRANSPORT_UDP,
} from "../stun/constants.js";
import { mintCredentials, type TurnCredentials } from "../stun/credentials.js";
import { longTermKey, verifyIntegrity } from "../stun/integrity.js";
import { decodeStun, type StunMessage } from "../stun/message.js";
import { NonceMinter } from "./nonce.js";
import { addressBytesOf, classifyAddressBytes } from "./peer-policy.js";
import { minimumRequestSize, TurnServer, type TurnEvent, type TurnServerOptions, type TurnTransmit } from "./server.js";

beforeEach(reportSeedOnFailure);

const REALM = "wardline.test";
const SECRET = "static-auth-secret";
/** Unix seconds at monotonic 0. */
const T0 = 1_764_000_000;
const RELAY4 = "192.0.2.1";
const RELAY6 = "2001:db8::1";
const CLIENT: TransportAddress = { family: 4, address: "198.51.100.7", port: 40000 };
const PEER: TransportAddress = { family: 4, address: "203.0.113.9", port: 5000 };
const PEER2: TransportAddress = { family: 4, address: "203.0.113.10", port: 6000 };
const PEER6: TransportAddress = { family: 6, address: "2001:db8:1::9", port: 7000 };
const S = 1000;
/** Enough SOFTWARE padding for a 401 to any unauthenticated request here (see the amplification rule). */
const PAD = 64;

type Fill = (b: StunBuilder) => void;

interface Drained {
  transmits: TurnTransmit[];
  events: TurnEvent[];
}

function drain(server: TurnServer): Drained {
  const transmits: TurnTransmit[] = [];
  const events: TurnEvent[] = [];
  for (let t = server.pollTransmit(); t !== undefined; t = server.pollTransmit()) transmits.push(t);
  for (let e = server.pollEvent(); e !== undefined; e = server.pollEvent()) events.push(e);
  return { transmits, events };
}

const same = (a: TransportAddress, b: TransportAddress): boolean => a.family === b.family && a.address === b.address && a.port === b.port;
const code = (m: StunMessage): number | undefined => m.errorCode()?.code;
const totalDropped = (server: TurnServer): number => Object.values(server.stats.dropped).reduce((n, v) => n + v, 0);

interface Answer {
  message: StunMessage;
  bytes: Uint8Array;
  events: TurnEvent[];
}

interface RequestOptions {
  /** Add USERNAME, REALM, NONCE and MESSAGE-INTEGRITY (default true). */
  auth?: boolean;
  fingerprint?: boolean;
  /** SOFTWARE of this many characters, to pad an unauthenticated request. */
  pad?: number;
  transactionId?: Uint8Array;
}

/** A TURN client reduced to what the tests need: build, send, decode, retry once on 401/438. */
class TestClient {
  nonce: string | undefined;

  constructor(
    readonly server: TurnServer,
    public address: TransportAddress,
    public credentials: TurnCredentials,
    private readonly r: Rng,
  ) {}

  get key(): Uint8Array {
    return longTermKey(this.credentials.username, REALM, this.credentials.password);
  }

  build(method: number, fill: Fill = () => {}, options: RequestOptions = {}): Uint8Array {
    const b = new StunBuilder(method, "request", options.transactionId ?? this.r.bytes(12));
    fill(b);
    if (options.pad !== undefined) b.addSoftware("p".repeat(options.pad));
    if (options.auth === false) return b.build({ fingerprint: options.fingerprint ?? false });
    b.addUsername(this.credentials.username).addRealm(REALM).addNonce(this.nonce ?? "no-nonce-yet");
    return b.build({ integrity: this.key, fingerprint: options.fingerprint ?? false });
  }

  /** Sends bytes from this client's address; returns everything the server produced. */
  send(now: number, bytes: Uint8Array): Drained {
    this.server.handleClientDatagram(now, this.address, bytes);
    return drain(this.server);
  }

  /** One request; the one answer to it (asserted). */
  request(now: number, method: number, fill: Fill = () => {}, options: RequestOptions = {}): Answer {
    const out = this.send(now, this.build(method, fill, options));
    const replies = out.transmits.filter((t) => t.via === "listener" && same(t.to, this.address));
    expect(replies, `one answer to method ${method}`).toHaveLength(1);
    const decoded = decodeStun(replies[0]!.bytes);
    if (!decoded.ok) throw new Error(`undecodable answer: ${decoded.detail}`);
    return { message: decoded.message, bytes: replies[0]!.bytes, events: out.events };
  }

  /** An authenticated request as a real client makes it: first without credentials if it has no nonce, then again after 401 or 438. */
  transact(now: number, method: number, fill: Fill = () => {}): Answer {
    if (this.nonce === undefined) {
      const challenge = this.request(now, method, fill, { auth: false, pad: PAD });
      expect(code(challenge.message)).toBe(401);
      this.nonce = challenge.message.nonce();
    }
    let answer = this.request(now, method, fill);
    const error = code(answer.message);
    if ((error === 401 || error === 438) && answer.message.nonce() !== undefined) {
      this.nonce = answer.message.nonce();
      answer = this.request(now, method, fill);
    }
    return answer;
  }

  allocate(now: number, fill: Fill = () => {}): Answer {
    return this.transact(now, METHOD_ALLOCATE, (b) => {
      b.addRequestedTransport(TRANSPORT_UDP);
      fill(b);
    });
  }

  sendIndication(now: number, peer: TransportAddress, data: Uint8Array): Drained {
    const b = new StunBuilder(METHOD_SEND, "indication", this.r.bytes(12)).addXorPeerAddress(peer).addData(data);
    return this.send(now, b.build());
  }

  /** Checks an authenticated answer: MESSAGE-INTEGRITY under this client's key, and FINGERPRINT. */
  expectAuthenticated(answer: Answer): void {
    expect(verifyIntegrity(answer.message, answer.bytes, this.key).ok, "MESSAGE-INTEGRITY with the request's key").toBe(true);
    expect(answer.message.has(ATTR_FINGERPRINT)).toBe(true);
  }
}

function harness(label: string, overrides: Partial<TurnServerOptions> = {}) {
  const r = rng(label);
  const opened: { relayId: number; family: 4 | 6; port: number }[] = [];
  let nextRelay = 1;
  const server = new TurnServer({
    realm: REALM,
    secrets: [SECRET],
    random: (n) => r.bytes(n),
    wallClockAtZeroSeconds: T0,
    relayAddress: { 4: RELAY4, 6: RELAY6 },
    openRelay: (family) => {
      const relayId = nextRelay++;
      opened.push({ relayId, family, port: 50000 + relayId });
      return { relayId, port: 50000 + relayId };
    },
    ...overrides,
  });
  const client = (address: TransportAddress = CLIENT, id = "alice", expiresAt = T0 + 86_400, secret = SECRET) =>
    new TestClient(server, address, mintCredentials(secret, id, expiresAt), r);
  return { r, server, opened, client };
}

/** Runs the server's timers up to `until`, collecting what they produce, with the time each event came. */
function runTimers(server: TurnServer, until: number): { at: number; event: TurnEvent }[] {
  const out: { at: number; event: TurnEvent }[] = [];
  for (let t = server.pollTimeout(); t !== undefined && t <= until; t = server.pollTimeout()) {
    server.handleTimeout(t);
    for (const event of drain(server).events) out.push({ at: t, event });
  }
  return out;
}

describe("TurnServer: the whole flow", () => {
  it("Binding, 401, Allocate, CreatePermission, ChannelBind, Send, Data, ChannelData, delete: answers and events in order", () => {
    const { server, opened, client } = harness("turn/flow");
    const alice = client();

    // Binding needs no credentials; FINGERPRINT comes back when the request had it.
    const binding = alice.request(0, METHOD_BINDING, () => {}, { auth: false, pad: 16, fingerprint: true });
    expect(binding.message.class).toBe("success");
    expect(binding.message.xorMappedAddress()).toEqual(CLIENT);
    expect(binding.message.has(ATTR_FINGERPRINT)).toBe(true);

    // The first Allocate has no credentials: 401 with REALM and NONCE.
    const challenge = alice.request(0, METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP), { auth: false, pad: PAD });
    expect(code(challenge.message)).toBe(401);
    expect(challenge.message.realm()).toBe(REALM);
    expect(challenge.message.nonce()).toMatch(/^[A-Za-z0-9+/]{8}$/);
    alice.nonce = challenge.message.nonce();

    const allocated = alice.request(10, METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP));
    expect(allocated.message.class).toBe("success");
    alice.expectAuthenticated(allocated);
    expect(opened).toEqual([{ relayId: 1, family: 4, port: 50001 }]);
    expect(allocated.message.xorRelayedAddresses()).toEqual([{ family: 4, address: RELAY4, port: 50001 }]);
    expect(allocated.message.xorMappedAddress()).toEqual(CLIENT);
    expect(allocated.message.lifetime()).toBe(600);
    expect(allocated.message.software()).toBe("wardline");
    expect(server.stats.allocations).toBe(1);

    const permitted = alice.request(20, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER));
    expect(permitted.message.class).toBe("success");
    alice.expectAuthenticated(permitted);
    expect(permitted.events, "a permission alone installs nothing in the engine").toEqual([]);
    expect(server.stats.permissions).toBe(1);

    const bound = alice.request(30, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4000).addXorPeerAddress(PEER2));
    expect(bound.message.class).toBe("success");
    alice.expectAuthenticated(bound);
    expect(bound.events).toEqual([{ type: "channel-bound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER2 }]);
    expect(server.stats.channels).toBe(1);
    expect(server.stats.permissions, "ChannelBind installs PEER2's permission").toBe(2);

    // Send: relayed to a permitted peer from the relay socket; to anyone else, dropped.
    const sent = alice.sendIndication(40, PEER, Uint8Array.of(1, 2, 3));
    expect(sent.transmits).toEqual([{ via: "relay", relayId: 1, to: PEER, bytes: Uint8Array.of(1, 2, 3) }]);
    const stranger = { family: 4 as const, address: "203.0.113.77", port: 1 };
    expect(alice.sendIndication(41, stranger, Uint8Array.of(9)).transmits).toEqual([]);
    expect(server.stats.dropped["send-no-permission"]).toBe(1);

    // A peer datagram without a channel: a Data indication; the permission ignores the port.
    server.handlePeerDatagram(50, 1, { ...PEER, port: 5999 }, Uint8Array.of(7, 7));
    const data = drain(server).transmits;
    expect(data).toHaveLength(1);
    expect(data[0]!.via).toBe("listener");
    expect(data[0]!.to).toEqual(CLIENT);
    const indication = decodeStun(data[0]!.bytes);
    if (!indication.ok) throw new Error(indication.detail);
    expect(indication.message.method).toBe(METHOD_DATA);
    expect(indication.message.class).toBe("indication");
    expect(indication.message.xorPeerAddress()).toEqual({ ...PEER, port: 5999 });
    expect(indication.message.data()).toEqual(Uint8Array.of(7, 7));

    // From the channel's peer (the engine raced us): ChannelData, as §11.3 requires.
    server.handlePeerDatagram(51, 1, PEER2, Uint8Array.of(8));
    const channelData = drain(server).transmits;
    expect(channelData).toHaveLength(1);
    expect(decodeChannelData(channelData[0]!.bytes)).toMatchObject({ ok: true, channel: 0x4000, data: Uint8Array.of(8) });

    // From a peer without a permission: dropped.
    server.handlePeerDatagram(52, 1, stranger, Uint8Array.of(1));
    expect(drain(server).transmits).toEqual([]);
    expect(server.stats.dropped["peer-no-permission"]).toBe(1);

    // ChannelData at the listener is the engine's; whatever reaches us is counted and dropped.
    expect(alice.send(53, encodeChannelData(0x4000, Uint8Array.of(1))).transmits).toEqual([]);
    expect(server.stats.dropped["channel-data"]).toBe(1);

    // Refresh with lifetime 0 deletes: the channel leaves the engine first, then the relay socket closes.
    const deleted = alice.request(60, METHOD_REFRESH, (b) => b.addLifetime(0));
    expect(deleted.message.class).toBe("success");
    expect(deleted.message.lifetime()).toBe(0);
    alice.expectAuthenticated(deleted);
    expect(deleted.events).toEqual([
      { type: "channel-unbound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER2 },
      { type: "allocation-closed", relayId: 1 },
    ]);
    expect(server.stats).toMatchObject({ allocations: 0, channels: 0, permissions: 0 });
    expect(server.pollTimeout(), "no timers left").toBeUndefined();
    // §8.3: a retransmitted delete finds no allocation: 437, which the client takes as success.
    expect(code(alice.request(61, METHOD_REFRESH, (b) => b.addLifetime(0)).message)).toBe(437);
    expect(server.stats.requests).toBe(7);
  });

  it("a retransmitted Allocate gets the same success response; a new one on the same 5-tuple gets 437", () => {
    const { server, opened, client } = harness("turn/retransmit");
    const alice = client();
    const allocate: Fill = (b) => b.addRequestedTransport(TRANSPORT_UDP);
    alice.nonce = alice.request(0, METHOD_ALLOCATE, allocate, { auth: false, pad: PAD }).message.nonce();
    const transactionId = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
    const created = alice.request(1, METHOD_ALLOCATE, allocate, { transactionId });
    const again = alice.request(2, METHOD_ALLOCATE, allocate, { transactionId });
    expect(created.message.class).toBe("success");
    expect(again.bytes).toEqual(created.bytes);
    expect(opened, "one relay socket").toHaveLength(1);
    const second = alice.request(3, METHOD_ALLOCATE, allocate);
    expect(code(second.message)).toBe(437);
    alice.expectAuthenticated(second);
    expect(server.stats.allocations).toBe(1);
  });

  it("a source holding an allocation gets full answers (SOFTWARE, reason phrases) even to small requests", () => {
    const { client } = harness("turn/holder");
    const alice = client();
    alice.allocate(0);
    const binding = alice.request(1, METHOD_BINDING, () => {}, { auth: false });
    expect(binding.bytes.length).toBeGreaterThan(20);
    expect(binding.message.software()).toBe("wardline");
    const unknownMethod = alice.request(2, 0x0ab, () => {}, { auth: false });
    expect(unknownMethod.message.errorCode()).toEqual({ code: 400, reason: "Bad Request" });
  });
});

describe("TurnServer: error responses", () => {
  it("authentication: 401 without MESSAGE-INTEGRITY, 400 without USERNAME/REALM/NONCE, 438 for a foreign nonce, 401 for bad HMAC, expired or malformed usernames", () => {
    const { client } = harness("turn/auth-errors");
    const alice = client();
    const allocate: Fill = (b) => b.addRequestedTransport(TRANSPORT_UDP);
    const none = alice.request(0, METHOD_ALLOCATE, allocate, { auth: false, pad: PAD });
    expect(code(none.message)).toBe(401);
    expect(none.message.has(ATTR_MESSAGE_INTEGRITY), "401 carries no MESSAGE-INTEGRITY").toBe(false);
    alice.nonce = none.message.nonce();

    // MESSAGE-INTEGRITY without USERNAME: 400.
    const bare = new StunBuilder(METHOD_ALLOCATE, "request", new Uint8Array(12)).addRequestedTransport(TRANSPORT_UDP).addSoftware("p".repeat(PAD));
    const noUser = alice.send(0, bare.build({ integrity: alice.key }));
    expect(code(decodeOk(noUser.transmits[0]!.bytes))).toBe(400);

    // A nonce this server did not issue (or issued to someone else): 438 and a new one.
    alice.nonce = "AAAAAAAA";
    const foreign = alice.request(0, METHOD_ALLOCATE, allocate);
    expect(code(foreign.message)).toBe(438);
    expect(foreign.message.realm()).toBe(REALM);
    alice.nonce = foreign.message.nonce();

    // The wrong password (another secret): 401.
    const mallory = client(CLIENT, "alice", T0 + 86_400, "not-the-secret");
    mallory.nonce = alice.nonce;
    expect(code(mallory.request(0, METHOD_ALLOCATE, allocate).message)).toBe(401);

    // Expired and malformed usernames: 401.
    const late = client(CLIENT, "alice", T0 - 1);
    late.nonce = alice.nonce;
    expect(code(late.request(0, METHOD_ALLOCATE, allocate).message)).toBe(401);
    const odd = new TestClient(alice.server, CLIENT, { username: "alice", password: "x" }, rng("odd"));
    odd.nonce = alice.nonce;
    expect(code(odd.request(0, METHOD_ALLOCATE, allocate).message)).toBe(401);

    // And with all that right, success.
    expect(alice.request(0, METHOD_ALLOCATE, allocate).message.class).toBe("success");
  });

  it("420 lists unknown comprehension-required attributes, after authentication; unknown optional ones are ignored", () => {
    const { client } = harness("turn/420");
    const alice = client();
    const answer = alice.allocate(0, (b) => b.add(0x7001, Uint8Array.of(1, 2, 3, 4)).add(0x0030, new Uint8Array(0)).add(0xc001, Uint8Array.of(1)));
    expect(code(answer.message)).toBe(420);
    expect(answer.message.unknownAttributes()).toEqual([0x7001, 0x0030]);
    alice.expectAuthenticated(answer);
    expect(alice.allocate(1, (b) => b.add(0xc001, Uint8Array.of(1))).message.class).toBe("success");
    // A Binding (no credentials) gets its 420 too, if the request is large enough to carry it.
    const binding = alice.request(2, METHOD_BINDING, (b) => b.add(0x7002, new Uint8Array(8)), { auth: false });
    expect(code(binding.message)).toBe(420);
    expect(binding.message.unknownAttributes()).toEqual([0x7002]);
  });

  it("Allocate: 400, 437, 440, 442, 486, 508 as RFC 8656 §7.2 orders them", () => {
    const cases: { name: string; fill: Fill; transport?: number | null; expect: number; options?: Partial<TurnServerOptions> }[] = [
      { name: "no REQUESTED-TRANSPORT", fill: () => {}, transport: null, expect: 400 },
      { name: "TCP", fill: () => {}, transport: TRANSPORT_TCP, expect: 442 },
      { name: "REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY", fill: (b) => b.addRequestedAddressFamily(4).addAdditionalAddressFamily(6), expect: 400 },
      { name: "ADDITIONAL-ADDRESS-FAMILY IPv4", fill: (b) => b.addAdditionalAddressFamily(4), expect: 400 },
      { name: "an unknown family", fill: (b) => b.add(0x0017, Uint8Array.of(3, 0, 0, 0)), expect: 440 },
      { name: "a malformed family", fill: (b) => b.add(0x0017, Uint8Array.of(1, 0)), expect: 400 },
      { name: "IPv6 without an IPv6 relay address", fill: (b) => b.addRequestedAddressFamily(6), expect: 440, options: { relayAddress: { 4: RELAY4 } } },
      { name: "IPv4 (the default) without an IPv4 relay address", fill: () => {}, expect: 440, options: { relayAddress: { 6: RELAY6 } } },
      { name: "EVEN-PORT with R (a reservation)", fill: (b) => b.addEvenPort(true), expect: 508 },
      { name: "EVEN-PORT without an even port to be had", fill: (b) => b.addEvenPort(false), expect: 508, options: { openRelay: () => ({ relayId: 1, port: 50001 }) } },
      { name: "EVEN-PORT R with ADDITIONAL-ADDRESS-FAMILY", fill: (b) => b.addEvenPort(true).addAdditionalAddressFamily(6), expect: 400 },
      { name: "RESERVATION-TOKEN", fill: (b) => b.addReservationToken(new Uint8Array(8)), expect: 508 },
      { name: "RESERVATION-TOKEN with EVEN-PORT", fill: (b) => b.addReservationToken(new Uint8Array(8)).addEvenPort(false), expect: 400 },
      { name: "a malformed LIFETIME", fill: (b) => b.add(0x000d, Uint8Array.of(1)), expect: 400 },
      { name: "no relay port left", fill: () => {}, expect: 508, options: { openRelay: () => undefined } },
    ];
    for (const c of cases) {
      const { client, server } = harness(`turn/allocate-errors/${c.name}`, c.options);
      const alice = client();
      const answer = alice.transact(0, METHOD_ALLOCATE, (b) => {
        if (c.transport !== null) b.addRequestedTransport(c.transport ?? TRANSPORT_UDP);
        c.fill(b);
      });
      expect(code(answer.message), c.name).toBe(c.expect);
      alice.expectAuthenticated(answer);
      expect(answer.message.errorCode()!.reason.length, "a reason phrase to an authenticated request").toBeGreaterThan(0);
      expect(server.stats.allocations, c.name).toBe(0);
    }
  });

  it("EVEN-PORT: odd relay sockets are handed back until an even one comes; eight odd ones are 508", () => {
    const { client, opened } = harness("turn/even-port");
    const answer = client().allocate(0, (b) => b.addEvenPort(false));
    expect(answer.message.xorRelayedAddresses()).toEqual([{ family: 4, address: RELAY4, port: 50002 }]);
    expect(answer.events).toEqual([{ type: "allocation-closed", relayId: 1 }]);
    expect(opened.map((o) => o.port)).toEqual([50001, 50002]);

    let next = 0;
    const odd = harness("turn/even-port-odd", { openRelay: () => ({ relayId: ++next, port: 2 * next + 1 }) });
    const refused = odd.client().allocate(0, (b) => b.addEvenPort(false));
    expect(code(refused.message)).toBe(508);
    expect(refused.events).toEqual(Array.from({ length: 8 }, (_, i) => ({ type: "allocation-closed", relayId: i + 1 })));
    expect(odd.server.stats.allocations).toBe(0);
  });

  it("Refresh, CreatePermission and ChannelBind without an allocation: 437; on another user's: 441", () => {
    const { client } = harness("turn/437-441");
    const alice = client();
    for (const [method, fill] of [
      [METHOD_REFRESH, () => {}],
      [METHOD_CREATE_PERMISSION, (b: StunBuilder) => b.addXorPeerAddress(PEER)],
      [METHOD_CHANNEL_BIND, (b: StunBuilder) => b.addChannelNumber(0x4001).addXorPeerAddress(PEER)],
    ] as [number, Fill][]) {
      expect(code(alice.transact(0, method, fill).message)).toBe(437);
    }
    alice.allocate(0);
    const eve = client(CLIENT, "eve");
    eve.nonce = alice.nonce;
    const hijack = eve.request(1, METHOD_REFRESH);
    expect(code(hijack.message)).toBe(441);
    eve.expectAuthenticated(hijack);
    expect(code(eve.request(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER)).message)).toBe(441);
  });

  it("CreatePermission: 400 without XOR-PEER-ADDRESS, 443 for the other family, 403 for forbidden peers; all or nothing", () => {
    const { client, server } = harness("turn/permission-errors");
    const alice = client();
    alice.allocate(0);
    expect(code(alice.transact(1, METHOD_CREATE_PERMISSION).message)).toBe(400);
    expect(code(alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER6)).message)).toBe(443);
    const mixed = alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER).addXorPeerAddress({ family: 4, address: "10.0.0.1", port: 1 }));
    expect(code(mixed.message)).toBe(403);
    expect(server.stats.permissions, "nothing installed from a refused request").toBe(0);
    const two = alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER).addXorPeerAddress(PEER2));
    expect(two.message.class).toBe("success");
    expect(server.stats.permissions).toBe(2);
  });

  it("ChannelBind: 400 outside 0x4000-0x7FFF (RFC 5766's range, still used by older clients), without a peer, or when the channel or the peer is bound elsewhere; 443; 403", () => {
    const { client } = harness("turn/channel-errors");
    const alice = client();
    alice.allocate(0);
    const bind = (channel: number | undefined, peer: TransportAddress | undefined) =>
      code(alice.transact(1, METHOD_CHANNEL_BIND, (b) => {
        if (channel !== undefined) b.addChannelNumber(channel);
        if (peer !== undefined) b.addXorPeerAddress(peer);
      }).message);
    expect(bind(0x3fff, PEER)).toBe(400);
    expect(bind(0x8000, PEER)).toBe(400);
    expect(bind(undefined, PEER)).toBe(400);
    expect(bind(0x4000, undefined)).toBe(400);
    expect(bind(0x4000, PEER6)).toBe(443);
    expect(bind(0x4000, { family: 4, address: "127.0.0.1", port: 1 })).toBe(403);
    expect(bind(0x4000, PEER)).toBeUndefined();
    expect(bind(0x4000, PEER), "rebinding the same pair refreshes").toBeUndefined();
    expect(bind(0x4000, PEER2), "the channel names another peer").toBe(400);
    expect(bind(0x4001, PEER), "the peer has another channel").toBe(400);
    expect(bind(0x4001, { ...PEER, port: PEER.port + 1 }), "another port of the same IP is another peer").toBeUndefined();
    expect(bind(0x4fff, PEER2)).toBeUndefined();
  });

  it("an unknown method gets 400; responses and unknown indications are dropped", () => {
    const { client, server } = harness("turn/unknown-method");
    const alice = client();
    const answer = alice.request(0, 0x0ab, () => {}, { auth: false, pad: 8 });
    expect(code(answer.message)).toBe(400);
    const sendRequest = alice.request(0, METHOD_SEND, () => {}, { auth: false, pad: 8 });
    expect(code(sendRequest.message), "Send is an indication, never a request").toBe(400);
    const response = new StunBuilder(METHOD_BINDING, "success", new Uint8Array(12)).build();
    expect(alice.send(0, response).transmits).toEqual([]);
    const dataIndication = new StunBuilder(METHOD_DATA, "indication", new Uint8Array(12)).build();
    expect(alice.send(0, dataIndication).transmits).toEqual([]);
    const keepalive = new StunBuilder(METHOD_BINDING, "indication", new Uint8Array(12)).build();
    expect(alice.send(0, keepalive).transmits).toEqual([]);
    expect(server.stats.dropped).toEqual({ "not-request": 1, "unexpected-indication": 1 });
  });
});

describe("TurnServer: lifetimes in virtual time", () => {
  it("LIFETIME: below the default gets the default, above the maximum the maximum (§7.2, §8.2)", () => {
    const { client } = harness("turn/lifetime", { defaultLifetime: 600, maxLifetime: 3600 });
    const alice = client();
    expect(alice.allocate(0, (b) => b.addLifetime(30)).message.lifetime()).toBe(600);
    const refresh = (seconds: number | undefined) =>
      alice.transact(1, METHOD_REFRESH, (b) => (seconds === undefined ? b : b.addLifetime(seconds))).message.lifetime();
    expect(refresh(1200)).toBe(1200);
    expect(refresh(100_000)).toBe(3600);
    expect(refresh(undefined)).toBe(600);
    expect(refresh(599)).toBe(600);
  });

  it("an allocation lives while refreshed and expires a lifetime after the last refresh, closing its channels", () => {
    const { server, client } = harness("turn/refresh-keeps");
    const alice = client();
    alice.allocate(0);
    alice.transact(0, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4000).addXorPeerAddress(PEER));
    for (let t = 250 * S; t <= 3000 * S; t += 250 * S) {
      expect(runTimers(server, t).filter((e) => e.event.type === "allocation-closed")).toEqual([]);
      expect(alice.transact(t, METHOD_REFRESH).message.lifetime()).toBe(600);
      alice.transact(t, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4000).addXorPeerAddress(PEER));
    }
    expect(server.stats).toMatchObject({ allocations: 1, channels: 1, permissions: 1 });
    // However often a client refreshes, the timer heap holds at most two entries per object.
    const heap = (server as unknown as { timers: { items: unknown[] } }).timers.items;
    expect(heap.length).toBeLessThanOrEqual(2 * 3);
    // The channel (refreshed at 3000 s) ends with the allocation at 3600 s; its permission lapsed at 3300 s.
    const events = runTimers(server, 10_000 * S);
    expect(events).toEqual([
      { at: 3300 * S, event: { type: "channel-unbound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER } },
      { at: 3600 * S, event: { type: "allocation-closed", relayId: 1 } },
    ]);
    expect(server.stats).toMatchObject({ allocations: 0, channels: 0, permissions: 0 });
    expect(code(alice.transact(3601 * S, METHOD_REFRESH).message)).toBe(437);
    expect(heap).toHaveLength(0);
  });

  it("a lapsed permission unbinds the channel in the engine; CreatePermission rebinds it; the channel expires after 600 s and stays reserved 300 s more", () => {
    const { server, client } = harness("turn/channel-timeline");
    const alice = client();
    alice.allocate(0, (b) => b.addLifetime(3600));
    const bind = (t: number, channel: number, peer: TransportAddress) =>
      alice.transact(t, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(channel).addXorPeerAddress(peer));
    expect(bind(0, 0x4000, PEER).events).toEqual([{ type: "channel-bound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER }]);
    // Send indications do not refresh a permission (§11.2), nor does relayed traffic.
    for (let t = 10 * S; t < 300 * S; t += 50 * S) alice.sendIndication(t, PEER, Uint8Array.of(1));
    expect(runTimers(server, 299 * S)).toEqual([]);
    expect(server.pollTimeout()).toBe(300 * S);
    expect(runTimers(server, 300 * S)).toEqual([{ at: 300 * S, event: { type: "channel-unbound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER } }]);
    expect(server.stats).toMatchObject({ channels: 1, permissions: 0 });
    expect(alice.sendIndication(301 * S, PEER, Uint8Array.of(1)).transmits, "no permission, no relaying").toEqual([]);
    server.handlePeerDatagram(301 * S, 1, PEER, Uint8Array.of(1));
    expect(drain(server).transmits).toEqual([]);

    const again = alice.transact(400 * S, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER));
    expect(again.events, "the permission is back: so is the channel").toEqual([{ type: "channel-bound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER }]);
    // The channel itself expires at 600 s.
    expect(runTimers(server, 600 * S)).toEqual([{ at: 600 * S, event: { type: "channel-unbound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER } }]);
    expect(server.stats.channels).toBe(0);
    // A peer datagram now gets a Data indication, not ChannelData.
    server.handlePeerDatagram(601 * S, 1, PEER, Uint8Array.of(5));
    expect(decodeOk(drain(server).transmits[0]!.bytes).method).toBe(METHOD_DATA);
    // For 5 minutes neither the number nor the peer may be bound to anything else (§12).
    expect(code(bind(700 * S, 0x4000, PEER2).message)).toBe(400);
    expect(code(bind(700 * S, 0x4001, PEER).message)).toBe(400);
    expect(runTimers(server, 900 * S).map((e) => e.event.type)).toEqual([]);
    expect(bind(901 * S, 0x4000, PEER2).events).toEqual([{ type: "channel-bound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER2 }]);
    expect(bind(902 * S, 0x4001, PEER).message.class).toBe("success");
  });

  it("rebinding the same pair during the reservation revives the channel", () => {
    const { server, client } = harness("turn/revive");
    const alice = client();
    alice.allocate(0);
    const bind = (t: number) => alice.transact(t, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4abc).addXorPeerAddress(PEER));
    bind(0);
    alice.transact(0, METHOD_REFRESH, (b) => b.addLifetime(3600));
    runTimers(server, 700 * S);
    expect(server.stats.channels).toBe(0);
    expect(bind(750 * S).events.map((e) => e.type)).toEqual(["channel-bound"]);
    expect(server.stats.channels).toBe(1);
  });

  it("an allocation that is not refreshed expires at its lifetime: channels unbound, then the relay closed", () => {
    const { server, client } = harness("turn/expire");
    const alice = client();
    alice.allocate(0);
    alice.transact(0, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4000).addXorPeerAddress(PEER));
    alice.transact(250 * S, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4000).addXorPeerAddress(PEER));
    alice.transact(500 * S, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER));
    expect(runTimers(server, 1000 * S)).toEqual([
      { at: 600 * S, event: { type: "channel-unbound", relayId: 1, client: CLIENT, channel: 0x4000, peer: PEER } },
      { at: 600 * S, event: { type: "allocation-closed", relayId: 1 } },
    ]);
    expect(server.pollTimeout()).toBeUndefined();
  });
});

describe("TurnServer: credentials and nonces", () => {
  it("an expired username gets 401; fresh credentials for the same id keep the allocation; another id gets 441", () => {
    const { server, client } = harness("turn/expired-username");
    const alice = client(CLIENT, "alice", T0 + 100);
    alice.allocate(0);
    expect(alice.transact(100 * S, METHOD_REFRESH).message.class, "good during its last second").toBe("success");
    const late = alice.request(101 * S, METHOD_REFRESH);
    expect(code(late.message)).toBe(401);
    expect(late.message.nonce()).toBeDefined();
    alice.credentials = mintCredentials(SECRET, "alice", T0 + 3600);
    expect(alice.transact(102 * S, METHOD_REFRESH).message.class).toBe("success");
    alice.credentials = mintCredentials(SECRET, "bob", T0 + 3600);
    expect(code(alice.transact(103 * S, METHOD_REFRESH).message)).toBe(441);
    expect(server.stats.allocations).toBe(1);
  });

  it("secret rotation: credentials under any configured secret verify", () => {
    const { client } = harness("turn/rotation", { secrets: ["old", new TextEncoder().encode("new")] });
    expect(client(CLIENT, "a", T0 + 60, "old").allocate(0).message.class).toBe("success");
    expect(client({ ...CLIENT, port: 2 }, "b", T0 + 60, "new").allocate(0).message.class).toBe("success");
    expect(code(client({ ...CLIENT, port: 3 }, "c", T0 + 60, "other").allocate(0).message)).toBe(401);
  });

  it("a nonce goes stale after its epoch and the next (600 s each): 438 with a new nonce, then success", () => {
    const { client } = harness("turn/stale-nonce");
    const alice = client();
    alice.allocate(0); // T0 starts an epoch
    const issued = alice.nonce;
    expect(alice.request(1199 * S, METHOD_REFRESH).message.class, "still good in the next epoch").toBe("success");
    const stale = alice.request(1200 * S, METHOD_REFRESH);
    expect(code(stale.message)).toBe(438);
    expect(stale.message.realm()).toBe(REALM);
    expect(stale.message.nonce()).not.toBe(issued);
    alice.nonce = stale.message.nonce();
    const fresh = alice.request(1201 * S, METHOD_REFRESH);
    expect(fresh.message.class).toBe("success");
    alice.expectAuthenticated(fresh);
    // A nonce is bound to the transport address it was issued to.
    const bob = client({ ...CLIENT, port: CLIENT.port + 1 }, "bob");
    bob.nonce = alice.nonce;
    expect(code(bob.request(1202 * S, METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP)).message)).toBe(438);
  });

  it("nonces: good in their epoch and the next, across the wrap of the epoch byte; bound to the client; garbage refused", () => {
    const r = rng("turn/nonce");
    const minter = new NonceMinter(r.bytes(32), 600);
    const epochStart = (epoch: number) => epoch * 600;
    for (const epoch of [0, 254, 255, 256, 511, 5_880_000]) {
      const nonce = minter.issue(epochStart(epoch) + 17, "4/198.51.100.7/40000");
      expect(nonce).toMatch(/^[A-Za-z0-9+/]{8}$/);
      expect(minter.check(nonce, epochStart(epoch), "4/198.51.100.7/40000"), `${epoch}`).toBe(true);
      expect(minter.check(nonce, epochStart(epoch + 1) + 599, "4/198.51.100.7/40000"), `${epoch} + 1`).toBe(true);
      expect(minter.check(nonce, epochStart(epoch + 2), "4/198.51.100.7/40000"), `${epoch} + 2`).toBe(false);
      expect(minter.check(nonce, epochStart(epoch + 256), "4/198.51.100.7/40000"), `${epoch} + 256`).toBe(false);
      expect(minter.check(nonce, epochStart(epoch), "4/198.51.100.7/40001"), "another port").toBe(false);
      expect(new NonceMinter(r.bytes(32), 600).check(nonce, epochStart(epoch), "4/198.51.100.7/40000"), "another server").toBe(false);
    }
    for (const garbage of ["", "AAAA", "AAAAAAA=", "********", "AAAAAAAAAAAA", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"]) {
      expect(minter.check(garbage, 0, "x"), JSON.stringify(garbage)).toBe(false);
    }
  });

  it("quota: maxAllocationsPerUser per credential id (486); freed by a delete; other ids unaffected", () => {
    const { server, client } = harness("turn/quota", { maxAllocationsPerUser: 2 });
    const at = (port: number, id = "alice") => client({ ...CLIENT, port }, id);
    const first = at(1);
    expect(first.allocate(0).message.class).toBe("success");
    expect(at(2).allocate(0).message.class).toBe("success");
    const third = at(3);
    const refused = third.allocate(0);
    expect(code(refused.message)).toBe(486);
    third.expectAuthenticated(refused);
    expect(at(4, "bob").allocate(0).message.class).toBe("success");
    first.transact(1, METHOD_REFRESH, (b) => b.addLifetime(0));
    expect(third.allocate(2).message.class).toBe("success");
    expect(server.stats.allocations).toBe(3);
  });
});

describe("TurnServer: dual-stack allocations", () => {
  it("ADDITIONAL-ADDRESS-FAMILY IPv6 allocates both families; each peer goes through its family's relay; one family can be deleted", () => {
    const { server, opened, client } = harness("turn/dual");
    const alice = client();
    const answer = alice.allocate(0, (b) => b.addAdditionalAddressFamily(6));
    expect(answer.message.class).toBe("success");
    expect(answer.message.xorRelayedAddresses()).toEqual([
      { family: 4, address: RELAY4, port: 50001 },
      { family: 6, address: RELAY6, port: 50002 },
    ]);
    expect(opened.map((o) => o.family)).toEqual([4, 6]);
    alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER).addXorPeerAddress(PEER6));
    expect(alice.sendIndication(2, PEER6, Uint8Array.of(6)).transmits).toEqual([{ via: "relay", relayId: 2, to: PEER6, bytes: Uint8Array.of(6) }]);
    expect(alice.sendIndication(2, PEER, Uint8Array.of(4)).transmits).toEqual([{ via: "relay", relayId: 1, to: PEER, bytes: Uint8Array.of(4) }]);
    const bound = alice.transact(3, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4006).addXorPeerAddress(PEER6));
    expect(bound.events).toEqual([{ type: "channel-bound", relayId: 2, client: CLIENT, channel: 0x4006, peer: PEER6 }]);
    server.handlePeerDatagram(4, 2, PEER6, Uint8Array.of(1));
    expect(decodeChannelData(drain(server).transmits[0]!.bytes)).toMatchObject({ ok: true, channel: 0x4006 });
    // A v6 peer on the v4 relay socket is not a peer of that relay.
    server.handlePeerDatagram(4, 1, PEER6, Uint8Array.of(1));
    expect(server.stats.dropped["peer-family-mismatch"]).toBe(1);

    const dropSix = alice.transact(5, METHOD_REFRESH, (b) => b.addRequestedAddressFamily(6).addLifetime(0));
    expect(dropSix.message.class).toBe("success");
    expect(dropSix.events).toEqual([
      { type: "channel-unbound", relayId: 2, client: CLIENT, channel: 0x4006, peer: PEER6 },
      { type: "allocation-closed", relayId: 2 },
    ]);
    expect(server.stats).toMatchObject({ allocations: 1, permissions: 1 });
    expect(alice.sendIndication(6, PEER, Uint8Array.of(4)).transmits).toHaveLength(1);
    expect(code(alice.transact(6, METHOD_REFRESH, (b) => b.addRequestedAddressFamily(6)).message), "v6 is gone").toBe(443);
    expect(alice.transact(7, METHOD_REFRESH, (b) => b.addLifetime(0)).events).toEqual([{ type: "allocation-closed", relayId: 1 }]);
  });

  it("a dual allocation without IPv6 gets IPv4 alone and ADDRESS-ERROR-CODE: 440 without an address, 508 without a port", () => {
    const noSix = harness("turn/dual-440", { relayAddress: { 4: RELAY4 } });
    const answer = noSix.client().allocate(0, (b) => b.addAdditionalAddressFamily(6));
    expect(answer.message.class).toBe("success");
    expect(answer.message.xorRelayedAddresses()).toHaveLength(1);
    expect(answer.message.addressErrorCode()).toMatchObject({ family: 6, code: 440 });

    const full = harness("turn/dual-508", { openRelay: (family) => (family === 4 ? { relayId: 9, port: 50009 } : undefined) });
    const partial = full.client().allocate(0, (b) => b.addAdditionalAddressFamily(6));
    expect(partial.message.xorRelayedAddresses()).toEqual([{ family: 4, address: RELAY4, port: 50009 }]);
    expect(partial.message.addressErrorCode()).toMatchObject({ family: 6, code: 508 });
  });

  it("REQUESTED-ADDRESS-FAMILY IPv6 allocates an IPv6 relay; IPv4 peers are then 443", () => {
    const { client } = harness("turn/v6-only");
    const alice = client({ family: 6, address: "2001:db8:2::7", port: 40000 });
    const answer = alice.allocate(0, (b) => b.addRequestedAddressFamily(6));
    expect(answer.message.xorRelayedAddresses()).toEqual([{ family: 6, address: RELAY6, port: 50001 }]);
    expect(answer.message.xorMappedAddress()).toEqual(alice.address);
    expect(code(alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER)).message)).toBe(443);
    expect(alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER6)).message.class).toBe("success");
  });
});

describe("TurnServer: forbidden peers", () => {
  const forbidden = [
    "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.255.254", "169.254.1.1", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
  ];
  const privates = ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255"];
  const publics = ["8.8.8.8", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", "203.0.113.9", "223.255.255.255"];
  const forbidden6 = ["::", "::1", "fe80::1", "febf::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.0.1", "64:ff9b::7f00:1"];
  const privates6 = ["fc00::1", "fd12:3456::1", "::ffff:10.1.2.3", "::ffff:192.168.0.1", "64:ff9b::a00:1"];
  const publics6 = ["2001:db8::9", "2606:4700::1111", "::ffff:8.8.8.8", "fec0::1", "64:ff9b::808:808"];

  it("classifies addresses as RFC 8656 §10.2 lets a server restrict them", () => {
    const classOf = (family: 4 | 6, address: string) => classifyAddressBytes(addressBytesOf({ family, address, port: 0 })!);
    for (const a of forbidden) expect(classOf(4, a), a).toBe("forbidden");
    for (const a of privates) expect(classOf(4, a), a).toBe("private");
    for (const a of publics) expect(classOf(4, a), a).toBe("public");
    for (const a of forbidden6) expect(classOf(6, a), a).toBe("forbidden");
    for (const a of privates6) expect(classOf(6, a), a).toBe("private");
    for (const a of publics6) expect(classOf(6, a), a).toBe("public");
  });

  it("CreatePermission and ChannelBind get 403 for them; allowPrivatePeers opens the private ranges only", () => {
    for (const allowPrivatePeers of [false, true]) {
      const { client } = harness(`turn/forbidden/${allowPrivatePeers}`, { allowPrivatePeers });
      const alice = client();
      alice.allocate(0, (b) => b.addAdditionalAddressFamily(6));
      let channel = 0x4000;
      const check = (family: 4 | 6, address: string, allowed: boolean) => {
        const peer = { family, address, port: 9 };
        const permission = alice.transact(1, METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(peer));
        expect(code(permission.message), `CreatePermission ${address}`).toBe(allowed ? undefined : 403);
        const bound = alice.transact(1, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(channel++).addXorPeerAddress(peer));
        expect(code(bound.message), `ChannelBind ${address}`).toBe(allowed ? undefined : 403);
      };
      for (const a of forbidden) check(4, a, false);
      for (const a of forbidden6) check(6, a, false);
      for (const a of privates) check(4, a, allowPrivatePeers);
      for (const a of privates6) check(6, a, allowPrivatePeers);
      for (const a of publics) check(4, a, true);
      for (const a of publics6) check(6, a, true);
    }
  });
});

describe("TurnServer: hostile input", () => {
  it("random and mutated datagrams never throw; each is answered, relayed or counted; unauthenticated sources get no more than they sent", () => {
    const { r, server, client } = harness("turn/fuzz");
    const alice = client();
    alice.allocate(0);
    alice.transact(0, METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4000).addXorPeerAddress(PEER));
    const key = alice.key;
    const templates: Uint8Array[] = [
      alice.build(METHOD_BINDING, () => {}, { auth: false, fingerprint: true }),
      alice.build(METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP), { auth: false, pad: PAD }),
      alice.build(METHOD_REFRESH, (b) => b.addLifetime(600), { fingerprint: true }),
      alice.build(METHOD_CREATE_PERMISSION, (b) => b.addXorPeerAddress(PEER2)),
      alice.build(METHOD_CHANNEL_BIND, (b) => b.addChannelNumber(0x4001).addXorPeerAddress(PEER2)),
      new StunBuilder(METHOD_SEND, "indication", r.bytes(12)).addXorPeerAddress(PEER).addData(r.bytes(40)).build(),
      encodeChannelData(0x4000, r.bytes(30)),
    ];
    const mutate = (bytes: Uint8Array): Uint8Array => {
      const out = bytes.slice();
      switch (r.int(0, 4)) {
        case 0: // flip bits
          for (let i = r.int(1, 4); i > 0 && out.length > 0; i--) out[r.int(0, out.length - 1)]! ^= 1 << r.int(0, 7);
          return out;
        case 1: // truncate
          return out.subarray(0, r.int(0, out.length));
        case 2: // extend
          return Uint8Array.from([...out, ...r.bytes(r.int(1, 12))]);
        case 3: // a random byte
          if (out.length > 0) out[r.int(0, out.length - 1)] = r.int(0, 255);
          return out;
        default: // a length field
          if (out.length > 3) out[r.pick([2, 3])] = r.int(0, 255);
          return out;
      }
    };
    const sources = [CLIENT, ...Array.from({ length: 8 }, (_, i) => ({ family: 4 as const, address: `198.51.100.${100 + i}`, port: 3478 + i }))];
    for (let i = 0; i < 5000; i++) {
      const bytes = r.bool(0.2) ? r.bytes(r.int(0, 120)) : mutate(r.pick(templates));
      const from = r.pick(sources);
      const before = { requests: server.stats.requests, dropped: totalDropped(server) };
      const holder = same(from, CLIENT);
      const now = i * 100;
      expect(() => server.handleClientDatagram(now, from, bytes), r.where(`datagram ${i}`)).not.toThrow();
      const out = drain(server);
      if (r.bool(0.05)) expect(() => server.handlePeerDatagram(now, r.int(0, 3), r.pick([PEER, PEER2, PEER6]), mutate(bytes))).not.toThrow();
      if (r.bool(0.02)) expect(() => server.handleTimeout(now)).not.toThrow();
      drain(server);
      const decoded = decodeStun(bytes);
      const keepalive = decoded.ok && decoded.message.class === "indication" && decoded.message.method === METHOD_BINDING;
      const accounted = server.stats.requests - before.requests + totalDropped(server) - before.dropped + out.transmits.length;
      if (!keepalive) expect(accounted, r.where(`datagram ${i} is answered, relayed or counted`)).toBeGreaterThan(0);
      const authenticated = decoded.ok && verifyIntegrity(decoded.message, bytes, key).ok;
      if (!holder && !authenticated) {
        const sent = out.transmits.filter((t) => t.via === "listener").reduce((n, t) => n + t.bytes.length, 0);
        expect(sent, r.where(`datagram ${i}: amplification`)).toBeLessThanOrEqual(bytes.length);
      }
    }
    expect(server.stats.requests).toBeGreaterThan(500);
    expect(totalDropped(server)).toBeGreaterThan(1000);
    expect(server.stats.dropped["channel-data"]).toBeGreaterThan(0);
    expect(Object.keys(server.stats.dropped).some((k) => k.startsWith("malformed-"))).toBe(true);
  });

  it("amplification: for every datagram from an unauthenticated source, bytes sent ≤ bytes received; padded requests are answered", () => {
    const { r, server, client } = harness("turn/amplification", { realm: "a-realm-long-enough-to-need-padding.example.com" });
    const realm = "a-realm-long-enough-to-need-padding.example.com";
    let port = 10_000;
    const stranger = (id = "alice", expiresAt = T0 + 3600) => {
      const c = client({ family: 4, address: "198.51.100.200", port: port++ }, id, expiresAt);
      return c;
    };
    const nonceFor = (c: TestClient) => {
      // A legitimately issued nonce, obtained with a padded request.
      const challenge = c.request(0, METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP), { auth: false, pad: 120 });
      return challenge.message.nonce();
    };
    const datagrams: { name: string; make: () => { c: TestClient; bytes: Uint8Array } }[] = [
      { name: "bare Binding", make: () => { const c = stranger(); return { c, bytes: c.build(METHOD_BINDING, () => {}, { auth: false }) }; } },
      { name: "Binding with FINGERPRINT", make: () => { const c = stranger(); return { c, bytes: c.build(METHOD_BINDING, () => {}, { auth: false, fingerprint: true }) }; } },
      { name: "Binding with an unknown attribute", make: () => { const c = stranger(); return { c, bytes: c.build(METHOD_BINDING, (b) => b.add(0x7003, new Uint8Array(0)), { auth: false }) }; } },
      { name: "bare Allocate", make: () => { const c = stranger(); return { c, bytes: c.build(METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP), { auth: false }) }; } },
      { name: "Allocate with a garbage nonce", make: () => { const c = stranger(); c.nonce = "x"; return { c, bytes: c.build(METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP)) }; } },
      { name: "Allocate with a bad password", make: () => { const c = stranger("alice", T0 + 60); c.nonce = nonceFor(c); c.credentials = { ...c.credentials, password: "wrong" }; return { c, bytes: c.build(METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP)) }; } },
      { name: "Allocate with an expired username", make: () => { const c = stranger("alice", T0 - 60); c.nonce = nonceFor(c); return { c, bytes: c.build(METHOD_ALLOCATE, (b) => b.addRequestedTransport(TRANSPORT_UDP)) }; } },
      { name: "MESSAGE-INTEGRITY without USERNAME", make: () => { const c = stranger(); return { c, bytes: new StunBuilder(METHOD_REFRESH, "request", r.bytes(12)).build({ integrity: c.key }) }; } },
      { name: "unknown method", make: () => { const c = stranger(); return { c, bytes: c.build(0x0ab, () => {}, { auth: false }) }; } },
      { name: "Refresh without allocation, no credentials", make: () => { const c = stranger(); return { c, bytes: c.build(METHOD_REFRESH, () => {}, { auth: false }) }; } },
    ];
    for (const d of datagrams) {
      for (const pad of [0, 4, 8, 16, 32, 64, 124]) {
        const { c, bytes } = d.make();
        const padded = pad === 0 ? bytes : withSoftware(bytes, pad);
        const out = c.send(0, padded);
        const sent = out.transmits.reduce((n, t) => n + t.bytes.length, 0);
        expect(sent, `${d.name} + ${pad}: ${sent} bytes sent for ${padded.length} received`).toBeLessThanOrEqual(padded.length);
      }
    }
    expect(server.stats.dropped["amplification"]).toBeGreaterThan(0);

    // minimumRequestSize is exact: a request that size is answered, one 4 bytes smaller is not.
    const challengeSize = minimumRequestSize({ kind: "challenge", realm });
    const bindingSize = minimumRequestSize({ kind: "binding", family: 4 });
    for (const [kind, size] of [["challenge", challengeSize], ["binding", bindingSize]] as const) {
      for (const target of [size - 4, size]) {
        const c = stranger();
        const method = kind === "binding" ? METHOD_BINDING : METHOD_REFRESH;
        const base = c.build(method, () => {}, { auth: false });
        const bytes = target - base.length >= 4 ? withSoftware(base, target - base.length - 4) : base;
        expect(bytes.length).toBe(Math.max(target, base.length));
        const out = c.send(0, bytes);
        expect(out.transmits.length, `${kind} request of ${bytes.length} bytes`).toBe(bytes.length >= size ? 1 : 0);
      }
    }
  });

  it("a first Allocate shaped like coturn turnutils_uclient's (52 bytes) gets its 401 under the realm \"wardline\", without FINGERPRINT", () => {
    const { r, client } = harness("turn/uclient-shape", { realm: "wardline" });
    const bytes = new StunBuilder(METHOD_ALLOCATE, "request", r.bytes(12))
      .addRequestedTransport(TRANSPORT_UDP)
      .addLifetime(777)
      .addRequestedAddressFamily(4)
      .build({ fingerprint: true });
    expect(bytes.length).toBe(52);
    const out = client().send(0, bytes);
    expect(out.transmits).toHaveLength(1);
    expect(out.transmits[0]!.bytes.length).toBe(52);
    const answer = decodeOk(out.transmits[0]!.bytes);
    expect(code(answer)).toBe(401);
    expect(answer.realm()).toBe("wardline");
    expect(answer.nonce()).toHaveLength(8);
    expect(answer.has(ATTR_FINGERPRINT), "left out: with it the answer would outgrow the request").toBe(false);
    expect(minimumRequestSize({ kind: "challenge", realm: "wardline" })).toBe(52);
  });

  it("constructor refuses configurations it could not serve", () => {
    const base: TurnServerOptions = {
      realm: REALM, secrets: [SECRET], random: (n) => new Uint8Array(n), wallClockAtZeroSeconds: T0,
      relayAddress: { 4: RELAY4 }, openRelay: () => undefined,
    };
    expect(() => new TurnServer({ ...base, secrets: [] })).toThrow(/secret/);
    expect(() => new TurnServer({ ...base, relayAddress: { 4: "2001:db8::1" } })).toThrow(/relay address/);
    expect(() => new TurnServer({ ...base, defaultLifetime: 900, maxLifetime: 600 })).toThrow(/lifetimes/);
    expect(() => new TurnServer({ ...base, realm: "r".repeat(200) })).toThrow();
  });
});

function decodeOk(bytes: Uint8Array): StunMessage {
  const decoded = decodeStun(bytes);
  if (!decoded.ok) throw new Error(decoded.detail);
  return decoded.message;
}

/**
 * The message re-encoded with SOFTWARE of n characters after its other attributes (before
 * FINGERPRINT): after a MESSAGE-INTEGRITY it is ignored, but it still counts in the datagram's size.
 */
function withSoftware(bytes: Uint8Array, n: number): Uint8Array {
  const message = decodeOk(bytes);
  const b = new StunBuilder(message.method, message.class, message.transactionId.slice());
  for (const a of message.attributes) if (a.type !== ATTR_FINGERPRINT && a.type !== ATTR_SOFTWARE) b.add(a.type, a.value);
  b.addSoftware("s".repeat(n));
  return b.build({ fingerprint: message.has(ATTR_FINGERPRINT) });
}
