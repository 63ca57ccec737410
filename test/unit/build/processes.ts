import { readFileSync, readdirSync } from "node:fs";
import { randomUUID } from "node:crypto";

/** A fresh run marker. */
export function newMarker(): string {
  return `slipway-test-${randomUUID()}`;
}

/** Pids of live (non-zombie) processes whose environment holds SLIPWAY_RUN_MARKER=<marker>; an independent scan of /proc. */
export function processesWithMarker(marker: string): number[] {
  const entry = `SLIPWAY_RUN_MARKER=${marker}`;
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!isAlive(Number(name))) continue;
      const environ = readFileSync(`/proc/${name}/environ`, "utf8").split("\0");
      if (environ.includes(entry)) found.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Whether `pid` is a running process (a zombie counts as dead: it only waits to be reaped). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Kills whatever a failed test left behind, so one failure does not leak sleeping processes. */
export function killLeftovers(marker: string): void {
  for (const pid of processesWithMarker(marker)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}
