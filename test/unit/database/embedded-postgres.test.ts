/**
 * The default without SLIPWAY_DATABASE_URL: one real PostgreSQL server per listener,
 * started from its data folder (a 0700 mkdtemp folder here, which as root only works
 * because the server runs in a user namespace), deployments' databases made through the
 * external-server code, the same cluster found again after a restart.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabaseBackend, type DeploymentIdentity } from "../../../src/listener/database/database-backend.js";
import { captureLog } from "./capture-log.js";

const shop: DeploymentIdentity = { installationId: 7, repository: "acme/shop", environment: "production" };
const blog: DeploymentIdentity = { installationId: 7, repository: "acme/blog", environment: "pr-3" };

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe("the embedded PostgreSQL server", () => {
  let root: string;
  let dataDir: string;
  let backend: Awaited<ReturnType<typeof openDatabaseBackend>>;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "slipway-embedded-pg-"));
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    dataDir = path.join(root, "data");
    backend = await openDatabaseBackend({ dataDir, log: captureLog().log, namePrefix: "embtest" });
  });

  afterAll(async () => {
    await backend?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("runs from a 0700 folder, keeps its cluster and a 0600 admin password in the data folder", async () => {
    expect(backend.kind).toBe("embedded");
    expect(new URL(backend.adminUrl).hostname).toBe("127.0.0.1");
    expect((await stat(path.join(dataDir, "postgres", "admin-password"))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dataDir, "postgres", "cluster", "PG_VERSION"))).isFile()).toBe(true);
    const rows = await query(backend.adminUrl, "SELECT datname FROM pg_database WHERE datname IN ('postgres', 'template1') AND has_database_privilege('public', oid, 'CONNECT')");
    expect(rows).toEqual([]);
  });

  it("creates a deployment's database once, reuses it, and serves real concurrent connections and extensions", async () => {
    const first = await backend.provision(shop);
    expect(first.created).toBe(true);
    const again = await backend.provision(shop);
    expect(again).toMatchObject({ created: false, url: first.url, name: first.name });
    const url = await backend.connect(shop, first.url);
    expect(url).toBe(first.url);
    await query(url, "CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE visits (n int); INSERT INTO visits VALUES (1)");
    const clients = await Promise.all(
      [1, 2, 3].map(async () => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        return client;
      }),
    );
    const counts = await Promise.all(clients.map((c) => c.query("SELECT count(*)::int AS n, length(gen_random_uuid()::text) AS l FROM visits")));
    expect(counts.map((r) => r.rows[0])).toEqual([{ n: 1, l: 36 }, { n: 1, l: 36 }, { n: 1, l: 36 }]);
    await Promise.all(clients.map((c) => c.end()));
  });

  it("gives a deployment's role no server-side programs or files: COPY PROGRAM and COPY to a file are refused by PostgreSQL", async () => {
    const { url } = await backend.provision(shop);
    for (const statement of [
      "COPY (SELECT 1) TO PROGRAM 'id'",
      "COPY (SELECT 1) TO '/tmp/slipway-copy-test'",
      "CREATE TEMP TABLE t (line text); COPY t FROM '/etc/passwd'",
      "DO $$ BEGIN EXECUTE 'CO' || 'PY (SELECT 1) TO PROG' || 'RAM ''id'''; END $$",
      "SELECT pg_read_file('/etc/passwd')",
    ]) {
      await expect(query(url, statement), statement).rejects.toMatchObject({ code: "42501" });
    }
  });

  it("keeps deployments apart: one deployment's role cannot connect to the other's database", async () => {
    const a = await backend.provision(shop);
    const b = await backend.provision(blog);
    const crossed = new URL(a.url);
    crossed.pathname = `/${b.name}`;
    await expect(query(crossed.toString(), "SELECT 1")).rejects.toThrow(/permission denied for database/);
    const intoPostgres = new URL(a.url);
    intoPostgres.pathname = "/postgres";
    await expect(query(intoPostgres.toString(), "SELECT 1")).rejects.toThrow(/permission denied for database/);
    await expect(query(b.url, "SELECT 1 AS one")).resolves.toEqual([{ one: 1 }]);
  });

  it("drops a database while a connection to it is open", async () => {
    const { url, name } = await backend.provision(blog);
    const open = new pg.Client({ connectionString: url });
    open.on("error", () => undefined);
    await open.connect();
    await backend.drop(blog);
    await expect(open.query("SELECT 1")).rejects.toThrow();
    await open.end().catch(() => undefined);
    const left = await query(backend.adminUrl, `SELECT 1 FROM pg_database WHERE datname = '${name}' UNION ALL SELECT 1 FROM pg_roles WHERE rolname = '${name}'`);
    expect(left).toEqual([]);
    await backend.drop(blog); // idempotent
  });

  it("finds the same cluster, port and data again after a restart", async () => {
    const before = await backend.provision(shop);
    const port = new URL(backend.adminUrl).port;
    await backend.close();
    backend = await openDatabaseBackend({ dataDir, log: captureLog().log, namePrefix: "embtest" });
    expect(new URL(backend.adminUrl).port).toBe(port);
    const url = await backend.connect(shop, before.url);
    expect(url).toBe(before.url);
    await expect(query(url, "SELECT count(*)::int AS n FROM visits")).resolves.toEqual([{ n: 1 }]);
  });
});

describe("connecting a later revision", () => {
  it("sets a deployment up again once per server start (a moved port heals), then takes its URL as it is", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "slipway-embedded-pg-connect-"));
    const captured = captureLog();
    const backend = await openDatabaseBackend({ dataDir: path.join(root, "data"), log: captured.log, namePrefix: "embconn" });
    try {
      const identity: DeploymentIdentity = { installationId: 7, repository: "acme/connect", environment: "production" };
      const provisioned = await backend.provision(identity);
      const adoptions = () => captured.text().split("deployment database adopted").length - 1;
      const before = adoptions();

      expect(await backend.connect(identity, provisioned.url)).toBe(provisioned.url);
      expect(adoptions()).toBe(before); // no admin session for a deployment already set up

      const stale = new URL(provisioned.url);
      stale.port = "1"; // the port of an earlier day
      expect(await backend.connect(identity, stale.toString())).toBe(provisioned.url);
      expect(adoptions()).toBe(before + 1);
    } finally {
      await backend.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("databases of the earlier PGlite backend", () => {
  it("make the listener refuse to start, saying what it found, where, and what to do", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "slipway-pglite-left-"));
    try {
      await mkdir(path.join(dataDir, "databases", "slipway_abc"), { recursive: true });
      await writeFile(path.join(dataDir, "databases", "slipway_abc", "deployment.json"), "{}");
      const error = await openDatabaseBackend({ dataDir, log: captureLog().log }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error?.message).toContain(`found 1 embedded database of an earlier Slipway (PGlite) in ${path.join(dataDir, "databases")}`);
      expect(error?.message).toContain("slipway_abc");
      expect(error?.message).toContain(`mv ${path.join(dataDir, "databases")}`);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
