#!/usr/bin/env node
/**
 * `npm start` (`node scripts/start.mjs`) and `npm run listener` (`… start.mjs listener`):
 * compiles dist/ first when it is missing or older than the sources (in a child process, so
 * esbuild never loads into the server), then runs the compiled entry point in this very
 * process: plain Node, no TypeScript loader. The entry point owns the signals and the exit
 * code, exactly as under `node dist/main.js` (what the Docker image runs).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DIST, ENTRY_POINTS, isStale } from "./build.mjs";

const name = process.argv[2] ?? "main";
const entry = ENTRY_POINTS[name];
if (!entry) {
  console.error(`usage: node scripts/start.mjs [${Object.keys(ENTRY_POINTS).join("|")}]`);
  process.exit(2);
}
if (isStale()) {
  const buildScript = path.join(path.dirname(fileURLToPath(import.meta.url)), "build.mjs");
  const built = spawnSync(process.execPath, [buildScript, "--if-stale"], { stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
await import(pathToFileURL(path.join(DIST, entry)).href);
