import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Logger } from "pino";
import type { Work } from "../protocol/listener-protocol.js";
import { UnauthorizedError, type ControlPlaneClient } from "./control-plane-client.js";
import type { DatabaseBackend } from "./database/database-backend.js";
import { createJobRunner } from "./job-runner.js";
import { runRevisionWork } from "./run-revision-work.js";
import { runTeardownWork } from "./run-teardown-work.js";
import { killOrphanedRuns } from "./kill-orphaned-runs.js";

export interface ListenerOptions {
  client: ControlPlaneClient;
  database: DatabaseBackend;
  /** Passed to the provisioning job, which builds its own backend in its worker. */
  adminDatabaseUrl?: string;
  /** Work folders and embedded databases live here. */
  dataDir: string;
  maxConcurrentBuilds: number;
  log: Logger;
  listenerId?: string;
  heartbeatIntervalMs?: number;
  leaseWaitSeconds?: number;
}

export interface Listener {
  readonly id: string;
  /** Stops leasing, waits for running work (up to `graceMs`), then cancels what is left. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The data-plane listener: pulls work from the control plane (long-polling), at most
 * `maxConcurrentBuilds` at once, and runs each piece as Bree jobs.
 */
export function startListener(options: ListenerOptions): Listener {
  const id = options.listenerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const log = options.log.child({ component: "listener", listener: id });
  const jobs = createJobRunner({ log });
  const running = new Map<string, Promise<unknown>>();
  const runsDir = path.join(options.dataDir, "runs");
  const stopping = new AbortController();
  let slotFreed: (() => void) | undefined;

  const grace = new AbortController();

  async function loop() {
    await killOrphanedRuns({ runsDir, log });
    let failures = 0;
    while (!stopping.signal.aborted) {
      if (running.size >= options.maxConcurrentBuilds) {
        await new Promise<void>((resolve) => (slotFreed = resolve));
        continue;
      }
      let work: Work | undefined;
      try {
        work = await options.client.lease(
          { listenerId: id, waitSeconds: options.leaseWaitSeconds ?? 20 },
          stopping.signal,
        );
        failures = 0;
      } catch (error) {
        if (stopping.signal.aborted) break;
        failures += 1;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
        const message = (error as Error).message;
        if (error instanceof UnauthorizedError) log.error({ retryInMs: delay }, message);
        else log.warn({ err: { message }, retryInMs: delay }, "could not reach the control plane; will retry");
        await new Promise((resolve) => setTimeout(resolve, delay));
        continue;
      }
      if (!work) continue;
      // Three heartbeats per lease period, so one lost request does not lose the lease.
      const heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.min(3_000, (work.leaseTtlSeconds * 1000) / 3);
      const task =
        work.kind === "teardown"
          ? runTeardownWork(work, { client: options.client, database: options.database, adminDatabaseUrl: options.adminDatabaseUrl, heartbeatIntervalMs, log })
          : runRevisionWork(work, {
              client: options.client,
              jobs,
              database: options.database,
              provisioning: { adminUrl: options.adminDatabaseUrl, dataDir: options.dataDir },
              workRoot: path.join(options.dataDir, "work"),
              runsDir,
              stopping: grace.signal,
              heartbeatIntervalMs,
              log,
            });
      const job = task
        .catch((error: unknown) => log.error({ err: error, lease: work.leaseId }, "work failed unexpectedly"))
        .finally(() => {
          running.delete(work.leaseId);
          slotFreed?.();
        });
      running.set(work.leaseId, job);
    }
  }

  const looping = loop();
  log.info({ maxConcurrentBuilds: options.maxConcurrentBuilds }, "listener started");

  return {
    id,
    async stop(graceMs = 30_000) {
      stopping.abort();
      slotFreed?.();
      await looping;
      const all = Promise.allSettled([...running.values()]);
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
      if (timedOut) {
        // Hand the work back: another listener (or this one, restarted) builds it again.
        log.warn({ running: running.size }, "grace period over: stopping running work and handing it back");
        grace.abort();
        await all;
      }
      await jobs.stop();
    },
  };
}
