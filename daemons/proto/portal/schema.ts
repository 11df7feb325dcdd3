// The portal ↔ device event schema: one TypeScript type and one validator per event, in a table keyed
// by the device's role (client, gateway, relay), the direction (to_device: portal → device;
// from_device: device → portal) and the event name. The portal validates what it receives and the
// daemons validate what they receive, with the same table (DESIGN.md, "Wire protocol").
//
// 1. Validators are small combinators: each takes an unknown JSON value and the path it sits at and
//    returns the typed value or the first error, naming the path (`payload.client.public_key`).
//    They never throw (STYLE.md 8).
// 2. Objects keep only the fields the schema names: unknown fields are dropped, so an older reader
//    accepts a newer writer. Optional fields are absent, never null, unless the type says null.
// 3. Leaves are strict: lowercase UUIDs, IPv4 and IPv6 in their own fields, keys of exactly 32 bytes
//    in canonical base64, RFC 3339 times, RFC 8839 ICE credentials, enums, bounded strings and lists.
// 4. The event types, then the table, then validatePayload and validateMessage over it.

import { isCidr, isIp, isIpv4, isIpv6, isPortText, isSocketAddress } from "./addresses.js";
import {
  ADDRESS_DESCRIPTION_MAX_CHARS, AUTHORIZATIONS_MAX, CANDIDATE_MAX_CHARS, CANDIDATES_MAX, CONDITION_VALUE_MAX_CHARS,
  CONDITION_VALUES_MAX, CONDITIONS_MAX, CONNECTED_GATEWAYS_MAX, DNS_LABEL_MAX_CHARS, DNS_NAME_MAX_CHARS, EVENT_HEARTBEAT,
  EVENT_JOIN, EVENT_REPLY, FILTERS_MAX, ICE_CREDENTIAL_MAX_CHARS, ICE_PWD_MIN_CHARS, ICE_UFRAG_MIN_CHARS, NAME_MAX_CHARS,
  PHOENIX_TOPIC, PORT_RANGES_MAX, REASON_MAX_CHARS, RELAYS_MAX, RESOURCES_MAX, SITES_MAX, TURN_PASSWORD_MAX_CHARS,
  TURN_USERNAME_MAX_CHARS, UPSTREAM_DNS_MAX,
} from "./constants.js";

// --- 1. Results and combinators ---

/** Why a payload was refused: `code` is stable, `path` names the field (`payload.resources[2].id`). */
export interface SchemaError {
  code: SchemaErrorCode;
  path: string;
  message: string;
}

export type SchemaErrorCode =
  | "unknown_event" // no such event for this role and direction
  | "wrong_topic" // the event does not travel on this topic
  | "missing" // a required field is absent
  | "type" // wrong JSON type
  | "empty" // an empty string or list where one item is needed
  | "too_long" // a string over its bound
  | "too_many" // a list over its bound
  | "enum" // not one of the allowed values
  | "uuid" // not a lowercase UUID
  | "ipv4" // not an IPv4 address
  | "ipv6" // not an IPv6 address
  | "ip" // not an IP address
  | "cidr" // not address/length
  | "socket_address" // not ipv4:port or [ipv6]:port
  | "port" // not a port 1-65535
  | "key" // not 32 bytes of canonical base64
  | "time" // not an RFC 3339 date-time
  | "dns_name" // not a DNS name pattern
  | "format" // a string that breaks its field's own syntax
  | "range"; // a number that is not a whole number within its field's bounds

export type Checked<T> = { ok: true; value: T } | { ok: false; error: SchemaError };

/** Validates an unknown value found at `path`. */
export type Check<T> = (value: unknown, path: string) => Checked<T>;

/** Marks an object field that may be absent. */
interface Optional<T> {
  optional: Check<T>;
}

/** A field list for `object`: optional keys of T take `optional(check)`, the others a Check. */
type Shape<T> = { [K in keyof T]-?: undefined extends T[K] ? Optional<Exclude<T[K], undefined>> : Check<T[K]> };

const fail = (code: SchemaErrorCode, path: string, message: string): { ok: false; error: SchemaError } => ({
  ok: false,
  error: { code, path, message },
});
const pass = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optional<T>(check: Check<T>): Optional<T> {
  return { optional: check };
}

/** An object with exactly the fields of `shape`; others are dropped. */
function object<T>(shape: Shape<T>): Check<T> {
  const entries = Object.entries(shape) as [string, Check<unknown> | Optional<unknown>][];
  return (value, path) => {
    if (!isPlainObject(value)) return fail("type", path, `${path} must be an object, not ${typeName(value)}`);
    const out: Record<string, unknown> = {};
    for (const [key, field] of entries) {
      const at = `${path}.${key}`;
      const present = Object.hasOwn(value, key) && value[key] !== undefined;
      const check = typeof field === "function" ? field : field.optional;
      if (!present) {
        if (typeof field === "function") return fail("missing", at, `${at} is required`);
        continue;
      }
      const result = check(value[key], at);
      if (!result.ok) return result;
      out[key] = result.value;
    }
    return pass(out as T);
  };
}

/** A list of `min` to `max` items, each checked. */
function list<T>(item: Check<T>, max: number, min = 0): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) return fail("type", path, `${path} must be a list, not ${typeName(value)}`);
    if (value.length < min) return fail("empty", path, `${path} needs at least ${min} item${min === 1 ? "" : "s"}`);
    if (value.length > max) return fail("too_many", path, `${path} has ${value.length} items; at most ${max}`);
    const out: T[] = [];
    for (let i = 0; i < value.length; i++) {
      const result = item(value[i], `${path}[${i}]`);
      if (!result.ok) return result;
      out.push(result.value);
    }
    return pass(out);
  };
}

/** A string of `min` to `max` UTF-16 code units, optionally restricted to one syntax. */
function string(max: number, min = 1, syntax?: { code: SchemaErrorCode; test: (text: string) => boolean; what: string }): Check<string> {
  return (value, path) => {
    if (typeof value !== "string") return fail("type", path, `${path} must be a string, not ${typeName(value)}`);
    // A fixed-syntax field names its syntax whatever is wrong with it; the bounds only save the parse.
    if (syntax && (value.length < min || value.length > max || !syntax.test(value))) return fail(syntax.code, path, `${path} must be ${syntax.what}`);
    if (value.length < min) return fail("empty", path, `${path} must have at least ${min} character${min === 1 ? "" : "s"}`);
    if (value.length > max) return fail("too_long", path, `${path} has ${value.length} characters; at most ${max}`);
    return pass(value);
  };
}

function oneOf<const V extends string>(values: readonly V[]): Check<V> {
  return (value, path) =>
    typeof value === "string" && (values as readonly string[]).includes(value)
      ? pass(value as V)
      : fail("enum", path, `${path} must be one of ${values.join(", ")}`);
}

function literal<const V extends string>(only: V): Check<V> {
  return oneOf([only]);
}

function nullable<T>(check: Check<T>): Check<T | null> {
  return (value, path) => (value === null ? pass(null) : check(value, path));
}

/** An integer in [min, max]. */
function integer(min: number, max: number, code: SchemaErrorCode): Check<number> {
  return (value, path) => {
    if (typeof value !== "number") return fail("type", path, `${path} must be a number, not ${typeName(value)}`);
    if (!Number.isInteger(value) || value < min || value > max) return fail(code, path, `${path} must be an integer from ${min} to ${max}`);
    return pass(value);
  };
}

/** Refines a checked value with a whole-object rule; the error names `field` under the path. */
function refine<T>(check: Check<T>, rule: (value: T, path: string) => SchemaError | undefined): Check<T> {
  return (value, path) => {
    const result = check(value, path);
    if (!result.ok) return result;
    const error = rule(result.value, path);
    return error ? { ok: false, error } : result;
  };
}

// --- Leaves ---

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** 32 bytes: 42 free sextets, one whose low 4 bits are zero (only 2 of its bits are data), one pad. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const RFC3339_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;
/** RFC 8839 §5.4 ice-char: ALPHA / DIGIT / "+" / "/". */
const ICE_CHARS = /^[A-Za-z0-9+/]*$/;
/** Printable ASCII and space: what an SDP candidate line is made of. */
const PRINTABLE = /^[\x20-\x7e]*$/;
const DNS_LABEL = /^(?:\*\*|[a-z0-9_*?](?:[a-z0-9_*?-]*[a-z0-9_*?])?)$/;
const PORT_RANGE = /^([0-9]+)(?:-([0-9]+))?$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * RFC 3339 §5.6 `date-time`, upper-case `T` and `Z` only, calendar-checked. A leap second (:60) is
 * refused: JavaScript time cannot hold it, and the portal never writes one.
 */
export function isRfc3339(text: string): boolean {
  const m = RFC3339_PATTERN.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

/** A DNS resource's name pattern: lower-case labels, wildcards `*`, `?` and a whole-label `**`. */
export function isDnsPattern(text: string): boolean {
  if (text.length > DNS_NAME_MAX_CHARS) return false;
  const labels = text.split(".");
  return labels.every((label) => label.length <= DNS_LABEL_MAX_CHARS && DNS_LABEL.test(label));
}

/** A port or an inclusive range, "443" or "8000-8080", within 1-65535. */
export function isPortRange(text: string): boolean {
  const m = PORT_RANGE.exec(text);
  if (!m) return false;
  if (!isPortText(m[1]!)) return false;
  if (m[2] === undefined) return true;
  return isPortText(m[2]) && Number(m[1]) <= Number(m[2]);
}

const uuid = string(36, 36, { code: "uuid", test: (t) => UUID_PATTERN.test(t), what: "a lowercase UUID" });
// The length bounds only shorten the error; the syntax check is what decides.
const ipv4 = string(15, 7, { code: "ipv4", test: isIpv4, what: "an IPv4 address" });
const ipv6 = string(45, 2, { code: "ipv6", test: isIpv6, what: "an IPv6 address" });
const ip = string(45, 2, { code: "ip", test: isIp, what: "an IPv4 or IPv6 address" });
const key = string(44, 44, { code: "key", test: (t) => KEY_PATTERN.test(t), what: "a 32-byte key in padded base64 (44 characters)" });
const time = string(35, 20, { code: "time", test: isRfc3339, what: "an RFC 3339 date-time, like 2025-01-31T12:00:00Z" });
const name = string(NAME_MAX_CHARS);
const reason = string(REASON_MAX_CHARS);
// Its length errors stay too_long / empty: the bound is the point there.
const candidateText = string(CANDIDATE_MAX_CHARS);
const candidate: Check<string> = (value, path) => {
  const result = candidateText(value, path);
  return result.ok && !PRINTABLE.test(result.value) ? fail("format", path, `${path} must be printable ASCII (an SDP candidate line)`) : result;
};
const candidates = list(candidate, CANDIDATES_MAX, 1);
const port = integer(1, 65535, "port");

// --- 2. Shared types ---

/** A device's tunnel addresses and the DNS servers its stub resolver forwards to. */
export interface Interface {
  ipv4: string;
  ipv6: string;
  /** IP addresses of upstream resolvers; empty: the system's. */
  upstream_dns: string[];
}

export type ResourceType = "dns" | "ip" | "cidr" | "internet";
export type FilterProtocol = "tcp" | "udp" | "icmp";

/** Traffic a resource lets through; no filters: all of it. */
export interface Filter {
  protocol: FilterProtocol;
  /** "443" or "8000-8080"; absent or empty: every port. icmp has none. */
  ports?: string[];
}

export interface Site {
  id: string;
  name: string;
}

/** A resource as a client sees it: where it lives and how to route to it. */
export interface ClientResource {
  id: string;
  type: ResourceType;
  name: string;
  /** dns: a name pattern; ip: an address; cidr: address/length; internet: null. */
  address: string | null;
  address_description: string | null;
  sites: Site[];
  filters: Filter[];
}

/** A resource as a gateway enforces it. */
export interface GatewayResource {
  id: string;
  type: ResourceType;
  name: string;
  address: string | null;
  filters: Filter[];
}

/** A TURN relay and the client's or gateway's time-limited credentials for it. */
export interface Relay {
  id: string;
  type: "turn";
  /** `ipv4:port` or `[ipv6]:port`. */
  addr: string;
  username: string;
  password: string;
  expires_at: string;
}

/** ICE credentials (RFC 8839 §5.4) of one side of a connection. */
export interface IceCredentials {
  username: string;
  password: string;
}

export type ConditionProperty = "remote_ip" | "remote_ip_location_region" | "provider_id" | "current_utc_datetime" | "client_verified";
export type ConditionOperator = "is_in_cidr" | "is_not_in_cidr" | "is_in" | "is_not_in" | "is_in_day_of_week_time_ranges" | "is";

/** A policy condition that did not hold, in Firezone's shape. */
export interface ViolatedCondition {
  property: ConditionProperty;
  operator: ConditionOperator;
  values: string[];
}

export const CONDITION_PROPERTIES: readonly ConditionProperty[] = ["remote_ip", "remote_ip_location_region", "provider_id", "current_utc_datetime", "client_verified"];
export const CONDITION_OPERATORS: readonly ConditionOperator[] = ["is_in_cidr", "is_not_in_cidr", "is_in", "is_not_in", "is_in_day_of_week_time_ranges", "is"];

/**
 * Why a client's request_authorization failed: denied by policy (violated_conditions says why), no
 * online gateway in the resource's site, no answer from the gateway in time, no such resource (or
 * none the client may see), no gateway of a compatible version, the gateway refused, or the client
 * asked too often.
 */
export type AuthorizationFailureReason = "denied" | "offline" | "timeout" | "not_found" | "version_mismatch" | "gateway_failed" | "rate_limited";
export const AUTHORIZATION_FAILURE_REASONS: readonly AuthorizationFailureReason[] = ["denied", "offline", "timeout", "not_found", "version_mismatch", "gateway_failed", "rate_limited"];

const iface = object<Interface>({ ipv4, ipv6, upstream_dns: list(ip, UPSTREAM_DNS_MAX) });

const filter = refine(
  object<Filter>({
    protocol: oneOf(["tcp", "udp", "icmp"]),
    ports: optional(list(string(11, 1, { code: "port", test: isPortRange, what: 'a port or range, "443" or "8000-8080", within 1-65535' }), PORT_RANGES_MAX)),
  }),
  (value, path) =>
    value.protocol === "icmp" && value.ports !== undefined && value.ports.length > 0
      ? { code: "format", path: `${path}.ports`, message: `${path}.ports must be empty: icmp has no ports` }
      : undefined,
);

/** The address a resource of each type carries. */
function resourceAddress(type: ResourceType, address: string | null, path: string): SchemaError | undefined {
  const at = `${path}.address`;
  if (type === "internet") return address === null ? undefined : { code: "format", path: at, message: `${at} must be null for an internet resource` };
  if (address === null) return { code: "missing", path: at, message: `${at} is required for a ${type} resource` };
  switch (type) {
    case "dns":
      return isDnsPattern(address) ? undefined : { code: "dns_name", path: at, message: `${at} must be a DNS name pattern` };
    case "ip":
      return isIp(address) ? undefined : { code: "ip", path: at, message: `${at} must be an IPv4 or IPv6 address` };
    case "cidr":
      return isCidr(address) ? undefined : { code: "cidr", path: at, message: `${at} must be address/length` };
  }
}

const resourceFields = {
  id: uuid,
  type: oneOf(["dns", "ip", "cidr", "internet"]),
  name,
  address: nullable(string(DNS_NAME_MAX_CHARS)),
  filters: list(filter, FILTERS_MAX),
};

const clientResource = refine(
  object<ClientResource>({
    ...resourceFields,
    address_description: nullable(string(ADDRESS_DESCRIPTION_MAX_CHARS, 0)),
    sites: list(object<Site>({ id: uuid, name }), SITES_MAX),
  }),
  (value, path) => resourceAddress(value.type, value.address, path),
);

const gatewayResource = refine(object<GatewayResource>(resourceFields), (value, path) => resourceAddress(value.type, value.address, path));

const relay = object<Relay>({
  id: uuid,
  type: literal("turn"),
  addr: string(53, 9, { code: "socket_address", test: isSocketAddress, what: "ipv4:port or [ipv6]:port" }),
  username: string(TURN_USERNAME_MAX_CHARS),
  password: string(TURN_PASSWORD_MAX_CHARS),
  expires_at: time,
});
const relays = list(relay, RELAYS_MAX);

const iceCredentials = object<IceCredentials>({
  username: string(ICE_CREDENTIAL_MAX_CHARS, ICE_UFRAG_MIN_CHARS, { code: "format", test: (t) => ICE_CHARS.test(t), what: `${ICE_UFRAG_MIN_CHARS}-${ICE_CREDENTIAL_MAX_CHARS} ICE characters (A-Z a-z 0-9 + /)` }),
  password: string(ICE_CREDENTIAL_MAX_CHARS, ICE_PWD_MIN_CHARS, { code: "format", test: (t) => ICE_CHARS.test(t), what: `${ICE_PWD_MIN_CHARS}-${ICE_CREDENTIAL_MAX_CHARS} ICE characters (A-Z a-z 0-9 + /)` }),
});

const violatedCondition = object<ViolatedCondition>({
  property: oneOf(CONDITION_PROPERTIES),
  operator: oneOf(CONDITION_OPERATORS),
  values: list(string(CONDITION_VALUE_MAX_CHARS, 0), CONDITION_VALUES_MAX),
});

// --- 3. Events ---

/** `phx_reply`: the portal's answer to a frame that carried a ref. */
export interface Reply {
  status: "ok" | "error";
  response: Record<string, unknown>;
}
/** No fields: `heartbeat`, a client's or gateway's `phx_join`, a relay's `init`. */
export type Empty = Record<string, never>;

export interface ClientInit {
  interface: Interface;
  resources: ClientResource[];
  relays: Relay[];
}
export interface ResourceDeleted {
  id: string;
}
export interface ConfigChanged {
  interface: Interface;
}
export interface RelaysPresence {
  connected: Relay[];
  disconnected_ids: string[];
}
/** The portal → client half of a granted connection: the gateway's key and addresses, the pair's secrets. */
export interface ClientAuthorizationCreated {
  resource_id: string;
  gateway_id: string;
  gateway_public_key: string;
  gateway_ipv4: string;
  gateway_ipv6: string;
  site_id: string;
  preshared_key: string;
  client_ice: IceCredentials;
  gateway_ice: IceCredentials;
  expires_at: string;
}
export interface ClientAuthorizationCreationFailed {
  resource_id: string;
  reason: AuthorizationFailureReason;
  /** With reason "denied": the conditions that did not hold. */
  violated_conditions?: ViolatedCondition[];
}
export interface GatewayCandidates {
  gateway_id: string;
  candidates: string[];
}
export interface Disconnect {
  reason: string;
}
export interface RequestAuthorization {
  resource_id: string;
  /** Gateways the client already has tunnels to; the portal prefers them. */
  connected_gateway_ids?: string[];
}

/**
 * The portal → gateway half of a granted connection. A gateway holds at most one authorization per
 * client and resource: one it acknowledges (authorization_created) replaces any other it held for the
 * same pair, and the portal sends no reject_access for the one replaced. In a gateway's init, a later
 * entry for a pair replaces an earlier one the same way.
 */
export interface AuthorizationForGateway {
  authorization_id: string;
  client: { id: string; public_key: string; ipv4: string; ipv6: string; preshared_key: string };
  resource: GatewayResource;
  client_ice: IceCredentials;
  gateway_ice: IceCredentials;
  expires_at: string;
}
export interface GatewayInit {
  interface: Interface;
  relays: Relay[];
  authorizations: AuthorizationForGateway[];
}
export interface RejectAccess {
  authorization_id: string;
  client_id: string;
  resource_id: string;
}
export interface ClientCandidates {
  client_id: string;
  candidates: string[];
}
export interface GatewayAuthorizationCreated {
  authorization_id: string;
}
export interface GatewayAuthorizationCreationFailed {
  authorization_id: string;
  reason: string;
}
/** A relay announces where it listens; at least one address. */
export interface RelayJoin {
  ipv4?: string;
  ipv6?: string;
  port: number;
}
/**
 * A relay's load, sent after it joins and then as it changes (at most once a second) or every 10 s:
 * what it carries now, and the payload bytes it relayed per second, both directions, since its last
 * report. The portal shows it to admins.
 */
export interface RelayLoad {
  allocations: number;
  channels: number;
  bytes_per_second: number;
}

/** Every event's payload, by role, direction and name. */
export interface EventPayloads {
  client: {
    to_device: {
      phx_reply: Reply;
      init: ClientInit;
      resource_created_or_updated: ClientResource;
      resource_deleted: ResourceDeleted;
      config_changed: ConfigChanged;
      relays_presence: RelaysPresence;
      authorization_created: ClientAuthorizationCreated;
      authorization_creation_failed: ClientAuthorizationCreationFailed;
      ice_candidates: GatewayCandidates;
      invalidate_ice_candidates: GatewayCandidates;
      disconnect: Disconnect;
    };
    from_device: {
      phx_join: Empty;
      heartbeat: Empty;
      request_authorization: RequestAuthorization;
      ice_candidates: GatewayCandidates;
      invalidate_ice_candidates: GatewayCandidates;
    };
  };
  gateway: {
    to_device: {
      phx_reply: Reply;
      init: GatewayInit;
      create_authorization: AuthorizationForGateway;
      reject_access: RejectAccess;
      relays_presence: RelaysPresence;
      ice_candidates: ClientCandidates;
      invalidate_ice_candidates: ClientCandidates;
      config_changed: ConfigChanged;
      disconnect: Disconnect;
    };
    from_device: {
      phx_join: Empty;
      heartbeat: Empty;
      authorization_created: GatewayAuthorizationCreated;
      authorization_creation_failed: GatewayAuthorizationCreationFailed;
      ice_candidates: ClientCandidates;
      invalidate_ice_candidates: ClientCandidates;
    };
  };
  relay: {
    to_device: {
      phx_reply: Reply;
      init: Empty;
      disconnect: Disconnect;
    };
    from_device: {
      phx_join: RelayJoin;
      heartbeat: Empty;
      load: RelayLoad;
    };
  };
}

export type DeviceRole = keyof EventPayloads;
export type Direction = "to_device" | "from_device";
export type EventName<R extends DeviceRole, D extends Direction> = keyof EventPayloads[R][D] & string;
/** The payload type of `E`; for an event name not known statically, the union of the direction's payloads. */
export type PayloadOf<R extends DeviceRole, D extends Direction, E extends string> = E extends EventName<R, D>
  ? EventPayloads[R][D][E]
  : EventPayloads[R][D][EventName<R, D>];
/** A validated event as a tagged union, for `switch (message.event)`. */
export type Message<R extends DeviceRole, D extends Direction> = {
  [E in EventName<R, D>]: { topic: string; event: E; payload: EventPayloads[R][D][E]; ref: string | null };
}[EventName<R, D>];

export const ROLES: readonly DeviceRole[] = ["client", "gateway", "relay"];
export const DIRECTIONS: readonly Direction[] = ["to_device", "from_device"];

/** Anything JSON: a reply's response is the request's business, kept as sent. */
const jsonObject: Check<Record<string, unknown>> = (value, path) =>
  isPlainObject(value) ? pass(value) : fail("type", path, `${path} must be an object, not ${typeName(value)}`);

const empty = object<Empty>({});
const reply = object<Reply>({ status: oneOf(["ok", "error"]), response: jsonObject });
const configChanged = object<ConfigChanged>({ interface: iface });
const relaysPresence = object<RelaysPresence>({ connected: relays, disconnected_ids: list(uuid, RELAYS_MAX) });
const disconnect = object<Disconnect>({ reason });
const gatewayCandidates = object<GatewayCandidates>({ gateway_id: uuid, candidates });
const clientCandidates = object<ClientCandidates>({ client_id: uuid, candidates });

const authorizationForGateway = object<AuthorizationForGateway>({
  authorization_id: uuid,
  client: object<AuthorizationForGateway["client"]>({ id: uuid, public_key: key, ipv4, ipv6, preshared_key: key }),
  resource: gatewayResource,
  client_ice: iceCredentials,
  gateway_ice: iceCredentials,
  expires_at: time,
});

const relayJoin = refine(object<RelayJoin>({ ipv4: optional(ipv4), ipv6: optional(ipv6), port }), (value, path) =>
  value.ipv4 === undefined && value.ipv6 === undefined
    ? { code: "missing", path: `${path}.ipv4`, message: `${path} needs ipv4, ipv6 or both` }
    : undefined,
);

// Counts up to 2^31 - 1 and rates up to 2^53 - 1 bytes a second: the portal stores them as integer and bigint.
const relayLoad = object<RelayLoad>({
  allocations: integer(0, 2 ** 31 - 1, "range"),
  channels: integer(0, 2 ** 31 - 1, "range"),
  bytes_per_second: integer(0, Number.MAX_SAFE_INTEGER, "range"),
});

type Validators = { [R in DeviceRole]: { [D in Direction]: { [E in EventName<R, D>]: Check<EventPayloads[R][D][E]> } } };

/** The table: every event each side may send, with its validator. */
const VALIDATORS: Validators = {
  client: {
    to_device: {
      phx_reply: reply,
      init: object<ClientInit>({ interface: iface, resources: list(clientResource, RESOURCES_MAX), relays }),
      resource_created_or_updated: clientResource,
      resource_deleted: object<ResourceDeleted>({ id: uuid }),
      config_changed: configChanged,
      relays_presence: relaysPresence,
      authorization_created: object<ClientAuthorizationCreated>({
        resource_id: uuid,
        gateway_id: uuid,
        gateway_public_key: key,
        gateway_ipv4: ipv4,
        gateway_ipv6: ipv6,
        site_id: uuid,
        preshared_key: key,
        client_ice: iceCredentials,
        gateway_ice: iceCredentials,
        expires_at: time,
      }),
      authorization_creation_failed: object<ClientAuthorizationCreationFailed>({
        resource_id: uuid,
        reason: oneOf(AUTHORIZATION_FAILURE_REASONS),
        violated_conditions: optional(list(violatedCondition, CONDITIONS_MAX)),
      }),
      ice_candidates: gatewayCandidates,
      invalidate_ice_candidates: gatewayCandidates,
      disconnect,
    },
    from_device: {
      phx_join: empty,
      heartbeat: empty,
      request_authorization: object<RequestAuthorization>({
        resource_id: uuid,
        connected_gateway_ids: optional(list(uuid, CONNECTED_GATEWAYS_MAX)),
      }),
      ice_candidates: gatewayCandidates,
      invalidate_ice_candidates: gatewayCandidates,
    },
  },
  gateway: {
    to_device: {
      phx_reply: reply,
      init: object<GatewayInit>({ interface: iface, relays, authorizations: list(authorizationForGateway, AUTHORIZATIONS_MAX) }),
      create_authorization: authorizationForGateway,
      reject_access: object<RejectAccess>({ authorization_id: uuid, client_id: uuid, resource_id: uuid }),
      relays_presence: relaysPresence,
      ice_candidates: clientCandidates,
      invalidate_ice_candidates: clientCandidates,
      config_changed: configChanged,
      disconnect,
    },
    from_device: {
      phx_join: empty,
      heartbeat: empty,
      authorization_created: object<GatewayAuthorizationCreated>({ authorization_id: uuid }),
      authorization_creation_failed: object<GatewayAuthorizationCreationFailed>({ authorization_id: uuid, reason }),
      ice_candidates: clientCandidates,
      invalidate_ice_candidates: clientCandidates,
    },
  },
  relay: {
    to_device: { phx_reply: reply, init: empty, disconnect },
    from_device: { phx_join: relayJoin, heartbeat: empty, load: relayLoad },
  },
};

/** The events one role and direction carry, in table order. */
export function eventNames<R extends DeviceRole, D extends Direction>(role: R, direction: D): EventName<R, D>[] {
  return Object.keys(VALIDATORS[role][direction]) as EventName<R, D>[];
}

/**
 * Validates one event's payload; the value keeps only the schema's fields. Never throws: an unknown
 * role, direction or event is `unknown_event`.
 */
export function validatePayload<R extends DeviceRole, D extends Direction, E extends string>(
  role: R,
  direction: D,
  event: E,
  payload: unknown,
): Checked<PayloadOf<R, D, E>> {
  const table = Object.hasOwn(VALIDATORS, role) ? VALIDATORS[role] : undefined;
  const events = table && Object.hasOwn(table, direction) ? (table[direction] as Record<string, Check<unknown>>) : undefined;
  const check = events && Object.hasOwn(events, event) ? events[event] : undefined;
  if (!check) return fail("unknown_event", "event", `no event ${JSON.stringify(String(event)).slice(0, 80)} goes ${direction === "to_device" ? "to" : "from"} a ${role}`);
  return check(payload, "payload") as Checked<PayloadOf<R, D, E>>;
}

/** The topic an event travels on: heartbeats on `phoenix`, the rest on the role's own topic. */
export function topicOf(role: DeviceRole, event: string): string {
  return event === EVENT_HEARTBEAT ? PHOENIX_TOPIC : role;
}

/**
 * Validates a decoded frame as an event of `role` going `direction`: the topic must be the role's
 * (`phoenix` for heartbeats and their replies), then the payload as validatePayload does.
 */
export function validateMessage<R extends DeviceRole, D extends Direction>(
  role: R,
  direction: D,
  frame: { topic: string; event: string; payload: unknown; ref: string | null },
): Checked<Message<R, D>> {
  const payload = validatePayload(role, direction, frame.event, frame.payload);
  if (!payload.ok) return payload;
  const topicOk = frame.event === EVENT_REPLY ? frame.topic === role || frame.topic === PHOENIX_TOPIC : frame.topic === topicOf(role, frame.event);
  if (!topicOk) {
    return fail("wrong_topic", "topic", `${frame.event} travels on topic ${topicOf(role, frame.event)}, not ${JSON.stringify(frame.topic)}`);
  }
  return pass({ topic: frame.topic, event: frame.event, payload: payload.value, ref: frame.ref } as Message<R, D>);
}

/** True when `event` is the join a device sends first. */
export function isJoin(event: string): boolean {
  return event === EVENT_JOIN;
}
