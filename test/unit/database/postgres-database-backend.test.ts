import { spawn } from "node:child_process";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabaseBackend,
  deploymentDatabaseName,
  describeDatabaseError,
  secretsOf,
  type DatabaseBackend,
  type DeploymentIdentity,
} from "../../../src/listener/database/database-backend.js";
import { ownershipMark } from "../../../src/listener/database/deployment-database-name.js";
import { scramSha256Verifier } from "../../../src/listener/database/scram-verifier.js";
import {
  dropTestDatabases,
  serverLogFile,
  startScratchPostgres,
  testDatabaseUrl,
  withAdmin,
  type ScratchPostgres,
} from "../../support/postgres.js";
import { tempDir } from "../../support/temp-dir.js";
import { followOutput } from "../../../tools/start-slipway.js";
import { waitForChanges } from "../../../tools/wait-until.js";
import { captureLog } from "./capture-log.js";

// Unique per run, so two runs against one server never clean up each other's databases.
const prefix = `slipwaytest${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
const childScript = fileURLToPath(new URL("./fixtures/provision-until-killed.ts", import.meta.url));

let installation = 9_000;
/** A fresh deployment identity for each test. */
function identity(environment = "production", repository = "octo-org/hello-world"): DeploymentIdentity {
  return { installationId: installation++, repository, environment };
}

async function backendFor(options: { adminUrl?: string; dataDir?: string; log?: ReturnType<typeof captureLog>["log"] } = {}) {
  const captured = captureLog();
  const backend = createDatabaseBackend({
    adminUrl: options.adminUrl ?? testDatabaseUrl,
    dataDir: options.dataDir ?? (await tempDir()),
    log: options.log ?? captured.log,
    namePrefix: prefix,
  });
  return { backend, logText: captured.text };
}

/** Runs `sql` as the URL's user in the URL's database. */
async function queryAs<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function databaseState(name: string) {
  return withAdmin(async (client) => {
    const databases = await client.query<{ owner: string; mark: string | null; allow: boolean; public_connect: boolean }>(
      `SELECT pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS mark, datallowconn AS allow,
              has_database_privilege('public', oid, 'CONNECT') AS public_connect
         FROM pg_database WHERE datname = $1`,
      [name],
    );
    const roles = await client.query<{ mark: string | null }>(
      "SELECT shobj_description(oid, 'pg_authid') AS mark FROM pg_roles WHERE rolname = $1",
      [name],
    );
    return { databases: databases.rows, roles: roles.rows };
  });
}

function otherDatabase(url: string, database: string): string {
  const other = new URL(url);
  other.pathname = `/${database}`;
  return other.toString();
}

beforeAll(async () => {
  // Fails here, loudly, when the server is down: these tests are never skipped.
  await withAdmin(async (client) => {
    await client.query("SELECT 1");
  });
});

afterAll(async () => {
  await dropTestDatabases(prefix);
});

describe("PostgreSQL backend", () => {
  it("creates one database and role on the first setup and adopts them on the second, with the same URL", async () => {
    const { backend } = await backendFor();
    const deployment = identity("production");
    const first = await backend.provision(deployment);
    const second = await backend.provision(deployment);

    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.name).toBe(first.name);
    expect(second.url).toBe(first.url);
    expect(await backend.connect(deployment, first.url)).toBe(first.url);

    const state = await databaseState(first.name);
    expect(state.databases).toEqual([{ owner: first.name, mark: ownershipMark(deployment), allow: true, public_connect: false }]);
    expect(state.roles).toEqual([{ mark: ownershipMark(deployment) }]);

    const [row] = await queryAs<{ db: string; me: string }>(first.url, "SELECT current_database() AS db, current_user AS me");
    expect(row).toEqual({ db: first.name, me: first.name });
    await queryAs(first.url, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')");
  });

  it("keeps one deployment's role out of another deployment's database", async () => {
    const { backend } = await backendFor();
    const a = await backend.provision(identity("staging"));
    const b = await backend.provision(identity("pr-7"));

    await expect(queryAs(otherDatabase(b.url, a.name), "SELECT 1")).rejects.toMatchObject({ code: "42501" });
    await expect(queryAs(otherDatabase(a.url, b.name), "SELECT 1")).rejects.toMatchObject({ code: "42501" });
  });

  it("makes exactly one database when ten setups of one deployment race, and every URL works", async () => {
    const deployment = identity("pr-10");
    const dataDir = await tempDir();
    // Ten backends, as ten worker threads would have: nothing shared but the server and the data folder.
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        createDatabaseBackend({ adminUrl: testDatabaseUrl, dataDir, log: captureLog().log, namePrefix: prefix }).provision(deployment),
      ),
    );

    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.name)).size).toBe(1);
    const name = results[0]!.name;
    const count = await withAdmin((c) => c.query("SELECT count(*)::int AS n FROM pg_database WHERE datname = $1", [name]));
    expect(count.rows[0]).toEqual({ n: 1 });
    for (const result of results) {
      expect(await queryAs<{ db: string }>(result.url, "SELECT current_database() AS db")).toEqual([{ db: name }]);
    }
  });

  it("adopts the database after the process that created it was killed before saving the record", async () => {
    const deployment = identity("crash");
    const name = deploymentDatabaseName(deployment, prefix);
    const dataDir = await tempDir();
    const child = spawn(process.execPath, ["--import", "tsx", childScript], {
      cwd: fileURLToPath(new URL("../../..", import.meta.url)),
      env: { ...process.env, SLIPWAY_TEST_PROVISION: JSON.stringify({ adminUrl: testDatabaseUrl, dataDir, namePrefix: prefix, identity: deployment }) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = followOutput(child);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));

    // Kill it the moment its database exists (it says so as its CREATE DATABASE returns): mid-setup or just after, never with a saved record.
    try {
      await output.waitFor("database exists\n", { description: "the child's CREATE DATABASE" });
    } finally {
      child.kill("SIGKILL");
    }
    expect(await exited).toBe("SIGKILL");
    // Wherever the kill landed, the half-made database was never open to everyone.
    const atKill = (await databaseState(name)).databases[0]!;
    expect(atKill.allow && atKill.public_connect).toBe(false);

    const { backend } = await backendFor();
    const adopted = await backend.provision(deployment);
    expect(adopted).toMatchObject({ created: false, name });
    const state = await databaseState(name);
    expect(state.databases).toEqual([{ owner: name, mark: ownershipMark(deployment), allow: true, public_connect: false }]);
    expect(await queryAs<{ db: string }>(adopted.url, "SELECT current_database() AS db")).toEqual([{ db: name }]);
  });

  it("gives hostile and long repository and environment names distinct, safe databases of at most 63 bytes", async () => {
    const { backend } = await backendFor();
    const long = "x".repeat(98);
    const deployments = [
      identity(`it's "quoted"`, `o'brien/"repo"`),
      identity("x; DROP DATABASE postgres; --", "acme/shop;select pg_sleep(10)"),
      identity("$(id)", "`whoami`/${HOME}"),
      identity("Production", "ACME/Shop"),
      identity("production", "acme/shop"),
      identity("предпросмотр-😀", "ünïcødé/日本語"),
      identity("e".repeat(100), `${"o".repeat(49)}/${"r".repeat(50)}`),
      identity("env", `o/${long}a`),
      identity("env", `o/${long}b`),
    ];
    const results = await Promise.all(deployments.map((d) => backend.provision(d)));

    const names = results.map((r) => r.name);
    expect(new Set(names).size).toBe(deployments.length);
    for (const name of names) {
      expect(name).toMatch(/^[a-z0-9_]+$/);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    }
    const existing = await withAdmin((c) =>
      c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname = ANY($1)", [names]),
    );
    expect(existing.rows.map((r) => r.datname).sort()).toEqual([...names].sort());
    for (const result of results) {
      expect(await queryAs<{ db: string }>(result.url, "SELECT current_database() AS db")).toEqual([{ db: result.name }]);
    }
    await Promise.all(deployments.map((d) => backend.drop(d)));
    const left = await withAdmin((c) => c.query("SELECT 1 FROM pg_database WHERE datname = ANY($1)", [names]));
    expect(left.rowCount).toBe(0);
  });

  it("never lets the password reach the logs, the error messages or the server log (log_statement = all)", async () => {
    const admin = new URL(testDatabaseUrl);
    admin.searchParams.set("options", "-c log_statement=all");
    const { backend, logText } = await backendFor({ adminUrl: admin.toString() });
    const logFile = await withAdmin((client) => serverLogFile(client));
    const offset = (await stat(logFile)).size;
    const deployment = identity("secret");

    const created = await backend.provision(deployment);
    const adopted = await backend.provision(deployment);
    const errors: string[] = [];
    const foreign = identity("foreign");
    // A same-named database Slipway did not make: refused, with a message.
    await createForeignDatabase(deploymentDatabaseName(foreign, prefix));
    await backend.provision(foreign).catch((error: Error) => errors.push(error.message, describeDatabaseError(error, testDatabaseUrl)));
    await backend.drop(deployment);

    const secrets = secretsOf(created.url);
    expect(secrets.length).toBeGreaterThan(0);
    expect(adopted.url).toBe(created.url);
    const serverLog = await readFrom(logFile, offset, (text) => text.includes(`DROP ROLE IF EXISTS "${created.name}"`));
    // The statements are there (the log is the right one and log_statement took effect)…
    expect(serverLog).toContain(`CREATE ROLE "${created.name}"`);
    expect(serverLog).toContain("SCRAM-SHA-256$4096:");
    expect(errors.join("\n")).toMatch(/not created by Slipway/);
    // …and the password is not.
    for (const secret of secrets) {
      expect(serverLog).not.toContain(secret);
      expect(logText()).not.toContain(secret);
      expect(errors.join("\n")).not.toContain(secret);
    }
    expect(logText()).toContain(created.name);
  });

  it("refuses to adopt or drop a same-named database or role that Slipway did not make", async () => {
    const { backend } = await backendFor();
    const deployment = identity("squatted");
    const name = deploymentDatabaseName(deployment, prefix);
    await createForeignDatabase(name);

    await expect(backend.provision(deployment)).rejects.toThrow(
      `cannot use the database "${name}": it exists but was not created by Slipway for this deployment; rename or drop it`,
    );
    expect((await databaseState(name)).roles).toEqual([]);
    await expect(backend.drop(deployment)).rejects.toThrow(/refusing to drop/);
    expect((await databaseState(name)).databases).toHaveLength(1);

    const roleOnly = identity("squatted-role");
    await withAdmin((c) => c.query(`CREATE ROLE ${pg.escapeIdentifier(deploymentDatabaseName(roleOnly, prefix))}`));
    await expect(backend.provision(roleOnly)).rejects.toThrow(/a role named .* was not created by Slipway/);
  });

  it("terminates open connections on teardown, drops database and role, and drops idempotently", async () => {
    const { backend } = await backendFor();
    const deployment = identity("pr-99");
    const { url, name } = await backend.provision(deployment);
    const app = new pg.Client({ connectionString: url });
    const appError = new Promise<Error>((resolve) => app.on("error", resolve));
    await app.connect();
    await app.query("SELECT 1");

    await backend.drop(deployment);

    expect(await appError).toMatchObject({ code: "57P01" });
    expect(await databaseState(name)).toEqual({ databases: [], roles: [] });
    await app.end().catch(() => undefined);
    await expect(backend.drop(deployment)).resolves.toBeUndefined();
    await expect(backend.drop(identity("never-provisioned"))).resolves.toBeUndefined();
    // And after teardown a new setup starts from scratch.
    expect((await backend.provision(deployment)).created).toBe(true);
  });

  it("fails fast with a secret-free message when the server is unreachable", async () => {
    const adminUrl = "postgresql://slipway:unreachable-s3cret@127.0.0.1:1/postgres";
    const { backend } = await backendFor({ adminUrl });
    const started = Date.now();
    const error = (await backend.provision(identity()).catch((e: unknown) => e)) as Error;

    expect(error.message).toBe("cannot reach PostgreSQL at 127.0.0.1:1: connection refused");
    expect(describeDatabaseError(error, adminUrl)).toBe(error.message);
    expect(Date.now() - started).toBeLessThan(6_000);
    await expect(backend.drop(identity())).rejects.toThrow("cannot reach PostgreSQL at 127.0.0.1:1: connection refused");
  });

  it("computes the same SCRAM-SHA-256 verifier as PostgreSQL itself", async () => {
    const role = `${prefix}_scram_check`;
    const stored = await withAdmin(async (client) => {
      await client.query("SET password_encryption = 'scram-sha-256'");
      await client.query(`CREATE ROLE ${pg.escapeIdentifier(role)} PASSWORD 'pencil'`);
      const result = await client.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role]);
      return result.rows[0]!.rolpassword;
    });
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
    expect(scramSha256Verifier("pencil", { salt: Buffer.from(salt!, "base64"), iterations: Number(iterations) })).toBe(stored);
  });
});

describe("PostgreSQL backend against a server with password authentication", () => {
  let server: ScratchPostgres;
  let dataDir: string;
  let backend: DatabaseBackend;
  let logText: () => string;

  beforeAll(async () => {
    server = await startScratchPostgres();
    dataDir = await mkdtemp(path.join(tmpdir(), "slipway-test-"));
    ({ backend, logText } = await backendFor({ adminUrl: server.url, dataDir }));
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("logs in with the generated password (SCRAM) and only with it", async () => {
    const { url, name } = await backend.provision(identity("scram"));
    expect(await queryAs<{ me: string }>(url, "SELECT current_user AS me")).toEqual([{ me: name }]);

    const wrong = new URL(url);
    wrong.password = "not-the-password";
    await expect(queryAs(wrong.toString(), "SELECT 1")).rejects.toMatchObject({ code: "28P01" });
  });

  it("gives ten racing setups one database and URLs that all log in", async () => {
    const deployment = identity("race");
    const results = await Promise.all(Array.from({ length: 10 }, () => backend.provision(deployment)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    for (const result of results) {
      expect(await queryAs<{ me: string }>(result.url, "SELECT current_user AS me")).toEqual([{ me: result.name }]);
    }
  });

  it("works with an admin that is not a superuser but may create databases and roles", async () => {
    await withAdmin(
      (c) => c.query("CREATE ROLE deployer LOGIN CREATEDB CREATEROLE PASSWORD 'deployer-password'"),
      server.url,
    );
    const adminUrl = server.url.replace(`${server.adminUser}:${encodeURIComponent(server.adminPassword)}`, "deployer:deployer-password");
    const { backend: limited } = await backendFor({ adminUrl });
    const deployment = identity("limited-admin");
    const { url, name } = await limited.provision(deployment);
    expect(await queryAs<{ me: string }>(url, "SELECT current_user AS me")).toEqual([{ me: name }]);
    expect((await limited.provision(deployment)).created).toBe(false);
    await limited.drop(deployment);
    const left = await withAdmin((c) => c.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]), server.url);
    expect(left.rowCount).toBe(0);
  });

  it("works through the server's unix socket, and so do the URLs it hands out", async () => {
    const adminUrl = `postgresql:///postgres?host=${encodeURIComponent(server.socketDir)}&port=${server.port}&user=${server.adminUser}&password=${encodeURIComponent(server.adminPassword)}`;
    const { backend: viaSocket, logText: socketLog } = await backendFor({ adminUrl });
    const { url, name } = await viaSocket.provision(identity("socket"));
    expect(new URL(url).searchParams.get("host")).toBe(server.socketDir);
    expect(await queryAs<{ me: string; tcp: boolean }>(url, "SELECT current_user AS me, inet_server_addr() IS NOT NULL AS tcp")).toEqual([
      { me: name, tcp: false },
    ]);
    expect(socketLog()).not.toContain(server.adminPassword);
  });

  it("reports wrong admin credentials without the password", async () => {
    const adminUrl = server.url.replace(encodeURIComponent(server.adminPassword), "wrong-admin-s3cret");
    const { backend: misconfigured, logText: misconfiguredLog } = await backendFor({ adminUrl });
    const error = (await misconfigured.provision(identity()).catch((e: unknown) => e)) as Error;

    expect(error.message).toBe(`authentication failed for user "admin" at 127.0.0.1:${server.port}`);
    expect(describeDatabaseError(error, adminUrl)).toBe(error.message);
    for (const text of [error.message, misconfiguredLog()]) {
      expect(text).not.toContain("wrong-admin-s3cret");
      expect(text).not.toContain(server.adminPassword);
    }
  });

  it("kept every generated password out of its server log", async () => {
    const deployment = identity("scram");
    const { url } = await backend.provision(deployment);
    const serverLog = await readFrom(server.logFile, 0, (text) => text.includes("ALTER ROLE"));
    expect(serverLog).toContain("CREATE ROLE");
    for (const secret of [...secretsOf(url), server.adminPassword]) {
      expect(serverLog).not.toContain(secret);
      expect(logText()).not.toContain(secret);
    }
  });
});

async function createForeignDatabase(name: string): Promise<void> {
  await withAdmin((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
}

/**
 * The file from `offset` on, once `ready` says the awaited lines were written (PostgreSQL logs
 * asynchronously to it): read again as the file changes (fs.watch), and as it is after 5 s at the latest.
 */
async function readFrom(file: string, offset: number, ready: (text: string) => boolean): Promise<string> {
  const read = async () => {
    const handle = await open(file, "r");
    try {
      const { size } = await handle.stat();
      const buffer = Buffer.alloc(Math.max(0, size - offset));
      await handle.read(buffer, 0, buffer.length, offset);
      return buffer.toString("utf8");
    } finally {
      await handle.close();
    }
  };
  return waitForChanges(file, async () => {
    const text = await read();
    return ready(text) ? text : undefined;
  }, { what: `the awaited lines in ${file}`, timeoutMs: 5_000 }).catch(read);
}
