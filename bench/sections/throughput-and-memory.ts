/**
 * 5. Throughput and memory: many revisions of a no-op build across many repositories with
 * two listeners (the embedded one and one `npm run listener` child); revisions per second,
 * the control plane's peak RSS, and its heap before and after a soak of signed deliveries.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { KEEP_DELIVERIES } from "../../src/store/open-state-store.js";
import { sendWebhook } from "github-stand-in/send-webhook";
import type { StandInRepositoryHandle } from "github-stand-in";
import { pushPayload } from "github-stand-in/webhook-payloads";
import { followOutput, freePort } from "../../tools/start-slipway.js";
import { readDeliveries, sendMarker, waitForDeliveriesHandled } from "../../tools/slipway-deliveries.js";
import { BENCH_DATABASE_URL, dropBenchDatabases, postgresReachable } from "../lib/bench-postgres.js";
import { BENCH_DIR, WEBHOOK_SECRET, type BenchEnvironment, type BenchServer } from "../lib/bench-environment.js";
import type { LoadGenerator } from "../lib/load-generator.js";
import { readHeapAfterGc, readProcessCpuSeconds, readProcessMemory, sampleProcessMemory } from "../lib/process-memory.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { summarizeLatencies } from "../lib/stats.js";
import { watchRevisions } from "../lib/watch-revisions.js";

const SECTION = "5. throughput and memory (control plane with embedded listener + one `npm run listener`)";
const MIB = 1024 * 1024;
const PLACEHOLDER = "feedfacefeedfacefeedfacefeedfacefeedface";
const CONFIG = "build:\n  commands: []\n";
/** Heap growth over the soak that still counts as noise: this much, or five times what two idle readings differ by. */
const HEAP_NOISE_FLOOR = 1 * 1024 * 1024;

export async function benchThroughputAndMemory(env: BenchEnvironment, load: LoadGenerator, options: { embeddedDatabases?: boolean } = {}): Promise<{ rows: ResultRow[]; details: unknown }> {
  // The soak stops early after soakSeconds, so a slow Slipway cannot stretch the run; the figure then says how many it got.
  const settings = env.quick
    ? // With embedded databases, later revisions are what fails: make some.
      { repositories: 8, revisionsPerRepository: options.embeddedDatabases ? 3 : 1, soak: 500, soakSeconds: 10 }
    : { repositories: 50, revisionsPerRepository: 10, soak: 10_000, soakSeconds: 60 };
  const settleMs = env.quick ? 1_000 : 3_000;
  const total = settings.repositories * settings.revisionsPerRepository;
  const token = randomBytes(24).toString("base64url");
  const port = await freePort();
  const controlPlaneUrl = `http://127.0.0.1:${port}`;
  // Two listeners with their own data folders (as on two machines) need one database server:
  // an embedded database lives on the disk of the listener that made it (--embedded-databases shows why).
  const postgres = !options.embeddedDatabases && (await postgresReachable());
  if (!options.embeddedDatabases && !postgres) env.problems.push(`throughput: PostgreSQL at ${BENCH_DATABASE_URL.replace(/\/\/[^@]*@/, "//")} is not reachable (set SLIPWAY_BENCH_DATABASE_URL); ran with embedded databases`);
  if (postgres) await dropBenchDatabases();
  const shared = { SLIPWAY_CONTROL_PLANE_URL: controlPlaneUrl, SLIPWAY_LISTENER_TOKEN: token, ...(postgres ? { SLIPWAY_DATABASE_URL: BENCH_DATABASE_URL } : {}) };
  const databases = postgres ? "one PostgreSQL server (SLIPWAY_DATABASE_URL)" : "embedded PGlite databases";
  // Embedded databases start from the cached template; with PostgreSQL there is nothing to seed.
  const dataDir = (name: string) => (postgres ? mkdtemp(path.join(env.tmpRoot, `${name}-`)) : env.seededDataDir(name));

  const [server, listener] = await Promise.all([
    env.startServer({ name: "slipway-throughput", port, env: shared, heapProbe: true, profile: true, dataDir: await dataDir("slipway-throughput") }),
    startStandaloneListener({ ...shared, SLIPWAY_DATA_DIR: await dataDir("listener"), SLIPWAY_ROUTER_PORT: "0", LOG_LEVEL: "info" }),
  ]);
  env.say(`standalone listener started (npm run listener, pid ${listener.process.pid})`);
  const watch = watchRevisions(env.github);
  const rows: ResultRow[] = [];
  const details: Record<string, unknown> = { settings, databases };
  try {
    // Time itself: "idle" is the RSS after settleMs of doing nothing once both have started.
    await sleep(settleMs);
    const idle = (await readProcessMemory(server.process.pid!))!;
    const memory = sampleProcessMemory(server.process.pid!);
    const repos = Array.from({ length: settings.repositories }, (_, i) => env.addRepository(`throughput-${i}`, CONFIG));

    // Each repository pushes its next commit as soon as the previous revision is being built
    // (its source was downloaded), so no revision is superseded and the queue never runs dry.
    const shas: Array<{ repo: StandInRepositoryHandle; sha: string }> = [];
    const cpuBefore = await readProcessCpuSeconds(server.process.pid!);
    const started = Date.now();
    await Promise.all(
      repos.map(async (repo) => {
        for (let k = 0; k < settings.revisionsPerRepository; k++) {
          const sha = env.github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": CONFIG, "n.txt": String(k) } });
          shas.push({ repo, sha });
          const response = await sendWebhook({ url: `${server.url}/api/github/webhooks`, secret: WEBHOOK_SECRET, event: "push", payload: env.github.pushPayload({ repository: repo, ref: "main", after: sha }) });
          if (response.status >= 300) throw new Error(`push answered ${response.status}: ${response.body}`);
          // Building (its source was fetched), or already finished (a failure may never fetch it).
          if (k < settings.revisionsPerRepository - 1) await watch.until(repo.fullName, sha, (p) => p.tarballAt !== undefined || p.checkRunCompletedAt !== undefined, 300_000);
        }
      }),
    );
    const completed = await Promise.all(shas.map(({ repo, sha }) => watch.until(repo.fullName, sha, (p) => p.checkRunCompletedAt !== undefined, 600_000)));
    const finished = Math.max(...completed.map((p) => p.checkRunCompletedAt!));
    const seconds = (finished - started) / 1000;
    const controlPlaneCpu = (await readProcessCpuSeconds(server.process.pid!)) - cpuBefore;
    const failed = completed.filter((p) => p.conclusion !== "success").length;
    env.say(`throughput: ${total} revisions in ${seconds.toFixed(1)} s (${failed} not successful)`);
    // GitHub has been told all: every revision's final deployment status arrived.
    await Promise.all(shas.map(({ repo, sha }) => watch.until(repo.fullName, sha, (p) => p.finalStatusAt !== undefined, 120_000)));
    const peak = await memory.stop();

    // Who built what: the control plane logs the listener of every lease.
    const leases = server.output().split("\n").filter((line) => line.includes('"revision leased"'));
    const embedded = leases.filter((line) => line.includes('"listener":"embedded-')).length;

    const directSeconds = await runDirectly(total, 4);
    rows.push({ section: SECTION, figure: `revisions per second (${total} no-op builds, ${settings.repositories} repositories, 2 listeners)`, unit: "/s", slipway: total / seconds, baseline: total / directSeconds, baselineIs: "sh -c true, 4 at a time", ratio: ratioOf(total / seconds, total / directSeconds), goal: "", met: null, note: `push → last check run completed ${seconds.toFixed(1)} s; ${failed} not successful; leases: ${embedded} embedded listener, ${leases.length - embedded} standalone; databases: ${databases}; the control plane process (with the embedded listener and its workers) used ${controlPlaneCpu.toFixed(0)} CPU-seconds of the ${(2 * seconds).toFixed(0)} the machine had` });
    rows.push({ section: SECTION, figure: "control plane peak RSS (VmHWM) during the run", unit: "MiB", slipway: peak.peakRss / MIB, baseline: idle.rss / MIB, baselineIs: "idle after start", ratio: ratioOf(peak.peakRss, idle.rss), goal: "", met: null, note: `highest RSS sampled every 250 ms: ${(peak.maxSampledRss / MIB).toFixed(0)} MiB; the embedded listener and its builds' workers run in this process${postgres ? "" : ", and it serves its deployments' PGlite databases"}` });
    if (failed > 0) {
      const failures = shas
        .map(({ repo, sha }) => env.github.checkRuns({ owner: repo.owner, name: repo.name }).find((run) => run.headSha === sha))
        .filter((run) => run && run.conclusion !== "success")
        .map((run) => `${run!.owner}/${run!.repo}@${run!.headSha.slice(0, 7)}: ${run!.output.title ?? ""} — ${(run!.output.summary ?? "").replace(/\s+/g, " ").slice(0, 300)}`);
      env.problems.push(`throughput: ${failed} of ${total} revisions did not succeed:\n    ${failures.slice(0, 5).join("\n    ")}`);
      details.failures = failures;
    }

    // Soak: deliveries to a branch no environment tracks (recorded, config read once per
    // repository, ignored). First enough of them that the store holds as many deliveries as
    // it ever keeps (KEEP_DELIVERIES), so that "before" and "after" are both steady states.
    const templates = repos.map((repo) => ({ json: JSON.stringify(pushPayload({ repository: repo, installationId: repo.installationId, ref: "bench-untracked", after: PLACEHOLDER })), installationId: repo.installationId }));
    const untrackedPushes = (count: number, maxSeconds: number) =>
      load.run({
        url: `${server.url}/api/github/webhooks`,
        secret: WEBHOOK_SECRET,
        templates,
        placeholder: PLACEHOLDER,
        deliveries: Array.from({ length: count }, (_, i) => ({ template: i % repos.length, sha: randomBytes(20).toString("hex") })),
        mode: { kind: "max", connections: 10, maxSeconds },
      });
    const statePending = async () => Object.values(await readDeliveries(server.dataDir)).filter((d) => d.status === "pending").length;
    /**
     * Waits until deliveries.json shows no delivery still to be processed; returns whether it got there.
     * Acknowledged deliveries reach deliveries.json from the journal a little later: a marker (a tag
     * push, recorded as ignored) sent after the soak is in the file only once all before it are.
     */
    const processedAll = async () => {
      const marker = await sendMarker(env.github, repos[0]!, { url: `${server.url}/api/github/webhooks`, secret: WEBHOOK_SECRET });
      return waitForDeliveriesHandled(server.dataDir, "all", { marker, timeoutMs: 180_000 }).then(
        () => true,
        () => false,
      );
    };
    const priming = await untrackedPushes(Math.min(KEEP_DELIVERIES, settings.soak), settings.soakSeconds);
    await processedAll();
    env.say(`soak: primed with ${priming.completed} deliveries`);
    const before = await readHeapAfterGc(server.process.pid!, server.heapFile!);
    // Time itself: the heap's noise is what two idle readings settleMs apart differ by.
    await sleep(settleMs);
    const beforeAgain = await readHeapAfterGc(server.process.pid!, server.heapFile!);
    const firstRequest = env.github.requests.length;
    const soakCpuBefore = await readProcessCpuSeconds(server.process.pid!);
    const soak = await untrackedPushes(settings.soak, settings.soakSeconds);
    const delivered = soak.completed;
    const soakSummary = summarizeLatencies(soak.latencies);
    env.say(`soak: ${soak.completed} deliveries at ${soak.achievedRate.toFixed(0)}/s (p99 ${soakSummary.p99.toFixed(0)} ms); waiting for Slipway to process them`);
    const allProcessed = await processedAll();
    const processed = allProcessed ? delivered : delivered - (await statePending());
    const configReads = env.github.requests.slice(firstRequest).filter((r) => r.operationId === "repos/get-content").length;
    const soakCpu = (await readProcessCpuSeconds(server.process.pid!)) - soakCpuBefore;
    // Read as `before` was: once every delivery was processed.
    const after = await readHeapAfterGc(server.process.pid!, server.heapFile!);
    const state = JSON.parse(await readFile(path.join(server.dataDir, "state.json"), "utf8")) as { revisions: Record<string, unknown> };
    const kept = Object.keys(await readDeliveries(server.dataDir)).length;
    env.say(`soak processed ${processed}/${delivered}; heap ${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB; deliveries in deliveries.json ${kept}`);

    const noise = Math.abs(beforeAgain.heapUsed - before.heapUsed);
    const allowedGrowth = Math.max(HEAP_NOISE_FLOOR, 5 * noise);
    const growth = after.heapUsed - before.heapUsed;
    rows.push({
      section: SECTION,
      figure: `heap used after GC, after a ${delivered.toLocaleString("en")}-delivery soak`,
      unit: "MiB",
      slipway: after.heapUsed / MIB,
      baseline: before.heapUsed / MIB,
      baselineIs: "before it",
      ratio: ratioOf(after.heapUsed, before.heapUsed),
      goal: `growth ≤ ${mib(allowedGrowth)} MiB (noise)`,
      met: growth <= allowedGrowth,
      note: `${growth > 0 ? `+${mib(growth)} MiB, ${((growth / 1024) / Math.max(1, delivered)).toFixed(2)} KiB per delivery; ` : ""}read in the server after two full GCs (bench/lib/server-probe.mjs, SIGUSR2); two readings ${settleMs / 1000} s apart before the soak differ by ${(noise / MIB).toFixed(2)} MiB; RSS ${mib(before.rss)} → ${mib(after.rss)} MiB; soak acks ${soak.achievedRate.toFixed(0)}/s, p99 ${soakSummary.p99.toFixed(0)} ms, ${((soakCpu * 1000) / Math.max(1, delivered)).toFixed(1)} ms of control-plane CPU per delivery; ${processed} of ${delivered} processed with ${configReads} config reads (kept between deliveries); primed with ${priming.completed} deliveries first${delivered < settings.soak ? `; stopped after ${settings.soakSeconds} s, short of ${settings.soak.toLocaleString("en")}` : ""}`,
    });
    rows.push({ section: SECTION, figure: "RSS after the soak", unit: "MiB", slipway: after.rss / MIB, baseline: before.rss / MIB, baselineIs: "before it", ratio: ratioOf(after.rss, before.rss), goal: "", met: null });
    rows.push({ section: SECTION, figure: "deliveries kept in deliveries.json after the soak", unit: "", slipway: kept, baseline: null, ratio: null, goal: `≤ ${KEEP_DELIVERIES} + 50 (KEEP_DELIVERIES; pruned every 50 changes)`, met: kept <= KEEP_DELIVERIES + 50, note: `state.json holds ${Object.keys(state.revisions).length} revisions` });
    const failedSoak = Object.entries(soak.statusCounts).filter(([status]) => !status.startsWith("2")).reduce((sum, [, n]) => sum + n, 0) + soak.errors + soak.timeouts;
    if (delivered < settings.soak) env.problems.push(`soak: Slipway acknowledged only ${delivered} of ${settings.soak} deliveries in ${settings.soakSeconds} s (${soak.achievedRate.toFixed(0)}/s as fast as it answered; p99 ${soakSummary.p99.toFixed(0)} ms)`);
    if (failedSoak > 0) env.problems.push(`soak: ${failedSoak} of ${settings.soak} deliveries failed (${JSON.stringify(soak.statusCounts)}, ${soak.errors} errors, ${soak.timeouts} timeouts)`);
    if (processed < delivered) env.problems.push(`soak: Slipway had processed only ${processed} of ${delivered} deliveries 3 minutes after the soak`);
    Object.assign(details, { seconds, controlPlaneCpu, soakCpu, failed, leases: { total: leases.length, embedded }, idleRss: idle.rss, peak, heap: { before, beforeAgain, after }, soak: { ...soakSummary, rate: soak.achievedRate, statusCounts: soak.statusCounts, processed }, deliveriesKept: kept });
  } finally {
    watch.close();
    for (const [name, lines] of [[server.name, server.errorLines()], ["standalone listener", listener.errorLines()]] as const) {
      if (lines.length) env.problems.push(`${name}: ${lines.length} error lines in its log (first: ${lines[0]!.slice(0, 300)})`);
    }
    const stopping = performance.now();
    await Promise.all([listener.stop().then(() => env.saveLog("standalone-listener", listener.output())), server.stop()]);
    env.say(`throughput: both listeners and the control plane stopped in ${((performance.now() - stopping) / 1000).toFixed(1)} s`);
    if (postgres) await dropBenchDatabases().catch((error: unknown) => env.say(`could not drop the benchmark's databases: ${(error as Error).message}`));
  }
  return { rows, details };
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

/** `npm run listener` as its own process group, so it can be stopped as a whole. */
async function startStandaloneListener(extraEnv: Record<string, string>): Promise<{ process: ChildProcess; output(): string; errorLines(): string[]; stop(): Promise<void> }> {
  const child = spawn("npm", ["run", "--silent", "listener"], {
    cwd: path.resolve(BENCH_DIR, ".."),
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", LOG_FORMAT: "json", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output = followOutput(child);
  const exited = once(child, "exit");
  try {
    await output.waitFor('"listener started"', { timeoutMs: 30_000, description: "its start-up line" });
  } catch (error) {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
    throw new Error(`the standalone listener did not start: ${(error as Error).message}`);
  }
  return {
    process: child,
    output: output.text,
    errorLines: () => output.text().split("\n").filter((line) => /"level":(5\d|60)/.test(line)),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-child.pid!, "SIGTERM");
      const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 40_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** `count` runs of `/bin/sh -c true`, `concurrency` at a time: the builds alone. Seconds. */
async function runDirectly(count: number, concurrency: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < count) await once(spawn("/bin/sh", ["-c", "true"], { stdio: "ignore" }), "exit");
    }),
  );
  return (performance.now() - started) / 1000;
}
