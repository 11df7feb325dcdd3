// The realtime hub: what the portal says to the devices connected to this node, and how it decides.
//
// 1. Join: a device's account gets a compiled AccountView (loaded once per node, then kept current from
//    the change bus); the device is marked present and gets its `init`.
// 2. Changes: each change notification is read from the change log and applied to the account's view;
//    each client of the account connected here gets the difference between the resources it was sent
//    and the ones it may now see; each of its authorizations is evaluated again and revoked if the
//    policy no longer allows it.
// 3. request_authorization: evaluate → pick a gateway (online, in one of the resource's sites, of a
//    version compatible with the client's (versions.ts); one the client names as connected first, then
//    the one with the fewest authorizations from this node) →
//    derive the pair's secrets → record the authorization (durable before anyone hears of it) →
//    create_authorization to the gateway, over the node bus when its socket is on another node → the
//    gateway's acknowledgement → authorization_created to the client, then the reply to its request.
//    No acknowledgement within AUTHORIZATION_TIMEOUT_MS fails closed: both sides are told.
// 4. Revocation (a policy, resource, membership or actor change, a time window closing, the client
//    token expiring or revoked): the gateway gets reject_access, the client resource_deleted, and the
//    record is marked (after them: a crash in between leaves a record of access a little longer than it
//    lasted). A client connected nowhere is revoked from its gateway's node.
// 5. ICE candidates (ice_candidates, invalidate_ice_candidates) pass between a client and a gateway
//    only while an authorization joins them: a client's go to the gateway it was authorized through
//    (on the gateway's node), a gateway's to the client it holds an authorization for (on the client's
//    node). Others are dropped and counted.
// 6. A gateway online on no node for GATEWAY_OFFLINE_GRACE_MS: the clients here that hold
//    authorizations through it hear authorization_creation_failed ("offline") for each, which ends
//    it, so their next packet asks again and another gateway of the site is picked. A gateway back
//    within the grace period (a blip, a portal node restarting) keeps them.
//
// Clients' authorizations live on the node holding the client's socket; gateways' sockets may be on any
// node, and messages between nodes go through the NodeBus.

import { createHash, randomUUID } from "node:crypto";
import type { DataSource } from "typeorm";
import type {
  AuthorizationForGateway,
  ClientResource,
  Filter,
  GatewayResource,
  Interface,
  Relay,
  RelayLoad,
  ViolatedCondition,
} from "../../../daemons/proto/portal/index.js";
import { relayCredentials, relayTurnSecret } from "../../../daemons/proto/portal/index.js";
import { AccountScope } from "../database/account-scope.js";
import { DeviceEntity, SiteEntity, type Device } from "../database/entities.js";
import { AccountView, VIEW_TABLES, type ViewResource } from "../policy/account-view.js";
import { evaluate, type Decision } from "../policy/evaluator.js";
import type { GeoIpReader } from "../policy/geoip.js";
import type { RelayLoadReported } from "./activity.js";
import type { AuthorizationRecorder } from "./authorization-recorder.js";
import type { ChangeBus, ChangeNotification } from "./change-bus.js";
import { LaterReply, type ChannelHandlers, type DeviceConnection } from "./channel-server.js";
import { versionsCompatible } from "./versions.js";
import type { NodeBus } from "./node-bus.js";
import { authorizationCreatedJson, createAuthorizationJson, DeviceParts, pairParts, type PairParts } from "./frame-parts.js";
import { pairSecrets, type PairSecrets } from "./pair-secrets.js";
import type { Presence, PresenceChange } from "./presence.js";

export const AUTHORIZATION_TIMEOUT_MS = 15_000;
/**
 * How long a gateway may be online on no node before the clients' authorizations through it end: a
 * gateway whose socket comes straight back (a portal node restarting, a blip) keeps them.
 */
export const GATEWAY_OFFLINE_GRACE_MS = 3_000;
/** The longest an authorization runs before the client must ask again, whatever the policy allows. */
export const AUTHORIZATION_MAX_MS = 24 * 3_600_000;
/** How long relay credentials handed out last; a device gets fresh ones with each init and relays_presence. */
export const RELAY_CREDENTIALS_MS = 24 * 3_600_000;
/** Relays per device: two, so a device has a second path ready when one relay goes away. */
export const RELAYS_PER_DEVICE = 2;
/** Relays whose distances from a device round to the same multiple of this are taken as equally near. */
export const NEAR_STEP_KM = 100;
/** The least time between two load reports of one relay socket that the hub writes down. */
export const RELAY_LOAD_MIN_MS = 500;

const EARTH_RADIUS_KM = 6371;

/** The great-circle distance between two places (haversine), in km. */
export function greatCircleKm(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

export interface HubOptions {
  db: DataSource;
  changes: ChangeBus;
  nodes: NodeBus;
  presence: Presence;
  recorder: AuthorizationRecorder;
  pairSecret: Buffer;
  geoip?: GeoIpReader | undefined;
  upstreamDns?: string[];
  /** How long a gateway has to acknowledge; default AUTHORIZATION_TIMEOUT_MS. */
  authorizationTimeoutMs?: number;
  /** How long a gateway may be offline before clients' authorizations through it end; default GATEWAY_OFFLINE_GRACE_MS. */
  gatewayOfflineGraceMs?: number;
  log: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
}

/** An authorization a client connected here holds. */
interface ClientAuthorization {
  id: string;
  resourceId: string;
  policyId: string;
  gatewayDeviceId: string;
  gatewayNode: string;
  expiresAt: number;
  timer: NodeJS.Timeout;
}

interface ClientState {
  /** Resources last sent, as sent, by id: what a change is compared against. */
  sent: Map<string, string>;
  authorizations: Map<string, ClientAuthorization>;
}

interface Directory {
  sites: Map<string, string>;
  gateways: Map<string, Device>;
  online: Map<string, Set<string>>;
}

interface AccountState {
  view: Promise<AccountView>;
  /** The tail of this account's change queue. */
  applying: Promise<void>;
  /** The account's own upstream DNS servers (empty: the portal's default). */
  upstreamDns: Promise<string[]>;
  /**
   * What picking a gateway and describing resources needs, kept in memory so an authorization costs
   * no query: site names, the account's gateways, and the nodes each gateway is connected to. Loaded
   * with the account, then kept current from the change bus (sites, devices) and presence
   * announcements (joins and leaves on any node).
   */
  directory: Promise<Directory>;
  clients: Set<DeviceConnection>;
  gateways: Set<DeviceConnection>;
  relays: Set<DeviceConnection>;
}

/** Messages between portal nodes. */
type NodeMessage =
  | { type: "create_authorization"; accountId: string; gatewayDeviceId: string; payload: AuthorizationForGateway; replyTo: string; grant: { policyId: string; actorId: string } }
  | { type: "authorization_ack"; accountId: string; authorizationId: string; ok: boolean; reason?: string }
  | { type: "reject_access"; accountId: string; gatewayDeviceId: string; payload: { authorization_id: string; client_id: string; resource_id: string } }
  | { type: "client_candidates"; accountId: string; gatewayDeviceId: string; event: CandidateEvent; payload: { client_id: string; candidates: string[] } }
  | { type: "gateway_candidates"; accountId: string; clientDeviceId: string; event: CandidateEvent; payload: { gateway_id: string; candidates: string[] } };

type CandidateEvent = "ice_candidates" | "invalidate_ice_candidates";

const filtersOf = (resource: ViewResource): Filter[] => resource.filters as Filter[];

// The values of an account's view and directory once loaded, so that an authorization reads them
// without awaiting a settled promise (a turn of the microtask queue and an allocation, each time).
// Keyed by the promise: a reload puts a new one in its place, read through await until it settles.
const settledValues = new WeakMap<Promise<unknown>, unknown>();

/** `promise`, whose value settledValue() gives once it has resolved. */
function settles<T>(promise: Promise<T>): Promise<T> {
  promise.then(
    (value) => settledValues.set(promise, value),
    () => undefined, // its readers await it and hear the error
  );
  return promise;
}

function settledValue<T>(promise: Promise<T>): T | undefined {
  return settledValues.get(promise) as T | undefined;
}

/** Every this many authorizations a gateway here holds, the expired ones are dropped from its list. */
const HELD_PRUNE_AT = 1024;

/** A socket's peer address with an IPv4-mapped IPv6 address (::ffff:a.b.c.d) written as IPv4. */
const plainAddress = (address: string): string => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");

/** An authorization a gateway connected to this node holds, with what granted it. */
interface HeldAuthorization {
  clientDeviceId: string;
  /** The node the client's socket was on when it was authorized (where its candidates go); unknown after a re-sync. */
  clientNode?: string;
  resourceId: string;
  policyId: string;
  actorId: string;
  expiresAt: number;
}

/** Whether the policy that granted an authorization still grants it: enabled, its resource there, the actor (enabled) in its group. */
function grantStands(view: AccountView, held: HeldAuthorization): boolean {
  const policy = view.policiesFor(held.resourceId).find((p) => p.id === held.policyId);
  return policy !== undefined && !policy.disabled && view.resource(held.resourceId) !== undefined && view.groupsOf(held.actorId).has(policy.groupId);
}

export class RealtimeHub implements ChannelHandlers {
  private readonly accounts = new Map<string, AccountState>();
  private readonly clients = new WeakMap<DeviceConnection, ClientState>();
  private readonly tokenTimers = new WeakMap<DeviceConnection, NodeJS.Timeout>();
  /** When each relay socket's last load report was written. */
  private readonly relayLoadAt = new WeakMap<DeviceConnection, number>();
  /**
   * What each gateway connected here holds, by authorization id. A revocation whose client is connected
   * nowhere is ended from here (its client's node no longer knows of it), and every reject_access
   * reaches a gateway once, whichever nodes sent it.
   */
  private readonly held = new WeakMap<DeviceConnection, Map<string, HeldAuthorization>>();
  /**
   * For each gateway here, the authorization it holds for each client and resource ("client/resource"):
   * the one an acknowledged create_authorization for the pair replaces. An entry may name one since
   * ended; it is then replaced, or dropped when the expired are pruned.
   */
  private readonly heldPairs = new WeakMap<DeviceConnection, Map<string, string>>();
  /**
   * Acknowledgements awaited, in the order asked, each with its deadline. One sweep (ackSweep) fails the
   * overdue ones closed, rather than a timer per authorization: under load that was two timers made and
   * one cleared per decision.
   */
  private readonly pendingAcks = new Map<string, { resolve: (ok: boolean, reason?: string) => void; deadline: number }>();
  private readonly ackSweep: NodeJS.Timeout;
  /** Authorizations from this node per gateway device: the load the picker balances. */
  private readonly gatewayLoad = new Map<string, number>();
  private readonly directoryReloadedAt = new Map<string, number>();
  /** Pair secrets already derived: a pair asks again with every resource it opens. */
  private readonly pairCache = new Map<string, PairSecrets & { parts: PairParts }>();
  /** Each device row's fields as written in authorization payloads. */
  private readonly deviceParts = new DeviceParts();
  private readonly now: () => number;
  private readonly unsubscribe: (() => void)[] = [];
  /** Decisions made here: for tests and the benchmark. */
  decisions = { allowed: 0, denied: 0, failed: 0 };
  /** ICE candidates dropped because no authorization joins the two devices. */
  candidatesDropped = 0;

  constructor(private readonly options: HubOptions) {
    this.now = options.now ?? (() => Date.now());
    this.unsubscribe.push(options.changes.subscribe((change) => void this.onChange(change)));
    this.unsubscribe.push(options.changes.onResync(() => void this.resync()));
    this.unsubscribe.push(options.nodes.onMessage((message) => void this.onNodeMessage(message as NodeMessage)));
    this.unsubscribe.push(options.presence.onChange((change) => void this.onPresence(change)));
    // Overdue acknowledgements fail within a tenth of the timeout (at most a second) of their deadline.
    this.ackSweep = setInterval(() => this.sweepAcks(), Math.max(20, Math.min(1000, this.ackTimeoutMs / 10)));
    this.ackSweep.unref();
  }

  private get ackTimeoutMs(): number {
    return this.options.authorizationTimeoutMs ?? AUTHORIZATION_TIMEOUT_MS;
  }

  /** Fails the overdue acknowledgements closed and forgets the routes of ones no node waits for any more. */
  private sweepAcks(): void {
    const now = this.now();
    // Both maps are in the order asked, and every deadline is the same span after its asking.
    for (const [id, pending] of this.pendingAcks) {
      if (pending.deadline > now) break;
      this.pendingAcks.delete(id);
      pending.resolve(false, "timeout");
    }
    for (const [id, route] of this.ackRoutes) {
      if (route.forgetAt > now) break;
      this.ackRoutes.delete(id);
    }
  }

  stop(): void {
    for (const off of this.unsubscribe) off();
    clearInterval(this.ackSweep);
    for (const state of this.accounts.values()) for (const client of state.clients) this.dropClientTimers(client);
  }

  // --- 1. Join ---

  private account(accountId: string): AccountState {
    let state = this.accounts.get(accountId);
    if (state === undefined) {
      const scope = new AccountScope(this.options.db, accountId, null);
      state = {
        view: settles(AccountView.load(scope)),
        applying: Promise.resolve(),
        upstreamDns: scope.account().then((a) => a.upstreamDns),
        directory: settles(this.loadDirectory(scope)),
        clients: new Set(),
        gateways: new Set(),
        relays: new Set(),
      };
      this.accounts.set(accountId, state);
    }
    return state;
  }

  private async loadDirectory(scope: AccountScope): Promise<Directory> {
    const [sites, gateways, online] = await Promise.all([
      scope.repository(SiteEntity).list(),
      scope.repository(DeviceEntity).list({ where: { kind: "gateway" } }),
      this.options.presence.onlineOfKind(scope.accountId, "gateway"),
    ]);
    return {
      sites: new Map(sites.map((site) => [site.id, site.name])),
      gateways: new Map(gateways.map((gateway) => [gateway.id, gateway])),
      online: new Map([...online].map(([id, nodes]) => [id, new Set(nodes)])),
    };
  }

  async joined(connection: DeviceConnection): Promise<void> {
    const accountId = connection.principal.accountId;
    const state = this.account(accountId);
    const view = await state.view;
    const expiresAt = connection.principal.tokenExpiresAt?.getTime();
    if (expiresAt !== undefined) {
      // The token ends, and the socket with it (its authorizations end by their own expiry, which
      // the token's caps).
      const timer = setTimeout(() => void this.endSessions(state, (c) => c === connection, "token_expired"), Math.max(0, Math.min(expiresAt - this.now(), 2 ** 31 - 1)));
      timer.unref();
      this.tokenTimers.set(connection, timer);
    }
    if (connection.role === "relay") {
      const join = connection.joinPayload as { ipv4?: string; ipv6?: string; port: number };
      await this.options.db.query(
        // A join starts afresh: the load of the relay's last session is no longer what it carries.
        `INSERT INTO relay_endpoints (account_id, relay_id, ipv4, ipv6, port, updated_at) VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (account_id, relay_id) DO UPDATE SET ipv4 = EXCLUDED.ipv4, ipv6 = EXCLUDED.ipv6, port = EXCLUDED.port, updated_at = now(),
           allocations = NULL, channels = NULL, bytes_per_second = NULL, load_at = NULL`,
        [accountId, connection.principal.tokenId, join.ipv4 ?? null, join.ipv6 ?? null, join.port],
      );
      state.relays.add(connection);
      connection.push("init", {});
      // Joining presence announces the relay to every node, whose devices then hear relays_presence.
      await this.options.presence.join(accountId, connection.principal.tokenId, "relay");
      return;
    }
    const device = connection.device!;
    await this.options.presence.join(accountId, device.id, connection.role);
    const relays = await this.relaysFor(accountId, connection);
    if (connection.role === "client") {
      state.clients.add(connection);
      const resources = await this.clientResources(connection, view);
      const client: ClientState = { sent: new Map(resources.map((r) => [r.id, JSON.stringify(r)])), authorizations: new Map() };
      this.clients.set(connection, client);
      connection.push("init", { interface: await this.interfaceOf(state, device), resources, relays });
    } else {
      state.gateways.add(connection);
      // Here at once, without waiting for our own announcement to come back over the node bus.
      const directory = await state.directory;
      directory.gateways.set(device.id, device);
      directory.online.set(device.id, (directory.online.get(device.id) ?? new Set()).add(this.options.nodes.nodeId));
      connection.push("init", { interface: await this.interfaceOf(state, device), relays, authorizations: await this.liveAuthorizations(accountId, connection) });
    }
  }

  /** The authorizations a gateway still holds (not revoked, not expired): what a reconnect restores. */
  private async liveAuthorizations(accountId: string, connection: DeviceConnection): Promise<AuthorizationForGateway[]> {
    const gateway = connection.device!;
    const rows = (await this.options.db.query(
      `SELECT a.id, a.resource_id, a.policy_id, a.actor_id, a.expires_at, d.id AS client_id, d.public_key, host(d.ipv4) AS ipv4, host(d.ipv6) AS ipv6
         FROM authorizations a JOIN devices d ON d.account_id = a.account_id AND d.id = a.client_device_id
        WHERE a.account_id = $1 AND a.gateway_device_id = $2 AND a.revoked_at IS NULL AND a.expires_at > $3
        ORDER BY a.created_at`,
      [accountId, gateway.id, new Date(this.now())],
    )) as { id: string; resource_id: string; policy_id: string; actor_id: string; expires_at: Date; client_id: string; public_key: string; ipv4: string; ipv6: string }[];
    const view = await this.account(accountId).view;
    const result: AuthorizationForGateway[] = [];
    const held = this.heldBy(connection);
    for (const row of rows) {
      const resource = view.resource(row.resource_id);
      if (resource === undefined) continue;
      held.set(row.id, { clientDeviceId: row.client_id, resourceId: row.resource_id, policyId: row.policy_id, actorId: row.actor_id, expiresAt: new Date(row.expires_at).getTime() });
      this.heldPairs.get(connection)!.set(`${row.client_id}/${row.resource_id}`, row.id);
      const secrets = this.secretsOf(accountId, row.public_key, gateway.publicKey);
      result.push({
        authorization_id: row.id,
        client: { id: row.client_id, public_key: row.public_key, ipv4: row.ipv4, ipv6: row.ipv6, preshared_key: secrets.presharedKey },
        resource: { id: resource.id, type: resource.type, name: resource.name, address: resource.address, filters: filtersOf(resource) },
        client_ice: secrets.clientIce,
        gateway_ice: secrets.gatewayIce,
        expires_at: new Date(row.expires_at).toISOString(),
      });
    }
    return result;
  }

  /**
   * The relays a device should allocate on: of the account's relays online on any node, the
   * RELAYS_PER_DEVICE nearest to it, with credentials for each. Near is by great-circle distance
   * between the device's address and the relay's, from the GeoIP database when one is configured and
   * knows both places, in steps of NEAR_STEP_KM; relays as near as each other (or of unknown place, all
   * of them without a database) are ranked by rendezvous hashing, so devices spread evenly and each
   * keeps its relays while others come and go.
   */
  private async relaysFor(accountId: string, connection: DeviceConnection): Promise<Relay[]> {
    const deviceId = connection.device!.id;
    const online = await this.options.presence.onlineOfKind(accountId, "relay");
    const ids = [...online.keys()];
    if (ids.length === 0) return [];
    const rows = (await this.options.db.query(
      `SELECT e.relay_id, host(e.ipv4) AS ipv4, host(e.ipv6) AS ipv6, e.port, t.secret_hash
         FROM relay_endpoints e JOIN tokens t ON t.account_id = e.account_id AND t.id = e.relay_id
        WHERE e.account_id = $1 AND e.relay_id = ANY($2::uuid[])`,
      [accountId, ids],
    )) as { relay_id: string; ipv4: string | null; ipv6: string | null; port: number; secret_hash: string }[];
    const rank = (relayId: string): string => createHash("sha256").update(`${deviceId}\0${relayId}`).digest("hex");
    const here = this.locate(connection.remoteAddress);
    const steps = (row: { ipv4: string | null; ipv6: string | null }): number => {
      const there = here === null ? null : this.locate(row.ipv4 ?? row.ipv6 ?? "");
      return here === null || there === null ? Number.POSITIVE_INFINITY : Math.round(greatCircleKm(here, there) / NEAR_STEP_KM);
    };
    const expires = Math.floor((this.now() + RELAY_CREDENTIALS_MS) / 1000);
    return rows
      .map((row) => ({ row, steps: steps(row), rank: rank(row.relay_id) }))
      .sort((a, b) => (a.steps === b.steps ? a.rank.localeCompare(b.rank) : a.steps - b.steps))
      .slice(0, RELAYS_PER_DEVICE)
      .map(({ row }) => {
        const credentials = relayCredentials(relayTurnSecret(row.secret_hash), deviceId, expires);
        return {
          id: row.relay_id,
          type: "turn" as const,
          addr: row.ipv4 !== null ? `${row.ipv4}:${row.port}` : `[${row.ipv6}]:${row.port}`,
          username: credentials.username,
          password: credentials.password,
          expires_at: new Date(expires * 1000).toISOString(),
        };
      });
  }

  /** Where an address is, from the GeoIP database; null without one, or when it does not know. */
  private locate(address: string): { latitude: number; longitude: number } | null {
    if (this.options.geoip === undefined || address === "") return null;
    return this.options.geoip.lookupLocation(plainAddress(address));
  }

  /** A relay came or went on some node: the devices here that should use it, or did, hear of it. */
  private async onPresence(change: PresenceChange): Promise<void> {
    const changed = "device" in change ? [change.device] : change.devices;
    const arrived = change.event === "join" || change.event === "node_up";
    for (const gateway of changed.filter((d) => d.kind === "gateway")) {
      const state = this.accounts.get(gateway.accountId);
      if (state === undefined) continue;
      const { online } = await state.directory;
      const nodes = online.get(gateway.deviceId) ?? new Set<string>();
      if (arrived) nodes.add(change.nodeId);
      else nodes.delete(change.nodeId);
      if (nodes.size > 0) online.set(gateway.deviceId, nodes);
      else online.delete(gateway.deviceId);
      if (!arrived && nodes.size === 0) {
        const timer = setTimeout(() => {
          void state.directory.then(async (directory) => {
            if ((directory.online.get(gateway.deviceId)?.size ?? 0) === 0) await this.gatewayOffline(state, gateway.deviceId);
          }).catch((error: unknown) => this.options.log("warn", "ending a gone gateway's authorizations failed", { error: String(error) }));
        }, this.options.gatewayOfflineGraceMs ?? GATEWAY_OFFLINE_GRACE_MS);
        timer.unref();
      }
    }
    const relays = changed.filter((d) => d.kind === "relay");
    for (const relay of relays) {
      const state = this.accounts.get(relay.accountId);
      if (state === undefined) continue;
      const devices = [...state.clients, ...state.gateways];
      try {
        if (change.event === "join" || change.event === "node_up") {
          for (const device of devices) {
            const mine = await this.relaysFor(relay.accountId, device);
            if (mine.some((r) => r.id === relay.deviceId)) device.push("relays_presence", { connected: mine.filter((r) => r.id === relay.deviceId), disconnected_ids: [] });
          }
        } else {
          const still = await this.options.presence.online(relay.accountId, [relay.deviceId]);
          if ((still.get(relay.deviceId) ?? []).length > 0) continue;
          for (const device of devices) {
            // Its replacement: the relay that now ranks in this device's top two, if there is one.
            const mine = await this.relaysFor(relay.accountId, device);
            device.push("relays_presence", { connected: mine, disconnected_ids: [relay.deviceId] });
          }
        }
      } catch (error) {
        this.options.log("warn", "relay presence push failed", { error: String(error), account: relay.accountId });
      }
    }
  }

  /**
   * A gateway is online on no node (for the grace period): what the clients here hold through it has ended. Each client hears
   * authorization_creation_failed ("offline") about it, drops it, and asks again on its next packet,
   * when another gateway of the site can be picked; the records say why they ended.
   */
  private async gatewayOffline(state: AccountState, gatewayDeviceId: string): Promise<void> {
    for (const connection of state.clients) {
      const held = [...(this.clients.get(connection)?.authorizations.values() ?? [])].filter((a) => a.gatewayDeviceId === gatewayDeviceId);
      for (const authorization of held) {
        // Nothing to tell the gateway: it is gone, and a gateway that comes back is given only live records.
        if (this.endReplaced(connection, authorization, "gateway_offline")) {
          connection.push("authorization_creation_failed", { resource_id: authorization.resourceId, reason: "offline" });
        }
      }
    }
  }

  closed(connection: DeviceConnection): void {
    const accountId = connection.principal.accountId;
    const state = this.accounts.get(accountId);
    state?.clients.delete(connection);
    state?.gateways.delete(connection);
    state?.relays.delete(connection);
    if (state !== undefined && connection.role === "gateway" && ![...state.gateways].some((g) => g.device?.id === connection.device?.id)) {
      void state.directory.then((directory) => directory.online.get(connection.device!.id)?.delete(this.options.nodes.nodeId));
    }
    this.dropClientTimers(connection);
    clearTimeout(this.tokenTimers.get(connection));
    const deviceId = connection.device?.id ?? connection.principal.tokenId;
    void this.options.presence.leave(accountId, deviceId).catch((error: unknown) => this.options.log("warn", "presence leave failed", { error: String(error) }));
  }

  private async interfaceOf(state: AccountState, device: Device): Promise<Interface> {
    const own = await state.upstreamDns;
    return { ipv4: device.ipv4, ipv6: device.ipv6, upstream_dns: own.length > 0 ? own : (this.options.upstreamDns ?? []) };
  }

  private async clientResources(connection: DeviceConnection, view: AccountView): Promise<ClientResource[]> {
    const visible = view.resourcesVisibleTo(connection.principal.actorId!);
    if (visible.length === 0) return [];
    const { sites } = await this.account(connection.principal.accountId).directory;
    return visible
      .map((r) => ({
        id: r.id,
        type: r.type,
        name: r.name,
        address: r.address,
        address_description: r.addressDescription,
        sites: [...r.siteIds].filter((id) => sites.has(id)).map((id) => ({ id, name: sites.get(id)! })),
        filters: filtersOf(r),
      }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  // --- 2. Changes ---

  /**
   * Changes are applied one at a time per account, in the order they were notified (commit order):
   * two applied concurrently could land in either order, and a policy applied before the resource it
   * names would be dropped.
   */
  private onChange(change: ChangeNotification): Promise<void> {
    const state = this.accounts.get(change.accountId);
    if (state === undefined) return Promise.resolve();
    // A revoked token or a deleted device ends its sockets: it could not connect again either.
    if (change.table === "tokens" && change.action === "delete") void this.endSessions(state, (c) => c.principal.tokenId === change.objectId, "token_revoked");
    if (change.table === "devices" && change.action === "delete") this.disconnect(state, (c) => c.device?.id === change.objectId, "device_deleted");
    if (change.table === "devices") {
      state.applying = state.applying.then(() => this.applyDeviceChange(state, change));
      return state.applying;
    }
    if (change.table === "accounts") {
      // Settings changed: every client and gateway here gets its interface again.
      state.applying = state.applying.then(async () => {
        state.upstreamDns = new AccountScope(this.options.db, change.accountId, null).account().then((a) => a.upstreamDns);
        for (const connection of [...state.clients, ...state.gateways]) connection.push("config_changed", { interface: await this.interfaceOf(state, connection.device!) });
      });
      return state.applying;
    }
    if (!VIEW_TABLES.has(change.table)) return Promise.resolve();
    state.applying = state.applying.then(() => this.applyChange(state, change));
    return state.applying;
  }

  private async applyChange(state: AccountState, change: ChangeNotification): Promise<void> {
    try {
      const row = await this.changeRow(change);
      if (row === undefined) return;
      if (row.object_table === "sites") {
        const { sites } = await state.directory;
        if (row.action === "delete") sites.delete(row.object_id);
        else sites.set(row.object_id, (row.after as { name: string }).name);
      }
      const view = await state.view;
      view.apply({ objectTable: row.object_table, action: row.action, objectId: row.object_id, before: row.before, after: row.after });
      for (const client of state.clients) await this.refreshClient(client, view);
      await this.revokeOrphans(state, change.accountId, (held) => (grantStands(view, held) ? null : "policy"));
      // A disabled or deleted actor's clients lose their access above, then their sockets.
      if (row.object_table === "actors") {
        this.disconnect(state, (c) => c.role === "client" && (view.actor(c.principal.actorId!)?.disabled ?? true), "actor_disabled");
      }
    } catch (error) {
      this.options.log("error", "applying a change failed", { error: String((error as Error)?.stack ?? error), account: change.accountId });
    }
  }

  /** A device added, changed or removed: the gateway directory follows; a client's access is re-checked. */
  private async applyDeviceChange(state: AccountState, change: ChangeNotification): Promise<void> {
    try {
      const row = await this.changeRow(change);
      if (row === undefined) return;
      const directory = await state.directory;
      const after = row.after as (Device & { kind: string }) | null;
      if (row.action === "delete") directory.gateways.delete(row.object_id);
      else if (after !== null && after.kind === "gateway") directory.gateways.set(after.id, after);
    } catch (error) {
      this.options.log("error", "applying a device change failed", { error: String(error) });
    }
    // Verified or not is a condition: the client's device row is read again, its access re-checked.
    if (change.action === "update") await this.refreshDevice(state, change.objectId);
    // A deleted client device's authorizations end on the gateways here (its sockets are closed).
    if (change.action === "delete") {
      await this.revokeOrphans(state, change.accountId, (held) => (held.clientDeviceId === change.objectId ? "device_deleted" : null), true).catch((error: unknown) =>
        this.options.log("error", "ending a deleted device's authorizations failed", { error: String(error) }),
      );
    }
  }

  private async changeRow(change: ChangeNotification): Promise<{ object_table: string; action: "insert" | "update" | "delete"; object_id: string; before: unknown; after: unknown } | undefined> {
    const rows = (await this.options.db.query(`SELECT object_table, action, object_id, before, after FROM change_log WHERE account_id = $1 AND id = $2`, [
      change.accountId,
      change.changeId,
    ])) as { object_table: string; action: "insert" | "update" | "delete"; object_id: string; before: unknown; after: unknown }[];
    return rows[0];
  }

  private async refreshDevice(state: AccountState, deviceId: string | null): Promise<void> {
    const clients = [...state.clients].filter((c) => c.device?.id === deviceId);
    if (clients.length === 0) return;
    try {
      const device = await clients[0]!.scope.repository(DeviceEntity).get(deviceId!);
      if (device === null) return;
      const view = await state.view;
      for (const client of clients) {
        client.device = device;
        await this.refreshClient(client, view);
      }
    } catch (error) {
      this.options.log("error", "refreshing a device failed", { error: String(error) });
    }
  }

  /** Notifications may have been missed: reload every view and bring every client up to date. */
  private async resync(): Promise<void> {
    for (const [accountId, state] of this.accounts) {
      state.applying = state.applying.then(async () => {
        state.view = settles(AccountView.load(new AccountScope(this.options.db, accountId, null)));
        const view = await state.view;
        for (const client of state.clients) await this.refreshClient(client, view);
        await this.revokeOrphans(state, accountId, (held) => (grantStands(view, held) ? null : "policy"));
      });
      await state.applying.catch((error: unknown) => this.options.log("error", "resync failed", { error: String(error), account: accountId }));
    }
  }

  private async refreshClient(connection: DeviceConnection, view: AccountView): Promise<void> {
    const client = this.clients.get(connection);
    if (client === undefined) return;
    // Authorizations first: access the policy no longer allows ends before anything else is said.
    for (const authorization of [...client.authorizations.values()]) {
      const decision = this.decide(connection, view, authorization.resourceId);
      if (!decision.allowed) await this.revoke(connection, authorization, "policy");
    }
    const now = await this.clientResources(connection, view);
    const seen = new Set<string>();
    for (const resource of now) {
      seen.add(resource.id);
      const text = JSON.stringify(resource);
      if (client.sent.get(resource.id) !== text) {
        client.sent.set(resource.id, text);
        connection.push("resource_created_or_updated", resource);
      }
    }
    for (const id of [...client.sent.keys()]) {
      if (!seen.has(id)) {
        client.sent.delete(id);
        connection.push("resource_deleted", { id });
      }
    }
  }

  // --- 3. Authorization ---

  private decide(connection: DeviceConnection, view: AccountView, resourceId: string): Decision {
    const actorId = connection.principal.actorId!;
    const clientIp = plainAddress(connection.remoteAddress) || null;
    return evaluate(
      view.policiesFor(resourceId),
      {
        actorId,
        groupIds: view.groupsOf(actorId),
        providerId: connection.principal.providerId,
        clientIp,
        region: clientIp !== null && this.options.geoip !== undefined ? this.options.geoip.lookupCountry(clientIp) : null,
        clientVerified: connection.device?.verifiedAt !== null && connection.device?.verifiedAt !== undefined,
        tokenExpiresAt: connection.principal.tokenExpiresAt,
      },
      resourceId,
      new Date(this.now()),
    );
  }

  /** Answered at once where it can be (an authorization's request and acknowledgement), so the socket's next frame need not wait a turn. */
  event(connection: DeviceConnection, event: string, payload: Record<string, unknown>): object | LaterReply | Promise<object> {
    if (connection.role === "client" && event === "request_authorization") {
      // Answered once the outcome (authorization_created or authorization_creation_failed) is pushed.
      return new LaterReply(
        this.authorize(connection, payload.resource_id as string, (payload.connected_gateway_ids as string[] | undefined) ?? []).then(
          () => ({}),
          (error: unknown) => {
            this.options.log("error", "authorization failed", { error: String((error as Error)?.stack ?? error) });
            connection.push("authorization_creation_failed", { resource_id: payload.resource_id as string, reason: "gateway_failed" });
            return {};
          },
        ),
      );
    }
    if (connection.role === "gateway" && (event === "authorization_created" || event === "authorization_creation_failed")) {
      this.settleAck(connection, payload.authorization_id as string, event === "authorization_created", payload.reason as string | undefined);
      return {};
    }
    if (event === "ice_candidates" || event === "invalidate_ice_candidates") return this.relayCandidates(connection, event, payload).then(() => ({}));
    if (connection.role === "relay" && event === "load") return this.recordRelayLoad(connection, payload as unknown as RelayLoad).then(() => ({}));
    return {};
  }

  /**
   * A relay's report of its load, written beside its addresses for any node's admin API to read. A
   * relay reports at most once a second; reports closer together than RELAY_LOAD_MIN_MS are answered
   * and dropped, so a misbehaving relay cannot turn its socket into a stream of writes.
   */
  private async recordRelayLoad(connection: DeviceConnection, load: RelayLoad): Promise<void> {
    const now = this.now();
    const last = this.relayLoadAt.get(connection);
    if (last !== undefined && now - last < RELAY_LOAD_MIN_MS) return;
    this.relayLoadAt.set(connection, now);
    const accountId = connection.principal.accountId;
    const relayId = connection.principal.tokenId;
    // A SELECT over the UPDATE, so that both drivers answer with plain rows.
    const written = (await this.options.db.query(
      `WITH written AS (
         UPDATE relay_endpoints SET allocations = $3, channels = $4, bytes_per_second = $5, load_at = now() WHERE account_id = $1 AND relay_id = $2 RETURNING load_at
       ) SELECT load_at FROM written`,
      [accountId, relayId, load.allocations, load.channels, load.bytes_per_second],
    )) as { load_at: Date | string }[];
    if (written.length === 0) return;
    const notice: RelayLoadReported = {
      type: "relay_load",
      accountId,
      relayId,
      load: { allocations: load.allocations, channels: load.channels, bytes_per_second: load.bytes_per_second, reported_at: new Date(written[0]!.load_at).toISOString() },
    };
    this.options.nodes.broadcast(notice).catch(() => undefined);
  }

  /**
   * A device's ICE candidates for its peer, passed on (5. of DESIGN's connection flow) only between a
   * client and a gateway that an authorization joins: a client's to a gateway it holds one through, a
   * gateway's to a client it holds one for. Anything else is dropped and counted: a device cannot
   * reach devices it has no business with.
   */
  private async relayCandidates(connection: DeviceConnection, event: CandidateEvent, payload: Record<string, unknown>): Promise<void> {
    const accountId = connection.principal.accountId;
    const candidates = payload.candidates as string[];
    if (connection.role === "client") {
      const gatewayId = payload.gateway_id as string;
      const through = [...(this.clients.get(connection)?.authorizations.values() ?? [])].find((a) => a.gatewayDeviceId === gatewayId);
      if (through === undefined) {
        this.candidatesDropped++;
        return;
      }
      await this.toGateway(accountId, gatewayId, through.gatewayNode, { type: "client_candidates", accountId, gatewayDeviceId: gatewayId, event, payload: { client_id: connection.device!.id, candidates } });
      return;
    }
    if (connection.role !== "gateway") return;
    const clientId = payload.client_id as string;
    const held = [...(this.held.get(connection)?.values() ?? [])].find((h) => h.clientDeviceId === clientId);
    if (held === undefined) {
      this.candidatesDropped++;
      return;
    }
    const message: NodeMessage = { type: "gateway_candidates", accountId, clientDeviceId: clientId, event, payload: { gateway_id: connection.device!.id, candidates } };
    // Authorized through this node, or (re-synced from the database) wherever the client is now.
    const nodes = held.clientNode !== undefined ? [held.clientNode] : ((await this.options.presence.online(accountId, [clientId])).get(clientId) ?? []);
    for (const node of nodes) {
      if (node === this.options.nodes.nodeId) this.deliverToClient(message);
      else await this.options.nodes.send(node, message);
    }
  }

  /** Candidates from a gateway for a client connected here. */
  private deliverToClient(message: Extract<NodeMessage, { type: "gateway_candidates" }>): void {
    for (const client of this.accounts.get(message.accountId)?.clients ?? []) {
      if (client.device?.id === message.clientDeviceId) client.push(message.event, message.payload);
    }
  }

  private async authorize(connection: DeviceConnection, resourceId: string, preferred: string[]): Promise<void> {
    const accountId = connection.principal.accountId;
    const account = this.account(accountId);
    const view = settledValue(account.view) ?? (await account.view);
    const fail = (reason: string, violated?: ViolatedCondition[]): void => {
      connection.push("authorization_creation_failed", { resource_id: resourceId, reason, ...(violated !== undefined ? { violated_conditions: violated } : {}) });
    };
    const resource = view.resource(resourceId);
    if (resource === undefined) return fail("not_found");
    const decision = this.decide(connection, view, resourceId);
    if (!decision.allowed) {
      this.decisions.denied++;
      // No policy grants it to this actor at all: the client was never told of it, and is not now.
      if (decision.reason === "no_policy") return fail("not_found");
      return fail("denied", decision.violated.flatMap((v) => v.conditions) as ViolatedCondition[]);
    }
    // From the loaded directory at once; pickGateway waits for it, and says why none could be picked.
    const version = connection.device?.version;
    const directory = settledValue(account.directory);
    const picked = (directory !== undefined ? this.pickFrom(directory, resource, preferred, version) : undefined) ?? (await this.pickGateway(accountId, resource, preferred, version));
    if ("failure" in picked) {
      this.decisions.failed++;
      return fail(picked.failure);
    }
    const gateway = picked;
    const now = this.now();
    const expiresAt = Math.min(decision.until?.getTime() ?? Infinity, now + AUTHORIZATION_MAX_MS);
    const client = connection.device!;
    const secrets = this.secretsOf(accountId, client.publicKey, gateway.device.publicKey);
    const id = randomUUID();
    const expiresIso = new Date(expiresAt).toISOString();
    await this.options.recorder.record({
      accountId,
      id,
      clientDeviceId: client.id,
      gatewayDeviceId: gateway.device.id,
      resourceId,
      policyId: decision.policyId,
      actorId: connection.principal.actorId!,
      createdAt: new Date(now),
      expiresAt: new Date(expiresAt),
    });
    const forGateway: AuthorizationForGateway = {
      authorization_id: id,
      client: { id: client.id, public_key: client.publicKey, ipv4: client.ipv4, ipv6: client.ipv6, preshared_key: secrets.presharedKey },
      resource: { id: resource.id, type: resource.type, name: resource.name, address: resource.address, filters: filtersOf(resource) } satisfies GatewayResource,
      client_ice: secrets.clientIce,
      gateway_ice: secrets.gatewayIce,
      expires_at: expiresIso,
    };
    const acked = this.awaitAck(id);
    const sending = this.toGateway(
      accountId,
      gateway.device.id,
      gateway.node,
      {
        type: "create_authorization",
        accountId,
        gatewayDeviceId: gateway.device.id,
        payload: forGateway,
        replyTo: this.options.nodes.nodeId,
        grant: { policyId: decision.policyId, actorId: connection.principal.actorId! },
      },
      // Written only for a gateway on this node; another node writes the payload it is sent.
      () => createAuthorizationJson(id, this.deviceParts.client(client), secrets.parts, view.gatewayResourceJson(resource.id) ?? JSON.stringify(forGateway.resource), expiresIso),
    );
    if (sending !== undefined) await sending;
    const ack = await acked;
    if (!ack.ok) {
      this.decisions.failed++;
      await this.options.recorder.revoke(accountId, [id], ack.reason ?? "gateway_failed");
      // The gateway may have installed it after all: it is told to drop it.
      await this.toGateway(accountId, gateway.device.id, gateway.node, { type: "reject_access", accountId, gatewayDeviceId: gateway.device.id, payload: { authorization_id: id, client_id: client.id, resource_id: resourceId } });
      return fail(ack.reason === "timeout" ? "timeout" : "gateway_failed");
    }
    this.decisions.allowed++;
    const state = this.clients.get(connection);
    if (state === undefined || connection.closed) {
      // The client left while the gateway installed it: nobody holds it, so it ends now.
      await this.options.recorder.revoke(accountId, [id], "client_gone");
      await this.toGateway(accountId, gateway.device.id, gateway.node, { type: "reject_access", accountId, gatewayDeviceId: gateway.device.id, payload: { authorization_id: id, client_id: client.id, resource_id: resourceId } });
      return;
    }
    const authorization: ClientAuthorization = {
      id,
      resourceId,
      policyId: decision.policyId,
      gatewayDeviceId: gateway.device.id,
      gatewayNode: gateway.node,
      expiresAt,
      timer: setTimeout(() => void this.expire(connection, id), Math.max(0, Math.min(expiresAt - this.now(), 2 ** 31 - 1))),
    };
    authorization.timer.unref();
    // A client holds one authorization per resource: asking again (a reconnect, another gateway)
    // supersedes the one before, which ends on its gateway too.
    const superseded: ClientAuthorization[] = [];
    for (const held of state.authorizations.values()) if (held.resourceId === resourceId) superseded.push(held);
    state.authorizations.set(id, authorization);
    // On the same gateway the new one has replaced it already (a gateway holds one authorization per
    // client and resource): only the record is marked. On another gateway it is rejected there.
    for (const old of superseded) {
      if (old.gatewayDeviceId === gateway.device.id) this.endReplaced(connection, old, "superseded");
      else await this.end(connection, old, "superseded");
    }
    this.gatewayLoad.set(gateway.device.id, (this.gatewayLoad.get(gateway.device.id) ?? 0) + 1);
    connection.pushJson("authorization_created", authorizationCreatedJson(resource.id, this.deviceParts.gateway(gateway.device), secrets.parts, expiresIso));
  }

  /**
   * An online gateway of one of the resource's sites, of a version compatible with the client's, and the
   * node its socket is on; or why there is none: no gateway online ("offline"), or none of a compatible
   * version ("version_mismatch").
   */
  private async pickGateway(
    accountId: string,
    resource: ViewResource,
    preferred: string[],
    clientVersion: string | null | undefined,
    retry = true,
  ): Promise<{ device: Device; node: string } | { failure: "offline" | "version_mismatch" }> {
    const directory = await this.account(accountId).directory;
    const picked = this.pickFrom(directory, resource, preferred, clientVersion);
    if (picked !== undefined) return picked;
    for (const [id, nodes] of directory.online) {
      const gateway = directory.gateways.get(id);
      if (nodes.size > 0 && gateway?.siteId != null && resource.siteIds.has(gateway.siteId)) return { failure: "version_mismatch" };
    }
    // Perhaps an announcement was missed: read the directory again, at most once a second.
    const state = this.account(accountId);
    if (retry && this.now() - (this.directoryReloadedAt.get(accountId) ?? 0) > 1000) {
      this.directoryReloadedAt.set(accountId, this.now());
      state.directory = settles(this.loadDirectory(new AccountScope(this.options.db, accountId, null)));
      return this.pickGateway(accountId, resource, preferred, clientVersion, false);
    }
    return { failure: "offline" };
  }

  /**
   * pickGateway's choice from a loaded directory: among the online gateways of the resource's sites
   * of a compatible version, one the client named as connected already if any, then the least
   * loaded, the first found on a tie. Undefined when there is none (pickGateway says why).
   */
  private pickFrom(directory: Directory, resource: ViewResource, preferred: string[], clientVersion: string | null | undefined): { device: Device; node: string } | undefined {
    let best: Device | undefined;
    let bestNodes: Set<string> | undefined;
    let bestPreferred = false;
    let bestLoad = 0;
    for (const [id, nodes] of directory.online) {
      const gateway = directory.gateways.get(id);
      if (nodes.size === 0 || gateway?.siteId == null || !resource.siteIds.has(gateway.siteId) || !versionsCompatible(clientVersion, gateway.version)) continue;
      const isPreferred = preferred.length > 0 && preferred.includes(id);
      const load = this.gatewayLoad.get(id) ?? 0;
      if (best === undefined || (isPreferred && !bestPreferred) || (isPreferred === bestPreferred && load < bestLoad)) {
        best = gateway;
        bestNodes = nodes;
        bestPreferred = isPreferred;
        bestLoad = load;
      }
    }
    if (best === undefined) return undefined;
    return { device: best, node: bestNodes!.values().next().value! };
  }

  private awaitAck(authorizationId: string): Promise<{ ok: boolean; reason?: string }> {
    return new Promise((resolve) => {
      this.pendingAcks.set(authorizationId, {
        deadline: this.now() + this.ackTimeoutMs,
        resolve: (ok, reason) => resolve(reason === undefined ? { ok } : { ok, reason }),
      });
    });
  }

  /**
   * A gateway connected here answered: the node that asked hears of it. An authorization it installed
   * replaced any other it held for the same client and resource, which is forgotten here too.
   */
  private settleAck(gateway: DeviceConnection, authorizationId: string, ok: boolean, reason?: string): void {
    const node = this.ackRoutes.get(authorizationId)?.node;
    if (node === undefined) return;
    this.ackRoutes.delete(authorizationId);
    if (ok) this.replaceHeld(gateway, authorizationId);
    this.replyAck(node, authorizationId, ok, reason);
  }

  /** `authorizationId`, installed on the gateway, takes the place of the one it held for the same client and resource. */
  private replaceHeld(gateway: DeviceConnection, authorizationId: string): void {
    const held = this.heldBy(gateway);
    const installed = held.get(authorizationId);
    if (installed === undefined) return;
    const pairs = this.heldPairs.get(gateway)!;
    const pair = `${installed.clientDeviceId}/${installed.resourceId}`;
    const before = pairs.get(pair);
    if (before !== undefined && before !== authorizationId) held.delete(before);
    pairs.set(pair, authorizationId);
  }

  private secretsOf(accountId: string, clientPublicKey: string, gatewayPublicKey: string): PairSecrets & { parts: PairParts } {
    const key = `${accountId}/${clientPublicKey}/${gatewayPublicKey}`;
    let secrets = this.pairCache.get(key);
    if (secrets === undefined) {
      if (this.pairCache.size >= 50_000) this.pairCache.clear();
      const derived = pairSecrets(this.options.pairSecret, accountId, clientPublicKey, gatewayPublicKey);
      secrets = { ...derived, parts: pairParts(derived) };
      this.pairCache.set(key, secrets);
    }
    return secrets;
  }

  // --- 4. Revocation ---

  private async expire(connection: DeviceConnection, authorizationId: string): Promise<void> {
    const authorization = this.clients.get(connection)?.authorizations.get(authorizationId);
    if (authorization !== undefined) await this.revoke(connection, authorization, "expired");
  }

  private async revoke(connection: DeviceConnection, authorization: ClientAuthorization, reason: string): Promise<void> {
    if (!(await this.end(connection, authorization, reason))) return;
    this.clients.get(connection)!.sent.delete(authorization.resourceId);
    connection.push("resource_deleted", { id: authorization.resourceId });
  }

  /** Ends an authorization: forgotten here, dropped by its gateway (told with reject_access), revoked in its record. */
  private async end(connection: DeviceConnection, authorization: ClientAuthorization, reason: string): Promise<boolean> {
    if (!this.forget(connection, authorization)) return false;
    const accountId = connection.principal.accountId;
    // The gateway first: access ends as soon as it can, and a crash before the record's revoked_at is
    // written leaves a record claiming access a little longer than it lasted, never the reverse.
    await this.toGateway(accountId, authorization.gatewayDeviceId, authorization.gatewayNode, {
      type: "reject_access",
      accountId,
      gatewayDeviceId: authorization.gatewayDeviceId,
      payload: { authorization_id: authorization.id, client_id: connection.device!.id, resource_id: authorization.resourceId },
    });
    this.revokeRecord(accountId, authorization.id, reason);
    return true;
  }

  /**
   * end() of an authorization its gateway no longer holds, so not told: the gateway acknowledged
   * another for the same client and resource, which took its place there, or the gateway is gone.
   */
  private endReplaced(connection: DeviceConnection, authorization: ClientAuthorization, reason: string): boolean {
    if (!this.forget(connection, authorization)) return false;
    this.revokeRecord(connection.principal.accountId, authorization.id, reason);
    return true;
  }

  /** Forgets a client's authorization here; false when it was not held (ended already). */
  private forget(connection: DeviceConnection, authorization: ClientAuthorization): boolean {
    const state = this.clients.get(connection);
    if (state === undefined || !state.authorizations.delete(authorization.id)) return false;
    clearTimeout(authorization.timer);
    this.gatewayLoad.set(authorization.gatewayDeviceId, Math.max(0, (this.gatewayLoad.get(authorization.gatewayDeviceId) ?? 1) - 1));
    return true;
  }

  /** Nobody waits on the record: not the client's resource_deleted, nor a superseding authorization. */
  private revokeRecord(accountId: string, authorizationId: string, reason: string): void {
    this.options.recorder.revoke(accountId, [authorizationId], reason).catch((error: unknown) => this.options.log("error", "recording a revocation failed", { error: String(error), authorization: authorizationId, reason }));
  }

  /**
   * A token revoked or expired: what its clients were authorized to ends on the gateways (reject_access,
   * the records revoked with `reason`), then their sockets are closed. A WireGuard session to a gateway
   * would otherwise outlive the token it was granted under.
   */
  private async endSessions(state: AccountState, match: (connection: DeviceConnection) => boolean, reason: string): Promise<void> {
    try {
      for (const connection of [...state.clients].filter(match)) {
        for (const authorization of [...(this.clients.get(connection)?.authorizations.values() ?? [])]) await this.revoke(connection, authorization, reason);
      }
    } catch (error) {
      this.options.log("error", "ending a token's authorizations failed", { error: String(error), reason });
    }
    this.disconnect(state, match, reason);
  }

  /** Tells the matching sockets why, then closes them (4003: the device must not simply reconnect). */
  private disconnect(state: AccountState, match: (connection: DeviceConnection) => boolean, reason: string): void {
    for (const connection of [...state.clients, ...state.gateways, ...state.relays]) {
      if (!match(connection)) continue;
      connection.push("disconnect", { reason });
      connection.close(4003, reason);
    }
  }

  private dropClientTimers(connection: DeviceConnection): void {
    const state = this.clients.get(connection);
    if (state === undefined) return;
    for (const authorization of state.authorizations.values()) clearTimeout(authorization.timer);
  }

  // --- Between nodes ---

  /**
   * Delivers a message for a gateway: to its socket when it is here, at once (undefined), else to its
   * node (the node bus's send, to await). `payloadJson`, when given, writes the message's payload as
   * JSON text for a gateway on this node.
   */
  private toGateway(accountId: string, gatewayDeviceId: string, node: string, message: NodeMessage, payloadJson?: () => string): Promise<void> | undefined {
    if (node !== this.options.nodes.nodeId) return this.options.nodes.send(node, message);
    this.deliverToGateway(accountId, gatewayDeviceId, message, payloadJson);
    return undefined;
  }

  private deliverToGateway(accountId: string, gatewayDeviceId: string, message: NodeMessage, payloadJson?: () => string): void {
    // The first connection of that gateway (a reconnect may overlap the socket it replaces), found
    // without copying the set: this runs for every authorization.
    let gateway: DeviceConnection | undefined;
    for (const g of this.accounts.get(accountId)?.gateways ?? []) {
      if (g.device?.id === gatewayDeviceId) {
        gateway = g;
        break;
      }
    }
    if (message.type === "create_authorization") {
      if (gateway === undefined) {
        this.replyAck(message.replyTo, message.payload.authorization_id, false, "gateway_failed");
        return;
      }
      const authorizationId = message.payload.authorization_id;
      // The asking node gives up after its timeout; the route is not needed after twice that.
      this.ackRoutes.set(authorizationId, { node: message.replyTo, forgetAt: this.now() + 2 * this.ackTimeoutMs });
      const held = this.heldBy(gateway);
      // Authorizations that ran out without a revocation are forgotten now and then, not only on changes.
      if (held.size >= HELD_PRUNE_AT && held.size % HELD_PRUNE_AT === 0) {
        const now = this.now();
        for (const [id, h] of held) if (h.expiresAt <= now) held.delete(id);
        const pairs = this.heldPairs.get(gateway)!;
        for (const [pair, id] of pairs) if (!held.has(id)) pairs.delete(pair);
      }
      held.set(authorizationId, {
        clientDeviceId: message.payload.client.id,
        clientNode: message.replyTo,
        resourceId: message.payload.resource.id,
        policyId: message.grant.policyId,
        actorId: message.grant.actorId,
        expiresAt: Date.parse(message.payload.expires_at),
      });
      if (payloadJson !== undefined) gateway.pushJson("create_authorization", payloadJson());
      else gateway.push("create_authorization", message.payload);
    } else if (message.type === "reject_access") {
      // Once: the client's node and the gateway's may both end the same authorization.
      if (gateway !== undefined && this.heldBy(gateway).delete(message.payload.authorization_id)) gateway.push("reject_access", message.payload);
    } else if (message.type === "client_candidates") {
      // Only while the gateway holds an authorization for that client (it may have just ended).
      const clientId = message.payload.client_id;
      if (gateway !== undefined && [...this.heldBy(gateway).values()].some((h) => h.clientDeviceId === clientId)) gateway.push(message.event, message.payload);
      else this.candidatesDropped++;
    }
  }

  private heldBy(gateway: DeviceConnection): Map<string, HeldAuthorization> {
    let held = this.held.get(gateway);
    if (held === undefined) {
      held = new Map();
      this.held.set(gateway, held);
      this.heldPairs.set(gateway, new Map());
    }
    return held;
  }

  /**
   * The authorizations the gateways here hold that `ended` says are over (with why), and whose client is
   * connected to no node, end here: reject_access to the gateway, and the record revoked. A connected
   * client's own node re-evaluates its authorizations with its address and device, and may find another
   * policy that still allows one. Fails closed: an offline client asks again when it returns. With
   * `evenIfConnected` (the client's device is gone) the client's presence does not matter.
   */
  private async revokeOrphans(state: AccountState, accountId: string, ended: (held: HeldAuthorization) => string | null, evenIfConnected = false): Promise<void> {
    const now = this.now();
    const candidates: { gateway: DeviceConnection; id: string; held: HeldAuthorization; reason: string }[] = [];
    for (const gateway of state.gateways) {
      const held = this.held.get(gateway);
      if (held === undefined) continue;
      for (const [id, h] of held) {
        if (h.expiresAt <= now) {
          held.delete(id); // the gateway drops it at its expiry by itself
          continue;
        }
        const reason = ended(h);
        if (reason !== null) candidates.push({ gateway, id, held: h, reason });
      }
    }
    if (candidates.length === 0) return;
    const online = evenIfConnected ? new Map<string, string[]>() : await this.options.presence.online(accountId, [...new Set(candidates.map((c) => c.held.clientDeviceId))]);
    for (const c of candidates) {
      if ((online.get(c.held.clientDeviceId) ?? []).length > 0) continue;
      if (!this.heldBy(c.gateway).delete(c.id)) continue;
      c.gateway.push("reject_access", { authorization_id: c.id, client_id: c.held.clientDeviceId, resource_id: c.held.resourceId });
      void this.options.recorder.revoke(accountId, [c.id], c.reason).catch((error: unknown) => this.options.log("error", "recording a revocation failed", { error: String(error), authorization: c.id }));
    }
  }

  /** Where each create_authorization sent to a gateway here came from, for its acknowledgement. */
  private readonly ackRoutes = new Map<string, { node: string; forgetAt: number }>();

  private replyAck(node: string, authorizationId: string, ok: boolean, reason?: string): void {
    if (node === this.options.nodes.nodeId) this.settleLocal(authorizationId, ok, reason);
    else void this.options.nodes.send(node, { type: "authorization_ack", accountId: "", authorizationId, ok, ...(reason !== undefined ? { reason } : {}) } satisfies NodeMessage);
  }

  private settleLocal(authorizationId: string, ok: boolean, reason?: string): void {
    const pending = this.pendingAcks.get(authorizationId);
    if (pending === undefined) return;
    this.pendingAcks.delete(authorizationId);
    pending.resolve(ok, reason);
  }

  private async onNodeMessage(message: NodeMessage): Promise<void> {
    if (typeof message !== "object" || message === null) return;
    switch (message.type) {
      case "create_authorization":
      case "reject_access":
        this.deliverToGateway(message.accountId, message.gatewayDeviceId, message);
        break;
      case "authorization_ack":
        this.settleLocal(message.authorizationId, message.ok, message.reason);
        break;
      case "client_candidates":
        this.deliverToGateway(message.accountId, message.gatewayDeviceId, message);
        break;
      case "gateway_candidates":
        this.deliverToClient(message);
        break;
      default:
        break;
    }
  }
}
