// The auth provider a token's sign-in went through: set on a browser session started by an OIDC
// provider, and inherited by the client tokens that session creates, so a policy's auth-provider
// condition can be checked when the client asks for access. Null for sign-in by password, emailed code
// or link, and for tokens no sign-in made (gateways, relays, API clients, service accounts). No foreign
// key: a deleted provider leaves the fact of how the token was made, which then matches no policy.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class TokenProvider1764800000000 implements MigrationInterface {
  name = "TokenProvider1764800000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tokens ADD COLUMN provider_id uuid`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tokens DROP COLUMN IF EXISTS provider_id`);
  }
}
