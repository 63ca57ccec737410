import { StringDecoder } from "node:string_decoder";
import type { Readable } from "node:stream";

import { killProcessTree, RUN_MARKER_VARIABLE } from "../build/kill-process-tree.js";
import { unsandboxedPlacement } from "../sandbox/create-sandbox.js";
import type { SandboxPlacement } from "../sandbox/sandbox.js";
import type { OutputCapture } from "./create-output-capture.js";

export interface StartInstanceOptions {
  /** `run.command`, run with `/bin/sh -c`. */
  command: string;
  /** The revision's build folder (`/workspace` in a sandbox). */
  cwd: string;
  /** `build.root`: the folder of the source the command starts in. */
  subDir?: string;
  /** Where it runs; default: no sandbox, `HOME` from `env`. */
  sandbox?: SandboxPlacement;
  /** The allow-listed environment (`buildEnvironment`); `PORT` and the run marker are set here. */
  env: Readonly<Record<string, string>>;
  port: number;
  /** Unique per instance: finds its processes again (see `killProcessTree`). */
  marker: string;
  /**
   * Per-process cap on private writable memory (heap, `malloc`, thread stacks), set with
   * `ulimit -d` (RLIMIT_DATA) in the shell before the command. Inherited by children, each
   * of which gets the full amount.
   */
  memoryLimitMb?: number;
  output: OutputCapture;
}

export interface InstanceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when `/bin/sh` could not be started at all. */
  error?: string;
}

/** One instance: a revision's running process (what `run.command` starts), with its process group. */
export interface Instance {
  readonly pid: number;
  readonly port: number;
  readonly marker: string;
  /** Resolves as soon as the shell exited (supervision reacts at once). */
  readonly exited: Promise<InstanceExit>;
  /** Resolves once the shell exited and its output was read (or stopped arriving): the tail is complete. */
  readonly finished: Promise<InstanceExit>;
  readonly hasExited: boolean;
  /**
   * SIGTERM to the process group and every process carrying the marker, SIGKILL after
   * `graceMs`. Resolves once none is left; rejects if some survive SIGKILL.
   */
  stop(graceMs: number): Promise<void>;
}

/** How long output may keep arriving after the shell exited (a background child may hold the pipes). */
const OUTPUT_DRAIN_MS = 250;

/**
 * Starts one instance of a revision: `/bin/sh -c <command>` in `cwd`, as the leader of its
 * own process group (detached), with `PORT`, the run marker and an optional memory limit.
 * Output goes to `output` as text. It is the instance supervisor's job to health-check,
 * supervise and stop it. Call it on the listener's main thread: the instance's processes
 * die with the thread that spawned them (bubblewrap's `--die-with-parent`, or the lifeline
 * of `spawnWithLifeline` without a sandbox), so they never outlive the listener.
 *
 * @example
 * ```ts
 * const instance = startInstance({ command: "node server.js", cwd, env, port, marker, memoryLimitMb: 512, output });
 * const exit = await instance.exited;
 * ```
 */
export function startInstance(options: StartInstanceOptions): Instance {
  const { command, cwd, port, marker, output } = options;
  const env: Record<string, string> = { ...options.env, PORT: String(port), [RUN_MARKER_VARIABLE]: marker };
  let script = command;
  if (options.memoryLimitMb !== undefined) {
    if (!Number.isInteger(options.memoryLimitMb) || options.memoryLimitMb < 16) {
      throw new RangeError(`memoryLimitMb must be a whole number of at least 16, got ${options.memoryLimitMb}`);
    }
    const kb = options.memoryLimitMb * 1024;
    // A number we made, prefixed as a line of its own: the command's text is not changed.
    script = `ulimit -d ${kb} || { echo "[slipway: could not set the memory limit (ulimit -d ${kb})]" >&2; exit 125; }\n${command}`;
  }

  const placement = options.sandbox ?? unsandboxedPlacement(env);
  // Own process group (in a sandbox: the whole sandbox), so stopping reaches every process of the instance.
  const child = placement.sandbox.spawn({ script, workDir: cwd, subDir: options.subDir, homeDir: placement.homeDir, tmpDir: placement.tmpDir, env, user: placement.user });

  const streamsClosed = Promise.all([child.stdout!, child.stderr!].map((stream) => pipe(stream, output)));
  let hasExited = false;
  const exited = new Promise<InstanceExit>((resolve) => {
    child.once("error", (error) => {
      hasExited = true;
      resolve({ code: null, signal: null, error: `could not start /bin/sh: ${error.message}` });
    });
    child.once("exit", (code, signal) => {
      // Reaped: from here on the pid may be reused, so the group is no longer ours to signal.
      hasExited = true;
      resolve({ code, signal });
    });
  });
  const finished = exited.then(async (exit) => {
    await Promise.race([streamsClosed, new Promise((r) => setTimeout(r, OUTPUT_DRAIN_MS).unref())]);
    return exit;
  });

  return {
    pid: child.pid ?? 0,
    port,
    marker,
    exited,
    finished,
    get hasExited() {
      return hasExited;
    },
    async stop(graceMs) {
      const pgid = hasExited || child.pid === undefined ? undefined : child.pid;
      await killProcessTree({ pgid, marker, graceMs, terminateGroup: !placement.sandbox.supervisorIsGroupLeader });
      await finished;
    },
  };
}

function pipe(stream: Readable, output: OutputCapture): Promise<void> {
  const decoder = new StringDecoder("utf8");
  return new Promise((resolve) => {
    stream.on("data", (chunk: Buffer) => output.write(decoder.write(chunk)));
    stream.once("close", () => {
      output.write(decoder.end());
      resolve();
    });
    stream.once("error", () => resolve());
  });
}
