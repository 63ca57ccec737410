import { createHash, randomUUID } from "node:crypto";
import { FINAL_STATES, type BuildSettings, type Deployment, type PullRequestLink, type RepositoryRef, type Revision, type RunSettings, type StateDocument, type Trigger } from "../store/model.js";

export interface RevisionRequest {
  installationId: number;
  repository: RepositoryRef;
  environment: string;
  sha: string;
  ref: string;
  trigger: Trigger;
  build: BuildSettings;
  run?: RunSettings;
  /**
   * When the commit already has a revision of this deployment: `never` (default) reuses it;
   * `if-finished` makes a new one unless that one is still queued or running (`/deploy`);
   * `always` makes a new one (re-run, redeploy).
   */
  again?: "never" | "if-finished" | "always";
  /** For previews: the pull request the deployment belongs to. */
  pullRequest?: Pick<PullRequestLink, "number" | "headRepository" | "fork">;
}

export interface RevisionDecision {
  revision: Revision;
  /** False when the commit already had a revision of this deployment (a second push, a redelivery). */
  created: boolean;
  /** Queued older revisions of the deployment that this one replaces. */
  superseded: Revision[];
}

/** Deployment ids are derived from the identity, so the same environment always maps to one record. */
export function deploymentIdOf(installationId: number, repositoryId: number, environment: string): string {
  return createHash("sha256").update(`${installationId}/${repositoryId}/${environment}`).digest("hex").slice(0, 16);
}

/**
 * Records a revision of an environment (creating the deployment on first use) inside a
 * store update. A queued older revision of the same deployment is superseded; a running
 * one is left to finish, since one build per deployment runs at a time.
 *
 * @example
 * const decision = await store.update((state) => createRevision(state, request));
 */
export function createRevision(state: StateDocument, request: RevisionRequest, now = new Date()): RevisionDecision {
  const at = now.toISOString();
  const deploymentId = deploymentIdOf(request.installationId, request.repository.id, request.environment);
  let deployment: Deployment | undefined = state.deployments[deploymentId];
  if (!deployment) {
    deployment = {
      id: deploymentId,
      installationId: request.installationId,
      repository: request.repository,
      environment: request.environment,
      state: "AWAITING_DATABASE",
      createdAt: at,
      updatedAt: at,
    };
    state.deployments[deploymentId] = deployment;
  } else {
    // Names and privacy change; keep what GitHub said last.
    deployment.repository = request.repository;
    if (deployment.state === "DELETED") deployment.state = deployment.database ? "READY" : "AWAITING_DATABASE";
    deployment.updatedAt = at;
  }

  if (request.pullRequest) deployment.pullRequest = { ...deployment.pullRequest, ...request.pullRequest };

  const siblings = Object.values(state.revisions).filter((r) => r.deploymentId === deploymentId);
  const again = request.again ?? "never";
  const existing = siblings.filter((r) => r.sha === request.sha).sort((a, b) => b.number - a.number)[0];
  if (existing && (again === "never" || (again === "if-finished" && !FINAL_STATES.has(existing.state)))) {
    return { revision: existing, created: false, superseded: [] };
  }

  const number = (state.counters[deploymentId] ?? 0) + 1;
  state.counters[deploymentId] = number;
  const revision: Revision = {
    id: randomUUID(),
    number,
    deploymentId,
    sha: request.sha,
    ref: request.ref,
    trigger: request.trigger,
    state: "QUEUED",
    build: request.build,
    run: request.run,
    phases: [],
    attempts: 0,
    github: {},
    createdAt: at,
    updatedAt: at,
  };
  state.revisions[revision.id] = revision;

  const superseded: Revision[] = [];
  for (const older of siblings) {
    if (older.state !== "QUEUED" || older.lease) continue;
    older.state = "SUPERSEDED";
    older.error = `Superseded by revision ${number} (${request.sha.slice(0, 7)})`;
    older.updatedAt = at;
    older.finishedAt = at;
    superseded.push(older);
  }
  return { revision, created: true, superseded };
}
