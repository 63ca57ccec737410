import { realpath, stat } from "node:fs/promises";
import path from "node:path";

/**
 * Checks `build.root` against the fetched source: a folder of it, not a link out of it (a
 * hostile repository could make `services/api` a symlink to `/`). Answers the root to start
 * in, or why it cannot be used, in words for the check run.
 *
 * @example
 * const root = await checkBuildRoot(source, "services/api"); // { ok: true, subDir: "services/api" }
 */
export async function checkBuildRoot(source: string, root: string | undefined): Promise<{ ok: true; subDir?: string } | { ok: false; error: string }> {
  if (!root) return { ok: true };
  const missing = { ok: false as const, error: `build.root: ${root} is not a folder of this commit` };
  const [realSource, realRoot] = await Promise.all([realpath(source), realpath(path.join(source, root)).catch(() => undefined)]);
  if (!realRoot) return missing;
  if (realRoot !== realSource && !realRoot.startsWith(`${realSource}${path.sep}`)) {
    return { ok: false, error: `build.root: ${root} leads out of the source (a symbolic link); use a real folder` };
  }
  if (!(await stat(realRoot)).isDirectory()) return missing;
  return { ok: true, subDir: path.relative(realSource, realRoot) || undefined };
}
