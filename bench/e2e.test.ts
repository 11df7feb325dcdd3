// The e2e suite's pure parts: curl's timing, percentiles and setup figures, wireguard-go's configs
// through the NATs, figures, ratios, targets and tables. The suite itself needs root, namespaces, a
// built dist/ and wireguard-go; it is run by hand (`wardline bench e2e`), not here.

import { describe, expect, it } from "vitest";
import {
  anchorConfigs, CASES, e2eFigure, e2eRatios, e2eSuite, e2eTargets, figureId, MTU, parseCurlTiming, percentiles,
  setupAddresses, setupFigure, setupId, type Impl, type PathKind, type SetupFigure,
} from "./e2e.js";
import { renderText, type Figure, type SuiteReport } from "./harness.js";
import { formatConfig } from "./netns.js";
import type { CaseRun } from "./tunnel.js";

describe("connection setup", () => {
  it("reads curl's timing in seconds as milliseconds, and refuses a failed answer", () => {
    const timing = parseCurlTiming("0.007518 0.009552 200\n");
    expect(timing.connectMs).toBeCloseTo(7.518, 9);
    expect(timing.firstByteMs).toBeCloseTo(9.552, 9);
    expect(() => parseCurlTiming("0.002 0.003 404")).toThrow("HTTP status 404");
    expect(() => parseCurlTiming("0.000000 0.000000 000")).toThrow("HTTP status 000");
    expect(() => parseCurlTiming("x 0.003 200")).toThrow("unreadable timing");
  });

  it("takes nearest-rank percentiles, a failed sample sorting last", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentiles(values)).toEqual({ count: 100, p50: 50, p99: 99, max: 100 });
    expect(percentiles([...values.slice(0, 99), Number.POSITIVE_INFINITY]).p99).toBe(99);
    expect(percentiles([...values.slice(0, 98), Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]).p99).toBe(Number.POSITIVE_INFINITY);
    expect(percentiles([7])).toEqual({ count: 1, p50: 7, p99: 7, max: 7 });
  });

  it("builds a path's figure: percentiles of both clocks, failures counted, the lab's first connection kept", () => {
    const samples = [10, 12, 8, Number.POSITIVE_INFINITY].map((ms) => ({ connectMs: ms - 2, firstByteMs: ms }));
    const f = setupFigure("direct", samples, { connectMs: 900, firstByteMs: 905 });
    expect(f.id).toBe(setupId("direct"));
    expect(f.firstByteMs).toEqual({ count: 4, p50: 10, p99: Number.POSITIVE_INFINITY, max: Number.POSITIVE_INFINITY });
    expect(f.connectMs.p50).toBe(8);
    expect(f.failed).toBe(1);
    expect(f.firstConnection.firstByteMs).toBe(905);
    expect(() => setupFigure("relayed", [], f.firstConnection)).toThrow("no setup samples");
  });

  it("gives each sample a fresh address on the resource host's network, at most 100", () => {
    expect(setupAddresses("192.168.20.100", 3)).toEqual(["192.168.20.150", "192.168.20.151", "192.168.20.152"]);
    expect(setupAddresses("192.168.20.100", 100).at(-1)).toBe("192.168.20.249");
    expect(() => setupAddresses("192.168.20.100", 101)).toThrow(RangeError);
  });
});

describe("anchorConfigs", () => {
  it("gives wireguard-go fixed ports, the other side's router as endpoint and keepalives, so both punch their NAT", () => {
    const keys = { client: { privateKey: "Y2xpZW50", publicKey: "Q1BVQg==" }, gateway: { privateKey: "Z2F0ZXdheQ==", publicKey: "R1BVQg==" } };
    const { client, gateway } = anchorConfigs({ clientRouter: { ns: "c", role: "crouter", address: "198.51.100.1" }, gatewayRouter: { ns: "g", role: "grouter", address: "198.51.100.2" } }, keys, "192.168.20.102");
    expect(formatConfig(client, { quick: false })).toBe(
      "[Interface]\nPrivateKey = Y2xpZW50\nListenPort = 51901\n\n" +
        "[Peer]\nPublicKey = R1BVQg==\nAllowedIPs = 10.77.0.2/32, 192.168.20.102/32\nEndpoint = 198.51.100.2:51902\nPersistentKeepalive = 5\n",
    );
    expect(formatConfig(gateway, { quick: false })).toBe(
      "[Interface]\nPrivateKey = Z2F0ZXdheQ==\nListenPort = 51902\n\n" +
        "[Peer]\nPublicKey = Q1BVQg==\nAllowedIPs = 10.77.0.1/32\nEndpoint = 198.51.100.1:51901\nPersistentKeepalive = 5\n",
    );
    expect([client.address, gateway.address, client.mtu, gateway.mtu]).toEqual(["10.77.0.1/24", "10.77.0.2/24", MTU, MTU]);
  });
});

/** One 2 s TCP run at bytesPerSecond, with the CPU it took. */
function caseRun(bytesPerSecond: number, cpuSeconds = 2): CaseRun {
  return {
    run: { protocol: "TCP", streams: 1, reverse: false, blockSize: 131072, receivedBytes: bytesPerSecond * 2, seconds: 2, intervalRates: [bytesPerSecond, bytesPerSecond], retransmits: 0, udp: null },
    cpu: { cpuSeconds, wallSeconds: 2, daemonCpuSeconds: cpuSeconds / 2 },
  };
}

/** Figures of every case: ours direct at `ours` B/s, wireguard-go direct at 50 MB/s, ours relayed at 20 MB/s; setup p99s as given. */
function figures(ours: Record<string, number>, setupP99: Record<PathKind, number>): Figure[] {
  const all: Figure[] = [];
  const add = (path: PathKind, impl: Impl, rate: (id: string) => number): void => {
    for (const c of CASES) all.push(e2eFigure(path, impl, c, [caseRun(rate(c.id))]));
  };
  add("direct", "ours", (id) => ours[id] ?? 50e6);
  add("direct", "wireguard-go", () => 50e6);
  add("relayed", "ours", () => 20e6);
  for (const path of ["direct", "relayed"] as const) {
    all.push(setupFigure(path, Array.from({ length: 10 }, (_, i) => ({ connectMs: 5, firstByteMs: i === 9 ? setupP99[path] : 6 })), { connectMs: 800, firstByteMs: 801 }));
  }
  return all;
}

describe("figures, ratios and targets", () => {
  it("compares ours with wireguard-go on the direct path, relayed with direct for ours, and setup with its target", () => {
    const f = figures({ "tcp1-up": 60e6, "tcp1-down": 40e6 }, { direct: 80, relayed: 150 });
    expect(f.find((x) => x.id === figureId("tcp1-up", "direct", "ours"))).toMatchObject({ op: "tcp1-up/direct", path: "direct", impl: "ours" });
    const ratios = e2eRatios(f);
    const find = (op: string, ours: string) => ratios.find((r) => r.op === op && r.ours === ours)!.ratio;
    expect(find("tcp1-up/direct", figureId("tcp1-up", "direct", "ours"))).toBeCloseTo(1.2, 10);
    expect(find("tcp1-up/relayed", figureId("tcp1-up", "relayed", "ours"))).toBeCloseTo(20 / 60, 10);
    expect(find("tcp1-up/cpu-per-gb", figureId("tcp1-up", "direct", "ours"))).toBeCloseTo(60 / 50, 10);
    expect(find("setup p99/relayed", setupId("relayed"))).toBeCloseTo(100 / 150, 10);
    expect(ratios.some((r) => r.ours.includes("relayed/wireguard-go") || r.anchor.includes("relayed/wireguard-go"))).toBe(false);

    const targets = e2eTargets(ratios);
    expect(targets.map((t) => [t.op, t.met])).toEqual([
      ["tcp1-up/direct", true], ["tcp1-down/direct", false], ["setup p99/direct", true], ["setup p99/relayed", false],
    ]);
    expect(targets[1]!.margin).toBeCloseTo(0.8 - 1, 10);
  });

  it("misses the setup target when connections failed, and compares nothing that was not measured", () => {
    const failed = figures({}, { direct: Number.POSITIVE_INFINITY, relayed: 10 });
    expect(e2eTargets(e2eRatios(failed)).find((t) => t.op === "setup p99/direct")).toMatchObject({ ratio: 0, met: false });
    const relayedOnly = failed.filter((x) => (x as { path?: string }).path === "relayed");
    expect(e2eRatios(relayedOnly).map((r) => r.op)).toEqual(["setup p99/relayed"]);
  });

  it("renders the tables: relayed wireguard-go named as absent, setup in ms, each target with its result", () => {
    const f = figures({ "tcp1-up": 60e6, "tcp1-down": 40e6 }, { direct: 80, relayed: 150 });
    const ratios = e2eRatios(f);
    const report = { figures: f, ratios, targets: e2eTargets(ratios) } as SuiteReport;
    const text = e2eSuite.tables(report).map(renderText).join("\n");
    expect(text).toMatch(/TCP, 1 stream, client→resource\s+480 ±0\.0%\s+400 ±0\.0%\s+1\.20×\s+160 ±0\.0%\s+none: WireGuard has no relay\s+0\.33×/);
    expect(text).toMatch(/relayed\s+10\s+5\.0\s+5\.0\s+6\.0\s+150\.0\s+150\.0\s+0\s+800\.0 \/ 801\.0/);
    expect(text).toMatch(/connection setup p99, relayed \(100 ms ÷ p99\)\s+0\.67×\s+p99 ≤ 100 ms\s+MISSED/);
    expect(text).toMatch(/TCP, 1 stream, resource→client, direct: ours ÷ wireguard-go\s+0\.80×\s+≥ 1×\s+MISSED/);
    expect((f.find((x) => x.id === setupId("direct")) as SetupFigure).failed).toBe(0);
  });
});
