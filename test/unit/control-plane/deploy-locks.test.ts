import nock from "nock";
import { openInProcessQueue } from "../../support/in-process-queue.js";
import { describe, expect, it } from "vitest";
import { issueCommentPayload } from "github-stand-in/webhook-payloads";
import { describeCheckRun } from "../../../src/control-plane/github/describe-revision.js";
import { createPlacementWatch } from "../../../src/control-plane/placement-watch.js";
import { deploymentView } from "../../../src/control-plane/http/status-pages/api-views.js";
import { renderIndex } from "../../../src/control-plane/http/status-pages/render-index.js";
import type { RevisionWork } from "../../../src/protocol/listener-protocol.js";
import { deploymentIdOf } from "../../../src/revisions/new-revision.js";
import type { DeployLock } from "../../../src/store/model.js";
import { repository, revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { API, mockInstallationToken, useNockControlPlane } from "../../support/nock-control-plane.js";

const PRODUCTION = deploymentIdOf(42, repository.id, "production");
const FREEZE: DeployLock = { environment: "production", repository: repository.fullName, by: "alice", at: "2026-12-02T10:00:00.000Z", reason: "release freeze" };
const HELD = "held: production is locked by @alice since 2026-12-02T10:00:00Z: release freeze";

/** The lifecycle, work queue and placement watch wired in-process over a store in `dataDir` (as start-control-plane.ts does). */
async function setup(existingDataDir?: string) {
  const { dataDir, store, presence, registry, lifecycle, queue, wakeListeners } = await openInProcessQueue({ dataDir: existingDataDir });
  const watch = createPlacementWatch({ store, lifecycle, presence, registry, log: silentLog, absentAfterMs: 10_000, startedAt: 0 });
  const lease = async (waitSeconds = 0) => {
    presence.seen("listener-a", { kind: "bubblewrap", policy: "auto" }, "default");
    return (await queue.lease("listener-a", waitSeconds)) as RevisionWork | undefined;
  };
  const add = async (n: number) => (await lifecycle.queue(revisionRequest({ sha: sha(n) }))).revision;
  const revision = (id: string) => store.state.revisions[id]!;
  return { dataDir, store, lifecycle, queue, watch, lease, add, revision, wakeListeners };
}

describe("deploy locks: holding and releasing revisions", () => {
  it("a push to a locked environment makes a revision that is not leased, and its queued check run names who, when and why", async () => {
    const { store, lifecycle, watch, lease, add, revision } = await setup();
    expect(await lifecycle.lock(PRODUCTION, FREEZE)).toMatchObject({ taken: true });
    const held = await add(1);

    expect(revision(held.id).waitingFor).toBe(HELD); // at once, not at the watch's next check
    expect(await lease()).toBeUndefined();
    await watch.check(Date.now() + 60_000); // the placement watch keeps the lock's reason over "no listener"
    expect(revision(held.id)).toMatchObject({ state: "QUEUED", waitingFor: HELD });
    expect(revision(held.id).lease).toBeUndefined();

    const checkRun = describeCheckRun(revision(held.id), store.state.deployments[PRODUCTION]!);
    expect(checkRun.status).toBe("queued");
    expect(checkRun.summary).toContain(`⏳ ${HELD}`);
  });

  it("a lock taken while a revision waits marks it held at once; one a listener already holds finishes", async () => {
    const { lifecycle, lease, add, revision } = await setup();
    const running = await add(1);
    const work = (await lease())!;
    expect(work.revision.id).toBe(running.id);
    const waiting = await add(2);
    expect(revision(waiting.id).waitingFor).toBeUndefined();

    await lifecycle.lock(PRODUCTION, FREEZE);
    expect(revision(waiting.id).waitingFor).toBe(HELD);
    expect(revision(running.id).lease?.id).toBe(work.leaseId); // not taken away
  });

  it("a second push supersedes the first held revision; /unlock lets the newest proceed at once", async () => {
    const { lifecycle, lease, add, revision, wakeListeners } = await setup();
    await lifecycle.lock(PRODUCTION, FREEZE);
    const first = await add(1);
    const second = await add(2);
    expect(revision(first.id).state).toBe("SUPERSEDED");
    expect(revision(second.id).waitingFor).toBe(HELD);

    expect(await lease()).toBeUndefined();

    wakeListeners.mockClear();
    const released = await lifecycle.unlock(PRODUCTION);
    expect(released).toMatchObject({ lock: FREEZE, proceeding: { id: second.id }, superseded: [] });
    expect(wakeListeners).toHaveBeenCalled(); // listeners long-polling are answered now, not at their poll's end
    expect((await lease())?.revision.id).toBe(second.id);
    expect(revision(second.id).waitingFor).toBeUndefined();
  });

  it("/unlock supersedes older held revisions even when several wait (a lease lost while the lock held)", async () => {
    const { lifecycle, lease, add, revision } = await setup();
    const older = await add(1);
    const work = (await lease())!;
    await lifecycle.lock(PRODUCTION, FREEZE);
    const newer = await add(2);
    await lifecycle.loseLease(older.id, work.leaseId, "the listener stopped answering");
    expect([revision(older.id).state, revision(newer.id).state]).toEqual(["QUEUED", "QUEUED"]); // both held
    expect(await lease()).toBeUndefined();

    const released = await lifecycle.unlock(PRODUCTION);
    expect(released.proceeding?.id).toBe(newer.id);
    expect(released.superseded.map((r) => r.id)).toEqual([older.id]);
    expect(revision(older.id).state).toBe("SUPERSEDED");
    expect((await lease())?.revision.id).toBe(newer.id);
  });

  it("a lock survives a restart and still holds; locking twice keeps the first lock; unlocking twice says it was not locked", async () => {
    const first = await setup();
    await first.lifecycle.lock(PRODUCTION, FREEZE);
    expect(await first.lifecycle.lock(PRODUCTION, { ...FREEZE, by: "bob", reason: "again" })).toEqual({ taken: false, lock: FREEZE });
    const held = await first.add(1);

    const again = await setup(first.dataDir); // the same data dir, opened again
    expect(again.store.state.locks?.[PRODUCTION]).toEqual(FREEZE);
    expect(await again.lease()).toBeUndefined();
    expect(again.revision(held.id)).toMatchObject({ state: "QUEUED", waitingFor: HELD });

    expect((await again.lifecycle.unlock(PRODUCTION)).lock).toEqual(FREEZE);
    expect(await again.lifecycle.unlock(PRODUCTION)).toEqual({ superseded: [] });
    expect((await again.lease())?.revision.id).toBe(held.id);
  });

  it("the status page and the JSON API show the lock", async () => {
    const { store, lifecycle, add } = await setup();
    await add(1);
    await lifecycle.lock(PRODUCTION, FREEZE);
    const deployment = store.state.deployments[PRODUCTION]!;
    expect(deploymentView(deployment, "https://slipway.example", store.state.locks?.[PRODUCTION]).lock).toEqual({ by: "alice", at: FREEZE.at, reason: "release freeze" });
    expect(deploymentView(deployment, "https://slipway.example").lock).toBeNull();
    const page = renderIndex({ deployments: [deployment], revisions: Object.values(store.state.revisions), basePath: "", now: new Date(), locks: store.state.locks });
    expect(page.body.value).toContain("🔒 locked by @alice since");
    expect(page.body.value).toContain("release freeze");
  });
});

const REPO = "/repos/octo-org/hello-world";

function comment(body: string, number: number, isPullRequest: boolean, commentId: number) {
  return issueCommentPayload({ action: "created", body, user: { login: "mallory" }, number, isPullRequest, repository, installationId: 42, commentId }) as any;
}

/** GitHub's side of a command that is honoured: the comment as it stands, the commenter's permission, and (for writers) 👀. */
function commandSeenBy(permission: "write" | "read", body: string, commentId: number, options: { clientKept?: boolean } = {}) {
  // The installation's client is kept between deliveries: only the first asks for a token.
  const scope = (options.clientKept ? nock(API) : mockInstallationToken())
    .get(`${REPO}/issues/comments/${commentId}`)
    .reply(200, { id: commentId, body })
    .get(`${REPO}/collaborators/mallory/permission`)
    .reply(200, { permission, role_name: permission, user: { login: "mallory" } });
  if (permission === "write") scope.post(`${REPO}/issues/comments/${commentId}/reactions`, { content: "eyes" }).reply(201, { id: 1, content: "eyes" });
  return scope;
}

describe("/lock and /unlock comments", () => {
  const app = useNockControlPlane();
  const receive = async (id: string, payload: unknown) => {
    app.services.reporter.close(); // check runs are tested elsewhere: here, what was decided and replied
    await app.probot.receive({ id, name: "issue_comment", payload: payload as any });
    await app.services.inbox.idle();
  };

  it("a writer's /lock on a plain issue locks the environment and says so", async () => {
    let reply: any;
    commandSeenBy("write", "/lock production release freeze", 501)
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "build: { commands: ['true'] }\n")
      .post(`${REPO}/issues/7/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 2 });
    await receive("l1", comment("/lock production release freeze", 7, false, 501));

    expect(app.services.store.state.locks?.[PRODUCTION]).toMatchObject({ environment: "production", by: "mallory", reason: "release freeze" });
    expect(reply.body).toBe("🔒 `production` is locked by @mallory: release freeze. New revisions wait until `/unlock production`.");
  });

  it("a reader's /lock is refused and nothing is locked", async () => {
    let reply: any;
    commandSeenBy("read", "/lock production", 502)
      .post(`${REPO}/issues/7/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 2 });
    await receive("l2", comment("/lock production", 7, false, 502));

    expect(reply.body).toContain("only people with write, maintain or admin permission");
    expect(app.services.store.state.locks ?? {}).toEqual({});
  });

  it("a /lock of an environment the config does not name is refused: a typo locks nothing", async () => {
    let reply: any;
    commandSeenBy("write", "/lock prod", 503)
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "environments: { production: { branch: main }, staging: { branch: develop } }\n")
      .post(`${REPO}/issues/7/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 2 });
    await receive("l3", comment("/lock prod", 7, false, 503));

    expect(reply.body).toContain("has no environment `prod`");
    expect(reply.body).toContain("`production`, `staging`");
    expect(app.services.store.state.locks ?? {}).toEqual({});
  });

  it("/deploy to a locked preview is refused with who locked it, when and why", async () => {
    const preview = deploymentIdOf(42, repository.id, "pr-42");
    await app.services.lifecycle.lock(preview, { ...FREEZE, environment: "pr-42" });
    let reply: any;
    commandSeenBy("write", "/deploy", 504)
      .post(`${REPO}/issues/42/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 2 });
    await receive("l4", comment("/deploy", 42, true, 504));

    expect(reply.body).toContain("pr-42 is locked by @alice since 2026-12-02T10:00:00Z: release freeze, so nothing was started");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it("/unlock lifts the lock and says how many held revisions proceed; a second /unlock says it is not locked", async () => {
    await app.services.lifecycle.lock(PRODUCTION, FREEZE);
    const { revision: held } = await app.services.lifecycle.queue(revisionRequest({ sha: sha(1) }));
    let reply: any;
    commandSeenBy("write", "/unlock production", 505)
      .post(`${REPO}/issues/7/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 2 });
    await receive("l5", comment("/unlock production", 7, false, 505));

    expect(app.services.store.state.locks?.[PRODUCTION]).toBeUndefined();
    expect(app.services.store.state.revisions[held.id]!.waitingFor).toBeUndefined();
    expect(reply.body).toContain("🔓 `production` is unlocked by @mallory (locked by @alice since 2026-12-02T10:00:00Z); 1 held revision proceeds (revision 1, `aaaaaaa`)");

    commandSeenBy("write", "/unlock production", 506, { clientKept: true })
      .post(`${REPO}/issues/7/comments`, (b) => ((reply = b), true))
      .reply(201, { id: 3 });
    await receive("l6", comment("/unlock production", 7, false, 506));
    expect(reply.body).toBe("@mallory, `production` is not locked.");
  });
});
