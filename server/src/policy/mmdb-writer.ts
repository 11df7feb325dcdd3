// A small MaxMind DB writer for tests: builds the fixture databases geoip.ts is checked against
// (IPv4 and IPv6 trees, 24/28/32-bit records, every data type, pointers of every size). It follows
// the same spec as the reader but shares no code with it, so a misreading would have to be made twice.
//
// 1. Values are typed (the format tells uint16 from uint32 from double; JavaScript numbers do not).
// 2. The tree is a binary trie of the networks, inserted shortest prefix first so a more specific
//    network overrides part of a wider one; IPv4 networks of an IPv6 database sit under ::/96, and
//    `aliasIpv4Mapped` points ::ffff:0:0/96 at the same subtree, as MaxMind's databases do.
// 3. File: tree, 16 zero bytes, data section, marker, metadata map.

import { parseCidr } from "../domain/resource-rules.js";

export type Typed =
  | { t: "string"; v: string }
  | { t: "bytes"; v: Uint8Array }
  | { t: "double" | "float" | "uint16" | "uint32" | "int32"; v: number }
  | { t: "uint64" | "uint128"; v: bigint }
  | { t: "boolean"; v: boolean }
  | { t: "map"; v: [string, Typed][] }
  | { t: "array"; v: Typed[] };

export interface WriterOptions {
  ipVersion: 4 | 6;
  recordSize: 24 | 28 | 32;
  networks: { network: string; value: Typed }[];
  /** Repeated strings and containers become pointers to their first copy. */
  dedupe?: boolean;
  /** Encode every pointer with the 4-byte form instead of the smallest one. */
  widePointers?: boolean;
  aliasIpv4Mapped?: boolean;
  /** Metadata entries to replace (or, with value null, drop). */
  metadata?: Record<string, Typed | null>;
  /** Bytes placed at the start of the data section, before every record (to push offsets up). */
  padding?: number;
}

const TYPE_CODES: Record<Typed["t"], number> = {
  string: 2, double: 3, bytes: 4, uint16: 5, uint32: 6, map: 7, int32: 8, uint64: 9, uint128: 10, array: 11, boolean: 14, float: 15,
};

/** A JSON-like value as typed data: non-negative integers as uint32, other numbers as double. */
export function typed(value: unknown): Typed {
  if (typeof value === "string") return { t: "string", v: value };
  if (typeof value === "boolean") return { t: "boolean", v: value };
  if (typeof value === "bigint") return { t: "uint128", v: value };
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 && value < 2 ** 32 ? { t: "uint32", v: value } : { t: "double", v: value };
  if (Array.isArray(value)) return { t: "array", v: value.map(typed) };
  if (value instanceof Uint8Array) return { t: "bytes", v: value };
  if (typeof value === "object" && value !== null) return { t: "map", v: Object.entries(value).map(([k, v]) => [k, typed(v)]) };
  throw new Error(`cannot type ${String(value)}`);
}

/** What a reader should decode `value` to. */
export function plain(value: Typed): unknown {
  switch (value.t) {
    case "float":
      return Math.fround(value.v);
    case "int32":
      return value.v | 0;
    case "map":
      return Object.fromEntries(value.v.map(([k, v]) => [k, plain(v)]));
    case "array":
      return value.v.map(plain);
    default:
      return value.v;
  }
}

class DataWriter {
  readonly out: number[] = [];
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly dedupe: boolean,
    private readonly widePointers: boolean,
  ) {}

  control(type: number, size: number): void {
    const first = type <= 7 ? type << 5 : 0;
    const sizeBytes: number[] = [];
    let low: number;
    if (size < 29) low = size;
    else if (size < 285) [low, sizeBytes[0]] = [29, size - 29];
    else if (size < 65_821) {
      low = 30;
      const n = size - 285;
      sizeBytes.push(n >> 8, n & 0xff);
    } else {
      low = 31;
      const n = size - 65_821;
      sizeBytes.push((n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    }
    this.out.push(first | low);
    if (type > 7) this.out.push(type - 7);
    this.out.push(...sizeBytes);
  }

  /** Byte by byte: spreading a large array into push() overflows the stack. */
  append(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.out.push(bytes[i]!);
  }

  pointer(target: number): void {
    if (!this.widePointers && target < 2048) this.out.push(0x20 | (target >> 8), target & 0xff);
    else if (!this.widePointers && target < 526_336) {
      const w = target - 2048;
      this.out.push(0x28 | (w >> 16), (w >> 8) & 0xff, w & 0xff);
    } else if (!this.widePointers && target < 526_336 + 2 ** 27) {
      const w = target - 526_336;
      this.out.push(0x30 | Math.floor(w / 2 ** 24), (w >> 16) & 0xff, (w >> 8) & 0xff, w & 0xff);
    } else this.out.push(0x38, (target >>> 24) & 0xff, (target >> 16) & 0xff, (target >> 8) & 0xff, target & 0xff);
  }

  /** Writes `value` (or a pointer to an earlier copy); returns where the value itself is. */
  write(value: Typed, top = false): number {
    const key = this.dedupe && (value.t === "string" || value.t === "map" || value.t === "array") ? keyOf(value) : undefined;
    if (key !== undefined) {
      const earlier = this.seen.get(key);
      if (earlier !== undefined) {
        if (top) return earlier;
        this.pointer(earlier);
        return earlier;
      }
    }
    const at = this.out.length;
    this.raw(value);
    if (key !== undefined) this.seen.set(key, at);
    return at;
  }

  private raw(value: Typed): void {
    const type = TYPE_CODES[value.t];
    switch (value.t) {
      case "string": {
        const bytes = new TextEncoder().encode(value.v);
        this.control(type, bytes.length);
        this.append(bytes);
        return;
      }
      case "bytes":
        this.control(type, value.v.length);
        this.append(value.v);
        return;
      case "double": {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, value.v);
        this.control(type, 8);
        this.out.push(...b);
        return;
      }
      case "float": {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setFloat32(0, value.v);
        this.control(type, 4);
        this.out.push(...b);
        return;
      }
      case "uint16":
      case "uint32":
      case "int32":
        this.integer(type, BigInt(value.t === "int32" ? value.v >>> 0 : value.v));
        return;
      case "uint64":
      case "uint128":
        this.integer(type, value.v);
        return;
      case "boolean":
        this.control(type, value.v ? 1 : 0);
        return;
      case "map":
        this.control(type, value.v.length);
        for (const [k, v] of value.v) {
          this.write({ t: "string", v: k });
          this.write(v);
        }
        return;
      case "array":
        this.control(type, value.v.length);
        for (const v of value.v) this.write(v);
        return;
    }
  }

  /** The fewest big-endian bytes, as the spec allows (zero bytes for 0). */
  private integer(type: number, n: bigint): void {
    const bytes: number[] = [];
    for (let x = n; x > 0n; x >>= 8n) bytes.unshift(Number(x & 0xffn));
    this.control(type, bytes.length);
    this.out.push(...bytes);
  }
}

function keyOf(value: Typed): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? [...v] : v));
}

type Child = { node: TrieNode } | { data: number } | null;
class TrieNode {
  kids: [Child, Child] = [null, null];
}

/** Builds a MaxMind DB file. */
export function writeMmdb(options: WriterOptions): Uint8Array {
  const data = new DataWriter(options.dedupe ?? false, options.widePointers ?? false);
  if (options.padding !== undefined && options.padding > 0) data.write({ t: "bytes", v: new Uint8Array(options.padding) });
  const width = options.ipVersion === 4 ? 32 : 128;
  const entries = options.networks.map(({ network, value }, order) => {
    const parsed = parseCidr(network);
    if (!parsed.ok) throw new Error(`bad network ${network}`);
    const p = parsed.prefix;
    if (p.family === 6 && options.ipVersion === 4) throw new Error(`IPv6 network ${network} in an IPv4 database`);
    const length = p.family === 4 && width === 128 ? p.length + 96 : p.length;
    return { value: p.value, length, order, typed: value };
  });
  entries.sort((a, b) => a.length - b.length || a.order - b.order);
  const root = new TrieNode();
  for (const entry of entries) {
    if (entry.length === 0) throw new Error("a /0 network is not supported by this writer");
    const offset = data.write(entry.typed, true);
    let node = root;
    for (let i = 0; i < entry.length; i++) {
      const bit = Number((entry.value >> BigInt(width - 1 - i)) & 1n) as 0 | 1;
      if (i === entry.length - 1) {
        node.kids[bit] = { data: offset };
        break;
      }
      const kid = node.kids[bit];
      if (kid !== null && "node" in kid) {
        node = kid.node;
        continue;
      }
      const next = new TrieNode();
      next.kids = [kid, kid];
      node.kids[bit] = { node: next };
      node = next;
    }
  }
  if (options.aliasIpv4Mapped && width === 128) {
    let v4: TrieNode | undefined = root;
    for (let i = 0; i < 96 && v4 !== undefined; i++) {
      const kid: Child = v4.kids[0];
      v4 = kid !== null && "node" in kid ? kid.node : undefined;
    }
    if (v4 !== undefined) {
      let node = root;
      const mapped = 0xffffn << 32n;
      for (let i = 0; i < 96; i++) {
        const bit = Number((mapped >> BigInt(127 - i)) & 1n) as 0 | 1;
        if (i === 95) {
          node.kids[bit] = { node: v4 };
          break;
        }
        const kid = node.kids[bit];
        if (kid !== null && "node" in kid) {
          node = kid.node;
          continue;
        }
        const next = new TrieNode();
        next.kids = [kid, kid];
        node.kids[bit] = { node: next };
        node = next;
      }
    }
  }

  // Number the nodes breadth first; a shared subtree (the alias) is numbered once.
  const numbers = new Map<TrieNode, number>([[root, 0]]);
  const order: TrieNode[] = [root];
  for (let i = 0; i < order.length; i++) {
    for (const kid of order[i]!.kids) {
      if (kid !== null && "node" in kid && !numbers.has(kid.node)) {
        numbers.set(kid.node, order.length);
        order.push(kid.node);
      }
    }
  }
  const nodeCount = order.length;
  const recordOf = (kid: Child): number => (kid === null ? nodeCount : "node" in kid ? numbers.get(kid.node)! : nodeCount + 16 + kid.data);
  const nodeBytes = options.recordSize / 4;
  const tree = new Uint8Array(nodeCount * nodeBytes);
  const view = new DataView(tree.buffer);
  order.forEach((node, n) => {
    const [left, right] = node.kids.map(recordOf) as [number, number];
    if (left >= 2 ** options.recordSize || right >= 2 ** options.recordSize) throw new Error("record does not fit");
    const o = n * nodeBytes;
    if (options.recordSize === 24) {
      tree.set([left >> 16, (left >> 8) & 0xff, left & 0xff, right >> 16, (right >> 8) & 0xff, right & 0xff], o);
    } else if (options.recordSize === 28) {
      tree.set([(left >> 16) & 0xff, (left >> 8) & 0xff, left & 0xff, ((left >>> 24) << 4) | (right >>> 24), (right >> 16) & 0xff, (right >> 8) & 0xff, right & 0xff], o);
    } else {
      view.setUint32(o, left);
      view.setUint32(o + 4, right);
    }
  });

  const metadata: Record<string, Typed | null> = {
    node_count: { t: "uint32", v: nodeCount },
    record_size: { t: "uint16", v: options.recordSize },
    ip_version: { t: "uint16", v: options.ipVersion },
    database_type: { t: "string", v: "Wardline-Test-Country" },
    languages: { t: "array", v: [{ t: "string", v: "en" }] },
    binary_format_major_version: { t: "uint16", v: 2 },
    binary_format_minor_version: { t: "uint16", v: 0 },
    build_epoch: { t: "uint64", v: 1_760_000_000n },
    description: { t: "map", v: [["en", { t: "string", v: "Wardline test database" }]] },
    ...options.metadata,
  };
  const meta = new DataWriter(false, false);
  meta.write({ t: "map", v: Object.entries(metadata).filter((e): e is [string, Typed] => e[1] !== null) });
  const marker = [0xab, 0xcd, 0xef, ...new TextEncoder().encode("MaxMind.com")];
  const file = new Uint8Array(tree.length + 16 + data.out.length + marker.length + meta.out.length);
  let at = 0;
  for (const part of [tree, new Uint8Array(16), data.out, marker, meta.out]) {
    file.set(part, at);
    at += part.length;
  }
  return file;
}
