/**
 * The webhook receiver against Probot's own middleware: what GitHub's deliveries were
 * answered before (success, unknown event, handler errors, malformed requests) is answered
 * the same; a forged or missing signature is now 401 and an oversized body 413, before
 * anything is buffered whole, parsed, logged or handed to the app.
 */
import { createHmac, randomUUID } from "node:crypto";
import { createServer, request as httpRequest, type RequestListener, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { createNodeMiddleware, Probot, type ApplicationFunction } from "probot";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createWebhookReceiver } from "../../../src/control-plane/webhooks/receive-webhook.js";
import { generateAppKey } from "../../support/app-credentials.js";
import { silentLog } from "../../support/fixtures.js";

const SECRET = "unit-webhook-secret";
const PATH = "/api/github/webhooks";
const MB = 1024 * 1024;
const { privateKey } = generateAppKey();

/** Deliveries the app's handler finished, in order. */
let handled: string[] = [];
const appFn: ApplicationFunction = (app) => {
  app.on("push", async (context) => {
    const ref = context.payload.ref;
    await new Promise((resolve) => setTimeout(resolve, 50)); // a handler that takes a while: behaviour under test, not a wait
    if (ref === "refs/heads/fail") throw new Error("handler failed");
    if (ref === "refs/heads/missing") throw Object.assign(new Error("Not Found"), { status: 404 });
    handled.push(context.id);
  });
};

let logLines: Array<Record<string, unknown>> = [];
const captureLog = pino(
  { level: "debug" },
  new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      callback();
    },
  }),
);

async function listen(handler: RequestListener): Promise<{ server: Server; url: string; sockets: Socket[] }> {
  const server = createServer(handler);
  const sockets: Socket[] = [];
  server.on("connection", (socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`, sockets };
}

let probotServer: Awaited<ReturnType<typeof listen>>;
let ours: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  const before = new Probot({ appId: 1, privateKey, secret: SECRET, log: silentLog });
  const middleware = await createNodeMiddleware(appFn, { probot: before, webhooksPath: PATH });
  probotServer = await listen((request, response) => {
    void middleware(request, response, () => response.writeHead(404).end());
  });

  const probot = new Probot({ appId: 1, privateKey, secret: SECRET, log: silentLog });
  await probot.load(appFn);
  const receive = createWebhookReceiver({ webhooks: probot.webhooks, log: captureLog, maxBytes: 1 * MB });
  ours = await listen((request, response) => {
    void receive(request, response);
  });
});

afterAll(async () => {
  for (const { server } of [probotServer, ours]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

beforeEach(() => {
  handled = [];
  logLines = [];
});

const sign = (body: string, secret = SECRET) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

async function post(url: string, options: { body?: string; headers?: Record<string, string>; method?: string; omit?: string[] }) {
  const body = options.body ?? "";
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-github-event": "push",
    "x-github-delivery": randomUUID(),
    "x-hub-signature-256": sign(body),
    ...options.headers,
  };
  for (const name of options.omit ?? []) delete headers[name];
  const response = await fetch(url, { method: options.method ?? "POST", headers, body: options.method === "GET" ? undefined : body });
  return { status: response.status, body: await response.text(), type: response.headers.get("content-type") };
}

describe("answers as Probot's middleware did", () => {
  const push = (ref: string) => JSON.stringify({ ref, after: "a".repeat(40), commits: [] });
  const cases: Array<[string, Parameters<typeof post>[1]]> = [
    ["a signed push", { body: push("refs/heads/main") }],
    ["an event no handler listens to", { body: push("refs/heads/main"), headers: { "x-github-event": "made_up_event" } }],
    ["a handler's error", { body: push("refs/heads/fail") }],
    ["a handler's error with a status", { body: push("refs/heads/missing") }],
    ["a signed body that is not JSON", { body: "{not json" }],
    ["a wrong content type", { body: push("refs/heads/main"), headers: { "content-type": "text/plain" } }],
    ["a missing delivery id", { body: push("refs/heads/main"), omit: ["x-github-delivery"] }],
    ["a missing event name", { body: push("refs/heads/main"), omit: ["x-github-event", "x-hub-signature-256"] }],
    ["a GET", { method: "GET" }],
  ];
  for (const [name, request] of cases) {
    it(name, async () => {
      const delivery = randomUUID();
      const withDelivery = { ...request, headers: { "x-github-delivery": delivery, ...request.headers } };
      const before = await post(probotServer.url, withDelivery);
      const after = await post(ours.url, withDelivery);
      expect(after).toEqual(before);
    });
  }

  it("a success is answered after the handlers finished", async () => {
    const delivery = randomUUID();
    const response = await post(ours.url, { body: push("refs/heads/main"), headers: { "x-github-delivery": delivery } });
    expect(response).toEqual({ status: 200, body: "ok\n", type: "text/plain" });
    expect(handled).toEqual([delivery]);
  });
});

describe("what Probot's middleware did not refuse early", () => {
  it("a forged signature gets 401; the log has delivery id, event and size, never body or signature", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main", canary: "forged-canary" });
    const signature = sign(body, "not-the-secret");
    const delivery = randomUUID();
    const response = await post(ours.url, { body, headers: { "x-github-delivery": delivery, "x-hub-signature-256": signature } });
    expect(response.status).toBe(401);
    expect(response.type).toBe("application/json");
    expect(JSON.parse(response.body)).toEqual({ error: expect.stringContaining("signature does not match") });
    expect(handled).toEqual([]);
    expect(logLines).toHaveLength(1);
    expect(logLines[0]).toMatchObject({ level: 40, delivery, event: "push", bytes: Buffer.byteLength(body) });
    expect(JSON.stringify(logLines)).not.toContain("forged-canary");
    expect(JSON.stringify(logLines)).not.toContain(signature.slice(7));
  });

  it("a missing signature gets 401 and the body is not read", async () => {
    const delivery = randomUUID();
    const response = await post(ours.url, { body: JSON.stringify({ canary: "unsigned-canary" }), omit: ["x-hub-signature-256"], headers: { "x-github-delivery": delivery } });
    expect(response.status).toBe(401);
    expect(handled).toEqual([]);
    expect(logLines).toEqual([expect.objectContaining({ level: 40, delivery, event: "push" })]);
    expect(JSON.stringify(logLines)).not.toContain("unsigned-canary");
  });

  it("a correctly signed body that is larger than the cap is refused too (413)", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main", padding: "x".repeat(1 * MB) });
    const response = await post(ours.url, { body });
    expect(response.status).toBe(413);
    expect(handled).toEqual([]);
  });

  /** Sends `size` bytes (Content-Length or chunked); resolves with the status and what the server's socket read. */
  function postLarge(size: number, chunked: boolean): Promise<{ status: number; bytesRead: number }> {
    const url = new URL(ours.url);
    const firstSocket = ours.sockets.length;
    return new Promise((resolve, reject) => {
      let answered = false;
      const headers: Record<string, string> = { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": randomUUID(), "x-hub-signature-256": sign("x") };
      if (!chunked) headers["content-length"] = String(size);
      const request = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers, agent: false }, (response) => {
        answered = true;
        response.resume();
        response.on("end", () => {
          request.destroy();
          // Whatever is read of the connection from here on (nothing, if it holds) counts too:
          // time is what this checks, so it is a fixed wait.
          setTimeout(() => resolve({ status: response.statusCode ?? 0, bytesRead: ours.sockets[firstSocket]?.bytesRead ?? -1 }), 200);
        });
      });
      request.on("error", (error) => answered || reject(error));
      const chunk = Buffer.alloc(256 * 1024, "z");
      let sent = 0;
      const more = () => {
        while (sent < size && !answered && !request.destroyed) {
          sent += chunk.length;
          if (!request.write(chunk)) return void request.once("drain", more);
        }
        if (sent >= size && !request.destroyed) request.end();
      };
      more();
    });
  }

  it("a 60 MB body with a Content-Length is refused (413) at once: the server reads next to none of it", async () => {
    const result = await postLarge(60 * MB, false);
    expect(result.status).toBe(413);
    expect(result.bytesRead).toBeGreaterThan(0);
    expect(result.bytesRead).toBeLessThan(512 * 1024);
    expect(logLines).toEqual([expect.objectContaining({ level: 40, bytes: 60 * MB, limit: 1 * MB })]);
  });

  it("a 60 MB chunked body is refused (413) once it passes the cap: the server reads little more than the cap", async () => {
    const result = await postLarge(60 * MB, true);
    expect(result.status).toBe(413);
    expect(result.bytesRead).toBeGreaterThan(1 * MB);
    expect(result.bytesRead).toBeLessThan(1.5 * MB);
    expect(handled).toEqual([]);
  });
});
