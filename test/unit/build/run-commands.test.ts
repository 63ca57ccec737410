import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { EventEmitter } from "node:events";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { runCommands, type RunCommandsOptions } from "../../../src/listener/build/run-commands.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";
import { isAlive, killLeftovers, newMarker, processesWithMarker } from "./processes.js";

let dir: string;
let marker: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "slipway-build-"));
  marker = newMarker();
});

afterEach(() => {
  killLeftovers(marker);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a build; `printed(name)` resolves with the number a build step printed as
 * `<name>=<number>` (a pid), as soon as it arrives in the output.
 */
function runBuild(commands: string[], options: Partial<RunCommandsOptions> = {}) {
  const output: string[] = [];
  const events = new EventEmitter();
  const promise = runCommands({
    commands,
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SLIPWAY_RUN_MARKER: marker },
    timeoutMs: 10_000,
    killGraceMs: 300,
    onOutput: (text) => {
      output.push(text);
      events.emit("output");
    },
    ...options,
  });
  const printed = (name: string) => {
    const pattern = new RegExp(`^${name}=(\\d+)\\n`, "m");
    return waitUntil(() => Number(pattern.exec(output.join(""))?.[1]) || undefined, { on: [signal(events, "output")], what: `${name}=<pid> in the build's output` });
  };
  return { promise, output, printed };
}

/** Process group and session of a live process, from /proc. */
function groupOf(pid: number): { pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pgrp: Number(fields[2]), session: Number(fields[3]) };
}

describe("runCommands", () => {
  it("runs the commands in order in cwd and streams stdout and stderr, each command announced", async () => {
    const { promise, output } = runBuild(["echo one", "echo two >&2", "pwd", "printf 'no newline'"]);
    const result = await promise;

    expect(result).toMatchObject({ outcome: "succeeded", exitCode: 0, signal: null });
    expect(result.failedCommand).toBeUndefined();
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(output.join("")).toBe(`$ echo one\none\n$ echo two >&2\ntwo\n$ pwd\n${realpathSync(dir)}\n$ printf 'no newline'\nno newline`);
  });

  it("stops at the first failing command and reports its exit code", async () => {
    const { promise, output } = runBuild(["echo first", "echo oops >&2; exit 3", `touch ${dir}/third`]);
    const result = await promise;

    expect(result).toMatchObject({ outcome: "failed", exitCode: 3, signal: null, failedCommand: "echo oops >&2; exit 3" });
    expect(existsSync(path.join(dir, "third"))).toBe(false);
    const text = output.join("");
    expect(text).toContain("$ echo oops >&2; exit 3\noops\n");
    expect(text).toContain('[slipway: "echo oops >&2; exit 3" exited with code 3]');
    expect(text).not.toContain("touch");
  });

  it("times out a plain sleep with SIGTERM", async () => {
    const started = Date.now();
    const { promise, output } = runBuild(["echo before", "sleep 100"], { timeoutMs: 300 });
    const result = await promise;

    expect(result).toMatchObject({ outcome: "timed_out", exitCode: null, signal: "SIGTERM", failedCommand: "sleep 100" });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(output.join("")).toContain("[slipway: timed out after 300 ms, stopping]");
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("kills a command that ignores SIGTERM after the grace period", async () => {
    const started = Date.now();
    const { promise, printed } = runBuild([`trap '' TERM; sleep 100 & echo sleeper=$!; wait`], { timeoutMs: 500 });
    const sleeper = await printed("sleeper");
    const result = await promise;

    expect(result).toMatchObject({ outcome: "timed_out", signal: "SIGKILL" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(800); // timeout + grace
    expect(isAlive(sleeper)).toBe(false);
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("finds and kills a descendant that left the process group with setsid", async () => {
    const { promise, printed } = runBuild(
      [`echo leader=$$; setsid sh -c 'echo escaped=$$; exec sleep 100' & sleep 100`],
      { timeoutMs: 1_500 }, // room to start under load: the premise is checked before it fires
    );
    const leader = await printed("leader");
    const escaped = await printed("escaped");
    // The premise: a signal to the build's group cannot reach it.
    expect(groupOf(escaped).pgrp).not.toBe(groupOf(leader).pgrp);
    expect(groupOf(escaped).session).not.toBe(groupOf(leader).session);

    const result = await promise;
    expect(result.outcome).toBe("timed_out");
    expect(isAlive(escaped)).toBe(false);
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("finds and kills a double-forked orphan in its own session that ignores SIGTERM", async () => {
    const { promise, printed } = runBuild(
      [`(setsid sh -c 'trap "" TERM; echo orphan=$$; exec sleep 100' &) ; sleep 100`],
      { timeoutMs: 1_500 }, // room to start under load: the premise is checked before it fires
    );
    const orphan = await printed("orphan");
    const ignored = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${orphan}/status`, "utf8"))?.[1];
    expect(BigInt(`0x${ignored}`) & (1n << 14n)).toBe(1n << 14n); // SIGTERM (15) is ignored
    expect(groupOf(orphan).pgrp).toBe(orphan); // its own group

    const result = await promise;
    expect(result.outcome).toBe("timed_out");
    expect(isAlive(orphan)).toBe(false);
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("stops background processes a successful build leaves behind", async () => {
    const { promise, output } = runBuild([`setsid sh -c 'echo $$ > ${dir}/daemon.pid; exec sleep 100' > /dev/null 2>&1 &`, "echo built"]);
    const result = await promise;

    expect(result.outcome).toBe("succeeded");
    expect(isAlive(Number(readFileSync(path.join(dir, "daemon.pid"), "utf8")))).toBe(false);
    expect(output.join("")).toContain("[slipway: stopped 1 process(es) left running by the build]");
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("does not hang when a process without the marker keeps the output open", async () => {
    // `env -i` drops SLIPWAY_RUN_MARKER: such a process is out of reach of the scan (the documented limit).
    const { promise, output } = runBuild([`env -i sh -c 'echo $$ > ${dir}/hidden.pid; exec sleep 100' &`]);
    const result = await promise;
    const hidden = Number(readFileSync(path.join(dir, "hidden.pid"), "utf8"));
    try {
      expect(result.outcome).toBe("succeeded");
      expect(output.join("")).toContain("[slipway: the build's output is still open");
    } finally {
      process.kill(hidden, "SIGKILL");
    }
  });

  it("cancels through an AbortSignal", async () => {
    const controller = new AbortController();
    const { promise, output, printed } = runBuild(["echo sleeping=$$; sleep 100"], { signal: controller.signal });
    await printed("sleeping"); // the build step is running
    controller.abort();
    const result = await promise;

    expect(result).toMatchObject({ outcome: "cancelled", signal: "SIGTERM", failedCommand: "echo sleeping=$$; sleep 100" });
    expect(result.durationMs).toBeLessThan(3_000);
    expect(output.join("")).toContain("[slipway: cancelled, stopping]");
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("runs nothing when the signal is already aborted", async () => {
    const { promise, output } = runBuild([`touch ${dir}/ran`], { signal: AbortSignal.abort() });
    const result = await promise;

    expect(result).toMatchObject({ outcome: "cancelled", exitCode: null });
    expect(existsSync(path.join(dir, "ran"))).toBe(false);
    expect(output.join("")).not.toContain("$ touch");
  });

  it("decodes multi-byte UTF-8 split across chunks", async () => {
    // "€" (e2 82 ac) and "🚀" (f0 9f 9a 80) each written in two pieces, on stdout and on stderr.
    const { promise, output } = runBuild([
      "printf 'a\\342\\202'; sleep 0.1; printf '\\254b\\n'",
      "printf 'c\\360\\237\\232' >&2; sleep 0.1; printf '\\200d\\n' >&2",
    ]);
    await promise;

    // Each piece arrived on its own, the partial character held back until it was complete.
    expect(output).toEqual(expect.arrayContaining(["a", "€b\n", "c", "🚀d\n"]));
    expect(output.join("")).not.toContain("\uFFFD");
  });

  it("rejects when onOutput throws, after stopping the processes", async () => {
    const { promise } = runBuild(["echo tick; sleep 100"], {
      onOutput: (text) => {
        if (text.includes("tick")) throw new Error("log is gone");
      },
    });
    await expect(promise).rejects.toThrow("log is gone");
    expect(processesWithMarker(marker)).toEqual([]);
  });

  it("refuses an environment without the run marker", async () => {
    await expect(
      runCommands({ commands: ["true"], cwd: dir, env: { PATH: "/usr/bin:/bin" }, timeoutMs: 1_000, onOutput: () => undefined }),
    ).rejects.toThrow(/SLIPWAY_RUN_MARKER/);
  });
});
