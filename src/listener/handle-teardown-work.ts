import { rm } from "node:fs/promises";
import type { Logger } from "pino";
import type { TeardownWork } from "../protocol/listener-protocol.js";
import type { ControlPlaneClient } from "./control-plane-client.js";
import type { DatabaseBackend } from "./database/database-backend.js";
import { describeDatabaseError, publicDatabaseError } from "./database/describe-database-error.js";
import { startWorkProgress } from "./work-progress.js";
import type { InstanceSupervisor } from "./instances/create-instance-supervisor.js";
import { deploymentCacheDir } from "./sandbox/sandbox.js";

/** A torn-down deployment: its instances are stopped and its database is dropped (idempotent), then the control plane is told. */
export async function handleTeardownWork(
  work: TeardownWork,
  context: {
    client: ControlPlaneClient;
    database: DatabaseBackend;
    instances: InstanceSupervisor;
    adminDatabaseUrl?: string;
    /** The deployment's kept `HOME` (package caches) is removed from here. */
    dataDir: string;
    heartbeatIntervalMs: number;
    log: Logger;
  },
): Promise<void> {
  const log = context.log.child({ environment: work.deployment.environment, teardown: work.leaseId });
  const progress = startWorkProgress({
    client: context.client,
    leaseId: work.leaseId,
    intervalMs: context.heartbeatIntervalMs,
    log,
    onCancel: () => undefined,
    onLeaseLost: () => log.warn("teardown lease lost"),
  });
  const identity = {
    installationId: work.deployment.installationId,
    repository: work.deployment.repository,
    environment: work.deployment.environment,
  };
  try {
    // First the instances (the URL answers 404 after), then the database they were using.
    await context.instances.stop(work.deployment.id);
    await context.database.drop(identity);
    log.info("database dropped");
    await rm(deploymentCacheDir(context.dataDir, work.deployment.id), { recursive: true, force: true });
    await progress.complete({ outcome: "DELETED" });
  } catch (error) {
    // The whole account (server, port, admin user) only to this log; the control plane keeps
    // the public words, as for a failed setup.
    log.warn({ err: { message: describeDatabaseError(error, context.adminDatabaseUrl) } }, "dropping the database failed");
    const message = publicDatabaseError(error, { adminUrl: context.adminDatabaseUrl, action: "teardown" });
    await progress.complete({ outcome: "TEARDOWN_FAILED", error: message, infrastructureFault: true });
  }
}
