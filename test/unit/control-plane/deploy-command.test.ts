import nock from "nock";
import { describe, expect, it } from "vitest";
import { recordNewRevision } from "../../../src/revisions/lifecycle.js";
import { issueCommentPayload } from "github-stand-in/webhook-payloads";
import { API, mockInstallationToken, useNockControlPlane } from "../../support/nock-control-plane.js";

const REPO = "/repos/octo-org/hello-world";
const repository = { id: 1296269, owner: "octo-org", name: "hello-world", fullName: "octo-org/hello-world", defaultBranch: "main", private: false };

function commentPayload(overrides: { body?: string; login?: string; type?: "User" | "Bot"; isPullRequest?: boolean; action?: "created" | "edited" } = {}) {
  return issueCommentPayload({
    action: overrides.action ?? "created",
    body: overrides.body ?? "/deploy",
    user: { login: overrides.login ?? "mallory", type: overrides.type },
    number: 42,
    isPullRequest: overrides.isPullRequest ?? true,
    repository,
    installationId: 42,
    commentId: 9001,
    authorAssociation: "OWNER",
  }) as any;
}

describe("/deploy trust rules", () => {
  const app = useNockControlPlane();
  const token = () => mockInstallationToken();

  it.each([
    ["read", 200, { permission: "read", role_name: "read" }],
    ["triage", 200, { permission: "read", role_name: "triage" }],
    ["no access", 404, { message: "Not Found" }],
  ])("asks GitHub, not author_association: %s gets one reply and nothing starts", async (_name, status, body) => {
    let reply: any;
    token()
      .get(`${REPO}/issues/comments/9001`)
      .reply(200, { id: 9001, body: "/deploy" })
      .get(`${REPO}/collaborators/mallory/permission`)
      .reply(status, { ...body, user: { login: "mallory" } })
      .post(`${REPO}/issues/42/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 1 });
    await app.probot.receive({ id: "c1", name: "issue_comment", payload: commentPayload() });
    await app.services.inbox.idle();
    expect(reply.body).toContain("write, maintain or admin");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it.each([
    ["a bot's comment", { type: "Bot" as const, login: "other[bot]" }],
    ["a comment on a plain issue", { isPullRequest: false }],
    ["an edited comment", { action: "edited" as const }],
    ["a quoted command", { body: "> /deploy" }],
  ])("does nothing for %s: not even a request to GitHub", async (_name, overrides) => {
    await app.probot.receive({ id: "c2", name: "issue_comment", payload: commentPayload(overrides) });
    await app.services.inbox.idle();
    expect(app.services.store.state.deliveries.c2).toBeUndefined();
  });

  it("a maintainer's /deploy gets eyes at once and builds the head commit read from GitHub", async () => {
    const head = "f".repeat(40);
    token()
      .get(`${REPO}/issues/comments/9001`)
      .reply(200, { id: 9001, body: "/deploy" })
      .get(`${REPO}/collaborators/mallory/permission`)
      .reply(200, { permission: "write", role_name: "maintain", user: { login: "mallory" } })
      .post(`${REPO}/issues/comments/9001/reactions`, { content: "eyes" })
      .reply(201, { id: 1, content: "eyes" })
      .get(`${REPO}/pulls/42`)
      .reply(200, { number: 42, state: "open", head: { sha: head, ref: "feature", repo: { full_name: "octo-org/hello-world" } } })
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "build: { commands: ['true'] }\n");
    app.services.reporter.close(); // GitHub reporting is tested elsewhere; here: what was decided
    await app.probot.receive({ id: "c3", name: "issue_comment", payload: commentPayload() });
    await app.services.inbox.idle();
    const revision = Object.values(app.services.store.state.revisions)[0]!;
    expect(revision).toMatchObject({ sha: head, trigger: { kind: "deploy_command", actor: "mallory", commentId: 9001 } });
    expect(app.services.store.state.deployments[revision.deploymentId]).toMatchObject({
      environment: "pr-42",
      pullRequest: { number: 42, fork: false },
    });
  });

  it("a /deploy ignores path filters: a person asked", async () => {
    const head = "f".repeat(40);
    token()
      .get(`${REPO}/issues/comments/9001`)
      .reply(200, { id: 9001, body: "/deploy" })
      .get(`${REPO}/collaborators/mallory/permission`)
      .reply(200, { permission: "write", role_name: "write", user: { login: "mallory" } })
      .post(`${REPO}/issues/comments/9001/reactions`, { content: "eyes" })
      .reply(201, { id: 1, content: "eyes" })
      .get(`${REPO}/pulls/42`)
      .reply(200, { number: 42, state: "open", head: { sha: head, ref: "feature", repo: { full_name: "octo-org/hello-world" } } })
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "paths: ['nothing-ever-changes-here/**']\nbuild: { commands: ['true'] }\n");
    app.services.reporter.close();
    await app.probot.receive({ id: "c4", name: "issue_comment", payload: commentPayload() });
    await app.services.inbox.idle();
    expect(Object.values(app.services.store.state.revisions)).toMatchObject([{ sha: head, trigger: { kind: "deploy_command" } }]);
  });
});

describe("/deploy on a fork's pull request and the build sandbox", () => {
  const app = useNockControlPlane();
  const head = "e".repeat(40);
  const forkPullRequest = { number: 42, state: "open", head: { sha: head, ref: "patch-1", repo: { full_name: "mallory/hello-world" } } };

  function maintainerAsksForAForkPreview() {
    return mockInstallationToken()
      .get(`${REPO}/issues/comments/9001`)
      .reply(200, { id: 9001, body: "/deploy" })
      .get(`${REPO}/collaborators/mallory/permission`)
      .reply(200, { permission: "write", role_name: "write", user: { login: "mallory" } })
      .post(`${REPO}/issues/comments/9001/reactions`, { content: "eyes" })
      .reply(201, { id: 1, content: "eyes" })
      .get(`${REPO}/pulls/42`)
      .reply(200, forkPullRequest);
  }

  it("is refused with a reply saying why while a listener builds unsandboxed under SLIPWAY_SANDBOX=auto", async () => {
    app.services.presence.seen("embedded-1", { kind: "none", policy: "auto" });
    let reply: any;
    maintainerAsksForAForkPreview()
      .post(`${REPO}/issues/42/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 2 });
    await app.probot.receive({ id: "f1", name: "issue_comment", payload: commentPayload() });
    await app.services.inbox.idle();

    expect(reply.body).toContain("comes from a fork");
    expect(reply.body).toContain("not sandboxed");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it.each([
    ["sandboxed", { kind: "bubblewrap", policy: "auto" }],
    ["unsandboxed by the operator's choice (SLIPWAY_SANDBOX=off)", { kind: "none", policy: "off" }],
  ] as const)("is built when the listeners are %s", async (_name, report) => {
    app.services.presence.seen("listener-1", report);
    maintainerAsksForAForkPreview().get(`${REPO}/contents/.github%2Fslipway.yml`).reply(200, "build: { commands: ['true'] }\n");
    app.services.reporter.close();
    await app.probot.receive({ id: "f2", name: "issue_comment", payload: commentPayload() });
    await app.services.inbox.idle();

    const revision = Object.values(app.services.store.state.revisions)[0]!;
    expect(revision.sha).toBe(head);
    expect(app.services.store.state.deployments[revision.deploymentId]?.pullRequest).toMatchObject({ fork: true });
  });

  it("hands a fork's revision only to a listener that may build it, and records what it builds in", async () => {
    app.services.presence.seen("unsandboxed", { kind: "none", policy: "auto" });
    app.services.presence.seen("sandboxed", { kind: "bubblewrap", policy: "auto" });
    app.services.reporter.close();
    await app.services.store.update((state, changes) => {
      // A fork preview queued before the unsandboxed listener appeared.
      recordNewRevision(state, changes, {
        installationId: 42,
        repository,
        environment: "pr-42",
        sha: head,
        ref: "refs/heads/patch-1",
        trigger: { kind: "deploy_command", actor: "mallory" },
        build: { commands: ["true"], timeoutSeconds: 60, env: {} },
        again: "if-finished",
        pullRequest: { number: 42, headRepository: "mallory/hello-world", fork: true },
      });
    });
    mockInstallationToken(); // the source token handed over with the lease
    mockInstallationToken(); // the installation's own client, which reads the GitHub environment's variables
    nock(API).get("/repos/octo-org/hello-world/environments/preview/variables").query({ per_page: 30 }).reply(404, { message: "Not Found" });

    expect(await app.services.queue.lease("unsandboxed", 0)).toBeUndefined();
    const work = await app.services.queue.lease("sandboxed", 0);
    expect(work).toMatchObject({ kind: "revision", revision: { sha: head } });
    expect(Object.values(app.services.store.state.revisions)[0]?.sandbox).toBe("bubblewrap");
  });
});
