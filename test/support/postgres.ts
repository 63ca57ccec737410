/**
 * Real PostgreSQL servers for tests. Nothing here skips: a test that needs PostgreSQL
 * and cannot reach it fails, saying how to start it.
 */
import { execFile } from "node:child_process";
import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/** Admin URL of the test server: `SLIPWAY_TEST_DATABASE_URL`, or the local cluster with trust auth on loopback. */
export const testDatabaseUrl = process.env.SLIPWAY_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const START_HINT =
  "PostgreSQL must run for these tests: start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, " +
  "or point SLIPWAY_TEST_DATABASE_URL at a server whose user may create databases and roles";

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
 * A throwaway PostgreSQL cluster from the installed binaries, with SCRAM password
 * authentication on loopback, for what a trust-auth server cannot show: that generated
 * passwords really log in and that wrong ones are refused. About a second to start.
 */
export async function startScratchPostgres(): Promise<ScratchPostgres> {
  const bindir = (await run("pg_config", ["--bindir"])).stdout.trim();
  const asRoot = process.getuid?.() === 0;
  const exec = (file: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", path.join(bindir, file), ...args]) : run(path.join(bindir, file), args);
  const dir = await mkdtemp(path.join(tmpdir(), "slipway-scratch-pg-"));
  const adminUser = "admin";
  const adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  const passwordFile = path.join(dir, "pwfile");
  await writeFile(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const uid = Number(stdout.trim());
    await chown(dir, uid, -1);
    await chown(passwordFile, uid, -1);
  }
  await chmod(dir, 0o700);
  const dataDir = path.join(dir, "data");
  const logFile = path.join(dir, "server.log");
  await exec("initdb", ["-D", dataDir, "-U", adminUser, `--pwfile=${passwordFile}`, "--auth=scram-sha-256", "-N", "-E", "UTF8"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c log_statement=all`;
  await exec("pg_ctl", ["-D", dataDir, "-o", options, "-l", logFile, "-w", "-t", "30", "start"]);
  return {
    url: `postgresql://${adminUser}:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/postgres`,
    port,
    socketDir: dir,
    adminUser,
    adminPassword,
    logFile,
    async stop() {
      await exec("pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
