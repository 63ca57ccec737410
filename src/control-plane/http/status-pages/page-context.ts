import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { StateStore } from "../../../store/open-state-store.js";
import type { RevisionLogs } from "../../revision-logs.js";
import { GITHUB_UNAVAILABLE_MESSAGE, type Viewer, type ViewerAccess } from "../auth/viewer-access.js";
import { sendText } from "../http-helpers.js";
import { html, type SafeHtml } from "./html.js";
import { accountBar, renderMessage } from "./render-access.js";
import { sendPage } from "./send-page.js";

/** What the page routes and the action routes share. */
export interface PageContext {
  store: StateStore;
  logs: RevisionLogs;
  access: ViewerAccess;
  /** `SLIPWAY_PUBLIC_URL` without a trailing slash. */
  publicUrl: string;
  /** Its path: every link of the pages starts with it. */
  basePath: string;
  now: () => number;
  log?: Logger;
}

/** The account bar above every page: "Sign in with GitHub", or who is signed in. */
export function pageHeader(context: PageContext, viewer: Viewer): SafeHtml {
  return accountBar({
    signInEnabled: context.access.signIn !== undefined,
    user: viewer.session && { login: viewer.session.login, csrfToken: viewer.session.csrfToken },
    basePath: context.basePath,
    returnTo: viewer.returnTo,
  });
}

/** GitHub could not be asked whether the viewer may see a revision: a 503 page, or text for the log and events. */
export function sendGitHubUnavailable(context: PageContext, response: ServerResponse, viewer: Viewer, kind: "page" | "text"): void {
  if (kind === "text") return sendText(response, 503, `${GITHUB_UNAVAILABLE_MESSAGE}\n`);
  sendPage(response, 503, {
    ...renderMessage({ basePath: context.basePath, title: "GitHub did not answer", message: GITHUB_UNAVAILABLE_MESSAGE }),
    header: pageHeader(context, viewer),
  });
}

export function sendNotFoundPage(response: ServerResponse, basePath: string, message: string, header?: SafeHtml): void {
  sendPage(response, 404, {
    title: "Not found",
    header,
    body: html`<nav><a href="${basePath}/">← All deployments</a></nav>
<h1>Not found</h1>
<p class="muted">${message}</p>`,
  });
}
