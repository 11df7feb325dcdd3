// Allowed IPs (engine/routes.ts through the binding) on both builds, against a linear-scan oracle
// written as plainly as possible: every route kept as masked bytes, a lookup tries them all and keeps
// the longest that covers the address. Seeded random tables of nested and overlapping prefixes,
// lookups at and just past prefix boundaries, interleaved removes and removePeer; then capacity,
// CIDR text and bad input.

import { beforeEach, describe, expect, it } from "vitest";
import { toHex } from "../../test/support/bytes.js";
import { BUILDS, expectCode } from "../../test/support/engine.js";
import { ip } from "../../test/support/ip.js";
import { reportSeedOnFailure, rng, type Rng } from "../../test/support/prng.js";
import { Engine, NO_PEER, parsePrefix, type Prefix } from "./index.js";

beforeEach(reportSeedOnFailure);

function masked(address: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(address.length);
  for (let bit = 0; bit < length; bit++) {
    const byte = bit >> 3;
    const m = 0x80 >> (bit & 7);
    out[byte]! |= address[byte]! & m;
  }
  return out;
}

function covers(network: Uint8Array, length: number, address: Uint8Array): boolean {
  if (network.length !== address.length) return false;
  for (let bit = 0; bit < length; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((network[bit >> 3]! & m) !== (address[bit >> 3]! & m)) return false;
  }
  return true;
}

/** The slow oracle: a list of routes, searched in full on every lookup. */
class LinearTable {
  private readonly routes = new Map<string, { network: Uint8Array; length: number; peer: number }>();

  private static key(address: Uint8Array, length: number): string {
    return `${toHex(masked(address, length))}/${length}`;
  }

  get size(): number {
    return this.routes.size;
  }

  has(p: Prefix): boolean {
    return this.routes.has(LinearTable.key(p.address, p.length));
  }

  insert(p: Prefix, peer: number): void {
    this.routes.set(LinearTable.key(p.address, p.length), { network: masked(p.address, p.length), length: p.length, peer });
  }

  remove(p: Prefix): boolean {
    return this.routes.delete(LinearTable.key(p.address, p.length));
  }

  removePeer(peer: number): number {
    let n = 0;
    for (const [key, route] of this.routes) {
      if (route.peer === peer) {
        this.routes.delete(key);
        n++;
      }
    }
    return n;
  }

  lookup(address: Uint8Array): number | undefined {
    let best = -1;
    let peer: number | undefined;
    for (const route of this.routes.values()) {
      if (route.length > best && covers(route.network, route.length, address)) {
        best = route.length;
        peer = route.peer;
      }
    }
    return peer;
  }

  prefixes(): Prefix[] {
    return [...this.routes.values()].map((r) => ({ address: r.network, length: r.length }));
  }
}

function flipBit(address: Uint8Array, bit: number): void {
  address[bit >> 3]! ^= 0x80 >> (bit & 7);
}

/** Adds delta (±1) to the address as one big-endian number, wrapping around. */
function step(address: Uint8Array, delta: 1 | -1): Uint8Array {
  const out = address.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    const v = out[i]! + delta;
    out[i] = v & 0xff;
    if (v >= 0 && v <= 0xff) break;
  }
  return out;
}

/**
 * Prefixes that nest and overlap: most start from one of a few anchors per family with some bits
 * flipped, so they share long prefixes; some are uniform. Host bits past the length stay random,
 * so the engine's masking is exercised on every insert.
 */
class PrefixSource {
  private readonly anchors: Uint8Array[];

  constructor(private readonly r: Rng) {
    this.anchors = [
      ...Array.from({ length: 12 }, () => r.bytes(4)),
      ...Array.from({ length: 12 }, () => r.bytes(16)),
    ];
  }

  prefix(): Prefix {
    const r = this.r;
    const address = r.bool(0.85) ? r.pick(this.anchors).slice() : r.bytes(r.bool() ? 4 : 16);
    const bits = address.length * 8;
    for (let flips = r.int(0, 3); flips > 0; flips--) flipBit(address, r.int(Math.floor(bits / 4), bits - 1));
    const roll = r.int(0, 19);
    const length = roll === 0 ? 0 : roll === 1 ? bits : roll < 6 ? r.int(bits - 8, bits) : r.int(0, bits);
    return { address, length };
  }

  /** Addresses worth asking about: around prefixes in the table, near anchors, and anywhere. */
  address(prefixes: Prefix[]): Uint8Array {
    const r = this.r;
    const roll = r.int(0, 9);
    if (roll < 6 && prefixes.length > 0) {
      const p = r.pick(prefixes);
      const network = masked(p.address, p.length);
      const last = network.slice();
      for (let bit = p.length; bit < network.length * 8; bit++) flipBit(last, bit);
      switch (r.int(0, 4)) {
        case 0: return network;
        case 1: return last;
        case 2: return step(network, -1);
        case 3: return step(last, 1);
        default: {
          const inside = r.bytes(network.length);
          for (let bit = 0; bit < p.length; bit++) {
            if (((inside[bit >> 3]! ^ network[bit >> 3]!) & (0x80 >> (bit & 7))) !== 0) flipBit(inside, bit);
          }
          return inside;
        }
      }
    }
    if (roll < 9) {
      const a = r.pick(this.anchors).slice();
      for (let flips = r.int(0, 2); flips > 0; flips--) flipBit(a, r.int(0, a.length * 8 - 1));
      return a;
    }
    return r.bytes(r.bool() ? 4 : 16);
  }
}

/** Peer ids: a few, so removePeer removes many routes, and some at the top of the u32 range. */
function randomPeer(r: Rng): number {
  return r.bool(0.9) ? r.int(0, 40) : r.pick([0x7fffffff, 0x80000000, 0xfffffffe, r.int(0, 0xfffffffe)]);
}

function describePrefix(p: Prefix): string {
  return `${toHex(p.address)}/${p.length}`;
}

describe.each(BUILDS)("allowed IPs (%s build)", (build) => {
  function agree(engine: Engine, oracle: LinearTable, source: PrefixSource, lookups: number, where: string): void {
    expect(engine.routes.size, `${where}: size`).toBe(oracle.size);
    const prefixes = oracle.prefixes();
    for (let i = 0; i < lookups; i++) {
      const address = source.address(prefixes);
      const expected = oracle.lookup(address);
      const actual = engine.routes.lookup(address);
      if (actual !== expected) {
        expect(actual, `${where}: lookup ${i} of ${toHex(address)}`).toBe(expected);
      }
    }
  }

  it("longest-prefix match agrees with a linear scan over thousands of random v4/v6 prefixes, through removes and removePeer", () => {
    const r = rng(`routes/differential/${build}`);
    const engine = Engine.create({ build });
    const oracle = new LinearTable();
    const source = new PrefixSource(r);
    for (let i = 0; i < 4000; i++) {
      const p = source.prefix();
      const peer = randomPeer(r);
      engine.routes.insert(p, peer);
      oracle.insert(p, peer);
    }
    agree(engine, oracle, source, 1500, r.where("after 4000 inserts"));

    for (let round = 0; round < 6; round++) {
      for (let op = 0; op < 400; op++) {
        const roll = r.int(0, 99);
        if (roll < 45) {
          const p = source.prefix();
          const peer = randomPeer(r);
          engine.routes.insert(p, peer);
          oracle.insert(p, peer);
        } else if (roll < 85) {
          // An existing prefix with other host bits (they are ignored), or one probably absent.
          const known = oracle.prefixes();
          let p = source.prefix();
          if (roll < 75 && known.length > 0) {
            const k = r.pick(known);
            const address = r.bytes(k.address.length);
            for (let bit = 0; bit < k.length; bit++) {
              if (((address[bit >> 3]! ^ k.address[bit >> 3]!) & (0x80 >> (bit & 7))) !== 0) flipBit(address, bit);
            }
            p = { address, length: k.length };
          }
          const expected = oracle.remove(p);
          expect(engine.routes.remove(p), r.where(`round ${round} op ${op}: remove ${describePrefix(p)}`)).toBe(expected);
        } else {
          const peer = r.int(0, 40);
          const expected = oracle.removePeer(peer);
          expect(engine.routes.removePeer(peer), r.where(`round ${round} op ${op}: removePeer ${peer}`)).toBe(expected);
        }
      }
      agree(engine, oracle, source, 600, r.where(`round ${round}`));
    }

    // Emptying the table through removePeer leaves nothing behind.
    for (let peer = 0; peer <= 40; peer++) {
      expect(engine.routes.removePeer(peer), r.where(`final removePeer ${peer}`)).toBe(oracle.removePeer(peer));
    }
    for (const p of oracle.prefixes()) {
      expect(engine.routes.remove(p), r.where(`final remove ${describePrefix(p)}`)).toBe(oracle.remove(p));
    }
    expect(engine.routes.size, r.where("empty")).toBe(0);
    agree(engine, oracle, source, 200, r.where("emptied"));
  });

  it("a small table churned at capacity: TABLE_FULL exactly when the oracle is full, nodes are reused, lookups agree", () => {
    const r = rng(`routes/churn/${build}`);
    const capacity = 300;
    const engine = Engine.create({ build, maxRoutes: capacity });
    const oracle = new LinearTable();
    const source = new PrefixSource(r);
    let full = 0;
    for (let op = 0; op < 6000; op++) {
      if (r.bool(0.6)) {
        const p = source.prefix();
        const peer = randomPeer(r);
        if (oracle.size >= capacity && !oracle.has(p)) {
          expectCode(() => engine.routes.insert(p, peer), "TABLE_FULL", r.where(`op ${op}`));
          full++;
        } else {
          engine.routes.insert(p, peer);
          oracle.insert(p, peer);
        }
      } else if (oracle.size > 0) {
        const p = r.pick(oracle.prefixes());
        expect(engine.routes.remove(p), r.where(`op ${op}: remove ${describePrefix(p)}`)).toBe(oracle.remove(p));
      }
      if (op % 500 === 499) agree(engine, oracle, source, 300, r.where(`op ${op}`));
    }
    expect(full, r.where("the table was full at times")).toBeGreaterThan(0);
  });

  it("full table: TABLE_FULL, replacing a present prefix still works, and after clear() it fills again", () => {
    const engine = Engine.create({ build, maxRoutes: 64 });
    const fill = (base: number): void => {
      for (let i = 0; i < 32; i++) engine.routes.insert(`10.${base}.${i}.0/24`, i);
      for (let i = 0; i < 32; i++) engine.routes.insert(`fd00:${base}:${i}::/48`, 100 + i);
    };
    fill(1);
    expect(engine.routes.size).toBe(64);
    expectCode(() => engine.routes.insert("10.99.0.0/16", 1), "TABLE_FULL", "65th route");
    expectCode(() => engine.routes.insert("::/0", 1), "TABLE_FULL", "65th route, v6");
    engine.routes.insert("10.1.5.77/24", 999); // the same prefix: moves to peer 999
    expect(engine.routes.lookup(ip("10.1.5.1"))).toBe(999);
    expect(engine.routes.size).toBe(64);
    expect(engine.routes.remove("10.1.5.0/24")).toBe(true);
    engine.routes.insert("10.99.0.0/16", 7);
    expect(engine.routes.lookup(ip("10.99.200.1"))).toBe(7);
    engine.routes.clear();
    expect(engine.routes.size).toBe(0);
    expect(engine.routes.lookup(ip("10.1.1.1"))).toBeUndefined();
    expect(engine.routes.lookup(ip("fd00:1:1::1"))).toBeUndefined();
    fill(2);
    expect(engine.routes.size).toBe(64);
    expect(engine.routes.lookup(ip("10.2.31.255"))).toBe(31);
    expect(engine.routes.lookup(ip("fd00:2:31:ffff::"))).toBe(131); // "31" is a hex group
    expect(engine.routes.lookup(ip("10.1.31.255"))).toBeUndefined();
  });

  it("CIDR text: host bits are masked, /0 and host routes, nesting, IPv4-mapped IPv6 is IPv4", () => {
    const engine = Engine.create({ build });
    const routes = engine.routes;
    routes.insert("10.0.0.1/8", 1); // stored as 10.0.0.0/8, as wg does
    routes.insert("10.1.0.0/16", 2);
    routes.insert("10.1.2.3/32", 3);
    routes.insert("10.1.2.3", 4); // a bare address is a host route: replaces /32
    routes.insert("0.0.0.0/0", 5);
    routes.insert("fd00::1/64", 6);
    routes.insert("fd00::/8", 7);
    routes.insert("fd00::1", 8);
    routes.insert("::/0", 9);
    routes.insert("::ffff:192.168.0.0/112", 10); // = 192.168.0.0/16
    expect(routes.size).toBe(9);
    const cases: [string, number | undefined][] = [
      ["10.200.0.1", 1], ["10.1.99.1", 2], ["10.1.2.3", 4], ["10.1.2.4", 2], ["11.0.0.0", 5], ["9.255.255.255", 5],
      ["fd00::1", 8], ["fd00::2", 6], ["fd00:0:0:1::", 7], ["fdff::", 7], ["fe00::", 9], ["::", 9],
      ["192.168.3.4", 10], ["::ffff:192.168.3.4", 10], ["::ffff:10.1.2.3", 4], ["192.169.0.0", 5],
    ];
    for (const [address, peer] of cases) {
      expect(routes.lookup(address), `lookup("${address}")`).toBe(peer);
      expect(routes.lookup(ip(address)), `lookup of the bytes of ${address}`).toBe(peer);
    }
    expect(routes.remove("192.168.0.0/16")).toBe(true); // the mapped prefix, removed by its IPv4 name
    expect(routes.lookup("::ffff:192.168.3.4")).toBe(5);
    expect(routes.remove("10.0.0.0/8")).toBe(true);
    expect(routes.remove("10.0.0.0/8")).toBe(false);
    expect(routes.lookup("10.200.0.1")).toBe(5);
    expect(routes.removePeer(8)).toBe(1);
    expect(routes.lookup("fd00::1")).toBe(6);
    expect(routes.remove({ address: ip("0.0.0.0"), length: 0 })).toBe(true);
    expect(routes.lookup("11.0.0.0")).toBeUndefined();
    expect(routes.lookup("::1")).toBe(9); // the IPv6 default route is untouched by the IPv4 one
  });

  it("parsePrefix reads the usual spellings", () => {
    const cases: [string, string, number][] = [
      ["10.0.0.0/8", "0a000000", 8],
      ["255.255.255.255/32", "ffffffff", 32],
      ["0.0.0.0/0", "00000000", 0],
      ["fd00::/64", "fd000000000000000000000000000000", 64],
      ["::/0", "00000000000000000000000000000000", 0],
      ["::1", "00000000000000000000000000000001", 128],
      ["1:2:3:4:5:6:7:8/128", "00010002000300040005000600070008", 128],
      ["1::8", "00010000000000000000000000000008", 128],
      ["1:2:3:4:5:6:7::/112", "00010002000300040005000600070000", 112],
      ["FD00:ABCD::/32", "fd00abcd000000000000000000000000", 32],
      ["::ffff:10.1.2.3/128", "00000000000000000000ffff0a010203", 128],
      ["64:ff9b::192.0.2.33/96", "0064ff9b0000000000000000c0000221", 96],
    ];
    for (const [text, hexAddress, length] of cases) {
      const p = parsePrefix(text);
      expect(`${toHex(p.address)}/${p.length}`, text).toBe(`${hexAddress}/${length}`);
    }
  });

  it("bad prefixes, addresses and peers: BAD_CIDR, BAD_ADDRESS, BAD_PEER, and the table is unchanged", () => {
    const engine = Engine.create({ build });
    const routes = engine.routes;
    routes.insert("10.0.0.0/8", 1);
    const badCidr = [
      "10.0.0.0/33", "fd00::/129", "10.0.0/8", "10.0.0.0.0/8", "010.0.0.1/8", "256.0.0.0/8", "1.2.3.4/-1", "1.2.3.4/ 8",
      "1.2.3.4/08", "1.2.3.4/", "1.2.3.4/8/8", "::1::2/64", "1:2:3:4:5:6:7:8:9/64", "1:2:3:4:5:6:7:8::/64", "12345::/16",
      "fe80::1%eth0/64", "", "/8", "::ffff:1.2.3/128", "1.2.3.4::/64", "g::/16", " 10.0.0.0/8", "10.0.0.0/8 ", ":::/0",
    ];
    for (const text of badCidr) {
      expectCode(() => routes.insert(text, 2), "BAD_CIDR", `insert("${text}")`);
      expectCode(() => routes.remove(text), "BAD_CIDR", `remove("${text}")`);
    }
    for (const value of [42, null, undefined, ["10.0.0.0/8"]]) {
      expectCode(() => routes.insert(value as unknown as string, 2), "BAD_CIDR", `insert(${String(value)})`);
    }
    for (const length of [33, -1, 1.5, Number.NaN, "8"]) {
      expectCode(() => routes.insert({ address: ip("10.0.0.0"), length: length as number }, 2), "BAD_CIDR", `v4 length ${length}`);
    }
    expectCode(() => routes.insert({ address: ip("fd00::"), length: 129 }, 2), "BAD_CIDR", "v6 length 129");
    for (const size of [0, 3, 5, 15, 17]) {
      expectCode(() => routes.insert({ address: new Uint8Array(size), length: 0 }, 2), "BAD_ADDRESS", `${size}-byte address`);
      expectCode(() => routes.lookup(new Uint8Array(size)), "BAD_ADDRESS", `lookup of ${size} bytes`);
    }
    expectCode(() => routes.insert({ address: [10, 0, 0, 0] as unknown as Uint8Array, length: 8 }, 2), "BAD_ADDRESS", "array address");
    for (const text of ["10.0.0.0/8", "nope", "", "1.2.3"]) {
      expectCode(() => routes.lookup(text), "BAD_ADDRESS", `lookup("${text}")`);
    }
    for (const peer of [-1, NO_PEER, 2 ** 32, 1.5, Number.NaN, "1", null]) {
      expectCode(() => routes.insert("10.1.0.0/16", peer as number), "BAD_PEER", `peer ${String(peer)}`);
      expectCode(() => routes.removePeer(peer as number), "BAD_PEER", `removePeer(${String(peer)})`);
    }
    expect(routes.size).toBe(1);
    expect(routes.lookup("10.1.0.1")).toBe(1);
    routes.insert("10.1.0.0/16", NO_PEER - 1);
    expect(routes.lookup("10.1.0.1")).toBe(NO_PEER - 1);
  });

  it("Engine.create refuses maxRoutes outside 1..2^20", () => {
    for (const maxRoutes of [0, -1, 1.5, 2 ** 20 + 1]) {
      expectCode(() => Engine.create({ build, maxRoutes }), "BAD_ARGUMENT", `maxRoutes ${maxRoutes}`);
    }
  });
});
