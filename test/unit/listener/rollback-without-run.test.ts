/**
 * A rollback of an environment without `run`: the listener builds nothing and fetches
 * nothing; the kept build becomes the deployed one (first in `kept.json`). A build that is
 * no longer kept ends DEPLOY_FAILED, saying so.
 */
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import type { DatabaseBackend } from "../../../src/listener/database/database-backend.js";
import { handleRevisionWork } from "../../../src/listener/handle-revision-work.js";
import type { InstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import type { JobRunner } from "../../../src/listener/job-runner.js";
import { KEPT_BUILDS_FILE, readKeptBuilds } from "../../../src/listener/kept-builds.js";
import { UNSANDBOXED } from "../../../src/listener/sandbox/create-sandbox.js";
import type { CompleteRequest, RevisionWork, WorkEvent } from "../../../src/protocol/listener-protocol.js";
import { silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

const DEPLOYMENT = { id: "dep-static", environment: "production", installationId: 4242, repository: "acme/site" };

async function rollBackWithoutRun(options: { kept: string[]; to: string }) {
  const dataDir = await tempDir("slipway-rollback-static-");
  const deploymentDir = path.join(dataDir, "work", DEPLOYMENT.id);
  for (const build of options.kept) await mkdir(path.join(deploymentDir, build, "source"), { recursive: true });
  const events: WorkEvent[] = [];
  let completion: CompleteRequest | undefined;
  const client = {
    heartbeat: async (_lease: string, report: { events: WorkEvent[] }) => (events.push(...report.events), { cancel: false, leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() }),
    complete: async (_lease: string, request: CompleteRequest) => {
      events.push(...request.events);
      completion = request;
    },
  } as unknown as ControlPlaneClient;
  const jobsStarted: string[] = [];
  const jobs = { start: async (job: { job: string }) => (jobsStarted.push(job.job), Promise.reject(new Error("no job may run"))) } as unknown as JobRunner;
  const work: RevisionWork = {
    kind: "revision",
    leaseId: "lease-rollback",
    leaseTtlSeconds: 60,
    attempt: 1,
    revision: { id: "rev-9", number: 9, sha: "a".repeat(40), ref: "refs/heads/main" },
    deployment: DEPLOYMENT,
    database: { action: "connect", url: "postgres://app:pw@127.0.0.1:5432/app" },
    build: { commands: ["exit 1"], timeoutSeconds: 60, env: {} },
    reuseBuildOf: options.to,
    reuseFor: "rollback",
    // Nothing may be fetched: the address answers nothing.
    source: { tarballUrl: "http://127.0.0.1:9/tarball", token: "ghs_testtoken0123456789", expiresAt: new Date(Date.now() + 60_000).toISOString() },
  };
  const outcome = await handleRevisionWork(work, {
    client,
    jobs,
    database: { kind: "postgres", connect: async (_identity: unknown, url: string) => url } as unknown as DatabaseBackend,
    instances: {} as InstanceSupervisor,
    routerDomain: "localhost",
    provisioning: { dataDir },
    workRoot: path.join(dataDir, "work"),
    dataDir,
    sandbox: UNSANDBOXED,
    buildMarkersDir: path.join(dataDir, "runs"),
    heartbeatIntervalMs: 50,
    keepBuilds: 5,
    log: silentLog,
  });
  return { outcome, completion, events, jobsStarted, deploymentDir };
}

describe("a rollback without run", () => {
  it("re-activates the kept build as the deployed one, building nothing", async () => {
    const done = await rollBackWithoutRun({ kept: ["rev-1", "rev-2"], to: "rev-1" });
    expect(done.outcome).toBe("DEPLOYED");
    expect(done.jobsStarted).toEqual([]);
    expect(done.events.map((e) => [e.type, e.phase, "outcome" in e ? e.outcome : undefined])).toEqual([
      ["phase_started", "build", undefined],
      ["phase_finished", "build", "succeeded"],
    ]);
    expect(await readKeptBuilds(done.deploymentDir)).toEqual(["rev-1", "rev-2"]);
    expect((await readdir(done.deploymentDir)).sort()).toEqual([KEPT_BUILDS_FILE, "rev-1", "rev-2"]);
  });

  it("a build that is no longer kept: DEPLOY_FAILED, and nothing is built instead", async () => {
    const done = await rollBackWithoutRun({ kept: ["rev-2"], to: "rev-1" });
    expect(done.outcome).toBe("DEPLOY_FAILED");
    expect(done.completion).toMatchObject({ error: "the build of revision rev-1 is no longer kept on this listener; use Redeploy to build it again", infrastructureFault: true });
    expect(done.jobsStarted).toEqual([]);
  });
});
