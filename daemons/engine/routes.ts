// Allowed IPs: the binding's side of engine/routes.ts. Prefixes come in as CIDR text ("10.0.0.0/8",
// "fd00::/64") or as address bytes and a length, are checked here, and cross into the engine through
// scratch as 4 or 16 bytes in network order.
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) names an IPv4 address, so a mapped prefix of
// /96 or longer is stored, removed and looked up as the IPv4 prefix it maps; shorter prefixes, which
// also cover non-mapped addresses, stay IPv6. Inner packets are routed by their own IP version, so an
// IPv6 header carrying a mapped address matches only the shorter IPv6 routes that cover it (::/0).

import {
  IPV4_ADDRESS_BITS, IPV4_ADDRESS_SIZE, IPV4_MAPPED_PREFIX, IPV4_MAPPED_PREFIX_BITS, IPV6_ADDRESS_BITS, IPV6_ADDRESS_SIZE,
  NO_PEER, RESULT_NOT_FOUND, RESULT_OK, RESULT_TABLE_FULL,
} from "./constants.js";
import type { EngineExports } from "./engine.js";
import { EngineError, checkPeer } from "./errors.js";

/** A prefix as bytes: a 4- or 16-byte address in network order and a length in bits. */
export interface Prefix {
  address: Uint8Array;
  length: number;
}

function isMapped(address: Uint8Array): boolean {
  return IPV4_MAPPED_PREFIX.every((byte, i) => address[i] === byte);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(IPV4_ADDRESS_SIZE);
  for (const [i, part] of parts.entries()) {
    // Leading zeros are refused: inet_aton would read them as octal.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    out[i] = value;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const groups: number[] = [];
  let tail: Uint8Array | undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parsed: number[][] = [];
  for (const [h, half] of halves.entries()) {
    const words: number[] = [];
    const pieces = half === "" ? [] : half.split(":");
    for (const [i, piece] of pieces.entries()) {
      const last = h === halves.length - 1 && i === pieces.length - 1;
      if (last && piece.includes(".")) {
        tail = parseIpv4(piece);
        if (tail === undefined) return undefined;
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
      words.push(parseInt(piece, 16));
    }
    parsed.push(words);
  }
  const tailWords = tail === undefined ? 0 : 2;
  const given = parsed.reduce((n, w) => n + w.length, 0) + tailWords;
  if (halves.length === 1) {
    if (given !== 8) return undefined;
    groups.push(...parsed[0]!);
  } else {
    // "::" stands for one or more zero groups.
    if (given > 7) return undefined;
    groups.push(...parsed[0]!, ...new Array<number>(8 - given).fill(0), ...parsed[1]!);
  }
  const out = new Uint8Array(IPV6_ADDRESS_SIZE);
  for (const [i, word] of groups.entries()) {
    out[2 * i] = word >>> 8;
    out[2 * i + 1] = word & 0xff;
  }
  if (tail !== undefined) out.set(tail, 12);
  return out;
}

/** Parses an IPv4 or IPv6 address (no zone) into 4 or 16 bytes; undefined if it is not one. */
export function parseAddress(text: string): Uint8Array | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

/** Parses "address/length" (a bare address is a host route: /32 or /128). Throws BAD_CIDR. */
export function parsePrefix(text: string): Prefix {
  if (typeof text !== "string") throw new EngineError("BAD_CIDR", `prefix must be CIDR text, got ${describe(text)}`);
  const slash = text.indexOf("/");
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (address === undefined) throw new EngineError("BAD_CIDR", `"${text}" is not an IPv4 or IPv6 address or prefix`);
  const bits = address.length * 8;
  if (slash < 0) return { address, length: bits };
  const lengthText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > bits) {
    throw new EngineError("BAD_CIDR", `"${text}": prefix length must be an integer from 0 to ${bits}`);
  }
  return { address, length: Number(lengthText) };
}

/** Allowed IPs held in engine memory: a longest-prefix-match table from prefixes to peer ids. */
export class AllowedIps {
  private readonly scratch: number;

  constructor(
    private readonly x: EngineExports,
    private readonly mem: Uint8Array,
    readonly capacity: number,
  ) {
    this.scratch = x.scratchPtr();
  }

  /** Routes the prefix to peer (0 to NO_PEER - 1); bits past the length are ignored, and a prefix already present moves to peer. */
  insert(prefix: string | Prefix, peer: number): void {
    const { version, length } = this.stage("routes.insert", prefix);
    checkPeer("routes.insert", peer);
    const rc = this.x.routeInsert(version, this.scratch, length, peer >>> 0);
    if (rc === RESULT_TABLE_FULL) {
      throw new EngineError("TABLE_FULL", `routes.insert: all ${this.capacity} routes are in use`);
    }
    if (rc !== RESULT_OK) throw new EngineError("BAD_ARGUMENT", `routes.insert: engine refused the prefix (code ${rc})`);
  }

  /** Removes the route of exactly this prefix; false if there was none. */
  remove(prefix: string | Prefix): boolean {
    const { version, length } = this.stage("routes.remove", prefix);
    const rc = this.x.routeRemove(version, this.scratch, length);
    if (rc === RESULT_NOT_FOUND) return false;
    if (rc !== RESULT_OK) throw new EngineError("BAD_ARGUMENT", `routes.remove: engine refused the prefix (code ${rc})`);
    return true;
  }

  /** Removes every route of peer, as when the peer is removed; returns how many there were. */
  removePeer(peer: number): number {
    checkPeer("routes.removePeer", peer);
    return this.x.routeRemovePeer(peer >>> 0);
  }

  /** The peer of the longest prefix covering address (4 or 16 bytes, or text), if any. */
  lookup(address: Uint8Array | string): number | undefined {
    let bytes: Uint8Array | undefined;
    if (typeof address === "string") {
      bytes = parseAddress(address);
      if (bytes === undefined) throw new EngineError("BAD_ADDRESS", `routes.lookup: "${address}" is not an IPv4 or IPv6 address`);
    } else {
      bytes = address;
    }
    const { version } = this.stageAddress("routes.lookup", bytes, bytes instanceof Uint8Array ? bytes.length * 8 : 0);
    const peer = this.x.routeLookup(version, this.scratch) >>> 0;
    return peer === NO_PEER ? undefined : peer;
  }

  /** Removes every route. */
  clear(): void {
    this.x.routeClear();
  }

  /** Routes in the table. */
  get size(): number {
    return this.x.routeCount();
  }

  private stage(op: string, prefix: string | Prefix): { version: number; length: number } {
    const parsed: unknown = typeof prefix === "string" ? parsePrefix(prefix) : prefix;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !("address" in parsed) || !("length" in parsed)) {
      throw new EngineError("BAD_CIDR", `${op}: prefix must be CIDR text or { address, length }, got ${describe(parsed)}`);
    }
    return this.stageAddress(op, parsed.address, parsed.length);
  }

  /** Validates, unmaps IPv4-mapped addresses, and copies the address into scratch. */
  private stageAddress(op: string, address: unknown, length: unknown): { version: number; length: number } {
    if (!(address instanceof Uint8Array)) {
      throw new EngineError("BAD_ADDRESS", `${op}: address must be a Uint8Array, got ${describe(address)}`);
    }
    if (address.length !== IPV4_ADDRESS_SIZE && address.length !== IPV6_ADDRESS_SIZE) {
      throw new EngineError("BAD_ADDRESS", `${op}: address must be ${IPV4_ADDRESS_SIZE} or ${IPV6_ADDRESS_SIZE} bytes, got ${address.length}`);
    }
    const bits = address.length === IPV4_ADDRESS_SIZE ? IPV4_ADDRESS_BITS : IPV6_ADDRESS_BITS;
    if (typeof length !== "number" || !Number.isInteger(length) || length < 0 || length > bits) {
      throw new EngineError("BAD_CIDR", `${op}: prefix length must be an integer from 0 to ${bits}, got ${String(length)}`);
    }
    if (bits === IPV6_ADDRESS_BITS && length >= IPV4_MAPPED_PREFIX_BITS && isMapped(address)) {
      this.mem.set(address.subarray(IPV4_MAPPED_PREFIX.length), this.scratch);
      return { version: 4, length: length - IPV4_MAPPED_PREFIX_BITS };
    }
    this.mem.set(address, this.scratch);
    return { version: bits === IPV4_ADDRESS_BITS ? 4 : 6, length };
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  return Array.isArray(value) ? "an array" : typeof value;
}
