import type { Deployment, DeploymentState, Revision, RevisionState } from "./model.js";

/**
 * What the store announces after a write is on disk: a revision or a deployment changed.
 * `sequence` grows by one per announced change and is kept in the state file, so a
 * subscriber can tell across a restart which changes it has seen.
 */
export type StoreChange =
  | { kind: "revision"; sequence: number; id: string; deploymentId: string; state: RevisionState }
  | { kind: "deployment"; sequence: number; id: string; state: DeploymentState };

export type StoreChangeListener = (change: StoreChange) => void;

/** Handed to a store update: marks the records the update changed, to be announced once it is written. */
export interface ChangeRecorder {
  revision(revision: Revision): void;
  deployment(deployment: Deployment): void;
}

/**
 * Collects the changes of one update; `announce` hands them to the listeners (each record
 * once per update, with its state after the update).
 */
export function createChangeBatch(next: () => number): ChangeRecorder & { take(): StoreChange[] } {
  const revisions = new Map<string, Revision>();
  const deployments = new Map<string, Deployment>();
  return {
    revision(revision) {
      revisions.set(revision.id, revision);
    },
    deployment(deployment) {
      deployments.set(deployment.id, deployment);
    },
    take() {
      const changes: StoreChange[] = [];
      for (const d of deployments.values()) changes.push({ kind: "deployment", sequence: next(), id: d.id, state: d.state });
      for (const r of revisions.values()) changes.push({ kind: "revision", sequence: next(), id: r.id, deploymentId: r.deploymentId, state: r.state });
      return changes;
    },
  };
}
