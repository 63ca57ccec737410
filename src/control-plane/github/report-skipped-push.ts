import type { ProbotOctokit } from "probot";
import type { RepositoryRef } from "../../store/model.js";

/**
 * Tells the pusher, on their commit, that an environment was not deployed on purpose (a
 * skip marker, or a path filter no changed file matches): a `slipway/<environment>` check
 * run concluded `skipped`, which branch protection counts as passing. No revision is made.
 */
export async function reportSkippedPush(options: {
  octokit: ProbotOctokit;
  repository: RepositoryRef;
  sha: string;
  environment: string;
  reason: string;
}): Promise<void> {
  const { octokit, repository, sha, environment, reason } = options;
  await octokit.rest.checks.create({
    owner: repository.owner,
    repo: repository.name,
    name: `slipway/${environment}`,
    head_sha: sha,
    status: "completed",
    conclusion: "skipped",
    completed_at: new Date().toISOString(),
    output: {
      title: `Skipped · ${environment}`,
      summary: `Slipway did not deploy this commit to ${environment}: ${reason}.`.slice(0, 65_535),
    },
  });
}
