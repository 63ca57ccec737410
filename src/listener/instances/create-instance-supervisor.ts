import { stat } from "node:fs/promises";
import type { Logger } from "pino";

import type { SandboxConfig } from "../sandbox/sandbox.js";
import { createInstanceLifecycle } from "./create-instance-lifecycle.js";
import type { Router } from "./create-router.js";
import { createSlot, endSlot, outputTail, type Environment, type Slot } from "./instance-slot.js";
import { checkSpec, type DeployOptions, type DeployResult, type InstanceSpec } from "./instance-spec.js";
import { createCrashRestarts } from "./create-crash-restarts.js";

export interface CreateInstanceSupervisorOptions {
  /** `SLIPWAY_DATA_DIR`: the supervisor records its instances in `<dataDir>/run/processes`. */
  dataDir: string;
  log: Logger;
  router: Router;
  /** Crashes tolerated within `crashWindowMs`; the next one leaves the revision stopped (default 5). */
  maxRestarts?: number;
  /** Default 5 minutes. */
  crashWindowMs?: number;
  /** Wait before the first restart, doubled for each further crash in the window (default 1 s). */
  restartBackoffMs?: number;
  /** Default 30 s. */
  maxRestartBackoffMs?: number;
  /** Memory limit per instance, `ulimit -d` (default 1024 MiB; 0 turns it off). */
  memoryLimitMb?: number;
  /** Output passed to `onOutput` per revision (default 10 MiB). */
  maxOutputBytes?: number;
  /** Longest wait for in-flight requests of a replaced revision (default 30 s). */
  drainTimeoutMs?: number;
  /** Pause between the last in-flight request and SIGTERM (default 100 ms). */
  drainGraceMs?: number;
  /** Between SIGTERM and SIGKILL (default 5 s). */
  killGraceMs?: number;
  /** A revision that kept crashing was left stopped; tell the user (deployment status `error`). `outputTail` has the revision's `secrets` masked. */
  onCrashLoop?: (deploymentId: string, revisionId: string, outputTail: string) => void;
  /** Revisions `restore` starts at once (default 4). */
  restoreConcurrency?: number;
  /** What instances run in (default: no sandbox). Each deployment gets its user and its `HOME` (see deploymentHomeDir). */
  sandbox?: SandboxConfig;
}

export interface RevisionStatus {
  deploymentId: string;
  host: string;
  active?: { revisionId: string; state: "serving" | "restarting" | "crashed"; port?: number; crashes: number };
  starting?: { revisionId: string };
}

export interface InstanceSupervisor {
  /**
   * Starts `command` for the revision, waits until it is healthy, switches the host's
   * traffic to it and drains and stops the environment's previous instance. Unhealthy or
   * exited: it is stopped, the previous revision keeps serving, and the result holds the
   * reason and the output tail. A newer `deploy` of the same environment supersedes one
   * that is still starting. Never rejects for the app's faults.
   */
  deploy(options: DeployOptions): Promise<DeployResult>;
  /** Teardown: the environment's instances are stopped and its host answers 404. Idempotent. */
  stop(deploymentId: string): Promise<void>;
  /** After a listener restart: starts each environment's active revision again. */
  restore(entries: readonly InstanceSpec[]): Promise<Array<{ deploymentId: string; revisionId: string; result: DeployResult }>>;
  status(): RevisionStatus[];
  /** Stops every instance (their hosts answer 503 "starting" until the router closes). */
  close(): Promise<void>;
}

/**
 * Runs the instances of every environment on this listener, behind the router: at most
 * one active (serving) and one starting revision per environment, each a supervised
 * instance (a process group). Owned by the listener's main thread.
 *
 * - Deploy: free port → `/bin/sh -c <command>` (own process group, `PORT`, memory limit) →
 *   health check → `router.setTarget` (atomic switch) → previous instance drained
 *   (in-flight HTTP requests finish) → SIGTERM, SIGKILL after `killGraceMs`
 *   (create-instance-lifecycle.ts).
 * - Supervision: an active instance that exits is restarted with exponential backoff (503
 *   with `Retry-After` meanwhile); more than `maxRestarts` crashes within `crashWindowMs`
 *   and it is left stopped (503) and reported through `onCrashLoop`
 *   (restart-crashed-instances.ts).
 * - Instances are recorded in `<dataDir>/run/processes`; a supervisor stops what an earlier,
 *   killed listener left running before it starts anything.
 *
 * @example
 * ```ts
 * const router = await createRouter({ port: settings.routerPort, domain: settings.routerDomain, log });
 * const instances = createInstanceSupervisor({ dataDir, log, router, onCrashLoop: reportCrashLoop });
 * const result = await instances.deploy({
 *   deploymentId, host: revisionHost({ environment, repository, domain }), revisionId,
 *   cwd: path.join(workDir, "source"), command: run.command, healthcheck: run.healthcheck,
 *   env: buildEnvironment({ ... }), secrets: secretsOf(databaseUrl), onOutput: (text) => instanceLog.write(text),
 * });
 * if (result.ok) complete("DEPLOYED", { environmentUrl: result.url });
 * else complete("DEPLOY_FAILED", `${result.error}\n\n${result.outputTail}`);
 * ```
 */
export function createInstanceSupervisor(options: CreateInstanceSupervisorOptions): InstanceSupervisor {
  const { router } = options;
  const log = options.log.child({ component: "instance-supervisor" });
  const limits = { memoryLimitMb: options.memoryLimitMb ?? 1024, maxOutputBytes: options.maxOutputBytes ?? 10 * 1024 * 1024 };

  const lifecycle = createInstanceLifecycle({
    dataDir: options.dataDir,
    sandbox: options.sandbox,
    router,
    log,
    killGraceMs: options.killGraceMs ?? 5_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    drainGraceMs: options.drainGraceMs ?? 100,
    onUnexpectedExit: (slot, instance, exit) => crashRestarts.onUnexpectedExit(slot, instance, exit),
  });
  const crashRestarts = createCrashRestarts({
    router,
    lifecycle,
    maxRestarts: options.maxRestarts ?? 5,
    crashWindowMs: options.crashWindowMs ?? 5 * 60_000,
    restartBackoffMs: options.restartBackoffMs ?? 1_000,
    maxRestartBackoffMs: options.maxRestartBackoffMs ?? 30_000,
    onCrashLoop: options.onCrashLoop,
  });
  const environments = new Map<string, Environment>();
  /** The deployment whose environment answers at `host`, if any. */
  const ownerOf = (host: string) => [...environments.values()].find((env) => env.host === host)?.deploymentId;
  let closed = false;

  const deploy = async (spec: DeployOptions): Promise<DeployResult> => {
    const host = spec.host.toLowerCase();
    const invalid = checkSpec(spec);
    if (invalid) return { ok: false, error: invalid, outputTail: "" };
    if (closed) return { ok: false, error: "the listener is shutting down", outputTail: "" };
    if (!(await isDirectory(spec.cwd))) return { ok: false, error: `the build folder ${spec.cwd} does not exist`, outputTail: "" };
    await lifecycle.ready;
    const owner = ownerOf(host);
    if (owner !== undefined && owner !== spec.deploymentId) {
      return { ok: false, error: `the address ${host} is already used by another deployment (${owner}); rename the environment or repository`, outputTail: "" };
    }
    let env = environments.get(spec.deploymentId);
    if (env && env.host !== host) {
      // Same deployment, new name: the old address stops answering once the new one serves.
      router.setTarget(env.host, undefined);
      env.host = host;
    }
    if (!env) {
      env = { deploymentId: spec.deploymentId, host, retiring: new Set() };
      environments.set(spec.deploymentId, env);
    }

    if (env.starting) endSlot(env.starting, `superseded by revision ${spec.revisionId}`);
    const { signal, ...instanceSpec } = spec;
    const slot = createSlot(env, { ...instanceSpec, host }, limits, log);
    env.starting = slot;
    const onCancel = () => {
      if (slot.state === "starting") endSlot(slot, "cancelled");
    };
    if (signal?.aborted) onCancel();
    signal?.addEventListener("abort", onCancel, { once: true });
    if (env.active?.state !== "serving" && env.active?.state !== "restarting") router.markStarting(host);
    slot.log.info({ host }, "deploying revision");

    const result = await lifecycle.launch(slot);
    signal?.removeEventListener("abort", onCancel);
    if (env.starting === slot) env.starting = undefined;
    const stillOurs = environments.get(spec.deploymentId) === env && slot.state === "starting";
    if (!result.ok) {
      slot.state = "retired";
      if (stillOurs && !env.starting) {
        if (!env.active) router.markDown(host, `The first revision of this environment did not start: ${result.error}`);
        else if (env.active.state === "crashed") router.markDown(host, "This environment's app crashed repeatedly and was stopped; the newest revision did not start either.");
      }
      slot.log.warn({ error: result.error }, "revision did not become healthy");
      return { ok: false, error: result.error, outputTail: outputTail(slot) };
    }
    if (!stillOurs) {
      // Stopped or superseded in the instant it became healthy.
      const instance = slot.instance;
      if (instance) await lifecycle.stop(slot, instance);
      return { ok: false, error: String(slot.abort.signal.reason ?? "stopped"), outputTail: outputTail(slot) };
    }

    const previous = env.active;
    slot.state = "serving";
    env.active = slot;
    router.setTarget(host, result.port);
    slot.log.info({ port: result.port, previous: previous?.spec.revisionId }, "traffic switched to the revision");
    if (previous) await lifecycle.retire(previous);
    return { ok: true, port: result.port, url: router.url(host) };
  };

  const stopEnvironment = async (env: Environment, route: "forget" | "starting") => {
    environments.delete(env.deploymentId);
    if (route === "forget") router.setTarget(env.host, undefined);
    else router.markStarting(env.host);
    const slots = [env.starting, env.active, ...env.retiring].filter((slot): slot is Slot => slot !== undefined);
    for (const slot of slots) endSlot(slot, "the environment was stopped");
    await Promise.all(slots.map((slot) => (slot.instance ? lifecycle.stop(slot, slot.instance) : undefined)));
  };

  return {
    deploy,
    async stop(deploymentId) {
      const env = environments.get(deploymentId);
      if (!env) return;
      log.info({ deployment: deploymentId, host: env.host }, "stopping environment");
      await stopEnvironment(env, "forget");
    },
    async restore(entries) {
      await lifecycle.ready;
      const results: Array<{ deploymentId: string; revisionId: string; result: DeployResult }> = [];
      const queue = [...entries];
      const worker = async () => {
        for (let entry = queue.shift(); entry; entry = queue.shift()) {
          const result = await deploy(entry);
          if (!result.ok) log.warn({ deployment: entry.deploymentId, revision: entry.revisionId, error: result.error }, "could not restore revision");
          results.push({ deploymentId: entry.deploymentId, revisionId: entry.revisionId, result });
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, options.restoreConcurrency ?? 4) }, worker));
      return results;
    },
    status() {
      return [...environments.values()].map((env) => ({
        deploymentId: env.deploymentId,
        host: env.host,
        active:
          env.active && env.active.state !== "retired" && env.active.state !== "starting"
            ? { revisionId: env.active.spec.revisionId, state: env.active.state, port: env.active.instance?.port, crashes: env.active.crashes.length }
            : undefined,
        starting: env.starting ? { revisionId: env.starting.spec.revisionId } : undefined,
      }));
    },
    async close() {
      closed = true;
      await lifecycle.ready;
      await Promise.all([...environments.values()].map((env) => stopEnvironment(env, "starting")));
      log.info("instance supervisor closed");
    },
  };
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}
