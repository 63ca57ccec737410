/**
 * `npm start`: the control plane and, by default, an embedded listener, in one process.
 * The process owns its signals (not Probot's `run()`), because it also owns Bree workers
 * and build processes that must be stopped in order.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import pino, { type Logger } from "pino";
import { createProbot } from "probot";
import { EMBEDDED_LISTENER_PREFIX, startControlPlane } from "./control-plane/start-control-plane.js";
import { SlipwayOctokit } from "./control-plane/github/slipway-octokit.js";
import { missingCredentials, startSetupMode } from "./control-plane/setup/start-setup-mode.js";
import { githubApiUrl, githubWebUrl } from "./github-api-url.js";
import { createControlPlaneClient } from "./listener/control-plane-client.js";
import { openDatabaseBackend } from "./listener/database/database-backend.js";
import { startListener } from "./listener/start-listener.js";
import { acquireDataDirLock } from "./data-dir-lock.js";
import { readSettings } from "./settings.js";
import { onShutdownSignals } from "./shutdown.js";
import { StartupError } from "./startup-error.js";

const envFile = path.resolve(".env");
if (existsSync(envFile)) process.loadEnvFile(envFile);
process.env.LOG_LEVEL ??= "info";

const log: Logger = pino({ level: process.env.LOG_LEVEL, name: "slipway" });

async function main() {
  const settings = readSettings(process.env);
  const missing = missingCredentials(process.env);
  if (missing.length > 0) {
    const setup = await startSetupMode({
      port: settings.port,
      host: settings.host,
      publicUrl: settings.publicUrl,
      envFile,
      appYmlPath: path.resolve("app.yml"),
      githubUrl: githubWebUrl(process.env),
      apiUrl: githubApiUrl(process.env),
      org: process.env.GH_ORG,
      log,
      missing,
    });
    onShutdownSignals({ log, stop: () => setup.close() });
    return;
  }

  // Before anything opens the data dir: a second Slipway on it refuses to start.
  const lock = await acquireDataDirLock(settings.dataDir);
  const probot = createProbot({ overrides: { Octokit: SlipwayOctokit, log } });
  const controlPlane = await startControlPlane({ settings, probot, log, appId: Number(process.env.APP_ID), apiBaseUrl: githubApiUrl(process.env) });
  let stopListener = async () => {};
  if (settings.listener === "embedded") {
    // Unset SLIPWAY_DATABASE_URL: starts the listener's embedded PostgreSQL server (stopped by close()).
    const database = await openDatabaseBackend({ adminUrl: settings.databaseUrl, dataDir: settings.dataDir, log });
    const listener = await startListener({
      client: createControlPlaneClient({ url: controlPlane.url, token: settings.listenerToken, dataDir: settings.dataDir, log }),
      database,
      adminDatabaseUrl: database.adminUrl,
      dataDir: settings.dataDir,
      maxConcurrentBuilds: settings.maxConcurrentBuilds,
      keepBuilds: settings.keepBuilds,
      routerPort: settings.routerPort,
      routerHost: settings.routerHost,
      routerDomain: settings.routerDomain,
      sandbox: settings.sandbox,
      pool: settings.listenerPool,
      listenerIdPrefix: EMBEDDED_LISTENER_PREFIX,
      log,
    });
    // Known before its first lease request, so a fork's /deploy replayed at start-up is judged right.
    controlPlane.presence.seen(listener.id, listener.sandbox, settings.listenerPool);
    stopListener = async () => {
      await listener.stop(settings.shutdownGraceSeconds * 1000);
      await database.close();
    };
  } else {
    log.info("SLIPWAY_LISTENER=off: waiting for standalone listeners (npm run listener)");
  }
  log.info({ url: settings.publicUrl, webhooks: `${settings.publicUrl}/api/github/webhooks` }, "Slipway is running");

  onShutdownSignals({
    log,
    // The grace period, then time to stop processes and flush what is owed.
    timeoutMs: settings.shutdownGraceSeconds * 1000 + 30_000,
    async stop() {
      await stopListener();
      await controlPlane.close();
      await lock.release();
    },
  });
}

main().catch((error: unknown) => {
  // A StartupError's message is the whole story (what to set): one line, no stack.
  if (error instanceof StartupError) log.fatal(error.message);
  else log.fatal({ err: error }, (error as Error).message);
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100).unref();
});
