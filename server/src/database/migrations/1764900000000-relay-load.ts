// A relay's load, as it last reported it over its socket (the relay channel's `load` event): its
// allocations and channel bindings then, and the payload bytes a second it relayed since the report
// before. Any portal node shows it to admins, so it lives beside the relay's addresses. Null until
// the relay's first report after a join.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class RelayLoad1764900000000 implements MigrationInterface {
  name = "RelayLoad1764900000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE relay_endpoints
        ADD COLUMN allocations integer CHECK (allocations >= 0),
        ADD COLUMN channels integer CHECK (channels >= 0),
        ADD COLUMN bytes_per_second bigint CHECK (bytes_per_second >= 0),
        ADD COLUMN load_at timestamptz,
        ADD CHECK ((allocations IS NULL) = (load_at IS NULL) AND (channels IS NULL) = (load_at IS NULL) AND (bytes_per_second IS NULL) = (load_at IS NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE relay_endpoints DROP COLUMN IF EXISTS allocations, DROP COLUMN IF EXISTS channels, DROP COLUMN IF EXISTS bytes_per_second, DROP COLUMN IF EXISTS load_at`);
  }
}
