/**
 * The data-dir lock in-process (its file, stale locks, release) and across real processes
 * (several starting at once on one stale lock: exactly one gets it; exit without release).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { acquireDataDirLock, LOCK_FILE } from "../../src/data-dir-lock.js";
import { StartupError } from "../../src/startup-error.js";
import { tempDir } from "../support/temp-dir.js";

/** The pid of a process that has exited (and was reaped): no process has it now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await once(child, "exit");
  return child.pid as number;
}

async function writeLock(dataDir: string, holder: unknown) {
  await writeFile(path.join(dataDir, LOCK_FILE), typeof holder === "string" ? holder : JSON.stringify(holder));
}

const readLock = async (dataDir: string) => JSON.parse(await readFile(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number; startedAt: string; hostname: string };

describe("acquireDataDirLock", () => {
  it("writes slipway.lock (0600, pid, start time, host name) and removes it on release", async () => {
    const dataDir = path.join(await tempDir(), "not-yet-there");
    const lock = await acquireDataDirLock(dataDir);
    const holder = await readLock(dataDir);
    expect(holder).toEqual({ pid: process.pid, startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), hostname: hostname() });
    expect((await stat(path.join(dataDir, LOCK_FILE))).mode & 0o777).toBe(0o600);
    await lock.release();
    expect(existsSync(path.join(dataDir, LOCK_FILE))).toBe(false);
  });

  it("refuses while a running process holds it, naming the data dir, the pid and when it started", async () => {
    const dataDir = await tempDir();
    // The test runner's parent process: alive, not this process, and started before the lock was written.
    const startedAt = new Date().toISOString();
    await writeLock(dataDir, { pid: process.ppid, startedAt, hostname: hostname() });
    const error = await acquireDataDirLock(dataDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as Error).message).toBe(
      `the data dir ${dataDir} is in use by another Slipway (pid ${process.ppid}, started ${startedAt}); stop it, or set SLIPWAY_DATA_DIR to another folder`,
    );
    expect((await readLock(dataDir)).pid).toBe(process.ppid);
  });

  it("names the other host when the lock was written elsewhere", async () => {
    const dataDir = await tempDir();
    const startedAt = new Date().toISOString();
    await writeLock(dataDir, { pid: process.ppid, startedAt, hostname: "other-machine" });
    await expect(acquireDataDirLock(dataDir)).rejects.toThrow(`(pid ${process.ppid} on other-machine, started ${startedAt})`);
  });

  it.each([
    ["a process that is gone", async () => ({ pid: await deadPid(), startedAt: "2026-01-01T00:00:00.000Z", hostname: hostname() })],
    ["garbage", async () => "not json"],
    ["an empty file", async () => ""],
    ["no pid", async () => ({ startedAt: "2026-01-01T00:00:00.000Z" })],
    // A container restarted: the new process got the pid the old one had.
    ["this very pid", async () => ({ pid: process.pid, startedAt: "2026-01-01T00:00:00.000Z", hostname: "old-container" })],
  ])("takes over a stale lock: %s", async (_name, holder) => {
    const dataDir = await tempDir();
    await writeLock(dataDir, await holder());
    const lock = await acquireDataDirLock(dataDir);
    expect((await readLock(dataDir)).pid).toBe(process.pid);
    await lock.release();
    expect(existsSync(path.join(dataDir, LOCK_FILE))).toBe(false);
  });

  // A container recreated with an init, or a reboot: a process that started after the lock has its pid now.
  it.runIf(process.platform === "linux")("takes over a lock whose pid a process started later has now", async () => {
    const dataDir = await tempDir();
    await writeLock(dataDir, { pid: process.ppid, startedAt: "2020-01-01T00:00:00.000Z", hostname: "old-container" });
    const lock = await acquireDataDirLock(dataDir);
    expect((await readLock(dataDir)).pid).toBe(process.pid);
    await lock.release();
  });

  it("release leaves a lock that is no longer its own", async () => {
    const dataDir = await tempDir();
    const lock = await acquireDataDirLock(dataDir);
    await writeLock(dataDir, { pid: process.ppid, startedAt: "2026-01-01T00:00:00.000Z", hostname: hostname() });
    await lock.release();
    expect((await readLock(dataDir)).pid).toBe(process.ppid);
  });
});

/**
 * A process that prints "ready", takes the lock on the first line it reads (so several start
 * at the same moment), prints the outcome, and holds the lock until stdin closes (or exits at
 * once with EXIT_AT_ONCE).
 */
const HOLDER = `
  import { once } from "node:events";
  import { acquireDataDirLock } from "./src/data-dir-lock.ts";
  console.log("ready");
  await once(process.stdin, "data");
  try {
    await acquireDataDirLock(process.env.DATA_DIR);
    console.log("acquired");
    if (process.env.EXIT_AT_ONCE) process.exit(0);
    process.stdin.resume();
    process.stdin.on("end", () => process.exit(0));
  } catch (error) {
    console.log("refused: " + error.message);
    process.exit(1);
  }
`;

function startHolder(dataDir: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", HOLDER], {
    cwd: path.resolve("."),
    env: { ...process.env, DATA_DIR: dataDir, ...env },
    stdio: ["pipe", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk));
  const printed = (pattern: RegExp) =>
    new Promise<string>((resolve) => {
      const check = () => (pattern.test(output) ? resolve(output.replace("ready\n", "").trim()) : undefined);
      child.stdout.on("data", check);
      child.once("close", () => resolve(output.trim()));
    });
  return { child, ready: printed(/^ready$/m), outcome: printed(/^(acquired|refused: .*)$/m), go: () => child.stdin.write("go\n") };
}

/** Starts the holders, and lets them all take the lock at the same moment. */
async function startHolders(dataDir: string, count: number) {
  const holders = Array.from({ length: count }, () => startHolder(dataDir));
  await Promise.all(holders.map((h) => h.ready));
  for (const holder of holders) holder.go();
  return holders;
}

async function startOneHolder(dataDir: string, env: Record<string, string> = {}) {
  const holder = startHolder(dataDir, env);
  await holder.ready;
  holder.go();
  return holder;
}

describe("the data-dir lock across processes", () => {
  it("several processes starting at once on a stale lock: exactly one gets it, the others name it", async () => {
    const dataDir = await tempDir();
    await writeLock(dataDir, { pid: await deadPid(), startedAt: "2026-01-01T00:00:00.000Z", hostname: hostname() });
    const holders = await startHolders(dataDir, 3);
    try {
      const outcomes = await Promise.all(holders.map((h) => h.outcome));
      expect(outcomes.filter((o) => o === "acquired"), outcomes.join("\n")).toHaveLength(1);
      const winner = holders[outcomes.indexOf("acquired")]?.child.pid;
      expect((await readLock(dataDir)).pid).toBe(winner);
      for (const outcome of outcomes.filter((o) => o !== "acquired")) {
        expect(outcome).toMatch(new RegExp(`^refused: the data dir .* is in use by another Slipway \\(pid ${winner}, started `));
      }
    } finally {
      for (const { child } of holders) child.stdin.end();
      await Promise.all(holders.map(({ child }) => (child.exitCode === null ? once(child, "exit") : undefined)));
    }
    expect(existsSync(path.join(dataDir, LOCK_FILE))).toBe(false);
  });

  it("a process that exits without releasing still removes its lock; one killed with SIGKILL leaves a stale one", async () => {
    const dataDir = await tempDir();
    const exiting = await startOneHolder(dataDir, { EXIT_AT_ONCE: "1" });
    expect(await exiting.outcome).toBe("acquired");
    if (exiting.child.exitCode === null) await once(exiting.child, "exit");
    expect(existsSync(path.join(dataDir, LOCK_FILE))).toBe(false);

    const killed = await startOneHolder(dataDir);
    expect(await killed.outcome).toBe("acquired");
    killed.child.kill("SIGKILL");
    await once(killed.child, "exit");
    expect((await readLock(dataDir)).pid).toBe(killed.child.pid);
    const lock = await acquireDataDirLock(dataDir);
    expect((await readLock(dataDir)).pid).toBe(process.pid);
    await lock.release();
  });
});
