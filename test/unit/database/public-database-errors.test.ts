/**
 * What a failed database setup or teardown says in public: check runs, deployment statuses
 * and pull request comments are public on public repositories, so they get "Database setup
 * failed: <class>" and never the server's host, port, admin user, database name or version;
 * the whole account goes to the listener's log. Driven by real failing connections.
 */
import { createServer } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabaseBackend } from "../../../src/listener/database/postgres-database-backend.js";
import {
  databaseErrorClass,
  describeDatabaseError,
  publicDatabaseError,
} from "../../../src/listener/database/describe-database-error.js";
import type { DatabaseBackend } from "../../../src/listener/database/database-backend.js";
import { deploymentDatabaseName } from "../../../src/listener/database/deployment-database-name.js";
import type { ControlPlaneClient } from "../../../src/listener/control-plane-client.js";
import { createJobRunner, type JobRunner } from "../../../src/listener/job-runner.js";
import type { InstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import { handleRevisionWork } from "../../../src/listener/handle-revision-work.js";
import { handleTeardownWork } from "../../../src/listener/handle-teardown-work.js";
import type { CompleteRequest, ProgressReport, RevisionWork } from "../../../src/protocol/listener-protocol.js";
import { dropTestDatabases, startScratchPostgres, testDatabaseUrl, withAdmin, type ScratchPostgres } from "../../support/postgres.js";
import { captureLog } from "./capture-log.js";

const PREFIX = "pubtesterr";
const ADMIN = "dbadmin-secretive";
const identity = { installationId: 7, repository: "acme/shop", environment: "production" };

/** A loopback port nothing listens on (taken, then freed). */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

let keyDir = "";
beforeAll(async () => {
  keyDir = await mkdtemp(path.join(tmpdir(), "slipway-public-db-keys-"));
});
afterAll(async () => {
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

function backendFor(adminUrl: string) {
  return createPostgresDatabaseBackend({ adminUrl, dataDir: keyDir, namePrefix: PREFIX, connectTimeoutMs: 3_000, log: captureLog().log });
}

async function failureOf(adminUrl: string, run: (backend: DatabaseBackend) => Promise<unknown> = (b) => b.provision(identity)): Promise<unknown> {
  const backend = backendFor(adminUrl);
  try {
    await run(backend);
  } catch (error) {
    return error;
  } finally {
    await backend.close();
  }
  throw new Error("expected the database operation to fail");
}

let serverVersion = "";
beforeAll(async () => {
  serverVersion = await withAdmin(async (c) => (await c.query<{ v: string }>("SHOW server_version")).rows[0]!.v);
});

/** Every way the text could name the server. */
function expectNothingOfTheServer(text: string, server: { port: number | string; user: string; database?: string }) {
  expect(text).not.toContain("127.0.0.1");
  expect(text).not.toContain("localhost");
  expect(text).not.toContain(String(server.port));
  expect(text).not.toContain(server.user);
  if (server.database) expect(text).not.toContain(server.database);
  expect(text).not.toMatch(/PostgreSQL\s*\d/i);
  expect(text).not.toContain(serverVersion);
  expect(text).not.toMatch(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/);
}

describe("publicDatabaseError, from real failing connections", () => {
  it("a closed port: 'connection refused', and the detail (host, port, user) stays in the operator's account", async () => {
    const port = await closedPort();
    const adminUrl = `postgresql://${ADMIN}:pw-s3cret@127.0.0.1:${port}/postgres`;
    const error = await failureOf(adminUrl);

    const text = publicDatabaseError(error, { adminUrl });
    expect(text).toBe("Database setup failed: connection refused (details in the listener's log)");
    expectNothingOfTheServer(text, { port, user: ADMIN });
    const detail = describeDatabaseError(error, adminUrl);
    expect(detail).toContain(`127.0.0.1:${port}`);
    expect(detail).not.toContain("pw-s3cret");
  });

  it("a wrong password: 'authentication failed', without the admin user, the port or the server version", async () => {
    const server: ScratchPostgres = await startScratchPostgres();
    try {
      const adminUrl = server.url.replace(encodeURIComponent(server.adminPassword), "wrong-admin-s3cret");
      const error = await failureOf(adminUrl);
      const text = publicDatabaseError(error, { adminUrl });
      expect(text).toBe("Database setup failed: authentication failed (details in the listener's log)");
      expectNothingOfTheServer(text, { port: server.port, user: `"${server.adminUser}"` });
      expect(text).not.toContain("wrong-admin-s3cret");
      expect(describeDatabaseError(error, adminUrl)).toBe(`authentication failed for user "${server.adminUser}" at 127.0.0.1:${server.port}`);
    } finally {
      await server.stop();
    }
  }, 60_000);

  describe("on the test server (127.0.0.1:5432)", () => {
    const role = `${PREFIX}_nocreate`;
    beforeAll(async () => {
      await dropTestDatabases(PREFIX);
      await withAdmin((c) => c.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN NOCREATEDB NOCREATEROLE`));
    });
    afterAll(async () => {
      await dropTestDatabases(PREFIX);
    });

    it("an admin without privileges: 'permission denied', naming neither the role nor the database", async () => {
      const adminUrl = Object.assign(new URL(testDatabaseUrl), { username: role }).toString();
      const error = await failureOf(adminUrl);
      expect(databaseErrorClass(error, adminUrl)).toBe("permission denied");
      const text = publicDatabaseError(error, { adminUrl });
      expect(text).toBe("Database setup failed: permission denied (details in the listener's log)");
      expectNothingOfTheServer(text, { port: new URL(testDatabaseUrl).port || 5432, user: role, database: PREFIX });
      expect(describeDatabaseError(error, adminUrl)).toContain(role);
    });

    it("a missing database in the admin URL: 'database does not exist', without its name", async () => {
      const adminUrl = Object.assign(new URL(testDatabaseUrl), { pathname: `/${PREFIX}_no_such_database` }).toString();
      const error = await failureOf(adminUrl);
      const text = publicDatabaseError(error, { adminUrl });
      expect(text).toBe("Database setup failed: database does not exist (details in the listener's log)");
      expectNothingOfTheServer(text, { port: 5432, user: "postgres", database: `${PREFIX}_no_such_database` });
    });

    it("a same-named database Slipway did not make: 'name already taken', without the name", async () => {
      const backend = backendFor(testDatabaseUrl);
      const squatted = { ...identity, environment: "squatted" };
      const name = deploymentDatabaseName(squatted, PREFIX);
      await withAdmin((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
      const error = await backend.provision(squatted).catch((e: unknown) => e);
      await backend.close();
      const text = publicDatabaseError(error, { adminUrl: testDatabaseUrl });
      expect(text).toBe("Database setup failed: name already taken (details in the listener's log)");
      expect(text).not.toContain(name);
      expect(describeDatabaseError(error, testDatabaseUrl)).toContain(name);
    });
  });

  it("maps error codes and messages to the fixed words, whatever else the error says", () => {
    const adminUrl = "postgresql://admin:hunter2@db.internal:5999/postgres";
    const cases: Array<[unknown, string]> = [
      [Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:5999"), { code: "ECONNREFUSED" }), "connection refused"],
      [new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })], ""), "connection refused"],
      [new Error("timeout expired"), "timed out"],
      [new Error("Connection terminated due to connection timeout"), "timed out"],
      [Object.assign(new Error("connect ETIMEDOUT 10.0.0.1:5999"), { code: "ETIMEDOUT" }), "timed out"],
      [new Error("Connection terminated unexpectedly"), "connection lost"],
      [Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), "connection lost"],
      [Object.assign(new Error("getaddrinfo ENOTFOUND db.internal"), { code: "ENOTFOUND" }), "host name not found"],
      [Object.assign(new Error("connect EHOSTUNREACH 10.0.0.1:5999"), { code: "EHOSTUNREACH" }), "host unreachable"],
      [new Error("The server does not support SSL connections"), "TLS not supported by the server"],
      [new Error("SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string"), "authentication failed"],
      [Object.assign(new Error('password authentication failed for user "admin"'), { code: "28P01" }), "authentication failed"],
      [Object.assign(new Error('no pg_hba.conf entry for host "10.0.0.9", user "admin"'), { code: "28000" }), "authentication failed"],
      [Object.assign(new Error("permission denied to create database"), { code: "42501" }), "permission denied"],
      [Object.assign(new Error("sorry, too many clients already"), { code: "53300" }), "too many connections"],
      [Object.assign(new Error("the database system is starting up"), { code: "57P03" }), "server not ready"],
      [Object.assign(new Error("could not obtain lock"), { code: "55P03" }), "busy"],
      [new Error("Invalid URL"), "invalid configuration"],
      [new Error("unsupported frontend protocol 1234.5678: server supports 3.0 to 3.0 (PostgreSQL 16.2 on db.internal)"), "unexpected error"],
      ["a string thrown by someone", "unexpected error"],
    ];
    for (const [error, words] of cases) {
      const text = publicDatabaseError(error, { adminUrl });
      expect(text, String(error)).toBe(`Database setup failed: ${words} (details in the listener's log)`);
      for (const leak of ["db.internal", "5999", "admin", "hunter2", "10.0.0", "PostgreSQL 16"]) expect(text).not.toContain(leak);
    }
    expect(publicDatabaseError(new Error("x"), { action: "teardown" })).toBe("Database teardown failed: unexpected error (details in the listener's log)");
  });
});

/** A control plane that records the heartbeats' log text and the completion. */
function recordingClient() {
  let log = "";
  const completions: CompleteRequest[] = [];
  const apply = (report: ProgressReport) => {
    if (report.log) log += report.log.text;
  };
  const client: ControlPlaneClient = {
    join: async () => {},
    lease: async () => undefined,
    running: async () => [],
    crashed: async () => undefined,
    async heartbeat(_leaseId, report) {
      apply(report);
      return { cancel: false, leaseExpiresAt: new Date(Date.now() + 60_000).toISOString() };
    },
    async complete(_leaseId, request) {
      apply(request);
      completions.push(structuredClone(request));
    },
  };
  return { client, completions, revisionLog: () => log };
}

const unusedInstances = {} as InstanceSupervisor;

describe("the listener's database failures", () => {
  let jobs: JobRunner;
  let dir: string;
  beforeAll(async () => {
    jobs = createJobRunner({ log: captureLog().log });
    dir = await mkdtemp(path.join(tmpdir(), "slipway-public-db-errors-"));
  });
  afterAll(async () => {
    await jobs?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a failed setup job: the revision's error is public words; host, port and admin user are in the listener's log only", async () => {
    const port = await closedPort();
    const adminUrl = `postgresql://${ADMIN}:pw-s3cret@127.0.0.1:${port}/postgres`;
    const control = recordingClient();
    const captured = captureLog();
    const work: RevisionWork = {
      kind: "revision",
      leaseId: "lease-1",
      leaseTtlSeconds: 60,
      attempt: 1,
      revision: { id: "rev-db-fail", number: 1, sha: "a".repeat(40), ref: "refs/heads/main" },
      deployment: { id: "dep-1", environment: "production", installationId: 7, repository: "acme/shop" },
      database: { action: "provision" },
      build: { commands: ["true"], timeoutSeconds: 60, env: {} },
      source: { tarballUrl: "http://127.0.0.1:9/never", token: "ghs_never", expiresAt: new Date().toISOString() },
    };
    const outcome = await handleRevisionWork(work, {
      client: control.client,
      jobs,
      database: {} as DatabaseBackend, // never reached: setup fails first
      instances: unusedInstances,
      routerDomain: "localhost",
      provisioning: { adminUrl, dataDir: dir },
      workRoot: path.join(dir, "work"),
      dataDir: dir,
      sandbox: { kind: "none" } as never,
      buildMarkersDir: path.join(dir, "runs"),
      heartbeatIntervalMs: 20,
      log: captured.log,
    });

    expect(outcome).toBe("DATABASE_FAILED");
    const [completion] = control.completions;
    expect(completion?.outcome).toBe("DATABASE_FAILED");
    expect(completion?.error).toBe("Database setup failed: connection refused (details in the listener's log)");
    expectNothingOfTheServer(completion!.error!, { port, user: ADMIN });
    // The revision's log would be shown in the check run's and the comment's log tail: nothing there.
    expect(control.revisionLog()).toBe("");
    // The listener's log has the whole account, without the password.
    const logText = captured.text();
    expect(logText).toContain("database setup failed");
    expect(logText).toContain(`cannot reach PostgreSQL at 127.0.0.1:${port}: connection refused`);
    expect(logText).toContain("rev-db-fail");
    expect(logText).not.toContain("pw-s3cret");
  }, 60_000);

  it("a database that cannot be served: the same public words", async () => {
    const control = recordingClient();
    const captured = captureLog();
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:41234"), { code: "ECONNREFUSED" });
    const outcome = await handleRevisionWork(
      {
        kind: "revision",
        leaseId: "lease-2",
        leaseTtlSeconds: 60,
        attempt: 1,
        revision: { id: "rev-connect-fail", number: 2, sha: "b".repeat(40), ref: "refs/heads/main" },
        deployment: { id: "dep-1", environment: "production", installationId: 7, repository: "acme/shop" },
        database: { action: "connect", url: "postgresql://slipway_acme_shop:pw@127.0.0.1:41234/slipway_acme_shop" },
        build: { commands: ["true"], timeoutSeconds: 60, env: {} },
        source: { tarballUrl: "http://127.0.0.1:9/never", token: "ghs_never", expiresAt: new Date().toISOString() },
      },
      {
        client: control.client,
        jobs,
        database: { connect: async () => Promise.reject(refused) } as unknown as DatabaseBackend,
        instances: unusedInstances,
        routerDomain: "localhost",
        provisioning: { dataDir: dir },
        workRoot: path.join(dir, "work"),
        dataDir: dir,
        sandbox: { kind: "none" } as never,
        buildMarkersDir: path.join(dir, "runs"),
        heartbeatIntervalMs: 20,
        log: captured.log,
      },
    );
    expect(outcome).toBe("DATABASE_FAILED");
    expect(control.completions[0]?.error).toBe("Database setup failed: connection refused (details in the listener's log)");
    expect(captured.text()).toContain("cannot reach PostgreSQL at 127.0.0.1:41234: connection refused");
    expect(captured.text()).not.toContain(":pw@");
  });

  it("a failed teardown: public words to the control plane, the whole account to the log", async () => {
    const port = await closedPort();
    const adminUrl = `postgresql://${ADMIN}:pw-s3cret@127.0.0.1:${port}/postgres`;
    const backend = backendFor(adminUrl);
    const control = recordingClient();
    const captured = captureLog();
    await handleTeardownWork(
      { kind: "teardown", leaseId: "lease-3", leaseTtlSeconds: 60, deployment: { id: "dep-2", environment: "pr-4", installationId: 7, repository: "acme/shop" } },
      {
        client: control.client,
        database: backend,
        instances: { stop: async () => undefined } as unknown as InstanceSupervisor,
        adminDatabaseUrl: adminUrl,
        dataDir: dir,
        heartbeatIntervalMs: 20,
        log: captured.log,
      },
    );
    expect(control.completions[0]?.outcome).toBe("TEARDOWN_FAILED");
    expect(control.completions[0]?.error).toBe("Database teardown failed: connection refused (details in the listener's log)");
    expectNothingOfTheServer(control.completions[0]!.error!, { port, user: ADMIN });
    expect(captured.text()).toContain(`127.0.0.1:${port}`);
    expect(captured.text()).not.toContain("pw-s3cret");
  });
});
