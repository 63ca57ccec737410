import type { Deployment } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import { GitHubUnavailableError } from "../http/auth/github-user-api.js";
import type { Session } from "../http/auth/session-store.js";
import type { ViewerAccess } from "../http/auth/viewer-access.js";
import { HttpError } from "../http/http-helpers.js";
import { InvalidSecretError, validateRepositoryName, validateSecretEnvironment, validateSecretName } from "./secret-store.js";

/**
 * What a signed-in person may do with a repository's secrets: `manage` (maintain or admin on
 * GitHub), `refused` (they may read it, no more), `hidden` (Slipway has no deployment of it,
 * or they may not read it: answered alike, as the status pages do), or GitHub did not answer.
 */
export type PersonSecretsAccess = { kind: "manage"; deployment: Deployment } | { kind: "refused" } | { kind: "hidden" } | { kind: "github-unavailable" };

/** Any deployment of the repository (names compared case-insensitively, as GitHub does). */
export function deploymentOfRepository(store: StateStore, fullName: string): Deployment | undefined {
  const wanted = fullName.toLowerCase();
  return Object.values(store.state.deployments).find((d) => d.repository.fullName.toLowerCase() === wanted);
}

/**
 * Asks GitHub (with the person's own token, through the status pages' access rule) whether
 * they may manage the repository's secrets. People reach only repositories Slipway deploys:
 * GitHub is asked about the repository of one of its deployments. `fresh` skips the cache:
 * every change asks again.
 */
export async function personSecretsAccess(options: { access: ViewerAccess; store: StateStore; session: Session; repository: string; fresh: boolean }): Promise<PersonSecretsAccess> {
  const { access, session } = options;
  const deployment = deploymentOfRepository(options.store, options.repository);
  if (!deployment) return { kind: "hidden" };
  try {
    if (!(await access.policy.canRead(session, deployment))) return { kind: "hidden" };
    if (!(await access.policy.canManage(session, deployment, { fresh: options.fresh }))) return { kind: "refused" };
    return { kind: "manage", deployment };
  } catch (error) {
    if (!(error instanceof GitHubUnavailableError)) throw error;
    return { kind: "github-unavailable" };
  }
}

/** The repository, environment and (when the path has one) secret name of a secrets path, decoded and checked: 400 with the reason otherwise. */
export function secretsPathParams(groups: Record<string, string | undefined>): { repository: string; environment: string; name?: string } {
  try {
    const decode = (value: string | undefined) => decodeURIComponent(value ?? "");
    const repository = `${decode(groups.owner)}/${decode(groups.repo)}`;
    const environment = decode(groups.environment);
    const name = groups.name === undefined ? undefined : decode(groups.name);
    validateRepositoryName(repository);
    validateSecretEnvironment(environment);
    if (name !== undefined) validateSecretName(name);
    return { repository, environment, name };
  } catch (error) {
    if (error instanceof InvalidSecretError) throw new HttpError(400, error.message);
    if (error instanceof URIError) throw new HttpError(400, "The path is not valid URL encoding.");
    throw error;
  }
}
