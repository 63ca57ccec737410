import type { ProbotOctokit } from "probot";

/**
 * Whether `login` may deploy: write, maintain or admin on the repository, as GitHub says
 * now (never the webhook's `author_association`, which is not a permission).
 */
export async function hasWritePermission(options: {
  octokit: ProbotOctokit;
  owner: string;
  repo: string;
  login: string;
}): Promise<boolean> {
  try {
    const { data } = await options.octokit.rest.repos.getCollaboratorPermissionLevel({
      owner: options.owner,
      repo: options.repo,
      username: options.login,
    });
    // `permission` folds maintain into write; role_name keeps custom roles' base in view.
    return data.permission === "admin" || data.permission === "write" || ["admin", "maintain", "write"].includes(data.role_name);
  } catch (error) {
    // GitHub answers 404 for users who are not collaborators: no permission.
    if ((error as { status?: number }).status === 404) return false;
    throw error;
  }
}
