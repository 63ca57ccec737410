import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Lifecycle } from "../../revisions/lifecycle.js";
import { DEFAULT_KEEP_BUILDS } from "../../revisions/selectors.js";
import { isTornDown } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import { compilePath } from "../http/api-v1.js";
import { HttpError, hasBearerToken, readJson, sendJson } from "../http/http-helpers.js";
import { findRollbackTarget, rollBack } from "../intents/roll-back.js";

const ROLLBACK_PATH = compilePath("/api/v1/repos/:owner/:repo/environments/:environment/rollback");
/** A commit (7 to 40 hex characters) or a revision id. */
const TARGET = /^(?:[0-9a-f]{7,40}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/**
 * `POST /api/v1/repos/<owner>/<repo>/environments/<environment>/rollback` `{"to"?: "<sha or
 * revision id>"}` with the admin token: puts a kept earlier build of the environment back,
 * without building (as `/rollback` does). Answers `200 { revision }` (the new revision's id
 * and number); 401 without the token; 400 for a malformed `to`; 404 for an unknown
 * environment, commit or revision; 409 when there is nothing kept to go back to, or the
 * target is live or no longer kept. Answers `true` when it handled the request.
 *
 * @example
 * const rollbackApi = createRollbackApi({ adminToken, store, lifecycle, keepBuilds: settings.keepBuilds, log });
 * if (await rollbackApi(request, response, pathname)) return;
 */
export function createRollbackApi(options: { adminToken: string; store: StateStore; lifecycle: Lifecycle; keepBuilds?: number; log: Logger }) {
  const { store, lifecycle, log } = options;
  const keepBuilds = options.keepBuilds ?? DEFAULT_KEEP_BUILDS;

  return async function rollbackApi(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    const match = ROLLBACK_PATH.exec(pathname);
    if (!match) return false;
    if (!hasBearerToken(request, options.adminToken)) {
      log.warn({ path: pathname, remote: request.socket.remoteAddress }, "rollback refused: wrong or missing admin token");
      sendJson(response, 401, { error: "the admin token is required (Authorization: Bearer …; SLIPWAY_ADMIN_TOKEN or admin.token in the data dir)" });
      return true;
    }
    if (request.method !== "POST") throw new HttpError(405, "use POST");
    const { owner, repo, environment } = match.groups as { owner: string; repo: string; environment: string };
    const body = await readJson<{ to?: unknown }>(request, 4096);
    if (body.to !== undefined && (typeof body.to !== "string" || !TARGET.test(body.to))) {
      throw new HttpError(400, "to must be a commit (7 to 40 hex characters) or a revision id, or left out for the build before the live one");
    }
    const fullName = `${decodeURIComponent(owner)}/${decodeURIComponent(repo)}`.toLowerCase();
    const env = decodeURIComponent(environment);
    const deployment = Object.values(store.state.deployments).find(
      (d) => d.repository.fullName.toLowerCase() === fullName && d.environment === env && !isTornDown(d),
    );
    if (!deployment) throw new HttpError(404, `${fullName} has no ${env} deployment`);
    const found = findRollbackTarget(store.state, deployment, body.to?.toLowerCase(), keepBuilds);
    if (!found.ok) throw new HttpError(found.kind === "missing" ? 404 : 409, found.reason.replaceAll("`", ""));
    const decision = await rollBack(lifecycle, { deployment, target: found.revision, actor: "operator" });
    log.info({ environment: env, revision: decision.revision.id, to: found.revision.id }, "rollback queued by an operator");
    sendJson(response, 200, {
      revision: { id: decision.revision.id, number: decision.revision.number },
      rollbackTo: { id: found.revision.id, number: found.revision.number, sha: found.revision.sha },
    });
    return true;
  };
}
