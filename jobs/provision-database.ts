/**
 * Bree job: set up a deployment's database in a worker thread (first revision only).
 * Idempotent: a database an interrupted attempt created is adopted, not made twice.
 * Answers `cancel` at once: the running statement is cancelled on the server and what this
 * setup had made is dropped, so the deployment's database is either whole or not there.
 */
import { parentPort, workerData } from "node:worker_threads";
import pino from "pino";
import { createDatabaseBackend } from "../src/listener/database/database-backend.js";
import { describeDatabaseError, publicDatabaseError } from "../src/listener/database/describe-database-error.js";
import type { ProvisionJobData, ProvisionJobMessage, ProvisionJobResult } from "../src/listener/job-messages.js";

const data = workerData as ProvisionJobData;
const log = pino({ level: process.env.LOG_LEVEL ?? "info" }).child({ component: "provision-database" });
const post = (message: ProvisionJobMessage) => parentPort?.postMessage(message);

const cancel = new AbortController();
const onMessage = (message: unknown) => {
  if (message === "cancel") cancel.abort();
};
parentPort?.on("message", onMessage);

async function provision(): Promise<ProvisionJobResult> {
  // The listener always passes an admin URL: SLIPWAY_DATABASE_URL's, or its embedded server's.
  const backend = data.adminUrl ? createDatabaseBackend({ adminUrl: data.adminUrl, dataDir: data.dataDir, log }) : undefined;
  try {
    if (!backend) throw new Error("the listener gave the database setup job no admin URL");
    const database = await backend.provision(data.identity, { signal: cancel.signal });
    return { ok: true, database: { name: database.name, url: database.url, created: database.created } };
  } catch (error) {
    // Not a failure: the listener reports the revision as cancelled.
    if (cancel.signal.aborted) return { ok: false, error: "Cancelled during database setup", infrastructureFault: false };
    // `error` is what GitHub shows (check runs and pull request comments are public on public
    // repositories): the class of failure only. `detail` names the server, port and admin user
    // (never a password) and goes only to the listener's log (see handle-revision-work).
    const failure = {
      ok: false as const,
      error: publicDatabaseError(error, { adminUrl: data.adminUrl }),
      infrastructureFault: true,
      detail: describeDatabaseError(error, data.adminUrl),
    };
    return failure;
  } finally {
    await backend?.close().catch(() => undefined);
  }
}

void provision().then((result) => {
  parentPort?.off("message", onMessage);
  post({ type: "result", result });
  parentPort?.postMessage("done");
});
