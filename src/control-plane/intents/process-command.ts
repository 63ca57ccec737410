import { FINAL_STATES, type CommandIntent } from "../../store/model.js";
import { DEPLOY_COMMAND_HELP } from "../commands/parse-deploy-command.js";
import { deploymentIdOf } from "../create-revision.js";
import { asInlineCode, reactToComment, replyOnPullRequest } from "../github/pull-request-replies.js";
import { buildSettingsOf, runSettingsOf } from "../repo-config.js";
import { FORK_REFUSED_UNSANDBOXED } from "../listener-sandboxes.js";
import { hasWritePermission } from "./has-write-permission.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";
import { queueRevision } from "./queue-revision.js";

/**
 * A `/deploy` comment. The commenter's permission is asked of GitHub first; the preview
 * builds the pull request's head commit as it is now, with the build settings of the
 * default branch's config, never the pull request's.
 */
export async function processCommand(context: IntentContext, intent: CommandIntent, deliveryId: string): Promise<IntentOutcome> {
  const { repository, pullRequest: number, actor } = intent;
  const octokit = await context.getOctokit(intent.installationId);
  const reply = (body: string) => replyOnPullRequest({ octokit, repository, number, body });

  if (intent.command === "help") {
    await reply(DEPLOY_COMMAND_HELP);
    return { status: "processed", note: "help" };
  }
  if (!(await hasWritePermission({ octokit, owner: repository.owner, repo: repository.name, login: actor }))) {
    context.log.info({ actor, pullRequest: number }, "command refused: no write permission");
    await reply(
      `@${actor}, only people with write, maintain or admin permission on ${repository.fullName} can run \`/deploy\` commands. Nothing was started.`,
    );
    return { status: "processed", note: "not permitted" };
  }
  await reactToComment({ octokit, repository, commentId: intent.commentId, content: "eyes" });

  const environment = `pr-${number}`;
  const deploymentId = deploymentIdOf(intent.installationId, repository.id, environment);
  if (intent.command === "unknown") {
    await reply(`@${actor}, Slipway does not understand ${asInlineCode(`/deploy ${intent.argument ?? ""}`)}.\n\n${DEPLOY_COMMAND_HELP}`);
    return { status: "processed", note: "unknown command" };
  }
  if (intent.command === "cancel") {
    const running = Object.values(context.store.state.revisions).filter(
      (r) => r.deploymentId === deploymentId && !FINAL_STATES.has(r.state),
    );
    if (running.length === 0) {
      await reply(`@${actor}, nothing is queued or running for \`${environment}\`.`);
      return { status: "processed", note: "nothing to cancel" };
    }
    for (const revision of running) await context.queue.cancel(revision.id, `Cancelled by @${actor}`);
    return { status: "processed", note: "cancel" };
  }

  // The head commit as it is now: it is recorded on the revision, and exactly it is built.
  const { data: pr } = await octokit.rest.pulls.get({ owner: repository.owner, repo: repository.name, pull_number: number });
  if (pr.state !== "open") {
    await reply(`@${actor}, this pull request is closed, so it gets no preview.`);
    return { status: "processed", note: "pull request closed" };
  }
  const headRepository = pr.head.repo?.full_name ?? "(deleted fork)";
  const fork = headRepository !== repository.fullName;
  if (fork && context.sandboxes.unprotected().length > 0) {
    context.log.warn({ pullRequest: number, listeners: context.sandboxes.unprotected() }, "fork /deploy refused: builds are not sandboxed");
    await reply(`@${actor}, ${FORK_REFUSED_UNSANDBOXED}`);
    return { status: "processed", note: "fork refused: builds are not sandboxed" };
  }
  const config = await context.configs.get({ octokit, installationId: intent.installationId, owner: repository.owner, repo: repository.name });
  if (!config.ok) {
    await reply(`@${actor}, \`.github/slipway.yml\` on ${repository.defaultBranch} is invalid, so nothing was started:\n\n${config.errors.map((e) => `- ${e}`).join("\n")}`);
    return { status: "processed", note: "invalid config" };
  }
  if (!config.config.previews.enabled) {
    await reply(`@${actor}, previews are turned off for this repository (\`previews.enabled\` in \`.github/slipway.yml\`).`);
    return { status: "processed", note: "previews disabled" };
  }
  await queueRevision(context, {
    installationId: intent.installationId,
    repository,
    environment,
    sha: pr.head.sha,
    ref: `refs/heads/${pr.head.ref}`,
    trigger: { kind: "deploy_command", actor, deliveryId, commentId: intent.commentId },
    build: buildSettingsOf(config.config),
    run: runSettingsOf(config.config),
    again: "if-finished",
    pullRequest: { number, headRepository, fork },
  });
  return { status: "processed" };
}
