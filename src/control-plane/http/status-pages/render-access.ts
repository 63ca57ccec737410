import { html, type SafeHtml } from "./html.js";
import type { Page } from "./send-page.js";

/** Who is looking, as the pages draw it. */
export interface AccountView {
  /** Sign-in with GitHub is configured. */
  signInEnabled: boolean;
  /** The signed-in person, if any. */
  user?: { login: string; csrfToken: string };
  basePath: string;
  /** Where sign-in comes back to: the page being drawn. */
  returnTo: string;
}

/** The top bar: "Sign in with GitHub", or "@login · Sign out" (a form post with the CSRF token). */
export function accountBar(view: AccountView): SafeHtml {
  if (!view.signInEnabled) return html``;
  if (!view.user) {
    return html`<div class="account"><a class="button" href="${signInHref(view.basePath, view.returnTo)}">Sign in with GitHub</a></div>`;
  }
  return html`<div class="account"><span class="muted">Signed in as</span> <strong>@${view.user.login}</strong>
<form method="post" action="${view.basePath}/auth/sign-out"><input type="hidden" name="csrf" value="${view.user.csrfToken}"><button type="submit" class="link">Sign out</button></form></div>`;
}

export function signInHref(basePath: string, returnTo: string): string {
  return `${basePath}/auth/sign-in?return_to=${encodeURIComponent(returnTo)}`;
}

/** What an operator does to let people see private repositories. */
export function signInSetupHelp(publicUrl: string): SafeHtml {
  return html`<p>To let people who can read a private repository on GitHub see its deployments here, turn on
sign-in with GitHub: set <code>GITHUB_CLIENT_ID</code> and <code>GITHUB_CLIENT_SECRET</code> to the GitHub App's client id
and a client secret (from the App's settings page; the manifest flow writes both), add
<code>${publicUrl}/auth/callback</code> as the App's callback URL, and restart Slipway.</p>`;
}

/**
 * The one answer for a revision that does not exist and for one the viewer may not read
 * (status 404): it must not differ between the two, so it says "or you may not see it" to
 * both, and, while sign-in is not set up, how to turn it on to both. Nothing of any
 * repository is in it.
 */
export function renderRevisionNotFound(options: { basePath: string; publicUrl: string; signInEnabled: boolean; header?: SafeHtml }): Page {
  return {
    title: "Not found",
    header: options.header,
    body: options.signInEnabled
      ? html`<nav><a href="${options.basePath}/">← All deployments</a></nav>
<h1>Not found</h1>
<p class="muted">There is no revision with this id, or you may not see it.</p>`
      : html`<nav><a href="${options.basePath}/">← All deployments</a></nav>
<h1>Not found</h1>
<p class="muted">There is no revision with this id, or it belongs to a private repository. Slipway shows private repositories only to people GitHub lets read them, which needs sign-in with GitHub; sign-in is not set up on this server.</p>
${signInSetupHelp(options.publicUrl)}`,
  };
}

/** `/auth/sign-in` on a server without client credentials. */
export function renderSignInNotConfigured(options: { basePath: string; publicUrl: string }): Page {
  return {
    title: "Sign-in is not set up",
    body: html`<nav><a href="${options.basePath}/">← All deployments</a></nav>
<h1>Sign-in with GitHub is not set up</h1>
${signInSetupHelp(options.publicUrl)}`,
  };
}

/** A sign-in or a form post that did not work, with a way to try again. */
export function renderSignInProblem(options: { basePath: string; message: string; returnTo: string }): Page {
  return {
    title: "Not signed in",
    body: html`<nav><a href="${options.basePath}/">← All deployments</a></nav>
<h1>That did not work</h1>
<p>${options.message}</p>
<p><a class="button" href="${signInHref(options.basePath, options.returnTo)}">Sign in with GitHub again</a></p>`,
  };
}

/** A refused action (no write permission) or a problem asking GitHub. */
export function renderMessage(options: { basePath: string; title: string; message: string; back?: string; header?: SafeHtml }): Page {
  return {
    title: options.title,
    header: options.header,
    body: html`<nav><a href="${options.back ?? `${options.basePath}/`}">← Back</a></nav>
<h1>${options.title}</h1>
<p>${options.message}</p>`,
  };
}
