/**
 * 8. `/deploy` commands: what `parseDeployCommand` costs on hostile 1 MiB comments (anyone who
 * may comment on a pull request can post one, and every comment webhook is parsed), against a
 * baseline on the very same input that cannot be beaten by much: `body.split("\n")[0]`, the
 * comment's first line. Runs alternate between the two, in this process; no server is involved.
 * What the parser answers on these inputs is tested in test/unit/parse-deploy-command.test.ts;
 * this measures how long it takes, which a test should not assert.
 */
import { parseDeployCommand } from "../../src/control-plane/commands/parse-deploy-command.js";
import type { BenchEnvironment } from "../lib/bench-environment.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median, percentile } from "../lib/stats.js";

const SECTION = "8. /deploy commands (parseDeployCommand on a hostile 1 MiB comment; baseline: body.split(\"\\n\")[0] on the same comment)";
const MIB = 1024 * 1024;
/** Linear in the comment's length: a 1 MiB comment is parsed well within this (the bound the unit test once asserted). */
const GOAL_MS = 1_000;

/** Hostile comments of 1 MiB each, named; each is a worst case for one part of the parser. */
const COMMENTS: ReadonlyArray<readonly [name: string, body: string]> = [
  ["blank lines, then the command", `${" \r\n".repeat(MIB / 3)}/deploy`],
  ["spaces, then the command (indented code)", `${" ".repeat(MIB)}/deploy`],
  ["the command, spaces, an argument", `/deploy${" ".repeat(MIB)}help`],
  ["the command, then a 1 MiB argument", `/deploy ${"y".repeat(MIB)}`],
  ["the command, then 1 MiB of lines", `/deploy cancel\n${"x\n".repeat(MIB / 2)}`],
  ["quote markers, then the command", `${"> ".repeat(MIB / 2)}/deploy`],
];

interface CommentResult {
  name: string;
  length: number;
  runs: number;
  /** What parseDeployCommand answered (the same every run). */
  parsed: string;
  median: { parse: number; baseline: number };
  p90: { parse: number; baseline: number };
  max: { parse: number; baseline: number };
}

export function benchCommands(env: BenchEnvironment): { rows: ResultRow[]; details: unknown } {
  const runs = env.quick ? 15 : 60;
  const warmUp = env.quick ? 3 : 10;
  const results: CommentResult[] = [];
  /** Read after the loops, so no call's result is dead code. */
  let sink = 0;

  for (const [name, body] of COMMENTS) {
    const parse = () => parseDeployCommand(body);
    const baseline = () => body.split("\n")[0];
    for (let i = 0; i < warmUp; i++) {
      sink += parse() ? 1 : 0;
      sink += baseline()?.length ?? 0;
    }
    const samples = { parse: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < runs; i++) {
      // Alternate which side goes first, so neither always follows the other's garbage.
      for (const side of i % 2 === 0 ? (["parse", "baseline"] as const) : (["baseline", "parse"] as const)) {
        const started = performance.now();
        const answer = side === "parse" ? parse() : baseline();
        samples[side].push(performance.now() - started);
        sink += typeof answer === "string" ? answer.length : answer ? 1 : 0;
      }
    }
    const result: CommentResult = {
      name,
      length: body.length,
      runs,
      parsed: JSON.stringify(parse()) ?? "undefined",
      median: { parse: round(median(samples.parse)), baseline: round(median(samples.baseline)) },
      p90: { parse: round(percentile(samples.parse, 90)), baseline: round(percentile(samples.baseline, 90)) },
      max: { parse: round(Math.max(...samples.parse)), baseline: round(Math.max(...samples.baseline)) },
    };
    results.push(result);
    env.say(`commands, ${name} (${(body.length / MIB).toFixed(2)} Mi characters) ×${runs}: median ${result.median.parse} ms parsed vs ${result.median.baseline} ms first line; max ${result.max.parse} ms → ${result.parsed}`);
  }

  const rows: ResultRow[] = results.map((result) => ({
    section: SECTION,
    figure: `${result.name}, median of ${result.runs}`,
    unit: "ms",
    slipway: result.median.parse,
    baseline: result.median.baseline,
    baselineIs: "first line by split",
    ratio: ratioOf(result.median.parse, result.median.baseline),
    goal: `max < ${GOAL_MS} ms`,
    met: result.max.parse < GOAL_MS,
    note: `max ${result.max.parse} ms, p90 ${result.p90.parse} ms; parsed as ${result.parsed}`,
  }));
  return { rows, details: { runsPerSide: runs, warmUp, goal: `each parse < ${GOAL_MS} ms`, results, sink } };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
