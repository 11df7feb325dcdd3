// UdpDriver on loopback: batches arrive through readiness, full batches are drained in a loop, and a
// truncated datagram is counted and emptied in place.

import { afterEach, describe, expect, it } from "vitest";
import { PacketVector, readEndpoint, UdpSocket, writeEndpoint } from "../native/index.js";
import { UdpDriver } from "./udp-driver.js";

const sockets: UdpSocket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

describe("UdpDriver", () => {
  it("delivers every intact datagram of several batches; the truncated one is counted and empty", async () => {
    const a = UdpSocket.open(4, "127.0.0.1");
    const b = UdpSocket.open(4, "127.0.0.1");
    sockets.push(a, b);
    const total = 200;
    const sent = new Uint8Array(total * 2048);
    const out = new PacketVector(total);
    for (let i = 0; i < total; i++) {
      const length = i === 7 ? 1200 : 20 + i; // datagram 7 is too big for its slot below
      out.set(i, i * 2048, length);
      sent.fill(i & 0xff, i * 2048, i * 2048 + length);
      writeEndpoint(out.addresses, i, { family: 4, address: "127.0.0.1", port: b.port });
    }
    expect(a.send(sent, out, total)).toBe(total);

    const memory = new Uint8Array(64 * 1024);
    const seen: number[] = [];
    let batches = 0;
    const done = new Promise<void>((resolve) => {
      const driver = new UdpDriver(b, memory, new PacketVector(64), {
        prepare(vector) {
          for (let i = 0; i < vector.maxPackets; i++) vector.set(i, i * 1024, 1024);
          return vector.maxPackets;
        },
        deliver(vector, count) {
          batches++;
          for (let i = 0; i < count; i++) {
            expect(vector.offsets[i], "regions stay in place").toBe(i * 1024);
            if (vector.lengths[i] === 0) continue;
            const first = memory[vector.offsets[i]!]!;
            expect(vector.lengths[i]).toBe(20 + first);
            expect(readEndpoint(vector.addresses, i)).toEqual({ family: 4, address: "127.0.0.1", port: a.port });
            seen.push(first);
          }
          if (seen.length + driver.drops.truncated === total) {
            expect(driver.drops.truncated).toBe(1);
            driver.stop();
            resolve();
          }
        },
      });
      driver.start();
    });
    await done;
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i & 0xff).filter((_, i) => i !== 7));
    expect(batches).toBeGreaterThanOrEqual(4);
  });
});
