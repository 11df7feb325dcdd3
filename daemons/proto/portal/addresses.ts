// Textual IP addresses, socket addresses and prefixes as the wire carries them. Written here rather
// than taken from node:net (daemons/proto is sans-IO) or server/ (which imports this folder, not the
// other way). Strict: dotted-quad IPv4 without leading zeros (`010.0.0.1` reads as octal to some
// parsers), IPv6 as RFC 4291 §2.2 writes it (one `::`, an optional dotted-quad tail, no zone id).
// Nothing is normalized: a validator accepts or refuses, and an accepted value travels as written.

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const DECIMAL_PORT = /^[1-9][0-9]{0,4}$/;
const PREFIX_LENGTH = /^(?:0|[1-9][0-9]{0,2})$/;

/** The longest IPv6 text: eight groups with a dotted-quad tail. */
const IPV6_MAX_CHARS = 45;

/** True for a dotted-quad IPv4 address: four decimal octets 0-255, no leading zeros. */
export function isIpv4(text: string): boolean {
  if (text.length > 15) return false;
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  return parts.every((part) => DECIMAL_OCTET.test(part) && Number(part) <= 255);
}

/** True for an IPv6 address in any RFC 4291 §2.2 form (no zone id, no brackets). */
export function isIpv6(text: string): boolean {
  if (text.length < 2 || text.length > IPV6_MAX_CHARS) return false;
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const compressed = halves.length === 2;
  let groups = 0;
  for (let h = 0; h < halves.length; h++) {
    const half = halves[h]!;
    if (half === "") continue;
    const parts = half.split(":");
    const last = h === halves.length - 1;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (HEX_GROUP.test(part)) groups += 1;
      else if (last && i === parts.length - 1 && isIpv4(part)) groups += 2;
      else return false;
    }
  }
  return compressed ? groups <= 7 : groups === 8;
}

/** True for an IPv4 or IPv6 address. */
export function isIp(text: string): boolean {
  return isIpv4(text) || isIpv6(text);
}

/** True for a port 1-65535 written in decimal without leading zeros. */
export function isPortText(text: string): boolean {
  return DECIMAL_PORT.test(text) && Number(text) <= 65535;
}

/** True for `ipv4:port` or `[ipv6]:port`. */
export function isSocketAddress(text: string): boolean {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) return false;
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (!isPortText(port)) return false;
  if (host.startsWith("[")) return host.endsWith("]") && isIpv6(host.slice(1, -1));
  return isIpv4(host);
}

/** True for `address/length` with a length the family allows (0-32, 0-128). */
export function isCidr(text: string): boolean {
  const slash = text.indexOf("/");
  if (slash <= 0) return false;
  const address = text.slice(0, slash);
  const length = text.slice(slash + 1);
  if (!PREFIX_LENGTH.test(length)) return false;
  if (isIpv4(address)) return Number(length) <= 32;
  return isIpv6(address) && Number(length) <= 128;
}
