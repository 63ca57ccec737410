import { readFile, readdir } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";

/**
 * The run marker: a variable every process of one build or one instance carries, so the
 * processes can be found again (its name, `SLIPWAY_RUN_MARKER`, is part of what builds and
 * apps see). Unique per build and per instance.
 */
export const RUN_MARKER_VARIABLE = "SLIPWAY_RUN_MARKER";

export interface KillProcessTreeOptions {
  /**
   * Process group to signal as a whole: the pid of a child spawned with `detached: true`.
   * Pass it only while that child is still ours; after a crash the number may belong to
   * someone else by now, so orphans are found by `marker` alone.
   */
  pgid?: number;
  /** Value of `SLIPWAY_RUN_MARKER` in the environment of the processes to stop. */
  marker: string;
  /** Time between SIGTERM and SIGKILL (default 5000 ms). */
  graceMs?: number;
  /**
   * Whether the group gets SIGTERM too (default true). False when its leader supervises a
   * sandbox (`sandbox.supervisorIsGroupLeader`): ending it ends everything inside at once,
   * so only the marked processes get SIGTERM and their grace period, and the group gets
   * the final SIGKILL.
   */
  terminateGroup?: boolean;
  /** Give up, with an error naming the survivors, when processes outlive SIGKILL this long (default 30 s). */
  giveUpAfterMs?: number;
  /** How often `/proc` is scanned while waiting (default 50 ms). */
  pollMs?: number;
}

export interface KillProcessTreeResult {
  /** Every process that was found and sent SIGTERM. */
  terminated: number[];
  /** The ones still alive after the grace period, sent SIGKILL. */
  killed: number[];
}

/**
 * Stops the processes of a build or an instance, including those that left its process group (`setsid`,
 * double forks) or ignore SIGTERM: SIGTERM to the group and to every process whose
 * environment holds `SLIPWAY_RUN_MARKER=<marker>`, then SIGKILL to whatever is left after
 * `graceMs`. Resolves only when no such process is left (zombies count as gone).
 *
 * Limits: it finds processes through `/proc/<pid>/environ`, so a process that dropped the
 * marker from its environment (`env -i`, a fresh `execve` environment), runs as another
 * user, or lives in another PID namespace is not found (unless it is still in `pgid`).
 * Without `/proc` (not Linux) only the process group is signalled.
 *
 * @example
 * ```ts
 * const child = spawn("/bin/sh", ["-c", command], { detached: true, env });
 * // …on timeout:
 * await killProcessTree({ pgid: child.pid, marker: env.SLIPWAY_RUN_MARKER, graceMs: 5000 });
 * // …after a listener crash, for a build recorded as in progress:
 * await killProcessTree({ marker: recorded.marker });
 * ```
 */
export async function killProcessTree(options: KillProcessTreeOptions): Promise<KillProcessTreeResult> {
  const { pgid, marker, graceMs = 5_000, giveUpAfterMs = 30_000, pollMs = 50, terminateGroup = true } = options;
  if (marker.length < 8 || /[\0=]/.test(marker)) {
    throw new Error("killProcessTree needs a run marker of at least 8 characters without '=' or NUL");
  }
  if (pgid !== undefined && (!Number.isInteger(pgid) || pgid <= 1 || pgid === (await ownProcessGroup()))) {
    throw new Error(`killProcessTree refuses to signal process group ${pgid}`);
  }
  const needle = Buffer.from(`${RUN_MARKER_VARIABLE}=${marker}\0`);
  // The group is signalled only while the last scan saw a live member: a member holds the
  // group id, so it cannot have been given to someone else.
  let groupAlive = false;
  let marked = new Set<number>();
  const find = async () => {
    const found = await findProcesses(needle, pgid, !terminateGroup);
    groupAlive = found.groupAlive;
    marked = found.marked;
    return found.pids;
  };
  const signalGroup = (signal: NodeJS.Signals) => {
    if (pgid !== undefined && groupAlive) signalProcess(-pgid, signal);
  };

  const terminated = new Set<number>();
  // Each process gets one SIGTERM: some programs take a second one as "stop cleaning up".
  const terminate = (pids: number[]) => {
    if (terminated.size === 0 && terminateGroup) signalGroup("SIGTERM");
    for (const pid of pids) {
      if (!terminateGroup && !marked.has(pid)) continue; // a sandbox's supervisor: SIGKILL only
      if (!terminated.has(pid)) signalProcess(pid, "SIGTERM");
      terminated.add(pid);
    }
  };

  let alive = await find();
  if (alive.length === 0) return { terminated: [], killed: [] };
  terminate(alive);

  const graceEnds = Date.now() + graceMs;
  while (alive.length > 0 && Date.now() < graceEnds) {
    await delay(Math.min(pollMs, Math.max(0, graceEnds - Date.now())));
    alive = await find();
    // Children forked during the grace period get their SIGTERM too.
    terminate(alive);
  }

  const killed = new Set<number>();
  const giveUpAt = Date.now() + giveUpAfterMs;
  while (alive.length > 0) {
    if (Date.now() > giveUpAt) {
      throw new Error(`processes marked ${marker} survived SIGKILL for ${giveUpAfterMs} ms: ${alive.join(", ")}`);
    }
    // Kill, rescan, repeat: a process can fork between one scan and its SIGKILL.
    signalGroup("SIGKILL");
    for (const pid of alive) {
      signalProcess(pid, "SIGKILL");
      killed.add(pid);
    }
    await delay(Math.min(pollMs, 10));
    alive = await find();
  }
  return { terminated: [...terminated], killed: [...killed] };
}

/** Live (non-zombie) processes in `pgid` or carrying `needle` in their environment, except this one. */
/** `markGroup`: also tell which members of `pgid` carry the marker (otherwise their environment is not read). */
async function findProcesses(needle: Buffer, pgid: number | undefined, markGroup: boolean): Promise<{ pids: number[]; marked: Set<number>; groupAlive: boolean }> {
  let names: string[];
  try {
    names = await readdir("/proc");
  } catch {
    // No /proc (not Linux): the process group is all we can see.
    const groupAlive = pgid !== undefined && groupExists(pgid);
    return { pids: groupAlive ? [pgid] : [], marked: new Set(), groupAlive };
  }
  const found: number[] = [];
  const marked = new Set<number>();
  let groupAlive = false;
  await Promise.all(
    names.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      const pid = Number(name);
      if (pid === process.pid) return;
      const stat = await readFile(`/proc/${pid}/stat`, "latin1").catch(() => undefined);
      if (stat === undefined) return; // gone meanwhile
      // Fields after "pid (comm) ": state ppid pgrp … ; comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const state = fields[0];
      if (state === "Z" || state === "X") return;
      const inGroup = pgid !== undefined && Number(fields[2]) === pgid;
      if (inGroup) groupAlive = true;
      if (inGroup && !markGroup) {
        found.push(pid);
        return;
      }
      const environ = await readFile(`/proc/${pid}/environ`).catch(() => undefined);
      if (environ !== undefined && hasEntry(environ, needle)) marked.add(pid);
      if (inGroup || marked.has(pid)) found.push(pid);
    }),
  );
  return { pids: found.sort((a, b) => a - b), marked, groupAlive };
}

/** Whether the NUL-separated `environ` holds `needle` (`NAME=value\0`) as a whole entry. */
function hasEntry(environ: Buffer, needle: Buffer): boolean {
  for (let at = environ.indexOf(needle); at !== -1; at = environ.indexOf(needle, at + 1)) {
    if (at === 0 || environ[at - 1] === 0) return true;
  }
  return false;
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    // ESRCH: already gone. EPERM: not ours; the scan will report it if it stays.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH" && (error as NodeJS.ErrnoException).code !== "EPERM") throw error;
  }
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ownProcessGroup(): Promise<number | undefined> {
  const stat = await readFile("/proc/self/stat", "latin1").catch(() => undefined);
  if (stat === undefined) return undefined;
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}
