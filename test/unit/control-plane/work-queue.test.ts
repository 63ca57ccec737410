import { describe, expect, it, vi } from "vitest";
import { createRevisionLogs } from "../../../src/control-plane/revision-logs.js";
import { createWorkQueue, type WorkQueueOptions } from "../../../src/control-plane/work-queue.js";
import { describeCheckRun } from "../../../src/control-plane/github/describe-revision.js";
import type { RevisionWork } from "../../../src/protocol/listener-protocol.js";
import { describeDeploymentStatus } from "../../../src/control-plane/github/describe-revision.js";
import { createLifecycle } from "../../../src/revisions/lifecycle.js";
import { openStateStore } from "../../../src/store/open-state-store.js";
import { openSecretBox } from "../../../src/store/secret-box.js";
import { revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

async function setup(options: { maxAttempts?: number; revisionSettings?: WorkQueueOptions["revisionSettings"] } = {}) {
  const dataDir = await tempDir();
  const store = await openStateStore({ dataDir, log: silentLog });
  const logs = createRevisionLogs({ dataDir });
  const secrets = await openSecretBox({ dataDir });
  const mintSourceToken = vi.fn(async () => ({ token: "ghs_scoped", expiresAt: new Date(Date.now() + 3600_000).toISOString() }));
  const lifecycle = createLifecycle({ store, secrets, log: silentLog, maxAttempts: options.maxAttempts, wakeListeners: () => queue.wake() });
  const queue = createWorkQueue({
    store,
    lifecycle,
    logs,
    secrets,
    mintSourceToken,
    apiBaseUrl: "https://api.github.com",
    log: silentLog,
    leaseTtlSeconds: 30,
    revisionSettings: options.revisionSettings,
  });
  const lease = async (listenerId: string) => (await queue.lease(listenerId, 0)) as RevisionWork | undefined;
  const add = (overrides: Parameters<typeof revisionRequest>[0] = {}) => lifecycle.queue(revisionRequest(overrides));
  return { store, logs, queue, lifecycle, mintSourceToken, add, lease };
}

describe("work queue", () => {
  it("leases the oldest revision with a scoped token, a tarball URL and 'provision' for a new deployment", async () => {
    const { queue, add, mintSourceToken, lease } = await setup();
    const { revision } = await add();
    const work = await lease("listener-1");
    expect(work?.revision.id).toBe(revision.id);
    expect(work?.database).toEqual({ action: "provision" });
    expect(work?.source.tarballUrl).toBe(`https://api.github.com/repos/octo-org/hello-world/tarball/${sha(1)}`);
    expect(mintSourceToken).toHaveBeenCalledWith(42, "hello-world");
    expect(await lease("listener-2")).toBeUndefined();
  });

  it("runs one revision per deployment at a time, and other deployments meanwhile", async () => {
    const { queue, add, lease } = await setup();
    await add({ sha: sha(1) });
    const first = await lease("l");
    await add({ sha: sha(2) });
    await add({ environment: "staging", sha: sha(3) });
    const second = await lease("l");
    expect(second?.deployment.environment).toBe("staging");
    expect(await lease("l")).toBeUndefined();
    await queue.complete("l", first!.leaseId, { outcome: "DEPLOYED", events: [] });
    const third = await lease("l");
    expect(third?.revision.sha).toBe(sha(2));
  });

  it("a newer revision supersedes a queued one, not a running one", async () => {
    const { store, add, queue, lease } = await setup();
    const { revision: running } = await add({ sha: sha(1) });
    await lease("l");
    const { revision: queued } = await add({ sha: sha(2) });
    const { superseded } = await add({ sha: sha(3) });
    expect(superseded.map((r) => r.id)).toEqual([queued.id]);
    expect(store.state.revisions[queued.id]?.state).toBe("SUPERSEDED");
    expect(store.state.revisions[running.id]?.state).toBe("QUEUED"); // leased, not yet reporting
  });

  it("makes one revision per (deployment, commit) unless asked again", async () => {
    const { add } = await setup();
    const first = await add();
    const second = await add();
    expect(second.created).toBe(false);
    expect(second.revision.id).toBe(first.revision.id);
    const again = await add({ again: "always" });
    expect(again.created).toBe(true);
  });

  it("applies phases, stores the database URL encrypted, and hands it to the next revision", async () => {
    const { store, queue, add, logs, lease } = await setup();
    const { revision } = await add();
    const work = (await lease("l"))!;
    const url = "postgresql://role:s3cr3t-password@127.0.0.1:5432/db";
    const at = new Date().toISOString();
    await queue.heartbeat("l", work.leaseId, {
      events: [
        { type: "phase_started", phase: "database", at },
        { type: "phase_finished", phase: "database", at, outcome: "succeeded", note: "database created", database: { name: "db", url, created: true } },
        { type: "phase_started", phase: "build", at },
      ],
      log: { offset: 0, text: "hello\n" },
    });
    expect(store.state.revisions[revision.id]?.state).toBe("BUILDING");
    expect(JSON.stringify(store.state)).not.toContain("s3cr3t-password");
    // A retried heartbeat with the same log chunk is not appended twice.
    await queue.heartbeat("l", work.leaseId, { events: [], log: { offset: 0, text: "hello\n" } });
    await queue.heartbeat("l", work.leaseId, { events: [], log: { offset: 6, text: "world\n" } });
    expect(await logs.tail(revision.id)).toBe("hello\nworld\n");
    await queue.complete("l", work.leaseId, { outcome: "DEPLOYED", events: [] });
    expect(store.state.deployments[revision.deploymentId]?.state).toBe("READY");

    await add({ sha: sha(2) });
    const next = (await lease("l"))!;
    expect(next.database).toEqual({ action: "connect", url });
  });

  it("completion is idempotent, and a lost lease is refused", async () => {
    const { queue, add, lease } = await setup();
    await add();
    const work = (await lease("l"))!;
    expect(await queue.complete("l", work.leaseId, { outcome: "BUILD_FAILED", events: [], error: "boom" })).toBe("ok");
    expect(await queue.complete("l", work.leaseId, { outcome: "BUILD_FAILED", events: [], error: "boom" })).toBe("ok");
    expect(await queue.heartbeat("l", work.leaseId, { events: [] })).toBe("lease-lost");
    expect(await queue.complete("l", "00000000-0000-0000-0000-000000000000", { outcome: "DEPLOYED", events: [] })).toBe("lease-lost");
  });

  it("gives expired work back to the queue, then interrupts it when attempts are spent", async () => {
    const { store, queue, add, lease } = await setup({ maxAttempts: 2 });
    const { revision } = await add();
    const first = (await lease("l"))!;
    await queue.expireLeases(new Date(Date.now() + 60_000));
    expect(store.state.revisions[revision.id]?.state).toBe("QUEUED");
    expect(await queue.heartbeat("l", first.leaseId, { events: [] })).toBe("lease-lost");
    await lease("l");
    await queue.expireLeases(new Date(Date.now() + 60_000));
    const after = store.state.revisions[revision.id]!;
    expect(after.state).toBe("INTERRUPTED");
    expect(after.error).toMatch(/stopped answering/);
  });

  it("a long poll returns as soon as work is queued", async () => {
    const { queue, add, lease } = await setup();
    let answered = false;
    const waiting = queue.lease("l", 30).finally(() => (answered = true));
    // Nothing to lease yet: the poll is still open after the queue has looked (one lease attempt, no work).
    await queue.lease("other", 0);
    expect(answered).toBe(false);
    await add(); // queueing wakes the waiting listeners
    // Answered by the wake, long before the 30 s wait (the test's own timeout is the bound).
    expect(await waiting).toBeDefined();
  });

  it("cancels a queued revision at once and asks the listener to stop a running one", async () => {
    const { store, queue, lifecycle, add, lease } = await setup();
    const { revision: running } = await add({ sha: sha(1) });
    const work = (await lease("l"))!;
    const { revision: other } = await add({ environment: "staging", sha: sha(2) });
    await lifecycle.cancel(other.id, "Cancelled by @octocat");
    expect(store.state.revisions[other.id]?.state).toBe("CANCELLED");
    await lifecycle.cancel(running.id, "Cancelled by @octocat");
    expect(await queue.heartbeat("l", work.leaseId, { events: [] })).toMatchObject({ cancel: true });
  });

  it("hands a restarted listener its running revisions, and a crash loop turns the deployment status to error", async () => {
    const { store, queue, add, lease } = await setup();
    const { revision } = await add({ run: { command: "node server.js", timeoutSeconds: 60 } });
    const work = (await lease("listener-a"))!;
    const at = new Date().toISOString();
    await queue.complete("listener-a", work.leaseId, {
      outcome: "DEPLOYED",
      environmentUrl: "http://production.hello-world.localhost:8080",
      events: [
        { type: "phase_started", phase: "database", at },
        { type: "phase_finished", phase: "database", at, outcome: "succeeded", database: { name: "db", url: "postgresql://u:p@h/db", created: true } },
      ],
    });
    expect(await queue.running("listener-b")).toEqual([]);
    expect(await queue.running("listener-a")).toMatchObject([
      { revision: { id: revision.id }, run: { command: "node server.js" }, databaseUrl: "postgresql://u:p@h/db" },
    ]);
    const deployment = store.state.deployments[revision.deploymentId]!;
    expect(describeDeploymentStatus(store.state.revisions[revision.id]!, deployment)).toMatchObject({
      state: "success",
      environmentUrl: "http://production.hello-world.localhost:8080",
    });
    await queue.crashed({ listenerId: "listener-b", revisionId: revision.id, message: "not yours" });
    expect(store.state.revisions[revision.id]?.runtimeError).toBeUndefined();
    await queue.crashed({ listenerId: "listener-a", revisionId: revision.id, message: "It kept crashing" });
    expect(describeDeploymentStatus(store.state.revisions[revision.id]!, deployment).state).toBe("error");
    expect(await queue.running("listener-a")).toEqual([]);
  });

  it("hands the GitHub environment's variables and Slipway's secrets with the lease, and notes what was missing on the check run", async () => {
    const revisionSettings = vi.fn(async () => ({ variables: { API_URL: "https://api.example" }, secrets: { API_KEY: "k-123456" }, notes: ["the permission is missing"] }));
    const { store, add, lease } = await setup({ revisionSettings });
    const { revision } = await add();
    const work = (await lease("l"))!;
    expect(work.settings).toEqual({ variables: { API_URL: "https://api.example" }, secrets: { API_KEY: "k-123456" } });
    expect(revisionSettings).toHaveBeenCalledWith(expect.objectContaining({ environment: "production" }));
    const stored = store.state.revisions[revision.id]!;
    expect(stored.notes).toEqual(["the permission is missing"]);
    expect(JSON.stringify(stored)).not.toContain("k-123456"); // secrets travel in the work order, never into the store's revision
    expect(describeCheckRun(stored, store.state.deployments[stored.deploymentId]!).summary).toContain("ℹ️ the permission is missing");
  });

  it("gives the lease back when the settings cannot be read (GitHub down), and the next lease tries again", async () => {
    let fail = true;
    const { store, add, lease } = await setup({
      revisionSettings: async () => {
        if (fail) throw new Error("GitHub answered 502");
        return { variables: {}, secrets: {}, notes: [] };
      },
    });
    const { revision } = await add();
    expect(await lease("l")).toBeUndefined();
    expect(store.state.revisions[revision.id]).toMatchObject({ state: "QUEUED", lease: undefined, attempts: 1 });
    fail = false;
    expect((await lease("l"))?.revision.id).toBe(revision.id);
  });
});
