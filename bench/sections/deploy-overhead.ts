/**
 * 2. Deploy overhead: the same build command run directly with /bin/sh, and through
 * Slipway (push delivered → check run `completed` at the stand-in), for a deployment's
 * first revision (its embedded database is created) and for later ones.
 * 3. GitHub API calls per revision, counted at the stand-in for each of those lifecycles.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { openDatabaseBackend } from "../../src/listener/database/database-backend.js";
import type { RecordedRequest, StandInRepositoryHandle } from "github-stand-in";
import { sendWebhook } from "github-stand-in/send-webhook";
import { WEBHOOK_SECRET, type BenchEnvironment, type BenchServer } from "../lib/bench-environment.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median } from "../lib/stats.js";
import { watchRevisions, type RevisionWatch } from "../lib/watch-revisions.js";

const DEPLOY = "2. deploy overhead (push delivered → check run completed at the stand-in, against the command run by hand)";
const CALLS = "3. GitHub API calls per revision (counted at the stand-in, whole lifecycle, no PR comment)";
const OVERHEAD_GOAL_MS = 300;
const API_CALL_GOAL = 8;

/** One revision's lifecycle, as the stand-in and Slipway's JSON API saw it. */
export interface Lifecycle {
  sha: string;
  ackMs: number;
  /** Push sent → check run `completed` arrived at the stand-in. */
  totalMs: number;
  /** First revisions: the direct database setup measured just before it (paired baseline). */
  databaseSampleMs?: number;
  conclusion: string | null | undefined;
  /** Where the time went, from the revision's own timestamps (ms). */
  breakdown: {
    pushToRevisionCreated: number;
    createdToBuildStarted: number;
    /** Build phase started → the source download reached the stand-in: the Bree worker's start and the token. */
    buildStartedToSourceRequested: number;
    databasePhase: number | null;
    buildPhase: number | null;
    finishedToCheckRunCompleted: number;
  } | null;
  /** Requests to the GitHub API (not codeload) in the whole lifecycle, by operation. */
  /** Not counting installation-wide token mints (below). */
  apiCalls: number;
  /**
   * Mints of the installation's own token (no `repositories` in the request): one per
   * installation per hour, shared by all its revisions, so not a cost of this revision.
   * The bench gives every repository a new installation, so a first revision has one.
   */
  installationTokens: number;
  byOperation: Record<string, number>;
  /** Source downloads from the stand-in's codeload (codeload.github.com on GitHub: not the API). */
  codeloadDownloads: number;
}

interface RevisionView {
  createdAt: string;
  finishedAt: string | null;
  phases: Array<{ name: string; startedAt: string; finishedAt: string | null; note: string | null }>;
}

export async function benchDeployOverhead(env: BenchEnvironment): Promise<{ rows: ResultRow[]; details: unknown }> {
  const commands = env.quick
    ? [{ command: "sleep 1", direct: 1, later: 1, first: 1 }]
    : [
        { command: "sleep 1", direct: 3, later: 3, first: 1 },
        { command: "sleep 10", direct: 1, later: 1, first: 1 },
      ];
  // A lifecycle is over when GitHub has heard nothing more about the repository for this long.
  const quietMs = env.quick ? 750 : 1_500;

  // The database setup on its own: the embedded backend's provision + connect, called directly.
  const database = await measureDatabaseSetup(env);
  const directSetup = database.samples.length ? `${database.warmMs} ms` : "warmed up (measured before each first revision)";
  env.say(`database setup called directly: ${directSetup}${database.coldMs === null ? " (template from bench/results/cache)" : `; ${database.coldMs} ms on a fresh data folder (embedded server initdb and start, then one setup)`}`);

  // The first command's direct runs go side by side with the server's start-up.
  const [server, firstDirect] = await Promise.all([
    env.startServer({ name: "slipway-deploy", dataDir: await env.seededDataDir("slipway-deploy"), profile: true }),
    (async () => {
      const runs: number[] = [];
      for (let i = 0; i < commands[0]!.direct; i++) runs.push(await runDirectly(commands[0]!.command));
      return runs;
    })(),
  ]);
  const watch = watchRevisions(env.github);
  const rows: ResultRow[] = [];
  const details: Record<string, unknown> = { database, commands: {} };
  try {
    // Warm up (full run): JIT, the Bree job code, the embedded listener's first database.
    if (!env.quick) {
      const warmRepo = env.addRepository("deploy-warm-up", "build:\n  commands: ['true']\n");
      await lifecycle(env, server, watch, warmRepo, "build:\n  commands: ['true']\n", quietMs);
    }

    const lifecyclesByCommand: Record<string, { direct: number[]; first: Lifecycle[]; later: Lifecycle[] }> = {};
    for (const spec of commands) {
      const direct: number[] = spec === commands[0] ? firstDirect : [];
      for (let i = 0; i < spec.direct && spec !== commands[0]; i++) direct.push(await runDirectly(spec.command));
      const config = `build:\n  commands: [${JSON.stringify(spec.command)}]\n`;
      const first: Lifecycle[] = [];
      const later: Lifecycle[] = [];
      for (let f = 0; f < spec.first; f++) {
        const databaseSampleMs = await database.sample();
        const repo = env.addRepository(`deploy-${spec.command.replace(/\W+/g, "-")}-${f}`, config);
        first.push({ ...(await lifecycle(env, server, watch, repo, config, quietMs)), databaseSampleMs });
        env.say(`${spec.command}: first revision ${first.at(-1)!.totalMs} ms (direct ${median(direct)} ms, database setup just before ${databaseSampleMs} ms)`);
        if (f === 0) {
          for (let i = 0; i < spec.later; i++) {
            later.push(await lifecycle(env, server, watch, repo, config, quietMs));
            env.say(`${spec.command}: later revision ${later.at(-1)!.totalMs} ms`);
          }
        }
      }
      lifecyclesByCommand[spec.command] = { direct, first, later };
    }
    details.commands = lifecyclesByCommand;

    for (const [command, { direct, first, later }] of Object.entries(lifecyclesByCommand)) {
      const directMs = median(direct);
      const laterMs = median(later.map((l) => l.totalMs));
      const firstMs = median(first.map((l) => l.totalMs));
      const laterOverhead = laterMs - directMs;
      // Paired: each first revision against the direct database setup measured just before it
      // (the setup alone varies by ±200 ms from one minute to the next on this machine).
      const firstBeyondDatabase = median(first.map((l) => l.totalMs - (l.databaseSampleMs ?? database.warmMs))) - directMs;
      const pairedDatabaseMs = median(first.map((l) => l.databaseSampleMs ?? database.warmMs));
      rows.push({ section: DEPLOY, figure: `\`${command}\`, later revision: push → check run completed`, unit: "ms", slipway: laterMs, baseline: directMs, baselineIs: "sh -c", ratio: ratioOf(laterMs, directMs), goal: "", met: null });
      rows.push({
        section: DEPLOY,
        figure: `\`${command}\`, later revision: overhead`,
        unit: "ms",
        slipway: laterOverhead,
        baseline: null,
        ratio: null,
        goal: `< ${OVERHEAD_GOAL_MS} ms`,
        met: laterOverhead < OVERHEAD_GOAL_MS,
        note: describeBreakdown(later, directMs),
      });
      rows.push({ section: DEPLOY, figure: `\`${command}\`, first revision: push → check run completed`, unit: "ms", slipway: firstMs, baseline: directMs + pairedDatabaseMs, baselineIs: "sh -c + database setup just before", ratio: ratioOf(firstMs, directMs + pairedDatabaseMs), goal: "", met: null });
      rows.push({
        section: DEPLOY,
        figure: `\`${command}\`, first revision: overhead beyond the database setup`,
        unit: "ms",
        slipway: firstBeyondDatabase,
        baseline: null,
        ratio: null,
        goal: `< ${OVERHEAD_GOAL_MS} ms`,
        met: firstBeyondDatabase < OVERHEAD_GOAL_MS,
        note: describeBreakdown(first, directMs),
      });
    }
    const allFirst = Object.values(lifecyclesByCommand).flatMap((c) => c.first);
    const databasePhase = median(allFirst.map((l) => l.breakdown?.databasePhase ?? Number.NaN).filter(Number.isFinite));
    rows.push({
      section: DEPLOY,
      figure: "database phase of a first revision (embedded PostgreSQL)",
      unit: "ms",
      slipway: databasePhase,
      baseline: database.warmMs,
      baselineIs: "provision + connect, direct (median)",
      ratio: ratioOf(databasePhase, database.warmMs),
      goal: "",
      met: null,
      note: `the phase runs provision in a Bree worker; connect runs after it, before the build phase${database.coldMs === null ? "" : `. A fresh data folder first initialises and starts its embedded PostgreSQL server: ${database.coldMs} ms directly`}`,
    });

    const callRow = (figure: string, lifecycles: Lifecycle[]): ResultRow => {
      const calls = median(lifecycles.map((l) => l.apiCalls));
      const example = lifecycles.find((l) => l.apiCalls === calls) ?? lifecycles[0]!;
      return {
        section: CALLS,
        figure,
        unit: "",
        slipway: calls,
        baseline: null,
        ratio: null,
        goal: `≤ ${API_CALL_GOAL}`,
        met: calls <= API_CALL_GOAL,
        note: `${Object.entries(example.byOperation).map(([op, n]) => `${op} ${n}`).join(", ")}; plus ${example.codeloadDownloads} codeload download (not the API)${example.installationTokens ? ` and ${example.installationTokens} mint of the installation's own token (once an hour per installation, shared by all its revisions; ${calls + example.installationTokens} counting it)` : ""}`,
      };
    };
    for (const [command, { first, later }] of Object.entries(lifecyclesByCommand)) {
      rows.push(callRow(`\`${command}\`, first revision`, first));
      rows.push(callRow(`\`${command}\`, later revision`, later));
    }
  } finally {
    watch.close();
    const errors = server.errorLines();
    if (errors.length) env.problems.push(`${server.name}: ${errors.length} error lines in its log (first: ${errors[0]!.slice(0, 300)})`);
    await Promise.all([server.stop(), database.close()]);
  }
  return { rows, details };
}

/** Pushes a new commit, waits for its check run to complete and for GitHub to be told everything, and says what it cost. */
export async function lifecycle(env: BenchEnvironment, server: BenchServer, watch: RevisionWatch, repo: StandInRepositoryHandle, config: string, quietMs: number): Promise<Lifecycle> {
  const { github } = env;
  const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "revision.txt": String(Math.random()) } });
  const firstRequest = github.requests.length;
  const pushedAt = Date.now();
  const started = performance.now();
  const response = await sendWebhook({
    url: `${server.url}/api/github/webhooks`,
    secret: WEBHOOK_SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
  });
  const ackMs = Math.round(performance.now() - started);
  if (response.status >= 300) throw new Error(`Slipway answered ${response.status} to a push: ${response.body}`);
  const progress = await watch.until(repo.fullName, sha, (p) => p.checkRunCompletedAt !== undefined, 120_000);
  await watch.until(repo.fullName, sha, (p) => p.finalStatusAt !== undefined, 60_000);
  // Time itself: requests are counted until none about the repository came for quietMs (stragglers after the final status).
  await watch.quiet(repo.fullName, quietMs);

  const requests = github.requests.slice(firstRequest).filter((r) => belongsTo(r, repo));
  const api = requests.filter((r) => r.operationId !== "codeload");
  const isInstallationToken = (r: RecordedRequest) =>
    r.operationId === "apps/create-installation-access-token" && !(r.body as { repositories?: unknown } | undefined)?.repositories;
  const byOperation: Record<string, number> = {};
  for (const request of api) {
    if (isInstallationToken(request)) continue;
    const name = request.operationId === "apps/create-installation-access-token" ? "source token (apps/create-installation-access-token, one repository)" : (request.operationId ?? `${request.method} ${request.path}`);
    byOperation[name] = (byOperation[name] ?? 0) + 1;
  }
  const installationTokens = api.filter(isInstallationToken).length;

  let breakdown: Lifecycle["breakdown"] = null;
  const answer = progress.revisionId ? await fetch(`${server.url}/api/v1/revisions/${progress.revisionId}`).catch(() => undefined) : undefined;
  if (answer?.ok) {
    const view = (await answer.json()) as RevisionView | { revision: RevisionView };
    const revision = "revision" in view ? view.revision : view;
    const at = (iso: string | null | undefined) => (iso ? Date.parse(iso) : Number.NaN);
    const phase = (name: string) => revision.phases.find((p) => p.name === name);
    const span = (name: string) => {
      const p = phase(name);
      return p?.finishedAt ? at(p.finishedAt) - at(p.startedAt) : null;
    };
    breakdown = {
      pushToRevisionCreated: at(revision.createdAt) - pushedAt,
      createdToBuildStarted: at(phase("build")?.startedAt) - at(revision.createdAt),
      buildStartedToSourceRequested: (progress.tarballAt ?? Number.NaN) - at(phase("build")?.startedAt),
      databasePhase: span("database"),
      buildPhase: span("build"),
      finishedToCheckRunCompleted: progress.checkRunCompletedAt! - at(revision.finishedAt),
    };
  }
  return {
    sha,
    ackMs,
    totalMs: progress.checkRunCompletedAt! - pushedAt,
    conclusion: progress.conclusion,
    breakdown,
    apiCalls: api.length - installationTokens,
    installationTokens,
    byOperation,
    codeloadDownloads: requests.length - api.length,
  };
}

/** Requests about this repository or its installation (tokens). */
function belongsTo(request: RecordedRequest, repo: StandInRepositoryHandle): boolean {
  return (
    request.path.startsWith(`/repos/${repo.owner}/${repo.name}/`) ||
    request.path.startsWith(`/_codeload/${repo.owner}/${repo.name}/`) ||
    request.path === `/app/installations/${repo.installationId}/access_tokens`
  );
}

function describeBreakdown(lifecycles: Lifecycle[], directMs: number): string {
  const parts = lifecycles.map((l) => l.breakdown).filter((b): b is NonNullable<Lifecycle["breakdown"]> => b !== null);
  if (parts.length === 0) return "no breakdown (revision not readable)";
  const m = (pick: (b: NonNullable<Lifecycle["breakdown"]>) => number | null) => Math.round(median(parts.map(pick).filter((v): v is number => v !== null && Number.isFinite(v))));
  const database = m((b) => b.databasePhase);
  return [
    `push → revision recorded ${m((b) => b.pushToRevisionCreated)} ms`,
    `recorded → build started ${m((b) => b.createdToBuildStarted)} ms${Number.isFinite(database) ? ` (database phase ${database} ms)` : ""}`,
    `build phase ${m((b) => b.buildPhase)} ms vs ${Math.round(directMs)} ms by hand (of it, until the source was requested: ${m((b) => b.buildStartedToSourceRequested)} ms)`,
    `finished → check run completed at GitHub ${m((b) => b.finishedToCheckRunCompleted)} ms`,
  ].join("; ");
}

/** Runs a command with /bin/sh -c, as a build would, and answers how long it took (ms). */
async function runDirectly(command: string): Promise<number> {
  const started = performance.now();
  const child = spawn("/bin/sh", ["-c", command], { stdio: "ignore" });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`\`${command}\` exited with ${code}`);
  return Math.round(performance.now() - started);
}

/**
 * Provision + connect of the embedded backend, called directly, for new deployments. On a
 * fresh data folder the embedded server is initialised and started first (`coldMs`); the
 * warm figures are setups on that running server.
 */
async function measureDatabaseSetup(env: BenchEnvironment): Promise<{ coldMs: number | null; warmMs: number; samples: number[]; sample(): Promise<number>; close(): Promise<void> }> {
  const dataDir = await env.seededDataDir("database-direct");
  const opening = performance.now();
  const backend = await openDatabaseBackend({ dataDir, log: pino({ level: "silent" }) });
  const serverStartMs = Math.round(performance.now() - opening);
  let n = 0;
  const setup = async (environment: string) => {
    const identity = { installationId: 1, repository: "bench/database", environment };
    const started = performance.now();
    const { url } = await backend.provision(identity);
    await backend.connect(identity, url);
    return Math.round(performance.now() - started);
  };
  const samples: number[] = [];
  const result = {
    coldMs: null as number | null,
    samples,
    get warmMs() {
      return median(samples);
    },
    /** One more direct setup, taken right before a first revision: side by side, as the machine is then. */
    async sample() {
      const ms = await setup(`warm-${n++}`);
      samples.push(ms);
      return ms;
    },
    close: () => backend.close(),
  };
  try {
    // Cold: the embedded server's first start (initdb) and the first setup on it.
    result.coldMs = serverStartMs + (await setup("cold"));
    if (result.coldMs !== null) await env.saveDatabaseTemplate(dataDir);
    if (result.coldMs === null) await setup("warm-up");
    for (let i = 0; i < (env.quick ? 0 : 2); i++) await result.sample(); // each first revision adds one
    return result;
  } catch (error) {
    await backend.close();
    throw error;
  }
}
