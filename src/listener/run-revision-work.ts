import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { RevisionWork, WorkOutcome } from "../protocol/listener-protocol.js";
import type { ControlPlaneClient } from "./control-plane-client.js";
import type { DatabaseBackend } from "./database/database-backend.js";
import { secretsOf } from "./database/database-backend.js";
import type { BuildJobData, BuildJobMessage, BuildJobResult, ProvisionJobData, ProvisionJobResult } from "./job-messages.js";
import type { JobRun, JobRunner } from "./job-runner.js";
import { startWorkProgress } from "./work-progress.js";

export interface RevisionWorkContext {
  client: ControlPlaneClient;
  jobs: JobRunner;
  database: DatabaseBackend;
  /** What the provisioning job needs to build its own backend in its worker. */
  provisioning: Omit<ProvisionJobData, "identity">;
  workRoot: string;
  runsDir: string;
  heartbeatIntervalMs: number;
  /** Aborted when the listener stops and its grace period is over: the work is handed back. */
  stopping?: AbortSignal;
  log: Logger;
}

/**
 * One leased revision, phase by phase: database setup on a deployment's first revision
 * (a job of its own), then the build (a job of its own). Progress and log go to the
 * control plane as heartbeats; the outcome as the lease's completion.
 */
export async function runRevisionWork(work: RevisionWork, context: RevisionWorkContext): Promise<WorkOutcome | "lease-lost"> {
  const log = context.log.child({ revision: work.revision.id, attempt: work.attempt });
  const runId = `${work.revision.id}-${work.attempt}`;
  let current: JobRun<unknown> | undefined;
  let cancelled = false;
  let leaseLost = false;
  let released = false;
  const release = () => {
    released = true;
    current?.cancel();
  };
  if (context.stopping?.aborted) released = true;
  context.stopping?.addEventListener("abort", release, { once: true });
  const progress = startWorkProgress({
    client: context.client,
    leaseId: work.leaseId,
    intervalMs: context.heartbeatIntervalMs,
    log,
    onCancel() {
      if (cancelled) return;
      cancelled = true;
      log.info("cancel requested");
      current?.cancel();
    },
    onLeaseLost() {
      leaseLost = true;
      log.warn("lease lost: stopping this work");
      current?.cancel();
    },
  });
  const now = () => new Date().toISOString();
  const identity = {
    installationId: work.deployment.installationId,
    repository: work.deployment.repository,
    environment: work.deployment.environment,
  };
  const finish = async (outcome: WorkOutcome, error?: string, infrastructureFault?: boolean) => {
    context.stopping?.removeEventListener("abort", release);
    if (leaseLost) return "lease-lost" as const;
    if (released && outcome !== "DEPLOYED") {
      await progress.complete({ outcome: "RELEASED", error: "The listener stopped; the work goes back to the queue" });
      log.info("work handed back");
      return "RELEASED" as const;
    }
    await progress.complete({ outcome, error, infrastructureFault });
    log.info({ outcome }, "work finished");
    return outcome;
  };

  let provisionedUrl: string;
  if (work.database.action === "provision") {
    progress.event({ type: "phase_started", phase: "database", at: now() });
    const data: ProvisionJobData = { identity, ...context.provisioning };
    const run = await context.jobs.run<ProvisionJobResult>({ job: "provision-database", runId, workerData: data });
    current = run;
    const result = await run.result.catch((error: Error): ProvisionJobResult => ({
      ok: false,
      error: error.message,
      infrastructureFault: true,
    }));
    current = undefined;
    if (!result.ok) {
      progress.event({ type: "phase_finished", phase: "database", at: now(), outcome: "failed" });
      return finish("DATABASE_FAILED", result.error, result.infrastructureFault);
    }
    progress.event({
      type: "phase_finished",
      phase: "database",
      at: now(),
      outcome: "succeeded",
      note: result.database.created ? "database created" : "database adopted",
      database: result.database,
    });
    provisionedUrl = result.database.url;
  } else {
    provisionedUrl = work.database.url;
  }
  if (cancelled || released) return finish("CANCELLED", "Cancelled");

  let databaseUrl: string;
  try {
    databaseUrl = await context.database.connect(identity, provisionedUrl);
  } catch (error) {
    return finish("DATABASE_FAILED", `The database is not reachable: ${(error as Error).message}`, true);
  }

  progress.event({ type: "phase_started", phase: "build", at: now() });
  const workDir = path.join(context.workRoot, work.deployment.id, work.revision.id);
  await mkdir(workDir, { recursive: true });
  const data: BuildJobData = {
    revisionId: work.revision.id,
    repository: work.deployment.repository,
    environment: work.deployment.environment,
    sha: work.revision.sha,
    ref: work.revision.ref,
    tarballUrl: work.source.tarballUrl,
    token: work.source.token,
    databaseUrl,
    commands: work.build.commands,
    timeoutSeconds: work.build.timeoutSeconds,
    env: work.build.env,
    workDir,
    logFile: path.join(workDir, "build.log"),
    runsDir: context.runsDir,
    secrets: [work.source.token, ...secretsOf(databaseUrl), ...secretsOf(provisionedUrl)],
  };
  const run = await context.jobs.run<BuildJobResult>({
    job: "build-revision",
    runId,
    workerData: data,
    onMessage(message) {
      const m = message as BuildJobMessage;
      if (m.type === "log") progress.log(m.text, m.offset);
    },
  });
  current = run;
  if (cancelled || leaseLost || released) run.cancel();
  const result = await run.result.catch((error: Error): BuildJobResult => ({
    outcome: "failed",
    error: `The build job failed: ${error.message}`,
    infrastructureFault: true,
  }));
  current = undefined;
  const outcome = result.outcome === "succeeded" ? "succeeded" : result.outcome === "cancelled" ? "cancelled" : "failed";
  progress.event({ type: "phase_finished", phase: "build", at: now(), outcome });
  await keepOnlyLatestBuild(path.dirname(workDir), result.outcome === "succeeded" ? work.revision.id : undefined, workDir);

  if (result.outcome === "succeeded") return finish("DEPLOYED");
  if (result.outcome === "cancelled") return finish("CANCELLED", result.error ?? "Cancelled");
  return finish("BUILD_FAILED", result.error, result.infrastructureFault);
}

/** A deployment's folder keeps the newest successful build (a later issue runs it); failed ones go. */
async function keepOnlyLatestBuild(deploymentDir: string, keep: string | undefined, current: string) {
  if (!keep) {
    await rm(current, { recursive: true, force: true });
    return;
  }
  for (const name of await readdir(deploymentDir).catch(() => [] as string[])) {
    if (name !== keep) await rm(path.join(deploymentDir, name), { recursive: true, force: true });
  }
}
