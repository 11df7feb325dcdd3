// Where each relay listens, as it said when it joined: any portal node hands clients and gateways the
// relays online anywhere (presence says which), so the addresses live in the database, not in the
// memory of the node the relay happens to be connected to. Keyed by the relay's token.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class RelayEndpoints1764400000000 implements MigrationInterface {
  name = "RelayEndpoints1764400000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE relay_endpoints (
        account_id uuid NOT NULL,
        relay_id uuid NOT NULL,
        ipv4 inet,
        ipv6 inet,
        port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, relay_id),
        FOREIGN KEY (account_id, relay_id) REFERENCES tokens (account_id, id) ON DELETE CASCADE,
        CHECK (ipv4 IS NOT NULL OR ipv6 IS NOT NULL)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS relay_endpoints`);
  }
}
