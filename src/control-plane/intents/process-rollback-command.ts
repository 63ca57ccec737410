import { deploymentIdOf } from "../../revisions/new-revision.js";
import { DEFAULT_KEEP_BUILDS } from "../../revisions/selectors.js";
import { isTornDown, type CommandIntent } from "../../store/model.js";
import type { CommandReplies } from "./command-replies.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";
import { findRollbackTarget, rollBack } from "./roll-back.js";

/**
 * `/rollback <environment> [<sha or revision id>]`, on any issue or pull request, by someone
 * with write permission (checked before dispatch): puts a kept earlier build of the
 * environment back, without building. Refused with a reply when the environment has no
 * deployment, nothing earlier is kept, or the target is unknown, live or no longer kept.
 */
export async function processRollbackCommand(context: IntentContext, intent: CommandIntent, deliveryId: string, replies: CommandReplies): Promise<IntentOutcome> {
  const { actor, repository } = intent;
  const environment = intent.environment ?? "";
  const deployment = context.store.state.deployments[deploymentIdOf(intent.installationId, repository.id, environment)];
  if (!deployment || isTornDown(deployment)) {
    return replies.refuse("rollback-no-deployment", `@${actor}, ${repository.fullName} has no \`${environment}\` deployment to roll back. Nothing was started.`, "rollback: no deployment");
  }
  const found = findRollbackTarget(context.store.state, deployment, intent.target, context.keepBuilds ?? DEFAULT_KEEP_BUILDS);
  if (!found.ok) {
    context.log.info({ environment, target: intent.target, reason: found.reason }, "/rollback refused");
    return replies.refuse("rollback-refused", `@${actor}, ${found.reason}, so nothing was rolled back.`, `rollback refused: ${found.reason}`);
  }
  const target = found.revision;
  const decision = await rollBack(context.lifecycle, { deployment, target, actor, deliveryId, commentId: intent.commentId });
  context.log.info({ environment, revision: decision.revision.id, to: target.id }, "rollback queued");
  await replies.reply(
    `@${actor}, rolling \`${environment}\` back to revision ${target.number} (\`${target.sha.slice(0, 7)}\`) from its kept build, without building: ` +
      `revision ${decision.revision.number}.`,
  );
  return { status: "processed", note: "rollback" };
}
