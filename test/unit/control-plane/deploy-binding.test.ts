/**
 * `/deploy` means what the commenter saw: the commit that was the head when the comment was
 * written, the comment as it stands, once. GitHub played by nock; webhooks through probot.receive.
 */
import { describe, expect, it } from "vitest";
import { claimComment, judgeDeployCommand, PROMPT_MS, recordHead } from "../../../src/control-plane/commands/pull-request-heads.js";
import { emptyState } from "../../../src/store/model.js";
import { issueCommentPayload, pullRequestPayload } from "github-stand-in/webhook-payloads";
import nock from "nock";
import { API, mockInstallationToken, useNockControlPlane } from "../../support/nock-control-plane.js";

const REPO = "/repos/octo-org/hello-world";
const repository = { id: 1296269, owner: "octo-org", name: "hello-world", fullName: "octo-org/hello-world", defaultBranch: "main", private: false };
const A = "a".repeat(40);
const B = "b".repeat(40);
const at = (ms: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, 0) + ms).toISOString();

describe("judgeDeployCommand", () => {
  const history = (...heads: Array<[string, number, "opened" | "synchronize" | "fetched"]>) => {
    const state = emptyState();
    for (const [sha, ms, source] of heads) recordHead(state, "pr", { sha, seenAt: at(ms), source });
    return state.pullRequests?.pr;
  };

  it("deploys the head the comment saw while it is still the head", () => {
    expect(judgeDeployCommand({ record: history([A, 0, "opened"], [A, 5_000, "fetched"]), head: A, createdAt: at(1_000) })).toEqual({ ok: true, sha: A });
  });

  it("refuses when new commits arrived after the comment, naming both commits", () => {
    const record = history([A, 0, "opened"], [B, 2_000, "synchronize"], [B, 3_000, "fetched"]);
    expect(judgeDeployCommand({ record, head: B, createdAt: at(1_000) })).toEqual({ ok: false, reason: "moved", saw: A, head: B });
  });

  it("refuses when the head moved away and back after the comment (a force push)", () => {
    const record = history([A, 0, "opened"], [B, 2_000, "synchronize"], [A, 3_000, "synchronize"]);
    expect(judgeDeployCommand({ record, head: A, createdAt: at(1_000) })).toMatchObject({ ok: false, reason: "moved" });
  });

  it("with nothing known before the comment: deploys a head found promptly, refuses one found late", () => {
    expect(judgeDeployCommand({ record: history([A, 2_000, "fetched"]), head: A, createdAt: at(1_000) })).toEqual({ ok: true, sha: A });
    const late = history([A, 1_000 + PROMPT_MS + 1, "fetched"]);
    expect(judgeDeployCommand({ record: late, head: A, createdAt: at(1_000) })).toEqual({ ok: false, reason: "unknown", head: A });
  });

  it("with nothing known before the comment, new commits after it still refuse", () => {
    const record = history([B, 2_000, "synchronize"], [B, 2_500, "fetched"]);
    expect(judgeDeployCommand({ record, head: B, createdAt: at(1_000) })).toEqual({ ok: false, reason: "moved", saw: undefined, head: B });
  });

  it("/deploy <sha> deploys the head it names, and nothing else", () => {
    const record = history([A, 0, "opened"], [B, 2_000, "synchronize"]);
    expect(judgeDeployCommand({ record, head: B, createdAt: at(1_000), sha: "bbbbbbb" })).toEqual({ ok: true, sha: B });
    expect(judgeDeployCommand({ record, head: B, createdAt: at(1_000), sha: "aaaaaaa" })).toEqual({ ok: false, reason: "not-head", head: B });
  });

  it("honours a comment once: a redelivery under another delivery id is refused, a retry of the same delivery is not", () => {
    const state = emptyState();
    expect(claimComment(state, "pr", 9001, "delivery-1", at(0))).toBe(true);
    expect(claimComment(state, "pr", 9001, "delivery-1", at(1))).toBe(true);
    expect(claimComment(state, "pr", 9001, "delivery-2", at(2))).toBe(false);
    expect(claimComment(state, "pr", 9002, "delivery-3", at(3))).toBe(true);
  });
});

describe("/deploy bound to the comment, through the webhook", () => {
  const app = useNockControlPlane();

  function comment(options: { id?: number; body?: string; createdAt?: string; login?: string } = {}) {
    return issueCommentPayload({
      action: "created",
      body: options.body ?? "/deploy",
      user: { login: options.login ?? "mallory" },
      number: 42,
      isPullRequest: true,
      repository,
      installationId: 42,
      commentId: options.id ?? 9001,
      createdAt: options.createdAt,
    }) as any;
  }

  async function receive(id: string, name: "issue_comment" | "pull_request", payload: unknown) {
    await app.probot.receive({ id, name, payload } as any);
    await app.services.inbox.idle();
  }

  const pullRequest = (action: "opened" | "synchronize", sha: string) =>
    pullRequestPayload({ action, number: 42, head: { sha, ref: "feature" }, repository, installationId: 42 }) as any;

  /** The requests of a maintainer's accepted /deploy, up to reading the pull request. */
  function maintainerDeploy(options: { id?: number; body?: string; head: string }, scope = mockInstallationToken()) {
    return scope
      .get(`${REPO}/issues/comments/${options.id ?? 9001}`)
      .reply(200, { id: options.id ?? 9001, body: options.body ?? "/deploy" })
      .get(`${REPO}/collaborators/mallory/permission`)
      .reply(200, { permission: "write", role_name: "write", user: { login: "mallory" } })
      .post(`${REPO}/issues/comments/${options.id ?? 9001}/reactions`, { content: "eyes" })
      .reply(201, { id: 1, content: "eyes" })
      .get(`${REPO}/pulls/42`)
      .reply(200, { number: 42, state: "open", head: { sha: options.head, ref: "feature", repo: { full_name: repository.fullName } } });
  }

  it("a /deploy that arrives after new commits deploys nothing and says which commit it saw and which is the head", async () => {
    app.services.reporter.close();
    await receive("opened", "pull_request", pullRequest("opened", A));
    await nextMillisecond();
    const createdAt = new Date().toISOString();
    await nextMillisecond();
    let reply: any;
    await receive("sync", "pull_request", pullRequest("synchronize", B));
    maintainerDeploy({ head: B })
      .post(`${REPO}/issues/42/comments`, (body) => ((reply = body), true))
      .reply(201, { id: 2 });
    await receive("late-comment", "issue_comment", comment({ createdAt }));

    expect(reply.body).toContain("`aaaaaaa`");
    expect(reply.body).toContain("`bbbbbbb`");
    expect(reply.body).toContain("Nothing was started");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it("a /deploy written before any head Slipway knows of, and processed hours later, deploys nothing", async () => {
    let reply: any;
    maintainerDeploy({ head: A })
      .post(`${REPO}/issues/42/comments`, (body) => ((reply = body), true))
      .reply(201, { id: 2 });
    await receive("replayed", "issue_comment", comment({ createdAt: new Date(Date.now() - 3 * 3_600_000).toISOString() }));

    expect(reply.body).toContain("cannot tell which commit it saw");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it.each([
    ["deleted", 404, { message: "Not Found" }],
    ["edited", 200, { id: 9001, body: "looks good" }],
  ])("a comment %s since it was written is not honoured: no permission check, no reply", async (_name, status, body) => {
    mockInstallationToken().get(`${REPO}/issues/comments/9001`).reply(status, body);
    await receive("gone", "issue_comment", comment());

    expect(app.services.store.state.deliveries.gone).toMatchObject({ status: "ignored" });
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it("a redelivery of an approved comment under a new delivery id does nothing, however the head moved", async () => {
    app.services.reporter.close();
    maintainerDeploy({ head: A }).get(`${REPO}/contents/.github%2Fslipway.yml`).reply(200, "build: { commands: ['true'] }\n");
    await receive("first", "issue_comment", comment());
    expect(Object.values(app.services.store.state.revisions).map((r) => r.sha)).toEqual([A]);

    await receive("replayed-later", "issue_comment", comment()); // nock would refuse any request it makes
    expect(app.services.store.state.deliveries["replayed-later"]).toMatchObject({ status: "ignored" });
    expect(Object.values(app.services.store.state.revisions).map((r) => r.sha)).toEqual([A]);
  });

  it("/deploy <sha> deploys that commit when it is the head, and refuses it when it is not", async () => {
    app.services.reporter.close();
    maintainerDeploy({ id: 9001, body: "/deploy aaaaaaa", head: A }).get(`${REPO}/contents/.github%2Fslipway.yml`).reply(200, "build: { commands: ['true'] }\n");
    await receive("current", "issue_comment", comment({ id: 9001, body: "/deploy aaaaaaa" }));
    expect(Object.values(app.services.store.state.revisions).map((r) => r.sha)).toEqual([A]);

    let reply: any;
    maintainerDeploy({ id: 9002, body: "/deploy aaaaaaa", head: B }, nock(API)) // the installation's client is kept
      .post(`${REPO}/issues/42/comments`, (body) => ((reply = body), true))
      .reply(201, { id: 2 });
    await receive("stale", "issue_comment", comment({ id: 9002, body: "/deploy aaaaaaa" }));
    expect(reply.body).toContain("`aaaaaaa` is not the head commit");
    expect(Object.values(app.services.store.state.revisions).map((r) => r.sha)).toEqual([A]);
  });

  it("answers a flood of refused commands with one reply a minute per pull request", async () => {
    const scope = mockInstallationToken();
    let replies = 0;
    for (const id of [9101, 9102, 9103]) scope.get(`${REPO}/issues/comments/${id}`).reply(200, { id, body: "/deploy" });
    scope
      .get(`${REPO}/collaborators/reader/permission`)
      .reply(200, { permission: "read", role_name: "read", user: { login: "reader" } })
      .persist();
    // Answers every reply that is sent: the limiter, not the mock, must keep it to one.
    scope
      .post(`${REPO}/issues/42/comments`, () => ((replies += 1), true))
      .reply(201, { id: 2 })
      .persist();
    for (const id of [9101, 9102, 9103]) await receive(`flood-${id}`, "issue_comment", comment({ id, login: "reader" }));

    expect(replies).toBe(1);
    for (const id of [9101, 9102, 9103]) expect(app.services.store.state.deliveries[`flood-${id}`]).toMatchObject({ status: "processed", note: "not permitted" });
    expect(scope.pendingMocks().filter((mock) => mock.includes("/issues/comments/"))).toEqual([]);
    nock.cleanAll(); // persisted mocks stay "pending" by design
  });
});

/** Timestamps have millisecond resolution: returns once the clock shows a later one (busy for at most ~1 ms). */
async function nextMillisecond(): Promise<void> {
  const now = Date.now();
  while (Date.now() === now) await new Promise(setImmediate);
}
