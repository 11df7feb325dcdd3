// Reverse-mapping names (RFC 1035 §3.5, RFC 3596 §2.5): an IPv4 address is its four octets in
// decimal, last first, under in-addr.arpa; an IPv6 address its 32 nibbles in hex, last first,
// under ip6.arpa. Only names of a whole address are addresses; a shorter one (a zone delegation,
// like 96.100.in-addr.arpa) is not.

import { formatIp } from "./address-plan.js";
import { IN_ADDR_ARPA, IP6_ARPA } from "./constants.js";
import { lowerLabel } from "./name.js";

const IN_ADDR_LABELS = IN_ADDR_ARPA.split(".");
const IP6_LABELS = IP6_ARPA.split(".");

function endsWith(labels: readonly string[], suffix: readonly string[]): boolean {
  if (labels.length < suffix.length) return false;
  const from = labels.length - suffix.length;
  return suffix.every((s, i) => lowerLabel(labels[from + i]!) === s);
}

/** The address a full reverse name stands for, in canonical text; undefined for any other name. */
export function addressOfReverseName(labels: readonly string[]): string | undefined {
  if (labels.length === 4 + IN_ADDR_LABELS.length && endsWith(labels, IN_ADDR_LABELS)) {
    const bytes = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      const label = labels[3 - i]!;
      if (!/^(?:0|[1-9][0-9]{0,2})$/.test(label) || Number(label) > 255) return undefined;
      bytes[i] = Number(label);
    }
    return formatIp(bytes);
  }
  if (labels.length === 32 + IP6_LABELS.length && endsWith(labels, IP6_LABELS)) {
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 32; i++) {
      const label = labels[31 - i]!;
      if (!/^[0-9a-fA-F]$/.test(label)) return undefined;
      bytes[i >> 1]! |= parseInt(label, 16) << (i & 1 ? 0 : 4);
    }
    return formatIp(bytes);
  }
  return undefined;
}

/** The reverse name of 4 or 16 address octets, as labels. */
export function reverseNameOf(bytes: Uint8Array): string[] {
  if (bytes.length === 4) return [...Array.from(bytes).reverse().map(String), ...IN_ADDR_LABELS];
  const nibbles: string[] = [];
  for (const b of bytes) nibbles.push((b >> 4).toString(16), (b & 0xf).toString(16));
  return [...nibbles.reverse(), ...IP6_LABELS];
}
