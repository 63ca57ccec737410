import type { ProbotOctokit } from "probot";
import { isReservedVariable } from "../../protocol/reserved-variables.js";
import { isPreviewEnvironment } from "../../store/model.js";

/** The GitHub environment every pull request preview (`pr-<number>`) reads its variables from. */
export const PREVIEW_GITHUB_ENVIRONMENT = "preview";

/** GitHub's largest page for environment variables (its default is 10). */
const VARIABLES_PER_PAGE = 30;

/** What a revision takes from its GitHub environment, and what its check run should say about it. */
export interface EnvironmentVariables {
  /** Name → value, as GitHub holds them (names upper case), without the names Slipway sets itself. */
  variables: Record<string, string>;
  /** Sentences for the check run summary: a permission to accept, names left out. Never values. */
  notes: string[];
}

/**
 * The GitHub environment whose variables a deployment gets: `preview` for every pull request
 * preview (one place to set them, rather than one GitHub environment per pull request), else
 * the GitHub environment of the same name.
 *
 * @example
 * githubEnvironmentOf("pr-42"); // "preview"
 * githubEnvironmentOf("staging"); // "staging"
 */
export function githubEnvironmentOf(environment: string): string {
  return isPreviewEnvironment(environment) ? PREVIEW_GITHUB_ENVIRONMENT : environment;
}

/**
 * Reads the variables of a deployment's GitHub environment (every page) for its revision's
 * build and run.
 * - A GitHub environment that does not exist (404) means no variables.
 * - An installation that has not accepted the `environments: read` permission yet (403
 *   "Resource not accessible by integration") deploys without them; a note says what to accept.
 * - Names Slipway sets itself (`DATABASE_URL`, `PORT`, `PATH`, `HOME`, `SLIPWAY_*`) are left
 *   out, with a note naming them.
 * - Anything else (5xx, the network, a rate limit) is thrown: the lease is tried again later.
 * Values are never logged nor put in a note: they may be credentials someone filed as variables.
 *
 * @example
 * const { variables, notes } = await readEnvironmentVariables(octokit, { owner: "acme", repo: "web", environment: "pr-42" });
 * // reads GET /repos/acme/web/environments/preview/variables
 */
export async function readEnvironmentVariables(octokit: ProbotOctokit, target: { owner: string; repo: string; environment: string }): Promise<EnvironmentVariables> {
  const environmentName = githubEnvironmentOf(target.environment);
  let listed: Array<{ name: string; value: string }>;
  try {
    listed = await octokit.paginate(octokit.rest.actions.listEnvironmentVariables, {
      owner: target.owner,
      repo: target.repo,
      environment_name: environmentName,
      per_page: VARIABLES_PER_PAGE,
    });
  } catch (error) {
    if (statusOf(error) === 404) return { variables: {}, notes: [] };
    if (isMissingPermission(error)) {
      return {
        variables: {},
        notes: [
          `GitHub environment variables of "${environmentName}" were not read: the Slipway App needs the Environments (read) permission; an organisation owner can accept it in the installation's settings.`,
        ],
      };
    }
    throw error;
  }

  const variables: Record<string, string> = {};
  const setBySlipway: string[] = [];
  for (const { name, value } of listed) {
    if (isSetBySlipway(name)) setBySlipway.push(name);
    else variables[name] = value;
  }
  const notes =
    setBySlipway.length === 0
      ? []
      : [`GitHub environment variables of "${environmentName}" not used, because Slipway sets them itself: ${[...new Set(setBySlipway)].sort().join(", ")}.`];
  return { variables, notes };
}

/** The names Slipway gives every build and running revision (GitHub upper-cases variable names). */
const isSetBySlipway = (name: string) => isReservedVariable(name.toUpperCase());

function statusOf(error: unknown): number | undefined {
  return (error as { status?: number }).status;
}

/** GitHub's 403 for a permission the installation lacks, as opposed to a rate limit's 403. */
function isMissingPermission(error: unknown): boolean {
  if (statusOf(error) !== 403) return false;
  const { message, response } = error as { message?: string; response?: { data?: { message?: string } } };
  return /Resource not accessible by integration/i.test(`${response?.data?.message ?? ""} ${message ?? ""}`);
}
