import type { Context } from "probot";
import { commentDigest } from "../commands/comment-digest.js";
import { parseDeployCommand } from "../commands/parse-deploy-command.js";
import type { Inbox } from "../inbox.js";
import { repositoryRefOf } from "./repository-ref-of.js";

/**
 * `issue_comment.created` on a pull request with a `/deploy` command. Bots (Slipway
 * included), plain issues and comments without a command are not recorded at all.
 */
export async function onIssueComment(context: Context<"issue_comment.created">, inbox: Inbox): Promise<void> {
  const { payload } = context;
  if (!payload.installation) return;
  if (payload.sender.type === "Bot" || payload.comment.user?.type === "Bot") {
    context.log.debug("comment by a bot, ignoring");
    return;
  }
  if (!payload.issue.pull_request) {
    context.log.debug("comment on an issue, not a pull request, ignoring");
    return;
  }
  const command = parseDeployCommand(payload.comment.body ?? "");
  if (!command) return;
  const outcome = await inbox.record({
    id: context.id,
    event: "issue_comment",
    intent: {
      kind: "command",
      command: command.kind,
      argument: command.kind === "unknown" ? command.argument : undefined,
      sha: command.kind === "deploy" ? command.sha : undefined,
      createdAt: payload.comment.created_at,
      receivedAt: new Date().toISOString(),
      bodySha256: commentDigest(payload.comment.body ?? ""),
      installationId: payload.installation.id,
      repository: repositoryRefOf(payload.repository),
      pullRequest: payload.issue.number,
      commentId: payload.comment.id,
      actor: payload.comment.user?.login ?? payload.sender.login,
    },
  });
  if (outcome === "duplicate") context.log.info("delivery already received, ignoring the redelivery");
}
