import { createHash } from "node:crypto";
import type { ProbotOctokit } from "probot";
import { FINAL_STATES, type Deployment, type Revision } from "../../store/model.js";
import { triggerText } from "./describe-revision.js";

export const COMMENT_MARKER = "<!-- slipway:preview -->";
const TAIL_LINES = 40;

const STATE_WORDS: Record<Revision["state"], string> = {
  QUEUED: "⏳ Queued",
  CREATING_DATABASE: "🛠️ Creating the database",
  BUILDING: "🛠️ Building",
  DEPLOYING: "🚀 Deploying",
  DEPLOYED: "✅ Deployed",
  DATABASE_FAILED: "❌ Database setup failed",
  BUILD_FAILED: "❌ Build failed",
  DEPLOY_FAILED: "❌ Deploy failed",
  CANCELLED: "🛑 Cancelled",
  SUPERSEDED: "⏭️ Superseded",
  INTERRUPTED: "❌ Interrupted",
};

/** The body of Slipway's one comment on a pull request, for its newest revision. */
export function describePullRequestComment(options: {
  deployment: Deployment;
  revision: Revision;
  publicUrl: string;
  logTail?: string;
}): string {
  const { deployment, revision, publicUrl } = options;
  const lines = [COMMENT_MARKER, `### Slipway preview \`${deployment.environment}\``, ""];
  if (deployment.state === "AWAITING_DELETE" || deployment.state === "DELETED") {
    lines.push(
      deployment.state === "DELETED"
        ? "The pull request was closed: the preview and its database were removed."
        : "The pull request was closed: the preview is being removed.",
    );
    return lines.join("\n");
  }
  lines.push(
    "| | |",
    "| --- | --- |",
    `| State | ${STATE_WORDS[revision.state]} |`,
    `| Revision | ${revision.number} · \`${revision.sha.slice(0, 7)}\` · ${triggerText(revision)} |`,
    `| Status page | ${publicUrl}/revisions/${revision.id} |`,
  );
  if (revision.environmentUrl && revision.state === "DEPLOYED") lines.push(`| Preview | ${revision.environmentUrl} |`);
  if (revision.runtimeError) lines.push("| Running | ❌ it kept crashing and was stopped; see the status page |");
  if (revision.error) lines.push(`| What went wrong | ${revision.error.replace(/[|\r\n]/g, " ")} |`);
  if (options.logTail && FINAL_STATES.has(revision.state) && revision.state !== "DEPLOYED") {
    const tail = options.logTail.split("\n").slice(-TAIL_LINES).join("\n");
    const fence = "`".repeat(Math.max(3, ...[...tail.matchAll(/`+/g)].map((m) => m[0].length + 1)));
    lines.push("", "<details><summary>Log tail</summary>", "", `${fence}text`, tail, fence, "", "</details>");
  }
  return lines.join("\n");
}

export function commentSignature(body: string): string {
  return createHash("sha256").update(body).digest("base64url").slice(0, 16);
}

/**
 * Creates or edits Slipway's comment on the pull request. Without a known id it first looks
 * for an earlier one by its marker (a create whose answer was lost), so there is only ever one.
 * Returns the comment id.
 */
export async function upsertPullRequestComment(options: {
  octokit: ProbotOctokit;
  owner: string;
  repo: string;
  number: number;
  commentId?: number;
  body: string;
}): Promise<number> {
  const { octokit, owner, repo, number, body } = options;
  let commentId = options.commentId;
  if (!commentId) {
    const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: number, per_page: 100 });
    commentId = comments.find((c) => c.user?.type === "Bot" && c.body?.startsWith(COMMENT_MARKER))?.id;
  }
  if (commentId) {
    await octokit.rest.issues.updateComment({ owner, repo, comment_id: commentId, body });
    return commentId;
  }
  const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body });
  return data.id;
}
