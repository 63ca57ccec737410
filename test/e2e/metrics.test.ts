/**
 * `GET /metrics`, end to end: the real server with SLIPWAY_METRICS_TOKEN set, GitHub played
 * by the stand-in. Pushes deploy and fail; the scrape (parsed strictly as Prometheus would)
 * shows the counters moved, and no repository's name anywhere.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { generateAppKey } from "../support/app-credentials.js";
import { parsePrometheusText } from "../support/prometheus-text.js";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";

const SECRET = "e2e-webhook-secret";
const METRICS_TOKEN = "e2e-metrics-token-0123456789";
let github: GitHubStandIn;
let slipway: RunningSlipway;
let workDir: string;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-metrics-"));
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
      SLIPWAY_METRICS_TOKEN: METRICS_TOKEN,
    },
  });
});

afterAll(async () => {
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

async function scrape() {
  const response = await fetch(`${slipway.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(response.status).toBe(200);
  const text = await response.text();
  return { text, parsed: parsePrometheusText(text) };
}

async function pushAndFinish(repo: StandInRepositoryHandle, config: string) {
  const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "app.txt": String(Math.random()) } });
  const response = await sendWebhook({ url: `${slipway.url}/api/github/webhooks`, secret: SECRET, event: "push", payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }) });
  expect(response.status).toBeLessThan(300);
  return github.waitFor(
    (gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((run) => run.headSha === sha && run.status === "completed"),
    { timeoutMs: 60_000, description: `a completed check run on ${repo.fullName}@${sha.slice(0, 7)}` },
  );
}

describe("GET /metrics", () => {
  it("refuses a scrape without SLIPWAY_METRICS_TOKEN", async () => {
    expect((await fetch(`${slipway.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${slipway.url}/metrics`, { headers: { authorization: "Bearer not-the-metrics-token" } })).status).toBe(401);
  });

  it("counts revisions as they finish, times their phases, and counts webhooks and GitHub requests, naming no repository", async () => {
    const { parsed: before } = await scrape();
    expect(before.value("slipway_revisions_total", { environment_kind: "production", outcome: "DEPLOYED" })).toBeUndefined();
    expect(before.value("slipway_listeners", { pool: "default" })).toBe(1); // the embedded listener

    const config = "build:\n  commands: ['echo building']\n";
    const repo = github.addRepository({ owner: "zebra-metrics-owner", name: "quokka-metrics-shop", installationId: 501, files: { ".github/slipway.yml": config } });
    expect((await pushAndFinish(repo, config)).conclusion).toBe("success");
    const afterDeploy = (await scrape()).parsed;
    expect(afterDeploy.value("slipway_revisions_total", { environment_kind: "production", outcome: "DEPLOYED" })).toBe(1);
    expect(afterDeploy.value("slipway_revision_phase_duration_seconds_count", { phase: "database" })).toBe(1);
    expect(afterDeploy.value("slipway_revision_phase_duration_seconds_count", { phase: "build" })).toBe(1);

    const broken = "build:\n  commands: ['exit 3']\n";
    const brokenRepo = github.addRepository({ owner: "zebra-metrics-owner", name: "quokka-metrics-broken", installationId: 502, files: { ".github/slipway.yml": broken } });
    expect((await pushAndFinish(brokenRepo, broken)).conclusion).toBe("failure");

    const { text, parsed } = await scrape();
    expect(parsed.value("slipway_revisions_total", { environment_kind: "production", outcome: "DEPLOYED" })).toBe(1);
    expect(parsed.value("slipway_revisions_total", { environment_kind: "production", outcome: "BUILD_FAILED" })).toBe(1);
    expect(parsed.value("slipway_revision_phase_duration_seconds_count", { phase: "build" })).toBe(2);
    expect(parsed.value("slipway_webhook_deliveries_total", { event: "push" })).toBe(2);
    expect(parsed.value("slipway_work_queue_depth")).toBe(0);
    const githubRequests = parsed.samples.filter((s) => s.name === "slipway_github_requests_total").reduce((sum, s) => sum + s.value, 0);
    expect(githubRequests).toBeGreaterThan(0);
    expect(parsed.value("slipway_github_rate_limit_remaining", { resource: "core" })).toBeGreaterThan(0);
    expect(parsed.families.get("process_resident_memory_bytes")?.type).toBe("gauge");
    for (const name of ["zebra-metrics-owner", "quokka-metrics-shop", "quokka-metrics-broken"]) expect(text).not.toContain(name);
  });
});
