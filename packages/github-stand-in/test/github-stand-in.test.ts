import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Probot, ProbotOctokit } from "probot";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadGitHubOpenApiSpec } from "../src/openapi-spec.js";
import { createOpenApiValidator } from "../src/openapi-validator.js";
import { sendWebhook } from "../src/send-webhook.js";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "../src/start-github-stand-in.js";
import { checkRunPayload, issueCommentPayload, pullRequestPayload, pushPayload } from "../src/webhook-payloads.js";

const APP_ID = 42;
const INSTALLATION_ID = 7;
const CONFIG = "environments:\n  production: { branch: main }\nbuild:\n  commands: [\"npm ci\"]\n";

let github: GitHubStandIn;
let privateKey: KeyObject;
let privateKeyPem: string;
let web: StandInRepositoryHandle;
let api: StandInRepositoryHandle;
let probot: Probot;

beforeAll(async () => {
  const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
  privateKey = pair.privateKey;
  privateKeyPem = pair.privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  github = await startGitHubStandIn({ appId: APP_ID, appPublicKey: pair.publicKey, validateResponses: true });
  web = github.addRepository({ owner: "acme", name: "web", installationId: INSTALLATION_ID, files: { ".github/slipway.yml": CONFIG, "package.json": "{}", "src/index.js": "console.log(1)\n" } });
  api = github.addRepository({ owner: "acme", name: "api", installationId: INSTALLATION_ID, private: true, files: { "README.md": "# api\n" } });
  // A function, not an object: Probot replaces an object's `throttle` with its own options, which re-enables throttling.
  const Octokit = ProbotOctokit.defaults((options: Record<string, any>) => ({ ...options, retry: { enabled: false }, throttle: { ...options.throttle, enabled: false } }));
  probot = new Probot({ appId: APP_ID, privateKey: privateKeyPem, baseUrl: github.apiUrl, Octokit, logLevel: "fatal" });
});

afterAll(async () => {
  await github?.close();
});

/** An app JWT signed with `key`, with claims overridable to test GitHub's checks. */
function appJwt(claims: Record<string, unknown> = {}, key: KeyObject = privateKey): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "RS256", typ: "JWT" })}.${encode({ iat: now - 30, exp: now + 540, iss: APP_ID, ...claims })}`;
  return `${unsigned}.${sign("RSA-SHA256", Buffer.from(unsigned), key).toString("base64url")}`;
}

/** A raw request to the stand-in's API. */
async function call(method: string, path: string, options: { token?: string; jwt?: string; body?: unknown; accept?: string } = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { accept: options.accept ?? "application/vnd.github+json" };
  if (options.token) headers.authorization = `token ${options.token}`;
  if (options.jwt) headers.authorization = `Bearer ${options.jwt}`;
  if (options.body !== undefined) headers["content-type"] = "application/json; charset=utf-8";
  const response = await fetch(`${github.apiUrl}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // raw text answer
  }
  return { status: response.status, body, headers: response.headers };
}

/** Mints an installation token over HTTP, as Slipway's app client does. */
async function mintToken(body: Record<string, unknown> = {}): Promise<string> {
  const response = await call("POST", `/app/installations/${INSTALLATION_ID}/access_tokens`, { jwt: appJwt(), body });
  expect(response.status).toBe(201);
  return response.body.token as string;
}

/** Runs `action` and returns the violations it added. */
async function newViolations(action: () => Promise<unknown>) {
  const before = github.violations.length;
  await action();
  return github.violations.slice(before);
}

describe("GitHub stand-in: what Probot sends", () => {
  it("starts fast, serves Probot's installation auth and reads the config the way the config plugin asks", async () => {
    expect(github.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(github.apiUrl).toBe(`${github.url}/api/v3`);
    expect(github.stats.startMs).toBeLessThan(5_000);

    const octokit = await probot.auth(INSTALLATION_ID);
    const config = await octokit.config.get({ owner: "acme", repo: "web", path: ".github/slipway.yml" });
    expect(config.config).toEqual({ environments: { production: { branch: "main" } }, build: { commands: ["npm ci"] } });
    const missing = await octokit.config.get({ owner: "acme", repo: "api", path: ".github/slipway.yml" });
    expect(missing.config).toEqual({});
    expect(github.requests.filter((r) => r.path.startsWith("/repos/acme/api/contents/") && r.params?.path === ".github/slipway.yml").map((r) => r.status)).toEqual([404]);

    const { data } = await octokit.rest.repos.get({ owner: "acme", repo: "web" });
    expect(data).toMatchObject({ id: web.id, full_name: "acme/web", default_branch: "main" });
    const json = await octokit.rest.repos.getContent({ owner: "acme", repo: "web", path: "package.json" });
    expect(json.data).toMatchObject({ type: "file", encoding: "base64", path: "package.json" });
    const directory = await octokit.rest.repos.getContent({ owner: "acme", repo: "web", path: "src" });
    expect(Array.isArray(directory.data)).toBe(true);

    expect(github.tokens.some((t) => t.installationId === INSTALLATION_ID)).toBe(true);
    const configRequest = github.requests.find((r) => r.operationId === "repos/get-content" && r.path.endsWith("slipway.yml"));
    expect(configRequest).toMatchObject({ status: 200, auth: "installation" });
    expect(github.violations).toEqual([]);
    expect(github.responseViolations).toEqual([]);
  });

  it("plays GitHub for a Probot app handling a payload from the builders (context.config, checks, deployments)", async () => {
    const app = new Probot({ appId: APP_ID, privateKey: privateKeyPem, baseUrl: github.apiUrl, Octokit: ProbotOctokit.defaults((options: Record<string, any>) => ({ ...options, retry: { enabled: false }, throttle: { ...options.throttle, enabled: false } })), logLevel: "fatal" });
    await app.load((probotApp) => {
      probotApp.on("push", async (context) => {
        const config = await context.config<{ environments: Record<string, { branch: string }> }>("slipway.yml");
        const environment = Object.keys(config?.environments ?? {})[0] ?? "none";
        await context.octokit.rest.checks.create(context.repo({ name: `slipway/${environment}`, head_sha: context.payload.after, status: "queued" }));
        await context.octokit.rest.repos.createDeployment(context.repo({ ref: context.payload.after, environment, auto_merge: false, required_contexts: [] }));
      });
    });
    const before = github.violations.length;
    await app.receive({ id: "delivery-1", name: "push", payload: pushPayload({ repository: web, installationId: INSTALLATION_ID, ref: "main", after: web.headSha }) });
    expect(github.checkRuns({ owner: "acme", name: "web" }).some((r) => r.name === "slipway/production" && r.headSha === web.headSha)).toBe(true);
    expect(github.deployments({ owner: "acme", name: "web" }).at(-1)).toMatchObject({ environment: "production", autoMerge: false, requiredContexts: [] });
    expect(github.violations.slice(before)).toEqual([]);
  });

  it("serves the app and its installations to the app's JWT", async () => {
    const octokit = await probot.auth();
    expect((await octokit.rest.apps.getAuthenticated()).data).toMatchObject({ id: APP_ID, slug: "slipway" });
    expect((await octokit.rest.apps.getRepoInstallation({ owner: "acme", repo: "web" })).data).toMatchObject({ id: INSTALLATION_ID, app_id: APP_ID });
    expect((await octokit.rest.apps.getInstallation({ installation_id: INSTALLATION_ID })).data.account).toMatchObject({ login: "acme" });
  });

  it("answers with x-ratelimit headers like GitHub", async () => {
    const token = await mintToken();
    const response = await call("GET", "/repos/acme/web", { token });
    expect(response.headers.get("x-ratelimit-limit")).toBe("5000");
    expect(Number(response.headers.get("x-ratelimit-remaining"))).toBeGreaterThan(0);
    expect(Number(response.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000);
  });
});

describe("GitHub stand-in: validation against the OpenAPI description", () => {
  it("accepts a valid request without recording anything", async () => {
    const token = await mintToken();
    const violations = await newViolations(() =>
      call("POST", "/repos/acme/web/check-runs", { token, body: { name: "slipway/production", head_sha: web.headSha, status: "queued", external_id: "rev-1", output: { title: "Queued", summary: "Waiting" } } }),
    );
    expect(violations).toEqual([]);
  });

  it("records a wrong type with operationId, JSON pointer and message, and answers 422 like GitHub", async () => {
    const token = await mintToken();
    let response: Awaited<ReturnType<typeof call>> | undefined;
    const violations = await newViolations(async () => {
      response = await call("POST", "/repos/acme/web/check-runs", { token, body: { name: "x", head_sha: web.headSha, output: { title: 1, summary: "s" } } });
    });
    expect(response?.status).toBe(422);
    expect(violations).toHaveLength(1);
    expect(violations[0]?.operation).toBe("checks/create");
    expect(violations[0]?.errors).toEqual([{ location: "body", pointer: "/output/title", keyword: "type", message: "must be string (got number 1)" }]);
    expect(violations[0]?.message).toContain("POST /repos/{owner}/{repo}/check-runs (checks/create) body/output/title");
  });

  it("records a missing required field and an unknown enum value", async () => {
    const token = await mintToken();
    const violations = await newViolations(() => call("POST", "/repos/acme/web/check-runs", { token, body: { name: "x", status: "done" } }));
    expect(violations[0]?.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ pointer: "/head_sha", keyword: "required" }),
        expect.objectContaining({ pointer: "/status", keyword: "enum", message: 'must be one of: queued, in_progress, completed (got "done")' }),
      ]),
    );
  });

  it("records a misspelt (undocumented) property but lets the request through, as GitHub ignores it", async () => {
    const token = await mintToken();
    let status = 0;
    const violations = await newViolations(async () => {
      status = (await call("POST", "/repos/acme/web/deployments", { token, body: { ref: "main", auto_merge: false, required_contexts: [], enviroment: "staging" } })).status;
    });
    expect(status).toBe(201);
    expect(violations[0]?.errors[0]).toMatchObject({ pointer: "/enviroment", keyword: "undocumentedProperty" });
  });

  it("handles OpenAPI nullable: a null deployment description is valid", async () => {
    const token = await mintToken();
    const violations = await newViolations(() => call("POST", "/repos/acme/web/deployments", { token, body: { ref: "main", auto_merge: false, required_contexts: [], description: null } }));
    expect(violations).toEqual([]);
  });

  it("records paths and methods that are not in the description, and a bad query parameter", async () => {
    const token = await mintToken();
    const unknownPath = await newViolations(async () => expect((await call("GET", "/repos/acme/web/deploymentz", { token })).status).toBe(404));
    expect(unknownPath[0]).toMatchObject({ operation: null, errors: [expect.objectContaining({ keyword: "unknownOperation" })] });
    const unknownMethod = await newViolations(() => call("DELETE", "/repos/acme/web/check-runs", { token }));
    expect(unknownMethod[0]?.errors[0]?.message).toContain("it has POST");
    const badQuery = await newViolations(() => call("GET", `/repos/acme/web/commits/${web.headSha}/check-runs?status=done&check_names=x`, { token }));
    expect(badQuery[0]?.errors.map((e) => `${e.location}${e.pointer} ${e.keyword}`).sort()).toEqual(["query/check_names unknownQueryParameter", "query/status enum"]);
    const notUnderApi = await newViolations(() => fetch(`${github.url}/repos/acme/web`));
    expect(notUnderApi[0]?.errors[0]?.message).toContain("GHE_HOST");
  });

  it("answers 404 without a violation for operations of the description it does not implement", async () => {
    const token = await mintToken();
    const violations = await newViolations(async () => expect((await call("GET", "/repos/acme/web/branches", { token })).status).toBe(404));
    expect(violations).toEqual([]);
    expect(github.notImplemented.at(-1)).toMatchObject({ operationId: "repos/list-branches", note: "not implemented by stand-in" });
  });

  it("validates webhook payloads built by the payload builders against the description's x-webhooks", async () => {
    const { spec } = await loadGitHubOpenApiSpec();
    const validator = createOpenApiValidator({ spec });
    const repository = web;
    const sha = "b".repeat(40);
    const payloads: Array<[string, unknown]> = [
      ["push", pushPayload({ repository, installationId: INSTALLATION_ID, ref: "main", after: sha })],
      ["push", pushPayload({ repository, installationId: INSTALLATION_ID, ref: "refs/heads/old", after: "0".repeat(40), deleted: true })],
      ["pull_request", pullRequestPayload({ action: "opened", number: 3, head: { sha, ref: "feature" }, repository, installationId: INSTALLATION_ID })],
      ["pull_request", pullRequestPayload({ action: "synchronize", number: 3, head: { sha, ref: "feature", repoFullName: "fork-owner/web" }, repository, installationId: INSTALLATION_ID })],
      ["pull_request", pullRequestPayload({ action: "closed", merged: true, number: 3, head: { sha, ref: "feature" }, repository, installationId: INSTALLATION_ID })],
      ["issue_comment", issueCommentPayload({ action: "created", body: "/deploy", user: { login: "alice", type: "User" }, number: 3, isPullRequest: true, repository, installationId: INSTALLATION_ID })],
      ["issue_comment", issueCommentPayload({ action: "edited", body: "/deploy", previousBody: "hi", user: { login: "alice", type: "User" }, number: 4, isPullRequest: false, repository, installationId: INSTALLATION_ID })],
      ["check_run", checkRunPayload({ action: "rerequested", checkRun: { id: 1, name: "slipway/production", headSha: sha }, repository, installationId: INSTALLATION_ID, appId: APP_ID })],
      ["check_run", checkRunPayload({ action: "requested_action", requestedAction: "redeploy", checkRun: { id: 1, name: "slipway/production", headSha: sha }, repository, installationId: INSTALLATION_ID })],
    ];
    for (const [event, payload] of payloads) {
      expect({ event, errors: validator.validateWebhookPayload({ event, payload }) }).toEqual({ event, errors: [] });
    }
    const comment = issueCommentPayload({ action: "created", body: "/deploy", user: { login: "alice", type: "User" }, number: 3, isPullRequest: true, repository, installationId: INSTALLATION_ID });
    expect(comment.issue.pull_request).toBeDefined();
    expect(comment.repository.full_name).toBe("acme/web");
    expect(comment.installation?.id).toBe(INSTALLATION_ID);
    const fork = pullRequestPayload({ action: "opened", number: 3, head: { sha, ref: "feature", repoFullName: "fork-owner/web" }, repository, installationId: INSTALLATION_ID });
    expect(fork.pull_request.head.repo?.full_name).toBe("fork-owner/web");
    expect(fork.pull_request.head.repo?.fork).toBe(true);
  });
});

describe("GitHub stand-in: authentication like GitHub", () => {
  it("checks the app JWT's signature, issuer and expiry", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    expect((await call("GET", "/app", { jwt: appJwt() })).status).toBe(200);
    expect((await call("GET", "/app")).status).toBe(401);
    expect((await call("GET", "/app", { jwt: appJwt({}, other) })).body.message).toContain("signature");
    expect((await call("GET", "/app", { jwt: appJwt({ iss: 999 }) })).status).toBe(401);
    const expired = await call("GET", "/app", { jwt: appJwt({ iat: Math.floor(Date.now() / 1000) - 1200, exp: Math.floor(Date.now() / 1000) - 600 }) });
    expect(expired.status).toBe(401);
    expect(expired.body.message).toContain("'Expiration time' claim ('exp') must be a numeric value representing the future time");
    expect((await call("GET", "/app", { token: await mintToken() })).status).toBe(401);
  });

  it("limits a token to the repositories and permissions it was minted with, and records the asked scope", async () => {
    const appOctokit = await probot.auth();
    const { data } = await appOctokit.rest.apps.createInstallationAccessToken({ installation_id: INSTALLATION_ID, repositories: ["web"], permissions: { contents: "read" } });
    expect(data.repositories?.map((r) => r.full_name)).toEqual(["acme/web"]);
    const minted = github.tokens.find((t) => t.token === data.token);
    expect(minted).toMatchObject({ repositories: ["web"], requestedPermissions: { contents: "read" }, permissions: { contents: "read", metadata: "read" } });

    expect((await call("GET", "/repos/acme/web", { token: data.token })).status).toBe(200);
    expect((await call("GET", "/repos/acme/api", { token: data.token })).status).toBe(404);
    const forbidden = await call("POST", "/repos/acme/web/check-runs", { token: data.token, body: { name: "x", head_sha: web.headSha } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.message).toBe("Resource not accessible by integration");

    expect((await call("POST", `/app/installations/${INSTALLATION_ID}/access_tokens`, { jwt: appJwt(), body: { repositories: ["nope"] } })).status).toBe(422);
    expect((await call("POST", `/app/installations/${INSTALLATION_ID}/access_tokens`, { jwt: appJwt(), body: { permissions: { administration: "write" } } })).status).toBe(422);
    expect((await call("POST", "/app/installations/999/access_tokens", { jwt: appJwt() })).status).toBe(404);
  });

  it("refuses missing, unknown and expired tokens", async () => {
    expect((await call("GET", "/repos/acme/api")).status).toBe(404);
    expect((await call("GET", "/repos/acme/web", { token: "ghs_unknown" })).status).toBe(401);
    const second = await startGitHubStandIn({ appId: APP_ID });
    try {
      second.addRepository({ owner: "acme", name: "web", installationId: 1 });
      const minted = await fetch(`${second.apiUrl}/app/installations/1/access_tokens`, { method: "POST", headers: { authorization: `Bearer ${appJwt()}` } });
      const { token, expires_at } = (await minted.json()) as { token: string; expires_at: string };
      expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(59 * 60 * 1000);
      second.expireTokens();
      const response = await fetch(`${second.apiUrl}/repos/acme/web`, { headers: { authorization: `token ${token}` } });
      expect(response.status).toBe(401);
    } finally {
      await second.close();
    }
  });
});

describe("GitHub stand-in: source tarballs", () => {
  it("redirects to a codeload link serving a real .tar.gz of the commit under <owner>-<repo>-<shortsha>/", async () => {
    const sha = github.addCommit({ owner: "acme", name: "web", branch: "feature/x", files: { ".github/slipway.yml": CONFIG, "deep/nested/file.txt": "hello\n", [`long/${"d".repeat(120)}/name.txt`]: "long\n", "build.sh": "#!/bin/sh\necho hi\n" } });
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    const token = await mintToken({ repositories: ["web"], permissions: { contents: "read" } });
    const response = await fetch(`${github.apiUrl}/repos/acme/web/tarball/${sha}`, { headers: { authorization: `token ${token}` } });
    expect(response.status).toBe(200);
    expect(response.url).toContain("/_codeload/acme/web/legacy.tar.gz/");
    const directory = await mkdtemp(join(tmpdir(), "stand-in-tarball-"));
    try {
      await pipeline(Readable.from(Buffer.from(await response.arrayBuffer())), tar.x({ cwd: directory }));
      const folder = `acme-web-${sha.slice(0, 7)}`;
      expect(await readdir(directory)).toEqual([folder]);
      expect(await readFile(join(directory, folder, "deep/nested/file.txt"), "utf8")).toBe("hello\n");
      expect(await readFile(join(directory, folder, `long/${"d".repeat(120)}/name.txt`), "utf8")).toBe("long\n");
      expect((await readdir(join(directory, folder))).sort()).toEqual([".github", "build.sh", "deep", "long"]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
    // A branch name with a slash works as the ref too.
    expect((await fetch(`${github.apiUrl}/repos/acme/web/tarball/feature/x`, { headers: { authorization: `token ${token}` } })).status).toBe(200);
  });

  it("answers 404 without a token or with a token scoped to another repository", async () => {
    expect((await fetch(`${github.apiUrl}/repos/acme/web/tarball/main`)).status).toBe(404);
    const apiOnly = await mintToken({ repositories: ["api"] });
    expect((await fetch(`${github.apiUrl}/repos/acme/web/tarball/main`, { headers: { authorization: `token ${apiOnly}` } })).status).toBe(404);
    expect((await fetch(`${github.url}/_codeload/acme/web/legacy.tar.gz/${web.headSha}?token=forged`)).status).toBe(404);
  });
});

describe("GitHub stand-in: check runs and deployments", () => {
  it("keeps a check run's history and enforces GitHub's limits with 422", async () => {
    const token = await mintToken();
    const created = await call("POST", "/repos/acme/web/check-runs", { token, body: { name: "slipway/staging", head_sha: web.headSha, status: "queued", external_id: "rev-9" } });
    expect(created.status).toBe(201);
    const id = created.body.id as number;
    const path = `/repos/acme/web/check-runs/${id}`;
    expect((await call("PATCH", path, { token, body: { status: "in_progress", output: { title: "Building", summary: "BUILDING 3s" } } })).status).toBe(200);
    expect((await call("PATCH", path, { token, body: { status: "completed" } })).status).toBe(422);
    const before = github.violations.length;
    expect((await call("PATCH", path, { token, body: { output: { title: "t", summary: "x".repeat(65_536) } } })).status).toBe(422);
    expect((await call("PATCH", path, { token, body: { actions: [1, 2, 3, 4].map((n) => ({ label: `A${n}`, description: "d", identifier: `a${n}` })) } })).status).toBe(422);
    expect((await call("PATCH", path, { token, body: { actions: [{ label: "Redeploy", description: "d".repeat(41), identifier: "redeploy" }] } })).status).toBe(422);
    expect(github.violations.slice(before).map((v) => v.errors[0]?.keyword)).toEqual(["maxLength", "maxItems", "maxLength"]);
    expect((await call("PATCH", path, { token, body: { conclusion: "success", output: { title: "Deployed", summary: "done" } } })).status).toBe(200);

    const run = github.checkRuns({ owner: "acme", name: "web" }).find((r) => r.id === id);
    expect(run?.history.map((h) => [h.status, h.conclusion])).toEqual([["queued", null], ["in_progress", null], ["completed", "success"]]);
    expect(run?.externalId).toBe("rev-9");

    const listed = await call("GET", `/repos/acme/web/commits/main/check-runs?check_name=slipway/staging&status=completed`, { token });
    expect(listed.body.total_count).toBe(1);
    expect(listed.body.check_runs[0].id).toBe(id);
    expect((await call("GET", path, { token })).body.conclusion).toBe("success");
  });

  it("records deployments, rejects long status descriptions and applies auto_inactive", async () => {
    const token = await mintToken();
    const deploy = async (body: Record<string, unknown>) => (await call("POST", "/repos/acme/web/deployments", { token, body: { ref: "main", auto_merge: false, required_contexts: [], environment: "qa", ...body } })).body.id as number;
    const first = await deploy({ payload: { revision: "r1" } });
    const preview = await deploy({ environment: "qa", transient_environment: true, production_environment: false });
    const second = await deploy({ description: "second" });
    const status = (id: number, body: Record<string, unknown>) => call("POST", `/repos/acme/web/deployments/${id}/statuses`, { token, body });

    expect((await status(first, { state: "success", environment_url: "http://qa.web.localhost" })).status).toBe(201);
    expect((await status(preview, { state: "success" })).status).toBe(201);
    const tooLong = await status(second, { state: "in_progress", description: "x".repeat(141) });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body.errors[0].message).toContain("140");
    expect((await status(second, { state: "in_progress", log_url: "http://localhost:3000/revisions/r2", description: "Building" })).status).toBe(201);
    expect((await status(second, { state: "success", environment_url: "http://qa.web.localhost" })).status).toBe(201);

    const deployments = github.deployments({ owner: "acme", name: "web" });
    const byId = (id: number) => deployments.find((d) => d.id === id);
    expect(byId(first)).toMatchObject({ autoMerge: false, requiredContexts: [], environment: "qa", payload: { revision: "r1" }, transientEnvironment: false });
    expect(byId(first)?.statuses.map((s) => s.state)).toEqual(["success", "inactive"]);
    expect(byId(first)?.statuses[1]?.automatic).toBe(true);
    expect(byId(preview)?.statuses.map((s) => s.state)).toEqual(["success"]);
    expect(byId(second)?.statuses.map((s) => [s.state, s.logUrl, s.description])).toEqual([
      ["in_progress", "http://localhost:3000/revisions/r2", "Building"],
      ["success", "", ""],
    ]);
    const listed = await call("GET", `/repos/acme/web/deployments/${second}/statuses`, { token });
    expect(listed.body.map((s: { state: string }) => s.state)).toEqual(["success", "in_progress"]);
  });

  it("punishes GitHub's defaults: required_contexts blocks on a pending check run, auto_merge merges a branch that is behind", async () => {
    const token = await mintToken();
    const sha = github.addCommit({ owner: "acme", name: "web", files: { "a.txt": "a" } });
    expect((await call("POST", "/repos/acme/web/check-runs", { token, body: { name: "ci", head_sha: sha } })).status).toBe(201);
    const blocked = await call("POST", "/repos/acme/web/deployments", { token, body: { ref: sha, auto_merge: false } });
    expect(blocked.status).toBe(409);
    expect((await call("POST", "/repos/acme/web/deployments", { token, body: { ref: sha, auto_merge: false, required_contexts: [] } })).status).toBe(201);

    github.addCommit({ owner: "acme", name: "web", branch: "behind", files: { "b.txt": "b" } });
    github.addCommit({ owner: "acme", name: "web", files: { "c.txt": "c" } });
    const merged = await call("POST", "/repos/acme/web/deployments", { token, body: { ref: "behind", required_contexts: [] } });
    expect(merged.status).toBe(202);
    expect(merged.body.message).toContain("Auto-merged main into behind");
  });
});

describe("GitHub stand-in: pull requests, permissions, comments and reactions", () => {
  it("serves pull requests, collaborator roles and comment threads", async () => {
    const octokit = await probot.auth(INSTALLATION_ID);
    github.addPullRequest({ owner: "acme", name: "web", number: 12, headSha: web.headSha, headRef: "feature", headRepoFullName: "stranger/web" });
    const pr = await octokit.rest.pulls.get({ owner: "acme", repo: "web", pull_number: 12 });
    expect(pr.data.head).toMatchObject({ sha: web.headSha, ref: "feature" });
    expect(pr.data.head.repo?.full_name).toBe("stranger/web");
    github.updatePullRequest({ owner: "acme", name: "web", number: 12, state: "closed" });
    expect((await octokit.rest.pulls.get({ owner: "acme", repo: "web", pull_number: 12 })).data.state).toBe("closed");

    github.setPermission("acme", "web", "maintainer", "maintain");
    const permission = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "web", username: "maintainer" });
    expect(permission.data).toMatchObject({ permission: "write", role_name: "maintain" });
    expect((await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: "acme", repo: "api", username: "nobody" })).data.permission).toBe("none");

    const comment = await octokit.rest.issues.createComment({ owner: "acme", repo: "web", issue_number: 12, body: "Preview: http://pr-12.web.localhost" });
    expect(comment.data.user?.login).toBe("slipway[bot]");
    await octokit.rest.issues.updateComment({ owner: "acme", repo: "web", comment_id: comment.data.id, body: "Preview ready" });
    const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner: "acme", repo: "web", issue_number: 12, per_page: 1 });
    expect(comments.map((c) => c.body)).toEqual(["Preview ready"]);
    expect(github.comments.find((c) => c.id === comment.data.id)?.previousBodies).toEqual(["Preview: http://pr-12.web.localhost"]);

    const userComment = github.addIssueComment({ owner: "acme", name: "web", number: 12, body: "/deploy", user: { login: "maintainer" } });
    expect((await octokit.rest.reactions.createForIssueComment({ owner: "acme", repo: "web", comment_id: userComment.id, content: "rocket" })).status).toBe(201);
    expect((await octokit.rest.reactions.createForIssueComment({ owner: "acme", repo: "web", comment_id: userComment.id, content: "rocket" })).status).toBe(200);
    expect(github.reactions.filter((r) => r.commentId === userComment.id).map((r) => r.content)).toEqual(["rocket"]);
    await expect(octokit.rest.issues.createComment({ owner: "acme", repo: "web", issue_number: 999, body: "x" })).rejects.toMatchObject({ status: 404 });
    expect(github.responseViolations.map((v) => v.message)).toEqual([]);
  });
});

describe("GitHub stand-in: fault injection", () => {
  it("fails the next matching requests with 5xx, secondary and primary rate limits, and records them", async () => {
    const token = await mintToken();
    const fault = github.injectFaults({ method: "GET", path: "/repos/{owner}/{repo}", status: 502, count: 1 });
    expect((await call("GET", "/repos/acme/web", { token })).status).toBe(502);
    expect((await call("GET", "/repos/acme/web", { token })).status).toBe(200);
    expect(fault.hits).toBe(1);
    expect(github.requests.filter((r) => r.faulted).at(-1)).toMatchObject({ status: 502, operationId: "repos/get" });

    github.injectFaults({ path: /\/check-runs$/, status: 403, count: 1, retryAfterSeconds: 3, secondaryRateLimit: true });
    const secondary = await call("POST", "/repos/acme/web/check-runs", { token, body: { name: "x", head_sha: web.headSha } });
    expect(secondary.status).toBe(403);
    expect(secondary.headers.get("retry-after")).toBe("3");
    expect(secondary.body.message).toContain("secondary rate limit");

    github.injectFaults({ path: "/repos/acme/web", status: 429, count: 1, retryAfterSeconds: 60 });
    const primary = await call("GET", "/repos/acme/web", { token });
    expect(primary.status).toBe(429);
    expect(primary.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(primary.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000 + 30);
  });

  it("adds writeDelayMs to writes only", async () => {
    const slow = await startGitHubStandIn({ appId: APP_ID, writeDelayMs: 150 });
    try {
      const started = performance.now();
      const response = await fetch(`${slow.apiUrl}/app/installations/1/access_tokens`, { method: "POST", headers: { authorization: `Bearer ${appJwt()}` } });
      expect(response.status).toBe(404);
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    } finally {
      await slow.close();
    }
  });
});

describe("GitHub stand-in: webhooks and waiting", () => {
  let receiver: Server;
  let receiverUrl: string;
  const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
  let failNext = false;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        received.push({ headers: req.headers, body });
        res.writeHead(failNext ? 500 : 202).end("ok");
        failNext = false;
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/api/github/webhooks`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it("signs webhooks with HMAC-SHA256 of the exact body", async () => {
    const { createHmac } = await import("node:crypto");
    const payload = pushPayload({ repository: web, installationId: INSTALLATION_ID, ref: "main", after: web.headSha });
    const result = await sendWebhook({ url: receiverUrl, secret: "s3cret", event: "push", deliveryId: "d-1", payload });
    expect(result.status).toBe(202);
    const last = received.at(-1);
    expect(last?.headers["x-github-event"]).toBe("push");
    expect(last?.headers["x-github-delivery"]).toBe("d-1");
    expect(last?.headers["content-type"]).toBe("application/json");
    expect(last?.headers["x-hub-signature-256"]).toBe(`sha256=${createHmac("sha256", "s3cret").update(last?.body ?? "").digest("hex")}`);
  });

  it("records deliveries and redelivers them through POST /app/hook/deliveries/{id}/attempts", async () => {
    failNext = true;
    const payload = pushPayload({ repository: web, installationId: INSTALLATION_ID, ref: "main", after: web.headSha });
    const failed = await github.deliverWebhook({ url: receiverUrl, secret: "s3cret", event: "push", payload });
    expect(failed.statusCode).toBe(500);
    const list = await call("GET", "/app/hook/deliveries?per_page=10", { jwt: appJwt() });
    expect(list.body[0]).toMatchObject({ id: failed.id, guid: failed.guid, status_code: 500, event: "push", redelivery: false });
    const detail = await call("GET", `/app/hook/deliveries/${failed.id}`, { jwt: appJwt() });
    expect(detail.body.request.payload).toEqual(payload);
    expect(detail.body.request.headers["x-github-event"]).toBe("push");
    expect((await call("POST", `/app/hook/deliveries/${failed.id}/attempts`, { jwt: appJwt() })).status).toBe(202);
    const redelivered = await github.waitFor((gh) => gh.deliveries.find((d) => d.redelivery && d.guid === failed.guid), { timeoutMs: 5_000 });
    expect(redelivered.statusCode).toBe(202);
    expect(received.at(-1)?.headers["x-github-delivery"]).toBe(failed.guid);
  });

  it("waitFor resolves when the state changes and explains the state when it times out", async () => {
    const token = await mintToken();
    const transitions: string[] = [];
    const onCheckRun = ({ checkRun, snapshot }: { checkRun: { name: string }; snapshot: { status: string } }) => transitions.push(`${checkRun.name}:${snapshot.status}`);
    github.events.on("check-run", onCheckRun);
    const waiting = github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "api" }).find((r) => r.name === "slipway/production"), { timeoutMs: 5_000 });
    await call("POST", "/repos/acme/api/check-runs", { token, body: { name: "slipway/production", head_sha: api.headSha } });
    expect((await waiting).headSha).toBe(api.headSha);
    github.events.off("check-run", onCheckRun);
    expect(transitions).toEqual(["slipway/production:queued"]);

    // Nothing polls: a change made through the handle (not a request) is an event that wakes a waiting predicate too.
    const commented = github.waitFor((gh) => gh.comments.find((c) => c.body === "woken"), { timeoutMs: 5_000 });
    github.addIssue({ owner: "acme", name: "api", number: 90 });
    github.addIssueComment({ owner: "acme", name: "api", number: 90, body: "woken", user: { login: "octocat" } });
    expect((await commented).body).toBe("woken");

    const error = await github.waitFor(() => false, { timeoutMs: 100, description: "never" }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('waitFor "never" timed out after 100 ms');
    expect((error as Error).message).toContain('"slipway/production"');
    expect((error as Error).message).not.toContain("ghs_");
  });
});

describe("GitHub stand-in: its own answers", () => {
  it("matched the description's response schemas in every test above", () => {
    expect(github.requests.length).toBeGreaterThan(50);
    expect(github.responseViolations.map((v) => v.message)).toEqual([]);
  });
});
