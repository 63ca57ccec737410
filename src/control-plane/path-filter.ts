import picomatch from "picomatch";

/** How globs are read: `*` stops at `/`, `**` crosses folders, dotfiles match like any file. */
const GLOB_OPTIONS: picomatch.PicomatchOptions = { dot: true };

/**
 * Whether any of `files` passes the path filter `globs` (`paths` in `.github/slipway.yml`).
 * As in GitHub Actions, a glob starting with `!` excludes, and the last glob that matches a
 * file decides for it.
 *
 * @example
 * matchesPathFilter(["services/api/**", "!services/api/docs/**"], ["services/api/src/a.ts"]); // true
 * matchesPathFilter(["services/api/**", "!services/api/docs/**"], ["services/api/docs/a.md"]); // false
 */
export function matchesPathFilter(globs: readonly string[], files: readonly string[]): boolean {
  const rules = globs.map((glob) => {
    const exclude = glob.startsWith("!");
    return { exclude, matches: picomatch(exclude ? glob.slice(1) : glob, GLOB_OPTIONS) };
  });
  return files.some((file) => {
    let included = false;
    for (const rule of rules) if (rule.matches(file)) included = !rule.exclude;
    return included;
  });
}

/** Why a glob can never match a repository path, or undefined when it can be used. */
export function pathGlobProblem(glob: string): string | undefined {
  const pattern = glob.startsWith("!") ? glob.slice(1) : glob;
  if (pattern === "") return "a glob must not be empty";
  if (pattern.startsWith("/") || pattern.startsWith("./")) return "a glob is matched against paths from the top of the repository, without a leading '/' or './'";
  if (pattern.includes("\0")) return "a glob must not contain NUL characters";
  try {
    picomatch.makeRe(pattern, GLOB_OPTIONS);
  } catch (error) {
    return `not a valid glob: ${(error as Error).message}`;
  }
  return undefined;
}
