import type { Deployment, DeployLock, DeploymentState, PhaseName, Revision, RevisionState, Trigger } from "../../../store/model.js";

/**
 * What the read-only JSON API shows. Each view is built field by field, never by spreading
 * a record: the records hold secrets (`database.encryptedUrl`), lease ids that act as
 * credentials of the listener protocol, and GitHub bookkeeping, and a field added to a
 * record later must not appear here by accident.
 */
export interface DeploymentView {
  id: string;
  repository: { fullName: string; owner: string; name: string; private: boolean };
  environment: string;
  state: DeploymentState;
  database: { name: string; createdAt: string } | null;
  /** The listener its later work goes to, and what of it lives there; null: any listener of the pool. */
  placement: { listener: string; holds: Array<"database" | "instance">; since: string } | null;
  /** `/lock`: who locked it, when and why; its new revisions wait until `/unlock`. */
  lock: { by: string; at: string; reason: string | null } | null;
  createdAt: string;
  updatedAt: string;
  /** The status page listing it. */
  url: string;
}

export interface RevisionView {
  id: string;
  number: number;
  deploymentId: string;
  repository: string | null;
  environment: string | null;
  sha: string;
  ref: string;
  trigger: { kind: Trigger["kind"]; actor: string };
  state: RevisionState;
  /** While it is queued: why it waits (a listener gone, a pool without listeners), if for something in particular. */
  waitingFor: string | null;
  phases: Array<{ name: PhaseName; startedAt: string; finishedAt: string | null; outcome: string | null; note: string | null }>;
  error: string | null;
  infrastructureFault: boolean;
  cancelRequested: boolean;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** The revision's status page. */
  url: string;
  /** The whole log as text. */
  logUrl: string;
}

export function deploymentView(deployment: Deployment, publicUrl: string, lock?: DeployLock): DeploymentView {
  const { repository, database } = deployment;
  return {
    id: deployment.id,
    repository: { fullName: repository.fullName, owner: repository.owner, name: repository.name, private: repository.private },
    environment: deployment.environment,
    state: deployment.state,
    database: database ? { name: database.name, createdAt: database.createdAt } : null,
    placement: deployment.placement ? { listener: deployment.placement.listenerId, holds: [...deployment.placement.holds], since: deployment.placement.since } : null,
    lock: lock ? { by: lock.by, at: lock.at, reason: lock.reason ?? null } : null,
    createdAt: deployment.createdAt,
    updatedAt: deployment.updatedAt,
    url: `${publicUrl}/#deployment-${deployment.id}`,
  };
}

export function revisionView(revision: Revision, deployment: Deployment | undefined, publicUrl: string): RevisionView {
  const url = `${publicUrl}/revisions/${revision.id}`;
  return {
    id: revision.id,
    number: revision.number,
    deploymentId: revision.deploymentId,
    repository: deployment?.repository.fullName ?? null,
    environment: deployment?.environment ?? null,
    sha: revision.sha,
    ref: revision.ref,
    trigger: { kind: revision.trigger.kind, actor: revision.trigger.actor },
    state: revision.state,
    waitingFor: revision.state === "QUEUED" ? (revision.waitingFor ?? null) : null,
    phases: revision.phases.map((phase) => ({
      name: phase.name,
      startedAt: phase.startedAt,
      finishedAt: phase.finishedAt ?? null,
      outcome: phase.outcome ?? null,
      note: phase.note ?? null,
    })),
    error: revision.error ?? null,
    infrastructureFault: revision.infrastructureFault === true,
    cancelRequested: revision.cancelRequested === true,
    attempts: revision.attempts,
    createdAt: revision.createdAt,
    updatedAt: revision.updatedAt,
    finishedAt: revision.finishedAt ?? null,
    url,
    logUrl: `${url}/log`,
  };
}
