import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { FINAL_STATES, type Deployment, type Revision } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import { openSecretBox } from "../../store/secret-box.js";
import type { RevisionLogs } from "../revision-logs.js";
import { createAccessPolicy } from "./auth/access-policy.js";
import { checkFormPost } from "./auth/check-form-post.js";
import { createGitHubUserApi, GitHubUnavailableError } from "./auth/github-user-api.js";
import { openSessionKey } from "./auth/session-key.js";
import { openSessionStore, type Session } from "./auth/session-store.js";
import { hostCookie } from "./auth/cookies.js";
import { createSignInRoutes } from "./auth/sign-in-routes.js";
import type { SignInSettings } from "./auth/sign-in-settings.js";
import { HttpError, sendJson, sendText } from "./http-helpers.js";
import { deploymentView, revisionView } from "./status-pages/api-views.js";
import { html, type SafeHtml } from "./status-pages/html.js";
import { readLogSlice } from "./status-pages/read-log.js";
import { accountBar, renderMessage, renderRevisionNotFound, renderSignInProblem, signInHref, signInSetupHelp } from "./status-pages/render-access.js";
import { renderIndex } from "./status-pages/render-index.js";
import { LOG_TAIL_BYTES, renderLogPage, renderRevision } from "./status-pages/render-revision.js";
import { streamRevisionEvents } from "./status-pages/revision-events.js";
import { sendPage } from "./status-pages/send-page.js";

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
  /** How often an event stream looks at its revision's state. */
  statePollMs?: number;
  /** How often an event stream sends a comment to keep proxies from closing it. */
  heartbeatMs?: number;
  /** Sign in with GitHub (see `readSignInSettings`). Unset: only public repositories are shown. */
  signIn?: SignInSettings;
  /** Whether GitHub shows the repository to everyone now. Default: what its last event said. */
  isPublicRepository?(deployment: Deployment): Promise<boolean>;
  /** The check run's `Redeploy`, for people with write permission. Unset: no button. */
  redeploy?(revisionId: string, actorLogin: string): Promise<void>;
  /** The check run's `Cancel`, for people with write permission. Unset: no button. */
  cancel?(revisionId: string, actorLogin: string): Promise<void>;
  /** How long GitHub's answers about who may read what are reused (default one minute). */
  accessCacheMs?: number;
  /** How long a session lasts (default twelve hours). */
  sessionTtlMs?: number;
  /** Epoch ms now; tests move it. */
  now?: () => number;
  /** How GitHub is called for signed-in people (default: global fetch). */
  fetch?: typeof fetch;
}

/** Answers `true` when it handled the request. */
export type StatusPages = (request: IncomingMessage, response: ServerResponse, pathname: string) => Promise<boolean>;

/** Revision ids are `randomUUID()`s; anything else is answered 404 without a look at the disk. */
const REVISION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const REVISION_PATH = /^\/revisions\/([^/]+)(?:\/(log|log-page|events))?\/?$/;
const ACTION_PATH = /^\/revisions\/([^/]+)\/(cancel|redeploy)\/?$/;
const API_PATH = /^\/api\/v1\/(deployments|revisions)(?:\/([^/]*))?\/?$/;
const ARCHIVED_REVISIONS_LISTED = 50;
/** At most this many questions to GitHub at once for one index page. */
const ACCESS_CONCURRENCY = 8;

/** Who is asking, and which page to come back to after signing in. */
interface Viewer {
  session: Session | undefined;
  returnTo: string;
}

/**
 * The status pages and the read-only JSON view of deployments and revisions:
 *
 * - `GET /` the deployments the viewer may see, grouped by repository, with their latest revisions;
 * - `GET /revisions/<id>` a revision's phases and log, followed live while it runs, with
 *   `Cancel` / `Redeploy` for people with write permission (`POST /revisions/<id>/cancel|redeploy`);
 * - `GET /revisions/<id>/log` the whole log as text; `/log-page?before=<byte>` an earlier page of it;
 * - `GET /revisions/<id>/events` server-sent events: new log text and state changes;
 * - `GET /api/v1/deployments`, `/api/v1/deployments/<id>`, `/api/v1/revisions/<id>`;
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
  const statePollMs = options.statePollMs ?? 500;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const now = options.now ?? Date.now;
  const secureCookies = new URL(publicUrl).protocol === "https:";

  const key = await openSessionKey({ dataDir: store.dataDir });
  const signIn = options.signIn ? await openSignIn(options.signIn) : undefined;
  const policy = createAccessPolicy({
    signIn,
    isPublic: options.isPublicRepository ?? (async (deployment) => !deployment.repository.private),
    cacheMs: options.accessCacheMs ?? 60_000,
    now,
    log,
  });
  const signInRoutes = createSignInRoutes({ signIn, key, publicUrl, basePath, secureCookies, now, log });

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

  const header = (viewer: Viewer): SafeHtml =>
    accountBar({
      signInEnabled: signIn !== undefined,
      user: viewer.session && { login: viewer.session.login, csrfToken: viewer.session.csrfToken },
      basePath,
      returnTo: viewer.returnTo,
    });

  /** The deployments the viewer may read, and how many GitHub did not answer for (those they may not read are not counted). */
  async function sortByAccess(viewer: Viewer, deployments: Deployment[]) {
    const visible: Deployment[] = [];
    let unknown = 0;
    await forEachLimited(deployments, ACCESS_CONCURRENCY, async (deployment) => {
      try {
        if (await policy.canRead(viewer.session, deployment)) visible.push(deployment);
      } catch (error) {
        if (!(error instanceof GitHubUnavailableError)) throw error;
        log?.warn({ err: { message: error.message }, repository: deployment.repository.fullName }, "could not ask GitHub who may read a repository");
        unknown++;
      }
    });
    return { visible, unknown };
  }

  async function indexPage(response: ServerResponse, viewer: Viewer) {
    const { visible, unknown } = await sortByAccess(viewer, Object.values(store.state.deployments));
    const ids = new Set(visible.map((d) => d.id));
    const notices: SafeHtml[] = [];
    if (unknown > 0) notices.push(html`<p class="notice">GitHub did not answer whether you may see some repositories; their deployments are left out for now.</p>`);
    // Said to everyone not signed in, whether or not there are any: that there are would tell.
    if (!viewer.session) {
      notices.push(
        signIn
          ? html`<p class="notice">Deployments of private repositories are shown to people GitHub lets read them. <a href="${signInHref(basePath, viewer.returnTo)}">Sign in with GitHub</a> to see those you can read.</p>`
          : html`<div class="notice"><p>Deployments of private repositories are not shown.</p>${signInSetupHelp(publicUrl)}</div>`,
      );
    }
    const page = renderIndex({
      deployments: visible,
      revisions: Object.values(store.state.revisions).filter((r) => ids.has(r.deploymentId)),
      basePath,
      now: new Date(now()),
      notice: notices.length > 0 ? html`${notices}` : undefined,
    });
    sendPage(response, 200, { ...page, header: header(viewer) });
  }

  /** The revision and whether the viewer may read it; GitHub being unreachable is answered 503 here. */
  async function readableRevision(id: string, viewer: Viewer, response: ServerResponse, kind: "page" | "text" | "json") {
    const revision = REVISION_ID.test(id) ? await store.findRevision(id) : undefined;
    const deployment = revision && store.state.deployments[revision.deploymentId];
    if (!revision || !deployment) return { revision: undefined, deployment: undefined, readable: false };
    try {
      return { revision, deployment, readable: await policy.canRead(viewer.session, deployment) };
    } catch (error) {
      if (!(error instanceof GitHubUnavailableError)) throw error;
      log?.warn({ err: { message: error.message }, repository: deployment.repository.fullName }, "could not ask GitHub who may read a repository");
      const message = "Slipway could not ask GitHub whether you may see this. Try again in a moment.";
      if (kind === "page") sendPage(response, 503, { ...renderMessage({ basePath, title: "GitHub did not answer", message }), header: header(viewer) });
      else if (kind === "json") sendJson(response, 503, { error: message });
      else sendText(response, 503, `${message}\n`);
      return undefined;
    }
  }

  /**
   * What someone gets for a revision that does not exist or that they may not read: the very
   * same answer either way (status, headers and body), so that nobody learns whether a private
   * revision exists. Someone not signed in is sent to sign in (when sign-in is set up); anyone
   * else gets a 404 that says "missing, or not yours to see", with how to turn sign-in on when
   * it is not set up.
   */
  function deny(response: ServerResponse, viewer: Viewer, kind: "page" | "log" | "text") {
    if (signIn && !viewer.session && (kind === "page" || kind === "log")) {
      response.writeHead(302, { location: signInHref(basePath, viewer.returnTo), "cache-control": "no-store" }).end();
      return;
    }
    if (kind === "page") {
      return sendPage(response, 404, renderRevisionNotFound({ basePath, publicUrl, signInEnabled: signIn !== undefined, header: header(viewer) }));
    }
    return sendText(response, 404, "There is no revision with this id.\n");
  }

  async function revisionRoutes(request: IncomingMessage, response: ServerResponse, pathname: string, viewer: Viewer) {
    const match = REVISION_PATH.exec(pathname);
    const id = match?.[1] ?? "";
    const kind = match?.[2] ?? "page";
    if (!REVISION_ID.test(id)) {
      if (kind === "page") return sendNotFoundPage(response, basePath, "There is no revision with this id.", header(viewer));
      return sendText(response, 404, "There is no revision with this id.\n");
    }
    const found = await readableRevision(id, viewer, response, kind === "page" ? "page" : "text");
    if (!found) return;
    const { revision, deployment, readable } = found;
    if (!revision || !readable) return deny(response, viewer, kind === "page" ? "page" : kind === "log" ? "log" : "text");

    if (kind === "log") return sendWholeLog(response, revision);
    if (kind === "log-page") return sendLogPage(request, response, revision);
    if (kind === "events") {
      if (request.method === "HEAD") return void response.writeHead(200, { "content-type": "text/event-stream" }).end();
      const from = new URL(request.url ?? "/", "http://status.invalid").searchParams.get("from");
      return streamRevisionEvents(request, response, {
        store,
        logs,
        revisionId: revision.id,
        from: from !== null && /^\d{1,15}$/.test(from) ? Number(from) : undefined,
        statePollMs,
        heartbeatMs,
        log,
      });
    }
    const logSlice = await readLogSlice(logs.file(revision.id), { lastBytes: LOG_TAIL_BYTES });
    const final = FINAL_STATES.has(revision.state);
    const tornDown = deployment.state === "AWAITING_DELETE" || deployment.state === "DELETED";
    const offersActions = Boolean((options.cancel && !final) || (options.redeploy && final && !tornDown));
    // Drawing the buttons uses the cached answer; pressing one asks GitHub again.
    const mayWrite = viewer.session && offersActions ? await policy.canWrite(viewer.session, deployment).catch(() => false) : false;
    const requested = new URL(request.url ?? "/", "http://status.invalid").searchParams.get("requested");
    sendPage(
      response,
      200,
      renderRevision({
        revision,
        deployment,
        log: logSlice,
        basePath,
        now: new Date(now()),
        actions: mayWrite && viewer.session
          ? { csrfToken: viewer.session.csrfToken, cancel: Boolean(options.cancel) && !final, redeploy: Boolean(options.redeploy) && final && !tornDown }
          : undefined,
        requested: requested === "cancel" || requested === "redeploy" ? requested : undefined,
        header: header(viewer),
      }),
    );
  }

  /** `POST /revisions/<id>/cancel|redeploy`: the check run's buttons, for people GitHub says may write. */
  async function revisionAction(request: IncomingMessage, response: ServerResponse, id: string, action: "cancel" | "redeploy", viewer: Viewer) {
    const revisionPath = `${basePath}/revisions/${id}`;
    const perform = action === "cancel" ? options.cancel : options.redeploy;
    const { session } = viewer;
    try {
      await checkFormPost(request, session, publicUrl);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return sendPage(response, error.status, renderSignInProblem({ basePath, message: error.message, returnTo: revisionPath }));
    }
    if (!perform || !session || !REVISION_ID.test(id)) return sendNotFoundPage(response, basePath, "There is no such action.", header(viewer));
    const found = await readableRevision(id, viewer, response, "page");
    if (!found) return;
    const { revision, deployment, readable } = found;
    // Missing and not readable answer alike (the viewer is signed in here: no sign-in redirect).
    if (!revision || !readable) return sendPage(response, 404, renderRevisionNotFound({ basePath, publicUrl, signInEnabled: true, header: header(viewer) }));

    const refuse = (status: number, title: string, message: string) =>
      sendPage(response, status, renderMessage({ basePath, title, message, back: revisionPath, header: header(viewer) }));
    let mayWrite: boolean;
    try {
      mayWrite = await policy.canWrite(session, deployment, { fresh: true });
    } catch (error) {
      if (!(error instanceof GitHubUnavailableError)) throw error;
      return refuse(503, "GitHub did not answer", "Slipway could not ask GitHub for your permission. Try again in a moment.");
    }
    if (!mayWrite) {
      log?.info({ login: session.login, revision: revision.id, action }, "status page action refused: no write permission");
      return refuse(403, "Not permitted", `GitHub says @${session.login} may not write to ${deployment.repository.fullName}. ${action === "cancel" ? "Cancel" : "Redeploy"} needs write, maintain or admin permission.`);
    }
    const final = FINAL_STATES.has(revision.state);
    if (action === "cancel" && final) return refuse(409, "Already finished", "This revision has already finished; there is nothing to cancel.");
    if (action === "redeploy" && !final) return refuse(409, "Still running", "This revision is still queued or running: cancel it first, or wait for it to finish.");
    if (action === "redeploy" && (deployment.state === "AWAITING_DELETE" || deployment.state === "DELETED")) {
      return refuse(409, "Torn down", "This environment was torn down; it cannot be redeployed from here.");
    }
    await perform(revision.id, session.login);
    log?.info({ login: session.login, revision: revision.id, action }, "status page action accepted");
    response.writeHead(303, { location: `${revisionPath}?requested=${action}`, "cache-control": "no-store" }).end();
  }

  async function sendWholeLog(response: ServerResponse, revision: Revision) {
    const handle = await open(logs.file(revision.id), "r").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (!handle) return sendText(response, 404, "This revision has no log yet.\n");
    // The file may grow while it is sent; send what it held when asked, so the length is true.
    const { size } = await handle.stat().catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    response.writeHead(200, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": size,
      "content-disposition": `inline; filename="revision-${revision.id}.log"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    if (size === 0) {
      await handle.close();
      response.end();
      return;
    }
    await pipeline(handle.createReadStream({ start: 0, end: size - 1 }), response).catch((error: NodeJS.ErrnoException) => {
      // A reader that goes away mid-download is no fault.
      if (error.code !== "ERR_STREAM_PREMATURE_CLOSE") log?.warn({ err: error, revision: revision.id }, "sending a revision log failed");
    });
  }

  /** `GET /revisions/<id>/log-page?before=<byte>`: the page of the log that ends at `before`, as markup. */
  async function sendLogPage(request: IncomingMessage, response: ServerResponse, revision: Revision) {
    const before = new URL(request.url ?? "/", "http://status.invalid").searchParams.get("before");
    if (before === null || !/^\d{1,15}$/.test(before)) return sendJson(response, 400, { error: "before must be a byte offset" });
    const end = Number(before);
    const from = Math.max(0, end - LOG_TAIL_BYTES);
    const slice = await readLogSlice(logs.file(revision.id), { from, maxBytes: end - from });
    if (!slice) return sendJson(response, 404, { error: "this revision has no log yet" });
    sendJson(response, 200, renderLogPage(slice));
  }

  async function apiRoutes(response: ServerResponse, collection: string, id: string | undefined, viewer: Viewer) {
    const { state } = store;
    if (collection === "deployments" && id === undefined) {
      const { visible, unknown } = await sortByAccess(viewer, Object.values(state.deployments));
      if (unknown > 0) return sendJson(response, 503, { error: "GitHub did not answer whether you may read some repositories; try again in a moment" });
      const latest = new Map<string, Revision>();
      for (const revision of Object.values(state.revisions)) {
        const known = latest.get(revision.deploymentId);
        if (!known || revision.number > known.number) latest.set(revision.deploymentId, revision);
      }
      const deployments = visible
        .sort((a, b) => a.repository.fullName.localeCompare(b.repository.fullName) || a.environment.localeCompare(b.environment))
        .map((deployment) => {
          const revision = latest.get(deployment.id);
          return {
            ...deploymentView(deployment, publicUrl),
            latestRevision: revision ? revisionView(revision, deployment, publicUrl) : null,
          };
        });
      return sendJson(response, 200, { deployments });
    }

    if (collection === "deployments" && id !== undefined) {
      const deployment = Object.hasOwn(state.deployments, id) ? state.deployments[id] : undefined;
      const notFound = () => sendJson(response, 404, { error: "there is no deployment with this id" });
      if (!deployment) return notFound();
      try {
        if (!(await policy.canRead(viewer.session, deployment))) return notFound();
      } catch (error) {
        if (!(error instanceof GitHubUnavailableError)) throw error;
        return sendJson(response, 503, { error: "GitHub did not answer whether you may read this repository; try again in a moment" });
      }
      const revisions = new Map<string, Revision>();
      for (const revision of await store.archivedRevisions(deployment.id, ARCHIVED_REVISIONS_LISTED)) revisions.set(revision.id, revision);
      // Live records win: a revision being archived may briefly be in both places.
      for (const revision of Object.values(state.revisions)) {
        if (revision.deploymentId === deployment.id) revisions.set(revision.id, revision);
      }
      return sendJson(response, 200, {
        deployment: deploymentView(deployment, publicUrl),
        revisions: [...revisions.values()]
          .sort((a, b) => b.number - a.number)
          .map((revision) => revisionView(revision, deployment, publicUrl)),
      });
    }

    const found = id !== undefined ? await readableRevision(id, viewer, response, "json") : { revision: undefined, deployment: undefined, readable: false };
    if (!found) return;
    if (!found.revision || !found.readable) return sendJson(response, 404, { error: "there is no revision with this id" });
    return sendJson(response, 200, { revision: revisionView(found.revision, found.deployment, publicUrl) });
  }

  return async function statusPages(request, response, pathname) {
    if (await signInRoutes(request, response, pathname)) return true;
    const method = request.method ?? "GET";
    const action = method === "POST" ? ACTION_PATH.exec(pathname) : null;
    const api = API_PATH.exec(pathname);
    const reading = (method === "GET" || method === "HEAD") && (pathname === "/" || pathname.startsWith("/revisions/") || api !== null);
    if (!reading && !action) return false;

    const search = new URL(request.url ?? "/", "http://status.invalid").search;
    const viewer: Viewer = { session: signIn?.sessions.fromRequest(request, response), returnTo: `${basePath}${pathname}${search}` };
    if (action) await revisionAction(request, response, action[1]!, action[2] as "cancel" | "redeploy", viewer);
    else if (pathname === "/") await indexPage(response, viewer);
    else if (api) await apiRoutes(response, api[1]!, api[2] || undefined, viewer);
    else await revisionRoutes(request, response, pathname, viewer);
    return true;
  };
}

function sendNotFoundPage(response: ServerResponse, basePath: string, message: string, header?: SafeHtml): void {
  sendPage(response, 404, {
    title: "Not found",
    header,
    body: html`<nav><a href="${basePath}/">← All deployments</a></nav>
<h1>Not found</h1>
<p class="muted">${message}</p>`,
  });
}

/** Runs `work` on every item, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
