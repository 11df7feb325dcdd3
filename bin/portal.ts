// `wardline portal`: the portal, on the embedded database unless DATABASE_URL names a PostgreSQL.
// JSON logs on stderr; runs until SIGINT or SIGTERM. With --init-admin it only prepares an account's
// first admin (a password and a one-time sign-in link on stdout) and exits.

import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { initAdmin, initAdminProblem } from "../server/src/auth/init-admin.js";
import { openDatabase, type DatabaseLocation } from "../server/src/database/data-source.js";
import { GeoIpReader } from "../server/src/policy/geoip.js";
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
  --port <n>             HTTP port (default 8080)
  --host <addr>          address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --data-dir <dir>       where the embedded database lives (default ./.wardline)
  --public-url <url>     where browsers reach the portal, for sign-in links, OIDC redirect URIs
                         and Secure cookies (env WARDLINE_PUBLIC_URL; default http://<host>:<port>)
  --init-admin <email>   create the account (if missing) and an admin with this email (if
                         missing), set a new generated password for it, print the password and
                         a one-time sign-in link (valid 15 minutes) to stdout, and exit without
                         serving. Run again to reset that admin's password. With the embedded
                         database, run it while the portal is stopped.
  --account <slug>       the account of --init-admin (default "default"); people sign in at
                         /api/auth/<slug>/...
  --geoip <file>         a GeoIP database in MaxMind format (GeoLite2-Country or -City .mmdb) for
                         policies' region conditions and for giving clients the relays nearest
                         to them (env WARDLINE_GEOIP); without it a region condition fails closed
  -h, --help             show this help

Environment:
  DATABASE_URL           postgresql://... to use that server instead of the embedded database
  WARDLINE_PUBLIC_URL    as --public-url
  WARDLINE_GEOIP         as --geoip
  WARDLINE_SMTP_URL      smtp://user:pass@host:587 or smtps://... relay for sign-in codes; without
                         it, mail is appended to <data-dir>/mailbox (an mbox file) for development
  WARDLINE_MAIL_FROM     the From address of that mail (default wardline@localhost)
  NODE_OPTIONS           Node's own options; for a busy portal --max-semi-space-size=64, which
                         npm start uses: a larger young generation halves the time spent in
                         scavenges under \`wardline bench portal\`
`;

export async function portalCommand(argv: readonly string[], io: PortalIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseCommandLine(argv, {
    port: { type: "string", default: "8080" },
    host: { type: "string", default: "127.0.0.1" },
    "data-dir": { type: "string", default: "./.wardline" },
    "public-url": { type: "string" },
    "init-admin": { type: "string" },
    account: { type: "string", default: "default" },
    geoip: { type: "string" },
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
  const host = values.host.includes(":") ? `[${values.host}]` : values.host;
  const publicUrl = (values["public-url"] ?? env.WARDLINE_PUBLIC_URL ?? `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${values.port}`).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(publicUrl)) {
    io.stderr(`wardline portal: --public-url must be an http:// or https:// URL without query or fragment, got '${publicUrl}'\n`);
    return EXIT_USAGE;
  }
  const smtpUrl = env.WARDLINE_SMTP_URL;
  if (smtpUrl !== undefined && !/^smtps?:\/\//.test(smtpUrl)) {
    io.stderr("wardline portal: WARDLINE_SMTP_URL must be an smtp:// or smtps:// URL\n");
    return EXIT_USAGE;
  }
  const geoipFile = values.geoip ?? env.WARDLINE_GEOIP;
  let geoip: GeoIpReader | undefined;
  if (geoipFile !== undefined && geoipFile !== "") {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(geoipFile);
    } catch (error) {
      io.stderr(`wardline portal: cannot read the GeoIP database ${geoipFile}: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
    const opened = GeoIpReader.open(bytes);
    if (!opened.ok) {
      io.stderr(`wardline portal: ${geoipFile} is not a usable GeoIP database: ${opened.error}\n`);
      return EXIT_USAGE;
    }
    geoip = opened.reader;
  }
  const dataDir = resolve(values["data-dir"]);
  const database: DatabaseLocation = url !== undefined ? { url } : { dataDir };
  const log = (level: string, msg: string, fields: Record<string, unknown> = {}): void =>
    io.stderr(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
  if (values["init-admin"] !== undefined) return initAdminCommand(io, database, { email: values["init-admin"], slug: values.account, publicUrl }, log);
  let portal;
  try {
    portal = await startPortal({
      host: values.host,
      port: Number(values.port),
      database,
      log,
      publicUrl,
      ...(geoip !== undefined ? { realtime: { geoip } } : {}),
      mail: { ...(smtpUrl !== undefined ? { smtpUrl } : { mailbox: join(dataDir, "mailbox") }), ...(env.WARDLINE_MAIL_FROM ? { from: env.WARDLINE_MAIL_FROM } : {}) },
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

/** --init-admin: the account's admin, its new password and a sign-in link on stdout; the portal does not start. */
async function initAdminCommand(
  io: PortalIo,
  database: DatabaseLocation,
  options: { email: string; slug: string; publicUrl: string },
  log: (level: string, msg: string, fields?: Record<string, unknown>) => void,
): Promise<number> {
  const problem = initAdminProblem(options);
  if (problem !== undefined) {
    io.stderr(`wardline portal: --init-admin: ${problem}\n`);
    return EXIT_USAGE;
  }
  let db;
  try {
    db = await openDatabase(database);
  } catch (error) {
    log("error", "cannot open the database", { error: (error as Error).message });
    return EXIT_FAILURE;
  }
  try {
    const done = await initAdmin(db, options);
    io.stdout(
      [
        `account   ${done.account.slug} (${done.createdAccount ? "created" : "existing"})`,
        `admin     ${done.admin.email} (${done.createdAdmin ? "created" : "existing; password reset"})`,
        `password  ${done.password}`,
        `sign in   ${done.link}`,
        "",
        "The link works once, within 15 minutes, once the portal runs (wardline portal). The password is",
        `shown only now: sign in with POST /api/auth/${done.account.slug}/password and change it with PUT /api/me/password.`,
        "",
      ].join("\n"),
    );
    return EXIT_OK;
  } catch (error) {
    if (error instanceof RangeError) {
      io.stderr(`wardline portal: --init-admin: ${error.message}\n`);
      return EXIT_USAGE;
    }
    log("error", "cannot create the admin", { error: (error as Error).message });
    return EXIT_FAILURE;
  } finally {
    await db.destroy();
  }
}
