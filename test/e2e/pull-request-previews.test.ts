/**
 * Pull request previews and `/deploy`, end to end: the real server, signed webhooks, and
 * the OpenAPI-validating GitHub stand-in. Each scenario has its own repository.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type RecordedComment, type RepositoryRole, type StandInRepositoryHandle } from "github-stand-in";
import { checkRunPayload, issueCommentPayload, pullRequestPayload } from "github-stand-in/webhook-payloads";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";
import { hasBubblewrap } from "../support/bubblewrap.js";
import { testDatabaseUrl } from "../support/postgres.js";
import { sendMarker, waitForDeliveriesHandled } from "../../tools/slipway-deliveries.js";
import { untilClockPasses } from "../../tools/wait-until.js";

const SECRET = "e2e-previews-secret";
const CONFIG = "build:\n  commands: ['echo preview of $SLIPWAY_REF at $SLIPWAY_SHA']\n";
let github: GitHubStandIn;
let slipway: RunningSlipway;
let workDir: string;
let nextInstallation = 500;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-previews-"));
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey: privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
      SLIPWAY_MAX_CONCURRENT_BUILDS: "4",
      // A real PostgreSQL server for deployment databases (issue 4's backend): fast to set up,
      // so these tests spend their time on what they test. The embedded default is covered elsewhere.
      SLIPWAY_DATABASE_URL: testDatabaseUrl,
      // Fork previews need builds in a sandbox, or the operator's explicit opt-out where bubblewrap is missing.
      SLIPWAY_SANDBOX: hasBubblewrap("sandboxed previews (these run with SLIPWAY_SANDBOX=off instead)") ? "auto" : "off",
    },
  });
});

afterAll(async () => {
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

interface Scenario {
  repo: StandInRepositoryHandle;
  number: number;
  headSha: string;
  /** Ids of the webhook deliveries sent for it, for {@link settle}. */
  deliveries: string[];
}

function scenario(name: string, options: { config?: string; fork?: string; users?: Record<string, RepositoryRole> } = {}): Scenario {
  const config = options.config ?? CONFIG;
  const repo = github.addRepository({ owner: "acme", name, installationId: nextInstallation++, files: { ".github/slipway.yml": config } });
  const headSha = github.addCommit({ owner: "acme", name, branch: "feature", files: { ".github/slipway.yml": "build: { commands: ['echo FROM THE PR BRANCH'] }", "x.txt": name } });
  github.addPullRequest({ owner: "acme", name, number: 7, headSha, headRef: "feature", headRepoFullName: options.fork, user: "contributor" });
  github.setPermission("acme", name, "maintainer", "maintain");
  for (const [login, role] of Object.entries(options.users ?? {})) github.setPermission("acme", name, login, role);
  return { repo, number: 7, headSha, deliveries: [] };
}

async function comment(s: Scenario, body: string, user: { login: string; type?: "User" | "Bot" } = { login: "maintainer" }) {
  const recorded = github.addIssueComment({ owner: s.repo.owner, name: s.repo.name, number: s.number, body, user });
  await deliverComment(s, recorded, { body });
  return recorded;
}

/** Sends the `issue_comment.created` webhook of a comment the stand-in holds (again, or late). */
async function deliverComment(s: Scenario, recorded: RecordedComment, options: { body?: string; deliveryId?: string } = {}) {
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "issue_comment",
    deliveryId: options.deliveryId,
    payload: issueCommentPayload({
      action: "created",
      body: options.body ?? recorded.body,
      user: recorded.user,
      number: s.number,
      isPullRequest: true,
      repository: s.repo,
      installationId: s.repo.installationId,
      commentId: recorded.id,
      createdAt: recorded.createdAt,
      authorAssociation: "OWNER", // never trusted: permission is asked of GitHub
    }),
  });
  expect(response.status).toBeLessThan(300);
  s.deliveries.push(response.deliveryId);
}

async function pullRequestEvent(s: Scenario, action: "opened" | "synchronize" | "closed", head: { sha: string; repoFullName?: string }) {
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "pull_request",
    payload: pullRequestPayload({ action, number: s.number, head: { sha: head.sha, ref: "feature", repoFullName: head.repoFullName }, repository: s.repo, installationId: s.repo.installationId }),
  });
  expect(response.status).toBeLessThan(300);
  s.deliveries.push(response.deliveryId);
}

const checkRuns = (s: Scenario) => github.checkRuns({ owner: s.repo.owner, name: s.repo.name });
const deployments = (s: Scenario) => github.deployments({ owner: s.repo.owner, name: s.repo.name });
/** Slipway's own comments (as `slipway[bot]`) on the scenario's repository. */
const slipwayComments = (s: Scenario) => github.comments.filter((c) => c.repo === s.repo.name && c.user.login === "slipway[bot]");
const reactions = (s: Scenario, commentId: number) => github.reactions.filter((r) => r.repo === s.repo.name && r.commentId === commentId).map((r) => r.content);

function completedRun(s: Scenario, sha: string, timeoutMs = 60_000) {
  return github.waitFor((gh) => gh.checkRuns({ owner: s.repo.owner, name: s.repo.name }).find((r) => r.headSha === sha && r.status === "completed"), {
    timeoutMs,
    description: `a completed check run on ${s.repo.fullName}@${sha.slice(0, 7)}`,
  });
}

/**
 * Waits until Slipway has handled every webhook sent for the scenario (see
 * waitForDeliveriesHandled): what an ignored or refused one would have done, it has done by then.
 * Revisions are made while a delivery is handled, and their check runs follow a moment later:
 * so it then waits for the check run of each deployment's newest revision, and a revision made
 * by mistake shows at GitHub before the test looks.
 */
async function settle(s: Scenario) {
  const marker = await sendMarker(github, s.repo, { url: `${slipway.url}/api/github/webhooks`, secret: SECRET });
  await waitForDeliveriesHandled(path.join(workDir, "data"), s.deliveries, { marker });
  const { deployments } = (await (await fetch(`${slipway.url}/api/v1/deployments`)).json()) as {
    deployments: Array<{ repository: { fullName: string }; latestRevision: { id: string } | null }>;
  };
  for (const { repository, latestRevision } of deployments) {
    if (repository.fullName !== s.repo.fullName || !latestRevision) continue;
    await github.waitFor(() => checkRuns(s).find((r) => r.externalId === latestRevision.id), { description: `the check run of revision ${latestRevision.id}` });
  }
}

describe.concurrent("pull request previews", () => {
  it("a maintainer's /deploy builds the PR's head into pr-<number> with the default branch's commands", async () => {
    const s = scenario("preview");
    const command = await comment(s, "/deploy");
    await github.waitFor(() => reactions(s, command.id).includes("eyes") || undefined, { description: "eyes reaction" });
    const run = await completedRun(s, s.headSha);
    expect(run).toMatchObject({ name: "slipway/pr-7", conclusion: "success" });
    // The check run goes first; the deployment follows in the same pass.
    const deployment = await github.waitFor(() => deployments(s).find((d) => d.statuses.at(-1)?.state === "success"), { description: "a successful deployment" });
    expect(deployment).toMatchObject({ environment: "pr-7", transientEnvironment: true, productionEnvironment: false, sha: s.headSha });
    const log = await (await fetch(`${slipway.url}/revisions/${run.externalId}/log`)).text();
    expect(log).toContain(`preview of refs/heads/feature at ${s.headSha}`);
    expect(log).not.toContain("FROM THE PR BRANCH");
    await github.waitFor(() => reactions(s, command.id).includes("rocket") || undefined, { description: "rocket reaction" });
    // One Slipway comment, edited in place as the revision moved on.
    await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("Deployed")), { description: "a Deployed comment" });
    expect(slipwayComments(s)).toHaveLength(1);
  });

  it("builds the head commit read when the command arrived, not a later push", async () => {
    const s = scenario("pinned", { config: "build:\n  commands: ['sleep 2']\n" });
    await comment(s, "/deploy");
    await github.waitFor(() => checkRuns(s)[0], { description: "a check run" });
    const later = github.addCommit({ owner: "acme", name: s.repo.name, branch: "feature", files: { "y.txt": "later" } });
    github.updatePullRequest({ owner: "acme", name: s.repo.name, number: s.number, headSha: later });
    const run = await completedRun(s, s.headSha);
    expect(run.headSha).toBe(s.headSha);
    expect(checkRuns(s)).toHaveLength(1);
  });

  it.each([
    ["read", "reader"],
    ["none", "stranger"],
  ] as const)("a user with %s permission gets one reply and nothing runs", async (role, login) => {
    const s = scenario(`refused-${role}`, { users: { [login]: role } });
    await comment(s, "/deploy", { login });
    const reply = await github.waitFor(() => slipwayComments(s)[0], { description: "a reply" });
    expect(reply.body).toContain("write, maintain or admin");
    await settle(s);
    expect(slipwayComments(s)).toHaveLength(1);
    expect(checkRuns(s)).toEqual([]);
    expect(deployments(s)).toEqual([]);
  });

  it("a fork's author without write permission is refused", async () => {
    const s = scenario("fork-author", { fork: "contributor/fork-author", users: { contributor: "read" } });
    await comment(s, "/deploy", { login: "contributor" });
    await github.waitFor(() => slipwayComments(s)[0], { description: "a reply" });
    await settle(s);
    expect(checkRuns(s)).toEqual([]);
  });

  it.each([
    ["a bot", "/deploy", { login: "helper[bot]", type: "Bot" as const }],
    ["a quote", "> /deploy", undefined],
    ["a code fence", "```\n/deploy\n```", undefined],
    ["a fullwidth slash", "／deploy", undefined],
    ["a Cyrillic е", "/dеploy", undefined],
    ["a zero-width space", "/de\u200bploy", undefined],
    ["a command at the end of a 65,536-character comment", `${"x".repeat(65_528)}\n/deploy`, undefined],
  ])("ignores %s", async (_name, body, user) => {
    const s = scenario(`ignored-${Math.random().toString(36).slice(2, 8)}`);
    const recorded = await comment(s, body, user);
    await settle(s);
    expect(slipwayComments(s)).toEqual([]);
    expect(reactions(s, recorded.id)).toEqual([]);
    expect(checkRuns(s)).toEqual([]);
  });

  it("a 65,536-character comment that starts with /deploy deploys", async () => {
    const s = scenario("long-comment");
    await comment(s, `/deploy\n${"y".repeat(65_528)}`);
    expect((await completedRun(s, s.headSha)).conclusion).toBe("success");
  });

  it("two /deploy comments at once make one revision", async () => {
    const s = scenario("twice");
    await Promise.all([comment(s, "/deploy"), comment(s, "/deploy")]);
    await completedRun(s, s.headSha);
    // The deployment follows the completed check run; then both comments are handled.
    await github.waitFor(() => deployments(s).find((d) => d.statuses.at(-1)?.state === "success"), { description: "a successful deployment" });
    await settle(s);
    expect(checkRuns(s)).toHaveLength(1);
    expect(deployments(s)).toHaveLength(1);
  });

  it("/deploy help lists the commands, and an unknown argument is answered", async () => {
    const s = scenario("help");
    await comment(s, "/deploy help");
    await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("/deploy cancel")), { description: "help reply" });
    await comment(s, "/deploy frobnicate");
    await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("frobnicate")), { description: "unknown reply" });
    expect(checkRuns(s)).toEqual([]);
  });

  it("/deploy cancel stops the running revision", async () => {
    const s = scenario("cancel", { config: "build:\n  commands: ['sleep 60']\n" });
    await comment(s, "/deploy");
    // Under way as GitHub shows it: the check run in progress, and the deployment (it follows the check run).
    await github.waitFor(() => (checkRuns(s).some((r) => r.status === "in_progress") && deployments(s).length > 0) || undefined, { timeoutMs: 30_000, description: "in progress, with a deployment" });
    await comment(s, "/deploy cancel");
    const run = await completedRun(s, s.headSha, 30_000);
    expect(run.conclusion).toBe("cancelled");
  });

  it("closing the PR before the build ends cancels it, drops the database and marks deployments inactive", async () => {
    const s = scenario("closed-early", { config: "build:\n  commands: ['sleep 60']\n" });
    await comment(s, "/deploy");
    // Under way as GitHub shows it: the check run in progress, and the deployment (it follows the check run).
    await github.waitFor(() => (checkRuns(s).some((r) => r.status === "in_progress") && deployments(s).length > 0) || undefined, { timeoutMs: 30_000, description: "in progress, with a deployment" });
    github.updatePullRequest({ owner: "acme", name: s.repo.name, number: s.number, state: "closed" });
    await pullRequestEvent(s, "closed", { sha: s.headSha });
    const run = await completedRun(s, s.headSha, 30_000);
    expect(run.conclusion).toBe("cancelled");
    await github.waitFor(() => deployments(s)[0]?.statuses.at(-1)?.state === "inactive" || undefined, { timeoutMs: 30_000, description: "inactive" });
    const removed = await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("and its database were removed")), {
      timeoutMs: 30_000,
      description: "comment says the preview and its database were removed",
    });
    // The same comment as before, edited in place.
    expect(slipwayComments(s)).toHaveLength(1);
    expect(removed.previousBodies.length).toBeGreaterThan(0);
    const api = (await (await fetch(`${slipway.url}/api/v1/deployments`)).json()) as { deployments: Array<{ environment: string; state: string; repository: unknown }> };
    const mine = api.deployments.find((d) => d.environment === "pr-7" && JSON.stringify(d.repository).includes("closed-early"));
    expect(mine?.state).toBe("DELETED");
    // A /deploy after the close is refused.
    await comment(s, "/deploy");
    await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("closed")), { description: "refusal" });
    expect(checkRuns(s)).toHaveLength(1);
  });

  it("new commits on a same-repository PR update the preview; a fork's wait for a maintainer", async () => {
    const same = scenario("sync-same");
    await comment(same, "/deploy");
    await completedRun(same, same.headSha);
    const next = github.addCommit({ owner: "acme", name: same.repo.name, branch: "feature", files: { "z.txt": "2" } });
    github.updatePullRequest({ owner: "acme", name: same.repo.name, number: same.number, headSha: next });
    await pullRequestEvent(same, "synchronize", { sha: next });
    expect((await completedRun(same, next)).conclusion).toBe("success");

    const fork = scenario("sync-fork", { fork: "contributor/sync-fork" });
    await comment(fork, "/deploy");
    await completedRun(fork, fork.headSha);
    const forkNext = github.addCommit({ owner: "acme", name: fork.repo.name, branch: "feature", files: { "z.txt": "evil" } });
    await pullRequestEvent(fork, "synchronize", { sha: forkNext, repoFullName: "contributor/sync-fork" });
    await github.waitFor(() => slipwayComments(fork).find((c) => c.body.includes("maintainer")), { description: "fork notice" });
    await settle(fork);
    expect(checkRuns(fork).filter((r) => r.headSha === forkNext)).toEqual([]);
  });

  it("a /deploy delivered after new commits arrived deploys nothing and names the commit it saw and the head", async () => {
    const s = scenario("late-deploy");
    await pullRequestEvent(s, "opened", { sha: s.headSha });
    // Slipway knows the head the comment is written against (the opened event is handled)…
    await settle(s);
    const recorded = github.addIssueComment({ owner: s.repo.owner, name: s.repo.name, number: s.number, body: "/deploy", user: { login: "maintainer" } });
    // …and the new commits arrive after the comment was written: by the clock, the order Slipway judges by.
    await untilClockPasses(Date.parse(recorded.createdAt));
    const later = github.addCommit({ owner: "acme", name: s.repo.name, branch: "feature", files: { "late.txt": "pushed after the comment" } });
    github.updatePullRequest({ owner: "acme", name: s.repo.name, number: s.number, headSha: later });
    await pullRequestEvent(s, "synchronize", { sha: later });
    await deliverComment(s, recorded); // GitHub's retry, or a redelivery after an outage

    const reply = await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("new commits arrived")), { description: "a reply" });
    expect(reply.body).toContain(`\`${s.headSha.slice(0, 7)}\``);
    expect(reply.body).toContain(`\`${later.slice(0, 7)}\``);
    await settle(s);
    expect(checkRuns(s)).toEqual([]);
  });

  it("a comment deleted before it was delivered is not honoured", async () => {
    const s = scenario("deleted-comment");
    const recorded = github.addIssueComment({ owner: s.repo.owner, name: s.repo.name, number: s.number, body: "/deploy", user: { login: "maintainer" } });
    const comments = github.comments as RecordedComment[];
    comments.splice(comments.indexOf(recorded), 1);
    await deliverComment(s, recorded);
    await settle(s);
    expect(reactions(s, recorded.id)).toEqual([]);
    expect(slipwayComments(s)).toEqual([]);
    expect(checkRuns(s)).toEqual([]);
  });

  it("a fork's approval covers the commit it approved: replayed after new commits, it deploys nothing", async () => {
    const s = scenario("fork-replay", { fork: "contributor/fork-replay" });
    const approval = await comment(s, "/deploy");
    await completedRun(s, s.headSha);
    const evil = github.addCommit({ owner: "acme", name: s.repo.name, branch: "feature", files: { "evil.txt": "after the review" } });
    github.updatePullRequest({ owner: "acme", name: s.repo.name, number: s.number, headSha: evil });
    await pullRequestEvent(s, "synchronize", { sha: evil, repoFullName: "contributor/fork-replay" });
    await deliverComment(s, approval, { deliveryId: "6f9b6a1e-0000-4000-8000-0000000000aa" }); // the same comment, a new delivery
    await settle(s);
    expect(checkRuns(s).filter((run) => run.headSha === evil)).toEqual([]);
    expect(checkRuns(s)).toHaveLength(1);
  });

  it("/deploy <sha> deploys the head it names and refuses a commit that is not the head", async () => {
    const s = scenario("deploy-sha");
    await comment(s, `/deploy ${s.headSha.slice(0, 7)}`);
    expect((await completedRun(s, s.headSha)).conclusion).toBe("success");
    await comment(s, "/deploy 1234567");
    const reply = await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("is not the head commit")), { description: "a reply" });
    expect(reply.body).toContain("`1234567`");
    await settle(s);
    expect(checkRuns(s)).toHaveLength(1);
  });

  it("a look-alike status comment by another bot is never adopted: Slipway writes its own", async () => {
    const s = scenario("look-alike");
    const lookAlike = github.addIssueComment({
      owner: s.repo.owner,
      name: s.repo.name,
      number: s.number,
      body: "<!-- slipway:preview -->\n### Slipway preview `pr-7`\n\nDeployed: https://evil.example",
      user: { login: "other-bot[bot]", type: "Bot" },
    });
    await comment(s, "/deploy");
    await completedRun(s, s.headSha);
    await github.waitFor(() => slipwayComments(s).find((c) => c.body.includes("Deployed")), { description: "Slipway's own comment" });
    expect(lookAlike.previousBodies).toEqual([]);
    expect(lookAlike.body).toContain("evil.example");
  });

  it("a flood of refused commands gets one reply a minute", async () => {
    const s = scenario("reply-flood", { users: { reader: "read" } });
    for (let i = 0; i < 4; i++) await comment(s, "/deploy", { login: "reader" });
    await github.waitFor(() => slipwayComments(s)[0], { description: "a reply" });
    await settle(s);
    expect(slipwayComments(s)).toHaveLength(1);
    expect(checkRuns(s)).toEqual([]);
  });

  it("the check run's Redeploy button makes a new revision for a maintainer, not for a reader", async () => {
    const s = scenario("redeploy", { users: { reader: "read" } });
    await comment(s, "/deploy");
    const run = await completedRun(s, s.headSha);
    expect(run.actions.map((a) => a.identifier)).toEqual(["redeploy"]);
    const press = async (login: string) => {
      const response = await sendWebhook({
        url: `${slipway.url}/api/github/webhooks`,
        secret: SECRET,
        event: "check_run",
        payload: checkRunPayload({ action: "requested_action", requestedAction: "redeploy", checkRun: run, repository: s.repo, installationId: s.repo.installationId, sender: { login } }),
      });
      s.deliveries.push(response.deliveryId);
    };
    await press("reader");
    await settle(s);
    expect(checkRuns(s)).toHaveLength(1);
    await press("maintainer");
    await github.waitFor(() => checkRuns(s).filter((r) => r.status === "completed").length === 2 || undefined, { timeoutMs: 60_000, description: "a second run" });
  });
});

describe("what GitHub was asked", () => {
  it("every request matched GitHub's OpenAPI description", () => {
    expect(github.violations).toEqual([]);
  });
});
