import type { ChildProcess } from "node:child_process";
import { stat } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";

import { unsandboxedPlacement } from "../sandbox/create-sandbox.js";
import type { SandboxPlacement } from "../sandbox/sandbox.js";
import { killProcessTree, RUN_MARKER_VARIABLE } from "./kill-process-tree.js";

export type BuildOutcome = "succeeded" | "failed" | "timed_out" | "cancelled";

export interface RunCommandsOptions {
  /** Shell lines, each run with `/bin/sh -c` in order as one build step; the first failure stops the build. */
  commands: readonly string[];
  /** The source folder: the commands' working directory (`/workspace` in a sandbox). */
  cwd: string;
  /** `build.root`: the folder of the source the commands start in. */
  subDir?: string;
  /** Where the commands run; default: no sandbox, `HOME` from `env`. */
  sandbox?: SandboxPlacement;
  /** The complete environment (see `buildEnvironment`); must hold `SLIPWAY_RUN_MARKER`. */
  env: Readonly<Record<string, string>>;
  /** For all commands together. */
  timeoutMs: number;
  /** Receives stdout and stderr as text, in arrival order, plus a `$ <command>` line before each command. */
  onOutput: (text: string) => void;
  signal?: AbortSignal;
  /** Time between SIGTERM and SIGKILL when stopping (default 5000 ms). */
  killGraceMs?: number;
}

export interface RunCommandsResult {
  outcome: BuildOutcome;
  /** Exit code of the last command that ran (null when it was ended by a signal). */
  exitCode: number | null;
  /** Signal that ended the last command, e.g. "SIGTERM" after a timeout. */
  signal: string | null;
  /** The command that failed, or that was running when the build timed out or was cancelled. */
  failedCommand?: string;
  durationMs: number;
}

/** How long output may keep arriving after a build step exited before the next one starts. */
const DRAIN_MS = 250;
/** How long to wait for the pipes to close once every process of the build is gone. */
const FINAL_DRAIN_MS = 1_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs a build's commands one after another, each as a build step: `/bin/sh -c <command>`
 * in its own process group, its output streamed. On timeout or abort the running step's
 * group gets SIGTERM, then SIGKILL after `killGraceMs`; processes that escaped the group are
 * found by their `SLIPWAY_RUN_MARKER` (see `killProcessTree`). Whatever the build leaves
 * behind — background processes of a successful build included — is stopped before the
 * promise resolves.
 *
 * Resolves with the outcome; rejects only when the machinery fails (the shell cannot be
 * started, `onOutput` throws, or processes survive SIGKILL).
 *
 * @example
 * ```ts
 * const result = await runCommands({
 *   commands: ["npm ci", "npm run build"],
 *   cwd: workDir,
 *   env: buildEnvironment({ ... }),
 *   timeoutMs: config.build.timeout * 1000,
 *   onOutput: (text) => log.write(text),
 *   signal: cancellation.signal,
 * });
 * if (result.outcome !== "succeeded") reportFailure(result, log.tail(60_000));
 * ```
 */
export async function runCommands(options: RunCommandsOptions): Promise<RunCommandsResult> {
  const { commands, cwd, env, timeoutMs, onOutput, signal, killGraceMs = 5_000 } = options;
  const marker = env[RUN_MARKER_VARIABLE];
  if (!marker) {
    throw new Error(`runCommands needs ${RUN_MARKER_VARIABLE} in env so that escaped processes can be found`);
  }
  if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new RangeError(`timeoutMs must be between 1 and ${MAX_TIMER_MS}, got ${timeoutMs}`);
  }
  const cwdStat = await stat(cwd).catch(() => undefined);
  if (!cwdStat?.isDirectory()) throw new Error(`build directory ${cwd} does not exist`);
  const placement = options.sandbox ?? unsandboxedPlacement(env);

  const started = performance.now();
  let endedWithNewline = true;
  let callbackError: { error: unknown } | undefined;
  const emit = (text: string) => {
    if (text === "" || callbackError) return;
    try {
      onOutput(text);
      endedWithNewline = text.endsWith("\n");
    } catch (error) {
      callbackError = { error };
      stop("cancelled");
    }
  };
  const say = (line: string) => emit(`${endedWithNewline ? "" : "\n"}${line}\n`);

  let stopReason: "timed_out" | "cancelled" | undefined;
  /** The build step running now. */
  let step: ChildProcess | undefined;
  let stopping: Promise<unknown> | undefined;
  const stop = (reason: "timed_out" | "cancelled") => {
    if (stopReason) return;
    stopReason = reason;
    if (reason === "timed_out") say(`[slipway: timed out after ${formatMs(timeoutMs)}, stopping]`);
    else if (!callbackError) say("[slipway: cancelled, stopping]");
    if (step?.pid !== undefined) {
      stopping = killProcessTree({ pgid: step.pid, marker, graceMs: killGraceMs, terminateGroup: !placement.sandbox.supervisorIsGroupLeader });
      // Awaited below; this only keeps an early failure from being reported as unhandled.
      stopping.catch(() => undefined);
    }
  };
  const timer = setTimeout(() => stop("timed_out"), timeoutMs);
  const onAbort = () => stop("cancelled");
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) stop("cancelled");

  const streams: Readable[] = [];
  const openStreams: Array<Promise<void>> = [];
  const pipe = (stream: Readable) => {
    streams.push(stream);
    const decoder = new StringDecoder("utf8");
    stream.on("data", (chunk: Buffer) => emit(decoder.write(chunk)));
    openStreams.push(
      new Promise<void>((resolve) => {
        stream.once("close", () => {
          emit(decoder.end());
          resolve();
        });
      }),
    );
  };

  let result: Omit<RunCommandsResult, "durationMs"> = { outcome: "succeeded", exitCode: commands.length === 0 ? 0 : null, signal: null };
  try {
    for (const command of commands) {
      if (stopReason) {
        result = { outcome: stopReason, exitCode: null, signal: null };
        break;
      }
      say(`$ ${command}`);
      if (stopReason) {
        result = { outcome: stopReason, exitCode: null, signal: null };
        break;
      }
      // Own process group: the whole group (in a sandbox: the whole sandbox) can be signalled.
      const child = placement.sandbox.spawn({ script: command, workDir: cwd, subDir: options.subDir, homeDir: placement.homeDir, tmpDir: placement.tmpDir, env, user: placement.user });
      step = child;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.once("error", (error) => reject(new Error(`could not start /bin/sh for "${command}": ${error.message}`, { cause: error })));
        child.once("exit", (code, exitSignal) => {
          // Reaped: from here on the pid may be reused, so it is no longer ours to signal.
          step = undefined;
          resolve({ code, signal: exitSignal });
        });
      });
      pipe(child.stdout!);
      pipe(child.stderr!);

      const { code, signal: exitSignal } = await exited;
      // Let the command's own output arrive before the next line; a background process
      // holding the pipes open does not hold up the build.
      await Promise.race([Promise.all(openStreams.slice(-2)), sleep(DRAIN_MS)]);
      await stopping;

      if (stopReason) {
        result = { outcome: stopReason, exitCode: code, signal: exitSignal, failedCommand: command };
        break;
      }
      result = { outcome: code === 0 ? "succeeded" : "failed", exitCode: code, signal: exitSignal };
      if (code !== 0) {
        result.failedCommand = command;
        say(`[slipway: "${command}" ${code === null ? `was killed by ${exitSignal}` : `exited with code ${code}`}]`);
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    await stopping?.catch(() => undefined);
    // Background processes a build step left behind belong to this build too.
    const leftovers = await killProcessTree({ marker, graceMs: killGraceMs });
    if (leftovers.terminated.length > 0) {
      say(`[slipway: stopped ${leftovers.terminated.length} process(es) left running by the build]`);
    }
    const drained = await Promise.race([Promise.all(openStreams).then(() => true), sleep(FINAL_DRAIN_MS).then(() => false)]);
    if (!drained) {
      say("[slipway: the build's output is still open: a process without the run marker may still be running]");
      for (const stream of streams) stream.destroy();
    }
  }
  await stopping; // a kill that failed (processes survived SIGKILL) is an infrastructure fault
  if (callbackError) throw callbackError.error;
  return { ...result, durationMs: Math.round(performance.now() - started) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
