/**
 * Preview expiry end to end: the real server and the OpenAPI-validating GitHub stand-in.
 * The server runs on the real clock, so the preview is made old by moving its dates in the
 * stopped server's state.json 10 days back; the check that runs at start-up expires it.
 * (Idle thresholds and the clock itself are covered in test/unit/control-plane/preview-expiry.test.ts.)
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";
import { issueCommentPayload } from "github-stand-in/webhook-payloads";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";
import { testDatabaseUrl } from "../support/postgres.js";
import type { StateDocument } from "../../src/store/model.js";

const SECRET = "e2e-expiry-secret";
const DAY = 24 * 60 * 60 * 1000;
let github: GitHubStandIn;
let slipway: RunningSlipway | undefined;
let workDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-expiry-"));
  env = {
    ...standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
    SLIPWAY_DATABASE_URL: testDatabaseUrl,
    SLIPWAY_SANDBOX: "off",
  };
  slipway = await startSlipway({ env });
});

afterAll(async () => {
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

it("a preview idle longer than previews.expire_after_days is torn down at the next check, and /deploy brings it back", async () => {
  const repo = github.addRepository({
    owner: "acme",
    name: "expiry",
    installationId: 900,
    files: { ".github/slipway.yml": "previews: { expire_after_days: 7 }\nbuild:\n  commands: ['echo built']\n" },
  });
  const headSha = github.addCommit({ owner: "acme", name: "expiry", branch: "feature", files: { "x.txt": "x" } });
  github.addPullRequest({ owner: "acme", name: "expiry", number: 7, headSha, headRef: "feature", user: "contributor" });
  github.setPermission("acme", "expiry", "maintainer", "maintain");
  const deploy = async () => {
    const recorded = github.addIssueComment({ owner: "acme", name: "expiry", number: 7, body: "/deploy", user: { login: "maintainer" } });
    const response = await sendWebhook({
      url: `${slipway!.url}/api/github/webhooks`,
      secret: SECRET,
      event: "issue_comment",
      payload: issueCommentPayload({
        action: "created",
        body: recorded.body,
        user: recorded.user,
        number: 7,
        isPullRequest: true,
        repository: repo,
        installationId: repo.installationId,
        commentId: recorded.id,
        createdAt: recorded.createdAt,
        authorAssociation: "OWNER",
      }),
    });
    expect(response.status).toBeLessThan(300);
  };
  const comment = () => github.comments.find((c) => c.repo === "expiry" && c.user.login === "slipway[bot]");
  const deployments = () => github.deployments({ owner: "acme", name: "expiry" });

  await deploy();
  await github.waitFor(() => comment()?.body.includes("Deployed") || undefined, { description: "a Deployed comment" });
  await github.waitFor(() => deployments()[0]?.statuses.at(-1)?.state === "success" || undefined, { description: "a successful deployment" });
  expect(await slipway!.stop()).toBe(0);
  slipway = undefined;

  // Ten days pass for the preview: every date it was judged by moves back.
  const stateFile = path.join(workDir, "data", "state.json");
  const state = JSON.parse(await readFile(stateFile, "utf8")) as StateDocument;
  const back = (iso: string) => new Date(Date.parse(iso) - 10 * DAY).toISOString();
  for (const d of Object.values(state.deployments)) Object.assign(d, { createdAt: back(d.createdAt), updatedAt: back(d.updatedAt) });
  for (const r of Object.values(state.revisions)) Object.assign(r, { createdAt: back(r.createdAt) });
  for (const pr of Object.values(state.pullRequests ?? {})) for (const h of pr.heads) h.seenAt = back(h.seenAt);
  await writeFile(stateFile, JSON.stringify(state));

  slipway = await startSlipway({ env });
  const expired = await github.waitFor(() => (comment()?.body.includes("expired after 7 days") ? comment() : undefined), {
    timeoutMs: 30_000,
    description: "the comment says the preview expired",
  });
  expect(expired.body).toContain("Comment `/deploy` to deploy it again");
  await github.waitFor(() => deployments()[0]?.statuses.at(-1)?.state === "inactive" || undefined, { timeoutMs: 30_000, description: "inactive" });
  await github.waitFor(() => comment()?.body.includes("and its database were removed") || undefined, { timeoutMs: 30_000, description: "removed" });

  await deploy();
  await github.waitFor(() => (comment()?.body.includes("Deployed") && deployments().length === 2) || undefined, { timeoutMs: 60_000, description: "deployed again" });
  expect(github.comments.filter((c) => c.repo === "expiry" && c.user.login === "slipway[bot]")).toHaveLength(1);
  expect(github.violations).toEqual([]);
});
