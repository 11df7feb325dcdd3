// The tunnel suite's pure parts: reading iperf3's JSON and /proc, the CPU arithmetic, figures, ratios
// and targets. The suite itself needs root, namespaces and wireguard-go; it is run by hand
// (`wardline bench tunnel`), not here.

import { describe, expect, it } from "vitest";
import {
  CASES, cpuSecondsPerGB, cpuSpent, figureId, parseIperf, tunnelFigure, tunnelRatios,
  tunnelTargets, type IperfRun, type PairName, type TunnelFigure,
} from "./tunnel.js";
import { parsePidStat, parseProcStat } from "./system.js";
import { formatConfig, pointToPointConfig } from "./netns.js";

const interval = (seconds: number, bytes: number, extra: Record<string, unknown> = {}) => ({
  streams: [],
  sum: { start: 0, end: seconds, seconds, bytes, bits_per_second: (bytes * 8) / seconds, omitted: false, ...extra },
});

// Shapes as iperf3 3.12 prints them with --json --get-server-output (server run with -J), trimmed.
function tcpRun(reverse: boolean) {
  const clientIntervals = [interval(1.0002, 2_600_000_000), interval(1.0001, 2_500_000_000)];
  const serverIntervals = [interval(1.00005, 1_444_542_256), interval(0.99998, 1_500_000_000), interval(0.0005, 99_000)];
  return {
    start: { test_start: { protocol: "TCP", num_streams: 1, blksize: 131072, omit: 0, duration: 2, reverse: reverse ? 1 : 0 } },
    intervals: clientIntervals,
    end: {
      sum_sent: { seconds: 2.000276, bytes: 5_017_829_376, retransmits: 14701, sender: true },
      sum_received: { seconds: 2.000816, bytes: 5_017_829_376, sender: true },
    },
    server_output_json: { start: {}, intervals: serverIntervals, end: {} },
  };
}

const udpRun = {
  start: { test_start: { protocol: "UDP", num_streams: 1, blksize: 64, omit: 0, duration: 2, reverse: 0 } },
  intervals: [interval(1.000003, 15_202_560, { packets: 237540 })],
  end: {
    sum_sent: { seconds: 2.000023, bytes: 33_271_680, packets: 519870, lost_packets: 0, lost_percent: 0 },
    sum_received: { seconds: 2.000122, bytes: 33_142_464, packets: 519870, lost_packets: 2019, lost_percent: 0.3883663223498182 },
  },
  server_output_json: {
    intervals: [
      interval(1.0000040531158447, 15_093_888, { packets: 240372, lost_packets: 4530 }),
      interval(1.0, 15_401_792, { packets: 240700, lost_packets: 9 }),
      interval(0.000148, 0, { packets: 0, lost_packets: 0 }),
    ],
  },
};

describe("parseIperf", () => {
  it("takes a forward TCP run's rates from the server's intervals, dropping the partial tail", () => {
    const run = parseIperf(tcpRun(false));
    expect(run.protocol).toBe("TCP");
    expect(run.reverse).toBe(false);
    expect(run.blockSize).toBe(131072);
    expect(run.receivedBytes).toBe(5_017_829_376);
    expect(run.seconds).toBe(2.000816);
    expect(run.intervalRates).toHaveLength(2);
    expect(run.intervalRates[0]).toBeCloseTo(1_444_542_256 / 1.00005, 3);
    expect(run.intervalRates[1]).toBeCloseTo(1_500_000_000 / 0.99998, 3);
    expect(run.retransmits).toBe(14701);
    expect(run.udp).toBeNull();
  });

  it("takes a reverse (-R) run's rates from the client's own intervals: the client receives", () => {
    const run = parseIperf(tcpRun(true));
    expect(run.reverse).toBe(true);
    expect(run.intervalRates).toEqual([2_600_000_000 / 1.0002, 2_500_000_000 / 1.0001]);
  });

  it("falls back to the whole-run average when the server's intervals are missing", () => {
    const json = tcpRun(false) as Record<string, unknown>;
    delete json.server_output_json;
    const run = parseIperf(json);
    expect(run.intervalRates).toEqual([5_017_829_376 / 2.000816]);
  });

  it("skips intervals iperf3 marks as omitted", () => {
    const json = tcpRun(true);
    json.intervals[0] = interval(1, 1, { omitted: true });
    expect(parseIperf(json).intervalRates).toEqual([2_500_000_000 / 1.0001]);
  });

  it("reads a UDP run: received bytes, datagrams and loss", () => {
    const run = parseIperf(udpRun);
    expect(run.protocol).toBe("UDP");
    expect(run.blockSize).toBe(64);
    expect(run.receivedBytes).toBe(33_142_464);
    expect(run.receivedBytes).toBe((519870 - 2019) * 64);
    expect(run.udp).toEqual({ packets: 519870, lostPackets: 2019, lostPercent: 0.3883663223498182 });
    expect(run.retransmits).toBeNull();
    expect(run.intervalRates).toHaveLength(2);
    expect(run.intervalRates[0]! / 64).toBeCloseTo((240372 - 4530) / 1.0000040531158447, 3);
  });

  it("turns iperf3's error report and malformed output into errors", () => {
    expect(() => parseIperf({ start: {}, intervals: [], end: {}, error: "unable to connect to server: Connection refused" })).toThrow(
      "iperf3: unable to connect to server: Connection refused",
    );
    expect(() => parseIperf([])).toThrow("not an object");
    expect(() => parseIperf({ start: { test_start: { protocol: "SCTP" } } })).toThrow("unknown protocol SCTP");
    const noBytes = tcpRun(false);
    delete (noBytes.end.sum_received as Partial<typeof noBytes.end.sum_received>).bytes;
    expect(() => parseIperf(noBytes)).toThrow("end.sum_received.bytes is not a number");
  });
});

describe("/proc readings", () => {
  it("sums user, nice, system, irq and softirq of the aggregate cpu line as busy", () => {
    const text = "cpu  330915 5 43119 1724079 676 11 727 217 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\n";
    expect(parseProcStat(text)).toEqual({ busy: 330915 + 5 + 43119 + 11 + 727, total: 330915 + 5 + 43119 + 11 + 727 + 1724079 + 676 + 217 });
    expect(() => parseProcStat("cpu0 1 2 3\n")).toThrow("no aggregate cpu line");
  });

  it("reads utime + stime after the command name, whatever the name holds", () => {
    const fields = (comm: string) => `4242 (${comm}) S 1 4242 4242 0 -1 4194560 2000 0 0 0 52 219 7 3 20 0 12 0 100 0 0`;
    expect(parsePidStat(fields("wireguard-go"))).toBe(52 + 219);
    expect(parsePidStat(fields("a) S (b c"))).toBe(52 + 219);
    expect(() => parsePidStat("4242 (x) S")).toThrow("no utime or stime");
  });

  it("converts tick deltas to CPU seconds, per GB received", () => {
    const spent = cpuSpent(
      { cpu: { busy: 1000, total: 5000 }, daemons: [100, 200] },
      { cpu: { busy: 1950, total: 6000 }, daemons: [350, 420] },
      5,
      100,
    );
    expect(spent).toEqual({ cpuSeconds: 9.5, wallSeconds: 5, daemonCpuSeconds: 4.7 });
    expect(cpuSpent({ cpu: { busy: 0, total: 0 }, daemons: [] }, { cpu: { busy: 10, total: 20 }, daemons: [] }, 1, 100).daemonCpuSeconds).toBeNull();
    expect(cpuSecondsPerGB(9.5, 2.5e9)).toBe(3.8);
    expect(cpuSecondsPerGB(1, 0)).toBe(Number.POSITIVE_INFINITY);
  });
});

const tcp1 = CASES.find((c) => c.id === "tcp1-ab")!;

function run(bytesPerSecond: number, seconds = 5): IperfRun {
  return {
    protocol: "TCP", streams: 1, reverse: false, blockSize: 131072,
    receivedBytes: bytesPerSecond * seconds, seconds,
    intervalRates: Array.from({ length: seconds }, (_, i) => bytesPerSecond * (1 + (i - 2) / 100)),
    retransmits: 0, udp: null,
  };
}

describe("figures, ratios and targets", () => {
  it("builds a figure: median interval rate, CPU per GB over the whole run, cores busy", () => {
    const f = tunnelFigure("wireguard-go", tcp1, [{ run: run(45e6), cpu: { cpuSeconds: 9, wallSeconds: 5.1, daemonCpuSeconds: 6 } }]);
    expect(f.id).toBe("tcp1-ab/wireguard-go");
    expect(f.samples).toBe(5);
    expect(f.mbPerSec!.median).toBeCloseTo(45, 10);
    expect(f.mbPerSec!.min).toBeCloseTo(45 * 0.98, 10);
    expect(f.opsPerSec.median).toBeCloseTo(45e6 / 131072, 6);
    expect(f.averageMbPerSec).toBeCloseTo(45, 10);
    expect(f.cpuSecondsPerGB).toBeCloseTo(9 / 0.225, 10);
    expect(f.daemonCpuSecondsPerGB).toBeCloseTo(6 / 0.225, 10);
    expect(f.busyCores).toBeCloseTo(9 / 5.1, 10);
    expect(f.daemonBusyCores).toBeCloseTo(6 / 5.1, 10);
    const veth = tunnelFigure("veth", tcp1, [{ run: run(1.5e9), cpu: { cpuSeconds: 10, wallSeconds: 5, daemonCpuSeconds: null } }]);
    expect(veth.daemonCpuSecondsPerGB).toBeNull();
    expect(veth.daemonBusyCores).toBeNull();
  });

  it("combines rounds: every interval a sample, totals summed, CPU per GB and cores the median of the runs", () => {
    const rounds = [
      { run: run(40e6, 3), cpu: { cpuSeconds: 4.8, wallSeconds: 3, daemonCpuSeconds: 3 } }, // 40 s per GB
      { run: run(50e6, 3), cpu: { cpuSeconds: 9, wallSeconds: 3, daemonCpuSeconds: 3 } }, // 60 s per GB: disturbed
      { run: run(45e6, 3), cpu: { cpuSeconds: 5.4, wallSeconds: 3, daemonCpuSeconds: 2.7 } }, // 40 s per GB
    ];
    const f = tunnelFigure("ours", tcp1, rounds);
    expect(f.runs).toBe(3);
    expect(f.samples).toBe(9);
    // Intervals of 0.98, 0.99 and 1.00 times each run's rate: the fifth of the nine is 45 × 0.99.
    expect(f.mbPerSec!.median).toBeCloseTo(44.55, 10);
    expect(f.mbPerSec!.max).toBeCloseTo(50, 10);
    expect(f.receivedBytes).toBe((40e6 + 50e6 + 45e6) * 3);
    expect(f.seconds).toBe(9);
    expect(f.cpuSeconds).toBeCloseTo(19.2, 10);
    expect(f.cpuSecondsPerGB).toBeCloseTo(40, 10);
    expect(f.busyCores).toBeCloseTo(1.8, 10);
    expect(f.daemonCpuSeconds).toBeCloseTo(8.7, 10);
    expect(f.daemonCpuSecondsPerGB).toBeCloseTo(3 / 0.15, 10);
    expect(f.retransmits).toBe(0);
    expect(f.lostPercent).toBeNull();
    expect(() => tunnelFigure("ours", tcp1, [])).toThrow("no runs of tcp1-ab/ours");
  });

  it("compares ours with wireguard-go and both with veth; CPU per GB inverted so ≥ 1 favours ours", () => {
    const figures: TunnelFigure[] = [];
    const add = (pair: PairName, rate: number, cpuSeconds: number): void => {
      for (const c of CASES) figures.push(tunnelFigure(pair, c, [{ run: run(rate), cpu: { cpuSeconds, wallSeconds: 5, daemonCpuSeconds: pair === "veth" ? null : cpuSeconds / 2 } }]));
    };
    add("ours", 54e6, 9); // 1.2× wireguard-go's rate; 9 / 0.27 = 33.3 s per GB
    add("wireguard-go", 45e6, 9); // 9 / 0.225 = 40 s per GB
    add("veth", 1.5e9, 10);
    const ratios = tunnelRatios(figures);
    expect(ratios).toHaveLength(CASES.length * 3 * 2);
    const find = (op: string, ours: PairName, anchor: PairName) =>
      ratios.find((r) => r.op === op && r.ours === figureId("tcp1-ab", ours) && r.anchor === figureId("tcp1-ab", anchor))!.ratio;
    expect(find("tcp1-ab", "ours", "wireguard-go")).toBeCloseTo(1.2, 10);
    expect(find("tcp1-ab", "ours", "veth")).toBeCloseTo(54 / 1500, 10);
    expect(find("tcp1-ab/cpu-per-gb", "ours", "wireguard-go")).toBeCloseTo(40 / (9 / 0.27), 10);
    expect(find("tcp1-ab/cpu-per-gb", "wireguard-go", "veth")).toBeCloseTo((10 / 7.5) / 40, 10);

    const targets = tunnelTargets(figures);
    expect(targets.map((t) => [t.op, t.met])).toEqual([
      ["tcp1-ab", true], ["tcp1-ba", true], ["tcp1-ab/cpu-per-gb", true], ["tcp1-ba/cpu-per-gb", true],
    ]);
    expect(targets[0]!.margin).toBeCloseTo(0.2, 10);
  });

  it("reports a missed target, and none when ours was not measured", () => {
    const figures = [
      tunnelFigure("ours", tcp1, [{ run: run(30e6), cpu: { cpuSeconds: 9, wallSeconds: 5, daemonCpuSeconds: 5 } }]),
      tunnelFigure("wireguard-go", tcp1, [{ run: run(45e6), cpu: { cpuSeconds: 9, wallSeconds: 5, daemonCpuSeconds: 5 } }]),
    ];
    const [throughput, cpu] = tunnelTargets(figures);
    expect(throughput).toMatchObject({ op: "tcp1-ab", met: false, min: 1 });
    expect(throughput!.ratio).toBeCloseTo(30 / 45, 10);
    expect(cpu).toMatchObject({ op: "tcp1-ab/cpu-per-gb", met: false });
    expect(tunnelTargets(figures.slice(1))).toEqual([]);
    expect(tunnelRatios(figures.slice(1))).toEqual([]);
  });
});

describe("pointToPointConfig", () => {
  it("writes the wg-quick style file `wardline wg --config` reads", () => {
    const config = pointToPointConfig({ privateKey: "cHJpdmF0ZQ==", address: "10.99.0.1", peerPublicKey: "cHVibGlj", peerAddress: "10.99.0.2", peerEndpoint: "10.98.0.2" });
    const text = formatConfig(config);
    expect(text).toBe(
      "[Interface]\nPrivateKey = cHJpdmF0ZQ==\nListenPort = 51820\nAddress = 10.99.0.1/24\nMTU = 1420\n\n" +
        "[Peer]\nPublicKey = cHVibGlj\nAllowedIPs = 10.99.0.2/32\nEndpoint = 10.98.0.2:51820\n",
    );
  });
});
