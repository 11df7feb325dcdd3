// Authorization records, written in batches. A decision's record must be durable before the gateway
// hears of the authorization: record() resolves only once the batch holding it has committed, and the
// caller sends create_authorization after that. A crash between decision and write therefore leaves at
// most a record of access that was never granted, never access without a record.
//
// Batching: records arriving while a write is in flight wait for the next one, which takes all of
// them (up to MAX_BATCH) in one INSERT, so under load a write costs one round trip per batch
// rather than per decision; an idle recorder writes at once. Revocations (revoked_at and why) queue
// the same way and go in the same statement as the next records, so the two do not take turns on
// the database: one write loop, one statement per turn.

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
  private revocations: PendingRevocation[] = [];
  private writing = false;
  /** Batches of records written so far, and records in them: for tests and the benchmark. */
  batches = 0;
  written = 0;
  /** Statements that carried revocations, and revocations in them: for tests. */
  revocationWrites = 0;
  revocationsWritten = 0;

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
   * Marks authorizations revoked, with why; the ones already revoked keep their first reason. Queued
   * with the records: a revocation rides in the same statement as the next batch of records (one round
   * trip and one commit for both, where under load nearly every new authorization supersedes one), or
   * goes alone when no record is waiting.
   */
  revoke(accountId: string, ids: readonly string[], reason: string, at: Date = new Date()): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    try {
      // Checked here, so that a bad revocation fails alone rather than the records sharing its statement.
      arrayElement(accountId);
      for (const id of ids) arrayElement(id);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.revocations.push({ accountId, ids, reason, at, resolve, reject });
      if (!this.writing) void this.drain();
    });
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
      while (this.queue.length > 0 || this.revocations.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        const revocations = this.revocations.splice(0, MAX_REVOCATIONS);
        try {
          await this.write(
            batch.map((p) => p.record),
            revocations,
          );
        } catch (error) {
          for (const p of batch) p.reject(error);
          // One bad record must not cost the revocations that shared its statement: they are tried
          // again on their own, and fail only for a fault of their own.
          if (batch.length > 0) this.revocations.unshift(...revocations);
          else for (const r of revocations) r.reject(error);
          continue;
        }
        if (revocations.length > 0) {
          this.revocationWrites++;
          for (const r of revocations) this.revocationsWritten += r.ids.length;
          for (const r of revocations) r.resolve();
        }
        if (batch.length === 0) continue;
        this.batches++;
        this.written += batch.length;
        this.refreshStatistics();
        for (const p of batch) p.resolve();
        if (this.onRecorded !== undefined) {
          const counts = new Map<string, number>();
          for (const p of batch) counts.set(p.record.accountId, (counts.get(p.record.accountId) ?? 0) + 1);
          this.onRecorded(counts);
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
   *
   * Revocations go in the same statement, as a data-modifying WITH before the INSERT: both commit
   * together or neither does. They only ever name records committed before (an authorization is
   * revoked after its record resolved), which the UPDATE sees; it could not see the rows its own
   * statement inserts.
   */
  private async write(records: AuthorizationRecord[], revocations: readonly PendingRevocation[]): Promise<void> {
    const params: string[] = [];
    let revokeSql = "";
    if (revocations.length > 0) {
      // An authorization revoked twice in one statement would be updated by either row of the join:
      // the first revocation queued is the one kept, as for revocations in separate statements.
      const seen = new Set<string>();
      const accounts: string[] = [];
      const ids: string[] = [];
      const ats: string[] = [];
      const reasons: string[] = [];
      const atOf = isoMemo();
      for (const r of revocations) {
        // Checked when queued (revoke()): the ids go in as they are.
        const account = r.accountId;
        const at = atOf(r.at);
        const reason = reasonElement(r.reason);
        for (const id of r.ids) {
          const key = `${r.accountId}/${id}`;
          if (seen.has(key)) continue;
          seen.add(key);
          accounts.push(account);
          ids.push(id);
          ats.push(at);
          reasons.push(reason);
        }
      }
      params.push(`{${accounts.join(",")}}`, `{${ids.join(",")}}`, `{${ats.join(",")}}`, `{${reasons.join(",")}}`);
      if (records.length === 0) {
        await this.db.query(REVOKE_SQL, params);
        return;
      }
      revokeSql = `WITH revoked AS (${REVOKE_SQL} RETURNING 1) `;
    }
    const columns: string[][] = COLUMNS.map(() => []);
    const [accounts, ids, clients, gateways, resources, policies, actors, created, expires] = columns as [string[], string[], string[], string[], string[], string[], string[], string[], string[]];
    // Records of one batch mostly share their millisecond, and so their times' text.
    const createdOf = isoMemo();
    const expiresOf = isoMemo();
    for (const r of records) {
      accounts.push(arrayElement(r.accountId));
      ids.push(arrayElement(r.id));
      clients.push(arrayElement(r.clientDeviceId));
      gateways.push(arrayElement(r.gatewayDeviceId));
      resources.push(arrayElement(r.resourceId));
      policies.push(arrayElement(r.policyId));
      actors.push(arrayElement(r.actorId));
      created.push(createdOf(r.createdAt));
      expires.push(r.expiresAt === null ? "NULL" : expiresOf(r.expiresAt));
    }
    const first = params.length;
    for (const elements of columns) params.push(`{${elements.join(",")}}`);
    await this.db.query(
      `${revokeSql}INSERT INTO authorizations (${COLUMNS.join(", ")}) SELECT * FROM unnest(${COLUMNS.map((c, i) => `$${first + i + 1}::${COLUMN_TYPES[c]}[]`).join(", ")})`,
      params,
    );
  }
}

/**
 * Revocations, $1 to $4 being arrays of account ids, authorization ids, times and reasons: each row of
 * the join is looked up in the primary key.
 */
export const REVOKE_SQL = `UPDATE authorizations a SET revoked_at = r.at, revoke_reason = r.reason
  FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[]) AS r(account_id, id, at, reason)
  WHERE a.account_id = r.account_id AND a.id = r.id AND a.revoked_at IS NULL`;

/** Revocations taken into one statement at most (each names one or more authorizations). */
const MAX_REVOCATIONS = 2_000;

interface PendingRevocation {
  accountId: string;
  ids: readonly string[];
  reason: string;
  at: Date;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * A revocation's reason as an array element: quoted, with `"` and `\\` escaped, so any text is taken
 * as it is (a gateway names its own reasons for failing). PostgreSQL's text cannot hold NUL, which
 * would fail the statement and the records sharing it, so NUL becomes U+FFFD.
 */
function reasonElement(reason: string): string {
  if (!NEEDS_ESCAPE.test(reason)) return `"${reason}"`;
  return `"${reason.replace(/\0/g, "\uFFFD").replace(/["\\]/g, "\\$&")}"`;
}

const NEEDS_ESCAPE = /["\\\0]/;

/**
 * A Date's ISO text as an array element, remembering the last one: the text of toISOString() needs no
 * quoting (digits, "-", ":", ".", "T", "Z", and "+" for years past 9999).
 */
function isoMemo(): (date: Date) => string {
  let lastTime = Number.NaN;
  let lastText = "";
  return (date) => {
    const time = date.getTime();
    if (time !== lastTime) {
      lastTime = time;
      lastText = date.toISOString();
    }
    return lastText;
  };
}

const SAFE_ELEMENT = /^[0-9A-Za-z:.+-]+$/;

/** One element of an array literal: a uuid or an ISO timestamp as is, null as NULL; anything else is refused. */
function arrayElement(value: string | null): string {
  if (value === null) return "NULL";
  if (!SAFE_ELEMENT.test(value)) throw new Error(`an authorization record holds ${JSON.stringify(value)}, which is neither a uuid nor a timestamp`);
  return value;
}
