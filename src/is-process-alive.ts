import { readFileSync } from "node:fs";

/**
 * Whether a process with this id runs: signal 0 probes without signalling (EPERM: it runs,
 * as another user). A zombie counts as gone: it has exited and only waits to be reaped.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  return !isZombie(pid);
}

/** Linux only (/proc); elsewhere a zombie counts as alive, which errs on the safe side. */
function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return false;
  }
}
