/*
 * How revisions read for people on the status pages: times, durations, phases. The words for
 * each state are the one table of src/revisions/state-labels.ts, shared with GitHub's check runs.
 */
import type { Tone } from "../../../revisions/state-labels.js";
import { ACTIVE_STATES, type Deployment, type Phase, type Revision } from "../../../store/model.js";

/** "push by @octocat", the same words the check run uses. */
export { triggerText } from "../../github/describe-revision.js";

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** "420 ms", "12.3 s", "4 min 5 s", "2 h 3 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago". */
export function formatAge(iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso);
  if (!Number.isFinite(ms)) return "";
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** "2024-05-01 12:00:03 UTC" */
export function formatTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export interface PhaseLine {
  name: string;
  /** "succeeded", "failed", "cancelled", "running", "reused" */
  outcome: string;
  tone: Tone;
  duration: string;
  note?: string;
}

const PHASE_NAMES: Record<Phase["name"], string> = { database: "Database", build: "Build", deploy: "Deploy" };

/**
 * The timeline of a revision for people. A revision that ran without a database phase while
 * its deployment has a database reused it, which is worth saying: it is why that step is missing.
 */
export function phaseLines(revision: Revision, deployment: Deployment | undefined, now: Date): PhaseLine[] {
  const lines: PhaseLine[] = [];
  const ran = revision.phases.length > 0 || ACTIVE_STATES.has(revision.state);
  if (ran && deployment?.database && !revision.phases.some((p) => p.name === "database")) {
    lines.push({ name: PHASE_NAMES.database, outcome: "reused", tone: "muted", duration: "—", note: "database reused" });
  }
  for (const phase of revision.phases) {
    const running = !phase.finishedAt;
    const outcome = phase.outcome ?? (running ? "running" : "finished");
    const ms = Date.parse(phase.finishedAt ?? now.toISOString()) - Date.parse(phase.startedAt);
    lines.push({
      name: PHASE_NAMES[phase.name] ?? phase.name,
      outcome,
      tone: outcome === "succeeded" ? "ok" : outcome === "failed" ? "failed" : running ? "active" : "muted",
      duration: running ? `${formatDuration(ms)} so far` : formatDuration(ms),
      note: phase.note,
    });
  }
  return lines;
}
