#!/usr/bin/env node
/**
 * `npm run build`: compiles Slipway to plain JavaScript in dist/, with source maps.
 *
 * - src/**\/*.ts → dist/**\/*.js, one file per module (not bundled), so dist/ has the layout
 *   of src/ and paths taken from `import.meta.url` (the install folder the sandbox hides, the
 *   jobs folder) mean the same in both: dist/main.js, dist/listener/main.js.
 * - jobs/*.ts → dist/jobs/*.js, each bundled with the Slipway modules it uses (packages stay
 *   in node_modules), so a Bree worker loads one file and starts in tens of milliseconds.
 *
 * esbuild only transpiles; `npm test` and `npm run typecheck` run tsc for the types. The new
 * dist/ is written next to the old one and swapped in, so a failed build leaves the old one,
 * and a lock lets several processes (test files, `npm start`) ask for a build at once.
 *
 *   node scripts/build.mjs              build
 *   node scripts/build.mjs --if-stale   build only when dist/ is missing or older than its sources
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const DIST = path.join(ROOT, "dist");
/** The commands' entry points, relative to dist/. */
export const ENTRY_POINTS = { main: "main.js", listener: "listener/main.js" };

const STAMP = path.join(DIST, ".build-stamp");
const LOCK = path.join(ROOT, ".dist.lock");
/** What the output depends on: a change to any of these makes dist/ stale. */
const SOURCES = ["src", "jobs", "package.json", "package-lock.json", "tsconfig.json", "scripts/build.mjs"];

function newestSourceMtime() {
  let newest = 0;
  for (const source of SOURCES) {
    const full = path.join(ROOT, source);
    const stat = statSync(full, { throwIfNoEntry: false });
    if (!stat) continue;
    newest = Math.max(newest, stat.mtimeMs);
    if (!stat.isDirectory()) continue;
    for (const entry of readdirSync(full, { recursive: true })) {
      newest = Math.max(newest, statSync(path.join(full, entry), { throwIfNoEntry: false })?.mtimeMs ?? 0);
    }
  }
  return newest;
}

/** True when dist/ is missing, or a source changed after the build that made it started. */
export function isStale() {
  const stamp = statSync(STAMP, { throwIfNoEntry: false });
  return !stamp || newestSourceMtime() > stamp.mtimeMs;
}

function sourceFiles(dir, extension) {
  return readdirSync(path.join(ROOT, dir), { recursive: true })
    .filter((file) => file.endsWith(extension) && !file.endsWith(".d.ts"))
    .map((file) => path.join(ROOT, dir, file));
}

/** Compiles into `outDir` (default dist/); returns the milliseconds it took. */
export async function build(outDir = DIST) {
  const { build: esbuild } = await import("esbuild");
  const started = Date.now();
  const next = `${outDir}.next-${process.pid}`;
  rmSync(next, { recursive: true, force: true });
  const common = { platform: "node", format: "esm", target: "node20", sourcemap: true, logLevel: "warning" };
  await esbuild({ ...common, entryPoints: sourceFiles("src", ".ts"), outdir: next, outbase: path.join(ROOT, "src") });
  await esbuild({
    ...common,
    entryPoints: sourceFiles("jobs", ".ts"),
    outdir: path.join(next, "jobs"),
    bundle: true,
    packages: "external",
  });
  // Stamped with the time the build started: a source saved during the build makes it stale.
  const stamp = path.join(next, ".build-stamp");
  writeFileSync(stamp, `built by scripts/build.mjs with Node ${process.version}\n`);
  utimesSync(stamp, started / 1000, started / 1000);
  const old = `${outDir}.old-${process.pid}`;
  if (statSync(outDir, { throwIfNoEntry: false })) renameSync(outDir, old);
  renameSync(next, outDir);
  rmSync(old, { recursive: true, force: true });
  return Date.now() - started;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
};

/** Runs `fn` while holding .dist.lock (a folder with the holder's pid); a dead holder's lock is taken over. */
async function withBuildLock(fn) {
  for (const deadline = Date.now() + 120_000; ; ) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(path.join(LOCK, "pid"), "utf8"));
    } catch {
      // just created: its pid follows
    }
    const age = Date.now() - (statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if ((Number.isInteger(holder) && !alive(holder)) || age > 120_000) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another build holds ${LOCK} (pid ${holder}); remove it if no build runs`);
    await sleep(100);
  }
  try {
    writeFileSync(path.join(LOCK, "pid"), String(process.pid));
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Builds dist/ unless it is up to date (or always, with `force`). */
export async function ensureBuilt({ force = false } = {}) {
  if (!force && !isStale()) return false;
  return withBuildLock(async () => {
    if (!force && !isStale()) return false; // another process built it while we waited
    const ms = await build();
    console.error(`slipway: compiled src/ and jobs/ into dist/ in ${(ms / 1000).toFixed(1)} s`);
    return true;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  ensureBuilt({ force: !process.argv.includes("--if-stale") }).catch((error) => {
    console.error(`slipway: build failed: ${error.message}`);
    process.exitCode = 1;
  });
}
