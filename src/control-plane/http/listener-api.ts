import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { PROTOCOL_PREFIX, type CompleteRequest, type CrashReport, type LeaseRequest, type ProgressReport } from "../../protocol/listener-protocol.js";
import { parseSandboxReport, type ListenerSandboxes } from "../listener-sandboxes.js";
import type { WorkQueue } from "../work-queue.js";
import { HttpError, hasBearerToken, readJson, sendJson } from "./http-helpers.js";

const MAX_WAIT_SECONDS = 25;
const WORK_OUTCOMES = new Set<string>(["DEPLOYED", "DATABASE_FAILED", "BUILD_FAILED", "DEPLOY_FAILED", "CANCELLED", "RELEASED", "DELETED", "TEARDOWN_FAILED"]);

/**
 * The listener protocol's HTTP side (see protocol/listener-protocol.ts). Answers `true`
 * when it handled the request.
 */
export function createListenerApi(options: { queue: WorkQueue; sandboxes: ListenerSandboxes; token: string; log: Logger }) {
  const { queue, log } = options;

  return async function listenerApi(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    if (!pathname.startsWith(`${PROTOCOL_PREFIX}/`)) return false;
    if (!hasBearerToken(request, options.token)) {
      // Never log what was presented: it may be a real token of something else.
      log.warn({ path: pathname, remote: request.socket.remoteAddress }, "listener request refused: wrong or missing token");
      sendJson(response, 401, { error: "a valid listener token is required (Authorization: Bearer …)" });
      return true;
    }
    if (request.method !== "POST") throw new HttpError(405, "use POST");

    if (pathname === `${PROTOCOL_PREFIX}/lease`) {
      const body = await readJson<LeaseRequest>(request);
      if (typeof body.listenerId !== "string" || !/^[\w.:-]{1,100}$/.test(body.listenerId)) {
        throw new HttpError(400, "listenerId must be 1-100 characters of letters, digits, '.', ':', '_' or '-'");
      }
      options.sandboxes.seen(body.listenerId, parseSandboxReport(body.sandbox));
      const wait = Math.min(MAX_WAIT_SECONDS, Math.max(0, Number(body.waitSeconds ?? 0) || 0));
      const aborted = new AbortController();
      response.on("close", () => aborted.abort());
      const work = await queue.lease(body.listenerId, wait, aborted.signal);
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
      const body = await readJson<{ listenerId?: string }>(request);
      if (typeof body.listenerId !== "string") throw new HttpError(400, "listenerId is required");
      sendJson(response, 200, { running: queue.running(body.listenerId) });
      return true;
    }
    if (pathname === `${PROTOCOL_PREFIX}/crashed`) {
      const body = await readJson<CrashReport>(request);
      if (typeof body.listenerId !== "string" || typeof body.revisionId !== "string" || typeof body.message !== "string") {
        throw new HttpError(400, "listenerId, revisionId and message are required");
      }
      await queue.crashed(body);
      sendJson(response, 200, { ok: true });
      return true;
    }

    const match = new RegExp(`^${PROTOCOL_PREFIX}/([0-9a-f-]{36})/(heartbeat|complete)$`).exec(pathname);
    if (!match) throw new HttpError(404, "no such listener endpoint");
    const [, leaseId, action] = match as unknown as [string, string, string];
    if (action === "heartbeat") {
      const result = await queue.heartbeat(leaseId, checkReport(await readJson<ProgressReport>(request)));
      if (result === "lease-lost") sendJson(response, 409, { error: "the lease is no longer yours" });
      else sendJson(response, 200, result);
      return true;
    }
    const body = checkReport(await readJson<CompleteRequest>(request));
    if (!WORK_OUTCOMES.has(body.outcome)) throw new HttpError(400, `outcome must be one of ${[...WORK_OUTCOMES].join(", ")}`);
    const result = await queue.complete(leaseId, body);
    if (result === "lease-lost") sendJson(response, 409, { error: "the lease is no longer yours" });
    else sendJson(response, 200, { ok: true });
    return true;
  };
}

function checkReport<T extends ProgressReport>(body: T): T {
  if (!Array.isArray(body.events)) throw new HttpError(400, "events must be an array");
  if (body.log !== undefined && (typeof body.log.text !== "string" || !Number.isInteger(body.log.offset))) {
    throw new HttpError(400, "log must be { offset, text }");
  }
  return body;
}
