import type { IncomingMessage, ServerResponse } from "node:http";
import { compilePath } from "../http/api-v1.js";
import { checkFormPost } from "../http/auth/check-form-post.js";
import type { Viewer } from "../http/auth/viewer-access.js";
import { HttpError } from "../http/http-helpers.js";
import { pageHeader, sendGitHubUnavailable, sendNotFoundPage, type PageContext } from "../http/status-pages/page-context.js";
import { renderMessage, renderSignInNotConfigured, renderSignInProblem, signInHref } from "../http/status-pages/render-access.js";
import { sendPage } from "../http/status-pages/send-page.js";
import { renderSecretsPage, secretsPagePath } from "./render-secrets-page.js";
import { InvalidSecretError, MAX_SECRET_BYTES, secretEnvironmentOf, type SecretStore } from "./secret-store.js";
import { personSecretsAccess, secretsPathParams } from "./secrets-access.js";

const PAGE_PATH = compilePath("/repos/:owner/:repo/environments/:environment/secrets");
const DELETE_PATH = compilePath("/repos/:owner/:repo/environments/:environment/secrets/:name/delete");
/** The set form: a 64 KiB value URL-encoded (up to three bytes a byte), with room for the rest. */
const SET_FORM_LIMIT_BYTES = 3 * MAX_SECRET_BYTES + 4 * 1024;

/**
 * The status pages' side of Slipway's secrets, for people signed in with GitHub who have
 * maintain or admin permission on a repository Slipway deploys:
 *
 * - `GET /repos/<owner>/<repo>/environments/<environment>/secrets`: names, who set them and
 *   when, never values;
 * - `POST` on the same path (`name`, `value`): set one;
 * - `POST …/secrets/<NAME>/delete`: delete one.
 *
 * Forms carry the session's CSRF token and must come from this origin (checkFormPost); GitHub
 * is asked for the permission again on every post. Someone who may not read the repository
 * gets the same 404 as for a repository Slipway does not deploy.
 *
 * @example
 * const secretsPages = createSecretsPages({ ...statusPages.context, secrets });
 * if (await secretsPages(request, response, pathname)) return;
 */
export function createSecretsPages(options: PageContext & { secrets: SecretStore }) {
  const { store, access, secrets, publicUrl, basePath, log } = options;
  const header = (viewer: Viewer) => pageHeader(options, viewer);

  return async function secretsPages(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    const pageMatch = PAGE_PATH.exec(pathname);
    const deleteMatch = pageMatch ? null : DELETE_PATH.exec(pathname);
    if (!pageMatch && !deleteMatch) return false;
    const method = request.method ?? "GET";
    const posting = method === "POST";
    if (!posting && !(pageMatch && (method === "GET" || method === "HEAD"))) {
      response.writeHead(405, { allow: pageMatch ? "GET, HEAD, POST" : "POST", "cache-control": "no-store" }).end();
      return true;
    }
    const viewer = access.viewer(request, response, pathname);
    const message = (status: number, title: string, text: string, back?: string) =>
      sendPage(response, status, renderMessage({ basePath, title, message: text, back, header: header(viewer) }));

    let params: ReturnType<typeof secretsPathParams>;
    try {
      params = secretsPathParams({ ...(pageMatch ?? deleteMatch)!.groups });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      message(error.status, "Not a secrets page", error.message);
      return true;
    }
    const { repository, environment } = params;
    const pagePath = secretsPagePath(basePath, repository, environment);

    let form: URLSearchParams | undefined;
    if (posting) {
      try {
        form = await checkFormPost(request, viewer.session, publicUrl, pageMatch ? SET_FORM_LIMIT_BYTES : undefined);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        sendPage(response, error.status, renderSignInProblem({ basePath, message: error.message, returnTo: pagePath }));
        return true;
      }
    }
    const session = viewer.session;
    if (!session) {
      if (access.signIn) response.writeHead(302, { location: signInHref(basePath, viewer.returnTo), "cache-control": "no-store" }).end();
      else sendPage(response, 403, renderSignInNotConfigured({ basePath, publicUrl }));
      return true;
    }

    const found = await personSecretsAccess({ access, store, session, repository, fresh: posting });
    if (found.kind === "github-unavailable") {
      sendGitHubUnavailable(options, response, viewer, "page");
      return true;
    }
    if (found.kind === "hidden") {
      sendNotFoundPage(response, basePath, "Slipway deploys no repository by this name, or you may not see it.", header(viewer));
      return true;
    }
    if (found.kind === "refused") {
      log?.info({ login: session.login, repository, environment }, "secrets page refused: no maintain or admin permission");
      message(403, "Not permitted", `GitHub says @${session.login} has neither maintain nor admin permission on ${repository}. Slipway's secrets need one of them.`);
      return true;
    }
    const by = `@${session.login}`;

    if (form && deleteMatch) {
      const name = params.name!;
      if (!(await secrets.delete({ fullName: repository }, environment, name))) {
        message(404, "No such secret", `There is no secret ${name} for ${repository} (${environment}).`, pagePath);
        return true;
      }
      log?.info({ repository, environment, name, by }, "secret deleted");
      response.writeHead(303, { location: `${pagePath}?deleted=${encodeURIComponent(name)}`, "cache-control": "no-store" }).end();
      return true;
    }
    if (form) {
      const name = (form.get("name") ?? "").trim();
      // Browsers send a textarea's line breaks as CRLF; the value is meant as typed.
      const value = (form.get("value") ?? "").replace(/\r\n/g, "\n");
      try {
        await secrets.set({ id: found.deployment.repository.id, fullName: repository }, environment, name, value, by);
      } catch (error) {
        if (!(error instanceof InvalidSecretError)) throw error;
        message(400, "Not set", error.message, pagePath);
        return true;
      }
      log?.info({ repository, environment, name, by }, "secret set");
      response.writeHead(303, { location: `${pagePath}?set=${encodeURIComponent(name)}`, "cache-control": "no-store" }).end();
      return true;
    }

    const query = new URL(request.url ?? "/", "http://status.invalid").searchParams;
    const doneName = query.get("set") ?? query.get("deleted");
    // Said only of a name that could be a secret's: the query is anyone's to write.
    const saidDone = doneName !== null && /^[A-Z_][A-Z0-9_]{0,99}$/.test(doneName);
    const wanted = repository.toLowerCase();
    const environments = new Set<string>();
    for (const d of Object.values(store.state.deployments)) if (d.repository.fullName.toLowerCase() === wanted) environments.add(secretEnvironmentOf(d.environment));
    for (const s of Object.values(store.state.secrets ?? {})) if (s.repository === wanted) environments.add(s.environment);
    sendPage(
      response,
      200,
      renderSecretsPage({
        repository,
        environment,
        secrets: secrets.list(repository, environment),
        environments: [...environments].sort(),
        csrfToken: session.csrfToken,
        basePath,
        done: saidDone ? { action: query.has("set") ? "set" : "deleted", name: doneName } : undefined,
        header: header(viewer),
      }),
    );
    return true;
  };
}
