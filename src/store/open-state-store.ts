import { appendFile, mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { Low } from "lowdb";
import { DataFile } from "lowdb/node";
import type { Logger } from "pino";
import { openDeliveryJournal } from "./delivery-journal.js";
import { emptyState, isFinal, type Delivery, type Revision, type StateDocument } from "./model.js";
import { createChangeBatch, type ChangeRecorder, type StoreChangeListener } from "./store-changes.js";

/** How many finished revisions per deployment stay in the state file; older ones are archived. */
export const KEEP_FINISHED_REVISIONS = 20;
/** How many handled deliveries are remembered to recognise redeliveries. */
export const KEEP_DELIVERIES = 2_000;

export interface StateStore {
  /** The live document. Read it freely; change it only inside `update`. */
  readonly state: Readonly<StateDocument>;
  /**
   * Applies a change and resolves once it is on disk. The change runs synchronously, so
   * concurrent callers never interleave; their changes share writes. Deliveries are
   * written by `recordDelivery` and `updateDelivery`, not here. Records marked on
   * `changes` are announced to subscribers once the write is on disk (before this resolves);
   * only the revisions module marks them (src/revisions).
   */
  update<T>(change: (state: StateDocument, changes: ChangeRecorder) => T): Promise<T>;
  /** Calls `listener` after every committed change of a revision or a deployment; returns the unsubscribe. */
  subscribe(listener: StoreChangeListener): () => void;
  /**
   * Records a webhook delivery before it is acknowledged: "duplicate" for an id already
   * held. Durable once resolved (one line in the delivery journal, not a state write).
   */
  recordDelivery(delivery: Delivery): Promise<"recorded" | "duplicate">;
  /**
   * Changes a recorded delivery (its status, say). Written within about 0.1 s, together
   * with others: after a crash in between, the delivery is processed again, which the
   * revision rules make harmless (the same commit makes no second revision).
   */
  updateDelivery(id: string, change: (delivery: Delivery) => void): Promise<void>;
  /**
   * Finishes the work the store does in the background: writes the deliveries file now
   * if a write of it is due, and waits for a housekeeping run (archiving, pruning) under way.
   */
  flush(): Promise<void>;
  /** A revision from the state file or, for old ones, from the archive. */
  findRevision(id: string): Promise<Revision | undefined>;
  /** Archived revisions of a deployment, newest first. */
  archivedRevisions(deploymentId: string, limit?: number): Promise<Revision[]>;
  readonly file: string;
  readonly dataDir: string;
}

export class CorruptStateError extends Error {
  constructor(file: string, cause: unknown) {
    super(
      `The state file ${file} is not valid JSON (${(cause as Error).message}). Slipway will not start on it, ` +
        `so that nothing is silently reset. Restore it from a backup (the previous version may be in ${file}.bak), ` +
        `or move it away to start with an empty state.`,
      { cause },
    );
    this.name = "CorruptStateError";
  }
}

/**
 * Opens the state file in `dataDir` (creating the folder), refusing to start on a corrupt file.
 * The main thread of the control plane is its only writer.
 *
 * @example
 * const store = await openStateStore({ dataDir: ".slipway", log });
 * await store.update((s) => { s.deployments[d.id] = d; });
 */
export async function openStateStore(options: { dataDir: string; log: Logger }): Promise<StateStore> {
  const dataDir = path.resolve(options.dataDir);
  const file = path.join(dataDir, "state.json");
  const archiveDir = path.join(dataDir, "archive");
  await mkdir(archiveDir, { recursive: true });

  // Compact JSON (lowdb's JSONFile indents): half the cost of every write. `jq .` indents it.
  // Deliveries live in a file of their own: they change with every webhook, revisions with
  // every step of a build, and each write serialises its whole file.
  const db = new Low<StateDocument>(
    new DataFile<StateDocument>(file, { parse: JSON.parse, stringify: (data) => JSON.stringify({ ...data, deliveries: undefined }) }),
    emptyState(),
  );
  const deliveriesFile = path.join(dataDir, "deliveries.json");
  const deliveriesDb = new DataFile<Record<string, Delivery>>(deliveriesFile, { parse: JSON.parse, stringify: (data) => JSON.stringify(data) });
  try {
    await db.read();
  } catch (error) {
    throw new CorruptStateError(file, error);
  }
  // A state file from before deliveries.json holds its deliveries itself; they move below.
  const heldDeliveries = typeof db.data === "object" && db.data !== null && "deliveries" in db.data;
  if (!heldDeliveries && typeof db.data === "object" && db.data !== null) (db.data as StateDocument).deliveries = {};
  if (!isStateDocument(db.data)) {
    throw new CorruptStateError(file, new Error("it does not hold a Slipway state document"));
  }
  let storedDeliveries: Record<string, Delivery> | null;
  try {
    storedDeliveries = await deliveriesDb.read();
  } catch (error) {
    throw new CorruptStateError(deliveriesFile, error);
  }
  Object.assign(db.data.deliveries, storedDeliveries ?? {});
  // Keep the last good version beside it: cheap insurance for the restore advice above.
  await writeFile(`${file}.bak`, JSON.stringify(db.data)).catch(() => undefined);

  // Deliveries acknowledged after the deliveries file's last write are in the journal.
  const { journal, replayed, removeReplayed } = await openDeliveryJournal(path.join(dataDir, "journal"));
  const missing = replayed.filter((d) => !db.data.deliveries[d.id]);
  for (const delivery of missing) db.data.deliveries[delivery.id] = delivery;
  if (missing.length > 0 || heldDeliveries) await deliveriesDb.write(db.data.deliveries);
  if (missing.length > 0) options.log.info({ deliveries: missing.length }, "took acknowledged deliveries from the journal");
  await removeReplayed();
  if (heldDeliveries) await db.write(); // the state file without them

  const archivePath = (deploymentId: string, revisionId: string) =>
    path.join(archiveDir, deploymentId, `${revisionId}.json`);

  async function archiveOldRevisions(state: StateDocument): Promise<Revision[]> {
    const finishedByDeployment = new Map<string, Revision[]>();
    for (const revision of Object.values(state.revisions)) {
      if (!isFinal(revision)) continue;
      const list = finishedByDeployment.get(revision.deploymentId) ?? [];
      list.push(revision);
      finishedByDeployment.set(revision.deploymentId, list);
    }
    const toArchive: Revision[] = [];
    for (const list of finishedByDeployment.values()) {
      if (list.length <= KEEP_FINISHED_REVISIONS) continue;
      list.sort((a, b) => b.number - a.number);
      toArchive.push(...list.slice(KEEP_FINISHED_REVISIONS));
    }
    const indexLines = new Map<string, string>();
    for (const revision of toArchive) {
      const target = archivePath(revision.deploymentId, revision.id);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(`${target}.tmp`, JSON.stringify(revision));
      await rename(`${target}.tmp`, target);
      indexLines.set(revision.deploymentId, `${indexLines.get(revision.deploymentId) ?? ""}${revision.number}\t${revision.id}\n`);
    }
    // An index per deployment, so its newest archived revisions are found without reading all.
    for (const [deploymentId, lines] of indexLines) await appendFile(path.join(archiveDir, deploymentId, "index.tsv"), lines);
    return toArchive;
  }

  /** Forgets the oldest handled deliveries beyond KEEP_DELIVERIES; returns how many. */
  function pruneDeliveries(state: StateDocument): number {
    const ids = Object.keys(state.deliveries);
    if (ids.length <= KEEP_DELIVERIES) return 0;
    const done = ids
      .map((id) => state.deliveries[id]!)
      .filter((d) => d.status !== "pending")
      .sort((a, b) => a.receivedAt.localeCompare(b.receivedAt));
    const forgotten = done.slice(0, ids.length - KEEP_DELIVERIES);
    for (const delivery of forgotten) delete state.deliveries[delivery.id];
    return forgotten.length;
  }

  // Writes back to back (a write already on its way when a change comes) start at least
  // 20 ms apart: under load that bounds the time spent serialising the state, and a single
  // flow of changes, each awaiting its write, never waits.
  const persistState = coalescingWriter(() => db.write(), { minGapMs: 20 });
  const persistDeliveries = coalescingWriter(async () => {
    const written = journal.seal(); // every delivery recorded so far is in this write
    await deliveriesDb.write(db.data.deliveries);
    await written().catch((error: unknown) => options.log.warn({ err: error }, "could not remove a delivery journal file"));
  });

  // Recorded deliveries are durable in the journal; the deliveries file takes them a little later.
  let lazyWrite: NodeJS.Timeout | undefined;
  /** The lazy write under way, if any: flush waits for it too. */
  let lazyWriting: Promise<void> | undefined;
  function writeDeliveriesSoon() {
    lazyWrite ??= setTimeout(() => {
      lazyWrite = undefined;
      const writing = persistDeliveries()
        .catch((error: unknown) => options.log.error({ err: error }, "writing the deliveries file failed"))
        .finally(() => {
          if (lazyWriting === writing) lazyWriting = undefined;
        });
      lazyWriting = writing;
    }, 100);
  }

  let archiving: Promise<void> | undefined;
  let changesSinceArchive = 0;
  /** Archives old revisions and forgets old deliveries every 50 changes: both scan everything. */
  function housekeepNowAndThen() {
    if (++changesSinceArchive >= 50 && !archiving) housekeep();
  }

  function housekeep() {
    changesSinceArchive = 0;
    archiving = (async () => {
      const archived = await archiveOldRevisions(db.data);
      for (const revision of archived) delete db.data.revisions[revision.id];
      const pruned = pruneDeliveries(db.data);
      await Promise.all([archived.length > 0 && persistState(), pruned > 0 && persistDeliveries()]);
      if (archived.length + pruned > 0) options.log.debug({ archived: archived.length, pruned }, "archived old revisions and forgot old deliveries");
    })()
      .catch((error) => options.log.error({ err: error }, "archiving revisions failed"))
      .finally(() => {
        archiving = undefined;
        // Changes that came while it ran (a burst, a slow disk) may be due a run of their own.
        if (changesSinceArchive >= 50) housekeep();
      });
  }

  const listeners = new Set<StoreChangeListener>();
  const nextSequence = () => (db.data.changeSequence = (db.data.changeSequence ?? 0) + 1);

  const store: StateStore = {
    get state() {
      return db.data;
    },
    file,
    dataDir,
    async update(change) {
      const batch = createChangeBatch(nextSequence);
      const result = change(db.data, batch);
      // Numbered before the write, so the sequence on disk covers every change announced.
      const changes = batch.take();
      await persistState();
      for (const announced of changes) {
        for (const listener of listeners) {
          try {
            listener(announced);
          } catch (error) {
            options.log.error({ err: error, change: announced }, "a store subscriber failed");
          }
        }
      }
      housekeepNowAndThen();
      return result;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async flush() {
      while (lazyWrite || lazyWriting || archiving) {
        if (lazyWrite) {
          clearTimeout(lazyWrite);
          lazyWrite = undefined;
          await persistDeliveries();
        }
        await lazyWriting;
        await archiving;
      }
    },
    async recordDelivery(delivery) {
      if (db.data.deliveries[delivery.id]) return "duplicate";
      db.data.deliveries[delivery.id] = delivery;
      try {
        await journal.append(delivery);
      } catch (error) {
        options.log.warn({ err: error }, "could not append to the delivery journal; writing the deliveries file instead");
        await persistDeliveries();
        return "recorded";
      }
      writeDeliveriesSoon();
      housekeepNowAndThen();
      return "recorded";
    },
    async updateDelivery(id, change) {
      const delivery = db.data.deliveries[id];
      if (!delivery) return;
      change(delivery);
      writeDeliveriesSoon();
    },
    async findRevision(id) {
      const live = db.data.revisions[id];
      if (live) return live;
      if (!/^[a-z0-9-]+$/i.test(id)) return undefined;
      for (const deploymentId of Object.keys(db.data.deployments)) {
        const found = await readJson<Revision>(archivePath(deploymentId, id));
        if (found) return found;
      }
      return undefined;
    },
    async archivedRevisions(deploymentId, limit = 50) {
      if (!/^[a-z0-9-]+$/i.test(deploymentId)) return [];
      const dir = path.join(archiveDir, deploymentId);
      const index = await readFile(path.join(dir, "index.tsv"), "utf8").catch(() => undefined);
      const ids =
        index === undefined
          ? (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5))
          : [
              ...new Map(
                index
                  .split("\n")
                  .filter(Boolean)
                  .map((line) => line.split("\t") as [string, string])
                  .sort((a, b) => Number(b[0]) - Number(a[0]))
                  .map(([, id]) => [id, id]),
              ).keys(),
            ].slice(0, limit);
      const revisions = await Promise.all(ids.map((id) => readJson<Revision>(archivePath(deploymentId, id))));
      return revisions
        .filter((r): r is Revision => r !== undefined)
        .sort((a, b) => b.number - a.number)
        .slice(0, limit);
    },
  };
  return store;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

function isStateDocument(value: unknown): value is StateDocument {
  const doc = value as StateDocument | null;
  return (
    typeof doc === "object" &&
    doc !== null &&
    doc.version === 1 &&
    typeof doc.deployments === "object" &&
    typeof doc.revisions === "object" &&
    typeof doc.deliveries === "object" &&
    typeof doc.counters === "object"
  );
}

/**
 * One write at a time, and changes made while one is on its way share the next: lowdb
 * serialises the whole document on every write (steno only coalesces the file writes),
 * so a burst of N updates would otherwise stringify it N times. The returned function
 * resolves once a write that began after the call is on disk. `write` must serialise
 * synchronously, before its first await. A queued write starts `minGapMs` after the
 * previous one started at the earliest.
 */
function coalescingWriter(write: () => Promise<void>, options: { minGapMs?: number } = {}): () => Promise<void> {
  const minGapMs = options.minGapMs ?? 0;
  let inFlight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let lastStart = 0;
  function start(): Promise<void> {
    lastStart = performance.now();
    const current: Promise<void> = write().finally(() => {
      if (inFlight === current) inFlight = undefined;
    });
    inFlight = current;
    return current;
  }
  return () => {
    if (queued) return queued;
    if (!inFlight) return start();
    const next: Promise<void> = inFlight
      .catch(() => undefined)
      // Under a stream of changes, gather them a little longer: fewer, larger writes.
      .then(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, lastStart + minGapMs - performance.now()))))
      .then(() => {
        queued = undefined;
        return start();
      });
    queued = next;
    return next;
  };
}
