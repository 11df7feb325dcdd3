// Proves the PostgreSQL harness of test/support/postgres.ts against a real server, through psql (the
// `pg` client is not a dependency yet):
//
// 1. A database from startPostgres() takes tables, rows and queries, on a cluster that started in well
//    under 10 s and that stays off Debian's own cluster (not port 5432, not /var/run/postgresql).
// 2. TCP needs the password the URL carries.
// 3. Two calls share one cluster and get two isolated databases; stop() drops its database.
// 4. The last stop() ends every server process (checked by PID in /proc) and removes the directory;
//    the next call starts a new cluster.
// 5. A test process that exits without stop() takes its server and directory with it; one killed
//    outright takes its server (setpriv's parent-death signal) but leaves the directory.
// 6. With TEST_DATABASE_URL, each call gets a fresh database in that server, dropped on stop().
//
// Needs PostgreSQL's binaries (Debian: postgresql) or TEST_DATABASE_URL; skips with the reason
// otherwise, and fails under CI=true.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { inCi, missingPostgres, psql, requirePostgres, startPostgres, type PostgresDatabase } from "./postgres.js";

// The cluster tests run without TEST_DATABASE_URL, so they test the cluster even where it is set; the
// TEST_DATABASE_URL tests use the outer one when there is one, else a throwaway cluster as the server.
const outerUrl = process.env.TEST_DATABASE_URL;
const external = outerUrl !== undefined && outerUrl !== "";
function restoreUrl(): void {
  if (external) process.env.TEST_DATABASE_URL = outerUrl;
  else delete process.env.TEST_DATABASE_URL;
}
delete process.env.TEST_DATABASE_URL;
const missingCluster = missingPostgres();
restoreUrl();

const missing = missingPostgres();
if (missing !== undefined && inCi()) throw new Error(`PostgreSQL tests cannot run under CI: ${missing}`);
if (missingCluster !== undefined) console.warn(`skipping the throwaway cluster tests: ${missingCluster}`);

/** Databases a test opened, stopped after it even when it fails. */
const open: PostgresDatabase[] = [];
async function database(): Promise<PostgresDatabase> {
  const db = await startPostgres();
  open.push(db);
  return db;
}
afterEach(async () => {
  for (const db of open.splice(0).reverse()) await db.stop();
});

/** The state letter of a process (R, S, Z, ...), or undefined when no such process exists. */
function processState(pid: number): string | undefined {
  try {
    // The command name may hold spaces and parentheses; the state follows its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) children.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return children;
}

const rows = async (url: string, sql: string): Promise<string[]> => (await psql(url, sql)).split("\n").filter((line) => line !== "");

describe.skipIf(missingCluster !== undefined)("a throwaway PostgreSQL cluster", () => {
  beforeAll(() => {
    delete process.env.TEST_DATABASE_URL;
  });
  afterAll(restoreUrl);

  it("serves a fresh database that takes tables, rows and queries", async () => {
    const started = performance.now();
    const db = await database();
    const startMs = performance.now() - started;
    console.log(`cluster and database ready in ${startMs.toFixed(0)} ms`);
    expect(startMs).toBeLessThan(10_000);

    expect(db.url).toMatch(/^postgresql:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/wardline_test_[0-9a-f]+$/);
    expect(await rows(db.url, "SELECT current_database();")).toEqual([db.name]);
    await psql(db.url, "CREATE TABLE peers (id int PRIMARY KEY, name text NOT NULL);");
    await psql(db.url, "INSERT INTO peers VALUES (1, 'alpha'), (2, 'beta');");
    expect(await rows(db.url, "SELECT id || ':' || name FROM peers ORDER BY id;")).toEqual(["1:alpha", "2:beta"]);
    await expect(psql(db.url, "INSERT INTO peers VALUES (1, 'again');")).rejects.toThrow(/duplicate key/);

    // Nothing shared with Debian's own cluster (port 5432, sockets in /var/run/postgresql).
    const [listen, port, sockets] = await rows(db.url, "SHOW listen_addresses; SHOW port; SHOW unix_socket_directories;");
    expect(listen).toBe("127.0.0.1");
    expect(port).not.toBe("5432");
    expect(new URL(db.url).port).toBe(port);
    expect(sockets).toBe(db.cluster?.dir);
  });

  it("asks for the password over TCP", async () => {
    const db = await database();
    const url = new URL(db.url);
    url.password = "wrong";
    await expect(psql(url.toString(), "SELECT 1;")).rejects.toThrow(/password authentication failed/);
    url.password = "";
    await expect(psql(url.toString(), "SELECT 1;")).rejects.toThrow(/password/);
  });

  it("gives two calls one cluster and two isolated databases; stop() drops a database", async () => {
    const a = await database();
    const b = await database();
    expect(b.cluster).toEqual(a.cluster);
    expect(b.name).not.toBe(a.name);

    await psql(a.url, "CREATE TABLE things (v text); INSERT INTO things VALUES ('in a');");
    expect(await rows(b.url, "SELECT to_regclass('things') IS NULL;")).toEqual(["t"]);
    await psql(b.url, "CREATE TABLE things (v text); INSERT INTO things VALUES ('in b');");
    expect(await rows(a.url, "SELECT v FROM things;")).toEqual(["in a"]);
    expect(await rows(b.url, "SELECT v FROM things;")).toEqual(["in b"]);

    await a.stop();
    await a.stop(); // idempotent
    const left = `SELECT count(*) FROM pg_database WHERE datname = '${a.name}';`;
    expect(await rows(b.url, left)).toEqual(["0"]);
    expect(await rows(b.url, "SELECT v FROM things;")).toEqual(["in b"]);
  });

  it.skipIf(!existsSync("/proc"))("ends every server process and removes its directory on the last stop()", async () => {
    const db = await database();
    const cluster = db.cluster;
    if (cluster === undefined) throw new Error("no cluster");
    // A client session holds a backend open across the stop.
    const client = psql(db.url, "SELECT pg_sleep(60);").catch((error: unknown) => error);
    await expect.poll(async () => (await rows(db.url, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%';"))[0]).toBe("1");
    const processes = [cluster.pid, ...childrenOf(cluster.pid)];
    expect(processes.length).toBeGreaterThan(3); // postmaster, checkpointer, walwriter, ... and the backend
    expect(existsSync(cluster.dir)).toBe(true);

    await db.stop();
    open.splice(open.indexOf(db), 1);
    expect(await client).toBeInstanceOf(Error);
    for (const pid of processes) expect(processState(pid), `process ${pid}`).toBeUndefined();
    expect(existsSync(cluster.dir)).toBe(false);

    const next = await database();
    expect(next.cluster?.pid).not.toBe(cluster.pid);
    expect(await rows(next.url, "SELECT 1;")).toEqual(["1"]);
  });

  /** Starts a cluster in a test process of its own; resolves with the process and the cluster. */
  async function clusterInChild(): Promise<{ child: ChildProcessWithoutNullStreams; cluster: { pid: number; dir: string } }> {
    const support = fileURLToPath(new URL("./postgres.ts", import.meta.url));
    const script = [
      `import { startPostgres } from ${JSON.stringify(support)};`,
      "const db = await startPostgres();",
      "console.log(JSON.stringify(db.cluster));",
      'process.stdin.on("data", () => process.exit(0));',
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: "pipe" });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.once("exit", (code) => reject(new Error(`the test process exited early with ${code}: ${err}`)));
    });
    const cluster = JSON.parse(line) as { pid: number; dir: string };
    expect(processState(cluster.pid)).toMatch(/^[RS]$/);
    return { child, cluster };
  }

  // Orphaned, the postmaster exits; what may remain is a zombie where PID 1 does not reap (containers).
  const serverGone = (pid: number): Promise<void> =>
    expect.poll(() => processState(pid) ?? "gone", { timeout: 10_000 }).toMatch(/^(gone|Z)$/);

  it.skipIf(!existsSync("/proc"))("takes the server and its directory down with a test process that exits before stop()", async () => {
    const { child, cluster } = await clusterInChild();
    try {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin.write("exit\n");
      expect(await exited).toBe(0);
      await serverGone(cluster.pid);
      expect(existsSync(cluster.dir)).toBe(false);
    } finally {
      child.kill("SIGKILL");
      rmSync(cluster.dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!existsSync("/proc") || spawnSync("sh", ["-c", "command -v setpriv"]).status !== 0)(
    "takes the server down with a test process killed before stop()",
    async () => {
      const { child, cluster } = await clusterInChild();
      try {
        child.kill("SIGKILL");
        await serverGone(cluster.pid);
      } finally {
        // Nothing was left to remove it.
        rmSync(cluster.dir, { recursive: true, force: true });
      }
    },
  );
});

describe("TEST_DATABASE_URL", () => {
  afterEach(restoreUrl);

  it("gives each call a fresh database in that server and drops it on stop()", async (ctx) => {
    requirePostgres(ctx);
    // Without an outer TEST_DATABASE_URL, a throwaway cluster plays the external server.
    const serverUrl = external && outerUrl !== undefined ? outerUrl : (await database()).url;
    process.env.TEST_DATABASE_URL = serverUrl;

    const a = await startPostgres();
    const b = await startPostgres();
    try {
      expect(a.cluster).toBeUndefined();
      expect(new URL(a.url).host).toBe(new URL(serverUrl).host);
      expect(a.name).not.toBe(b.name);
      expect(await rows(a.url, "SELECT current_database();")).toEqual([a.name]);
      await psql(a.url, "CREATE TABLE only_in_a (v int);");
      expect(await rows(b.url, "SELECT to_regclass('only_in_a') IS NULL;")).toEqual(["t"]);
    } finally {
      await a.stop();
      await b.stop();
    }
    const left = `SELECT count(*) FROM pg_database WHERE datname IN ('${a.name}', '${b.name}');`;
    expect(await rows(serverUrl, left)).toEqual(["0"]);
  });

  it("names what is wrong with a URL that is not PostgreSQL's", () => {
    process.env.TEST_DATABASE_URL = "mysql://localhost/test";
    expect(missingPostgres()).toMatch(/not a postgresql:\/\/ URL/);
  });
});
