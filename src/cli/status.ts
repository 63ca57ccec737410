/**
 * `slipway status`: the deployments and their latest revisions, from the control plane's
 * read-only JSON API (`GET /api/v1/deployments`). The CLI does not sign in, so it sees what
 * anyone sees: public repositories' deployments.
 */
import type { DeploymentView, RevisionView } from "../control-plane/http/status-pages/api-views.js";

/** One entry of `GET /api/v1/deployments`. */
export type DeploymentListItem = DeploymentView & { latestRevision: RevisionView | null };

export interface CommandOutput {
  exitCode: number;
  stdout: string[];
  stderr: string[];
}

export interface StatusOptions {
  /** The control plane's base URL (`SLIPWAY_PUBLIC_URL` or `--url`). */
  url: string;
  /** Print the API's JSON instead of a table. */
  json?: boolean;
  fetch?: typeof fetch;
  now?: Date;
  /** Default 10 s. */
  timeoutMs?: number;
}

/**
 * @example
 * const { exitCode, stdout, stderr } = await status({ url: "http://localhost:3000" });
 */
export async function status(options: StatusOptions): Promise<CommandOutput> {
  const base = options.url.replace(/\/+$/, "");
  const endpoint = `${base}/api/v1/deployments`;
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(endpoint, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    return failure(`cannot reach ${endpoint} (${why}). Is Slipway running there? Pass --url or set SLIPWAY_PUBLIC_URL.`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return failure(`${endpoint} answered ${response.status} with something other than JSON: is that Slipway?`);
  }
  if (!response.ok) {
    const message = (body as { error?: unknown }).error;
    return failure(`${endpoint} answered ${response.status}${typeof message === "string" ? `: ${message}` : ""}`);
  }
  const deployments = (body as { deployments?: unknown }).deployments;
  if (!Array.isArray(deployments)) return failure(`${endpoint} answered without a deployments list: is that Slipway?`);
  if (options.json) return { exitCode: 0, stdout: [JSON.stringify(body, null, 2)], stderr: [] };
  return { exitCode: 0, stdout: formatStatusTable(deployments as DeploymentListItem[], options.now ?? new Date()), stderr: [] };
}

function failure(message: string): CommandOutput {
  return { exitCode: 1, stdout: [], stderr: [`slipway status: ${message}`] };
}

const HEADER = ["REPOSITORY", "ENVIRONMENT", "STATE", "REVISION", "REVISION STATE", "SHA", "AGE"];

/** A plain table, columns padded to their widest cell; the last line says what is left out. */
export function formatStatusTable(deployments: readonly DeploymentListItem[], now: Date): string[] {
  if (deployments.length === 0) return ["No deployments to show (the CLI sees public repositories only)."];
  const rows = deployments.map((deployment) => {
    const revision = deployment.latestRevision;
    return [
      deployment.repository.fullName,
      deployment.environment,
      deployment.state,
      revision ? `#${revision.number}` : "-",
      revision ? revision.state : "-",
      revision ? revision.sha.slice(0, 7) : "-",
      revision ? age(revision.createdAt, now) : "-",
    ];
  });
  const widths = HEADER.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ").trimEnd();
  return [line(HEADER), ...rows.map(line)];
}

/** How long ago: `42s`, `5m`, `3h`, `2d`. */
export function age(iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso);
  if (!Number.isFinite(ms)) return "?";
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3_600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}
