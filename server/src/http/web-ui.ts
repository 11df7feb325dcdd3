// The admin web UI, served by the portal itself: plain ES modules and CSS from server/web, no build
// step and no separate server (`wardline portal` is all an admin deploys).
//
// 1. At start the directory's files are read once into memory, each with its content type and a
//    strong ETag (sha256 of the bytes): a request never touches the disk.
// 2. GET or HEAD /assets/<name>: that file, revalidated by ETag (If-None-Match → 304), so a portal
//    upgrade is picked up by the next load without stale scripts.
// 3. Any other GET or HEAD outside /api that accepts HTML: index.html. The app routes in the browser
//    (/<account>/sign_in, /<account>/sites…), so a reload or a shared link lands on the right page.
// 4. Everything else passes on to the API, which answers problem details as before.
//
// Every page and asset goes with a Content-Security-Policy allowing only this origin's scripts,
// styles and requests, and no framing.

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

export const WEB_UI_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

interface WebFile {
  body: Buffer;
  type: string;
  etag: string;
}

interface Request {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

interface Response {
  status(code: number): Response;
  setHeader(name: string, value: string): void;
  end(body?: Buffer): void;
}

/** server/web, found from this file whether it runs from source (server/src/http) or from dist/. */
export function webUiDirectory(start = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = start;
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, "server", "web");
    if (existsSync(join(candidate, "index.html"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** Reads the UI's files (step 1); throws when index.html is missing. */
export function loadWebUi(dir: string): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const type = CONTENT_TYPES[extname(name)];
    if (type === undefined || !statSync(path).isFile()) continue;
    const body = readFileSync(path);
    files.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` });
  }
  if (!files.has("index.html")) throw new Error(`the admin UI in ${dir} has no index.html`);
  return files;
}

/** Express-style middleware serving the UI (steps 2-4). */
export function webUiMiddleware(files: Map<string, WebFile>): (req: Request, res: Response, next: () => void) => void {
  const index = files.get("index.html")!;
  return (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    if (req.path === "/api" || req.path.startsWith("/api/")) return next();
    let file: WebFile | undefined;
    if (req.path.startsWith("/assets/")) {
      file = files.get(req.path.slice("/assets/".length));
      if (file === undefined || req.path.slice("/assets/".length) === "index.html") return next();
    } else {
      const accept = String(req.headers.accept ?? "");
      if (!accept.includes("text/html")) return next();
      file = index;
    }
    for (const [name, value] of Object.entries(WEB_UI_HEADERS)) res.setHeader(name, value);
    res.setHeader("Content-Type", file.type);
    res.setHeader("ETag", file.etag);
    res.setHeader("Cache-Control", "no-cache");
    if (req.headers["if-none-match"] === file.etag) {
      res.status(304).end();
      return;
    }
    res.setHeader("Content-Length", String(file.body.length));
    res.status(200).end(req.method === "HEAD" ? undefined : file.body);
  };
}
