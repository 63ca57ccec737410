import { isTornDown, type PullRequestIntent } from "../../store/model.js";
import { pullRequestKey, recordHead } from "../commands/pull-request-heads.js";
import { deploymentIdOf } from "../../revisions/new-revision.js";
import { replyOnPullRequest } from "../github/pull-request-replies.js";
import { revisionSettingsOf } from "../repo-config.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";
import { queueRevision } from "./queue-revision.js";

/**
 * `closed`: tear the preview down (work stopped, database dropped by a listener, GitHub
 * deployments inactive). `synchronize`: a same-repository preview follows the new commits;
 * a fork's new commits wait for a maintainer's `/deploy`.
 */
export async function processPullRequest(context: IntentContext, intent: PullRequestIntent, deliveryId: string): Promise<IntentOutcome> {
  const { repository, pullRequest: number } = intent;
  const deploymentId = deploymentIdOf(intent.installationId, repository.id, `pr-${number}`);
  const deployment = context.store.state.deployments[deploymentId];
  const live = deployment && !isTornDown(deployment);
  const key = pullRequestKey(intent.installationId, repository.id, number);

  if (intent.action !== "closed") {
    // From now on this is the head: a /deploy written before this moment did not see it.
    const seenAt = intent.receivedAt ?? new Date().toISOString();
    const source = intent.action === "synchronize" ? "synchronize" : "opened";
    await context.store.update((state) => recordHead(state, key, { sha: intent.headSha, seenAt, source }));
  }
  if (intent.action === "opened" || intent.action === "reopened") return { status: "processed", note: "head recorded" };

  if (intent.action === "closed") {
    await context.store.update((state) => {
      delete state.pullRequests?.[key];
    });
    if (!(await context.lifecycle.closePreview(deploymentId, "The pull request was closed"))) {
      return { status: "ignored", note: "no preview to tear down" };
    }
    context.log.info({ environment: `pr-${number}` }, "pull request closed: tearing the preview down");
    return { status: "processed", note: "teardown" };
  }

  if (!live) return { status: "ignored", note: "no live preview" };
  const octokit = await context.getOctokit(intent.installationId);
  if (intent.headRepository !== repository.fullName) {
    if (deployment.pullRequest?.forkNoticeFor !== intent.headSha) {
      await replyOnPullRequest({
        octokit,
        repository,
        number,
        body:
          `New commits from the fork ${intent.headRepository} are not deployed automatically. ` +
          "A maintainer (write permission or more) can review them and comment `/deploy` to update the preview.",
      });
      await context.store.update((state) => {
        const link = state.deployments[deploymentId]?.pullRequest;
        if (link) link.forkNoticeFor = intent.headSha;
      });
    }
    return { status: "processed", note: "fork: waiting for /deploy" };
  }
  const config = await context.configs.get({ octokit, installationId: intent.installationId, owner: repository.owner, repo: repository.name });
  if (!config.ok || !config.config.previews.enabled || !config.config.previews.auto_update) {
    return { status: "ignored", note: "previews do not follow new commits" };
  }
  await queueRevision(context, {
    installationId: intent.installationId,
    repository,
    environment: `pr-${number}`,
    sha: intent.headSha,
    ref: `refs/heads/${intent.headRef}`,
    trigger: { kind: "pr_update", actor: intent.actor, deliveryId },
    ...revisionSettingsOf(config.config, `pr-${number}`),
  });
  return { status: "processed" };
}
