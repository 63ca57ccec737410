import { REVISION_STATE_LABELS, type CheckRunConclusion, type CheckRunStatus } from "../../revisions/state-labels.js";
import { isFinal, isTornDown, type Deployment, type Phase, type Revision } from "../../store/model.js";

/** GitHub's limit for check run output fields. */
export const CHECK_RUN_TEXT_LIMIT = 65_535;
const DESCRIPTION_LIMIT = 140;

export type { CheckRunConclusion, CheckRunStatus };
export type DeploymentStatusState = "queued" | "in_progress" | "success" | "failure" | "error" | "inactive";

export interface CheckRunView {
  name: string;
  status: CheckRunStatus;
  conclusion?: CheckRunConclusion;
  title: string;
  summary: string;
  /** Only for failures: the log tail. Filled in by the caller, which reads the log. */
  wantsLogTail: boolean;
  actions: Array<{ label: string; description: string; identifier: string }>;
}

export interface DeploymentStatusView {
  state: DeploymentStatusState;
  description: string;
  environmentUrl?: string;
}

/** Buttons that depend on the rest of the deployment, decided by the caller (see rollbackRefusal). */
export interface CheckRunOffers {
  /** An older kept build, while a newer revision is live: "Roll back". */
  rollback?: boolean;
}

/** The check run a revision should show now (docs/architecture.md, "Revision states"). */
export function describeCheckRun(revision: Revision, deployment: Deployment, offers: CheckRunOffers = {}): CheckRunView {
  const { status, conclusion } = REVISION_STATE_LABELS[revision.state].checkRun;
  return {
    name: `slipway/${deployment.environment}`,
    status,
    conclusion,
    title: `${titleOf(revision)} · ${deployment.environment} · revision ${revision.number}`,
    summary: summarize(revision, deployment),
    wantsLogTail: conclusion === "failure",
    actions: checkRunActions(revision, offers),
  };
}

/** The deployment status a revision should show now. `infrastructureFault` turns failure into `error`. */
export function describeDeploymentStatus(revision: Revision, deployment: Deployment): DeploymentStatusView {
  const tornDown = isTornDown(deployment);
  const state: DeploymentStatusState = (() => {
    if (tornDown && isFinal(revision)) return "inactive";
    switch (revision.state) {
      case "QUEUED":
        return "queued";
      case "CREATING_DATABASE":
      case "BUILDING":
      case "DEPLOYING":
        return "in_progress";
      case "DEPLOYED":
        return revision.runtimeError ? "error" : "success";
      case "CANCELLED":
      case "SUPERSEDED":
        return "inactive";
      case "INTERRUPTED":
        return "error";
      default:
        return revision.infrastructureFault ? "error" : "failure";
    }
  })();
  const detail = tornDown
    ? ": the preview was removed"
    : revision.runtimeError
      ? ": it kept crashing and was stopped"
      : revision.error
        ? `: ${revision.error}`
        : "";
  return {
    state,
    environmentUrl: state === "success" ? revision.environmentUrl : undefined,
    // An inactive deployment needs no second word: keep it from costing another write.
    description: state === "inactive" ? "Inactive" : clip(`${titleOf(revision)} (revision ${revision.number} of ${deployment.environment})${detail}`, DESCRIPTION_LIMIT),
  };
}

/** A short signature of what GitHub shows; equal signatures need no update. */
export function signatureOf(view: {
  status?: string;
  conclusion?: string;
  state?: string;
  summary?: string;
  description?: string;
  actions?: unknown;
  environmentUrl?: string;
}): string {
  return JSON.stringify([view.status, view.conclusion, view.state, view.summary, view.description, view.actions, view.environmentUrl]);
}

function summarize(revision: Revision, deployment: Deployment): string {
  const lines = [
    `**${deployment.environment}** · revision ${revision.number} · commit \`${revision.sha.slice(0, 7)}\` · ${triggerText(revision)}`,
    "",
  ];
  const rollbackTo = revision.trigger.kind === "rollback" ? revision.trigger.rollbackTo : undefined;
  if (rollbackTo) {
    lines.push(`↩️ Rolled back by @${revision.trigger.actor} to revision ${rollbackTo.number} (\`${rollbackTo.sha.slice(0, 7)}\`): its kept build, nothing was built.`, "");
  }
  const phases = revision.phases;
  if (!phases.some((p) => p.name === "database") && revision.state !== "QUEUED" && deployment.database) {
    lines.push("Database: reused (set up by an earlier revision).", "");
  }
  if (phases.length > 0) {
    lines.push("| phase | result | duration |", "| --- | --- | --- |");
    for (const phase of phases) lines.push(`| ${phase.name} | ${phaseResult(phase)} | ${duration(phase)} |`);
    lines.push("");
  }
  if (revision.state === "QUEUED" && revision.waitingFor) lines.push(`⏳ ${revision.waitingFor}.`, "");
  for (const note of revision.notes ?? []) lines.push(`ℹ️ ${note}`, "");
  const moved = movedNotice(revision, deployment);
  if (moved) lines.push(moved, "");
  if (revision.error) lines.push(`**What went wrong:** ${revision.error}`, "");
  if (revision.sandbox === "none") {
    lines.push("⚠️ Builds are not sandboxed on this Slipway: this one ran with the listener's own access to the machine.", "");
  }
  return clip(lines.join("\n").trim(), CHECK_RUN_TEXT_LIMIT);
}

/**
 * For the revisions that waited when the deployment was moved off a listener, and the one
 * that set its database up afresh: what the move means for its data.
 */
function movedNotice(revision: Revision, deployment: Deployment): string | undefined {
  const moved = deployment.moved;
  if (!moved) return undefined;
  const databasePhase = revision.phases.find((p) => p.name === "database");
  const concerned = databasePhase ? databasePhase.startedAt >= moved.at : !isFinal(revision);
  if (!concerned) return undefined;
  const where = moved.to ? `listener ${moved.to}` : "any listener of its pool";
  const data = moved.databaseLeftBehind
    ? ` Its embedded database stayed on ${moved.from}; this revision ${databasePhase ? "started" : "starts"} with an empty one.`
    : "";
  return `↪️ ${moved.by} moved this deployment from listener ${moved.from} to ${where} at ${moved.at}.${data}`;
}

/** Who or what made a revision, in words: "push by @octocat". */
export function triggerText(revision: Revision): string {
  const { kind, actor } = revision.trigger;
  const words: Record<Revision["trigger"]["kind"], string> = {
    push: "push",
    deploy_command: "/deploy",
    rerun: "re-run",
    redeploy: "redeploy",
    pr_update: "new commits",
    restart: "restart with new settings",
    rollback: "rollback",
  };
  return `${words[kind]} by @${actor}`;
}

/** The "Roll back" button (GitHub: label at most 20 characters, description at most 40). */
export const ROLLBACK_ACTION = { label: "Roll back", description: "Put this build back, without building", identifier: "rollback" };

/** The check run's buttons: Cancel while it is queued or runs, Redeploy once it ended, Roll back when offered. */
export function checkRunActions(revision: Revision, offers: CheckRunOffers = {}) {
  if (!isFinal(revision)) return [{ label: "Cancel", description: "Stop this revision", identifier: "cancel" }];
  const redeploy = { label: "Redeploy", description: "Build and deploy this commit again", identifier: "redeploy" };
  return offers.rollback && revision.state === "DEPLOYED" ? [redeploy, ROLLBACK_ACTION] : [redeploy];
}

function phaseResult(phase: Phase): string {
  const outcome = phase.outcome ?? "running";
  return phase.note ? `${outcome}: ${phase.note}` : outcome;
}

function duration(phase: Phase): string {
  if (!phase.finishedAt) return "…";
  const ms = Date.parse(phase.finishedAt) - Date.parse(phase.startedAt);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The last `limit` characters of `log`, as a fenced block that fits GitHub's limit, cut at a
 * code point boundary with a marker saying how much was left out.
 */
export function logTailForCheckRun(log: string, limit = CHECK_RUN_TEXT_LIMIT): string {
  const longestFence = Math.max(2, ...[...log.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longestFence + 1);
  const room = limit - (fence.length * 2 + 2) - 80;
  let body = log;
  let marker = "";
  if (body.length > room) {
    let start = body.length - room;
    // Do not start in the middle of a surrogate pair.
    if (/[\uDC00-\uDFFF]/.test(body[start] ?? "")) start += 1;
    marker = `[… ${start} earlier characters cut; the whole log is on the status page]\n`;
    body = body.slice(start);
  }
  return `${marker}${fence}\n${body}\n${fence}`;
}

function clip(text: string, limit: number): string {
  if (text.length <= limit) return text;
  let cut = limit - 1;
  if (/[\uDC00-\uDFFF]/.test(text[cut] ?? "")) cut -= 1;
  return `${text.slice(0, cut)}…`;
}

function titleOf(revision: Revision): string {
  const { label, title } = REVISION_STATE_LABELS[revision.state];
  return title ?? label;
}
