import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";

import { killProcessTree } from "../../../src/listener/build/kill-process-tree.js";
import { isAlive, killLeftovers, newMarker, processesWithMarker } from "./processes.js";

const markers: string[] = [];

afterEach(() => {
  for (const marker of markers.splice(0)) killLeftovers(marker);
});

/**
 * A process left behind as if the listener had crashed: detached, unreferenced, carrying
 * `marker`. Resolves once the script said `ready` (every process it starts before that
 * exists, marked), and lets go of its output.
 */
async function orphan(script: string, marker: string): Promise<number> {
  markers.push(marker);
  const child = spawn("/bin/sh", ["-c", script], {
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLIPWAY_RUN_MARKER: marker },
  });
  child.unref();
  const line = await new Promise<Buffer>((resolve, reject) => {
    child.stdout!.once("data", resolve);
    child.once("exit", (code) => reject(new Error(`the orphan exited with ${code} before it was ready`)));
  });
  child.stdout!.destroy();
  if (line.toString() !== "ready\n") throw new Error(`the orphan said ${JSON.stringify(line.toString())}`);
  return child.pid!;
}

describe("killProcessTree", () => {
  it("finds orphans of a build by their marker alone and kills them, SIGTERM first", async () => {
    const marker = newMarker();
    const polite = await orphan("echo ready; exec sleep 100", marker);
    const stubborn = await orphan("trap '' TERM; setsid sleep 100 & echo ready; wait", marker);
    expect(processesWithMarker(marker).length).toBeGreaterThanOrEqual(3); // polite, stubborn's shell, its sleep

    const result = await killProcessTree({ marker, graceMs: 200 });

    expect(result.terminated).toEqual(expect.arrayContaining([polite, stubborn]));
    expect(result.killed).toContain(stubborn); // ignored SIGTERM
    expect(result.killed).not.toContain(polite); // went on SIGTERM
    expect(isAlive(polite) || isAlive(stubborn)).toBe(false);
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("leaves processes of other builds and instances alone", async () => {
    const mine = newMarker();
    const theirs = newMarker();
    const target = await orphan("echo ready; exec sleep 100", mine);
    const bystander = await orphan("echo ready; exec sleep 100", theirs);
    // A marker that merely starts with ours is another build's.
    const prefixed = await orphan("echo ready; exec sleep 100", `${mine}-2`);
    expect(processesWithMarker(mine)).toEqual([target]);
    expect(isAlive(bystander) && isAlive(prefixed)).toBe(true);

    await killProcessTree({ marker: mine, graceMs: 200 });

    expect(isAlive(target)).toBe(false);
    expect(isAlive(bystander)).toBe(true);
    expect(isAlive(prefixed)).toBe(true);
  });

  it("returns at once when nothing carries the marker", async () => {
    const started = Date.now();
    expect(await killProcessTree({ marker: newMarker(), graceMs: 5_000 })).toEqual({ terminated: [], killed: [] });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("refuses a marker that could match unrelated processes, and its own process group", async () => {
    await expect(killProcessTree({ marker: "x" })).rejects.toThrow(/at least 8 characters/);
    await expect(killProcessTree({ marker: newMarker(), pgid: 1 })).rejects.toThrow(/refuses to signal process group 1/);
    await expect(killProcessTree({ marker: newMarker(), pgid: ownGroup() })).rejects.toThrow(/refuses/);
  });
});

function ownGroup(): number {
  const stat = readFileSync("/proc/self/stat", "latin1");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}
