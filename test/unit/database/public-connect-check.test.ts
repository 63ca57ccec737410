import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createDatabaseBackend } from "../../../src/listener/database/database-backend.js";
import { checkPublicConnect, createPostgresDatabaseBackend } from "../../../src/listener/database/postgres-database-backend.js";
import { dropTestDatabases, testDatabaseUrl, withAdmin } from "../../support/postgres.js";
import { tempDir } from "../../support/temp-dir.js";
import { signal, waitUntil } from "../../../tools/wait-until.js";
import { captureLog } from "./capture-log.js";

// Unique per run: what this file makes (a database, a role, a deployment) starts with it.
const prefix = `pubconntest${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
const database = `${prefix}_open`;
const nonSuperAdmin = `${prefix}_admin`;

function urlFor(user: string, db: string, extra: Record<string, string> = {}): string {
  const url = new URL(testDatabaseUrl);
  url.username = user;
  url.pathname = `/${db}`;
  for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
  return url.toString();
}

/**
 * Counts the checks of CONNECT for PUBLIC started until `stop`: each opens one pg client, and
 * calls its `connect` as the backend is made (synchronously), so the count is complete at once.
 */
function countChecksStarted(): { stop(): number } {
  const connect = vi.spyOn(pg.Client.prototype, "connect");
  return {
    stop() {
      const count = connect.mock.calls.length;
      connect.mockRestore();
      return count;
    },
  };
}

function warnings(text: string): Array<{ msg: string; databases?: string[]; statements?: string[] }> {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: number; msg: string; databases?: string[]; statements?: string[] })
    .filter((entry) => entry.level === 40);
}

beforeAll(async () => {
  await withAdmin(async (client) => {
    // A fresh database has no ACL: PostgreSQL's default, CONNECT (and TEMPORARY) for PUBLIC.
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    // Trust authentication on loopback: the test server lets it log in without a password.
    await client.query(`CREATE ROLE ${pg.escapeIdentifier(nonSuperAdmin)} LOGIN NOSUPERUSER CREATEDB CREATEROLE`);
  });
});

afterAll(async () => {
  await dropTestDatabases(prefix);
});

describe("databases that grant CONNECT to PUBLIC", () => {
  it("are named in one warning with the REVOKE statements, and the list follows GRANT and REVOKE", async () => {
    const captured = captureLog();
    const found = await checkPublicConnect(testDatabaseUrl, captured.log);
    // `postgres` keeps PostgreSQL's default on the test server (nothing here changes it).
    expect(found.databases).toEqual(expect.arrayContaining(["postgres", database]));
    expect(found.databases).not.toContain("template0");
    expect(found.statements).toContain("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;");
    expect(found.statements).toContain(`REVOKE CONNECT ON DATABASE ${database} FROM PUBLIC;`);
    // A superuser admin needs no GRANT to keep its own database.
    expect(found.statements.filter((s) => s.startsWith("GRANT"))).toEqual([]);

    const logged = warnings(captured.text());
    expect(logged).toHaveLength(1);
    expect(logged[0]?.msg).toContain('"postgres"');
    expect(logged[0]?.msg).toContain("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;");
    expect(logged[0]?.msg).toContain("Slipway does not change that itself");
    expect(logged[0]?.databases).toEqual(found.databases);

    const q = pg.escapeIdentifier(database);
    await withAdmin((client) => client.query(`REVOKE CONNECT ON DATABASE ${q} FROM PUBLIC`));
    try {
      const revoked = await checkPublicConnect(testDatabaseUrl, captureLog().log);
      expect(revoked.databases).not.toContain(database);
      expect(revoked.databases).toContain("postgres");
      expect(revoked.statements.join(" ")).not.toContain(database);
    } finally {
      await withAdmin((client) => client.query(`GRANT CONNECT ON DATABASE ${q} TO PUBLIC`));
    }
    expect((await checkPublicConnect(testDatabaseUrl, captureLog().log)).databases).toContain(database);

    // Nobody may connect to a database closed to connections: not listed (as template0).
    await withAdmin((client) => client.query(`ALTER DATABASE ${q} ALLOW_CONNECTIONS false`));
    try {
      expect((await checkPublicConnect(testDatabaseUrl, captureLog().log)).databases).not.toContain(database);
    } finally {
      await withAdmin((client) => client.query(`ALTER DATABASE ${q} ALLOW_CONNECTIONS true`));
    }
  });

  it("leaves out the deployments' own databases, which revoke it at setup", async () => {
    const captured = captureLog();
    const backend = createDatabaseBackend({ adminUrl: testDatabaseUrl, dataDir: await tempDir(), log: captured.log, namePrefix: prefix });
    const provisioned = await backend.provision({ installationId: 4242, repository: "octo-org/public-connect", environment: "production" });
    const found = await checkPublicConnect(testDatabaseUrl, captureLog().log);
    expect(found.databases).not.toContain(provisioned.name);
    expect(found.databases).toContain(database);
    await backend.drop({ installationId: 4242, repository: "octo-org/public-connect", environment: "production" });
  });

  it("tells a non-superuser admin to keep CONNECT on its own database before revoking PUBLIC's", async () => {
    const found = await checkPublicConnect(urlFor(nonSuperAdmin, database), captureLog().log);
    const grant = `GRANT CONNECT ON DATABASE ${database} TO ${nonSuperAdmin};`;
    const revoke = `REVOKE CONNECT ON DATABASE ${database} FROM PUBLIC;`;
    expect(found.statements).toContain(grant);
    expect(found.statements.indexOf(grant)).toBeLessThan(found.statements.indexOf(revoke));
    // Only for its own database: a GRANT elsewhere would widen what the admin may reach.
    expect(found.statements.filter((s) => s.startsWith("GRANT"))).toEqual([grant]);

    // Once it holds CONNECT itself, no GRANT is suggested.
    await withAdmin((client) => client.query(`GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(database)} TO ${pg.escapeIdentifier(nonSuperAdmin)}`));
    const again = await checkPublicConnect(urlFor(nonSuperAdmin, database), captureLog().log);
    expect(again.statements.filter((s) => s.startsWith("GRANT"))).toEqual([]);
    expect(again.statements).toContain(revoke);
  });

  it("runs once per process when the backend is made, never from worker-thread setups, and never throws", async () => {
    // A URL this file's backends have not used, so this process has not checked it yet.
    const adminUrl = urlFor("postgres", "postgres", { application_name: `${prefix}_hook` });
    const captured = captureLog();
    const dataDir = await tempDir();
    const connects = countChecksStarted();
    createPostgresDatabaseBackend({ adminUrl, dataDir, log: captured.log });
    createPostgresDatabaseBackend({ adminUrl, dataDir, log: captured.log });
    createPostgresDatabaseBackend({ adminUrl, dataDir, log: captured.log, checkPublicConnect: true });
    const started = connects.stop();
    await vi.waitFor(() => expect(warnings(captured.text())).toHaveLength(1), { timeout: 10_000 });
    // Every check these backends started has finished: each logs its one warning here.
    await waitUntil(() => warnings(captured.text()).length >= started, { on: [signal(captured.events, "line")], what: `${started} checks to finish` });
    expect(warnings(captured.text())).toHaveLength(1);
    expect(warnings(captured.text())[0]?.statements).toContain("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;");

    // As a provisioning job in a worker thread would: no check.
    const quiet = captureLog();
    const quietConnects = countChecksStarted();
    createPostgresDatabaseBackend({ adminUrl: urlFor("postgres", "postgres", { application_name: `${prefix}_off` }), dataDir, log: quiet.log, checkPublicConnect: false });
    const quietStarted = quietConnects.stop();
    await waitUntil(() => warnings(quiet.text()).length >= quietStarted, { on: [signal(quiet.events, "line")], what: `${quietStarted} checks to finish` });
    expect(quiet.text()).toBe("");

    // An unreachable server: a secret-free warning, no unhandled rejection.
    const unreachable = captureLog();
    createPostgresDatabaseBackend({ adminUrl: "postgres://admin:pw-s3cret@127.0.0.1:1/postgres", dataDir, log: unreachable.log, connectTimeoutMs: 2_000 });
    await vi.waitFor(() => expect(unreachable.text()).toContain("could not check which databases"), { timeout: 10_000 });
    expect(unreachable.text()).not.toContain("pw-s3cret");
  });
});
