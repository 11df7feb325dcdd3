// `wardline portal`: the portal, on the embedded database unless DATABASE_URL names a PostgreSQL.
// JSON logs on stderr; runs until SIGINT or SIGTERM.

import { resolve } from "node:path";
import { startPortal } from "../server/src/portal.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parseCommandLine } from "./args.js";

export interface PortalIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const PORTAL_HELP = `Usage: wardline portal [options]

Runs the portal: the REST API under /api/ (OpenAPI at /api/openapi.json, explorer at /api/docs).
Without DATABASE_URL it keeps its data in an embedded PostgreSQL (PGlite) under --data-dir;
with DATABASE_URL=postgresql://... it uses that PostgreSQL server. Either way it brings the
schema up to date when it starts.

Options:
  --port <n>         HTTP port (default 8080)
  --host <addr>      address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --data-dir <dir>   where the embedded database lives (default ./.wardline)
  -h, --help         show this help
`;

export async function portalCommand(argv: readonly string[], io: PortalIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCommandLine(argv, {
    port: { type: "string", default: "8080" },
    host: { type: "string", default: "127.0.0.1" },
    "data-dir": { type: "string", default: "./.wardline" },
    help: { type: "boolean", short: "h", default: false },
  });
  if ("error" in parsed) {
    io.stderr(`wardline portal: ${parsed.error}\n\n${PORTAL_HELP}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(PORTAL_HELP);
    return EXIT_OK;
  }
  if (positionals.length > 0) {
    io.stderr(`wardline portal: unexpected argument '${positionals[0]}'\n\n${PORTAL_HELP}`);
    return EXIT_USAGE;
  }
  if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) {
    io.stderr(`wardline portal: --port must be 0-65535, got '${values.port}'\n`);
    return EXIT_USAGE;
  }
  const url = env.DATABASE_URL;
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
    io.stderr("wardline portal: DATABASE_URL must be a postgresql:// URL\n");
    return EXIT_USAGE;
  }
  const log = (level: string, msg: string, fields: Record<string, unknown> = {}): void =>
    io.stderr(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
  let portal;
  try {
    portal = await startPortal({
      host: values.host,
      port: Number(values.port),
      database: url !== undefined ? { url } : { dataDir: resolve(values["data-dir"]) },
      log,
    });
  } catch (error) {
    log("error", "cannot start the portal", { error: (error as Error).message });
    return EXIT_FAILURE;
  }
  return new Promise<number>((done) => {
    const stop = (signal: string): void => {
      log("info", "shutting down", { signal });
      void portal.close().then(() => done(EXIT_OK));
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
