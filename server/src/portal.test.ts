// The portal process on the embedded database: it starts, migrates, answers /api/health, serves its
// OpenAPI document and explorer, and answers unknown routes with RFC 7807 problem details.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPortal, type Portal } from "./portal.js";

describe("the portal on embedded PGlite", () => {
  let portal: Portal;
  const dir = mkdtempSync(join(tmpdir(), "wardline-portal-"));
  beforeAll(async () => {
    portal = await startPortal({ host: "127.0.0.1", port: 0, database: { dataDir: dir } });
  }, 60_000);
  afterAll(async () => {
    await portal?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers /api/health once its database does", async () => {
    const res = await fetch(`${portal.url}/api/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("serves an OpenAPI 3 document generated from its controllers, and the explorer", async () => {
    const doc = (await (await fetch(`${portal.url}/api/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain("/api/health");
    // Every API route the application answers is in the document, with its problem answers.
    const apiRoutes = portal.routes().filter((r) => r.path.startsWith("/api/") && !/^\/api\/(docs|openapi)/.test(r.path));
    expect(apiRoutes.length).toBeGreaterThan(5);
    const full = doc as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>>; components: { schemas: Record<string, unknown> } };
    for (const route of apiRoutes) {
      const path = route.path.replace(/:(\w+)/g, "{$1}");
      const operation = full.paths[path]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${path} is documented`).toBeDefined();
      expect(Object.keys(operation!.responses)).toContain("422");
    }
    expect(full.components.schemas.Problem).toBeDefined();
    expect(Object.keys(full.paths["/api/sites"]!.post!.responses)).toEqual(expect.arrayContaining(["401", "403", "409", "422", "429"]));
    expect(Object.keys(full.paths["/api/health"]!.get!.responses)).not.toContain("401");
    const docs = await fetch(`${portal.url}/api/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("swagger");
  });

  it("answers an unknown route with problem details", async () => {
    const res = await fetch(`${portal.url}/api/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    const body = (await res.json()) as { type: string; title: string; status: number; code: string; detail: string };
    expect(body).toMatchObject({ status: 404, code: "not_found" });
    expect(body.type).toMatch(/^https:\/\//);
    expect(body.detail.length).toBeGreaterThan(0);
  });

  it("keeps its data in the data directory across restarts", async () => {
    await portal.database.query(`INSERT INTO accounts (id, slug, name) VALUES ('6c1d5d1e-0e57-4e59-9f5a-3c1f6f1b7a10', 'kept', 'Kept')`);
    await portal.close();
    portal = await startPortal({ host: "127.0.0.1", port: 0, database: { dataDir: dir } });
    const rows = (await portal.database.query(`SELECT slug FROM accounts`)) as { slug: string }[];
    expect(rows.map((r) => r.slug)).toContain("kept");
  }, 60_000);
});
