// Pages of a log table (authorizations, change_log), newest first. TenantRepository.page walks rows in
// id order, which for random UUIDs is no order a reader of a log wants; this walks them by (time, id)
// descending instead, through the same tenant repository, so the account is still added to every query.
//
// 1. The cursor stays the API's opaque one (an id, http/input.ts): it names the last row of the page
//    before, and that row must still be in the account, else the cursor is refused.
// 2. The next page is the rows before that row in (time, id) order, compared in SQL against the row
//    itself: a JavaScript Date drops the microseconds PostgreSQL keeps, so comparing against a time read
//    back into JavaScript would repeat or skip rows written within one millisecond.
// 3. One row more than the page is read to know whether another page follows.
//
// Neither table has an index on (account_id, time), so a page costs a scan of the account's rows and
// a top-N sort rather than an index walk; fine for an admin reading a log, and the place to add one if
// the tables grow past that.

import { Raw, type FindOperator, type FindOptionsOrder, type FindOptionsWhere } from "typeorm";
import type { TenantRepository } from "../database/account-scope.js";
import type { TenantRow } from "../database/entities.js";
import type { Page } from "../database/account-scope.js";
import { Problem } from "../http/problem.js";

/** Where a log table keeps its time: the SQL names for the cursor's subquery, the property for ordering. */
export interface LogTime<T> {
  table: string;
  column: string;
  property: keyof T & string;
}

/** One page of `repo`'s rows matching `where`, newest first, after the row `after` names. */
export async function newestFirst<T extends TenantRow>(
  repo: TenantRepository<T>,
  time: LogTime<T>,
  options: { where: FindOptionsWhere<T>; after?: string; limit: number },
): Promise<Page<T>> {
  let where = options.where;
  if (options.after !== undefined) {
    // 1. A cursor naming no row of this account would otherwise read as an empty page.
    if ((await repo.get(options.after)) === null) throw Problem.invalid([{ field: "cursor", code: "cursor.invalid", message: "cursor names a row that is no longer there" }]);
    where = { ...where, id: olderThan(time, repo.accountId, options.after) } as FindOptionsWhere<T>;
  }
  const rows = await repo.list({ where, order: { [time.property]: "DESC", id: "DESC" } as FindOptionsOrder<T>, take: options.limit + 1 });
  const more = rows.length > options.limit;
  if (more) rows.length = options.limit;
  return { rows, next: more ? rows[rows.length - 1]!.id : null };
}

/**
 * 2. The condition on the id column: (time, id) before the cursor row's. TypeORM hands a Raw the
 * column's path (`Alias.id`), from which the time column's path is its sibling.
 */
function olderThan<T>(time: LogTime<T>, accountId: string, cursorId: string): FindOperator<string> {
  return Raw(
    (idPath) => {
      if (!idPath.endsWith(".id")) throw new Error(`unexpected column path ${idPath} for a log's id`);
      const timePath = `${idPath.slice(0, -"id".length)}${time.property}`;
      return `(${timePath}, ${idPath}) < (SELECT cursor_row.${time.column}, cursor_row.id FROM ${time.table} cursor_row WHERE cursor_row.account_id = :logCursorAccount AND cursor_row.id = :logCursorId)`;
    },
    { logCursorAccount: accountId, logCursorId: cursorId },
  );
}
