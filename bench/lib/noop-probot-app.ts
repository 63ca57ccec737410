/**
 * The baseline of the acknowledgement benchmark: a Probot app that does nothing. Same
 * Probot version as Slipway, same `createNodeMiddleware` on the same webhook path, its own
 * node:http server with the same keep-alive timeout and a `/healthz`, and a "listening" log
 * line, so `startSlipway` (tools/start-slipway.ts) can start it exactly as it starts Slipway.
 */
import { createServer } from "node:http";
import { createNodeMiddleware, createProbot } from "probot";

const WEBHOOK_PATH = "/api/github/webhooks";

const probot = createProbot();
const webhooks = await createNodeMiddleware(
  (app) => {
    app.on("push", async () => {});
  },
  { probot, webhooksPath: WEBHOOK_PATH },
);

const server = createServer((request, response) => {
  const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
  void (async () => {
    if (pathname === WEBHOOK_PATH && (await webhooks(request, response))) return;
    if (pathname === "/healthz") {
      response.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      return;
    }
    response.writeHead(404).end("Not found\n");
  })().catch(() => {
    if (!response.headersSent) response.writeHead(500);
    response.end();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? "127.0.0.1", () => {
  // What `startSlipway` waits for (its READY_LINES), as Slipway's "Slipway is running".
  process.stdout.write(`${JSON.stringify({ level: 30, time: Date.now(), msg: "listening" })}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
