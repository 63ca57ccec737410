import { access, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabaseBackend,
  secretsOf,
  type DatabaseBackend,
  type DeploymentIdentity,
  type ProvisionedDatabase,
} from "../../../src/listener/database/database-backend.js";
import { captureLog } from "./capture-log.js";

// One data folder for the file: the template (one initdb) is made once and copied after.
let dataDir: string;
const backends: DatabaseBackend[] = [];
const captured = captureLog();
const measurements: Record<string, number | string> = {};

function backend(): DatabaseBackend {
  const created = createDatabaseBackend({ dataDir, log: captured.log });
  backends.push(created);
  return created;
}

function identity(environment: string): DeploymentIdentity {
  return { installationId: 77, repository: "octo-org/embedded", environment };
}

interface WorkerOutcome {
  ok: boolean;
  database?: ProvisionedDatabase;
  ms?: number;
  error?: string;
}

/** Runs the backend in a worker thread, as the listener's Bree jobs do. */
async function inWorker(deployment: DeploymentIdentity, action: "provision" | "drop"): Promise<WorkerOutcome> {
  const worker = new Worker(new URL("./fixtures/provision-in-worker.mjs", import.meta.url), {
    workerData: { dataDir, identity: deployment, action },
  });
  try {
    return await new Promise<WorkerOutcome>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  } finally {
    await worker.terminate();
  }
}

async function provisionInWorker(deployment: DeploymentIdentity): Promise<ProvisionedDatabase & { ms: number }> {
  const outcome = await inWorker(deployment, "provision");
  if (!outcome.ok || !outcome.database) throw new Error(`provision in worker failed: ${outcome.error}`);
  return { ...outcome.database, ms: outcome.ms ?? 0 };
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "slipway-embedded-test-"));
});

afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
  await rm(dataDir, { recursive: true, force: true });
  // What the report quotes; printed, not asserted: the numbers depend on the machine.
  process.stdout.write(`embedded database measurements: ${JSON.stringify(measurements)}\n`);
});

describe("embedded backend", () => {
  it("sets up in a worker thread and serves the database to many clients at once", async () => {
    const deployment = identity("production");
    const provisioned = await provisionInWorker(deployment);
    measurements.firstProvisionMs = Math.round(provisioned.ms);
    expect(provisioned.created).toBe(true);
    expect(provisioned.url).toMatch(/^postgresql:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/);

    const main = backend();
    const again = await main.provision(deployment);
    expect(again).toEqual({ url: provisioned.url, created: false, name: provisioned.name });

    const rssBefore = process.memoryUsage().rss;
    let started = performance.now();
    const url = await main.connect(deployment, provisioned.url);
    measurements.firstConnectMs = Math.round(performance.now() - started);
    expect(url).toBe(provisioned.url);
    expect(await main.connect(deployment, provisioned.url)).toBe(url);
    await withClient(url, (c) => c.query("SELECT 1"));
    // The first database served in a process also pays for compiling PGlite's WebAssembly.
    measurements.rssAfterFirstServedMB = Math.round((process.memoryUsage().rss - rssBefore) / 1e6);

    const pool = new pg.Pool({ connectionString: url, max: 8 });
    try {
      await pool.query("CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)");
      // Multi-megabyte parameters arrive in many reads, while other clients' small queries
      // arrive whole: no client's Parse/Bind may meet another's, no client another's answer.
      started = performance.now();
      const size = (i: number) => (i % 2 ? 4_000_000 + i : i);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2
            ? pool.query<{ id: number; length: number }>("INSERT INTO items VALUES ($1, $2) RETURNING id, length(body) AS length", [i, "x".repeat(size(i))])
            : pool.query<{ id: number; length: number }>(`SELECT $1::int AS id, ${i} + 0 AS length`, [i]),
        ),
      );
      measurements.twentyMixedQueriesWith4MBParametersMs = Math.round(performance.now() - started);
      answers.forEach((answer, i) => expect(answer.rows).toEqual([{ id: i, length: size(i) }]));

      // Transactions from eight clients at once: each sees its own work, all of it commits.
      const counts = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const client = await pool.connect();
          try {
            await client.query("BEGIN");
            await client.query("INSERT INTO items VALUES ($1, $2)", [1000 + i, `tx ${i}`]);
            const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM items WHERE body = $1", [`tx ${i}`]);
            await client.query(i === 7 ? "ROLLBACK" : "COMMIT");
            return rows[0]?.n;
          } finally {
            client.release();
          }
        }),
      );
      expect(counts).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM items");
      expect(rows).toEqual([{ n: 10 + 7 }]);
    } finally {
      await pool.end();
    }

    // Two clients may both name a prepared statement "q": each gets its own.
    await withClient(url, async (a) => {
      await withClient(url, async (b) => {
        const [ra, rb] = await Promise.all([
          a.query({ name: "q", text: "SELECT 'a' AS who" }),
          b.query({ name: "q", text: "SELECT 'b' AS who" }),
        ]);
        const [ra2, rb2] = await Promise.all([
          a.query({ name: "q", text: "SELECT 'a' AS who" }),
          b.query({ name: "q", text: "SELECT 'b' AS who" }),
        ]);
        expect([ra.rows, rb.rows, ra2.rows, rb2.rows]).toEqual([[{ who: "a" }], [{ who: "b" }], [{ who: "a" }], [{ who: "b" }]]);
      });
    });
  });

  it("keeps the data and the URL across a close and a restart", async () => {
    const deployment = identity("restart");
    const first = backend();
    const { url } = await first.provision(deployment);
    expect(await first.connect(deployment, url)).toBe(url);
    await withClient(url, (c) => c.query("CREATE TABLE IF NOT EXISTS survivors (name text); INSERT INTO survivors VALUES ('kept')"));
    await first.close();
    await expect(withClient(url, (c) => c.query("SELECT 1"))).rejects.toThrow();

    const restarted = backend();
    expect(await restarted.connect(deployment, url)).toBe(url);
    const { rows } = await withClient(url, (c) => c.query("SELECT name FROM survivors"));
    expect(rows).toEqual([{ name: "kept" }]);

    // One PGlite per data folder: a second instance may neither serve nor drop it meanwhile.
    const intruder = backend();
    await expect(intruder.connect(deployment, url)).rejects.toThrow(/already served by another listener in this process/);
    await expect(intruder.drop(deployment)).rejects.toThrow(/already served/);
  });

  it("refuses a client without the deployment's password", async () => {
    const deployment = identity("staging");
    const main = backend();
    const { url } = await main.provision(deployment);
    await main.connect(deployment, url);
    const wrong = new URL(url);
    wrong.password = "guess";
    await expect(withClient(wrong.toString(), (c) => c.query("SELECT 1"))).rejects.toMatchObject({ code: "28P01" });
    expect(secretsOf(url)).toContain(decodeURIComponent(new URL(url).password));
    for (const secret of secretsOf(url)) expect(captured.text()).not.toContain(secret);
  });

  it("refuses COPY FROM STDIN (which would end PGlite and the process) and keeps serving", async () => {
    const deployment = identity("copy");
    const main = backend();
    const { url } = await main.provision(deployment);
    await main.connect(deployment, url);
    await withClient(url, async (client) => {
      await client.query("CREATE TABLE lines (body text)");
      await expect(client.query("COPY lines FROM STDIN")).rejects.toMatchObject({ code: "0A000" });
      // The extended protocol (pg sends a parameterless query as a simple Query unless told).
      await expect(client.query({ text: "/* x */ copy public.lines (body) from stdin", queryMode: "extended" } as pg.QueryConfig)).rejects.toMatchObject({ code: "0A000" });
      // FROM STDOUT is PostgreSQL's synonym of FROM STDIN.
      await expect(client.query("COPY lines FROM STDOUT")).rejects.toMatchObject({ code: "0A000" });
      await client.query("BEGIN");
      await expect(client.query("INSERT INTO lines VALUES ('a'); COPY lines FROM STDIN")).rejects.toMatchObject({ code: "0A000" });
      await client.query("INSERT INTO lines VALUES ('in transaction')");
      await client.query("COMMIT");
      const { rows } = await client.query("SELECT $$copy x from stdin$$ AS text, body FROM lines -- copy from stdin");
      expect(rows).toEqual([{ text: "copy x from stdin", body: "in transaction" }]);
      const copied = await client.query("COPY (SELECT 1) TO STDOUT");
      expect(copied.command).toBe("COPY");
    });
  });

  it("does not let a misbehaving client take the shared backend down", async () => {
    const deployment = identity("hostile-client");
    const main = backend();
    const { url } = await main.provision(deployment);
    await main.connect(deployment, url);

    // Startup parameters are not passed on: replication mode would break every client.
    const replication = new pg.Client({ connectionString: url, replication: "database" } as pg.ClientConfig);
    replication.on("error", () => undefined);
    await replication.connect();
    await replication.end();
    // Message types PostgreSQL would end the session for (PGlite: the process) close that client only.
    for (const bad of [frontendMessage("y", Buffer.from([1, 2, 3])), frontendMessage("D", Buffer.alloc(20_000, 65)), frontendMessage("p", Buffer.from("x\0"))]) {
      expect(await sendAfterLogin(url, bad)).toMatch(/^E.*08P01/s);
    }
    await withClient(url, async (client) => {
      expect((await client.query("SELECT $1::text AS still", ["serving"])).rows).toEqual([{ still: "serving" }]);
    });
  });

  it("makes one database when setups of one deployment race", async () => {
    const deployment = identity("pr-5");
    const results = await Promise.all(Array.from({ length: 5 }, () => backend().provision(deployment)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.url)).size).toBe(1);
  });

  it("stops serving and deletes the folder on drop, idempotently", async () => {
    const deployment = identity("pr-6");
    const main = backend();
    const provisioned = await main.provision(deployment);
    const folder = path.join(dataDir, "databases", provisioned.name);
    const url = await main.connect(deployment, provisioned.url);
    const app = new pg.Client({ connectionString: url });
    const appClosed = new Promise<void>((resolve) => app.on("end", () => resolve()));
    app.on("error", () => undefined);
    await app.connect();
    await app.query("SELECT 1");

    // A worker thread must not delete the folder the main thread is serving.
    const fromWorker = await inWorker(deployment, "drop");
    expect(fromWorker).toMatchObject({ ok: false, error: expect.stringMatching(/already served by another listener in this process/) });
    await access(folder);

    await main.drop(deployment);

    await appClosed;
    await expect(access(folder)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(main.drop(deployment)).resolves.toBeUndefined();
    await expect(main.connect(deployment, url)).rejects.toThrow(/is not set up yet/);
    expect((await main.provision(deployment)).created).toBe(true);
  });

  it("measures what each served database costs", async () => {
    const main = backend();
    const provisionMs: number[] = [];
    const connectMs: number[] = [];
    const environments = ["m-1", "m-2", "m-3"];
    const before = process.memoryUsage().rss;
    for (const environment of environments) {
      const deployment = identity(environment);
      let started = performance.now();
      const { url } = await main.provision(deployment);
      provisionMs.push(performance.now() - started);
      started = performance.now();
      await main.connect(deployment, url);
      connectMs.push(performance.now() - started);
      await withClient(url, (c) => c.query("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10000) g"));
    }
    measurements.provisionFromTemplateMs = provisionMs.map(Math.round).join(", ");
    measurements.connectMs = connectMs.map(Math.round).join(", ");
    measurements.rssPerAdditionalServedDatabaseMB = Math.round((process.memoryUsage().rss - before) / 1e6 / environments.length);
    expect(connectMs).toHaveLength(environments.length);
  });
});

function frontendMessage(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** Logs in over a raw socket, sends `message`, and returns what the server answered until it closed the connection. */
async function sendAfterLogin(url: string, message: Buffer): Promise<string> {
  const { hostname, port, password } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  let received = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const waitFor = async (predicate: (data: Buffer) => boolean) => {
    while (!predicate(received)) await new Promise((resolve) => socket.once("data", resolve));
  };
  socket.on("data", (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  await new Promise((resolve) => socket.once("connect", resolve));
  const parameters = Buffer.from("user\0postgres\0database\0postgres\0\0");
  const startup = Buffer.alloc(8);
  startup.writeInt32BE(8 + parameters.length, 0);
  startup.writeInt32BE(196608, 4);
  socket.write(Buffer.concat([startup, parameters]));
  await waitFor((data) => data.length >= 9);
  socket.write(frontendMessage("p", Buffer.from(`${decodeURIComponent(password)}\0`)));
  await waitFor((data) => data.includes(Buffer.from("Z\0\0\0\x05")));
  received = Buffer.alloc(0);
  socket.write(message);
  await closed;
  return received.toString("latin1");
}
