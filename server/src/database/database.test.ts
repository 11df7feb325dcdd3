// The portal's storage on both databases it runs on: embedded PGlite and a real PostgreSQL server
// (a throwaway cluster from test/support/postgres.ts, or TEST_DATABASE_URL). The same tests run on
// each: migrations on an empty database, tenant isolation through AccountScope, the change log, and
// transactions that neither interleave nor half-land.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataSource } from "typeorm";
import { missingPostgres, startPostgres } from "../../../test/support/postgres.js";
import { AccountScope } from "./account-scope.js";
import { openDatabase } from "./data-source.js";
import { AccountEntity, ChangeLogEntity, ResourceEntity } from "./entities.js";

const pgMissing = missingPostgres();
if (pgMissing !== undefined && process.env.CI === "true") throw new Error(`PostgreSQL tests cannot run under CI: ${pgMissing}`);
if (pgMissing !== undefined) console.warn(`skipping the PostgreSQL half of the storage tests: ${pgMissing}`);

const TABLES = ["accounts", "actors", "groups", "memberships", "sites", "devices", "resources", "resource_sites", "policies", "tokens", "change_log"];

const KINDS = [
  { name: "PGlite", missing: undefined as string | undefined, open: async () => ({ db: await openDatabase({ memory: true }), stop: async () => {} }) },
  {
    name: "PostgreSQL",
    missing: pgMissing,
    open: async () => {
      const server = await startPostgres();
      return { db: await openDatabase({ url: server.url }), stop: server.stop };
    },
  },
];

describe.each(KINDS)("storage on $name", ({ missing, open }) => {
  let db: DataSource;
  let stop: () => Promise<void>;
  let a: AccountScope;
  let b: AccountScope;

  beforeAll(async () => {
    if (missing !== undefined) return;
    ({ db, stop } = await open());
    const accounts = db.getRepository(AccountEntity);
    const [idA, idB] = [randomUUID(), randomUUID()];
    await accounts.insert([{ id: idA, slug: "acme", name: "Acme" }, { id: idB, slug: "globex", name: "Globex" }]);
    a = new AccountScope(db, idA, null);
    b = new AccountScope(db, idB, null);
  }, 60_000);
  afterAll(async () => {
    if (missing !== undefined) return;
    await db?.destroy();
    await stop?.();
  });

  it.skipIf(missing !== undefined)("migrations create every table on an empty database, and a second run finds nothing to do", async () => {
    const rows = (await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)) as { table_name: string }[];
    const names = rows.map((r) => r.table_name);
    for (const table of TABLES) expect(names, table).toContain(table);
    expect(await db.showMigrations(), "nothing pending").toBe(false);
    expect(await db.runMigrations()).toEqual([]);
  });

  it.skipIf(missing !== undefined)("the authorizations migration undoes and redoes: the record's keys to devices and resources come and go", async () => {
    const foreignKeys = async (): Promise<number> =>
      ((await db.query(`SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'authorizations'::regclass AND contype = 'f'`)) as { n: number }[])[0]!.n;
    expect(await foreignKeys(), "only the account's").toBe(1);
    // Undone newest first, down to and including AuthorizationsRevocation.
    const executed = (await db.query(`SELECT name FROM migrations ORDER BY id DESC`)) as { name: string }[];
    const undo = executed.findIndex((m) => m.name === "AuthorizationsRevocation1764600000000") + 1;
    expect(undo).toBeGreaterThan(0);
    for (let i = 0; i < undo; i++) await db.undoLastMigration();
    expect(await foreignKeys(), "the account's, two devices' and the resource's").toBe(4);
    expect(await db.runMigrations()).toHaveLength(undo);
    expect(await foreignKeys()).toBe(1);
  });

  it.skipIf(missing !== undefined)("an account sees, changes and deletes only its own rows, whatever the caller asks", async () => {
    const ra = a.repository(ResourceEntity);
    const rb = b.repository(ResourceEntity);
    const mine = await ra.insert({ type: "dns", name: "wiki", address: "wiki.acme.test", filters: [] });
    const theirs = await rb.insert({ type: "cidr", name: "lab", address: "10.1.0.0/16", filters: [] });
    expect(mine.accountId).toBe(a.accountId);
    expect((await ra.list()).map((r) => r.id)).toEqual([mine.id]);
    expect(await ra.get(theirs.id)).toBeNull();
    expect(await ra.update(theirs.id, { name: "stolen" })).toBeNull();
    expect(await ra.delete(theirs.id)).toBe(false);
    // A condition naming the other account is overwritten, not obeyed.
    expect(await ra.list({ where: { accountId: b.accountId } })).toHaveLength(1);
    expect(await ra.count({ accountId: b.accountId, id: theirs.id })).toBe(0);
    // An insert cannot be steered into the other account either.
    const steered = await ra.insert({ type: "dns", name: "x", address: "x.acme.test", filters: [], accountId: b.accountId } as never);
    expect(steered.accountId).toBe(a.accountId);
    expect((await rb.get(theirs.id))?.name).toBe("lab");
  });

  it.skipIf(missing !== undefined)("every mutation is in the change log with who, what, before and after", async () => {
    const actor = randomUUID();
    const scope = new AccountScope(db, a.accountId, actor);
    const repo = scope.repository(ResourceEntity);
    const row = await repo.insert({ type: "ip", name: "printer", address: "192.0.2.9", filters: [] });
    await repo.update(row.id, { name: "printer-2" });
    await repo.delete(row.id);
    const log = await db.getRepository(ChangeLogEntity).find({ where: { accountId: a.accountId, objectId: row.id }, order: { at: "ASC" } });
    expect(log.map((e) => e.action)).toEqual(["insert", "update", "delete"]);
    expect(log.every((e) => e.actorId === actor && e.objectTable === "resources")).toBe(true);
    expect((log[1]!.before as { name: string }).name).toBe("printer");
    expect((log[1]!.after as { name: string }).name).toBe("printer-2");
    expect(log[2]!.after).toBeNull();
  });

  it.skipIf(missing !== undefined)("a refused write leaves no row and no log; concurrent transactions do not interleave", async () => {
    const repo = a.repository(ResourceEntity);
    await repo.insert({ type: "internet", name: "Internet", address: null, filters: [] });
    const logBefore = await db.getRepository(ChangeLogEntity).count({ where: { accountId: a.accountId } });
    await expect(repo.insert({ type: "internet", name: "Internet again", address: null, filters: [] })).rejects.toThrow(/resources_one_internet|duplicate key/);
    expect(await db.getRepository(ChangeLogEntity).count({ where: { accountId: a.accountId } })).toBe(logBefore);

    // 40 transactions at once, each inserting two rows and failing half the time after the first:
    // exactly the successful ones land, both of their rows.
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        a.transaction(async (scope) => {
          const r = scope.repository(ResourceEntity);
          await r.insert({ type: "dns", name: `t${i}-1`, address: `t${i}.acme.test`, filters: [] });
          if (i % 2 === 1) throw new Error(`transaction ${i} fails`);
          await r.insert({ type: "dns", name: `t${i}-2`, address: `t${i}b.acme.test`, filters: [] });
        }),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(20);
    const names = (await repo.list()).map((r) => r.name).filter((n) => /^t\d+-/.test(n)).sort();
    const expected = Array.from({ length: 20 }, (_, k) => [`t${2 * k}-1`, `t${2 * k}-2`]).flat().sort();
    expect(names).toEqual(expected);
  }, 60_000);
});
