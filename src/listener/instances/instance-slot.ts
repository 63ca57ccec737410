import type { Logger } from "pino";

import { maskSecrets } from "../build/mask-secrets.js";
import { createOutputCapture, type OutputCapture } from "./create-output-capture.js";
import type { InstanceSpec } from "./instance-spec.js";
import type { Instance, InstanceExit } from "./start-instance.js";

export type SlotState = "starting" | "serving" | "restarting" | "crashed" | "retired";

/** One revision of one environment, across its restarts: each start is a new instance. */
export interface Slot {
  spec: Required<Pick<InstanceSpec, "timeoutMs" | "maxOutputBytes">> & InstanceSpec;
  memoryLimitMb?: number;
  env: Environment;
  state: SlotState;
  /** The current instance, while one is started and not yet stopped. */
  instance?: Instance;
  output: OutputCapture;
  /** When the slot's instances crashed (within the crash window). */
  crashes: number[];
  restartTimer?: NodeJS.Timeout;
  /** Aborted when the slot is superseded, replaced or stopped: ends a start in progress. */
  abort: AbortController;
  log: Logger;
}

/** One deployment's address and its slots: at most one active and one starting. */
export interface Environment {
  deploymentId: string;
  host: string;
  active?: Slot;
  starting?: Slot;
  /** Replaced slots whose instance is draining. */
  retiring: Set<Slot>;
}

/** The supervisor's limits; a revision may lower them, never raise or remove them. */
export interface SlotLimits {
  /** 0: no memory limit. */
  memoryLimitMb: number;
  maxOutputBytes: number;
}

export function createSlot(env: Environment, spec: InstanceSpec, limits: SlotLimits, log: Logger): Slot {
  const requested = spec.memoryLimitMb !== undefined && spec.memoryLimitMb > 0 ? spec.memoryLimitMb : undefined;
  const limit = requested === undefined ? limits.memoryLimitMb : limits.memoryLimitMb > 0 ? Math.min(requested, limits.memoryLimitMb) : requested;
  const maxOutputBytes = Math.min(spec.maxOutputBytes ?? limits.maxOutputBytes, limits.maxOutputBytes);
  const slotLog = log.child({ deployment: spec.deploymentId, revision: spec.revisionId });
  return {
    spec: { ...spec, timeoutMs: spec.timeoutMs ?? 60_000, maxOutputBytes },
    memoryLimitMb: limit > 0 ? limit : undefined,
    env,
    state: "starting",
    output: createOutputCapture({ maxBytes: maxOutputBytes, onOutput: spec.onOutput, log: slotLog }),
    crashes: [],
    abort: new AbortController(),
    log: slotLog,
  };
}

/**
 * The slot is done (superseded, cancelled, replaced or stopped): it is not restarted, and a
 * start in progress ends with `reason`. Stopping its instance is the caller's part.
 */
export function endSlot(slot: Slot, reason: string): void {
  slot.state = "retired";
  clearTimeout(slot.restartTimer);
  slot.abort.abort(reason);
}

/** A line of Slipway's own in the revision's output. */
export function say(slot: Slot, line: string): void {
  slot.output.write(`[slipway: ${line}]\n`);
}

/** The slot's last output, its secrets masked: it leaves the listener (check run, deployment status). */
export function outputTail(slot: Slot): string {
  const tail = slot.output.tail();
  // Output was dropped before the tail when it is shorter than what was passed on (or
  // the cap was hit): its start may then be the rest of a secret.
  const whole = !slot.output.capped && Buffer.byteLength(tail) >= slot.output.bytesPassed;
  return maskSecrets(tail, slot.spec.secrets ?? [], { startsMidStream: !whole });
}

export function describeExit(exit: InstanceExit): string {
  if (exit.error) return exit.error;
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}
