/**
 * The database part of a listener, alone in a process, for the databases section:
 * opens the default (embedded) backend in `SLIPWAY_BENCH_DATA_DIR`, sets up ten
 * deployments' databases the way a first revision does (provision, then connect),
 * each paired with a bare `CREATE DATABASE` on the same server, prints one JSON line
 * with the timings and the URLs, then waits: closing its stdin closes the backend.
 */
import pg from "pg";
import pino from "pino";
import { openBenchDatabaseBackend } from "./open-bench-database-backend.js";

const dataDir = process.env.SLIPWAY_BENCH_DATA_DIR;
if (!dataDir) throw new Error("SLIPWAY_BENCH_DATA_DIR is required");
const count = Number(process.env.SLIPWAY_BENCH_DEPLOYMENTS ?? 10);
const log = pino({ level: "warn" });

const openStarted = performance.now();
const { backend, adminUrlFor } = await openBenchDatabaseBackend({ dataDir, log });
const openMs = performance.now() - openStarted;

const setups: Array<{ setupMs: number; bareCreateMs: number; url: string }> = [];
for (let i = 0; i < count; i++) {
  const identity = { installationId: 1, repository: `bench/app${i}`, environment: "production" };
  const started = performance.now();
  const provisioned = await backend.provision(identity);
  const url = await backend.connect(identity, provisioned.url);
  const setupMs = performance.now() - started;

  // The baseline: connect as the server's admin, CREATE DATABASE, disconnect.
  const bareStarted = performance.now();
  const admin = new pg.Client({ connectionString: adminUrlFor(url) });
  await admin.connect();
  await admin.query(`CREATE DATABASE bare_${i}_${Date.now()}`);
  await admin.end();
  const bareCreateMs = performance.now() - bareStarted;
  setups.push({ setupMs, bareCreateMs, url });
}

process.stdout.write(`${JSON.stringify({ openMs, setups })}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  void backend.close().then(() => process.exit(0));
});
