// Resource validation: accepted and refused examples for every rule (each refusal by code and field),
// the wildcard matcher against a regex oracle written here, port-range sets against a bitmap, IPv6
// text against node's URL parser, and a fuzz pass, since every field is user input.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import {
  dnsPatternMatches,
  formatIp,
  formatPortRange,
  parseIp,
  validateResource,
  type FieldError,
  type NormalizedResource,
  type PortRange,
  type ResourceValidation,
} from "./resource-rules.js";

beforeEach(reportSeedOnFailure);

function accepted(input: unknown): NormalizedResource {
  const result = validateResource(input);
  if (!result.ok) throw new Error(`refused ${JSON.stringify(input)}: ${JSON.stringify(result.errors)}`);
  return result.value;
}

function refusals(input: unknown, context = {}): Pick<FieldError, "field" | "code">[] {
  const result = validateResource(input, context);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(input)}: ${JSON.stringify(result.value)}`);
  for (const error of result.errors) expect(error.message.length, JSON.stringify(error)).toBeGreaterThan(0);
  return result.errors.map(({ field, code }) => ({ field, code }));
}

const resource = (type: string, address: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type,
  name: "A resource",
  ...(address === undefined ? {} : { address }),
  ...extra,
});

describe("resource addresses", () => {
  it("accepts DNS names and patterns, lowercased, without the trailing dot, IDN as A-labels", () => {
    const cases: [given: string, stored: string][] = [
      ["app.example.com", "app.example.com"],
      ["App.Example.COM.", "app.example.com"],
      ["  gitlab.corp.example.com  ", "gitlab.corp.example.com"],
      ["*.example.com", "*.example.com"],
      ["**.example.com", "**.example.com"],
      ["?.example.com", "?.example.com"],
      ["us-east?.example.com", "us-east?.example.com"],
      ["app-*.example.com", "app-*.example.com"],
      ["foo.*.example.com", "foo.*.example.com"],
      ["foo.**.example.com", "foo.**.example.com"],
      ["*.*.internal.example", "*.*.internal.example"],
      ["*.corp", "*.corp"], // a private TLD may take a wildcard right above it
      ["**.home.arpa.internal", "**.home.arpa.internal"],
      ["intranet", "intranet"], // a single label, reached through search domains
      ["*.example.co.uk", "*.example.co.uk"],
      ["Bücher.example", "xn--bcher-kva.example"],
      ["*.münchen.example", "*.xn--mnchen-3ya.example"],
      ["xn--bcher-kva.example", "xn--bcher-kva.example"],
      ["1password.example.com", "1password.example.com"],
      [`${"a".repeat(63)}.example.com`, `${"a".repeat(63)}.example.com`],
      [`${"a.".repeat(125)}com`, `${"a.".repeat(125)}com`], // 253 characters
    ];
    for (const [given, stored] of cases) {
      expect(accepted(resource("dns", given)), given).toStrictEqual({ type: "dns", address: stored, name: "A resource", filters: [] });
    }
  });

  it("refuses DNS names that are wrong, each with its code", () => {
    const cases: [address: string, code: string][] = [
      ["   ", "address.required"],
      [".", "dns.required"],
      ["foo.*", "dns.wildcard_tld"],
      ["foo.c?m", "dns.wildcard_tld"],
      ["example.**", "dns.wildcard_tld"],
      ["*", "dns.wildcard_tld"],
      ["**", "dns.wildcard_tld"],
      ["*.com", "dns.wildcard_public_suffix"],
      ["**.com", "dns.wildcard_public_suffix"],
      ["?.io", "dns.wildcard_public_suffix"],
      ["*.*.de", "dns.wildcard_public_suffix"],
      ["??.org", "dns.wildcard_public_suffix"],
      ["localhost", "dns.localhost"],
      ["app.localhost", "dns.localhost"],
      ["10.0.0.1", "dns.ip_literal"],
      ["10.0.0.0/8", "dns.ip_literal"],
      ["2001:db8::1", "dns.ip_literal"],
      ["[2001:db8::1]", "dns.ip_literal"],
      ["::1", "dns.ip_literal"],
      ["10.0.0.999", "dns.numeric_tld"],
      ["example.com:443", "dns.port"],
      ["example.com:", "dns.port"],
      ["[2001:db8::1]:443", "dns.ip_literal"],
      ["https://example.com", "dns.url"],
      ["example.com/path", "dns.url"],
      ["a..example.com", "dns.empty_label"],
      [".example.com", "dns.empty_label"],
      ["example.com..", "dns.empty_label"],
      ["ex ample.com", "dns.invalid_character"],
      ["ex_ample.com", "dns.invalid_character"],
      ["a:b.example.com", "dns.invalid_character"],
      ["-app.example.com", "dns.label_hyphen"],
      ["app-.example.com", "dns.label_hyphen"],
      ["a**.example.com", "dns.double_wildcard_in_label"],
      ["***.example.com", "dns.double_wildcard_in_label"],
      ["bü*.example.com", "dns.wildcard_idn"],
      [`${"a".repeat(64)}.example.com`, "dns.label_too_long"],
      [`${"a.".repeat(126)}com`, "dns.too_long"], // 255 characters
    ];
    for (const [address, code] of cases) {
      expect(refusals(resource("dns", address)), address).toStrictEqual([{ field: "address", code }]);
    }
  });

  it("accepts IP addresses, IPv6 in canonical text", () => {
    const cases: [given: string, stored: string, family: 4 | 6][] = [
      ["10.1.2.3", "10.1.2.3", 4],
      [" 192.168.0.1 ", "192.168.0.1", 4],
      ["100.63.255.255", "100.63.255.255", 4], // just below the device range
      ["100.128.0.0", "100.128.0.0", 4], // just above the proxy range
      ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6], // the first of two equal runs
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 6], // one zero group stays
      ["[fd00::1]", "fd00::1", 6],
      ["64:ff9b::192.0.2.33", "64:ff9b::c000:221", 6],
      ["fd00:2021:1111:0:0:0:20:0", "fd00:2021:1111::20:0", 6], // just above the device range
    ];
    for (const [given, stored, family] of cases) {
      expect(accepted(resource("ip", given)), given).toStrictEqual({ type: "ip", address: stored, family, name: "A resource", filters: [] });
    }
  });

  it("refuses IP addresses that are wrong or reserved, each with its code", () => {
    const cases: [address: string, code: string][] = [
      ["", "address.required"],
      ["10.0.0", "ip.invalid"],
      ["10.0.0.256", "ip.invalid"],
      ["010.0.0.1", "ip.invalid"],
      ["2001:db8:::1", "ip.invalid"],
      ["2001:db8::1::2", "ip.invalid"],
      ["1:2:3:4:5:6:7:8:9", "ip.invalid"],
      ["example.com", "ip.invalid"],
      ["fe80::1%eth0", "ip.zone"],
      ["10.0.0.1/32", "ip.prefix_length"],
      ["10.0.0.1:80", "ip.port"],
      ["[2001:db8::1]:443", "ip.port"],
      ["0.0.0.0", "ip.unspecified"],
      ["::", "ip.unspecified"],
      ["127.0.0.1", "ip.loopback"],
      ["127.255.255.254", "ip.loopback"],
      ["::1", "ip.loopback"],
      ["::ffff:10.0.0.1", "ip.ipv4_mapped"],
      ["100.64.0.1", "ip.reserved"],
      ["100.95.255.255", "ip.reserved"],
      ["100.96.0.7", "ip.reserved"],
      ["100.100.111.1", "ip.reserved"],
      ["fd00:2021:1111::1", "ip.reserved"],
      ["fd00:2021:1111:8000::1", "ip.reserved"],
      ["fd00:2021:1111:8000::100:100:111:0", "ip.invalid"], // "::" with eight groups beside it
    ];
    for (const [address, code] of cases) {
      expect(refusals(resource("ip", address)), address).toStrictEqual([{ field: "address", code }]);
    }
  });

  it("accepts CIDR ranges, masks host bits and says so", () => {
    const cases: [given: string, stored: string, family: 4 | 6, masked: boolean][] = [
      ["10.0.0.0/8", "10.0.0.0/8", 4, false],
      ["10.1.2.3/32", "10.1.2.3/32", 4, false],
      ["192.168.1.77/24", "192.168.1.0/24", 4, true],
      ["128.0.0.0/1", "128.0.0.0/1", 4, false],
      ["100.128.0.0/9", "100.128.0.0/9", 4, false],
      ["2001:DB8::1/48", "2001:db8::/48", 6, true],
      ["fd00:2021:1111:0:0:0:20:0/107", "fd00:2021:1111::20:0/107", 6, false],
      ["2000::/3", "2000::/3", 6, false],
      ["fe00::/8", "fe00::/8", 6, false], // next to fd00::/8, which holds the address plan
    ];
    for (const [given, stored, family, masked] of cases) {
      const result = validateResource(resource("cidr", given));
      expect(result, given).toStrictEqual({
        ok: true,
        value: { type: "cidr", address: stored, family, name: "A resource", filters: [] },
        notices: masked ? [{ field: "address", code: "cidr.host_bits_masked", message: expect.stringContaining(stored) }] : [],
      });
    }
  });

  it("refuses CIDR ranges that are wrong, full tunnel, loopback or reserved, each with its code", () => {
    const cases: [address: string, code: string][] = [
      ["10.0.0.0", "cidr.prefix_length_missing"],
      ["10.0.0.0/33", "cidr.prefix_length"],
      ["10.0.0.0/08", "cidr.prefix_length"],
      ["10.0.0.0/", "cidr.prefix_length"],
      ["10.0.0.0/-1", "cidr.prefix_length"],
      ["2001:db8::/129", "cidr.prefix_length"],
      ["10.0.0/8", "cidr.invalid"],
      ["example.com/24", "cidr.invalid"],
      ["0.0.0.0/0", "cidr.full_tunnel"],
      ["::/0", "cidr.full_tunnel"],
      ["1.2.3.4/0", "cidr.full_tunnel"],
      ["0.0.0.0/1", "cidr.unspecified"],
      ["::/1", "cidr.unspecified"],
      ["127.0.0.0/8", "cidr.loopback"],
      ["127.1.0.0/16", "cidr.loopback"],
      ["64.0.0.0/2", "cidr.loopback"],
      ["::1/128", "cidr.loopback"],
      ["::ffff:0:0/96", "cidr.ipv4_mapped"],
      ["100.64.0.0/10", "cidr.reserved"],
      ["100.64.0.0/8", "cidr.reserved"],
      ["100.80.0.0/16", "cidr.reserved"],
      ["100.100.111.0/24", "cidr.reserved"],
      ["100.100.111.128/25", "cidr.reserved"],
      ["fd00::/8", "cidr.reserved"],
      ["fd00:2021:1111:8000::/112", "cidr.reserved"],
    ];
    for (const [address, code] of cases) {
      expect(refusals(resource("cidr", address)), address).toStrictEqual([{ field: "address", code }]);
    }
  });

  it("the Internet resource: no address, no filters, one per account", () => {
    expect(accepted({ type: "internet", name: "Internet" })).toStrictEqual({ type: "internet", name: "Internet", filters: [] });
    expect(accepted({ type: "internet", name: "Internet", address: "", filters: [] })).toStrictEqual({ type: "internet", name: "Internet", filters: [] });
    expect(refusals({ type: "internet", name: "Internet", address: "0.0.0.0/0" })).toStrictEqual([{ field: "address", code: "internet.address" }]);
    expect(refusals({ type: "internet", name: "Internet", filters: [{ protocol: "tcp" }] })).toStrictEqual([{ field: "filters", code: "internet.filters" }]);
    expect(refusals({ type: "internet", name: "Internet" }, { internetResourceExists: true })).toStrictEqual([{ field: "type", code: "internet.already_exists" }]);
    // The flag concerns Internet resources only.
    expect(validateResource(resource("dns", "a.example.com"), { internetResourceExists: true }).ok).toBe(true);
  });
});

describe("resource names, descriptions and shape", () => {
  it("trims the name and the description, and drops an empty description", () => {
    expect(accepted({ type: "dns", address: "a.example.com", name: "  Wiki  ", addressDescription: "  https://a.example.com/  " })).toStrictEqual({
      type: "dns",
      address: "a.example.com",
      name: "Wiki",
      addressDescription: "https://a.example.com/",
      filters: [],
    });
    expect(accepted({ type: "dns", address: "a.example.com", name: "Wiki", addressDescription: "   " })).not.toHaveProperty("addressDescription");
    expect(accepted({ type: "dns", address: "a.example.com", name: "é".repeat(255) }).name).toHaveLength(255);
  });

  it("refuses each wrong field, and reports every wrong field at once", () => {
    const cases: [input: unknown, errors: Pick<FieldError, "field" | "code">[]][] = [
      [null, [{ field: "", code: "resource.type" }]],
      ["dns", [{ field: "", code: "resource.type" }]],
      [[], [{ field: "", code: "resource.type" }]],
      [{ ...resource("dns", "a.example.com"), type: "fqdn" }, [{ field: "type", code: "type.invalid" }]],
      [{ ...resource("dns", "a.example.com"), type: undefined }, [{ field: "type", code: "type.invalid" }]],
      [{ type: "dns", address: "a.example.com" }, [{ field: "name", code: "name.required" }]],
      [{ type: "dns", address: "a.example.com", name: "   " }, [{ field: "name", code: "name.required" }]],
      [{ type: "dns", address: "a.example.com", name: 7 }, [{ field: "name", code: "name.required" }]],
      [{ type: "dns", address: "a.example.com", name: "x".repeat(256) }, [{ field: "name", code: "name.too_long" }]],
      [{ type: "dns", address: "a.example.com", name: "a\u0000b" }, [{ field: "name", code: "name.invalid_character" }]],
      [resource("dns", "a.example.com", { addressDescription: 5 }), [{ field: "addressDescription", code: "address_description.type" }]],
      [resource("dns", "a.example.com", { addressDescription: "x".repeat(513) }), [{ field: "addressDescription", code: "address_description.too_long" }]],
      [resource("dns", "a.example.com", { addressDescription: "a\nb" }), [{ field: "addressDescription", code: "address_description.invalid_character" }]],
      [{ type: "dns", name: "x" }, [{ field: "address", code: "address.required" }]],
      [{ type: "cidr", name: "x", address: 10 }, [{ field: "address", code: "address.required" }]],
      [
        { type: "ip", name: "", address: "127.0.0.1", filters: [{ protocol: "sctp" }] },
        [
          { field: "name", code: "name.required" },
          { field: "address", code: "ip.loopback" },
          { field: "filters/0/protocol", code: "filter.protocol" },
        ],
      ],
    ];
    for (const [input, errors] of cases) expect(refusals(input), JSON.stringify(input)).toStrictEqual(errors);
  });
});

describe("resource filters", () => {
  const withFilters = (filters: unknown): Record<string, unknown> => resource("dns", "a.example.com", { filters });
  const filtersOf = (filters: unknown): unknown => accepted(withFilters(filters)).filters;

  it("an empty list, or none, allows everything", () => {
    expect(filtersOf([])).toStrictEqual([]);
    expect(filtersOf(undefined)).toStrictEqual([]);
    expect(filtersOf(null)).toStrictEqual([]);
  });

  it("sorts protocols, merges and sorts ports, reads all of 1-65535 as every port", () => {
    expect(
      filtersOf([
        { protocol: "icmp" },
        { protocol: "udp", ports: ["53"] },
        { protocol: "tcp", ports: ["8443", "80", "8000 - 8079", "8080", "443", "81-90"] },
      ]),
    ).toStrictEqual([
      { protocol: "tcp", ports: [{ start: 80, end: 90 }, { start: 443, end: 443 }, { start: 8000, end: 8080 }, { start: 8443, end: 8443 }] },
      { protocol: "udp", ports: [{ start: 53, end: 53 }] },
      { protocol: "icmp" },
    ]);
    expect(filtersOf([{ protocol: "tcp" }, { protocol: "udp", ports: [] }, { protocol: "icmp", ports: [] }])).toStrictEqual([
      { protocol: "tcp", ports: [] },
      { protocol: "udp", ports: [] },
      { protocol: "icmp" },
    ]);
    expect(filtersOf([{ protocol: "tcp", ports: ["1-1000", "1001-65535"] }])).toStrictEqual([{ protocol: "tcp", ports: [] }]);
    expect(filtersOf([{ protocol: "udp", ports: ["1", "65535", "0443"] }])).toStrictEqual([
      { protocol: "udp", ports: [{ start: 1, end: 1 }, { start: 443, end: 443 }, { start: 65535, end: 65535 }] },
    ]);
  });

  it("refuses each wrong filter with its code, at the field that is wrong", () => {
    const cases: [filters: unknown, errors: Pick<FieldError, "field" | "code">[]][] = [
      ["tcp", [{ field: "filters", code: "filters.type" }]],
      [["tcp"], [{ field: "filters/0", code: "filter.type" }]],
      [[{ protocol: "TCP" }], [{ field: "filters/0/protocol", code: "filter.protocol" }]],
      [[{}], [{ field: "filters/0/protocol", code: "filter.protocol" }]],
      [[{ protocol: "tcp" }, { protocol: "udp" }, { protocol: "tcp", ports: ["1"] }], [{ field: "filters/2/protocol", code: "filter.duplicate_protocol" }]],
      [[{ protocol: "icmp", ports: ["8"] }], [{ field: "filters/0/ports", code: "filter.icmp_ports" }]],
      [[{ protocol: "tcp", ports: "443" }], [{ field: "filters/0/ports", code: "filter.ports_type" }]],
      [[{ protocol: "tcp", ports: [443] }], [{ field: "filters/0/ports/0", code: "port.type" }]],
      [[{ protocol: "tcp", ports: ["0"] }], [{ field: "filters/0/ports/0", code: "port.out_of_range" }]],
      [[{ protocol: "tcp", ports: ["65536"] }], [{ field: "filters/0/ports/0", code: "port.out_of_range" }]],
      [[{ protocol: "tcp", ports: ["0-80"] }], [{ field: "filters/0/ports/0", code: "port.out_of_range" }]],
      [[{ protocol: "tcp", ports: ["99999999999999999999"] }], [{ field: "filters/0/ports/0", code: "port.out_of_range" }]],
      [[{ protocol: "udp", ports: ["53", "8080-80"] }], [{ field: "filters/0/ports/1", code: "port.inverted_range" }]],
      [[{ protocol: "tcp", ports: ["http"] }], [{ field: "filters/0/ports/0", code: "port.invalid" }]],
      [[{ protocol: "tcp", ports: [""] }], [{ field: "filters/0/ports/0", code: "port.invalid" }]],
      [[{ protocol: "tcp", ports: ["-80"] }], [{ field: "filters/0/ports/0", code: "port.invalid" }]],
      [[{ protocol: "tcp", ports: ["80-"] }], [{ field: "filters/0/ports/0", code: "port.invalid" }]],
      [[{ protocol: "tcp", ports: ["1-2-3"] }], [{ field: "filters/0/ports/0", code: "port.invalid" }]],
      [[{ protocol: "tcp", ports: ["+80"] }], [{ field: "filters/0/ports/0", code: "port.invalid" }]],
      [[{ protocol: "tcp", ports: ["80", "80"] }], [{ field: "filters/0/ports/1", code: "port.overlap" }]],
      [[{ protocol: "tcp", ports: ["8000-8080", "8080-8090"] }], [{ field: "filters/0/ports/1", code: "port.overlap" }]],
      [
        [{ protocol: "udp", ports: ["100-200", "1", "150", "50-100"] }],
        [
          { field: "filters/0/ports/2", code: "port.overlap" },
          { field: "filters/0/ports/3", code: "port.overlap" },
        ],
      ],
    ];
    for (const [filters, errors] of cases) expect(refusals(withFilters(filters)), JSON.stringify(filters)).toStrictEqual(errors);
    // The overlap message names the earlier entry.
    const result = validateResource(withFilters([{ protocol: "tcp", ports: ["443", "400-500"] }]));
    expect(result.ok ? "" : result.errors[0]!.message).toMatch(/^400-500 overlaps 443 \(filters\/0\/ports\/0\)/);
  });

  it("property: random port-range sets agree with a bitmap of the ports they name", () => {
    let merged = 0;
    let overlapping = 0;
    for (let i = 0; i < 2000; i++) {
      const r = rng(`resource/ports#${i}`);
      const top = r.pick([40, 300, 65535]);
      const ranges: PortRange[] = Array.from({ length: r.int(1, 8) }, () => {
        const a = r.int(1, top);
        const b = r.bool(0.4) ? a : r.int(a, Math.min(top, a + r.pick([1, 5, 50, 70000])));
        return { start: a, end: b };
      });
      // Written as a person would: single ports bare, spaces here and there.
      const texts = ranges.map((range) => (range.start === range.end && r.bool() ? String(range.start) : `${range.start}${r.pick(["-", " - ", "- "])}${range.end}`));
      const covered = new Uint8Array(65536 + 1);
      const expectedErrors: string[] = [];
      ranges.forEach((range, k) => {
        let clash = false;
        for (let port = range.start; port <= range.end; port++) if (covered[port]) clash = true;
        if (clash) expectedErrors.push(`filters/0/ports/${k}`);
        else covered.fill(1, range.start, range.end + 1);
      });
      const result = validateResource(resource("cidr", "10.0.0.0/8", { filters: [{ protocol: r.pick(["tcp", "udp"]), ports: texts }] }));
      const where = r.where(JSON.stringify(texts));
      if (expectedErrors.length > 0) {
        overlapping++;
        expect(result.ok ? [] : result.errors.map((e) => `${e.field} ${e.code}`), where).toStrictEqual(expectedErrors.map((f) => `${f} port.overlap`));
        continue;
      }
      expect(result.ok, where).toBe(true);
      if (!result.ok) continue;
      const filter = result.value.filters[0]!;
      const got = "ports" in filter ? filter.ports : [];
      // Sorted, disjoint, not adjacent; [] only when every port is named.
      for (let k = 1; k < got.length; k++) expect(got[k]!.start, where).toBeGreaterThan(got[k - 1]!.end + 1);
      const gotCovered = new Uint8Array(65536 + 1);
      if (got.length === 0) gotCovered.fill(1, 1, 65536);
      for (const range of got) gotCovered.fill(1, range.start, range.end + 1);
      expect(Buffer.from(gotCovered).equals(Buffer.from(covered)), where).toBe(true);
      if (got.length < ranges.length) merged++;
    }
    expect(merged, "sets where ranges joined").toBeGreaterThan(25);
    expect(overlapping, "sets refused for overlap").toBeGreaterThan(200);
  });
});

// --- Wildcard matching ---

/**
 * The oracle: a pattern as one regular expression over the whole dotted name. A leading `*` label
 * is an optional label, `**` any number of labels, `*` and `?` inside a label a run and a character.
 */
function oracle(pattern: string): RegExp {
  const labels = pattern.toLowerCase().replace(/\.$/, "").split(".");
  const escape = (ch: string): string => ch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const source = labels
    .map((label, i) => {
      const dot = i === labels.length - 1 ? "" : "\\.";
      if (label === "**") return "(?:[^.]+\\.)*";
      if (label === "*" && i === 0) return "(?:[^.]+\\.)?";
      return [...label].map((ch) => (ch === "*" ? "[^.]*" : ch === "?" ? "[^.]" : escape(ch))).join("") + dot;
    })
    .join("");
  return new RegExp(`^${source}$`, "u");
}

/** What the oracle says, for names as a query carries them: no empty label, case and a final dot ignored. */
function oracleMatches(pattern: string, name: string): boolean {
  const bare = name.toLowerCase().replace(/\.$/, "");
  return bare !== "" && !bare.split(".").includes("") && oracle(pattern).test(bare);
}

const LITERALS = ["a", "b", "ab", "ba", "aa", "b-a"];
const GLOBS = ["*", "**", "?", "a?", "?b", "a*", "*a", "*b*", "??"];

function randomPattern(r: Rng): string {
  const labels = Array.from({ length: r.int(0, 4) }, () => (r.bool(0.6) ? r.pick(GLOBS) : r.pick(LITERALS)));
  return [...labels, r.pick(["x", "y"])].join(".");
}

/** A name built to match the pattern, then sometimes spoiled; or a random one. */
function randomName(r: Rng, pattern: string): string {
  const label = (): string => Array.from({ length: r.int(1, 4) }, () => r.pick(["a", "b", "-"])).join("").replace(/^-|-$/g, "a");
  if (r.bool(0.3)) return [...Array.from({ length: r.int(0, 5) }, label), r.pick(["x", "y"])].join(".");
  const out: string[] = [];
  pattern.split(".").forEach((p, i) => {
    if (p === "**") for (let k = r.int(0, 3); k > 0; k--) out.push(label());
    else if (p === "*" && i === 0) {
      if (r.bool()) out.push(label());
    } else {
      out.push([...p].map((ch) => (ch === "*" ? r.pick(["", "a", "b", "ab", "-b"]) : ch === "?" ? r.pick(["a", "b", "-"]) : ch)).join("") || "a");
    }
  });
  let name = out.join(".");
  if (r.bool(0.3) && name.length > 0) {
    const at = r.int(0, name.length - 1);
    name = name.slice(0, at) + r.pick(["a", "b", ".a", ""]) + name.slice(at + 1);
  }
  if (r.bool(0.2)) name = name.toUpperCase();
  if (r.bool(0.1)) name += ".";
  return name;
}

describe("dnsPatternMatches", () => {
  it("implements the documented wildcard semantics", () => {
    const cases: [pattern: string, name: string, matches: boolean][] = [
      ["app.example.com", "app.example.com", true],
      ["app.example.com", "APP.Example.com.", true],
      ["app.example.com", "example.com", false],
      ["app.example.com", "x.app.example.com", false],
      // `*` leftmost: one label, or the apex.
      ["*.example.com", "example.com", true],
      ["*.example.com", "app.example.com", true],
      ["*.example.com", "a.b.example.com", false],
      ["*.example.com", "example.org", false],
      // `*` elsewhere: exactly one label.
      ["foo.*.example.com", "foo.bar.example.com", true],
      ["foo.*.example.com", "foo.example.com", false],
      ["foo.*.example.com", "foo.a.b.example.com", false],
      // `**`: any number of labels, none included.
      ["**.example.com", "example.com", true],
      ["**.example.com", "a.example.com", true],
      ["**.example.com", "a.b.c.example.com", true],
      ["**.example.com", "badexample.com", false],
      ["foo.**.example.com", "foo.example.com", true],
      ["foo.**.example.com", "foo.bar.baz.example.com", true],
      ["foo.**.example.com", "bar.foo.example.com", false],
      // `?`: exactly one character, within a label.
      ["us-east?.example.com", "us-east1.example.com", true],
      ["us-east?.example.com", "us-east.example.com", false],
      ["us-east?.example.com", "us-eastxy.example.com", false],
      ["?.example.com", "a.example.com", true],
      ["?.example.com", "example.com", false],
      ["???.example.com", "app.example.com", true],
      // `*` inside a label: any run of that label's characters.
      ["app-*.example.com", "app-.example.com", true],
      ["app-*.example.com", "app-eu-1.example.com", true],
      ["app-*.example.com", "app-eu.x.example.com", false],
      ["*-db.example.com", "pg-db.example.com", true],
      // Malformed names never match.
      ["**.example.com", "a..example.com", false],
      ["**.example.com", "", false],
    ];
    for (const [pattern, name, matches] of cases) expect(dnsPatternMatches(pattern, name), `${pattern} ~ ${name}`).toBe(matches);
  });

  it("property: random patterns and names agree with the regex oracle", () => {
    let yes = 0;
    let no = 0;
    for (let i = 0; i < 20000; i++) {
      const r = rng(`resource/dns-match#${i}`);
      const pattern = randomPattern(r);
      const name = randomName(r, pattern);
      const expected = oracleMatches(pattern, name);
      expect(dnsPatternMatches(pattern, name), r.where(`${pattern} ~ ${JSON.stringify(name)}`)).toBe(expected);
      if (expected) yes++;
      else no++;
    }
    expect(yes, "matching pairs").toBeGreaterThan(5000);
    expect(no, "non-matching pairs").toBeGreaterThan(5000);
  });

  it("every accepted pattern matches the names it was built from", () => {
    for (let i = 0; i < 2000; i++) {
      const r = rng(`resource/dns-accepted#${i}`);
      const pattern = `${randomPattern(r)}.example.com`.replace(/\.(x|y)\.example/, ".$1-example");
      const result = validateResource(resource("dns", pattern));
      expect(result.ok, r.where(pattern)).toBe(true);
      if (!result.ok || result.value.type !== "dns") continue;
      const name = randomName(r, result.value.address);
      expect(dnsPatternMatches(result.value.address, name), r.where(`${pattern} ~ ${name}`)).toBe(oracleMatches(result.value.address, name));
    }
  });
});

// --- Addresses against outside references ---

describe("IP text", () => {
  it("property: IPv6 canonical text agrees with node's URL parser, and parses back", () => {
    for (let i = 0; i < 3000; i++) {
      const r = rng(`resource/ipv6#${i}`);
      const words = Array.from({ length: 8 }, () => (r.bool(0.45) ? 0 : r.bool() ? r.int(1, 0xff) : r.int(0, 0xffff)));
      const written = words.map((w) => w.toString(16).padStart(r.int(1, 4), "0")).map((w) => (r.bool() ? w.toUpperCase() : w)).join(":");
      const reference = new URL(`http://[${written}]/`).hostname.slice(1, -1);
      const parsed = parseIp(written);
      expect(parsed, r.where(written)).toBeDefined();
      expect(formatIp(parsed!), r.where(written)).toBe(reference);
      expect(parseIp(reference), r.where(reference)).toStrictEqual(parsed);
    }
  });
});

// --- Fuzz ---

const FUZZ_ALPHABET = [..."abcxyz019.-*?:/[]% _", "..", "**", "::", "/24", "/0", "0.0.0.0", "::1", "ü", "\u0000", "\n", "é", "xn--", "100.64.", "fd00:2021:1111:"];

function randomText(r: Rng): string {
  return Array.from({ length: r.int(0, 24) }, () => (r.bool(0.1) ? String.fromCodePoint(r.int(0, 0x2ffff)) : r.pick(FUZZ_ALPHABET))).join("");
}

/** A NormalizedResource written back as input. */
function asInput(value: NormalizedResource): Record<string, unknown> {
  const input: Record<string, unknown> = { ...value };
  delete input.family;
  input.filters = value.filters.map((f) => ("ports" in f ? { protocol: f.protocol, ports: f.ports.map(formatPortRange) } : f));
  return input;
}

describe("fuzz", () => {
  it("random input never throws; accepted input is normalized for good (validating the result changes nothing)", () => {
    const r = rng("resource/fuzz");
    let ok = 0;
    for (let i = 0; i < 20000; i++) {
      const input: Record<string, unknown> = {
        type: r.bool(0.9) ? r.pick(["dns", "ip", "cidr", "internet"]) : randomText(r),
        name: r.bool(0.9) ? "n" : randomText(r),
      };
      if (r.bool(0.95)) input.address = randomText(r);
      if (r.bool(0.3)) input.addressDescription = randomText(r);
      if (r.bool(0.4)) {
        input.filters = Array.from({ length: r.int(0, 3) }, () => ({
          protocol: r.bool(0.9) ? r.pick(["tcp", "udp", "icmp"]) : randomText(r),
          ports: r.bool(0.2) ? undefined : Array.from({ length: r.int(0, 3) }, () => (r.bool(0.5) ? `${r.int(0, 70000)}-${r.int(0, 70000)}` : randomText(r))),
        }));
      }
      let result: ResourceValidation | undefined;
      expect(() => (result = validateResource(input)), r.where(JSON.stringify(input))).not.toThrow();
      if (!result!.ok) {
        for (const error of result!.errors) {
          expect(error.field.length > 0 || error.code === "resource.type", r.where(JSON.stringify(error))).toBe(true);
          expect(error.code, r.where(JSON.stringify(error))).toMatch(/^[a-z_]+\.[a-z_]+$/);
          expect(error.message.length, r.where(JSON.stringify(error))).toBeGreaterThan(0);
        }
        continue;
      }
      ok++;
      const again = validateResource(asInput(result!.value));
      expect(again, r.where(`revalidating ${JSON.stringify(input)}`)).toStrictEqual({ ok: true, value: result!.value, notices: [] });
    }
    expect(ok, "accepted fuzz inputs").toBeGreaterThan(150);
    for (const junk of [undefined, 0, "", [], [{}], { type: {} }, { type: "dns", address: {}, name: [], filters: {} }, { type: "ip", address: "1".repeat(100000), name: "x" }]) {
      expect(() => validateResource(junk), JSON.stringify(junk)).not.toThrow();
    }
    expect(dnsPatternMatches("**.".repeat(5000) + "x", "a.".repeat(5000) + "x")).toBe(false);
  });
});
