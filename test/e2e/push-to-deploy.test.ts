/**
 * Push to deploy, end to end: the real server (`src/main.ts`) as a child process, signed
 * webhooks over HTTP, and GitHub played by the OpenAPI-validating stand-in. Each scenario
 * uses its own repository and installation, so they run side by side.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { hasBubblewrap } from "../support/bubblewrap.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { generateAppKey } from "../support/app-credentials.js";
import { loggedLine, startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { sendMarker, waitForDeliveriesHandled } from "../../tools/slipway-deliveries.js";

const SECRET = "e2e-webhook-secret";
/** A query step for builds that needs no PostgreSQL client on the machine. */
const PG_QUERY = readFileSync(new URL("../fixtures/pg-query.mjs", import.meta.url), "utf8");
const withBubblewrap = hasBubblewrap("the sandbox e2e test");
let github: GitHubStandIn;
let slipway: RunningSlipway;
let workDir: string;
let nextInstallation = 100;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-"));
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey: privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
      SLIPWAY_MAX_CONCURRENT_BUILDS: "4",
    },
  });
  slipway.process.on("exit", (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`slipway exited with ${code}:\n${slipway.output()}\n`);
  });
});

afterAll(async () => {
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

function repository(name: string, config: string): StandInRepositoryHandle {
  return github.addRepository({
    owner: "acme",
    name,
    installationId: nextInstallation++,
    files: { ".github/slipway.yml": config, "README.md": `# ${name}\n` },
  });
}

async function push(repo: StandInRepositoryHandle, options: { sha?: string; branch?: string; deliveryId?: string } = {}) {
  const sha = options.sha ?? github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": "", "app.txt": String(Math.random()) }, branch: options.branch });
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    deliveryId: options.deliveryId,
    payload: github.pushPayload({ repository: repo, ref: options.branch ?? repo.defaultBranch, after: sha }),
  });
  return { sha, response };
}

function finishedCheckRun(repo: StandInRepositoryHandle, sha: string, timeoutMs = 60_000) {
  return github.waitFor(
    (gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((run) => run.headSha === sha && run.status === "completed"),
    { timeoutMs, description: `a completed check run on ${repo.fullName}@${sha.slice(0, 7)}` },
  );
}

function lastStatus(repo: StandInRepositoryHandle, sha: string) {
  const deployment = github.deployments({ owner: repo.owner, name: repo.name }).find((d) => d.sha === sha);
  return deployment?.statuses.at(-1);
}

async function finalStatus(repo: StandInRepositoryHandle, sha: string, state: string) {
  return github.waitFor(() => (lastStatus(repo, sha)?.state === state ? lastStatus(repo, sha) : undefined), {
    timeoutMs: 30_000,
    description: `deployment status ${state} on ${repo.fullName}@${sha.slice(0, 7)}`,
  });
}

// Files in the pushed commits replace the whole tree, so each commit carries the config.
function commitWithConfig(repo: StandInRepositoryHandle, config: string, extra: Record<string, string> = {}, branch?: string) {
  return github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, ...extra }, branch });
}

describe.concurrent("push to deploy", () => {
  it("first push creates the database, builds and deploys; the second reuses the database", async () => {
    const config = [
      "build:",
      "  commands:",
      "    - echo building $SLIPWAY_ENVIRONMENT at $SLIPWAY_SHA",
      "    - node pg-query.mjs 'create table if not exists visits(n int); insert into visits values (1); select count(*) from visits'",
      // Longer than a progress pass (3 s): the deployment shows in_progress before success.
      "    - sleep 3.5",
    ].join("\n");
    const repo = repository("shop", config);
    const first = await push(repo, { sha: commitWithConfig(repo, config, { "v.txt": "1", "pg-query.mjs": PG_QUERY }) });
    expect(first.response.status).toBeLessThan(300);

    const run1 = await finishedCheckRun(repo, first.sha);
    expect(run1).toMatchObject({ name: "slipway/production", conclusion: "success" });
    expect(run1.detailsUrl).toMatch(/\/revisions\/[0-9a-f-]{36}$/);
    expect(run1.output.summary, JSON.stringify(run1.history.map((h) => [h.status, h.summary]), null, 1)).toContain("database created");
    const states1 = run1.history.map((h) => h.status);
    expect(states1.at(-1)).toBe("completed");
    await finalStatus(repo, first.sha, "success");
    const deployment1 = github.deployments({ owner: repo.owner, name: repo.name })[0]!;
    expect(deployment1).toMatchObject({ environment: "production", autoMerge: false, requiredContexts: [], productionEnvironment: true });
    expect(deployment1.statuses.map((s) => s.state)).toContain("in_progress");
    expect(deployment1.statuses.find((s) => s.state === "in_progress")?.logUrl).toMatch(/\/revisions\//);

    const second = await push(repo, { sha: commitWithConfig(repo, config, { "v.txt": "2", "pg-query.mjs": PG_QUERY }) });
    const run2 = await finishedCheckRun(repo, second.sha);
    expect(run2.conclusion).toBe("success");
    expect(run2.output.summary).toContain("reused");
    expect(run2.output.summary).not.toContain("database created");

    // The same database answered both builds: the second saw the first one's row.
    const log2 = await (await fetch(`${run2.detailsUrl!.replace(/^.*\/revisions\//, `${slipway.url}/revisions/`)}/log`)).text();
    expect(log2).toMatch(/^2$/m);
    expect(log2).toContain(`building production at ${second.sha}`);
  });

  it("a failing build fails the check run with the exit code and the log tail", async () => {
    const config = "build:\n  commands: ['echo about to fail', 'echo to stderr >&2; exit 3', 'echo never']\n";
    const repo = repository("broken", config);
    const { sha } = await push(repo, { sha: commitWithConfig(repo, config) });
    const run = await finishedCheckRun(repo, sha);
    expect(run.conclusion).toBe("failure");
    expect(run.output.title).toContain("Build failed");
    expect(run.output.summary).toContain("exited with code 3");
    expect(run.output.text).toContain("about to fail");
    expect(run.output.text).toContain("to stderr");
    expect(run.output.text).not.toContain("\nnever");
    await finalStatus(repo, sha, "failure");
  });

  it("a build that outlives its timeout is stopped, escaped processes included", async () => {
    // Found again by their unique arguments: in the sandbox their pids and files are its own.
    const tag = String(Math.floor(Math.random() * 1e6));
    const config = [
      "build:",
      "  timeout: 2",
      "  commands:",
      `    - "setsid sh -c 'trap \\"\\" TERM; exec sleep 301.${tag}' & trap '' TERM; sleep 302.${tag}"`,
    ].join("\n");
    const repo = repository("slow", config);
    const { sha } = await push(repo, { sha: commitWithConfig(repo, config) });
    const run = await finishedCheckRun(repo, sha);
    expect(run.conclusion).toBe("failure");
    expect(run.output.summary).toContain("longer than 2 s");
    expect(processesRunning(`301.${tag}`), "the escaped process should be gone").toEqual([]);
    expect(processesRunning(`302.${tag}`), "the build's process should be gone").toEqual([]);
  });

  it.skipIf(!withBubblewrap)("a hostile build reads none of Slipway's keys, state or environment", async () => {
    const dataDir = path.join(workDir, "data");
    const config = [
      "build:",
      `  env: { DATA: ${JSON.stringify(dataDir)} }`,
      "  commands:",
      "    - 'base64 -w0 \"$DATA/secret.key\" || echo no-absolute'",
      "    - 'base64 -w0 ../../../../secret.key || echo no-climbing'",
      "    - 'for f in /proc/[0-9]*/environ; do cat $f; echo; done | grep -a -c \"PRIVATE_KE[Y]=\" || echo no-environ'",
      "    - 'echo \"uid=$(id -u)\"'",
    ].join("\n");
    const repo = repository("hostile-build", config);
    const { sha } = await push(repo, { sha: commitWithConfig(repo, config) });
    const run = await finishedCheckRun(repo, sha);
    expect(run.conclusion).toBe("success");
    const log = await (await fetch(`${slipway.url}/revisions/${run.externalId}/log`)).text();
    const secretKey = (await readFile(path.join(dataDir, "secret.key"))).toString("base64");
    expect(log).not.toContain(secretKey);
    expect(log).toContain("no-absolute");
    expect(log).toContain("no-climbing");
    expect(log).toContain("no-environ");
    expect(log).toMatch(/^uid=\d+$/m);
    expect(log).not.toMatch(/^uid=0$/m);
    expect(run.output.summary).not.toContain("not sandboxed");
  });

  it("a hostile branch name is passed as data, never executed", async () => {
    const canary = path.join(workDir, "canary");
    const branch = `zzz";echo\${IFS}"hello";#$(touch\${IFS}${canary})`;
    const config = [
      "environments:",
      `  hostile: { branch: ${JSON.stringify(branch)} }`,
      "build:",
      "  commands: ['echo \"ref=$SLIPWAY_REF\"']",
    ].join("\n");
    const repo = repository("hostile", config);
    const sha = commitWithConfig(repo, config, {}, branch);
    await push(repo, { sha, branch });
    const run = await finishedCheckRun(repo, sha);
    expect(run).toMatchObject({ name: "slipway/hostile", conclusion: "success" });
    const revisionId = run.externalId;
    const log = await (await fetch(`${slipway.url}/revisions/${revisionId}/log`)).text();
    expect(log).toContain(`ref=refs/heads/${branch}`);
    expect(log).not.toMatch(/^hello$/m);
    expect(existsSync(canary)).toBe(false);
  });

  it("still delivers the final state when GitHub answers 502 and secondary rate limits for a while", async () => {
    const config = "build:\n  commands: ['echo ok']\n";
    const repo = repository("flaky", config);
    const sha = commitWithConfig(repo, config);
    const base = `/repos/${repo.owner}/${repo.name}`;
    github.injectFaults({ path: new RegExp(`^${base}/check-runs`), status: 502, count: 4 });
    github.injectFaults({ path: new RegExp(`^${base}/deployments`), status: 403, secondaryRateLimit: true, retryAfterSeconds: 1, count: 3 });
    await push(repo, { sha });
    const run = await finishedCheckRun(repo, sha, 90_000);
    expect(run.conclusion).toBe("success");
    await finalStatus(repo, sha, "success");
    const faulted = github.requests.filter((r) => r.path.startsWith(base) && r.status >= 500).length;
    expect(faulted).toBeGreaterThan(0);
  });

  it("a duplicate delivery makes one revision", async () => {
    const config = "build:\n  commands: ['echo once']\n";
    const repo = repository("twice", config);
    const sha = commitWithConfig(repo, config);
    const deliveryId = "6f9b6a1e-0000-4000-8000-000000000001";
    const [a, b] = await Promise.all([push(repo, { sha, deliveryId }), push(repo, { sha, deliveryId })]);
    expect(a.response.status).toBeLessThan(300);
    expect(b.response.status).toBeLessThan(300);
    const again = await push(repo, { sha }); // and a second push of the same commit
    await finishedCheckRun(repo, sha);
    // Every push handled (none left to make a revision), and the one revision's last word sent to GitHub.
    const marker = await sendMarker(github, repo, { url: `${slipway.url}/api/github/webhooks`, secret: SECRET });
    await waitForDeliveriesHandled(path.join(workDir, "data"), [deliveryId, again.response.deliveryId], { marker });
    await finalStatus(repo, sha, "success");
    expect(github.checkRuns({ owner: repo.owner, name: repo.name })).toHaveLength(1);
    expect(github.deployments({ owner: repo.owner, name: repo.name })).toHaveLength(1);
  });

  it("a bad signature is refused and nothing is queued", async () => {
    const config = "build:\n  commands: ['echo no']\n";
    const repo = repository("forged", config);
    const sha = commitWithConfig(repo, config);
    const response = await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: "not-the-secret",
      event: "push",
      payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    // Refused before anything was read into the inbox: the refusal's log line says it is over.
    await slipway.waitForOutput(loggedLine(response.deliveryId, "webhook refused"), { description: "the refusal" });
    const deployments = (await (await fetch(`${slipway.url}/api/v1/deployments`)).json()) as { deployments: Array<{ repository: string | { fullName: string } }> };
    expect(JSON.stringify(deployments)).not.toContain("forged");
    expect(github.requests.filter((r) => r.path.includes("/acme/forged/"))).toEqual([]);
  });
});

describe("what GitHub was asked", () => {
  it("every request matched GitHub's OpenAPI description", () => {
    expect(github.violations).toEqual([]);
  });

  it("the build token was scoped to one repository, read-only", () => {
    const buildTokens = github.tokens.filter((t) => t.repositories !== undefined);
    expect(buildTokens.length).toBeGreaterThan(0);
    for (const token of buildTokens) {
      expect(token.repositories).toHaveLength(1);
      expect(token.requestedPermissions).toEqual({ contents: "read" });
    }
  });

  it("no token, key or secret reached the logs", () => {
    const output = slipway.output();
    for (const token of github.tokens) expect(output).not.toContain(token.token);
    expect(output).not.toContain("BEGIN RSA PRIVATE KEY");
    expect(output).not.toContain(SECRET);
  });
});

/** Host pids of live processes whose arguments end with `arg`. */
function processesRunning(arg: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").endsWith(`\0${arg}\0`) && isAlive(pid);
      } catch {
        return false;
      }
    });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}
