import { DEFAULT_KEEP_BUILDS, mayRestart, rollbackRefusal } from "../../revisions/selectors.js";
import { isTornDown, type CheckRunIntent } from "../../store/model.js";
import { revisionSettingsOf } from "../repo-config.js";
import { hasWritePermission } from "./has-write-permission.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";
import { queueRevision } from "./queue-revision.js";
import { requestReusingBuild, rollBack } from "./roll-back.js";

/**
 * GitHub's "Re-run" and the check run's `Redeploy` make a new revision of the same commit;
 * `Cancel` stops it; the status page's "Restart with new settings" makes one that starts the
 * running build again with today's variables and secrets; `Roll back` puts an older kept
 * build back, without building. The sender needs write permission, as for `/deploy`.
 */
export async function processCheckRun(context: IntentContext, intent: CheckRunIntent, deliveryId: string): Promise<IntentOutcome> {
  const revision = await context.store.findRevision(intent.revisionId);
  const deployment = revision && context.store.state.deployments[revision.deploymentId];
  if (!revision || !deployment) return { status: "ignored", note: "not a Slipway revision" };
  const { repository } = deployment;
  const octokit = await context.getOctokit(intent.installationId);
  if (!(await hasWritePermission({ octokit, owner: repository.owner, repo: repository.name, login: intent.actor }))) {
    context.log.info({ actor: intent.actor, action: intent.action }, "check run action refused: no write permission");
    return { status: "processed", note: "not permitted" };
  }
  if (intent.action === "cancel") {
    await context.lifecycle.cancel(revision.id, `Cancelled by @${intent.actor}`);
    return { status: "processed", note: "cancel" };
  }
  if (isTornDown(deployment)) {
    return { status: "ignored", note: "the deployment was torn down" };
  }
  if (deployment.pullRequest?.fork && context.presence.unprotected().length > 0) {
    context.log.warn({ actor: intent.actor, environment: deployment.environment }, "fork rebuild refused: builds are not sandboxed");
    return { status: "ignored", note: "fork refused: builds are not sandboxed" };
  }
  if (intent.action === "rollback") {
    // The button's revision: its kept build goes back, if it is still kept and not the live one.
    const refusal = rollbackRefusal(context.store.state, revision, context.keepBuilds ?? DEFAULT_KEEP_BUILDS);
    if (refusal) return { status: "ignored", note: `rollback: ${refusal}` };
    const decision = await rollBack(context.lifecycle, { deployment, target: revision, actor: intent.actor, deliveryId });
    context.log.info({ environment: deployment.environment, revision: decision.revision.id, to: revision.id }, "rollback queued");
    return { status: "processed", note: "rollback" };
  }
  if (intent.action === "restart") {
    if (!mayRestart(context.store.state, revision)) return { status: "ignored", note: "restart: not the running revision any more" };
    // Its own build, settings read again at lease: no config read, no build.
    await queueRevision(context, requestReusingBuild(deployment, revision, { kind: "restart", actor: intent.actor, deliveryId }));
    return { status: "processed", note: "restart with new settings" };
  }
  const config = await context.configs.get({ octokit, installationId: intent.installationId, owner: repository.owner, repo: repository.name });
  await queueRevision(context, {
    installationId: deployment.installationId,
    repository,
    environment: deployment.environment,
    sha: revision.sha,
    ref: revision.ref,
    trigger: { kind: intent.action === "redeploy" ? "redeploy" : "rerun", actor: intent.actor, deliveryId },
    ...(config.ok ? revisionSettingsOf(config.config, deployment.environment) : { build: revision.build, run: revision.run, pool: revision.pool }),
    again: "always",
  });
  return { status: "processed" };
}
