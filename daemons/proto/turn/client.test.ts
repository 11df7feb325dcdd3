// TurnAllocation in virtual time, against the scripted server of testing.ts (real STUN bytes, real
// long-term auth): the 401 and 438 dances, RFC 8489 retransmission timings, refresh timelines
// over hours, permissions and channels, data both ways (held until the peer's permission is
// confirmed), errors as failed events, forged responses dropped, and fuzzed datagrams that never throw.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import type { TransportAddress } from "../stun/attributes.js";
import { StunBuilder } from "../stun/builder.js";
import { encodeChannelData } from "../stun/channel-data.js";
import {
  ATTR_MESSAGE_INTEGRITY, ATTR_SOFTWARE, ERROR_ALLOCATION_MISMATCH, ERROR_ALLOCATION_QUOTA_REACHED, ERROR_BAD_REQUEST,
  ERROR_FORBIDDEN, ERROR_STALE_NONCE, ERROR_UNAUTHENTICATED, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
  METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_REFRESH, METHOD_SEND,
} from "../stun/constants.js";
import { mintCredentials } from "../stun/credentials.js";
import { longTermKey, verifyIntegrity } from "../stun/integrity.js";
import { decodeStun } from "../stun/message.js";
import {
  CHANNEL_REFRESH_INTERVAL, MAX_OUTSTANDING_TRANSACTIONS, PERMISSION_REFRESH_INTERVAL, RC, RM, RTO, TurnAllocation,
  UNAUTHENTICATED_REQUEST_MIN_SIZE, type TurnClientEvent, type TurnClientOptions,
} from "./client.js";
import { PERMISSION_HELD_MAX } from "./constants.js";
import { TurnServer } from "./server.js";
import { ScriptedTurnServer, TurnWorld } from "./testing.js";

beforeEach(reportSeedOnFailure);

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DELAY = 10; // one way, ms

const SERVER: TransportAddress = { family: 4, address: "203.0.113.1", port: 3478 };
const CLIENT: TransportAddress = { family: 4, address: "198.51.100.7", port: 50_000 };
const RELAYED: TransportAddress = { family: 4, address: "203.0.113.1", port: 49_152 };
const RELAYED6: TransportAddress = { family: 6, address: "2001:db8::1", port: 49_153 };
const PEER: TransportAddress = { family: 4, address: "192.0.2.10", port: 51_820 };
const PEER2: TransportAddress = { family: 4, address: "192.0.2.20", port: 51_821 };
const PEER6: TransportAddress = { family: 6, address: "2001:db8:1::20", port: 51_820 };
const REALM = "wardline";

/** The RFC 8489 §6.2.1 send times of one transaction from t0 (0, 500, 1500 … 31500) and its give-up time. */
const SEND_OFFSETS = Array.from({ length: RC }, (_, i) => RTO * (2 ** i - 1));
const GIVE_UP = SEND_OFFSETS[RC - 1]! + RM * RTO;

function world(label: string, options: Partial<TurnClientOptions> = {}, server: { maxLifetime?: number } = {}) {
  const r = rng(label);
  const credentials = mintCredentials("secret", "client-1", 1_900_000_000);
  const client = new TurnAllocation({ server: SERVER, ...credentials, random: (n) => r.bytes(n), ...options });
  const fake = new ScriptedTurnServer({
    address: SERVER, realm: REALM, ...credentials, relayed: { 4: RELAYED, 6: RELAYED6 }, random: (n) => r.bytes(n), ...server,
  });
  const w = new TurnWorld(client, fake, CLIENT, DELAY);
  return { r, w, client, server: fake, credentials };
}

/** Allocates and runs until the allocation exists. */
function allocated(label: string, options: Partial<TurnClientOptions> = {}, server: { maxLifetime?: number } = {}) {
  const setup = world(label, options, server);
  setup.w.act((c, now) => c.allocate(now));
  setup.w.run(setup.w.now + 100);
  expect(setup.client.allocated).toBe(true);
  return setup;
}

const gaps = (times: number[]): number[] => times.slice(1).map((t, i) => t - times[i]!);

describe("TurnAllocation: allocate", () => {
  it("401 then success: learns REALM and NONCE, retries once with MESSAGE-INTEGRITY under MD5(username:realm:password)", () => {
    const { w, server, credentials } = world("turn-client/401");
    w.act((c, now) => c.allocate(now));
    w.run(1000);
    const allocates = w.sentOf(METHOD_ALLOCATE);
    expect(allocates).toHaveLength(2);
    const [first, second] = allocates;
    expect(first!.message.has(ATTR_MESSAGE_INTEGRITY)).toBe(false);
    expect(first!.message.requestedTransport()).toBe(17);
    expect(first!.message.lifetime()).toBe(600);
    expect(first!.message.requestedAddressFamily()).toBeUndefined(); // IPv4 by default
    expect(second!.at).toBe(2 * DELAY);
    expect(second!.message.username()).toBe(credentials.username);
    expect(second!.message.realm()).toBe(REALM);
    expect(second!.message.nonce()).toBe(server.nonce);
    expect(Buffer.from(second!.message.transactionId).equals(Buffer.from(first!.message.transactionId))).toBe(false);
    const bytes = w.sent.find((s) => s.message === second!.message)!.bytes;
    expect(verifyIntegrity(second!.message, bytes, longTermKey(credentials.username, REALM, credentials.password)).ok).toBe(true);

    expect(w.events.map((e) => e.event.type)).toEqual(["allocated"]);
    const [event] = w.eventsOf("allocated");
    expect(event).toEqual({ type: "allocated", relayed: [RELAYED], mapped: CLIENT, lifetime: 600, at: 4 * DELAY });
  });

  it("pads the request without credentials with SOFTWARE to UNAUTHENTICATED_REQUEST_MIN_SIZE; authenticated ones carry SOFTWARE as given", () => {
    const { w } = world("turn-client/pad", { software: "wardline-test" });
    w.act((c, now) => c.allocate(now));
    w.run(1000);
    const [first, second] = w.sentOf(METHOD_ALLOCATE);
    expect(w.sent[0]!.bytes.length).toBeGreaterThanOrEqual(UNAUTHENTICATED_REQUEST_MIN_SIZE);
    expect(first!.message.software()?.trimEnd()).toBe("wardline-test");
    expect(second!.message.software()).toBe("wardline-test");
    const unpadded = world("turn-client/pad-off", { padUnauthenticated: 0 });
    unpadded.w.act((c, now) => c.allocate(now));
    expect(unpadded.w.sent[0]!.message!.has(ATTR_SOFTWARE)).toBe(false);
  });

  it("asks for IPv6 with REQUESTED-ADDRESS-FAMILY, and for both with ADDITIONAL-ADDRESS-FAMILY alone (a dual allocation)", () => {
    const v6 = allocated("turn-client/v6", { family: 6 });
    expect(v6.w.sentOf(METHOD_ALLOCATE)[1]!.message.requestedAddressFamily()).toBe(6);
    expect(v6.w.eventsOf("allocated")[0]!.relayed).toEqual([RELAYED6]);

    const dual = allocated("turn-client/dual", { additionalFamily: true });
    const request = dual.w.sentOf(METHOD_ALLOCATE)[1]!.message;
    expect(request.additionalAddressFamily()).toBe(6);
    expect(request.requestedAddressFamily()).toBeUndefined();
    expect(dual.w.eventsOf("allocated")[0]!.relayed).toEqual([RELAYED, RELAYED6]);
    expect(dual.client.relayedAddresses).toEqual([RELAYED, RELAYED6]);
    expect(() => new TurnAllocation({ server: SERVER, username: "u", password: "p", random: () => new Uint8Array(12), family: 6, additionalFamily: true })).toThrow(RangeError);
  });

  it("a second 401 (wrong password) fails the allocation with code 401, after exactly one authenticated try", () => {
    const { w, server } = world("turn-client/401-twice", { password: "wrong" });
    w.act((c, now) => c.allocate(now));
    w.run(10 * SECOND);
    expect(w.sentOf(METHOD_ALLOCATE)).toHaveLength(2);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "allocate", code: ERROR_UNAUTHENTICATED, at: 4 * DELAY }]);
    expect(server.allocation).toBeUndefined();
    expect(w.client.pollTimeout()).toBeUndefined();
  });

  it("438 then success: retries with the new NONCE (and a cached nonce goes first on the next allocation)", () => {
    const { w, server } = world("turn-client/438");
    w.act((c, now) => c.allocate(now));
    w.run(SECOND);
    const nonceBefore = server.nonce;
    // A new allocation after release reuses the nonce it knows: stale now, so one 438.
    w.act((c, now) => c.release(now));
    w.run(2 * SECOND);
    server.rotateNonce();
    w.act((c, now) => c.allocate(now));
    w.run(3 * SECOND);
    const later = w.sentOf(METHOD_ALLOCATE).slice(2);
    expect(later.map((s) => s.message.nonce())).toEqual([nonceBefore, server.nonce]);
    expect(w.eventsOf("allocated")).toHaveLength(2);
    expect(w.eventsOf("failed")).toEqual([]);
  });

  it("438 on a Refresh: retried with the new nonce, the allocation lives on", () => {
    const { w, server } = allocated("turn-client/438-refresh");
    w.run(9 * MINUTE - SECOND);
    server.rotateNonce();
    w.run(10 * MINUTE);
    const refreshes = w.sentOf(METHOD_REFRESH);
    expect(refreshes.map((s) => s.message.nonce())).toEqual(["nonce-0", "nonce-1"]);
    expect(server.log.filter((l) => l.kind === "refresh")).toHaveLength(1);
    expect(w.eventsOf("failed")).toEqual([]);
  });

  it("438 forever: gives up after a few retries instead of looping", () => {
    const { w, server } = world("turn-client/438-loop");
    w.act((c, now) => c.allocate(now));
    server.intercept = (req) => {
      if (!req.message.has(ATTR_MESSAGE_INTEGRITY)) return undefined;
      server.rotateNonce();
      return server.challenge(req.message, ERROR_STALE_NONCE);
    };
    w.run(10 * SECOND);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "allocate", code: ERROR_STALE_NONCE }]);
    expect(w.sentOf(METHOD_ALLOCATE).length).toBeLessThanOrEqual(6);
  });

  it("no answer at all: 7 sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s, then failed at 39.5 s", () => {
    const { w } = world("turn-client/timeout");
    w.lose = (d) => !d.toServer;
    w.run(5 * SECOND); // start late, to see the offsets are from the first send
    w.act((c, now) => c.allocate(now));
    w.run(2 * MINUTE);
    const times = w.sentOf(METHOD_ALLOCATE).map((s) => s.at - 5 * SECOND);
    expect(times).toEqual([0, 500, 1500, 3500, 7500, 15_500, 31_500]);
    expect(times).toEqual(SEND_OFFSETS);
    expect(new Set(w.sentOf(METHOD_ALLOCATE).map((s) => Buffer.from(s.message.transactionId).toString("hex"))).size, "retransmissions keep the transaction ID").toBe(1);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "allocate", at: 5 * SECOND + GIVE_UP }]);
    expect(w.eventsOf("failed")[0]!.code).toBeUndefined();
    expect(w.client.pollTimeout()).toBeUndefined();
  });

  it("lost responses: the retransmission gets the server's cached answer, and the 401 retry starts its own timer", () => {
    const { w } = world("turn-client/lost");
    let lostAnswers = 0;
    w.lose = (d) => !d.toServer && lostAnswers++ < 3; // the first three answers (all 401s) are lost
    w.act((c, now) => c.allocate(now));
    w.run(MINUTE);
    const times = w.sentOf(METHOD_ALLOCATE).map((s) => s.at);
    // 401s to the sends at 0, 500, 1500 are lost; the one to 3500 arrives at 3520; the retry is answered.
    expect(times).toEqual([0, 500, 1500, 3500, 3500 + 2 * DELAY]);
    expect(w.eventsOf("allocated")).toMatchObject([{ at: 3500 + 4 * DELAY }]);
  });

  it("error responses surface as failed events: 486 on Allocate", () => {
    const { w, server } = world("turn-client/486");
    server.intercept = (req) =>
      req.message.has(ATTR_MESSAGE_INTEGRITY) ? server.error(req.message, ERROR_ALLOCATION_QUOTA_REACHED, "Allocation Quota Reached") : undefined;
    w.act((c, now) => c.allocate(now));
    w.run(MINUTE);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "allocate", code: ERROR_ALLOCATION_QUOTA_REACHED, reason: "Allocation Quota Reached" }]);
    expect(w.client.allocated).toBe(false);
  });

  it("a response with a wrong MESSAGE-INTEGRITY is dropped: retransmission goes on, the real answer counts", () => {
    const { w, server } = world("turn-client/forged");
    const wrongKey = longTermKey("someone", REALM, "else");
    let forged = 0;
    server.intercept = (req) => {
      if (!req.message.has(ATTR_MESSAGE_INTEGRITY) || forged++ > 0) return undefined;
      return server.success(req.message, (b) => b.addXorRelayedAddress(PEER).addLifetime(600), wrongKey);
    };
    w.act((c, now) => c.allocate(now));
    w.run(MINUTE);
    const allocates = w.sentOf(METHOD_ALLOCATE);
    expect(allocates.map((s) => s.at)).toEqual([0, 2 * DELAY, 2 * DELAY + RTO]);
    expect(w.client.dropped.integrity).toBe(1);
    expect(w.eventsOf("allocated")).toMatchObject([{ relayed: [RELAYED], at: 2 * DELAY + RTO + 2 * DELAY }]);
  });

  it("only forged answers: fails at give-up time, saying MESSAGE-INTEGRITY failed", () => {
    const { w, server } = world("turn-client/forged-all");
    const wrongKey = longTermKey("someone", REALM, "else");
    server.intercept = (req) =>
      req.message.has(ATTR_MESSAGE_INTEGRITY) ? server.success(req.message, (b) => b.addXorRelayedAddress(PEER).addLifetime(600), wrongKey) : undefined;
    w.act((c, now) => c.allocate(now));
    w.run(2 * MINUTE);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "allocate", at: 2 * DELAY + GIVE_UP, reason: expect.stringMatching(/MESSAGE-INTEGRITY/) }]);
    expect(w.client.dropped.integrity).toBe(RC);
  });

  it("an unsigned success to an authenticated request is dropped like a forged one", () => {
    const { w, server } = world("turn-client/unsigned");
    server.intercept = (req) =>
      req.message.has(ATTR_MESSAGE_INTEGRITY) ? server.success(req.message, (b) => b.addXorRelayedAddress(PEER).addLifetime(600), null) : undefined;
    w.act((c, now) => c.allocate(now));
    w.run(5 * SECOND);
    expect(w.eventsOf("allocated")).toEqual([]);
    expect(w.client.dropped.integrity).toBeGreaterThan(0);
  });

  it("responses and data from anyone but the server are ignored", () => {
    const { w, server } = world("turn-client/foreign");
    w.act((c, now) => c.allocate(now));
    const request = w.sent[0]!.message!;
    const spoof = server.challenge(request, ERROR_UNAUTHENTICATED);
    w.client.handleDatagram(0, { ...SERVER, port: 3479 }, spoof);
    w.client.handleDatagram(0, { ...SERVER, address: "203.0.113.2" }, spoof);
    w.drain();
    expect(w.client.dropped.foreign).toBe(2);
    expect(w.sent).toHaveLength(1);
  });
});

describe("TurnAllocation: refresh timelines", () => {
  it("five hours: a Refresh every 540 s for a 600 s lifetime, the allocation never lapses at the server", () => {
    const { w, server } = allocated("turn-client/refresh-hours");
    w.run(5 * HOUR);
    const refreshes = w.sentOf(METHOD_REFRESH);
    expect(refreshes.length).toBe(Math.floor((5 * HOUR - 4 * DELAY) / (540 * SECOND)));
    expect(refreshes[0]!.at).toBe(4 * DELAY + 540 * SECOND);
    expect(new Set(gaps(refreshes.map((s) => s.at)))).toEqual(new Set([540 * SECOND + 2 * DELAY]));
    expect(refreshes.every((s) => s.message.lifetime() === 600)).toBe(true);
    expect(server.allocation).toBeDefined();
    const grants = server.log.filter((l) => l.kind === "allocate" || l.kind === "refresh").map((l) => l.at);
    expect(Math.max(...gaps(grants))).toBeLessThan(600 * SECOND);
    expect(w.eventsOf("failed")).toEqual([]);
  });

  it("a server that grants less than asked: refreshes at half a short lifetime, a minute early on a long one", () => {
    const short = allocated("turn-client/refresh-short", {}, { maxLifetime: 100 });
    short.w.run(10 * MINUTE);
    expect(short.w.eventsOf("allocated")[0]!.lifetime).toBe(100);
    expect(new Set(gaps(short.w.sentOf(METHOD_REFRESH).map((s) => s.at)))).toEqual(new Set([50 * SECOND + 2 * DELAY]));

    const long = allocated("turn-client/refresh-long", { lifetime: 3600 }, { maxLifetime: 1800 });
    long.w.run(2 * HOUR);
    expect(long.w.sentOf(METHOD_REFRESH)[0]!.at).toBe(4 * DELAY + 1740 * SECOND);
  });

  it("437 on a Refresh: the allocation is lost; nothing more is sent", () => {
    const { w, server } = allocated("turn-client/437");
    w.run(MINUTE);
    server.allocation = undefined; // the server restarted
    w.run(HOUR);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "refresh", code: ERROR_ALLOCATION_MISMATCH, at: 4 * DELAY + 540 * SECOND + 2 * DELAY }]);
    expect(w.client.allocated).toBe(false);
    expect(w.client.relayedAddresses).toEqual([]);
    expect(w.client.pollTimeout()).toBeUndefined();
    const sentBefore = w.sent.length;
    w.act((c, now) => c.send(now, PEER, Uint8Array.of(1)));
    expect(w.sent.length).toBe(sentBefore);
  });

  it("437 to a permission refresh means the allocation is lost too: one failed event, permissions and channels gone", () => {
    const { w, server } = allocated("turn-client/437-permission");
    w.act((c, now) => {
      c.createPermission(now, PEER);
      c.bindChannel(now, PEER2);
    });
    const start = w.now;
    w.run(MINUTE);
    server.allocation = undefined;
    w.run(HOUR);
    expect(w.eventsOf("failed")).toMatchObject([
      { operation: "create-permission", code: ERROR_ALLOCATION_MISMATCH, peer: PEER, at: start + 2 * DELAY + PERMISSION_REFRESH_INTERVAL + 2 * DELAY },
    ]);
    expect(w.client.allocated).toBe(false);
    expect(w.client.pollTimeout()).toBeUndefined();
  });

  it("a server gone dark: the Refresh is retried until the allocation expires, then failed", () => {
    const { w } = allocated("turn-client/dark");
    const allocatedAt = 4 * DELAY;
    w.lose = (d) => d.at > 5 * MINUTE;
    w.run(HOUR);
    const refreshAt = allocatedAt + 540 * SECOND;
    const times = w.sentOf(METHOD_REFRESH).map((s) => s.at);
    // One whole transaction (39.5 s), then a second until the expiry at 600 s cuts it off.
    const expected = [...SEND_OFFSETS.map((o) => refreshAt + o), ...SEND_OFFSETS.map((o) => refreshAt + GIVE_UP + o)].filter((t) => t < allocatedAt + 600 * SECOND);
    expect(times).toEqual(expected);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "refresh", at: allocatedAt + 600 * SECOND, reason: expect.stringMatching(/expired/) }]);
    expect(w.client.pollTimeout()).toBeUndefined();
  });

  it("release: a Refresh with LIFETIME 0, then released; a 437 to it counts as released too", () => {
    const { w, server } = allocated("turn-client/release");
    w.act((c, now) => c.createPermission(now, PEER));
    w.run(SECOND);
    w.act((c, now) => c.release(now));
    w.run(2 * SECOND);
    const release = w.sentOf(METHOD_REFRESH).at(-1)!;
    expect(release.message.lifetime()).toBe(0);
    expect(w.eventsOf("released")).toMatchObject([{ at: SECOND + 2 * DELAY }]);
    expect(server.allocation).toBeUndefined();
    expect(w.client.pollTimeout()).toBeUndefined();

    const again = allocated("turn-client/release-437");
    again.server.allocation = undefined;
    again.w.act((c, now) => c.release(now));
    again.w.run(SECOND);
    expect(again.w.eventsOf("released")).toHaveLength(1);
    expect(again.w.eventsOf("failed")).toEqual([]);
  });

  it("release before any answer: released at once, nothing sent", () => {
    const { w } = world("turn-client/release-early");
    w.act((c, now) => c.allocate(now));
    w.act((c, now) => c.release(now));
    expect(w.sent).toHaveLength(1);
    expect(w.eventsOf("released")).toHaveLength(1);
    expect(w.client.pollTimeout()).toBeUndefined();
  });
});

describe("TurnAllocation: permissions and channels", () => {
  it("permissions asked for before the allocation go out once it exists, then every 240 s for two hours", () => {
    const { w, server } = world("turn-client/permission-hours");
    w.act((c, now) => {
      c.createPermission(now, PEER);
      c.createPermission(now, { ...PEER, port: 1 }); // the same IP: one permission
      c.createPermission(now, PEER6);
      c.allocate(now);
    });
    w.run(2 * HOUR);
    const creates = w.sentOf(METHOD_CREATE_PERMISSION);
    const forPeer = creates.filter((s) => s.message.xorPeerAddress()?.address === PEER.address).map((s) => s.at);
    expect(forPeer[0]).toBe(4 * DELAY);
    expect(new Set(gaps(forPeer))).toEqual(new Set([PERMISSION_REFRESH_INTERVAL + 2 * DELAY]));
    expect(creates.filter((s) => s.message.xorPeerAddress()?.address === PEER6.address)).toHaveLength(forPeer.length);
    expect(w.eventsOf("permission").map((e) => e.peer)).toEqual([PEER.address, PEER6.address]);
    for (const ip of [PEER.address, PEER6.address]) {
      const grants = server.log.filter((l) => l.kind === "permission" && l.subject === ip).map((l) => l.at);
      expect(Math.max(...gaps(grants))).toBeLessThan(300 * SECOND);
      expect(server.permitted(w.now, ip)).toBe(true);
    }
  });

  it("channels: numbers from 0x4000, one per peer, bound and rebound every 540 s for two hours", () => {
    const { w, server } = allocated("turn-client/channel-hours");
    let a = 0;
    let b = 0;
    w.act((c, now) => {
      a = c.bindChannel(now, PEER);
      b = c.bindChannel(now, PEER2);
      expect(c.bindChannel(now, PEER)).toBe(a);
    });
    expect([a, b]).toEqual([0x4000, 0x4001]);
    const start = w.now;
    w.run(2 * HOUR);
    const binds = w.sentOf(METHOD_CHANNEL_BIND).filter((s) => s.message.channelNumber() === a);
    expect(binds[0]!.at).toBe(start);
    expect(binds.every((s) => s.message.xorPeerAddress()?.port === PEER.port)).toBe(true);
    expect(new Set(gaps(binds.map((s) => s.at)))).toEqual(new Set([CHANNEL_REFRESH_INTERVAL + 2 * DELAY]));
    expect(w.eventsOf("channel")).toMatchObject([{ peer: PEER, channel: a }, { peer: PEER2, channel: b }]);
    // Each channel keeps its peer's permission alive too (300 s, against the binding's 600 s).
    expect(w.eventsOf("permission").map((e) => e.peer)).toEqual([PEER.address, PEER2.address]);
    const permits = w.sentOf(METHOD_CREATE_PERMISSION).filter((s) => s.message.xorPeerAddress()?.address === PEER.address);
    expect(new Set(gaps(permits.map((s) => s.at)))).toEqual(new Set([PERMISSION_REFRESH_INTERVAL + 2 * DELAY]));
    expect(server.permitted(w.now, PEER.address)).toBe(true);
    const grants = server.log.filter((l) => l.kind === "channel" && l.subject === String(a)).map((l) => l.at);
    expect(Math.max(...gaps(grants))).toBeLessThan(600 * SECOND);
    expect(server.channels.get(a)?.peer).toEqual(PEER);
  });

  it("a ChannelBind error fails with its code and frees the peer; a 403 on CreatePermission the same", () => {
    const { w, server } = allocated("turn-client/bind-error");
    server.intercept = (req) => {
      if (req.message.method === METHOD_CHANNEL_BIND) return server.error(req.message, ERROR_BAD_REQUEST, "Bad Request");
      if (req.message.method === METHOD_CREATE_PERMISSION) return server.error(req.message, ERROR_FORBIDDEN, "Forbidden");
      return undefined;
    };
    let first = 0;
    w.act((c, now) => {
      first = c.bindChannel(now, PEER);
      c.createPermission(now, PEER2);
    });
    w.run(MINUTE);
    expect(w.eventsOf("failed")).toMatchObject([
      { operation: "create-permission", code: ERROR_FORBIDDEN, peer: PEER }, // the channel's own permission
      { operation: "channel-bind", code: ERROR_BAD_REQUEST, peer: PEER },
      { operation: "create-permission", code: ERROR_FORBIDDEN, peer: PEER2 },
    ]);
    // The number stays tied to its peer for 5 minutes: the same peer gets it back, another does not.
    server.intercept = () => undefined;
    w.act((c, now) => {
      expect(c.bindChannel(now, PEER2)).not.toBe(first);
      expect(c.bindChannel(now, PEER)).toBe(first);
    });
    w.run(2 * MINUTE);
    expect(w.eventsOf("channel").map((e) => e.channel).sort()).toEqual([first, first + 1]);
  });

  it("never more than MAX_OUTSTANDING_TRANSACTIONS requests in flight: 25 permissions go out 10 at a time", () => {
    const { w, server } = allocated("turn-client/outstanding");
    const base = w.now;
    w.act((c, now) => {
      for (let i = 0; i < 25; i++) c.createPermission(now, { family: 4, address: `192.0.2.${100 + i}`, port: 1 });
    });
    w.run(base + SECOND);
    const times = w.sentOf(METHOD_CREATE_PERMISSION).map((s) => s.at - base);
    expect(times.filter((t) => t === 0)).toHaveLength(MAX_OUTSTANDING_TRANSACTIONS);
    expect(times.filter((t) => t === 2 * DELAY)).toHaveLength(MAX_OUTSTANDING_TRANSACTIONS);
    expect(times.filter((t) => t === 4 * DELAY)).toHaveLength(5);
    expect(w.eventsOf("permission")).toHaveLength(25);
    expect(server.permissions.size).toBe(25);
  });

  it("a permission whose refreshes go unanswered lapses with a failed event; the allocation stays", () => {
    const { w } = allocated("turn-client/permission-lapse");
    w.act((c, now) => c.createPermission(now, PEER));
    const installedAt = w.now + 2 * DELAY;
    w.lose = (d) => d.toServer && d.at > installedAt && w.sent.at(-1)?.message?.method === METHOD_CREATE_PERMISSION;
    w.run(8 * MINUTE);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "create-permission", peer: PEER, at: installedAt + 300 * SECOND, reason: expect.stringMatching(/expired/) }]);
    expect(w.client.allocated).toBe(true);
  });
});

describe("TurnAllocation: data", () => {
  it("Send indications until the channel is confirmed, ChannelData after; data in by Data indication and ChannelData", () => {
    const { w, server } = allocated("turn-client/data");
    w.act((c, now) => {
      c.createPermission(now, PEER);
      c.bindChannel(now, PEER);
      c.send(now, PEER, Uint8Array.of(1, 2, 3)); // the permission is on its way: held
    });
    w.run(w.now + DELAY);
    w.act((c, now) => c.send(now, PEER, Uint8Array.of(4, 5, 6))); // still
    w.run(w.now + SECOND);
    // Both went as Send indications once the permission was confirmed, before the channel was.
    expect(w.sent.filter((s) => s.message?.method === METHOD_SEND && s.message.class === "indication")).toHaveLength(2);
    w.act((c, now) => c.send(now, PEER, Uint8Array.of(7, 8)));
    w.run(w.now + SECOND);
    expect(server.toPeers.map((p) => [p.peer, p.via, [...p.data]])).toEqual([
      [PEER, "send", [1, 2, 3]], [PEER, "send", [4, 5, 6]], [PEER, "channel", [7, 8]],
    ]);
    const channelData = w.sent.at(-1)!.bytes;
    expect(channelData.length).toBe(4 + 2); // over UDP, no padding

    // To PEER2 (permission only): a Send indication that the server relays.
    w.act((c, now) => c.createPermission(now, PEER2));
    w.run(w.now + SECOND);
    w.act((c, now) => c.send(now, PEER2, Uint8Array.of(9)));
    w.run(w.now + SECOND);
    expect(server.toPeers.at(-1)).toMatchObject({ peer: PEER2, via: "send" });

    // From peers: ChannelData on PEER's channel, a Data indication from PEER2.
    w.fromServer(server.fromPeer(w.now, PEER, Uint8Array.of(10, 11))!);
    w.fromServer(server.fromPeer(w.now, PEER2, Uint8Array.of(12))!);
    w.fromServer(server.fromPeer(w.now, PEER, Uint8Array.of(13), { indication: true })!);
    w.run(w.now + SECOND);
    expect(w.eventsOf("data").map((e) => [e.peer, [...e.data]])).toEqual([[PEER, [10, 11]], [PEER2, [12]], [PEER, [13]]]);
  });

  it("holds what is sent to a peer until its permission is confirmed, asking for one if nothing did", () => {
    const { w, server, client } = allocated("turn-client/held");
    const start = w.now;
    w.act((c, now) => c.send(now, PEER, Uint8Array.of(1)));
    // Nothing for the peer leaves before the permission exists: the server would drop it.
    expect(w.sent.filter((s) => s.message?.method === METHOD_SEND)).toEqual([]);
    expect(w.sentOf(METHOD_CREATE_PERMISSION).map((s) => s.message.xorPeerAddress())).toEqual([PEER]);
    w.run(start + DELAY);
    w.act((c, now) => c.send(now, { ...PEER, port: 7 }, Uint8Array.of(2))); // the same IP: the same permission
    w.run(start + SECOND);
    expect(server.toPeers.map((p) => [p.peer.port, p.via, [...p.data], p.at])).toEqual([
      [PEER.port, "send", [1], start + 3 * DELAY],
      [7, "send", [2], start + 3 * DELAY],
    ]);
    expect(w.sentOf(METHOD_CREATE_PERMISSION)).toHaveLength(1);
    // Installed: the next one goes at once.
    w.act((c, now) => c.send(now, PEER, Uint8Array.of(3)));
    w.run(w.now + SECOND);
    expect(server.toPeers.at(-1)).toMatchObject({ peer: PEER, via: "send" });
    expect(server.toPeers).toHaveLength(3);
    expect(client.sendDropped).toEqual({ noAllocation: 0, heldOverflow: 0, permissionFailed: 0 });
  });

  it("holds at most PERMISSION_HELD_MAX datagrams per peer IP, the newest, and counts the rest", () => {
    const { w, server, client } = allocated("turn-client/held-bound");
    const payloads = Array.from({ length: PERMISSION_HELD_MAX + 3 }, (_, i) => i);
    w.act((c, now) => {
      for (const i of payloads) c.send(now, PEER, Uint8Array.of(i));
    });
    w.run(w.now + SECOND);
    expect(server.toPeers.map((p) => p.data[0])).toEqual(payloads.slice(3));
    expect(client.sendDropped.heldOverflow).toBe(3);
  });

  it("drops and counts what it held when the permission fails or the allocation ends, and what is sent without an allocation", () => {
    const { w, server, client } = allocated("turn-client/held-failed");
    server.intercept = (req) => (req.message.method === METHOD_CREATE_PERMISSION ? server.error(req.message, ERROR_FORBIDDEN, "Forbidden") : undefined);
    const held = (c: TurnAllocation, now: number) => {
      c.send(now, PEER, Uint8Array.of(1));
      c.send(now, PEER, Uint8Array.of(2));
    };
    w.act(held);
    w.run(w.now + SECOND);
    expect(w.eventsOf("failed")).toMatchObject([{ operation: "create-permission", code: ERROR_FORBIDDEN, peer: PEER }]);
    expect(client.sendDropped.permissionFailed).toBe(2);
    // A send after the failure asks again: the held datagram waits on the new request.
    server.intercept = (req) => (req.message.method === METHOD_CREATE_PERMISSION ? "drop" : undefined);
    w.act((c, now) => c.send(now, PEER2, Uint8Array.of(3)));
    w.act((c, now) => c.release(now));
    expect(client.sendDropped.permissionFailed).toBe(3);
    w.act((c, now) => c.send(now, PEER, Uint8Array.of(4)));
    expect(client.sendDropped.noAllocation).toBe(1);
    w.run(w.now + MINUTE);
    expect(server.toPeers).toEqual([]);
  });

  it("ChannelData on a channel not ours and data with no allocation are dropped", () => {
    const { w, client } = allocated("turn-client/data-drops");
    const channel = client.bindChannel(w.now, PEER);
    w.drain();
    client.handleDatagram(w.now, SERVER, encodeChannelData(channel + 7, Uint8Array.of(5)));
    w.drain();
    expect(w.eventsOf("data")).toEqual([]);
    expect(client.dropped.unexpected).toBe(1);

    const fresh = world("turn-client/data-early");
    const indication = new StunBuilder(METHOD_DATA, "indication", new Uint8Array(12)).addXorPeerAddress(PEER).addData(Uint8Array.of(1)).build();
    fresh.client.handleDatagram(0, SERVER, indication);
    expect(fresh.client.pollEvent()).toBeUndefined();
    expect(fresh.client.dropped.unexpected).toBe(1);
  });

  it("the data of a data event survives the datagram buffer being reused", () => {
    const { w, client } = allocated("turn-client/data-copy");
    const channel = client.bindChannel(w.now, PEER);
    const datagram = encodeChannelData(channel, Uint8Array.of(1, 2));
    client.handleDatagram(w.now, SERVER, datagram);
    datagram.fill(0xee);
    let event;
    while ((event = client.pollEvent()) !== undefined && event.type !== "data");
    expect(event).toMatchObject({ type: "data", peer: PEER });
    expect([...(event as { data: Uint8Array }).data]).toEqual([1, 2]);
  });
});

describe("TurnAllocation: fuzz", () => {
  const mutate = (r: Rng, bytes: Uint8Array): Uint8Array => {
    const out = bytes.slice();
    const kind = r.int(0, 3);
    if (kind === 0) for (let i = r.int(1, 4); i > 0; i--) out[r.int(0, out.length - 1)] = r.u32() & 0xff;
    if (kind === 1) return out.subarray(0, r.int(0, out.length));
    if (kind === 2) out[r.int(0, out.length - 1)]! ^= 1 << r.int(0, 7);
    if (kind === 3) {
      const extra = r.bytes(r.int(1, 16));
      const grown = new Uint8Array(out.length + extra.length);
      grown.set(out);
      grown.set(extra, out.length);
      return grown;
    }
    return out;
  };

  it("random and mutated datagrams from the server never throw, and the machine stays consistent", () => {
    const { r, w, server } = allocated("turn-client/fuzz");
    w.act((c, now) => {
      c.createPermission(now, PEER);
      c.bindChannel(now, PEER2);
    });
    w.run(w.now + SECOND);
    // From here on the server hears nothing: the fuzzer plays it, answering live transactions.
    w.lose = (d) => d.toServer;
    let peers = 0;
    for (let i = 0; i < 20_000; i++) {
      w.now += r.int(0, 200);
      expect(() => {
        const action = r.int(0, 19);
        if (action === 0) w.act((c, now) => c.createPermission(now, { family: 4, address: `192.0.2.${peers++ % 250}`, port: 9 }));
        if (action === 1 && w.client.allocated) w.act((c, now) => c.bindChannel(now, { family: 4, address: "192.0.2.30", port: peers++ % 60_000 }));
        if (action === 2) w.act((c, now) => c.send(now, r.pick([PEER, PEER2, PEER6]), r.bytes(r.int(0, 40))));
        if (action === 3) w.act((c, now) => (r.bool(0.5) ? c.allocate(now) : r.bool(0.1) ? c.release(now) : undefined));
        if (action === 4 || (w.client.pollTimeout() ?? Infinity) <= w.now) {
          w.client.handleTimeout(w.now);
          w.drain();
        }
        // A real answer to a recent request (signed, or a challenge), mutated most of the time.
        const recent = w.sent.slice(-12).filter((s) => s.message?.class === "request");
        const m = recent.length > 0 ? r.pick(recent).message! : undefined;
        let bytes: Uint8Array;
        if (m === undefined || r.bool(0.15)) bytes = r.bytes(r.int(0, 80));
        else {
          const answers = [
            () => server.success(m, (b) => b.addXorRelayedAddress(RELAYED).addXorMappedAddress(CLIENT).addLifetime(r.int(0, 700))),
            () => server.success(m),
            () => server.challenge(m, r.pick([ERROR_UNAUTHENTICATED, ERROR_STALE_NONCE])),
            () => server.error(m, r.pick([ERROR_ALLOCATION_MISMATCH, ERROR_BAD_REQUEST, ERROR_FORBIDDEN]), "x"),
            () => server.fromPeer(w.now, PEER, r.bytes(r.int(0, 20)), { indication: true }) ?? new Uint8Array(0),
            () => encodeChannelData(r.int(0x4000, 0x4003), r.bytes(r.int(0, 20))),
          ];
          const answer = r.pick(answers)();
          bytes = r.bool(0.7) && answer.length > 0 ? mutate(r, answer) : answer;
        }
        if (r.bool(0.2) && bytes.length > 0) bytes[0] = r.pick([0x00, 0x01, 0x40, 0x4f]);
        w.client.handleDatagram(w.now, SERVER, bytes);
        w.drain();
      }, r.where(`step ${i}`)).not.toThrow();
      const timeout = w.client.pollTimeout();
      expect(timeout === undefined || Number.isFinite(timeout), r.where(`timeout ${i}`)).toBe(true);
    }
    const types = new Set(w.events.map((e) => e.event.type));
    expect([...types].sort(), "the fuzzer reached the interesting paths").toEqual(expect.arrayContaining(["allocated", "data", "failed"]));
  });
});

describe("TurnAllocation against TurnServer (server.ts), end to end in virtual time", () => {
  /** Client, server and two peers on a link with DELAY each way; the engine's forwarding table is a Map here. */
  class Network {
    now = 0;
    readonly events: { at: number; event: TurnClientEvent }[] = [];
    /** What peers received from the relay: [peer, relay port, data]. */
    readonly atPeers: { at: number; peer: TransportAddress; relayPort: number; data: number[] }[] = [];
    private queue: { at: number; deliver: () => void }[] = [];
    /** The engine's table: channel ↔ (relay socket, peer), as the server's channel-bound events install it. */
    private readonly channels = new Map<number, { relayId: number; peer: TransportAddress }>();
    readonly closed: number[] = [];
    forwardedByEngine = 0;
    /** 438 (Stale Nonce) answers the server sent. */
    staleNonces = 0;

    /** relayPorts: relay socket id → port, filled in by the server's openRelay. */
    constructor(readonly client: TurnAllocation, readonly server: TurnServer, readonly relayPorts: ReadonlyMap<number, number>) {}

    later(deliver: () => void): void {
      this.queue.push({ at: this.now + DELAY, deliver });
    }

    act(run: (client: TurnAllocation, now: number) => void): void {
      run(this.client, this.now);
      this.drain();
    }

    /** A peer sends to the relay socket relayId. */
    peerSends(relayId: number, peer: TransportAddress, data: Uint8Array): void {
      this.later(() => {
        const channel = [...this.channels].find(([, c]) => c.relayId === relayId && c.peer.address === peer.address && c.peer.port === peer.port);
        if (channel !== undefined) {
          this.forwardedByEngine++;
          const bytes = encodeChannelData(channel[0], data);
          this.later(() => this.client.handleDatagram(this.now, SERVER, bytes));
        } else {
          this.server.handlePeerDatagram(this.now, relayId, peer, data);
        }
        this.drain();
      });
    }

    drain(): void {
      for (let t = this.client.pollTransmit(); t !== undefined; t = this.client.pollTransmit()) {
        const bytes = t.bytes;
        this.later(() => {
          const channel = bytes[0]! >= 0x40 && bytes[0]! <= 0x4f ? this.channels.get((bytes[0]! << 8) | bytes[1]!) : undefined;
          if (channel !== undefined) {
            this.forwardedByEngine++;
            const data = [...bytes.subarray(4)];
            this.atPeers.push({ at: this.now, peer: channel.peer, relayPort: this.relayPorts.get(channel.relayId)!, data });
          } else {
            this.server.handleClientDatagram(this.now, CLIENT, bytes);
          }
          this.drain();
        });
      }
      for (let e = this.client.pollEvent(); e !== undefined; e = this.client.pollEvent()) this.events.push({ at: this.now, event: e });
      for (let t = this.server.pollTransmit(); t !== undefined; t = this.server.pollTransmit()) {
        const transmit = t;
        if (transmit.via === "listener") {
          expect(transmit.to).toEqual(CLIENT);
          const decoded = decodeStun(transmit.bytes);
          if (decoded.ok && decoded.message.errorCode()?.code === ERROR_STALE_NONCE) this.staleNonces++;
          this.later(() => {
            this.client.handleDatagram(this.now, SERVER, transmit.bytes);
            this.drain();
          });
        } else {
          this.later(() => this.atPeers.push({ at: this.now, peer: transmit.to, relayPort: this.relayPorts.get(transmit.relayId)!, data: [...transmit.bytes] }));
        }
      }
      for (let e = this.server.pollEvent(); e !== undefined; e = this.server.pollEvent()) {
        if (e.type === "channel-bound") this.channels.set(e.channel, { relayId: e.relayId, peer: e.peer });
        else if (e.type === "channel-unbound") this.channels.delete(e.channel);
        else this.closed.push(e.relayId);
      }
    }

    run(until: number, actions: { at: number; run: () => void }[] = []): void {
      const pending = [...actions].sort((x, y) => x.at - y.at);
      for (;;) {
        const net = this.queue.reduce((m, q) => Math.min(m, q.at), Infinity);
        const timers = Math.min(this.client.pollTimeout() ?? Infinity, this.server.pollTimeout() ?? Infinity);
        const app = pending[0]?.at ?? Infinity;
        const t = Math.min(net, timers, app);
        if (t > until) break;
        this.now = Math.max(this.now, t);
        if (app === t) pending.shift()!.run();
        else if (net === t) this.queue.splice(this.queue.findIndex((q) => q.at === t), 1)[0]!.deliver();
        else {
          if ((this.client.pollTimeout() ?? Infinity) <= t) this.client.handleTimeout(this.now);
          if ((this.server.pollTimeout() ?? Infinity) <= t) this.server.handleTimeout(this.now);
        }
        this.drain();
      }
      this.now = until;
    }

    eventsOf<T extends TurnClientEvent["type"]>(type: T): (Extract<TurnClientEvent, { type: T }> & { at: number })[] {
      return this.events.filter((e) => e.event.type === type).map((e) => ({ ...(e.event as Extract<TurnClientEvent, { type: T }>), at: e.at }));
    }
  }

  const T0 = 1_764_000_000;
  const SECRET = "static-auth-secret";

  function network(label: string, options: Partial<TurnClientOptions> = {}) {
    const r = rng(label);
    let nextRelay = 1;
    const relayPorts = new Map<number, number>();
    const server = new TurnServer({
      realm: "wardline.test",
      secrets: [SECRET],
      random: (n) => r.bytes(n),
      wallClockAtZeroSeconds: T0,
      relayAddress: { 4: RELAYED.address, 6: RELAYED6.address },
      openRelay: () => {
        const relayId = nextRelay++;
        relayPorts.set(relayId, 50_000 + relayId);
        return { relayId, port: 50_000 + relayId };
      },
    });
    const credentials = mintCredentials(SECRET, "client-1", T0 + 86_400);
    const client = new TurnAllocation({ server: SERVER, ...credentials, random: (n) => r.bytes(n), software: "wardline-test", ...options });
    const net = new Network(client, server, relayPorts);
    return { r, net, client, server };
  }

  it("allocate (401 first), permission, channel, data both ways, two hours of refreshes, release", () => {
    const { net, client, server } = network("turn-client/e2e");
    net.act((c, now) => c.allocate(now));
    net.run(SECOND);
    const [allocatedEvent] = net.eventsOf("allocated");
    expect(allocatedEvent).toMatchObject({ relayed: [{ family: 4, address: RELAYED.address }], mapped: CLIENT, lifetime: 600 });
    const relayPort = allocatedEvent!.relayed[0]!.port;
    const relayId = [...net.relayPorts].find(([, port]) => port === relayPort)![0];
    expect(server.stats.dropped).toEqual({}); // the padded first Allocate got its 401 (no amplification drop)

    net.act((c, now) => {
      c.createPermission(now, PEER);
      c.bindChannel(now, PEER2);
    });
    net.run(2 * SECOND);
    expect(net.eventsOf("permission")).toMatchObject([{ peer: PEER.address }, { peer: PEER2.address }]);
    expect(net.eventsOf("channel")).toMatchObject([{ peer: PEER2, channel: 0x4000 }]);

    // Traffic every 10 s for two hours: client → PEER by Send indication, → PEER2 by ChannelData; both answer.
    const actions = Array.from({ length: 720 }, (_, i) => ({
      at: 3 * SECOND + i * 10 * SECOND,
      run: () => {
        net.act((c, now) => {
          c.send(now, PEER, Uint8Array.of(1, i & 0xff));
          c.send(now, PEER2, Uint8Array.of(2, i & 0xff));
        });
        net.peerSends(relayId, PEER, Uint8Array.of(3, i & 0xff));
        net.peerSends(relayId, PEER2, Uint8Array.of(4, i & 0xff));
      },
    }));
    net.run(2 * HOUR + 5 * SECOND, actions);
    expect(net.eventsOf("failed")).toEqual([]);
    const toPeer = net.atPeers.filter((p) => p.peer.address === PEER.address);
    const toPeer2 = net.atPeers.filter((p) => p.peer.address === PEER2.address);
    expect(toPeer).toHaveLength(720);
    expect(toPeer2).toHaveLength(720);
    expect(toPeer.every((p) => p.relayPort === relayPort && p.data[0] === 1)).toBe(true);
    const data = net.eventsOf("data");
    expect(data.filter((d) => d.peer.address === PEER.address).map((d) => d.data[0])).toEqual(Array(720).fill(3));
    expect(data.filter((d) => d.peer.address === PEER2.address).map((d) => d.data[0])).toEqual(Array(720).fill(4));
    expect(net.forwardedByEngine, "ChannelData went through the engine's table both ways").toBe(2 * 720);
    expect(server.stats).toMatchObject({ allocations: 1, channels: 1, permissions: 2 });
    expect(server.stats.dropped).toEqual({});

    net.act((c, now) => c.release(now));
    net.run(2 * HOUR + 10 * SECOND);
    expect(net.eventsOf("released")).toHaveLength(1);
    expect(server.stats.allocations).toBe(0);
    expect(net.closed).toEqual([relayId]);
    expect(client.pollTimeout()).toBeUndefined();
  });

  it("a dual allocation and a stale nonce after the server's nonce lifetime: refreshes carry on", () => {
    const { net, server } = network("turn-client/e2e-dual", { additionalFamily: true });
    net.act((c, now) => {
      c.allocate(now);
      c.createPermission(now, PEER6);
    });
    net.run(3 * HOUR);
    expect(net.eventsOf("allocated")[0]!.relayed.map((a) => a.family)).toEqual([4, 6]);
    expect(net.eventsOf("permission")).toMatchObject([{ peer: PEER6.address }]);
    expect(net.eventsOf("failed")).toEqual([]);
    expect(net.staleNonces, "the server's nonces last 600 s: some refreshes met a 438").toBeGreaterThan(0);
    expect(server.stats).toMatchObject({ allocations: 1, permissions: 1 });
  });
});
