/**
 * What a build and a running revision are given beyond `build.env`, end to end: the GitHub
 * environment's variables (two pages of them, from the OpenAPI-validating stand-in), a
 * Slipway secret set through the admin API, `build.root`; the secret masked everywhere it
 * could show and never in clear in the data dir; a preview given neither; and an
 * installation that has not granted `environments: read` still deploying, told why.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { issueCommentPayload } from "github-stand-in/webhook-payloads";
import { DEFAULT_INSTALLATION_PERMISSIONS, startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { generateAppKey } from "../support/app-credentials.js";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { testDatabaseUrl } from "../support/postgres.js";

const SECRET = "e2e-settings-webhook-secret";
const ADMIN_TOKEN = "e2e-settings-admin-token-0123456789";
/** Distinctive, so that finding it anywhere means it leaked. */
const API_KEY = "sk_live_e2e_Zq8vX3pL0wN7tR5y";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
/** Prints what the process sees: variables in clear, the secret only as a hash (and once in clear, to be masked). */
const SHOW = [
  'echo "sees API_URL=$API_URL V35=$V35 LEVEL=$LEVEL in $(pwd)"',
  "node -e 'console.log(\"key hash \" + require(\"crypto\").createHash(\"sha256\").update(process.env.API_KEY || \"\").digest(\"hex\"))'",
  'echo "key in clear: $API_KEY"',
].join(" && ");
const APP = `import http from "node:http";
${"console.log(`run sees API_URL=${process.env.API_URL} key ${process.env.API_KEY ? \"set\" : \"unset\"}: ${process.env.API_KEY}`);"}
http.createServer((request, response) => response.end("ok")).listen(Number(process.env.PORT), "127.0.0.1");
`;

let github: GitHubStandIn;
let slipway: RunningSlipway;
let root: string;
let nextInstallation = 2100;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  root = await mkdtemp(path.join(tmpdir(), "slipway-e2e-settings-"));
  slipway = await startSlipway({
    env: {
      ...standInAppEnv(github, { privateKey, webhookSecret: SECRET, dataDir: path.join(root, "data") }),
      SLIPWAY_DATABASE_URL: testDatabaseUrl,
      SLIPWAY_ADMIN_TOKEN: ADMIN_TOKEN,
      SLIPWAY_MAX_CONCURRENT_BUILDS: "3",
    },
  });
});

afterAll(async () => {
  await slipway?.stop();
  await github?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

function config(run: boolean) {
  return [
    "previews: { enabled: true }",
    "build:",
    "  root: services/api",
    "  env: { LEVEL: from-build-env, API_URL: overridden }",
    `  commands: [${JSON.stringify(SHOW)}]`,
    ...(run ? ["run:", "  command: node app.mjs", "  timeout: 20"] : []),
  ].join("\n");
}

function repository(name: string, options: { run?: boolean; permissions?: Record<string, "read" | "write"> } = {}): StandInRepositoryHandle {
  const installationId = nextInstallation++;
  if (options.permissions) github.addInstallation({ id: installationId, permissions: options.permissions });
  return github.addRepository({ owner: "settings", name, installationId, private: false, files: files(options.run ?? false) });
}

function files(run: boolean) {
  return { ".github/slipway.yml": config(run), "services/api/app.mjs": APP, "services/api/README.md": "api\n", "README.md": "root\n" };
}

async function push(repo: StandInRepositoryHandle, run = false) {
  const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ...files(run), "n.txt": String(Math.random()) } });
  const response = await sendWebhook({ url: `${slipway.url}/api/github/webhooks`, secret: SECRET, event: "push", payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }) });
  expect(response.status).toBeLessThan(300);
  return sha;
}

function completedRun(repo: StandInRepositoryHandle, sha: string, name = "slipway/production") {
  return github.waitFor((gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((r) => r.headSha === sha && r.name === name && r.status === "completed"), {
    timeoutMs: 60_000,
    description: `a completed ${name} check run on ${repo.fullName}@${sha.slice(0, 7)}`,
  });
}

async function setSecret(repo: StandInRepositoryHandle, environment: string, name: string, value: string) {
  const response = await fetch(`${slipway.url}/api/v1/repos/${repo.owner}/${repo.name}/environments/${environment}/secrets/${name}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ value }),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
}

const logOf = async (revisionId: string) => (await fetch(`${slipway.url}/revisions/${revisionId}/log`)).text();

/** Every file under `dir`, as text. */
async function allFiles(dir: string): Promise<Array<{ file: string; text: string }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (file) => ({ file, text: (await readFile(file).catch(() => Buffer.alloc(0))).toString("latin1") })));
}

describe("environment settings", { timeout: 120_000 }, () => {
  it("GitHub environment variables (two pages) and a Slipway secret reach build and run in build.root; the secret is masked and never stored in clear", async () => {
    const repo = repository("api", { run: true });
    const variables = Object.fromEntries(Array.from({ length: 35 }, (_, i) => [`V${i + 1}`, `value-${i + 1}`]));
    github.setEnvironmentVariables({ owner: repo.owner, name: repo.name, environment: "production", variables: { ...variables, API_URL: "https://api.example/v1", LEVEL: "from-github" } });
    await setSecret(repo, "production", "API_KEY", API_KEY);
    await setSecret(repo, "production", "LEVEL", "from-secret");

    const sha = await push(repo, true);
    const run = await completedRun(repo, sha);
    expect(run.conclusion).toBe("success");
    const log = await logOf(run.externalId);
    // Precedence: secret over GitHub variable over build.env; the commands ran in build.root.
    expect(log).toMatch(/sees API_URL=https:\/\/api\.example\/v1 V35=value-35 LEVEL=\*\*\* in \/\S*services\/api\n/);
    expect(log).toContain(`key hash ${sha256(API_KEY)}`);
    expect(log).toContain("key in clear: ***");
    expect(log).toContain("run sees API_URL=https://api.example/v1 key set: ***");
    expect(log).not.toContain(API_KEY);

    const leaks = (await allFiles(path.join(root, "data"))).filter(({ text }) => text.includes(API_KEY) || text.includes(Buffer.from(API_KEY).toString("base64")));
    expect(leaks.map((l) => l.file)).toEqual([]);
    expect(slipway.output()).not.toContain(API_KEY);
  });

  it("a failing build that prints the secret shows it masked in the check run", async () => {
    const repo = repository("leaky");
    await setSecret(repo, "production", "API_KEY", API_KEY);
    const failing = config(false).replace(`commands: [${JSON.stringify(SHOW)}]`, `commands: [${JSON.stringify(`${SHOW} && exit 3`)}]`);
    const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ...files(false), ".github/slipway.yml": failing } });
    await sendWebhook({ url: `${slipway.url}/api/github/webhooks`, secret: SECRET, event: "push", payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }) });
    const run = await completedRun(repo, sha);
    expect(run.conclusion).toBe("failure");
    const shown = JSON.stringify(run.history);
    expect(shown).toContain("key in clear: ***");
    expect(shown).not.toContain(API_KEY);
  });

  it("a preview sees neither the production secret nor production's variables", async () => {
    const repo = repository("previewed");
    github.setEnvironmentVariables({ owner: repo.owner, name: repo.name, environment: "production", variables: { API_URL: "https://prod.example" } });
    await setSecret(repo, "production", "API_KEY", API_KEY);
    const headSha = github.addCommit({ owner: repo.owner, name: repo.name, files: files(false), branch: "feature" });
    github.addPullRequest({ owner: repo.owner, name: repo.name, number: 5, headSha, headRef: "feature", user: "contributor" });
    github.setPermission(repo.owner, repo.name, "maintainer", "maintain");
    const recorded = github.addIssueComment({ owner: repo.owner, name: repo.name, number: 5, body: "/deploy", user: { login: "maintainer" } });
    const response = await sendWebhook({
      url: `${slipway.url}/api/github/webhooks`,
      secret: SECRET,
      event: "issue_comment",
      payload: issueCommentPayload({
        action: "created",
        body: recorded.body,
        user: recorded.user,
        number: 5,
        isPullRequest: true,
        repository: repo,
        installationId: repo.installationId,
        commentId: recorded.id,
        createdAt: recorded.createdAt,
        authorAssociation: "OWNER",
      }),
    });
    expect(response.status).toBeLessThan(300);
    const run = await completedRun(repo, headSha, "slipway/pr-5");
    expect(run.conclusion).toBe("success");
    const log = await logOf(run.externalId);
    expect(log).toContain("sees API_URL=overridden V35= LEVEL=from-build-env");
    expect(log).toContain(`key hash ${sha256("")}`);
  });

  it("an installation without environments: read still deploys, and the check run says which permission to accept", async () => {
    const { environments: _omitted, ...withoutEnvironments } = DEFAULT_INSTALLATION_PERMISSIONS;
    const repo = repository("no-permission", { permissions: withoutEnvironments as Record<string, "read" | "write"> });
    github.setEnvironmentVariables({ owner: repo.owner, name: repo.name, environment: "production", variables: { API_URL: "https://hidden.example" } });
    const sha = await push(repo);
    const run = await completedRun(repo, sha);
    expect(run.conclusion).toBe("success");
    expect(run.output.summary).toContain("needs the Environments (read) permission");
    expect(await logOf(run.externalId)).toContain("sees API_URL=overridden");
  });
});
