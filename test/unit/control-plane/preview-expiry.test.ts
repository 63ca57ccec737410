import type { ProbotOctokit } from "probot";
import { openInProcessQueue } from "../../support/in-process-queue.js";
import { describe, expect, it, vi } from "vitest";
import { pullRequestKey, recordHead } from "../../../src/control-plane/commands/pull-request-heads.js";
import { describePullRequestComment } from "../../../src/control-plane/github/pull-request-comment.js";
import { createPreviewExpiry } from "../../../src/control-plane/preview-expiry.js";
import { createRepoConfigCache, repoConfigSchema } from "../../../src/control-plane/repo-config.js";
import type { RevisionWork, TeardownWork } from "../../../src/protocol/listener-protocol.js";
import { reviseDeployment } from "../../../src/revisions/transitions.js";
import { repository, revisionRequest, sha, silentLog } from "../../support/fixtures.js";

const DAY = 24 * 60 * 60 * 1000;
const PR = 42;

/**
 * The control plane's store, lifecycle and work queue in process; the repository's
 * `.github/slipway.yml` is `previews` (read through the real config cache, the reads counted).
 * The clock is the `now` each check is given: previews made now are checked days later.
 */
async function setup(previews: Record<string, unknown> = {}) {
  const { store, presence, lifecycle, queue } = await openInProcessQueue();
  let configReads = 0;
  const hooks: { onConfigRead?: () => Promise<void> } = {};
  const octokit = {
    config: {
      async get() {
        configReads++;
        await hooks.onConfigRead?.();
        return { config: { previews }, files: [{}] };
      },
    },
  } as unknown as ProbotOctokit;
  const expiry = createPreviewExpiry({ store, lifecycle, configs: createRepoConfigCache(), getOctokit: async () => octokit, log: silentLog });

  /** A `/deploy` on pull request `number`, built and deployed by a listener with a database of its own. */
  const deployPreview = async (number = PR, n = 1) => {
    const { revision } = await lifecycle.queue(
      revisionRequest({
        environment: `pr-${number}`,
        sha: sha(n),
        ref: "refs/heads/feature",
        trigger: { kind: "deploy_command", actor: "octocat" },
        pullRequest: { number, headRepository: repository.fullName, fork: false },
        again: "if-finished",
      }),
    );
    presence.seen("listener-a", { kind: "bubblewrap", policy: "auto" }, "default");
    const work = (await queue.lease("listener-a", 0)) as RevisionWork;
    expect(work.revision.id).toBe(revision.id);
    const at = new Date().toISOString();
    const events =
      work.database.action === "provision"
        ? [
            { type: "phase_started" as const, phase: "database" as const, at },
            { type: "phase_finished" as const, phase: "database" as const, at, outcome: "succeeded" as const, database: { name: "db", url: "postgresql://u:p@127.0.0.1/db", created: true, onListener: true } },
          ]
        : [];
    expect(await queue.complete("listener-a", work.leaseId, { outcome: "DEPLOYED", events })).toBe("ok");
    return store.state.deployments[revision.deploymentId]!;
  };
  return { store, lifecycle, queue, presence, expiry, deployPreview, hooks, configReads: () => configReads };
}

describe("preview expiry", () => {
  it("tears down a preview idle 8 days under expire_after_days 7, and the pull request comment says so and how to bring it back", async () => {
    const { store, expiry, queue, deployPreview } = await setup({ expire_after_days: 7 });
    const deployment = await deployPreview();

    expect(await expiry.check(Date.now() + 8 * DAY)).toEqual([deployment.id]);
    const closed = store.state.deployments[deployment.id]!;
    expect(closed.state).toBe("AWAITING_DELETE");
    expect(closed.expired).toMatchObject({ afterDays: 7 });

    // The teardown is handed to the listener holding the database, as for a closed pull request.
    const teardown = (await queue.lease("listener-a", 0)) as TeardownWork;
    expect(teardown).toMatchObject({ kind: "teardown", deployment: { id: deployment.id } });
    expect(await queue.complete("listener-a", teardown.leaseId, { outcome: "DELETED", events: [] })).toBe("ok");
    expect(store.state.deployments[deployment.id]!.state).toBe("DELETED");

    const body = describePullRequestComment({ deployment: store.state.deployments[deployment.id]!, revision: Object.values(store.state.revisions)[0]!, publicUrl: "https://slipway.example" });
    expect(body).toContain("This preview expired after 7 days without a new commit or `/deploy`: the preview and its database were removed.");
    expect(body).toContain("Comment `/deploy` to deploy it again");
    expect(body).not.toContain("pull request was closed");
  });

  it("keeps a preview idle 6 days, and one whose repository turned expiry off", async () => {
    const six = await setup({ expire_after_days: 7 });
    const kept = await six.deployPreview();
    expect(await six.expiry.check(Date.now() + 6 * DAY)).toEqual([]);
    expect(six.store.state.deployments[kept.id]!.state).toBe("READY");

    const off = await setup({ expire_after_days: false });
    const forever = await off.deployPreview();
    expect(await off.expiry.check(Date.now() + 365 * DAY)).toEqual([]);
    expect(off.store.state.deployments[forever.id]!.state).toBe("READY");
  });

  it("uses 7 days when the config says nothing", async () => {
    const { store, expiry, deployPreview } = await setup();
    const deployment = await deployPreview();
    expect(await expiry.check(Date.now() + 6.9 * DAY)).toEqual([]);
    expect(await expiry.check(Date.now() + 7.1 * DAY)).toEqual([deployment.id]);
    expect(store.state.deployments[deployment.id]!.expired).toMatchObject({ afterDays: 7 });
  });

  it("never expires an environment that is not a preview, and does not ask GitHub about it", async () => {
    const { store, lifecycle, expiry, configReads } = await setup({ expire_after_days: 1 });
    const { revision } = await lifecycle.queue(revisionRequest({ environment: "production" }));
    expect(await expiry.check(Date.now() + 400 * DAY)).toEqual([]);
    expect(store.state.deployments[revision.deploymentId]!.state).toBe("AWAITING_DATABASE");
    expect(configReads()).toBe(0);
  });

  it("keeps a preview whose pull request got a new commit recently, even one that made no revision", async () => {
    const { store, expiry, deployPreview } = await setup({ expire_after_days: 7, auto_update: false });
    const deployment = await deployPreview();
    const key = pullRequestKey(deployment.installationId, repository.id, PR);
    // auto_update is off: the push is only recorded as the pull request's new head, 3 days in.
    await store.update((state) => recordHead(state, key, { sha: sha(9), seenAt: new Date(Date.now() + 3 * DAY).toISOString(), source: "synchronize" }));
    // A head merely looked at (a /deploy that deployed nothing) is no activity.
    await store.update((state) => recordHead(state, key, { sha: sha(8), seenAt: new Date(Date.now() + 5 * DAY).toISOString(), source: "fetched" }));
    expect(await expiry.check(Date.now() + 8 * DAY)).toEqual([]);
    expect(store.state.deployments[deployment.id]!.state).toBe("READY");
    expect(await expiry.check(Date.now() + 10.5 * DAY)).toEqual([deployment.id]);
  });

  it("asks GitHub once per repository per check, and not at all while every preview is younger than a day", async () => {
    const { expiry, deployPreview, configReads } = await setup({ expire_after_days: 3 });
    await deployPreview(1, 1);
    await deployPreview(2, 2);
    expect(await expiry.check(Date.now() + 20 * 60 * 60 * 1000)).toEqual([]);
    expect(configReads()).toBe(0);
    expect(await expiry.check(Date.now() + 2 * DAY)).toEqual([]);
    expect(configReads()).toBe(1);
    expect((await expiry.check(Date.now() + 4 * DAY)).length).toBe(2);
    expect(configReads()).toBe(1); // the config cache still holds it
  });

  it("a /deploy afterwards brings the expired preview back with a fresh database", async () => {
    const { store, expiry, queue, deployPreview } = await setup({ expire_after_days: 7 });
    const deployment = await deployPreview(PR, 1);
    await expiry.check(Date.now() + 8 * DAY);
    const teardown = (await queue.lease("listener-a", 0)) as TeardownWork;
    await queue.complete("listener-a", teardown.leaseId, { outcome: "DELETED", events: [] });
    expect(store.state.deployments[deployment.id]!.state).toBe("DELETED");

    await deployPreview(PR, 1); // the same commit: a /deploy makes a new revision of it
    const back = store.state.deployments[deployment.id]!;
    expect(back.state).toBe("READY");
    expect(back.expired).toBeUndefined();
    const revisions = Object.values(store.state.revisions).filter((r) => r.deploymentId === deployment.id);
    expect(revisions.map((r) => r.state)).toEqual(["DEPLOYED", "DEPLOYED"]);
    const body = describePullRequestComment({ deployment: back, revision: revisions.at(-1)!, publicUrl: "https://slipway.example" });
    expect(body).not.toContain("expired");
    expect(body).toContain("| State |");
  });

  it("keeps a preview that got a /deploy while its repository's config was being read", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.parse("2025-01-01T00:00:00Z") });
    try {
      const { store, expiry, hooks, deployPreview } = await setup({ expire_after_days: 7 });
      const deployment = await deployPreview(PR, 1);
      vi.setSystemTime(Date.parse("2025-01-09T00:00:00Z"));
      hooks.onConfigRead = async () => {
        hooks.onConfigRead = undefined;
        await deployPreview(PR, 2);
      };
      expect(await expiry.check(Date.now())).toEqual([]);
      expect(store.state.deployments[deployment.id]!.state).toBe("READY");
      expect(Object.values(store.state.revisions).map((r) => r.state)).toEqual(["DEPLOYED", "DEPLOYED"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("an expiry is refused when the deployment changed after it was found idle (a /deploy in between)", () => {
    const at = "2025-01-10T00:00:00.000Z";
    const deployment = {
      id: "d",
      installationId: 42,
      repository,
      environment: `pr-${PR}`,
      state: "READY" as const,
      createdAt: "2025-01-01T00:00:00.000Z",
      updatedAt: "2025-01-09T23:59:59.000Z",
    };
    const stale = reviseDeployment(deployment, { type: "close", expired: { afterDays: 7, ifUpdatedAt: "2025-01-01T00:00:00.000Z" } }, at);
    expect(stale.ok).toBe(false);
    const current = reviseDeployment(deployment, { type: "close", expired: { afterDays: 7, ifUpdatedAt: deployment.updatedAt } }, at);
    expect(current.ok && current.next).toMatchObject({ state: "AWAITING_DELETE", expired: { afterDays: 7, at } });
    // A closed pull request is not an expiry.
    const closedPr = reviseDeployment(deployment, { type: "close" }, at);
    expect(closedPr.ok && closedPr.next.expired).toBeUndefined();
  });

  it("the comment of a closed pull request's preview is unchanged", () => {
    const { deployment, revision } = {
      deployment: { id: "d", installationId: 42, repository, environment: `pr-${PR}`, state: "DELETED" as const, createdAt: "x", updatedAt: "x" },
      revision: { id: "r", number: 1, sha: sha(1), state: "CANCELLED" as const } as never,
    };
    expect(describePullRequestComment({ deployment, revision, publicUrl: "https://slipway.example" })).toContain(
      "The pull request was closed: the preview and its database were removed.",
    );
  });
});

describe("previews.expire_after_days", () => {
  it("is 7 by default, a whole number of days from 1 to 365, or false", () => {
    expect(repoConfigSchema.parse({}).previews.expire_after_days).toBe(7);
    expect(repoConfigSchema.parse({ previews: { expire_after_days: 30 } }).previews.expire_after_days).toBe(30);
    expect(repoConfigSchema.parse({ previews: { expire_after_days: false } }).previews.expire_after_days).toBe(false);
    for (const wrong of [0, 366, 1.5, true, "7"]) {
      const result = repoConfigSchema.safeParse({ previews: { expire_after_days: wrong } });
      expect(result.success, String(wrong)).toBe(false);
      expect(result.error?.issues[0]?.message).toBe("a whole number of days from 1 to 365, or false to keep previews until their pull request closes");
    }
  });
});
