// Our reader of MaxMind DB files (https://maxmind.github.io/MaxMind-DB/, format 2.0): the region
// of a client's address for remote_ip_location_region conditions.
//
// 1. Open: find the last "\xAB\xCD\xEFMaxMind.com" marker in the file's last 128 KiB; decode the
//    metadata map after it; check every key the reader relies on (node_count, record_size 24/28/32,
//    ip_version 4/6, binary format 2.x, database_type), that the tree and the 16-byte separator fit
//    before the metadata, and every record of the tree (a node, "no data", or an offset inside the
//    data section). A file failing any of these is refused with an error naming what is wrong.
// 2. Lookup: walk the tree one address bit per node (IPv4 in an IPv6 tree starts at the node that
//    ::/96 leads to; IPv4-mapped IPv6 is read as IPv4); a record past node_count points into the data.
// 3. Decode: control byte (type, extended type, size with its 29/30/31 escapes), pointers (four sizes,
//    never to a pointer), UTF-8 strings, bytes, doubles, floats, uint16/32/64/128, int32, booleans,
//    maps and arrays. A decode never throws and never loops: every read is bounds-checked, nesting
//    is capped and every lookup has a budget of items; damage found at lookup time is an error value.
// 4. Country: country.iso_code, else registered_country.iso_code, read without decoding the rest of
//    the record; answers are cached per data record, which many networks share.

import { readFile } from "node:fs/promises";
import { parseIp, unmapIpv4 } from "../domain/resource-rules.js";

/** A decoded value: uint64 and uint128 as bigint, bytes as Uint8Array, maps as plain objects. */
export type MmdbValue = string | number | bigint | boolean | Uint8Array | MmdbValue[] | { [key: string]: MmdbValue };

export interface MmdbMetadata {
  nodeCount: number;
  recordSize: 24 | 28 | 32;
  ipVersion: 4 | 6;
  databaseType: string;
  languages: string[];
  binaryFormatMajorVersion: number;
  binaryFormatMinorVersion: number;
  buildEpoch: bigint;
  description: Record<string, string>;
}

/** A lookup's answer: the record of the network holding the address, none, or damage met on the way. */
export type MmdbLookup = { found: true; value: MmdbValue; prefixLength: number } | { found: false } | { found: false; error: string };

export type GeoIpOpen = { ok: true; reader: GeoIpReader } | { ok: false; error: string };

const METADATA_MARKER = [0xab, 0xcd, 0xef, 0x4d, 0x61, 0x78, 0x4d, 0x69, 0x6e, 0x64, 0x2e, 0x63, 0x6f, 0x6d]; // "\xAB\xCD\xEFMaxMind.com"
const METADATA_MAX_SIZE = 128 * 1024;
const DATA_SECTION_SEPARATOR_SIZE = 16;

const TYPE_EXTENDED = 0;
const TYPE_POINTER = 1;
const TYPE_STRING = 2;
const TYPE_DOUBLE = 3;
const TYPE_BYTES = 4;
const TYPE_UINT16 = 5;
const TYPE_UINT32 = 6;
const TYPE_MAP = 7;
const TYPE_INT32 = 8;
const TYPE_UINT64 = 9;
const TYPE_UINT128 = 10;
const TYPE_ARRAY = 11;
const TYPE_BOOLEAN = 14;
const TYPE_FLOAT = 15;

const MAX_DEPTH = 32;
/** Items (values, keys) one decode may visit: a real record has hundreds; a crafted one cannot make more. */
const ITEM_BUDGET = 200_000;
const COUNTRY_CACHE_MAX = 65_536;

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** A failed decode; returned, never thrown. */
class DecodeError {
  constructor(readonly message: string) {}
}

/** Reads one section (the data section, or the metadata) of an MMDB file. */
class SectionDecoder {
  private budget = 0;
  /** Where the last decoded value ended. */
  next = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    /** Where the section starts in the file: pointers count from here. */
    private readonly base: number,
    /** Where it ends (exclusive). */
    private readonly end: number,
  ) {}

  /** Decodes the value at `offset` (section-relative). */
  decode(offset: number): MmdbValue | DecodeError {
    this.budget = ITEM_BUDGET;
    return this.value(offset, 0);
  }

  /** The control byte at `at`: type, size and where the payload starts; or an error. */
  private control(at: number): { type: number; size: number; payload: number; bits: number } | DecodeError {
    const abs = this.base + at;
    if (at < 0 || abs >= this.end) return new DecodeError(`value at ${at} lies outside the section`);
    const byte = this.bytes[abs]!;
    let type = byte >> 5;
    let p = abs + 1;
    if (type === TYPE_EXTENDED) {
      if (p >= this.end) return new DecodeError(`extended type at ${at} is cut off`);
      type = 7 + this.bytes[p]!;
      p++;
      if (type < 8 || type > TYPE_FLOAT) return new DecodeError(`unknown extended type ${type} at ${at}`);
    }
    if (type === TYPE_POINTER) return { type, size: 0, payload: p - this.base, bits: byte & 0x1f };
    let size = byte & 0x1f;
    if (size >= 29) {
      const extra = size - 28;
      if (p + extra > this.end) return new DecodeError(`size of the value at ${at} is cut off`);
      let n = 0;
      for (let i = 0; i < extra; i++) n = n * 256 + this.bytes[p + i]!;
      size = size === 29 ? 29 + n : size === 30 ? 285 + n : 65_821 + n;
      p += extra;
    }
    return { type, size, payload: p - this.base, bits: byte & 0x1f };
  }

  private value(at: number, depth: number): MmdbValue | DecodeError {
    if (--this.budget < 0) return new DecodeError("record too large to decode");
    if (depth > MAX_DEPTH) return new DecodeError(`values nested deeper than ${MAX_DEPTH}`);
    const c = this.control(at);
    if (c instanceof DecodeError) return c;
    if (c.type === TYPE_POINTER) {
      const target = this.pointer(c.payload, c.bits);
      if (target instanceof DecodeError) return target;
      const after = this.next;
      const pointed = this.control(target);
      if (pointed instanceof DecodeError) return pointed;
      if (pointed.type === TYPE_POINTER) return new DecodeError(`pointer at ${at} points to another pointer`);
      const value = this.value(target, depth + 1);
      this.next = after;
      return value;
    }
    return this.payload(c.type, c.size, c.payload, at, depth);
  }

  /** A pointer's target (section-relative); sets `next` past the pointer. */
  private pointer(payload: number, bits: number): number | DecodeError {
    const sizeBits = (bits >> 3) & 0x3;
    const length = sizeBits + 1;
    const abs = this.base + payload;
    if (abs + length > this.end) return new DecodeError(`pointer at ${payload - 1} is cut off`);
    const b = this.bytes;
    let target: number;
    if (sizeBits === 0) target = (bits & 0x7) * 256 + b[abs]!;
    else if (sizeBits === 1) target = (bits & 0x7) * 65_536 + b[abs]! * 256 + b[abs + 1]! + 2048;
    else if (sizeBits === 2) target = (bits & 0x7) * 16_777_216 + b[abs]! * 65_536 + b[abs + 1]! * 256 + b[abs + 2]! + 526_336;
    else target = this.view.getUint32(abs);
    this.next = payload + length;
    if (this.base + target >= this.end) return new DecodeError(`pointer to ${target} lies outside the section`);
    return target;
  }

  private payload(type: number, size: number, at: number, controlAt: number, depth: number): MmdbValue | DecodeError {
    const abs = this.base + at;
    const fixed = (bytes: number): DecodeError | undefined =>
      abs + bytes > this.end ? new DecodeError(`value at ${controlAt} runs past the end of the section`) : undefined;
    switch (type) {
      case TYPE_MAP: {
        // Every pair takes at least two bytes: refuse counts the section cannot hold before looping.
        if (size * 2 > this.end - abs) return new DecodeError(`map at ${controlAt} claims ${size} pairs`);
        const out: { [key: string]: MmdbValue } = {};
        let p = at;
        for (let i = 0; i < size; i++) {
          const key = this.value(p, depth + 1);
          if (key instanceof DecodeError) return key;
          if (typeof key !== "string") return new DecodeError(`map key at ${p} is not a string`);
          p = this.next;
          const value = this.value(p, depth + 1);
          if (value instanceof DecodeError) return value;
          p = this.next;
          Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        }
        this.next = p;
        return out;
      }
      case TYPE_ARRAY: {
        if (size > this.end - abs) return new DecodeError(`array at ${controlAt} claims ${size} items`);
        const out: MmdbValue[] = [];
        let p = at;
        for (let i = 0; i < size; i++) {
          const value = this.value(p, depth + 1);
          if (value instanceof DecodeError) return value;
          out.push(value);
          p = this.next;
        }
        this.next = p;
        return out;
      }
      case TYPE_BOOLEAN:
        if (size > 1) return new DecodeError(`boolean at ${controlAt} has size ${size}`);
        this.next = at;
        return size === 1;
    }
    const cut = fixed(size);
    if (cut !== undefined) return cut;
    this.next = at + size;
    switch (type) {
      case TYPE_STRING:
        return utf8.decode(this.bytes.subarray(abs, abs + size));
      case TYPE_BYTES:
        return this.bytes.slice(abs, abs + size);
      case TYPE_DOUBLE:
        if (size !== 8) return new DecodeError(`double at ${controlAt} has size ${size}`);
        return this.view.getFloat64(abs);
      case TYPE_FLOAT:
        if (size !== 4) return new DecodeError(`float at ${controlAt} has size ${size}`);
        return this.view.getFloat32(abs);
      case TYPE_UINT16:
      case TYPE_UINT32:
      case TYPE_INT32: {
        const max = type === TYPE_UINT16 ? 2 : 4;
        if (size > max) return new DecodeError(`integer at ${controlAt} has size ${size}`);
        let n = 0;
        for (let i = 0; i < size; i++) n = n * 256 + this.bytes[abs + i]!;
        return type === TYPE_INT32 ? n | 0 : n;
      }
      case TYPE_UINT64:
      case TYPE_UINT128: {
        if (size > (type === TYPE_UINT64 ? 8 : 16)) return new DecodeError(`integer at ${controlAt} has size ${size}`);
        let n = 0n;
        for (let i = 0; i < size; i++) n = (n << 8n) | BigInt(this.bytes[abs + i]!);
        return n;
      }
      default:
        return new DecodeError(`type ${type} at ${controlAt} is not a value`);
    }
  }

  /**
   * Follows `path` (map keys) from the map at `at` without decoding what it skips; the string at the
   * end, null when a key is missing or the value is not a string, or an error.
   */
  stringAt(at: number, path: readonly Uint8Array[]): string | null | DecodeError {
    this.budget = ITEM_BUDGET;
    let p = at;
    for (let step = 0; step < path.length; step++) {
      const map = this.resolve(p);
      if (map instanceof DecodeError) return map;
      if (map.type !== TYPE_MAP) return null;
      if (map.size * 2 > this.end - (this.base + map.payload)) return new DecodeError(`map at ${p} claims ${map.size} pairs`);
      let q = map.payload;
      let found = -1;
      for (let i = 0; i < map.size; i++) {
        const key = this.resolve(q);
        if (key instanceof DecodeError) return key;
        if (key.type !== TYPE_STRING) return new DecodeError(`map key at ${q} is not a string`);
        const keyAt = this.base + key.payload;
        if (keyAt + key.size > this.end) return new DecodeError(`map key at ${q} runs past the end of the section`);
        const afterKey = key.end;
        if (found < 0 && equalBytes(this.bytes, keyAt, key.size, path[step]!)) {
          found = afterKey;
          break;
        }
        const skipped = this.skip(afterKey, 0);
        if (skipped instanceof DecodeError) return skipped;
        q = skipped;
      }
      if (found < 0) return null;
      p = found;
    }
    const leaf = this.resolve(p);
    if (leaf instanceof DecodeError) return leaf;
    if (leaf.type !== TYPE_STRING) return null;
    const abs = this.base + leaf.payload;
    if (abs + leaf.size > this.end) return new DecodeError(`string at ${p} runs past the end of the section`);
    return utf8.decode(this.bytes.subarray(abs, abs + leaf.size));
  }

  /** The control at `at`, through one pointer; `end` is where the item at `at` itself ends when it is not a container. */
  private resolve(at: number): { type: number; size: number; payload: number; end: number } | DecodeError {
    if (--this.budget < 0) return new DecodeError("record too large to decode");
    const c = this.control(at);
    if (c instanceof DecodeError) return c;
    if (c.type !== TYPE_POINTER) return { type: c.type, size: c.size, payload: c.payload, end: c.payload + (c.type === TYPE_BOOLEAN || c.type === TYPE_MAP || c.type === TYPE_ARRAY ? 0 : c.size) };
    const target = this.pointer(c.payload, c.bits);
    if (target instanceof DecodeError) return target;
    const after = this.next;
    const pointed = this.control(target);
    if (pointed instanceof DecodeError) return pointed;
    if (pointed.type === TYPE_POINTER) return new DecodeError(`pointer at ${at} points to another pointer`);
    return { type: pointed.type, size: pointed.size, payload: pointed.payload, end: after };
  }

  /** Where the value at `at` ends, without decoding it (pointers are not followed: they have a fixed size). */
  private skip(at: number, depth: number): number | DecodeError {
    if (--this.budget < 0) return new DecodeError("record too large to skip");
    if (depth > MAX_DEPTH) return new DecodeError(`values nested deeper than ${MAX_DEPTH}`);
    const c = this.control(at);
    if (c instanceof DecodeError) return c;
    if (c.type === TYPE_POINTER) {
      const length = ((c.bits >> 3) & 0x3) + 1;
      if (this.base + c.payload + length > this.end) return new DecodeError(`pointer at ${at} is cut off`);
      return c.payload + length;
    }
    if (c.type === TYPE_MAP || c.type === TYPE_ARRAY) {
      const items = c.type === TYPE_MAP ? c.size * 2 : c.size;
      if (items > this.end - (this.base + c.payload)) return new DecodeError(`container at ${at} claims ${c.size} items`);
      let p = c.payload;
      for (let i = 0; i < items; i++) {
        const next = this.skip(p, depth + 1);
        if (next instanceof DecodeError) return next;
        p = next;
      }
      return p;
    }
    if (c.type === TYPE_BOOLEAN) return c.payload;
    if (this.base + c.payload + c.size > this.end) return new DecodeError(`value at ${at} runs past the end of the section`);
    return c.payload + c.size;
  }
}

function equalBytes(bytes: Uint8Array, at: number, length: number, expected: Uint8Array): boolean {
  if (length !== expected.length) return false;
  for (let i = 0; i < length; i++) if (bytes[at + i] !== expected[i]) return false;
  return true;
}

const KEY = (text: string): Uint8Array => new TextEncoder().encode(text);
const COUNTRY_PATH = [KEY("country"), KEY("iso_code")];
const REGISTERED_COUNTRY_PATH = [KEY("registered_country"), KEY("iso_code")];

/** An opened MaxMind DB: validated once, then looked up without throwing. */
export class GeoIpReader {
  private readonly countries = new Map<number, string | null>();

  private constructor(
    readonly metadata: MmdbMetadata,
    private readonly records: TreeRecords,
    private readonly data: SectionDecoder,
    private readonly dataSize: number,
    private readonly ipv4Start: number,
    private readonly ipv4StartDepth: number,
  ) {}

  /** Opens and validates a database held in memory. */
  static open(bytes: Uint8Array): GeoIpOpen {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const markerAt = lastMarker(bytes);
    if (markerAt < 0) return { ok: false, error: "no metadata marker (\\xAB\\xCD\\xEFMaxMind.com) in the last 128 KiB: not a MaxMind DB file" };
    const metaStart = markerAt + METADATA_MARKER.length;
    const meta = new SectionDecoder(bytes, view, metaStart, bytes.length).decode(0);
    if (meta instanceof DecodeError) return { ok: false, error: `metadata does not decode: ${meta.message}` };
    const checked = checkMetadata(meta);
    if (typeof checked === "string") return { ok: false, error: checked };

    const recordBytes = checked.recordSize / 4; // two records per node
    const treeSize = checked.nodeCount * recordBytes;
    const dataStart = treeSize + DATA_SECTION_SEPARATOR_SIZE;
    if (dataStart > markerAt) {
      return { ok: false, error: `search tree of ${checked.nodeCount} nodes (${treeSize} bytes) and its separator do not fit before the metadata at ${markerAt}` };
    }
    for (let i = treeSize; i < dataStart; i++) {
      if (bytes[i] !== 0) return { ok: false, error: `data section separator at ${treeSize} is not 16 zero bytes: the tree size from the metadata is wrong` };
    }
    const dataSize = markerAt - dataStart;
    const records = new TreeRecords(bytes, view, checked.recordSize);
    const badRecord = records.validate(checked.nodeCount, dataSize);
    if (badRecord !== undefined) return { ok: false, error: badRecord };

    let ipv4Start = 0;
    let depth = 0;
    if (checked.ipVersion === 6) {
      for (; depth < 96 && ipv4Start < checked.nodeCount; depth++) ipv4Start = records.read(ipv4Start, 0);
    }
    const data = new SectionDecoder(bytes, view, dataStart, markerAt);
    return { ok: true, reader: new GeoIpReader(checked, records, data, dataSize, ipv4Start, depth) };
  }

  /** Reads and opens a database file. */
  static async openFile(path: string): Promise<GeoIpOpen> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      return { ok: false, error: `cannot read ${path}: ${(error as Error).message}` };
    }
    const opened = GeoIpReader.open(bytes);
    return opened.ok ? opened : { ok: false, error: `${path}: ${opened.error}` };
  }

  /** The data offset (section-relative) of the record for `ip`, null for none, or an error. */
  private find(ip: string): { offset: number; prefixLength: number } | null | DecodeError {
    const parsed = parseIp(ip.trim());
    if (parsed === undefined) return new DecodeError(`${JSON.stringify(ip)} is not an IP address`);
    const address = unmapIpv4(parsed);
    const nodeCount = this.metadata.nodeCount;
    let node: number;
    let bits: number;
    let depth: number;
    if (address.family === 4) {
      node = this.ipv4Start;
      depth = this.ipv4StartDepth;
      bits = 32;
    } else {
      if (this.metadata.ipVersion === 4) return null;
      node = 0;
      depth = 0;
      bits = 128;
    }
    const records = this.records;
    let i = 0;
    if (bits === 32) {
      const value = Number(address.value);
      for (; i < 32 && node < nodeCount; i++) node = records.read(node, (value >>> (31 - i)) & 1);
    } else {
      for (; i < bits && node < nodeCount; i++) node = records.read(node, Number((address.value >> BigInt(bits - 1 - i)) & 1n));
    }
    if (node === nodeCount) return null;
    if (node < nodeCount) return new DecodeError("the tree is deeper than an address");
    const offset = node - nodeCount - DATA_SECTION_SEPARATOR_SIZE;
    if (offset < 0 || offset >= this.dataSize) return new DecodeError(`record points outside the data section`);
    return { offset, prefixLength: Math.max(0, (address.family === 4 && this.metadata.ipVersion === 6 ? depth - 96 : depth) + i) };
  }

  /** The record of the network holding `ip`; never throws. */
  lookup(ip: string): MmdbLookup {
    const at = this.find(ip);
    if (at instanceof DecodeError) return { found: false, error: at.message };
    if (at === null) return { found: false };
    const value = this.data.decode(at.offset);
    if (value instanceof DecodeError) return { found: false, error: value.message };
    return { found: true, value, prefixLength: at.prefixLength };
  }

  /**
   * Where `ip` is, from a City database's location.latitude and .longitude (degrees), or null when the
   * database has no location for it (a Country database has none), or it is damaged.
   */
  lookupLocation(ip: string): { latitude: number; longitude: number } | null {
    const found = this.lookup(ip);
    if (!found.found) return null;
    const value = found.value;
    if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) return null;
    const location = value.location;
    if (typeof location !== "object" || location === null || Array.isArray(location) || location instanceof Uint8Array) return null;
    const { latitude, longitude } = location;
    if (typeof latitude !== "number" || typeof longitude !== "number") return null;
    if (!(Math.abs(latitude) <= 90 && Math.abs(longitude) <= 180)) return null;
    return { latitude, longitude };
  }

  /** The ISO 3166-1 code of `ip`'s country (else its registered country), or null when unknown or damaged. */
  lookupCountry(ip: string): string | null {
    const at = this.find(ip);
    if (at === null || at instanceof DecodeError) return null;
    const cached = this.countries.get(at.offset);
    if (cached !== undefined) return cached;
    let code = this.data.stringAt(at.offset, COUNTRY_PATH);
    if (code === null) code = this.data.stringAt(at.offset, REGISTERED_COUNTRY_PATH);
    const result = typeof code === "string" && /^[A-Za-z]{2}$/.test(code) ? code.toUpperCase() : null;
    if (this.countries.size >= COUNTRY_CACHE_MAX) this.countries.clear();
    this.countries.set(at.offset, result);
    return result;
  }
}

/** Reads the records of the search tree. */
class TreeRecords {
  constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    private readonly recordSize: 24 | 28 | 32,
  ) {}

  /** Record `side` (0 left, 1 right) of `node`; the caller keeps node below node_count, which open() checked fits. */
  read(node: number, side: number): number {
    const b = this.bytes;
    switch (this.recordSize) {
      case 24: {
        const o = node * 6 + side * 3;
        return b[o]! * 65_536 + b[o + 1]! * 256 + b[o + 2]!;
      }
      case 28: {
        const o = node * 7;
        if (side === 0) return (b[o + 3]! >> 4) * 16_777_216 + b[o]! * 65_536 + b[o + 1]! * 256 + b[o + 2]!;
        return (b[o + 3]! & 0x0f) * 16_777_216 + b[o + 4]! * 65_536 + b[o + 5]! * 256 + b[o + 6]!;
      }
      case 32:
        return this.view.getUint32(node * 8 + side * 4);
    }
  }

  /** The first record that is neither a node, "no data", nor inside the data section, described; undefined when all are. */
  validate(nodeCount: number, dataSize: number): string | undefined {
    for (let node = 0; node < nodeCount; node++) {
      for (let side = 0; side < 2; side++) {
        const record = this.read(node, side);
        if (record <= nodeCount) continue;
        const offset = record - nodeCount - DATA_SECTION_SEPARATOR_SIZE;
        if (offset < 0 || offset >= dataSize) {
          return `search tree node ${node} ${side === 0 ? "left" : "right"} record ${record} is neither a node (< ${nodeCount}) nor inside the data section of ${dataSize} bytes`;
        }
      }
    }
    return undefined;
  }
}

function lastMarker(bytes: Uint8Array): number {
  const stop = Math.max(0, bytes.length - METADATA_MAX_SIZE);
  outer: for (let at = bytes.length - METADATA_MARKER.length; at >= stop; at--) {
    for (let i = 0; i < METADATA_MARKER.length; i++) if (bytes[at + i] !== METADATA_MARKER[i]) continue outer;
    return at;
  }
  return -1;
}

function checkMetadata(meta: MmdbValue): MmdbMetadata | string {
  if (typeof meta !== "object" || meta === null || Array.isArray(meta) || meta instanceof Uint8Array) return "metadata is not a map";
  const uint = (key: string, max: number): number | string => {
    const value = meta[key];
    if (value === undefined) return `metadata lacks ${key}`;
    const n = typeof value === "bigint" && value <= BigInt(max) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > max) return `metadata ${key} is not an unsigned integer up to ${max}`;
    return n;
  };
  const nodeCount = uint("node_count", 0xffffffff);
  if (typeof nodeCount === "string") return nodeCount;
  const recordSize = uint("record_size", 0xffff);
  if (typeof recordSize === "string") return recordSize;
  if (recordSize !== 24 && recordSize !== 28 && recordSize !== 32) return `metadata record_size is ${recordSize}; this reader reads 24, 28 and 32`;
  if (nodeCount >= 2 ** recordSize) return `metadata node_count ${nodeCount} does not fit records of ${recordSize} bits`;
  const ipVersion = uint("ip_version", 0xffff);
  if (typeof ipVersion === "string") return ipVersion;
  if (ipVersion !== 4 && ipVersion !== 6) return `metadata ip_version is ${ipVersion}, not 4 or 6`;
  const major = uint("binary_format_major_version", 0xffff);
  if (typeof major === "string") return major;
  if (major !== 2) return `binary format ${major}.x is not 2.x, the version this reader reads`;
  const minor = uint("binary_format_minor_version", 0xffff);
  if (typeof minor === "string") return minor;
  const databaseType = meta.database_type;
  if (typeof databaseType !== "string") return "metadata database_type is missing or not a string";
  const epoch = meta.build_epoch;
  if (epoch !== undefined && typeof epoch !== "bigint" && !(typeof epoch === "number" && Number.isSafeInteger(epoch))) return "metadata build_epoch is not an integer";
  const languages = meta.languages ?? [];
  if (!Array.isArray(languages) || !languages.every((l) => typeof l === "string")) return "metadata languages is not a list of strings";
  const description = meta.description ?? {};
  if (typeof description !== "object" || Array.isArray(description) || description instanceof Uint8Array || !Object.values(description).every((d) => typeof d === "string")) {
    return "metadata description is not a map of strings";
  }
  return {
    nodeCount,
    recordSize,
    ipVersion,
    databaseType,
    languages: languages as string[],
    binaryFormatMajorVersion: major,
    binaryFormatMinorVersion: minor,
    buildEpoch: epoch === undefined ? 0n : BigInt(epoch as bigint | number),
    description: description as Record<string, string>,
  };
}
