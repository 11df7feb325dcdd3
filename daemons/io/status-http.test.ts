// serveStatus on loopback: /healthz, /readyz following ready(), /metrics as Prometheus text,
// nothing else (404), no other method (405); and metricFamily's exposition format.

import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { metricFamily, serveStatus, type StatusServer } from "./status-http.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on a connection of its own (node:http, so HEAD and any method go as they are). */
function ask(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("serveStatus", () => {
  const servers: StatusServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  let ready = true;
  let scrapes = 0;
  const source = {
    ready: () => ready,
    metrics: () => `# HELP t_scrapes_total Scrapes.\n# TYPE t_scrapes_total counter\nt_scrapes_total ${++scrapes}\n`,
  };

  async function start(): Promise<number> {
    ready = true;
    scrapes = 0;
    const server = await serveStatus("127.0.0.1", 0, source);
    servers.push(server);
    expect(server.port).toBeGreaterThan(0);
    return server.port;
  }

  it("/healthz answers 200", async () => {
    const port = await start();
    const answer = await ask(port, "GET", "/healthz");
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toBe("text/plain");
    expect(answer.body).toBe("ok\n");
  });

  it("/readyz answers 200 or 503 as ready() says, asked on every request", async () => {
    const port = await start();
    expect(await ask(port, "GET", "/readyz")).toMatchObject({ status: 200, body: "ready\n" });
    ready = false;
    expect(await ask(port, "GET", "/readyz")).toMatchObject({ status: 503, body: "not ready\n" });
    // Not ready is still healthy: the process answers.
    expect((await ask(port, "GET", "/healthz")).status).toBe(200);
    ready = true;
    expect((await ask(port, "GET", "/readyz")).status).toBe(200);
  });

  it("/metrics serves the source's text as format 0.0.4, fresh on every scrape, the query ignored", async () => {
    const port = await start();
    const first = await ask(port, "GET", "/metrics");
    expect(first.status).toBe(200);
    expect(first.headers["content-type"]).toBe("text/plain; version=0.0.4");
    expect(first.body).toBe("# HELP t_scrapes_total Scrapes.\n# TYPE t_scrapes_total counter\nt_scrapes_total 1\n");
    const second = await ask(port, "GET", "/metrics?name[]=t_scrapes_total");
    expect(second.status).toBe(200);
    expect(second.body).toMatch(/^t_scrapes_total 2$/m);
  });

  it("HEAD is served like GET, without a body", async () => {
    const port = await start();
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      const answer = await ask(port, "HEAD", path);
      expect(answer.status, path).toBe(200);
      expect(answer.body, path).toBe("");
    }
  });

  it("any other path is 404", async () => {
    const port = await start();
    for (const path of ["/", "/nope", "/metrics/", "/healthz/x", "/HEALTHZ", "//healthz"]) {
      const answer = await ask(port, "GET", path);
      expect(answer.status, path).toBe(404);
      expect(answer.body, path).toContain("/metrics");
    }
  });

  it("any other method is 405 with Allow, whatever the path", async () => {
    const port = await start();
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      for (const path of ["/metrics", "/healthz", "/nope"]) {
        const answer = await ask(port, method, path);
        expect(answer.status, `${method} ${path}`).toBe(405);
        expect(answer.headers.allow, `${method} ${path}`).toBe("GET, HEAD");
      }
    }
    expect(scrapes).toBe(0);
  });

  it("close() stops it: its port refuses connections", async () => {
    const server = await serveStatus("127.0.0.1", 0, source);
    expect((await ask(server.port, "GET", "/healthz")).status).toBe(200);
    await server.close();
    await expect(ask(server.port, "GET", "/healthz")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("rejects when its port is taken", async () => {
    const port = await start();
    await expect(serveStatus("127.0.0.1", port, source)).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});

describe("metricFamily", () => {
  it("writes HELP, TYPE and one line per sample, label values escaped", () => {
    expect(metricFamily("t_now", "gauge", "Things now.", [{ value: 7 }])).toBe("# HELP t_now Things now.\n# TYPE t_now gauge\nt_now 7\n");
    expect(
      metricFamily("t_total", "counter", "Things, by kind.", [
        { labels: { kind: "plain", zone: "a" }, value: 1 },
        { labels: { kind: 'quote" backslash\\ newline\n' }, value: 2 },
      ]),
    ).toBe('# HELP t_total Things, by kind.\n# TYPE t_total counter\nt_total{kind="plain",zone="a"} 1\nt_total{kind="quote\\" backslash\\\\ newline\\n"} 2\n');
  });

  it("a family without samples still declares itself", () => {
    expect(metricFamily("t_total", "counter", "Nothing yet.", [])).toBe("# HELP t_total Nothing yet.\n# TYPE t_total counter\n");
  });
});
