import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Deployment, Revision } from "../../../store/model.js";
import type { StateStore } from "../../../store/open-state-store.js";
import { openSecretBox } from "../../../store/secret-box.js";
import { createAccessPolicy, type AccessPolicy } from "./access-policy.js";
import { hostCookie } from "./cookies.js";
import { createGitHubUserApi, GitHubUnavailableError, type GitHubUserApi } from "./github-user-api.js";
import { openSessionKey, type SessionKey } from "./session-key.js";
import { openSessionStore, type Session, type SessionStore } from "./session-store.js";
import type { SignInSettings } from "./sign-in-settings.js";

/** Revision ids are `randomUUID()`s; anything else is answered 404 without a look at the disk. */
export const REVISION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What a reader is told when GitHub could not be asked whether they may see a revision. */
export const GITHUB_UNAVAILABLE_MESSAGE = "Slipway could not ask GitHub whether you may see this. Try again in a moment.";

/** At most this many questions to GitHub at once for one list of deployments. */
const ACCESS_CONCURRENCY = 8;

/** Who is asking, and which page to come back to after signing in. */
export interface Viewer {
  session: Session | undefined;
  returnTo: string;
}

/**
 * A revision as a viewer may have it: readable (with its deployment), hidden (missing, or not
 * theirs to read: the two are answered alike), or unknown because GitHub did not answer.
 */
export type RevisionAccess = { revision: Revision; deployment: Deployment } | "hidden" | "github-unavailable";

export interface ViewerAccessOptions {
  store: StateStore;
  /** The path of `SLIPWAY_PUBLIC_URL`, without a trailing slash ("" at the root). */
  basePath: string;
  /** Cookies are `Secure` (and `__Host-`) when the public URL is https. */
  secureCookies: boolean;
  /** Sign in with GitHub. Unset: only public repositories are shown. */
  signIn?: SignInSettings;
  /** Whether GitHub shows the repository to everyone now. Default: what its last event said. */
  isPublicRepository?(deployment: Deployment): Promise<boolean>;
  /** How long GitHub's answers about who may read what are reused (default one minute). */
  accessCacheMs?: number;
  /** How long a session lasts (default twelve hours). */
  sessionTtlMs?: number;
  now: () => number;
  /** How GitHub is called for signed-in people (default: global fetch). */
  fetch?: typeof fetch;
  log?: Logger;
}

export interface ViewerAccess {
  /** Set when sign-in with GitHub is configured. */
  signIn: { github: GitHubUserApi; sessions: SessionStore } | undefined;
  /** Signs the session and pending sign-in cookies. */
  key: SessionKey;
  policy: AccessPolicy;
  /** The request's viewer; a session cookie that is not genuine is cleared on `response`. */
  viewer(request: IncomingMessage, response: ServerResponse, pathname: string): Viewer;
  /** The deployments the viewer may read, and how many GitHub did not answer for (those they may not read are not counted). */
  readableDeployments(viewer: Viewer, deployments: readonly Deployment[]): Promise<{ visible: Deployment[]; unknown: number }>;
  /** The revision with this id, if the viewer may read it. */
  readableRevision(id: string, viewer: Viewer): Promise<RevisionAccess>;
}

/**
 * The access rule of the status pages and the JSON API, shared by both so that the API shows
 * exactly what the pages show to the same viewer: sessions (sign in with GitHub) and the
 * access policy (a public repository for anyone, a private one for people GitHub lets read it).
 *
 * @example
 * const access = await createViewerAccess({ store, basePath, secureCookies, signIn, now: Date.now });
 * const found = await access.readableRevision(id, access.viewer(request, response, pathname));
 */
export async function createViewerAccess(options: ViewerAccessOptions): Promise<ViewerAccess> {
  const { store, basePath, secureCookies, now, log } = options;
  const key = await openSessionKey({ dataDir: store.dataDir });
  const signIn = options.signIn ? await openSignIn(options.signIn) : undefined;
  const policy = createAccessPolicy({
    signIn,
    isPublic: options.isPublicRepository ?? (async (deployment) => !deployment.repository.private),
    cacheMs: options.accessCacheMs ?? 60_000,
    now,
    log,
  });

  async function openSignIn(settings: SignInSettings) {
    const github = createGitHubUserApi({ settings, fetch: options.fetch, now });
    const sessions = await openSessionStore({
      dataDir: store.dataDir,
      key,
      secrets: await openSecretBox({ dataDir: store.dataDir }),
      refresh: (refreshToken) => github.refresh(refreshToken),
      // `__Host-` keeps a preview on a subdomain from planting a session cookie for this host.
      cookie: hostCookie("slipway_session", { secure: secureCookies, path: `${basePath}/` }),
      ttlMs: options.sessionTtlMs ?? 12 * 60 * 60_000,
      now,
      log,
    });
    return { github, sessions };
  }

  const warnUnavailable = (error: GitHubUnavailableError, deployment: Deployment) =>
    log?.warn({ err: { message: error.message }, repository: deployment.repository.fullName }, "could not ask GitHub who may read a repository");

  return {
    signIn,
    key,
    policy,

    viewer(request, response, pathname) {
      const search = new URL(request.url ?? "/", "http://status.invalid").search;
      return { session: signIn?.sessions.fromRequest(request, response), returnTo: `${basePath}${pathname}${search}` };
    },

    async readableDeployments(viewer, deployments) {
      const visible: Deployment[] = [];
      let unknown = 0;
      await forEachLimited(deployments, ACCESS_CONCURRENCY, async (deployment) => {
        try {
          if (await policy.canRead(viewer.session, deployment)) visible.push(deployment);
        } catch (error) {
          if (!(error instanceof GitHubUnavailableError)) throw error;
          warnUnavailable(error, deployment);
          unknown++;
        }
      });
      return { visible, unknown };
    },

    async readableRevision(id, viewer) {
      const revision = REVISION_ID.test(id) ? await store.findRevision(id) : undefined;
      const deployment = revision && store.state.deployments[revision.deploymentId];
      if (!revision || !deployment) return "hidden";
      try {
        return (await policy.canRead(viewer.session, deployment)) ? { revision, deployment } : "hidden";
      } catch (error) {
        if (!(error instanceof GitHubUnavailableError)) throw error;
        warnUnavailable(error, deployment);
        return "github-unavailable";
      }
    },
  };
}

/** Runs `work` on every item, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
