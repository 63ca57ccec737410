import type { Lifecycle, RevisionDecision } from "../../revisions/lifecycle.js";
import type { RevisionRequest } from "../../revisions/new-revision.js";
import { activeRevisionOf, buildIdOf, revisionsOf, rollbackRefusal } from "../../revisions/selectors.js";
import type { Deployment, Revision, StateDocument, Trigger } from "../../store/model.js";

/** A revision id as Slipway makes them (randomUUID). */
const REVISION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type RollbackTarget =
  | { ok: true; revision: Revision }
  /** `missing`: no such revision or commit (404); `refused`: it exists but cannot be put back (409). */
  | { ok: false; kind: "missing" | "refused"; reason: string };

/**
 * The revision whose kept build a rollback of `deployment` puts back. `target` unset: the
 * newest kept build before the live one; a commit (7 to 40 hex characters, a prefix): the
 * newest revision of it whose build is kept and not live; a revision id: that revision.
 *
 * @example
 * const found = findRollbackTarget(store.state, deployment, "3f2a9c1", 5);
 * if (found.ok) await rollBack(lifecycle, { deployment, target: found.revision, actor: "octocat" });
 */
export function findRollbackTarget(state: Readonly<StateDocument>, deployment: Deployment, target: string | undefined, keepBuilds: number): RollbackTarget {
  const deployed = revisionsOf(state, deployment.id)
    .filter((r) => r.state === "DEPLOYED")
    .sort((a, b) => b.number - a.number);
  const live = activeRevisionOf(state, deployment.id);
  if (!live) return { ok: false, kind: "refused", reason: `nothing is deployed to \`${deployment.environment}\` yet` };
  let candidates: Revision[];
  if (target === undefined) {
    candidates = deployed.filter((r) => buildIdOf(r) !== buildIdOf(live));
    if (candidates.length === 0) return { ok: false, kind: "refused", reason: `\`${deployment.environment}\` has no earlier build to roll back to` };
  } else if (REVISION_ID.test(target)) {
    const revision = state.revisions[target.toLowerCase()];
    if (!revision || revision.deploymentId !== deployment.id) {
      return { ok: false, kind: "missing", reason: `revision ${target} is not a kept revision of \`${deployment.environment}\`` };
    }
    candidates = [revision];
  } else {
    const sha = target.toLowerCase();
    candidates = deployed.filter((r) => r.sha.startsWith(sha));
    if (candidates.length === 0) return { ok: false, kind: "missing", reason: `no deployed revision of \`${deployment.environment}\` is at commit \`${sha}\`` };
  }
  const refusals: string[] = [];
  for (const revision of candidates) {
    const refusal = rollbackRefusal(state, revision, keepBuilds);
    if (!refusal) return { ok: true, revision };
    refusals.push(refusal);
  }
  return { ok: false, kind: "refused", reason: refusals[0]! };
}

/**
 * Queues the rollback: a revision of the target's commit that reuses its kept build
 * (`buildOf`), with the target's build, run and pool settings. The listener fetches and
 * builds nothing; with `run`, it starts the build and switches traffic as for any deploy.
 */
export async function rollBack(
  lifecycle: Lifecycle,
  request: { deployment: Deployment; target: Revision; actor: string; deliveryId?: string; commentId?: number },
): Promise<RevisionDecision> {
  const { deployment, target } = request;
  const trigger: Trigger = {
    kind: "rollback",
    actor: request.actor,
    ...(request.deliveryId ? { deliveryId: request.deliveryId } : {}),
    ...(request.commentId ? { commentId: request.commentId } : {}),
    rollbackTo: { revisionId: target.id, number: target.number, sha: target.sha },
  };
  return lifecycle.queue(requestReusingBuild(deployment, target, trigger));
}

/**
 * A new revision of `target`'s commit that starts `target`'s kept build instead of building
 * (a rollback, or a restart with new settings): its build, run and pool settings; the
 * settings of the moment are read when it is leased.
 */
export function requestReusingBuild(deployment: Deployment, target: Revision, trigger: Trigger): RevisionRequest {
  return {
    installationId: deployment.installationId,
    repository: deployment.repository,
    environment: deployment.environment,
    sha: target.sha,
    ref: target.ref,
    trigger,
    build: target.build,
    run: target.run,
    pool: target.pool,
    buildOf: buildIdOf(target),
    again: "always",
  };
}
