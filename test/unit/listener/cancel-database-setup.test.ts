/**
 * Cancelling a revision while its database is being set up (issue 17): the setup job stops
 * at once, on a real PostgreSQL server, and leaves the deployment's database either whole
 * and reported or not there at all, so the next setup of the deployment makes it afresh.
 * Setups are held up the way they are in production: another session holds the
 * deployment's advisory lock, or a lock CREATE DATABASE waits for.
 */
import { EventEmitter } from "node:events";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import { deploymentLockKey } from "../../../src/listener/database/admin-session.js";
import {
  createDatabaseBackend,
  deploymentDatabaseName,
  type DatabaseBackend,
  type DeploymentIdentity,
} from "../../../src/listener/database/database-backend.js";
import { handleRevisionWork } from "../../../src/listener/handle-revision-work.js";
import type { InstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import type { ProvisionJobData, ProvisionJobResult } from "../../../src/listener/job-messages.js";
import { createJobRunner, type JobRunner } from "../../../src/listener/job-runner.js";
import type { CompleteRequest, ProgressReport, RevisionWork, WorkEvent, WorkOutcome } from "../../../src/protocol/listener-protocol.js";
import { silentLog } from "../../support/fixtures.js";
import { connectAdmin, startScratchPostgres, testDatabaseUrl, type ScratchPostgres } from "../../support/postgres.js";
import { tempDir } from "../../support/temp-dir.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";

/** Well below the 30 s a cancelled setup used to take (the job ignored `cancel` until Bree terminated it). */
const PROMPTLY_MS = 10_000;
const run = Math.random().toString(36).slice(2, 8);
let installation = 17_000;

/**
 * A control plane that records what it is told and announces every heartbeat; once
 * `cancel()` is called, heartbeats answer `cancel: true`, as they do for a cancelled or
 * superseded revision.
 */
function controlPlane() {
  const events: WorkEvent[] = [];
  const completions: CompleteRequest[] = [];
  const heartbeats = new EventEmitter();
  let cancelled = false;
  const record = (report: ProgressReport) => events.push(...structuredClone(report.events));
  const client: ControlPlaneClient = {
    join: async () => undefined,
    lease: async () => undefined,
    running: async () => [],
    crashed: async () => undefined,
    async heartbeat(_leaseId, report) {
      record(report);
      heartbeats.emit("sent");
      return { cancel: cancelled, leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() };
    },
    async complete(_leaseId, request) {
      record(request);
      completions.push(structuredClone(request));
    },
  };
  return { client, events, completions, heartbeats, cancel: () => (cancelled = true) };
}

interface Setup {
  adminUrl: string;
  identity: DeploymentIdentity;
  dataDir: string;
}

/** Starts the first revision of the deployment (it sets up the database); resolves with the outcome. */
function startRevision(setup: Setup, control: ReturnType<typeof controlPlane>, stopping?: AbortSignal) {
  const { identity, dataDir } = setup;
  const work: RevisionWork = {
    kind: "revision",
    leaseId: `lease-${installation}`,
    leaseTtlSeconds: 60,
    attempt: 1,
    revision: { id: `rev-${identity.installationId}`, number: 1, sha: "c".repeat(40), ref: "refs/heads/main" },
    deployment: { id: `dep-${identity.installationId}`, ...identity },
    database: { action: "provision" },
    build: { commands: ["true"], timeoutSeconds: 60, env: {} },
    source: { tarballUrl: "http://127.0.0.1:9/never", token: "ghs_never", expiresAt: new Date().toISOString() },
  };
  const finished = new EventEmitter();
  let outcome: WorkOutcome | "lease-lost" | undefined;
  void handleRevisionWork(work, {
    client: control.client,
    jobs,
    database: { kind: "postgres" } as DatabaseBackend, // the setup job makes its own
    instances: {} as InstanceSupervisor, // never reached: no build after a cancel
    routerDomain: "localhost",
    provisioning: { adminUrl: setup.adminUrl, dataDir },
    workRoot: path.join(dataDir, "work"),
    dataDir,
    sandbox: { kind: "none" } as never,
    buildMarkersDir: path.join(dataDir, "runs"),
    heartbeatIntervalMs: 50,
    stopping,
    log: silentLog,
  }).then((result) => {
    outcome = result;
    finished.emit("done");
  });
  return {
    /** The outcome, once the revision finished; fails (naming what it waited for) after {@link PROMPTLY_MS}. */
    outcome: () => waitUntil(() => outcome, { on: [signal(finished, "done")], what: "the revision to finish after the cancel", timeoutMs: PROMPTLY_MS }),
  };
}

/** What the deployment has on the server: its role and its database, by name. */
async function leftOnServer(observer: pg.Client, identity: DeploymentIdentity) {
  const name = deploymentDatabaseName(identity);
  const { rows } = await observer.query<{ role: boolean; database: boolean }>(
    "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1) AS role, EXISTS (SELECT FROM pg_database WHERE datname = $1) AS database",
    [name],
  );
  return rows[0]!;
}

/** Sessions waiting on a lock `holder` holds. */
async function blockedBy(observer: pg.Client, holder: pg.Client): Promise<string[]> {
  const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const { rows } = await observer.query<{ query: string }>("SELECT query FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", [pid]);
  return rows.map((row) => row.query);
}

/** A later revision's setup job for the same deployment. */
async function setUpAgain(setup: Setup): Promise<ProvisionJobResult> {
  const workerData: ProvisionJobData = { identity: setup.identity, adminUrl: setup.adminUrl, dataDir: setup.dataDir };
  const job = await jobs.start<ProvisionJobResult>({ job: "provision-database", jobId: `again-${setup.identity.installationId}`, workerData });
  return job.result;
}

/** Runs `sql` as the deployment's own role, in its own database. */
async function queryAsDeployment(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let jobs: JobRunner;
const made: Setup[] = [];
beforeAll(() => {
  jobs = createJobRunner({ log: silentLog });
});
afterEach(async () => {
  for (const setup of made.splice(0)) {
    await createDatabaseBackend({ adminUrl: setup.adminUrl, dataDir: setup.dataDir, log: silentLog }).drop(setup.identity);
  }
});
afterAll(async () => {
  await jobs?.stop();
});

async function newSetup(adminUrl: string): Promise<Setup> {
  const setup = { adminUrl, identity: { installationId: installation++, repository: `cancel-test/shop-${run}`, environment: "pr-17" }, dataDir: await tempDir() };
  made.push(setup);
  return setup;
}

describe("cancelling a revision during its database setup", () => {
  it("while the setup waits for the deployment's lock: cancelled promptly, nothing made, and the next setup makes the database", async () => {
    const setup = await newSetup(testDatabaseUrl);
    // Another session of this deployment (a teardown, a setup elsewhere) holds its lock.
    const holder = await connectAdmin();
    const observer = await connectAdmin();
    try {
      await holder.query("SELECT pg_advisory_lock($1::bigint)", [deploymentLockKey(setup.identity)]);
      const control = controlPlane();
      const revision = startRevision(setup, control);
      await waitUntil(async () => (await blockedBy(observer, holder)).length > 0, {
        on: [signal(control.heartbeats, "sent")],
        what: "the setup to wait for the deployment's lock",
      });

      control.cancel();
      expect(await revision.outcome()).toBe("CANCELLED");

      expect(control.completions).toMatchObject([{ outcome: "CANCELLED", error: "Cancelled during database setup" }]);
      expect(control.completions[0]?.infrastructureFault).toBeFalsy();
      expect(control.events.map((e) => [e.type, e.phase, "outcome" in e ? e.outcome : undefined])).toEqual([
        ["phase_started", "database", undefined],
        ["phase_finished", "database", "cancelled"],
      ]);
      // Nothing for the control plane to record, and nothing on the server.
      expect(control.events.some((e) => "database" in e && e.database)).toBe(false);
      expect(await leftOnServer(observer, setup.identity)).toEqual({ role: false, database: false });
      // The setup's session does not go on waiting for the lock (to take it later, with nobody listening).
      expect(await blockedBy(observer, holder)).toEqual([]);

      await holder.query("SELECT pg_advisory_unlock($1::bigint)", [deploymentLockKey(setup.identity)]);
      const again = await setUpAgain(setup);
      expect(again).toMatchObject({ ok: true, database: { name: deploymentDatabaseName(setup.identity), created: true } });
      if (!again.ok) throw new Error(again.error);
      expect(await queryAsDeployment(again.database.url, "SELECT current_user AS role")).toEqual([{ role: again.database.name }]);
    } finally {
      await holder.end().catch(() => undefined);
      await observer.end().catch(() => undefined);
    }
  });

  it("a listener whose grace period ends during the setup hands the work back, with nothing made", async () => {
    const setup = await newSetup(testDatabaseUrl);
    const holder = await connectAdmin();
    const observer = await connectAdmin();
    try {
      await holder.query("SELECT pg_advisory_lock($1::bigint)", [deploymentLockKey(setup.identity)]);
      const control = controlPlane();
      const stopping = new AbortController();
      const revision = startRevision(setup, control, stopping.signal);
      await waitUntil(async () => (await blockedBy(observer, holder)).length > 0, {
        on: [signal(control.heartbeats, "sent")],
        what: "the setup to wait for the deployment's lock",
      });

      stopping.abort();
      expect(await revision.outcome()).toBe("RELEASED");
      expect(control.completions).toMatchObject([{ outcome: "RELEASED" }]);
      expect(await leftOnServer(observer, setup.identity)).toEqual({ role: false, database: false });
      expect(await blockedBy(observer, holder)).toEqual([]);
    } finally {
      await holder.end().catch(() => undefined);
      await observer.end().catch(() => undefined);
    }
  });

  describe("on a server of its own (a held lock on template1 stops every CREATE DATABASE there)", () => {
    let scratch: ScratchPostgres;
    beforeAll(async () => {
      scratch = await startScratchPostgres();
    });
    afterAll(async () => {
      await scratch?.stop();
    });

    it("while CREATE DATABASE waits, its role already made: the role is dropped, and the next setup makes both", async () => {
      const setup = await newSetup(scratch.url);
      const holder = await connectAdmin(scratch.url);
      const observer = await connectAdmin(scratch.url);
      try {
        // CREATE DATABASE takes a share lock on its template; a comment being changed holds a conflicting one.
        await holder.query("BEGIN");
        await holder.query("COMMENT ON DATABASE template1 IS 'held by the test'");
        const control = controlPlane();
        const revision = startRevision(setup, control);
        const waiting = await waitUntil(async () => (await blockedBy(observer, holder))[0], {
          on: [signal(control.heartbeats, "sent")],
          what: "the setup to wait in CREATE DATABASE",
        });
        expect(waiting).toMatch(/^CREATE DATABASE /);
        // Half-way: the role is made, the database not yet.
        expect(await leftOnServer(observer, setup.identity)).toEqual({ role: true, database: false });

        control.cancel();
        expect(await revision.outcome()).toBe("CANCELLED");

        expect(control.completions).toMatchObject([{ outcome: "CANCELLED" }]);
        expect(control.events.some((e) => "database" in e && e.database)).toBe(false);
        expect(await leftOnServer(observer, setup.identity)).toEqual({ role: false, database: false });
        // Nothing finishes the CREATE DATABASE once the lock comes free.
        expect(await blockedBy(observer, holder)).toEqual([]);
        await holder.query("ROLLBACK");
        expect(await leftOnServer(observer, setup.identity)).toEqual({ role: false, database: false });

        const again = await setUpAgain(setup);
        expect(again).toMatchObject({ ok: true, database: { created: true } });
        if (!again.ok) throw new Error(again.error);
        expect(await queryAsDeployment(again.database.url, "SELECT current_database() AS database")).toEqual([{ database: again.database.name }]);
      } finally {
        await holder.end().catch(() => undefined);
        await observer.end().catch(() => undefined);
      }
    });
  });
});
