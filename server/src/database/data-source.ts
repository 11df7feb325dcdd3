// The portal's database: PostgreSQL through `pg` when DATABASE_URL is given, otherwise PGlite (the
// same PostgreSQL, compiled to WebAssembly) in the data directory, so the portal starts with nothing
// installed. The committed migrations serve both, and opening the database runs any pending ones.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DataSource } from "typeorm";
import { ENTITIES } from "./entities.js";
import { Initial1764000000000 } from "./migrations/1764000000000-initial.js";
import { Identity1764100000000 } from "./migrations/1764100000000-identity.js";
import { Realtime1764200000000 } from "./migrations/1764200000000-realtime.js";
import { PortalSecrets1764300000000 } from "./migrations/1764300000000-portal-secrets.js";
import { RelayEndpoints1764400000000 } from "./migrations/1764400000000-relay-endpoints.js";
import { AccountSettings1764500000000 } from "./migrations/1764500000000-account-settings.js";
import { AuthorizationsRevocation1764600000000 } from "./migrations/1764600000000-authorizations-revocation.js";
import { DeviceVersion1764700000000 } from "./migrations/1764700000000-device-version.js";
import { TokenProvider1764800000000 } from "./migrations/1764800000000-token-provider.js";
import { RelayLoad1764900000000 } from "./migrations/1764900000000-relay-load.js";
import { pgliteDriver } from "./pglite-driver.js";

export const MIGRATIONS = [Initial1764000000000, Identity1764100000000, Realtime1764200000000, PortalSecrets1764300000000, RelayEndpoints1764400000000, AccountSettings1764500000000, AuthorizationsRevocation1764600000000, DeviceVersion1764700000000, TokenProvider1764800000000, RelayLoad1764900000000];

export type DatabaseLocation = { url: string } | { dataDir: string } | { memory: true };

/** Where the database is and what kind it is, for logs (never the password). */
export function describeLocation(location: DatabaseLocation): string {
  if ("url" in location) {
    const url = new URL(location.url);
    return `PostgreSQL at ${url.hostname}${url.port ? `:${url.port}` : ""}${url.pathname}`;
  }
  return "dataDir" in location ? `embedded PGlite in ${join(location.dataDir, "pglite")}` : "embedded PGlite in memory";
}

/** Opens the database and brings its schema up to date. */
export async function openDatabase(location: DatabaseLocation): Promise<DataSource> {
  const common = { entities: ENTITIES, migrations: MIGRATIONS, migrationsRun: true, migrationsTransactionMode: "each" as const };
  let dataSource: DataSource;
  if ("url" in location) {
    dataSource = new DataSource({ type: "postgres", url: location.url, ...common });
  } else {
    let dataDir: string | undefined;
    if ("dataDir" in location) {
      dataDir = join(location.dataDir, "pglite");
      mkdirSync(dataDir, { recursive: true });
    }
    dataSource = new DataSource({ type: "postgres", driver: pgliteDriver(dataDir === undefined ? {} : { dataDir }), ...common });
  }
  return dataSource.initialize();
}
