import { createServer } from "node:http";
import { openInProcessQueue } from "../../support/in-process-queue.js";
import type { AddressInfo } from "node:net";
import nock from "nock";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SlipwayOctokit } from "../../../src/control-plane/github/slipway-octokit.js";
import { createMetrics, type SlipwayMetrics } from "../../../src/control-plane/metrics/create-metrics.js";
import { createMetricsRoute } from "../../../src/control-plane/metrics/metrics-route.js";
import { observedFetch } from "../../../src/control-plane/metrics/observe-github-requests.js";
import type { RevisionWork, WorkEvent } from "../../../src/protocol/listener-protocol.js";
import { readSettings, SettingsError } from "../../../src/settings.js";
import { repository, revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { parsePrometheusText } from "../../support/prometheus-text.js";

const opened: SlipwayMetrics[] = [];
afterEach(() => {
  for (const metrics of opened.splice(0)) metrics.close();
  nock.cleanAll();
  nock.enableNetConnect();
});

async function setup() {
  const { store, presence, registry, lifecycle, queue } = await openInProcessQueue();
  const lease = async (listenerId = "listener-a") => {
    presence.seen(listenerId, { kind: "bubblewrap", policy: "auto" });
    return (await queue.lease(listenerId, 0)) as RevisionWork;
  };
  const add = (overrides: Parameters<typeof revisionRequest>[0] = {}) => lifecycle.queue(revisionRequest(overrides));
  const start = () => {
    const metrics = createMetrics({ store, presence, registry });
    opened.push(metrics);
    return metrics;
  };
  const scrape = async (metrics: SlipwayMetrics) => parsePrometheusText(await metrics.registry.metrics());
  return { store, presence, registry, lifecycle, queue, lease, add, start, scrape };
}

/** A phase that started `startSecond` seconds after `t0` and took `seconds`, as a listener reports it. */
function phase(name: "database" | "build" | "deploy", t0: number, startSecond: number, seconds: number, outcome: "succeeded" | "failed" = "succeeded"): WorkEvent[] {
  const at = (s: number) => new Date(t0 + s * 1000).toISOString();
  const finished = { type: "phase_finished" as const, phase: name, at: at(startSecond + seconds), outcome };
  const database = name === "database" ? { database: { name: "slipway_a", url: "postgresql://a:b@127.0.0.1/slipway_a", created: true, onListener: false } } : {};
  return [{ type: "phase_started", phase: name, at: at(startSecond) }, { ...finished, ...database }];
}

describe("metrics", () => {
  it("counts each revision once when it finishes, by environment kind and final state, and times its phases", async () => {
    const { store, lifecycle, queue, lease, add, start, scrape } = await setup();
    const t0 = Date.now() - 60_000;
    // Finished before this process's metrics began: not counted (counters start at zero with the process).
    await add({ sha: sha(1) });
    const before = await lease();
    await queue.complete("listener-a", before.leaseId, { outcome: "DEPLOYED", events: phase("database", t0, 0, 3) });
    // Under way when the metrics began, its database phase already over: only its build is timed.
    await add({ sha: sha(2) });
    const underWay = await lease();
    await queue.heartbeat("listener-a", underWay.leaseId, { events: phase("database", t0, 0, 100) });

    const metrics = start();
    expect((await scrape(metrics)).value("slipway_revisions_total", { environment_kind: "production", outcome: "DEPLOYED" })).toBeUndefined();

    await queue.complete("listener-a", underWay.leaseId, { outcome: "DEPLOYED", events: phase("build", t0, 100, 5) });
    await add({ environment: "pr-7", sha: sha(3), pullRequest: { number: 7, headRepository: repository.fullName, fork: false } });
    const preview = await lease();
    await queue.complete("listener-a", preview.leaseId, { outcome: "BUILD_FAILED", error: "exit 1", events: [...phase("database", t0, 0, 2), ...phase("build", t0, 2, 7, "failed")] });
    const { revision: staging } = await add({ environment: "staging", sha: sha(4) });
    await lifecycle.cancel(staging.id, "Cancelled by @octocat");
    // A closed preview announces its finished revisions again: they are not counted twice.
    await lifecycle.closePreview(preview.deployment.id, "pull request closed");

    const parsed = await scrape(metrics);
    expect(parsed.families.get("slipway_revisions_total")?.type).toBe("counter");
    const revisions = parsed.samples.filter((s) => s.name === "slipway_revisions_total");
    expect(revisions.map((s) => [s.labels, s.value])).toEqual(
      expect.arrayContaining([
        [{ environment_kind: "production", outcome: "DEPLOYED" }, 1],
        [{ environment_kind: "preview", outcome: "BUILD_FAILED" }, 1],
        [{ environment_kind: "environment", outcome: "CANCELLED" }, 1],
      ]),
    );
    expect(revisions).toHaveLength(3);
    expect(parsed.families.get("slipway_revision_phase_duration_seconds")?.type).toBe("histogram");
    expect(parsed.value("slipway_revision_phase_duration_seconds_count", { phase: "database" })).toBe(1);
    expect(parsed.value("slipway_revision_phase_duration_seconds_sum", { phase: "database" })).toBe(2);
    expect(parsed.value("slipway_revision_phase_duration_seconds_count", { phase: "build" })).toBe(2);
    expect(parsed.value("slipway_revision_phase_duration_seconds_sum", { phase: "build" })).toBe(12);
    expect(parsed.value("slipway_revision_phase_duration_seconds_bucket", { phase: "build", le: "5" })).toBe(1);
    expect(parsed.value("slipway_revision_phase_duration_seconds_bucket", { phase: "build", le: "10" })).toBe(2);
    expect(store.state.revisions[staging.id]!.state).toBe("CANCELLED");
  });

  it("measures the work queue and the present listeners at each scrape, and names no repository", async () => {
    const { presence, registry, add, lease, start, scrape } = await setup();
    const metrics = start();
    expect((await scrape(metrics)).value("slipway_work_queue_depth")).toBe(0);
    await add({ sha: sha(1) });
    await add({ environment: "staging", sha: sha(2) });
    await add({ environment: "eu-production", sha: sha(3), pool: "eu" });
    expect((await scrape(metrics)).value("slipway_work_queue_depth")).toBe(3);
    await registry.join({ listenerId: "listener-a", pool: "default" });
    await registry.join({ listenerId: "listener-eu", pool: "eu" });
    await lease("listener-a");
    presence.seen("listener-eu", { kind: "none", policy: "auto" }, "eu", Date.now() - 60_000); // gone a minute ago

    const text = await metrics.registry.metrics();
    const parsed = parsePrometheusText(text);
    expect(parsed.value("slipway_work_queue_depth")).toBe(2);
    expect(parsed.value("slipway_listeners", { pool: "default" })).toBe(1);
    expect(parsed.value("slipway_listeners", { pool: "eu" })).toBe(0);
    // The default process metrics come along.
    expect(parsed.families.get("process_cpu_user_seconds_total")?.type).toBe("counter");
    expect(parsed.families.get("nodejs_eventloop_lag_seconds")?.type).toBe("gauge");
    expect(text).not.toContain(repository.name);
    expect(text).not.toContain(repository.owner);
  });

  it("counts webhook deliveries by event, and those refused for their signature as invalid", async () => {
    const { start, scrape } = await setup();
    const metrics = start();
    const receive = vi.fn(async () => {});
    const sink = metrics.countWebhooks({ verify: async (_payload, signature) => signature === "good", receive });
    expect(await sink.verify("{}", "good")).toBe(true);
    await sink.receive({ id: "1", name: "push", payload: {} });
    await sink.receive({ id: "2", name: "push", payload: {} });
    await sink.receive({ id: "3", name: "check_run", payload: {} });
    await sink.receive({ id: "4", name: "Push\"{evil}", payload: {} });
    expect(await sink.verify("{}", "forged")).toBe(false);
    expect(receive).toHaveBeenCalledTimes(4);

    const parsed = await scrape(metrics);
    expect(parsed.value("slipway_webhook_deliveries_total", { event: "push" })).toBe(2);
    expect(parsed.value("slipway_webhook_deliveries_total", { event: "check_run" })).toBe(1);
    expect(parsed.value("slipway_webhook_deliveries_total", { event: "other" })).toBe(1);
    expect(parsed.value("slipway_webhook_deliveries_total", { event: "invalid" })).toBe(1);
  });

  it("counts GitHub requests by method and status, and keeps the lowest rate limit left", async () => {
    const { start, scrape } = await setup();
    const metrics = start();
    const resetIn = (seconds: number) => String(Math.floor(Date.now() / 1000) + seconds);
    const answer = (status: number, remaining: string, reset: string) =>
      vi.fn(async () => new Response("{}", { status, headers: { "x-ratelimit-remaining": remaining, "x-ratelimit-reset": reset, "x-ratelimit-resource": "core" } }));
    await observedFetch("42", answer(200, "4000", resetIn(600)))("https://api.github.com/repos/o/r", { method: "GET" });
    await observedFetch("43", answer(201, "120", resetIn(600)))("https://api.github.com/repos/o/r/check-runs", { method: "POST" });
    await observedFetch("44", answer(404, "7", resetIn(-5)))("https://api.github.com/repos/o/r", { method: "GET" }); // its window is over
    const refused = observedFetch("42", async () => {
      throw new TypeError("fetch failed");
    });
    await expect(refused("https://api.github.com/repos/o/r", { method: "PATCH" })).rejects.toThrow("fetch failed");

    const parsed = await scrape(metrics);
    expect(parsed.value("slipway_github_requests_total", { method: "GET", status: "200" })).toBe(1);
    expect(parsed.value("slipway_github_requests_total", { method: "POST", status: "201" })).toBe(1);
    expect(parsed.value("slipway_github_requests_total", { method: "GET", status: "404" })).toBe(1);
    expect(parsed.value("slipway_github_requests_total", { method: "PATCH", status: "error" })).toBe(1);
    expect(parsed.value("slipway_github_rate_limit_remaining", { resource: "core" })).toBe(120);
  });

  it("sees the requests of Slipway's Octokit class", async () => {
    const { start, scrape } = await setup();
    const metrics = start();
    nock.disableNetConnect();
    const scope = nock("https://api.github.com")
      .get("/repos/octo-org/hello-world")
      .reply(200, { id: 1 }, { "x-ratelimit-remaining": "4321", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 600) });
    const octokit = new SlipwayOctokit({ auth: { token: "ghs_test" }, log: silentLog, throttle: { enabled: false }, retry: { enabled: false } } as never);
    await octokit.request("GET /repos/{owner}/{repo}", { owner: "octo-org", repo: "hello-world" });
    scope.done();

    const parsed = await scrape(metrics);
    expect(parsed.value("slipway_github_requests_total", { method: "GET", status: "200" })).toBe(1);
    expect(parsed.value("slipway_github_rate_limit_remaining", { resource: "core" })).toBe(4321);
  });

  it("GET /metrics asks for SLIPWAY_METRICS_TOKEN when it is set", async () => {
    const { start } = await setup();
    const token = "metrics-token-0123456789";
    const route = createMetricsRoute({ metrics: start(), token });
    const server = createServer((request, response) => {
      void route(request, response, new URL(request.url!, "http://x").pathname).then((handled) => handled || response.writeHead(404).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    try {
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: "Bearer metrics-token-0123456788" } })).status).toBe(401);
      expect((await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` } })).status).toBe(405);
      const answer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(answer.status).toBe(200);
      expect(answer.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(parsePrometheusText(await answer.text()).value("slipway_work_queue_depth")).toBe(0);
    } finally {
      server.close();
    }
  });

  it("reads SLIPWAY_METRICS_TOKEN, refusing a short one", () => {
    expect(readSettings({ SLIPWAY_METRICS_TOKEN: "metrics-token-0123456789" }).metricsToken).toBe("metrics-token-0123456789");
    expect(readSettings({}).metricsToken).toBeUndefined();
    expect(() => readSettings({ SLIPWAY_METRICS_TOKEN: "short" })).toThrow(SettingsError);
  });
});
