// wg-quick configuration files (wg-quick(8), wg(8) "CONFIGURATION FILE FORMAT"): the [Interface]
// and [Peer] text `wardline wg` reads, turned into the same DeviceUpdate a UAPI set request yields,
// plus the interface addresses and MTU that wg-quick itself applies.
//
// 1. Each line loses its comment (from "#") and surrounding whitespace; blank lines are skipped.
// 2. A "[...]" line opens a section: [Interface] exactly once, [Peer] any number of times; closing
//    a [Peer] checks it had a PublicKey.
// 3. Any other line is `Key = Value`, the key matched without regard to case and parsed by its
//    section with the field codecs of uapi.ts and base64.ts. wg-quick's own scripting keys (DNS,
//    Table, the hooks, SaveConfig) are accepted and reported in `ignored`; anything else is an error.
// 4. After the last line: [Interface] must have appeared, and the MTU must suit the addresses.
//
// formatWgQuick writes a configuration back in the same form, `wg showconf` style.
//
// Text in, values out: reading the file and resolving names are the caller's business, which is
// why an Endpoint must be an IP literal.

import { decodeBase64, encodeBase64 } from "./base64.js";
import { KEY_SIZE } from "./constants.js";
import {
  formatEndpoint,
  formatPrefix,
  parseEndpoint,
  parseIpv4,
  parseIpv6,
  parsePrefix,
  parseUint,
  toHex,
  type DeviceUpdate,
  type Endpoint,
  type PeerUpdate,
  type Prefix,
} from "./uapi.js";

/** A parsed wg-quick file: the device settings and what wg-quick adds around them. */
export interface WgQuickConfig {
  /** privateKey, listenPort and fwmark as given; replacePeers, and replaceAllowedIps on every peer. */
  update: DeviceUpdate;
  /** Every Address entry in order; unlike an allowed-IP prefix, the host bits are kept (10.0.0.2/24). */
  addresses: Prefix[];
  mtu?: number;
  /** One warning per accepted key that `wardline wg` does not act on, naming its line. */
  ignored: string[];
}

export type WgQuickParsed = { ok: true; value: WgQuickConfig } | { ok: false; line: number; reason: string };

/** The smallest datagram every IPv4 host must accept (RFC 791). */
const MTU_MIN_IPV4 = 576;
/** The minimum link MTU of IPv6 (RFC 8200 §5). */
const MTU_MIN_IPV6 = 1280;
const MTU_MAX = 65535;
const PORT_MAX = 0xffff;
const FWMARK_MAX = 0xffffffff;
const KEEPALIVE_MAX = 0xffff;

const INTERFACE_KEYS = ["PrivateKey", "ListenPort", "FwMark", "Address", "MTU"] as const;
/** Keys wg-quick(8) handles itself, by running commands or editing routes: accepted, not applied. */
const WG_QUICK_ONLY_KEYS = ["DNS", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig"] as const;
const PEER_KEYS = ["PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"] as const;
type InterfaceKey = (typeof INTERFACE_KEYS)[number] | (typeof WG_QUICK_ONLY_KEYS)[number];
type PeerKey = (typeof PEER_KEYS)[number];

const INTERFACE_BY_LOWER = new Map<string, InterfaceKey>([...INTERFACE_KEYS, ...WG_QUICK_ONLY_KEYS].map((k) => [k.toLowerCase(), k]));
const PEER_BY_LOWER = new Map<string, PeerKey>(PEER_KEYS.map((k) => [k.toLowerCase(), k]));

/** A [Peer] being read; it becomes a PeerUpdate once its section closes with a PublicKey. */
interface PeerDraft {
  line: number;
  publicKey?: Uint8Array;
  publicKeyLine?: number;
  presharedKey?: Uint8Array;
  endpoint?: Endpoint;
  persistentKeepaliveInterval?: number;
  allowedIps: Prefix[];
}

type Failure = { ok: false; line: number; reason: string };
const fail = (line: number, reason: string): Failure => ({ ok: false, line, reason });

/** Parses a wg-quick configuration file; errors name the line, the key and what is wrong. */
export function parseWgQuick(text: string): WgQuickParsed {
  const update: DeviceUpdate = { replacePeers: true, peers: [] };
  const addresses: Prefix[] = [];
  const ignored: string[] = [];
  let mtu: { value: number; line: number } | undefined;
  let firstIpv6Address: number | undefined;
  let interfaceLine: number | undefined;
  let section: "interface" | "peer" | undefined;
  let peer: PeerDraft | undefined;
  /** The [Peer] line of every public key seen so far, by hex. */
  const peerByKey = new Map<string, number>();

  const closePeer = (): Failure | undefined => {
    if (peer === undefined) return undefined;
    const { publicKey, presharedKey, endpoint, persistentKeepaliveInterval, allowedIps } = peer;
    if (publicKey === undefined) return fail(peer.line, "[Peer] has no PublicKey");
    const done: PeerUpdate = { publicKey, remove: false, updateOnly: false, replaceAllowedIps: true, allowedIps };
    if (presharedKey !== undefined) done.presharedKey = presharedKey;
    if (endpoint !== undefined) done.endpoint = endpoint;
    if (persistentKeepaliveInterval !== undefined) done.persistentKeepaliveInterval = persistentKeepaliveInterval;
    update.peers.push(done);
    peer = undefined;
    return undefined;
  };

  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const at = i + 1;
    // 1. Comment and whitespace; a byte-order mark, as Windows editors write, counts as whitespace.
    let line = lines[i]!;
    const hash = line.indexOf("#");
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === "") continue;

    // 2. Section headers.
    if (line.startsWith("[")) {
      const closed = closePeer();
      if (closed !== undefined) return closed;
      const name = line.toLowerCase();
      if (name === "[interface]") {
        if (interfaceLine !== undefined) return fail(at, `[Interface] appears again; the first is at line ${interfaceLine}`);
        interfaceLine = at;
        section = "interface";
      } else if (name === "[peer]") {
        section = "peer";
        peer = { line: at, allowedIps: [] };
      } else {
        return fail(at, `unknown section ${show(line)}; only [Interface] and [Peer] exist`);
      }
      continue;
    }

    // 3. Key = Value.
    const eq = line.indexOf("=");
    if (eq < 0) return fail(at, `${show(line)} is neither a [Section] header nor Key = Value`);
    const keyText = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (keyText === "") return fail(at, `no key before "=" in ${show(line)}`);
    const lower = keyText.toLowerCase();

    if (section === undefined) {
      return fail(at, `${keyText} is outside any section; keys follow an [Interface] or [Peer] header`);
    }

    if (section === "interface") {
      const key = INTERFACE_BY_LOWER.get(lower);
      if (key === undefined) {
        const peerKey = PEER_BY_LOWER.get(lower);
        return fail(at, peerKey !== undefined ? `${peerKey} belongs in a [Peer] section, not [Interface]` : `unknown key ${show(keyText)} in [Interface]`);
      }
      switch (key) {
        case "PrivateKey": {
          const k = parseKey(key, value);
          if (typeof k === "string") return fail(at, k);
          // All zero is how wg and the UAPI spell "no private key".
          update.privateKey = k.every((b) => b === 0) ? null : k;
          break;
        }
        case "ListenPort": {
          const port = parseUint(value, PORT_MAX);
          if (port === undefined) return fail(at, `ListenPort: ${show(value)} is not a port (0..${PORT_MAX})`);
          update.listenPort = port;
          break;
        }
        case "FwMark": {
          const mark = parseFwmark(value);
          if (mark === undefined) return fail(at, `FwMark: ${show(value)} is not a 32-bit number (decimal or 0x hex) or "off"`);
          update.fwmark = mark;
          break;
        }
        case "Address":
          for (const item of splitList(value)) {
            const address = parseAddress(item);
            if (address === undefined) return fail(at, `Address: ${show(item)} is not an IP address, with or without /length`);
            addresses.push(address);
            if (address.family === 6) firstIpv6Address ??= at;
          }
          break;
        case "MTU": {
          const n = parseUint(value, MTU_MAX);
          if (n === undefined || n < MTU_MIN_IPV4) return fail(at, `MTU: ${show(value)} is not a number from ${MTU_MIN_IPV4} to ${MTU_MAX}`);
          mtu = { value: n, line: at };
          break;
        }
        default:
          ignored.push(`line ${at}: ${key} is a wg-quick feature \`wardline wg\` does not apply; ignored`);
      }
      continue;
    }

    const draft = peer!;
    const key = PEER_BY_LOWER.get(lower);
    if (key === undefined) {
      const interfaceKey = INTERFACE_BY_LOWER.get(lower);
      return fail(at, interfaceKey !== undefined ? `${interfaceKey} belongs in the [Interface] section, not [Peer]` : `unknown key ${show(keyText)} in [Peer]`);
    }
    switch (key) {
      case "PublicKey": {
        const k = parseKey(key, value);
        if (typeof k === "string") return fail(at, k);
        if (draft.publicKeyLine !== undefined) return fail(at, `PublicKey appears twice in the [Peer] at line ${draft.line}; the first is at line ${draft.publicKeyLine}`);
        const other = peerByKey.get(toHex(k));
        if (other !== undefined) return fail(at, `PublicKey ${encodeBase64(k)} is already the key of the [Peer] at line ${other}`);
        peerByKey.set(toHex(k), draft.line);
        draft.publicKey = k;
        draft.publicKeyLine = at;
        break;
      }
      case "PresharedKey": {
        const k = parseKey(key, value);
        if (typeof k === "string") return fail(at, k);
        draft.presharedKey = k;
        break;
      }
      case "AllowedIPs":
        for (const item of splitList(value)) {
          const prefix = parseAllowedIp(item);
          if (prefix === undefined) return fail(at, `AllowedIPs: ${show(item)} is not an IP prefix (address/length, or a bare address)`);
          draft.allowedIps.push(prefix);
        }
        break;
      case "Endpoint": {
        const endpoint = parseEndpoint(value);
        if (endpoint === undefined) return fail(at, `Endpoint: ${endpointProblem(value)}`);
        draft.endpoint = endpoint;
        break;
      }
      case "PersistentKeepalive": {
        const seconds = value.toLowerCase() === "off" ? 0 : parseUint(value, KEEPALIVE_MAX);
        if (seconds === undefined) return fail(at, `PersistentKeepalive: ${show(value)} is not a number of seconds (0..${KEEPALIVE_MAX}) or "off"`);
        draft.persistentKeepaliveInterval = seconds;
        break;
      }
    }
  }

  // 4. What only the whole file can tell.
  const closed = closePeer();
  if (closed !== undefined) return closed;
  if (interfaceLine === undefined) return fail(1, "no [Interface] section; a configuration needs exactly one");
  if (mtu !== undefined && firstIpv6Address !== undefined && mtu.value < MTU_MIN_IPV6) {
    return fail(mtu.line, `MTU: ${mtu.value} is below ${MTU_MIN_IPV6}, the IPv6 minimum, and line ${firstIpv6Address} gives an IPv6 Address`);
  }

  const value: WgQuickConfig = { update, addresses, ignored };
  if (mtu !== undefined) value.mtu = mtu.value;
  return { ok: true, value };
}

/**
 * Writes a configuration that parseWgQuick reads back to the same update, addresses and MTU.
 * `ignored` describes a source file, so it is not written; neither are the replace flags, which
 * every wg-quick file implies.
 */
export function formatWgQuick(config: WgQuickConfig): string {
  const { update } = config;
  const out = ["[Interface]"];
  if (update.privateKey !== undefined) out.push(`PrivateKey = ${encodeBase64(update.privateKey ?? new Uint8Array(KEY_SIZE))}`);
  if (update.listenPort !== undefined) out.push(`ListenPort = ${update.listenPort}`);
  if (update.fwmark !== undefined) out.push(`FwMark = 0x${update.fwmark.toString(16)}`);
  if (config.addresses.length > 0) out.push(`Address = ${config.addresses.map(formatPrefix).join(", ")}`);
  if (config.mtu !== undefined) out.push(`MTU = ${config.mtu}`);
  for (const peer of update.peers) {
    out.push("", "[Peer]", `PublicKey = ${encodeBase64(peer.publicKey)}`);
    if (peer.presharedKey !== undefined) out.push(`PresharedKey = ${encodeBase64(peer.presharedKey)}`);
    if (peer.allowedIps.length > 0) out.push(`AllowedIPs = ${peer.allowedIps.map(formatPrefix).join(", ")}`);
    if (peer.endpoint !== undefined) out.push(`Endpoint = ${formatEndpoint(peer.endpoint)}`);
    if (peer.persistentKeepaliveInterval !== undefined) out.push(`PersistentKeepalive = ${peer.persistentKeepaliveInterval}`);
  }
  return out.map((l) => `${l}\n`).join("");
}

// --- Field parsers ---

/** A quoted, shortened copy of input for an error message. */
function show(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

/** A comma-separated list; an empty value is an empty list, as `AllowedIPs =` is in wg(8). */
function splitList(value: string): string[] {
  return value === "" ? [] : value.split(",").map((item) => item.trim());
}

/** A 32-byte key in base64, or the reason it is not one. */
function parseKey(key: string, value: string): Uint8Array | string {
  if (value === "") return `${key}: no value; a key is ${KEY_SIZE} bytes of base64 (as \`wg genkey\` prints)`;
  const bytes = decodeBase64(value);
  if (bytes === undefined) return `${key}: ${show(value)} is not valid base64`;
  if (bytes.length !== KEY_SIZE) return `${key}: decodes to ${bytes.length} bytes; a key is ${KEY_SIZE} (44 base64 characters)`;
  return bytes;
}

/** wg(8): decimal, 0x hex, or "off" for none. */
function parseFwmark(value: string): number | undefined {
  if (value.toLowerCase() === "off") return 0;
  if (/^0x[0-9a-fA-F]{1,8}$/.test(value)) return parseInt(value.slice(2), 16);
  return parseUint(value, FWMARK_MAX);
}

/** `address[/length]`, host bits kept; a bare address is a host: /32 or /128. */
function parseAddress(text: string): Prefix | undefined {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIpv4(addressText);
  const address = v4 ?? parseIpv6(addressText);
  if (address === undefined) return undefined;
  const family = v4 !== undefined ? 4 : 6;
  const maxLength = family === 4 ? 32 : 128;
  const length = slash < 0 ? maxLength : parseUint(text.slice(slash + 1), maxLength);
  return length === undefined ? undefined : { family, address, length };
}

/** A prefix, masked as uapi.ts masks it; a bare address is a host route, as wg(8) reads one. */
function parseAllowedIp(text: string): Prefix | undefined {
  if (text.includes("/")) return parsePrefix(text);
  return parsePrefix(`${text}/${text.includes(":") ? 128 : 32}`);
}

/** Why parseEndpoint refused a value, in the terms a person editing the file needs. */
function endpointProblem(value: string): string {
  const colon = value.lastIndexOf(":");
  if (value === "") return `no value; give address:port`;
  if (colon < 0) return `${show(value)} has no port; give a.b.c.d:port or [IPv6]:port`;
  const host = value.slice(0, colon);
  const port = value.slice(colon + 1);
  if (host.startsWith("[") !== host.endsWith("]")) return `${show(value)} has unbalanced brackets; give [IPv6]:port`;
  if (!host.startsWith("[") && host.includes(":")) return `${show(value)}: an IPv6 address needs brackets, [IPv6]:port`;
  if (parseUint(port, PORT_MAX) === undefined) return `port ${show(port)} is not 0..${PORT_MAX}`;
  if (host.startsWith("[")) return `${show(host)} is not an IPv6 address`;
  if (/^[0-9.]*$/.test(host)) return `${show(host)} is not an IPv4 address`;
  return `${show(host)} is a hostname; only IP literals are accepted (a.b.c.d:port or [IPv6]:port), so resolve it first`;
}
