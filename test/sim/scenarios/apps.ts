// What applications on the client host do in the scenarios, over world.ts's daemons:
// 1. sendUdp writes one UDP datagram with a text payload into the client's TUN device;
// 2. lookup asks the sentinel resolver of one family for a name's A or AAAA records, as the OS
//    would, and waits for the answer;
// 3. tunPackets and forwardedPackets read back what reached the client's TUN device and what the
//    gateway forwarded to its resources, parsed: UDP with its text, ICMP with the packet it quotes;
// 4. sendUntil retries a datagram once a second, as an application does, until its echo (or an
//    ICMP error about it) comes back.

import { sentinelAddresses } from "../../../daemons/proto/dns/address-plan.js";
import { decodeDnsMessage, encodeDnsMessage, queryMessage } from "../../../daemons/proto/dns/codec.js";
import { CLASS_IN, DNS_PORT, TYPE_A, TYPE_AAAA } from "../../../daemons/proto/dns/constants.js";
import { internetChecksum, pseudoHeaderSum } from "../../../daemons/proto/ip/checksum.js";
import { ICMP_HEADER_LENGTH, PROTOCOL_ICMP, PROTOCOL_ICMPV6, PROTOCOL_UDP, UDP_HEADER_LENGTH } from "../../../daemons/proto/ip/constants.js";
import { parseIpPacket, type IpPacket } from "../../../daemons/proto/ip/packet.js";
import { buildPacket } from "../../../daemons/proto/ip/testing.js";
import { CLIENT_TUNNEL, type World } from "./world.js";

/** One UDP datagram an application sends through the tunnel. */
export interface AppDatagram {
  dst: string;
  srcPort: number;
  dstPort: number;
  text: string;
}

/** A packet seen at the client's TUN device or forwarded by the gateway, parsed. */
export interface SeenPacket {
  at: number;
  bytes: Uint8Array;
  packet: IpPacket;
  /** UDP: the payload as text. */
  text?: string;
  /** ICMP or ICMPv6: the packet the error quotes, when it parses. */
  quoted?: IpPacket;
  /** ICMP or ICMPv6 quoting UDP: the quoted payload as text. */
  quotedText?: string;
  /** ICMP or ICMPv6: whether the message's checksum verifies (ICMPv6's over its pseudo-header). */
  checksumOk?: boolean;
}

/** Writes one UDP datagram from the client's tunnel address of dst's family into its TUN device. */
export function sendUdp(w: World, d: AppDatagram): void {
  const src = d.dst.includes(":") ? CLIENT_TUNNEL.ipv6 : CLIENT_TUNNEL.ipv4;
  const packet = buildPacket({ src, dst: d.dst, protocol: PROTOCOL_UDP, srcPort: d.srcPort, dstPort: d.dstPort, payload: new TextEncoder().encode(d.text) });
  w.net.act((now) => w.client.tunWrite(now, packet));
}

/** The last DNS query ID each world's applications used: a run replays alone as it did among others. */
const queryIds = new WeakMap<World, number>();

/**
 * Looks a name up through the client's sentinel resolver (over IPv4 or IPv6), as the OS would; the
 * answer's addresses, or undefined when none came within `timeout` ms.
 */
export function lookup(w: World, name: string, type: typeof TYPE_A | typeof TYPE_AAAA, over: 4 | 6 = 4, timeout = 5_000): string[] | undefined {
  const id = ((queryIds.get(w) ?? 0) + 1) & 0xffff;
  queryIds.set(w, id);
  const sentinels = sentinelAddresses(1);
  const server = over === 4 ? sentinels.ipv4[0]! : sentinels.ipv6[0]!;
  const src = over === 4 ? CLIENT_TUNNEL.ipv4 : CLIENT_TUNNEL.ipv6;
  const query = encodeDnsMessage(queryMessage(id, { name, type, class: CLASS_IN }));
  const mark = w.clientAttachment.events.length;
  w.net.act((now) => w.client.tunWrite(now, buildPacket({ src, dst: server, protocol: PROTOCOL_UDP, srcPort: 53_000 + (id % 1_000), dstPort: DNS_PORT, payload: query })));
  let answer: string[] | undefined;
  const read = (): boolean => {
    for (const got of tunPackets(w, mark)) {
      const p = got.packet;
      if (p.protocol !== PROTOCOL_UDP || p.srcPort !== DNS_PORT) continue;
      const decoded = decodeDnsMessage(got.bytes.slice(p.payloadOffset + UDP_HEADER_LENGTH, p.length));
      if (!decoded.ok || decoded.message.id !== id) continue;
      answer = decoded.message.answers.flatMap((r) => (r.data.kind === "a" || r.data.kind === "aaaa" ? [r.data.address] : []));
      return true;
    }
    return false;
  };
  return read() || w.net.runUntil(read, timeout) ? answer : undefined;
}

/** Parses one packet, with its UDP text or the packet its ICMP error quotes. */
function parseSeen(at: number, bytes: Uint8Array): SeenPacket | undefined {
  const parsed = parseIpPacket(bytes);
  if (!parsed.ok) return undefined;
  const packet = parsed.packet;
  const out: SeenPacket = { at, bytes, packet };
  if (packet.protocol === PROTOCOL_UDP) {
    out.text = new TextDecoder().decode(bytes.slice(packet.payloadOffset + UDP_HEADER_LENGTH, packet.length));
  } else if (packet.protocol === PROTOCOL_ICMP || packet.protocol === PROTOCOL_ICMPV6) {
    const initial = packet.version === 6 ? pseudoHeaderSum(packet.src, packet.dst, PROTOCOL_ICMPV6, packet.length - packet.payloadOffset) : 0;
    out.checksumOk = internetChecksum(bytes, packet.payloadOffset, packet.length, initial) === 0;
    const quotedBytes = bytes.slice(packet.payloadOffset + ICMP_HEADER_LENGTH, packet.length);
    const quoted = parseIpPacket(quotedBytes);
    if (quoted.ok) {
      const q = (out.quoted = quoted.packet);
      if (q.protocol === PROTOCOL_UDP) out.quotedText = new TextDecoder().decode(quotedBytes.slice(q.payloadOffset + UDP_HEADER_LENGTH, q.length));
    }
  }
  return out;
}

/** The packets of one kind among an attachment's recorded events, from the `since`-th on, parsed. */
function packetsOf(events: World["clientAttachment"]["events"], type: "tun" | "forwarded", since: number): SeenPacket[] {
  const out: SeenPacket[] = [];
  for (const e of events.slice(since)) {
    const parsed = e.event.type === type && "packet" in e.event ? parseSeen(e.at, e.event.packet) : undefined;
    if (parsed !== undefined) out.push(parsed);
  }
  return out;
}

/** What reached the client's TUN device from the `since`-th recorded event on. */
export function tunPackets(w: World, since = 0): SeenPacket[] {
  return packetsOf(w.clientAttachment.events, "tun", since);
}

/** What the gateway forwarded to its resources from the `since`-th recorded event on. */
export function forwardedPackets(w: World, since = 0): SeenPacket[] {
  return packetsOf(w.gatewayAttachment.events, "forwarded", since);
}

/** How an application tells the packet it waits for: an echo of its text, or an ICMP error quoting it. */
export type Awaited = "echo" | "icmp";

/**
 * Sends `d` once a second (its text numbered, `<text> #<n>`) until the client's TUN device gets an
 * echo of one of them or an ICMP error quoting one, as an application retries; that packet, or
 * undefined after `timeout` ms.
 */
export function sendUntil(w: World, d: AppDatagram, awaited: Awaited, timeout = 30_000): SeenPacket | undefined {
  let cursor = w.clientAttachment.events.length;
  const texts = new Set<string>();
  const until = w.net.now + timeout;
  let found: SeenPacket | undefined;
  const check = (): boolean => {
    const fresh = tunPackets(w, cursor);
    cursor = w.clientAttachment.events.length;
    found ??= fresh.find((p) => (awaited === "echo" ? p.packet.protocol === PROTOCOL_UDP && texts.has(p.text ?? "") : texts.has(p.quotedText ?? "")));
    return found !== undefined;
  };
  for (let n = 1; w.net.now < until; n++) {
    const text = `${d.text} #${n}`;
    texts.add(text);
    sendUdp(w, { ...d, text });
    if (w.net.runUntil(check, Math.min(1_000, until - w.net.now))) return found;
  }
  return undefined;
}
