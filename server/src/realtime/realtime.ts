// One portal node's realtime side, started and stopped as a unit: the change bus and node bus (LISTEN
// connections), presence (this node in portal_nodes, its devices in presence), the authorization
// recorder, the hub, and the channel server the HTTP server hands WebSocket upgrades to.

import type { DataSource } from "typeorm";
import type { AuthGuard } from "../auth/auth.guard.js";
import type { RateLimiter } from "../auth/rate-limit.js";
import type { DevicesService } from "../devices/devices.service.js";
import type { GeoIpReader } from "../policy/geoip.js";
import { RecordedAnnouncer, serveActivity } from "./activity.js";
import { AuthorizationRecorder } from "./authorization-recorder.js";
import { ChangeBus } from "./change-bus.js";
import { ChannelServer } from "./channel-server.js";
import { RealtimeHub } from "./hub.js";
import { NodeBus } from "./node-bus.js";
import { PAIR_SECRET_NAME, sharedSecret } from "./pair-secrets.js";
import { Presence, type PresenceOptions } from "./presence.js";

export interface RealtimeSettings {
  /** DNS servers clients forward non-resource queries to; empty: the system's. */
  upstreamDns?: string[];
  geoip?: GeoIpReader;
  presence?: PresenceOptions;
  /** How long a gateway has to acknowledge an authorization (default AUTHORIZATION_TIMEOUT_MS). */
  authorizationTimeoutMs?: number;
  /** How long a gateway may be offline before clients' authorizations through it end (default GATEWAY_OFFLINE_GRACE_MS). */
  gatewayOfflineGraceMs?: number;
}

export interface Realtime {
  channels: ChannelServer;
  hub: RealtimeHub;
  nodes: NodeBus;
  changes: ChangeBus;
  presence: Presence;
  recorder: AuthorizationRecorder;
  stop(): Promise<void>;
}

type Log = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export async function startRealtime(options: { db: DataSource; guard: AuthGuard; limiter: RateLimiter; devices: DevicesService; log: Log } & RealtimeSettings): Promise<Realtime> {
  const { db, log } = options;
  const onError = (error: unknown): void => log("warn", "realtime connection trouble", { error: String(error) });
  const changes = new ChangeBus(db, { onError });
  const nodes = new NodeBus(db, { onError });
  await changes.start();
  await nodes.start();
  const presence = new Presence(db, nodes, { onError, ...options.presence });
  await presence.start();
  const recorder = new AuthorizationRecorder(db);
  const announcer = new RecordedAnnouncer(nodes);
  recorder.onRecorded = (counts) => announcer.add(counts);
  const stopActivity = serveActivity(db, nodes);
  const hub = new RealtimeHub({
    db,
    changes,
    nodes,
    presence,
    recorder,
    pairSecret: await sharedSecret(db, PAIR_SECRET_NAME),
    geoip: options.geoip,
    ...(options.upstreamDns !== undefined ? { upstreamDns: options.upstreamDns } : {}),
    ...(options.authorizationTimeoutMs !== undefined ? { authorizationTimeoutMs: options.authorizationTimeoutMs } : {}),
    ...(options.gatewayOfflineGraceMs !== undefined ? { gatewayOfflineGraceMs: options.gatewayOfflineGraceMs } : {}),
    log,
  });
  const channels = new ChannelServer({ db, guard: options.guard, limiter: options.limiter, devices: options.devices, handlers: hub, log });
  return {
    channels,
    hub,
    nodes,
    changes,
    presence,
    recorder,
    async stop() {
      stopActivity();
      announcer.stop();
      await channels.close();
      hub.stop();
      await presence.stop();
      await nodes.stop();
      await changes.stop();
    },
  };
}
