import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { readCappedBody } from "../http/read-capped-body.js";

/** GitHub caps webhook payloads at 25 MB: a larger body did not come from GitHub. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;
/** How long a refused request's connection is kept half-closed for the client to read the answer. */
const LINGER_MS = 2_000;

/**
 * What a verified delivery is handed to: Probot's `probot.webhooks` (its `verify` uses the
 * App's WEBHOOK_SECRET; its `receive` runs the app's handlers, which record to the inbox).
 */
export interface WebhookSink {
  verify(payload: string, signature: string): Promise<boolean>;
  receive(event: { id: string; name: string; payload: unknown }): Promise<void>;
}

export interface WebhookReceiverOptions {
  webhooks: WebhookSink;
  log: Logger;
  /** Largest body taken (default: GitHub's 25 MB). */
  maxBytes?: number;
}

const isApplicationJson = /^\s*(application\/json)\s*(?:;|$)/u;
const JSON_HEADERS = { "content-type": "application/json", accept: "application/json" };
const decoder = new TextDecoder("utf-8", { fatal: false });

/**
 * POST /api/github/webhooks, in place of Probot's middleware, with the checks a stranger
 * can reach done first and cheaply: the body is capped before it is buffered (413, and the
 * connection closed), the signature is checked before anything is parsed, logged or handed
 * on (401, one warn line with delivery id, event and size: never the body or signature).
 * A verified delivery is answered only after the app's handlers finished (they store it in
 * the inbox), with the answers Probot's middleware gave: 200 "ok", an unknown event too;
 * a handler's error its status (default 500) and `{ error }`; unparsable JSON 400.
 */
export function createWebhookReceiver(options: WebhookReceiverOptions) {
  const { webhooks, log } = options;
  const maxBytes = options.maxBytes ?? MAX_WEBHOOK_BYTES;

  return async function receiveWebhook(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== "POST") {
      return answer(response, 404, JSON.stringify({ error: `Unknown route: ${request.method} ${new URL(request.url ?? "/", "http://localhost").pathname}` }), {
        "content-type": "application/json",
      });
    }
    const contentType = request.headers["content-type"];
    if (typeof contentType !== "string" || !isApplicationJson.test(contentType)) {
      return refuseUnread(request, response, 415, `Unsupported "Content-Type" header value. Must be "application/json"`);
    }
    const event = headerOf(request, "x-github-event");
    const delivery = headerOf(request, "x-github-delivery");
    const signature = headerOf(request, "x-hub-signature-256");
    if (!event || !delivery) {
      const missing = [
        ["x-github-event", event],
        ["x-hub-signature-256", signature],
        ["x-github-delivery", delivery],
      ]
        .filter(([, value]) => !value)
        .map(([name]) => name);
      return refuseUnread(request, response, 400, `Required headers missing: ${missing.join(", ")}`);
    }
    const who = { delivery: forLog(delivery), event: forLog(event) };

    const declared = declaredLength(request);
    if (declared !== undefined && declared > maxBytes) {
      log.warn({ ...who, bytes: declared, limit: maxBytes }, "webhook refused: body larger than GitHub sends");
      return refuseUnread(request, response, 413, `Payload too large: webhook bodies are at most ${maxBytes} bytes`);
    }
    if (!signature) {
      log.warn({ ...who, bytes: declared ?? null }, "webhook refused: no x-hub-signature-256 signature");
      return refuseUnread(request, response, 401, "Required headers missing: x-hub-signature-256");
    }

    const read = await readCappedBody(request, maxBytes);
    if (read.kind === "aborted") {
      log.debug({ ...who, bytes: read.bytes }, "webhook request aborted by the client");
      if (!response.headersSent) response.destroy();
      return;
    }
    if (read.kind === "too-large") {
      log.warn({ ...who, bytes: read.bytes, limit: maxBytes }, "webhook refused: body larger than GitHub sends");
      return refuseUnread(request, response, 413, `Payload too large: webhook bodies are at most ${maxBytes} bytes`);
    }

    const bytes = read.body.length;
    const text = decoder.decode(read.body);
    const verified = await webhooks.verify(text, signature).catch(() => false);
    if (!verified) {
      log.warn({ ...who, bytes }, "webhook refused: signature does not match (check WEBHOOK_SECRET against the App's webhook secret)");
      return answer(response, 401, JSON.stringify({ error: "Error: [@octokit/webhooks] signature does not match event payload and secret" }), JSON_HEADERS);
    }

    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch {
      log.warn({ ...who, bytes }, "webhook refused: signed body is not JSON");
      return answer(response, 400, JSON.stringify({ error: "SyntaxError: Invalid JSON" }), JSON_HEADERS);
    }

    log.debug({ ...who, bytes }, "webhook received");
    try {
      // Not probot.receive(): it logs the whole event at debug level.
      await webhooks.receive({ id: delivery, name: event, payload });
    } catch (error) {
      const errors: unknown[] = error instanceof AggregateError ? Array.from(error.errors) : [error];
      const first = (errors[0] ?? {}) as { name?: string; message?: string; status?: unknown };
      const message = first.message ? `${first.name ?? "Error"}: ${first.message}` : "Error: An Unspecified error occurred";
      const status = typeof first.status === "number" && first.status >= 100 && first.status <= 599 ? first.status : 500;
      log.error({ ...who, bytes, status, err: { message: errors.map((e) => (e as Error)?.message).join("\n") } }, "webhook handlers failed");
      return answer(response, status, JSON.stringify({ error: message }), JSON_HEADERS);
    }
    return answer(response, 200, "ok\n", { "content-type": "text/plain", accept: "application/json" });
  };
}

function answer(response: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders): void {
  if (response.headersSent) return void response.end();
  response.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
  response.end(body);
}

/**
 * Answers a request whose body was not (or not wholly) read, and closes the connection
 * after the answer (`Connection: close`): otherwise Node reads the rest of the body to
 * keep the connection alive, and the client keeps sending it.
 */
function refuseUnread(request: IncomingMessage, response: ServerResponse, status: number, error: string): void {
  const body = JSON.stringify({ error });
  if (response.headersSent) return void response.end();
  if (response.socket) lingerOnClose(request, response.socket);
  response.writeHead(status, { ...JSON_HEADERS, connection: "close", "content-length": Buffer.byteLength(body) });
  response.end(body);
}

/**
 * A delayed close for one connection. After a `Connection: close` answer Node calls
 * `socket.destroySoon()`, which closes the socket as soon as the answer is written; with
 * the client's body still arriving, the kernel then resets the connection, and a client
 * busy sending may lose the answer it was sent (it sees ECONNRESET, not 413). Instead:
 * half-close at once (the answer, then end of stream), stop reading (TCP backpressure
 * holds the sender; nothing more is read into the process), and destroy after LINGER_MS.
 */
function lingerOnClose(request: IncomingMessage, socket: Socket): void {
  socket.destroySoon = function delayedClose(this: Socket) {
    if (this.writable) this.end();
    // Node has just resumed an unread request to discard its body: read no more of it.
    request.pause();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once("close", () => clearTimeout(timer));
  };
}

function headerOf(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === "" ? undefined : text;
}

function declaredLength(request: IncomingMessage): number | undefined {
  const value = request.headers["content-length"];
  if (value === undefined) return undefined;
  const length = Number(value);
  return Number.isFinite(length) ? length : undefined;
}

/** Headers are a stranger's text: logged bounded. */
function forLog(value: string): string {
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}
