// IPv4 (RFC 791) and IPv6 (RFC 8200) packets and addresses for the cryptokey routing tests, written
// with DataView and shared with no engine code. The wire offsets are spelled out again on purpose.

/** An IPv4 header (no options, UDP, header checksum filled in) followed by payloadLength bytes. */
export function ipv4Packet(src: Uint8Array, dst: Uint8Array, payloadLength: number, fill = 0xab): Uint8Array {
  const packet = new Uint8Array(20 + payloadLength).fill(fill);
  const view = new DataView(packet.buffer);
  view.setUint8(0, 0x45); // version 4, IHL 5
  view.setUint8(1, 0);
  view.setUint16(2, packet.length); // total length
  view.setUint32(4, 0x12344000); // identification, don't fragment
  view.setUint8(8, 64); // TTL
  view.setUint8(9, 17); // UDP
  view.setUint16(10, 0);
  packet.set(src, 12);
  packet.set(dst, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += view.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  view.setUint16(10, ~sum & 0xffff);
  return packet;
}

/** An IPv6 fixed header (UDP next header) followed by payloadLength bytes. */
export function ipv6Packet(src: Uint8Array, dst: Uint8Array, payloadLength: number, fill = 0xcd): Uint8Array {
  const packet = new Uint8Array(40 + payloadLength).fill(fill);
  const view = new DataView(packet.buffer);
  view.setUint32(0, 0x60000000); // version 6, traffic class 0, flow label 0
  view.setUint16(4, payloadLength);
  view.setUint8(6, 17);
  view.setUint8(7, 64); // hop limit
  packet.set(src, 8);
  packet.set(dst, 24);
  return packet;
}

/** Parses dotted-quad IPv4 or full/compressed IPv6 text, independently of the binding's parser. */
export function ip(text: string): Uint8Array {
  if (!text.includes(":")) {
    const parts = text.split(".").map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 ${text}`);
    return Uint8Array.from(parts);
  }
  // node's URL parser canonicalises IPv6 (dotted tails included) to eight hex groups, "::" compressed.
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head, tail] = host.includes("::") ? host.split("::") : [host, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const word = parseInt(g, 16);
    out[2 * i] = word >>> 8;
    out[2 * i + 1] = word & 0xff;
  });
  return out;
}
