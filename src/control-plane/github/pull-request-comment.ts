import { createHash } from "node:crypto";
import type { ProbotOctokit } from "probot";
import { REVISION_STATE_LABELS } from "../../revisions/state-labels.js";
import { isFinal, isTornDown, type Deployment, type Revision } from "../../store/model.js";
import { triggerText } from "./describe-revision.js";

export const COMMENT_MARKER = "<!-- slipway:preview -->";
const TAIL_LINES = 40;

/** The body of Slipway's one comment on a pull request, for its newest revision. */
export function describePullRequestComment(options: {
  deployment: Deployment;
  revision: Revision;
  publicUrl: string;
  logTail?: string;
}): string {
  const { deployment, revision, publicUrl } = options;
  const lines = [COMMENT_MARKER, `### Slipway preview \`${deployment.environment}\``, ""];
  if (isTornDown(deployment)) {
    const removed = deployment.state === "DELETED" ? "the preview and its database were removed" : "the preview is being removed";
    if (!deployment.expired) {
      lines.push(`The pull request was closed: ${removed}.`);
      return lines.join("\n");
    }
    const days = deployment.expired.afterDays;
    lines.push(
      `This preview expired after ${days} ${days === 1 ? "day" : "days"} without a new commit or \`/deploy\`: ${removed}.`,
      "",
      "Comment `/deploy` to deploy it again (it starts with a new, empty database).",
    );
    return lines.join("\n");
  }
  lines.push(
    "| | |",
    "| --- | --- |",
    `| State | ${REVISION_STATE_LABELS[revision.state].emoji} ${REVISION_STATE_LABELS[revision.state].label} |`,
    `| Revision | ${revision.number} · \`${revision.sha.slice(0, 7)}\` · ${triggerText(revision)} |`,
    `| Status page | ${publicUrl}/revisions/${revision.id} |`,
  );
  if (revision.environmentUrl && revision.state === "DEPLOYED") lines.push(`| Preview | ${revision.environmentUrl} |`);
  if (revision.runtimeError) lines.push("| Running | ❌ it kept crashing and was stopped; see the status page |");
  if (revision.error) lines.push(`| What went wrong | ${revision.error.replace(/[|\r\n]/g, " ")} |`);
  if (options.logTail && isFinal(revision) && revision.state !== "DEPLOYED") {
    const tail = options.logTail.split("\n").slice(-TAIL_LINES).join("\n");
    const fence = "`".repeat(Math.max(3, ...[...tail.matchAll(/`+/g)].map((m) => m[0].length + 1)));
    lines.push("", "<details><summary>Log tail</summary>", "", `${fence}text`, tail, fence, "", "</details>");
  }
  return lines.join("\n");
}

export function commentSignature(body: string): string {
  return createHash("sha256").update(body).digest("base64url").slice(0, 16);
}

/** Who Slipway's comments are written by: its GitHub App (its id), and its bot `<slug>[bot]` when the slug is known. */
export interface OwnApp {
  id?: number | undefined;
  slug?: string | undefined;
}

/** The parts of an issue comment that tell who wrote it (as GitHub's REST API returns them). */
interface CommentAuthor {
  user?: { login?: string; type?: string } | null;
  performed_via_github_app?: { id?: number; slug?: string } | null;
}

/**
 * Whether Slipway's own app wrote the comment. A comment made with an installation token is
 * written by the app's bot user (`type: "Bot"`, login `<slug>[bot]`) and names the app in
 * `performed_via_github_app`. Anything else, a person, another app's bot, or a person acting
 * through an app (a `User` with `performed_via_github_app`), is not ours, whatever its body says.
 */
export function isOwnComment(comment: CommentAuthor, app: OwnApp): boolean {
  if (comment.user?.type !== "Bot") return false;
  if (app.id !== undefined && comment.performed_via_github_app?.id === app.id) return true;
  return app.slug !== undefined && app.slug !== "" && comment.user.login === `${app.slug}[bot]`;
}

/**
 * Creates or edits Slipway's comment on the pull request. Without a known id it first looks
 * for an earlier one (a create whose answer was lost): one that starts with the marker and
 * that Slipway's own app wrote (see {@link isOwnComment}), never a look-alike by someone else,
 * which would otherwise be edited and so taken over. Without an `app` to compare with, none is
 * adopted: a second comment is better than someone else's edited. Returns the comment id.
 */
export async function upsertPullRequestComment(options: {
  octokit: ProbotOctokit;
  owner: string;
  repo: string;
  number: number;
  commentId?: number;
  body: string;
  /** Who Slipway's comments are by; needed only when `commentId` is unknown. */
  app?: OwnApp;
}): Promise<number> {
  const { octokit, owner, repo, number, body } = options;
  let commentId = options.commentId;
  if (!commentId && options.app) {
    const app = options.app;
    const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: number, per_page: 100 });
    commentId = comments.find((c) => c.body?.startsWith(COMMENT_MARKER) && isOwnComment(c, app))?.id;
  }
  if (commentId) {
    await octokit.rest.issues.updateComment({ owner, repo, comment_id: commentId, body });
    return commentId;
  }
  const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body });
  return data.id;
}
