// Batched UDP on loopback: a batch of datagrams of varied sizes goes out with one sendmmsg from
// offsets in a large memory and comes back with recvmmsg through the readiness callback; bad
// arguments throw before any byte is written.

import { execFileSync } from "node:child_process";
import { constants } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../engine/index.js";
import { ADDRESS_SIZE, nativeAddon, PacketVector, readEndpoint, UdpSocket, writeEndpoint } from "./index.js";

const BATCH = 64;
const SLOT = 2048;
const SENT_AT = 0;
const RECEIVED_AT = 1 << 20;
const { EAFNOSUPPORT } = constants.errno;

const open: UdpSocket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

function socket(family: 4 | 6, address: string): UdpSocket {
  const s = UdpSocket.open(family, address);
  open.push(s);
  return s;
}

/** Deterministic bytes: packet i, byte j. */
function fill(memory: Uint8Array, at: number, length: number, seed: number): void {
  for (let j = 0; j < length; j++) memory[at + j] = (seed * 31 + j * 7 + (j >> 8)) & 0xff;
}

/** Sizes from 0 to 1472 (a full IPv4 datagram on a 1500 MTU), none repeating in a row. */
const sizeOf = (i: number): number => (i === 0 ? 0 : (i * 389) % 1473);

/** Receives until `want` datagrams are in, driven by the readable callback. */
function receiveAll(s: UdpSocket, memory: Uint8Array, vector: PacketVector, want: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const timer = setTimeout(() => {
      s.onReadable(undefined);
      reject(new Error(`received ${got} of ${want} datagrams`));
    }, 5000);
    s.onReadable((error) => {
      if (error) return reject(error);
      // Receive into the slots after those already filled: a view of the vector's tail.
      const n = nativeAddon().udpRecv(
        s.fd, memory, vector.offsets.subarray(got), vector.capacities.subarray(got), vector.lengths.subarray(got),
        vector.addresses.subarray(got * ADDRESS_SIZE), want - got,
      );
      got += n;
      if (got === want) {
        clearTimeout(timer);
        s.onReadable(undefined);
        resolve(got);
      }
    });
  });
}

describe.each([
  { family: 4 as const, loopback: "127.0.0.1" },
  { family: 6 as const, loopback: "::1" },
])("UdpSocket over IPv$family loopback", ({ family, loopback }) => {
  it("sends a batch of 64 with sendmmsg and receives it with recvmmsg on readiness", async () => {
    const memory = new Uint8Array(4 << 20);
    const a = socket(family, loopback);
    const b = socket(family, loopback);
    expect(a.port).toBeGreaterThan(0);

    const out = new PacketVector(BATCH);
    for (let i = 0; i < BATCH; i++) {
      out.set(i, SENT_AT + i * SLOT + (i % 16), sizeOf(i));
      fill(memory, out.offsets[i]!, sizeOf(i), i);
      writeEndpoint(out.addresses, i, { family, address: loopback, port: b.port });
    }
    const into = new PacketVector(BATCH);
    for (let i = 0; i < BATCH; i++) into.set(i, RECEIVED_AT + i * SLOT, SLOT);

    expect(a.send(memory, out, BATCH)).toBe(BATCH);
    expect(Array.from(out.statuses)).toEqual(new Array(BATCH).fill(0));
    expect(await receiveAll(b, memory, into, BATCH)).toBe(BATCH);

    for (let i = 0; i < BATCH; i++) {
      const length = sizeOf(i);
      expect(into.lengths[i]).toBe(length);
      const sent = memory.subarray(out.offsets[i]!, out.offsets[i]! + length);
      const received = memory.subarray(into.offsets[i]!, into.offsets[i]! + length);
      expect(Buffer.compare(sent, received)).toBe(0);
      expect(readEndpoint(into.addresses, i)).toEqual({ family, address: loopback, port: a.port });
    }
  });

  it("segments runs to one endpoint (UDP_SEGMENT) and each receiver gets every datagram, whole and in order", async () => {
    const memory = new Uint8Array(4 << 20);
    const a = socket(family, loopback);
    const b = socket(family, loopback);
    const c = socket(family, loopback);
    // Runs the sender may coalesce, broken by a shorter datagram, another endpoint, or a longer one.
    const plan: Array<{ to: UdpSocket; length: number }> = [
      ...Array.from({ length: 20 }, () => ({ to: b, length: 1200 })),
      { to: b, length: 500 },
      ...Array.from({ length: 10 }, () => ({ to: c, length: 1200 })),
      ...Array.from({ length: 6 }, (_, i) => ({ to: i % 2 === 0 ? b : c, length: 900 })),
      { to: b, length: 0 },
      ...Array.from({ length: 26 }, (_, i) => ({ to: b, length: i === 25 ? 1400 : 1300 })),
    ];
    expect(plan).toHaveLength(BATCH);
    const out = new PacketVector(BATCH);
    plan.forEach(({ to, length }, i) => {
      out.set(i, SENT_AT + i * SLOT, length);
      fill(memory, out.offsets[i]!, length, i);
      writeEndpoint(out.addresses, i, { family, address: loopback, port: to.port });
    });
    expect(a.send(memory, out, BATCH, true)).toBe(BATCH);
    expect(Array.from(out.statuses)).toEqual(new Array(BATCH).fill(0));
    expect(a.segmenting).toBe(true);

    for (const [receiver, base] of [[b, RECEIVED_AT], [c, RECEIVED_AT * 2]] as const) {
      const expected = plan.map((p, i) => ({ ...p, i })).filter((p) => p.to === receiver);
      const into = new PacketVector(BATCH);
      for (let k = 0; k < expected.length; k++) into.set(k, base + k * SLOT, SLOT);
      expect(await receiveAll(receiver, memory, into, expected.length)).toBe(expected.length);
      expected.forEach(({ length, i }, k) => {
        expect(into.lengths[k], `datagram ${i}`).toBe(length);
        const sent = memory.subarray(out.offsets[i]!, out.offsets[i]! + length);
        expect(Buffer.compare(sent, memory.subarray(into.offsets[k]!, into.offsets[k]! + length)), `datagram ${i}`).toBe(0);
      });
    }
  });

  it("returns 0 from a receive on an empty socket (EAGAIN), without touching memory", () => {
    const memory = new Uint8Array(4096).fill(0xa5);
    const s = socket(family, loopback);
    const vector = new PacketVector(4);
    for (let i = 0; i < 4; i++) vector.set(i, i * 1024, 1024);
    expect(s.recv(memory, vector)).toBe(0);
    expect(memory.every((b) => b === 0xa5)).toBe(true);
  });

  it("reports truncation as a length beyond the capacity and writes no byte past it", async () => {
    const memory = new Uint8Array(8192).fill(0xee);
    const a = socket(family, loopback);
    const b = socket(family, loopback);
    const out = new PacketVector(1);
    out.set(0, 0, 1000);
    fill(memory, 0, 1000, 9);
    writeEndpoint(out.addresses, 0, { family, address: loopback, port: b.port });
    expect(a.send(memory, out, 1)).toBe(1);
    const into = new PacketVector(1);
    into.set(0, 4096, 100);
    expect(await receiveAll(b, memory, into, 1)).toBe(1);
    expect(into.lengths[0]).toBe(1000);
    expect(Buffer.compare(memory.subarray(4096, 4196), memory.subarray(0, 100))).toBe(0);
    expect(memory.subarray(4196).every((x) => x === 0xee)).toBe(true);
  });
});

describe("UdpSocket drops, not throws, a datagram the kernel refuses", () => {
  it("sends the rest of the batch and records the errno of the dropped ones", async () => {
    const memory = new Uint8Array(16384);
    const a = socket(4, "127.0.0.1");
    const b = socket(4, "127.0.0.1");
    const out = new PacketVector(4);
    for (let i = 0; i < 4; i++) {
      out.set(i, i * 1024, 100 + i);
      fill(memory, i * 1024, 100 + i, i);
      writeEndpoint(out.addresses, i, { family: 4, address: "127.0.0.1", port: b.port });
    }
    writeEndpoint(out.addresses, 1, { family: 6, address: "::1", port: b.port }); // wrong family
    out.addresses[2 * ADDRESS_SIZE] = 0; // no family at all
    out.statuses.fill(-1);
    expect(a.send(memory, out, 4)).toBe(4);
    expect(Array.from(out.statuses)).toEqual([0, EAFNOSUPPORT, EAFNOSUPPORT, 0]);
    const into = new PacketVector(2);
    into.set(0, 8192, 2048);
    into.set(1, 8192 + 2048, 2048);
    expect(await receiveAll(b, memory, into, 2)).toBe(2);
    expect(Array.from(into.lengths)).toEqual([100, 103]);
  });
});

describe("UdpSocket segments only what the path carries", () => {
  it("sends a run larger than the path MTU singly, to be fragmented as unsegmented datagrams are, and keeps segmenting", (ctx) => {
    // A namespace of our own behind a veth of MTU 1280; we send into it from here.
    const ns = `wlgso${process.pid % 100000}`;
    const host = `wlg${process.pid % 100000}`;
    const run = (...args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    try {
      run("ip", "netns", "add", ns);
    } catch (error) {
      const reason = `cannot create a network namespace (needs root and ip): ${(error as Error).message.split("\n")[0]}`;
      if (process.env.CI === "true") throw new Error(reason);
      console.log(`skipping: ${reason}`);
      ctx.skip();
      return;
    }
    try {
      run("ip", "link", "add", host, "mtu", "1280", "type", "veth", "peer", "name", "eth0", "netns", ns);
      run("ip", "address", "add", "10.213.77.1/30", "dev", host);
      run("ip", "link", "set", host, "up");
      run("ip", "-n", ns, "address", "add", "10.213.77.2/30", "dev", "eth0");
      run("ip", "-n", ns, "link", "set", "eth0", "up");
      const reassembled = (): number => {
        const lines = run("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").split("\n").filter((l) => l.startsWith("Ip:"));
        const [names, values] = lines.map((l) => l.split(/\s+/));
        return Number(values![names!.indexOf("ReasmOKs")]);
      };
      const before = reassembled();
      const memory = new Uint8Array(16384);
      const a = socket(4, "");
      const out = new PacketVector(4);
      for (let i = 0; i < 4; i++) {
        out.set(i, i * 2048, 1400);
        fill(memory, i * 2048, 1400, i);
        writeEndpoint(out.addresses, i, { family: 4, address: "10.213.77.2", port: 9 });
      }
      out.statuses.fill(-1);
      expect(a.send(memory, out, 4, true)).toBe(4);
      expect(Array.from(out.statuses)).toEqual([0, 0, 0, 0]);
      expect(a.segmenting).toBe(true);
      const deadline = Date.now() + 2000;
      while (reassembled() - before < 4 && Date.now() < deadline) execFileSync("sleep", ["0.05"]);
      expect(reassembled() - before).toBe(4);
    } finally {
      run("ip", "netns", "del", ns);
    }
  });
});

describe("UdpSocket on the engine's WebAssembly memory", () => {
  it("receives straight into offsets the packet batch reserved", async () => {
    const engine = Engine.create({ arenaBytes: 1 << 20, maxBatch: 64 });
    const memory = engine.batch.memory;
    const a = socket(4, "127.0.0.1");
    const b = socket(4, "127.0.0.1");
    const scratch = new Uint8Array(BATCH * SLOT);
    const out = new PacketVector(BATCH);
    for (let i = 0; i < BATCH; i++) {
      out.set(i, i * SLOT, 32 + i * 20);
      fill(scratch, i * SLOT, 32 + i * 20, i);
      writeEndpoint(out.addresses, i, { family: 4, address: "127.0.0.1", port: b.port });
    }
    const into = new PacketVector(BATCH);
    for (let i = 0; i < BATCH; i++) into.set(i, engine.batch.reservePacketOffset(1500), 1500);
    expect(a.send(scratch, out, BATCH)).toBe(BATCH);
    expect(await receiveAll(b, memory, into, BATCH)).toBe(BATCH);
    for (let i = 0; i < BATCH; i++) {
      const length = 32 + i * 20;
      expect(into.lengths[i]).toBe(length);
      const at = into.offsets[i]!;
      expect(Buffer.compare(memory.subarray(at, at + length), scratch.subarray(i * SLOT, i * SLOT + length))).toBe(0);
    }
  });
});

describe("the addon refuses bad arguments before touching memory", () => {
  const addon = nativeAddon();

  it("throws errno-named errors for system failures", () => {
    const memory = new Uint8Array(64);
    const v = new PacketVector(1);
    v.set(0, 0, 64);
    expect(() => addon.udpRecv(1_000_000, memory, v.offsets, v.capacities, v.lengths, v.addresses, 1)).toThrow(
      expect.objectContaining({ code: "EBADF", message: "EBADF: udpRecv: Bad file descriptor", syscall: "udpRecv" }),
    );
    expect(() => addon.udpOpen(4, "127.0.0.1", socket(4, "127.0.0.1").port)).toThrow(/^EADDRINUSE: udpOpen: /);
    expect(() => addon.udpOpen(4, "::1", 0)).toThrow(/bindAddress ::1 is not an IPv4 address/);
    expect(() => addon.udpOpen(5 as 4, "", 0)).toThrow(RangeError);
    expect(() => addon.close(1_000_000)).toThrow(/^EBADF: close: /);
  });

  it("checks every offset + capacity against the memory, even after valid ones", () => {
    const memory = new Uint8Array(4096).fill(0x5a);
    const a = socket(4, "127.0.0.1");
    const b = socket(4, "127.0.0.1");
    const out = new PacketVector(1);
    out.set(0, 0, 64);
    writeEndpoint(out.addresses, 0, { family: 4, address: "127.0.0.1", port: b.port });
    expect(a.send(memory.slice(), out, 1)).toBe(1);

    const v = new PacketVector(3);
    v.set(0, 0, 1024);
    v.set(1, 1024, 1024);
    v.set(2, 4000, 97); // ends one byte past the memory
    expect(() => b.recv(memory, v)).toThrow(/udpRecv: packet 2: offset 4000 \+ capacity 97 is past the end of memory \(4096 bytes\)/);
    v.set(2, 0xffffffff, 1); // would wrap in 32 bits
    expect(() => b.recv(memory, v)).toThrow(RangeError);
    expect(memory.every((x) => x === 0x5a)).toBe(true);
    // The datagram is still queued: nothing was received.
    v.set(2, 2048, 1024);
    expect(b.recv(memory, v)).toBe(1);

    v.set(2, 4000, 97);
    expect(() => a.send(memory, v, 3)).toThrow(/udpSend: packet 2: offset 4000 \+ length 97 is past the end/);
  });

  it("checks types and counts", () => {
    const memory = new Uint8Array(4096);
    const s = socket(4, "127.0.0.1");
    const v = new PacketVector(2);
    const recv = (...args: unknown[]): number =>
      (addon.udpRecv as (...a: unknown[]) => number)(...args);
    expect(() => recv(s.fd, memory.buffer, v.offsets, v.capacities, v.lengths, v.addresses, 1)).toThrow(
      /udpRecv: memory must be a Uint8Array/,
    );
    expect(() => recv(s.fd, memory, new Int32Array(2), v.capacities, v.lengths, v.addresses, 1)).toThrow(
      /offsets must be a Uint32Array/,
    );
    expect(() => recv(s.fd, memory, v.offsets, v.capacities, v.lengths, v.addresses, 3)).toThrow(
      /count 3 is more than lengths holds \(2\)/,
    );
    expect(() => recv(s.fd, memory, v.offsets, v.capacities, v.lengths, new Uint8Array(39), 2)).toThrow(
      /addresses holds 39 bytes, 2 packets need 40/,
    );
    expect(() => recv(s.fd, memory, v.offsets, v.capacities, v.lengths, v.addresses, 1.5)).toThrow(/max must be an integer/);
    expect(() => recv(-1, memory, v.offsets, v.capacities, v.lengths, v.addresses, 1)).toThrow(RangeError);
    expect(() => recv(s.fd, memory)).toThrow(/udpRecv: expects 7 arguments, got 2/);
    expect(() => addon.poll(s.fd, 1, "nope" as unknown as () => void)).toThrow(/callback must be a function/);
    expect(() => addon.poll(s.fd, 0, () => undefined)).toThrow(RangeError);
  });

  it("validates against the current size of a memory whose buffer was detached", () => {
    const buffer = new ArrayBuffer(4096);
    const memory = new Uint8Array(buffer);
    structuredClone(buffer, { transfer: [buffer] });
    const s = socket(4, "127.0.0.1");
    const v = new PacketVector(1);
    v.set(0, 0, 1);
    expect(() => s.recv(memory, v)).toThrow(/past the end of memory \(0 bytes\)/);
  });
});

describe("readiness", () => {
  it("calls onWritable once, keeps onReadable, and survives a close from inside a callback", async () => {
    const a = UdpSocket.open(4, "127.0.0.1");
    const b = socket(4, "127.0.0.1");
    let writable = 0;
    await new Promise<void>((resolve) => {
      a.onWritable(() => {
        writable++;
        setTimeout(resolve, 20); // a second call would land in this window
      });
    });
    expect(writable).toBe(1);

    const memory = new Uint8Array(4096);
    const closedInside = new Promise<number>((resolve) => {
      a.onReadable(() => {
        const into = new PacketVector(1);
        into.set(0, 1024, 1024);
        const n = a.recv(memory, into);
        a.close(); // stops the poll while its callback runs
        resolve(n);
      });
    });
    const echo = new PacketVector(1);
    echo.set(0, 0, 8);
    writeEndpoint(echo.addresses, 0, { family: 4, address: "127.0.0.1", port: a.port });
    expect(b.send(memory, echo, 1)).toBe(1);
    expect(await closedInside).toBe(1);
    expect(() => nativeAddon().close(a.fd)).toThrow(/^EBADF/);
  });
});
