import { mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { RevisionWork, WorkOutcome } from "../protocol/listener-protocol.js";
import type { ControlPlaneClient } from "./control-plane-client.js";
import type { DatabaseBackend } from "./database/database-backend.js";
import { secretsOf } from "./database/database-backend.js";
import { describeDatabaseError, publicDatabaseError } from "./database/describe-database-error.js";
import type { BuildJobData, BuildJobMessage, BuildJobResult, ProvisionJobData, ProvisionJobResult } from "./job-messages.js";
import type { JobRunner } from "./job-runner.js";
import { startWorkProgress } from "./work-progress.js";
import { deployRevision } from "./deploy-revision.js";
import type { InstanceSupervisor } from "./instances/create-instance-supervisor.js";
import { deploymentHomeDir, type SandboxConfig } from "./sandbox/sandbox.js";
import { keepBuilds } from "./kept-builds.js";
import { DEFAULT_KEEP_BUILDS, keptBuildCount } from "../revisions/selectors.js";

/**
 * How long a database setup job has to answer a cancel (it cancels its statement and drops
 * what it made, in milliseconds) before its worker is terminated; a terminated setup leaves
 * what it had made for the next one to adopt.
 */
const PROVISION_CANCEL_GRACE_MS = 10_000;

export interface RevisionWorkContext {
  client: ControlPlaneClient;
  jobs: JobRunner;
  database: DatabaseBackend;
  /** Starts revisions that have a `run` section as instances, behind the router. */
  instances: InstanceSupervisor;
  routerDomain: string;
  /** What the provisioning job needs to build its own backend in its worker. */
  provisioning: Omit<ProvisionJobData, "identity">;
  workRoot: string;
  /** Where each deployment's `HOME` is kept (see deploymentHomeDir). */
  dataDir: string;
  /** What builds run in. */
  sandbox: SandboxConfig;
  /** Where each build's run marker is recorded while it runs (see kill-orphaned-builds). */
  buildMarkersDir: string;
  heartbeatIntervalMs: number;
  /** `SLIPWAY_KEEP_BUILDS`: deployed builds kept per non-preview environment, for rollbacks (default 5; previews keep 1). */
  keepBuilds?: number;
  /** Aborted when the listener stops and its grace period is over: the work is handed back. */
  stopping?: AbortSignal;
  log: Logger;
}

/**
 * One leased revision, phase by phase, on the listener's main thread: database setup on a
 * deployment's first revision (a job of its own), the build (a job of its own), then, with
 * a `run` section, the deploy (an instance, started by the instance supervisor; see
 * deployRevision). A restart with new settings or a rollback (`reuseBuildOf`) builds
 * nothing: a kept build is deployed again (without `run`, it becomes the deployed one).
 * Each deployed build joins the deployment's kept builds (see keepBuilds). Progress and log go to the control plane as
 * heartbeats; the outcome as the lease's completion.
 */
export async function handleRevisionWork(work: RevisionWork, context: RevisionWorkContext): Promise<WorkOutcome | "lease-lost"> {
  const log = context.log.child({ revision: work.revision.id, attempt: work.attempt });
  const jobId = `${work.revision.id}-${work.attempt}`;
  /** The phase in progress: a job, or the deploy. */
  let current: { cancel(): void } | undefined;
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
    if (cancelled || released || leaseLost) return finish("CANCELLED", "Cancelled");
    progress.event({ type: "phase_started", phase: "database", at: now() });
    const data: ProvisionJobData = { identity, ...context.provisioning };
    const job = await context.jobs.start<ProvisionJobResult>({
      job: "provision-database",
      jobId,
      workerData: data,
      cancelGraceMs: PROVISION_CANCEL_GRACE_MS,
    });
    current = job;
    if (cancelled || released || leaseLost) job.cancel();
    const result = await job.result.catch((error: Error): ProvisionJobResult & { detail?: string } => ({
      ok: false,
      error: publicDatabaseError(error, { adminUrl: context.provisioning.adminUrl }),
      infrastructureFault: true,
      detail: `the database setup job failed: ${describeDatabaseError(error, context.provisioning.adminUrl)}`,
    }));
    current = undefined;
    if (!result.ok && (cancelled || released || leaseLost)) {
      // The job dropped what it had made (or was stopped before making anything): nothing to record.
      log.info("database setup stopped");
      progress.event({ type: "phase_finished", phase: "database", at: now(), outcome: "cancelled" });
      return finish("CANCELLED", "Cancelled during database setup");
    }
    if (!result.ok) {
      // GitHub gets the job's public text (no host, port, user or version: check runs and
      // pull request comments are public on public repositories); the whole account goes
      // only to this log. Not to the revision's log either: a failed revision's log tail is
      // shown in its check run and pull request comment.
      const detail = (result as { detail?: unknown }).detail;
      log.warn({ err: { message: typeof detail === "string" ? detail : result.error } }, "database setup failed");
      progress.event({ type: "phase_finished", phase: "database", at: now(), outcome: "failed" });
      return finish("DATABASE_FAILED", result.error, result.infrastructureFault);
    }
    progress.event({
      type: "phase_finished",
      phase: "database",
      at: now(),
      outcome: "succeeded",
      note: result.database.created ? "database created" : "database adopted",
      // On this listener's own server: the control plane binds the deployment here.
      database: { ...result.database, onListener: context.database.kind === "embedded" },
    });
    provisionedUrl = result.database.url;
  } else {
    provisionedUrl = work.database.url;
  }
  if (cancelled || released || leaseLost) return finish("CANCELLED", "Cancelled");

  let databaseUrl: string;
  try {
    // A URL the provisioning job made a moment ago is current; a stored one may name an old port.
    databaseUrl = work.database.action === "provision" ? provisionedUrl : await context.database.connect(identity, provisionedUrl);
  } catch (error) {
    // The deployment's own URL names its server and masks its password in the log line.
    log.warn({ err: { message: `the database is not reachable: ${describeDatabaseError(error, provisionedUrl)}` } }, "database setup failed");
    return finish("DATABASE_FAILED", publicDatabaseError(error, { adminUrl: provisionedUrl }), true);
  }

  const secrets = [work.source.token, ...secretsOf(databaseUrl), ...secretsOf(provisionedUrl), ...Object.values(work.settings?.secrets ?? {})];
  const reuseBuildOf = work.reuseBuildOf;
  const rollback = work.reuseFor === "rollback";
  /** This build joins the kept ones; older ones beyond the count are removed (the previous revision is stopped by now). */
  const keep = (dir: string) =>
    keepBuilds({ deploymentDir: path.dirname(dir), build: path.basename(dir), count: keptBuildCount(work.deployment.environment, context.keepBuilds ?? DEFAULT_KEEP_BUILDS) });
  let workDir: string;
  let logEnd = 0;
  if (reuseBuildOf) {
    // A restart with new settings (the running revision's build) or a rollback (an earlier
    // kept build) starts again with today's variables and secrets; nothing is fetched or built.
    workDir = path.join(context.workRoot, work.deployment.id, reuseBuildOf);
    const line = `[slipway] ${rollback ? "rollback" : "restart with new settings"}: reusing the build of revision ${reuseBuildOf}\n`;
    progress.log(line, 0);
    logEnd = Buffer.byteLength(line);
    if (!(await isFolder(path.join(workDir, "source")))) {
      progress.event({ type: "phase_started", phase: "deploy", at: now() });
      progress.event({ type: "phase_finished", phase: "deploy", at: now(), outcome: "failed" });
      // Slipway's kept state, not the user's code: deployment status `error`, not `failure`.
      const which = rollback ? `revision ${reuseBuildOf.slice(0, 8)}` : "the running revision";
      return finish("DEPLOY_FAILED", `the build of ${which} is no longer kept on this listener; use Redeploy to build it again`, true);
    }
    progress.event({ type: "phase_started", phase: "build", at: now() });
    progress.event({ type: "phase_finished", phase: "build", at: now(), outcome: "succeeded", note: `reused the build of revision ${reuseBuildOf.slice(0, 8)}` });
  } else {
    progress.event({ type: "phase_started", phase: "build", at: now() });
    workDir = path.join(context.workRoot, work.deployment.id, work.revision.id);
    await mkdir(workDir, { recursive: true });
    const data: BuildJobData = {
      revisionId: work.revision.id,
      deploymentId: work.deployment.id,
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
      settings: work.settings,
      root: work.build.root,
      workDir,
      homeDir: deploymentHomeDir(context.dataDir, work.deployment.id),
      sandbox: context.sandbox,
      logFile: path.join(workDir, "build.log"),
      buildMarkersDir: context.buildMarkersDir,
      secrets,
    };
    const job = await context.jobs.start<BuildJobResult>({
      job: "build-revision",
      jobId,
      workerData: data,
      onMessage(message) {
        const m = message as BuildJobMessage;
        if (m.type !== "log") return;
        progress.log(m.text, m.offset);
        logEnd = m.offset + Buffer.byteLength(m.text);
      },
    });
    current = job;
    if (cancelled || leaseLost || released) job.cancel();
    const result = await job.result.catch((error: Error): BuildJobResult => ({
      outcome: "failed",
      error: `The build job failed: ${error.message}`,
      infrastructureFault: true,
    }));
    current = undefined;
    const outcome = result.outcome === "succeeded" ? "succeeded" : result.outcome === "cancelled" ? "cancelled" : "failed";
    progress.event({ type: "phase_finished", phase: "build", at: now(), outcome });
    if (result.outcome === "cancelled") {
      await removeBuild(workDir);
      return finish("CANCELLED", result.error ?? "Cancelled");
    }
    if (result.outcome !== "succeeded") {
      await removeBuild(workDir);
      return finish("BUILD_FAILED", result.error, result.infrastructureFault);
    }
  }
  if (!work.run) {
    // Nothing runs: the build (or, for a rollback, the kept one) becomes the deployed one.
    await keep(workDir);
    return finish("DEPLOYED");
  }

  const abortDeploy = new AbortController();
  current = { cancel: () => abortDeploy.abort() };
  if (cancelled || released || leaseLost) abortDeploy.abort();
  // A restarted build's folder holds the output of the instance it replaces: each gets a file of its own.
  const runLog = reuseBuildOf ? `run-${work.revision.id}.log` : "run.log";
  const deployed = await deployRevision({
    work,
    run: work.run,
    instances: context.instances,
    routerDomain: context.routerDomain,
    workDir,
    runLogFile: path.join(workDir, runLog),
    databaseUrl,
    secrets,
    progress,
    logOffset: logEnd,
    signal: abortDeploy.signal,
  });
  current = undefined;
  if (!deployed.ok) {
    // A reused build is kept: for a restart it is the running revision's, which goes on serving from it.
    if (!reuseBuildOf) await removeBuild(workDir);
    return finish(deployed.outcome, deployed.error);
  }
  await keep(workDir);
  if (reuseBuildOf) await keepOnlyRunLog(workDir, runLog);
  await progress.complete({ outcome: "DEPLOYED", environmentUrl: deployed.url });
  deployed.stopShipping();
  context.stopping?.removeEventListener("abort", release);
  log.info({ url: deployed.url }, "revision deployed and serving");
  return "DEPLOYED";
}

/** Removes a build that will not run (failed, cancelled, or not healthy). */
async function removeBuild(workDir: string) {
  await rm(workDir, { recursive: true, force: true });
}

/** Removes the output files of instances of this build that no longer run (a restart replaced them). */
async function keepOnlyRunLog(workDir: string, keep: string) {
  for (const name of await readdir(workDir).catch(() => [] as string[])) {
    if (name !== keep && /^run(-.+)?\.log$/.test(name)) await rm(path.join(workDir, name), { force: true });
  }
}

async function isFolder(folder: string) {
  return (await stat(folder).catch(() => undefined))?.isDirectory() === true;
}
