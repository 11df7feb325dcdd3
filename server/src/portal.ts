// The portal process: open (and migrate) the database, build the NestJS application on it, serve
// the REST API under /api/ with its OpenAPI document at /api/openapi.json and an explorer at /api/docs.

import "reflect-metadata";
import { Global, Module, type DynamicModule, type INestApplication } from "@nestjs/common";
import { APP_GUARD, NestFactory } from "@nestjs/core";
import { DocumentBuilder, SwaggerModule } from "@nestjs/swagger";
import { join } from "node:path";
import type { DataSource } from "typeorm";
import { describeLocation, openDatabase, type DatabaseLocation } from "./database/data-source.js";
import { HealthController } from "./http/health.controller.js";
import { withProblemResponses } from "./http/openapi.js";
import { ProblemFilter } from "./http/problem.js";
import { AuthGuard } from "./auth/auth.guard.js";
import { DEFAULT_RATE_LIMIT, RateLimiter, type RateLimitOptions } from "./auth/rate-limit.js";
import { AUTH_SETTINGS, type AuthSettings } from "./auth/settings.js";
import { FEATURE_MODULES } from "./features.js";
import { DevicesService } from "./devices/devices.service.js";
import { startRealtime, type Realtime, type RealtimeSettings } from "./realtime/realtime.js";
import { DATA_SOURCE, RATE_LIMITER } from "./tokens.js";
import { loadWebUi, webUiDirectory, webUiMiddleware } from "./http/web-ui.js";


export interface PortalOptions {
  host: string;
  port: number;
  database: DatabaseLocation;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** Requests per API token (default DEFAULT_RATE_LIMIT). */
  rateLimit?: RateLimitOptions;
  /** Realtime settings (upstream DNS for clients, a GeoIP database, presence timings). */
  realtime?: RealtimeSettings;
  /**
   * Where browsers reach the portal (https://portal.example.com), for sign-in links, OIDC redirect URIs
   * and Secure cookies; default the address it listens on.
   */
  publicUrl?: string;
  /** Outgoing mail (sign-in codes): an SMTP relay, else an mbox file (default <data dir>/mailbox). */
  mail?: { smtpUrl?: string; from?: string; mailbox?: string };
}

export interface Portal {
  readonly url: string;
  readonly database: DataSource;
  /** Every route the HTTP server answers, as Express holds them (method upper-case, path with :params). */
  routes(): { method: string; path: string }[];
  /** The node's realtime side: channels, hub, buses and presence. */
  readonly realtime: Realtime;
  close(): Promise<void>;
}

/** What every feature module may inject: the database and the per-token rate limiter. */
@Global()
@Module({})
class CoreModule {
  static with(db: DataSource, limiter: RateLimiter, auth: AuthSettings): DynamicModule {
    const providers = [
      { provide: DATA_SOURCE, useValue: db },
      { provide: RATE_LIMITER, useValue: limiter },
      { provide: AUTH_SETTINGS, useValue: auth },
    ];
    // The guard is also what the realtime channels authenticate device tokens with.
    return { module: CoreModule, providers: [...providers, AuthGuard], exports: [...providers.map((p) => p.provide), AuthGuard] };
  }
}

@Module({})
class PortalModule {
  static with(db: DataSource, limiter: RateLimiter, auth: AuthSettings): DynamicModule {
    return {
      module: PortalModule,
      imports: [CoreModule.with(db, limiter, auth), ...FEATURE_MODULES],
      controllers: [HealthController],
      providers: [{ provide: APP_GUARD, useExisting: AuthGuard }],
    };
  }
}

/** The OpenAPI document of an application, generated from its controllers. */
export function openApiDocument(app: INestApplication): ReturnType<typeof SwaggerModule.createDocument> {
  const config = new DocumentBuilder()
    .setTitle("Wardline portal API")
    .setDescription("Accounts, actors, groups, resources, sites, policies, devices and tokens. Errors are RFC 7807 problem details.")
    .setVersion("1")
    .addBearerAuth()
    .build();
  return withProblemResponses(SwaggerModule.createDocument(app, config), (path) => PUBLIC_PATHS.some((re) => re.test(path)));
}

/** Paths that take no token (their controllers are @Public()). */
const PUBLIC_PATHS = [/^\/api\/health$/, /^\/api\/auth\/\{slug\}\//];

interface ExpressLayer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
}

function routeTable(app: INestApplication): { method: string; path: string }[] {
  const express = app.getHttpAdapter().getInstance() as { router: { stack: ExpressLayer[] } };
  return express.router.stack.flatMap((layer) => {
    const route = layer.route;
    if (route === undefined) return [];
    const paths = Array.isArray(route.path) ? route.path : [route.path];
    return paths.flatMap((path) => Object.keys(route.methods).filter((m) => m !== "_all").map((method) => ({ method: method.toUpperCase(), path })));
  });
}

export async function startPortal(options: PortalOptions): Promise<Portal> {
  const log = options.log ?? (() => {});
  const database = await openDatabase(options.database);
  const mailbox = options.mail?.mailbox ?? ("dataDir" in options.database ? join(options.database.dataDir, "mailbox") : undefined);
  // publicUrl is known once listening when not configured (port 0 picks one); filled in below.
  const auth: AuthSettings = {
    publicUrl: options.publicUrl?.replace(/\/+$/, "") ?? "",
    mail: { smtpUrl: options.mail?.smtpUrl, from: options.mail?.from ?? "wardline@localhost", mailbox },
    log,
  };
  const limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT);
  let app: INestApplication;
  let realtime: Realtime;
  try {
    app = await NestFactory.create(PortalModule.with(database, limiter, auth), { logger: false, abortOnError: false });
    app.useGlobalFilters(new ProblemFilter((error) => log("error", "request failed", { error: String((error as Error)?.stack ?? error) })));
    // The admin UI (server/web) at every path outside /api; a checkout without it serves the API alone.
    const web = webUiDirectory();
    if (web !== undefined) app.use(webUiMiddleware(loadWebUi(web)));
    else log("warn", "no admin UI found (server/web): serving the API only");
    SwaggerModule.setup("api/docs", app, () => openApiDocument(app), { jsonDocumentUrl: "api/openapi.json" });
    // The channels listen before the HTTP server does, so no device connects to a half-started node.
    realtime = await startRealtime({ db: database, guard: app.get(AuthGuard), limiter, devices: app.get(DevicesService), log, ...(options.realtime ?? {}) });
    realtime.channels.attach(app.getHttpServer());
    await app.listen(options.port, options.host);
  } catch (error) {
    await database.destroy();
    throw error;
  }
  const address = app.getHttpServer().address() as { port: number };
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  if (auth.publicUrl === "") auth.publicUrl = `http://${host}:${address.port}`;
  log("info", "portal up", { url: `http://${host}:${address.port}`, database: describeLocation(options.database), node: realtime.nodes.nodeId });
  return {
    url: `http://${host}:${address.port}`,
    database,
    realtime,
    routes: () => routeTable(app),
    close: async () => {
      await realtime.stop();
      await app.close();
      if (database.isInitialized) await database.destroy();
    },
  };
}
