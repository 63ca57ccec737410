/**
 * `slipway secret set|list|delete <owner/repo> <environment> [<NAME>]`: Slipway's own secrets,
 * through the control plane's API with the admin token. `set` reads the value from standard
 * input, so it never appears in a command line, a shell history or a process list.
 */
import {
  InvalidSecretError,
  validateRepositoryName,
  validateSecretEnvironment,
  validateSecretName,
  validateSecretValue,
} from "../control-plane/secrets/secret-store.js";
import { callAdminApi, type FleetOptions } from "./fleet.js";
import type { CommandOutput } from "./status.js";

export const SECRET_USAGE = "set|delete <owner/repo> <environment> <NAME>, or list <owner/repo> <environment>";

export interface SecretCommand {
  action: "set" | "list" | "delete";
  repository: string;
  environment: string;
  /** For `set` and `delete`. */
  name?: string;
}

/** The command the words make, or what is wrong with them (a usage problem). */
export function parseSecretCommand(positionals: readonly string[]): SecretCommand | string {
  const [action, repository, environment, name, ...extra] = positionals;
  if (action !== "set" && action !== "list" && action !== "delete") return action === undefined ? "missing set, list or delete" : `unknown action ${JSON.stringify(action)}`;
  const wantsName = action !== "list";
  if (repository === undefined || environment === undefined || (wantsName && name === undefined) || (!wantsName && name !== undefined) || extra.length > 0) {
    return `${action} takes ${wantsName ? "<owner/repo> <environment> <NAME>" : "<owner/repo> <environment>"}`;
  }
  return { action, repository, environment, name };
}

/**
 * Reads a stream to its end. On a terminal it first says how to end the value (nothing is
 * echoed back by Slipway; the terminal itself may show what is typed).
 */
export async function readStandardInput(stream: NodeJS.ReadStream, hint: (line: string) => void): Promise<string> {
  if (stream.isTTY) hint("Type or paste the value, then press Ctrl-D on a line of its own.");
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8");
}

function secretsPath(command: SecretCommand): string {
  const [owner = "", repo = ""] = command.repository.split("/");
  const base = `/api/v1/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/environments/${encodeURIComponent(command.environment)}/secrets`;
  return command.name === undefined ? base : `${base}/${encodeURIComponent(command.name)}`;
}

const failed = (message: string): CommandOutput => ({ exitCode: 1, stdout: [], stderr: [message] });

/**
 * Runs a parsed `slipway secret` command. Names are checked before the value is read; the
 * value loses its trailing line breaks (`echo` adds one) and is sent only in the request body.
 *
 * @example
 * await runSecretCommand(fleet, { action: "set", repository: "acme/shop", environment: "production", name: "API_KEY" }, readStdin);
 */
export async function runSecretCommand(options: FleetOptions, command: SecretCommand, readValue: () => Promise<string>): Promise<CommandOutput> {
  const label = `slipway secret ${command.action}`;
  const where = `${command.repository} (${command.environment})`;
  try {
    validateRepositoryName(command.repository);
    validateSecretEnvironment(command.environment);
    if (command.name !== undefined) validateSecretName(command.name);
  } catch (error) {
    if (error instanceof InvalidSecretError) return failed(`${label}: ${error.message}`);
    throw error;
  }

  if (command.action === "list") {
    const answer = await callAdminApi(options, "GET", secretsPath(command));
    if (!answer.ok) return failed(`${label}: ${answer.message}`);
    const { secrets } = answer.data as { secrets: Array<{ name: string; updatedAt: string; updatedBy: string }> };
    if (options.json) return { exitCode: 0, stdout: [JSON.stringify(secrets, null, 2)], stderr: [] };
    if (secrets.length === 0) return { exitCode: 0, stdout: [`${where} has no secrets.`], stderr: [] };
    const rows = secrets.map((s) => [s.name, s.updatedAt, s.updatedBy]);
    const header = ["NAME", "UPDATED", "BY"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
    return { exitCode: 0, stdout: [line(header), ...rows.map(line)], stderr: [] };
  }

  if (command.action === "delete") {
    const answer = await callAdminApi(options, "DELETE", secretsPath(command));
    if (!answer.ok) return failed(`${label}: ${answer.message}`);
    return { exitCode: 0, stdout: [`Deleted ${command.name} of ${where}.`], stderr: [] };
  }

  const value = (await readValue()).replace(/[\r\n]+$/, "");
  try {
    validateSecretValue(value);
  } catch (error) {
    if (error instanceof InvalidSecretError) return failed(`${label}: ${error.message} (the value is read from standard input)`);
    throw error;
  }
  const answer = await callAdminApi(options, "PUT", secretsPath(command), { value });
  if (!answer.ok) return failed(`${label}: ${answer.message}`);
  return { exitCode: 0, stdout: [`Set ${command.name} of ${where}: its builds and running revisions get it from their next revision.`], stderr: [] };
}
