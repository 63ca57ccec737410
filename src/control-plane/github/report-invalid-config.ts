import type { ProbotOctokit } from "probot";
import type { RepositoryRef } from "../../store/model.js";
import { CONFIG_PATH } from "../repo-config.js";

export const CONFIG_CHECK_NAME = "slipway/config";

/**
 * Tells the pusher, on their commit, that `.github/slipway.yml` is invalid and why
 * (line and key), as a failed check run. Nothing is deployed.
 */
export async function reportInvalidConfig(options: {
  octokit: ProbotOctokit;
  repository: RepositoryRef;
  sha: string;
  errors: string[];
}): Promise<void> {
  const { octokit, repository, sha, errors } = options;
  const summary = [
    `Slipway did not deploy this commit: \`${CONFIG_PATH}\` on the default branch (${repository.defaultBranch}) is invalid.`,
    "",
    ...errors.map((e) => `- ${e}`),
  ].join("\n");
  await octokit.rest.checks.create({
    owner: repository.owner,
    repo: repository.name,
    name: CONFIG_CHECK_NAME,
    head_sha: sha,
    status: "completed",
    conclusion: "failure",
    output: { title: `Invalid ${CONFIG_PATH}`, summary: summary.slice(0, 65_535) },
  });
}
