import { mkdir, open, readFile, readdir, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Delivery } from "./model.js";

export interface DeliveryJournal {
  /** Appends one delivery; resolves once its line is written. */
  append(delivery: Delivery): Promise<void>;
  /**
   * Call as a write of the whole state begins (after every appended delivery is in it):
   * later appends go to a new file. The returned function, called once that write is on
   * disk, removes the files it made redundant.
   */
  seal(): () => Promise<void>;
}

const FILE = /^deliveries-(\d+)\.jsonl$/;

/**
 * The inbox's write-ahead log: a webhook is acknowledged once one line is appended here,
 * instead of after a write of the whole state file (which grows with the deliveries kept
 * and the revisions). The state file takes the deliveries in its next write, and the files
 * that write covers are removed. At start-up, `replayed` holds what the journal has.
 */
export async function openDeliveryJournal(dir: string): Promise<{ journal: DeliveryJournal; replayed: Delivery[]; removeReplayed(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const existing = (await readdir(dir))
    .map((name) => ({ name, generation: Number(FILE.exec(name)?.[1]) }))
    .filter((f) => Number.isInteger(f.generation))
    .sort((a, b) => a.generation - b.generation);
  const replayed: Delivery[] = [];
  for (const { name } of existing) {
    for (const line of (await readFile(path.join(dir, name), "utf8")).split("\n")) {
      if (!line) continue;
      try {
        replayed.push(JSON.parse(line) as Delivery);
      } catch {
        // A line cut short by a crash: its webhook was never acknowledged, so GitHub still has it.
      }
    }
  }

  let generation = (existing.at(-1)?.generation ?? -1) + 1;
  const files = new Map<number, { handle: Promise<FileHandle>; appending: Set<Promise<void>> }>();
  const fileOf = (g: number) => path.join(dir, `deliveries-${g}.jsonl`);

  async function remove(upTo: number) {
    for (const [g, file] of [...files].filter(([g]) => g <= upTo)) {
      files.delete(g);
      await Promise.allSettled(file.appending);
      await (await file.handle.catch(() => undefined))?.close();
      await unlink(fileOf(g)).catch(() => undefined);
    }
  }

  const journal: DeliveryJournal = {
    append(delivery) {
      const g = generation;
      let file = files.get(g);
      if (!file) {
        file = { handle: open(fileOf(g), "a"), appending: new Set() };
        files.set(g, file);
      }
      const { handle, appending } = file;
      const line = `${JSON.stringify(delivery)}\n`;
      const written: Promise<void> = handle.then((h) => h.write(line)).then(() => undefined);
      const tracked: Promise<void> = written.then(
        () => void appending.delete(tracked),
        () => void appending.delete(tracked), // the caller sees the error
      );
      appending.add(tracked);
      return written;
    },
    seal() {
      const sealed = generation;
      generation += 1;
      return () => remove(sealed);
    },
  };
  return {
    journal,
    replayed,
    async removeReplayed() {
      for (const { name } of existing) await unlink(path.join(dir, name)).catch(() => undefined);
    },
  };
}
