// The WireGuard cross-platform userspace API (wireguard.com/xplatform): the text protocol `wg`
// speaks to a userspace implementation over /var/run/wireguard/<iface>.sock. Requests are
// `get=1` or `set=1` followed by key=value lines, ended by a blank line; every answer ends with
// `errno=N` and a blank line.
//
// 1. UapiReader cuts the byte stream into requests.
// 2. parseSet turns a set request into a DeviceUpdate, or an errno.
// 3. WireGuardConfig applies updates (replace_peers, remove, update_only, replace_allowed_ips) and
//    formatGet writes the state back, in the order and shape wireguard-go uses (checked against
//    wireguard-go 0.0.20220316 and the real `wg` in test/interop/wg-tool.test.ts).
//
// Bytes in, strings out; no sockets here (daemons/io/uapi-socket.ts serves it).

import { KEY_SIZE } from "./constants.js";

/** errno values the protocol reports, negated as wireguard-go writes them. */
export const UAPI_OK = 0;
export const UAPI_EINVAL = -22;
export const UAPI_EPROTO = -71;

/** Requests larger than this are refused: a full configuration of thousands of peers fits easily. */
export const UAPI_MAX_REQUEST = 4 * 1024 * 1024;

export type UapiRequest = { op: "get" } | { op: "set"; lines: [string, string][] } | { op: "invalid"; reason: string };

/** Cuts a byte stream into requests; a connection may carry several. */
export class UapiReader {
  private buffered = "";
  private readonly decoder = new TextDecoder();

  /** Feeds bytes; returns the requests they complete. */
  push(bytes: Uint8Array): UapiRequest[] {
    this.buffered += this.decoder.decode(bytes, { stream: true });
    const out: UapiRequest[] = [];
    for (;;) {
      const end = this.buffered.indexOf("\n\n");
      if (end < 0) break;
      const text = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      out.push(parseRequest(text));
    }
    if (this.buffered.length > UAPI_MAX_REQUEST) {
      this.buffered = "";
      out.push({ op: "invalid", reason: `request over ${UAPI_MAX_REQUEST} bytes` });
    }
    return out;
  }
}

function parseRequest(text: string): UapiRequest {
  const lines: [string, string][] = [];
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) return { op: "invalid", reason: `not a key=value line: ${JSON.stringify(line.slice(0, 80))}` };
    lines.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  const [first, ...rest] = lines;
  if (first?.[0] === "get" && first[1] === "1" && rest.length === 0) return { op: "get" };
  if (first?.[0] === "set" && first[1] === "1") return { op: "set", lines: rest };
  return { op: "invalid", reason: `unknown operation ${JSON.stringify(first?.[0])}` };
}

/** An allowed-IP prefix, masked to its length. */
export interface Prefix {
  family: 4 | 6;
  address: Uint8Array;
  length: number;
}

export interface Endpoint {
  /** An IPv4 dotted quad or an IPv6 address without brackets or zone. */
  address: string;
  port: number;
}

export interface PeerUpdate {
  publicKey: Uint8Array;
  remove: boolean;
  updateOnly: boolean;
  presharedKey?: Uint8Array;
  endpoint?: Endpoint;
  /** Seconds; 0 turns it off. */
  persistentKeepaliveInterval?: number;
  replaceAllowedIps: boolean;
  allowedIps: Prefix[];
}

export interface DeviceUpdate {
  /** null removes the key (all-zero hex). */
  privateKey?: Uint8Array | null;
  listenPort?: number;
  fwmark?: number;
  replacePeers: boolean;
  peers: PeerUpdate[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; errno: number; reason: string };

const invalid = (reason: string): Parsed<never> => ({ ok: false, errno: UAPI_EINVAL, reason });

/** Parses the key=value lines of a set request. Device keys come first; public_key starts a peer. */
export function parseSet(lines: readonly [string, string][]): Parsed<DeviceUpdate> {
  const update: DeviceUpdate = { replacePeers: false, peers: [] };
  let peer: PeerUpdate | undefined;
  for (const [key, value] of lines) {
    if (key === "public_key") {
      const publicKey = parseKey(value);
      if (publicKey === undefined) return invalid(`public_key: not ${KEY_SIZE} bytes of hex`);
      peer = { publicKey, remove: false, updateOnly: false, replaceAllowedIps: false, allowedIps: [] };
      update.peers.push(peer);
      continue;
    }
    if (peer === undefined) {
      switch (key) {
        case "private_key": {
          const k = parseKey(value);
          if (k === undefined) return invalid("private_key: not 32 bytes of hex");
          update.privateKey = k.every((b) => b === 0) ? null : k;
          break;
        }
        case "listen_port": {
          const port = parseUint(value, 0xffff);
          if (port === undefined) return invalid(`listen_port: ${JSON.stringify(value)} is not a port`);
          update.listenPort = port;
          break;
        }
        case "fwmark": {
          const mark = parseUint(value, 0xffffffff);
          if (mark === undefined) return invalid(`fwmark: ${JSON.stringify(value)} is not a 32-bit number`);
          update.fwmark = mark;
          break;
        }
        case "replace_peers":
          if (value !== "true") return invalid("replace_peers: only 'true' is accepted");
          update.replacePeers = true;
          break;
        default:
          return invalid(`unknown device key ${JSON.stringify(key)}`);
      }
      continue;
    }
    switch (key) {
      case "remove":
        if (value !== "true") return invalid("remove: only 'true' is accepted");
        peer.remove = true;
        break;
      case "update_only":
        if (value !== "true") return invalid("update_only: only 'true' is accepted");
        peer.updateOnly = true;
        break;
      case "preshared_key": {
        const k = parseKey(value);
        if (k === undefined) return invalid("preshared_key: not 32 bytes of hex");
        peer.presharedKey = k;
        break;
      }
      case "endpoint": {
        const endpoint = parseEndpoint(value);
        if (endpoint === undefined) return invalid(`endpoint: ${JSON.stringify(value)} is not address:port`);
        peer.endpoint = endpoint;
        break;
      }
      case "persistent_keepalive_interval": {
        const seconds = parseUint(value, 0xffff);
        if (seconds === undefined) return invalid(`persistent_keepalive_interval: ${JSON.stringify(value)} is not 0..65535`);
        peer.persistentKeepaliveInterval = seconds;
        break;
      }
      case "replace_allowed_ips":
        if (value !== "true") return invalid("replace_allowed_ips: only 'true' is accepted");
        peer.replaceAllowedIps = true;
        break;
      case "allowed_ip": {
        const prefix = parsePrefix(value);
        if (prefix === undefined) return invalid(`allowed_ip: ${JSON.stringify(value)} is not a CIDR prefix`);
        peer.allowedIps.push(prefix);
        break;
      }
      case "protocol_version":
        if (value !== "1") return invalid(`protocol_version: only 1 exists, got ${JSON.stringify(value)}`);
        break;
      default:
        return invalid(`unknown peer key ${JSON.stringify(key)}`);
    }
  }
  return { ok: true, value: update };
}

/** One peer as the device holds it. */
export interface PeerConfig {
  publicKey: Uint8Array;
  presharedKey: Uint8Array;
  endpoint?: Endpoint;
  persistentKeepaliveInterval: number;
  allowedIps: Prefix[];
}

/** What `get` reports beyond the configuration: counters kept by the data plane. */
export interface PeerCounters {
  /** Wall-clock time of the last handshake, Unix nanoseconds; 0n for never. */
  lastHandshakeUnixNanos: bigint;
  txBytes: bigint;
  rxBytes: bigint;
}

/** The device configuration the UAPI reads and writes. */
export class WireGuardConfig {
  privateKey: Uint8Array | null = null;
  listenPort = 0;
  fwmark = 0;
  /** Peers by hex public key, in insertion order. */
  readonly peers = new Map<string, PeerConfig>();

  /** Applies a parsed set request; all of it, in order. */
  apply(update: DeviceUpdate): void {
    if (update.privateKey !== undefined) this.privateKey = update.privateKey;
    if (update.listenPort !== undefined) this.listenPort = update.listenPort;
    if (update.fwmark !== undefined) this.fwmark = update.fwmark;
    if (update.replacePeers) this.peers.clear();
    for (const p of update.peers) {
      const id = toHex(p.publicKey);
      if (p.remove) {
        this.peers.delete(id);
        continue;
      }
      let peer = this.peers.get(id);
      if (peer === undefined) {
        if (p.updateOnly) continue;
        peer = { publicKey: p.publicKey, presharedKey: new Uint8Array(KEY_SIZE), persistentKeepaliveInterval: 0, allowedIps: [] };
        this.peers.set(id, peer);
      }
      if (p.presharedKey !== undefined) peer.presharedKey = p.presharedKey;
      if (p.endpoint !== undefined) peer.endpoint = p.endpoint;
      if (p.persistentKeepaliveInterval !== undefined) peer.persistentKeepaliveInterval = p.persistentKeepaliveInterval;
      if (p.replaceAllowedIps) peer.allowedIps = [];
      for (const prefix of p.allowedIps) {
        // A prefix belongs to one peer only: adding it here takes it from any other.
        for (const other of this.peers.values()) other.allowedIps = other.allowedIps.filter((q) => !samePrefix(q, prefix));
        peer.allowedIps.push(prefix);
      }
    }
  }

  /** The `get` answer, counters supplied by the caller per hex public key. */
  formatGet(counters: (publicKeyHex: string) => PeerCounters | undefined): string {
    const out: string[] = [];
    if (this.privateKey !== null) out.push(`private_key=${toHex(this.privateKey)}`);
    out.push(`listen_port=${this.listenPort}`);
    if (this.fwmark !== 0) out.push(`fwmark=${this.fwmark}`);
    for (const [id, peer] of this.peers) {
      const c = counters(id) ?? { lastHandshakeUnixNanos: 0n, txBytes: 0n, rxBytes: 0n };
      out.push(`public_key=${id}`, `preshared_key=${toHex(peer.presharedKey)}`, "protocol_version=1");
      if (peer.endpoint !== undefined) out.push(`endpoint=${formatEndpoint(peer.endpoint)}`);
      out.push(
        `last_handshake_time_sec=${c.lastHandshakeUnixNanos / 1_000_000_000n}`,
        `last_handshake_time_nsec=${c.lastHandshakeUnixNanos % 1_000_000_000n}`,
        `tx_bytes=${c.txBytes}`,
        `rx_bytes=${c.rxBytes}`,
        `persistent_keepalive_interval=${peer.persistentKeepaliveInterval}`,
      );
      for (const prefix of peer.allowedIps) out.push(`allowed_ip=${formatPrefix(prefix)}`);
    }
    return out.map((l) => `${l}\n`).join("");
  }
}

/** The closing line of every answer. */
export function formatErrno(errno: number): string {
  return `errno=${errno}\n\n`;
}

// --- Field codecs, shared with the wg-quick file parser (wg-quick.ts) ---

function parseKey(hex: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{64}$/.test(hex)) return undefined;
  const out = new Uint8Array(KEY_SIZE);
  for (let i = 0; i < KEY_SIZE; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lowercase hex, two digits per byte. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** A decimal integer from 0 to max, digits only (no sign, no spaces); undefined otherwise. */
export function parseUint(text: string, max: number): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

/** A dotted-quad IPv4 address as 4 bytes. */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = parseUint(parts[i]!, 255);
    if (n === undefined || parts[i]!.length > 3) return undefined;
    out[i] = n;
  }
  return out;
}

/** An IPv6 address ("::" and a dotted IPv4 tail allowed, no zone) as 16 bytes. */
export function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]!);
  const tail = halves.length === 2 ? words(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function formatIpv6(bytes: Uint8Array): string {
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // RFC 5952: the longest run of two or more zero words becomes "::" (the first such run on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** A CIDR prefix `address/length`, masked to its length. */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const addressText = text.slice(0, slash);
  const v4 = parseIpv4(addressText);
  const address = v4 ?? parseIpv6(addressText);
  if (address === undefined) return undefined;
  const family = v4 !== undefined ? 4 : 6;
  const length = parseUint(text.slice(slash + 1), family === 4 ? 32 : 128);
  if (length === undefined) return undefined;
  const masked = address.slice();
  for (let bit = length; bit < masked.length * 8; bit++) masked[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family, address: masked, length };
}

/** `address/length`; the address is written as held, masked or not. */
export function formatPrefix(prefix: Prefix): string {
  return `${prefix.family === 4 ? prefix.address.join(".") : formatIpv6(prefix.address)}/${prefix.length}`;
}

function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.length === b.length && a.address.every((x, i) => x === b.address[i]);
}

/** `a.b.c.d:port` or `[v6]:port` (a zone is dropped); IP literals only, no names. */
export function parseEndpoint(text: string): Endpoint | undefined {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return undefined;
  const port = parseUint(text.slice(colon + 1), 0xffff);
  let host = text.slice(0, colon);
  if (port === undefined) return undefined;
  if (host.startsWith("[") && host.endsWith("]")) {
    host = host.slice(1, -1);
    const zone = host.indexOf("%");
    if (zone >= 0) host = host.slice(0, zone);
    const v6 = parseIpv6(host);
    return v6 === undefined ? undefined : { address: formatIpv6(v6), port };
  }
  const v4 = parseIpv4(host);
  return v4 === undefined ? undefined : { address: v4.join("."), port };
}

/** The endpoint as parseEndpoint reads it: brackets around IPv6. */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.address.includes(":") ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}
