/**
 * Slipway keeps one status comment per pull request and, when it has lost the comment's id,
 * finds it again by the hidden marker: only a comment its own app wrote, never another
 * bot's or a person's look-alike that carries the marker (editing that one would take it over
 * and put Slipway's words under someone else's name, or theirs under Slipway's).
 */
import nock from "nock";
import { describe, expect, it } from "vitest";
import {
  describeCheckRun,
  describeDeploymentStatus,
  signatureOf,
} from "../../../src/control-plane/github/describe-revision.js";
import { COMMENT_MARKER, isOwnComment } from "../../../src/control-plane/github/pull-request-comment.js";
import type { Deployment, Revision } from "../../../src/store/model.js";
import { repository } from "../../support/fixtures.js";
import { API, mockInstallationToken, useNockControlPlane } from "../../support/nock-control-plane.js";

const REPO = "/repos/octo-org/hello-world";
const APP_ID = 1; // the Probot app of useNockControlPlane

const person = (login: string) => ({ login, id: 5001, type: "User" });
const bot = (login: string) => ({ login, id: 6001, type: "Bot" });
const app = (id: number, slug: string) => ({ id, slug, name: slug, owner: { login: "someone", id: 7001, type: "Organization" } });

/** Comments that carry the marker but are not Slipway's. */
const lookAlikes = [
  { id: 101, body: `${COMMENT_MARKER}\nI am a person`, user: person("mallory"), performed_via_github_app: null },
  { id: 102, body: `${COMMENT_MARKER}\nanother app`, user: bot("other-app[bot]"), performed_via_github_app: app(999, "other-app") },
  { id: 103, body: `${COMMENT_MARKER}\nnamed like us`, user: bot("slipway-lookalike[bot]"), performed_via_github_app: app(998, "slipway-lookalike") },
  // A person acting through Slipway's own app (a user token): a person's comment all the same.
  { id: 104, body: `${COMMENT_MARKER}\nvia a user token`, user: person("mallory"), performed_via_github_app: app(APP_ID, "slipway") },
  { id: 105, body: `${COMMENT_MARKER}\nbot without app`, user: bot("dependabot[bot]"), performed_via_github_app: null },
];
const ours = { id: 201, body: `${COMMENT_MARKER}\nold status`, user: bot("slipway[bot]"), performed_via_github_app: app(APP_ID, "slipway") };
const unrelated = { id: 301, body: "LGTM", user: bot("slipway[bot]"), performed_via_github_app: app(APP_ID, "slipway") };

describe("isOwnComment", () => {
  it("is the app's own bot, by app id or by its <slug>[bot] login", () => {
    expect(isOwnComment(ours, { id: APP_ID })).toBe(true);
    expect(isOwnComment({ ...ours, performed_via_github_app: null }, { id: APP_ID, slug: "slipway" })).toBe(true);
    expect(isOwnComment({ ...ours, performed_via_github_app: null }, { id: APP_ID })).toBe(false);
    for (const comment of lookAlikes) {
      expect(isOwnComment(comment, { id: APP_ID, slug: "slipway" }), String(comment.id)).toBe(false);
    }
    expect(isOwnComment(ours, {})).toBe(false);
    expect(isOwnComment({ ...ours, user: null }, { id: APP_ID })).toBe(false);
  });
});

describe("the pull request comment, found again after its id was lost", () => {
  const control = useNockControlPlane();

  async function pullRequestRevision(): Promise<Revision> {
    const at = new Date().toISOString();
    const deployment: Deployment = {
      id: "dep-pr-42",
      installationId: 42,
      repository,
      environment: "pr-42",
      state: "READY",
      pullRequest: { number: 42, headRepository: repository.fullName, fork: false },
      createdAt: at,
      updatedAt: at,
    };
    const revision: Revision = {
      id: "0b9a8f1e-1111-4222-8333-444455556666",
      number: 1,
      deploymentId: deployment.id,
      sha: "c".repeat(40),
      ref: "refs/heads/feature",
      trigger: { kind: "push", actor: "octocat" },
      state: "DEPLOYED",
      environmentUrl: "http://pr-42.hello-world--octo-org.localhost:8080",
      build: { commands: ["true"], timeoutSeconds: 60, env: {} },
      phases: [],
      attempts: 1,
      github: {},
      createdAt: at,
      updatedAt: at,
      finishedAt: at,
    };
    // The check run and the deployment status are up to date: only the comment is owed.
    revision.github = {
      checkRunId: 11,
      checkRunSent: signatureOf(describeCheckRun(revision, deployment)),
      deploymentId: 12,
      deploymentStatusSent: signatureOf(describeDeploymentStatus(revision, deployment)),
    };
    await control.services.store.update((state) => {
      state.deployments[deployment.id] = deployment;
      state.revisions[revision.id] = revision;
    });
    return revision;
  }

  /** Announces the finished revision as the lifecycle would: the reporter follows the store's change event. */
  async function sync(revision: Revision) {
    await control.services.store.update((state, changes) => changes.revision(state.revisions[revision.id]!));
    await control.services.reporter.idle();
    return control.services.store.state.deployments["dep-pr-42"]!.pullRequest!;
  }

  it("ignores look-alikes by people and other bots: a new comment is created", async () => {
    const revision = await pullRequestRevision();
    let created: { body?: string } | undefined;
    const edits: string[] = [];
    mockInstallationToken()
      .get(`${REPO}/issues/42/comments`)
      .query(true)
      .reply(200, [...lookAlikes, unrelated]);
    nock(API)
      .post(`${REPO}/issues/42/comments`, (body) => ((created = body), true))
      .reply(201, { id: 401, body: "", user: bot("slipway[bot]"), performed_via_github_app: app(APP_ID, "slipway") })
      .patch(/\/repos\/octo-org\/hello-world\/issues\/comments\/\d+/, (body) => (edits.push(JSON.stringify(body)), true))
      .optionally()
      .reply(200, {});

    const link = await sync(revision);
    expect(created?.body).toContain(COMMENT_MARKER);
    expect(created?.body).toContain("✅ Deployed");
    expect(edits).toEqual([]);
    expect(link.commentId).toBe(401);
  });

  it("edits Slipway's own comment, and none of the look-alikes around it", async () => {
    const revision = await pullRequestRevision();
    let edited: { body?: string } | undefined;
    mockInstallationToken()
      .get(`${REPO}/issues/42/comments`)
      .query(true)
      .reply(200, [...lookAlikes.slice(0, 2), ours, ...lookAlikes.slice(2), unrelated])
      .patch(`${REPO}/issues/comments/${ours.id}`, (body) => ((edited = body), true))
      .reply(200, { ...ours, body: "" });

    const link = await sync(revision);
    expect(edited?.body).toContain("✅ Deployed");
    expect(link.commentId).toBe(ours.id);
  });

  it("with the id known, edits it without looking", async () => {
    const revision = await pullRequestRevision();
    await control.services.store.update((state) => {
      state.deployments["dep-pr-42"]!.pullRequest!.commentId = 777;
    });
    mockInstallationToken()
      .patch(`${REPO}/issues/comments/777`)
      .reply(200, { id: 777 });
    expect((await sync(revision)).commentId).toBe(777);
  });
});
