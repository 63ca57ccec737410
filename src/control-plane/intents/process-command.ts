import { isFinal, type CommandIntent } from "../../store/model.js";
import { commentDigest } from "../commands/comment-digest.js";
import { DEPLOY_COMMAND_HELP } from "../commands/parse-deploy-command.js";
import { claimComment, judgeDeployCommand, pullRequestKey, recordHead, type DeployJudgement } from "../commands/pull-request-heads.js";
import { describeLock, lockOf } from "../../revisions/deploy-locks.js";
import { deploymentIdOf } from "../../revisions/new-revision.js";
import { revisionsOf } from "../../revisions/selectors.js";
import { asInlineCode, reactToComment, replyOnPullRequest } from "../github/pull-request-replies.js";
import { FORK_REFUSED_UNSANDBOXED } from "../listener-presence.js";
import { revisionSettingsOf } from "../repo-config.js";
import { hasWritePermission } from "./has-write-permission.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";
import { queueRevision } from "./queue-revision.js";
import { processLockCommand } from "./process-lock-command.js";
import { processRollbackCommand } from "./process-rollback-command.js";

/**
 * A `/deploy` comment. It is honoured once (by comment id, whatever the delivery id), only
 * as it stands (fetched again: deleted or edited since means nothing happens), and only for
 * the commit the commenter saw: the head when the comment was written, if it still is the
 * head (see judgeDeployCommand), or the commit `/deploy <sha>` names. The commenter's
 * permission is asked of GitHub; the build settings are the default branch's, never the
 * pull request's. Refusals get a reply, at most one per pull request and kind a minute.
 */
export async function processCommand(context: IntentContext, intent: CommandIntent, deliveryId: string): Promise<IntentOutcome> {
  const { repository, pullRequest: number, actor } = intent;
  const key = pullRequestKey(intent.installationId, repository.id, number);
  const octokit = await context.getOctokit(intent.installationId);
  const reply = (body: string) => replyOnPullRequest({ octokit, repository, number, body });
  /** A refusal's reply, unless one of its kind went out on this pull request within the minute. */
  const refuse = async (kind: string, body: string, note: string): Promise<IntentOutcome> => {
    if (context.replies.allow(`${repository.fullName}#${number}:${kind}`)) await reply(body);
    else context.log.info({ pullRequest: number, kind }, "refusal not replied to: one of its kind went out within the minute");
    return { status: "processed", note };
  };

  const claimed = await context.store.update((state) => claimComment(state, key, intent.commentId, deliveryId, new Date().toISOString()));
  if (!claimed) return { status: "ignored", note: "comment already acted on (redelivered under another id)" };
  const standing = await commentAsItStands(context, intent);
  if (standing !== "unchanged") return { status: "ignored", note: `comment ${standing} since it was written` };

  if (intent.command === "help") {
    if (context.replies.allow(`${repository.fullName}#${number}:help`)) await reply(DEPLOY_COMMAND_HELP);
    return { status: "processed", note: "help" };
  }
  if (!(await hasWritePermission({ octokit, owner: repository.owner, repo: repository.name, login: actor }))) {
    context.log.info({ actor, pullRequest: number }, "command refused: no write permission");
    return refuse(
      "not-permitted",
      `@${actor}, only people with write, maintain or admin permission on ${repository.fullName} can run \`/deploy\` commands. Nothing was started.`,
      "not permitted",
    );
  }
  await reactToComment({ octokit, repository, commentId: intent.commentId, content: "eyes" });
  if (intent.command === "invalid") {
    return refuse("invalid", `@${actor}, that command needs an environment: write it as ${intent.usage ?? "shown in `/deploy help`"}.`, "invalid command");
  }
  if (intent.command === "lock" || intent.command === "unlock") return processLockCommand(context, intent, { octokit, refuse, reply });
  if (intent.command === "rollback") return processRollbackCommand(context, intent, deliveryId, { octokit, refuse, reply });

  const environment = `pr-${number}`;
  const deploymentId = deploymentIdOf(intent.installationId, repository.id, environment);
  if (intent.command === "unknown") {
    return refuse("unknown", `@${actor}, Slipway does not understand ${asInlineCode(`/deploy ${intent.argument ?? ""}`)}.\n\n${DEPLOY_COMMAND_HELP}`, "unknown command");
  }
  if (intent.command === "cancel") {
    const running = revisionsOf(context.store.state, deploymentId).filter((r) => !isFinal(r));
    if (running.length === 0) return refuse("nothing-to-cancel", `@${actor}, nothing is queued or running for \`${environment}\`.`, "nothing to cancel");
    for (const revision of running) await context.lifecycle.cancel(revision.id, `Cancelled by @${actor}`);
    return { status: "processed", note: "cancel" };
  }

  const lock = lockOf(context.store.state, deploymentId);
  if (lock) return refuse("locked", `@${actor}, ${describeLock(lock)}, so nothing was started. Comment \`/unlock ${environment}\` to deploy again.`, "locked");
  const { data: pr } = await octokit.rest.pulls.get({ owner: repository.owner, repo: repository.name, pull_number: number });
  if (pr.state !== "open") return refuse("closed", `@${actor}, this pull request is closed, so it gets no preview.`, "pull request closed");
  const headRepository = pr.head.repo?.full_name ?? "(deleted fork)";
  const fork = headRepository !== repository.fullName;
  if (fork && context.presence.unprotected().length > 0) {
    context.log.warn({ pullRequest: number, listeners: context.presence.unprotected() }, "fork /deploy refused: builds are not sandboxed");
    return refuse("unsandboxed", `@${actor}, ${FORK_REFUSED_UNSANDBOXED}`, "fork refused: builds are not sandboxed");
  }
  const judgement = await context.store.update((state) => {
    recordHead(state, key, { sha: pr.head.sha, seenAt: new Date().toISOString(), source: "fetched" });
    return judgeDeployCommand({ record: state.pullRequests?.[key], head: pr.head.sha, createdAt: intent.createdAt ?? new Date().toISOString(), sha: intent.sha });
  });
  if (!judgement.ok) {
    context.log.info({ pullRequest: number, reason: judgement.reason, saw: judgement.saw, head: judgement.head }, "/deploy refused: not bound to the head");
    return refuse(judgement.reason, `@${actor}, ${describeRefusal(judgement, intent)}`, `not deployed: ${judgement.reason}`);
  }

  const config = await context.configs.get({ octokit, installationId: intent.installationId, owner: repository.owner, repo: repository.name });
  if (!config.ok) {
    return refuse(
      "invalid-config",
      `@${actor}, \`.github/slipway.yml\` on ${repository.defaultBranch} is invalid, so nothing was started:\n\n${config.errors.map((e) => `- ${e}`).join("\n")}`,
      "invalid config",
    );
  }
  if (!config.config.previews.enabled) {
    return refuse("previews-disabled", `@${actor}, previews are turned off for this repository (\`previews.enabled\` in \`.github/slipway.yml\`).`, "previews disabled");
  }
  await queueRevision(context, {
    installationId: intent.installationId,
    repository,
    environment,
    sha: judgement.sha,
    ref: `refs/heads/${pr.head.ref}`,
    trigger: { kind: "deploy_command", actor, deliveryId, commentId: intent.commentId },
    ...revisionSettingsOf(config.config, environment),
    again: "if-finished",
    pullRequest: { number, headRepository, fork },
  });
  return { status: "processed" };
}

/** The comment as GitHub has it now: gone, edited since, or as it was delivered. */
async function commentAsItStands(context: IntentContext, intent: CommandIntent): Promise<"unchanged" | "deleted" | "edited"> {
  const octokit = await context.getOctokit(intent.installationId);
  try {
    const { data } = await octokit.rest.issues.getComment({ owner: intent.repository.owner, repo: intent.repository.name, comment_id: intent.commentId });
    return intent.bodySha256 === undefined || commentDigest(data.body ?? "") === intent.bodySha256 ? "unchanged" : "edited";
  } catch (error) {
    if ((error as { status?: number }).status === 404) return "deleted";
    throw error;
  }
}

function describeRefusal(judgement: Extract<DeployJudgement, { ok: false }>, intent: CommandIntent): string {
  const head = asInlineCode(judgement.head.slice(0, 7));
  switch (judgement.reason) {
    case "not-head":
      return `${asInlineCode(intent.sha ?? "")} is not the head commit of this pull request (the head is ${head}), so nothing was started.`;
    case "moved":
      return (
        `new commits arrived after your comment: it saw ${judgement.saw ? asInlineCode(judgement.saw.slice(0, 7)) : "an earlier head"}, ` +
        `and the head is now ${head}. Nothing was started. Review the new commits, then comment \`/deploy\` again (or \`/deploy ${judgement.head.slice(0, 7)}\`).`
      );
    case "unknown":
      return (
        `your comment reached Slipway late, and Slipway cannot tell which commit it saw; the head is now ${head}. ` +
        `Nothing was started: comment \`/deploy\` again, or \`/deploy <sha>\` naming the commit you reviewed.`
      );
  }
}
