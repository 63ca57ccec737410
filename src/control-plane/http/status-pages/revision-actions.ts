import type { IncomingMessage, ServerResponse } from "node:http";
import { mayRestart } from "../../../revisions/selectors.js";
import { isFinal, isTornDown } from "../../../store/model.js";
import { checkFormPost } from "../auth/check-form-post.js";
import { GitHubUnavailableError } from "../auth/github-user-api.js";
import { REVISION_ID, type Viewer } from "../auth/viewer-access.js";
import { HttpError } from "../http-helpers.js";
import { pageHeader, sendGitHubUnavailable, sendNotFoundPage, type PageContext } from "./page-context.js";
import { renderMessage, renderRevisionNotFound, renderSignInProblem } from "./render-access.js";
import { sendPage } from "./send-page.js";

/** `POST /revisions/<id>/cancel|redeploy|restart`. */
export const ACTION_PATH = /^\/revisions\/([^/]+)\/(cancel|redeploy|restart)\/?$/;

export type RevisionActionName = "cancel" | "redeploy" | "restart";

export interface RevisionActionsOptions extends PageContext {
  /** The check run's `Cancel`. Unset: no such action. */
  cancel?(revisionId: string, actorLogin: string): Promise<void>;
  /** The check run's `Redeploy`. Unset: no such action. */
  redeploy?(revisionId: string, actorLogin: string): Promise<void>;
  /** "Restart with new settings" of the running revision. Unset: no such action. */
  restart?(revisionId: string, actorLogin: string): Promise<void>;
}

export type RevisionActions = (request: IncomingMessage, response: ServerResponse, id: string, action: RevisionActionName, viewer: Viewer) => Promise<void>;

/**
 * `POST /revisions/<id>/cancel|redeploy|restart`: the check run's buttons and the running revision's restart, for people GitHub says may
 * write. The form must carry the session's CSRF token and come from this origin; the
 * permission is asked of GitHub again, not taken from the cache the page was drawn with.
 */
export function createRevisionActions(options: RevisionActionsOptions): RevisionActions {
  const { access, publicUrl, basePath, log } = options;
  const header = (viewer: Viewer) => pageHeader(options, viewer);

  return async function revisionAction(request, response, id, action, viewer) {
    const revisionPath = `${basePath}/revisions/${id}`;
    const perform = options[action];
    const { session } = viewer;
    try {
      await checkFormPost(request, session, publicUrl);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return sendPage(response, error.status, renderSignInProblem({ basePath, message: error.message, returnTo: revisionPath }));
    }
    if (!perform || !session || !REVISION_ID.test(id)) return sendNotFoundPage(response, basePath, "There is no such action.", header(viewer));
    const found = await access.readableRevision(id, viewer);
    if (found === "github-unavailable") return sendGitHubUnavailable(options, response, viewer, "page");
    // Missing and not readable answer alike (the viewer is signed in here: no sign-in redirect).
    if (found === "hidden") return sendPage(response, 404, renderRevisionNotFound({ basePath, publicUrl, signInEnabled: true, header: header(viewer) }));
    const { revision, deployment } = found;

    const refuse = (status: number, title: string, message: string) =>
      sendPage(response, status, renderMessage({ basePath, title, message, back: revisionPath, header: header(viewer) }));
    let mayWrite: boolean;
    try {
      mayWrite = await access.policy.canWrite(session, deployment, { fresh: true });
    } catch (error) {
      if (!(error instanceof GitHubUnavailableError)) throw error;
      return refuse(503, "GitHub did not answer", "Slipway could not ask GitHub for your permission. Try again in a moment.");
    }
    if (!mayWrite) {
      log?.info({ login: session.login, revision: revision.id, action }, "status page action refused: no write permission");
      const words = { cancel: "Cancel", redeploy: "Redeploy", restart: "Restart" }[action];
      return refuse(403, "Not permitted", `GitHub says @${session.login} may not write to ${deployment.repository.fullName}. ${words} needs write, maintain or admin permission.`);
    }
    const final = isFinal(revision);
    if (action === "cancel" && final) return refuse(409, "Already finished", "This revision has already finished; there is nothing to cancel.");
    if (action === "redeploy" && !final) return refuse(409, "Still running", "This revision is still queued or running: cancel it first, or wait for it to finish.");
    if (action === "redeploy" && isTornDown(deployment)) {
      return refuse(409, "Torn down", "This environment was torn down; it cannot be redeployed from here.");
    }
    if (action === "restart" && !mayRestart(options.store.state, revision)) {
      return refuse(409, "Not running", "Only the running revision of an environment can be restarted with new settings; Redeploy builds this commit again.");
    }
    await perform(revision.id, session.login);
    log?.info({ login: session.login, revision: revision.id, action }, "status page action accepted");
    response.writeHead(303, { location: `${revisionPath}?requested=${action}`, "cache-control": "no-store" }).end();
  };
}
