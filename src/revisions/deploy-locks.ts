import type { DeployLock, Revision, StateDocument } from "../store/model.js";
import type { RevisionEvent, Transition } from "./transitions.js";

/**
 * Deploy locks (`/lock <environment> [reason]`, `/unlock <environment>`), kept in the state
 * document by deployment id, so they survive restarts and cover a preview that has no
 * deployment yet. While a deployment is locked its queued revisions are not leased
 * (nextRunnableRevision skips it) and say why on their check runs; revisions a listener
 * already holds finish. The writers below run inside a lifecycle store update, which
 * applies the revision events they ask for.
 */

/** Applies a revision event inside the current store update (lifecycle.ts). */
export type ApplyRevisionEvent = (revisionId: string, event: RevisionEvent) => Transition<Revision>;

/** The lock on a deployment, if any. */
export function lockOf(state: Readonly<StateDocument>, deploymentId: string): DeployLock | undefined {
  return state.locks?.[deploymentId];
}

/**
 * Who locked it, when and why, in words for check runs, replies and the status page.
 *
 * @example
 * describeLock(lock); // "production is locked by @alice since 2026-12-02T10:00:00Z: release freeze"
 */
export function describeLock(lock: DeployLock): string {
  const since = lock.at.replace(/\.\d{3}Z$/, "Z");
  return `${lock.environment} is locked by @${lock.by} since ${since}${lock.reason ? `: ${lock.reason}` : ""}`;
}

/** Why a revision of a locked deployment waits (its `waitingFor`). */
export const heldNote = (lock: DeployLock): string => `held: ${describeLock(lock)}`;

/** The deployment's revisions waiting to be leased, newest first. */
function waitingRevisions(state: Readonly<StateDocument>, deploymentId: string): Revision[] {
  return Object.values(state.revisions)
    .filter((r) => r.deploymentId === deploymentId && r.state === "QUEUED" && !r.lease)
    .sort((a, b) => b.number - a.number);
}

/** Locks a deployment; the revisions waiting for it say at once that they are held. `taken: false`: it was locked already (that lock kept). */
export function takeLock(state: StateDocument, deploymentId: string, lock: DeployLock, apply: ApplyRevisionEvent): { taken: boolean; lock: DeployLock } {
  const existing = lockOf(state, deploymentId);
  if (existing) return { taken: false, lock: existing };
  (state.locks ??= {})[deploymentId] = lock;
  for (const revision of waitingRevisions(state, deploymentId)) apply(revision.id, { type: "wait", note: heldNote(lock) });
  return { taken: true, lock };
}

/** What an unlock did: the lock removed (none: it was not locked), the held revision that now proceeds, the older ones superseded. */
export interface LockReleased {
  lock?: DeployLock;
  proceeding?: Revision;
  superseded: Revision[];
}

/**
 * Unlocks a deployment in the same update that decides what its held revisions become: the
 * newest proceeds (its note cleared), older ones are SUPERSEDED by it. One is usually all
 * there is (a new revision supersedes queued ones), but a revision whose lease was lost
 * while the lock held returns to the queue beside a newer one.
 */
export function releaseLock(state: StateDocument, deploymentId: string, apply: ApplyRevisionEvent): LockReleased {
  const lock = lockOf(state, deploymentId);
  if (!lock) return { superseded: [] };
  delete state.locks![deploymentId];
  const [newest, ...older] = waitingRevisions(state, deploymentId);
  if (!newest) return { lock, superseded: [] };
  const superseded = older.filter((r) => apply(r.id, { type: "supersede", byNumber: newest.number, bySha: newest.sha }).ok);
  apply(newest.id, { type: "wait", note: undefined });
  return { lock, proceeding: newest, superseded };
}
