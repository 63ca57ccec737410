/**
 * 6. Build sandbox overhead: one command run through `runCommands` in the bubblewrap
 * sandbox (`SLIPWAY_SANDBOX=bubblewrap`) and the same command run through `runCommands`
 * without it, alternating run by run so that the machine's noise hits both sides alike:
 * `true` (the sandbox's own per-command cost) and `node -e 0` (a realistic tiny command).
 * Also times `resolveSandbox` (the bubblewrap probe each listener runs at start).
 * Both sides pay runCommands' own fixed costs (the /proc scan for processes left behind,
 * ~15 ms with ~100 processes), so the ratio understates the sandbox against a bare spawn;
 * the difference is what the sandbox adds to each command of a build.
 *
 * Without a usable bubblewrap the section reports a row saying so, and why.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chown, mkdir, mkdtemp } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { buildEnvironment } from "../../src/listener/build/build-environment.js";
import { runCommands } from "../../src/listener/build/run-commands.js";
import { createSandbox, sandboxUserFor } from "../../src/listener/sandbox/create-sandbox.js";
import { resolveSandbox, SandboxUnavailableError } from "../../src/listener/sandbox/resolve-sandbox.js";
import type { Sandbox, SandboxConfig, SandboxUser } from "../../src/listener/sandbox/sandbox.js";
import type { BenchEnvironment } from "../lib/bench-environment.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median, percentile } from "../lib/stats.js";

const SECTION = "6. build sandbox (runCommands with one command: bubblewrap against no sandbox, runs alternating)";
const OVERHEAD_GOAL_MS = 50;
/** Commands that close their output at once: runCommands then never waits its 250 ms for open pipes. */
const COMMANDS = ["true", "node -e 0"] as const;
/** runCommands' wait for output pipes that stay open after a command exits: a run this long probably hit it. */
const DRAIN_MS = 250;
const log = pino({ level: "silent" });

type Mode = "sandboxed" | "unsandboxed";

interface Placement {
  sandbox: Sandbox;
  user: SandboxUser;
  workDir: string;
  homeDir: string;
  tmpDir: string;
}

interface CommandResult {
  command: string;
  runs: number;
  /** Wall-clock time of each runCommands call (ms, 0.01 ms), in the order taken. */
  sandboxedMs: number[];
  unsandboxedMs: number[];
  /** runCommands' own `durationMs` (whole ms), medians: a cross-check. */
  reportedMedianMs: Record<Mode, number>;
  median: Record<Mode, number>;
  p90: Record<Mode, number>;
  /** Difference of the medians: the sandbox's cost per command. */
  overheadMs: number;
  /** Median of the per-pair differences (each sandboxed run against the unsandboxed one next to it). */
  pairedOverheadMs: number;
  /** Runs of ≥ DRAIN_MS, which may have waited for open output pipes (should be 0). */
  slowRuns: Record<Mode, number>;
}

export async function benchSandboxOverhead(env: BenchEnvironment): Promise<{ rows: ResultRow[]; details: unknown }> {
  const runs = env.quick ? 10 : 40;
  const warmUp = env.quick ? 2 : 5;
  const dataDir = await mkdtemp(path.join(env.tmpRoot, "sandbox-"));

  const resolveStarted = performance.now();
  let config: SandboxConfig;
  try {
    config = await resolveSandbox({ policy: "bubblewrap", dataDir, log });
  } catch (error) {
    if (!(error instanceof SandboxUnavailableError)) throw error;
    const resolveMs = round(performance.now() - resolveStarted);
    env.say(`sandbox unavailable (resolveSandbox failed after ${resolveMs} ms): ${error.message}`);
    return {
      rows: [
        {
          section: SECTION,
          figure: "bubblewrap sandbox: unavailable, not measured",
          unit: "ms",
          slipway: null,
          baseline: null,
          ratio: null,
          goal: `overhead < ${OVERHEAD_GOAL_MS} ms per command`,
          met: null,
          note: error.message,
        },
      ],
      details: { available: false, reason: error.message, resolveMs },
    };
  }
  const resolveMs = round(performance.now() - resolveStarted);
  const bwrapVersion = config.bwrapPath ? spawnSync(config.bwrapPath, ["--version"], { encoding: "utf8" }).stdout?.trim() : undefined;
  env.say(`resolveSandbox (bubblewrap probe): ${resolveMs} ms; ${bwrapVersion ?? "bwrap"} at ${config.bwrapPath}, ${config.switchUser ? "switching to a uid of the deployment's own (running as root)" : "in a user namespace"}`);

  // The layout a listener uses: the revision's source and scratch folders, the deployment's HOME.
  const deploymentId = `bench-sandbox-${randomUUID()}`;
  const user = sandboxUserFor(deploymentId);
  const workDir = path.join(dataDir, "work", deploymentId, "rev-1", "source");
  const tmpDir = path.join(dataDir, "work", deploymentId, "rev-1", "tmp");
  const homeDir = path.join(dataDir, "cache", deploymentId, "home");
  const sandbox = createSandbox(config);
  const prepareStarted = performance.now();
  await mkdir(path.dirname(workDir), { recursive: true, mode: 0o700 });
  await mkdir(path.dirname(homeDir), { recursive: true, mode: 0o700 });
  await sandbox.prepare({ homeDir, tmpDir }, user);
  await mkdir(workDir, { mode: 0o700 });
  const owner = sandbox.ownerOf(user);
  if (owner) await chown(workDir, owner.uid, owner.gid);
  const prepareMs = round(performance.now() - prepareStarted);
  const placement: Placement = { sandbox, user, workDir, homeDir, tmpDir };

  const rows: ResultRow[] = [];
  const results: CommandResult[] = [];
  const failures: Record<string, string> = {};
  for (const command of COMMANDS) {
    try {
      // Not counted: the first spawns of bwrap, sh and node (page cache, the JIT of this process).
      for (let i = 0; i < warmUp; i++) {
        await runOnce(command, placement, "sandboxed");
        await runOnce(command, placement, "unsandboxed");
      }
      const samples: Record<Mode, number[]> = { sandboxed: [], unsandboxed: [] };
      const reported: Record<Mode, number[]> = { sandboxed: [], unsandboxed: [] };
      for (let i = 0; i < runs; i++) {
        // Alternate which side goes first, so neither always follows the other.
        const order: Mode[] = i % 2 === 0 ? ["sandboxed", "unsandboxed"] : ["unsandboxed", "sandboxed"];
        for (const mode of order) {
          const run = await runOnce(command, placement, mode);
          samples[mode].push(run.wallMs);
          reported[mode].push(run.reportedMs);
        }
      }
      const result = summarize(command, samples, reported);
      results.push(result);
      env.say(
        `sandbox, \`${command}\` ×${runs}: median ${fmt(result.median.sandboxed)} ms sandboxed vs ${fmt(result.median.unsandboxed)} ms not ` +
          `(p90 ${fmt(result.p90.sandboxed)} vs ${fmt(result.p90.unsandboxed)}); overhead ${fmt(result.overheadMs)} ms (paired ${fmt(result.pairedOverheadMs)} ms)`,
      );
    } catch (error) {
      const message = (error as Error).message;
      failures[command] = message;
      env.problems.push(`sandbox section: \`${command}\` could not be measured: ${message}`);
      env.say(`sandbox, \`${command}\`: could not be measured: ${message}`);
    }
  }

  for (const command of COMMANDS) {
    const result = results.find((r) => r.command === command);
    if (!result) {
      rows.push({
        section: SECTION,
        figure: `\`${command}\`: not measured`,
        unit: "ms",
        slipway: null,
        baseline: null,
        ratio: null,
        goal: `< ${OVERHEAD_GOAL_MS} ms`,
        met: null,
        note: failures[command],
      });
      continue;
    }
    for (const [label, stat] of [["median", result.median], ["p90", result.p90]] as const) {
      rows.push({
        section: SECTION,
        figure: `\`${command}\`, ${label} of ${result.runs}`,
        unit: "ms",
        slipway: stat.sandboxed,
        baseline: stat.unsandboxed,
        baselineIs: "no sandbox",
        ratio: ratioOf(stat.sandboxed, stat.unsandboxed),
        goal: "",
        met: null,
      });
    }
    const slow = result.slowRuns.sandboxed + result.slowRuns.unsandboxed;
    rows.push({
      section: SECTION,
      figure: `\`${command}\`: sandbox overhead per command (difference of medians)`,
      unit: "ms",
      slipway: result.overheadMs,
      baseline: null,
      ratio: null,
      goal: `< ${OVERHEAD_GOAL_MS} ms`,
      met: result.overheadMs < OVERHEAD_GOAL_MS,
      note:
        `median of the ${result.runs} paired differences ${fmt(result.pairedOverheadMs)} ms; wall-clock of runCommands (runCommands' own durationMs medians ${result.reportedMedianMs.sandboxed} / ${result.reportedMedianMs.unsandboxed} ms)` +
        (command === COMMANDS[0] ? `; resolveSandbox (bubblewrap probe at listener start) ${fmt(resolveMs)} ms once` : "") +
        (slow ? `; ${slow} run(s) took ≥ ${DRAIN_MS} ms and may have waited for open output pipes` : ""),
    });
  }

  return {
    rows,
    details: {
      available: true,
      resolveMs,
      prepareMs,
      bwrapVersion,
      config,
      user,
      runsPerSide: runs,
      warmUpPairs: warmUp,
      goal: `overhead < ${OVERHEAD_GOAL_MS} ms per command`,
      results,
      failures,
    },
  };
}

/** One runCommands call with one command, in the sandbox or not; rejects unless it succeeded. */
async function runOnce(command: string, placement: Placement, mode: Mode): Promise<{ wallMs: number; reportedMs: number }> {
  const runMarker = `slipway-bench-${randomUUID()}`;
  const env = buildEnvironment({
    configEnv: { NODE_ENV: "production" },
    databaseUrl: "postgres://bench:bench@127.0.0.1:5432/bench",
    sha: "0".repeat(40),
    ref: "main",
    environment: "production",
    revisionId: "bench-sandbox-revision",
    runMarker,
    home: placement.homeDir,
  });
  let output = "";
  const started = performance.now();
  const result = await runCommands({
    commands: [command],
    cwd: placement.workDir,
    env,
    timeoutMs: 30_000,
    killGraceMs: 1_000,
    onOutput: (text) => {
      output = (output + text).slice(-2_000);
    },
    ...(mode === "sandboxed" ? { sandbox: { sandbox: placement.sandbox, user: placement.user, homeDir: placement.homeDir, tmpDir: placement.tmpDir } } : {}),
  });
  const wallMs = performance.now() - started;
  if (result.outcome !== "succeeded") {
    throw new Error(`${mode}: ${result.outcome} (exit code ${result.exitCode}, signal ${result.signal}); output: ${output.trim().replace(/\s+/g, " ").slice(-500)}`);
  }
  return { wallMs, reportedMs: result.durationMs };
}

function summarize(command: string, samples: Record<Mode, number[]>, reported: Record<Mode, number[]>): CommandResult {
  const pairs = samples.sandboxed.map((ms, i) => ms - samples.unsandboxed[i]!);
  const m = { sandboxed: round(median(samples.sandboxed)), unsandboxed: round(median(samples.unsandboxed)) };
  return {
    command,
    runs: samples.sandboxed.length,
    sandboxedMs: samples.sandboxed.map(round),
    unsandboxedMs: samples.unsandboxed.map(round),
    reportedMedianMs: { sandboxed: median(reported.sandboxed), unsandboxed: median(reported.unsandboxed) },
    median: m,
    p90: { sandboxed: round(percentile(samples.sandboxed, 90)), unsandboxed: round(percentile(samples.unsandboxed, 90)) },
    overheadMs: round(m.sandboxed - m.unsandboxed),
    pairedOverheadMs: round(median(pairs)),
    slowRuns: { sandboxed: samples.sandboxed.filter((ms) => ms >= DRAIN_MS).length, unsandboxed: samples.unsandboxed.filter((ms) => ms >= DRAIN_MS).length },
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function fmt(ms: number): string {
  return ms.toFixed(1);
}
