import nock from "nock";
import { ProbotOctokit } from "probot";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createGitHubReporter, type GitHubReporter } from "../../../src/control-plane/github/github-reporter.js";
import { createRevisionLogs } from "../../../src/control-plane/revision-logs.js";
import { createLifecycle, type Lifecycle } from "../../../src/revisions/lifecycle.js";
import { openStateStore, type StateStore } from "../../../src/store/open-state-store.js";
import { openSecretBox } from "../../../src/store/secret-box.js";
import type { StoreChange } from "../../../src/store/store-changes.js";
import { revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

const API = "https://api.github.com";
const REPO = "/repos/octo-org/hello-world";

/** One control plane's lifetime on `dataDir`: a store, the lifecycle, and a GitHub reporter subscribed to the store. */
async function controlPlaneOn(dataDir: string): Promise<{ store: StateStore; lifecycle: Lifecycle; reporter: GitHubReporter }> {
  const store = await openStateStore({ dataDir, log: silentLog });
  const lifecycle = createLifecycle({ store, secrets: await openSecretBox({ dataDir }), log: silentLog, wakeListeners: () => {} });
  const octokit = new ProbotOctokit({ auth: { token: "ghs_test" }, retry: { enabled: false }, throttle: { enabled: false } });
  const reporter = createGitHubReporter({
    store,
    logs: createRevisionLogs({ dataDir }),
    getOctokit: async () => octokit,
    publicUrl: "https://slipway.example",
    log: silentLog,
    progressIntervalMs: 0,
    queuedSettleMs: 0,
    retryBaseMs: 10,
  });
  return { store, lifecycle, reporter };
}

describe("the store's change events", () => {
  it("reach a subscriber once per committed change, numbered without gaps across a restart", async () => {
    const dataDir = await tempDir();
    const seen: StoreChange[] = [];
    const first = await controlPlaneOn(dataDir);
    first.reporter.close();
    first.store.subscribe((change) => seen.push(change));
    const { revision } = await first.lifecycle.queue(revisionRequest({ sha: sha(1) }));
    const work = await first.lifecycle.leaseNext({ listenerId: "listener-1", pool: "default", mayBuildForks: true }, { ttlMs: 30_000 });
    expect(work?.kind).toBe("revision");
    const leaseId = work!.kind === "revision" ? work!.revision.lease!.id : "";
    const at = new Date().toISOString();
    await first.lifecycle.heartbeat(leaseId, [{ type: "phase_started", phase: "build", at }], 30_000);
    await first.lifecycle.heartbeat(leaseId, [], 30_000); // a renewal alone announces nothing
    expect(seen.map((c) => (c.kind === "revision" ? c.state : `deployment ${c.state}`))).toEqual(["deployment AWAITING_DATABASE", "QUEUED", "QUEUED", "BUILDING"]);

    // The process stops; the next one opens the same data dir and carries on numbering.
    const second = await controlPlaneOn(dataDir);
    second.reporter.close();
    second.store.subscribe((change) => seen.push(change));
    await second.lifecycle.complete(leaseId, { outcome: "DEPLOYED", events: [] });
    await second.lifecycle.complete(leaseId, { outcome: "DEPLOYED", events: [] }); // sent again: already done, not announced again
    await second.lifecycle.queue(revisionRequest({ sha: sha(1) })); // the same commit again: nothing new
    expect(seen.at(-1)).toMatchObject({ kind: "revision", id: revision.id, state: "DEPLOYED" });
    expect(seen.map((c) => c.sequence)).toEqual(seen.map((_, i) => i + 1));
  });

  it("a refused transition announces nothing", async () => {
    const { store, lifecycle, reporter } = await controlPlaneOn(await tempDir());
    reporter.close();
    const { revision } = await lifecycle.queue(revisionRequest());
    await lifecycle.cancel(revision.id, "Cancelled by @octocat");
    const seen: StoreChange[] = [];
    store.subscribe((change) => seen.push(change));
    await lifecycle.cancel(revision.id, "Cancelled again"); // final: refused
    expect(await lifecycle.complete("no-such-lease", { outcome: "DEPLOYED", events: [] })).toBe("lease-lost");
    expect(seen).toEqual([]);
    expect(store.state.revisions[revision.id]).toMatchObject({ state: "CANCELLED", error: "Cancelled by @octocat" });
  });
});

describe("the GitHub reporter, subscribed to the store", () => {
  /** GitHub's side: each write as "<object> <status or state>", in order. */
  let writes: string[];

  beforeEach(() => {
    writes = [];
    nock.disableNetConnect();
    nock(API)
      .persist()
      .post(`${REPO}/check-runs`)
      .reply(201, (_uri, body: any) => (writes.push(`check run created ${body.conclusion ?? body.status}`), { id: 601 }))
      .patch(`${REPO}/check-runs/601`)
      .reply(200, (_uri, body: any) => (writes.push(`check run ${body.conclusion ?? body.status}`), { id: 601 }))
      .post(`${REPO}/deployments`)
      .reply(201, () => (writes.push("deployment created"), { id: 501 }))
      .post(`${REPO}/deployments/501/statuses`)
      .reply(201, (_uri, body: any) => (writes.push(`deployment ${body.state}`), { id: 701 }));
  });

  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it("sends every change exactly once, also when the process stops between a change and its report", async () => {
    const dataDir = await tempDir();
    const first = await controlPlaneOn(dataDir);
    await first.lifecycle.queue(revisionRequest());
    await first.reporter.idle();
    const work = await first.lifecycle.leaseNext({ listenerId: "listener-1", pool: "default", mayBuildForks: true }, { ttlMs: 30_000 });
    const leaseId = work!.kind === "revision" ? work!.revision.lease!.id : "";
    await first.lifecycle.heartbeat(leaseId, [{ type: "phase_started", phase: "build", at: new Date().toISOString() }], 30_000);
    await first.reporter.idle();
    expect(writes).toEqual(["check run created queued", "deployment created", "deployment queued", "check run in_progress", "deployment in_progress"]);

    // The process dies after the listener's completion is stored, before GitHub hears of it.
    first.reporter.close();
    await first.lifecycle.complete(leaseId, { outcome: "DEPLOYED", events: [] });
    expect(writes).toHaveLength(5);

    // The next process finds what is owed in the stored state, and sends only that.
    const second = await controlPlaneOn(dataDir);
    second.reporter.reconcile();
    await second.reporter.idle();
    expect(writes.slice(5)).toEqual(["check run success", "deployment success"]);

    // And once more: nothing is owed, nothing is sent.
    second.reporter.close();
    const third = await controlPlaneOn(dataDir);
    third.reporter.reconcile();
    await third.reporter.idle();
    third.reporter.close();
    expect(writes).toHaveLength(7);
  });
});
