import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";

import { killProcessTree } from "../build/kill-process-tree.js";

/** What is written down for each instance: no environment, no secrets. */
export interface InstanceRecord {
  marker: string;
  deploymentId: string;
  revisionId: string;
  pid: number;
  port: number;
  startedAt: string;
}

export interface InstanceRegistry {
  record(entry: InstanceRecord): Promise<void>;
  forget(marker: string): Promise<void>;
  /**
   * Stops every instance recorded by an earlier listener process (one that was killed
   * before it could stop its instances), found by marker alone, and forgets them.
   * Returns how many processes were stopped.
   */
  reapOrphans(): Promise<number>;
}

/** An instance's run marker starts with `slipway-run-` (see `SLIPWAY_RUN_MARKER`). */
const MARKER_FILE = /^(slipway-run-[A-Za-z0-9-]+)\.json$/;

/**
 * A folder with one small file per instance, named after its run marker. An instance's
 * processes die with the listener, even one killed with SIGKILL (see `spawnWithLifeline`
 * and bubblewrap's `--die-with-parent`); what escaped that (a process that left the group
 * and outlived the watchdog's sweep) the next instance supervisor finds here and stops,
 * before it starts the revisions again. Only the marker finds processes: the recorded pid
 * is never signalled, since another process may have it by now.
 */
export function createInstanceRegistry(options: { dir: string; log: Logger }): InstanceRegistry {
  const { dir, log } = options;
  const own = new Set<string>();
  const file = (marker: string) => path.join(dir, `${marker}.json`);
  return {
    async record(entry) {
      own.add(entry.marker);
      await mkdir(dir, { recursive: true });
      await writeFile(file(entry.marker), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    },
    async forget(marker) {
      own.delete(marker);
      await rm(file(marker), { force: true });
    },
    async reapOrphans() {
      const names = await readdir(dir).catch(() => [] as string[]);
      let stopped = 0;
      for (const name of names) {
        const marker = MARKER_FILE.exec(name)?.[1];
        if (!marker || own.has(marker)) continue;
        const recorded = await readFile(path.join(dir, name), "utf8").then((text) => JSON.parse(text) as Partial<InstanceRecord>, () => ({}) as Partial<InstanceRecord>);
        try {
          const result = await killProcessTree({ marker, graceMs: 2_000 });
          stopped += result.terminated.length;
          if (result.terminated.length > 0) {
            log.warn({ marker, deployment: recorded.deploymentId, revision: recorded.revisionId, processes: result.terminated.length }, "stopped an instance left by an earlier listener process");
          }
          await rm(path.join(dir, name), { force: true });
        } catch (error) {
          log.error({ err: { message: (error as Error).message }, marker }, "could not stop an instance left by an earlier listener process");
        }
      }
      return stopped;
    },
  };
}
