import { describe, expect, it } from "vitest";
import { openInProcessQueue } from "../../support/in-process-queue.js";
import { describeCheckRun } from "../../../src/control-plane/github/describe-revision.js";
import { repoConfigSchema, revisionSettingsOf } from "../../../src/control-plane/repo-config.js";
import { readSettings, SettingsError } from "../../../src/settings.js";
import { createPlacementWatch } from "../../../src/control-plane/placement-watch.js";
import type { RevisionWork } from "../../../src/protocol/listener-protocol.js";
import { revisionRequest, sha, silentLog } from "../../support/fixtures.js";

const DATABASE_URL = "postgresql://slipway_a:secret@127.0.0.1:5432/slipway_a";

async function setup() {
  const { store, presence, registry, lifecycle, queue } = await openInProcessQueue();
  /** A listener of `pool` asks for work (and so is present). */
  const lease = async (listenerId: string, pool = "default") => {
    presence.seen(listenerId, { kind: "bubblewrap", policy: "auto" }, pool);
    return (await queue.lease(listenerId, 0)) as RevisionWork | undefined;
  };
  /** The listener runs the database phase (on its own embedded server, or a shared one) and deploys. */
  const deploy = async (listenerId: string, work: RevisionWork, options: { onListener?: boolean; runs?: boolean } = {}) => {
    const at = new Date().toISOString();
    const database = work.database.action === "provision" ? { name: "slipway_a", url: DATABASE_URL, created: true, onListener: options.onListener ?? true } : undefined;
    const events = database
      ? [
          { type: "phase_started" as const, phase: "database" as const, at },
          { type: "phase_finished" as const, phase: "database" as const, at, outcome: "succeeded" as const, database },
        ]
      : [];
    expect(await queue.complete(listenerId, work.leaseId, { outcome: "DEPLOYED", events, environmentUrl: options.runs ? "http://x.localhost" : undefined })).toBe("ok");
  };
  const add = (overrides: Parameters<typeof revisionRequest>[0] = {}) => lifecycle.queue(revisionRequest(overrides));
  return { store, presence, registry, lifecycle, queue, lease, deploy, add };
}

describe("placement", () => {
  it("a deployment whose embedded database lives on one listener is leased only to that listener", async () => {
    const { store, add, lease, deploy } = await setup();
    const { revision } = await add({ sha: sha(1) });
    const first = (await lease("listener-a"))!;
    await deploy("listener-a", first);
    const deployment = store.state.deployments[revision.deploymentId]!;
    expect(deployment.placement).toMatchObject({ listenerId: "listener-a", holds: ["database"] });

    await add({ sha: sha(2) });
    expect(await lease("listener-b")).toBeUndefined();
    expect(await lease("listener-c")).toBeUndefined();
    const second = (await lease("listener-a"))!;
    expect(second.revision.sha).toBe(sha(2));
    expect(second.database).toEqual({ action: "connect", url: DATABASE_URL });
  });

  it("on a shared database server any listener takes it, until a revision runs on one", async () => {
    const { store, add, lease, deploy } = await setup();
    const { revision } = await add({ sha: sha(1) });
    await deploy("listener-a", (await lease("listener-a"))!, { onListener: false });
    expect(store.state.deployments[revision.deploymentId]!.placement).toBeUndefined();

    await add({ sha: sha(2), run: { command: "node server.js", timeoutSeconds: 30 } });
    const second = (await lease("listener-b"))!;
    await deploy("listener-b", second, { runs: true });
    expect(store.state.deployments[revision.deploymentId]!.placement).toMatchObject({ listenerId: "listener-b", holds: ["instance"] });

    await add({ sha: sha(3) });
    expect(await lease("listener-a")).toBeUndefined();
    const third = (await lease("listener-b"))!;
    await deploy("listener-b", third); // this one runs nothing: nothing binds it any more
    expect(store.state.deployments[revision.deploymentId]!.placement).toBeUndefined();
  });

  it("an environment with a pool goes only to listeners of that pool", async () => {
    const { add, lease } = await setup();
    await add({ sha: sha(1), environment: "eu-production", pool: "eu" });
    await add({ sha: sha(2), environment: "staging" });
    expect((await lease("eu-1", "eu"))?.deployment.environment).toBe("eu-production");
    expect(await lease("eu-1", "eu")).toBeUndefined(); // staging is of the default pool
    expect((await lease("plain-1"))?.deployment.environment).toBe("staging");
  });

  it("a revision bound to a listener that is gone waits, says why, and starts when the listener is back", async () => {
    const { store, presence, registry, lifecycle, add, lease, deploy } = await setup();
    const { revision } = await add({ sha: sha(1) });
    await deploy("listener-a", (await lease("listener-a"))!);
    const { revision: waiting } = await add({ sha: sha(2) });
    const watch = createPlacementWatch({ store, lifecycle, presence, registry, log: silentLog, absentAfterMs: 10_000, startedAt: 0 });

    await watch.check(Date.now());
    expect(store.state.revisions[waiting.id]!.waitingFor).toBeUndefined(); // still present

    const later = Date.now() + 11_000;
    await watch.check(later);
    const note = store.state.revisions[waiting.id]!.waitingFor!;
    expect(note).toMatch(/^waiting for listener listener-a, last seen \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const deployment = store.state.deployments[revision.deploymentId]!;
    const checkRun = describeCheckRun(store.state.revisions[waiting.id]!, deployment);
    expect(checkRun.status).toBe("queued");
    expect(checkRun.summary).toContain(note);

    expect(await lease("listener-b")).toBeUndefined();
    const resumed = (await lease("listener-a"))!;
    expect(resumed.revision.id).toBe(waiting.id);
    expect(store.state.revisions[waiting.id]!.waitingFor).toBeUndefined();
    expect(store.state.revisions[waiting.id]!.state).toBe("QUEUED"); // leased, never DATABASE_FAILED
  });

  it("a move sends the deployment elsewhere with an empty database, and the check run says so", async () => {
    const { store, lifecycle, add, lease, deploy } = await setup();
    const { revision } = await add({ sha: sha(1) });
    await deploy("listener-a", (await lease("listener-a"))!);
    const { revision: waiting } = await add({ sha: sha(2) });

    expect(await lifecycle.move(revision.deploymentId, { to: "listener-b", by: "An operator" })).toBe(true);
    const deployment = store.state.deployments[revision.deploymentId]!;
    expect(deployment.database).toBeUndefined();
    expect(deployment.placement).toMatchObject({ listenerId: "listener-b", holds: [] });
    expect(describeCheckRun(store.state.revisions[waiting.id]!, deployment).summary).toContain(
      "An operator moved this deployment from listener listener-a to listener listener-b",
    );

    expect(await lease("listener-a")).toBeUndefined();
    const moved = (await lease("listener-b"))!;
    expect(moved.database).toEqual({ action: "provision" });
    await deploy("listener-b", moved);
    expect(store.state.deployments[revision.deploymentId]!.placement).toMatchObject({ listenerId: "listener-b", holds: ["database"] });
  });

  it("the lost-listener timeout moves a deployment whose listener stays gone while work waits", async () => {
    const { store, presence, registry, lifecycle, add, lease, deploy } = await setup();
    const { revision } = await add({ sha: sha(1) });
    await deploy("listener-a", (await lease("listener-a"))!);
    await add({ sha: sha(2) });
    const watch = createPlacementWatch({ store, lifecycle, presence, registry, log: silentLog, absentAfterMs: 10_000, moveAfterMs: 60_000, startedAt: 0 });
    await watch.check(Date.now() + 30_000);
    expect(store.state.deployments[revision.deploymentId]!.placement?.listenerId).toBe("listener-a");
    await watch.check(Date.now() + 61_000);
    expect(store.state.deployments[revision.deploymentId]!.placement).toBeUndefined();
    expect(store.state.deployments[revision.deploymentId]!.moved).toMatchObject({ from: "listener-a", databaseLeftBehind: true });
    expect((await lease("listener-b"))?.database).toEqual({ action: "provision" });
  });

  it("a revoked listener's leases go back to the queue and its deployments move off it", async () => {
    const { store, lifecycle, registry, add, lease, deploy } = await setup();
    const { revision } = await add({ sha: sha(1) });
    await deploy("listener-a", (await lease("listener-a"))!);
    await add({ sha: sha(2) });
    const held = (await lease("listener-a"))!;
    await registry.join({ listenerId: "listener-a", pool: "default" });
    expect(await registry.revoke("listener-a", "admin")).toBe(true);
    await lifecycle.releaseListener("listener-a", "An operator (revoking the listener)");
    expect(store.state.revisions[held.revision.id]).toMatchObject({ state: "QUEUED", lease: undefined });
    expect(store.state.deployments[revision.deploymentId]!.placement).toBeUndefined();
    expect((await lease("listener-b"))?.revision.id).toBe(held.revision.id);
  });

  it("one listener cannot heartbeat or complete another's lease, and /work/running lists only its own", async () => {
    const { queue, add, lease, deploy } = await setup();
    await add({ sha: sha(1), run: { command: "node server.js", timeoutSeconds: 30 } });
    const work = (await lease("listener-a"))!;
    expect(await queue.heartbeat("listener-b", work.leaseId, { events: [] })).toBe("not-yours");
    expect(await queue.complete("listener-b", work.leaseId, { outcome: "CANCELLED", events: [] })).toBe("not-yours");
    expect(await queue.heartbeat("listener-a", work.leaseId, { events: [] })).toMatchObject({ cancel: false });
    await deploy("listener-a", work, { runs: true });
    expect(await queue.running("listener-b")).toEqual([]);
    expect(await queue.running("listener-a")).toHaveLength(1);
    expect((await queue.running("listener-a"))[0]!.databaseUrl).toBe(DATABASE_URL);
  });
});

describe("listener registry", () => {
  it("a join gives a credential once per id; a revoked listener's credential is refused and it cannot join again", async () => {
    const { registry, store } = await setup();
    const joined = await registry.join({ listenerId: "build-1", pool: "eu" });
    if (!joined.ok) throw new Error(joined.message);
    expect(registry.authenticate(joined.credential)).toEqual({ ok: true, listenerId: "build-1" });
    expect(JSON.stringify(store.state.listeners)).not.toContain(joined.credential); // only its hash is kept
    expect(registry.authenticate("guessed")).toMatchObject({ ok: false, message: "unknown listener credential" });
    expect(await registry.join({ listenerId: "build-1", pool: "eu" })).toMatchObject({ ok: false, status: 409 });
    expect(await registry.join({ listenerId: "bad id!", pool: "eu" })).toMatchObject({ ok: false, status: 400 });
    expect(await registry.join({ listenerId: "build-2", pool: "EU" })).toMatchObject({ ok: false, status: 400 });

    expect(await registry.revoke("build-1", "admin")).toBe(true);
    expect(registry.authenticate(joined.credential)).toMatchObject({ ok: false, message: "the listener build-1 was revoked" });
    expect(await registry.join({ listenerId: "build-1", pool: "eu" })).toMatchObject({ ok: false, status: 409, message: expect.stringContaining("was revoked") });
    expect(await registry.revoke("build-1", "admin")).toBe(false);
  });
});

describe("pool settings", () => {
  it("SLIPWAY_LISTENER_POOL defaults to default and must be a plain name; the admin token must be long", () => {
    expect(readSettings({}).listenerPool).toBe("default");
    expect(readSettings({ SLIPWAY_LISTENER_POOL: "eu-west.2" }).listenerPool).toBe("eu-west.2");
    for (const bad of ["EU", "eu west", "-eu", "eu/1", "x".repeat(64)]) {
      expect(() => readSettings({ SLIPWAY_LISTENER_POOL: bad }), bad).toThrow(SettingsError);
    }
    expect(() => readSettings({ SLIPWAY_ADMIN_TOKEN: "short" })).toThrow(/SLIPWAY_ADMIN_TOKEN must be at least 16 characters/);
    expect(readSettings({ SLIPWAY_LISTENER_MOVE_AFTER_SECONDS: "600" }).listenerMoveAfterSeconds).toBe(600);
    expect(readSettings({}).listenerMoveAfterSeconds).toBeUndefined();
    expect(() => readSettings({ SLIPWAY_LISTENER_MOVE_AFTER_SECONDS: "soon" })).toThrow(SettingsError);
  });

  it("environments.<name>.pool and previews.pool reach the revision; a bad pool name is a config error", () => {
    const config = repoConfigSchema.parse({
      environments: { production: { branch: "main" }, "eu-production": { branch: "main", pool: "eu" } },
      previews: { pool: "previews" },
    });
    expect(revisionSettingsOf(config, "eu-production").pool).toBe("eu");
    expect(revisionSettingsOf(config, "production").pool).toBeUndefined();
    expect(revisionSettingsOf(config, "pr-7").pool).toBe("previews");
    const bad = repoConfigSchema.safeParse({ environments: { production: { branch: "main", pool: "EU West" } } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toMatch(/a pool name is lowercase letters/);
  });
});
