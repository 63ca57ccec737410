import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";

/** The list of kept builds in a deployment's work folder, newest first. */
export const KEPT_BUILDS_FILE = "kept.json";

/**
 * Records `build` (a revision id: the folder `<deploymentDir>/<build>/`) as the newest
 * deployed build of its deployment, keeps the `count` newest distinct ones in `kept.json`,
 * and removes every other folder of the deployment. The control plane reckons the same list
 * from its revisions (keptBuildsOf in src/revisions/selectors.ts): the builds of the newest
 * DEPLOYED revisions, a restart's or rollback's counted as the build it reused. A folder
 * without `kept.json` (kept by an older Slipway, which kept one build) starts the list with
 * what it holds. Returns the list as written.
 *
 * @example
 * await keepBuilds({ deploymentDir: path.join(workRoot, deploymentId), build: revisionId, count: 5 });
 */
export async function keepBuilds(options: { deploymentDir: string; build: string; count: number }): Promise<string[]> {
  const { deploymentDir, build, count } = options;
  const entries = await readdir(deploymentDir).catch(() => [] as string[]);
  const folders = entries.filter((name) => name !== KEPT_BUILDS_FILE && !name.startsWith(`${KEPT_BUILDS_FILE}.`));
  const before = (await readKeptBuilds(deploymentDir)) ?? (await newestFirst(deploymentDir, folders));
  const kept = [build, ...before.filter((b) => b !== build && folders.includes(b))].slice(0, Math.max(1, count));
  const file = path.join(deploymentDir, KEPT_BUILDS_FILE);
  // Written before anything is removed, and atomically: a crash leaves a list naming only folders that exist or are going.
  await writeFile(`${file}.tmp`, `${JSON.stringify(kept)}\n`);
  await rename(`${file}.tmp`, file);
  for (const name of entries) {
    if (name !== KEPT_BUILDS_FILE && !kept.includes(name)) await rm(path.join(deploymentDir, name), { recursive: true, force: true });
  }
  return kept;
}

/** The kept list of a deployment's work folder; undefined when there is none (or it is unreadable). */
export async function readKeptBuilds(deploymentDir: string): Promise<string[] | undefined> {
  try {
    const list: unknown = JSON.parse(await readFile(path.join(deploymentDir, KEPT_BUILDS_FILE), "utf8"));
    return Array.isArray(list) ? list.filter((b): b is string => typeof b === "string") : undefined;
  } catch {
    return undefined;
  }
}

async function newestFirst(deploymentDir: string, folders: string[]): Promise<string[]> {
  const times = await Promise.all(folders.map(async (name) => ({ name, mtime: (await stat(path.join(deploymentDir, name)).catch(() => undefined))?.mtimeMs ?? 0 })));
  return times.sort((a, b) => b.mtime - a.mtime).map((t) => t.name);
}
