// Authorization records under load. Every authorization is written once before its gateway hears of it,
// and, almost always, updated once when it ends (revoked_at, revoke_reason). Measured on PostgreSQL 15,
// those two statements were most of the portal's database time:
// - The foreign keys to devices and resources cost a trigger and a lookup per row and about doubled the
//   cost of an insert. The record is an audit trail, like policy_id and actor_id (which never had
//   foreign keys), so it now outlives the devices and the resource it names instead of cascading away
//   with them. Readers join what still exists: a gateway's init joins the client's device and skips
//   resources no longer in the account. The account's foreign key stays: a tenant leaves whole.
// - With the cascades gone, the indexes on client and resource served nothing.
// - authorizations_policy, a partial index on revoked_at IS NULL that no query reads, led the planner
//   to scan every live authorization of the account for each batch of revocations, and since its
//   predicate names revoked_at, it made every revocation a full update touching all of the indexes.
//   Without it no indexed column changes, so with room left on the row's page PostgreSQL updates the
//   row in place (a heap-only tuple). Inserts fill pages to 70 %; the rest is for those updates.

import type { MigrationInterface, QueryRunner } from "typeorm";

const FOREIGN_KEYS = [
  ["client_device_id", "devices"],
  ["gateway_device_id", "devices"],
  ["resource_id", "resources"],
] as const;

export class AuthorizationsRevocation1764600000000 implements MigrationInterface {
  name = "AuthorizationsRevocation1764600000000";

  async up(q: QueryRunner): Promise<void> {
    // The constraints were created unnamed; find them by the column they hold.
    const rows = (await q.query(
      `SELECT c.conname, a.attname
         FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[2]
        WHERE c.conrelid = 'authorizations'::regclass AND c.contype = 'f' AND array_length(c.conkey, 1) = 2`,
    )) as { conname: string; attname: string }[];
    for (const [column] of FOREIGN_KEYS) {
      const constraint = rows.find((r) => r.attname === column);
      if (constraint !== undefined) await q.query(`ALTER TABLE authorizations DROP CONSTRAINT "${constraint.conname}"`);
    }
    await q.query(`DROP INDEX IF EXISTS authorizations_client`);
    await q.query(`DROP INDEX IF EXISTS authorizations_resource`);
    await q.query(`DROP INDEX IF EXISTS authorizations_policy`);
    await q.query(`ALTER TABLE authorizations SET (fillfactor = 70)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE authorizations RESET (fillfactor)`);
    await q.query(`CREATE INDEX IF NOT EXISTS authorizations_policy ON authorizations (account_id, policy_id) WHERE revoked_at IS NULL`);
    await q.query(`CREATE INDEX IF NOT EXISTS authorizations_resource ON authorizations (account_id, resource_id)`);
    await q.query(`CREATE INDEX IF NOT EXISTS authorizations_client ON authorizations (account_id, client_device_id)`);
    // Records whose device or resource is gone cannot be held by the restored keys.
    await q.query(
      `DELETE FROM authorizations a WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.account_id = a.account_id AND d.id = a.client_device_id)
          OR NOT EXISTS (SELECT 1 FROM devices d WHERE d.account_id = a.account_id AND d.id = a.gateway_device_id)
          OR NOT EXISTS (SELECT 1 FROM resources r WHERE r.account_id = a.account_id AND r.id = a.resource_id)`,
    );
    for (const [column, table] of FOREIGN_KEYS) {
      await q.query(`ALTER TABLE authorizations ADD FOREIGN KEY (account_id, ${column}) REFERENCES ${table} (account_id, id) ON DELETE CASCADE`);
    }
  }
}
