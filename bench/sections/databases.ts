/**
 * 7. Databases without SLIPWAY_DATABASE_URL: the database part of a listener, alone in a
 * child process (bench/lib/database-listener-child.ts), sets up ten deployments' databases
 * as first revisions do; this process then holds one open connection to each.
 * - setup time of a first revision's database (provision + connect) against a bare
 *   `CREATE DATABASE` (connect as admin, create, disconnect) on the same server;
 * - memory: the listener process's RSS, and the database server processes it started
 *   (RSS and PSS summed over them: PSS shares shared memory fairly, RSS counts it per process).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { BENCH_DIR, type BenchEnvironment } from "../lib/bench-environment.js";
import { readProcessMemory } from "../lib/process-memory.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median } from "../lib/stats.js";

const SECTION = "7. databases (no SLIPWAY_DATABASE_URL: ten deployments, one open connection each)";
const MIB = 1024 * 1024;

interface ChildReport {
  openMs: number;
  setups: Array<{ setupMs: number; bareCreateMs: number; url: string }>;
}

export async function benchDatabases(env: Pick<BenchEnvironment, "say">): Promise<{ rows: ResultRow[]; details: unknown }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "slipway-bench-databases-"));
  try {
    const first = await runOnce(dataDir);
    env.say(`databases: opened in ${Math.round(first.report.openMs)} ms (fresh data folder)`);
    // A restart on the same data folder: what a listener's later starts cost.
    const again = await runOnce(dataDir, { measureOnlyOpen: true });
    env.say(`databases: reopened in ${Math.round(again.report.openMs)} ms (same data folder)`);

    const setups = first.report.setups;
    const warm = setups.slice(1);
    const setupMs = median(warm.map((s) => s.setupMs));
    const bareMs = median(warm.map((s) => s.bareCreateMs));
    const rows: ResultRow[] = [
      {
        section: SECTION,
        figure: "first-revision database setup (median of deployments 2-10)",
        unit: "ms",
        slipway: round(setupMs),
        baseline: round(bareMs),
        baselineIs: "bare CREATE DATABASE on the same server (connect, create, disconnect)",
        ratio: ratioOf(setupMs, bareMs),
        goal: "—",
        met: null,
        note: `the first deployment took ${round(setups[0]?.setupMs ?? NaN)} ms (bare ${round(setups[0]?.bareCreateMs ?? NaN)} ms)`,
      },
      { section: SECTION, figure: "backend open, fresh data folder", unit: "ms", slipway: round(first.report.openMs), baseline: null, ratio: null, goal: "—", met: null },
      { section: SECTION, figure: "backend open, same data folder again", unit: "ms", slipway: round(again.report.openMs), baseline: null, ratio: null, goal: "—", met: null },
      { section: SECTION, figure: "listener process RSS", unit: "MiB", slipway: round(first.memory.listenerRss / MIB), baseline: null, ratio: null, goal: "—", met: null },
      {
        section: SECTION,
        figure: "database server processes, RSS summed (PSS summed)",
        unit: "MiB",
        slipway: round(first.memory.serverRss / MIB),
        baseline: null,
        ratio: null,
        goal: "—",
        met: null,
        note: `${first.memory.serverProcesses} processes; PSS ${round(first.memory.serverPss / MIB)} MiB`,
      },
    ];
    return { rows, details: { first, again: again.report.openMs } };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function runOnce(dataDir: string, options: { measureOnlyOpen?: boolean } = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(BENCH_DIR, "lib", "database-listener-child.ts")], {
    env: { ...process.env, SLIPWAY_BENCH_DATA_DIR: dataDir, SLIPWAY_BENCH_DEPLOYMENTS: options.measureOnlyOpen ? "0" : "10" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const clients: pg.Client[] = [];
  try {
    const lines = createInterface({ input: child.stdout });
    const [line] = (await Promise.race([once(lines, "line"), once(child, "exit").then(() => { throw new Error("the database child exited early"); })])) as [string];
    const report = JSON.parse(line) as ChildReport;
    for (const setup of report.setups) {
      const client = new pg.Client({ connectionString: setup.url });
      await client.connect();
      await client.query("SELECT 1");
      clients.push(client);
    }
    // Measured once every connection is open and has answered a query: each deployment's server process serves one.
    const memory = await memoryOf(child.pid!);
    for (const client of clients.splice(0)) await client.end();
    child.stdin.end();
    await once(child, "exit");
    return { report: { ...report, setups: report.setups.map(({ setupMs, bareCreateMs }) => ({ setupMs, bareCreateMs, url: "" })) }, memory };
  } finally {
    for (const client of clients) await client.end().catch(() => undefined);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

/** The child's RSS, and RSS/PSS summed over its descendants (the database servers it started). */
async function memoryOf(pid: number) {
  const listenerRss = (await readProcessMemory(pid))?.rss ?? NaN;
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid) parents.set(Number(entry), ppid);
  }
  const descends = (p: number): boolean => {
    for (let q = parents.get(p); q; q = parents.get(q)) if (q === pid) return true;
    return false;
  };
  let serverRss = 0;
  let serverPss = 0;
  let serverProcesses = 0;
  for (const p of parents.keys()) {
    if (!descends(p)) continue;
    const rollup = await readFile(`/proc/${p}/smaps_rollup`, "utf8").catch(() => "");
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0) * 1024;
    serverRss += kib("Rss");
    serverPss += kib("Pss");
    serverProcesses++;
  }
  return { listenerRss, serverRss, serverPss, serverProcesses };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
