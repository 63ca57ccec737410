import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { PROTOCOL_PREFIX, type CompleteRequest, type CrashReport, type JoinRequest, type LeaseRequest, type ProgressReport } from "../../protocol/listener-protocol.js";
import { DEFAULT_POOL } from "../../store/model.js";
import { parseSandboxReport, type ListenerPresence } from "../listener-presence.js";
import type { ListenerRegistry } from "../listener-registry.js";
import type { WorkQueue } from "../work-queue.js";
import { HttpError, bearerToken, hasBearerToken, readJson, sendJson } from "./http-helpers.js";

const MAX_WAIT_SECONDS = 25;
const WORK_OUTCOMES = new Set<string>(["DEPLOYED", "DATABASE_FAILED", "BUILD_FAILED", "DEPLOY_FAILED", "CANCELLED", "RELEASED", "DELETED", "TEARDOWN_FAILED"]);

const POOL = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * The listener protocol's HTTP side (see protocol/listener-protocol.ts). `/join` takes the
 * join token; everything else a listener's own credential, which says who is asking.
 * Answers `true` when it handled the request.
 */
export function createListenerApi(options: { queue: WorkQueue; presence: ListenerPresence; registry: ListenerRegistry; joinToken: string; log: Logger }) {
  const { queue, registry, presence, log } = options;

  function refuse(request: IncomingMessage, response: ServerResponse, pathname: string, why: string) {
    // Never log what was presented: it may be a real token of something else.
    log.warn({ path: pathname, remote: request.socket.remoteAddress, why }, "listener request refused: wrong or missing token");
    sendJson(response, 401, { error: `${why}: a listener's credential is required (Authorization: Bearer …)` });
  }

  return async function listenerApi(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    if (!pathname.startsWith(`${PROTOCOL_PREFIX}/`)) return false;
    if (pathname === `${PROTOCOL_PREFIX}/join`) {
      if (!hasBearerToken(request, options.joinToken)) {
        refuse(request, response, pathname, "wrong join token");
        return true;
      }
      if (request.method !== "POST") throw new HttpError(405, "use POST");
      const body = await readJson<JoinRequest>(request);
      const joined = await registry.join(body);
      if (!joined.ok) throw new HttpError(joined.status, joined.message);
      log.info({ listener: body.listenerId, pool: body.pool }, "a listener joined");
      sendJson(response, 200, { credential: joined.credential });
      return true;
    }
    const who = registry.authenticate(bearerToken(request) ?? "");
    if (!who.ok) {
      refuse(request, response, pathname, who.message);
      return true;
    }
    const { listenerId } = who;
    if (request.method !== "POST") throw new HttpError(405, "use POST");
    presence.touch(listenerId);
    registry.remember(listenerId);

    if (pathname === `${PROTOCOL_PREFIX}/lease`) {
      const body = await readJson<LeaseRequest>(request);
      const pool = body.pool ?? DEFAULT_POOL;
      if (typeof pool !== "string" || !POOL.test(pool)) throw new HttpError(400, "pool must be 1-63 lowercase letters, digits, '.', '_' or '-'");
      presence.seen(listenerId, parseSandboxReport(body.sandbox), pool);
      const wait = Math.min(MAX_WAIT_SECONDS, Math.max(0, Number(body.waitSeconds ?? 0) || 0));
      const aborted = new AbortController();
      const polled = presence.polling(listenerId);
      response.on("close", () => {
        aborted.abort();
        polled();
      });
      const work = await queue.lease(listenerId, wait, aborted.signal).finally(polled);
      if (aborted.signal.aborted && !response.writable) {
        // The listener went away while we waited; if we just leased something, it expires.
        return true;
      }
      if (!work) {
        response.writeHead(204).end();
        return true;
      }
      sendJson(response, 200, { work });
      return true;
    }

    if (pathname === `${PROTOCOL_PREFIX}/running`) {
      sendJson(response, 200, { running: await queue.running(listenerId) });
      return true;
    }
    if (pathname === `${PROTOCOL_PREFIX}/crashed`) {
      const body = await readJson<CrashReport>(request);
      if (typeof body.revisionId !== "string" || typeof body.message !== "string") {
        throw new HttpError(400, "revisionId and message are required");
      }
      await queue.crashed({ ...body, listenerId });
      sendJson(response, 200, { ok: true });
      return true;
    }

    const match = new RegExp(`^${PROTOCOL_PREFIX}/([0-9a-f-]{36})/(heartbeat|complete)$`).exec(pathname);
    if (!match) throw new HttpError(404, "no such listener endpoint");
    const [, leaseId, action] = match as unknown as [string, string, string];
    const result =
      action === "heartbeat"
        ? await queue.heartbeat(listenerId, leaseId, checkReport(await readJson<ProgressReport>(request)))
        : await queue.complete(listenerId, leaseId, checkOutcome(checkReport(await readJson<CompleteRequest>(request))));
    if (result === "lease-lost") sendJson(response, 409, { error: "the lease is no longer yours" });
    else if (result === "not-yours") {
      log.warn({ listener: listenerId, lease: leaseId, action }, "refused: a listener reported on another listener's lease");
      sendJson(response, 403, { error: "this lease belongs to another listener" });
    } else sendJson(response, 200, result === "ok" ? { ok: true } : result);
    return true;
  };
}

function checkOutcome(body: CompleteRequest): CompleteRequest {
  if (!WORK_OUTCOMES.has(body.outcome)) throw new HttpError(400, `outcome must be one of ${[...WORK_OUTCOMES].join(", ")}`);
  return body;
}

function checkReport<T extends ProgressReport>(body: T): T {
  if (!Array.isArray(body.events)) throw new HttpError(400, "events must be an array");
  if (body.log !== undefined && (typeof body.log.text !== "string" || !Number.isInteger(body.log.offset))) {
    throw new HttpError(400, "log must be { offset, text }");
  }
  return body;
}
