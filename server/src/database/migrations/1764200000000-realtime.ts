// The realtime tables. portal_nodes and presence are the portal's own bookkeeping of which node holds
// which device's socket: short-lived rows, rewritten on every connect and heartbeat, so they are not
// tenant API objects and get no change log. authorizations records who reached what through which
// gateway; it keeps policy_id and actor_id without foreign keys, so the record outlives the policy or
// actor for audit, while a deleted device or resource takes its authorizations with it.

import type { MigrationInterface, QueryRunner } from "typeorm";

export class Realtime1764200000000 implements MigrationInterface {
  name = "Realtime1764200000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE portal_nodes (
        node_id uuid PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      )`);
    // A node's rows go with its portal_nodes row: deleting a dead node is one statement.
    await q.query(`
      CREATE TABLE presence (
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        device_id uuid NOT NULL,
        node_id uuid NOT NULL REFERENCES portal_nodes (node_id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('client', 'gateway', 'relay')),
        connected_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, device_id, node_id)
      )`);
    await q.query(`CREATE INDEX presence_node ON presence (node_id)`);
    await q.query(`
      CREATE TABLE authorizations (
        account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        id uuid NOT NULL,
        client_device_id uuid NOT NULL,
        gateway_device_id uuid NOT NULL,
        resource_id uuid NOT NULL,
        policy_id uuid NOT NULL,
        actor_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        revoke_reason text,
        PRIMARY KEY (account_id, id),
        FOREIGN KEY (account_id, client_device_id) REFERENCES devices (account_id, id) ON DELETE CASCADE,
        FOREIGN KEY (account_id, gateway_device_id) REFERENCES devices (account_id, id) ON DELETE CASCADE,
        FOREIGN KEY (account_id, resource_id) REFERENCES resources (account_id, id) ON DELETE CASCADE,
        CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
      )`);
    // The cascades above and revocation look authorizations up by each of these; a gateway's init
    // reads its authorizations still in force.
    await q.query(`CREATE INDEX authorizations_gateway ON authorizations (account_id, gateway_device_id)`);
    await q.query(`CREATE INDEX authorizations_client ON authorizations (account_id, client_device_id)`);
    await q.query(`CREATE INDEX authorizations_resource ON authorizations (account_id, resource_id)`);
    await q.query(`CREATE INDEX authorizations_policy ON authorizations (account_id, policy_id) WHERE revoked_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ["authorizations", "presence", "portal_nodes"]) await q.query(`DROP TABLE IF EXISTS ${table}`);
  }
}
