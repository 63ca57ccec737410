import type { Deployment, Lease, Phase, PhaseName, Revision, RevisionState } from "../store/model.js";
import { isFinal, isTornDown } from "../store/model.js";

/**
 * The life of a revision and of its deployment, as pure functions: the current record and
 * an event give the next record and the effects to carry out, or a refusal that changes
 * nothing. `lifecycle.ts` applies them inside store updates; nothing else writes a
 * revision's or a deployment's state. Whatever a change means for GitHub (check run,
 * deployment status, pull request comment) and for the status pages follows from the
 * store's change events, not from here.
 *
 * Revision (a leased revision is held by one listener; its events name the lease)
 *
 * | from                       | event          | to                                                    | effects          |
 * | -------------------------- | -------------- | ----------------------------------------------------- | ---------------- |
 * | (new)                      | queue          | QUEUED; older queued ones of the deployment SUPERSEDED | wake listeners   |
 * | QUEUED, not leased         | lease          | QUEUED, leased (refused while the deployment is torn down) |             |
 * | leased, not final          | renew          | lease extended (not announced)                        |                  |
 * | leased, not final          | note           | the notes on its settings replaced (a permission missing) |              |
 * | QUEUED or active, leased   | phase-started  | CREATING_DATABASE, BUILDING or DEPLOYING (forward only) |                |
 * | active, leased             | phase-finished | same state, the phase closed (a database it made goes on the deployment) |  |
 * | leased, not final          | finish         | DEPLOYED, DATABASE_FAILED, BUILD_FAILED, DEPLOY_FAILED or CANCELLED | wake listeners; an infrastructure fault also forgets the source token |
 * | leased, not final          | hand-back      | QUEUED, not leased (the attempt does not count)       | wake listeners   |
 * | leased, not final          | lease-lost     | QUEUED, not leased; INTERRUPTED once attempts are spent | wake listeners |
 * | QUEUED, not leased         | cancel         | CANCELLED                                             |                  |
 * | leased, not final          | cancel         | same state, cancel requested (the listener stops at its next heartbeat) | |
 * | QUEUED, not leased         | supersede      | SUPERSEDED                                            |                  |
 * | DEPLOYED                   | crash-loop     | DEPLOYED with a runtime error (left stopped)          |                  |
 * | QUEUED, not leased         | wait           | QUEUED, with why it waits (held by a deploy lock, a listener gone, a pool empty) or without | |
 *
 * Everything else is refused: a final revision never changes state again; an event naming a
 * lease the revision no longer has, or one past its expiry, is late (lease-lost aside: it is
 * how an expired lease ends); a torn-down deployment's revisions are not leased.
 *
 * So, what happens when a build fails? The listener reports `finish` with BUILD_FAILED: the
 * open phases close as failed, the revision ends BUILD_FAILED with the error in words, and
 * the next queued revision of the deployment may be leased (wake listeners). The GitHub
 * reporter sees the change and completes the check run as a failure with the log's tail,
 * sets the deployment status to `failure` (`error` for an infrastructure fault), updates the
 * pull request comment and reacts 😕 to a `/deploy` comment; the status page shows it live.
 *
 * Deployment
 *
 * | from                        | event              | to                                                   |
 * | --------------------------- | ------------------ | ---------------------------------------------------- |
 * | (new)                       | queue              | AWAITING_DATABASE                                    |
 * | DELETED                     | revision-queued    | AWAITING_DATABASE (a reopened preview starts afresh) |
 * | AWAITING_DATABASE           | database-created   | READY                                                |
 * | AWAITING_DELETE             | database-created   | AWAITING_DELETE, the database recorded to be dropped |
 * | AWAITING_DATABASE or READY  | close              | AWAITING_DELETE (wake listeners: a teardown may be leased); an expiry also records `expired`, and is refused if the deployment changed since it was found idle |
 * | AWAITING_DELETE, not leased | teardown-lease     | AWAITING_DELETE, leased                              |
 * | AWAITING_DELETE, leased     | teardown-renew     | lease extended (not announced)                       |
 * | AWAITING_DELETE, leased     | teardown-failed    | AWAITING_DELETE, retried after a pause               |
 * | AWAITING_DELETE             | teardown-done      | DELETED; AWAITING_DATABASE when a revision waits     |
 * | AWAITING_DELETE, leased     | teardown-lease-lost | AWAITING_DELETE, not leased (wake listeners)        |
 * | not DELETED                 | bind               | bound to the listener that holds its database or running revision |
 * | bound                       | unbind-instance    | no longer held for a running revision (unbound when nothing else binds it) |
 * | not DELETED                 | move               | bound to another listener, or to none; a database on the old one is left behind (AWAITING_DATABASE) (wake listeners) |
 *
 * Placement: a deployment whose embedded database or running revision lives on one listener
 * is leased only to that listener (selectors.ts); one on a shared server that runs nothing
 * goes to any listener of its pool.
 */

/** How a listener may end a revision it holds. */
export type FinishOutcome = "DEPLOYED" | "DATABASE_FAILED" | "BUILD_FAILED" | "DEPLOY_FAILED" | "CANCELLED";

export type RevisionEvent =
  | { type: "lease"; lease: Lease; sandbox?: "bubblewrap" | "none" }
  | { type: "renew"; leaseId: string; expiresAt: string }
  | { type: "note"; leaseId: string; notes: string[] }
  /** `phaseAt`: when the listener saw the phase start or end (phases are timed by the listener's clock). */
  | { type: "phase-started"; leaseId: string; phase: PhaseName; phaseAt: string }
  | { type: "phase-finished"; leaseId: string; phase: PhaseName; phaseAt: string; outcome: NonNullable<Phase["outcome"]>; note?: string }
  | { type: "finish"; leaseId: string; outcome: FinishOutcome; error?: string; environmentUrl?: string; infrastructureFault?: boolean }
  | { type: "hand-back"; leaseId: string }
  | { type: "lease-lost"; leaseId: string; reason: string; maxAttempts: number }
  | { type: "cancel"; reason: string }
  | { type: "supersede"; byNumber: number; bySha: string }
  | { type: "crash-loop"; listenerId: string; message: string }
  /** `note` unset: it no longer waits for anything in particular. */
  | { type: "wait"; note?: string };

export type DeploymentEvent =
  | { type: "revision-queued" }
  | { type: "database-created"; database: NonNullable<Deployment["database"]> }
  /** `expired`: an idle preview (previews.expire_after_days); `ifUpdatedAt` is the deployment's `updatedAt` when it was found idle. */
  | { type: "close"; expired?: { afterDays: number; ifUpdatedAt: string } }
  | { type: "teardown-lease"; lease: Lease }
  | { type: "teardown-renew"; leaseId: string; expiresAt: string }
  | { type: "teardown-failed"; leaseId: string; error: string; retryAt: string }
  | { type: "teardown-done"; leaseId?: string; revisionsWaiting: boolean }
  | { type: "teardown-lease-lost"; leaseId: string }
  | { type: "bind"; listenerId: string; holds: "database" | "instance" }
  | { type: "unbind-instance" }
  /** `to` unset: any listener of the pool may take it. `by`: who moved it, for the check run. */
  | { type: "move"; to?: string; by: string };

/** What the caller carries out after the change is written. */
export type Effect = { type: "wake-listeners" } | { type: "forget-source-token"; installationId: number; repositoryName: string };

export type Transition<T> =
  | { ok: true; next: T; effects: Effect[]; /** false: nothing anyone watches changed (a renewed lease). */ announce: boolean }
  | { ok: false; refused: string };

const PHASE_STATES: Readonly<Record<PhaseName, RevisionState>> = {
  database: "CREATING_DATABASE",
  build: "BUILDING",
  deploy: "DEPLOYING",
};

/** A revision's states while it is leased, in the order its phases run. */
const PHASE_ORDER: readonly RevisionState[] = ["QUEUED", "CREATING_DATABASE", "BUILDING", "DEPLOYING"];

const WAKE: Effect[] = [{ type: "wake-listeners" }];
const refuse = (refused: string) => ({ ok: false, refused }) as const;
const accept = <T>(next: T, effects: Effect[] = [], announce = true): Transition<T> => ({ ok: true, next, effects, announce });

/** The revision after `event` at `at`, given its deployment as it is. */
export function reviseRevision(revision: Revision, event: RevisionEvent, context: { deployment?: Deployment; at: string }): Transition<Revision> {
  const { at } = context;
  switch (event.type) {
    case "lease":
      if (revision.state !== "QUEUED" || revision.lease) return refuse("not waiting to be leased");
      if (!context.deployment || isTornDown(context.deployment)) return refuse("the deployment is torn down");
      return accept({
        ...revision,
        lease: event.lease,
        attempts: revision.attempts + 1,
        sandbox: event.sandbox ?? revision.sandbox,
        waitingFor: undefined,
        updatedAt: at,
      });
    case "wait":
      if (revision.state !== "QUEUED" || revision.lease) return refuse("not waiting to be leased");
      if (revision.waitingFor === event.note) return accept(revision, [], false);
      return accept({ ...revision, waitingFor: event.note, updatedAt: at });
    case "cancel":
      if (isFinal(revision)) return refuse("final");
      if (!revision.lease) return accept(end(revision, "CANCELLED", at, { error: event.reason }));
      return accept({ ...revision, cancelRequested: true });
    case "supersede":
      if (revision.state !== "QUEUED" || revision.lease) return refuse("not waiting to be leased");
      return accept(end(revision, "SUPERSEDED", at, { error: `Superseded by revision ${event.byNumber} (${event.bySha.slice(0, 7)})` }));
    case "crash-loop":
      if (revision.state !== "DEPLOYED" || revision.lease?.listenerId !== event.listenerId) return refuse("not running on this listener");
      return accept({ ...revision, runtimeError: event.message.slice(0, 500), updatedAt: at });
    default:
      return reviseLeased(revision, event, context);
  }
}

/** Events from the listener holding the lease: refused when the lease is not the revision's, or expired. */
function reviseLeased(
  revision: Revision,
  event: Extract<RevisionEvent, { leaseId: string }>,
  { deployment, at }: { deployment?: Deployment; at: string },
): Transition<Revision> {
  if (event.type === "finish" && isFinal(revision) && revision.lease?.id === event.leaseId && revision.state === event.outcome) {
    return accept(revision, [], false); // the listener sent its completion again: already done
  }
  if (isFinal(revision)) return refuse("final");
  if (!revision.lease || revision.lease.id !== event.leaseId) return refuse("not this lease");
  if (event.type !== "lease-lost" && Date.parse(revision.lease.expiresAt) < Date.parse(at)) return refuse("the lease expired");

  switch (event.type) {
    case "renew":
      return accept({ ...revision, lease: { ...revision.lease, expiresAt: event.expiresAt } }, [], false);
    case "note":
      return accept({ ...revision, notes: event.notes.length > 0 ? event.notes : undefined, updatedAt: at });
    case "phase-started":
      if (revision.phases.some((p) => p.name === event.phase && !p.finishedAt)) return refuse("the phase already runs");
      if (PHASE_ORDER.indexOf(PHASE_STATES[event.phase]) < PHASE_ORDER.indexOf(revision.state)) return refuse("phases go forward");
      return accept({
        ...revision,
        state: PHASE_STATES[event.phase],
        phases: [...revision.phases, { name: event.phase, startedAt: event.phaseAt }],
        updatedAt: at,
      });
    case "phase-finished": {
      const open = revision.phases.findIndex((p) => p.name === event.phase && !p.finishedAt);
      if (open < 0) return refuse("the phase is not running");
      const phases = revision.phases.map((p, i) => (i === open ? { ...p, finishedAt: event.phaseAt, outcome: event.outcome, note: event.note } : p));
      return accept({ ...revision, phases, updatedAt: at });
    }
    case "finish": {
      const ended = end(revision, event.outcome, at, {
        error: event.error,
        environmentUrl: event.outcome === "DEPLOYED" ? (event.environmentUrl ?? revision.environmentUrl) : revision.environmentUrl,
        infrastructureFault: event.infrastructureFault || undefined,
      });
      // A fault may come from a stale source token: the next lease mints a fresh one.
      const forget: Effect[] =
        event.infrastructureFault && deployment
          ? [{ type: "forget-source-token", installationId: deployment.installationId, repositoryName: deployment.repository.name }]
          : [];
      return accept(ended, [...WAKE, ...forget]);
    }
    case "hand-back":
      // A stopping listener gives the work back: not a failed attempt.
      return accept(
        { ...closePhases(revision, at, "failed", "listener stopped"), state: "QUEUED", lease: undefined, attempts: Math.max(0, revision.attempts - 1), updatedAt: at },
        WAKE,
      );
    case "lease-lost": {
      const closed = closePhases(revision, at, "failed", "listener lost");
      if (revision.attempts >= event.maxAttempts) {
        return accept(
          { ...closed, state: "INTERRUPTED", error: `${event.reason} (after ${revision.attempts} attempts)`, infrastructureFault: true, finishedAt: at, updatedAt: at },
          WAKE,
        );
      }
      return accept({ ...closed, state: "QUEUED", lease: undefined, updatedAt: at }, WAKE);
    }
  }
}

/** A final state, with any phase still open closed to match. */
function end(revision: Revision, state: RevisionState, at: string, fields: Partial<Revision>): Revision {
  const outcome = state === "DEPLOYED" ? "succeeded" : state === "CANCELLED" || state === "SUPERSEDED" ? "cancelled" : "failed";
  return { ...closePhases(revision, at, outcome), ...fields, state, updatedAt: at, finishedAt: at };
}

function closePhases(revision: Revision, at: string, outcome: NonNullable<Phase["outcome"]>, note?: string): Revision {
  if (revision.phases.every((p) => p.finishedAt)) return revision;
  return { ...revision, phases: revision.phases.map((p) => (p.finishedAt ? p : { ...p, finishedAt: at, outcome, ...(note ? { note } : {}) })) };
}

/** The deployment after `event` at `at`. */
export function reviseDeployment(deployment: Deployment, event: DeploymentEvent, at: string): Transition<Deployment> {
  const { state } = deployment;
  const leaseMatches = (leaseId: string | undefined) => deployment.teardownLease !== undefined && deployment.teardownLease.id === leaseId;
  switch (event.type) {
    case "revision-queued":
      if (state !== "DELETED") return refuse("not deleted");
      return accept({ ...deployment, state: deployment.database ? "READY" : "AWAITING_DATABASE", expired: undefined, updatedAt: at });
    case "database-created":
      if (state === "DELETED") return refuse("deleted");
      // A late report must not revive a deployment being torn down, but its database must be dropped.
      return accept({ ...deployment, database: event.database, state: state === "AWAITING_DATABASE" ? "READY" : state, updatedAt: at });
    case "close":
      if (isTornDown(deployment)) return refuse("already torn down");
      // A revision queued (or anything else) since the idle check looked: not idle after all.
      if (event.expired && deployment.updatedAt !== event.expired.ifUpdatedAt) return refuse("changed since it was found idle");
      const expired = event.expired && { afterDays: event.expired.afterDays, at };
      return accept({ ...deployment, state: "AWAITING_DELETE", expired, updatedAt: at }, WAKE);
    case "teardown-lease":
      if (state !== "AWAITING_DELETE" || deployment.teardownLease) return refuse("no teardown to lease");
      return accept({ ...deployment, teardownLease: event.lease }, [], false);
    case "teardown-renew":
      if (!leaseMatches(event.leaseId)) return refuse("not this lease");
      return accept({ ...deployment, teardownLease: { ...deployment.teardownLease!, expiresAt: event.expiresAt } }, [], false);
    case "teardown-failed":
      if (!leaseMatches(event.leaseId)) return refuse("not this lease");
      return accept({ ...deployment, teardownLease: undefined, teardownError: event.error, teardownRetryAt: event.retryAt, updatedAt: at }, WAKE);
    case "teardown-done":
      if (state !== "AWAITING_DELETE") return refuse("not being torn down");
      if (event.leaseId !== undefined && !leaseMatches(event.leaseId)) return refuse("not this lease");
      return accept(
        {
          ...deployment,
          // A preview reopened and deployed again while it was torn down starts afresh.
          state: event.revisionsWaiting ? "AWAITING_DATABASE" : "DELETED",
          expired: event.revisionsWaiting ? undefined : deployment.expired,
          database: undefined,
          placement: undefined,
          teardownLease: undefined,
          teardownRetryAt: undefined,
          teardownError: undefined,
          updatedAt: at,
        },
        WAKE,
      );
    case "teardown-lease-lost":
      if (!leaseMatches(event.leaseId)) return refuse("not this lease");
      return accept({ ...deployment, teardownLease: undefined }, WAKE, false);
    case "bind": {
      if (state === "DELETED") return refuse("deleted");
      const same = deployment.placement?.listenerId === event.listenerId;
      if (same && deployment.placement!.holds.includes(event.holds)) return accept(deployment, [], false);
      const holds = same ? [...deployment.placement!.holds, event.holds].sort() : [event.holds];
      const since = same ? deployment.placement!.since : at;
      return accept({ ...deployment, placement: { listenerId: event.listenerId, holds, since }, updatedAt: at });
    }
    case "unbind-instance": {
      const placement = deployment.placement;
      if (!placement?.holds.includes("instance")) return accept(deployment, [], false);
      const holds = placement.holds.filter((h) => h !== "instance");
      return accept({ ...deployment, placement: holds.length > 0 ? { ...placement, holds } : undefined, updatedAt: at });
    }
    case "move": {
      if (state === "DELETED") return refuse("deleted");
      const from = deployment.placement;
      if (from?.listenerId === event.to) return refuse("already there");
      // The database lived on the old listener's own server: the new one starts without it.
      const databaseLeftBehind = Boolean(from?.holds.includes("database") && deployment.database);
      return accept(
        {
          ...deployment,
          placement: event.to ? { listenerId: event.to, holds: [], since: at } : undefined,
          moved: { from: from?.listenerId ?? "(any listener)", to: event.to, by: event.by, at, databaseLeftBehind },
          ...(databaseLeftBehind ? { database: undefined, state: state === "READY" ? "AWAITING_DATABASE" : state } : {}),
          updatedAt: at,
        },
        WAKE,
      );
    }
  }
}
