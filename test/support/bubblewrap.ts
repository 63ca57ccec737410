import { existsSync } from "node:fs";
import path from "node:path";

/**
 * Whether `bwrap` is on PATH. The sandbox tests need it (`.ci/run` installs it); without it
 * they are skipped, and the first caller prints why.
 */
export function hasBubblewrap(what = "sandbox tests"): boolean {
  const found = (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(path.join(dir, "bwrap")));
  if (!found) process.stdout.write(`${what} skipped: bubblewrap is not installed (apt-get install bubblewrap)\n`);
  return found;
}
