// The admin UI's static serving: files from memory with a strong ETag (304 on a match), index.html for
// any HTML page outside /api so the browser's router can take the path, and nothing else intercepted.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadWebUi, WEB_UI_HEADERS, webUiDirectory, webUiMiddleware } from "./web-ui.js";

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | undefined;
  passed: boolean;
}

const dir = mkdtempSync(join(tmpdir(), "wardline-web-"));
writeFileSync(join(dir, "index.html"), "<!doctype html><title>x</title>");
writeFileSync(join(dir, "app.js"), "console.log(1);");
writeFileSync(join(dir, "notes.txt"), "not served");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const serve = webUiMiddleware(loadWebUi(dir));

function call(method: string, path: string, headers: Record<string, string> = {}): Answer {
  const answer: Answer = { status: 0, headers: {}, body: undefined, passed: false };
  const res = {
    status(code: number) {
      answer.status = code;
      return res;
    },
    setHeader(name: string, value: string) {
      answer.headers[name.toLowerCase()] = value;
    },
    end(body?: Buffer) {
      answer.body = body;
    },
  };
  serve({ method, path, headers }, res, () => (answer.passed = true));
  return answer;
}

describe("the admin UI's static serving", () => {
  it("serves an asset with its type, a strong ETag and the security headers, and 304 when it matches", () => {
    const js = call("GET", "/assets/app.js");
    expect(js.status).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.body?.toString()).toBe("console.log(1);");
    expect(js.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    for (const name of Object.keys(WEB_UI_HEADERS)) expect(js.headers[name.toLowerCase()]).toBe(WEB_UI_HEADERS[name]);
    expect(call("GET", "/assets/app.js", { "if-none-match": js.headers.etag! }).status).toBe(304);
    const head = call("HEAD", "/assets/app.js");
    expect([head.status, head.body, head.headers["content-length"]]).toEqual([200, undefined, "15"]);
  });

  it("answers index.html for pages outside /api that accept HTML, and passes everything else on", () => {
    const page = call("GET", "/acme/sites/123", { accept: "text/html,application/xhtml+xml" });
    expect(page.status).toBe(200);
    expect(page.body?.toString()).toContain("<!doctype html>");
    for (const [method, path, accept] of [
      ["GET", "/api/sites", "text/html"],
      ["GET", "/api", "text/html"],
      ["POST", "/acme/sites", "text/html"],
      ["GET", "/acme/sites", "application/json"],
      ["GET", "/assets/missing.js", "*/*"],
      ["GET", "/assets/notes.txt", "*/*"],
      ["GET", "/assets/index.html", "*/*"],
    ] as const) {
      const answer = call(method, path, { accept });
      expect(answer.passed, `${method} ${path}`).toBe(true);
      expect(answer.status, `${method} ${path}`).toBe(0);
    }
  });

  it("finds server/web from its own folder, and refuses a directory without index.html", () => {
    expect(webUiDirectory()).toMatch(/server[/\\]web$/);
    const empty = mkdtempSync(join(tmpdir(), "wardline-web-empty-"));
    try {
      expect(() => loadWebUi(empty)).toThrow(/no index.html/);
      expect(webUiDirectory(empty)).toBeUndefined();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
