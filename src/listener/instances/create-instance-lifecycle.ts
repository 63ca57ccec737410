import { randomUUID } from "node:crypto";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";

import { createSandbox, sandboxUserFor, UNSANDBOXED } from "../sandbox/create-sandbox.js";
import { deploymentHomeDir, type SandboxConfig, type SandboxPlacement } from "../sandbox/sandbox.js";
import { createInstanceRegistry } from "./create-instance-registry.js";
import type { Router } from "./create-router.js";
import { describeExit, endSlot, say, type Slot } from "./instance-slot.js";
import type { InstanceSpec } from "./instance-spec.js";
import { pickFreePort } from "./pick-free-port.js";
import { startInstance, type Instance, type InstanceExit } from "./start-instance.js";
import { waitUntilHealthy } from "./wait-until-healthy.js";

export type LaunchResult = { ok: true; port: number } | { ok: false; error: string };

export interface InstanceLifecycle {
  /** Settles once the instances an earlier listener process left running are stopped. */
  readonly ready: Promise<void>;
  /** One instance of `slot`, up to a healthy answer; cleans up after itself when it fails. */
  launch(slot: Slot): Promise<LaunchResult>;
  /** Stops an instance once, however many callers ask; forgets it only when it is really gone. */
  stop(slot: Slot, instance: Instance): Promise<void>;
  /** A replaced slot: no new requests reach it; the ones in flight finish; then its instance stops. */
  retire(slot: Slot): Promise<void>;
}

export interface InstanceLifecycleOptions {
  /** Instances are recorded in `<dataDir>/run/processes`; each deployment's `HOME` is below it too. */
  dataDir: string;
  sandbox?: SandboxConfig;
  router: Router;
  log: Logger;
  killGraceMs: number;
  drainTimeoutMs: number;
  drainGraceMs: number;
  /** An instance exited without being asked to (not called for one `stop` ended). */
  onUnexpectedExit(slot: Slot, instance: Instance, exit: InstanceExit): void;
}

/**
 * Starts, health-checks, drains and stops the instances of the supervisor's slots: a free
 * port, the sandbox placement, the record in the instance registry, the health check, and
 * SIGTERM then SIGKILL after `killGraceMs`. Before anything starts, whatever an earlier
 * listener process left running is stopped (`ready`).
 */
export function createInstanceLifecycle(options: InstanceLifecycleOptions): InstanceLifecycle {
  const { router, log, killGraceMs } = options;
  const sandbox = createSandbox(options.sandbox ?? UNSANDBOXED);
  const registry = createInstanceRegistry({ dir: path.join(options.dataDir, "run", "processes"), log });
  const portsInUse = new Set<number>();
  const stopping = new Map<Instance, Promise<void>>();
  const stoppedByUs = new WeakSet<Instance>();
  // Whatever an earlier listener left running goes before anything new starts.
  const ready = registry.reapOrphans().then(
    () => undefined,
    (error: Error) => log.error({ err: { message: error.message } }, "could not stop instances left by an earlier listener process"),
  );

  /** The deployment's user and `HOME`, and a `/tmp` beside the build, made ready for it. */
  const placementOf = async (spec: InstanceSpec): Promise<SandboxPlacement> => {
    const user = sandboxUserFor(spec.deploymentId);
    const homeDir = deploymentHomeDir(options.dataDir, spec.deploymentId);
    const tmpDir = path.join(path.dirname(spec.cwd), "tmp");
    await sandbox.prepare({ homeDir, tmpDir }, user);
    return { sandbox, user, homeDir, tmpDir };
  };

  const stop = (slot: Slot, instance: Instance): Promise<void> => {
    let done = stopping.get(instance);
    if (!done) {
      stoppedByUs.add(instance);
      done = (async () => {
        try {
          await instance.stop(killGraceMs);
          await registry.forget(instance.marker);
        } catch (error) {
          // Recorded still: the next listener start tries again.
          slot.log.error({ err: { message: (error as Error).message }, port: instance.port }, "could not stop an instance");
        } finally {
          portsInUse.delete(instance.port);
          if (slot.instance === instance) slot.instance = undefined;
        }
      })();
      stopping.set(instance, done);
      void done.then(() => stopping.delete(instance));
    }
    return done;
  };

  const launch = async (slot: Slot): Promise<LaunchResult> => {
    const { spec } = slot;
    if (slot.abort.signal.aborted) return { ok: false, error: String(slot.abort.signal.reason) };
    const port = await pickFreePort({ avoid: portsInUse });
    if (slot.abort.signal.aborted) return { ok: false, error: String(slot.abort.signal.reason) };
    portsInUse.add(port);
    const marker = `slipway-run-${randomUUID()}`;
    say(slot, `starting revision ${spec.revisionId} on port ${port}${sandbox.contained ? "" : " (not sandboxed)"}`);
    let instance: Instance;
    try {
      const placement = await placementOf(spec);
      instance = startInstance({
        sandbox: placement,
        command: spec.command,
        cwd: spec.cwd,
        subDir: spec.subDir,
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
    slot.instance = instance;
    void instance.exited.then((exit) => {
      if (!stoppedByUs.has(instance)) options.onUnexpectedExit(slot, instance, exit);
    });
    await registry
      .record({ marker, deploymentId: spec.deploymentId, revisionId: spec.revisionId, pid: instance.pid, port, startedAt: new Date().toISOString() })
      .catch((error: Error) => slot.log.warn({ err: { message: error.message } }, "could not record the instance"));

    const waiting = new AbortController();
    const stopWaiting = (reason: string) => waiting.abort(reason);
    const onAbort = () => stopWaiting(String(slot.abort.signal.reason));
    slot.abort.signal.addEventListener("abort", onAbort, { once: true });
    if (slot.abort.signal.aborted) onAbort(); // cancelled while the instance was being started
    void instance.exited.then((exit) => stopWaiting(`the process ${describeExit(exit)} before it was healthy`));
    const health = await waitUntilHealthy({ port, path: spec.healthcheck, host: slot.env.host, timeoutMs: spec.timeoutMs, signal: waiting.signal });
    slot.abort.signal.removeEventListener("abort", onAbort);

    if (health.healthy && !instance.hasExited && !slot.abort.signal.aborted) {
      say(slot, `revision ${spec.revisionId} is healthy after ${health.elapsedMs} ms (HTTP ${health.status})`);
      return { ok: true, port };
    }
    const reason = health.healthy ? String(slot.abort.signal.reason ?? "the process exited") : health.reason;
    say(slot, `revision ${spec.revisionId} did not start: ${reason}`);
    await stop(slot, instance);
    return { ok: false, error: reason };
  };

  const retire = async (slot: Slot) => {
    endSlot(slot, "replaced by a newer revision");
    slot.env.retiring.add(slot);
    const instance = slot.instance;
    if (instance && !instance.hasExited) {
      const started = Date.now();
      const drained = await router.drain(instance.port, options.drainTimeoutMs);
      if (!drained) slot.log.warn({ inFlight: router.inFlight(instance.port) }, "requests still running after the drain timeout: stopping the instance anyway");
      await delay(options.drainGraceMs);
      say(slot, `revision ${slot.spec.revisionId} replaced: stopping it after ${Date.now() - started} ms of draining`);
      await stop(slot, instance);
    } else if (instance) {
      await stop(slot, instance);
    }
    slot.env.retiring.delete(slot);
    slot.log.info("previous revision stopped");
  };

  return { ready, launch, stop, retire };
}
