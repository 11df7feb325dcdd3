// A real PostgreSQL server for tests: either the one TEST_DATABASE_URL names, or a throwaway cluster
// started from the machine's PostgreSQL binaries (Debian: the postgresql package).
//
// 1. Find the binaries: initdb on PATH (its symlinks resolved, so /usr/local/bin/initdb pointing into
//    /usr/lib/postgresql/15/bin works), else the newest /usr/lib/postgresql/<major>/bin. postgres and
//    pg_ctl come from the same directory as initdb, so the versions match.
// 2. One cluster per test process, shared by every startPostgres() call, because initdb costs about a
//    second: initdb into a fresh temp dir, then postgres as our own child process, so stopping it ends
//    with Node reaping it (a pg_ctl-daemonised postmaster is reparented to PID 1, which in some
//    containers never reaps it and leaves a zombie behind).
// 3. Each startPostgres() call creates a database with a random name in it and returns its URL. stop()
//    drops that database; the last stop() shuts the cluster down immediately (SIGQUIT, which is what
//    `pg_ctl stop -m immediate` sends) and removes the temp dir.
//
// The throwaway cluster never touches what Debian's package sets up: it has its own data directory,
// listens only on 127.0.0.1 at a free ephemeral port (never 5432) and on a unix socket inside its temp
// dir (not /var/run/postgresql), and every PG* variable is removed from the environment of what it runs.
// Auth: trust on the unix socket, whose directory only its owner (and root) can enter; SCRAM with a
// random password over TCP, carried in the URL.
//
// Run as root, the cluster runs as Debian's `postgres` user (postgres refuses to run as root). Where
// setpriv(1) exists, the server gets SIGQUIT when the test process dies without calling stop(), so no
// server outlives a killed test run (its temp dir, named wardline-pg-*, then stays behind).
//
// Skips: missingPostgres() gives the reason a test cannot run; tests print it and skip locally, and
// fail under CI=true (like test/support/vectors.ts).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, chownSync, closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import type { TestContext } from "vitest";

/** A database of its own for one test file or test; stop() drops it. */
export interface PostgresDatabase {
  /** postgresql:// URL of the database, with credentials. */
  url: string;
  /** The database's name, random per call. */
  name: string;
  /** The throwaway cluster serving it; undefined when TEST_DATABASE_URL names the server. */
  cluster: { pid: number; dir: string } | undefined;
  stop(): Promise<void>;
}

const SERVER_BINARIES = ["initdb", "pg_ctl", "postgres"] as const;
const DEBIAN_ROOT = "/usr/lib/postgresql";
const READY_TIMEOUT_MS = 30_000;
const PSQL_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** Whether this run must fail rather than skip when PostgreSQL is missing. */
export const inCi = (): boolean => process.env.CI === "true" || process.env.CI === "1";

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The directory holding initdb, pg_ctl and postgres: PATH first, then the newest Debian major. */
function serverBinDir(): string | undefined {
  const candidates: string[] = [];
  const initdb = onPath("initdb");
  if (initdb !== undefined) candidates.push(dirname(realpathSync(initdb)));
  if (existsSync(DEBIAN_ROOT)) {
    const majors = readdirSync(DEBIAN_ROOT).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((major) => join(DEBIAN_ROOT, major, "bin")));
  }
  return candidates.find((dir) => SERVER_BINARIES.every((name) => isExecutable(join(dir, name))));
}

/** psql beside the server binaries, else on PATH (Debian's /usr/bin/psql picks the newest client). */
function psqlPath(binDir: string | undefined): string | undefined {
  if (binDir !== undefined && isExecutable(join(binDir, "psql"))) return join(binDir, "psql");
  return onPath("psql");
}

/** uid and gid of a local user, from /etc/passwd. */
function localUser(name: string): { uid: number; gid: number } | undefined {
  let passwd: string;
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return undefined;
  }
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Why no PostgreSQL server can be had here, or undefined when startPostgres() can run: either
 * TEST_DATABASE_URL (plus psql, which creates and drops the databases), or the server binaries.
 */
export function missingPostgres(): string | undefined {
  const external = process.env.TEST_DATABASE_URL;
  if (external !== undefined && external !== "") {
    if (!/^postgres(?:ql)?:\/\//.test(external)) return "TEST_DATABASE_URL is not a postgresql:// URL";
    if (psqlPath(serverBinDir()) === undefined) return "TEST_DATABASE_URL is set, but psql is not installed to create the test databases in it (Debian: postgresql-client)";
    return undefined;
  }
  const binDir = serverBinDir();
  if (binDir === undefined) {
    return `no PostgreSQL server binaries (${SERVER_BINARIES.join(", ")}) on PATH or under ${DEBIAN_ROOT}/<major>/bin (Debian: postgresql), and TEST_DATABASE_URL is not set`;
  }
  if (psqlPath(binDir) === undefined) return `psql is not in ${binDir} nor on PATH (Debian: postgresql-client)`;
  if (isRoot() && localUser("postgres") === undefined) {
    return "running as root, and there is no `postgres` user to run the server as (Debian's postgresql package creates it)";
  }
  return undefined;
}

/**
 * Skips the calling test with the reason printed when missingPostgres() has one; under CI=true,
 * throws instead, so CI cannot go green without PostgreSQL.
 */
export function requirePostgres(ctx: TestContext): void {
  const reason = missingPostgres();
  if (reason === undefined) return;
  if (inCi()) throw new Error(`${reason}; CI=true, so this is a failure, not a skip`);
  console.warn(`skipping "${ctx.task.suite?.name ?? ""} > ${ctx.task.name}": ${reason}`);
  ctx.skip(reason);
}

/** The environment for everything we run: no PG* variable may steer it to another server. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("PG")) env[key] = value;
  return { ...env, LC_ALL: "C", ...extra };
}

/** Runs one SQL script through psql against `url`; resolves with its unaligned, tuples-only output. */
export function psql(url: string, sql: string): Promise<string> {
  const bin = psqlPath(serverBinDir());
  if (bin === undefined) return Promise.reject(new Error("psql is not installed"));
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], {
      env: cleanEnv({ PGCONNECT_TIMEOUT: "10" }),
      stdio: ["pipe", "pipe", "pipe"],
      timeout: PSQL_TIMEOUT_MS,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`psql exited with ${signal ?? code}: ${stderr.trim()}`));
    });
    child.stdin.end(sql);
  });
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** `url` with its database replaced by `database`. */
function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

interface Cluster {
  /** URL of the cluster's `postgres` database, as superuser. */
  url: string;
  pid: number;
  dir: string;
  stop(): Promise<void>;
  stopSync(): void;
}

/** A TCP port that was free a moment ago; the start retries if another process takes it first. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function logTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

async function startCluster(): Promise<Cluster> {
  const binDir = serverBinDir();
  if (binDir === undefined) throw new Error(missingPostgres() ?? "no PostgreSQL binaries");
  const owner = isRoot() ? localUser("postgres") : undefined;
  if (isRoot() && owner === undefined) throw new Error(missingPostgres() ?? "no postgres user");
  const setpriv = onPath("setpriv");

  const dir = mkdtempSync(join(tmpdir(), "wardline-pg-"));
  const dataDir = join(dir, "data");
  const logPath = join(dir, "postgres.log");
  const password = randomBytes(18).toString("hex");
  const asOwner = owner === undefined ? {} : { uid: owner.uid, gid: owner.gid };
  try {
    const pwfile = join(dir, "password");
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner !== undefined) {
      chownSync(dir, owner.uid, owner.gid);
      chownSync(pwfile, owner.uid, owner.gid);
    }
    // C locale and UTF-8: the same collation everywhere; --no-sync: nothing here needs to survive a crash.
    const initdb = spawnSync(
      join(binDir, "initdb"),
      ["-D", dataDir, "-U", "postgres", "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
      { cwd: dir, env: cleanEnv(), encoding: "utf8", ...asOwner },
    );
    rmSync(pwfile, { force: true });
    if (initdb.status !== 0) {
      throw new Error(`initdb failed (${initdb.error?.message ?? initdb.signal ?? initdb.status}): ${(initdb.stderr ?? "").trim()}`);
    }

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const started = await startServer(binDir, dir, dataDir, logPath, port, asOwner, setpriv);
      if ("child" in started) {
        const { child } = started;
        const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
        const cluster: Cluster = {
          url,
          pid: child.pid ?? -1,
          dir,
          stop: async () => {
            running = undefined;
            await stopServer(dir, child);
          },
          stopSync: () => {
            // pg_ctl returns once postmaster.pid is gone, that is, once the server has exited.
            const args = ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", String(STOP_TIMEOUT_MS / 1000)];
            spawnSync(join(binDir, "pg_ctl"), args, { cwd: dir, env: cleanEnv(), stdio: "ignore", ...asOwner });
            rmSync(dir, { recursive: true, force: true });
          },
        };
        running = cluster;
        return cluster;
      }
      if (!started.portTaken || attempt >= 5) throw new Error(started.error);
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

type ServerStart = { child: ChildProcess } | { error: string; portTaken: boolean };

/** Starts postgres as our child and waits until postmaster.pid says it accepts connections. */
async function startServer(
  binDir: string,
  dir: string,
  dataDir: string,
  logPath: string,
  port: number,
  asOwner: { uid?: number; gid?: number },
  setpriv: string | undefined,
): Promise<ServerStart> {
  const settings = {
    listen_addresses: "127.0.0.1",
    port: String(port),
    unix_socket_directories: dir,
    // A throwaway cluster: durability only costs time.
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
  };
  const args = ["-D", dataDir, ...Object.entries(settings).flatMap(([key, value]) => ["-c", `${key}=${value}`])];
  const postgres = join(binDir, "postgres");
  const [command, commandArgs] = setpriv === undefined ? [postgres, args] : [setpriv, ["--pdeathsig", "QUIT", "--", postgres, ...args]];

  const log = openSync(logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, commandArgs, { cwd: dir, env: cleanEnv(), stdio: ["ignore", log, log], ...asOwner });
  } finally {
    closeSync(log);
  }
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `postgres exited with ${signal ?? code}`));
  child.once("error", (error) => (exited = `could not run postgres: ${error.message}`));

  const pidFile = join(dataDir, "postmaster.pid");
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited !== undefined) {
      const log = logTail(logPath);
      return { error: `${exited}:\n${log}`, portTaken: /Address already in use/.test(log) };
    }
    // Line 8 of postmaster.pid is the server's status; pg_ctl -w waits for "ready" the same way.
    try {
      if (readFileSync(pidFile, "utf8").split("\n")[7]?.trim() === "ready") return { child };
    } catch {
      // Not written yet.
    }
    if (performance.now() > deadline) {
      child.kill("SIGQUIT");
      return { error: `postgres was not ready after ${READY_TIMEOUT_MS} ms:\n${logTail(logPath)}`, portTaken: false };
    }
    await delay(20);
  }
}

/**
 * Immediate shutdown: SIGQUIT, which is what `pg_ctl stop -m immediate` sends; the postmaster takes its
 * backends down before it exits. Resolves once Node has reaped it and the directory is gone.
 */
async function stopServer(dir: string, child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGQUIT");
    const stuck = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(stuck);
  }
  rmSync(dir, { recursive: true, force: true });
}

// The cluster this test process shares, and how many databases in it are still open.
let shared: Promise<Cluster> | undefined;
let openDatabases = 0;
let running: Cluster | undefined;

// Last resort for a test process that exits without the last stop(): 'exit' handlers must be
// synchronous, so this is pg_ctl, which waits until the server is gone, and a synchronous rm.
process.once("exit", () => running?.stopSync());

/**
 * A fresh, empty database on a real PostgreSQL server: in the server TEST_DATABASE_URL names, else in
 * this process's throwaway cluster (started on first use). stop() drops the database, and the last
 * stop() shuts the cluster down.
 */
export async function startPostgres(): Promise<PostgresDatabase> {
  const name = `wardline_test_${randomBytes(8).toString("hex")}`;
  const external = process.env.TEST_DATABASE_URL;
  if (external !== undefined && external !== "") {
    await psql(external, `CREATE DATABASE ${quoteIdent(name)};`);
    let stopped = false;
    return {
      url: withDatabase(external, name),
      name,
      cluster: undefined,
      async stop() {
        if (stopped) return;
        stopped = true;
        await psql(external, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE);`);
      },
    };
  }

  openDatabases++;
  let cluster: Cluster;
  const starting = (shared ??= startCluster());
  try {
    cluster = await starting;
    await psql(cluster.url, `CREATE DATABASE ${quoteIdent(name)};`);
  } catch (error) {
    await release(starting);
    throw error;
  }
  let stopped = false;
  return {
    url: withDatabase(cluster.url, name),
    name,
    cluster: { pid: cluster.pid, dir: cluster.dir },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (openDatabases > 1) await psql(cluster.url, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE);`);
      await release(starting);
    },
  };
}

/** One open database fewer; the last one takes the cluster down with it. */
async function release(cluster: Promise<Cluster>): Promise<void> {
  openDatabases--;
  if (openDatabases > 0 || shared !== cluster) return;
  shared = undefined;
  const started = await cluster.catch(() => undefined);
  await started?.stop();
}
