import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { StateStore } from "../../store/open-state-store.js";
import { compilePath } from "../http/api-v1.js";
import { checkSameOrigin } from "../http/auth/check-form-post.js";
import type { Session } from "../http/auth/session-store.js";
import type { ViewerAccess } from "../http/auth/viewer-access.js";
import { bearerToken, hasBearerToken, HttpError, readJson, sendJson } from "../http/http-helpers.js";
import { InvalidSecretError, type SecretStore } from "./secret-store.js";
import { deploymentOfRepository, personSecretsAccess, secretsPathParams } from "./secrets-access.js";

/** A PUT body: `{"value": "…"}` with up to 64 KiB of value and room for JSON's escapes. */
const BODY_LIMIT_BYTES = 80 * 1024;
const LIST_PATH = compilePath("/api/v1/repos/:owner/:repo/environments/:environment/secrets");
const ONE_PATH = compilePath("/api/v1/repos/:owner/:repo/environments/:environment/secrets/:name");

/** The header a signed-in person's PUT or DELETE carries their session's CSRF token in. */
export const CSRF_HEADER = "x-csrf-token";

export interface SecretsApiOptions {
  secrets: SecretStore;
  store: StateStore;
  /** The operator's token (`SLIPWAY_ADMIN_TOKEN` or `admin.token`). */
  adminToken: string;
  /** The status pages' sessions and access rule (see createStatusPages' `context`). */
  access: ViewerAccess;
  /** `SLIPWAY_PUBLIC_URL`: a signed-in person's changes must come from this origin. */
  publicUrl: string;
  log?: Logger;
}

/** Who is asking: the operator with the admin token, or a person signed in with GitHub. */
type Caller = { kind: "admin" } | { kind: "person"; session: Session };

/**
 * Slipway's own secrets over JSON:
 *
 * - `GET /api/v1/repos/<owner>/<repo>/environments/<environment>/secrets`: names, update times
 *   and who updated them, never values;
 * - `PUT …/secrets/<NAME>` `{"value": "…"}`: sets one (up to 64 KiB), replacing an earlier value;
 * - `DELETE …/secrets/<NAME>`: removes one (404 when there is none).
 *
 * With `Authorization: Bearer <admin token>` any `owner/repo` may be given (only operators
 * hold it). Without one, a person signed in on the status pages who has maintain or admin
 * permission on a repository Slipway deploys (GitHub is asked again for every change, which
 * also needs their session's CSRF token in `X-CSRF-Token` and this origin). A wrong or missing
 * token and no session: 401; signed in without the permission: 403; bad names or sizes: 400.
 * No value is ever logged or sent back.
 *
 * @example
 * const secretsApi = createSecretsApi({ secrets, store, adminToken, access: statusPages.context.access, publicUrl });
 * if (await secretsApi(request, response, pathname)) return;
 */
export function createSecretsApi(options: SecretsApiOptions) {
  const { secrets, store, access, publicUrl, log } = options;

  function callerOf(request: IncomingMessage, response: ServerResponse, pathname: string): Caller | undefined {
    // A token that is given is the credential: a wrong one is refused even with a session.
    if (bearerToken(request) !== undefined) return hasBearerToken(request, options.adminToken) ? { kind: "admin" } : undefined;
    const session = access.viewer(request, response, pathname).session;
    return session ? { kind: "person", session } : undefined;
  }

  /** A person's change: their session's CSRF token and this origin, as for the pages' forms. */
  function checkPersonsChange(request: IncomingMessage, session: Session): void {
    checkSameOrigin(request, publicUrl);
    const given = Buffer.from(String(request.headers[CSRF_HEADER] ?? ""));
    const wanted = Buffer.from(session.csrfToken);
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
      throw new HttpError(403, `Refused: a signed-in change needs the session's CSRF token in the ${CSRF_HEADER} header.`);
    }
  }

  return async function secretsApi(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    const match = LIST_PATH.exec(pathname) ?? ONE_PATH.exec(pathname);
    if (!match) return false;
    const method = request.method ?? "GET";
    const caller = callerOf(request, response, pathname);
    if (!caller) {
      log?.warn({ path: pathname, remote: request.socket.remoteAddress }, "secrets request refused: wrong or missing admin token, and no session");
      sendJson(response, 401, { error: "the admin token is required (Authorization: Bearer …), or a session of someone signed in with GitHub with maintain or admin permission" });
      return true;
    }
    const { repository, environment, name } = secretsPathParams({ ...match.groups });
    const allowed = name === undefined ? ["GET", "HEAD"] : ["PUT", "DELETE"];
    if (!allowed.includes(method)) throw new HttpError(405, `use ${allowed.join(" or ")}`);
    const changing = method === "PUT" || method === "DELETE";

    let by = "admin token";
    let repositoryId = deploymentOfRepository(store, repository)?.repository.id;
    if (caller.kind === "person") {
      const { session } = caller;
      if (changing) checkPersonsChange(request, session);
      const found = await personSecretsAccess({ access, store, session, repository, fresh: changing });
      if (found.kind === "hidden") throw new HttpError(404, "Slipway deploys no repository by this name, or you may not see it");
      if (found.kind === "github-unavailable") throw new HttpError(503, "GitHub did not answer whether you may manage this repository's secrets; try again in a moment");
      if (found.kind === "refused") {
        log?.info({ login: session.login, repository, environment }, "secrets request refused: no maintain or admin permission");
        throw new HttpError(403, `GitHub says @${session.login} has neither maintain nor admin permission on ${repository}: Slipway's secrets need one of them`);
      }
      by = `@${session.login}`;
      repositoryId = found.deployment.repository.id;
    }

    if (name === undefined) {
      sendJson(response, 200, { repository, environment, secrets: secrets.list(repository, environment) });
      return true;
    }
    if (method === "DELETE") {
      if (!(await secrets.delete({ fullName: repository }, environment, name))) throw new HttpError(404, `there is no secret ${name} for ${repository} (${environment})`);
      log?.info({ repository, environment, name, by }, "secret deleted");
      sendJson(response, 200, { deleted: true });
      return true;
    }
    const body = await readJson<{ value?: unknown }>(request, BODY_LIMIT_BYTES);
    if (typeof body !== "object" || body === null || typeof body.value !== "string") throw new HttpError(400, 'the body must be {"value": "…"}, the value a string');
    try {
      await secrets.set({ id: repositoryId, fullName: repository }, environment, name, body.value, by);
    } catch (error) {
      if (error instanceof InvalidSecretError) throw new HttpError(400, error.message);
      throw error;
    }
    log?.info({ repository, environment, name, by }, "secret set");
    const listed = secrets.list(repository, environment).find((s) => s.name === name);
    sendJson(response, 200, { secret: listed });
    return true;
  };
}
