/**
 * Runs without a sandbox are tied to the thread that spawned them by a lifeline: with it,
 * nothing changes for the command; without it (the listener died, the worker ended), the
 * whole run is killed. Real processes, checked in /proc.
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";

import { killProcessTree, RUN_MARKER_VARIABLE } from "../../../src/listener/build/kill-process-tree.js";
import { spawnWithLifeline } from "../../../src/listener/sandbox/spawn-with-lifeline.js";
import { isAlive, killLeftovers, livePids, newMarker, processesWithMarker } from "../build/processes.js";

const markers: string[] = [];
afterEach(() => {
  for (const marker of markers.splice(0)) killLeftovers(marker);
});

function start(script: string) {
  const marker = newMarker();
  markers.push(marker);
  const child = spawnWithLifeline({ script, cwd: "/", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [RUN_MARKER_VARIABLE]: marker } });
  let output = "";
  const arrived = new Set<() => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      for (const check of arrived) check();
    });
  }
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  // Registered now: "close" may follow "exit" in the same turn.
  const closed = once(child, "close");
  return {
    child,
    marker,
    exited,
    closed,
    output: () => output,
    /** Resolves with the value printed as `name=<value>`. */
    printed: (name: string) =>
      new Promise<string>((resolve) => {
        const check = () => {
          const value = new RegExp(`^${name}=(\\S+)$`, "m").exec(output)?.[1];
          if (value !== undefined) {
            arrived.delete(check);
            resolve(value);
          }
        };
        arrived.add(check);
        check();
      }),
  };
}

function groupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

/** Live processes in process group `pgid`. */
function membersOf(pgid: number): number[] {
  return livePids().filter((pid) => {
    try {
      return groupOf(pid) === pgid;
    } catch {
      return false; // gone meanwhile
    }
  });
}

describe("spawnWithLifeline while the spawning thread lives", () => {
  it("is the command: the group's leader, its output and exit code, stdin from /dev/null, no lifeline, nothing left behind", async () => {
    const run = start("echo out; echo err >&2; echo shell=$$; ls -l /proc/$$/fd/0; [ -e /proc/$$/fd/3 ] && echo has-fd-3; exit 3");
    const shell = Number(await run.printed("shell"));
    const [code, signal] = await run.exited;
    await run.closed;

    expect({ code, signal }).toEqual({ code: 3, signal: null });
    expect(shell).toBe(run.child.pid); // `kill -- -$$` in a script still reaches its group
    expect(run.output()).toContain("out\n");
    expect(run.output()).toContain("err\n");
    expect(run.output()).toContain("-> /dev/null");
    expect(run.output()).not.toContain("has-fd-3");
    // The watchdog was dismissed (the lifeline closes with it), and no process of the run is left.
    expect(membersOf(run.child.pid!)).toEqual([]);
    expect(processesWithMarker(run.marker)).toEqual([]);
  });

  it("ends with the signal that ended the command, without the shell's message in the output", async () => {
    const run = start("echo started; kill -KILL $$");
    const [code, signal] = await run.exited;
    await run.closed;

    expect({ code, signal }).toEqual({ code: null, signal: "SIGKILL" });
    expect(run.output()).toBe("started\n");
  });

  it("lets a SIGTERM to the group stop the command gracefully, then exits as the command did", async () => {
    const run = start("trap 'echo stopping; exit 7' TERM; echo ready=1; sleep 100 & wait");
    await run.printed("ready");
    const result = await killProcessTree({ pgid: run.child.pid, marker: run.marker, graceMs: 5_000 });
    const [code, signal] = await run.exited;

    expect({ code, signal }).toEqual({ code: 7, signal: null });
    expect(run.output()).toContain("stopping\n");
    expect(result.killed).toEqual([]); // all gone within the grace period, the watchdog (dismissed) too
    await run.closed;
    expect(membersOf(run.child.pid!)).toEqual([]);
  });

  it("passes the script as a value: quotes and $ in it are the command's own", async () => {
    const run = start(`printf '%s\\n' "it's \\$HOME" '$1 "$2"'`);
    await run.exited;
    await run.closed;

    expect(run.output()).toBe(`it's $HOME\n$1 "$2"\n`);
  });
});

describe("spawnWithLifeline when the spawning thread lets go", () => {
  it("kills the group, grandchildren included, and marked processes that left it", async () => {
    const run = start("sleep 300 & echo grandchild=$!; setsid sh -c 'echo escaped=$$; exec sleep 301' & echo ready=1; wait");
    const grandchild = Number(await run.printed("grandchild"));
    const escaped = Number(await run.printed("escaped"));
    await run.printed("ready");
    expect(groupOf(grandchild)).toBe(run.child.pid);
    expect(groupOf(escaped)).not.toBe(run.child.pid); // the premise: the group signal cannot reach it

    // What the kernel does to the listener's end when the listener dies.
    (run.child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
    const [code, signal] = await run.exited;

    expect({ code, signal }).toEqual({ code: null, signal: "SIGKILL" });
    await expect.poll(() => processesWithMarker(run.marker), { timeout: 5_000, interval: 20 }).toEqual([]);
    expect(isAlive(grandchild)).toBe(false);
    expect(isAlive(escaped)).toBe(false);
  });

  it("kills the group when the worker thread that spawned it ends (a build's job)", async () => {
    const marker = newMarker();
    markers.push(marker);
    const module = new URL("../../../src/listener/sandbox/spawn-with-lifeline.ts", import.meta.url).href;
    const worker = new Worker(
      `const { parentPort, workerData } = require("node:worker_threads");
      (async () => {
        (await import("tsx/esm/api")).register();
        const { spawnWithLifeline } = await import(workerData.module);
        const child = spawnWithLifeline({ script: "sleep 302 & echo $!; wait", cwd: "/", env: workerData.env });
        child.stdout.once("data", (chunk) => parentPort.postMessage(Number(String(chunk))));
      })();`,
      { eval: true, execArgv: [], workerData: { module, env: { PATH: process.env.PATH, [RUN_MARKER_VARIABLE]: marker } } },
    );
    const [grandchild] = (await once(worker, "message")) as [number];
    expect(isAlive(grandchild)).toBe(true);

    await worker.terminate(); // what Bree does to a job that does not end when cancelled
    await expect.poll(() => processesWithMarker(marker), { timeout: 5_000, interval: 20 }).toEqual([]);
  });
});
