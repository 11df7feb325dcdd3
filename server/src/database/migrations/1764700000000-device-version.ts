// The version a client or gateway said it runs when it last connected (?version= on its websocket).
// The hub gives a client only gateways of a compatible version; null for a device that never said.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class DeviceVersion1764700000000 implements MigrationInterface {
  name = "DeviceVersion1764700000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE devices ADD COLUMN version text CHECK (version IS NULL OR length(version) <= 64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE devices DROP COLUMN IF EXISTS version`);
  }
}
