// RFC 7807 problem details for every error the API returns: `type` is a stable URI per error code,
// `title` says what kind of error, `detail` what happened this time, `code` the stable code a
// client switches on, and `errors` the fields at fault when a request was invalid.

import { Catch, HttpException, HttpStatus, type ArgumentsHost, type ExceptionFilter } from "@nestjs/common";

export interface FieldProblem {
  field: string;
  code: string;
  message: string;
}

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: FieldProblem[];
}

const TYPE_BASE = "https://wardline.dev/problems/";

/** An error the API answers with as problem details. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly errors?: FieldProblem[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  static unauthenticated(detail: string): Problem {
    return new Problem(401, "unauthenticated", "Unauthenticated", detail, undefined, { "WWW-Authenticate": 'Bearer realm="wardline"' });
  }

  static forbidden(detail: string, code = "forbidden"): Problem {
    return new Problem(403, code, "Forbidden", detail);
  }

  static conflict(detail: string, errors?: FieldProblem[], code = "conflict"): Problem {
    return new Problem(409, code, "Conflict", detail, errors);
  }

  static rateLimited(retryAfterSeconds: number, who = "this token"): Problem {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    return new Problem(429, "rate_limited", "Too many requests", `${who} is over its request rate; retry in ${seconds} s`, undefined, { "Retry-After": String(seconds) });
  }

  static notFound(what: string): Problem {
    return new Problem(404, "not_found", "Not found", `${what} does not exist in this account`);
  }

  static invalid(errors: FieldProblem[]): Problem {
    return new Problem(422, "invalid_request", "Invalid request", `${errors.length} field${errors.length === 1 ? "" : "s"} not accepted`, errors);
  }
}

export function toProblem(error: unknown): ProblemDetails {
  if (error instanceof Problem) {
    return { type: TYPE_BASE + error.code, title: error.title, status: error.status, detail: error.message, code: error.code, ...(error.errors ? { errors: error.errors } : {}) };
  }
  // A constraint the database enforced: the validation above it had no way to see a concurrent
  // writer, so this is the answer of the last guard, and it is the client's conflict, not our fault.
  const sqlState = databaseErrorCode(error);
  if (sqlState === "23505") {
    return { type: TYPE_BASE + "conflict", title: "Conflict", status: 409, detail: `this would duplicate an existing object (${constraintOf(error)})`, code: "conflict" };
  }
  if (sqlState === "23503") {
    return { type: TYPE_BASE + "reference_missing", title: "Conflict", status: 409, detail: `an object this refers to does not exist (${constraintOf(error)})`, code: "reference_missing" };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const code = status === 404 ? "not_found" : status === 405 ? "method_not_allowed" : status === 429 ? "rate_limited" : `http_${status}`;
    const title = HttpStatus[status]?.toLowerCase().replace(/_/g, " ") ?? "error";
    return { type: TYPE_BASE + code, title: title.charAt(0).toUpperCase() + title.slice(1), status, detail: error.message, code };
  }
  return { type: TYPE_BASE + "internal", title: "Internal error", status: 500, detail: "the portal failed to handle this request; it is logged", code: "internal" };
}

function databaseErrorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; driverError?: { code?: unknown } } | null;
  const code = e?.driverError?.code ?? e?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function constraintOf(error: unknown): string {
  const e = error as { constraint?: unknown; driverError?: { constraint?: unknown } };
  const name = e.driverError?.constraint ?? e.constraint;
  return typeof name === "string" ? `constraint ${name}` : "a unique or foreign key constraint";
}

/** The global exception filter: everything leaves as application/problem+json. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly log: (error: unknown) => void = () => {}) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const problem = toProblem(error);
    if (problem.status >= 500) this.log(error);
    const response = host.switchToHttp().getResponse<{ setHeader(name: string, value: string): void; status(code: number): { type(t: string): { send(body: string): void } } }>();
    if (error instanceof Problem) for (const [name, value] of Object.entries(error.headers)) response.setHeader(name, value);
    response.status(problem.status).type("application/problem+json").send(JSON.stringify(problem));
  }
}
