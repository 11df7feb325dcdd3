// Authorization records, written in batches. A decision's record must be durable before the gateway
// hears of the authorization: record() resolves only once the batch holding it has committed, and the
// caller sends create_authorization after that. A crash between decision and write therefore leaves at
// most a record of access that was never granted, never access without a record.
//
// Batching: records arriving while a write is in flight wait for the next one, which takes all of
// them (up to MAX_BATCH) in one INSERT, so under load a write costs one round trip per batch
// rather than per decision; an idle recorder writes at once.

import type { DataSource } from "typeorm";

export const MAX_BATCH = 500;
const COLUMNS = ["account_id", "id", "client_device_id", "gateway_device_id", "resource_id", "policy_id", "actor_id", "created_at", "expires_at"] as const;
const COLUMN_TYPES: Record<(typeof COLUMNS)[number], string> = {
  account_id: "uuid",
  id: "uuid",
  client_device_id: "uuid",
  gateway_device_id: "uuid",
  resource_id: "uuid",
  policy_id: "uuid",
  actor_id: "uuid",
  created_at: "timestamptz",
  expires_at: "timestamptz",
};

export interface AuthorizationRecord {
  accountId: string;
  id: string;
  clientDeviceId: string;
  gatewayDeviceId: string;
  resourceId: string;
  policyId: string;
  actorId: string;
  createdAt: Date;
  expiresAt: Date | null;
}

interface Pending {
  record: AuthorizationRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class AuthorizationRecorder {
  private queue: Pending[] = [];
  private writing = false;
  /** Batches written so far, and records in them: for tests and the benchmark. */
  batches = 0;
  written = 0;

  /** Called after each batch commits, with how many records it held per account (realtime.ts broadcasts them). */
  onRecorded: ((counts: Map<string, number>) => void) | undefined;

  constructor(private readonly db: DataSource) {}

  /** Resolves once the record is committed; rejects if its batch could not be written. */
  record(record: AuthorizationRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /**
   * Marks authorizations revoked, with why; the ones already revoked keep their first reason. Batched
   * like records: revocations queued during a write go out together, one UPDATE per account and reason.
   */
  revoke(accountId: string, ids: readonly string[], reason: string, at: Date = new Date()): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.revocations.push({ accountId, ids, reason, at, resolve, reject });
      if (!this.revoking) void this.drainRevocations();
    });
  }

  private revocations: { accountId: string; ids: readonly string[]; reason: string; at: Date; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private revoking = false;

  private async drainRevocations(): Promise<void> {
    this.revoking = true;
    try {
      while (this.revocations.length > 0) {
        const batch = this.revocations.splice(0);
        const groups = new Map<string, typeof batch>();
        for (const r of batch) {
          const key = `${r.accountId}\0${r.reason}`;
          // Appended in place: copying the group for every revocation made a large batch quadratic.
          const group = groups.get(key);
          if (group === undefined) groups.set(key, [r]);
          else group.push(r);
        }
        for (const group of groups.values()) {
          const first = group[0]!;
          try {
            await this.db.query(`UPDATE authorizations SET revoked_at = $3, revoke_reason = $4 WHERE account_id = $1 AND id = ANY($2::uuid[]) AND revoked_at IS NULL`, [
              first.accountId,
              `{${group.flatMap((r) => r.ids.map(arrayElement)).join(",")}}`,
              first.at,
              first.reason,
            ]);
            for (const r of group) r.resolve();
          } catch (error) {
            for (const r of group) r.reject(error);
          }
        }
      }
    } finally {
      this.revoking = false;
    }
  }

  /**
   * The table grows from nothing at a rate autovacuum, which looks once a minute, does not follow: a
   * fresh portal under load had empty-table statistics, and the planner scanned every authorization of
   * the account for each batch of revocations instead of looking its ids up in the primary key. So the
   * recorder has the table analyzed itself after writing 1,000 records, then 10,000, and so on.
   */
  private refreshStatistics(): void {
    if (this.written < this.analyzeAt) return;
    this.analyzeAt *= 10;
    this.db.query("ANALYZE authorizations").then(
      () => this.analyzed++,
      (error: unknown) => process.emitWarning(`ANALYZE authorizations failed: ${String(error)}`),
    );
  }

  private analyzeAt = 1_000;
  /** Times the recorder had the table analyzed: for tests. */
  analyzed = 0;

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          await this.write(batch.map((p) => p.record));
          this.batches++;
          this.written += batch.length;
          this.refreshStatistics();
          for (const p of batch) p.resolve();
          if (this.onRecorded !== undefined) {
            const counts = new Map<string, number>();
            for (const p of batch) counts.set(p.record.accountId, (counts.get(p.record.accountId) ?? 0) + 1);
            this.onRecorded(counts);
          }
        } catch (error) {
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * One statement whatever the batch's size: each column goes as one array parameter and unnest()
   * turns them back into rows, so PostgreSQL parses and plans the same short text every time
   * instead of a VALUES list of up to 4,500 placeholders. The arrays are written as literals here
   * (uuids and ISO timestamps need no escaping), which costs the portal a join per column rather than
   * the driver's escaping of every element.
   */
  private async write(records: AuthorizationRecord[]): Promise<void> {
    const columns: string[][] = COLUMNS.map(() => []);
    const [accounts, ids, clients, gateways, resources, policies, actors, created, expires] = columns as [string[], string[], string[], string[], string[], string[], string[], string[], string[]];
    for (const r of records) {
      accounts.push(arrayElement(r.accountId));
      ids.push(arrayElement(r.id));
      clients.push(arrayElement(r.clientDeviceId));
      gateways.push(arrayElement(r.gatewayDeviceId));
      resources.push(arrayElement(r.resourceId));
      policies.push(arrayElement(r.policyId));
      actors.push(arrayElement(r.actorId));
      created.push(arrayElement(r.createdAt.toISOString()));
      expires.push(arrayElement(r.expiresAt?.toISOString() ?? null));
    }
    await this.db.query(
      `INSERT INTO authorizations (${COLUMNS.join(", ")}) SELECT * FROM unnest(${COLUMNS.map((c, i) => `$${i + 1}::${COLUMN_TYPES[c]}[]`).join(", ")})`,
      columns.map((elements) => `{${elements.join(",")}}`),
    );
  }
}

const SAFE_ELEMENT = /^[0-9A-Za-z:.+-]+$/;

/** One element of an array literal: a uuid or an ISO timestamp as is, null as NULL; anything else is refused. */
function arrayElement(value: string | null): string {
  if (value === null) return "NULL";
  if (!SAFE_ELEMENT.test(value)) throw new Error(`an authorization record holds ${JSON.stringify(value)}, which is neither a uuid nor a timestamp`);
  return value;
}
