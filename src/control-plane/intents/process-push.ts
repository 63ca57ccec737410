import type { PushIntent } from "../../store/model.js";
import { reportInvalidConfig } from "../github/report-invalid-config.js";
import { reportSkippedPush } from "../github/report-skipped-push.js";
import { environmentsForBranch, revisionSettingsOf } from "../repo-config.js";
import type { IntentContext, IntentOutcome } from "./intent-context.js";
import { pushSkipReasons } from "./push-skips.js";
import { queueRevision } from "./queue-revision.js";

/**
 * A push to a branch: one revision for each environment that tracks it, except those the
 * push skips (a skip marker, a path filter): those get a `skipped` check run instead.
 */
export async function processPush(context: IntentContext, intent: PushIntent, deliveryId: string): Promise<IntentOutcome> {
  const { repository } = intent;
  const octokit = await context.getOctokit(intent.installationId);
  // The config is read from the default branch: a push there may have changed it.
  if (intent.branch === repository.defaultBranch && intent.touchesConfig !== false) {
    context.configs.forget(intent.installationId, repository.owner, repository.name);
  }
  const config = await context.configs.get({ octokit, installationId: intent.installationId, owner: repository.owner, repo: repository.name });
  if (!config.ok) {
    context.log.info({ repository: repository.fullName, errors: config.errors }, "invalid repository config");
    await reportInvalidConfig({ octokit, repository, sha: intent.sha, errors: config.errors });
    return { status: "processed", note: "invalid .github/slipway.yml" };
  }
  const environments = environmentsForBranch(config.config, intent.branch, repository.defaultBranch);
  if (environments.length === 0) {
    context.log.debug({ branch: intent.branch }, "no environment tracks this branch, ignoring");
    return { status: "ignored", note: `no environment tracks ${intent.branch}` };
  }
  const skips = await pushSkipReasons({ context, octokit, intent, config: config.config, environments });
  for (const environment of environments) {
    const reason = skips.get(environment);
    if (reason) {
      context.log.info({ environment, reason }, "push skipped");
      await reportSkippedPush({ octokit, repository, sha: intent.sha, environment, reason });
      continue;
    }
    await queueRevision(context, {
      installationId: intent.installationId,
      repository,
      environment,
      sha: intent.sha,
      ref: intent.ref,
      trigger: { kind: "push", actor: intent.pusher, deliveryId },
      ...revisionSettingsOf(config.config, environment),
    });
  }
  return { status: "processed", ...(skips.size > 0 ? { note: `skipped: ${[...skips.keys()].join(", ")}` } : {}) };
}
