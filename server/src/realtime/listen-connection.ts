// One dedicated LISTEN connection on one NOTIFY channel, for a portal node's buses (change-bus.ts,
// node-bus.ts). The pool cannot serve here: a LISTEN belongs to a session, and a pooled connection
// goes back to other callers between queries.
//
// 1. PostgreSQL: a `pg` Client of its own, from the same connection options as the DataSource (the
//    `pg` module TypeORM loaded), named "wardline listen" in pg_stat_activity. PGlite: its listen()
//    (database/pglite-driver.ts), which cannot drop.
// 2. Every notification's payload goes to onPayload as it arrives, in the order PostgreSQL sent them.
// 3. A PostgreSQL connection that ends, errs or stops answering the periodic ping is replaced, with
//    exponential backoff and jitter between attempts, until stop(). Notifications sent while no
//    connection listened are lost for good, so each successful reconnect calls onResync: whoever
//    listens re-reads what it cares about from the tables.

import type { DataSource } from "typeorm";
import { pgliteListen } from "../database/pglite-driver.js";

/** How a dropped connection is replaced, and how often a quiet one is checked. */
export interface ListenOptions {
  /** First wait before reconnecting; doubled after each failed attempt up to maxDelayMs. Default 100. */
  initialDelayMs?: number;
  /** Longest wait between attempts. Default 5000. */
  maxDelayMs?: number;
  /** How often the connection is pinged (and how long a ping may take). Default 10000; 0: never. */
  pingEveryMs?: number;
  /** Told of each failure (a dropped connection, a failed attempt, a listener that threw); all carry on. */
  onError?: (error: unknown) => void;
}

// The part of `pg` used here; the package ships no types of its own.
interface PgNotification {
  channel: string;
  payload?: string;
}
interface PgClient {
  connect(): Promise<void>;
  query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: "notification", listener: (message: PgNotification) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
}
interface PgModule {
  Client: new (config: Record<string, unknown>) => PgClient;
}
// The connection settings of a TypeORM postgres DataSource that a Client of its own needs.
interface PostgresConnectionOptions {
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: unknown;
  database?: string;
  ssl?: unknown;
  connectTimeoutMS?: number;
}

const APPLICATION_NAME = "wardline listen";
const CHANNEL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A LISTEN on one channel that stays up until stop(), whatever happens to its connection. */
export class ListenConnection {
  /** Connections that dropped and were replaced (PostgreSQL only). */
  reconnects = 0;
  private client: PgClient | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private pid: number | undefined;
  private stopped = false;
  private started = false;
  private reconnecting: Promise<void> | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly pingEveryMs: number;

  constructor(
    private readonly dataSource: DataSource,
    readonly channel: string,
    private readonly onPayload: (payload: string) => void,
    private readonly onResync: () => void,
    private readonly options: ListenOptions = {},
  ) {
    // LISTEN takes an identifier, not a parameter: only plain lowercase names are accepted.
    if (!CHANNEL_NAME.test(channel)) throw new Error(`not a plain channel name: ${JSON.stringify(channel)}`);
    this.initialDelayMs = options.initialDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 5000;
    this.pingEveryMs = options.pingEveryMs ?? 10_000;
  }

  /** The server process of the current PostgreSQL connection (for pg_stat_activity); undefined on PGlite or while down. */
  get backendPid(): number | undefined {
    return this.client === undefined ? undefined : this.pid;
  }

  /** Listens; rejects if the first connection cannot be made (later ones are retried). */
  async start(): Promise<void> {
    if (this.started) throw new Error("already started");
    this.started = true;
    const listen = pgliteListen(this.dataSource);
    if (listen !== undefined) {
      this.unlisten = await listen(this.channel, this.onPayload);
      return;
    }
    try {
      await this.connect();
    } catch (error) {
      this.started = false;
      throw error;
    }
    if (this.pingEveryMs > 0) this.pinger = setInterval(() => void this.ping(), this.pingEveryMs).unref();
  }

  /** Stops listening and closes the connection; nothing is delivered after it resolves. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.pinger);
    this.wake?.();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
    await this.reconnecting;
    await this.unlisten?.().catch(() => {});
  }

  private async connect(): Promise<void> {
    const pg = (this.dataSource.driver as unknown as { postgres: PgModule }).postgres;
    const client = new pg.Client(connectionConfig(this.dataSource.options as PostgresConnectionOptions));
    client.on("notification", (message) => {
      if (this.client === client && message.channel === this.channel) this.onPayload(message.payload ?? "");
    });
    client.on("error", (error) => this.dropped(client, error));
    client.on("end", () => this.dropped(client, new Error("the LISTEN connection ended")));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      const { rows } = await client.query(`SELECT pg_backend_pid() AS pid`);
      this.pid = Number(rows[0]?.pid);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  private dropped(client: PgClient, error: unknown): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    void client.end().catch(() => {});
    this.options.onError?.(error);
    this.reconnecting = this.reconnect();
  }

  private async reconnect(): Promise<void> {
    for (let wait = this.initialDelayMs; !this.stopped; wait = Math.min(wait * 2, this.maxDelayMs)) {
      // Jitter, so nodes that lost the server together do not all come back in the same instant.
      await this.sleep(wait * (0.75 + Math.random() * 0.5));
      if (this.stopped) return;
      try {
        await this.connect();
      } catch (error) {
        this.options.onError?.(error);
        continue;
      }
      if (this.stopped) return;
      this.reconnects++;
      this.reconnecting = undefined;
      this.onResync();
      return;
    }
  }

  /** Waits ms, or less if stop() comes first. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // A connection can die without a word (a server host gone, a NAT that forgot us): a ping that
  // fails or takes longer than the interval counts as a drop.
  private async ping(): Promise<void> {
    const client = this.client;
    if (client === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the LISTEN connection did not answer a ping within ${this.pingEveryMs} ms`)), this.pingEveryMs).unref();
    });
    try {
      await Promise.race([client.query(`SELECT 1`), late]);
    } catch (error) {
      this.dropped(client, error);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Runs one listener so that its throw (a bug) cannot keep the others from hearing the news nor stop
 * the node: the error goes to onError, or without one to a process warning (the server has no
 * logger of its own yet).
 */
export function callSafely(call: () => void, onError: ((error: unknown) => void) | undefined): void {
  try {
    call();
  } catch (error) {
    if (onError !== undefined) onError(error);
    else process.emitWarning(error instanceof Error ? error : new Error(`a realtime listener threw ${String(error)}`), "RealtimeListenerError");
  }
}

/** The pg Client settings of a TypeORM PostgreSQL DataSource, for a connection outside its pool. */
function connectionConfig(options: PostgresConnectionOptions): Record<string, unknown> {
  const config: Record<string, unknown> = {
    connectionString: options.url,
    host: options.host,
    port: options.port,
    user: options.username,
    password: options.password,
    database: options.database,
    ssl: options.ssl,
    connectionTimeoutMillis: options.connectTimeoutMS ?? 10_000,
    application_name: APPLICATION_NAME,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  return Object.fromEntries(Object.entries(config).filter(([, value]) => value !== undefined));
}
