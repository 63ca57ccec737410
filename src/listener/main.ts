/**
 * `npm run listener`: a standalone data-plane listener on another machine. It needs
 * SLIPWAY_CONTROL_PLANE_URL and SLIPWAY_LISTENER_TOKEN, and only ever calls out.
 */
import { existsSync } from "node:fs";
import pino from "pino";
import { acquireDataDirLock } from "../data-dir-lock.js";
import { readSettings } from "../settings.js";
import { onShutdownSignals } from "../shutdown.js";
import { createControlPlaneClient } from "./control-plane-client.js";
import { openDatabaseBackend } from "./database/database-backend.js";
import { startListener } from "./start-listener.js";

if (existsSync(".env")) process.loadEnvFile(".env");
const log = pino({ level: process.env.LOG_LEVEL ?? "info", name: "slipway-listener" });

try {
  const settings = readSettings(process.env);
  if (!settings.controlPlaneUrl || settings.listenerTokenGenerated) {
    throw new Error("a standalone listener needs SLIPWAY_CONTROL_PLANE_URL and SLIPWAY_LISTENER_TOKEN");
  }
  // Before anything opens the data dir: a second Slipway on it refuses to start.
  const lock = await acquireDataDirLock(settings.dataDir);
  // Unset SLIPWAY_DATABASE_URL: starts the listener's embedded PostgreSQL server (stopped by close()).
  const database = await openDatabaseBackend({ adminUrl: settings.databaseUrl, dataDir: settings.dataDir, log });
  const listener = await startListener({
    client: createControlPlaneClient({ url: settings.controlPlaneUrl, token: settings.listenerToken, dataDir: settings.dataDir, log }),
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
    log,
  });
  onShutdownSignals({
    log,
    // The grace period, then time to stop processes and flush what is owed.
    timeoutMs: settings.shutdownGraceSeconds * 1000 + 30_000,
    async stop() {
      await listener.stop(settings.shutdownGraceSeconds * 1000);
      await database.close();
      await lock.release();
    },
  });
} catch (error) {
  log.fatal((error as Error).message);
  process.exit(1);
}
