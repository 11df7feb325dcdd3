// Loads wardline_native.node, the C addon built from src/ by `npm run build:native`, and types its
// raw API. Only the classes of this folder call it; they validate nothing the C side does not
// validate again, so a wrong call throws instead of writing outside the memory it was given.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The addon's functions, as src/*.c registers them; errors are Error objects with an errno `code`. */
export interface NativeAddon {
  /** Bytes per endpoint in udpRecv/udpSend address arrays (layout in endpoint.ts). */
  readonly ADDRESS_SIZE: number;
  readonly READABLE: number;
  readonly WRITABLE: number;
  tunOpen(name: string): { fd: number; name: string };
  tunRead(fd: number, memory: Uint8Array, offsets: Uint32Array, capacities: Uint32Array, lengths: Uint32Array, max: number): number;
  tunWrite(fd: number, memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, statuses?: Int32Array): number;
  udpOpen(family: 4 | 6, bindAddress: string, port: number): { fd: number; port: number };
  udpRecv(
    fd: number, memory: Uint8Array, offsets: Uint32Array, capacities: Uint32Array, lengths: Uint32Array,
    addresses: Uint8Array, max: number,
  ): number;
  udpSend(
    fd: number, memory: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, addresses: Uint8Array, count: number,
    statuses?: Int32Array, gso?: Int32Array,
  ): number;
  /** Calls back with (status, events) whenever fd is ready; status is a negative errno on failure. */
  poll(fd: number, events: number, callback: (status: number, events: number) => void): number;
  pollStop(fd: number): boolean;
  close(fd: number): void;
}

const ADDON_FILE = join("build", "Release", "wardline_native.node");

/** Finds the built addon from source (daemons/native) or from dist (dist/daemons/native). */
export function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 6; i++) {
    for (const candidate of [join(dir, ADDON_FILE), join(dir, "daemons", "native", ADDON_FILE)]) {
      if (existsSync(candidate)) return candidate;
    }
    dir = dirname(dir);
  }
  throw new Error(
    `daemons/native/${ADDON_FILE} not found above ${here}: run \`npm run build:native\` (npm install does it too)`,
  );
}

let addon: NativeAddon | undefined;

/** The loaded addon; loads it on first use, so importing this module works before it is built. */
export function nativeAddon(): NativeAddon {
  addon ??= createRequire(import.meta.url)(addonPath()) as NativeAddon;
  return addon;
}
