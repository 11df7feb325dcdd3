// IP addresses as bytes and as text. The wire schema carries addresses as text in any RFC 4291 §2.2
// form (../portal/addresses.ts validates them); packets carry bytes. Text we write is canonical
// (dotted quad; RFC 5952 for IPv6), so two spellings of one address compare equal once parsed.

import { isIpv4, isIpv6 } from "../portal/addresses.js";
import { formatAddress } from "../stun/attributes.js";
import { parseIpv4, parseIpv6 } from "../wireguard/uapi.js";

/** Parses an IPv4 or IPv6 address into 4 or 16 bytes; undefined if it is neither (strict: no leading zeros in a quad). */
export function parseIp(text: string): Uint8Array | undefined {
  if (isIpv4(text)) return parseIpv4(text);
  return isIpv6(text) ? parseIpv6(text) : undefined;
}

/** Writes 4 or 16 bytes as canonical text: dotted quad, or RFC 5952 IPv6 (longest zero run as ::). */
export const formatIp: (bytes: Uint8Array) => string = formatAddress;

/** Byte-wise equality of two addresses (a different family is never equal). */
export function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A prefix: its network bytes and length in bits. */
export interface IpPrefix {
  address: Uint8Array;
  length: number;
}

/** Parses `address/length`; undefined if malformed or the length exceeds the family's bits. */
export function parsePrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf("/");
  if (slash <= 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || !/^(?:0|[1-9][0-9]{0,2})$/.test(lengthText)) return undefined;
  const length = Number(lengthText);
  if (length > address.length * 8) return undefined;
  return { address, length };
}

/** ::ffff:0:0/96, the IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2). */
const MAPPED_PREFIX_BYTES = 12;
const MAPPED_PREFIX_BITS = MAPPED_PREFIX_BYTES * 8;

function isMapped(address: Uint8Array): boolean {
  if (address.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (address[i] !== 0) return false;
  return address[10] === 0xff && address[11] === 0xff;
}

/**
 * The IPv4 prefix an IPv4-mapped IPv6 prefix of /96 or longer stands for; any other prefix as it is.
 * A resource written as ::ffff:10.0.0.0/104 means 10.0.0.0/8: the engine's routing table stores it so,
 * and the sans-IO tables must agree with it. Packets are still matched by their own version.
 */
export function unmapPrefix(prefix: IpPrefix): IpPrefix {
  if (prefix.length < MAPPED_PREFIX_BITS || !isMapped(prefix.address)) return prefix;
  return { address: prefix.address.slice(MAPPED_PREFIX_BYTES), length: prefix.length - MAPPED_PREFIX_BITS };
}

/** True if `address` lies in `prefix` (host bits of the prefix are ignored). */
export function prefixContains(prefix: IpPrefix, address: Uint8Array): boolean {
  if (prefix.address.length !== address.length) return false;
  const whole = prefix.length >>> 3;
  for (let i = 0; i < whole; i++) if (prefix.address[i] !== address[i]) return false;
  const rest = prefix.length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (prefix.address[whole]! & mask) === (address[whole]! & mask);
}
