import type { IncomingMessage, ServerResponse } from "node:http";
import { lockOf } from "../../revisions/deploy-locks.js";
import type { Revision } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import { GitHubUnavailableError } from "./auth/github-user-api.js";
import { GITHUB_UNAVAILABLE_MESSAGE, type Viewer, type ViewerAccess } from "./auth/viewer-access.js";
import { sendJson } from "./http-helpers.js";
import { deploymentView, revisionView } from "./status-pages/api-views.js";

/** How many archived revisions `GET /api/v1/deployments/<id>` lists besides the live ones. */
const ARCHIVED_REVISIONS_LISTED = 50;

export interface ApiV1Options {
  store: StateStore;
  /** `SLIPWAY_PUBLIC_URL` without a trailing slash: the views' links are absolute under it. */
  publicUrl: string;
  /** The status pages' access rule: the API shows a viewer exactly what the pages show them. */
  access: ViewerAccess;
}

/** Answers `true` when it handled the request. */
export type ApiV1Router = (request: IncomingMessage, response: ServerResponse, pathname: string) => Promise<boolean>;

/** What a handler gets: the request, its `:name` path parameters and who is asking. */
export interface ApiV1Request {
  request: IncomingMessage;
  response: ServerResponse;
  params: Readonly<Record<string, string>>;
  viewer: Viewer;
}

export interface ApiV1Route {
  /** `GET` routes answer `HEAD` too. */
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** A path with `:name` segments, e.g. `/api/v1/revisions/:id`; a trailing slash is allowed. */
  path: string;
  handle(context: ApiV1Request): Promise<void>;
}

/**
 * The JSON API under `/api/v1` (the listener protocol's `/api/v1/work` aside), one route table:
 *
 * - `GET /api/v1/deployments` the deployments the viewer may read, each with its latest revision;
 * - `GET /api/v1/deployments/<id>` one deployment and its revisions, live and archived;
 * - `GET /api/v1/revisions/<id>` one revision.
 *
 * The views (api-views.ts) are built field by field and hold nothing secret. Access is the
 * status pages' own: a private repository's records look missing (404) to anyone GitHub does
 * not let read it, and GitHub not answering is a 503, never a guess.
 *
 * @example
 * const api = createApiV1Router({ store, publicUrl, access });
 * if (await api(request, response, url.pathname)) return;
 */
export function createApiV1Router(options: ApiV1Options): ApiV1Router {
  const { store, publicUrl, access } = options;

  const routes: ApiV1Route[] = [
    {
      method: "GET",
      path: "/api/v1/deployments",
      async handle({ response, viewer }) {
        const { state } = store;
        const { visible, unknown } = await access.readableDeployments(viewer, Object.values(state.deployments));
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
              ...deploymentView(deployment, publicUrl, lockOf(state, deployment.id)),
              latestRevision: revision ? revisionView(revision, deployment, publicUrl) : null,
            };
          });
        sendJson(response, 200, { deployments });
      },
    },
    {
      method: "GET",
      path: "/api/v1/deployments/:id",
      async handle({ response, params, viewer }) {
        const { state } = store;
        const id = params.id!;
        const deployment = Object.hasOwn(state.deployments, id) ? state.deployments[id] : undefined;
        const notFound = () => sendJson(response, 404, { error: "there is no deployment with this id" });
        if (!deployment) return notFound();
        try {
          if (!(await access.policy.canRead(viewer.session, deployment))) return notFound();
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
        sendJson(response, 200, {
          deployment: deploymentView(deployment, publicUrl, lockOf(state, deployment.id)),
          revisions: [...revisions.values()]
            .sort((a, b) => b.number - a.number)
            .map((revision) => revisionView(revision, deployment, publicUrl)),
        });
      },
    },
    {
      // No id is no such revision.
      method: "GET",
      path: "/api/v1/revisions",
      async handle({ response }) {
        sendJson(response, 404, { error: "there is no revision with this id" });
      },
    },
    {
      method: "GET",
      path: "/api/v1/revisions/:id",
      async handle({ response, params, viewer }) {
        const found = await access.readableRevision(params.id!, viewer);
        if (found === "github-unavailable") return sendJson(response, 503, { error: GITHUB_UNAVAILABLE_MESSAGE });
        if (found === "hidden") return sendJson(response, 404, { error: "there is no revision with this id" });
        sendJson(response, 200, { revision: revisionView(found.revision, found.deployment, publicUrl) });
      },
    },
  ];

  const table = routes.map((route) => ({ ...route, pattern: compilePath(route.path) }));

  return async function apiV1(request, response, pathname) {
    const method = request.method ?? "GET";
    for (const route of table) {
      if (route.method !== method && !(route.method === "GET" && method === "HEAD")) continue;
      const match = route.pattern.exec(pathname);
      if (!match) continue;
      const viewer = access.viewer(request, response, pathname);
      await route.handle({ request, response, params: { ...match.groups }, viewer });
      return true;
    }
    return false;
  };
}

/** `/api/v1/revisions/:id` → a pattern with a named group per parameter, a trailing slash allowed. */
export function compilePath(path: string): RegExp {
  const source = path
    .split("/")
    .map((segment) => (segment.startsWith(":") ? `(?<${segment.slice(1)}>[^/]+)` : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}/?$`);
}
