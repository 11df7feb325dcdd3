// Account settings the devices follow: the DNS servers clients forward non-resource queries to. Empty
// means the portal's default (itself empty: the client's system resolvers).

import type { MigrationInterface, QueryRunner } from "typeorm";

export class AccountSettings1764500000000 implements MigrationInterface {
  name = "AccountSettings1764500000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN upstream_dns jsonb NOT NULL DEFAULT '[]'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS upstream_dns`);
  }
}
