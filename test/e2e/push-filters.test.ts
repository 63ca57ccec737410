/**
 * Path filters and skip markers, end to end: the real server, signed webhooks, and GitHub
 * played by the OpenAPI-validating stand-in, whose compare API completes a long push.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { generateAppKey } from "../support/app-credentials.js";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";

const SECRET = "e2e-webhook-secret";
const CONFIG = "environments:\n  api: { branch: main, paths: ['services/api/**'] }\nbuild:\n  commands: ['true']\n";
let github: GitHubStandIn;
let slipway: RunningSlipway;
let workDir: string;
let nextInstallation = 300;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-filters-"));
  slipway = await startSlipway({ env: standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }) });
});

afterAll(async () => {
  expect(github?.violations).toEqual([]);
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

function repository(name: string): StandInRepositoryHandle {
  return github.addRepository({ owner: "acme", name, installationId: nextInstallation++, files: { ".github/slipway.yml": CONFIG, "web/index.html": "0" } });
}

/** `count` commits on main, each changing `web/index.html`; the first also `services/api/server.js` when asked. */
function commits(repo: StandInRepositoryHandle, count: number, options: { touchApi?: boolean; message?: string } = {}): string {
  let sha = repo.headSha;
  for (let i = 1; i <= count; i++) {
    const api: Record<string, string> = options.touchApi ? { "services/api/server.js": "1" } : {};
    sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": CONFIG, "web/index.html": String(i), ...api }, message: i === count ? options.message : undefined });
  }
  return sha;
}

async function push(repo: StandInRepositoryHandle, after: string, maxCommits?: number) {
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo, ref: "main", before: repo.headSha, after, maxCommits }),
  });
  expect(response.status).toBeLessThan(300);
}

function completedCheckRun(repo: StandInRepositoryHandle, sha: string) {
  return github.waitFor((gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((run) => run.headSha === sha && run.status === "completed"), {
    timeoutMs: 60_000,
    description: `a completed check run on ${repo.fullName}@${sha.slice(0, 7)}`,
  });
}

describe.concurrent("push filters", () => {
  it("a skip marker in the head commit's message: a skipped check run, no deployment", async () => {
    const repo = repository("marker");
    const sha = commits(repo, 1, { touchApi: true, message: "Tidy up [skip deploy]" });
    await push(repo, sha);
    const run = await completedCheckRun(repo, sha);
    expect(run).toMatchObject({ name: "slipway/api", conclusion: "skipped" });
    expect(run.output.summary).toContain("[skip deploy] in the head commit's message");
    expect(github.deployments({ owner: repo.owner, name: repo.name })).toEqual([]);
  });

  it("a push of 21 commits, its payload cut to 20, is completed through the compare API", async () => {
    // The one commit that changes services/api is the oldest, and not in the payload.
    const repo = repository("long-push");
    const first = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": CONFIG, "web/index.html": "0", "services/api/server.js": "1" } });
    const sha = commits({ ...repo, headSha: first }, 20, { touchApi: true });
    await push(repo, sha, 20);
    const run = await completedCheckRun(repo, sha);
    expect(run).toMatchObject({ name: "slipway/api", conclusion: "success" });

    const webOnly = repository("long-push-web");
    const other = commits(webOnly, 21);
    await push(webOnly, other, 20);
    const skipped = await completedCheckRun(webOnly, other);
    expect(skipped).toMatchObject({ name: "slipway/api", conclusion: "skipped" });
    expect(skipped.output.summary).toContain("no changed file matches environments.api.paths: services/api/**");
    const compares = github.requests.filter((r) => r.operationId === "repos/compare-commits-with-basehead");
    expect(compares.length).toBeGreaterThanOrEqual(2);
  });
});
