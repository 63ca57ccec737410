/**
 * 1. Webhook acknowledgement: signed `push` deliveries at a fixed rate, as fast as
 * possible, and at rising rates, against Slipway and against a no-op Probot app started
 * the same way. Slipway runs with SLIPWAY_LISTENER=off: revisions are queued and reported
 * to GitHub but never built, so builds cannot distort the figure.
 */
import type { StandInRepositoryHandle } from "github-stand-in";
import { pushPayload } from "github-stand-in/webhook-payloads";
import { WEBHOOK_SECRET, type BenchEnvironment, type BenchServer } from "../lib/bench-environment.js";
import type { LoadGenerator, LoadJob, LoadResult } from "../lib/load-generator.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { summarizeLatencies, type LatencySummary } from "../lib/stats.js";

const SECTION = "1. webhook acknowledgement (baseline: a no-op Probot app)";
const PLACEHOLDER = "feedfacefeedfacefeedfacefeedfacefeedface";
const UNTRACKED_BRANCH = "bench-untracked";
const REPOSITORIES = 10;
const P99_LIMIT_MS = 100;

type Target = "noop" | "ignore" | "enqueue";
type Mode = "fixed" | "max" | "steps";

interface RunSummary extends LatencySummary {
  achievedRate: number;
  durationMs: number;
  statusCounts: Record<string, number>;
  errors: number;
  timeouts: number;
  failed: number;
}

interface StepSummary extends RunSummary {
  rate: number;
  passed: boolean;
}

export async function benchWebhookAck(env: BenchEnvironment, load: LoadGenerator): Promise<{ rows: ResultRow[]; details: unknown }> {
  // stepSeconds in whole seconds: the load generator paces a rate per second.
  const settings = env.quick
    ? { count: 100, fixedRate: 100, connections: 10, maxSeconds: 5, steps: [100, 200, 400, 800], stepSeconds: 1, warmUp: 50, freshServerPerMode: false }
    : { count: 2_000, fixedRate: 100, connections: 10, maxSeconds: 20, steps: [25, 50, 100, 200, 400, 800, 1600], stepSeconds: 2, warmUp: 100, freshServerPerMode: true };
  const config = ["environments:", "  production: { branch: main }", "build:", "  commands: []", ""].join("\n");
  const repos = Array.from({ length: REPOSITORIES }, (_, i) => env.addRepository(`ack-${i}`, config));
  const templates = {
    ignore: repos.map((repo) => template(repo, UNTRACKED_BRANCH)),
    enqueue: repos.map((repo) => template(repo, "main")),
  };

  function deliveries(target: Target, count: number): LoadJob["deliveries"] {
    return Array.from({ length: count }, (_, i) => {
      const index = i % repos.length;
      const repo = repos[index]!;
      // The enqueue path makes a revision of each commit, so each must exist at the stand-in.
      const sha = target === "enqueue" ? env.github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "n.txt": String(i) } }) : randomSha();
      return { template: index, sha };
    });
  }

  async function startTarget(target: Target, mode?: Mode): Promise<BenchServer> {
    const name = `${target === "noop" ? "noop-probot" : `slipway-ack-${target}`}${mode ? `-${mode}` : ""}`;
    const server =
      target === "noop"
        ? await env.startServer({ name, script: "bench/lib/noop-probot-app.ts", profile: true })
        : await env.startServer({ name, env: { SLIPWAY_LISTENER: "off" }, profile: true });
    // Warm up (JIT, installation tokens, connections) before anything is measured.
    await fire(server, target, settings.warmUp, { kind: "max", connections: 2 });
    return server;
  }

  async function fire(server: BenchServer, target: Target, count: number, mode: LoadJob["mode"]): Promise<RunSummary> {
    const result = await load.run({
      url: `${server.url}/api/github/webhooks`,
      secret: WEBHOOK_SECRET,
      templates: target === "noop" ? templates.ignore : templates[target],
      placeholder: PLACEHOLDER,
      deliveries: deliveries(target, count),
      mode,
    });
    return summarize(result);
  }

  const results: Record<Target, Partial<Record<Mode, RunSummary | StepSummary[]>>> = { noop: {}, ignore: {}, enqueue: {} };
  const errorLogs: Record<string, string[]> = {};
  // Quick: one server per target, all started at once (start-up is most of a quick run).
  const started = settings.freshServerPerMode ? undefined : await Promise.all((["noop", "ignore", "enqueue"] as const).map((target) => startTarget(target)));
  for (const target of ["noop", "ignore", "enqueue"] as const) {
    let server: BenchServer | undefined = started?.[["noop", "ignore", "enqueue"].indexOf(target)];
    let mode: Mode = "fixed";
    const serverFor = async () => (server ??= await startTarget(target, settings.freshServerPerMode ? mode : undefined));
    const done = async () => {
      if (!server) return;
      const errors = server.errorLines();
      if (errors.length) {
        errorLogs[`${server.name}`] = [...(errorLogs[server.name] ?? []), ...errors.slice(0, 20)];
        env.problems.push(`${server.name}: ${errors.length} error lines in its log under load (first: ${errors[0]!.slice(0, 300)})`);
      }
      // Slipway's graceful stop would wait 5 s for GitHub writes queued by thousands of pushes.
      await server.stopQuickly();
      server = undefined;
    };

    // A server that falls behind the rate is cut off 5 s after the last delivery was due.
    const fixed = await fire(await serverFor(), target, settings.count, { kind: "rate", rate: settings.fixedRate, maxSeconds: settings.count / settings.fixedRate + 5 });
    results[target].fixed = fixed;
    env.say(`ack ${target}: ${fixed.count} of ${settings.count} at ${settings.fixedRate}/s → p50 ${fixed.p50.toFixed(1)} ms, p99 ${fixed.p99.toFixed(1)} ms, max ${fixed.max.toFixed(0)} ms, ${fixed.failed} failed`);
    if (settings.freshServerPerMode) await done();

    mode = "max";
    // Stops early after maxSeconds, so a slow server cannot stretch the run: the figure says how many it got.
    const max = await fire(await serverFor(), target, settings.count, { kind: "max", connections: settings.connections, maxSeconds: settings.maxSeconds });
    results[target].max = max;
    env.say(`ack ${target}: ${max.count} of ${settings.count} as fast as possible → ${max.achievedRate.toFixed(0)}/s, p50 ${max.p50.toFixed(1)} ms, p99 ${max.p99.toFixed(1)} ms, ${max.failed} failed`);
    if (settings.freshServerPerMode) await done();

    mode = "steps";
    const steps: StepSummary[] = [];
    for (const rate of settings.steps) {
      const run = await fire(await serverFor(), target, Math.round(rate * settings.stepSeconds), { kind: "rate", rate });
      const passed = run.p99 < P99_LIMIT_MS && run.failed === 0 && run.achievedRate >= rate * 0.95;
      steps.push({ ...run, rate, passed });
      env.say(`ack ${target}: step ${rate}/s → achieved ${run.achievedRate.toFixed(0)}/s, p99 ${run.p99.toFixed(1)} ms${passed ? "" : " (not sustained)"}`);
      if (!passed) break;
      // Time itself: a breather between load steps, as a load test's ramp has (no signal says "recovered").
      await new Promise((resolve) => setTimeout(resolve, env.quick ? 200 : 300));
    }
    results[target].steps = steps;
    await done();
  }


  const rows: ResultRow[] = [];
  const noop = results.noop as Record<Mode, RunSummary> & { steps: StepSummary[] };
  const label = { ignore: "untracked branch", enqueue: "tracked branch" } as const;
  for (const target of ["ignore", "enqueue"] as const) {
    const own = results[target] as Record<Mode, RunSummary> & { steps: StepSummary[] };
    const row = (figure: string, unit: string, slipway: number, baseline: number, goal = "", lowerIsBetter = true): ResultRow => {
      const ratio = ratioOf(slipway, baseline);
      const met = goal === "" || ratio === null ? null : lowerIsBetter ? ratio <= 1.5 : ratio >= 1 / 1.5;
      return { section: SECTION, figure: `${label[target]}: ${figure}`, unit, slipway, baseline, ratio, goal, met };
    };
    const fixedName = `${settings.count} at ${settings.fixedRate}/s`;
    if (own.fixed.count < settings.count) env.problems.push(`ack ${target}: at ${settings.fixedRate}/s Slipway answered only ${own.fixed.count} of ${settings.count} deliveries by 5 s after the last was due (it falls behind that rate)`);
    rows.push(row(`p50, ${fixedName}`, "ms", own.fixed.p50, noop.fixed.p50));
    rows.push({
      ...row(`p99, ${fixedName}`, "ms", own.fixed.p99, noop.fixed.p99, "≤ 1.5× no-op"),
      note: own.fixed.count < settings.count ? `answered ${own.fixed.count} of ${settings.count} by 5 s after the last was due; the rest were cut off, so the true p99 is higher` : undefined,
    });
    rows.push(row(`max, ${fixedName}`, "ms", own.fixed.max, noop.fixed.max));
    const maxName = `as fast as possible (${settings.count}, or ${settings.maxSeconds} s)`;
    rows.push(row(`rate, ${maxName}`, "/s", own.max.achievedRate, noop.max.achievedRate));
    rows.push(row(`p50, ${maxName}`, "ms", own.max.p50, noop.max.p50));
    rows.push(row(`p99, ${maxName}`, "ms", own.max.p99, noop.max.p99, "≤ 1.5× no-op"));
    rows.push(row(`max, ${maxName}`, "ms", own.max.max, noop.max.max));
    const sustained = (steps: StepSummary[]) => steps.filter((s) => s.passed).at(-1)?.rate ?? 0;
    const ceiling = (steps: StepSummary[]) => (steps.every((s) => s.passed) ? " (every step passed: the figure is a floor)" : "");
    const below = (steps: StepSummary[]) => (sustained(steps) === 0 ? ` (below the first step, ${settings.steps[0]}/s)` : "");
    rows.push({
      ...row(`highest rate with p99 < ${P99_LIMIT_MS} ms`, "/s", sustained(own.steps), sustained(noop.steps)),
      note:
        `steps of ${settings.stepSeconds} s: ${settings.steps.join(", ")}/s; "as fast as possible" uses ${settings.connections} connections and sent ${own.max.count} (no-op: ${noop.max.count})` +
        `${ceiling(own.steps)}${below(own.steps)}${ceiling(noop.steps) || below(noop.steps) ? `; no-op${ceiling(noop.steps)}${below(noop.steps)}` : ""}`,
    });
    for (const mode of ["fixed", "max"] as const) {
      if (own[mode].failed > 0) env.problems.push(`ack ${target} (${mode}): ${own[mode].failed} of ${own[mode].count + own[mode].errors} deliveries failed (status ${JSON.stringify(own[mode].statusCounts)}, ${own[mode].errors} errors, ${own[mode].timeouts} timeouts)`);
    }
  }
  return { rows, details: { settings, results, errorLogs, listener: "SLIPWAY_LISTENER=off (revisions are queued and reported, never built)" } };
}

function template(repo: StandInRepositoryHandle, branch: string): { json: string; installationId: number } {
  const payload = pushPayload({ repository: repo, installationId: repo.installationId, ref: branch, after: PLACEHOLDER });
  return { json: JSON.stringify(payload), installationId: repo.installationId };
}

function randomSha(): string {
  let sha = "";
  while (sha.length < 40) sha += Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0");
  return sha.slice(0, 40);
}

function summarize(result: LoadResult): RunSummary {
  const non2xx = Object.entries(result.statusCounts)
    .filter(([status]) => !status.startsWith("2"))
    .reduce((sum, [, n]) => sum + n, 0);
  return {
    ...summarizeLatencies(result.latencies),
    achievedRate: result.achievedRate,
    durationMs: result.durationMs,
    statusCounts: result.statusCounts,
    errors: result.errors,
    timeouts: result.timeouts,
    failed: non2xx + result.errors + result.timeouts,
  };
}
