import { readFileSync, readdirSync } from "node:fs";
import { randomUUID } from "node:crypto";

/** A fresh run marker. */
export function newMarker(): string {
  return `slipway-test-${randomUUID()}`;
}

/** Pids of live (non-zombie) processes: an independent scan of /proc. */
export function livePids(): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter(isAlive);
}

/** Pids of live processes whose environment holds `<name>=<value>`. */
export function processesWithVariable(name: string, value: string): number[] {
  const entry = `${name}=${value}`;
  return livePids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(entry);
    } catch {
      return false; // exited meanwhile
    }
  });
}

/** Pids of live (non-zombie) processes whose environment holds SLIPWAY_RUN_MARKER=<marker>. */
export function processesWithMarker(marker: string): number[] {
  return processesWithVariable("SLIPWAY_RUN_MARKER", marker);
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

/** SIGKILL to each of `pids` that is still there. */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Kills whatever a failed test left behind, so one failure does not leak sleeping processes. */
export function killLeftovers(marker: string): void {
  killAll(processesWithMarker(marker));
}
