#!/usr/bin/env node
// The `slipway` command (package.json "bin"). Runs the compiled CLI from dist/ (`npm run build`)
// when it is there and not older than the sources, else the TypeScript source through tsx.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (relative) => new URL(relative, import.meta.url);
const compiled = ["../../dist/cli/main.js", "../../dist/src/cli/main.js"].map(here).find((url) => existsSync(fileURLToPath(url)));

/** In a checkout (scripts/build.mjs is there), a dist/ older than src/ is not used. */
async function isStale() {
  const buildScript = here("../../scripts/build.mjs");
  if (!existsSync(fileURLToPath(buildScript))) return false;
  const { isStale } = await import(buildScript.href);
  return typeof isStale === "function" && isStale();
}

const cli = compiled && !(await isStale())
  ? await import(compiled.href)
  : await (await import("tsx/esm/api")).tsImport("./main.ts", import.meta.url);
await cli.main(process.argv.slice(2));
