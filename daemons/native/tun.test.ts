// The TUN device against the kernel's own IPv4 stack, inside a network namespace made for the test:
// `ping` in the namespace sends an ICMP echo request to a peer behind the TUN device; the test reads
// it with tunRead on readiness, answers with an echo reply through tunWrite, and ping must succeed.
//
// The device is opened here, in the test's namespace, and then moved into the new one (a TUN fd
// keeps working across `ip link set ... netns`), so no child Node process is needed. Needs root,
// /dev/net/tun, iproute2 and iputils-ping; without them the test is skipped, except under CI=true.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativeAddon, PacketVector, TunDevice } from "./index.js";

const NAMESPACE = `wl-tun-test-${process.pid}`;
const LOCAL = "10.200.0.1";
const PEER = "10.200.0.2";
const { EINVAL } = constants.errno;

function unavailable(): string | undefined {
  if (process.platform !== "linux") return "TUN devices are Linux-only here";
  if (process.getuid?.() !== 0) return "not running as root";
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun";
  for (const [tool, pkg] of [["ip", "iproute2"], ["ping", "iputils-ping"]] as const) {
    try {
      execFileSync(tool, ["-V"], { stdio: "ignore" });
    } catch {
      return `no ${tool} (Debian package ${pkg})`;
    }
  }
  return undefined;
}

const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8" });

/** The Internet checksum (RFC 1071) of bytes. */
function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const dotted = (b: Uint8Array, at: number): string => Array.from(b.subarray(at, at + 4)).join(".");

/** Whether packet is an IPv4 ICMP echo request to PEER, with both checksums right. */
function isEchoRequest(packet: Uint8Array): boolean {
  if (packet.length < 28 || packet[0]! >> 4 !== 4) return false;
  const ihl = (packet[0]! & 0xf) * 4;
  return (
    packet[9] === 1 && dotted(packet, 16) === PEER && packet[ihl] === 8 &&
    checksum(packet.subarray(0, ihl)) === 0 && checksum(packet.subarray(ihl)) === 0
  );
}

/** Turns an echo request into its reply, in place: addresses swapped, type 0, checksums redone. */
function toEchoReply(packet: Uint8Array): void {
  const ihl = (packet[0]! & 0xf) * 4;
  const source = packet.slice(12, 16);
  packet.copyWithin(12, 16, 20);
  packet.set(source, 16);
  packet[8] = 64;
  packet[10] = packet[11] = 0;
  const headerSum = checksum(packet.subarray(0, ihl));
  packet[10] = headerSum >> 8;
  packet[11] = headerSum & 0xff;
  packet[ihl] = 0;
  packet[ihl + 2] = packet[ihl + 3] = 0;
  const icmpSum = checksum(packet.subarray(ihl));
  packet[ihl + 2] = icmpSum >> 8;
  packet[ihl + 3] = icmpSum & 0xff;
}

const reason = unavailable();

describe("TunDevice", () => {
  if (reason) {
    if (process.env.CI === "true") {
      it("runs under CI", () => {
        throw new Error(`TUN tests cannot run under CI: ${reason}`);
      });
    } else {
      console.log(`skipping the TUN tests: ${reason}`);
      it.skip(`needs root, /dev/net/tun, ip and ping (${reason})`, () => undefined);
    }
    return;
  }

  let tun: TunDevice | undefined;
  let ping: ChildProcess | undefined;

  beforeAll(() => {
    ip("netns", "add", NAMESPACE);
  });

  afterAll(() => {
    if (ping?.pid !== undefined && ping.exitCode === null && ping.signalCode === null) {
      try {
        process.kill(ping.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    tun?.close();
    try {
      ip("netns", "del", NAMESPACE);
    } catch (error) {
      console.log(`could not delete namespace ${NAMESPACE}: ${String(error)}`);
    }
  });

  it("refuses a name longer than IFNAMSIZ allows", () => {
    expect(() => TunDevice.open("a-name-too-long-for-linux")).toThrow(/tunOpen: name is too long/);
  });

  it("reads ping's echo request and answers it with tunWrite", async () => {
    tun = TunDevice.open("wlt%d");
    const device = tun;
    expect(device.name).toMatch(/^wlt\d+$/);
    const memory = new Uint8Array(1 << 16);
    const reads = new PacketVector(16);
    for (let i = 0; i < reads.maxPackets; i++) reads.set(i, i * 2048, 2048);
    expect(device.read(memory, reads)).toBe(0); // down, so nothing to read: EAGAIN
    ip("link", "set", device.name, "netns", NAMESPACE);
    ip("-n", NAMESPACE, "addr", "add", `${LOCAL}/24`, "dev", device.name);
    ip("-n", NAMESPACE, "link", "set", device.name, "up");

    const answered = new Promise<{ request: Uint8Array; statuses: number[] }>((resolve, reject) => {
      device.onReadable((error) => {
        if (error) return reject(error);
        const n = device.read(memory, reads);
        for (let i = 0; i < n; i++) {
          const at = reads.offsets[i]!;
          const packet = memory.subarray(at, at + reads.lengths[i]!);
          if (!isEchoRequest(packet)) continue; // e.g. IPv6 router solicitations
          const request = packet.slice();
          toEchoReply(packet);
          // A packet that is no IP datagram is dropped with EINVAL; the reply behind it still goes.
          const writes = new PacketVector(2);
          memory.fill(0, 60000, 60020);
          writes.set(0, 60000, 20);
          writes.set(1, at, packet.length);
          const done = device.write(memory, writes, 2);
          device.onReadable(undefined);
          if (done !== 2) return reject(new Error(`tunWrite did ${done} of 2`));
          resolve({ request, statuses: Array.from(writes.statuses) });
          return;
        }
      });
    });

    ping = spawn("ip", ["netns", "exec", NAMESPACE, "ping", "-c", "1", "-W", "5", PEER], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    ping.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    ping.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => ping?.once("exit", (code) => resolve(code)));

    const { request, statuses } = await answered;
    expect(dotted(request, 12)).toBe(LOCAL);
    expect(dotted(request, 16)).toBe(PEER);
    expect(statuses).toEqual([EINVAL, 0]);
    const code = await exited;
    expect(code, output).toBe(0);
    expect(output).toMatch(/1 received/);
  });

  it("throws an errno-named error for a descriptor that is not open", () => {
    const v = new PacketVector(1);
    v.set(0, 0, 16);
    expect(() => nativeAddon().tunRead(1_000_000, new Uint8Array(16), v.offsets, v.capacities, v.lengths, 1)).toThrow(
      /^EBADF: tunRead: Bad file descriptor$/,
    );
  });
});
