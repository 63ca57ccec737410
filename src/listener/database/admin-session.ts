import pg from "pg";
import type { Logger } from "pino";
import { classifyDatabaseError, DatabaseSetupError, describeDatabaseError } from "./describe-database-error.js";
import { deploymentIdentityHash, type DeploymentIdentity } from "./deployment-database-name.js";

/** A statement on the admin connection. */
export type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

export interface AdminSession {
  /** Refuses to start once the setup is cancelled; a statement running then is interrupted. */
  query: Query;
  /**
   * What puts back what the work changed, should a cancel interrupt it: run on the same
   * connection, still under the lock, once no statement of the work runs any more.
   */
  afterCancel(undo: (query: Query) => Promise<unknown>): void;
}

export interface AdminSessionOptions {
  adminUrl: string;
  identity: DeploymentIdentity;
  connectTimeoutMs: number;
  /** How long to wait for another session of the same deployment. */
  lockTimeoutMs: number;
  log: Logger;
  /** Cancels the work: the connect is given up, a running statement cancelled (`pg_cancel_backend`). */
  signal?: AbortSignal | undefined;
}

/** How often a cancel is sent again while the statement it was meant for still runs. */
const CANCEL_AGAIN_MS = 250;
/**
 * How soon the server ends a session whose client went away while a statement runs (a
 * worker terminated mid-setup): without it, a session waiting on a lock would hold the
 * deployment's advisory lock until that lock came free (PostgreSQL 14+, Linux servers).
 */
const CLIENT_CHECK_INTERVAL_MS = 1_000;

/** The advisory lock every change to one deployment's database and role runs under. */
export function deploymentLockKey(identity: DeploymentIdentity): string {
  return BigInt.asIntN(64, BigInt(`0x${deploymentIdentityHash(identity).slice(0, 16)}`)).toString();
}

/** Why a cancelled setup stopped: the error a cancelled {@link withAdminSession} throws. */
export function setupCancelled(): DatabaseSetupError {
  return new DatabaseSetupError("the database setup was cancelled", { reason: "cancelled" });
}

/**
 * Runs `work` on an admin connection of its own, under the deployment's advisory lock, so
 * setups and teardowns of one deployment never overlap. With `signal`, a cancel stops it
 * promptly: a connect in progress is given up, the running statement is cancelled on the
 * server (a wait on a lock included) and no further one starts; what the work registered
 * with `afterCancel` then runs before the lock is let go, and this throws
 * {@link setupCancelled}. Other failures are thrown classified ({@link classifyDatabaseError}).
 */
export async function withAdminSession<T>(options: AdminSessionOptions, work: (session: AdminSession) => Promise<T>): Promise<T> {
  const { adminUrl, signal, log } = options;
  if (signal?.aborted) throw setupCancelled();
  const client = await connect(options);
  /** The work's statement in progress, if any. */
  let running: Promise<unknown> | undefined;
  /** Cancels sent for a cancel request (see interruptRunning); nothing else runs on the connection until they are done. */
  let interrupting: Promise<void> | undefined;
  let undo: ((query: Query) => Promise<unknown>) | undefined;
  let pid = 0;
  const plain: Query = (text, values) => client.query(text, values);
  const session: AdminSession = {
    query<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
      if (signal?.aborted) return Promise.reject(setupCancelled());
      const statement = plain<R>(text, values);
      running = statement;
      const done = () => {
        if (running === statement) running = undefined;
      };
      statement.then(done, done);
      return statement;
    },
    afterCancel(work) {
      undo = work;
    },
  };
  const interrupt = () => {
    interrupting = interruptRunning();
  };
  async function interruptRunning(): Promise<void> {
    if (!running || !pid) return;
    let canceller: pg.Client | undefined;
    try {
      canceller = await openClient(options);
      while (running) {
        const statement = running;
        await canceller.query("SELECT pg_cancel_backend($1)", [pid]);
        // A cancel that reaches the session before it reads the statement is dropped: send it again.
        await settledOrAfter(statement, CANCEL_AGAIN_MS);
      }
    } catch (error) {
      log.warn({ err: { message: describeDatabaseError(error, adminUrl) } }, "could not cancel the running database statement");
    } finally {
      await canceller?.end().catch(() => undefined);
    }
  }
  signal?.addEventListener("abort", interrupt, { once: true });
  const lockKey = deploymentLockKey(options.identity);
  try {
    pid = (await session.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid ?? 0;
    await session.query(`SET lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs))}`);
    await session.query(`SET client_connection_check_interval = ${CLIENT_CHECK_INTERVAL_MS}`).catch((error: unknown) => {
      if (signal?.aborted) throw error;
      // An older server, or one on a platform without the check: the session goes on without it.
    });
    await session.query("SELECT pg_advisory_lock($1::bigint)", [lockKey]);
    try {
      return await work(session);
    } catch (error) {
      if (signal?.aborted) {
        await interrupting;
        // A transaction the cancel cut short (PostgreSQL only warns when there is none).
        await plain("ROLLBACK").catch(() => undefined);
        await undo?.(plain).catch((failure: unknown) =>
          log.warn(
            { err: { message: describeDatabaseError(failure, adminUrl) } },
            "could not undo a cancelled database setup; the next setup of this deployment adopts what it left",
          ),
        );
      }
      throw error;
    } finally {
      await interrupting;
      await plain("SELECT pg_advisory_unlock($1::bigint)", [lockKey]).catch(() => undefined);
    }
  } catch (error) {
    throw signal?.aborted ? setupCancelled() : classifyDatabaseError(error, adminUrl);
  } finally {
    signal?.removeEventListener("abort", interrupt);
    await interrupting;
    await client.end().catch(() => undefined);
  }
}

function openClient(options: AdminSessionOptions): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: options.adminUrl, connectionTimeoutMillis: options.connectTimeoutMs, application_name: "slipway" });
  // A dropped connection is reported by the query that needed it; do not crash on the event.
  client.on("error", (error) => options.log.debug({ code: (error as { code?: string }).code }, "admin connection lost"));
  return client.connect().then(
    () => client,
    async (error: unknown) => {
      await client.end().catch(() => undefined);
      throw error;
    },
  );
}

/** The admin connection; a cancel gives up waiting for it (pg cannot abort a connect: it ends in the background). */
async function connect(options: AdminSessionOptions): Promise<pg.Client> {
  const { signal } = options;
  let connecting: Promise<pg.Client>;
  try {
    connecting = openClient(options);
  } catch (error) {
    throw classifyDatabaseError(error, options.adminUrl);
  }
  let onAbort: (() => void) | undefined;
  const cancelled = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(setupCancelled());
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([connecting, cancelled]);
  } catch (error) {
    if (!signal?.aborted) throw classifyDatabaseError(error, options.adminUrl);
    void connecting.then((client) => client.end()).catch(() => undefined);
    throw setupCancelled();
  } finally {
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/** Resolves once `promise` has settled, or after `ms`, whichever is first. */
async function settledOrAfter(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
