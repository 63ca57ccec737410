import os from "node:os";

import { isReservedVariable } from "../../protocol/reserved-variables.js";
import { RUN_MARKER_VARIABLE } from "./kill-process-tree.js";

export interface BuildEnvironmentOptions {
  /** The repository config's `build.env`. */
  configEnv: Readonly<Record<string, string>>;
  /** `DATABASE_URL` of the revision's deployment. */
  databaseUrl: string;
  sha: string;
  /** Branch (or ref) the revision was built from: event data, passed through verbatim. */
  ref: string;
  environment: string;
  revisionId: string;
  /** `SLIPWAY_RUN_MARKER`, unique per build or instance: lets `killProcessTree` find processes that escaped the process group. */
  runMarker: string;
  /** `HOME` for the build; default: the listener's own. */
  home?: string;
  /** The GitHub environment's variables and Slipway's secrets (see RevisionSettings): over `build.env`, under Slipway's own. */
  settings?: { variables: Readonly<Record<string, string>>; secrets: Readonly<Record<string, string>> };
}



const FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The whole environment a build sees: `PATH`, `HOME`, the config's `build.env`, then the
 * GitHub environment's variables, then Slipway's secrets (each over the one before), then
 * `DATABASE_URL` and the `SLIPWAY_*` values of the revision (over all). Nothing else is taken from
 * `process.env`, so the app's private key, webhook secret, admin database URL and tokens
 * never reach a build. Event data (the ref) travels as a value, never as shell text.
 *
 * @example
 * ```ts
 * const env = buildEnvironment({
 *   configEnv: { NODE_ENV: "production" },
 *   databaseUrl, sha, ref: "main", environment: "production",
 *   revisionId, runMarker: `slipway-${revisionId}-${randomUUID()}`,
 * });
 * await runCommands({ commands, cwd, env, timeoutMs, onOutput });
 * ```
 */
export function buildEnvironment(options: BuildEnvironmentOptions): Record<string, string> {
  const { configEnv, databaseUrl, sha, ref, environment, revisionId, runMarker } = options;
  const env = new Map<string, string>([
    ["PATH", process.env.PATH || FALLBACK_PATH],
    ["HOME", options.home ?? (process.env.HOME || os.homedir())],
  ]);

  for (const [name, value] of Object.entries(configEnv)) {
    if (!VARIABLE_NAME.test(name)) {
      throw new Error(`build.env: "${name}" is not a valid variable name (letters, digits and '_', not starting with a digit)`);
    }
    if (name === "DATABASE_URL" || name.startsWith("SLIPWAY_")) {
      throw new Error(`build.env: ${name} is set by Slipway and cannot be overridden`);
    }
    env.set(name, checkedValue(`build.env.${name}`, value));
  }
  // Checked where they are set (control plane); a reserved name that got here anyway is dropped.
  for (const [source, values] of [["variable", options.settings?.variables], ["secret", options.settings?.secrets]] as const) {
    for (const [name, value] of Object.entries(values ?? {})) {
      if (VARIABLE_NAME.test(name) && !isReservedVariable(name)) env.set(name, checkedValue(`the ${source} ${name}`, value));
    }
  }

  const slipway: Array<[string, string]> = [
    ["DATABASE_URL", databaseUrl],
    ["SLIPWAY_SHA", sha],
    ["SLIPWAY_REF", ref],
    ["SLIPWAY_ENVIRONMENT", environment],
    ["SLIPWAY_REVISION", revisionId],
    [RUN_MARKER_VARIABLE, runMarker],
  ];
  for (const [name, value] of slipway) env.set(name, checkedValue(name, value));

  // fromEntries defines own properties, so even a "__proto__" key stays a plain variable.
  return Object.fromEntries(env);
}

function checkedValue(name: string, value: unknown): string {
  if (typeof value !== "string") throw new Error(`${name} must be a string, got ${typeof value}`);
  // A NUL cannot be passed in an environment; spawn would fail with a vaguer message.
  if (value.includes("\0")) throw new Error(`${name} contains a NUL character`);
  return value;
}
