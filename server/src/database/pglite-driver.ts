// PGlite behind the small part of the `pg` module that TypeORM's postgres driver uses (a Pool with
// connect/end and clients with query), so the embedded database is the same TypeORM dialect as a
// PostgreSQL server.
//
// PGlite is one connection. A pool that handed that connection to two callers at once would let
// their transactions interleave (BEGIN, BEGIN, ...), so this pool leases it exclusively: connect()
// waits until the previous holder releases it. Each DataSource gets its own PGlite instance.
//
// LISTEN is the one thing done outside the pool (realtime/ listens while queries run): it takes the
// same lease, so a LISTEN never lands inside another caller's transaction, where a rollback would
// undo it.

import { EventEmitter } from "node:events";
import { PGlite, types, type PGliteOptions } from "@electric-sql/pglite";

interface PgResult {
  rows: unknown[];
  rowCount: number;
  command: string;
  fields: { name: string; dataTypeID: number }[];
}

/** Starts listening on a channel of one PGlite database; resolves with the function that stops it. */
export type PgliteListen = (channel: string, callback: (payload: string) => void) => Promise<() => Promise<void>>;

// The listen function of each driver object pgliteDriver() made, found again from a DataSource's options.
const LISTENERS = new WeakMap<object, PgliteListen>();

/** LISTEN on the PGlite behind a DataSource opened with pgliteDriver(); undefined for any other database. */
export function pgliteListen(dataSource: { options: object }): PgliteListen | undefined {
  const driver = (dataSource.options as { driver?: unknown }).driver;
  return typeof driver === "object" && driver !== null ? LISTENERS.get(driver) : undefined;
}

type ConnectCallback = (error: Error | null, client: PgliteClient | null, release: (error?: unknown) => void) => void;

/** The leased connection: what a TypeORM query runner calls. */
class PgliteClient extends EventEmitter {
  constructor(private readonly db: PGlite) {
    super();
  }

  async query(text: string, params?: unknown[]): Promise<PgResult> {
    if (params !== undefined && params.length > 0) {
      const r = await this.db.query(text, params);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length, command: commandOf(text), fields: r.fields };
    }
    // Without parameters a string may hold several statements (migrations do): run them all and
    // answer with the last one's result, as pg does.
    const results = await this.db.exec(text);
    const last = results[results.length - 1];
    return { rows: last?.rows ?? [], rowCount: last?.affectedRows ?? last?.rows.length ?? 0, command: commandOf(text), fields: last?.fields ?? [] };
  }
}

/** The statement's command word, as pg reports it (UPDATE and DELETE matter to TypeORM). */
function commandOf(text: string): string {
  return /^\s*(?:WITH\b[\s\S]*?\)\s*)?(\w+)/i.exec(text)?.[1]?.toUpperCase() ?? "";
}

/** A `pg`-shaped module over one PGlite database; pass it as TypeORM's `driver` option. */
export function pgliteDriver(options: PGliteOptions = {}): { Pool: new () => EventEmitter; close(): Promise<void>; listen: PgliteListen } {
  // TypeORM sends booleans as JavaScript values; PGlite's default serializer would send "true".
  const db = new PGlite({
    ...options,
    serializers: { [types.BOOL]: (v: unknown) => (v === true || v === "true" || v === 1 ? "t" : v === false || v === "false" || v === 0 ? "f" : String(v)), ...options.serializers },
  });
  const client = new PgliteClient(db);
  const waiting: (() => void)[] = [];
  let leased = false;

  const release = (): void => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else leased = false;
  };

  class Pool extends EventEmitter {
    connect(callback: ConnectCallback): void {
      const grant = (): void => {
        let released = false;
        callback(null, client, () => {
          if (released) return;
          released = true;
          release();
        });
      };
      db.waitReady.then(
        () => {
          if (!leased) {
            leased = true;
            grant();
          } else {
            waiting.push(grant);
          }
        },
        (error: unknown) => callback(error as Error, null, () => {}),
      );
    }

    end(callback: (error: Error | null) => void): void {
      db.close().then(
        () => callback(null),
        (error: unknown) => callback(error as Error),
      );
    }
  }

  const lease = async (): Promise<void> => {
    await db.waitReady;
    if (!leased) leased = true;
    else await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const whileLeased = async <R>(work: () => Promise<R>): Promise<R> => {
    await lease();
    try {
      return await work();
    } finally {
      release();
    }
  };
  const listen: PgliteListen = async (channel, callback) => {
    const unlisten = await whileLeased(() => db.listen(channel, callback));
    return () => whileLeased(() => unlisten());
  };

  const driver = { Pool, close: () => db.close(), listen };
  LISTENERS.set(driver, listen);
  return driver;
}
