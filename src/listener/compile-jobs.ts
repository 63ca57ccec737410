import { createHash, randomUUID } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Logger } from "pino";

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The TypeScript jobs, and their tsx shims (`<name>.js`) for when compiling is not possible. */
export const JOBS_DIR = path.join(PROJECT_ROOT, "jobs");
/** Inside the project, so the compiled jobs resolve their packages from its node_modules. */
const COMPILED_DIR = path.join(PROJECT_ROOT, "node_modules", ".cache", "slipway-jobs");

/**
 * Compiles the Bree jobs to plain JavaScript, one file per job with Slipway's own modules
 * bundled in and packages left to node_modules. A worker thread then starts in tens of
 * milliseconds; through the tsx shim it registered a loader first, about 0.3 s of every
 * build. Files are named by their content and written atomically, so several Slipway
 * processes on one checkout share them safely.
 *
 * Returns each job's file, or undefined (and the caller uses the shims) if esbuild fails.
 */
export async function compileJobs(names: readonly string[], log: Logger): Promise<Map<string, string> | undefined> {
  try {
    const result = await build({
      entryPoints: Object.fromEntries(names.map((name) => [name, path.join(JOBS_DIR, `${name}.ts`)])),
      outdir: COMPILED_DIR,
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      logLevel: "silent",
    });
    await mkdir(COMPILED_DIR, { recursive: true });
    const files = new Map<string, string>();
    for (const output of result.outputFiles) {
      const name = path.basename(output.path, ".js");
      const hash = createHash("sha256").update(output.contents).digest("hex").slice(0, 16);
      const file = path.join(COMPILED_DIR, `${name}-${hash}.mjs`);
      const temporary = `${file}.${randomUUID()}.tmp`;
      await writeFile(temporary, output.contents);
      await rename(temporary, file);
      files.set(name, file);
    }
    return files;
  } catch (error) {
    log.warn({ err: { message: (error as Error).message } }, "could not compile the jobs; running them through tsx");
    return undefined;
  }
}
