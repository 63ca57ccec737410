import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { Revision } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import type { RevisionLogs } from "../revision-logs.js";
import { sendJson, sendText } from "./http-helpers.js";
import { deploymentView, revisionView } from "./status-pages/api-views.js";
import { html } from "./status-pages/html.js";
import { readLogSlice } from "./status-pages/read-log.js";
import { renderIndex } from "./status-pages/render-index.js";
import { LOG_TAIL_BYTES, renderRevision } from "./status-pages/render-revision.js";
import { streamRevisionEvents } from "./status-pages/revision-events.js";
import { sendPage } from "./status-pages/send-page.js";

export interface StatusPagesOptions {
  store: StateStore;
  logs: RevisionLogs;
  /**
   * `SLIPWAY_PUBLIC_URL`. The JSON view's links are absolute under it; the pages' links
   * start with its path, so the pages also work behind a proxy that serves them under a prefix.
   */
  publicUrl: string;
  log?: Logger;
  /** How often an event stream looks at its revision's state. */
  statePollMs?: number;
  /** How often an event stream sends a comment to keep proxies from closing it. */
  heartbeatMs?: number;
}

/** Answers `true` when it handled the request. */
export type StatusPages = (request: IncomingMessage, response: ServerResponse, pathname: string) => Promise<boolean>;

/** Revision ids are `randomUUID()`s; anything else is answered 404 without a look at the disk. */
const REVISION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const REVISION_PATH = /^\/revisions\/([^/]+)(?:\/(log|events))?\/?$/;
const API_PATH = /^\/api\/v1\/(deployments|revisions)(?:\/([^/]*))?\/?$/;
const ARCHIVED_REVISIONS_LISTED = 50;

/**
 * The status pages and the read-only JSON view of deployments and revisions:
 *
 * - `GET /` deployments grouped by repository, with their latest revisions;
 * - `GET /revisions/<id>` a revision's phases and log, followed live while it runs;
 * - `GET /revisions/<id>/log` the whole log as text;
 * - `GET /revisions/<id>/events` server-sent events: new log text and state changes;
 * - `GET /api/v1/deployments`, `/api/v1/deployments/<id>`, `/api/v1/revisions/<id>`.
 *
 * Read-only and unauthenticated for now; nothing secret is ever rendered or serialized.
 *
 * @example
 * const statusPages = createStatusPages({ store, logs, publicUrl: settings.publicUrl, log });
 * if (request.method === "GET" && (await statusPages(request, response, url.pathname))) return;
 */
export function createStatusPages(options: StatusPagesOptions): StatusPages {
  const { store, logs, log } = options;
  const publicUrl = options.publicUrl.replace(/\/+$/, "");
  const basePath = new URL(publicUrl).pathname.replace(/\/+$/, "");
  const statePollMs = options.statePollMs ?? 500;
  const heartbeatMs = options.heartbeatMs ?? 15_000;

  async function revisionRoutes(request: IncomingMessage, response: ServerResponse, pathname: string) {
    const match = REVISION_PATH.exec(pathname);
    const id = match?.[1] ?? "";
    const kind = match?.[2] ?? "page";
    const revision = REVISION_ID.test(id) ? await store.findRevision(id) : undefined;
    if (!revision) {
      if (kind === "page") return sendNotFoundPage(response, basePath, "There is no revision with this id.");
      return sendText(response, 404, "There is no revision with this id.\n");
    }

    if (kind === "log") return sendWholeLog(response, revision);
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
    const deployment = store.state.deployments[revision.deploymentId];
    sendPage(response, 200, renderRevision({ revision, deployment, log: logSlice, basePath, now: new Date() }));
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

  async function apiRoutes(response: ServerResponse, collection: string, id: string | undefined) {
    const { state } = store;
    if (collection === "deployments" && id === undefined) {
      const latest = new Map<string, Revision>();
      for (const revision of Object.values(state.revisions)) {
        const known = latest.get(revision.deploymentId);
        if (!known || revision.number > known.number) latest.set(revision.deploymentId, revision);
      }
      const deployments = Object.values(state.deployments)
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
      if (!deployment) return sendJson(response, 404, { error: "there is no deployment with this id" });
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

    const revision = id !== undefined && REVISION_ID.test(id) ? await store.findRevision(id) : undefined;
    if (!revision) return sendJson(response, 404, { error: "there is no revision with this id" });
    return sendJson(response, 200, { revision: revisionView(revision, state.deployments[revision.deploymentId], publicUrl) });
  }

  return async function statusPages(request, response, pathname) {
    if (request.method !== "GET" && request.method !== "HEAD") return false;
    if (pathname === "/") {
      sendPage(response, 200, renderIndex(store.state, basePath, new Date()));
      return true;
    }
    if (pathname.startsWith("/revisions/")) {
      await revisionRoutes(request, response, pathname);
      return true;
    }
    const api = API_PATH.exec(pathname);
    if (api) {
      await apiRoutes(response, api[1]!, api[2] || undefined);
      return true;
    }
    return false;
  };
}

function sendNotFoundPage(response: ServerResponse, basePath: string, message: string): void {
  sendPage(response, 404, {
    title: "Not found",
    body: html`<nav><a href="${basePath}/">← All deployments</a></nav>
<h1>Not found</h1>
<p class="muted">${message}</p>`,
  });
}
