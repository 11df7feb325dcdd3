// Pair secrets: the same for the same pair on every node (one shared secret in the database, made
// once even when nodes start together), different for any other pair or account, and well-formed for
// WireGuard and ICE.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataSource } from "typeorm";
import { openDatabase } from "../database/data-source.js";
import { DATABASES } from "../testing/api.js";
import { pairSecrets, PAIR_SECRET_NAME, sharedSecret } from "./pair-secrets.js";

const ACCOUNT = "6c1d5d1e-0e57-4e59-9f5a-3c1f6f1b7a10";
const OTHER_ACCOUNT = "7c1d5d1e-0e57-4e59-9f5a-3c1f6f1b7a10";
const key = (n: number): string => Buffer.alloc(32, n).toString("base64");

describe("pair secrets", () => {
  it("are well-formed, stable for a pair, and differ for every other pair, side and account", () => {
    const secret = Buffer.alloc(32, 7);
    const a = pairSecrets(secret, ACCOUNT, key(1), key(2));
    expect(Buffer.from(a.presharedKey, "base64")).toHaveLength(32);
    // ice-char (RFC 8445 section 5.3) is ALPHA / DIGIT / "+" / "/": what the devices' schema accepts.
    for (let i = 0; i < 300; i++) {
      const s = pairSecrets(secret, ACCOUNT, key(i), key(i + 1000));
      for (const ice of [s.clientIce, s.gatewayIce]) {
        expect(ice.username).toMatch(/^[A-Za-z0-9+/]{8}$/);
        expect(ice.password).toMatch(/^[A-Za-z0-9+/]{32}$/);
      }
    }
    expect(pairSecrets(secret, ACCOUNT, key(1), key(2))).toEqual(a);
    const others = [
      pairSecrets(secret, ACCOUNT, key(2), key(1)),
      pairSecrets(secret, ACCOUNT, key(1), key(3)),
      pairSecrets(secret, OTHER_ACCOUNT, key(1), key(2)),
      pairSecrets(Buffer.alloc(32, 8), ACCOUNT, key(1), key(2)),
    ];
    for (const other of others) {
      expect(other.presharedKey).not.toBe(a.presharedKey);
      expect(other.clientIce).not.toEqual(a.clientIce);
    }
    expect(a.clientIce).not.toEqual(a.gatewayIce);
  });
});

describe.each(DATABASES)("the shared secret on $name", (kind) => {
  let nodes: DataSource[] = [];
  let stop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    if (kind.missing !== undefined) return;
    const opened = await kind.open();
    stop = opened.stop;
    // PGlite is one process's database: one node. PostgreSQL: three nodes on one database.
    const count = kind.name === "PGlite" ? 1 : 3;
    for (let i = 0; i < count; i++) nodes.push(await openDatabase(opened.location));
  }, 60_000);
  afterAll(async () => {
    for (const db of nodes) await db.destroy();
    nodes = [];
    await stop();
  });

  it.skipIf(kind.missing !== undefined)("is made once, even by nodes starting together, and every node reads the same", async () => {
    const secrets = await Promise.all(nodes.flatMap((db) => [sharedSecret(db, PAIR_SECRET_NAME), sharedSecret(db, PAIR_SECRET_NAME)]));
    for (const secret of secrets) expect(secret.equals(secrets[0]!)).toBe(true);
    expect(secrets[0]).toHaveLength(32);
    const other = await sharedSecret(nodes[0]!, "another");
    expect(other.equals(secrets[0]!)).toBe(false);
    const rows = (await nodes[0]!.query(`SELECT count(*)::int AS n FROM portal_secrets`)) as { n: number }[];
    expect(rows[0]!.n).toBe(2);
  });
});
