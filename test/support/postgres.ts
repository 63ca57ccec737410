/**
 * Real PostgreSQL servers for tests. Nothing here skips: a test that needs PostgreSQL
 * and cannot reach it fails, saying how to start it.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import pino from "pino";
import { startEmbeddedPostgres } from "../../src/listener/database/embedded-postgres-server.js";

const run = promisify(execFile);

/**
 * Admin URL of the test server: `SLIPWAY_TEST_DATABASE_URL`, or else the embedded PostgreSQL
 * server vitest's global setup (test/support/postgres-global-setup.ts) started for the run.
 */
export const testDatabaseUrl =
  process.env.SLIPWAY_TEST_DATABASE_URL ?? process.env.SLIPWAY_TEST_EMBEDDED_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const START_HINT =
  "these tests use the embedded PostgreSQL server vitest's global setup starts (run them through vitest), " +
  "or set SLIPWAY_TEST_DATABASE_URL to a server whose user may create databases and roles";

/** A connected admin client on the test server; throws (never skips) when it is not reachable. */
export async function connectAdmin(url = testDatabaseUrl): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new Error(`cannot reach the test PostgreSQL server (${(error as Error).message}). ${START_HINT}`);
  }
  return client;
}

export async function withAdmin<T>(work: (client: pg.Client) => Promise<T>, url = testDatabaseUrl): Promise<T> {
  const client = await connectAdmin(url);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops every database and role whose name starts with `<prefix>_` (what a test made). */
export async function dropTestDatabases(prefix: string, url = testDatabaseUrl): Promise<void> {
  if (!/^[a-z][a-z0-9]*test[a-z0-9]*$/.test(prefix)) throw new Error(`refusing to clean up prefix ${prefix}: not a test prefix`);
  await withAdmin(async (client) => {
    const pattern = `${prefix}\\_%`;
    const databases = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [pattern]);
    for (const { datname } of databases.rows) {
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
    }
    const roles = await client.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", [pattern]);
    for (const { rolname } of roles.rows) {
      await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [rolname]);
      await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(rolname)}`);
    }
  }, url);
}

/**
 * The file the test server logs to: `pg_current_logfile()` when its logging collector
 * runs, otherwise the file `pg_lsclusters` names for its port (Debian's stderr log).
 */
export async function serverLogFile(client: pg.Client): Promise<string> {
  const current = (await client.query<{ file: string | null }>("SELECT pg_current_logfile() AS file")).rows[0]?.file;
  if (current) {
    const dataDir = (await client.query<{ data_directory: string }>("SHOW data_directory")).rows[0]?.data_directory ?? "";
    return path.isAbsolute(current) ? current : path.join(dataDir, current);
  }
  const port = (await client.query<{ port: string }>("SHOW port")).rows[0]?.port;
  const { stdout } = await run("pg_lsclusters", ["--no-header"]);
  for (const line of stdout.split("\n")) {
    const fields = line.trim().split(/\s+/);
    // Ver Cluster Port Status Owner Data-directory Log-file
    if (fields[2] === port && fields[6]) return fields[6];
  }
  throw new Error(`cannot find the log file of the PostgreSQL server on port ${port}`);
}

export interface ScratchPostgres {
  /** Admin URL with the admin's password. */
  url: string;
  port: number;
  /** The folder of its unix socket. */
  socketDir: string;
  adminUser: string;
  adminPassword: string;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A throwaway embedded PostgreSQL server (the same binaries and code the listener uses),
 * with SCRAM password authentication on loopback, a unix socket and every statement
 * logged, for what a shared server cannot show: that generated passwords really log in,
 * that wrong ones are refused, and what the server's log holds. A few seconds to start.
 */
export async function startScratchPostgres(): Promise<ScratchPostgres> {
  const dir = await mkdtemp(path.join(tmpdir(), "slipway-scratch-pg-"));
  const server = await startEmbeddedPostgres({
    dataDir: dir,
    log: pino({ level: "silent" }),
    socketDir: dir,
    adminUser: "admin",
    // A stand-in for an operator's server: PostgreSQL's defaults, which Slipway only warns about.
    closePublicConnect: false,
    settings: ["fsync=off", "log_statement=all", "log_filename=server.log"],
  });
  const admin = new URL(server.adminUrl);
  return {
    url: server.adminUrl,
    port: server.port,
    socketDir: dir,
    adminUser: decodeURIComponent(admin.username),
    adminPassword: decodeURIComponent(admin.password),
    logFile: path.join(server.clusterDir, "log", "server.log"),
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
