// Change notifications on both databases: a committed change is notified once, naming its change_log
// row; a rolled-back one never is; a seeded mix of both comes out as exactly the committed ones, in
// commit order. On PostgreSQL, a change made through one node's DataSource reaches the other node's
// bus, and a LISTEN connection killed by the server comes back and says `resync`.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { DataSource } from "typeorm";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { AccountScope } from "../database/account-scope.js";
import { openDatabase } from "../database/data-source.js";
import { AccountEntity, ChangeLogEntity, ResourceEntity } from "../database/entities.js";
import { DATABASES } from "../testing/api.js";
import { ChangeBus, parseChange, type ChangeNotification } from "./change-bus.js";

beforeEach(reportSeedOnFailure);

/** Polls until check() holds; fails with what was last seen after timeoutMs. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("change payloads", () => {
  it("parse only well-formed notifications", () => {
    const good = { account_id: "a", change_id: "c", table: "resources", action: "update", object_id: "o" };
    expect(parseChange(JSON.stringify(good))).toEqual({ accountId: "a", changeId: "c", table: "resources", action: "update", objectId: "o" });
    expect(parseChange(JSON.stringify({ ...good, object_id: null }))?.objectId).toBeNull();
    for (const bad of ["", "not json", "null", "[]", JSON.stringify({ ...good, action: "truncate" }), JSON.stringify({ ...good, account_id: 1 }), JSON.stringify({ ...good, object_id: 5 })]) {
      expect(parseChange(bad), bad).toBeUndefined();
    }
  });
});

describe.each(DATABASES)("change notifications on $name", (kind) => {
  const skip = kind.missing !== undefined;
  // A test about one database only is not defined for the other (not skipped: it does not apply).
  const onlyOn = (applies: boolean): ReturnType<typeof it.skipIf> => (applies ? it.skipIf(skip) : ((() => undefined) as unknown as ReturnType<typeof it.skipIf>));
  // PGlite is one process's database: one node. PostgreSQL: two nodes on one database.
  let nodes: DataSource[] = [];
  let buses: ChangeBus[] = [];
  let seen: ChangeNotification[][] = [];
  const resyncs: number[] = [];
  let scopes: AccountScope[] = [];
  let stop: () => Promise<void> = async () => {};

  beforeAll(async () => {
    if (skip) return;
    const opened = await kind.open();
    stop = opened.stop;
    const count = kind.name === "PGlite" ? 1 : 2;
    for (let i = 0; i < count; i++) nodes.push(await openDatabase(opened.location));
    const account = randomUUID();
    await nodes[0]!.getRepository(AccountEntity).insert({ id: account, slug: `changes-${process.pid}`, name: "Changes" });
    scopes = nodes.map((db) => new AccountScope(db, account, null));
    for (const db of nodes) {
      const bus = new ChangeBus(db, { initialDelayMs: 20, maxDelayMs: 200 });
      const index = buses.length;
      seen.push([]);
      resyncs.push(0);
      bus.subscribe((change) => seen[index]!.push(change));
      bus.onResync(() => resyncs[index]!++);
      await bus.start();
      buses.push(bus);
    }
  }, 60_000);
  afterAll(async () => {
    for (const bus of buses) await bus.stop();
    for (const db of nodes) await db.destroy();
    nodes = [];
    buses = [];
    seen = [];
    await stop();
  });

  /** A committed change on scope, then waits until every bus has heard it: what came before it has too. */
  async function marker(scope: AccountScope): Promise<string> {
    const row = await scope.repository(ResourceEntity).insert({ type: "dns", name: "marker", address: "marker.test", filters: [] });
    await until(() => seen.every((changes) => changes.some((c) => c.objectId === row.id)), `the marker ${row.id} on every node`);
    return row.id;
  }

  it.skipIf(skip)("a committed change is notified once to every node, naming its change_log row", async () => {
    const scope = scopes[scopes.length - 1]!;
    const before = seen.map((changes) => changes.length);
    const row = await scope.repository(ResourceEntity).insert({ type: "dns", name: "wiki", address: "wiki.test", filters: [] });
    await marker(scopes[0]!);
    for (const [i, changes] of seen.entries()) {
      const mine = changes.slice(before[i]).filter((c) => c.objectId === row.id);
      expect(mine, `node ${i}`).toHaveLength(1);
      expect(mine[0]).toMatchObject({ accountId: scope.accountId, table: "resources", action: "insert", objectId: row.id });
      const logged = await nodes[0]!.getRepository(ChangeLogEntity).findOneByOrFail({ accountId: scope.accountId, id: mine[0]!.changeId });
      expect(logged).toMatchObject({ objectTable: "resources", objectId: row.id, action: "insert" });
      expect((logged.after as { name: string }).name).toBe("wiki");
    }
  });

  it.skipIf(skip)("a rolled-back change is never notified", async () => {
    const ids: string[] = [];
    await expect(
      scopes[0]!.transaction(async (tx) => {
        const row = await tx.repository(ResourceEntity).insert({ type: "dns", name: "doomed", address: "doomed.test", filters: [] });
        ids.push(row.id);
        await tx.repository(ResourceEntity).update(row.id, { name: "still doomed" });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(ids).toHaveLength(1);
    await marker(scopes[0]!);
    for (const changes of seen) expect(changes.filter((c) => c.objectId === ids[0])).toEqual([]);
  });

  it.skipIf(skip)("a seeded mix of committed and rolled-back transactions notifies exactly the committed changes, in commit order", async () => {
    const random = rng("change-bus mix");
    const before = seen.map((changes) => changes.length);
    const expected: { action: string; objectId: string }[] = [];
    let live: string[] = [];
    for (let i = 0; i < 25; i++) {
      const scope = random.pick(scopes);
      const commit = random.bool(0.6);
      const planned: { action: string; objectId: string }[] = [];
      const txLive = [...live];
      await scope
        .transaction(async (tx) => {
          const repo = tx.repository(ResourceEntity);
          for (let n = random.int(1, 3); n > 0; n--) {
            const choice = txLive.length === 0 ? 0 : random.int(0, 2);
            if (choice === 0) {
              const row = await repo.insert({ type: "dns", name: `r${i}-${n}`, address: `r${i}-${n}.test`, filters: [] });
              planned.push({ action: "insert", objectId: row.id });
              txLive.push(row.id);
            } else {
              const id = random.pick(txLive);
              if (choice === 1) expect(await repo.update(id, { name: `renamed ${i}-${n}` })).not.toBeNull();
              else expect(await repo.delete(id)).toBe(true);
              if (choice === 2) txLive.splice(txLive.indexOf(id), 1);
              planned.push({ action: choice === 1 ? "update" : "delete", objectId: id });
            }
          }
          if (!commit) throw new Error("roll back");
        })
        .catch((error: unknown) => {
          if (commit || (error as Error).message !== "roll back") throw error;
        });
      if (!commit) continue;
      expected.push(...planned);
      live = txLive;
    }
    const end = await marker(scopes[0]!);
    for (const [i, changes] of seen.entries()) {
      const got = changes.slice(before[i]).filter((c) => c.objectId !== end);
      expect(got.map((c) => ({ action: c.action, objectId: c.objectId })), `node ${i}`).toEqual(expected);
      expect(new Set(got.map((c) => c.changeId)).size).toBe(got.length);
    }
  });

  it.skipIf(skip)("a malformed payload on the channel is counted and reaches no subscriber", async () => {
    const before = seen.map((changes) => changes.length);
    const malformed = buses.map((bus) => bus.malformed);
    await nodes[0]!.query(`SELECT pg_notify('wardline_changes', $1)`, ["not json"]);
    await nodes[0]!.query(`SELECT pg_notify('wardline_changes', $1)`, [JSON.stringify({ account_id: "x", action: "insert" })]);
    const end = await marker(scopes[0]!);
    for (const [i, bus] of buses.entries()) {
      expect(bus.malformed - malformed[i]!).toBe(2);
      expect(seen[i]!.slice(before[i]).map((c) => c.objectId)).toEqual([end]);
    }
  });

  onlyOn(kind.name === "PostgreSQL")("a killed LISTEN connection reconnects, says resync, and delivers again", async () => {
    const bus = buses[1]!;
    const pid = bus.backendPid;
    expect(pid).toBeTypeOf("number");
    const [row] = (await nodes[0]!.query(`SELECT application_name FROM pg_stat_activity WHERE pid = $1`, [pid])) as { application_name: string }[];
    expect(row?.application_name).toBe("wardline listen");
    const reconnects = bus.reconnects;
    const [killed] = (await nodes[0]!.query(`SELECT pg_terminate_backend($1) AS ok`, [pid])) as { ok: boolean }[];
    expect(killed?.ok).toBe(true);
    await until(() => resyncs[1] === 1, "resync on node 1");
    expect(resyncs[0]).toBe(0);
    expect(bus.reconnects).toBe(reconnects + 1);
    expect(bus.backendPid).not.toBe(pid);
    await marker(scopes[0]!);
  });

  onlyOn(kind.name === "PGlite")("on PGlite the one node hears its own changes and never resyncs", async () => {
    expect(buses).toHaveLength(1);
    expect(buses[0]!.backendPid).toBeUndefined();
    await marker(scopes[0]!);
    expect(resyncs[0]).toBe(0);
  });
});
