import { FINAL_STATES, type PullRequestIntent } from "../../store/model.js";
import { pullRequestKey, recordHead } from "../commands/pull-request-heads.js";
import { deploymentIdOf } from "../create-revision.js";
import { replyOnPullRequest } from "../github/pull-request-replies.js";
import { buildSettingsOf, runSettingsOf } from "../repo-config.js";
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
  const live = deployment && deployment.state !== "AWAITING_DELETE" && deployment.state !== "DELETED";
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
    if (!live) return { status: "ignored", note: "no preview to tear down" };
    await context.store.update((state) => {
      const d = state.deployments[deploymentId]!;
      d.state = "AWAITING_DELETE";
      d.updatedAt = new Date().toISOString();
    });
    const revisions = Object.values(context.store.state.revisions).filter((r) => r.deploymentId === deploymentId);
    for (const revision of revisions) {
      if (!FINAL_STATES.has(revision.state)) await context.queue.cancel(revision.id, "The pull request was closed");
      context.reporter.notify(revision.id); // its GitHub deployment becomes inactive
    }
    context.log.info({ environment: `pr-${number}` }, "pull request closed: tearing the preview down");
    context.queue.wake();
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
    build: buildSettingsOf(config.config),
    run: runSettingsOf(config.config),
  });
  return { status: "processed" };
}
