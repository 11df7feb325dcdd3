// Serves the WireGuard userspace API on /var/run/wireguard/<iface>.sock, where `wg` looks for a
// userspace implementation, so `wg show` and `wg set` work on our interface as on wireguard-go's.
//
// 1. Refuse to take over a socket that another process still answers on; remove a stale one.
// 2. Listen with owner-only permissions (the API hands out the private key).
// 3. Per connection: cut the stream into requests (UapiReader); answer get with the configuration
//    and counters, apply a valid set whole or not at all, and drop the connection on anything that
//    is not a request, as wireguard-go does.

import { chmodSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import {
  formatErrno, parseSet, UAPI_OK, UapiReader, type DeviceUpdate, type PeerCounters, type WireGuardConfig,
} from "../proto/wireguard/uapi.js";

export const UAPI_DIR = "/var/run/wireguard";

/** What the socket reads and changes. */
export interface UapiDevice {
  readonly config: WireGuardConfig;
  counters(publicKeyHex: string): PeerCounters | undefined;
  /**
   * Called after a set was applied to config, to carry it into the data plane; returns an errno
   * (negative, as the API writes it) when the data plane could not follow, such as a port in use.
   */
  onApplied?(update: DeviceUpdate): number | void;
}

export interface UapiServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Whether something answers on a unix socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

/** Starts serving the API for iface; rejects if the interface's socket is in use. */
export async function serveUapi(iface: string, device: UapiDevice, dir = UAPI_DIR): Promise<UapiServer> {
  if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(iface)) throw new Error(`uapi: ${JSON.stringify(iface)} is not a valid interface name`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, `${iface}.sock`);
  if (existsSync(path)) {
    if (await answers(path)) throw new Error(`uapi: ${path} is in use: another WireGuard implementation serves ${iface}`);
    unlinkSync(path);
  }
  const server: Server = createServer((socket) => {
    const reader = new UapiReader();
    socket.on("data", (chunk: Buffer) => {
      for (const request of reader.push(chunk)) {
        if (request.op === "invalid") {
          socket.destroy();
          return;
        }
        if (request.op === "get") {
          socket.write(device.config.formatGet((id) => device.counters(id)) + formatErrno(UAPI_OK));
          continue;
        }
        const parsed = parseSet(request.lines);
        if (!parsed.ok) {
          socket.write(formatErrno(parsed.errno));
          continue;
        }
        device.config.apply(parsed.value);
        const errno = device.onApplied?.(parsed.value);
        socket.write(formatErrno(typeof errno === "number" ? errno : UAPI_OK));
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (existsSync(path)) unlinkSync(path);
      }),
  };
}
