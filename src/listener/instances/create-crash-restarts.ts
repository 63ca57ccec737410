import { backoffDelay } from "../../backoff.js";
import type { InstanceLifecycle } from "./create-instance-lifecycle.js";
import type { Router } from "./create-router.js";
import { describeExit, outputTail, say, type Slot } from "./instance-slot.js";
import type { Instance, InstanceExit } from "./start-instance.js";

export interface CrashRestartOptions {
  /** Crashes tolerated within `crashWindowMs`; the next one leaves the revision stopped. */
  maxRestarts: number;
  crashWindowMs: number;
  /** Wait before the first restart, doubled for each further crash in the window. */
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  router: Router;
  lifecycle: Pick<InstanceLifecycle, "launch" | "stop">;
  /** A revision that kept crashing was left stopped; `outputTail` has its `secrets` masked. */
  onCrashLoop?: (deploymentId: string, revisionId: string, outputTail: string) => void;
}

export interface CrashRestarts {
  /** An instance exited without being asked to: restart its slot if it was serving, or give up on it. */
  onUnexpectedExit(slot: Slot, instance: Instance, exit: InstanceExit): void;
}

/**
 * Supervision of serving slots: an instance that exits is restarted with exponential
 * backoff (the router answers 503 with `Retry-After` meanwhile); more than `maxRestarts`
 * crashes within `crashWindowMs` and the slot is left stopped (503) and reported through
 * `onCrashLoop`.
 */
export function createCrashRestarts(options: CrashRestartOptions): CrashRestarts {
  const { router, lifecycle, maxRestarts, crashWindowMs } = options;

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
    const wait = backoffDelay(slot.crashes.length, { baseMs: options.restartBackoffMs, maxMs: options.maxRestartBackoffMs });
    say(slot, `revision ${spec.revisionId} ${reason}; restart ${slot.crashes.length} of ${maxRestarts} in ${wait} ms`);
    slot.log.warn({ restart: slot.crashes.length, inMs: wait }, "restarting revision");
    if (env.active === slot) router.markStarting(env.host);
    slot.restartTimer = setTimeout(() => void restart(slot), wait);
  };

  const restart = async (slot: Slot) => {
    slot.restartTimer = undefined;
    if (slot.state !== "restarting") return;
    const result = await lifecycle.launch(slot);
    if (slot.state !== "restarting") return; // replaced or stopped meanwhile; launch cleaned up
    if (!result.ok) {
      crashed(slot, `did not restart: ${result.error}`);
      return;
    }
    slot.state = "serving";
    slot.log.info({ port: result.port }, "revision restarted");
    if (slot.env.active === slot) router.setTarget(slot.env.host, result.port);
  };

  return {
    onUnexpectedExit(slot, instance, exit) {
      if (slot.instance !== instance || slot.state !== "serving") return;
      const what = describeExit(exit);
      slot.log.warn({ exit }, "instance exited");
      // Say "starting" at once rather than let requests fail against a dead port.
      if (slot.env.active === slot) router.markStarting(slot.env.host);
      // Children it left behind (and its port) go before a new start; its last output is read.
      void lifecycle.stop(slot, instance).then(() => crashed(slot, `the process ${what}`));
    },
  };
}
