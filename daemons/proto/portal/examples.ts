// One valid payload for every event of the schema, for tests on both sides of the wire (the
// schema's own, scripted devices in the portal's). Values are made up but well-formed: keys are 32
// bytes of base64, ICE credentials meet RFC 8839's lengths, times are RFC 3339.

import type { DeviceRole, Direction, EventName, EventPayloads, Interface, Relay, AuthorizationForGateway, ClientResource } from "./schema.js";

const KEY_A = "gN65BWmC+4kcwPxi7bqtl4lTSvsi1q2ssg62e+cs4Bs=";
const KEY_B = "zLr9C1tPRE4zrHr0YKgaKbj0AHNq6wcg8vVxI3ZWB0Y=";
const PSK = "mIZ7C9sEQ4nM5CYBKx4Jg0ZgNh7zVrybrLZJQ8vh6jA=";

const INTERFACE: Interface = { ipv4: "100.64.0.7", ipv6: "fd00:2021:1111::7", upstream_dns: ["1.1.1.1", "2606:4700:4700::1111"] };

const RELAY: Relay = {
  id: "0b6f5c1e-8f7a-4a2e-9d3c-2f4b1e6a7c80",
  type: "turn",
  addr: "203.0.113.5:3478",
  username: "1767225600:0e4c1a2b-3d5f-4e6a-8b7c-9d0e1f2a3b4c",
  password: "Zm9vYmFyYmF6cXV4cXV1eA",
  expires_at: "2026-01-01T00:00:00Z",
};
const RELAY_V6: Relay = { ...RELAY, id: "1c7a6d2f-9a8b-4b3f-8e4d-3a5c2f7b8d91", addr: "[2001:db8::5]:3478" };

const CLIENT_RESOURCE: ClientResource = {
  id: "7d3b2a10-4c5e-4f6a-9b8c-1d2e3f4a5b6c",
  type: "dns",
  name: "Intranet",
  address: "*.intranet.example.com",
  address_description: "https://wiki.intranet.example.com",
  sites: [{ id: "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", name: "Berlin office" }],
  filters: [{ protocol: "tcp", ports: ["443", "8000-8080"] }, { protocol: "icmp" }],
};
const CIDR_RESOURCE: ClientResource = {
  id: "8e4c3b21-5d6f-4a7b-8c9d-2e3f4a5b6c7d",
  type: "cidr",
  name: "Lab",
  address: "10.20.0.0/16",
  address_description: null,
  sites: [],
  filters: [],
};
const INTERNET_RESOURCE: ClientResource = { ...CIDR_RESOURCE, id: "9f5d4c32-6e7a-4b8c-9d0e-3f4a5b6c7d8e", type: "internet", name: "Internet", address: null };

const CLIENT_ICE = { username: "cUfr", password: "cPasswordOfTwentyTwoChars" };
const GATEWAY_ICE = { username: "gUfrag+/", password: "gPasswordOfTwentyTwoChars+/x" };

const AUTHORIZATION: AuthorizationForGateway = {
  authorization_id: "2b1a0f9e-8d7c-4b6a-9f5e-4d3c2b1a0f9e",
  client: { id: "3c2b1a0f-9e8d-4c7b-8a6f-5e4d3c2b1a0f", public_key: KEY_A, ipv4: "100.64.0.7", ipv6: "fd00:2021:1111::7", preshared_key: PSK },
  resource: { id: CLIENT_RESOURCE.id, type: "ip", name: "Database", address: "192.168.10.5", filters: [{ protocol: "tcp", ports: ["5432"] }] },
  client_ice: CLIENT_ICE,
  gateway_ice: GATEWAY_ICE,
  expires_at: "2026-01-01T17:00:00.123+01:00",
};

const GATEWAY_ID = "4d3c2b1a-0f9e-4d8c-9b7a-6f5e4d3c2b1a";
const CANDIDATES = ["candidate:1 1 udp 2130706431 192.0.2.10 51820 typ host", "candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 0.0.0.0 rport 0"];

type Examples = { [R in DeviceRole]: { [D in Direction]: { [E in EventName<R, D>]: EventPayloads[R][D][E] } } };

/** A valid payload for every (role, direction, event) of the schema. */
export const EXAMPLE_PAYLOADS: Examples = {
  client: {
    to_device: {
      phx_reply: { status: "ok", response: { anything: ["the request's", 1] } },
      init: { interface: INTERFACE, resources: [CLIENT_RESOURCE, CIDR_RESOURCE, INTERNET_RESOURCE], relays: [RELAY, RELAY_V6] },
      resource_created_or_updated: CLIENT_RESOURCE,
      resource_deleted: { id: CLIENT_RESOURCE.id },
      config_changed: { interface: INTERFACE },
      relays_presence: { connected: [RELAY_V6], disconnected_ids: [RELAY.id] },
      authorization_created: {
        resource_id: CLIENT_RESOURCE.id,
        gateway_id: GATEWAY_ID,
        gateway_public_key: KEY_B,
        gateway_ipv4: "100.64.0.2",
        gateway_ipv6: "fd00:2021:1111::2",
        site_id: "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        preshared_key: PSK,
        client_ice: CLIENT_ICE,
        gateway_ice: GATEWAY_ICE,
        expires_at: "2026-01-01T00:00:00Z",
      },
      authorization_creation_failed: {
        resource_id: CLIENT_RESOURCE.id,
        reason: "denied",
        violated_conditions: [{ property: "current_utc_datetime", operator: "is_in_day_of_week_time_ranges", values: ["M/09:00-17:00/Europe/Berlin"] }],
      },
      ice_candidates: { gateway_id: GATEWAY_ID, candidates: CANDIDATES },
      invalidate_ice_candidates: { gateway_id: GATEWAY_ID, candidates: [CANDIDATES[0]!] },
      disconnect: { reason: "token_expired" },
    },
    from_device: {
      phx_join: {},
      heartbeat: {},
      request_authorization: { resource_id: CLIENT_RESOURCE.id, connected_gateway_ids: [GATEWAY_ID] },
      ice_candidates: { gateway_id: GATEWAY_ID, candidates: CANDIDATES },
      invalidate_ice_candidates: { gateway_id: GATEWAY_ID, candidates: CANDIDATES },
    },
  },
  gateway: {
    to_device: {
      phx_reply: { status: "error", response: { reason: "unknown_event" } },
      init: { interface: INTERFACE, relays: [RELAY], authorizations: [AUTHORIZATION] },
      create_authorization: AUTHORIZATION,
      reject_access: { authorization_id: AUTHORIZATION.authorization_id, client_id: AUTHORIZATION.client.id, resource_id: CLIENT_RESOURCE.id },
      relays_presence: { connected: [RELAY], disconnected_ids: [] },
      ice_candidates: { client_id: AUTHORIZATION.client.id, candidates: CANDIDATES },
      invalidate_ice_candidates: { client_id: AUTHORIZATION.client.id, candidates: CANDIDATES },
      config_changed: { interface: INTERFACE },
      disconnect: { reason: "token_revoked" },
    },
    from_device: {
      phx_join: {},
      heartbeat: {},
      authorization_created: { authorization_id: AUTHORIZATION.authorization_id },
      authorization_creation_failed: { authorization_id: AUTHORIZATION.authorization_id, reason: "resource address did not resolve" },
      ice_candidates: { client_id: AUTHORIZATION.client.id, candidates: CANDIDATES },
      invalidate_ice_candidates: { client_id: AUTHORIZATION.client.id, candidates: CANDIDATES },
    },
  },
  relay: {
    to_device: { phx_reply: { status: "ok", response: {} }, init: {}, disconnect: { reason: "shutdown" } },
    from_device: { phx_join: { ipv4: "203.0.113.5", ipv6: "2001:db8::5", port: 3478 }, heartbeat: {}, load: { allocations: 12, channels: 30, bytes_per_second: 1_250_000 } },
  },
};
