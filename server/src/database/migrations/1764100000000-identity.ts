// Identity: OIDC auth providers per account, and the one-time challenges of sign-ins in progress
// (magic links, emailed codes, OIDC flows). Challenges hold only hashes of their secrets.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class Identity1764100000000 implements MigrationInterface {
  name = "Identity1764100000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE auth_providers (
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('oidc')),
        name text NOT NULL,
        issuer text NOT NULL,
        client_id text NOT NULL,
        client_secret text NOT NULL,
        scopes text NOT NULL DEFAULT 'openid email profile',
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, id),
        UNIQUE (account_id, name)
      )`);
    await q.query(`
      CREATE TABLE sign_in_challenges (
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('magic_link', 'email_code', 'oidc')),
        actor_id uuid,
        provider_id uuid,
        secret_hash text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, id),
        FOREIGN KEY (account_id, actor_id) REFERENCES actors (account_id, id) ON DELETE CASCADE,
        FOREIGN KEY (account_id, provider_id) REFERENCES auth_providers (account_id, id) ON DELETE CASCADE,
        CHECK ((kind = 'oidc') = (provider_id IS NOT NULL)),
        CHECK (kind = 'oidc' OR actor_id IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX sign_in_challenges_actor ON sign_in_challenges (account_id, actor_id, kind, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS sign_in_challenges`);
    await q.query(`DROP TABLE IF EXISTS auth_providers`);
  }
}
