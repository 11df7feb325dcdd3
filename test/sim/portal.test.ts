// The stub portal: ordered delivery after the parties' delays, lost messages across an outage or a
// disconnect, delivery back after up() and connect(), and handlers that drive endpoints.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure } from "../support/prng.js";
import { Network } from "./network.js";
import { addr, RecordingEndpoint } from "./node.js";
import { StubPortal } from "./portal.js";

beforeEach(reportSeedOnFailure);

describe("stub portal", () => {
  it("delivers in order after both delays", () => {
    const net = new Network({ seed: 1 });
    const portal = new StubPortal<string>(net);
    const seen: string[] = [];
    portal.connect("client", () => {}, 5);
    const gateway = portal.connect("gateway", (now, from, m) => seen.push(`${now} ${from} ${m}`), 30);
    net.act(() => {
      for (const m of ["a", "b", "c"]) portal.send("client", "gateway", m);
    });
    net.run(100);
    expect(seen).toEqual(["35 client a", "35 client b", "35 client c"]);
    expect(gateway.received.map((r) => r.message)).toEqual(["a", "b", "c"]);
  });

  it("loses what is sent or in flight during an outage, and delivers again after it", () => {
    const net = new Network({ seed: 2 });
    const portal = new StubPortal<number>(net);
    const got: number[] = [];
    portal.connect("a", () => {});
    portal.connect("b", (_now, _from, m) => got.push(m));
    net.act(() => portal.send("a", "b", 1));
    net.runFor(5);
    portal.down();
    expect(portal.send("a", "b", 2)).toBe(false);
    net.runFor(100);
    portal.up();
    net.act(() => portal.send("a", "b", 3));
    net.runFor(100);
    portal.disconnect("b");
    expect(portal.send("a", "b", 4)).toBe(false);
    portal.connect("b", (_now, _from, m) => got.push(m * 10));
    net.act(() => portal.send("a", "b", 5));
    net.runFor(100);
    expect(got).toEqual([3, 50]);
    expect(portal.stats).toEqual({ sent: 5, delivered: 2, lost: 3 });
    expect(net.trace.some((line) => line.includes("note portal lost a->b in flight"))).toBe(true);
  });

  it("a handler's commands to an endpoint are drained into the network", () => {
    const net = new Network({ seed: 3 });
    const portal = new StubPortal<{ candidate: string }>(net);
    const gateway = new RecordingEndpoint();
    const client = new RecordingEndpoint();
    net.addHost("gateway", "192.0.2.1").bind(gateway, 51820);
    net.addHost("client", "192.0.2.2").bind(client, 51820);
    portal.connect("client", () => {});
    portal.connect("gateway", (_now, _from, m) => gateway.send(addr(m.candidate), new Uint8Array([1])));
    net.act(() => portal.send("client", "gateway", { candidate: "192.0.2.2:51820" }));
    net.run(100);
    expect(client.received.map((d) => d.at)).toEqual([40]);
  });
});
