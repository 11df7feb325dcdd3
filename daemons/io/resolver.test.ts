// NameResolver (node:dns) against a DNS server on loopback written with our codec: both families at
// once, a family with no address answers empty, NXDOMAIN answers empty, a dead server is an error.

import { createSocket, type Socket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeDnsMessage, encodeDnsMessage, responseMessage, type DnsRecord } from "../proto/dns/codec.js";
import { NameResolver } from "./resolver.js";

const TYPE_A = 1;
const TYPE_AAAA = 28;
const ZONE: Record<string, { a?: string[]; aaaa?: string[] }> = {
  "both.corp.example": { a: ["192.0.2.10", "192.0.2.11"], aaaa: ["2001:db8::10"] },
  "v4only.corp.example": { a: ["192.0.2.20"] },
};

let server: Socket;
let port = 0;

beforeAll(async () => {
  server = createSocket("udp4");
  server.on("message", (bytes, from) => {
    const decoded = decodeDnsMessage(new Uint8Array(bytes));
    if (!decoded.ok) return;
    const query = decoded.message;
    const question = query.questions[0]!;
    const entry = ZONE[question.name.toLowerCase()];
    const answers: DnsRecord[] = [];
    if (entry && question.type === TYPE_A) for (const address of entry.a ?? []) answers.push({ name: question.name, type: TYPE_A, class: 1, ttl: 60, data: { kind: "a", address } });
    if (entry && question.type === TYPE_AAAA) for (const address of entry.aaaa ?? []) answers.push({ name: question.name, type: TYPE_AAAA, class: 1, ttl: 60, data: { kind: "aaaa", address } });
    server.send(encodeDnsMessage(responseMessage(query, { rcode: entry ? 0 : 3, answers, aa: true })), from.port, from.address);
  });
  await new Promise<void>((resolve) => server.bind(0, "127.0.0.1", resolve));
  port = server.address().port;
});
afterAll(() => {
  server.close();
});

describe("NameResolver", () => {
  it("asks A and AAAA at once and returns IPv4 first", async () => {
    const resolver = new NameResolver({ servers: [`127.0.0.1:${port}`] });
    expect(await resolver.resolve("both.corp.example")).toEqual(["192.0.2.10", "192.0.2.11", "2001:db8::10"]);
    expect(await resolver.resolve("v4only.corp.example")).toEqual(["192.0.2.20"]);
    expect(await resolver.resolve("nowhere.corp.example")).toEqual([]);
  });

  it("fails when no server answers", async () => {
    const silent = createSocket("udp4");
    await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
    const resolver = new NameResolver({ servers: [`127.0.0.1:${silent.address().port}`], timeoutMs: 200, tries: 1 });
    await expect(resolver.resolve("both.corp.example")).rejects.toThrow(/resolving both\.corp\.example/);
    silent.close();
  });
});
