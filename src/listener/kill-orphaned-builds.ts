import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { killProcessTree } from "./build/kill-process-tree.js";

/**
 * Each build leaves a file named after its run marker in `buildMarkersDir` while it runs. A
 * listener killed with SIGKILL takes its builds with it (bubblewrap's die-with-parent, or the
 * lifeline of sandbox/spawn-with-lifeline.ts); what escaped both (a process that left the
 * group and dropped the marker's variable cannot, so this is the fallback) is stopped at the
 * next start of that listener (same data folder): it stops every process still carrying a marker.
 */
export async function killOrphanedBuilds(options: { buildMarkersDir: string; log: Logger }): Promise<number> {
  const markers = await readdir(options.buildMarkersDir).catch(() => [] as string[]);
  let killed = 0;
  for (const marker of markers) {
    try {
      const result = await killProcessTree({ marker, graceMs: 2_000 });
      killed += result.terminated.length;
      if (result.terminated.length > 0) {
        options.log.warn({ marker, processes: result.terminated.length }, "stopped processes left by a build of an earlier listener process");
      }
    } catch (error) {
      options.log.error({ err: { message: (error as Error).message }, marker }, "could not stop an orphaned build");
      continue;
    }
    await rm(path.join(options.buildMarkersDir, marker), { force: true });
  }
  return killed;
}

/** Records a build's run marker until `release` is called. */
export async function recordBuild(buildMarkersDir: string, marker: string): Promise<() => Promise<void>> {
  await mkdir(buildMarkersDir, { recursive: true });
  const file = path.join(buildMarkersDir, marker);
  await writeFile(file, `${process.pid}\n`);
  return () => rm(file, { force: true });
}
