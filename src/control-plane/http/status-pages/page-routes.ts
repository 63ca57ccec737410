import { mayRestart } from "../../../revisions/selectors.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isFinal, isTornDown } from "../../../store/model.js";
import { REVISION_ID, type Viewer } from "../auth/viewer-access.js";
import { sendText } from "../http-helpers.js";
import { html, type SafeHtml } from "./html.js";
import { pageHeader, sendGitHubUnavailable, sendNotFoundPage, type PageContext } from "./page-context.js";
import { readLogSlice } from "./read-log.js";
import { renderRevisionNotFound, signInHref, signInSetupHelp } from "./render-access.js";
import { renderIndex } from "./render-index.js";
import { LOG_TAIL_BYTES, renderRevision } from "./render-revision.js";
import { streamRevisionEvents } from "./revision-events.js";
import { sendLogPage, sendWholeLog } from "./send-log.js";
import { sendPage } from "./send-page.js";

const REVISION_PATH = /^\/revisions\/([^/]+)(?:\/(log|log-page|events))?\/?$/;

export interface PageRoutesOptions extends PageContext {
  /** How often an event stream sends a comment to keep proxies from closing it. */
  heartbeatMs: number;
  /** Which of the check run's buttons this server offers (to people with write permission). */
  offers: { cancel: boolean; redeploy: boolean; restart?: boolean; secrets?: boolean };
}

export interface PageRoutes {
  /** `GET /`. */
  index(response: ServerResponse, viewer: Viewer): Promise<void>;
  /** `GET /revisions/<id>` and its `/log`, `/log-page` and `/events`. */
  revision(request: IncomingMessage, response: ServerResponse, pathname: string, viewer: Viewer): Promise<void>;
}

/** The pages people read: the index of deployments and a revision's page, log and live events. */
export function createPageRoutes(options: PageRoutesOptions): PageRoutes {
  const { store, logs, access, publicUrl, basePath, now, log, offers } = options;
  const signInEnabled = access.signIn !== undefined;
  const header = (viewer: Viewer) => pageHeader(options, viewer);

  /**
   * What someone gets for a revision that does not exist or that they may not read: the very
   * same answer either way (status, headers and body), so that nobody learns whether a private
   * revision exists. Someone not signed in is sent to sign in (when sign-in is set up); anyone
   * else gets a 404 that says "missing, or not yours to see", with how to turn sign-in on when
   * it is not set up.
   */
  function deny(response: ServerResponse, viewer: Viewer, kind: "page" | "log" | "text") {
    if (signInEnabled && !viewer.session && (kind === "page" || kind === "log")) {
      response.writeHead(302, { location: signInHref(basePath, viewer.returnTo), "cache-control": "no-store" }).end();
      return;
    }
    if (kind === "page") {
      return sendPage(response, 404, renderRevisionNotFound({ basePath, publicUrl, signInEnabled, header: header(viewer) }));
    }
    return sendText(response, 404, "There is no revision with this id.\n");
  }

  return {
    async index(response, viewer) {
      const { visible, unknown } = await access.readableDeployments(viewer, Object.values(store.state.deployments));
      const ids = new Set(visible.map((d) => d.id));
      const notices: SafeHtml[] = [];
      if (unknown > 0) notices.push(html`<p class="notice">GitHub did not answer whether you may see some repositories; their deployments are left out for now.</p>`);
      // Said to everyone not signed in, whether or not there are any: that there are would tell.
      if (!viewer.session) {
        notices.push(
          signInEnabled
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
        secretsLinks: offers.secrets === true && viewer.session !== undefined,
        locks: store.state.locks,
      });
      sendPage(response, 200, { ...page, header: header(viewer) });
    },

    async revision(request, response, pathname, viewer) {
      const match = REVISION_PATH.exec(pathname);
      const id = match?.[1] ?? "";
      const kind = match?.[2] ?? "page";
      if (!REVISION_ID.test(id)) {
        if (kind === "page") return sendNotFoundPage(response, basePath, "There is no revision with this id.", header(viewer));
        return sendText(response, 404, "There is no revision with this id.\n");
      }
      const found = await access.readableRevision(id, viewer);
      if (found === "github-unavailable") return sendGitHubUnavailable(options, response, viewer, kind === "page" ? "page" : "text");
      if (found === "hidden") return deny(response, viewer, kind === "page" ? "page" : kind === "log" ? "log" : "text");
      const { revision, deployment } = found;

      if (kind === "log") return sendWholeLog(response, logs, revision, log);
      if (kind === "log-page") return sendLogPage(request, response, logs, revision);
      if (kind === "events") {
        if (request.method === "HEAD") return void response.writeHead(200, { "content-type": "text/event-stream" }).end();
        const from = new URL(request.url ?? "/", "http://status.invalid").searchParams.get("from");
        return streamRevisionEvents(request, response, {
          store,
          logs,
          revisionId: revision.id,
          from: from !== null && /^\d{1,15}$/.test(from) ? Number(from) : undefined,
          heartbeatMs: options.heartbeatMs,
          log,
        });
      }
      const logSlice = await readLogSlice(logs.file(revision.id), { lastBytes: LOG_TAIL_BYTES });
      const final = isFinal(revision);
      const mayCancel = offers.cancel && !final;
      const mayRedeploy = offers.redeploy && final && !isTornDown(deployment);
      const restartable = Boolean(offers.restart) && mayRestart(store.state, revision);
      // Drawing the buttons uses the cached answer; pressing one asks GitHub again.
      const mayWrite = viewer.session && (mayCancel || mayRedeploy || restartable) ? await access.policy.canWrite(viewer.session, deployment).catch(() => false) : false;
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
          actions: mayWrite && viewer.session ? { csrfToken: viewer.session.csrfToken, cancel: mayCancel, redeploy: mayRedeploy, restart: restartable } : undefined,
          requested: requested === "cancel" || requested === "redeploy" || requested === "restart" ? requested : undefined,
          header: header(viewer),
        }),
      );
    },
  };
}
