import { existsSync, rmSync } from "node:fs";
import { isProcessAlive } from "../is-process-alive.js";
import { mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/**
 * Whether this module is the compiled one (dist/listener/compile-jobs.js, from `npm run
 * build`) or the TypeScript source (src/listener/compile-jobs.ts, run by tsx or vitest).
 */
const COMPILED = import.meta.url.endsWith(".js");
/** The project: dist/ and src/ are both one level below it. */
const PROJECT_ROOT = path.resolve(HERE, "../..");
/** `npm run build` bundles each job here (dist/jobs/<name>.js). */
export const PREBUILT_JOBS_DIR = path.resolve(HERE, "../jobs");
/** The TypeScript jobs, and their tsx shims (`<name>.js`) for when compiling is not possible. */
export const JOBS_DIR = path.join(PROJECT_ROOT, "jobs");

/**
 * Each Bree job's file. Nothing is written where Slipway is installed:
 *
 * - the compiled server (`npm start`, the Docker image) loads the jobs `npm run build`
 *   bundled into dist/jobs/, as they are;
 * - from the TypeScript sources (`npm run dev`, the unit tests) the jobs are bundled with
 *   esbuild once per process into a private temporary folder, removed at exit, with a
 *   `node_modules` link to the project's so their packages resolve. A worker then starts in
 *   tens of milliseconds; through a tsx shim (the fallback if esbuild fails) it registered a
 *   loader first, about 0.3 s of every build.
 */
export async function jobFiles(names: readonly string[], log: Logger): Promise<Map<string, string>> {
  if (COMPILED) {
    const files = new Map(names.map((name) => [name, path.join(PREBUILT_JOBS_DIR, `${name}.js`)]));
    const missing = [...files.values()].filter((file) => !existsSync(file));
    if (missing.length > 0) throw new Error(`the compiled jobs are missing (${missing.join(", ")}): run npm run build`);
    return files;
  }
  return (fromSources ??= compileFromSources(names, log));
}

let fromSources: Promise<Map<string, string>> | undefined;
const TEMP_PREFIX = "slipway-jobs-";

/** Folders of processes that ended without their exit handler (killed, or vitest's workers). */
async function removeLeftovers(): Promise<void> {
  for (const entry of await readdir(os.tmpdir()).catch(() => [])) {
    const pid = Number(new RegExp(`^${TEMP_PREFIX}(\\d+)-`).exec(entry)?.[1]);
    if (!pid || isProcessAlive(pid)) continue;
    await rm(path.join(os.tmpdir(), entry), { recursive: true, force: true }).catch(() => undefined);
  }
}

async function compileFromSources(names: readonly string[], log: Logger): Promise<Map<string, string>> {
  const shims = () => new Map(names.map((name) => [name, path.join(JOBS_DIR, `${name}.js`)]));
  let dir: string | undefined;
  try {
    const { build } = await import("esbuild");
    const result = await build({
      entryPoints: Object.fromEntries(names.map((name) => [name, path.join(JOBS_DIR, `${name}.ts`)])),
      outdir: "/",
      outExtension: { ".js": ".mjs" },
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      logLevel: "silent",
    });
    dir = await mkdtemp(path.join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
    const created = dir;
    process.once("exit", () => rmSync(created, { recursive: true, force: true }));
    await removeLeftovers();
    await symlink(path.join(PROJECT_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
    const files = new Map<string, string>();
    for (const output of result.outputFiles) {
      const file = path.join(dir, path.basename(output.path));
      await writeFile(file, output.contents);
      files.set(path.basename(output.path, ".mjs"), file);
    }
    return files;
  } catch (error) {
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    log.warn({ err: { message: (error as Error).message } }, "could not compile the jobs; running them through tsx");
    return shims();
  }
}
