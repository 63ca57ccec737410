import type { DeploymentState, RevisionState } from "../store/model.js";

/** Colour families of the status pages' badges; the page's stylesheet gives each a colour. */
export type Tone = "ok" | "failed" | "active" | "waiting" | "warn" | "muted";

export type CheckRunStatus = "queued" | "in_progress" | "completed";
export type CheckRunConclusion = "success" | "failure" | "cancelled";

export interface RevisionStateLabel {
  /** The word for the state: status pages' badges, pull request comments, and GitHub unless `title` says more. */
  label: string;
  /** Check run titles and deployment status descriptions, when they say more than the label. */
  title?: string;
  /** Before the label in the pull request comment. */
  emoji: string;
  tone: Tone;
  /** What the revision's check run shows in this state. */
  checkRun: { status: CheckRunStatus; conclusion?: CheckRunConclusion };
}

/**
 * How each revision state reads, for GitHub and for people alike (docs/architecture.md,
 * "Revision states"). The deployment status follows from it in describe-revision.ts.
 */
export const REVISION_STATE_LABELS: Readonly<Record<RevisionState, RevisionStateLabel>> = {
  QUEUED: { label: "Queued", emoji: "⏳", tone: "waiting", checkRun: { status: "queued" } },
  CREATING_DATABASE: { label: "Creating the database", emoji: "🛠️", tone: "active", checkRun: { status: "in_progress" } },
  BUILDING: { label: "Building", emoji: "🛠️", tone: "active", checkRun: { status: "in_progress" } },
  DEPLOYING: { label: "Deploying", emoji: "🚀", tone: "active", checkRun: { status: "in_progress" } },
  DEPLOYED: { label: "Deployed", emoji: "✅", tone: "ok", checkRun: { status: "completed", conclusion: "success" } },
  DATABASE_FAILED: { label: "Database setup failed", emoji: "❌", tone: "failed", checkRun: { status: "completed", conclusion: "failure" } },
  BUILD_FAILED: { label: "Build failed", emoji: "❌", tone: "failed", checkRun: { status: "completed", conclusion: "failure" } },
  DEPLOY_FAILED: { label: "Deploy failed", emoji: "❌", tone: "failed", checkRun: { status: "completed", conclusion: "failure" } },
  CANCELLED: { label: "Cancelled", emoji: "🛑", tone: "muted", checkRun: { status: "completed", conclusion: "cancelled" } },
  SUPERSEDED: { label: "Superseded", title: "Superseded by a newer revision", emoji: "⏭️", tone: "muted", checkRun: { status: "completed", conclusion: "cancelled" } },
  INTERRUPTED: { label: "Interrupted", title: "Interrupted: the listener was lost", emoji: "❌", tone: "failed", checkRun: { status: "completed", conclusion: "failure" } },
};

export const DEPLOYMENT_STATE_LABELS: Readonly<Record<DeploymentState, { label: string; tone: Tone }>> = {
  AWAITING_DATABASE: { label: "Awaiting database", tone: "waiting" },
  READY: { label: "Ready", tone: "ok" },
  AWAITING_DELETE: { label: "Being deleted", tone: "warn" },
  DELETED: { label: "Deleted", tone: "muted" },
};
