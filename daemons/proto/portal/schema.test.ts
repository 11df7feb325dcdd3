// The event schema: every example accepted as written (and with unknown fields added everywhere,
// which are dropped), every field's refusal named by its path, the strict leaves refused by code,
// and seeded fuzzing of random and mutated frames: nothing throws, and what is accepted re-encodes
// and re-validates to itself.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng, type Rng } from "../../../test/support/prng.js";
import { MAX_PORTAL_FRAME_BYTES } from "./constants.js";
import { EXAMPLE_PAYLOADS } from "./examples.js";
import { decodeFrame, encodeFrame } from "./frames.js";
import { DIRECTIONS, eventNames, isRfc3339, ROLES, topicOf, validateMessage, validatePayload, type DeviceRole, type Direction } from "./schema.js";

beforeEach(reportSeedOnFailure);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const clone = <T>(value: T): T => structuredClone(value);

/** Every (role, direction, event) with its example. */
const CASES = ROLES.flatMap((role) =>
  DIRECTIONS.flatMap((direction) =>
    eventNames(role, direction).map((event) => ({
      role,
      direction,
      event: event as string,
      payload: (EXAMPLE_PAYLOADS[role][direction] as unknown as Record<string, { [key: string]: Json }>)[event]!,
    })),
  ),
);

/** Paths of every node under `value`, as the validator names them, with a setter. */
function nodes(value: Json, path: string, out: { path: string; parent: Json[] | Record<string, Json>; key: string | number }[] = []) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push({ path: `${path}[${i}]`, parent: value, key: i });
      nodes(item, `${path}[${i}]`, out);
    });
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      out.push({ path: `${path}.${key}`, parent: value, key });
      nodes(item, `${path}.${key}`, out);
    }
  }
  return out;
}

/** Adds an unknown field to every object under `value`. */
function withUnknownFields(value: Json): Json {
  if (Array.isArray(value)) return value.map(withUnknownFields);
  if (value !== null && typeof value === "object") {
    const out: Record<string, Json> = { zz_unknown: { nested: [1, "x"] } };
    for (const [key, item] of Object.entries(value)) out[key] = withUnknownFields(item);
    return out;
  }
  return value;
}

/** Fields that may be absent, by path with list indices dropped. */
const OPTIONAL = new Set([
  "payload.connected_gateway_ids",
  "payload.violated_conditions",
  "payload.filters[].ports",
  "payload.resources[].filters[].ports",
  "payload.resource.filters[].ports",
  "payload.authorizations[].resource.filters[].ports",
  "payload.ipv4",
  "payload.ipv6",
]);
const shapeOf = (path: string) => path.replace(/\[\d+\]/g, "[]");

describe("portal schema: known-good payloads", () => {
  it("has an example for every event, and the table is what DESIGN.md lists", () => {
    expect(eventNames("client", "to_device").sort()).toEqual(
      ["authorization_created", "authorization_creation_failed", "config_changed", "disconnect", "ice_candidates", "init", "invalidate_ice_candidates", "phx_reply", "relays_presence", "resource_created_or_updated", "resource_deleted"],
    );
    expect(eventNames("client", "from_device").sort()).toEqual(["heartbeat", "ice_candidates", "invalidate_ice_candidates", "phx_join", "request_authorization"]);
    expect(eventNames("gateway", "to_device").sort()).toEqual(
      ["config_changed", "create_authorization", "disconnect", "ice_candidates", "init", "invalidate_ice_candidates", "phx_reply", "reject_access", "relays_presence"],
    );
    expect(eventNames("gateway", "from_device").sort()).toEqual(["authorization_created", "authorization_creation_failed", "heartbeat", "ice_candidates", "invalidate_ice_candidates", "phx_join"]);
    expect(eventNames("relay", "to_device").sort()).toEqual(["disconnect", "init", "phx_reply"]);
    expect(eventNames("relay", "from_device").sort()).toEqual(["heartbeat", "load", "phx_join"]);
    for (const c of CASES) expect(c.payload, `${c.role} ${c.direction} ${c.event}`).toBeDefined();
  });

  it.each(CASES)("$role $direction $event: accepted as written, through a frame too", ({ role, direction, event, payload }) => {
    const result = validatePayload(role, direction, event, clone(payload));
    expect(result).toEqual({ ok: true, value: payload });
    const frame = { topic: topicOf(role, event), event, payload, ref: "12" };
    const decoded = decodeFrame(encodeFrame(frame), MAX_PORTAL_FRAME_BYTES);
    expect(decoded).toEqual({ ok: true, frame });
    if (decoded.ok) expect(validateMessage(role, direction, decoded.frame)).toEqual({ ok: true, value: frame });
  });

  it.each(CASES)("$role $direction $event: unknown fields are dropped at every level", ({ role, direction, event, payload }) => {
    const noisy = withUnknownFields(payload);
    const result = validatePayload(role, direction, event, noisy);
    if (event === "phx_reply") {
      // A reply's response is the request's business and is kept whole.
      expect(result.ok && (result.value as { response: unknown }).response).toEqual((noisy as { response: unknown }).response);
      return;
    }
    expect(result).toEqual({ ok: true, value: payload });
  });
});

describe("portal schema: refusals name the field", () => {
  it.each(CASES)("$role $direction $event: each field missing or of the wrong type", ({ role, direction, event, payload }) => {
    for (const { path, key } of nodes(payload, "payload")) {
      if (path.startsWith("payload.response")) continue; // free-form
      // Wrong type: a value no field of the schema takes (filters' ports are strings; every list, object, string or number refuses a boolean).
      const wrong = clone(payload);
      const target = nodes(wrong, "payload").find((n) => n.path === path)!;
      (target.parent as Record<string | number, Json>)[target.key] = true;
      const result = validatePayload(role, direction, event, wrong);
      expect(result.ok, path).toBe(false);
      if (!result.ok) {
        expect(result.error.path, path).toBe(path);
        expect(["type", "enum"]).toContain(result.error.code);
      }
      // Missing: only object fields can be.
      if (typeof key !== "string") continue;
      const missing = clone(payload);
      const at = nodes(missing, "payload").find((n) => n.path === path)!;
      delete (at.parent as Record<string, Json>)[key];
      const without = validatePayload(role, direction, event, missing);
      if (OPTIONAL.has(shapeOf(path))) {
        expect(without.ok, `${path} is optional`).toBe(true);
      } else {
        expect(without, path).toMatchObject({ ok: false, error: { code: "missing", path } });
      }
    }
  });

  const authorization = EXAMPLE_PAYLOADS.gateway.to_device.create_authorization;
  const created = EXAMPLE_PAYLOADS.client.to_device.authorization_created;
  const resource = EXAMPLE_PAYLOADS.client.to_device.resource_created_or_updated;
  const relay = EXAMPLE_PAYLOADS.client.to_device.init.relays[0]!;
  const candidates = EXAMPLE_PAYLOADS.client.from_device.ice_candidates;
  type Refusal = [string, DeviceRole, Direction, string, unknown, string, string];
  const refusals: Refusal[] = [
    ["uppercase uuid", "client", "to_device", "resource_deleted", { id: resource.id.toUpperCase() }, "uuid", "payload.id"],
    ["uuid without dashes", "client", "to_device", "resource_deleted", { id: resource.id.replaceAll("-", "") }, "uuid", "payload.id"],
    ["31-byte key", "gateway", "to_device", "create_authorization", { ...authorization, client: { ...authorization.client, public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" } }, "key", "payload.client.public_key"],
    ["key with non-zero trailing bits", "gateway", "to_device", "create_authorization", { ...authorization, client: { ...authorization.client, public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=" } }, "key", "payload.client.public_key"],
    ["unpadded key", "gateway", "to_device", "create_authorization", { ...authorization, client: { ...authorization.client, preshared_key: authorization.client.preshared_key.slice(0, 43) } }, "key", "payload.client.preshared_key"],
    ["url-safe key", "client", "to_device", "authorization_created", { ...created, preshared_key: created.preshared_key.replace(/[+/]/g, "-").replace(/^./, "-") }, "key", "payload.preshared_key"],
    ["IPv6 in an IPv4 field", "client", "to_device", "authorization_created", { ...created, gateway_ipv4: "fd00::2" }, "ipv4", "payload.gateway_ipv4"],
    ["IPv4 in an IPv6 field", "client", "to_device", "authorization_created", { ...created, gateway_ipv6: "100.64.0.2" }, "ipv6", "payload.gateway_ipv6"],
    ["octal-looking IPv4", "gateway", "to_device", "create_authorization", { ...authorization, client: { ...authorization.client, ipv4: "100.064.0.7" } }, "ipv4", "payload.client.ipv4"],
    ["upstream DNS not an address", "client", "to_device", "config_changed", { interface: { ipv4: "100.64.0.7", ipv6: "fd00::7", upstream_dns: ["dns.google"] } }, "ip", "payload.interface.upstream_dns[0]"],
    ["February 30", "client", "to_device", "authorization_created", { ...created, expires_at: "2026-02-30T00:00:00Z" }, "time", "payload.expires_at"],
    ["hour 24", "client", "to_device", "authorization_created", { ...created, expires_at: "2026-01-01T24:00:00Z" }, "time", "payload.expires_at"],
    ["no zone", "client", "to_device", "authorization_created", { ...created, expires_at: "2026-01-01T00:00:00" }, "time", "payload.expires_at"],
    ["epoch number as time", "client", "to_device", "authorization_created", { ...created, expires_at: 1767225600 }, "type", "payload.expires_at"],
    ["short ICE password", "client", "to_device", "authorization_created", { ...created, client_ice: { username: "abcd", password: "tooShort" } }, "format", "payload.client_ice.password"],
    ["ICE username with a colon", "client", "to_device", "authorization_created", { ...created, gateway_ice: { username: "ab:cd", password: "gPasswordOfTwentyTwoChars" } }, "format", "payload.gateway_ice.username"],
    ["unknown failure reason", "client", "to_device", "authorization_creation_failed", { resource_id: resource.id, reason: "nope" }, "enum", "payload.reason"],
    ["unknown condition property", "client", "to_device", "authorization_creation_failed", { resource_id: resource.id, reason: "denied", violated_conditions: [{ property: "mood", operator: "is", values: [] }] }, "enum", "payload.violated_conditions[0].property"],
    ["resource type", "client", "to_device", "resource_created_or_updated", { ...resource, type: "url" }, "enum", "payload.type"],
    ["dns resource with an IP-less pattern character", "client", "to_device", "resource_created_or_updated", { ...resource, address: "Intranet.example.com" }, "dns_name", "payload.address"],
    ["ip resource with a CIDR", "client", "to_device", "resource_created_or_updated", { ...resource, type: "ip", address: "10.0.0.0/8" }, "ip", "payload.address"],
    ["cidr over /32", "client", "to_device", "resource_created_or_updated", { ...resource, type: "cidr", address: "10.0.0.0/33" }, "cidr", "payload.address"],
    ["internet resource with an address", "client", "to_device", "resource_created_or_updated", { ...resource, type: "internet", address: "0.0.0.0/0" }, "format", "payload.address"],
    ["dns resource without an address", "client", "to_device", "resource_created_or_updated", { ...resource, address: null }, "missing", "payload.address"],
    ["icmp with ports", "client", "to_device", "resource_created_or_updated", { ...resource, filters: [{ protocol: "icmp", ports: ["1"] }] }, "format", "payload.filters[0].ports"],
    ["port range backwards", "client", "to_device", "resource_created_or_updated", { ...resource, filters: [{ protocol: "tcp", ports: ["80-79"] }] }, "port", "payload.filters[0].ports[0]"],
    ["port 0", "client", "to_device", "resource_created_or_updated", { ...resource, filters: [{ protocol: "udp", ports: ["0"] }] }, "port", "payload.filters[0].ports[0]"],
    ["protocol", "client", "to_device", "resource_created_or_updated", { ...resource, filters: [{ protocol: "sctp" }] }, "enum", "payload.filters[0].protocol"],
    ["empty name", "client", "to_device", "resource_created_or_updated", { ...resource, name: "" }, "empty", "payload.name"],
    ["long name", "client", "to_device", "resource_created_or_updated", { ...resource, name: "n".repeat(256) }, "too_long", "payload.name"],
    ["relay type", "client", "to_device", "relays_presence", { connected: [{ ...relay, type: "stun" }], disconnected_ids: [] }, "enum", "payload.connected[0].type"],
    ["relay IPv6 address without brackets", "client", "to_device", "relays_presence", { connected: [{ ...relay, addr: "2001:db8::5:3478" }], disconnected_ids: [] }, "socket_address", "payload.connected[0].addr"],
    ["relay without a port", "client", "to_device", "relays_presence", { connected: [{ ...relay, addr: "203.0.113.5" }], disconnected_ids: [] }, "socket_address", "payload.connected[0].addr"],
    ["33 candidates", "client", "from_device", "ice_candidates", { ...candidates, candidates: Array(33).fill(candidates.candidates[0]) }, "too_many", "payload.candidates"],
    ["no candidates", "client", "from_device", "invalidate_ice_candidates", { ...candidates, candidates: [] }, "empty", "payload.candidates"],
    ["513-character candidate", "gateway", "from_device", "ice_candidates", { client_id: resource.id, candidates: ["c".repeat(513)] }, "too_long", "payload.candidates[0]"],
    ["candidate with a newline", "gateway", "from_device", "ice_candidates", { client_id: resource.id, candidates: ["candidate:1\r\na=x"] }, "format", "payload.candidates[0]"],
    ["null optional list", "client", "from_device", "request_authorization", { resource_id: resource.id, connected_gateway_ids: null }, "type", "payload.connected_gateway_ids"],
    ["relay join without an address", "relay", "from_device", "phx_join", { port: 3478 }, "missing", "payload.ipv4"],
    ["relay join port 0", "relay", "from_device", "phx_join", { ipv4: "203.0.113.5", port: 0 }, "port", "payload.port"],
    ["relay join fractional port", "relay", "from_device", "phx_join", { ipv4: "203.0.113.5", port: 3478.5 }, "port", "payload.port"],
    ["reply status", "gateway", "to_device", "phx_reply", { status: "maybe", response: {} }, "enum", "payload.status"],
    ["payload not an object", "client", "from_device", "heartbeat", [], "type", "payload"],
    ["unknown event", "client", "from_device", "create_authorization", {}, "unknown_event", "event"],
    ["inherited name", "client", "from_device", "toString", {}, "unknown_event", "event"],
    ["prototype key", "client", "from_device", "__proto__", {}, "unknown_event", "event"],
    ["relay load with a negative count", "relay", "from_device", "load", { allocations: -1, channels: 0, bytes_per_second: 0 }, "range", "payload.allocations"],
    ["relay load with a fractional rate", "relay", "from_device", "load", { allocations: 0, channels: 0, bytes_per_second: 0.5 }, "range", "payload.bytes_per_second"],
    ["relay load without its channels", "relay", "from_device", "load", { allocations: 0, bytes_per_second: 0 }, "missing", "payload.channels"],
    ["relay load rate as a string", "relay", "from_device", "load", { allocations: 0, channels: 0, bytes_per_second: "1" }, "type", "payload.bytes_per_second"],
    ["a client event from a relay", "relay", "from_device", "request_authorization", { resource_id: resource.id }, "unknown_event", "event"],
  ];

  it.each(refusals)("refuses %s", (_what, role, direction, event, payload, code, path) => {
    const result = validatePayload(role, direction, event, payload);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toMatchObject({ code, path });
      expect(result.error.message.length).toBeGreaterThan(0);
    }
  });

  it("refuses an unknown role or direction as unknown_event, without throwing", () => {
    expect(validatePayload("admin" as DeviceRole, "to_device", "init", {})).toMatchObject({ ok: false, error: { code: "unknown_event" } });
    expect(validatePayload("client", "sideways" as Direction, "init", {})).toMatchObject({ ok: false, error: { code: "unknown_event" } });
  });

  it("checks the topic an event travels on", () => {
    const ok = { topic: "client", event: "request_authorization", payload: { resource_id: resource.id }, ref: "1" };
    expect(validateMessage("client", "from_device", ok).ok).toBe(true);
    expect(validateMessage("client", "from_device", { ...ok, topic: "gateway" })).toMatchObject({ ok: false, error: { code: "wrong_topic", path: "topic" } });
    expect(validateMessage("client", "from_device", { topic: "client", event: "heartbeat", payload: {}, ref: "2" })).toMatchObject({ ok: false, error: { code: "wrong_topic" } });
    expect(validateMessage("client", "from_device", { topic: "phoenix", event: "heartbeat", payload: {}, ref: "2" }).ok).toBe(true);
    expect(validateMessage("client", "to_device", { topic: "phoenix", event: "phx_reply", payload: { status: "ok", response: {} }, ref: "2" }).ok).toBe(true);
  });

  it("reads RFC 3339 as the RFC writes it", () => {
    for (const good of ["2024-02-29T00:00:00Z", "2026-01-01T23:59:59.999999999-12:30", "2000-02-29T12:00:00+00:00"]) expect(isRfc3339(good), good).toBe(true);
    for (const bad of ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-01-01t00:00:00z", "2026-01-01 00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T00:60:00Z", "2026-06-30T23:59:60Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+24:00", "2026-1-01T00:00:00Z"]) {
      expect(isRfc3339(bad), bad).toBe(false);
    }
  });
});

// --- Fuzz ---

function randomString(r: Rng): string {
  const pools = ["abcdefghij_", "0123456789", "-:./[]{}\"\\", "é漢😀\u0000\ud800"];
  let out = "";
  const length = r.int(0, r.bool(0.9) ? 12 : 600);
  for (let i = 0; i < length; i++) {
    const pool = r.pick(pools);
    out += pool[r.int(0, pool.length - 1)];
  }
  return out;
}

function randomJson(r: Rng, depth: number): Json {
  switch (r.int(0, depth > 6 ? 4 : 7)) {
    case 0: return null;
    case 1: return r.bool();
    case 2: return r.pick([0, -1, 1.5, 3478, 65536, 1e308, Number.MAX_SAFE_INTEGER]);
    case 3: case 4: return randomString(r);
    case 5: return Array.from({ length: r.int(0, 4) }, () => randomJson(r, depth + 1));
    default: {
      const out: Record<string, Json> = {};
      for (let i = r.int(0, 5); i > 0; i--) out[r.bool(0.5) ? r.pick(["id", "type", "address", "payload", "topic", "event", "ref", "candidates", "__proto__", "constructor"]) : randomString(r)] = randomJson(r, depth + 1);
      return out;
    }
  }
}

/** One structural mutation of a JSON value: replace, delete, or add somewhere inside it. */
function mutate(r: Rng, value: Json): Json {
  const copy = clone(value);
  const all = nodes(copy, "$");
  if (all.length === 0) return randomJson(r, 0);
  const target = r.pick(all);
  const parent = target.parent as Record<string | number, Json>;
  switch (r.int(0, 3)) {
    case 0: parent[target.key] = randomJson(r, 3); break;
    case 1:
      if (Array.isArray(target.parent)) target.parent.splice(target.key as number, 1);
      else delete parent[target.key];
      break;
    case 2: {
      const current = parent[target.key]!;
      if (typeof current === "string") parent[target.key] = r.bool() ? current + randomString(r) : current.slice(0, r.int(0, current.length));
      else if (typeof current === "number") parent[target.key] = r.pick([current + 1, current - 1, -current, current / 2]);
      else parent[target.key] = randomJson(r, 3);
      break;
    }
    default:
      if (Array.isArray(target.parent)) target.parent.push(clone(target.parent[0] ?? null));
      else parent[randomString(r)] = randomJson(r, 3);
  }
  return copy;
}

/** Decode, then validate against every role and direction; accepted values must be fixed points. */
function checkNeverThrowsAndIsStable(r: Rng, text: string, detail: string): number {
  let accepted = 0;
  const decoded = decodeFrame(text, MAX_PORTAL_FRAME_BYTES);
  if (!decoded.ok) return 0;
  for (const role of ROLES) {
    for (const direction of DIRECTIONS) {
      const result = validateMessage(role, direction, decoded.frame);
      if (!result.ok) {
        expect(typeof result.error.path, r.where(detail)).toBe("string");
        continue;
      }
      accepted++;
      const again = decodeFrame(encodeFrame(result.value), MAX_PORTAL_FRAME_BYTES);
      expect(again.ok, r.where(detail)).toBe(true);
      if (!again.ok) continue;
      expect(validateMessage(role, direction, again.frame), r.where(detail)).toEqual({ ok: true, value: result.value });
    }
  }
  return accepted;
}

describe("portal schema: fuzz", () => {
  it("random JSON frames never throw; what is accepted is a fixed point", () => {
    const r = rng("portal/schema/random");
    for (let i = 0; i < 3000; i++) {
      const frame = r.bool(0.7)
        ? { topic: r.pick(["client", "gateway", "relay", "phoenix", randomString(r)]), event: r.pick([...CASES.map((c) => c.event), randomString(r)]), payload: randomJson(r, 1), ref: r.bool() ? null : randomString(r) }
        : randomJson(r, 0);
      const text = JSON.stringify(frame);
      expect(() => checkNeverThrowsAndIsStable(r, text, `#${i}`), r.where(`#${i}`)).not.toThrow();
    }
  });

  it("mutated valid frames never throw; what is accepted is a fixed point", () => {
    const r = rng("portal/schema/mutated");
    let accepted = 0;
    for (let i = 0; i < 6000; i++) {
      const c = r.pick(CASES);
      let payload: Json = c.payload;
      for (let k = r.int(1, 3); k > 0; k--) payload = mutate(r, payload);
      const text = JSON.stringify({ topic: topicOf(c.role, c.event), event: c.event, payload, ref: "9" });
      accepted += checkNeverThrowsAndIsStable(r, text, `#${i} ${c.role} ${c.event}`);
    }
    // Mutations that touch only unknown fields or free text are still valid: the test exercises both sides.
    expect(accepted).toBeGreaterThan(100);
  });

  it("byte-level damage to valid frames never throws", () => {
    const r = rng("portal/schema/bytes");
    for (let i = 0; i < 4000; i++) {
      const c = r.pick(CASES);
      let text = JSON.stringify({ topic: topicOf(c.role, c.event), event: c.event, payload: c.payload, ref: "3" });
      for (let k = r.int(1, 4); k > 0; k--) {
        const at = r.int(0, text.length);
        const op = r.int(0, 2);
        const chunk = r.pick(["{", "}", "[", "]", '"', ",", ":", "\\", "0", "null", "\"zz\":1,", randomString(r)]);
        if (op === 0) text = text.slice(0, at) + chunk + text.slice(at);
        else if (op === 1) text = text.slice(0, at) + text.slice(at + r.int(1, 8));
        else text = text.slice(0, at) + chunk + text.slice(at + chunk.length);
      }
      checkNeverThrowsAndIsStable(r, text, `#${i} ${c.role} ${c.event}`);
    }
  });
});
