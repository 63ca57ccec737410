/**
 * Running revisions, end to end: the real server, the router, a sample app deployed from
 * the repository, and traffic through the router while a new revision replaces the old.
 */
import { EventEmitter } from "node:events";
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { issueCommentPayload, pullRequestPayload } from "github-stand-in/webhook-payloads";
import { freePort, loggedLine, startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";
import { testDatabaseUrl } from "../support/postgres.js";
import { signal, waitUntil } from "../../tools/wait-until.js";

const SECRET = "e2e-run-secret";
const APP = `
import { createServer } from "node:http";
const server = createServer((req, res) => {
  if (req.url === "/healthz" && process.env.UNHEALTHY === "yes") { res.writeHead(500).end("no"); return; }
  res.writeHead(200, { "content-type": "text/plain" }).end(process.env.SLIPWAY_REVISION + " " + (process.env.VERSION ?? ""));
});
server.listen(Number(process.env.PORT), "127.0.0.1");
`;
let github: GitHubStandIn;
let slipway: RunningSlipway;
let root: string;
let routerPort: number;
let env: Record<string, string>;
let nextInstallation = 1300;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  root = await mkdtemp(path.join(tmpdir(), "slipway-e2e-run-"));
  routerPort = await freePort();
  env = {
    ...standInAppEnv(github, { privateKey: privateKey, webhookSecret: SECRET, dataDir: path.join(root, "data") }),
    SLIPWAY_DATABASE_URL: testDatabaseUrl,
    SLIPWAY_ROUTER_PORT: String(routerPort),
    SLIPWAY_MAX_CONCURRENT_BUILDS: "4",
  };
  slipway = await startSlipway({ env });
});

afterAll(async () => {
  await slipway?.stop();
  await github?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

function config(options: { version: string; unhealthy?: boolean }) {
  return [
    "previews: { enabled: true }",
    "build:",
    `  env: { VERSION: "${options.version}", UNHEALTHY: "${options.unhealthy ? "yes" : "no"}" }`,
    "run:",
    "  command: node app.mjs",
    "  healthcheck: /healthz",
    "  timeout: 10",
  ].join("\n");
}

function commit(repo: StandInRepositoryHandle, version: string, options: { unhealthy?: boolean; branch?: string } = {}) {
  return github.addCommit({
    owner: repo.owner,
    name: repo.name,
    branch: options.branch,
    files: { ".github/slipway.yml": config({ version, unhealthy: options.unhealthy }), "app.mjs": APP },
  });
}

async function push(repo: StandInRepositoryHandle, sha: string) {
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
  });
  expect(response.status).toBeLessThan(300);
}

function completedRun(repo: StandInRepositoryHandle, sha: string) {
  return github.waitFor((gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((r) => r.headSha === sha && r.status === "completed"), {
    timeoutMs: 90_000,
    description: `a completed check run on ${repo.fullName}@${sha.slice(0, 7)}`,
  });
}

/** GET through the router with the environment's host name. */
function viaRouter(host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: routerPort, path: "/", headers: { host }, agent: false }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function hostOf(url: string): string {
  return new URL(url).host;
}

describe.concurrent("running revisions", () => {
  it("deploys behind the router, then replaces the revision with no failed request in between", async () => {
    const repo = github.addRepository({ owner: "acme", name: "web", installationId: nextInstallation++, files: { ".github/slipway.yml": config({ version: "v1" }), "app.mjs": APP } });
    const first = commit(repo, "v1");
    await push(repo, first);
    const run1 = await completedRun(repo, first);
    expect(run1.conclusion).toBe("success");
    const status = await github.waitFor(() => github.deployments({ owner: "acme", name: "web" })[0]?.statuses.find((s) => s.state === "success"), { timeoutMs: 30_000 });
    expect(status.environmentUrl).toMatch(/^http:\/\/production\.web--acme\.localhost:\d+/);
    const host = hostOf(status.environmentUrl);
    const answer1 = await viaRouter(host);
    expect(answer1).toMatchObject({ status: 200 });
    expect(answer1.body).toContain("v1");

    // Requests go on, one after another, while revision 2 is built and switched to.
    const seen: string[] = [];
    const failures: string[] = [];
    let running = true;
    const answers = new EventEmitter();
    let answered = 0;
    const client = (async () => {
      while (running) {
        const { status: code, body } = await viaRouter(host).catch((error: Error) => ({ status: 0, body: error.message }));
        if (code !== 200) failures.push(`${code} ${body.slice(0, 80)}`);
        else if (seen.at(-1) !== body) seen.push(body);
        answered++;
        answers.emit("answer");
      }
    })();
    const second = commit(repo, "v2");
    await push(repo, second);
    expect((await completedRun(repo, second)).conclusion).toBe("success");
    // Traffic goes on after the switch: until revision 1's process is gone, and then for a few more requests.
    await slipway.waitForOutput(loggedLine('"msg":"previous revision stopped"', run1.externalId), { description: "revision 1 stopped" });
    const then = answered;
    await waitUntil(() => answered >= then + 10, { on: [signal(answers, "answer")], what: "ten requests after revision 1 stopped" });
    running = false;
    await client;
    expect(failures).toEqual([]);
    expect(seen.map((s) => s.split(" ")[1])).toEqual(["v1", "v2"]);
  });

  it("a revision whose health check never passes fails to deploy, and the previous one keeps serving", async () => {
    const repo = github.addRepository({ owner: "acme", name: "api", installationId: nextInstallation++, files: { ".github/slipway.yml": config({ version: "good" }), "app.mjs": APP } });
    const good = commit(repo, "good");
    await push(repo, good);
    await completedRun(repo, good);
    const status = await github.waitFor(() => github.deployments({ owner: "acme", name: "api" })[0]?.statuses.find((s) => s.state === "success"), { timeoutMs: 30_000 });
    const bad = commit(repo, "bad", { unhealthy: true });
    await push(repo, bad);
    const run = await completedRun(repo, bad);
    expect(run.conclusion).toBe("failure");
    expect(run.output.title).toContain("Deploy failed");
    const answer = await viaRouter(hostOf(status.environmentUrl));
    expect(answer.body).toContain("good");
  });

  it("a closed pull request's preview stops answering", async () => {
    const repo = github.addRepository({ owner: "acme", name: "docs", installationId: nextInstallation++, files: { ".github/slipway.yml": config({ version: "main" }), "app.mjs": APP } });
    const head = commit(repo, "pr", { branch: "feature" });
    github.addPullRequest({ owner: "acme", name: "docs", number: 3, headSha: head, headRef: "feature" });
    github.setPermission("acme", "docs", "maintainer", "write");
    const comment = github.addIssueComment({ owner: "acme", name: "docs", number: 3, body: "/deploy", user: { login: "maintainer" } });
    await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: SECRET,
      event: "issue_comment",
      payload: issueCommentPayload({ action: "created", body: "/deploy", user: { login: "maintainer" }, number: 3, isPullRequest: true, repository: repo, installationId: repo.installationId, commentId: comment.id }),
    });
    expect((await completedRun(repo, head)).conclusion).toBe("success");
    const status = await github.waitFor(() => github.deployments({ owner: "acme", name: "docs" })[0]?.statuses.find((s) => s.state === "success"), { timeoutMs: 30_000 });
    const host = hostOf(status.environmentUrl);
    expect(host).toMatch(/^pr-3\.docs--acme\.localhost/);
    expect((await viaRouter(host)).status).toBe(200);
    // The PR comment links the preview.
    await github.waitFor(() => github.comments.find((c) => c.repo === "docs" && c.user.login === "slipway[bot]" && c.body.includes(status.environmentUrl)), { timeoutMs: 30_000 });

    github.updatePullRequest({ owner: "acme", name: "docs", number: 3, state: "closed" });
    await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: SECRET,
      event: "pull_request",
      payload: pullRequestPayload({ action: "closed", number: 3, head: { sha: head, ref: "feature" }, repository: repo, installationId: repo.installationId }),
    });
    // The listener forgets the address as it stops the environment, in the same step as it logs so.
    await slipway.waitForOutput(loggedLine('"msg":"stopping environment"', host.split(":")[0]!), { timeoutMs: 30_000, description: "the preview stopped" });
    const last = (await viaRouter(host)).status;
    expect(last).toBe(404);
  });
});

describe("after a restart", () => {
  it("the active revision of every environment serves again", async () => {
    const status = github.deployments({ owner: "acme", name: "web" }).flatMap((d) => d.statuses).find((s) => s.state === "success")!;
    const host = hostOf(status.environmentUrl);
    expect((await viaRouter(host)).body).toContain("v2");
    // The revision serving now: the newest successful run of acme/web.
    const active = github.checkRuns({ owner: "acme", name: "web" }).filter((r) => r.conclusion === "success").at(-1)!;
    expect(await slipway.stop()).toBe(0);
    await expect(viaRouter(host)).rejects.toThrow(); // the router is gone with it
    slipway = await startSlipway({ env, port: slipway.port });
    // Started again by the listener at start-up: the router sends traffic to it from then on.
    await slipway.waitForOutput(loggedLine('"msg":"traffic switched to the revision"', active.externalId), { timeoutMs: 60_000, description: "the revision started again" });
    const answer = await viaRouter(host).catch(() => ({ status: 0, body: "" }));
    expect(answer.body).toContain("v2");
  });

  it("every request matched GitHub's OpenAPI description", () => {
    expect(github.violations).toEqual([]);
  });
});
