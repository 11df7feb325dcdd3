// A resource's filters, compiled once per authorization, and the check each packet goes through:
// an empty list allows everything; otherwise TCP and UDP need a filter of their protocol whose ports
// (none: all) hold the destination port, ICMP and ICMPv6 need an icmp filter, and any other protocol
// is refused.

import { PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_TCP, PROTOCOL_UDP } from "../ip/constants.js";
import type { IpPacket } from "../ip/packet.js";
import type { Filter } from "../portal/schema.js";

/** An inclusive port range. */
export interface PortRange {
  start: number;
  end: number;
}

/** What a filter list lets through; `undefined` for a protocol: not at all; an empty range list: every port. */
export interface CompiledFilters {
  all: boolean;
  tcp: PortRange[] | undefined;
  udp: PortRange[] | undefined;
  icmp: boolean;
}

/** Parses "443" or "8000-8080"; undefined if malformed. */
export function parsePortRange(text: string): PortRange | undefined {
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 1 || end > 65535 || start > end) return undefined;
  return { start, end };
}

/** Compiles a filter list. A malformed range (the schema refuses them) is skipped, so it allows nothing. */
export function compileFilters(filters: readonly Filter[]): CompiledFilters {
  const out: CompiledFilters = { all: filters.length === 0, tcp: undefined, udp: undefined, icmp: false };
  for (const filter of filters) {
    if (filter.protocol === "icmp") {
      out.icmp = true;
      continue;
    }
    const ports = filter.ports ?? [];
    const ranges = ports.map(parsePortRange).filter((r): r is PortRange => r !== undefined);
    // No ports: every port, written as the full range so that several filters merge by concatenation.
    const add = ports.length === 0 ? [{ start: 0, end: 65535 }] : ranges;
    out[filter.protocol] = [...(out[filter.protocol] ?? []), ...add];
  }
  return out;
}

/** True if the filters let this packet through. */
export function filtersAllow(filters: CompiledFilters, packet: IpPacket): boolean {
  if (filters.all) return true;
  switch (packet.protocol) {
    case PROTOCOL_TCP:
      return inRanges(filters.tcp, packet.dstPort);
    case PROTOCOL_UDP:
      return inRanges(filters.udp, packet.dstPort);
    case PROTOCOL_ICMP:
      return packet.version === 4 && filters.icmp;
    case PROTOCOL_ICMPV6:
      return packet.version === 6 && filters.icmp;
    default:
      return false;
  }
}

function inRanges(ranges: PortRange[] | undefined, port: number | undefined): boolean {
  if (ranges === undefined || port === undefined) return false;
  return ranges.some((r) => port >= r.start && port <= r.end);
}
