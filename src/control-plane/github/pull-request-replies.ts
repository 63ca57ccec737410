import type { ProbotOctokit } from "probot";
import type { RepositoryRef } from "../../store/model.js";

type Reaction = "eyes" | "rocket" | "confused";

/** A reply on a pull request (a new comment, for answers to commands; progress has its own comment). */
export async function replyOnPullRequest(options: {
  octokit: ProbotOctokit;
  repository: RepositoryRef;
  number: number;
  body: string;
}): Promise<void> {
  await options.octokit.rest.issues.createComment({
    owner: options.repository.owner,
    repo: options.repository.name,
    issue_number: options.number,
    body: options.body,
  });
}

/** A reaction on a pull request comment. */
export async function reactToComment(options: {
  octokit: ProbotOctokit;
  repository: RepositoryRef;
  commentId: number;
  content: Reaction;
}): Promise<void> {
  await options.octokit.rest.reactions.createForIssueComment({
    owner: options.repository.owner,
    repo: options.repository.name,
    comment_id: options.commentId,
    content: options.content,
  });
}

/** User text shown inside inline code in a reply: no backticks or line breaks to break out with. */
export function asInlineCode(text: string): string {
  return `\`${text.replace(/[`\r\n]/g, "'")}\``;
}
