/**
 * `npm run bench` (about 5 minutes on a 2-core machine) and `npm run bench -- --quick`
 * (under a minute): how fast Slipway acknowledges webhooks, how little it adds to a
 * deploy, how many GitHub API calls a revision costs, how its state store scales, how
 * it holds up under many revisions, what the build sandbox costs per command, what
 * parsing a hostile 1 MiB `/deploy` comment costs and how long queued work waits for a
 * listener (one against three, bound against unbound), each as a ratio against a baseline
 * run side by side in the same run. Prints a plain table and
 * writes it as JSON to bench/results/latest.json.
 *
 * It reports; it does not judge the machine: the exit code is 0 unless the benchmark
 * itself broke. Not part of `npm test`.
 *
 * Options: --quick (smaller), --only=ack,deploy,store,throughput,sandbox,databases,commands,leases (a subset),
 * --profile (Slipway servers write CPU profiles to bench/results/profiles/, summarised at the end),
 * --compare <file> (each figure beside the same figure of an earlier results file, with the ratio),
 * --embedded-databases (the throughput run without PostgreSQL: each listener keeps its own databases).
 */
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { createBenchEnvironment, BENCH_DIR } from "./lib/bench-environment.js";
import { startLoadGenerator } from "./lib/load-generator.js";
import { compareReports, formatComparison, readReport } from "./lib/compare-reports.js";
import { formatResultsTable, writeReport, type BenchReport, type ResultRow } from "./lib/results-table.js";
import { summarizeCpuProfiles, type CpuProfileSummary } from "./lib/summarize-cpu-profiles.js";
import { benchCommands } from "./sections/commands.js";
import { benchDatabases } from "./sections/databases.js";
import { benchDeployOverhead } from "./sections/deploy-overhead.js";
import { benchLeaseToStart } from "./sections/lease-to-start.js";
import { benchSandboxOverhead } from "./sections/sandbox-overhead.js";
import { benchStateStore } from "./sections/state-store.js";
import { benchThroughputAndMemory } from "./sections/throughput-and-memory.js";
import { benchWebhookAck } from "./sections/webhook-ack.js";

const SECTIONS = ["ack", "deploy", "store", "throughput", "sandbox", "databases", "commands", "leases"] as const;
type SectionName = (typeof SECTIONS)[number];

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const profile = args.includes("--profile");
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
const unknown = (only ?? []).filter((name) => !SECTIONS.includes(name as SectionName));
if (unknown.length > 0) {
  process.stderr.write(`unknown section(s) ${unknown.join(", ")}; choose from ${SECTIONS.join(", ")}\n`);
  process.exit(2);
}
const selected = (name: SectionName) => !only || only.includes(name);
const compareIndex = args.findIndex((a) => a === "--compare" || a.startsWith("--compare="));
const compareFile = compareIndex < 0 ? undefined : args[compareIndex]!.startsWith("--compare=") ? args[compareIndex]!.slice("--compare=".length) : args[compareIndex + 1];
// Read before the run, so a wrong path is said at once rather than after five minutes.
const earlier = compareFile ? await readReport(compareFile).catch((error: unknown) => {
  process.stderr.write(`--compare: ${(error as Error).message}\n`);
  process.exit(2);
}) : undefined;

const resultsDir = path.join(BENCH_DIR, "results");
const profileDir = profile ? path.join(resultsDir, "profiles", new Date().toISOString().replace(/[:.]/g, "-")) : undefined;
const startedAt = new Date();
const loadAtStart = loadavg();
const started = performance.now();
const env = await createBenchEnvironment({ quick, profileDir });
const load = startLoadGenerator();
const rows: ResultRow[] = [];
const details: Record<string, unknown> = {};
let broken: unknown;

env.say(`benchmark (${quick ? "quick" : "full"}) on ${cpus().length} CPUs, Node ${process.version}; GitHub stand-in at ${env.github.url}`);
try {
  // The state store section runs in this process and touches no server: first, on a quiet machine.
  if (selected("store")) {
    const store = await benchStateStore(env);
    rows.push(...store.rows);
    details.store = store.details;
  }
  // So does the commands section: parseDeployCommand on hostile 1 MiB comments, against the first line by split.
  if (selected("commands")) {
    const commands = benchCommands(env);
    rows.push(...commands.rows);
    details.commands = commands.details;
  }
  // So does the sandbox section: runCommands with one short command, sandboxed and not, alternating.
  if (selected("sandbox")) {
    const sandbox = await benchSandboxOverhead(env);
    rows.push(...sandbox.rows);
    details.sandbox = sandbox.details;
  }
  // So does the leases section: the control plane's services and stand-in listeners over loopback HTTP.
  if (selected("leases")) {
    const leases = await benchLeaseToStart(env);
    rows.push(...leases.rows);
    details.leases = leases.details;
  }
  // The embedded databases, in a child process of their own: a listener's database part alone.
  if (selected("databases")) {
    const databases = await benchDatabases(env);
    rows.push(...databases.rows);
    details.databases = databases.details;
  }
  if (selected("ack")) {
    const ack = await benchWebhookAck(env, load);
    rows.push(...ack.rows);
    details.ack = ack.details;
  }
  if (selected("deploy")) {
    const deploy = await benchDeployOverhead(env);
    rows.push(...deploy.rows);
    details.deploy = deploy.details;
  }
  if (selected("throughput")) {
    const throughput = await benchThroughputAndMemory(env, load, { embeddedDatabases: args.includes("--embedded-databases") });
    rows.push(...throughput.rows);
    details.throughput = throughput.details;
  }
} catch (error) {
  broken = error;
  env.say(`the benchmark broke: ${(error as Error).stack ?? String(error)}`);
} finally {
  env.say("cleaning up");
  await load.close().catch(() => undefined);
  await env.close().catch((error: unknown) => env.say(`cleanup failed: ${(error as Error).message}`));
}

if (profileDir) details.profiles = await summarizeCpuProfiles(profileDir).catch((error: unknown) => ({ error: (error as Error).message }));

const order = (row: ResultRow) => ["1.", "2.", "3.", "4.", "5.", "6.", "7.", "8.", "9."].findIndex((prefix) => row.section.startsWith(prefix));
rows.sort((a, b) => order(a) - order(b));
const report: BenchReport = {
  mode: quick ? "quick" : "full",
  startedAt: startedAt.toISOString(),
  durationSeconds: Math.round((performance.now() - started) / 100) / 10,
  machine: { cpus: cpus().length, node: process.version, platform: `${process.platform} ${process.arch}`, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
  rows,
  details,
  problems: env.problems,
};
const file = path.join(resultsDir, "latest.json");
await writeReport(file, report);

const loadText = (values: number[]) => values.map((v) => v.toFixed(1)).join(" ");
process.stdout.write(
  `\nSlipway benchmark (${report.mode}, ${report.durationSeconds} s, ${report.machine.cpus} CPUs, Node ${report.machine.node}, ` +
    `load average ${loadText(loadAtStart)} at start, ${loadText(report.machine.loadAverageAtEnd)} at end)\n\n`,
);
process.stdout.write(`${formatResultsTable(rows)}\n`);
const notes = rows.filter((row) => row.note).map((row) => `- ${row.figure}: ${row.note}`);
if (notes.length) process.stdout.write(`\nNotes:\n${notes.join("\n")}\n`);
if (env.problems.length) process.stdout.write(`\nProblems seen under load:\n${env.problems.map((p) => `- ${p}`).join("\n")}\n`);
if (profileDir && Array.isArray(details.profiles)) {
  process.stdout.write(`\nCPU profiles (${path.relative(process.cwd(), profileDir)}; whole summaries in details.profiles; \`tsx bench/lib/summarize-cpu-profiles.ts <file>\` for more):\n`);
  for (const profile of details.profiles as CpuProfileSummary[]) {
    process.stdout.write(`- ${path.basename(profile.file)}: ${profile.busyMs} ms busy of ${profile.totalMs} ms\n`);
    for (const f of profile.topSelf.slice(0, 5)) process.stdout.write(`    self ${String(f.percentOfBusy).padStart(5)}%  ${f.where}\n`);
    for (const f of profile.topSlipwayInclusive.slice(0, 5)) process.stdout.write(`    incl ${String(f.percentOfBusy).padStart(5)}%  ${f.where}\n`);
  }
}
if (earlier && compareFile) {
  process.stdout.write(`\nAgainst ${compareFile} (${earlier.mode}, ${earlier.startedAt}):\n\n`);
  process.stdout.write(`${formatComparison(compareReports(earlier, report), { earlier: "earlier", now: "now" })}\n`);
}
process.stdout.write(`\nWritten to ${path.relative(process.cwd(), file)}\n`);
// Exit now rather than wait for whatever a broken section left running.
process.exit(broken ? 1 : 0);
