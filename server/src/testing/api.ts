// The API test harness: a portal on either database (embedded PGlite in memory, or a fresh database on
// the real PostgreSQL of test/support/postgres.ts), two accounts (A and B) with an admin and an API
// token each, and a fetch wrapper that returns status, headers and the parsed body.
//
// DATABASES is what API tests iterate with describe.each, so every API test runs on both. Without
// PostgreSQL binaries the PostgreSQL half skips with the reason printed, and fails under CI=true.

import { missingPostgres, startPostgres } from "../../../test/support/postgres.js";
import { createAccount, createActor, issueToken } from "../accounts/accounts.service.js";
import type { RateLimitOptions } from "../auth/rate-limit.js";
import { AccountScope } from "../database/account-scope.js";
import type { Account, Actor } from "../database/entities.js";
import type { DatabaseLocation } from "../database/data-source.js";
import { startPortal, type Portal, type PortalOptions } from "../portal.js";

const pgMissing = missingPostgres();
if (pgMissing !== undefined && (process.env.CI === "true" || process.env.CI === "1")) throw new Error(`PostgreSQL API tests cannot run under CI: ${pgMissing}`);
if (pgMissing !== undefined) process.emitWarning(`skipping the PostgreSQL half of the portal tests: ${pgMissing}`);

export interface DatabaseKind {
  name: "PGlite" | "PostgreSQL";
  /** Why this kind cannot run here; tests skip with it (never under CI, see above). */
  missing: string | undefined;
  open(): Promise<{ location: DatabaseLocation; stop(): Promise<void> }>;
}

export const DATABASES: DatabaseKind[] = [
  { name: "PGlite", missing: undefined, open: async () => ({ location: { memory: true }, stop: async () => {} }) },
  {
    name: "PostgreSQL",
    missing: pgMissing,
    open: async () => {
      const server = await startPostgres();
      return { location: { url: server.url }, stop: server.stop };
    },
  },
];

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface Tenant {
  account: Account;
  scope: AccountScope;
  admin: Actor;
  /** An API token of the admin. */
  token: string;
}

export interface TestPortal {
  portal: Portal;
  /** The database, for a second portal node on it (PostgreSQL; PGlite is one process's). */
  location: DatabaseLocation;
  a: Tenant;
  b: Tenant;
  // Tests read reply bodies loosely and assert their shape; a typed body would only add casts.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(method: string, path: string, options?: { token?: string | undefined; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<Reply<T>>;
  /** A new actor of a tenant with an API token of its own. */
  actorWithToken(tenant: Tenant, type: Actor["type"], name?: string): Promise<{ actor: Actor; token: string }>;
  close(): Promise<void>;
}

let accounts = 0;

/** A portal on `kind` with tenants A and B. */
export async function startTestPortal(
  kind: DatabaseKind,
  options: { rateLimit?: RateLimitOptions; portal?: Partial<Pick<PortalOptions, "publicUrl" | "mail" | "realtime">> } = {},
): Promise<TestPortal> {
  const db = await kind.open();
  let portal: Portal;
  try {
    portal = await startPortal({ host: "127.0.0.1", port: 0, database: db.location, ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}), ...options.portal });
  } catch (error) {
    await db.stop();
    throw error;
  }
  const tenant = async (name: string): Promise<Tenant> => {
    const account = await createAccount(portal.database, { slug: `${name.toLowerCase()}-${process.pid}-${++accounts}`, name });
    const scope = new AccountScope(portal.database, account.id, null);
    const admin = await createActor(scope, { type: "admin", name: `${name} Admin`, email: `admin@${name.toLowerCase()}.test` });
    const { token } = await issueToken(scope, { kind: "api", actorId: admin.id, name: "tests" });
    return { account, scope, admin, token };
  };
  const a = await tenant("Acme");
  const b = await tenant("Globex");
  const call: TestPortal["call"] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = "token" in opts ? opts.token : a.token;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    } else if (body !== undefined) {
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(`${portal.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    if (/json/.test(res.headers.get("content-type") ?? "") && text !== "") parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as never };
  };
  return {
    portal,
    location: db.location,
    a,
    b,
    call,
    async actorWithToken(t, type, name = `${type} ${Math.random().toString(36).slice(2, 8)}`) {
      const actor = await createActor(t.scope, { type, name, email: type === "user" || type === "admin" ? `${name.replace(/\W+/g, ".")}@${t.account.slug}.test` : null });
      const { token } = await issueToken(t.scope, { kind: "api", actorId: actor.id });
      return { actor, token };
    },
    async close() {
      await portal.close();
      await db.stop();
    },
  };
}
