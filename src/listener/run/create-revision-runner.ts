import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";

import { maskSecrets } from "../build/mask-secrets.js";
import { createOutputCapture, type OutputCapture } from "./create-output-capture.js";
import { createProcessRegistry } from "./create-process-registry.js";
import type { Router } from "./create-router.js";
import { pickFreePort } from "./pick-free-port.js";
import { startRevisionProcess, type ProcessExit, type RevisionProcess } from "./start-revision-process.js";
import { waitUntilHealthy } from "./wait-until-healthy.js";
import { createSandbox, sandboxUserFor, UNSANDBOXED } from "../sandbox/create-sandbox.js";
import { deploymentHomeDir, type SandboxConfig, type SandboxPlacement } from "../sandbox/sandbox.js";

/** Everything needed to start one revision of one environment. */
export interface RunSpec {
  deploymentId: string;
  /** `revisionHost(...)`: `<environment>.<name>--<owner>.<domain>`. */
  host: string;
  revisionId: string;
  /** The successful build: `<dataDir>/work/<deploymentId>/<revisionId>/source`. */
  cwd: string;
  /** `run.command`, run with `/bin/sh -c`. */
  command: string;
  /** The allow-listed environment from `buildEnvironment` (with `DATABASE_URL`); `PORT` is added. */
  env: Readonly<Record<string, string>>;
  /** `run.healthcheck`: a path that must answer 2xx/3xx. Unset: any HTTP answer. */
  healthcheck?: string;
  /** Time to become healthy, per start and restart (default 60 s). */
  timeoutMs?: number;
  /** Lowers the runner's memory limit for this revision (cannot raise it). */
  memoryLimitMb?: number;
  /** Lowers the runner's output cap for this revision (cannot raise it). */
  maxOutputBytes?: number;
  /** The revision's output (and Slipway's lines about it) for its whole life, up to the output cap. */
  onOutput?: (text: string) => void;
  /**
   * Values masked with `***` in the output tails the runner hands out (`onCrashLoop`,
   * `DeployResult.outputTail`), as a build log masks them: the database password (see
   * `secretsOf`), tokens. `onOutput` gets the output as it is: mask it there too.
   */
  secrets?: readonly string[];
}

export interface DeployOptions extends RunSpec {
  /** Cancels the deploy while the revision is starting (the previous one keeps serving); no effect once traffic switched. */
  signal?: AbortSignal;
}

/** `outputTail`: the revision's last output, with `secrets` masked. */
export type DeployResult = { ok: true; port: number; url: string } | { ok: false; error: string; outputTail: string };

export interface CreateRevisionRunnerOptions {
  /** `SLIPWAY_DATA_DIR`: the runner records its processes in `<dataDir>/run/processes`. */
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
  /** Memory limit per revision process, `ulimit -d` (default 1024 MiB; 0 turns it off). */
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
  /** What revisions run in (default: no sandbox). Each deployment gets its user and its `HOME` (see deploymentHomeDir). */
  sandbox?: SandboxConfig;
}

export interface RevisionStatus {
  deploymentId: string;
  host: string;
  active?: { revisionId: string; state: "serving" | "restarting" | "crashed"; port?: number; crashes: number };
  starting?: { revisionId: string };
}

export interface RevisionRunner {
  /**
   * Starts `command` for the revision, waits until it is healthy, switches the host's
   * traffic to it and drains and stops the environment's previous revision. Unhealthy or
   * exited: it is stopped, the previous revision keeps serving, and the result holds the
   * reason and the output tail. A newer `deploy` of the same environment supersedes one
   * that is still starting. Never rejects for the app's faults.
   */
  deploy(options: DeployOptions): Promise<DeployResult>;
  /** Teardown: the environment's processes are stopped and its host answers 404. Idempotent. */
  stop(deploymentId: string): Promise<void>;
  /** After a listener restart: starts each environment's active revision again. */
  restore(entries: readonly RunSpec[]): Promise<Array<{ deploymentId: string; revisionId: string; result: DeployResult }>>;
  status(): RevisionStatus[];
  /** Stops every revision process (their hosts answer 503 "starting" until the router closes). */
  close(): Promise<void>;
}

type SlotState = "starting" | "serving" | "restarting" | "crashed" | "retired";

/** One revision of one environment, across its restarts. */
interface Slot {
  spec: Required<Pick<RunSpec, "timeoutMs" | "maxOutputBytes">> & RunSpec;
  memoryLimitMb?: number;
  env: Environment;
  state: SlotState;
  process?: RevisionProcess;
  output: OutputCapture;
  crashes: number[];
  restartTimer?: NodeJS.Timeout;
  /** Aborted when the slot is superseded, replaced or stopped: ends a start in progress. */
  abort: AbortController;
  log: Logger;
}

interface Environment {
  deploymentId: string;
  host: string;
  active?: Slot;
  starting?: Slot;
  retiring: Set<Slot>;
}

type LaunchResult = { ok: true; port: number } | { ok: false; error: string };

/**
 * Runs the revisions of every environment on this listener, behind the router: at most
 * one active (serving) and one starting revision per environment, each a supervised
 * process group. Owned by the listener's main thread.
 *
 * - Deploy: free port → `/bin/sh -c <command>` (own process group, `PORT`, memory limit) →
 *   health check → `router.setTarget` (atomic switch) → previous revision drained
 *   (in-flight HTTP requests finish) → SIGTERM, SIGKILL after `killGraceMs`.
 * - Supervision: an active revision that exits is restarted with exponential backoff (503
 *   with `Retry-After` meanwhile); more than `maxRestarts` crashes within `crashWindowMs`
 *   and it is left stopped (503) and reported through `onCrashLoop`.
 * - Processes are recorded in `<dataDir>/run/processes`; a runner stops what an earlier,
 *   killed listener left running before it starts anything.
 *
 * @example
 * ```ts
 * const router = await createRouter({ port: settings.routerPort, domain: settings.routerDomain, log });
 * const runner = createRevisionRunner({ dataDir, log, router, onCrashLoop: reportCrashLoop });
 * const result = await runner.deploy({
 *   deploymentId, host: revisionHost({ environment, repository, domain }), revisionId,
 *   cwd: path.join(workDir, "source"), command: run.command, healthcheck: run.healthcheck,
 *   env: buildEnvironment({ ... }), secrets: secretsOf(databaseUrl), onOutput: (text) => runLog.write(text),
 * });
 * if (result.ok) complete("DEPLOYED", { environmentUrl: result.url });
 * else complete("DEPLOY_FAILED", `${result.error}\n\n${result.outputTail}`);
 * ```
 */
export function createRevisionRunner(options: CreateRevisionRunnerOptions): RevisionRunner {
  const { router } = options;
  const log = options.log.child({ component: "revision-runner" });
  const maxRestarts = options.maxRestarts ?? 5;
  const crashWindowMs = options.crashWindowMs ?? 5 * 60_000;
  const restartBackoffMs = options.restartBackoffMs ?? 1_000;
  const maxRestartBackoffMs = options.maxRestartBackoffMs ?? 30_000;
  const memoryLimitMb = options.memoryLimitMb ?? 1024;
  const maxOutputBytes = options.maxOutputBytes ?? 10 * 1024 * 1024;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const drainGraceMs = options.drainGraceMs ?? 100;
  const killGraceMs = options.killGraceMs ?? 5_000;

  const sandbox = createSandbox(options.sandbox ?? UNSANDBOXED);
  /** The deployment's user and `HOME`, and a `/tmp` beside the build, made ready for it. */
  const placementOf = async (spec: RunSpec): Promise<SandboxPlacement> => {
    const user = sandboxUserFor(spec.deploymentId);
    const homeDir = deploymentHomeDir(options.dataDir, spec.deploymentId);
    const tmpDir = path.join(path.dirname(spec.cwd), "tmp");
    await sandbox.prepare({ homeDir, tmpDir }, user);
    return { sandbox, user, homeDir, tmpDir };
  };

  const registry = createProcessRegistry({ dir: path.join(options.dataDir, "run", "processes"), log });
  const environments = new Map<string, Environment>();
  const hostOwners = new Map<string, string>();
  const portsInUse = new Set<number>();
  const stopping = new Map<RevisionProcess, Promise<void>>();
  const stoppedByUs = new WeakSet<RevisionProcess>();
  let closed = false;
  // Whatever an earlier listener left running goes before anything new starts.
  const ready = registry.reapOrphans().catch((error: Error) => {
    log.error({ err: { message: error.message } }, "could not stop revision processes left by an earlier run");
  });

  const say = (slot: Slot, line: string) => slot.output.write(`[slipway: ${line}]\n`);

  /** The slot's last output, its secrets masked: it leaves the listener (check run, deployment status). */
  const outputTail = (slot: Slot): string => {
    const tail = slot.output.tail();
    // Output was dropped before the tail when it is shorter than what was passed on (or
    // the cap was hit): its start may then be the rest of a secret.
    const whole = !slot.output.capped && Buffer.byteLength(tail) >= slot.output.bytesPassed;
    return maskSecrets(tail, slot.spec.secrets ?? [], { startsMidStream: !whole });
  };

  /** Stops a process once, however many callers ask; forgets it only when it is really gone. */
  const stopProcess = (slot: Slot, proc: RevisionProcess): Promise<void> => {
    let done = stopping.get(proc);
    if (!done) {
      stoppedByUs.add(proc);
      done = (async () => {
        try {
          await proc.stop(killGraceMs);
          await registry.forget(proc.marker);
        } catch (error) {
          // Recorded still: the next listener start tries again.
          slot.log.error({ err: { message: (error as Error).message }, port: proc.port }, "could not stop a revision process");
        } finally {
          portsInUse.delete(proc.port);
          if (slot.process === proc) slot.process = undefined;
        }
      })();
      stopping.set(proc, done);
      void done.then(() => stopping.delete(proc));
    }
    return done;
  };

  /** One process start of `slot`, up to a healthy answer; cleans up after itself when it fails. */
  const launch = async (slot: Slot): Promise<LaunchResult> => {
    const { spec } = slot;
    if (slot.abort.signal.aborted) return { ok: false, error: String(slot.abort.signal.reason) };
    const port = await pickFreePort({ avoid: portsInUse });
    if (slot.abort.signal.aborted) return { ok: false, error: String(slot.abort.signal.reason) };
    portsInUse.add(port);
    const marker = `slipway-run-${randomUUID()}`;
    say(slot, `starting revision ${spec.revisionId} on port ${port}${sandbox.contained ? "" : " (not sandboxed)"}`);
    let proc: RevisionProcess;
    try {
      const placement = await placementOf(spec);
      proc = startRevisionProcess({
        sandbox: placement,
        command: spec.command,
        cwd: spec.cwd,
        env: spec.env,
        port,
        marker,
        memoryLimitMb: slot.memoryLimitMb,
        output: slot.output,
      });
    } catch (error) {
      portsInUse.delete(port);
      return { ok: false, error: (error as Error).message };
    }
    slot.process = proc;
    void proc.exited.then((exit) => onExit(slot, proc, exit));
    await registry
      .record({ marker, deploymentId: spec.deploymentId, revisionId: spec.revisionId, pid: proc.pid, port, startedAt: new Date().toISOString() })
      .catch((error: Error) => slot.log.warn({ err: { message: error.message } }, "could not record the revision process"));

    const waiting = new AbortController();
    const stopWaiting = (reason: string) => waiting.abort(reason);
    const onAbort = () => stopWaiting(String(slot.abort.signal.reason));
    slot.abort.signal.addEventListener("abort", onAbort, { once: true });
    void proc.exited.then((exit) => stopWaiting(`the process ${describeExit(exit)} before it was healthy`));
    const health = await waitUntilHealthy({ port, path: spec.healthcheck, host: slot.env.host, timeoutMs: spec.timeoutMs, signal: waiting.signal });
    slot.abort.signal.removeEventListener("abort", onAbort);

    if (health.healthy && !proc.hasExited && !slot.abort.signal.aborted) {
      say(slot, `revision ${spec.revisionId} is healthy after ${health.elapsedMs} ms (HTTP ${health.status})`);
      return { ok: true, port };
    }
    const reason = health.healthy ? String(slot.abort.signal.reason ?? "the process exited") : health.reason;
    say(slot, `revision ${spec.revisionId} did not start: ${reason}`);
    await stopProcess(slot, proc);
    return { ok: false, error: reason };
  };

  /** Supervision: an exit nobody asked for, of a revision that was serving. */
  const onExit = (slot: Slot, proc: RevisionProcess, exit: ProcessExit) => {
    if (slot.process !== proc || slot.state !== "serving" || stoppedByUs.has(proc)) return;
    const what = describeExit(exit);
    slot.log.warn({ exit }, "revision process exited");
    // Say "starting" at once rather than let requests fail against a dead port.
    if (slot.env.active === slot) router.markStarting(slot.env.host);
    // Children it left behind (and its port) go before a new start; its last output is read.
    void stopProcess(slot, proc).then(() => crashed(slot, `the process ${what}`));
  };

  const crashed = (slot: Slot, reason: string) => {
    if (slot.state === "retired") return;
    const now = Date.now();
    slot.crashes = slot.crashes.filter((at) => now - at <= crashWindowMs);
    slot.crashes.push(now);
    const { env, spec } = slot;
    if (slot.crashes.length > maxRestarts) {
      slot.state = "crashed";
      say(slot, `revision ${spec.revisionId} ${reason}; it crashed ${slot.crashes.length} times within ${Math.round(crashWindowMs / 1000)} s and is left stopped`);
      slot.log.error({ crashes: slot.crashes.length }, "revision keeps crashing: left stopped");
      if (env.active === slot && !env.starting) {
        router.markDown(env.host, "This environment's app crashed repeatedly and was stopped. Deploy it again once it is fixed.");
      }
      try {
        options.onCrashLoop?.(spec.deploymentId, spec.revisionId, outputTail(slot));
      } catch (error) {
        slot.log.error({ err: { message: (error as Error).message } }, "onCrashLoop failed");
      }
      return;
    }
    slot.state = "restarting";
    const wait = Math.min(maxRestartBackoffMs, restartBackoffMs * 2 ** (slot.crashes.length - 1));
    say(slot, `revision ${spec.revisionId} ${reason}; restart ${slot.crashes.length} of ${maxRestarts} in ${wait} ms`);
    slot.log.warn({ restart: slot.crashes.length, inMs: wait }, "restarting revision");
    if (env.active === slot) router.markStarting(env.host);
    slot.restartTimer = setTimeout(() => void restart(slot), wait);
  };

  const restart = async (slot: Slot) => {
    slot.restartTimer = undefined;
    if (slot.state !== "restarting") return;
    const result = await launch(slot);
    if (slot.state !== "restarting") return; // replaced or stopped meanwhile; launch cleaned up
    if (!result.ok) {
      crashed(slot, `did not restart: ${result.error}`);
      return;
    }
    slot.state = "serving";
    slot.log.info({ port: result.port }, "revision restarted");
    if (slot.env.active === slot) router.setTarget(slot.env.host, result.port);
  };

  /** A replaced revision: no new requests reach it; the ones in flight finish; then it stops. */
  const retire = async (slot: Slot) => {
    slot.state = "retired";
    clearTimeout(slot.restartTimer);
    slot.abort.abort("replaced by a newer revision");
    slot.env.retiring.add(slot);
    const proc = slot.process;
    if (proc && !proc.hasExited) {
      const started = Date.now();
      const drained = await router.drain(proc.port, drainTimeoutMs);
      if (!drained) slot.log.warn({ inFlight: router.inFlight(proc.port) }, "requests still running after the drain timeout: stopping the revision anyway");
      await delay(drainGraceMs);
      say(slot, `revision ${slot.spec.revisionId} replaced: stopping it after ${Date.now() - started} ms of draining`);
      await stopProcess(slot, proc);
    } else if (proc) {
      await stopProcess(slot, proc);
    }
    slot.env.retiring.delete(slot);
    slot.log.info("previous revision stopped");
  };

  const newSlot = (env: Environment, spec: RunSpec): Slot => {
    // A revision may lower the limit, never raise or remove it.
    const requested = spec.memoryLimitMb !== undefined && spec.memoryLimitMb > 0 ? spec.memoryLimitMb : undefined;
    const limit = requested === undefined ? memoryLimitMb : memoryLimitMb > 0 ? Math.min(requested, memoryLimitMb) : requested;
    const slotLog = log.child({ deployment: spec.deploymentId, revision: spec.revisionId });
    return {
      spec: { ...spec, timeoutMs: spec.timeoutMs ?? 60_000, maxOutputBytes: Math.min(spec.maxOutputBytes ?? maxOutputBytes, maxOutputBytes) },
      memoryLimitMb: limit > 0 ? limit : undefined,
      env,
      state: "starting",
      output: createOutputCapture({ maxBytes: Math.min(spec.maxOutputBytes ?? maxOutputBytes, maxOutputBytes), onOutput: spec.onOutput, log: slotLog }),
      crashes: [],
      abort: new AbortController(),
      log: slotLog,
    };
  };

  const deploy = async (spec: DeployOptions): Promise<DeployResult> => {
    const host = spec.host.toLowerCase();
    const invalid = checkSpec(spec);
    if (invalid) return { ok: false, error: invalid, outputTail: "" };
    if (closed) return { ok: false, error: "the listener is shutting down", outputTail: "" };
    if (!(await isDirectory(spec.cwd))) return { ok: false, error: `the build folder ${spec.cwd} does not exist`, outputTail: "" };
    await ready;
    const owner = hostOwners.get(host);
    if (owner !== undefined && owner !== spec.deploymentId) {
      return { ok: false, error: `the address ${host} is already used by another deployment (${owner}); rename the environment or repository`, outputTail: "" };
    }
    let env = environments.get(spec.deploymentId);
    if (env && env.host !== host) {
      // Same deployment, new name: the old address stops answering once the new one serves.
      hostOwners.delete(env.host);
      router.setTarget(env.host, undefined);
      env.host = host;
    }
    if (!env) {
      env = { deploymentId: spec.deploymentId, host, retiring: new Set() };
      environments.set(spec.deploymentId, env);
    }
    hostOwners.set(host, spec.deploymentId);

    const superseded = env.starting;
    if (superseded) {
      superseded.state = "retired";
      superseded.abort.abort(`superseded by revision ${spec.revisionId}`);
    }
    const { signal, ...runSpec } = spec;
    const slot = newSlot(env, { ...runSpec, host });
    env.starting = slot;
    const onCancel = () => {
      if (slot.state !== "starting") return;
      slot.state = "retired";
      slot.abort.abort("cancelled");
    };
    if (signal?.aborted) onCancel();
    signal?.addEventListener("abort", onCancel, { once: true });
    if (env.active?.state !== "serving" && env.active?.state !== "restarting") router.markStarting(host);
    slot.log.info({ host }, "deploying revision");

    const result = await launch(slot);
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
      const proc = slot.process;
      if (proc) await stopProcess(slot, proc);
      return { ok: false, error: String(slot.abort.signal.reason ?? "stopped"), outputTail: outputTail(slot) };
    }

    const previous = env.active;
    slot.state = "serving";
    env.active = slot;
    router.setTarget(host, result.port);
    slot.log.info({ port: result.port, previous: previous?.spec.revisionId }, "traffic switched to the revision");
    if (previous) await retire(previous);
    return { ok: true, port: result.port, url: router.url(host) };
  };

  const stopEnvironment = async (env: Environment, route: "forget" | "starting") => {
    environments.delete(env.deploymentId);
    hostOwners.delete(env.host);
    if (route === "forget") router.setTarget(env.host, undefined);
    else router.markStarting(env.host);
    const slots = [env.starting, env.active, ...env.retiring].filter((slot): slot is Slot => slot !== undefined);
    for (const slot of slots) {
      slot.state = "retired";
      clearTimeout(slot.restartTimer);
      slot.abort.abort("the environment was stopped");
    }
    await Promise.all(slots.map((slot) => (slot.process ? stopProcess(slot, slot.process) : undefined)));
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
      await ready;
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
            ? { revisionId: env.active.spec.revisionId, state: env.active.state, port: env.active.process?.port, crashes: env.active.crashes.length }
            : undefined,
        starting: env.starting ? { revisionId: env.starting.spec.revisionId } : undefined,
      }));
    },
    async close() {
      closed = true;
      await ready;
      await Promise.all([...environments.values()].map((env) => stopEnvironment(env, "starting")));
      log.info("revision runner closed");
    },
  };
}

function checkSpec(spec: RunSpec): string | undefined {
  if (typeof spec.command !== "string" || spec.command.trim() === "") return "run.command is empty";
  if (spec.timeoutMs !== undefined && !(spec.timeoutMs > 0 && spec.timeoutMs <= 3_600_000)) return `the run timeout must be between 1 ms and 1 hour, got ${spec.timeoutMs}`;
  for (const [name, value] of Object.entries(spec.env)) {
    if (typeof value !== "string" || value.includes("\0")) return `environment variable ${name} is not a plain string`;
  }
  return undefined;
}

function describeExit(exit: ProcessExit): string {
  if (exit.error) return exit.error;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}
