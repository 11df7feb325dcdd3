// Reading request input for the simple objects (sites, groups, actors, tokens, devices): a reader that
// collects every field's problem, so one 422 names them all, and refuses fields it does not know (a
// typo such as `nmae` must not be dropped silently). Resources and policies have their own rules in
// ../domain, which report the same FieldError shape.

import { isRecord } from "../domain/resource-rules.js";
import { Problem, type FieldProblem } from "./problem.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: unknown): value is string => typeof value === "string" && UUID.test(value);

export class BodyReader {
  readonly errors: FieldProblem[] = [];
  private readonly body: Record<string, unknown>;

  constructor(body: unknown, allowed: readonly string[], what: string) {
    if (!isRecord(body)) {
      this.body = {};
      this.errors.push({ field: "", code: "body.not_object", message: `the body must be a JSON object describing the ${what}` });
      return;
    }
    this.body = body;
    for (const key of Object.keys(body)) {
      if (!allowed.includes(key)) this.errors.push({ field: key, code: "field.unknown", message: `${what} has no field ${JSON.stringify(key)}; known: ${allowed.join(", ")}` });
    }
  }

  has(field: string): boolean {
    return this.body[field] !== undefined;
  }

  /** A trimmed string of 1..max characters without control characters. */
  text(field: string, options: { required: boolean; max?: number; allowEmpty?: boolean }): string | undefined {
    const value = this.body[field];
    if (value === undefined || value === null) {
      if (options.required) this.fail(field, `${field}.required`, `${field} is required`);
      return undefined;
    }
    if (typeof value !== "string") return this.fail(field, `${field}.not_string`, `${field} must be a string`);
    const trimmed = value.trim();
    if (trimmed === "" && options.allowEmpty !== true) return this.fail(field, `${field}.required`, `${field} must not be empty`);
    const max = options.max ?? 255;
    if ([...trimmed].length > max) return this.fail(field, `${field}.too_long`, `${field} is longer than ${max} characters`);
    if (/\p{Cc}/u.test(trimmed)) return this.fail(field, `${field}.invalid_character`, `${field} contains a control character`);
    return trimmed;
  }

  /** One of a fixed set of strings. */
  oneOf<T extends string>(field: string, choices: readonly T[], required: boolean): T | undefined {
    const value = this.body[field];
    if (value === undefined) {
      if (required) this.fail(field, `${field}.required`, `${field} is required: one of ${choices.join(", ")}`);
      return undefined;
    }
    if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
      return this.fail(field, `${field}.invalid`, `${field} must be one of ${choices.join(", ")}`);
    }
    return value as T;
  }

  uuid(field: string, required: boolean): string | undefined {
    const value = this.body[field];
    if (value === undefined || value === null) {
      if (required) this.fail(field, `${field}.required`, `${field} is required`);
      return undefined;
    }
    if (!isUuid(value)) return this.fail(field, `${field}.invalid`, `${field} must be a UUID`);
    return value.toLowerCase();
  }

  boolean(field: string): boolean | undefined {
    const value = this.body[field];
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") return this.fail(field, `${field}.not_boolean`, `${field} must be true or false`);
    return value;
  }

  /** An RFC 3339 timestamp in the future. */
  futureTime(field: string, now: Date): Date | undefined {
    const value = this.body[field];
    if (value === undefined || value === null) return undefined;
    const time = typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value) ? new Date(value) : undefined;
    if (time === undefined || Number.isNaN(time.getTime())) return this.fail(field, `${field}.invalid`, `${field} must be an RFC 3339 time such as 2027-01-31T00:00:00Z`);
    if (time.getTime() <= now.getTime()) return this.fail(field, `${field}.in_past`, `${field} must be in the future`);
    return time;
  }

  raw(field: string): unknown {
    return this.body[field];
  }

  fail(field: string, code: string, message: string): undefined {
    this.errors.push({ field, code, message });
    return undefined;
  }

  /** Throws the 422 naming every field at fault, if any. */
  done(): void {
    if (this.errors.length > 0) throw Problem.invalid(this.errors);
  }
}

/** A path parameter that must be a UUID; anything else cannot name an object, so it is a 404. */
export function idParam(value: string, what: string): string {
  if (!isUuid(value)) throw Problem.notFound(what);
  return value.toLowerCase();
}

export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 500;

/** `?limit=&cursor=` of a list route. */
export function pageQuery(query: Record<string, unknown>): { limit: number; after?: string } {
  const errors: FieldProblem[] = [];
  let limit = PAGE_DEFAULT;
  if (query.limit !== undefined) {
    const text = String(query.limit);
    if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > PAGE_MAX) {
      errors.push({ field: "limit", code: "limit.invalid", message: `limit must be 1-${PAGE_MAX}` });
    } else {
      limit = Number(text);
    }
  }
  let after: string | undefined;
  if (query.cursor !== undefined) {
    const decoded = decodeCursor(String(query.cursor));
    if (decoded === undefined) errors.push({ field: "cursor", code: "cursor.invalid", message: "cursor is not one this API gave out" });
    else after = decoded;
  }
  if (errors.length > 0) throw Problem.invalid(errors);
  return after === undefined ? { limit } : { limit, after };
}

/** Cursors are opaque to clients, so their form can change without breaking anyone. */
export const encodeCursor = (id: string): string => Buffer.from(`id:${id}`).toString("base64url");

function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const id = text.startsWith("id:") ? text.slice(3) : "";
  return isUuid(id) ? id.toLowerCase() : undefined;
}

/** The JSON shape of a list: one page of data and the cursor of the next, null on the last. */
export interface ListBody<T> {
  data: T[];
  next_cursor: string | null;
}

export function listBody<R, T>(page: { rows: R[]; next: string | null }, view: (row: R) => T): ListBody<T> {
  return { data: page.rows.map(view), next_cursor: page.next === null ? null : encodeCursor(page.next) };
}

/** OpenAPI description of the pagination query parameters. */
export const PAGE_QUERY_DOCS = [
  { name: "limit", required: false, description: `page size, 1-${PAGE_MAX} (default ${PAGE_DEFAULT})`, schema: { type: "integer" as const } },
  { name: "cursor", required: false, description: "next_cursor of the previous page", schema: { type: "string" as const } },
];
