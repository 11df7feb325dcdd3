// The HTTP side every daemon offers operators: /healthz (the process answers), /readyz (it serves
// traffic) and /metrics (Prometheus text exposition format 0.0.4). Nothing else is served.

import { createServer, type Server } from "node:http";

export interface StatusSource {
  ready(): boolean;
  /** The metrics, already in exposition format. */
  metrics(): string;
}

export interface StatusServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves the status endpoints on host:port (port 0: any). */
export async function serveStatus(host: string, port: number, source: StatusSource): Promise<StatusServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ready = source.ready();
      res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ready\n" : "not ready\n");
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(source.metrics());
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: /healthz, /readyz and /metrics are served\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One metric family in exposition format: HELP, TYPE and its samples. */
export function metricFamily(name: string, type: "counter" | "gauge", help: string, samples: readonly { labels?: Record<string, string>; value: number }[]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const { labels, value } of samples) {
    const text = labels === undefined ? "" : `{${Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))}"`).join(",")}}`;
    lines.push(`${name}${text} ${value}`);
  }
  return `${lines.join("\n")}\n`;
}
