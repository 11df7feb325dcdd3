// What makes a Resource valid, as a Firezone admin expects, and its normalized form. Pure functions:
// the REST API's validation calls validateResource, the policy engine calls dnsPatternMatches, and
// both read the IP helpers. Input errors are values, never exceptions (STYLE.md 8).
//
// 1. The common fields: type, name (1-255 characters), optional address description (up to 512).
// 2. The address, by type:
//    - dns: a name pattern. Lowercased, one trailing dot dropped, non-ASCII labels turned into their
//      xn-- A-labels (what DNS queries carry). Wildcards: `?` is one character of a label; `*` inside
//      a label is any run of characters of that label; a label that is only `*` is one whole label,
//      or also none when it is the leftmost (`*.example.com` matches example.com and a.example.com,
//      not a.b.example.com); a label `**` is any number of labels, none included
//      (`**.example.com` matches example.com and a.b.example.com). No wildcard in the TLD, no
//      wildcard-only name right above a public TLD (`*.com`), no `localhost`, no IP literal, no port.
//    - ip: one IPv4 or IPv6 address; IPv6 is written canonically (RFC 5952).
//    - cidr: address/length. Host bits are masked off, as Firezone does (10.0.0.1/24 is stored as
//      10.0.0.0/24), and the result carries a notice saying so.
//    - ip and cidr refuse the unspecified address, full tunnel (/0: that is the Internet resource's
//      job), loopback, IPv4-mapped IPv6, and the ranges the address plan reserves (DESIGN.md).
//    - internet: no address, no filters; one per account (the caller says whether one exists; the
//      database's unique index stays the guard against a race).
// 3. Filters: an empty list allows everything. One filter per protocol; tcp and udp take ports
//    ("443", "8000-8080", 1-65535), refused when two overlap, then merged and sorted (adjacent ranges
//    join; a list covering 1-65535 becomes [], all ports); icmp takes none.

/** A field path inside the request body, JSON-pointer style without the leading slash. */
export interface FieldError {
  field: string;
  /** Stable, for clients and tests: "<topic>.<reason>". */
  code: string;
  message: string;
}

/** Something the validator changed on the way and the user should hear about; not an error. */
export type FieldNotice = FieldError;

export type ResourceType = "dns" | "ip" | "cidr" | "internet";
export type FilterProtocol = "tcp" | "udp" | "icmp";

export interface FilterInput {
  protocol: FilterProtocol;
  /** "443" or "8000-8080"; none or empty: every port. */
  ports?: string[];
}

export interface ResourceInput {
  type: ResourceType;
  address?: string;
  name: string;
  addressDescription?: string;
  filters?: FilterInput[];
}

/** An inclusive port range. */
export interface PortRange {
  start: number;
  end: number;
}

export type NormalizedFilter = { protocol: "tcp" | "udp"; ports: PortRange[] } | { protocol: "icmp" };

interface ResourceCommon {
  name: string;
  addressDescription?: string;
  /** Sorted tcp, udp, icmp; empty: all traffic. */
  filters: NormalizedFilter[];
}

export type NormalizedResource =
  | (ResourceCommon & { type: "dns"; address: string })
  | (ResourceCommon & { type: "ip"; address: string; family: 4 | 6 })
  | (ResourceCommon & { type: "cidr"; address: string; family: 4 | 6 })
  | (ResourceCommon & { type: "internet" });

/** What validateResource needs to know about the account beyond the request itself. */
export interface ResourceContext {
  /** True when the account already has an Internet resource (other than the one being updated). */
  internetResourceExists?: boolean;
}

export type ResourceValidation =
  | { ok: true; value: NormalizedResource; notices: FieldNotice[] }
  | { ok: false; errors: FieldError[] };

export const NAME_MAX = 255;
export const ADDRESS_DESCRIPTION_MAX = 512;
/** RFC 1035 §2.3.4, in the text form without the trailing dot. */
export const DNS_NAME_MAX = 253;
export const DNS_LABEL_MAX = 63;
export const PORT_MIN = 1;
export const PORT_MAX = 65535;

const RESOURCE_TYPES: readonly ResourceType[] = ["dns", "ip", "cidr", "internet"];
const PROTOCOL_ORDER: readonly FilterProtocol[] = ["tcp", "udp", "icmp"];

// --- IP addresses and prefixes ---

/** An IP address as a number: 32 bits for IPv4, 128 for IPv6. */
export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

/** A prefix whose host bits are zero. */
export interface IpPrefix extends IpAddress {
  length: number;
}

const bits = (family: 4 | 6): number => (family === 4 ? 32 : 128);

/** Strict dotted-quad IPv4: four decimal octets, no leading zeros (which some parsers read as octal). */
export function parseIpv4(text: string): IpAddress | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return { family: 4, value };
}

/** RFC 4291 §2.2 text: hex groups, one "::", an optional dotted IPv4 tail; no zone index. */
export function parseIpv6(text: string): IpAddress | undefined {
  if (text.length === 0 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string, last: boolean): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const items = half.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (last && i === items.length - 1 && item.includes(".")) {
        const v4 = parseIpv4(item);
        if (v4 === undefined) return undefined;
        out.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const compressed = halves.length === 2;
  const head = groupsOf(halves[0]!, !compressed);
  const tail = compressed ? groupsOf(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const given = head.length + tail.length;
  if (compressed ? given > 7 : given !== 8) return undefined;
  const groups = [...head, ...Array<number>(8 - given).fill(0), ...tail];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return { family: 6, value };
}

export function parseIp(text: string): IpAddress | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

/** Dotted quad, or RFC 5952 IPv6: lowercase, no leading zeros, the first longest zero run as "::". */
export function formatIp(address: IpAddress): string {
  if (address.family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((address.value >> shift) & 0xffn)).join(".");
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((address.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestAt = -1;
  let bestLength = 1; // RFC 5952 §4.2.2: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestAt = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(":");
  return `${hex.slice(0, bestAt).join(":")}::${hex.slice(bestAt + bestLength).join(":")}`;
}

export function formatPrefix(prefix: IpPrefix): string {
  return `${formatIp(prefix)}/${prefix.length}`;
}

function hostMask(family: 4 | 6, length: number): bigint {
  return (1n << BigInt(bits(family) - length)) - 1n;
}

/** The prefix of `length` that holds `address`. */
export function networkOf(address: IpAddress, length: number): IpPrefix {
  return { family: address.family, value: address.value & ~hostMask(address.family, length), length };
}

/** Whether `address` lies in `prefix`. */
export function prefixContains(prefix: IpPrefix, address: IpAddress): boolean {
  return prefix.family === address.family && (address.value & ~hostMask(prefix.family, prefix.length)) === prefix.value;
}

/** Whether two prefixes share an address: the shorter one contains the other's network. */
export function prefixesOverlap(a: IpPrefix, b: IpPrefix): boolean {
  if (a.family !== b.family) return false;
  return a.length <= b.length ? prefixContains(a, b) : prefixContains(b, a);
}

/** "::ffff:a.b.c.d" as the IPv4 address it stands for; anything else unchanged. */
export function unmapIpv4(address: IpAddress): IpAddress {
  if (address.family === 6 && address.value >> 32n === 0xffffn) return { family: 4, value: address.value & 0xffffffffn };
  return address;
}

type PrefixParse = { ok: true; prefix: IpPrefix; masked: boolean } | { ok: false; code: string; message: string };

/** "address/length" with a decimal length; host bits are masked off and reported. */
export function parseCidr(text: string, topic = "cidr"): PrefixParse {
  const slash = text.indexOf("/");
  if (slash < 0) {
    return { ok: false, code: `${topic}.prefix_length_missing`, message: `${show(text)} has no /length; write it as address/length, like 10.0.0.0/24` };
  }
  const addressText = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  const address = parseIp(addressText);
  if (address === undefined) {
    return { ok: false, code: `${topic}.invalid`, message: `${show(addressText)} is not an IPv4 or IPv6 address` };
  }
  const max = bits(address.family);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > max) {
    return { ok: false, code: `${topic}.prefix_length`, message: `/${lengthText} is not a prefix length from 0 to ${max}` };
  }
  const prefix = networkOf(address, Number(lengthText));
  return { ok: true, prefix, masked: prefix.value !== address.value };
}

// The address plan (DESIGN.md) and the ranges no resource may cover, most specific first, so the
// message names the narrowest reason.
interface ReservedRange {
  prefix: IpPrefix;
  text: string;
  code: "loopback" | "unspecified" | "reserved" | "ipv4_mapped";
  why: string;
}

function reserved(text: string, code: ReservedRange["code"], why: string): ReservedRange {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`bad built-in range ${text}`);
  return { prefix: parsed.prefix, text, code, why };
}

export const RESERVED_RANGES: readonly ReservedRange[] = [
  reserved("0.0.0.0/32", "unspecified", "the unspecified IPv4 address"),
  reserved("::/128", "unspecified", "the unspecified IPv6 address"),
  reserved("::1/128", "loopback", "the IPv6 loopback address"),
  reserved("127.0.0.0/8", "loopback", "IPv4 loopback"),
  reserved("::ffff:0:0/96", "ipv4_mapped", "IPv4-mapped IPv6 addresses; give the IPv4 address or range itself"),
  reserved("100.100.111.0/24", "reserved", "Wardline's sentinel DNS servers"),
  reserved("100.64.0.0/11", "reserved", "Wardline's device tunnel addresses"),
  reserved("fd00:2021:1111::/107", "reserved", "Wardline's device tunnel addresses"),
  reserved("100.96.0.0/11", "reserved", "Wardline's DNS-resource proxy addresses"),
  reserved("fd00:2021:1111:8000::/107", "reserved", "Wardline's DNS-resource proxy addresses"),
];

/** The first reserved range `prefix` overlaps, if any. */
export function reservedRangeOverlapping(prefix: IpPrefix): ReservedRange | undefined {
  return RESERVED_RANGES.find((range) => prefixesOverlap(range.prefix, prefix));
}

// --- DNS name patterns ---

/** Generic TLDs and, by their two letters, the country-code ones: public suffixes a wildcard may not sit right above. */
const PUBLIC_TLDS = new Set(["com", "org", "net", "edu", "gov", "mil", "int", "biz", "info", "name", "mobi", "pro", "arpa"]);
const isPublicTld = (tld: string): boolean => PUBLIC_TLDS.has(tld) || /^[a-z]{2}$/.test(tld);
const PROHIBITED_TLDS = new Set(["localhost"]);

const isWildcardOnly = (label: string): boolean => /^[*?]+$/.test(label);
const hasWildcard = (label: string): boolean => label.includes("*") || label.includes("?");
/** Letters, digits and combining marks of any script; their A-label is checked afterwards. */
const LABEL_CHARACTER = /^[a-z0-9*?-]$|^[\p{L}\p{M}\p{Nd}]$/u;

type DnsCheck = { ok: true; address: string } | { ok: false; code: string; message: string };

function dnsFail(code: string, message: string): DnsCheck {
  return { ok: false, code: `dns.${code}`, message };
}

/** A non-ASCII label without wildcards as its IDNA A-label, through the WHATWG URL host parser. */
function toALabel(label: string): string | undefined {
  let host: string;
  try {
    host = new URL(`http://${label}.invalid/`).hostname;
  } catch {
    return undefined;
  }
  const alabel = host.slice(0, -".invalid".length);
  return host.endsWith(".invalid") && /^[a-z0-9-]+$/.test(alabel) ? alabel : undefined;
}

/** A DNS resource address: the checks of step 2, in the order a person fixing it wants them. */
export function checkDnsAddress(raw: string): DnsCheck {
  let name = raw.trim().toLowerCase();
  if (name.endsWith(".") && !name.endsWith("..")) name = name.slice(0, -1);
  if (name === "") return dnsFail("required", "a DNS resource needs a name, like app.example.com or *.example.com");

  // Things that are not names at all, named for what they are.
  const bare = name.startsWith("[") && name.includes("]") ? name.slice(1, name.indexOf("]")) : name;
  const slash = bare.indexOf("/");
  if (parseIp(slash < 0 ? bare : bare.slice(0, slash)) !== undefined) {
    return dnsFail("ip_literal", `${show(raw)} is an IP address; create an IP or CIDR resource for it instead`);
  }
  if (name.includes("://") || name.includes("/")) {
    return dnsFail("url", `${show(raw)} looks like a URL; give only the host name, like app.example.com`);
  }
  if (/\]:[0-9]*$/.test(name) || /^[^:]*:[0-9]*$/.test(name)) {
    return dnsFail("port", `${show(raw)} has a port; a DNS resource is a name only, and filters restrict ports`);
  }

  const labels = name.split(".");
  const out: string[] = [];
  for (const label of labels) {
    if (label === "") return dnsFail("empty_label", `${show(raw)} has an empty label (two dots in a row, or a leading dot)`);
    for (const ch of label) {
      if (!LABEL_CHARACTER.test(ch)) {
        return dnsFail("invalid_character", `${show(raw)} contains ${show(ch)}; labels hold letters, digits, hyphens and the wildcards * and ?`);
      }
    }
    if (label.startsWith("-") || label.endsWith("-")) return dnsFail("label_hyphen", `label ${show(label)} starts or ends with a hyphen`);
    if (label.includes("**") && label !== "**") {
      return dnsFail("double_wildcard_in_label", `${show(label)}: ** stands for whole labels only, as in **.example.com or a.**.example.com`);
    }
    if (/\P{ASCII}/u.test(label)) {
      if (hasWildcard(label)) return dnsFail("wildcard_idn", `${show(label)}: wildcards work in ASCII labels only; write the name's xn-- form`);
      const alabel = toALabel(label);
      if (alabel === undefined) return dnsFail("invalid_character", `${show(label)} is not a valid internationalized label`);
      out.push(alabel);
    } else {
      out.push(label);
    }
  }
  for (const label of out) {
    if (label.length > DNS_LABEL_MAX) return dnsFail("label_too_long", `label ${show(label)} is ${label.length} characters; the limit is ${DNS_LABEL_MAX}`);
  }
  const address = out.join(".");
  if (address.length > DNS_NAME_MAX) return dnsFail("too_long", `the name is ${address.length} characters; the limit is ${DNS_NAME_MAX}`);

  const tld = out[out.length - 1]!;
  const below = out.slice(0, -1);
  if (hasWildcard(tld)) return dnsFail("wildcard_tld", `${show(raw)}: the top-level domain (${show(tld)}) cannot contain wildcards`);
  if (PROHIBITED_TLDS.has(tld)) {
    return dnsFail("localhost", `${show(raw)}: ${tld} names the client itself; add an alias in /etc/hosts on the gateways instead`);
  }
  if (/^[0-9]+$/.test(tld)) return dnsFail("numeric_tld", `${show(raw)}: a top-level domain is never all digits (RFC 3696 §2)`);
  if (below.length > 0 && below.every(isWildcardOnly) && isPublicTld(tld)) {
    return dnsFail("wildcard_public_suffix", `${show(raw)} would match every name under .${tld}; name a domain, like *.example.${tld}`);
  }
  return { ok: true, address };
}

/** One label against a label glob: `?` is one character, `*` any run, both within the label. */
function labelMatches(glob: string, label: string): boolean {
  const g = Array.from(glob);
  const s = Array.from(label);
  let gi = 0;
  let si = 0;
  let starAt = -1;
  let starMatched = 0;
  while (si < s.length) {
    if (gi < g.length && (g[gi] === "?" || g[gi] === s[si])) {
      gi++;
      si++;
    } else if (gi < g.length && g[gi] === "*") {
      starAt = gi++;
      starMatched = si;
    } else if (starAt >= 0) {
      gi = starAt + 1;
      si = ++starMatched;
    } else {
      return false;
    }
  }
  while (gi < g.length && g[gi] === "*") gi++;
  return gi === g.length;
}

const normalizeName = (text: string): string => {
  const lower = text.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
};

/**
 * Whether the DNS name `name` (as a query carries it: ASCII, A-labels) matches the resource pattern
 * `pattern`, with the wildcard semantics of the file header. Case and one trailing dot are ignored.
 */
export function dnsPatternMatches(pattern: string, name: string): boolean {
  const patternText = normalizeName(pattern);
  const nameText = normalizeName(name);
  // Longer is no DNS name, and the label recursion below stays shallow.
  if (patternText.length > DNS_NAME_MAX || nameText.length > DNS_NAME_MAX) return false;
  const p = patternText.split(".");
  const n = nameText.split(".");
  if (n.some((label) => label === "") || p.some((label) => label === "")) return false;
  // memo[i * (n.length + 1) + j]: 0 unknown, 1 match, 2 no match, for pattern labels from i, name labels from j.
  const memo = new Uint8Array((p.length + 1) * (n.length + 1));
  const from = (i: number, j: number): boolean => {
    if (i === p.length) return j === n.length;
    const key = i * (n.length + 1) + j;
    if (memo[key] !== 0) return memo[key] === 1;
    const label = p[i]!;
    let result: boolean;
    if (label === "**") {
      result = from(i + 1, j) || (j < n.length && from(i, j + 1));
    } else if (label === "*" && i === 0) {
      result = from(1, j) || (j < n.length && from(1, j + 1));
    } else {
      result = j < n.length && labelMatches(label, n[j]!) && from(i + 1, j + 1);
    }
    memo[key] = result ? 1 : 2;
    return result;
  };
  return from(0, 0);
}

// --- Ports and filters ---

type PortParse = { ok: true; range: PortRange } | { ok: false; code: string; message: string };

/** "443" or "8000-8080" (spaces around the hyphen allowed), each port 1-65535, start <= end. */
export function parsePortRange(text: string): PortParse {
  const match = /^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$/.exec(text);
  if (match === null) {
    return { ok: false, code: "port.invalid", message: `${show(text)} is not a port or a range; write 443 or 8000-8080` };
  }
  const [start, end] = [match[1]!, match[2] ?? match[1]!].map((digits) => (digits.length > 5 ? Infinity : Number(digits))) as [number, number];
  for (const port of [start, end]) {
    if (port < PORT_MIN || port > PORT_MAX) {
      return { ok: false, code: "port.out_of_range", message: `${show(text)}: ports go from ${PORT_MIN} to ${PORT_MAX}` };
    }
  }
  if (start > end) return { ok: false, code: "port.inverted_range", message: `${show(text)} ends before it starts; write ${end}-${start}` };
  return { ok: true, range: { start, end } };
}

export function formatPortRange(range: PortRange): string {
  return range.start === range.end ? String(range.start) : `${range.start}-${range.end}`;
}

function validateFilters(raw: unknown, errors: FieldError[]): NormalizedFilter[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    errors.push({ field: "filters", code: "filters.type", message: "filters must be a list; an empty list allows all traffic" });
    return [];
  }
  const out: NormalizedFilter[] = [];
  const seen = new Map<string, number>();
  raw.forEach((filter: unknown, i) => {
    const at = `filters/${i}`;
    if (!isRecord(filter)) {
      errors.push({ field: at, code: "filter.type", message: "a filter is an object: { protocol, ports }" });
      return;
    }
    const protocol = filter.protocol;
    if (typeof protocol !== "string" || !(PROTOCOL_ORDER as readonly string[]).includes(protocol)) {
      errors.push({ field: `${at}/protocol`, code: "filter.protocol", message: `protocol ${show(String(protocol))} is not one of tcp, udp, icmp` });
      return;
    }
    const first = seen.get(protocol);
    if (first !== undefined) {
      errors.push({ field: `${at}/protocol`, code: "filter.duplicate_protocol", message: `${protocol} already has a filter (filters/${first}); put all its ports there` });
      return;
    }
    seen.set(protocol, i);
    const ports: unknown = filter.ports;
    if (ports !== undefined && ports !== null && !Array.isArray(ports)) {
      errors.push({ field: `${at}/ports`, code: "filter.ports_type", message: "ports must be a list of strings like \"443\" or \"8000-8080\"" });
      return;
    }
    const list: unknown[] = ports ?? [];
    if (protocol === "icmp") {
      if (list.length > 0) errors.push({ field: `${at}/ports`, code: "filter.icmp_ports", message: "icmp has no ports; leave ports empty" });
      else out.push({ protocol: "icmp" });
      return;
    }
    const ranges: { range: PortRange; index: number }[] = [];
    let bad = false;
    list.forEach((item, k) => {
      const field = `${at}/ports/${k}`;
      if (typeof item !== "string") {
        errors.push({ field, code: "port.type", message: "a port is a string like \"443\" or \"8000-8080\"" });
        bad = true;
        return;
      }
      const parsed = parsePortRange(item);
      if (!parsed.ok) {
        errors.push({ field, code: parsed.code, message: parsed.message });
        bad = true;
        return;
      }
      const clash = ranges.find(({ range }) => range.start <= parsed.range.end && parsed.range.start <= range.end);
      if (clash !== undefined) {
        errors.push({
          field,
          code: "port.overlap",
          message: `${formatPortRange(parsed.range)} overlaps ${formatPortRange(clash.range)} (${at}/ports/${clash.index}); give each port once`,
        });
        bad = true;
        return;
      }
      ranges.push({ range: parsed.range, index: k });
    });
    if (!bad) out.push({ protocol, ports: mergePortRanges(ranges.map(({ range }) => range)) } as NormalizedFilter);
  });
  return out.sort((a, b) => PROTOCOL_ORDER.indexOf(a.protocol) - PROTOCOL_ORDER.indexOf(b.protocol));
}

/** Disjoint ranges sorted, adjacent ones joined; all of 1-65535 is [], "every port". */
export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: PortRange[] = [];
  for (const range of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && range.start <= last.end + 1) last.end = Math.max(last.end, range.end);
    else out.push({ ...range });
  }
  const only = out[0];
  return out.length === 1 && only!.start === PORT_MIN && only!.end === PORT_MAX ? [] : out;
}

// --- The resource ---

/**
 * Validates a resource as the REST API receives it (any JSON value) and returns its normalized form,
 * or every error found, each naming its field.
 */
export function validateResource(input: unknown, context: ResourceContext = {}): ResourceValidation {
  const errors: FieldError[] = [];
  const notices: FieldNotice[] = [];
  if (!isRecord(input)) {
    return { ok: false, errors: [{ field: "", code: "resource.type", message: "a resource is an object: { type, name, address, filters }" }] };
  }

  // 1. Common fields.
  const type = input.type;
  const typeOk = typeof type === "string" && (RESOURCE_TYPES as readonly string[]).includes(type);
  if (!typeOk) errors.push({ field: "type", code: "type.invalid", message: `type ${show(String(type))} is not one of dns, ip, cidr, internet` });

  const name = typeof input.name === "string" ? input.name.trim() : undefined;
  if (name === undefined || name === "") {
    errors.push({ field: "name", code: "name.required", message: "a resource needs a name" });
  } else if ([...name].length > NAME_MAX) {
    errors.push({ field: "name", code: "name.too_long", message: `the name is longer than ${NAME_MAX} characters` });
  } else if (hasControlCharacter(name)) {
    errors.push({ field: "name", code: "name.invalid_character", message: "the name contains a control character" });
  }

  let addressDescription: string | undefined;
  const description = input.addressDescription;
  if (description !== undefined && description !== null) {
    if (typeof description !== "string") {
      errors.push({ field: "addressDescription", code: "address_description.type", message: "the address description is a string" });
    } else if ([...description.trim()].length > ADDRESS_DESCRIPTION_MAX) {
      errors.push({ field: "addressDescription", code: "address_description.too_long", message: `the address description is longer than ${ADDRESS_DESCRIPTION_MAX} characters` });
    } else if (hasControlCharacter(description)) {
      errors.push({ field: "addressDescription", code: "address_description.invalid_character", message: "the address description contains a control character" });
    } else if (description.trim() !== "") {
      addressDescription = description.trim();
    }
  }

  // 2. The address, by type.
  const rawAddress = input.address;
  let address: string | undefined;
  let family: 4 | 6 | undefined;
  if (typeOk && type !== "internet") {
    if (typeof rawAddress !== "string" || rawAddress.trim() === "") {
      errors.push({ field: "address", code: "address.required", message: `a ${type} resource needs an address` });
    } else if (type === "dns") {
      const checked = checkDnsAddress(rawAddress);
      if (checked.ok) address = checked.address;
      else errors.push({ field: "address", code: checked.code, message: checked.message });
    } else {
      const checked = type === "ip" ? checkIpAddress(rawAddress.trim()) : checkCidrAddress(rawAddress.trim());
      if (checked.ok) {
        address = checked.address;
        family = checked.family;
        if (checked.notice !== undefined) notices.push({ field: "address", ...checked.notice });
      } else {
        errors.push({ field: "address", code: checked.code, message: checked.message });
      }
    }
  } else if (type === "internet") {
    if (rawAddress !== undefined && rawAddress !== null && rawAddress !== "") {
      errors.push({ field: "address", code: "internet.address", message: "the Internet resource has no address; it routes everything the other resources do not" });
    }
    if (context.internetResourceExists === true) {
      errors.push({ field: "type", code: "internet.already_exists", message: "this account already has the Internet resource; add a policy for it instead" });
    }
  }

  // 3. Filters.
  const filters = validateFilters(input.filters, errors);
  if (type === "internet" && Array.isArray(input.filters) && input.filters.length > 0) {
    errors.push({ field: "filters", code: "internet.filters", message: "the Internet resource takes no filters; it carries all traffic" });
  }

  if (errors.length > 0) return { ok: false, errors };
  const common: ResourceCommon = { name: name!, filters };
  if (addressDescription !== undefined) common.addressDescription = addressDescription;
  let value: NormalizedResource;
  switch (type as ResourceType) {
    case "dns":
      value = { type: "dns", address: address!, ...common };
      break;
    case "ip":
    case "cidr":
      value = { type: type as "ip" | "cidr", address: address!, family: family!, ...common };
      break;
    case "internet":
      value = { type: "internet", ...common };
      break;
  }
  return { ok: true, value, notices };
}

type AddressCheck =
  | { ok: true; address: string; family: 4 | 6; notice?: { code: string; message: string } }
  | { ok: false; code: string; message: string };

/** A single address: brackets around IPv6 are tolerated, ports and zones are not. */
function checkIpAddress(text: string): AddressCheck {
  let bare = text;
  if (/^\[.*\]:[0-9]*$/.test(text) || /^[^:]*:[0-9]+$/.test(text)) {
    return { ok: false, code: "ip.port", message: `${show(text)} has a port; give the address alone, and restrict ports with filters` };
  }
  if (text.startsWith("[") && text.endsWith("]")) bare = text.slice(1, -1);
  if (bare.includes("%")) return { ok: false, code: "ip.zone", message: `${show(text)} has a zone index (%...); resources are routable addresses` };
  if (bare.includes("/")) {
    return { ok: false, code: "ip.prefix_length", message: `${show(text)} has a /length; create a CIDR resource for a range, or drop the /length` };
  }
  const address = parseIp(bare);
  if (address === undefined) return { ok: false, code: "ip.invalid", message: `${show(text)} is not an IPv4 or IPv6 address` };
  const range = reservedRangeOverlapping({ ...address, length: bits(address.family) });
  if (range !== undefined) return { ok: false, code: `ip.${range.code}`, message: `${show(text)} is in ${range.text}, ${range.why}` };
  return { ok: true, address: formatIp(address), family: address.family };
}

function checkCidrAddress(text: string): AddressCheck {
  const parsed = parseCidr(text);
  if (!parsed.ok) return parsed;
  const { prefix } = parsed;
  const canonical = formatPrefix(prefix);
  if (prefix.length === 0) {
    return { ok: false, code: "cidr.full_tunnel", message: `${canonical} is every address; use the Internet resource for full-tunnel traffic` };
  }
  const range = reservedRangeOverlapping(prefix);
  if (range !== undefined) {
    return { ok: false, code: `cidr.${range.code}`, message: `${canonical} overlaps ${range.text}, ${range.why}` };
  }
  const result: AddressCheck = { ok: true, address: canonical, family: prefix.family };
  if (parsed.masked) {
    result.notice = { code: "cidr.host_bits_masked", message: `${show(text)} has host bits set; stored as its network, ${canonical}` };
  }
  return result;
}

// --- Small helpers ---

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hasControlCharacter(text: string): boolean {
  return /\p{Cc}/u.test(text);
}

/** A quoted, shortened copy of input for an error message. */
export function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}
