import { lockOf } from "./deploy-locks.js";
import { ACTIVE_STATES, DEFAULT_POOL, isFinal, isPreviewEnvironment, isTornDown, type Deployment, type Revision, type StateDocument } from "../store/model.js";

/** Revisions of one deployment in the live state (archived ones are final and not here). */
export function revisionsOf(state: Readonly<StateDocument>, deploymentId: string): Revision[] {
  return Object.values(state.revisions).filter((r) => r.deploymentId === deploymentId);
}

/** The newest revision of a deployment: the one its pull request comment and page are about. */
export function newestRevisionOf(state: Readonly<StateDocument>, deploymentId: string): Revision | undefined {
  let newest: Revision | undefined;
  for (const revision of Object.values(state.revisions)) {
    if (revision.deploymentId === deploymentId && (!newest || revision.number > newest.number)) newest = revision;
  }
  return newest;
}

/** The deployment's live revision: its newest DEPLOYED one (what runs, or what was deployed last). */
export function activeRevisionOf(state: Readonly<StateDocument>, deploymentId: string): Revision | undefined {
  let active: Revision | undefined;
  for (const r of Object.values(state.revisions)) {
    if (r.deploymentId === deploymentId && r.state === "DEPLOYED" && (!active || r.number > active.number)) active = r;
  }
  return active;
}

/** Whether "restart with new settings" applies: the live revision of a deployment that runs it, and it runs. */
export function mayRestart(state: Readonly<StateDocument>, revision: Revision): boolean {
  const deployment = state.deployments[revision.deploymentId];
  return Boolean(deployment && deployment.state === "READY" && revision.run && !revision.runtimeError && activeRevisionOf(state, deployment.id)?.id === revision.id);
}

/** `SLIPWAY_KEEP_BUILDS`' default: builds kept per non-preview environment, for rollbacks. */
export const DEFAULT_KEEP_BUILDS = 5;

/** The build a revision runs: its own, or for a restart or rollback the kept one it reuses. */
export const buildIdOf = (revision: Pick<Revision, "id" | "buildOf">): string => revision.buildOf ?? revision.id;

/** How many builds of an environment are kept: `keepBuilds`, except previews, which keep the one that runs. */
export const keptBuildCount = (environment: string, keepBuilds: number): number => (isPreviewEnvironment(environment) ? 1 : keepBuilds);

/**
 * The builds a listener keeps for a deployment, newest first: the builds of its newest
 * DEPLOYED revisions, counted by build (a restart's or rollback's build is the one it
 * reuses), at most `keptBuildCount`. The listener keeps the same list in `kept.json` (see
 * src/listener/kept-builds.ts), adding each build as it is deployed; they agree as long as
 * the revisions are in the live state (the newest 20 finished per deployment) and the
 * deployment stayed on one listener.
 */
export function keptBuildsOf(state: Readonly<StateDocument>, deploymentId: string, keepBuilds: number): string[] {
  const deployment = state.deployments[deploymentId];
  if (!deployment) return [];
  const deployed = revisionsOf(state, deploymentId)
    .filter((r) => r.state === "DEPLOYED")
    .sort((a, b) => b.number - a.number);
  const kept: string[] = [];
  const count = keptBuildCount(deployment.environment, keepBuilds);
  for (const r of deployed) {
    const build = buildIdOf(r);
    if (!kept.includes(build)) kept.push(build);
    if (kept.length >= count) break;
  }
  return kept;
}

/**
 * Why `target`'s build cannot be put back now, or undefined when it can: it must be a
 * DEPLOYED revision of a live deployment whose build is still kept and is not the one live.
 */
export function rollbackRefusal(state: Readonly<StateDocument>, target: Revision, keepBuilds: number): string | undefined {
  const deployment = state.deployments[target.deploymentId];
  if (!deployment || isTornDown(deployment)) return "the deployment was torn down";
  if (target.state !== "DEPLOYED") return `revision ${target.number} was never deployed`;
  const live = activeRevisionOf(state, deployment.id);
  if (live && buildIdOf(live) === buildIdOf(target)) return `revision ${target.number}'s build is the one live now`;
  if (!keptBuildsOf(state, deployment.id, keepBuilds).includes(buildIdOf(target))) return `the build of revision ${target.number} is no longer kept`;
  return undefined;
}

/** The revision a listener holds under this lease, if any. */
export function revisionByLease(state: Readonly<StateDocument>, leaseId: string): Revision | undefined {
  return Object.values(state.revisions).find((r) => r.lease?.id === leaseId);
}

/** Deployments a listener works on now: one build per deployment at a time. */
export function busyDeployments(state: Readonly<StateDocument>): Set<string> {
  const busy = new Set<string>();
  for (const r of Object.values(state.revisions)) {
    if (!isFinal(r) && (r.lease || ACTIVE_STATES.has(r.state))) busy.add(r.deploymentId);
  }
  return busy;
}

/** The listener asking for work, as far as placement cares. */
export interface Taker {
  listenerId: string;
  pool: string;
  /** False for a listener that builds unsandboxed without the operator having chosen it. */
  mayBuildForks: boolean;
}

/** The pool a revision's work goes to. */
export const poolOf = (revision: Pick<Revision, "pool">): string => revision.pool ?? DEFAULT_POOL;

/** Whether a deployment's work may go to this listener: a bound one only to the listener holding it. */
export const isPlacedOn = (deployment: Pick<Deployment, "placement">, listenerId: string): boolean =>
  !deployment.placement || deployment.placement.listenerId === listenerId;

/**
 * The oldest queued revision this listener may take: of its pool, not bound to another
 * listener, not of a locked deployment (deploy-locks.ts), and a fork's only where builds are sandboxed.
 */
export function nextRunnableRevision(state: Readonly<StateDocument>, busy: Set<string>, taker: Taker): Revision | undefined {
  let oldest: Revision | undefined;
  for (const r of Object.values(state.revisions)) {
    if (r.state !== "QUEUED" || r.lease || busy.has(r.deploymentId) || poolOf(r) !== taker.pool) continue;
    if (lockOf(state, r.deploymentId)) continue; // held until /unlock
    const deployment = state.deployments[r.deploymentId];
    if (!deployment || deployment.state === "AWAITING_DELETE" || !isPlacedOn(deployment, taker.listenerId)) continue;
    if (!taker.mayBuildForks && deployment.pullRequest?.fork) continue;
    if (!oldest || r.createdAt < oldest.createdAt) oldest = r;
  }
  return oldest;
}

/** A closed preview whose work has stopped, ready to have its database dropped (by the listener holding it, if bound). */
export function nextTeardown(state: Readonly<StateDocument>, busy: Set<string>, now: number, listenerId: string): Deployment | undefined {
  return Object.values(state.deployments).find(
    (d) =>
      d.state === "AWAITING_DELETE" &&
      !d.teardownLease &&
      !busy.has(d.id) &&
      isPlacedOn(d, listenerId) &&
      (!d.teardownRetryAt || Date.parse(d.teardownRetryAt) <= now),
  );
}
