import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { killProcessTree } from "./build/kill-process-tree.js";

/**
 * Each build run leaves a file named after its run marker in `runsDir` while it runs. A
 * listener killed with SIGKILL cannot stop its builds; the next start of that listener
 * (same data folder) finds the files and stops every process still carrying a marker.
 */
export async function killOrphanedRuns(options: { runsDir: string; log: Logger }): Promise<number> {
  const markers = await readdir(options.runsDir).catch(() => [] as string[]);
  let killed = 0;
  for (const marker of markers) {
    try {
      const result = await killProcessTree({ marker, graceMs: 2_000 });
      killed += result.terminated.length;
      if (result.terminated.length > 0) {
        options.log.warn({ marker, processes: result.terminated.length }, "stopped processes left by a build of a previous run of this listener");
      }
    } catch (error) {
      options.log.error({ err: { message: (error as Error).message }, marker }, "could not stop an orphaned build");
      continue;
    }
    await rm(path.join(options.runsDir, marker), { force: true });
  }
  return killed;
}

/** Records a build run's marker until `release` is called. */
export async function recordRun(runsDir: string, marker: string): Promise<() => Promise<void>> {
  await mkdir(runsDir, { recursive: true });
  const file = path.join(runsDir, marker);
  await writeFile(file, `${process.pid}\n`);
  return () => rm(file, { force: true });
}
