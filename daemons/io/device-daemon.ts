// What the client and gateway daemons (client-daemon.ts, gateway-daemon.ts) share: their options,
// the identity and the I/O they open before anything else, the portal socket's lifecycle events
// (logged; a sign-out is fatal), the status endpoints, and the metrics every device exposes.
//
// 1. start: the identity (the state directory's key), the TUN device and UDP socket (DeviceIo), and
//    the status endpoints; any of them failing fails the start with a message naming it.
// 2. The portal socket is made by the role (it knows the role); `channelEvent` logs joins and
//    disconnects and turns a sign-out (the token refused or revoked) into `fatal`.
// 3. stop: the portal socket closed, the role's host changes undone, the I/O closed, the status
//    server closed; each step runs even if one before it failed.

import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { DeviceCore } from "../proto/tunnel/device-core.js";
import type { TunnelEvent, TunnelNodeOptions } from "../proto/tunnel/node.js";
import { Engine } from "../engine/index.js";
import { engineTransportAead } from "./aead-engine.js";
import { nodeX25519 } from "./x25519-node.js";
import type { DeviceRole } from "../proto/portal/schema.js";
import { DeviceIo } from "./device-io.js";
import { loadOrCreateIdentity, type DeviceIdentity } from "./device-state.js";
import type { Log } from "./log.js";
import { PortalSocket, type PortalSocketEvent } from "./portal-socket.js";
import { metricFamily, serveStatus, type StatusServer } from "./status-http.js";

/** What both daemons are started with. */
export interface DeviceDaemonOptions {
  portalUrl: string;
  token: string;
  /** Where the private key (and the client's DNS backup) live. */
  stateDir: string;
  /** The device's name in the portal. */
  name: string;
  /** The TUN device's name. */
  tunName: string;
  mtu: number;
  /** The UDP port (0: any). */
  port: number;
  /** The status endpoints' address, or undefined for none. */
  http: { host: string; port: number } | undefined;
  /** This build's version (major.minor.patch), told to the portal. */
  version: string;
  log: Log;
  /** Called once when the daemon cannot go on (signed out, TUN device gone): the owner stops it and exits 1. */
  onFatal: (reason: string) => void;
}

/** The node's key, randomness, clock origin, the engine's transport AEAD and node:crypto's X25519, as both device machines take them. */
export function nodeOptions(identity: DeviceIdentity, port: number): Omit<TunnelNodeOptions, "role"> {
  return {
    privateKey: identity.privateKey,
    aead: engineTransportAead(Engine.create()),
    x25519: nodeX25519,
    port,
    random: (n) => new Uint8Array(randomBytes(n)),
    wallClockAtZeroNanos: BigInt(Math.round(wallClockAtZeroMs() * 1e6)),
  };
}

/** Unix time in ms at performance.now() = 0. */
export function wallClockAtZeroMs(): number {
  return Date.now() - performance.now();
}

/** The shared half of a device daemon (file header). */
export abstract class DeviceDaemon<R extends DeviceRole, Output> {
  protected portal!: PortalSocket<R>;
  protected status: StatusServer | undefined;
  protected joinedOnce = false;
  /** The host changes made so far, in order (hostChange). */
  protected hostChanges: Promise<void> = Promise.resolve();
  private fatalReason: string | undefined;
  private stopping: Promise<void> | undefined;
  /** Path and session changes seen, for the metrics. */
  protected readonly tunnelEvents = { connected_direct: 0, connected_relayed: 0, disconnected: 0, sessions: 0 };

  protected constructor(
    protected readonly options: DeviceDaemonOptions,
    protected readonly identity: DeviceIdentity,
    readonly io: DeviceIo<Output>,
  ) {}

  /** The identity and I/O every device opens first (1.). */
  protected static async open<Output>(options: DeviceDaemonOptions): Promise<{ identity: DeviceIdentity; io: DeviceIo<Output> }> {
    const identity = await loadOrCreateIdentity(options.stateDir).catch((error: Error) => {
      throw new Error(`cannot use the state directory ${options.stateDir}: ${error.message}`);
    });
    const io = await DeviceIo.open<Output>({ tunName: options.tunName, mtu: options.mtu, port: options.port });
    return { identity, io };
  }

  /** The device machine once it exists. */
  protected abstract get device(): DeviceCore<Output> | undefined;
  /** Whether the daemon serves traffic (for /readyz). */
  abstract ready(): boolean;
  /** The role's own metric families. */
  protected abstract roleMetrics(): string;
  /** Undoes the role's host changes. */
  protected abstract restoreHost(): Promise<void>;

  /** The public key the portal knows this device by. */
  get publicKey(): string {
    return this.identity.publicKey;
  }

  /** Serves /healthz, /readyz, /metrics when configured. */
  protected async serveStatus(): Promise<void> {
    const http = this.options.http;
    if (http === undefined) return;
    try {
      this.status = await serveStatus(http.host, http.port, { ready: () => this.ready(), metrics: () => this.metrics() });
    } catch (error) {
      throw new Error(`cannot serve the status endpoints on ${http.host}:${http.port}: ${(error as Error).message}`);
    }
  }

  /** The status server's port, if serving. */
  get statusPort(): number | undefined {
    return this.status?.port;
  }

  /** Makes and starts the portal socket as `role`, with this device's key, name and version (2.). */
  protected joinPortal(role: R, onEvent: (event: PortalSocketEvent<R>) => void): void {
    const { options, identity, io } = this;
    this.portal = new PortalSocket({
      portalUrl: options.portalUrl,
      role,
      token: options.token,
      query: { public_key: identity.publicKey, name: options.name, version: options.version },
      onEvent,
      onInvalid: (reason) => options.log("warn", "dropped an invalid frame from the portal", { reason }),
    });
    this.portal.start();
    options.log("info", `${role} started`, { public_key: identity.publicKey, device: io.tun.name, port: io.port, portal: options.portalUrl });
  }

  /** The TUN device failed for good: logged, and fatal. */
  protected tunGone(reason: string): void {
    this.options.log("error", reason);
    this.fatal(reason);
  }

  /** Logs the portal connection's lifecycle; a sign-out is fatal (2.). */
  protected channelEvent(event: PortalSocketEvent<R>): void {
    const log = this.options.log;
    switch (event.type) {
      case "joined":
        log("info", this.joinedOnce ? "rejoined the portal" : "joined the portal", { portal: this.options.portalUrl });
        this.joinedOnce = true;
        break;
      case "disconnected":
        log("warn", "portal connection lost", { reason: event.reason, retry_in_ms: Math.round(event.retryInMs) });
        break;
      case "signed_out":
        log("error", "the portal refused the token", { status: event.status, detail: event.detail });
        this.fatal(`signed out by the portal (HTTP ${event.status}: ${event.detail})`);
        break;
      case "reply":
        if (event.status === "error") log("warn", "the portal refused a message", { ref: event.ref, response: event.response });
        break;
      default:
        break;
    }
  }

  /** Logs a tunnel path or session change and counts it. */
  protected tunnelEvent(event: Exclude<TunnelEvent, { type: "packet" | "candidate" | "candidate_invalidated" }>): void {
    const log = this.options.log;
    if (event.type === "connected") {
      if (event.relayed) this.tunnelEvents.connected_relayed++;
      else this.tunnelEvents.connected_direct++;
      log("info", "path selected", { peer: event.peerId, relayed: event.relayed });
    } else if (event.type === "disconnected") {
      this.tunnelEvents.disconnected++;
      log("warn", "path lost", { peer: event.peerId, reason: event.reason });
    } else if (event.type === "session") {
      this.tunnelEvents.sessions++;
      log("debug", "new WireGuard session", { peer: event.peerId });
    }
  }

  /** Runs a host change after those before it; a failure is fatal (traffic would go astray). */
  protected hostChange(what: string, change: () => Promise<void>): void {
    this.hostChanges = this.hostChanges.then(change).catch((error: Error) => {
      this.options.log("error", `${what} failed`, { error: error.message });
      this.fatal(`${what} failed: ${error.message}`);
    });
  }

  protected fatal(reason: string): void {
    if (this.fatalReason !== undefined) return;
    this.fatalReason = reason;
    this.options.onFatal(reason);
  }

  /** Prometheus text for every device: connections by path, packets and bytes, drops. */
  metrics(): string {
    const c = this.io.counters;
    const device = this.device;
    const paths = { direct: 0, relayed: 0, none: 0 };
    for (const peer of device?.node.peerIds ?? []) {
      const pair = device!.node.selectedPair(peer);
      if (pair === undefined) paths.none++;
      else if (pair.relayed) paths.relayed++;
      else paths.direct++;
    }
    const node = device?.node;
    const nodeDrops: Record<string, number> = { ...(node?.dropped ?? {}) };
    for (const [reason, n] of Object.entries(node?.relayDropped ?? {})) nodeDrops[`relay_${reason}`] = n;
    return [
      metricFamily("wardline_portal_connected", "gauge", "1 while joined to the portal.", [{ value: this.portal.joined ? 1 : 0 }]),
      metricFamily("wardline_portal_frames_dropped_total", "counter", "Portal frames dropped: invalid ones received, and ones to send dropped from a full queue.", [
        { labels: { reason: "invalid" }, value: this.portal.counters.invalid },
        { labels: { reason: "queue_full" }, value: this.portal.counters.dropped },
      ]),
      metricFamily("wardline_connections", "gauge", "Peer connections by the kind of path they use now.", Object.entries(paths).map(([path, value]) => ({ labels: { path }, value }))),
      metricFamily("wardline_path_changes_total", "counter", "Paths selected (by kind) and lost.", [
        { labels: { event: "connected_direct" }, value: this.tunnelEvents.connected_direct },
        { labels: { event: "connected_relayed" }, value: this.tunnelEvents.connected_relayed },
        { labels: { event: "disconnected" }, value: this.tunnelEvents.disconnected },
      ]),
      metricFamily("wardline_wireguard_sessions_total", "counter", "WireGuard sessions that carried our packets (handshakes and rekeys).", [{ value: this.tunnelEvents.sessions }]),
      metricFamily("wardline_packets_total", "counter", "Packets through the TUN device and the UDP socket.", [
        { labels: { interface: "tun", direction: "rx" }, value: c.tunRxPackets },
        { labels: { interface: "tun", direction: "tx" }, value: c.tunTxPackets },
        { labels: { interface: "udp", direction: "rx" }, value: c.udpRxPackets },
        { labels: { interface: "udp", direction: "tx" }, value: c.udpTxPackets },
      ]),
      metricFamily("wardline_bytes_total", "counter", "Bytes through the TUN device and the UDP socket.", [
        { labels: { interface: "tun", direction: "rx" }, value: c.tunRxBytes },
        { labels: { interface: "tun", direction: "tx" }, value: c.tunTxBytes },
        { labels: { interface: "udp", direction: "rx" }, value: c.udpRxBytes },
        { labels: { interface: "udp", direction: "tx" }, value: c.udpTxBytes },
      ]),
      metricFamily("wardline_tunnel_dropped_total", "counter", "Datagrams and packets the connection layer dropped, by reason.", [
        ...Object.entries(nodeDrops).map(([reason, value]) => ({ labels: { reason }, value })),
        { labels: { reason: "tun_write_failed" }, value: c.tunWriteFailed },
        { labels: { reason: "udp_send_failed" }, value: c.udpSendFailed },
        { labels: { reason: "udp_truncated" }, value: c.udpTruncated },
      ]),
      this.roleMetrics(),
    ].join("");
  }

  /** Stops everything (3.); every call shares one stop. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const log = this.options.log;
      await this.portal.stop().catch((error: Error) => log("warn", "closing the portal socket failed", { error: error.message }));
      await this.restoreHost().catch((error: Error) => log("error", "undoing the host's network changes failed", { error: error.message }));
      this.io.close();
      await this.status?.close();
    })();
    return this.stopping;
  }
}
