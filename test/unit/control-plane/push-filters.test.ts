import nock from "nock";
import { describe, expect, it } from "vitest";
import { API, mockInstallationToken, useNockControlPlane } from "../../support/nock-control-plane.js";
import { pushExample } from "../../support/push-example.js";

const REPO = "/repos/octo-org/hello-world";
const CONFIG = `${REPO}/contents/.github%2Fslipway.yml`;
const SHA = "0123456789abcdef0123456789abcdef01234567";
const BEFORE = "fedcba9876543210fedcba9876543210fedcba98";
const ZERO = "0".repeat(40);
const API_ONLY = "environments:\n  production:\n    branch: main\n    paths: ['services/api/**', package-lock.json]\n";

/** A push of SHA to main whose last commit changed `files`; `commits` listed in all (GitHub's file lists per commit). */
function push(options: { files?: string[]; message?: string; before?: string; forced?: boolean; commits?: number } = {}) {
  const payload = pushExample({ after: SHA });
  payload.before = options.before ?? BEFORE;
  payload.created = payload.before === ZERO;
  payload.forced = options.forced ?? false;
  const head = { ...payload.commits[0], id: SHA, message: options.message ?? "Change things", added: [], removed: [], modified: options.files ?? [] };
  const count = options.commits ?? 1;
  payload.commits = Array.from({ length: count }, (_, i) => (i === count - 1 ? head : { ...head, id: String(i).padStart(40, "a"), message: "Earlier", modified: [] }));
  payload.head_commit = head;
  return payload;
}

describe("push filters: skip markers and paths", () => {
  const app = useNockControlPlane();

  async function receive(id: string, payload: any) {
    await app.probot.receive({ id, name: "push", payload });
    await app.services.inbox.idle();
    await app.services.reporter.idle();
  }

  /** GitHub's side of a revision: check run, deployment, deployment status. */
  function expectRevision(scope: nock.Scope, environment = "production") {
    return scope
      .post(`${REPO}/check-runs`, (body) => body.name === `slipway/${environment}` && body.status === "queued")
      .reply(201, { id: 601 })
      .post(`${REPO}/deployments`, (body) => body.environment === environment)
      .reply(201, { id: 501 })
      .post(`${REPO}/deployments/501/statuses`)
      .reply(201, { id: 701 });
  }

  const revisions = () => Object.values(app.services.store.state.revisions);
  const environmentsDeployed = () => revisions().map((r) => app.services.store.state.deployments[r.deploymentId]!.environment).sort();

  it("a push changing no file the environment's paths match makes no revision, and a skipped check run names the filter", async () => {
    let checkRun: any;
    mockInstallationToken()
      .get(CONFIG)
      .reply(200, API_ONLY)
      .post(`${REPO}/check-runs`, (body) => ((checkRun = body), true))
      .reply(201, { id: 9 });
    await receive("d-outside", push({ files: ["web/index.html", "services/api-docs/readme.md"] }));
    expect(revisions()).toHaveLength(0);
    expect(checkRun).toMatchObject({ name: "slipway/production", head_sha: SHA, status: "completed", conclusion: "skipped" });
    expect(checkRun.output.summary).toContain("no changed file matches environments.production.paths: services/api/**, package-lock.json");
    expect(app.services.store.state.deliveries["d-outside"]).toMatchObject({ status: "processed", note: "skipped: production" });
  });

  it.each([
    ["a file under the folder", { modified: ["services/api/src/deep/server.ts"] }],
    ["a named file, removed", { removed: ["package-lock.json"] }],
    ["a dotfile under the folder", { added: ["services/api/.env.example"] }],
  ])("a push changing %s the paths match makes a revision", async (_name, files) => {
    expectRevision(mockInstallationToken().get(CONFIG).reply(200, API_ONLY));
    const payload = push();
    Object.assign(payload.commits[0], { added: [], modified: [], removed: [], ...files });
    await receive("d-inside", payload);
    expect(revisions()).toHaveLength(1);
  });

  it("the top-level paths are the default of environments without their own", async () => {
    const config = [
      "paths: ['web/**', '!web/**/*.md']",
      "environments:",
      "  production: { branch: main }",
      "  api: { branch: main, paths: ['services/api/**'] }",
      "  docs: { branch: main, paths: ['docs/**'] }",
    ].join("\n");
    const skipped: string[] = [];
    expectRevision(mockInstallationToken().get(CONFIG).reply(200, config), "production")
      .post(`${REPO}/check-runs`, (body) => body.conclusion === "skipped" && (skipped.push(`${body.name}: ${body.output.summary}`), true))
      .twice()
      .reply(201, { id: 9 });
    await receive("d-default", push({ files: ["web/app.ts", "web/README.md"] }));
    expect(environmentsDeployed()).toEqual(["production"]);
    expect(skipped.sort()).toEqual([
      "slipway/api: Slipway did not deploy this commit to api: no changed file matches environments.api.paths: services/api/**.",
      "slipway/docs: Slipway did not deploy this commit to docs: no changed file matches environments.docs.paths: docs/**.",
    ]);

    // The excluding glob comes last: a push changing only Markdown under web/ matches nothing.
    let checkRuns = 0;
    nock(API)
      .post(`${REPO}/check-runs`, (body) => body.conclusion === "skipped" && ++checkRuns > 0)
      .times(3)
      .reply(201, { id: 10 });
    const payload = push({ files: ["web/guide/intro.md"] });
    payload.after = payload.head_commit.id = payload.commits[0].id = "1".repeat(40);
    await receive("d-markdown", payload);
    expect(checkRuns).toBe(3);
    expect(revisions()).toHaveLength(1);
  });

  it.each(["[skip deploy]", "[deploy skip]", "[skip slipway]", "[Skip Deploy]"])("%s in the head commit's message skips every environment of the push", async (marker) => {
    let checkRun: any;
    mockInstallationToken()
      .get(CONFIG)
      .reply(200, "build: { commands: ['true'] }\n")
      .post(`${REPO}/check-runs`, (body) => ((checkRun = body), true))
      .reply(201, { id: 9 });
    await receive("d-marker", push({ files: ["src/app.ts"], message: `Fix the header ${marker}\n\nDetails.` }));
    expect(revisions()).toHaveLength(0);
    expect(checkRun).toMatchObject({ name: "slipway/production", conclusion: "skipped" });
    expect(checkRun.output.summary).toContain(`${marker.toLowerCase()} in the head commit's message`);
  });

  it("a marker in an earlier commit of the push does not skip it", async () => {
    expectRevision(mockInstallationToken().get(CONFIG).reply(200, "build: { commands: ['true'] }\n"));
    const payload = push({ files: ["src/app.ts"], commits: 2 });
    payload.commits[0].message = "WIP [skip deploy]";
    await receive("d-earlier", payload);
    expect(revisions()).toHaveLength(1);
  });

  it.each([
    ["files outside the filter: skipped", [{ filename: "web/index.html", status: "modified" }], 0],
    ["a file renamed out of the folder: deployed", [{ filename: "web/server.ts", previous_filename: "services/api/server.ts", status: "renamed" }], 1],
  ])("a payload that may be truncated (20 commits) asks the compare API, which decides: %s", async (_name, files, expected) => {
    let compareQuery: any;
    const scope = mockInstallationToken()
      .get(CONFIG)
      .reply(200, API_ONLY)
      .get(`${REPO}/compare/${BEFORE}...${SHA}`)
      .query((query) => ((compareQuery = query), true))
      .reply(200, { status: "ahead", files });
    if (expected) expectRevision(scope);
    else scope.post(`${REPO}/check-runs`, (body) => body.conclusion === "skipped").reply(201, { id: 9 });
    // The payload's own lists say "outside": they must not decide, as GitHub may have cut them.
    await receive("d-truncated", push({ files: ["web/index.html"], commits: 20 }));
    expect(compareQuery).toEqual({ per_page: "1" });
    expect(revisions()).toHaveLength(expected);
  });

  it("a commit listing GitHub's maximum of 3,000 files is not trusted either", async () => {
    expectRevision(
      mockInstallationToken()
        .get(CONFIG)
        .reply(200, API_ONLY)
        .get(`${REPO}/compare/${BEFORE}...${SHA}`)
        .query(true)
        .reply(200, { status: "ahead", files: [{ filename: "package-lock.json", status: "modified" }] }),
    );
    await receive("d-3000", push({ files: Array.from({ length: 3_000 }, (_, i) => `web/f${i}.js`) }));
    expect(revisions()).toHaveLength(1);
  });

  it.each([
    ["fails (404: the old commit is gone)", (scope: nock.Interceptor) => scope.reply(404, { message: "Not Found" })],
    ["fails (500)", (scope: nock.Interceptor) => scope.reply(500, { message: "Server Error" })],
    ["lists 300 files, all it ever lists", (scope: nock.Interceptor) => scope.reply(200, { status: "ahead", files: Array.from({ length: 300 }, (_, i) => ({ filename: `web/f${i}.js`, status: "added" })) })],
  ])("when the compare API %s, the push deploys", async (_name, answer) => {
    const scope = mockInstallationToken().get(CONFIG).reply(200, API_ONLY);
    expectRevision(answer(scope.get(`${REPO}/compare/${BEFORE}...${SHA}`).query(true)));
    await receive("d-doubt", push({ files: ["web/index.html"], commits: 25 }));
    expect(revisions()).toHaveLength(1);
  });

  it.each([
    ["a new branch", { before: ZERO }],
    ["a forced push", { forced: true }],
  ])("%s deploys whatever its commits list, without comparing", async (_name, options) => {
    expectRevision(mockInstallationToken().get(CONFIG).reply(200, API_ONLY));
    await receive("d-new", push({ files: ["web/index.html"], ...options }));
    expect(revisions()).toHaveLength(1);
  });
});
