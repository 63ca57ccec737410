import { appendFile, mkdir, readFile, readdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { Low } from "lowdb";
import { DataFile } from "lowdb/node";
import type { Logger } from "pino";
import { openDeliveryJournal } from "./delivery-journal.js";
import { FINAL_STATES, emptyState, type Delivery, type Revision, type StateDocument } from "./model.js";

/** How many finished revisions per deployment stay in the state file; older ones are archived. */
export const KEEP_FINISHED_REVISIONS = 20;
/** How many handled deliveries are remembered to recognise redeliveries. */
export const KEEP_DELIVERIES = 2_000;

export interface StateStore {
  /** The live document. Read it freely; change it only inside `update`. */
  readonly state: Readonly<StateDocument>;
  /**
   * Applies a change and resolves once it is on disk. The change runs synchronously, so
   * concurrent callers never interleave; their changes share writes.
   */
  update<T>(change: (state: StateDocument) => T): Promise<T>;
  /**
   * Records a webhook delivery before it is acknowledged: "duplicate" for an id already
   * held. Durable once resolved (one line in the delivery journal, not a state write).
   */
  recordDelivery(delivery: Delivery): Promise<"recorded" | "duplicate">;
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

  // Compact JSON (lowdb's JSONFile indents): half the cost of every write, and each
  // acknowledged webhook waits for one. `jq . state.json` shows it indented.
  const db = new Low<StateDocument>(new DataFile<StateDocument>(file, { parse: JSON.parse, stringify: (data) => JSON.stringify(data) }), emptyState());
  try {
    await db.read();
  } catch (error) {
    throw new CorruptStateError(file, error);
  }
  if (!isStateDocument(db.data)) {
    throw new CorruptStateError(file, new Error("it does not hold a Slipway state document"));
  }
  // Keep the last good version beside it: cheap insurance for the restore advice above.
  await writeFile(`${file}.bak`, JSON.stringify(db.data)).catch(() => undefined);

  // Deliveries acknowledged after the state file's last write are in the journal.
  const { journal, replayed, removeReplayed } = await openDeliveryJournal(path.join(dataDir, "journal"));
  const missing = replayed.filter((d) => !db.data.deliveries[d.id]);
  if (missing.length > 0) {
    for (const delivery of missing) db.data.deliveries[delivery.id] = delivery;
    await db.write();
    options.log.info({ deliveries: missing.length }, "took acknowledged deliveries from the journal into the state file");
  }
  await removeReplayed();

  const archivePath = (deploymentId: string, revisionId: string) =>
    path.join(archiveDir, deploymentId, `${revisionId}.json`);

  async function archiveOldRevisions(state: StateDocument): Promise<Revision[]> {
    const finishedByDeployment = new Map<string, Revision[]>();
    for (const revision of Object.values(state.revisions)) {
      if (!FINAL_STATES.has(revision.state)) continue;
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

  // One write at a time, and changes made while one is on its way share the next: lowdb
  // serialises the whole document on every write() call (steno only coalesces the file
  // writes), so a burst of N updates would otherwise stringify it N times.
  let inFlight: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  function startWrite(): Promise<void> {
    const written = journal.seal(); // every delivery recorded so far is in this write
    const write: Promise<void> = db
      .write()
      .then(() => written().catch((error: unknown) => options.log.warn({ err: error }, "could not remove a delivery journal file")))
      .finally(() => {
        if (inFlight === write) inFlight = undefined;
      });
    inFlight = write;
    return write;
  }
  /** Resolves once a write that began after this call is on disk. */
  function persist(): Promise<void> {
    if (queued) return queued;
    if (!inFlight) return startWrite();
    const next: Promise<void> = inFlight
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return startWrite();
      });
    queued = next;
    return next;
  }

  // Recorded deliveries are durable in the journal; the state file takes them a little later.
  let lazyWrite: NodeJS.Timeout | undefined;
  function writeSoon() {
    lazyWrite ??= setTimeout(() => {
      lazyWrite = undefined;
      persist().catch((error: unknown) => options.log.error({ err: error }, "writing the state file failed"));
    }, 100);
  }

  let archiving: Promise<void> | undefined;
  let writesSinceArchive = 0;

  const store: StateStore = {
    get state() {
      return db.data;
    },
    file,
    dataDir,
    async update(change) {
      const result = change(db.data);
      await persist();
      // Archive and prune every so often rather than on every write: both scan everything.
      if (++writesSinceArchive >= 50 && !archiving) {
        writesSinceArchive = 0;
        archiving = (async () => {
          const archived = await archiveOldRevisions(db.data);
          for (const revision of archived) delete db.data.revisions[revision.id];
          const pruned = pruneDeliveries(db.data);
          if (archived.length === 0 && pruned === 0) return;
          await persist();
          options.log.debug({ archived: archived.length, pruned }, "archived old revisions and forgot old deliveries");
        })()
          .catch((error) => options.log.error({ err: error }, "archiving revisions failed"))
          .finally(() => {
            archiving = undefined;
          });
      }
      return result;
    },
    async recordDelivery(delivery) {
      if (db.data.deliveries[delivery.id]) return "duplicate";
      db.data.deliveries[delivery.id] = delivery;
      try {
        await journal.append(delivery);
      } catch (error) {
        options.log.warn({ err: error }, "could not append to the delivery journal; writing the state file instead");
        await persist();
        return "recorded";
      }
      writeSoon();
      return "recorded";
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
