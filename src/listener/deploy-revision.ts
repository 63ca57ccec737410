import path from "node:path";
import type { RevisionWork } from "../protocol/listener-protocol.js";
import type { RunSettings } from "../store/model.js";
import { buildEnvironment } from "./build/build-environment.js";
import { createBuildLog } from "./build/build-log.js";
import { checkBuildRoot } from "./build/build-root.js";
import type { InstanceSupervisor } from "./instances/create-instance-supervisor.js";
import { revisionHost } from "./instances/revision-host.js";
import type { WorkProgress } from "./work-progress.js";

export interface DeployRevisionOptions {
  work: RevisionWork;
  run: RunSettings;
  instances: InstanceSupervisor;
  routerDomain: string;
  /** The build folder whose `source` is started: the revision's own, or the one a restart reuses. */
  workDir: string;
  /** The instance's output file, kept in `workDir` beside build.log. */
  runLogFile: string;
  databaseUrl: string;
  /** Masked in the instance's output. */
  secrets: readonly string[];
  progress: WorkProgress;
  /** Where the instance's output goes on in the revision's log stream (after what was logged before). */
  logOffset: number;
  /** Aborted: the deploy is cancelled while the revision starts (the previous one keeps serving). */
  signal: AbortSignal;
}

export type DeployRevisionResult =
  | { ok: true; url: string; /** The lease is over: the output stays in the run log only. */ stopShipping(): void }
  | { ok: false; outcome: "DEPLOY_FAILED" | "CANCELLED"; error: string };

/**
 * The deploy phase of a revision with a `run` section: starts its build as an instance; the
 * supervisor health-checks it, switches traffic to it and stops the previous one. Reports
 * the phase; the caller decides what becomes of the build folder.
 *
 * @example
 * const deployed = await deployRevision({ work, run: work.run, workDir, runLogFile: path.join(workDir, "run.log"), ... });
 * if (deployed.ok) await progress.complete({ outcome: "DEPLOYED", environmentUrl: deployed.url });
 */
export async function deployRevision(options: DeployRevisionOptions): Promise<DeployRevisionResult> {
  const { work, run, progress, signal } = options;
  const now = () => new Date().toISOString();
  progress.event({ type: "phase_started", phase: "deploy", at: now() });
  let shipOutput = true;
  const instanceLog = await createBuildLog({
    file: options.runLogFile,
    secrets: options.secrets,
    // Until the lease ends, the revision's own output goes on in its log on the status page;
    // after that it stays in the run log beside the build.
    onChunk: (text, offset) => {
      if (shipOutput) progress.log(text, options.logOffset + offset);
    },
  });
  // Again: the build ran since, and could have put a link where the folder was.
  const source = path.join(options.workDir, "source");
  const root = await checkBuildRoot(source, work.build.root);
  if (!root.ok) {
    await instanceLog.close();
    progress.event({ type: "phase_finished", phase: "deploy", at: now(), outcome: "failed" });
    return { ok: false, outcome: "DEPLOY_FAILED", error: root.error };
  }
  const deployed = await options.instances.deploy({
    deploymentId: work.deployment.id,
    host: revisionHost({ environment: work.deployment.environment, repository: work.deployment.repository, domain: options.routerDomain }),
    revisionId: work.revision.id,
    cwd: source,
    subDir: root.subDir,
    command: run.command,
    env: buildEnvironment({
      configEnv: work.build.env,
      databaseUrl: options.databaseUrl,
      sha: work.revision.sha,
      ref: work.revision.ref,
      environment: work.deployment.environment,
      revisionId: work.revision.id,
      runMarker: `slipway-run-${work.revision.id}`, // replaced per instance by the supervisor
      settings: work.settings,
    }),
    healthcheck: run.healthcheck,
    timeoutMs: run.timeoutSeconds * 1000,
    memoryLimitMb: run.memoryMb,
    secrets: options.secrets,
    onOutput: (text) => instanceLog.write(text),
    signal,
  });
  if (!deployed.ok) {
    const tail = instanceLog.tail(4_000); // masked, unlike the supervisor's own tail
    await instanceLog.close();
    progress.event({ type: "phase_finished", phase: "deploy", at: now(), outcome: signal.aborted ? "cancelled" : "failed" });
    if (signal.aborted) return { ok: false, outcome: "CANCELLED", error: "Cancelled while starting" };
    return {
      ok: false,
      outcome: "DEPLOY_FAILED",
      error: `The new revision did not become healthy: ${deployed.error}${tail ? ` — last output: ${tail.slice(-300)}` : ""}`,
    };
  }
  progress.event({ type: "phase_finished", phase: "deploy", at: now(), outcome: "succeeded", note: `serving at ${deployed.url}` });
  return { ok: true, url: deployed.url, stopShipping: () => (shipOutput = false) };
}
