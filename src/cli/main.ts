/**
 * `slipway <command>`: operator commands. `runCli` takes its environment, output and fetch
 * as arguments, so tests run it in-process; run directly (`tsx src/cli/main.ts doctor`) or
 * through `src/cli/slipway.mjs` (the package's `bin`) it uses the process's.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs, parseEnv, type ParseArgsConfig } from "node:util";
import { doctorExitCode, formatChecks, runDoctor } from "./doctor.js";
import { adminCommandOptions, listListeners, moveDeployment, revokeListener } from "./fleet.js";
import { parseSecretCommand, readStandardInput, runSecretCommand, SECRET_USAGE } from "./secret.js";
import { status } from "./status.js";
import { readSettings } from "../settings.js";

export const USAGE = [
  "Usage: slipway <command> [options]",
  "",
  "Commands:",
  "  doctor                 check Node, bubblewrap, the database, the data dir, the App's",
  "                         credentials and the public URL; exits 1 when a check fails",
  "  status [--url <url>]   deployments and their latest revisions, from the control plane",
  "         [--json]        at --url or SLIPWAY_PUBLIC_URL (public repositories only)",
  "  listeners [--json]     the listeners that joined: pool, present or gone, last seen, and",
  "                         the deployments bound to each (admin token)",
  "  listener revoke <id>   refuse a listener's credential; its work goes back to the queue",
  "                         and its deployments move off it (admin token)",
  "  deployment move <id>   bind a deployment to another listener (--to <listener>) or to any",
  "         [--to <id>]     of its pool; an embedded database is left behind (admin token)",
  "  secret set <owner/repo> <environment> <NAME>",
  "                         set one of Slipway's secrets, its value read from standard input",
  "                         (previews use the environment preview) (admin token)",
  "  secret list <owner/repo> <environment> [--json]",
  "                         the environment's secret names and when they were set, no values",
  "  secret delete <owner/repo> <environment> <NAME>",
  "                         remove a secret (admin token)",
  "  help                   this text",
  "",
  "Settings come from the environment and from .env in the current folder, as for npm start.",
  "The admin token is SLIPWAY_ADMIN_TOKEN, or the admin.token file in SLIPWAY_DATA_DIR; the",
  "control plane is --url or SLIPWAY_PUBLIC_URL.",
];

const OPTIONS: Record<string, ParseArgsConfig["options"]> = {
  status: { url: { type: "string" }, json: { type: "boolean" } },
  listeners: { url: { type: "string" }, json: { type: "boolean" } },
  listener: { url: { type: "string" } },
  deployment: { url: { type: "string" }, to: { type: "string" } },
  secret: { url: { type: "string" }, json: { type: "boolean" } },
};

/** The fleet commands: the action word each takes and how many ids follow it. */
const FLEET_ARITY: Record<string, { action?: string; ids: number; usage: string }> = {
  listeners: { ids: 0, usage: "no arguments" },
  listener: { action: "revoke", ids: 1, usage: "revoke <listener id>" },
  deployment: { action: "move", ids: 1, usage: "move <deployment id> [--to <listener id>]" },
};

export interface CliIo {
  /** The process environment; `.env` in `cwd` is merged under it. */
  env: NodeJS.ProcessEnv;
  /** Where `.env` is looked for and relative paths are meant from; default the process's. */
  cwd?: string;
  stdout(line: string): void;
  stderr(line: string): void;
  fetch?: typeof fetch;
  now?: () => Date;
  /** Standard input read to its end (`slipway secret set`); default the process's. */
  stdin?: () => Promise<string>;
}

/**
 * Runs one command and answers its exit code: 0 fine, 1 failed, 2 not understood.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), { env: process.env, stdout: console.log, stderr: console.error });
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    USAGE.forEach((line) => io.stdout(line));
    return 0;
  }
  const envFile = path.resolve(io.cwd ?? process.cwd(), ".env");
  const env = withEnvFile(io.env, envFile);
  let values: { url?: string; json?: boolean; to?: string };
  let positionals: string[];
  try {
    const options: ParseArgsConfig["options"] = OPTIONS[command] ?? {};
    const parsed = parseArgs({ args: [...rest], options, allowPositionals: command in FLEET_ARITY || command === "secret", strict: true });
    values = parsed.values as typeof values;
    positionals = parsed.positionals;
  } catch (error) {
    return usageError(io, `slipway ${command}: ${(error as Error).message}`);
  }
  if (command in FLEET_ARITY) {
    const [action, ...ids] = positionals;
    const expected = FLEET_ARITY[command]!;
    if (action !== expected.action || ids.length !== expected.ids) return usageError(io, `slipway ${command}: expected ${expected.usage}`);
    const fleet = await adminCommandOptions(env, values, io.fetch);
    if ("problem" in fleet) {
      io.stderr(`slipway ${command}: ${fleet.problem}`);
      return 1;
    }
    const output =
      command === "listeners" ? await listListeners(fleet) : command === "listener" ? await revokeListener(fleet, ids[0]!) : await moveDeployment(fleet, ids[0]!, values.to);
    output.stdout.forEach((line) => io.stdout(line));
    output.stderr.forEach((line) => io.stderr(line));
    return output.exitCode;
  }

  if (command === "secret") {
    const secretCommand = parseSecretCommand(positionals);
    if (typeof secretCommand === "string") return usageError(io, `slipway secret: ${secretCommand}; expected ${SECRET_USAGE}`);
    const fleet = await adminCommandOptions(env, values, io.fetch);
    if ("problem" in fleet) {
      io.stderr(`slipway secret: ${fleet.problem}`);
      return 1;
    }
    const output = await runSecretCommand(fleet, secretCommand, io.stdin ?? (() => readStandardInput(process.stdin, io.stderr)));
    output.stdout.forEach((line) => io.stdout(line));
    output.stderr.forEach((line) => io.stderr(line));
    return output.exitCode;
  }
  if (command === "doctor") {
    const results = await runDoctor({ env, envFile });
    formatChecks(results).forEach((line) => io.stdout(line));
    return doctorExitCode(results);
  }
  if (command === "status") {
    let url = values.url;
    if (url === undefined) {
      try {
        url = readSettings(env).publicUrl;
      } catch (error) {
        io.stderr(`slipway status: ${(error as Error).message}; or pass --url`);
        return 1;
      }
    }
    const output = await status({ url, json: values.json, fetch: io.fetch, now: io.now?.() });
    output.stdout.forEach((line) => io.stdout(line));
    output.stderr.forEach((line) => io.stderr(line));
    return output.exitCode;
  }
  return usageError(io, `slipway: unknown command ${JSON.stringify(command)}`);
}

function usageError(io: CliIo, message: string): number {
  io.stderr(message);
  io.stderr("");
  USAGE.forEach((line) => io.stderr(line));
  return 2;
}

/** The environment with `.env`'s values under it: set variables win, as with `process.loadEnvFile`. */
export function withEnvFile(env: NodeJS.ProcessEnv, envFile: string): NodeJS.ProcessEnv {
  if (!existsSync(envFile)) return env;
  const merged = { ...env };
  for (const [name, value] of Object.entries(parseEnv(readFileSync(envFile, "utf8")))) merged[name] ??= value;
  return merged;
}

/** The process's own run: `node dist/src/cli/main.js …`, `tsx src/cli/main.ts …` or the bin entry. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runCli(argv, {
    env: process.env,
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
