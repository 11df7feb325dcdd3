// The one way the portal touches tenant tables: an AccountScope, made from the authenticated
// account, hands out repositories that put that account into every query they run. A caller
// cannot forget the `where account_id = ...` (there is no method without it) and cannot widen it
// (the account is applied after the caller's conditions, so a caller's accountId is overwritten).
//
// Every insert, update and delete also writes the change log (who, what, before, after) in the
// same transaction, so a mutation and its record land together or not at all. The same transaction
// also queues a NOTIFY on CHANGES_CHANNEL naming the change, which PostgreSQL delivers to every
// listening portal node when, and only if, the transaction commits (realtime/change-bus.ts).

import { randomUUID } from "node:crypto";
import { MoreThan, type DataSource, type EntityManager, type EntitySchema, type FindOptionsOrder, type FindOptionsWhere } from "typeorm";
import { AccountEntity, ChangeLogEntity, type Account, type TenantRow } from "./entities.js";

/** What a list call may ask for: conditions, order and a page size; the account is not among them. */
export interface ListOptions<T> {
  where?: FindOptionsWhere<T>;
  order?: FindOptionsOrder<T>;
  take?: number;
  /** Lock the rows until the transaction ends (FOR UPDATE): for invariants over a set of rows. */
  lock?: "pessimistic_write";
}

/** One page of a keyset-paginated list: rows in id order, and the cursor of the next page if any. */
export interface Page<T> {
  rows: T[];
  next: string | null;
}

/** A repository confined to one account. */
export class TenantRepository<T extends TenantRow> {
  constructor(
    private readonly manager: EntityManager,
    private readonly schema: EntitySchema<T>,
    readonly accountId: string,
    private readonly actorId: string | null,
  ) {}

  private scoped(where: FindOptionsWhere<T> = {}): FindOptionsWhere<T> {
    return { ...where, accountId: this.accountId } as FindOptionsWhere<T>;
  }

  private get table(): string {
    return this.manager.connection.getMetadata(this.schema).tableName;
  }

  list(options: ListOptions<T> = {}): Promise<T[]> {
    return this.manager.getRepository(this.schema).find({
      where: this.scoped(options.where),
      ...(options.order !== undefined ? { order: options.order } : {}),
      ...(options.take !== undefined ? { take: options.take } : {}),
      ...(options.lock !== undefined ? { lock: { mode: options.lock } } : {}),
    });
  }

  /**
   * A page of rows in id order, after the row `after` names (keyset pagination: a page stays right
   * while rows are inserted and deleted around it, unlike an offset).
   */
  async page(options: { where?: FindOptionsWhere<T>; after?: string; limit: number }): Promise<Page<T>> {
    const where = { ...options.where, ...(options.after !== undefined ? { id: MoreThan(options.after) } : {}) } as FindOptionsWhere<T>;
    const rows = await this.manager.getRepository(this.schema).find({
      where: this.scoped(where),
      order: { id: "ASC" } as FindOptionsOrder<T>,
      take: options.limit + 1,
    });
    const more = rows.length > options.limit;
    if (more) rows.length = options.limit;
    return { rows, next: more ? rows[rows.length - 1]!.id : null };
  }

  get(id: string): Promise<T | null> {
    return this.manager.getRepository(this.schema).findOne({ where: this.scoped({ id } as FindOptionsWhere<T>) });
  }

  count(where: FindOptionsWhere<T> = {}): Promise<number> {
    return this.manager.getRepository(this.schema).count({ where: this.scoped(where) });
  }

  /** Inserts a row of this account (a fresh id unless given) and logs it; returns the row as stored. */
  async insert(values: Omit<Partial<T>, "accountId">): Promise<T> {
    return this.inTransaction(async (manager) => {
      const repo = manager.getRepository(this.schema);
      const row = repo.create({ ...values, id: (values as Partial<T>).id ?? randomUUID(), accountId: this.accountId } as T);
      await repo.insert(row as never);
      const stored = (await repo.findOneOrFail({ where: this.scoped({ id: row.id } as FindOptionsWhere<T>) })) as T;
      await this.log(manager, "insert", row.id, null, stored);
      return stored;
    });
  }

  /** Changes a row of this account and logs before and after; null when the account has no such row. */
  async update(id: string, patch: Omit<Partial<T>, "accountId" | "id">): Promise<T | null> {
    return this.inTransaction(async (manager) => {
      const repo = manager.getRepository(this.schema);
      const where = this.scoped({ id } as FindOptionsWhere<T>);
      const before = await repo.findOne({ where });
      if (before === null) return null;
      const clean = { ...patch } as Record<string, unknown>;
      delete clean.accountId;
      delete clean.id;
      await repo.update(where as never, clean as never);
      const after = (await repo.findOneOrFail({ where })) as T;
      await this.log(manager, "update", id, before, after);
      return after;
    });
  }

  /** Deletes a row of this account and logs it; false when the account has no such row. */
  async delete(id: string): Promise<boolean> {
    return this.inTransaction(async (manager) => {
      const repo = manager.getRepository(this.schema);
      const where = this.scoped({ id } as FindOptionsWhere<T>);
      const before = await repo.findOne({ where });
      if (before === null) return false;
      await repo.delete(where as never);
      await this.log(manager, "delete", id, before, null);
      return true;
    });
  }

  /**
   * Deletes rows matching `where` without a change-log entry: only for bookkeeping rows whose end is
   * no one's change (expired sign-in challenges), so sweeping them does not grow the log instead.
   */
  async sweep(where: FindOptionsWhere<T>): Promise<number> {
    const result = await this.manager.getRepository(this.schema).delete(this.scoped(where) as never);
    return result.affected ?? 0;
  }

  private inTransaction<R>(work: (manager: EntityManager) => Promise<R>): Promise<R> {
    // Inside a scope's transaction already: join it; otherwise open one.
    return this.manager.queryRunner?.isTransactionActive ? work(this.manager) : this.manager.transaction(work);
  }

  private log(manager: EntityManager, action: "insert" | "update" | "delete", objectId: string, before: unknown, after: unknown): Promise<void> {
    return logChange(manager, this.accountId, this.actorId, action, this.table, objectId, before, after);
  }
}

/**
 * Rows that link two tenant objects (memberships, a resource's sites): keyed by their columns, not by
 * an id, and confined to one account the same way; adding and removing are logged.
 */
export class TenantLinks<T extends { accountId: string }> {
  constructor(
    private readonly manager: EntityManager,
    private readonly schema: EntitySchema<T>,
    readonly accountId: string,
    private readonly actorId: string | null,
  ) {}

  private scoped(where: Partial<T>): FindOptionsWhere<T> {
    return { ...where, accountId: this.accountId } as FindOptionsWhere<T>;
  }

  /** The links matching `where`, whose values may be TypeORM operators (a resource's sites for a page: In(ids)). */
  list(where: Omit<FindOptionsWhere<T>, "accountId"> = {} as Omit<FindOptionsWhere<T>, "accountId">): Promise<T[]> {
    return this.manager.getRepository(this.schema).find({ where: this.scoped(where as Partial<T>) });
  }

  /**
   * A page of the links matching `where`, in order of the key column `by` (a group's members by actor
   * id), after the value `after`: keyset pagination, as TenantRepository.page.
   */
  async page(options: { where: Omit<Partial<T>, "accountId">; by: keyof T & string; after?: string; limit: number }): Promise<Page<T>> {
    const where = { ...options.where, ...(options.after !== undefined ? { [options.by]: MoreThan(options.after) } : {}) } as Partial<T>;
    const rows = await this.manager.getRepository(this.schema).find({
      where: this.scoped(where),
      order: { [options.by]: "ASC" } as FindOptionsOrder<T>,
      take: options.limit + 1,
    });
    const more = rows.length > options.limit;
    if (more) rows.length = options.limit;
    return { rows, next: more ? String(rows[rows.length - 1]![options.by]) : null };
  }

  /** Adds the link unless it exists; true when it was added. */
  async add(key: Omit<T, "accountId" | "createdAt">): Promise<boolean> {
    return this.inTransaction(async (manager) => {
      const repo = manager.getRepository(this.schema);
      const where = this.scoped(key as unknown as Partial<T>);
      if ((await repo.count({ where })) > 0) return false;
      await repo.insert({ ...key, accountId: this.accountId } as never);
      await logChange(manager, this.accountId, this.actorId, "insert", this.table(manager), linkId(key), null, key);
      return true;
    });
  }

  /** Removes the links matching `where` (within the account); how many went. */
  async remove(where: Omit<Partial<T>, "accountId">): Promise<number> {
    return this.inTransaction(async (manager) => {
      const repo = manager.getRepository(this.schema);
      const rows = await repo.find({ where: this.scoped(where as Partial<T>) });
      for (const row of rows) {
        const { accountId: _account, ...key } = row as T & Record<string, unknown>;
        void _account;
        // By the key columns only: created_at holds microseconds a JavaScript Date cannot, so matching
        // on it would delete nothing.
        const { createdAt: _created, ...columns } = key;
        void _created;
        await repo.delete(this.scoped(columns as Partial<T>) as never);
        await logChange(manager, this.accountId, this.actorId, "delete", this.table(manager), linkId(key), key, null);
      }
      return rows.length;
    });
  }

  private table(manager: EntityManager): string {
    return manager.connection.getMetadata(this.schema).tableName;
  }

  private inTransaction<R>(work: (manager: EntityManager) => Promise<R>): Promise<R> {
    return this.manager.queryRunner?.isTransactionActive ? work(this.manager) : this.manager.transaction(work);
  }
}

/** A link's id in the change log: its key columns' values, in a fixed order. */
function linkId(key: object): string {
  return Object.entries(key)
    .filter(([name]) => name !== "createdAt")
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, value]) => String(value))
    .join(":");
}

/** The NOTIFY channel of committed changes: one notification per change_log row. */
export const CHANGES_CHANNEL = "wardline_changes";

/**
 * A change notification's payload: which change_log row to read for the before and after, which the
 * payload leaves out because NOTIFY carries at most 8000 bytes.
 */
export interface ChangePayload {
  account_id: string;
  change_id: string;
  table: string;
  action: "insert" | "update" | "delete";
  /** Null when the id was too long to carry (no id the portal makes is); read it from the row. */
  object_id: string | null;
}

// An object id longer than this is left out of the payload rather than failing the mutation.
const MAX_NOTIFIED_ID = 1000;

/** Columns whose values never go into the change log: a hash is still a thing to guess against. */
const REDACTED = new Set(["secretHash", "passwordHash", "clientSecret"]);

function redact(row: unknown): unknown {
  if (row === null || typeof row !== "object") return row;
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [key, REDACTED.has(key) && value !== null ? "[redacted]" : value]));
}

async function logChange(
  manager: EntityManager,
  accountId: string,
  actorId: string | null,
  action: "insert" | "update" | "delete",
  objectTable: string,
  objectId: string,
  before: unknown,
  after: unknown,
): Promise<void> {
  const id = randomUUID();
  await manager.getRepository(ChangeLogEntity).insert({
    accountId,
    id,
    actorId,
    action,
    objectTable,
    objectId,
    before: redact(before) as never,
    after: redact(after) as never,
  });
  const payload: ChangePayload = { account_id: accountId, change_id: id, table: objectTable, action, object_id: objectId.length <= MAX_NOTIFIED_ID ? objectId : null };
  await manager.query(`SELECT pg_notify($1, $2)`, [CHANGES_CHANNEL, JSON.stringify(payload)]);
}

/** The authenticated account (and actor, for the change log): the source of every tenant repository. */
export class AccountScope {
  constructor(
    private readonly dataSource: DataSource,
    readonly accountId: string,
    readonly actorId: string | null = null,
    private readonly manager: EntityManager = dataSource.manager,
  ) {}

  repository<T extends TenantRow>(schema: EntitySchema<T>): TenantRepository<T> {
    return new TenantRepository(this.manager, schema, this.accountId, this.actorId);
  }

  /** The scope's own account (slug and name): not a tenant row, read by the scope's account id. */
  account(): Promise<Account> {
    return this.manager.getRepository(AccountEntity).findOneOrFail({ where: { id: this.accountId } });
  }

  /** Changes the scope's own account (its settings), logged and notified like any tenant change. */
  async updateAccount(patch: Partial<Pick<Account, "name" | "upstreamDns">>): Promise<Account> {
    const work = async (manager: EntityManager): Promise<Account> => {
      const accounts = manager.getRepository(AccountEntity);
      const before = await accounts.findOneOrFail({ where: { id: this.accountId } });
      await accounts.update({ id: this.accountId }, patch as never);
      const after = await accounts.findOneOrFail({ where: { id: this.accountId } });
      await logChange(manager, this.accountId, this.actorId, "update", "accounts", this.accountId, before, after);
      return after;
    };
    return this.manager.queryRunner?.isTransactionActive ? work(this.manager) : this.manager.transaction(work);
  }

  links<T extends { accountId: string }>(schema: EntitySchema<T>): TenantLinks<T> {
    return new TenantLinks(this.manager, schema, this.accountId, this.actorId);
  }

  /** Runs work in one transaction; repositories taken from the scope it is given share it. */
  transaction<R>(work: (scope: AccountScope) => Promise<R>): Promise<R> {
    return this.dataSource.transaction((manager) => work(new AccountScope(this.dataSource, this.accountId, this.actorId, manager)));
  }
}
