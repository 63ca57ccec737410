import path from "node:path";
import type { Logger } from "pino";
import type { Work } from "../protocol/listener-protocol.js";
import { UnauthorizedError, type ControlPlaneClient } from "./control-plane-client.js";
import { secretsOf, type DatabaseBackend } from "./database/database-backend.js";
import { backoffDelay } from "../backoff.js";
import { createJobRunner } from "./job-runner.js";
import { handleRevisionWork } from "./handle-revision-work.js";
import { handleTeardownWork } from "./handle-teardown-work.js";
import { killOrphanedBuilds } from "./kill-orphaned-builds.js";
import { buildEnvironment } from "./build/build-environment.js";
import { createInstanceSupervisor } from "./instances/create-instance-supervisor.js";
import { createRouter } from "./instances/create-router.js";
import { revisionHost } from "./instances/revision-host.js";
import { stableListenerId } from "./stable-listener-id.js";
import { DEFAULT_POOL } from "../store/model.js";
import { resolveSandbox } from "./sandbox/resolve-sandbox.js";
import type { SandboxPolicy, SandboxReport } from "./sandbox/sandbox.js";

export interface ListenerOptions {
  client: ControlPlaneClient;
  database: DatabaseBackend;
  /** SLIPWAY_ROUTER_PORT and SLIPWAY_ROUTER_DOMAIN: where instances answer. */
  routerPort: number;
  routerDomain: string;
  /** SLIPWAY_ROUTER_HOST: the interface the router listens on (default 127.0.0.1). */
  routerHost?: string;
  /** Passed to the provisioning job, which builds its own backend in its worker. */
  adminDatabaseUrl?: string;
  /** Work folders and embedded databases live here. */
  dataDir: string;
  maxConcurrentBuilds: number;
  /** `SLIPWAY_KEEP_BUILDS` (default 5): deployed builds kept per non-preview environment, for rollbacks. */
  keepBuilds?: number;
  log: Logger;
  /** Default: an id kept in the data folder, so a restarted listener is recognised. */
  listenerId?: string;
  /** Put before the kept id (the embedded listener's `embedded-`). */
  listenerIdPrefix?: string;
  heartbeatIntervalMs?: number;
  leaseWaitSeconds?: number;
  /** `SLIPWAY_SANDBOX` (default `auto`); `bubblewrap` without a working bubblewrap makes the start fail. */
  sandbox?: SandboxPolicy;
  /** `SLIPWAY_LISTENER_POOL` (default `default`): environments with `pool:` in their config go to listeners of that pool only. */
  pool?: string;
}

export interface Listener {
  readonly id: string;
  /** What this listener runs builds and instances in. */
  readonly sandbox: SandboxReport;
  /** Stops leasing, waits for running work (up to `graceMs`), then cancels what is left. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * The data-plane listener: pulls work from the control plane (long-polling), at most
 * `maxConcurrentBuilds` at once. A revision's database setup and build are jobs (Bree job
 * runs in worker threads); its instances run under the instance supervisor, behind the router.
 */
export async function startListener(options: ListenerOptions): Promise<Listener> {
  const id = options.listenerId ?? (await stableListenerId({ dataDir: options.dataDir, prefix: options.listenerIdPrefix }));
  const log = options.log.child({ component: "listener", listener: id });
  const sandbox = await resolveSandbox({ policy: options.sandbox ?? "auto", dataDir: options.dataDir, log });
  const sandboxReport: SandboxReport = { kind: sandbox.kind, policy: sandbox.policy };
  const jobs = createJobRunner({ log });
  const router = await createRouter({ port: options.routerPort, listenHost: options.routerHost, domain: options.routerDomain, log });
  const instances = createInstanceSupervisor({
    dataDir: options.dataDir,
    sandbox,
    log,
    router,
    onCrashLoop(_deploymentId, revisionId, tail) {
      options.client
        .crashed({ listenerId: id, revisionId, message: `It kept crashing and was stopped. Last output: ${tail.slice(-300)}` })
        .catch((error: unknown) => log.warn({ err: { message: (error as Error).message } }, "could not report a crash loop"));
    },
  });
  /** The work in progress, by lease. */
  const inProgress = new Map<string, Promise<unknown>>();
  // The folder keeps the name `runs/` of the data layout (docs/architecture.md).
  const buildMarkersDir = path.join(options.dataDir, "runs");
  const stopping = new AbortController();
  let slotFreed: (() => void) | undefined;

  const grace = new AbortController();

  const pool = options.pool ?? DEFAULT_POOL;

  async function loop() {
    await killOrphanedBuilds({ buildMarkersDir, log });
    let failures = 0;
    let joined = false;
    let restoring: Promise<void> | undefined;
    while (!stopping.signal.aborted) {
      if (inProgress.size >= options.maxConcurrentBuilds) {
        await new Promise<void>((resolve) => (slotFreed = resolve));
        continue;
      }
      let work: Work | undefined;
      try {
        if (!joined) {
          await options.client.join({ listenerId: id, pool });
          // Once joined (the first time only): what this listener ran before it stopped runs again.
          if (!restoring) restoring = restoreInstances();
          joined = true;
        }
        work = await options.client.lease(
          { listenerId: id, pool, waitSeconds: options.leaseWaitSeconds ?? 20, sandbox: sandboxReport },
          stopping.signal,
        );
        failures = 0;
      } catch (error) {
        if (stopping.signal.aborted) break;
        failures += 1;
        const delay = backoffDelay(failures, { baseMs: 1_000, maxMs: 30_000 });
        const message = (error as Error).message;
        if (error instanceof UnauthorizedError) {
          log.error({ retryInMs: delay }, message);
          joined = false; // a credential the control plane no longer knows is dropped: join again
        } else log.warn({ err: { message }, retryInMs: delay }, "could not reach the control plane; will retry");
        await new Promise((resolve) => setTimeout(resolve, delay));
        continue;
      }
      if (!work) continue;
      // Three heartbeats per lease period, so one lost request does not lose the lease.
      const heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.min(3_000, (work.leaseTtlSeconds * 1000) / 3);
      const task =
        work.kind === "teardown"
          ? handleTeardownWork(work, { client: options.client, database: options.database, instances, adminDatabaseUrl: options.adminDatabaseUrl, dataDir: options.dataDir, heartbeatIntervalMs, log })
          : handleRevisionWork(work, {
              client: options.client,
              jobs,
              database: options.database,
              instances,
              routerDomain: options.routerDomain,
              provisioning: { adminUrl: options.adminDatabaseUrl, dataDir: options.dataDir },
              workRoot: path.join(options.dataDir, "work"),
              dataDir: options.dataDir,
              sandbox,
              buildMarkersDir,
              stopping: grace.signal,
              heartbeatIntervalMs,
              keepBuilds: options.keepBuilds,
              log,
            });
      const handled = task
        .catch((error: unknown) => log.error({ err: error, lease: work.leaseId }, "work failed unexpectedly"))
        .finally(() => {
          inProgress.delete(work.leaseId);
          slotFreed?.();
        });
      inProgress.set(work.leaseId, handled);
    }
  }

  /** After a restart: start again the instances of the revisions this listener was serving. */
  async function restoreInstances() {
    for (let attempt = 1; !stopping.signal.aborted; attempt++) {
      try {
        const serving = await options.client.running();
        const specs = [];
        for (const item of serving) {
          const identity = { installationId: item.deployment.installationId, repository: item.deployment.repository, environment: item.deployment.environment };
          const databaseUrl = item.databaseUrl ? await options.database.connect(identity, item.databaseUrl) : "";
          specs.push({
            deploymentId: item.deployment.id,
            host: revisionHost({ environment: item.deployment.environment, repository: item.deployment.repository, domain: options.routerDomain }),
            revisionId: item.revision.id,
            // A restart with new settings runs the build of the revision it restarted.
            cwd: path.join(options.dataDir, "work", item.deployment.id, item.revision.buildOf ?? item.revision.id, "source"),
            subDir: item.build.root,
            command: item.run.command,
            env: buildEnvironment({
              configEnv: item.build.env,
              databaseUrl,
              sha: item.revision.sha,
              ref: item.revision.ref,
              environment: item.deployment.environment,
              revisionId: item.revision.id,
              runMarker: `slipway-run-${item.revision.id}`,
              settings: item.settings,
            }),
            healthcheck: item.run.healthcheck,
            timeoutMs: item.run.timeoutSeconds * 1000,
            memoryLimitMb: item.run.memoryMb,
            // The crash-loop report carries the output tail: the password must not be in it.
            secrets: [...secretsOf(databaseUrl), ...(item.databaseUrl ? secretsOf(item.databaseUrl) : []), ...Object.values(item.settings?.secrets ?? {})],
          });
        }
        if (specs.length === 0) return;
        const results = await instances.restore(specs);
        log.info({ restored: results.filter((r) => r.result.ok).length, of: results.length }, "running revisions started again");
        return;
      } catch (error) {
        const delay = backoffDelay(attempt, { baseMs: 2_000, maxMs: 30_000 });
        log.warn({ err: { message: (error as Error).message }, retryInMs: delay }, "could not restore running revisions; will retry");
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  const looping = loop();
  log.info({ maxConcurrentBuilds: options.maxConcurrentBuilds, pool }, "listener started");

  return {
    id,
    sandbox: sandboxReport,
    async stop(graceMs = 30_000) {
      stopping.abort();
      slotFreed?.();
      await looping;
      const all = Promise.allSettled([...inProgress.values()]);
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
      if (timedOut) {
        // Hand the work back: another listener (or this one, restarted) builds it again.
        log.warn({ running: inProgress.size }, "grace period over: stopping running work and handing it back");
        grace.abort();
        await all;
      }
      await jobs.stop();
      await instances.close();
      await router.close();
    },
  };
}
