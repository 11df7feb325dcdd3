// Secrets the portal nodes share: made once by whichever node starts first, then read by every node,
// so keys derived from them agree across nodes and restarts. Not tenant data: no account_id.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class PortalSecrets1764300000000 implements MigrationInterface {
  name = "PortalSecrets1764300000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE portal_secrets (
        name text PRIMARY KEY,
        secret text NOT NULL CHECK (length(secret) >= 43),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS portal_secrets`);
  }
}
