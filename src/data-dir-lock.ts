import { randomBytes } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";
import { link, mkdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { isProcessAlive } from "./is-process-alive.js";
import { StartupError } from "./startup-error.js";

export const LOCK_FILE = "slipway.lock";

/** What the lock file holds: who has the data dir. */
interface LockHolder {
  pid: number;
  startedAt: string;
  hostname: string;
}

export interface DataDirLock {
  /** Removes the lock file, if it is still ours. */
  release(): Promise<void>;
}

/** Tries before giving up on a lock that keeps changing under us (stale ones taken over by others). */
const ATTEMPTS = 5;

/**
 * Makes this process the only Slipway on `dataDir`: two would both write state.json, lease
 * the same work and start PostgreSQL on the same files. The lock is `slipway.lock` (mode
 * 0600, `{ pid, startedAt, hostname }`), written aside and linked into place, so it appears
 * whole or not at all. A lock whose process is gone (kill -9, a crash, a reboot), whose pid
 * another process has now, or that cannot be read is stale and taken over. Taken only by the
 * entry points (src/main.ts, src/listener/main.ts), never by tests that start a control
 * plane in-process.
 *
 * @example
 * const lock = await acquireDataDirLock(settings.dataDir); // StartupError if another Slipway has it
 * // … on shutdown:
 * await lock.release();
 */
export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  const content = `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), hostname: hostname() } satisfies LockHolder)}\n`;
  await mkdir(dataDir, { recursive: true });
  await takeLock(dataDir, file, content);
  const releaseOnExit = () => {
    try {
      if (readFileSync(file, "utf8") === content) unlinkSync(file);
    } catch {
      // Best effort: a lock left behind is stale once this process is gone.
    }
  };
  process.once("exit", releaseOnExit);
  return {
    async release() {
      process.off("exit", releaseOnExit);
      if ((await readText(file)) === content) await rm(file, { force: true });
    },
  };
}

/** Creates the lock file, or takes over a stale one; a StartupError when a running Slipway holds it. */
async function takeLock(dataDir: string, file: string, content: string): Promise<void> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (await createLockFile(file, content)) return;
    const seen = await readText(file);
    if (seen === undefined) continue; // released meanwhile: try again
    const holder = parseHolder(seen);
    if (holder && isHeld(holder)) throw new StartupError(inUseMessage(dataDir, holder));
    await removeIfUnchanged(file, seen);
  }
  throw new StartupError(`could not take over the stale lock ${file}; remove it if no other Slipway uses ${dataDir}`);
}

/** Links a whole file into place: false when a lock file is already there. */
async function createLockFile(file: string, content: string): Promise<boolean> {
  const aside = `${file}.${process.pid}.${randomBytes(6).toString("hex")}`;
  await writeFile(aside, content, { mode: 0o600 });
  try {
    await link(aside, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    await rm(aside, { force: true });
  }
}

/**
 * Moves the stale lock aside, then checks that what it moved is what was judged stale: if a
 * process took the lock over in between, its file goes back (link: only where none is).
 */
async function removeIfUnchanged(file: string, stale: string): Promise<void> {
  const aside = `${file}.stale.${process.pid}.${randomBytes(6).toString("hex")}`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if ((await readText(aside)) !== stale) await link(aside, file).catch(() => undefined);
  await unlink(aside);
}

/**
 * The holder's process runs. Our own pid, or a process that started after the lock was
 * written, is another process with a reused pid: a container recreated on the same volume
 * (new pids from 1), or a reboot.
 */
function isHeld(holder: LockHolder): boolean {
  if (holder.pid === process.pid || !isProcessAlive(holder.pid)) return false;
  const started = processStartTime(holder.pid);
  return started === undefined || !(started > Date.parse(holder.startedAt));
}

/** /proc's clock ticks per second (USER_HZ), fixed by the kernel ABI. */
const CLOCK_TICKS = 100;

/**
 * When a process started, in ms since the epoch (Linux: /proc), at most a second early (the
 * boot time is in whole seconds); undefined where it cannot be read.
 */
function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the command's ")": state is field 3, starttime field 22.
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const bootSeconds = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "latin1"))?.[1]);
    return Number.isFinite(ticks) && bootSeconds > 0 ? bootSeconds * 1000 + (ticks * 1000) / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

function inUseMessage(dataDir: string, holder: LockHolder): string {
  const where = holder.hostname && holder.hostname !== hostname() ? ` on ${holder.hostname}` : "";
  return `the data dir ${dataDir} is in use by another Slipway (pid ${holder.pid}${where}, started ${holder.startedAt}); stop it, or set SLIPWAY_DATA_DIR to another folder`;
}

/** The file's text; undefined when it is gone. Unreadable counts as garbage (""): stale. */
async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? undefined : "";
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isInteger(value.pid) || (value.pid as number) <= 0) return undefined;
    return { pid: value.pid as number, startedAt: String(value.startedAt ?? "at an unknown time"), hostname: String(value.hostname ?? "") };
  } catch {
    return undefined;
  }
}
