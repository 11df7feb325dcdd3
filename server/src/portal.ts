// The portal process: open (and migrate) the database, build the NestJS application on it, serve
// the REST API under /api/ with its OpenAPI document at /api/openapi.json and an explorer at /api/docs.

import "reflect-metadata";
import { Module, type DynamicModule, type INestApplication } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { DocumentBuilder, SwaggerModule } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { describeLocation, openDatabase, type DatabaseLocation } from "./database/data-source.js";
import { HealthController } from "./http/health.controller.js";
import { ProblemFilter } from "./http/problem.js";
import { DATA_SOURCE } from "./tokens.js";

export interface PortalOptions {
  host: string;
  port: number;
  database: DatabaseLocation;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

export interface Portal {
  readonly url: string;
  readonly database: DataSource;
  close(): Promise<void>;
}

@Module({})
class PortalModule {
  static with(db: DataSource): DynamicModule {
    return { module: PortalModule, controllers: [HealthController], providers: [{ provide: DATA_SOURCE, useValue: db }] };
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
  return SwaggerModule.createDocument(app, config);
}

export async function startPortal(options: PortalOptions): Promise<Portal> {
  const log = options.log ?? (() => {});
  const database = await openDatabase(options.database);
  let app: INestApplication;
  try {
    app = await NestFactory.create(PortalModule.with(database), { logger: false, abortOnError: false });
    app.useGlobalFilters(new ProblemFilter((error) => log("error", "request failed", { error: String((error as Error)?.stack ?? error) })));
    SwaggerModule.setup("api/docs", app, () => openApiDocument(app), { jsonDocumentUrl: "api/openapi.json" });
    await app.listen(options.port, options.host);
  } catch (error) {
    await database.destroy();
    throw error;
  }
  const address = app.getHttpServer().address() as { port: number };
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  log("info", "portal up", { url: `http://${host}:${address.port}`, database: describeLocation(options.database) });
  return {
    url: `http://${host}:${address.port}`,
    database,
    close: async () => {
      await app.close();
      if (database.isInitialized) await database.destroy();
    },
  };
}
