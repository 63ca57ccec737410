import { spawn, type ChildProcess } from "node:child_process";

import { RUN_MARKER_VARIABLE } from "../build/kill-process-tree.js";

export interface SpawnWithLifelineOptions {
  /** A shell line, run with `/bin/sh -c`. */
  script: string;
  cwd: string;
  /** The whole environment; processes carrying its `SLIPWAY_RUN_MARKER` are found even outside the group. */
  env: Readonly<Record<string, string>>;
}

/** The file descriptor the watchdog reads: the child's end of a socket whose other end only the spawning thread holds. */
const LIFELINE_FD = 3;

/**
 * Reads the lifeline (its stdin; `$1` is the run marker). A line means the command ended
 * and the listener dismisses the watchdog. EOF means the spawning thread let go of its
 * end: the listener died (SIGKILL included: the kernel closes its files) or the Bree
 * worker that spawned a build ended. Then every process of the run goes: the ones
 * carrying the run marker (those that left the group with `setsid`), then the whole group,
 * the watchdog last. It ignores SIGTERM (inherited) and does not carry the marker, so a
 * graceful stop neither ends it early nor waits for it.
 */
const WATCHDOG = `unset IFS
if read -r _; then exit 0; fi
if [ -n "$1" ]; then
  for found in $(PATH=/usr/bin:/bin grep -lzxF -e "${RUN_MARKER_VARIABLE}=$1" /proc/[0-9]*/environ 2>/dev/null); do
    pid=\${found#/proc/}; pid=\${pid%/environ}
    kill -KILL "$pid" 2>/dev/null
  done
fi
kill -KILL 0`;

/**
 * Starts the watchdog in the background, then becomes the command: `/bin/sh -c "$1"`
 * (the script is a value, never part of this text), without the lifeline, SIGTERM back
 * to its default. The command is the group leader, as without a watchdog.
 */
const WRAPPER = `trap '' TERM
(marker=$${RUN_MARKER_VARIABLE}; unset ${RUN_MARKER_VARIABLE}; exec /bin/sh -c "$2" slipway-watchdog "$marker") <&${LIFELINE_FD} >/dev/null 2>&1 &
trap - TERM
exec ${LIFELINE_FD}<&-
exec /bin/sh -c "$1"`;

/**
 * Starts `/bin/sh -c <script>` detached (the leader of a new session and process group),
 * stdout and stderr piped, stdin /dev/null, tied to the thread that calls it: when that
 * thread ends, however it ends (the listener killed with SIGKILL, or the Bree worker of a
 * build), the whole group is killed. It does for runs without a sandbox what bubblewrap's
 * `--die-with-parent` does for a sandbox.
 *
 * How: the child gets one more stdio pipe (fd 3), the lifeline, whose other end this
 * thread holds. A watchdog shell in the group (a child of the command) blocks reading it:
 * at EOF it kills the group and every process carrying the run marker; when the command
 * has exited, a line written here dismisses it. Nothing else changes: the pid is the
 * command's shell (`$$` is the process group), SIGTERM to the group stops the command as
 * it likes, and the exit code or signal is the command's own.
 *
 * Why not `PR_SET_PDEATHSIG`: Node cannot call `prctl`, and `setpriv --pdeathsig KILL`
 * covers only the process it starts: the death signal is cleared in every fork, so the
 * command's children (`npm` → `node`, `sleep 300 &`) would be reparented to init and run
 * on. A wrapper that waits for the command would cover the group too, but the command
 * would no longer lead it (`kill -- -$$` in a script would miss) and its exit would have
 * to be imitated. Limits: a process that left the group and dropped the marker is not
 * found (as with `killProcessTree`), nor is one forked while the watchdog sweeps; the
 * command could kill the watchdog itself. The instance registry and the build markers stay
 * as the second net, for the next start of the listener.
 *
 * @example
 * ```ts
 * const child = spawnWithLifeline({ script: "npm ci", cwd: workDir, env });
 * child.once("exit", (code, signal) => log.info({ code, signal }, "step ended"));
 * ```
 */
export function spawnWithLifeline(options: SpawnWithLifelineOptions): ChildProcess {
  const child = spawn("/bin/sh", ["-c", WRAPPER, "slipway-run", options.script, WATCHDOG], {
    cwd: options.cwd,
    env: options.env,
    detached: true, // own process group (and session), so the whole group can be signalled
    stdio: ["ignore", "pipe", "pipe", "pipe"],
  });
  const lifeline = child.stdio[LIFELINE_FD] as (NodeJS.WritableStream & { on(event: "error", listener: () => void): void }) | null;
  if (lifeline) {
    // Gone already (the watchdog was killed with the group): nothing to dismiss.
    lifeline.on("error", () => undefined);
    child.once("exit", () => lifeline.end("\n"));
  }
  return child;
}
