// The MaxMind DB reader against fixture databases our test writer builds: lookups match the writer's
// input (longest prefix wins) for IPv4 and IPv6 trees with 24/28/32-bit records; every data type and
// pointer size decodes as written and as mmdb-lib (an independent reader) decodes it; damaged files
// are refused at open with an error naming what is wrong; and seeded corrupted files never make a
// lookup throw or hang.

import { Reader } from "mmdb-lib";
import { beforeEach, describe, expect, it } from "vitest";
import { rng, reportSeedOnFailure, type Rng } from "../../../test/support/prng.js";
import { formatIp, parseCidr, prefixContains, unmapIpv4, parseIp } from "../domain/resource-rules.js";
import { GeoIpReader, type MmdbValue } from "./geoip.js";
import { plain, typed, writeMmdb, type Typed, type WriterOptions } from "./mmdb-writer.js";

beforeEach(reportSeedOnFailure);

function open(bytes: Uint8Array): GeoIpReader {
  const opened = GeoIpReader.open(bytes);
  if (!opened.ok) throw new Error(opened.error);
  return opened.reader;
}

/** mmdb-lib's answer, with its Buffers as plain Uint8Arrays for comparison. */
function oracleGet(bytes: Uint8Array, ip: string): unknown {
  const reader = new Reader(Buffer.from(bytes));
  return normalize(reader.get(ip));
}
function normalize(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  return value;
}

const COUNTRIES = ["DE", "US", "FR", "JP", "BR", "NZ", "KE"];

function randomRecord(r: Rng): Typed {
  const kind = r.int(0, 3);
  const names = { en: `Name ${r.int(0, 5)}`, de: "Name" };
  if (kind === 0) return typed({ country: { iso_code: r.pick(COUNTRIES), geoname_id: r.int(0, 2 ** 31), names }, registered_country: { iso_code: r.pick(COUNTRIES) } });
  if (kind === 1) return typed({ continent: { code: "EU" }, registered_country: { iso_code: r.pick(COUNTRIES), names } });
  if (kind === 2) return typed({ location: { latitude: r.int(-90, 90) + 0.5, longitude: 13.25 }, traits: { is_anycast: r.bool() } });
  return typed({ country: { iso_code: r.pick(COUNTRIES).toLowerCase() } });
}

function expectedCountry(value: Typed): string | null {
  const v = plain(value) as { country?: { iso_code?: string }; registered_country?: { iso_code?: string } };
  const code = v.country?.iso_code ?? v.registered_country?.iso_code;
  return code === undefined ? null : code.toUpperCase();
}

function randomNetworks(r: Rng, ipVersion: 4 | 6, count: number): { network: string; value: Typed }[] {
  const out: { network: string; value: Typed }[] = [];
  const seen = new Set<string>();
  while (out.length < count) {
    const v6 = ipVersion === 6 && r.bool(0.6);
    const length = v6 ? r.int(8, 64) : r.int(4, 32);
    const value = v6 ? (0x2001n << 112n) | (r.bigint(0n, (1n << 112n) - 1n) >> 0n) : r.bigint(1n << 24n, 0xdfffffffn);
    const prefix = parseCidr(`${formatIp({ family: v6 ? 6 : 4, value })}/${length}`);
    if (!prefix.ok) continue;
    const network = `${formatIp(prefix.prefix)}/${length}`;
    if (seen.has(network)) continue;
    seen.add(network);
    out.push({ network, value: randomRecord(r) });
  }
  return out;
}

/** Longest prefix match over the writer's input (later wins among equals). */
function expectedRecord(networks: { network: string; value: Typed }[], ip: string): Typed | undefined {
  const address = unmapIpv4(parseIp(ip)!);
  let best: { length: number; value: Typed } | undefined;
  for (const { network, value } of networks) {
    const p = parseCidr(network);
    if (!p.ok || !prefixContains(p.prefix, address)) continue;
    if (best === undefined || p.prefix.length >= best.length) best = { length: p.prefix.length, value };
  }
  return best?.value;
}

function probeAddresses(r: Rng, networks: { network: string }[], count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const pick = r.int(0, 3);
    if (pick === 3 || networks.length === 0) {
      out.push(r.bool() ? formatIp({ family: 4, value: r.bigint(0n, 0xffffffffn) }) : formatIp({ family: 6, value: r.bigint(0n, (1n << 128n) - 1n) }));
      continue;
    }
    const p = parseCidr(r.pick(networks).network);
    if (!p.ok) continue;
    const host = p.prefix.family === 4 ? 32 : 128;
    const offset = r.bigint(0n, (1n << BigInt(host - p.prefix.length)) - 1n);
    const edge = r.int(0, 2);
    const inside = edge === 0 ? 0n : edge === 1 ? (1n << BigInt(host - p.prefix.length)) - 1n : offset;
    const address = formatIp({ family: p.prefix.family, value: p.prefix.value + inside });
    out.push(address);
    if (p.prefix.family === 4 && r.bool(0.2)) out.push(`::ffff:${address}`);
  }
  return out;
}

describe.each([
  [4, 24],
  [4, 28],
  [4, 32],
  [6, 24],
  [6, 28],
  [6, 32],
] as const)("lookups, IPv%i tree, %i-bit records", (ipVersion, recordSize) => {
  it.each([false, true])("match the writer's input and mmdb-lib (pointers: %s)", (dedupe) => {
    const r = rng(`lookups ${ipVersion} ${recordSize} ${dedupe}`);
    const networks = randomNetworks(r, ipVersion, 300);
    const options: WriterOptions = { ipVersion, recordSize, networks, dedupe, aliasIpv4Mapped: ipVersion === 6 };
    const bytes = writeMmdb(options);
    const reader = open(bytes);
    expect(reader.metadata).toMatchObject({ ipVersion, recordSize, binaryFormatMajorVersion: 2, databaseType: "Wardline-Test-Country", languages: ["en"] });
    const oracle = new Reader(Buffer.from(bytes));
    let found = 0;
    for (const ip of probeAddresses(r, networks, 800)) {
      const where = r.where(ip);
      const family = parseIp(ip)!.family;
      const expected = ipVersion === 4 && family === 6 && !ip.startsWith("::ffff:") ? undefined : expectedRecord(networks, ip);
      const result = reader.lookup(ip);
      expect("error" in result, where).toBe(false);
      if (expected === undefined) {
        expect(result.found, where).toBe(false);
        expect(reader.lookupCountry(ip), where).toBeNull();
      } else {
        found++;
        expect(result, where).toMatchObject({ found: true, value: plain(expected) });
        expect(reader.lookupCountry(ip), where).toBe(expectedCountry(expected));
      }
      if (!(ipVersion === 4 && family === 6)) {
        const [theirs, prefix] = oracle.getWithPrefixLength(ip);
        expect(result.found ? result.value : null, `${where} vs mmdb-lib`).toEqual(normalize(theirs));
        if (result.found) expect(result.prefixLength, `${where} prefix vs mmdb-lib`).toBe(ip.startsWith("::ffff:") ? prefix - 96 : prefix);
      }
    }
    expect(found).toBeGreaterThan(250);
  });
});

describe("data types", () => {
  const long = (n: number): string => "x".repeat(n);
  const everything: Typed = {
    t: "map",
    v: [
      ["utf8", { t: "string", v: "Zürich ✓ 東京" }],
      ["empty", { t: "string", v: "" }],
      ...[28, 29, 284, 285, 65_820, 65_821, 70_000].map((n): [string, Typed] => [`s${n}`, { t: "string", v: long(n) }]),
      ["double", { t: "double", v: -1234.5678e100 }],
      ["float", { t: "float", v: 1.1 }],
      ["bytes", { t: "bytes", v: Uint8Array.from([0, 1, 254, 255]) }],
      ["u16", { t: "uint16", v: 65_535 }],
      ["u16zero", { t: "uint16", v: 0 }],
      ["u32", { t: "uint32", v: 4_294_967_295 }],
      ["i32neg", { t: "int32", v: -2 }],
      ["i32min", { t: "int32", v: -2_147_483_648 }],
      ["i32pos", { t: "int32", v: 70_000 }],
      ["u64", { t: "uint64", v: 18_446_744_073_709_551_615n }],
      ["u128", { t: "uint128", v: (1n << 128n) - 1n }],
      ["u128small", { t: "uint128", v: 300n }],
      ["yes", { t: "boolean", v: true }],
      ["no", { t: "boolean", v: false }],
      ["list", { t: "array", v: [{ t: "uint32", v: 1 }, { t: "array", v: [] }, { t: "map", v: [] }, { t: "boolean", v: true }] }],
      ["country", { t: "map", v: [["iso_code", { t: "string", v: "CH" }]] }],
    ],
  };

  it.each([
    ["small pointers", { padding: 0 }],
    ["19-bit pointers", { padding: 3000 }],
    ["27-bit pointers", { padding: 600_000 }],
    ["32-bit pointers", { widePointers: true }],
  ])("every type decodes as written and as mmdb-lib reads it (%s)", (_name, extra) => {
    // The same record under two networks, with dedupe: the second copy is made of pointers.
    const twin: Typed = { t: "map", v: [["same", everything], ["again", everything]] };
    const bytes = writeMmdb({ ipVersion: 6, recordSize: 28, dedupe: true, networks: [{ network: "2001:db8::/32", value: twin }, { network: "10.0.0.0/8", value: everything }], ...extra });
    const reader = open(bytes);
    const result = reader.lookup("2001:db8::1");
    expect(result).toMatchObject({ found: true, prefixLength: 32 });
    expect((result as { value: MmdbValue }).value).toEqual(plain(twin));
    expect(oracleGet(bytes, "2001:db8::1")).toEqual(plain(twin));
    expect(reader.lookup("10.1.2.3")).toEqual({ found: true, value: plain(everything), prefixLength: 8 });
    expect(reader.lookupCountry("10.1.2.3")).toBe("CH");
    expect(reader.lookupCountry("2001:db8::1")).toBeNull(); // no country at the top of that record
  });

  it("reads a City database's location, and none from a record without one or with nonsense", () => {
    const at = (latitude: Typed, longitude: Typed): Typed => ({ t: "map", v: [["location", { t: "map", v: [["latitude", latitude], ["longitude", longitude]] }]] });
    const bytes = writeMmdb({
      ipVersion: 6,
      recordSize: 28,
      networks: [
        { network: "192.0.2.0/24", value: at({ t: "double", v: 47.3769 }, { t: "double", v: 8.5417 }) },
        { network: "198.51.100.0/24", value: at({ t: "double", v: -33.8688 }, { t: "double", v: 151.2093 }) },
        { network: "203.0.113.0/24", value: { t: "map", v: [["country", { t: "map", v: [["iso_code", { t: "string", v: "FR" }]] }]] } },
        { network: "2001:db8::/32", value: at({ t: "double", v: 123 }, { t: "double", v: 0 }) },
        { network: "10.0.0.0/8", value: at({ t: "string", v: "47" }, { t: "double", v: 8 }) },
      ],
    });
    const reader = open(bytes);
    expect(reader.lookupLocation("192.0.2.7")).toEqual({ latitude: 47.3769, longitude: 8.5417 });
    expect(reader.lookupLocation("198.51.100.1")).toEqual({ latitude: -33.8688, longitude: 151.2093 });
    expect(reader.lookupLocation("203.0.113.9"), "a country but no location").toBeNull();
    expect(reader.lookupLocation("2001:db8::1"), "latitude out of range").toBeNull();
    expect(reader.lookupLocation("10.1.1.1"), "not a number").toBeNull();
    expect(reader.lookupLocation("172.16.0.1"), "not in the database").toBeNull();
  });

  it("a map key named __proto__ is data, not a prototype", () => {
    const bytes = writeMmdb({ ipVersion: 4, recordSize: 24, networks: [{ network: "1.0.0.0/8", value: { t: "map", v: [["__proto__", { t: "map", v: [["polluted", { t: "boolean", v: true }]] }]] } }] });
    const result = open(bytes).lookup("1.2.3.4") as { value: Record<string, unknown> };
    expect(Object.keys(result.value)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("IPv6 addresses in an IPv4 database and unparsable input are no answer, not an error thrown", () => {
    const reader = open(writeMmdb({ ipVersion: 4, recordSize: 24, networks: [{ network: "1.0.0.0/8", value: typed({ country: { iso_code: "AU" } }) }] }));
    expect(reader.lookupCountry("1.1.1.1")).toBe("AU");
    expect(reader.lookupCountry("::ffff:1.1.1.1")).toBe("AU");
    expect(reader.lookup("2001:db8::1")).toEqual({ found: false });
    expect(reader.lookupCountry("2001:db8::1")).toBeNull();
    expect(reader.lookup("not an address")).toMatchObject({ found: false, error: expect.stringContaining("not an IP address") });
  });
});

describe("open-time validation", () => {
  const base = (): WriterOptions => ({ ipVersion: 6, recordSize: 24, networks: [{ network: "1.0.0.0/8", value: typed({ country: { iso_code: "AU" } }) }] });
  const error = (bytes: Uint8Array): string => {
    const opened = GeoIpReader.open(bytes);
    expect(opened.ok).toBe(false);
    return (opened as { error: string }).error;
  };

  it.each([
    ["record_size", { record_size: { t: "uint16", v: 20 } }, /record_size is 20/],
    ["ip_version", { ip_version: { t: "uint16", v: 5 } }, /ip_version is 5/],
    ["major version", { binary_format_major_version: { t: "uint16", v: 3 } }, /binary format 3\.x/],
    ["node_count missing", { node_count: null }, /lacks node_count/],
    ["node_count as a string", { node_count: { t: "string", v: "12" } }, /node_count is not an unsigned integer/],
    ["node_count too large for the file", { node_count: { t: "uint32", v: 100_000 } }, /do not fit before the metadata/],
    ["node_count too small: separator is not zero", { node_count: { t: "uint32", v: 2 } }, /separator .* not 16 zero bytes/],
    ["database_type", { database_type: null }, /database_type/],
    ["languages", { languages: { t: "array", v: [{ t: "uint32", v: 1 }] } }, /languages/],
    ["description", { description: { t: "string", v: "x" } }, /description/],
  ] as [string, Record<string, Typed | null>, RegExp][])("refuses a bad %s", (_name, metadata, message) => {
    expect(error(writeMmdb({ ...base(), metadata }))).toMatch(message);
  });

  it("refuses a file without the marker, an empty file, and metadata that is not a map", () => {
    expect(error(new Uint8Array(0))).toMatch(/no metadata marker/);
    expect(error(new TextEncoder().encode("hello"))).toMatch(/no metadata marker/);
    const good = writeMmdb(base());
    const marker = [0xab, 0xcd, 0xef, ...new TextEncoder().encode("MaxMind.com")];
    expect(error(Uint8Array.from([...good, ...marker, 0x42, 0x41, 0x42]))).toMatch(/metadata is not a map/);
    expect(error(Uint8Array.from([...good, ...marker]))).toMatch(/metadata does not decode/);
  });

  it("refuses a tree record pointing past the data section", () => {
    const bytes = writeMmdb(base());
    bytes[0] = 0xff; // node 0's left record becomes 0xffxxxx
    expect(error(bytes)).toMatch(/node 0 left record \d+ is neither a node/);
  });

  it("reads a file from disk, and says which file it could not read", async () => {
    const missing = await GeoIpReader.openFile("/nonexistent/GeoLite2-Country.mmdb");
    expect(missing).toMatchObject({ ok: false, error: expect.stringContaining("/nonexistent/GeoLite2-Country.mmdb") });
  });
});

describe("damaged data at lookup time", () => {
  /** A database whose one record (at data offset 0) is replaced by `data`. */
  const withData = (data: number[]): GeoIpReader => {
    const bytes = writeMmdb({ ipVersion: 4, recordSize: 24, networks: [{ network: "1.0.0.0/8", value: { t: "bytes", v: new Uint8Array(200) } }] });
    const nodeCount = open(bytes).metadata.nodeCount;
    bytes.set(data, nodeCount * 6 + 16);
    return open(bytes);
  };
  const map1 = 0xe1; // map, one pair
  const map2 = 0xe2;
  const keyA = [0x41, 0x61]; // "a"
  const keyCountry = [0x47, ...new TextEncoder().encode("country")];

  it.each([
    ["a map whose value points back to the map", [map1, ...keyA, 0x20, 0x00]],
    ["two values pointing back (exponential without a budget)", [map2, ...keyA, 0x20, 0x00, ...keyA, 0x20, 0x00]],
    ["a pointer to a pointer", [map1, ...keyA, 0x20, 0x05, 0, 0x20, 0x00]],
    ["a pointer past the data section", [map1, ...keyA, 0x3f, 0xff, 0xff, 0xff, 0xff]],
    ["a map claiming millions of pairs", [0xff, 0xff, 0xff, 0xff]],
    ["an array claiming millions of items", [0x1f, 0x04, 0xff, 0xff, 0xff]],
    ["a string running past the end", [0x5f, 0xff, 0xff, 0xff]],
    ["an unknown extended type", [0x01, 0x20]],
    ["an end marker as a value", [0x00, 0x06]],
    ["a data cache container as a value", [0x00, 0x05]],
    ["a non-string map key", [map1, 0xc1, 0x01, 0xc1, 0x01]],
    ["a uint16 of 3 bytes", [map1, ...keyA, 0xa3, 1, 2, 3]],
    ["a double of 4 bytes", [map1, ...keyA, 0x64, 1, 2, 3, 4]],
    ["a boolean of size 2", [map1, ...keyA, 0x02, 0x07]],
    ["country pointing to itself", [map1, ...keyCountry, 0x20, 0x00]],
    ["country value cut off", [map1, ...keyCountry, 0x5f]],
  ])("%s: an error value, no throw", (_name, data) => {
    const reader = withData(data);
    const result = reader.lookup("1.2.3.4");
    expect(result.found).toBe(false);
    expect(result).toHaveProperty("error");
    expect(reader.lookupCountry("1.2.3.4")).toBeNull();
  });

  it("seeded corrupted files never throw nor hang", () => {
    const r = rng("mmdb fuzz");
    const started = Date.now();
    let opened = 0;
    let lookups = 0;
    for (let i = 0; i < 400; i++) {
      const ipVersion = r.pick([4, 6] as const);
      const recordSize = r.pick([24, 28, 32] as const);
      const networks = randomNetworks(r, ipVersion, r.int(1, 30));
      const bytes = writeMmdb({ ipVersion, recordSize, networks, dedupe: r.bool() });
      const meta = open(bytes).metadata;
      const dataStart = meta.nodeCount * (meta.recordSize / 4) + 16;
      const damaged = r.bool(0.6) ? corruptData(r, bytes, dataStart) : corrupt(r, bytes);
      let result: ReturnType<typeof GeoIpReader.open> | undefined;
      expect(() => (result = GeoIpReader.open(damaged)), r.where(`open #${i}`)).not.toThrow();
      if (!result!.ok) {
        expect(result!.error.length, r.where(`#${i}`)).toBeGreaterThan(10);
        continue;
      }
      opened++;
      const reader = result!.reader;
      for (const ip of probeAddresses(r, networks, 40)) {
        lookups++;
        expect(() => reader.lookup(ip), r.where(`lookup ${ip} #${i}`)).not.toThrow();
        expect(() => reader.lookupCountry(ip), r.where(`country ${ip} #${i}`)).not.toThrow();
      }
    }
    expect(opened).toBeGreaterThan(50);
    expect(lookups).toBeGreaterThan(2000);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

/** Damage the data section only (what open() cannot check fully), leaving tree and metadata valid. */
function corruptData(r: Rng, original: Uint8Array, dataStart: number): Uint8Array {
  const bytes = original.slice();
  const markerAt = bytes.length - 1 - [...bytes].reverse().findIndex((b, i, all) => b === 0xab && all[i - 1] === 0xcd);
  const end = Math.max(dataStart + 1, markerAt);
  for (let n = r.int(1, 6); n > 0; n--) bytes[r.int(dataStart, end - 1)] = r.bool(0.5) ? r.int(0, 255) : r.pick([0x00, 0x1f, 0x20, 0x3f, 0xe0, 0xff, 0x5d, 0x5e, 0x5f, 0x38]);
  return bytes;
}

function corrupt(r: Rng, original: Uint8Array): Uint8Array {
  let bytes = original.slice();
  const rounds = r.int(1, 6);
  for (let k = 0; k < rounds; k++) {
    const what = r.int(0, 4);
    if (what === 0) {
      for (let n = r.int(1, 8); n > 0; n--) bytes[r.int(0, bytes.length - 1)] = r.int(0, 255);
    } else if (what === 1) {
      bytes = bytes.slice(0, r.int(0, bytes.length));
    } else if (what === 2 && bytes.length > 0) {
      const at = r.int(0, bytes.length - 1);
      bytes.set(r.bytes(Math.min(16, bytes.length - at)), at);
    } else if (what === 3 && bytes.length > 20) {
      // Damage only the data section's neighbourhood: most lookups still reach it.
      const at = r.int(Math.floor(bytes.length / 3), bytes.length - 1);
      bytes[at] = r.pick([0x00, 0x1f, 0x20, 0x3f, 0xe0, 0xff, 0x5d, 0x5e, 0x5f]);
    } else {
      const at = r.int(0, bytes.length);
      bytes = Uint8Array.from([...bytes.slice(0, at), ...r.bytes(r.int(1, 8)), ...bytes.slice(at)]);
    }
    if (bytes.length === 0) break;
  }
  return bytes;
}
