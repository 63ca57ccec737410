/**
 * Rollback without rebuild, end to end: the real server, the router and a sample app. Two
 * revisions are deployed; the older one's check run offers "Roll back"; a writer's click
 * puts its kept build back behind the router with no failed request and no build command
 * run, and GitHub shows a new successful deployment of the old commit. A reader's click
 * changes nothing. `/rollback` in an issue comment and the admin API do the same.
 */
import { EventEmitter } from "node:events";
import { request } from "node:http";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { checkRunPayload, issueCommentPayload } from "github-stand-in/webhook-payloads";
import { deploymentIdOf } from "../../src/revisions/new-revision.js";
import { freePort, loggedLine, startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";
import { testDatabaseUrl } from "../support/postgres.js";
import { signal, waitUntil } from "../../tools/wait-until.js";

const SECRET = "e2e-rollback-secret";
const ADMIN_TOKEN = "e2e-rollback-admin-token-0123456789";
const APP = `
import { createServer } from "node:http";
const server = createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(process.env.SLIPWAY_REVISION + " " + process.env.VERSION));
server.listen(Number(process.env.PORT), "127.0.0.1");
`;
let github: GitHubStandIn;
let slipway: RunningSlipway;
let root: string;
let routerPort: number;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  root = await mkdtemp(path.join(tmpdir(), "slipway-e2e-rollback-"));
  routerPort = await freePort();
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(root, "data") }),
      SLIPWAY_DATABASE_URL: testDatabaseUrl,
      SLIPWAY_ROUTER_PORT: String(routerPort),
      SLIPWAY_ADMIN_TOKEN: ADMIN_TOKEN,
    },
  });
});

afterAll(async () => {
  await slipway?.stop();
  await github?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

/** The build counts its runs in the deployment's kept HOME (the same folder sandboxed or not). */
function config(version: string) {
  return [
    "build:",
    `  commands: ["echo built >> \\"$HOME/builds.txt\\""]`,
    `  env: { VERSION: "${version}" }`,
    "run:",
    "  command: node app.mjs",
    "  timeout: 10",
  ].join("\n");
}

function commit(repo: StandInRepositoryHandle, version: string) {
  return github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config(version), "app.mjs": APP } });
}

async function push(repo: StandInRepositoryHandle, sha: string) {
  const response = await sendWebhook({ url: `${slipway.url}/api/github/webhooks`, secret: SECRET, event: "push", payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }) });
  expect(response.status).toBeLessThan(300);
}

const runs = (repo: StandInRepositoryHandle) => github.checkRuns({ owner: repo.owner, name: repo.name });

/** The completed check run of a revision other than those already seen, on `sha`. */
function nextCompletedRun(repo: StandInRepositoryHandle, sha: string, seen: string[]) {
  return github.waitFor(() => runs(repo).find((r) => r.headSha === sha && r.status === "completed" && !seen.includes(r.externalId)), {
    timeoutMs: 90_000,
    description: `a new completed check run on ${sha.slice(0, 7)}`,
  });
}

async function buildsRun(repo: StandInRepositoryHandle): Promise<number> {
  const file = path.join(root, "data", "cache", deploymentIdOf(repo.installationId, repo.id, "production"), "home", "builds.txt");
  return (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean).length;
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

/** Requests one after another until stopped: the distinct answers in order, and every failure. */
function keepAsking(host: string) {
  const seen: string[] = [];
  const failures: string[] = [];
  const answers = new EventEmitter();
  let running = true;
  let answered = 0;
  const loop = (async () => {
    while (running) {
      const { status, body } = await viaRouter(host).catch((error: Error) => ({ status: 0, body: error.message }));
      if (status !== 200) failures.push(`${status} ${body.slice(0, 80)}`);
      else if (seen.at(-1) !== body) seen.push(body);
      answered++;
      answers.emit("answer");
    }
  })();
  return {
    seen,
    failures,
    /** Ten more answers after now, then stop. */
    async stopAfterMore() {
      const then = answered;
      await waitUntil(() => answered >= then + 10, { on: [signal(answers, "answer")], what: "ten more requests" });
      running = false;
      await loop;
    },
  };
}

/** Successful deployment statuses of `sha`, over all its GitHub deployments. */
const successesOf = (repo: StandInRepositoryHandle, sha: string) =>
  github
    .deployments({ owner: repo.owner, name: repo.name })
    .filter((d) => d.sha === sha)
    .flatMap((d) => d.statuses.filter((s) => s.state === "success"));

describe("rollback without rebuild", () => {
  it("the Roll back button puts revision 1's build back for a writer, with no failed request and no build; a reader changes nothing", async () => {
    const repo = github.addRepository({ owner: "acme", name: "shop", installationId: 1900, files: { ".github/slipway.yml": config("v1"), "app.mjs": APP } });
    github.setPermission("acme", "shop", "writer", "write");
    github.setPermission("acme", "shop", "reader", "read");
    const v1 = commit(repo, "v1");
    await push(repo, v1);
    const run1 = await nextCompletedRun(repo, v1, []);
    expect(run1.conclusion).toBe("success");
    const status1 = await github.waitFor(() => successesOf(repo, v1)[0], { timeoutMs: 30_000 });
    const host = new URL(status1.environmentUrl).host;
    const v2 = commit(repo, "v2");
    await push(repo, v2);
    const run2 = await nextCompletedRun(repo, v2, []);
    expect(run2.conclusion).toBe("success");
    expect((await viaRouter(host)).body).toBe(`${run2.externalId} v2`);
    expect(await buildsRun(repo)).toBe(2);
    // Revision 2 went live: revision 1's check run gains the button; revision 2's has none.
    const offered = await github.waitFor(() => runs(repo).find((r) => r.id === run1.id && r.actions.some((a) => a.identifier === "rollback")), {
      timeoutMs: 30_000,
      description: "revision 1's Roll back button",
    });
    expect(offered.actions).toEqual([
      { label: "Redeploy", description: "Build and deploy this commit again", identifier: "redeploy" },
      { label: "Roll back", description: "Put this build back, without building", identifier: "rollback" },
    ]);
    expect(runs(repo).find((r) => r.id === run2.id)!.actions.map((a) => a.identifier)).toEqual(["redeploy"]);

    const press = (login: string) =>
      sendWebhook({
        url: `${slipway.url}/api/github/webhooks`,
        secret: SECRET,
        event: "check_run",
        payload: checkRunPayload({ action: "requested_action", requestedAction: "rollback", checkRun: offered, repository: repo, installationId: repo.installationId, sender: { login } }),
      });
    // A reader's click: processed and refused; no new check run, nothing else served.
    const refused = await press("reader");
    await slipway.waitForOutput(loggedLine('"msg":"check run action refused: no write permission"', refused.deliveryId), { description: "the reader's click refused" });
    expect(runs(repo)).toHaveLength(2);
    expect((await viaRouter(host)).body).toBe(`${run2.externalId} v2`);

    const traffic = keepAsking(host);
    await press("writer");
    const run3 = await nextCompletedRun(repo, v1, [run1.externalId]);
    expect(run3.conclusion).toBe("success");
    await slipway.waitForOutput(loggedLine('"msg":"previous revision stopped"', run2.externalId), { description: "revision 2 stopped" });
    await traffic.stopAfterMore();
    expect(traffic.failures).toEqual([]);
    expect(traffic.seen).toEqual([`${run2.externalId} v2`, `${run3.externalId} v1`]);
    expect(await buildsRun(repo)).toBe(2); // no build command ran
    expect(run3.output.summary).toContain("Rolled back by @writer to revision 1");
    expect(run3.output.summary).toContain(`\`${v1.slice(0, 7)}\``);
    // GitHub: a new deployment of v1, successful, linking the environment.
    await github.waitFor(() => successesOf(repo, v1).length === 2 || undefined, { timeoutMs: 30_000, description: "a second success for v1" });
    expect(successesOf(repo, v1)[1]!.environmentUrl).toBe(status1.environmentUrl);

    // `/rollback production` on an issue: back to the kept build before the live one (revision 2's).
    github.addIssue({ owner: "acme", name: "shop", number: 7, title: "incident" });
    const comment = github.addIssueComment({ owner: "acme", name: "shop", number: 7, body: "/rollback production", user: { login: "writer" } });
    await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: SECRET,
      event: "issue_comment",
      payload: issueCommentPayload({ action: "created", body: "/rollback production", user: { login: "writer" }, number: 7, isPullRequest: false, repository: repo, installationId: repo.installationId, commentId: comment.id }),
    });
    const run4 = await nextCompletedRun(repo, v2, [run2.externalId]);
    expect(run4.conclusion).toBe("success");
    expect(run4.output.summary).toContain("Rolled back by @writer to revision 2");
    await github.waitFor(() => github.comments.find((c) => c.repo === "shop" && c.user.login === "slipway[bot]" && c.body.includes("rolling `production` back to revision 2")), {
      description: "the reply to /rollback",
    });
    expect((await viaRouter(host)).body).toBe(`${run4.externalId} v2`);

    // The admin API, to the first commit.
    const api = (body: unknown, token = ADMIN_TOKEN) =>
      fetch(`${slipway.url}/api/v1/repos/acme/shop/environments/production/rollback`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    expect((await api({ to: v1 }, "wrong-token-wrong-token")).status).toBe(401);
    expect((await api({ to: "0123456" })).status).toBe(404);
    expect((await api({ to: v2 })).status).toBe(409); // live now
    const answer = await api({ to: v1.slice(0, 7) });
    expect(answer.status).toBe(200);
    const { revision } = (await answer.json()) as { revision: { id: string; number: number } };
    expect(revision.number).toBe(5);
    const run5 = await nextCompletedRun(repo, v1, [run1.externalId, run3.externalId]);
    expect(run5).toMatchObject({ externalId: revision.id, conclusion: "success" });
    expect((await viaRouter(host)).body).toBe(`${revision.id} v1`);
    expect(await buildsRun(repo)).toBe(2);
  });

  it("every request matched GitHub's OpenAPI description", () => {
    expect(github.violations).toEqual([]);
  });
});
