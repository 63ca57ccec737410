import { createHash } from "node:crypto";
import {
  isFinal,
  type BuildSettings,
  type Deployment,
  type PullRequestLink,
  type RepositoryRef,
  type Revision,
  type RunSettings,
  type StateDocument,
  type Trigger,
} from "../store/model.js";
import { heldNote, lockOf } from "./deploy-locks.js";
import { reviseDeployment } from "./transitions.js";

export interface RevisionRequest {
  installationId: number;
  repository: RepositoryRef;
  environment: string;
  sha: string;
  ref: string;
  trigger: Trigger;
  build: BuildSettings;
  run?: RunSettings;
  /** `environments.<name>.pool`: only listeners of that pool take it. */
  pool?: string;
  /** A restart with new settings: the revision whose kept build it starts instead of building. */
  buildOf?: string;
  /**
   * When the commit already has a revision of this deployment: `never` (default) reuses it;
   * `if-finished` makes a new one unless that one is still queued or in progress (`/deploy`);
   * `always` makes a new one (re-run, redeploy).
   */
  again?: "never" | "if-finished" | "always";
  /** For previews: the pull request the deployment belongs to. */
  pullRequest?: Pick<PullRequestLink, "number" | "headRepository" | "fork">;
}

/** What a revision request comes to, before it is written. */
export interface NewRevisionPlan {
  /** The deployment as it will be written (created on first use). */
  deployment: Deployment;
  revision: Revision;
  /** False when the commit already had a revision of this deployment (a second push, a redelivery). */
  created: boolean;
  /** Queued older revisions of the deployment that the new one supersedes. */
  supersedes: Revision[];
}

/** Deployment ids are derived from the identity, so the same environment always maps to one record. */
export function deploymentIdOf(installationId: number, repositoryId: number, environment: string): string {
  return createHash("sha256").update(`${installationId}/${repositoryId}/${environment}`).digest("hex").slice(0, 16);
}

/**
 * Decides what a revision request makes, without changing `state`: the deployment (new, or
 * with the names GitHub gave last), and a new revision of it unless the commit already has
 * one that `again` says to reuse. Queued older revisions are superseded; one that a
 * listener holds is left to finish, since one build per deployment runs at a time.
 */
export function planNewRevision(state: Readonly<StateDocument>, request: RevisionRequest, ids: { revisionId: string; at: string }): NewRevisionPlan {
  const { at } = ids;
  const deploymentId = deploymentIdOf(request.installationId, request.repository.id, request.environment);
  const known = state.deployments[deploymentId];
  let deployment: Deployment = known
    ? // Names and privacy change; keep what GitHub said last.
      { ...known, repository: request.repository, updatedAt: at }
    : {
        id: deploymentId,
        installationId: request.installationId,
        repository: request.repository,
        environment: request.environment,
        state: "AWAITING_DATABASE",
        createdAt: at,
        updatedAt: at,
      };
  const reopened = reviseDeployment(deployment, { type: "revision-queued" }, at);
  if (reopened.ok) deployment = reopened.next;
  if (request.pullRequest) deployment = { ...deployment, pullRequest: { ...deployment.pullRequest, ...request.pullRequest } };

  // One pass over the live revisions, no copies: this runs for every push.
  let existing: Revision | undefined;
  const waiting: Revision[] = [];
  for (const r of Object.values(state.revisions)) {
    if (r.deploymentId !== deploymentId) continue;
    if (r.sha === request.sha && (!existing || r.number > existing.number)) existing = r;
    if (r.state === "QUEUED" && !r.lease) waiting.push(r);
  }
  const again = request.again ?? "never";
  if (existing && (again === "never" || (again === "if-finished" && !isFinal(existing)))) {
    return { deployment, revision: existing, created: false, supersedes: [] };
  }
  const lock = lockOf(state, deploymentId);
  const revision: Revision = {
    id: ids.revisionId,
    number: (state.counters[deploymentId] ?? 0) + 1,
    deploymentId,
    sha: request.sha,
    ref: request.ref,
    trigger: request.trigger,
    state: "QUEUED",
    build: request.build,
    run: request.run,
    ...(request.pool ? { pool: request.pool } : {}),
    ...(request.buildOf ? { buildOf: request.buildOf } : {}),
    // Queued while its environment is locked: it says so from its first check run on.
    ...(lock ? { waitingFor: heldNote(lock) } : {}),
    phases: [],
    attempts: 0,
    github: {},
    createdAt: at,
    updatedAt: at,
  };
  return { deployment, revision, created: true, supersedes: waiting };
}
