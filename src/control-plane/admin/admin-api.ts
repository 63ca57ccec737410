import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Lifecycle } from "../../revisions/lifecycle.js";
import type { StateStore } from "../../store/open-state-store.js";
import { compilePath } from "../http/api-v1.js";
import { HttpError, hasBearerToken, readJson, sendJson } from "../http/http-helpers.js";
import type { ListenerPresence } from "../listener-presence.js";
import type { ListenerRegistry } from "../listener-registry.js";

interface AdminRoute {
  method: "GET" | "POST";
  path: string;
  handle(request: IncomingMessage, response: ServerResponse, params: Record<string, string>): Promise<void>;
}

/**
 * The operator's API, behind the admin token (`SLIPWAY_ADMIN_TOKEN` or `admin.token` in the
 * data dir):
 *
 * - `GET /api/v1/listeners`: every listener that joined, its pool, whether it is present, when
 *   it was last seen, and the deployments bound to it;
 * - `POST /api/v1/listeners/<id>/revoke`: its credential is refused from now on, its leases go
 *   back to the queue and its deployments move off it;
 * - `POST /api/v1/deployments/<id>/move` `{"to": "<listener id>"}` (or `{}`: any listener of
 *   the pool): the deployment's later work goes there; an embedded database stays behind and
 *   the new listener starts with an empty one.
 *
 * Answers `true` when it handled the request.
 */
export function createAdminApi(options: {
  adminToken: string;
  store: StateStore;
  lifecycle: Lifecycle;
  registry: ListenerRegistry;
  presence: ListenerPresence;
  log: Logger;
}) {
  const { store, lifecycle, registry, presence, log } = options;

  const routes: AdminRoute[] = [
    {
      method: "GET",
      path: "/api/v1/listeners",
      async handle(_request, response) {
        const bound = (id: string) => Object.values(store.state.deployments).filter((d) => d.placement?.listenerId === id);
        const listeners = registry.list().map((record) => {
          const seen = presence.lastSeen(record.id);
          return {
            id: record.id,
            pool: presence.lastSeen(record.id) === undefined ? record.pool : presence.poolOf(record.id),
            present: presence.isPresent(record.id),
            lastSeenAt: seen === undefined ? record.lastSeenAt : new Date(seen).toISOString(),
            joinedAt: record.joinedAt,
            revokedAt: record.revokedAt,
            deployments: bound(record.id).map((d) => ({ id: d.id, repository: d.repository.fullName, environment: d.environment, holds: d.placement!.holds })),
          };
        });
        sendJson(response, 200, { listeners });
      },
    },
    {
      method: "POST",
      path: "/api/v1/listeners/:id/revoke",
      async handle(_request, response, params) {
        const id = params.id!;
        if (!registry.get(id)) throw new HttpError(404, `no listener ${id} has joined`);
        const revoked = await registry.revoke(id, "admin");
        await lifecycle.releaseListener(id, "An operator (revoking the listener)");
        log.warn({ listener: id }, "listener revoked: its work goes back to the queue, its deployments move off it");
        sendJson(response, 200, { ok: true, alreadyRevoked: !revoked });
      },
    },
    {
      method: "POST",
      path: "/api/v1/deployments/:id/move",
      async handle(request, response, params) {
        const deployment = store.state.deployments[params.id!];
        if (!deployment) throw new HttpError(404, "there is no deployment with this id");
        const body = await readJson<{ to?: unknown }>(request);
        if (body.to !== undefined && typeof body.to !== "string") throw new HttpError(400, "to must be a listener id, or left out for any listener of the pool");
        const to = body.to;
        if (to !== undefined) {
          const target = registry.get(to);
          if (!target) throw new HttpError(400, `no listener ${to} has joined`);
          if (target.revokedAt) throw new HttpError(400, `the listener ${to} was revoked`);
        }
        const moved = await lifecycle.move(deployment.id, { to, by: "An operator" });
        if (!moved) throw new HttpError(409, to ? `the deployment is already on ${to}, or it was deleted` : "the deployment was deleted");
        sendJson(response, 200, { ok: true, deployment: { id: deployment.id, placement: store.state.deployments[deployment.id]?.placement ?? null } });
      },
    },
  ];
  const table = routes.map((route) => ({ ...route, pattern: compilePath(route.path) }));

  return async function adminApi(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    const route = table.find((r) => r.pattern.test(pathname));
    if (!route) return false;
    if (!hasBearerToken(request, options.adminToken)) {
      log.warn({ path: pathname, remote: request.socket.remoteAddress }, "admin request refused: wrong or missing admin token");
      sendJson(response, 401, { error: "the admin token is required (Authorization: Bearer …; SLIPWAY_ADMIN_TOKEN or admin.token in the data dir)" });
      return true;
    }
    if (request.method !== route.method) throw new HttpError(405, `use ${route.method}`);
    await route.handle(request, response, { ...route.pattern.exec(pathname)!.groups });
    return true;
  };
}
