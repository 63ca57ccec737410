/**
 * 4. State store: the cost of one `store.update` and of `openStateStore` (start-up) with
 * 1,000, 10,000 and 100,000 revisions behind it. The histories are made the way the
 * control plane makes them: `createRevision` inside `store.update`, each revision then
 * finished, so the store's own archiving moves all but the newest 20 per deployment out
 * of the state file.
 */
import { mkdir, mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { createRevision, type RevisionRequest } from "../../src/control-plane/create-revision.js";
import type { Revision, StateDocument } from "../../src/store/model.js";
import { KEEP_FINISHED_REVISIONS, openStateStore, type StateStore } from "../../src/store/open-state-store.js";
import type { BenchEnvironment } from "../lib/bench-environment.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median, percentile } from "../lib/stats.js";

const SECTION = "4. state store";
const DEPLOYMENTS = 50;
/** Revisions made per `store.update` while building a history through the store's own archiving. */
const BATCH = 100;
/** Revisions made per `store.update` while importing the rest of a history. */
const IMPORT_BATCH = 1_000;
/** Up to this many revisions are archived by the store itself (its speed is measured); the rest is imported. */
const ARCHIVED_BY_STORE = { quick: 1_500, full: 2_000 };
const log = pino({ level: "silent" });

interface SizeResult {
  revisions: number;
  generateSeconds: number;
  liveRevisions: number;
  archivedFiles: number;
  stateFileBytes: number;
  openMs: number;
  openSamples: number[];
  updateMedianMs: number;
  updateP99Ms: number;
  archivedListMs: number;
}

export async function benchStateStore(env: BenchEnvironment): Promise<{ rows: ResultRow[]; details: unknown }> {
  const sizes = env.quick ? [1_000, 5_000, 10_000] : [1_000, 10_000, 100_000];
  const archivedByStore = env.quick ? ARCHIVED_BY_STORE.quick : ARCHIVED_BY_STORE.full;
  const repetitions = { open: env.quick ? 5 : 20, update: env.quick ? 40 : 200, list: env.quick ? 3 : 5 };
  const results: SizeResult[] = [];
  // One history, grown from one size to the next, measured at each.
  const dataDir = await mkdtemp(path.join(env.tmpRoot, "store-"));
  let made = 0;
  let archiving: { revisions: number; seconds: number } | undefined;
  for (const size of sizes) {
    const started = performance.now();
    if (made < archivedByStore) {
      const upTo = Math.min(size, archivedByStore);
      const before = await countFiles(path.join(dataDir, "archive"));
      await extendHistory(dataDir, made, upTo);
      const seconds = (performance.now() - started) / 1000;
      const archived = (await countFiles(path.join(dataDir, "archive"))) - before;
      if (archived > 0) archiving = { revisions: archived, seconds };
      made = upTo;
    }
    if (made < size) await importHistory(dataDir, made, size);
    made = size;
    const generateSeconds = Math.round((performance.now() - started) / 100) / 10;

    // Warm up the code paths once, then measure start-up.
    await openStateStore({ dataDir, log });
    const openSamples: number[] = [];
    let store: StateStore | undefined;
    for (let i = 0; i < repetitions.open; i++) {
      const t = performance.now();
      store = await openStateStore({ dataDir, log });
      openSamples.push(performance.now() - t);
    }
    const opened = store!;
    const live = Object.keys(opened.state.revisions);

    // One typical write: a revision's progress changes.
    const updateSamples: number[] = [];
    for (let i = 0; i < repetitions.update; i++) {
      const id = live[i % live.length]!;
      const t = performance.now();
      await opened.update((state) => {
        state.revisions[id]!.updatedAt = new Date().toISOString();
      });
      updateSamples.push(performance.now() - t);
    }

    // What a deployment's status page and /api/v1/deployments/<id> read: its archived revisions.
    const deploymentId = Object.keys(opened.state.deployments)[0]!;
    const listSamples: number[] = [];
    for (let i = 0; i < repetitions.list; i++) {
      const t = performance.now();
      await opened.archivedRevisions(deploymentId, 50);
      listSamples.push(performance.now() - t);
    }

    const result: SizeResult = {
      revisions: size,
      generateSeconds,
      liveRevisions: live.length,
      archivedFiles: await countFiles(path.join(dataDir, "archive")),
      stateFileBytes: (await stat(opened.file)).size,
      openMs: median(openSamples),
      openSamples: openSamples.map((v) => Math.round(v * 100) / 100),
      updateMedianMs: median(updateSamples),
      updateP99Ms: percentile(updateSamples, 99),
      archivedListMs: median(listSamples),
    };
    results.push(result);
    env.say(
      `store with ${size} revisions (made in ${generateSeconds} s; ${result.liveRevisions} live, ${result.archivedFiles} archived, state file ${Math.round(result.stateFileBytes / 1024)} KiB): ` +
        `open ${result.openMs.toFixed(1)} ms, update ${result.updateMedianMs.toFixed(2)} ms (p99 ${result.updateP99Ms.toFixed(1)}), archived list ${result.archivedListMs.toFixed(1)} ms`,
    );
  }

  const base = results[0]!;
  const largest = results.at(-1)!;
  const rows: ResultRow[] = [];
  const add = (figure: string, pick: (r: SizeResult) => number, goal: boolean, note?: string) => {
    for (const result of results) {
      const isBase = result === base;
      const isGoal = goal && result === largest;
      const ratio = isBase ? null : ratioOf(pick(result), pick(base));
      rows.push({
        section: SECTION,
        figure: `${figure}, ${result.revisions.toLocaleString("en")} revisions behind it`,
        unit: "ms",
        slipway: pick(result),
        baseline: isBase ? null : pick(base),
        baselineIs: isBase ? undefined : `${base.revisions.toLocaleString("en")}`,
        ratio,
        goal: isGoal ? `≤ 2× the ${base.revisions.toLocaleString("en")} figure` : "",
        met: isGoal && ratio !== null ? ratio <= 2 : null,
        note: isGoal ? note : undefined,
      });
    }
  };
  const sizesNote = `state file ${results.map((r) => `${Math.round(r.stateFileBytes / 1024)} KiB`).join(" / ")}, live revisions ${results.map((r) => r.liveRevisions).join(" / ")}`;
  add("start-up (openStateStore, median)", (r) => r.openMs, true, sizesNote);
  add("one store.update (median)", (r) => r.updateMedianMs, true, `p99 ${results.map((r) => r.updateP99Ms.toFixed(1)).join(" / ")} ms`);
  add("archived revisions of one deployment (store.archivedRevisions, 50 newest)", (r) => r.archivedListMs, false);
  const last = rows.at(-1)!;
  last.note = `what /api/v1/deployments/<id> reads; it reads every archived file of the deployment (${results.map((r) => Math.round(r.archivedFiles / DEPLOYMENTS)).join(" / ")} per deployment) to return 50`;
  if (archiving) {
    rows.push({
      section: SECTION,
      figure: "archiving by the store (background, per revision archived)",
      unit: "ms",
      slipway: (archiving.seconds * 1000) / archiving.revisions,
      baseline: null,
      ratio: null,
      goal: "",
      met: null,
      note: `${archiving.revisions} revisions made through store.update and archived by the store in ${archiving.seconds.toFixed(1)} s (one mkdir + write + rename after another); beyond ${archivedByStore.toLocaleString("en")} revisions the benchmark writes the archive files itself, in the same layout`,
    });
  }
  return { rows, details: { deployments: DEPLOYMENTS, keptPerDeployment: KEEP_FINISHED_REVISIONS, archivedByStore: archiving, results } };
}

/**
 * Adds finished revisions across DEPLOYMENTS deployments until `size` exist, through the
 * store, and waits for the store's own archiving to move them out of the state file.
 */
async function extendHistory(dataDir: string, from: number, size: number): Promise<void> {
  const store = await openStateStore({ dataDir, log });
  let made = from;
  while (made < size) {
    await store.update((state) => {
      for (let i = 0; i < BATCH && made < size; i++, made++) finish(state, createRevision(state, request(made)).revision);
    });
  }
  // Archiving starts on every 50th write and runs in the background: write 50 times, then
  // let it work until every deployment is down to the revisions it keeps.
  const limit = DEPLOYMENTS * KEEP_FINISHED_REVISIONS;
  const deadline = Date.now() + 30 * 60_000;
  const live = () => Object.keys(store.state.revisions).length;
  while (live() > limit) {
    for (let i = 0; i < 50; i++) await store.update(() => undefined);
    // An archiving run ends with every deployment at its limit (nothing new is finishing).
    while (live() > limit && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (Date.now() > deadline) throw new Error(`the store did not archive: ${live()} revisions still live`);
  }
  // The archiver's own write may still be landing: one more write carries its result.
  await store.update(() => undefined);
}

/**
 * The same history, faster: revisions are made with createRevision inside store.update as
 * above, but the benchmark moves the ones beyond the newest KEEP_FINISHED_REVISIONS per
 * deployment to `archive/<deployment>/<revision>.json` itself, many files at a time, as
 * open-state-store.ts's archiveOldRevisions lays them out (it writes one file after
 * another, which would take minutes for 100,000 revisions here). Neither start-up nor
 * `update` reads the archive, so who wrote the files does not change what is measured
 * (nor does skipping the store's temp-file-and-rename, which only matters in a crash).
 */
async function importHistory(dataDir: string, from: number, size: number): Promise<void> {
  const store = await openStateStore({ dataDir, log });
  const archiveDir = path.join(dataDir, "archive");
  let made = from;
  while (made < size) {
    const old = await store.update((state) => {
      for (let i = 0; i < IMPORT_BATCH && made < size; i++, made++) finish(state, createRevision(state, request(made)).revision);
      const byDeployment = new Map<string, Revision[]>();
      for (const revision of Object.values(state.revisions)) {
        const list = byDeployment.get(revision.deploymentId) ?? [];
        list.push(revision);
        byDeployment.set(revision.deploymentId, list);
      }
      return [...byDeployment.values()].flatMap((list) => list.sort((a, b) => b.number - a.number).slice(KEEP_FINISHED_REVISIONS));
    });
    for (const deploymentId of new Set(old.map((r) => r.deploymentId))) await mkdir(path.join(archiveDir, deploymentId), { recursive: true });
    await mapConcurrently(old, 32, (revision) => writeFile(path.join(archiveDir, revision.deploymentId, `${revision.id}.json`), JSON.stringify(revision)));
    await store.update((state) => {
      for (const revision of old) delete state.revisions[revision.id];
    });
  }
}

async function mapConcurrently<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function request(n: number): RevisionRequest {
  const d = n % DEPLOYMENTS;
  return {
    installationId: 1_000 + d,
    repository: { id: 100_000 + d, owner: "bench", name: `repo-${d}`, fullName: `bench/repo-${d}`, defaultBranch: "main", private: false },
    environment: "production",
    sha: n.toString(16).padStart(40, "0"),
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat", deliveryId: `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}` },
    build: { commands: ["npm ci", "npm run build"], timeoutSeconds: 600, env: { NODE_ENV: "production" } },
  };
}

/** What a deployed revision looks like once the listener and the GitHub reporter are done with it. */
function finish(state: StateDocument, revision: Revision): void {
  const at = new Date().toISOString();
  revision.state = "DEPLOYED";
  revision.attempts = 1;
  revision.phases = [
    { name: "build", startedAt: at, finishedAt: at, outcome: "succeeded" },
  ];
  revision.github = { deploymentId: revision.number, checkRunId: revision.number, checkRunSent: "bench", deploymentStatusSent: "bench" };
  revision.finishedAt = at;
  revision.updatedAt = at;
  const deployment = state.deployments[revision.deploymentId]!;
  deployment.state = "READY";
}

async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => String(e).endsWith(".json")).length;
}
