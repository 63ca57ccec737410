import type { Logger } from "pino";
import type { Deployment } from "../../../store/model.js";
import { GitHubUnavailableError, UserTokenRejectedError, type GitHubUserApi, type RepositoryAccess } from "./github-user-api.js";
import type { Session, SessionStore } from "./session-store.js";

export interface AccessPolicy {
  /**
   * Whether the viewer (a session, or undefined for someone not signed in) may read the
   * deployment's repository: anyone when it is public, otherwise only people GitHub lets
   * read it. Throws `GitHubUnavailableError` when GitHub could not be asked.
   */
  canRead(viewer: Session | undefined, deployment: Deployment): Promise<boolean>;
  /**
   * Whether the viewer has write, maintain or admin permission on the repository. `fresh`
   * skips the cache: buttons are drawn from the cached answer, actions ask again.
   */
  canWrite(viewer: Session | undefined, deployment: Deployment, options?: { fresh?: boolean }): Promise<boolean>;
  /** Whether the viewer has maintain or admin permission on the repository (Slipway's secrets); `fresh` as for `canWrite`. */
  canManage(viewer: Session | undefined, deployment: Deployment, options?: { fresh?: boolean }): Promise<boolean>;
}

export interface AccessPolicyOptions {
  /** Unset when sign-in is not configured: then only public repositories are readable. */
  signIn?: { sessions: SessionStore; github: GitHubUserApi };
  /** Whether GitHub shows the repository to everyone now. */
  isPublic(deployment: Deployment): Promise<boolean>;
  /** How long GitHub's answers are reused. */
  cacheMs: number;
  now: () => number;
  log?: Logger;
}

/**
 * The access rule of the status pages and the JSON view: access follows GitHub. Answers are
 * cached for `cacheMs` (per repository for visibility, per person and repository for their
 * permission), so a page of fifty deployments does not ask GitHub fifty times a view, and a
 * revoked permission stops working at most `cacheMs` later. Concurrent questions share one request.
 *
 * @example
 * const policy = createAccessPolicy({ signIn: { sessions, github }, isPublic, cacheMs: 60_000, now: Date.now });
 * if (!(await policy.canRead(session, deployment))) return notFound();
 */
export function createAccessPolicy(options: AccessPolicyOptions): AccessPolicy {
  const { signIn, now, cacheMs, log } = options;
  const visibility = createTtlCache<boolean>(now, cacheMs);
  const permissions = createTtlCache<RepositoryAccess>(now, cacheMs);

  async function isPublic(deployment: Deployment): Promise<boolean> {
    return visibility.get(String(deployment.repository.id), () =>
      options.isPublic(deployment).catch((error: unknown) => {
        throw error instanceof GitHubUnavailableError
          ? error
          : new GitHubUnavailableError(`could not ask GitHub whether ${deployment.repository.fullName} is public: ${(error as Error).message}`);
      }),
    );
  }

  /** GitHub's answer for this person, asked with their own token; a session GitHub no longer honours grants nothing. */
  async function userAccess(session: Session, deployment: Deployment, fresh: boolean): Promise<RepositoryAccess> {
    if (!signIn) return { read: false, write: false, manage: false };
    const { owner, name, id } = deployment.repository;
    const ask = async (): Promise<RepositoryAccess> => {
      let token = await signIn.sessions.accessToken(session);
      for (let attempt = 0; token !== undefined; attempt++) {
        try {
          return await signIn.github.repositoryAccess(token, owner, name);
        } catch (error) {
          if (!(error instanceof UserTokenRejectedError) || attempt > 0) throw error;
          token = await signIn.sessions.accessToken(session, { forceRefresh: true });
        }
      }
      // Thrown rather than answered, so that the cache does not keep it for the person's next session.
      throw new SessionOverError();
    };
    const key = `${session.userId}/${id}`;
    if (fresh) permissions.forget(key);
    try {
      return await permissions.get(key, ask);
    } catch (error) {
      if (!(error instanceof SessionOverError)) throw error;
      log?.info({ login: session.login }, "the session's GitHub token is no longer valid; it is treated as signed out");
      return { read: false, write: false, manage: false };
    }
  }

  return {
    async canRead(viewer, deployment) {
      try {
        if (await isPublic(deployment)) return true;
      } catch (error) {
        // A signed-in person's own question answers for public repositories too.
        if (!viewer) throw error;
      }
      return viewer ? (await userAccess(viewer, deployment, false)).read : false;
    },
    async canWrite(viewer, deployment, writeOptions = {}) {
      return viewer ? (await userAccess(viewer, deployment, writeOptions.fresh === true)).write : false;
    },
    async canManage(viewer, deployment, manageOptions = {}) {
      return viewer ? (await userAccess(viewer, deployment, manageOptions.fresh === true)).manage : false;
    },
  };
}

/** Answers kept for `ttlMs`; a question being asked is shared; failures are not kept. */
function createTtlCache<T>(now: () => number, ttlMs: number) {
  const entries = new Map<string, { value: Promise<T>; expiresAt: number }>();
  return {
    get(key: string, load: () => Promise<T>): Promise<T> {
      const at = now();
      const entry = entries.get(key);
      if (entry && entry.expiresAt > at) return entry.value;
      if (entries.size > 10_000) for (const [k, e] of entries) if (e.expiresAt <= at) entries.delete(k);
      const value = load();
      const fresh = { value, expiresAt: at + ttlMs };
      entries.set(key, fresh);
      value.catch(() => {
        if (entries.get(key) === fresh) entries.delete(key);
      });
      return value;
    },
    forget(key: string) {
      entries.delete(key);
    },
  };
}

class SessionOverError extends Error {}
