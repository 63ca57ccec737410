import { open, readFile, rm, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

interface LockOwner {
  pid: number;
  at: number;
}

/**
 * Runs `fn` while holding an exclusive lock file (created with O_EXCL), so worker threads
 * and processes sharing one data folder take turns. A lock left by a process that no
 * longer exists, or older than `staleMs` (a worker thread terminated mid-way), is taken
 * over.
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: { timeoutMs?: number; staleMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const staleMs = options.staleMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      try {
        await handle.writeFile(JSON.stringify({ pid: process.pid, at: Date.now() } satisfies LockOwner));
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await isStale(lockPath, staleMs)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockPath}`);
    await sleep(Math.min(25 * 2 ** Math.min(attempt, 3), 200));
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function isStale(lockPath: string, staleMs: number): Promise<boolean> {
  let owner: Partial<LockOwner>;
  try {
    owner = JSON.parse(await readFile(lockPath, "utf8")) as Partial<LockOwner>;
  } catch {
    // Just created and not written yet, or unreadable: judge by its age alone.
    try {
      return Date.now() - (await stat(lockPath)).mtimeMs > staleMs;
    } catch {
      return false;
    }
  }
  if (typeof owner.pid === "number" && owner.pid !== process.pid && !isProcessAlive(owner.pid)) return true;
  return typeof owner.at === "number" && Date.now() - owner.at > staleMs;
}

/** Whether a process with this id exists (signal 0 probes without signalling). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
