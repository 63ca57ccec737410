/**
 * 4. State store: the cost of one `store.update` and of `openStateStore` (start-up) with
 * 1,000, 10,000 and 100,000 revisions behind it. The histories are made the way the
 * control plane makes them: `recordNewRevision` inside `store.update`, each revision then
 * finished, so the store's own archiving moves all but the newest 20 per deployment out
 * of the state file.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, stat } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { recordNewRevision } from "../../src/revisions/lifecycle.js";
import { deploymentIdOf, type RevisionRequest } from "../../src/revisions/new-revision.js";
import type { ChangeRecorder } from "../../src/store/store-changes.js";
import type { Revision, StateDocument } from "../../src/store/model.js";
import { KEEP_FINISHED_REVISIONS, openStateStore, type StateStore } from "../../src/store/open-state-store.js";
import type { BenchEnvironment } from "../lib/bench-environment.js";
import { ratioOf, type ResultRow } from "../lib/results-table.js";
import { median, percentile } from "../lib/stats.js";

const SECTION = "4. state store (50 deployments, 20 finished revisions each kept live; baseline: the smallest history)";
const DEPLOYMENTS = 50;
/** Revisions made per `store.update` while building a history through the store's own archiving. */
const BATCH = 100;
/** Up to this many revisions are archived by the store itself (its speed is measured; not in --quick); the rest is imported. */
const ARCHIVED_BY_STORE = { quick: 200, full: 2_000 };
const log = pino({ level: "silent" });
/** Revisions made on a scratch copy, archived by the benchmark itself: nobody watches them. */
const UNWATCHED: ChangeRecorder = { revision() {}, deployment() {} };

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
  const sizes = env.quick ? [1_000, 2_500, 5_000] : [1_000, 10_000, 100_000];
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
    await checkArchive(opened, size);

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
        figure: `${figure}, ${result.revisions.toLocaleString("en")} revisions`,
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
  add("start-up (openStateStore)", (r) => r.openMs, true, `medians; ${sizesNote}`);
  add("one store.update", (r) => r.updateMedianMs, true, `medians; p99 ${results.map((r) => r.updateP99Ms.toFixed(1)).join(" / ")} ms`);
  // Against the first size with an archive (the smallest has none).
  const withArchive = results.find((r) => r.archivedFiles > 0);
  for (const result of results.filter((r) => withArchive && r.revisions >= withArchive.revisions)) {
    const isBase = result === withArchive;
    rows.push({
      section: SECTION,
      figure: `store.archivedRevisions (50 newest), ${result.revisions.toLocaleString("en")} revisions`,
      unit: "ms",
      slipway: result.archivedListMs,
      baseline: isBase ? null : withArchive!.archivedListMs,
      baselineIs: isBase ? undefined : withArchive!.revisions.toLocaleString("en"),
      ratio: isBase ? null : ratioOf(result.archivedListMs, withArchive!.archivedListMs),
      goal: "",
      met: null,
      note: result === largest ? `what /api/v1/deployments/<id> reads for a deployment; ${results.map((r) => Math.round(r.archivedFiles / DEPLOYMENTS)).join(" / ")} archived revisions per deployment` : undefined,
    });
  }
  if (archiving) {
    rows.push({
      section: SECTION,
      figure: "archiving by the store, per revision",
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
    await store.update((state, changes) => {
      for (let i = 0; i < BATCH && made < size; i++, made++) finish(state, recordNewRevision(state, changes, request(made)).revision);
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
 * The same history, faster. Every revision is still made by recordNewRevision and finished,
 * but the ones that would be archived are made against a scratch copy of their deployment
 * (recordNewRevision looks at every live revision, which costs ~0.3 ms a call with the 1,000
 * live ones here), and the benchmark writes them to `archive/<deployment>/<revision>.json`
 * itself, as open-state-store.ts's archiveOldRevisions lays them out (it writes one file
 * after another, which would take minutes for 100,000), index.tsv included. The newest revisions of each
 * deployment are made through store.update, as the control plane makes them. Neither
 * start-up nor `update` reads the archive, so who wrote its files does not change what is
 * measured (nor does skipping the store's temp file and rename, which only matter in a crash).
 */
async function importHistory(dataDir: string, from: number, size: number): Promise<void> {
  const store = await openStateStore({ dataDir, log });
  const archiveDir = path.join(dataDir, "archive");
  const archive = (revision: Revision) => {
    const dir = path.join(archiveDir, revision.deploymentId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${revision.id}.json`), JSON.stringify(revision));
    appendFileSync(path.join(dir, "index.tsv"), `${revision.number}\t${revision.id}\n`);
  };
  // Revision k (0-based) belongs to deployment k % DEPLOYMENTS, as in request().
  const countBelow = (n: number, d: number) => Math.max(0, Math.ceil((n - d) / DEPLOYMENTS));
  const live = new Map<number, number>(); // deployment index → first revision index made through the store
  const counters = new Map<string, number>();
  for (let d = 0; d < DEPLOYMENTS; d++) {
    const total = countBelow(size, d);
    const already = countBelow(from, d);
    const throughStore = Math.min(KEEP_FINISHED_REVISIONS, total - already);
    live.set(d, total - throughStore);
    const deploymentId = deploymentIdOf(request(d).installationId, request(d).repository.id, "production");
    const scratch: StateDocument = {
      version: 1,
      deployments: { [deploymentId]: structuredClone(store.state.deployments[deploymentId]!) },
      revisions: {},
      deliveries: {},
      counters: { [deploymentId]: store.state.counters[deploymentId] ?? 0 },
    };
    for (let k = already; k < total - throughStore; k++) {
      const { revision } = recordNewRevision(scratch, UNWATCHED, request(d + k * DEPLOYMENTS));
      finish(scratch, revision);
      delete scratch.revisions[revision.id];
      archive(revision);
    }
    counters.set(deploymentId, scratch.counters[deploymentId]!);
  }
  const overflow = await store.update((state, changes) => {
    for (const [deploymentId, counter] of counters) state.counters[deploymentId] = counter;
    for (let d = 0; d < DEPLOYMENTS; d++) {
      for (let k = live.get(d)!; k < countBelow(size, d); k++) finish(state, recordNewRevision(state, changes, request(d + k * DEPLOYMENTS)).revision);
    }
    // What archiving would now move: all but the newest KEEP_FINISHED_REVISIONS of each deployment.
    const byDeployment = new Map<string, Revision[]>();
    for (const revision of Object.values(state.revisions)) byDeployment.set(revision.deploymentId, [...(byDeployment.get(revision.deploymentId) ?? []), revision]);
    const old = [...byDeployment.values()].flatMap((list) => list.sort((a, b) => b.number - a.number).slice(KEEP_FINISHED_REVISIONS));
    for (const revision of old) delete state.revisions[revision.id];
    return old;
  });
  overflow.forEach(archive);
  await store.update(() => undefined);
}

/**
 * The imported part of a history must read back through the store as if it had archived
 * it itself: the newest archived revisions of a deployment, and one found by id.
 */
async function checkArchive(store: StateStore, size: number): Promise<void> {
  const deploymentId = deploymentIdOf(request(0).installationId, request(0).repository.id, "production");
  const archivedCount = Math.max(0, Math.ceil(size / DEPLOYMENTS) - KEEP_FINISHED_REVISIONS);
  if (archivedCount === 0) return;
  const newest = await store.archivedRevisions(deploymentId, 5);
  const expected = Array.from({ length: Math.min(5, archivedCount) }, (_, i) => archivedCount - i);
  const oldest = await store.findRevision(newest.at(-1)?.id ?? "");
  if (JSON.stringify(newest.map((r) => r.number)) !== JSON.stringify(expected) || !oldest) {
    throw new Error(
      `the archive made by the benchmark does not read back through the store (newest archived: ${JSON.stringify(newest.map((r) => r.number))}, expected ${JSON.stringify(expected)}): ` +
        "the store's archive layout changed; update importHistory in bench/sections/state-store.ts",
    );
  }
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
