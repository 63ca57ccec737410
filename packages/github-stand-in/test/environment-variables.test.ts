/**
 * GitHub environments and their variables, as `GET /repos/{owner}/{repo}/environments/{environment_name}/variables`
 * serves them: pages of 10 unless asked (at most 30) with GitHub's `link` header, 404 for an
 * environment that does not exist, 403 for an installation without `environments: read`.
 */
import { generateKeyPairSync } from "node:crypto";
import { Probot, ProbotOctokit } from "probot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_INSTALLATION_PERMISSIONS, startGitHubStandIn, type GitHubStandIn } from "../src/start-github-stand-in.js";

const APP_ID = 42;
const INSTALLATION_ID = 7;
const LIMITED_INSTALLATION_ID = 8;

let github: GitHubStandIn;
let probot: Probot;

beforeAll(async () => {
  const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
  github = await startGitHubStandIn({ appId: APP_ID, appPublicKey: pair.publicKey, validateResponses: true });
  github.addRepository({ owner: "acme", name: "web", installationId: INSTALLATION_ID });
  // An installation that has not accepted environments: read yet.
  const { environments: _notGranted, ...withoutEnvironments } = DEFAULT_INSTALLATION_PERMISSIONS;
  github.addInstallation({ id: LIMITED_INSTALLATION_ID, account: "umbrella", permissions: withoutEnvironments });
  github.addRepository({ owner: "umbrella", name: "shop", installationId: LIMITED_INSTALLATION_ID });
  github.setEnvironmentVariables({ owner: "umbrella", name: "shop", environment: "production", variables: { API_BASE: "https://api.example" } });
  const Octokit = ProbotOctokit.defaults((options: Record<string, any>) => ({ ...options, retry: { enabled: false }, throttle: { ...options.throttle, enabled: false } }));
  probot = new Probot({ appId: APP_ID, privateKey: pair.privateKey.export({ type: "pkcs1", format: "pem" }).toString(), baseUrl: github.apiUrl, Octokit, logLevel: "fatal" });
});

afterAll(async () => {
  await github?.close();
});

/** `count` variables named VAR_00, VAR_01, … with values `value <i>`. */
function numbered(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`VAR_${String(i).padStart(2, "0")}`, `value ${i}`]));
}

describe("GitHub stand-in: environment variables", () => {
  it("lists 10 a page by default, at most 30, with total_count and a link header octokit follows", async () => {
    github.setEnvironmentVariables({ owner: "acme", name: "web", environment: "production", variables: numbered(35) });
    const octokit = await probot.auth(INSTALLATION_ID);

    const first = await octokit.rest.actions.listEnvironmentVariables({ owner: "acme", repo: "web", environment_name: "production" });
    expect(first.data.total_count).toBe(35);
    expect(first.data.variables.map((v) => v.name)).toEqual(Object.keys(numbered(10)));
    expect(first.data.variables[0]).toMatchObject({ name: "VAR_00", value: "value 0" });
    expect(first.data.variables[0]?.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(first.headers.link).toContain('page=2>; rel="next"');
    expect(first.headers.link).toContain('page=4>; rel="last"');

    const capped = await octokit.rest.actions.listEnvironmentVariables({ owner: "acme", repo: "web", environment_name: "production", per_page: 100 });
    expect(capped.data.variables).toHaveLength(30);

    const all = await octokit.paginate(octokit.rest.actions.listEnvironmentVariables, { owner: "acme", repo: "web", environment_name: "production", per_page: 30 });
    expect(all.map((v) => v.name)).toEqual(Object.keys(numbered(35)));
    const pages = github.requests.filter((r) => r.operationId === "actions/list-environment-variables" && r.query.per_page === "30");
    expect(pages.map((r) => [r.status, r.query.page])).toEqual([
      [200, undefined],
      [200, "2"],
    ]);
  });

  it("upper-cases names and replaces the environment's variables when seeded again", async () => {
    github.setEnvironmentVariables({ owner: "acme", name: "web", environment: "Staging", variables: { feature_flags: "a", OLD: "x" } });
    github.setEnvironmentVariables({ owner: "acme", name: "web", environment: "staging", variables: { feature_flags: "b" } });
    const octokit = await probot.auth(INSTALLATION_ID);
    const { data } = await octokit.rest.actions.listEnvironmentVariables({ owner: "acme", repo: "web", environment_name: "staging" });
    expect(data.variables.map(({ name, value }) => ({ name, value }))).toEqual([{ name: "FEATURE_FLAGS", value: "b" }]);
    expect(() => github.setEnvironmentVariables({ owner: "acme", name: "web", environment: "staging", variables: { GITHUB_TOKEN: "x" } })).toThrow(/refuses/);
    expect(() => github.setEnvironmentVariables({ owner: "acme", name: "web", environment: "staging", variables: { "1ST": "x" } })).toThrow(/refuses/);
  });

  it("answers 404 for an environment that does not exist", async () => {
    const octokit = await probot.auth(INSTALLATION_ID);
    const error = await octokit.rest.actions.listEnvironmentVariables({ owner: "acme", repo: "web", environment_name: "preview" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 404 });
  });

  it("answers 403 like GitHub to an installation without environments: read", async () => {
    const octokit = await probot.auth(LIMITED_INSTALLATION_ID);
    const error = await octokit.rest.actions.listEnvironmentVariables({ owner: "umbrella", repo: "shop", environment_name: "production" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 403, response: { data: { message: "Resource not accessible by integration" }, headers: { "x-accepted-github-permissions": "environments=read" } } });
  });

  it("sent and answered everything as GitHub's description says", () => {
    expect(github.violations).toEqual([]);
    expect(github.notImplemented).toEqual([]);
    expect(github.responseViolations.map((v) => v.message)).toEqual([]);
  });
});
