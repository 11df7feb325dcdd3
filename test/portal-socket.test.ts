// The device's portal connection (daemons/io/portal-socket.ts) against a real portal on both databases:
// it joins and receives a validated init, its requests are answered, a refused token signs it out
// with the portal's problem details; and on PostgreSQL, where a portal can stop and come back on the
// same database, it reconnects by itself with growing waits and is given init again.

import { afterEach, describe, expect, it } from "vitest";
import { PortalSocket, type PortalSocketEvent } from "../daemons/io/portal-socket.js";
import type { DeviceRole } from "../daemons/proto/portal/index.js";
import { issueToken } from "../server/src/accounts/accounts.service.js";
import { startPortal, type Portal } from "../server/src/portal.js";
import { DATABASES, startTestPortal, type TestPortal } from "../server/src/testing/api.js";
import { randomPublicKey } from "../server/src/testing/device.js";

/** A PortalSocket whose events a test can wait for. */
class Device<R extends DeviceRole> {
  readonly events: PortalSocketEvent<R>[] = [];
  private readonly waiting: { match: (e: PortalSocketEvent<R>) => boolean; resolve: () => void }[] = [];
  readonly socket: PortalSocket<R>;

  constructor(portalUrl: string, role: R, token: string) {
    this.socket = new PortalSocket({
      portalUrl, role, token, query: { public_key: randomPublicKey(), name: `${role} under test` },
      onEvent: (e) => {
        this.events.push(e);
        for (const w of this.waiting.splice(0)) {
          if (w.match(e)) w.resolve();
          else this.waiting.push(w);
        }
      },
    });
  }

  /** Resolves once an event matching `match` has come (counting those already here past `from`). */
  until(match: (e: PortalSocketEvent<R>) => boolean, from = 0, timeoutMs = 15_000): Promise<PortalSocketEvent<R>> {
    const seen = this.events.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; had ${JSON.stringify(this.events.map((e) => e.type))}`)), timeoutMs);
      this.waiting.push({ match, resolve: () => {
        clearTimeout(timer);
        resolve(this.events.slice(from).find(match)!);
      } });
    });
  }
}

const open: { socket: PortalSocket<DeviceRole> }[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.socket.stop();
});

function device<R extends DeviceRole>(portalUrl: string, role: R, token: string): Device<R> {
  const d = new Device(portalUrl, role, token);
  open.push(d as unknown as Device<DeviceRole>);
  d.socket.start();
  return d;
}

async function clientToken(t: TestPortal): Promise<string> {
  const user = await t.actorWithToken(t.a, "user");
  return (await issueToken(t.a.scope, { kind: "client", actorId: user.actor.id, expiresAt: new Date(Date.now() + 3_600_000) })).token;
}

describe.each(DATABASES)("PortalSocket against a real portal ($name)", (kind) => {
  it.skipIf(kind.missing !== undefined)("joins, receives a validated init, and gets its requests answered", async () => {
    const t = await startTestPortal(kind);
    try {
      const client = device(t.portal.url, "client", await clientToken(t));
      await client.until((e) => e.type === "joined");
      const init = await client.until((e) => e.type === "message" && e.event === "init");
      expect(init).toMatchObject({ payload: { interface: { ipv4: expect.stringMatching(/^100\./) as string } } });
      // A resource this client may not see: the request is answered, and the failure pushed.
      const ref = client.socket.send("request_authorization", { resource_id: "7b4d8a52-2c55-4a1f-9a43-5d2c7f0d1b11" });
      const reply = await client.until((e) => e.type === "reply" && e.ref === ref);
      expect(reply).toMatchObject({ type: "reply", ref });
      const failed = await client.until((e) => e.type === "message" && e.event === "authorization_creation_failed");
      expect(failed).toMatchObject({ payload: { resource_id: "7b4d8a52-2c55-4a1f-9a43-5d2c7f0d1b11", reason: "not_found" } });
      expect(client.socket.counters).toEqual({ invalid: 0, dropped: 0 });
    } finally {
      for (const d of open.splice(0)) await d.socket.stop();
      await t.close();
    }
  }, 60_000);

  it.skipIf(kind.missing !== undefined)("a refused token signs out with the portal's problem details, and does not try again", async () => {
    const t = await startTestPortal(kind);
    try {
      const gateway = device(t.portal.url, "gateway", "not-a-token");
      const out = await gateway.until((e) => e.type === "signed_out");
      expect(out).toMatchObject({ type: "signed_out", status: 401, detail: expect.stringMatching(/token/) as string });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(gateway.events.filter((e) => e.type === "disconnected")).toEqual([]);
      expect(gateway.socket.joined).toBe(false);
    } finally {
      for (const d of open.splice(0)) await d.socket.stop();
      await t.close();
    }
  }, 60_000);
});

const postgres = DATABASES.find((d) => d.name === "PostgreSQL")!;

describe("PortalSocket across a portal restart (PostgreSQL)", () => {
  it.skipIf(postgres.missing !== undefined)("reconnects by itself with growing waits and is given init again", async () => {
    const t = await startTestPortal(postgres);
    let second: Portal | undefined;
    try {
      const client = device(t.portal.url, "client", await clientToken(t));
      await client.until((e) => e.type === "message" && e.event === "init");
      const port = Number(new URL(t.portal.url).port);
      await t.portal.close();
      await client.until((e) => e.type === "disconnected");
      // Down for a few attempts: the waits grow.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const waits = client.events.flatMap((e) => (e.type === "disconnected" ? [e.retryInMs] : []));
      expect(waits.length).toBeGreaterThanOrEqual(2);
      expect(waits.at(-1)!).toBeGreaterThan(waits[0]!);
      const before = client.events.length;
      second = await startPortal({ host: "127.0.0.1", port, database: t.location });
      await client.until((e) => e.type === "joined", before, 30_000);
      await client.until((e) => e.type === "message" && e.event === "init", before, 10_000);
      expect(client.socket.joined).toBe(true);
    } finally {
      for (const d of open.splice(0)) await d.socket.stop();
      await second?.close();
      await t.close().catch(() => undefined);
    }
  }, 90_000);
});
