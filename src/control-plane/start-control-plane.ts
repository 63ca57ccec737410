import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { ProbotOctokit } from "probot";
import { redeliverMissedWebhooks } from "./github/redeliver-missed-webhooks.js";
import type { StateStore } from "../store/open-state-store.js";
import type { GitHubReporter } from "./github/github-reporter.js";
import { createControlPlaneServices, type ControlPlaneOptions } from "./create-control-plane-services.js";
import { listen } from "../listen-or-explain.js";
import { HttpError, sendJson, sendText } from "./http/http-helpers.js";
import { reachableUrl } from "./http/reachable-url.js";
import { readSignInSettings } from "./http/auth/sign-in-settings.js";
import { createListenerApi } from "./http/listener-api.js";
import { createAdminApi } from "./admin/admin-api.js";
import { createRollbackApi } from "./admin/rollback-api.js";
import { resolveAdminToken } from "./admin/admin-token.js";
import { createPlacementWatch } from "./placement-watch.js";
import { createPreviewExpiry } from "./preview-expiry.js";
import { createRepoConfigCache } from "./repo-config.js";
import { createSecretsApi } from "./secrets/secrets-api.js";
import { createSecretsPages } from "./secrets/secrets-pages.js";
import type { ListenerPresence } from "./listener-presence.js";
import { createStatusPages } from "./http/status-pages/create-status-pages.js";
import type { Inbox } from "./inbox.js";
import type { WorkQueue } from "./work-queue.js";
import { createWebhookReceiver } from "./webhooks/receive-webhook.js";
import { createMetrics } from "./metrics/create-metrics.js";
import { createMetricsRoute } from "./metrics/metrics-route.js";

export const WEBHOOK_PATH = "/api/github/webhooks";
/** Ids of embedded listeners start with this: at start-up, their leases belonged to a process that is gone. */
export const EMBEDDED_LISTENER_PREFIX = "embedded-";

export interface ControlPlane {
  /** Where a process on this machine reaches the server, e.g. http://127.0.0.1:3000 (see reachableUrl). */
  url: string;
  server: Server;
  store: StateStore;
  queue: WorkQueue;
  reporter: GitHubReporter;
  inbox: Inbox;
  /** What each listener runs builds in and its pool (the embedded one is told at its start). */
  presence: ListenerPresence;
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
  const { store, logs, reporter, lifecycle, queue, inbox, presence, registry, secretStore, appFn } = await createControlPlaneServices(options);
  // The app's handlers are Probot's; the HTTP side of webhooks is ours: capped, verified,
  // then handed to probot.webhooks (see receive-webhook.ts).
  await probot.load(appFn, {
    cwd: process.cwd(),
    addHandler: () => {
      throw new Error("Slipway's app serves no HTTP routes of its own");
    },
  });
  const metrics = createMetrics({ store, presence, registry });
  const metricsRoute = createMetricsRoute({ metrics, token: settings.metricsToken });
  const receiveWebhook = createWebhookReceiver({ webhooks: metrics.countWebhooks(probot.webhooks), log: log.child({ component: "webhooks" }) });
  const listenerApi = createListenerApi({ queue, presence, registry, joinToken: settings.listenerToken, log: log.child({ component: "listener-api" }) });
  const adminToken = await resolveAdminToken({ configured: settings.adminToken, dataDir: settings.dataDir, log });
  const adminApi = createAdminApi({
    adminToken,
    store,
    lifecycle,
    registry,
    presence,
    log: log.child({ component: "admin-api" }),
  });
  const rollbackApi = createRollbackApi({ adminToken, store, lifecycle, keepBuilds: settings.keepBuilds, log: log.child({ component: "admin-api" }) });
  const placement = createPlacementWatch({
    store,
    lifecycle,
    presence,
    registry,
    log: log.child({ component: "placement" }),
    absentAfterMs: presence.presentMs,
    moveAfterMs: settings.listenerMoveAfterSeconds && settings.listenerMoveAfterSeconds * 1000,
  });
  const statusPages = await createStatusPages({
    store,
    logs,
    publicUrl: settings.publicUrl,
    log: log.child({ component: "status-pages" }),
    signIn: readSignInSettings(process.env),
    linkSecrets: true,
    // What GitHub says now, not what the last webhook said: a repository made private stops being shown at once.
    async isPublicRepository(deployment) {
      try {
        const octokit = await probot.auth(deployment.installationId);
        const { data } = await octokit.rest.repos.get({ owner: deployment.repository.owner, repo: deployment.repository.name });
        return data.private === false;
      } catch (error) {
        // Uninstalled, or the repository is gone: nothing of it is public through Slipway any more.
        if ((error as { status?: number }).status === 404) return false;
        throw error;
      }
    },
    async cancel(revisionId, actorLogin) {
      await lifecycle.cancel(revisionId, `Cancelled by @${actorLogin}`);
    },
    redeploy: (revisionId, actorLogin) => recordAction("redeploy", revisionId, actorLogin),
    restart: (revisionId, actorLogin) => recordAction("restart", revisionId, actorLogin),
  });

  /** Recorded like the check run's buttons, so the inbox checks the permission again with the App's token. */
  async function recordAction(action: "redeploy" | "restart", revisionId: string, actorLogin: string) {
    const revision = await store.findRevision(revisionId);
    const deployment = revision && store.state.deployments[revision.deploymentId];
    if (!deployment) throw new HttpError(404, "there is no revision with this id");
    await inbox.record({
      id: randomUUID(),
      event: "status_page",
      intent: { kind: "check_run", action, installationId: deployment.installationId, repository: deployment.repository, revisionId, actor: actorLogin },
    });
  }

  const secretsLog = log.child({ component: "secrets" });
  const secretsApi = createSecretsApi({ secrets: secretStore, store, adminToken, access: statusPages.context.access, publicUrl: settings.publicUrl, log: secretsLog });
  const secretsPages = createSecretsPages({ ...statusPages.context, secrets: secretStore, log: secretsLog });

  async function route(request: IncomingMessage, response: ServerResponse) {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    if (pathname === WEBHOOK_PATH) {
      if (!ready) return sendJson(response, 503, { error: "starting" });
      return receiveWebhook(request, response);
    }
    if (pathname === "/healthz") {
      return sendJson(response, ready ? 200 : 503, { status: ready ? "ok" : "starting" });
    }
    if (await metricsRoute(request, response, pathname)) return;
    if (await listenerApi(request, response, pathname)) return;
    if (await adminApi(request, response, pathname)) return;
    if (await rollbackApi(request, response, pathname)) return;
    if (await secretsApi(request, response, pathname)) return;
    if (await secretsPages(request, response, pathname)) return;
    if (await statusPages(request, response, pathname)) return;
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
  // The embedded listener calls this URL: the address bound (HOST), loopback for a wildcard.
  const url = reachableUrl(await listen(server, settings.port, settings.host ?? "0.0.0.0", "PORT"));

  // Finish what a previous run left: work of its embedded listener (gone with it), owed
  // GitHub updates, unprocessed deliveries, and webhooks GitHub failed to deliver meanwhile.
  await queue.expireLeasesOf((listenerId) => listenerId.startsWith(EMBEDDED_LISTENER_PREFIX));
  reporter.reconcile();
  inbox.resume();
  const leaseTimer = setInterval(() => {
    queue
      .expireLeases()
      .then(() => placement.check())
      .catch((error) => log.error({ err: error }, "lease expiry failed"));
  }, options.leaseCheckIntervalMs ?? 5_000);
  const redeliver = () =>
    probot
      .auth()
      .then((appOctokit) => redeliverMissedWebhooks({ appOctokit: appOctokit as ProbotOctokit, store, log }))
      .catch((error: unknown) => log.warn({ err: { message: (error as Error).message } }, "could not check for missed webhooks"));
  void redeliver();
  const redeliverTimer = setInterval(redeliver, options.redeliverIntervalMs ?? 10 * 60_000);
  redeliverTimer.unref();
  const previewExpiry = createPreviewExpiry({
    store,
    lifecycle,
    configs: createRepoConfigCache(),
    getOctokit: (installationId) => probot.auth(installationId) as Promise<ProbotOctokit>,
    log: log.child({ component: "preview-expiry" }),
  });
  const expirePreviews = () => void previewExpiry.check().catch((error: unknown) => log.error({ err: error }, "preview expiry failed"));
  expirePreviews();
  const expiryTimer = setInterval(expirePreviews, options.previewExpiryIntervalMs ?? 60 * 60_000);
  expiryTimer.unref();
  ready = true;
  log.info({ url, dataDir: settings.dataDir }, "control plane ready");

  return {
    url,
    server,
    store,
    queue,
    reporter,
    inbox,
    presence,
    async close(graceMs = 5_000) {
      ready = false;
      clearInterval(leaseTimer);
      clearInterval(redeliverTimer);
      clearInterval(expiryTimer);
      queue.wake();
      await Promise.race([
        Promise.all([inbox.idle(), reporter.idle()]),
        new Promise((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
      reporter.close();
      metrics.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
