/**
 * Each revision gets the variables of its GitHub environment (`preview` for pull request
 * previews): every page of them, none of the names Slipway sets itself, and nothing at all,
 * with a sentence for the check run, when the installation has not granted `environments: read`.
 */
import nock from "nock";
import { ProbotOctokit } from "probot";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { githubEnvironmentOf, readEnvironmentVariables } from "../../../src/control-plane/github/environment-variables.js";

const API = "https://api.github.com";
const REPO = "/repos/octo-org/hello-world";
const target = { owner: "octo-org", repo: "hello-world" };

const octokit = () => new ProbotOctokit({ auth: { token: "ghs_test" }, retry: { enabled: false }, throttle: { enabled: false } });

/** GitHub's `actions-variable`. */
const variable = (name: string, value: string) => ({ name, value, created_at: "2025-01-24T22:45:36Z", updated_at: "2025-01-24T22:45:36Z" });

beforeEach(() => {
  nock.disableNetConnect();
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  nock.enableNetConnect();
  expect(pending).toEqual([]);
});

describe("readEnvironmentVariables", () => {
  it("reads every page, 30 at a time, following GitHub's link header", async () => {
    const first = Array.from({ length: 30 }, (_, i) => variable(`VAR_${String(i).padStart(2, "0")}`, `value ${i}`));
    const second = Array.from({ length: 5 }, (_, i) => variable(`VAR_${30 + i}`, `value ${30 + i}`));
    const page = (n: number) => `${API}${REPO}/environments/production/variables?per_page=30&page=${n}`;
    nock(API)
      .get(`${REPO}/environments/production/variables`)
      .query({ per_page: "30" })
      .reply(200, { total_count: 35, variables: first }, { link: `<${page(2)}>; rel="next", <${page(2)}>; rel="last"` })
      .get(`${REPO}/environments/production/variables`)
      .query({ per_page: "30", page: "2" })
      .reply(200, { total_count: 35, variables: second }, { link: `<${page(1)}>; rel="prev", <${page(1)}>; rel="first"` });

    const { variables, notes } = await readEnvironmentVariables(octokit(), { ...target, environment: "production" });

    expect(Object.keys(variables)).toHaveLength(35);
    expect(variables.VAR_00).toBe("value 0");
    expect(variables.VAR_29).toBe("value 29");
    expect(variables.VAR_34).toBe("value 34");
    expect(notes).toEqual([]);
  });

  it("reads the GitHub environment named preview for a pull request preview", async () => {
    nock(API)
      .get(`${REPO}/environments/preview/variables`)
      .query({ per_page: "30" })
      .reply(200, { total_count: 1, variables: [variable("API_BASE", "https://staging.example")] });

    expect(await readEnvironmentVariables(octokit(), { ...target, environment: "pr-42" })).toEqual({ variables: { API_BASE: "https://staging.example" }, notes: [] });
  });

  it("gives no variables and says nothing when the GitHub environment does not exist", async () => {
    nock(API)
      .get(`${REPO}/environments/staging/variables`)
      .query(true)
      .reply(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest/actions/variables#list-environment-variables", status: "404" });

    expect(await readEnvironmentVariables(octokit(), { ...target, environment: "staging" })).toEqual({ variables: {}, notes: [] });
  });

  it("deploys without variables when the installation lacks environments: read, and says which permission to accept", async () => {
    nock(API)
      .get(`${REPO}/environments/production/variables`)
      .query(true)
      .reply(403, { message: "Resource not accessible by integration", documentation_url: "https://docs.github.com/rest/actions/variables#list-environment-variables", status: "403" }, { "x-accepted-github-permissions": "environments=read" });

    const { variables, notes } = await readEnvironmentVariables(octokit(), { ...target, environment: "production" });

    expect(variables).toEqual({});
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/Environments \(read\) permission/);
    expect(notes[0]).toMatch(/installation's settings/);
  });

  it("leaves out the names Slipway sets itself, naming them (never their values) in a note", async () => {
    nock(API)
      .get(`${REPO}/environments/production/variables`)
      .query(true)
      .reply(200, {
        total_count: 7,
        variables: [
          variable("DATABASE_URL", "postgres://elsewhere"),
          variable("PORT", "1"),
          variable("PATH", "/evil"),
          variable("HOME", "/root"),
          variable("SLIPWAY_SHA", "forged"),
          variable("FEATURE_FLAGS", "new-checkout"),
          variable("SLIPWAYS", "a name that merely starts alike"),
        ],
      });

    const { variables, notes } = await readEnvironmentVariables(octokit(), { ...target, environment: "production" });

    expect(variables).toEqual({ FEATURE_FLAGS: "new-checkout", SLIPWAYS: "a name that merely starts alike" });
    expect(notes).toHaveLength(1);
    for (const name of ["DATABASE_URL", "PORT", "PATH", "HOME", "SLIPWAY_SHA"]) expect(notes[0]).toContain(name);
    for (const value of ["postgres://elsewhere", "/evil", "/root", "forged"]) expect(notes[0]).not.toContain(value);
  });

  it("throws on a server error or a rate limit, so the lease is tried again", async () => {
    nock(API).get(`${REPO}/environments/production/variables`).query(true).reply(502, { message: "Server Error" });
    await expect(readEnvironmentVariables(octokit(), { ...target, environment: "production" })).rejects.toMatchObject({ status: 502 });

    nock(API)
      .get(`${REPO}/environments/production/variables`)
      .query(true)
      .reply(403, { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." });
    await expect(readEnvironmentVariables(octokit(), { ...target, environment: "production" })).rejects.toMatchObject({ status: 403 });
  });
});

describe("githubEnvironmentOf", () => {
  it("is preview for every pr-<number>, else the deployment's own name", () => {
    expect(githubEnvironmentOf("pr-1")).toBe("preview");
    expect(githubEnvironmentOf("pr-4711")).toBe("preview");
    expect(githubEnvironmentOf("production")).toBe("production");
    expect(githubEnvironmentOf("pr-review")).toBe("pr-review");
  });
});
