import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Deployment } from "../../../store/model.js";
import type { StateStore } from "../../../store/open-state-store.js";
import type { RevisionLogs } from "../../revision-logs.js";
import { createApiV1Router } from "../api-v1.js";
import { createSignInRoutes } from "../auth/sign-in-routes.js";
import type { SignInSettings } from "../auth/sign-in-settings.js";
import { createViewerAccess } from "../auth/viewer-access.js";
import type { PageContext } from "./page-context.js";
import { createPageRoutes } from "./page-routes.js";
import { ACTION_PATH, createRevisionActions, type RevisionActionName } from "./revision-actions.js";

export interface StatusPagesOptions {
  store: StateStore;
  logs: RevisionLogs;
  /**
   * `SLIPWAY_PUBLIC_URL`. The JSON view's links are absolute under it; the pages' links
   * start with its path, so the pages also work behind a proxy that serves them under a prefix.
   * GitHub sends people back to `<publicUrl>/auth/callback` after they sign in.
   */
  publicUrl: string;
  log?: Logger;
  /** How often an event stream sends a comment to keep proxies from closing it. */
  heartbeatMs?: number;
  /** Sign in with GitHub (see `readSignInSettings`). Unset: only public repositories are shown. */
  signIn?: SignInSettings;
  /** Whether GitHub shows the repository to everyone now. Default: what its last event said. */
  isPublicRepository?(deployment: Deployment): Promise<boolean>;
  /** The check run's `Redeploy`, for people with write permission. Unset: no button. */
  redeploy?(revisionId: string, actorLogin: string): Promise<void>;
  /** "Restart with new settings" of the running revision (its build, today's variables and secrets), for people with write permission. Unset: no button. */
  restart?(revisionId: string, actorLogin: string): Promise<void>;
  /** The check run's `Cancel`, for people with write permission. Unset: no button. */
  cancel?(revisionId: string, actorLogin: string): Promise<void>;
  /** Each deployment links signed-in people to its secrets page (served by secrets-pages.ts, with `context`). */
  linkSecrets?: boolean;
  /** How long GitHub's answers about who may read what are reused (default one minute). */
  accessCacheMs?: number;
  /** How long a session lasts (default twelve hours). */
  sessionTtlMs?: number;
  /** Epoch ms now; tests move it. */
  now?: () => number;
  /** How GitHub is called for signed-in people (default: global fetch). */
  fetch?: typeof fetch;
}

/** Answers `true` when it handled the request; `context` (sessions, access rule) serves other pages for the same people. */
export type StatusPages = ((request: IncomingMessage, response: ServerResponse, pathname: string) => Promise<boolean>) & { readonly context: PageContext };

/**
 * The status pages and the read-only JSON view of deployments and revisions:
 *
 * - `GET /` the deployments the viewer may see, grouped by repository, with their latest revisions;
 * - `GET /revisions/<id>` a revision's phases and log, followed live while it runs, with
 *   `Cancel` / `Redeploy` for people with write permission (`POST /revisions/<id>/cancel|redeploy`);
 * - `GET /revisions/<id>/log` the whole log as text; `/log-page?before=<byte>` an earlier page of it;
 * - `GET /revisions/<id>/events` server-sent events: new log text and state changes;
 * - `/api/v1/...` the JSON API (see api-v1.ts, its one route table);
 * - `/auth/sign-in`, `/auth/callback`, `POST /auth/sign-out`: sign in with GitHub.
 *
 * Access follows GitHub: a public repository's deployments are shown to anyone; a private
 * one's only to signed-in people GitHub lets read it (asked with their own token, cached for
 * `accessCacheMs`). Everyone else gets what a missing revision gets. Nothing secret is ever
 * rendered or serialized, and no token reaches the browser.
 *
 * @example
 * const statusPages = await createStatusPages({ store, logs, publicUrl, signIn: readSignInSettings(process.env), cancel, redeploy });
 * if (await statusPages(request, response, url.pathname)) return;
 */
export async function createStatusPages(options: StatusPagesOptions): Promise<StatusPages> {
  const { store, logs, log } = options;
  const publicUrl = options.publicUrl.replace(/\/+$/, "");
  const basePath = new URL(publicUrl).pathname.replace(/\/+$/, "");
  const now = options.now ?? Date.now;
  const secureCookies = new URL(publicUrl).protocol === "https:";

  const access = await createViewerAccess({
    store,
    basePath,
    secureCookies,
    signIn: options.signIn,
    isPublicRepository: options.isPublicRepository,
    accessCacheMs: options.accessCacheMs,
    sessionTtlMs: options.sessionTtlMs,
    now,
    fetch: options.fetch,
    log,
  });
  const signInRoutes = createSignInRoutes({ signIn: access.signIn, key: access.key, publicUrl, basePath, secureCookies, now, log });
  const apiV1 = createApiV1Router({ store, publicUrl, access });
  const context: PageContext = { store, logs, access, publicUrl, basePath, now, log };
  const pages = createPageRoutes({
    ...context,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    offers: { cancel: Boolean(options.cancel), redeploy: Boolean(options.redeploy), restart: Boolean(options.restart), secrets: options.linkSecrets === true },
  });
  const revisionAction = createRevisionActions({ ...context, cancel: options.cancel, redeploy: options.redeploy, restart: options.restart });

  return Object.assign(async function statusPages(request: IncomingMessage, response: ServerResponse, pathname: string) {
    if (await signInRoutes(request, response, pathname)) return true;
    if (await apiV1(request, response, pathname)) return true;
    const method = request.method ?? "GET";
    const action = method === "POST" ? ACTION_PATH.exec(pathname) : null;
    const reading = (method === "GET" || method === "HEAD") && (pathname === "/" || pathname.startsWith("/revisions/"));
    if (!reading && !action) return false;

    const viewer = access.viewer(request, response, pathname);
    if (action) await revisionAction(request, response, action[1]!, action[2] as RevisionActionName, viewer);
    else if (pathname === "/") await pages.index(response, viewer);
    else await pages.revision(request, response, pathname, viewer);
    return true;
  }, { context });
}
