import { readFileSync } from "node:fs";
import { chmod, cp, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import path from "node:path";
import { threadId } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "pino";
import type { DatabaseBackend, ProvisionedDatabase } from "./database-backend.js";
import { deriveDatabasePassword } from "./derive-database-password.js";
import { DatabaseSetupError } from "./describe-database-error.js";
import { deploymentDatabaseName, deploymentIdentityHash, type DeploymentIdentity } from "./deployment-database-name.js";
import { isProcessAlive, withFileLock } from "./file-lock.js";
import { servePglite, type PgliteWireServer } from "./pglite-wire-server.js";

export interface CreateEmbeddedDatabaseBackendOptions {
  /** Databases live in `<dataDir>/databases/<name>/`. */
  dataDir: string;
  log: Logger;
  namePrefix?: string | undefined;
  /** PostgreSQL's shared_buffers for each served database; default "16MB" (PGlite's own is 128MB). */
  sharedBuffers?: string;
}

/** What `<dataDir>/databases/<name>/deployment.json` says: written last, so it marks a finished setup. */
interface DeploymentRecord {
  identityHash: string;
  /** The loopback port this database is served on, kept across restarts so its URL stays the same. */
  port: number;
  createdAt: string;
}

/** `serving.json`: who serves the database now. */
interface ServingMark {
  pid: number;
  threadId: number;
}

interface Served {
  db: PGlite;
  server: PgliteWireServer;
  url: string;
}

/** Folders served in this thread, by any backend instance: one PGlite per data folder, ever. */
const servedInThisThread = new Set<string>();

const RECORD_FILE = "deployment.json";
const SERVING_FILE = "serving.json";
const HOST = "127.0.0.1";

/**
 * An embedded PostgreSQL per deployment, no server needed: PGlite (PostgreSQL compiled
 * to WebAssembly) persisted in `<dataDir>/databases/<name>/pgdata`, served to builds and
 * running revisions over the PostgreSQL wire protocol on loopback, password required.
 *
 * - `provision` copies a template data folder (made by initdb once per data folder and
 *   PGlite version) and records the deployment; it opens nothing long-lived, so a worker
 *   thread can run it.
 * - `connect` opens the database and serves it on the port recorded for it, so its URL
 *   survives restarts; only if another process took that port meanwhile does it move
 *   (and `connect` returns the new URL).
 * - every step that touches a deployment's folder holds `<name>.lock`, so threads and
 *   processes sharing the data folder take turns.
 */
export function createEmbeddedDatabaseBackend(options: CreateEmbeddedDatabaseBackendOptions): DatabaseBackend {
  const { log } = options;
  const root = path.join(options.dataDir, "databases");
  const startParams = [...PGlite.defaultStartParams, "-c", `shared_buffers=${options.sharedBuffers ?? "16MB"}`];
  const served = new Map<string, Promise<Served>>();

  const folderOf = (name: string) => path.join(root, name);
  /** Data files are for Slipway's user only, as PostgreSQL requires of its own. */
  const ensureRoot = async () => {
    await mkdir(root, { recursive: true, mode: 0o700 });
    await chmod(root, 0o700);
  };
  const lockOf = (name: string) => path.join(root, `${name}.lock`);

  async function ensureTemplate(): Promise<string> {
    const templateDir = path.join(root, ".template");
    const pgdata = path.join(templateDir, "pgdata");
    const stampFile = path.join(templateDir, "stamp");
    const stamp = `pglite ${pgliteVersion()}`;
    return withFileLock(path.join(root, ".template.lock"), async () => {
      if ((await readText(stampFile)) === stamp) return pgdata;
      const started = performance.now();
      await rm(templateDir, { recursive: true, force: true });
      await mkdir(templateDir, { recursive: true });
      const db = await PGlite.create({ dataDir: `${pgdata}.tmp`, startParams });
      await db.close();
      await rename(`${pgdata}.tmp`, pgdata);
      await writeFile(stampFile, stamp);
      log.info({ ms: Math.round(performance.now() - started) }, "embedded database template initialised");
      return pgdata;
    });
  }

  async function startServing(identity: DeploymentIdentity, name: string): Promise<Served> {
    const started = performance.now();
    const folder = folderOf(name);
    const password = await deriveDatabasePassword({ dataDir: options.dataDir, identity });
    return withFileLock(lockOf(name), async () => {
      const record = await readRecord(folder);
      if (!record) {
        throw new DatabaseSetupError(`the embedded database "${name}" is not set up yet (its setup must run first)`, { reason: "other" });
      }
      assertOurs(record, identity, name);
      await assertNotServedElsewhere(folder, name);
      const db = await PGlite.create({ dataDir: path.join(folder, "pgdata"), startParams });
      let server: PgliteWireServer | undefined;
      try {
        try {
          server = await servePglite({ db, host: HOST, port: record.port, password, log: log.child({ database: name }) });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
          server = await servePglite({ db, host: HOST, port: 0, password, log: log.child({ database: name }) });
          log.warn({ database: name, was: record.port, now: server.port }, "embedded database port was taken; serving it on another");
          await writeJson(path.join(folder, RECORD_FILE), { ...record, port: server.port });
        }
        await writeJson(path.join(folder, SERVING_FILE), { pid: process.pid, threadId } satisfies ServingMark);
        servedInThisThread.add(folder);
        log.info(
          { database: name, port: server.port, ms: Math.round(performance.now() - started) },
          "embedded database served",
        );
        return { db, server, url: embeddedUrl(server.port, password) };
      } catch (error) {
        await server?.stop().catch(() => undefined);
        await db.close().catch(() => undefined);
        throw error;
      }
    });
  }

  async function stopServing(name: string): Promise<void> {
    const entry = served.get(name);
    if (!entry) return;
    served.delete(name);
    const running = await entry.catch(() => undefined);
    if (!running) return;
    await running.server.stop();
    await running.db.close();
    await rm(path.join(folderOf(name), SERVING_FILE), { force: true });
    servedInThisThread.delete(folderOf(name));
  }

  return {
    kind: "embedded",

    async provision(identity) {
      const name = deploymentDatabaseName(identity, options.namePrefix);
      const folder = folderOf(name);
      const password = await deriveDatabasePassword({ dataDir: options.dataDir, identity });
      await ensureRoot();
      const started = performance.now();
      const { created, port } = await withFileLock(lockOf(name), async () => {
        const record = await readRecord(folder);
        if (record) {
          assertOurs(record, identity, name);
          return { created: false, port: record.port };
        }
        // No record: nothing, or the leftovers of an interrupted setup. Start over.
        await rm(folder, { recursive: true, force: true });
        await mkdir(folder, { recursive: true });
        const template = await ensureTemplate();
        await cp(template, path.join(folder, "pgdata.tmp"), { recursive: true });
        await rename(path.join(folder, "pgdata.tmp"), path.join(folder, "pgdata"));
        const fresh: DeploymentRecord = {
          identityHash: deploymentIdentityHash(identity),
          port: await freeLoopbackPort(),
          createdAt: new Date().toISOString(),
        };
        await writeJson(path.join(folder, RECORD_FILE), fresh);
        return { created: true, port: fresh.port };
      });
      log.info(
        { database: name, created, ms: Math.round(performance.now() - started) },
        created ? "embedded database created" : "embedded database adopted",
      );
      return { url: embeddedUrl(port, password), created, name } satisfies ProvisionedDatabase;
    },

    async connect(identity) {
      const name = deploymentDatabaseName(identity, options.namePrefix);
      let entry = served.get(name);
      if (!entry) {
        entry = startServing(identity, name);
        served.set(name, entry);
        entry.catch(() => {
          if (served.get(name) === entry) served.delete(name);
        });
      }
      return (await entry).url;
    },

    async drop(identity) {
      const name = deploymentDatabaseName(identity, options.namePrefix);
      const folder = folderOf(name);
      if (served.has(name)) await stopServing(name);
      else await assertNotServedElsewhere(folder, name);
      await ensureRoot();
      await withFileLock(lockOf(name), async () => {
        const record = await readRecord(folder);
        if (record) assertOurs(record, identity, name);
        await rm(folder, { recursive: true, force: true });
      });
      log.info({ database: name }, "embedded database dropped");
    },

    async close() {
      await Promise.all([...served.keys()].map((name) => stopServing(name)));
    },
  };
}

/**
 * Two PGlite instances on one data folder would corrupt it, and deleting a served folder
 * would pull it from under one. Refused when it is served by another backend instance of
 * this thread, by this process's main thread (asked from a worker thread), or by another
 * live process. A mark this process left but no thread of it holds is stale: the listener
 * serves on its main thread, and a restarted container may well get the same pid again.
 */
async function assertNotServedElsewhere(folder: string, name: string): Promise<void> {
  const mark = await readJson<Partial<ServingMark>>(path.join(folder, SERVING_FILE));
  const pid = mark?.pid;
  const byOtherProcess = typeof pid === "number" && pid !== process.pid && isProcessAlive(pid);
  const byOurMainThread = pid === process.pid && mark?.threadId === 0 && threadId !== 0;
  if (servedInThisThread.has(folder) || byOurMainThread || byOtherProcess) {
    throw new DatabaseSetupError(
      `the embedded database "${name}" is already served by ${byOtherProcess ? `process ${pid}` : "another listener in this process"}; use that one`,
      { reason: "busy" },
    );
  }
}

function embeddedUrl(port: number, password: string): string {
  return `postgresql://postgres:${encodeURIComponent(password)}@${HOST}:${port}/postgres`;
}

function assertOurs(record: DeploymentRecord, identity: DeploymentIdentity, name: string): void {
  if (record.identityHash !== deploymentIdentityHash(identity)) {
    throw new DatabaseSetupError(`the embedded database folder "${name}" belongs to another deployment`, { reason: "conflict" });
  }
}

async function readRecord(folder: string): Promise<DeploymentRecord | undefined> {
  const record = await readJson<Partial<DeploymentRecord>>(path.join(folder, RECORD_FILE));
  if (!record || typeof record.identityHash !== "string" || typeof record.port !== "number") return undefined;
  return record as DeploymentRecord;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  const text = await readText(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Written aside and renamed into place, so a crash never leaves half a file. */
async function writeJson(file: string, value: unknown): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

let cachedPgliteVersion: string | undefined;

/** PGlite's package version: a new PGlite (maybe a new PostgreSQL) gets a new template. */
function pgliteVersion(): string {
  if (cachedPgliteVersion) return cachedPgliteVersion;
  try {
    // The package's exports hide its package.json: walk up from its entry point.
    let dir = path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
    for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
      try {
        const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
        if (manifest.name === "@electric-sql/pglite" && manifest.version) return (cachedPgliteVersion = manifest.version);
      } catch {
        // keep walking up
      }
    }
  } catch {
    // fall through
  }
  return (cachedPgliteVersion = "unknown");
}
