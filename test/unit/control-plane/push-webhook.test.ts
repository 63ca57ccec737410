import nock from "nock";
import { describe, expect, it, vi } from "vitest";
import { API, mockInstallationToken, useNockControlPlane } from "../../support/nock-control-plane.js";
import { pushExample } from "../../support/push-example.js";

const REPO = "/repos/octo-org/hello-world";
const SHA = "0123456789abcdef0123456789abcdef01234567";

describe("push webhook", () => {
  const app = useNockControlPlane();

  async function settle() {
    await app.services.inbox.idle();
    await app.services.reporter.idle();
  }

  it("queues a revision and tells GitHub: deployment, check run, queued status", async () => {
    const bodies: Record<string, any> = {};
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "build:\n  commands: ['npm ci']\n")
      .post(`${REPO}/deployments`, (body) => ((bodies.deployment = body), true))
      .reply(201, { id: 501 })
      .post(`${REPO}/check-runs`, (body) => ((bodies.checkRun = body), true))
      .reply(201, { id: 601 })
      .post(`${REPO}/deployments/501/statuses`, (body) => ((bodies.status = body), true))
      .reply(201, { id: 701 });

    await app.probot.receive({ id: "delivery-1", name: "push", payload: pushExample({ after: SHA }) as any });
    await settle();

    const revisions = Object.values(app.services.store.state.revisions);
    expect(revisions).toHaveLength(1);
    const revision = revisions[0]!;
    expect(revision).toMatchObject({ state: "QUEUED", sha: SHA, build: { commands: ["npm ci"] } });
    expect(bodies.deployment).toMatchObject({
      ref: SHA,
      environment: "production",
      auto_merge: false,
      required_contexts: [],
      transient_environment: false,
      production_environment: true,
    });
    expect(bodies.checkRun).toMatchObject({
      name: "slipway/production",
      head_sha: SHA,
      external_id: revision.id,
      details_url: `https://slipway.example/revisions/${revision.id}`,
      status: "queued",
    });
    expect(bodies.status).toMatchObject({ state: "queued", log_url: `https://slipway.example/revisions/${revision.id}` });
    expect(app.services.store.state.deliveries["delivery-1"]?.status).toBe("processed");
  });

  it("records the delivery before answering, and a redelivery makes no second revision", async () => {
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(404)
      // No config in the repository: Probot's config plugin looks in the organisation's .github repo.
      .get("/repos/octo-org/.github/contents/.github%2Fslipway.yml")
      .reply(404)
      .post(`${REPO}/deployments`)
      .reply(201, { id: 501 })
      .post(`${REPO}/check-runs`)
      .reply(201, { id: 601 })
      .post(`${REPO}/deployments/501/statuses`)
      .reply(201, { id: 701 });
    const payload = pushExample({ after: SHA }) as any;
    await app.probot.receive({ id: "delivery-1", name: "push", payload });
    // receive() resolved: the delivery is already in the store (persist, then acknowledge).
    expect(app.services.store.state.deliveries["delivery-1"]).toBeDefined();
    await app.probot.receive({ id: "delivery-1", name: "push", payload });
    await settle();
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(1);
  });

  it("a second push of the same commit makes no second revision", async () => {
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .twice()
      .reply(404)
      .get("/repos/octo-org/.github/contents/.github%2Fslipway.yml")
      .twice()
      .reply(404)
      .post(`${REPO}/deployments`)
      .reply(201, { id: 501 })
      .post(`${REPO}/check-runs`)
      .reply(201, { id: 601 })
      .post(`${REPO}/deployments/501/statuses`)
      .reply(201, { id: 701 });
    await app.probot.receive({ id: "d1", name: "push", payload: pushExample({ after: SHA }) as any });
    await settle();
    await app.probot.receive({ id: "d2", name: "push", payload: pushExample({ after: SHA }) as any });
    await settle();
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(1);
  });

  it.each([
    ["a deleted branch", { deleted: true, after: "0".repeat(40) }],
    ["a tag", { ref: "refs/tags/v1.0.0", after: SHA }],
  ])("ignores %s without calling GitHub", async (_name, overrides) => {
    await app.probot.receive({ id: "d-ignored", name: "push", payload: pushExample(overrides) as any });
    await settle();
    expect(app.services.store.state.deliveries["d-ignored"]?.status).toBe("ignored");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it("ignores a branch no environment tracks", async () => {
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "environments:\n  staging: { branch: develop }\n");
    await app.probot.receive({ id: "d-feature", name: "push", payload: pushExample({ ref: "refs/heads/feature/x", after: SHA }) as any });
    await settle();
    expect(app.services.store.state.deliveries["d-feature"]).toMatchObject({ status: "ignored", note: "no environment tracks feature/x" });
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it("reads the config once while pushes leave it alone, and again after a push that changes it", async () => {
    const reads = () =>
      nock(API)
        .get(`${REPO}/contents/.github%2Fslipway.yml`)
        .reply(200, "environments:\n  staging: { branch: develop }\n");
    mockInstallationToken();
    reads();
    const push = (id: string, files: { modified?: string[]; forced?: boolean }, ref = "refs/heads/feature/x") => {
      const payload = pushExample({ ref, after: SHA });
      payload.forced = files.forced ?? false;
      payload.commits = [{ ...payload.commits[0], added: [], removed: [], modified: files.modified ?? [] }];
      return app.probot.receive({ id, name: "push", payload });
    };
    await push("d-1", {});
    await push("d-2", {}); // a feature branch: the cached config serves
    await push("d-3", { modified: ["README.md"] }, "refs/heads/main"); // the default branch, config untouched
    await settle();
    expect(nock.pendingMocks()).toEqual([]);

    reads();
    await push("d-4", { modified: [".github/slipway.yml"] }, "refs/heads/main");
    await settle();
    expect(nock.pendingMocks()).toEqual([]);
    reads();
    await push("d-5", { forced: true }, "refs/heads/main"); // a forced push may undo a change without listing it
    await settle();
    expect(nock.pendingMocks()).toEqual([]);
    expect(["d-1", "d-2", "d-3", "d-4", "d-5"].map((id) => app.services.store.state.deliveries[id]?.status)).toEqual(Array(5).fill("ignored"));
  });

  it("an invalid config fails a check run that names the line and key, and deploys nothing", async () => {
    const config = "environments:\n  production: { branch: main }\nbuild:\n  commands: ['npm ci']\n  timeout: soon\n";
    let checkRun: any;
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .twice()
      .reply(200, config)
      .post(`${REPO}/check-runs`, (body) => ((checkRun = body), true))
      .reply(201, { id: 9 });
    await app.probot.receive({ id: "d-bad", name: "push", payload: pushExample({ after: SHA }) as any });
    await settle();
    expect(checkRun).toMatchObject({ name: "slipway/config", status: "completed", conclusion: "failure", head_sha: SHA });
    expect(checkRun.output.summary).toContain("line 5, build.timeout");
    expect(Object.keys(app.services.store.state.revisions)).toHaveLength(0);
  });

  it("keeps trying until GitHub takes the update (502s)", async () => {
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(404)
      // No config in the repository: Probot's config plugin looks in the organisation's .github repo.
      .get("/repos/octo-org/.github/contents/.github%2Fslipway.yml")
      .reply(404)
      .post(`${REPO}/deployments`)
      .times(2)
      .reply(502, "Bad Gateway")
      .post(`${REPO}/deployments`)
      .reply(201, { id: 501 })
      .post(`${REPO}/check-runs`)
      .reply(201, { id: 601 })
      .post(`${REPO}/deployments/501/statuses`)
      .reply(201, { id: 701 });
    await app.probot.receive({ id: "d-502", name: "push", payload: pushExample({ after: SHA }) as any });
    await app.services.inbox.idle();
    const revision = Object.values(app.services.store.state.revisions)[0]!;
    // The reporter retries with a backoff (idle() does not wait for retries): wait for the status it ends with.
    await vi.waitFor(() => expect(app.services.store.state.revisions[revision.id]?.github.deploymentStatusSent).toBeDefined(), { timeout: 15_000 });
    expect(app.services.store.state.revisions[revision.id]?.github).toMatchObject({ deploymentId: 501, checkRunId: 601 });
  });
});

describe("push webhook, with GitHub updates paced as in production", () => {
  const app = useNockControlPlane({ progressIntervalMs: 60_000 });

  it("writes the check run first; the deployment waits for the next state, so a fast build costs one deployment status", async () => {
    const writes: string[] = [];
    const record = (what: string) => () => (writes.push(what), true);
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "build:\n  commands: ['true']\n")
      .post(`${REPO}/check-runs`, record("check run created"))
      .reply(201, { id: 601 });
    await app.probot.receive({ id: "d-paced", name: "push", payload: pushExample({ after: SHA }) as any });
    await app.services.inbox.idle();
    const revision = Object.values(app.services.store.state.revisions)[0]!;
    await app.services.reporter.idle(); // the queued revision's first report, and anything it would write
    expect(writes).toEqual(["check run created"]);
    expect(app.services.store.state.revisions[revision.id]?.github.deploymentId).toBeUndefined();

    // The build ends within the progress interval: the final state goes out at once, check run first.
    nock(API)
      .patch(`${REPO}/check-runs/601`, (body) => (writes.push(`check run ${body.conclusion}`), true))
      .reply(200, { id: 601 })
      .post(`${REPO}/deployments`, record("deployment created"))
      .reply(201, { id: 501 })
      .post(`${REPO}/deployments/501/statuses`, (body) => (writes.push(`deployment ${body.state}`), true))
      .reply(201, { id: 701 });
    const { lifecycle } = app.services;
    const work = await lifecycle.leaseNext({ listenerId: "listener", pool: "default", mayBuildForks: true }, { ttlMs: 30_000 });
    expect(work).toMatchObject({ kind: "revision", revision: { id: revision.id } });
    await lifecycle.complete(work!.kind === "revision" ? work!.revision.lease!.id : "", { outcome: "DEPLOYED", events: [] });
    await app.services.reporter.idle();
    expect(writes).toEqual(["check run created", "check run success", "deployment created", "deployment success"]);
  });
});

describe("push webhook, when a listener takes the revision at once", () => {
  const app = useNockControlPlane({ progressIntervalMs: 60_000, queuedSettleMs: 400 });

  it("creates the check run in progress, not queued and then changed", async () => {
    const bodies: any[] = [];
    mockInstallationToken()
      .get(`${REPO}/contents/.github%2Fslipway.yml`)
      .reply(200, "build:\n  commands: ['true']\n")
      .post(`${REPO}/check-runs`, (body) => (bodies.push(body), true))
      .reply(201, { id: 601 });
    await app.probot.receive({ id: "d-taken", name: "push", payload: pushExample({ after: SHA }) as any });
    await app.services.inbox.idle();
    const revision = Object.values(app.services.store.state.revisions)[0]!;
    expect(revision.state).toBe("QUEUED");
    // A listener leases it and its first heartbeat starts the build, well within the settle window.
    const { lifecycle } = app.services;
    const work = await lifecycle.leaseNext({ listenerId: "listener", pool: "default", mayBuildForks: true }, { ttlMs: 30_000 });
    const leaseId = work?.kind === "revision" ? work.revision.lease!.id : "";
    await lifecycle.heartbeat(leaseId, [{ type: "phase_started", phase: "build", at: new Date().toISOString() }], 30_000);
    await app.services.reporter.idle(); // past the settle window, and every write it led to
    expect(bodies.map((b) => b.status)).toEqual(["in_progress"]);
  });
});
