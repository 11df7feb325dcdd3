// The relay's forwarding table (engine/relay.ts) on both builds, against an oracle written here from
// RFC 8656 §12 (a Map of bindings and the ChannelData rules), sharing no code with the engine:
// random binds and unbinds, then whole batches of datagrams from clients and from peers, mixing
// bound and unbound ChannelData, STUN, malformed headers and noise.

import { beforeEach, describe, expect, it } from "vitest";
import { BUILDS, expectCode, statusName } from "../../test/support/engine.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { CHANNEL_HEADER_SIZE, CHANNEL_MAX, CHANNEL_MIN, ENDPOINT_SIZE, Engine, TransportStatus } from "./index.js";

beforeEach(reportSeedOnFailure);

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A valid endpoint in the addon's encoding: family, zero, port, address. */
function endpoint(r: Rng, family: 4 | 6 = r.bool() ? 4 : 6): Uint8Array {
  const ep = new Uint8Array(ENDPOINT_SIZE);
  ep[0] = family;
  ep[2] = r.int(0, 255);
  ep[3] = r.int(0, 255);
  ep.set(r.bytes(family === 4 ? 4 : 16), 4);
  return ep;
}

interface Bound {
  slot: number;
  client: Uint8Array;
  channel: number;
  relayId: number;
  peer: Uint8Array;
}

/** The bindings as the RFC has them: a channel names one peer, a peer has one channel, per allocation. */
class Oracle {
  readonly byClient = new Map<string, Bound>();
  readonly byPeer = new Map<string, Bound>();
  bind(b: Bound): boolean {
    const ck = `${hex(b.client)}/${b.channel}`;
    const pk = `${b.relayId}/${hex(b.peer)}`;
    if (this.byClient.has(ck) || this.byPeer.has(pk)) return false;
    this.byClient.set(ck, b);
    this.byPeer.set(pk, b);
    return true;
  }
  unbind(b: Bound): void {
    this.byClient.delete(`${hex(b.client)}/${b.channel}`);
    this.byPeer.delete(`${b.relayId}/${hex(b.peer)}`);
  }
  client(ep: Uint8Array, channel: number): Bound | undefined {
    return this.byClient.get(`${hex(ep)}/${channel}`);
  }
  peer(relayId: number, ep: Uint8Array): Bound | undefined {
    return this.byPeer.get(`${relayId}/${hex(ep)}`);
  }
}

function channelData(channel: number, payload: Uint8Array, padding = 0, declared = payload.length): Uint8Array {
  const out = new Uint8Array(CHANNEL_HEADER_SIZE + payload.length + padding);
  out[0] = channel >> 8;
  out[1] = channel & 255;
  out[2] = declared >> 8;
  out[3] = declared & 255;
  out.set(payload, CHANNEL_HEADER_SIZE);
  return out;
}

describe.each(BUILDS)("relay forwarding table (%s build)", (build) => {
  let engine: Engine;
  beforeEach(() => {
    engine = Engine.create({ build, maxChannels: 256, maxBatch: 128, arenaBytes: 1 << 20 });
  });

  /** A populated table: bindings over a few clients and relays, some of them removed again. */
  function populate(r: Rng): { oracle: Oracle; bound: Bound[]; clients: Uint8Array[]; relays: number[] } {
    const oracle = new Oracle();
    const clients = Array.from({ length: 12 }, () => endpoint(r));
    const peers = Array.from({ length: 40 }, () => endpoint(r));
    const relays = Array.from({ length: 6 }, () => r.u32());
    const bound: Bound[] = [];
    for (let i = 0; i < 400; i++) {
      if (bound.length > 0 && r.bool(0.3)) {
        const [b] = bound.splice(r.int(0, bound.length - 1), 1);
        engine.channels.unbind(b!.slot);
        oracle.unbind(b!);
        continue;
      }
      const candidate = { client: r.pick(clients), channel: r.int(CHANNEL_MIN, CHANNEL_MIN + 20), relayId: r.pick(relays), peer: r.pick(peers) };
      const fresh = oracle.client(candidate.client, candidate.channel) === undefined && oracle.peer(candidate.relayId, candidate.peer) === undefined;
      if (!fresh || engine.channels.size >= engine.channels.capacity) {
        expectCode(() => engine.channels.bind(candidate), fresh ? "TABLE_FULL" : "INDEX_IN_USE", r.where(`bind #${i}`));
        continue;
      }
      const b = { ...candidate, slot: engine.channels.bind(candidate) };
      expect(oracle.bind(b)).toBe(true);
      bound.push(b);
    }
    expect(engine.channels.size).toBe(bound.length);
    for (const b of bound) {
      expect(engine.channels.findClient(b.client, b.channel), r.where("findClient")).toBe(b.slot);
      expect(engine.channels.findPeer(b.relayId, b.peer), r.where("findPeer")).toBe(b.slot);
    }
    return { oracle, bound, clients, relays };
  }

  it("binds and unbinds agree with the oracle through random churn; a channel or peer binds once per relay", () => {
    const r = rng(`relay/churn/${build}`);
    const { oracle, clients, relays } = populate(r);
    for (let i = 0; i < 300; i++) {
      const client = r.pick(clients);
      const channel = r.int(CHANNEL_MIN, CHANNEL_MIN + 20);
      expect(engine.channels.findClient(client, channel), r.where("absent or present")).toBe(oracle.client(client, channel)?.slot);
      const peer = endpoint(r);
      expect(engine.channels.findPeer(r.pick(relays), peer)).toBeUndefined();
    }
  });

  it("refuses bad channels, endpoints and slots with clear codes", () => {
    const r = rng(`relay/bad/${build}`);
    const ok = { client: endpoint(r, 4), channel: CHANNEL_MIN, relayId: 1, peer: endpoint(r, 6) };
    expectCode(() => engine.channels.bind({ ...ok, channel: CHANNEL_MIN - 1 }), "BAD_ARGUMENT", "channel below 0x4000");
    expectCode(() => engine.channels.bind({ ...ok, channel: CHANNEL_MAX + 1 }), "BAD_ARGUMENT", "channel above 0x7fff");
    const badFamily = endpoint(r, 4);
    badFamily[0] = 5;
    expectCode(() => engine.channels.bind({ ...ok, peer: badFamily }), "BAD_ARGUMENT", "family 5");
    const v4WithTail = endpoint(r, 4);
    v4WithTail[19] = 1;
    expectCode(() => engine.channels.bind({ ...ok, client: v4WithTail }), "BAD_ARGUMENT", "IPv4 endpoint with a non-zero tail");
    expectCode(() => engine.channels.bind({ ...ok, client: new Uint8Array(19) }), "BAD_LENGTH", "short endpoint");
    expectCode(() => engine.channels.unbind(3), "NO_SESSION", "unbinding a free slot");
    expect(engine.channels.size).toBe(0);
  });

  it("ChannelData from clients becomes datagrams to peers; everything else keeps its bytes and gets a reason", () => {
    const r = rng(`relay/from-clients/${build}`);
    const { oracle, bound, clients } = populate(r);
    for (let round = 0; round < 20; round++) {
      const batch = engine.batch;
      batch.reset();
      const inputs: { bytes: Uint8Array; source: Uint8Array }[] = [];
      for (let i = 0; i < batch.maxPackets; i++) {
        const kind = r.int(0, 5);
        const b = r.pick(bound);
        let bytes: Uint8Array;
        let source = b.client;
        if (kind === 0) bytes = channelData(b.channel, r.bytes(r.int(0, 1400)), r.int(0, 3)); // bound, maybe padded
        else if (kind === 1) {
          source = r.pick(clients);
          bytes = channelData(r.int(CHANNEL_MIN, CHANNEL_MAX), r.bytes(r.int(0, 100))); // maybe unbound
        } else if (kind === 2) bytes = channelData(b.channel, r.bytes(r.int(0, 50)), 0, r.int(51, 0xffff)); // declares too much
        else if (kind === 3) bytes = Uint8Array.of(0x40 + r.int(0, 0x3f), r.int(0, 255)).subarray(0, r.int(1, 2)); // header cut short
        else if (kind === 4) bytes = Uint8Array.of(r.int(0, 3), ...r.bytes(r.int(19, 60))); // STUN
        else bytes = r.bytes(r.int(0, 200)); // noise
        inputs.push({ bytes, source });
        batch.memory.set(bytes, batch.reservePacketOffset(bytes.length));
        batch.endpoints.set(source, i * ENDPOINT_SIZE);
      }
      const ok = batch.relayFromClients();
      let expectedOk = 0;
      inputs.forEach(({ bytes, source }, i) => {
        const where = r.where(`round ${round} packet ${i} (${hex(bytes.subarray(0, 4))}, ${bytes.length} B)`);
        const first = bytes[0];
        let expected: TransportStatus;
        let binding: Bound | undefined;
        const declared = bytes.length >= 4 ? (bytes[2]! << 8) | bytes[3]! : 0;
        if (bytes.length === 0) expected = TransportStatus.TooShort;
        else if (first! < 0x40 || first! > 0x7f) expected = TransportStatus.BadType;
        else if (bytes.length < 4 || declared > bytes.length - 4) expected = TransportStatus.TooShort;
        else {
          binding = oracle.client(source, (bytes[0]! << 8) | bytes[1]!);
          expected = binding === undefined ? TransportStatus.NoChannel : TransportStatus.Ok;
        }
        expect(statusName(batch.status(i)), where).toBe(statusName(expected));
        if (expected !== TransportStatus.Ok) {
          expect(hex(batch.packet(i)), `${where}: bytes untouched`).toBe(hex(bytes));
          expect(hex(batch.endpoints.subarray(i * ENDPOINT_SIZE, (i + 1) * ENDPOINT_SIZE)), `${where}: source kept`).toBe(hex(source));
          return;
        }
        expectedOk++;
        expect(hex(batch.packet(i)), `${where}: the payload alone`).toBe(hex(bytes.subarray(4, 4 + declared)));
        expect(hex(batch.endpoints.subarray(i * ENDPOINT_SIZE, (i + 1) * ENDPOINT_SIZE)), `${where}: to the peer`).toBe(hex(binding!.peer));
        expect(batch.session(i) >>> 0, `${where}: from the binding's relay`).toBe(binding!.relayId >>> 0);
      });
      expect(ok).toBe(expectedOk);
    }
  });

  it("datagrams from peers with a channel become ChannelData to the client, in the headroom; others stay", () => {
    const r = rng(`relay/from-peers/${build}`);
    const { oracle, bound, relays } = populate(r);
    for (let round = 0; round < 20; round++) {
      const relayId = r.pick(relays);
      const mine = bound.filter((b) => b.relayId === relayId);
      const batch = engine.batch;
      batch.reset();
      const inputs: { bytes: Uint8Array; source: Uint8Array }[] = [];
      for (let i = 0; i < batch.maxPackets; i++) {
        const source = mine.length > 0 && r.bool(0.7) ? r.pick(mine).peer : r.bool() ? r.pick(bound).peer : endpoint(r);
        const bytes = r.bytes(r.bool(0.1) ? 0 : r.int(1, 1400));
        inputs.push({ bytes, source });
        batch.memory.set(bytes, batch.reservePacketOffset(bytes.length, CHANNEL_HEADER_SIZE));
        batch.endpoints.set(source, i * ENDPOINT_SIZE);
      }
      const ok = batch.relayFromPeers(relayId);
      let expectedOk = 0;
      inputs.forEach(({ bytes, source }, i) => {
        const where = r.where(`round ${round} packet ${i}`);
        const binding = oracle.peer(relayId, source);
        if (binding === undefined) {
          expect(statusName(batch.status(i)), where).toBe("NoChannel");
          expect(hex(batch.packet(i)), `${where}: untouched`).toBe(hex(bytes));
          return;
        }
        expectedOk++;
        expect(statusName(batch.status(i)), where).toBe("Ok");
        expect(hex(batch.packet(i)), `${where}: ChannelData`).toBe(hex(channelData(binding.channel, bytes)));
        expect(hex(batch.endpoints.subarray(i * ENDPOINT_SIZE, (i + 1) * ENDPOINT_SIZE)), `${where}: to the client`).toBe(hex(binding.client));
      });
      expect(ok).toBe(expectedOk);
    }
  });

  it("a peer batch without headroom is OutOfBounds at the arena's start, never a write before it; a batch runs once", () => {
    const r = rng(`relay/headroom/${build}`);
    const peer = endpoint(r, 4);
    engine.channels.bind({ client: endpoint(r, 4), channel: CHANNEL_MIN, relayId: 7, peer });
    const batch = engine.batch;
    batch.reset();
    batch.memory.set(r.bytes(32), batch.reservePacketOffset(32));
    batch.endpoints.set(peer, 0);
    expect(batch.relayFromPeers(7)).toBe(0);
    expect(statusName(batch.status(0))).toBe("OutOfBounds");
    expect(() => batch.relayFromPeers(7)).toThrow(/already handled/);
    batch.reset();
    batch.addPlaintext(0, new Uint8Array(8));
    expect(() => batch.relayFromClients()).toThrow(/plaintexts/);
  });
});
