import type { StandInState } from "./stand-in-state.js";

/** A request as the stand-in recorded it. */
export interface RecordedRequest {
  id: number;
  method: string;
  /** Path without `/api/v3` and without the query, e.g. `/repos/acme/web/check-runs`. */
  path: string;
  query: Record<string, string | string[]>;
  /** The JSON body (parsed), the raw text when it was not JSON, `undefined` when empty. */
  body: unknown;
  status: number;
  /** ISO time the request arrived. */
  time: string;
  durationMs: number;
  /** The description's operationId, when the request matched one. */
  operationId?: string;
  /** The description's path template, when the request matched one. */
  template?: string;
  /** Decoded path parameters of that template (e.g. `{ owner, repo, path: ".github/slipway.yml" }`). */
  params?: Record<string, string>;
  /** Who called: the app (JWT), an installation token, or nobody. */
  auth: "app" | "installation" | "none";
  /** Set when fault injection answered instead of the stand-in. */
  faulted: boolean;
  /** Why the stand-in answered as it did when it is not GitHub's normal behaviour (e.g. "not implemented by stand-in"). */
  note?: string;
}

/** A request that broke GitHub's OpenAPI description. */
export interface RecordedViolation {
  request: { method: string; path: string; query: Record<string, string | string[]>; body: unknown };
  /** The matched operationId, or null when no operation matches. */
  operation: string | null;
  errors: Array<{ location: string; pointer: string; keyword: string; message: string }>;
  /** One line per error: `POST /repos/{owner}/{repo}/check-runs (checks/create) body/output/summary: is required but missing`. */
  message: string;
}

/**
 * A readable summary of what the stand-in holds, for failure messages: check runs and
 * deployments with their transitions, comments, violations, and the latest requests.
 * Tokens are never included.
 */
export function describeStandInState(options: { state: StandInState; requests: RecordedRequest[]; violations: RecordedViolation[]; lastRequests?: number }): string {
  const { state } = options;
  const lines: string[] = [];
  lines.push(`check runs (${state.checkRuns.length}):`);
  for (const run of state.checkRuns) {
    const steps = run.history.map((h) => (h.conclusion ? `${h.status}/${h.conclusion}` : h.status)).join(" → ");
    lines.push(`  ${run.owner}/${run.repo} #${run.id} "${run.name}" @${run.headSha.slice(0, 7)} external_id=${run.externalId || "-"}: ${steps}${run.output.title ? ` — "${run.output.title}"` : ""}`);
  }
  lines.push(`deployments (${state.deployments.length}):`);
  for (const deployment of state.deployments) {
    const steps = deployment.statuses.map((s) => `${s.state}${s.automatic ? "(auto)" : ""}`).join(" → ") || "(no status)";
    lines.push(`  ${deployment.owner}/${deployment.repo} #${deployment.id} ${deployment.environment} @${deployment.sha.slice(0, 7)} ref=${deployment.ref}${deployment.transientEnvironment ? " transient" : ""}: ${steps}`);
  }
  if (state.comments.length > 0) {
    lines.push(`comments (${state.comments.length}):`);
    for (const comment of state.comments) lines.push(`  ${comment.owner}/${comment.repo}#${comment.issueNumber} #${comment.id} by ${comment.user.login}: ${JSON.stringify(comment.body.length > 100 ? `${comment.body.slice(0, 97)}...` : comment.body)}`);
  }
  if (state.reactions.length > 0) lines.push(`reactions: ${state.reactions.map((r) => `${r.content} on #${r.commentId}`).join(", ")}`);
  lines.push(`violations (${options.violations.length}):`);
  for (const violation of options.violations.slice(-10)) lines.push(`  ${violation.message.split("\n").join("\n  ")}`);
  const last = options.requests.slice(-(options.lastRequests ?? 15));
  lines.push(`last ${last.length} of ${options.requests.length} requests:`);
  for (const request of last) {
    lines.push(`  ${request.method} ${request.path} → ${request.status}${request.operationId ? ` (${request.operationId})` : ""}${request.faulted ? " [injected fault]" : ""}${request.note ? ` [${request.note}]` : ""}`);
  }
  return lines.join("\n");
}
