import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createNodeMiddleware } from "probot";
import type { StateStore } from "../store/open-state-store.js";
import type { GitHubReporter } from "./github/github-reporter.js";
import { createControlPlaneServices, type ControlPlaneOptions } from "./create-control-plane-services.js";
import { HttpError, sendJson, sendText } from "./http/http-helpers.js";
import { createListenerApi } from "./http/listener-api.js";
import { createStatusPages } from "./http/status-pages.js";
import type { Inbox } from "./inbox.js";
import type { WorkQueue } from "./work-queue.js";

export const WEBHOOK_PATH = "/api/github/webhooks";

export interface ControlPlane {
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000. */
  url: string;
  server: Server;
  store: StateStore;
  queue: WorkQueue;
  reporter: GitHubReporter;
  inbox: Inbox;
  /** Stops taking requests and timers, and lets the last GitHub writes finish (bounded). */
  close(graceMs?: number): Promise<void>;
}

/**
 * The control plane: Probot's webhooks, the state store (its only writer), GitHub
 * reporting, the listener protocol and the status pages, on one HTTP port.
 */
export type { ControlPlaneOptions };

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { settings, probot, log } = options;
  let ready = false;
  const { store, logs, reporter, queue, inbox, appFn } = await createControlPlaneServices(options);
  const webhooks = await createNodeMiddleware(appFn, { probot, webhooksPath: WEBHOOK_PATH });
  const listenerApi = createListenerApi({ queue, token: settings.listenerToken, log: log.child({ component: "listener-api" }) });
  const statusPages = createStatusPages({ store, logs, publicUrl: settings.publicUrl });

  async function route(request: IncomingMessage, response: ServerResponse) {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    if (pathname === WEBHOOK_PATH) {
      if (!ready) return sendJson(response, 503, { error: "starting" });
      if (await webhooks(request, response)) return;
    }
    if (pathname === "/healthz") {
      return sendJson(response, ready ? 200 : 503, { status: ready ? "ok" : "starting" });
    }
    if (await listenerApi(request, response, pathname)) return;
    if ((request.method === "GET" || request.method === "HEAD") && (await statusPages(request, response, pathname))) return;
    sendText(response, 404, "Not found\n");
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (status >= 500) log.error({ err: error, path: request.url }, "request failed");
      if (!response.headersSent) sendJson(response, status, { error: status >= 500 ? "internal error" : (error as Error).message });
      else response.end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(settings.port, settings.host ?? "0.0.0.0", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${address.port}`;

  // Finish what a previous run left: owed GitHub updates, unprocessed deliveries, expired leases.
  reporter.reconcile();
  inbox.resume();
  const leaseTimer = setInterval(() => {
    queue.expireLeases().catch((error) => log.error({ err: error }, "lease expiry failed"));
  }, options.leaseCheckIntervalMs ?? 5_000);
  ready = true;
  log.info({ url, dataDir: settings.dataDir }, "control plane ready");

  return {
    url,
    server,
    store,
    queue,
    reporter,
    inbox,
    async close(graceMs = 5_000) {
      ready = false;
      clearInterval(leaseTimer);
      queue.wake();
      await Promise.race([
        Promise.all([inbox.idle(), reporter.idle()]),
        new Promise((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
      reporter.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
