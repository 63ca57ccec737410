import type { Context } from "probot";
import { commentDigest } from "../commands/comment-digest.js";
import { parseDeployCommand } from "../commands/parse-deploy-command.js";
import { parseOperatorCommand } from "../commands/parse-operator-command.js";
import type { Inbox } from "../inbox.js";
import { repositoryRefOf } from "./repository-ref-of.js";

/**
 * `issue_comment.created` with a command: `/deploy` on a pull request, or `/rollback`,
 * `/lock`, `/unlock` on any issue or pull request. Bots (Slipway included) and comments
 * without a command are not recorded at all.
 */
export async function onIssueComment(context: Context<"issue_comment.created">, inbox: Inbox): Promise<void> {
  const { payload } = context;
  if (!payload.installation) return;
  if (payload.sender.type === "Bot" || payload.comment.user?.type === "Bot") {
    context.log.debug("comment by a bot, ignoring");
    return;
  }
  const body = payload.comment.body ?? "";
  // `/deploy` only on pull requests; `/rollback`, `/lock` and `/unlock` on any issue or pull request.
  const operator = parseOperatorCommand(body);
  const command = operator ?? (payload.issue.pull_request ? parseDeployCommand(body) : undefined);
  if (!command) return;
  const outcome = await inbox.record({
    id: context.id,
    event: "issue_comment",
    intent: {
      kind: "command",
      command: command.kind,
      argument: command.kind === "unknown" ? command.argument : undefined,
      sha: command.kind === "deploy" ? command.sha : undefined,
      ...(command.kind === "invalid" ? { usage: command.usage } : {}),
      ...("environment" in command ? { environment: command.environment } : {}),
      ...(command.kind === "rollback" && command.target ? { target: command.target } : {}),
      ...(command.kind === "lock" && command.reason ? { reason: command.reason } : {}),
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
