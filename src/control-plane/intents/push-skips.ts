import type { ProbotOctokit } from "probot";
import type { PushIntent } from "../../store/model.js";
import { matchesPathFilter } from "../path-filter.js";
import { pathFilterOf, type RepoConfig } from "../repo-config.js";
import type { IntentContext } from "./intent-context.js";

/** The compare API lists at most this many changed files; a comparison with as many may have more. */
const MAX_COMPARED_FILES = 300;
const NO_COMMIT = /^0{40}$/;

/**
 * Which of the `environments` a push leaves alone, each with the reason in words for its
 * check run: a skip marker in the head commit's message skips them all; otherwise an
 * environment whose path filter (`environments.<name>.paths`, else `paths`) matches none of
 * the changed files. On any doubt about the changed files it deploys: a new branch, a forced
 * push, an incomplete file list the compare API cannot complete.
 */
export async function pushSkipReasons(options: {
  context: IntentContext;
  octokit: ProbotOctokit;
  intent: PushIntent;
  config: RepoConfig;
  environments: string[];
}): Promise<Map<string, string>> {
  const { context, octokit, intent, config, environments } = options;
  const reasons = new Map<string, string>();
  if (intent.skipMarker) {
    for (const environment of environments) reasons.set(environment, `${intent.skipMarker} in the head commit's message`);
    return reasons;
  }
  const filters = environments.flatMap((environment) => {
    const filter = pathFilterOf(config, environment);
    return filter ? [{ environment, ...filter }] : [];
  });
  if (filters.length === 0) return reasons;
  const files = await changedFilesOfPush({ context, octokit, intent });
  if (!files) return reasons;
  for (const { environment, key, globs } of filters) {
    if (!matchesPathFilter(globs, files)) reasons.set(environment, `no changed file matches ${key}: ${globs.join(", ")}`);
  }
  return reasons;
}

/** The push's changed files: from the payload when complete, else from the compare API; undefined when unknown. */
async function changedFilesOfPush(options: { context: IntentContext; octokit: ProbotOctokit; intent: PushIntent }): Promise<string[] | undefined> {
  const { context, octokit, intent } = options;
  const { before, repository } = intent;
  // A new branch has nothing to compare with; a forced push's commits do not show what it undid.
  if (!before || NO_COMMIT.test(before) || intent.forced) return undefined;
  if (intent.changedFiles) return intent.changedFiles;
  try {
    // Files come only on the first page, for the whole comparison; one commit per page keeps the answer small.
    const { data } = await octokit.rest.repos.compareCommitsWithBasehead({
      owner: repository.owner,
      repo: repository.name,
      basehead: `${before}...${intent.sha}`,
      per_page: 1,
    });
    const compared = data.files;
    if (!compared || compared.length >= MAX_COMPARED_FILES) {
      context.log.info({ files: compared?.length }, "the comparison may list only part of the changed files; deploying");
      return undefined;
    }
    return compared.flatMap((file) => (file.previous_filename ? [file.filename, file.previous_filename] : [file.filename]));
  } catch (error) {
    context.log.warn({ err: { message: (error as Error).message }, status: (error as { status?: number }).status }, "comparing the push failed; deploying");
    return undefined;
  }
}
