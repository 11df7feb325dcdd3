// The in-band control message a client sends the gateway through its tunnel: which of its proxy IPs
// stand for which name of a DNS resource. It travels as a UDP datagram from the client's tunnel
// address to the gateway's, port CONTROL_PORT, so it is as authenticated as the tunnel (WireGuard,
// then the gateway's anti-spoofing). It may be lost or repeated; the client repeats it, and applying
// it twice is the same as once.
//
// Layout, version 1 (offsets in ./constants.ts), all lengths in bytes:
//   version (1) = 1 | type (1) = 1 (dns mapping) | resource_id (16, the UUID's bytes)
//   | name length (1) | name (ASCII, lower-case, no trailing dot)
//   | count (1) | count × (family (1) = 4 or 6 | address (4 or 16))
// Nothing may follow. A newer version is refused as such ("unsupported_version"), so a gateway
// older than its clients says why it ignores them.
//
// decodeControl never throws; encodeControl refuses what decodeControl would refuse.

import { formatIp, parseIp } from "../ip/address.js";
import {
  CONTROL_FAMILY_IPV4, CONTROL_FAMILY_IPV6, CONTROL_OFFSET_NAME_LENGTH, CONTROL_OFFSET_RESOURCE_ID, CONTROL_OFFSET_TYPE,
  CONTROL_OFFSET_VERSION, CONTROL_PROXY_IPS_MAX, CONTROL_RESOURCE_ID_LENGTH, CONTROL_TYPE_DNS_MAPPING, CONTROL_VERSION,
  DNS_LABEL_MAX_LENGTH, DNS_NAME_MAX_LENGTH,
} from "./constants.js";

/** A DNS resource's name and the proxy IPs (canonical text) the client mapped to it. */
export interface DnsMappingMessage {
  resource_id: string;
  name: string;
  proxy_ips: string[];
}

export type ControlError = "truncated" | "unsupported_version" | "unknown_type" | "bad_name" | "bad_address" | "too_many" | "trailing_bytes";

export type ControlResult = { ok: true; message: DnsMappingMessage } | { ok: false; error: ControlError };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/** True for a DNS name as the message carries it: lower-case LDH (and `_`) labels, no wildcard. */
export function isControlName(name: string): boolean {
  if (name.length === 0 || name.length > DNS_NAME_MAX_LENGTH) return false;
  return name.split(".").every((label) => label.length <= DNS_LABEL_MAX_LENGTH && LABEL.test(label));
}

/** Encodes a mapping; undefined if it could not be decoded back (bad id, name, address or too many). */
export function encodeControl(message: DnsMappingMessage): Uint8Array | undefined {
  if (!UUID.test(message.resource_id) || !isControlName(message.name) || message.proxy_ips.length > CONTROL_PROXY_IPS_MAX) return undefined;
  const addresses: Uint8Array[] = [];
  for (const text of message.proxy_ips) {
    const bytes = parseIp(text);
    if (!bytes) return undefined;
    addresses.push(bytes);
  }
  const size = CONTROL_OFFSET_NAME_LENGTH + 1 + message.name.length + 1 + addresses.reduce((n, a) => n + 1 + a.length, 0);
  const out = new Uint8Array(size);
  out[CONTROL_OFFSET_VERSION] = CONTROL_VERSION;
  out[CONTROL_OFFSET_TYPE] = CONTROL_TYPE_DNS_MAPPING;
  const hex = message.resource_id.replace(/-/g, "");
  for (let i = 0; i < CONTROL_RESOURCE_ID_LENGTH; i++) out[CONTROL_OFFSET_RESOURCE_ID + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  let at = CONTROL_OFFSET_NAME_LENGTH;
  out[at++] = message.name.length;
  for (let i = 0; i < message.name.length; i++) out[at++] = message.name.charCodeAt(i);
  out[at++] = addresses.length;
  for (const address of addresses) {
    out[at++] = address.length === 4 ? CONTROL_FAMILY_IPV4 : CONTROL_FAMILY_IPV6;
    out.set(address, at);
    at += address.length;
  }
  return out;
}

/** Decodes a control message; never throws. */
export function decodeControl(bytes: Uint8Array): ControlResult {
  const fail = (error: ControlError): ControlResult => ({ ok: false, error });
  if (bytes.length < 2) return fail("truncated");
  if (bytes[CONTROL_OFFSET_VERSION] !== CONTROL_VERSION) return fail("unsupported_version");
  if (bytes[CONTROL_OFFSET_TYPE] !== CONTROL_TYPE_DNS_MAPPING) return fail("unknown_type");
  if (bytes.length < CONTROL_OFFSET_NAME_LENGTH + 1) return fail("truncated");
  let hex = "";
  for (let i = 0; i < CONTROL_RESOURCE_ID_LENGTH; i++) hex += bytes[CONTROL_OFFSET_RESOURCE_ID + i]!.toString(16).padStart(2, "0");
  const resourceId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  let at = CONTROL_OFFSET_NAME_LENGTH;
  const nameLength = bytes[at++]!;
  if (at + nameLength + 1 > bytes.length) return fail("truncated");
  let name = "";
  for (let i = 0; i < nameLength; i++) name += String.fromCharCode(bytes[at++]!);
  if (!isControlName(name)) return fail("bad_name");
  const count = bytes[at++]!;
  if (count > CONTROL_PROXY_IPS_MAX) return fail("too_many");
  const proxies: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at >= bytes.length) return fail("truncated");
    const family = bytes[at++]!;
    const size = family === CONTROL_FAMILY_IPV4 ? 4 : family === CONTROL_FAMILY_IPV6 ? 16 : 0;
    if (size === 0) return fail("bad_address");
    if (at + size > bytes.length) return fail("truncated");
    proxies.push(formatIp(bytes.slice(at, at + size)));
    at += size;
  }
  if (at !== bytes.length) return fail("trailing_bytes");
  return { ok: true, message: { resource_id: resourceId, name, proxy_ips: proxies } };
}
