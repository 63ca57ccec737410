import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { isFinal, type Deployment, type DeployLock, type Lease, type Revision, type StateDocument } from "../store/model.js";
import type { StateStore } from "../store/open-state-store.js";
import type { SecretBox } from "../store/secret-box.js";
import type { ChangeRecorder } from "../store/store-changes.js";
import type { CompleteRequest, CrashReport, HeartbeatResponse, WorkEvent } from "../protocol/listener-protocol.js";
import { releaseLock, takeLock, type LockReleased } from "./deploy-locks.js";
import { planNewRevision, type RevisionRequest } from "./new-revision.js";
import { busyDeployments, nextRunnableRevision, nextTeardown, revisionByLease, revisionsOf, type Taker } from "./selectors.js";
import { reviseDeployment, reviseRevision, type DeploymentEvent, type Effect, type RevisionEvent, type Transition } from "./transitions.js";

/** How long a failed teardown waits before a listener may try again. */
const TEARDOWN_RETRY_MS = 30_000;

export interface RevisionDecision {
  revision: Revision;
  /** False when the commit already had a revision of this deployment (a second push, a redelivery). */
  created: boolean;
  /** Queued older revisions of the deployment that this one replaced. */
  superseded: Revision[];
}

/** Work a listener takes: a revision to build, or a closed preview to tear down. */
export type LeasedWork = { kind: "revision"; revision: Revision; deployment: Deployment } | { kind: "teardown"; deployment: Deployment };

export type LeaseLost = "lease-lost";

export interface LifecycleOptions {
  store: StateStore;
  /** Seals the URL of a database a listener made before it is stored. */
  secrets: SecretBox;
  log: Logger;
  /** Lease attempts before a revision whose listener keeps vanishing is INTERRUPTED. */
  maxAttempts?: number;
  /** Effect `wake-listeners`: new work may be leasable. */
  wakeListeners(): void;
  /** Effect `forget-source-token`: a listener reported an infrastructure fault for this repository. */
  forgetSourceToken?(installationId: number, repositoryName: string): void;
}

/**
 * Every change of a revision's or a deployment's state, applied through the pure
 * transitions (transitions.ts) inside store updates, changed records marked for the store's
 * change events, and the transitions' effects carried out once written. Webhook intents,
 * the listener API, commands, timers and reconciliation all come through here.
 */
export interface Lifecycle {
  /** Records a revision of an environment (creating the deployment on first use). */
  queue(request: RevisionRequest): Promise<RevisionDecision>;
  /** Cancels a revision that waits, or asks the listener holding it to stop. */
  cancel(revisionId: string, reason: string): Promise<void>;
  /** A closed pull request (or, with `expired`, an idle preview): its preview is torn down; its unfinished revisions are cancelled. False when there was none live. */
  closePreview(deploymentId: string, reason: string, expired?: { afterDays: number; ifUpdatedAt: string }): Promise<boolean>;
  /** Leases the next work this listener may take: a teardown first, else the oldest runnable revision (placement: selectors.ts). */
  leaseNext(taker: Taker, options: { ttlMs: number; sandbox?: "bubblewrap" | "none" }): Promise<LeasedWork | undefined>;
  /** A listener's heartbeat: its events applied, its lease renewed. */
  heartbeat(leaseId: string, events: WorkEvent[], ttlMs: number): Promise<HeartbeatResponse | LeaseLost>;
  /** Notes on the settings a leased revision was given (see Revision.notes). */
  note(revisionId: string, leaseId: string, notes: string[]): Promise<void>;
  /** A listener ended its work. */
  complete(leaseId: string, request: CompleteRequest): Promise<"ok" | LeaseLost>;
  /** A lease that could not be used or whose listener stopped answering: back to the queue, or INTERRUPTED. */
  loseLease(revisionId: string, leaseId: string, reason: string): Promise<void>;
  /** Loses every lease (revisions and teardowns) that `isLost` picks. */
  expireLeases(isLost: (lease: Lease) => boolean, reason: string): Promise<void>;
  /** A running revision kept crashing and was left stopped. */
  crashLoop(report: CrashReport): Promise<void>;
  /** Binds a deployment to another listener (`to`), or to none; false when it is gone or already there. */
  move(deploymentId: string, move: { to?: string; by: string }): Promise<boolean>;
  /** A revoked listener: its leases are lost (the work goes back to the queue) and its deployments move off it. */
  releaseListener(listenerId: string, by: string): Promise<void>;
  /** Records on each revision waiting to be leased why it waits (`why` answers undefined: nothing in particular). */
  noteWaiting(why: (revision: Revision, deployment: Deployment) => string | undefined): Promise<void>;
  /** `/lock` and `/unlock` (deploy-locks.ts): held revisions say why at once; an unlock lets the newest proceed (wake listeners). */
  lock(deploymentId: string, lock: DeployLock): Promise<{ taken: boolean; lock: DeployLock }>;
  unlock(deploymentId: string): Promise<LockReleased>;
}

/**
 * Applies `event` to a revision inside a store update: the transition's result is written
 * into the record, which is marked changed. Returns the transition, its `next` the live
 * record (a refusal changes nothing).
 */
function applyRevisionEvent(state: StateDocument, changes: ChangeRecorder, revisionId: string, event: RevisionEvent, at: string): Transition<Revision> {
  const revision = state.revisions[revisionId];
  if (!revision) return { ok: false, refused: "no such revision" };
  const result = reviseRevision(revision, event, { deployment: state.deployments[revision.deploymentId], at });
  if (!result.ok || result.next === revision) return result;
  writeInto(revision, result.next);
  if (result.announce) changes.revision(revision);
  return { ...result, next: revision };
}

/** The same for a deployment. */
function applyDeploymentEvent(state: StateDocument, changes: ChangeRecorder, deploymentId: string, event: DeploymentEvent, at: string): Transition<Deployment> {
  const deployment = state.deployments[deploymentId];
  if (!deployment) return { ok: false, refused: "no such deployment" };
  const result = reviseDeployment(deployment, event, at);
  if (!result.ok || result.next === deployment) return result;
  writeInto(deployment, result.next);
  if (result.announce) changes.deployment(deployment);
  return { ...result, next: deployment };
}

/**
 * A transition's result, written into the live record: the record keeps its identity, and
 * its hidden class with it. Replacing records with fresh copies would leave the store's
 * per-push scans of every live revision about three times slower (V8 sees many shapes).
 */
function writeInto<T extends object>(record: T, next: T): void {
  for (const key of Object.keys(record)) if (!(key in next)) delete record[key as keyof T];
  Object.assign(record, next);
}

/**
 * Writes what a revision request makes (see planNewRevision) inside a store update: the
 * deployment, the new revision, and the supersede transitions of the ones it replaces.
 */
export function recordNewRevision(
  state: StateDocument,
  changes: ChangeRecorder,
  request: RevisionRequest,
  ids: { revisionId: string; at: string } = { revisionId: randomUUID(), at: new Date().toISOString() },
): RevisionDecision & { effects: Effect[] } {
  const plan = planNewRevision(state, request, ids);
  const known = state.deployments[plan.deployment.id];
  const stateBefore = known?.state;
  if (known) writeInto(known, plan.deployment);
  const deployment = known ?? (state.deployments[plan.deployment.id] = plan.deployment);
  if (stateBefore !== deployment.state) changes.deployment(deployment);
  if (!plan.created) return { revision: plan.revision, created: false, superseded: [], effects: [] };
  state.counters[deployment.id] = plan.revision.number;
  state.revisions[plan.revision.id] = plan.revision;
  changes.revision(plan.revision);
  const superseded: Revision[] = [];
  for (const older of plan.supersedes) {
    const result = applyRevisionEvent(state, changes, older.id, { type: "supersede", byNumber: plan.revision.number, bySha: plan.revision.sha }, ids.at);
    if (result.ok) superseded.push(result.next);
  }
  return { revision: plan.revision, created: true, superseded, effects: [{ type: "wake-listeners" }] };
}

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { store, log } = options;
  const maxAttempts = options.maxAttempts ?? 3;
  const now = () => new Date().toISOString();

  /** Runs `change` in one store update, then carries out the effects it gathered. */
  async function transact<T>(change: (state: StateDocument, changes: ChangeRecorder, effects: Effect[], at: string) => T): Promise<T> {
    const effects: Effect[] = [];
    const result = await store.update((state, changes) => change(state, changes, effects, now()));
    carryOut(effects);
    return result;
  }

  function collect<T>(effects: Effect[], transition: Transition<T>): Transition<T> {
    if (transition.ok) effects.push(...transition.effects);
    return transition;
  }

  function carryOut(effects: Effect[]) {
    for (const effect of effects) {
      if (effect.type === "forget-source-token") options.forgetSourceToken?.(effect.installationId, effect.repositoryName);
    }
    if (effects.some((e) => e.type === "wake-listeners")) options.wakeListeners();
  }

  const teardownByLease = (leaseId: string) => Object.values(store.state.deployments).find((d) => d.teardownLease?.id === leaseId);

  /** A revision's share of a heartbeat or completion: the phases the listener reports. */
  function applyWorkEvents(state: StateDocument, changes: ChangeRecorder, revision: Revision, leaseId: string, events: WorkEvent[], at: string) {
    for (const event of events) {
      if (event.type === "phase_started") {
        applyRevisionEvent(state, changes, revision.id, { type: "phase-started", leaseId, phase: event.phase, phaseAt: event.at }, at);
        continue;
      }
      const finished = applyRevisionEvent(
        state,
        changes,
        revision.id,
        { type: "phase-finished", leaseId, phase: event.phase, phaseAt: event.at, outcome: event.outcome, note: event.note },
        at,
      );
      if (finished.ok && event.database) {
        const database = { name: event.database.name, encryptedUrl: options.secrets.seal(event.database.url), createdAt: event.at };
        applyDeploymentEvent(state, changes, revision.deploymentId, { type: "database-created", database }, at);
        if (event.database.onListener) {
          const listenerId = state.revisions[revision.id]!.lease!.listenerId;
          applyDeploymentEvent(state, changes, revision.deploymentId, { type: "bind", listenerId, holds: "database" }, at);
        }
      }
    }
  }

  const lifecycle: Lifecycle = {
    async queue(request) {
      const decision = await transact((state, changes, effects, at) => {
        const recorded = recordNewRevision(state, changes, request, { revisionId: randomUUID(), at });
        effects.push(...recorded.effects);
        return recorded;
      });
      return { revision: decision.revision, created: decision.created, superseded: decision.superseded };
    },

    async cancel(revisionId, reason) {
      await transact((state, changes, effects, at) => collect(effects, applyRevisionEvent(state, changes, revisionId, { type: "cancel", reason }, at)));
    },

    async closePreview(deploymentId, reason, expired) {
      return transact((state, changes, effects, at) => {
        const closed = collect(effects, applyDeploymentEvent(state, changes, deploymentId, { type: "close", expired }, at));
        if (!closed.ok) return false;
        for (const revision of revisionsOf(state, deploymentId)) {
          collect(effects, applyRevisionEvent(state, changes, revision.id, { type: "cancel", reason }, at));
          // Finished ones are announced too: their GitHub deployments become inactive.
          if (isFinal(revision)) changes.revision(state.revisions[revision.id]!);
        }
        return true;
      });
    },

    async leaseNext(taker, { ttlMs, sandbox }) {
      const { listenerId } = taker;
      for (;;) {
        // Looked for first without a write: most polls find nothing, and each update writes the state file.
        const busy = busyDeployments(store.state);
        if (!nextTeardown(store.state, busy, Date.now(), listenerId) && !nextRunnableRevision(store.state, busy, taker)) return undefined;
        const leased = await transact((state, changes, effects, at): LeasedWork | "deleted" | undefined => {
          const lease = (attempt: number): Lease => ({ id: randomUUID(), listenerId, attempt, expiresAt: new Date(Date.parse(at) + ttlMs).toISOString() });
          const busy = busyDeployments(state);
          const closed = nextTeardown(state, busy, Date.parse(at), listenerId);
          if (closed) {
            if (!closed.database) {
              // Nothing was provisioned: nothing for a listener to do.
              const revisionsWaiting = revisionsOf(state, closed.id).some((r) => !isFinal(r));
              collect(effects, applyDeploymentEvent(state, changes, closed.id, { type: "teardown-done", revisionsWaiting }, at));
              return "deleted";
            }
            const result = applyDeploymentEvent(state, changes, closed.id, { type: "teardown-lease", lease: lease(1) }, at);
            return result.ok ? { kind: "teardown", deployment: structuredClone(result.next) } : undefined;
          }
          const revision = nextRunnableRevision(state, busy, taker);
          if (!revision) return undefined;
          const result = applyRevisionEvent(state, changes, revision.id, { type: "lease", lease: lease(revision.attempts + 1), sandbox }, at);
          if (!result.ok) return undefined;
          return { kind: "revision", revision: structuredClone(result.next), deployment: structuredClone(state.deployments[revision.deploymentId]!) };
        });
        if (leased !== "deleted") return leased;
      }
    },

    async heartbeat(leaseId, events, ttlMs) {
      const teardown = teardownByLease(leaseId);
      const revision = teardown ? undefined : revisionByLease(store.state, leaseId);
      if (!teardown && !revision) return "lease-lost";
      return transact((state, changes, effects, at) => {
        const expiresAt = new Date(Date.parse(at) + ttlMs).toISOString();
        if (teardown) {
          const renewed = applyDeploymentEvent(state, changes, teardown.id, { type: "teardown-renew", leaseId, expiresAt }, at);
          return renewed.ok ? { cancel: false, leaseExpiresAt: expiresAt } : "lease-lost";
        }
        const renewed = applyRevisionEvent(state, changes, revision!.id, { type: "renew", leaseId, expiresAt }, at);
        if (!renewed.ok) return "lease-lost";
        applyWorkEvents(state, changes, revision!, leaseId, events, at);
        return { cancel: Boolean(state.revisions[revision!.id]?.cancelRequested), leaseExpiresAt: expiresAt };
      });
    },

    async complete(leaseId, request) {
      const teardown = teardownByLease(leaseId);
      if (teardown) {
        const done = await transact((state, changes, effects, at) => {
          const event: DeploymentEvent =
            request.outcome === "DELETED"
              ? { type: "teardown-done", leaseId, revisionsWaiting: revisionsOf(state, teardown.id).some((r) => !isFinal(r)) }
              : { type: "teardown-failed", leaseId, error: request.error ?? "teardown failed", retryAt: new Date(Date.parse(at) + TEARDOWN_RETRY_MS).toISOString() };
          return collect(effects, applyDeploymentEvent(state, changes, teardown.id, event, at)).ok;
        });
        if (!done) return "lease-lost";
        if (request.outcome === "DELETED") log.info({ environment: teardown.environment }, "deployment torn down");
        else log.warn({ environment: teardown.environment, error: request.error }, "teardown failed; will retry");
        return "ok";
      }
      const revision = revisionByLease(store.state, leaseId);
      const { outcome } = request;
      if (!revision || outcome === "DELETED" || outcome === "TEARDOWN_FAILED") return "lease-lost";
      const event: RevisionEvent =
        outcome === "RELEASED"
          ? { type: "hand-back", leaseId }
          : { type: "finish", leaseId, outcome, error: request.error, environmentUrl: request.environmentUrl, infrastructureFault: request.infrastructureFault };
      const result = await transact((state, changes, effects, at) => {
        applyWorkEvents(state, changes, revision, leaseId, request.events, at);
        const finished = collect(effects, applyRevisionEvent(state, changes, revision.id, event, at));
        if (finished.ok && finished.announce && outcome === "DEPLOYED") {
          // A running revision lives on the listener that started it; one that runs nothing binds nowhere.
          const placed: DeploymentEvent = revision.run ? { type: "bind", listenerId: revision.lease!.listenerId, holds: "instance" } : { type: "unbind-instance" };
          applyDeploymentEvent(state, changes, revision.deploymentId, placed, at);
          // The earlier deployed ones gain (or, beyond the kept builds, lose) their "Roll back" button.
          for (const older of revisionsOf(state, revision.deploymentId)) if (older.state === "DEPLOYED" && older.id !== revision.id) changes.revision(older);
        }
        return finished;
      });
      if (!result.ok) return "lease-lost";
      if (result.announce) {
        if (request.outcome === "RELEASED") log.info({ revision: revision.id }, "work handed back by a stopping listener");
        else log.info({ revision: revision.id, outcome: request.outcome }, "revision finished");
      }
      return "ok";
    },

    async note(revisionId, leaseId, notes) {
      await transact((state, changes, effects, at) => applyRevisionEvent(state, changes, revisionId, { type: "note", leaseId, notes }, at));
    },

    async loseLease(revisionId, leaseId, reason) {
      await transact((state, changes, effects, at) =>
        collect(effects, applyRevisionEvent(state, changes, revisionId, { type: "lease-lost", leaseId, reason, maxAttempts }, at)),
      );
    },

    async expireLeases(isLost, reason) {
      const teardowns = Object.values(store.state.deployments).filter((d) => d.teardownLease && isLost(d.teardownLease));
      if (teardowns.length > 0) {
        await transact((state, changes, effects, at) => {
          for (const d of teardowns) {
            collect(effects, applyDeploymentEvent(state, changes, d.id, { type: "teardown-lease-lost", leaseId: d.teardownLease!.id }, at));
          }
        });
      }
      const revisions = Object.values(store.state.revisions).filter((r) => r.lease && !isFinal(r) && isLost(r.lease));
      for (const revision of revisions) {
        log.warn({ revision: revision.id, listener: revision.lease!.listenerId }, "lease lost: the listener stopped answering");
        await lifecycle.loseLease(revision.id, revision.lease!.id, reason);
      }
    },

    async crashLoop(report) {
      const result = await transact((state, changes, effects, at) =>
        applyRevisionEvent(state, changes, report.revisionId, { type: "crash-loop", listenerId: report.listenerId, message: report.message }, at),
      );
      if (result.ok) log.warn({ revision: report.revisionId }, "a running revision kept crashing and was left stopped");
    },

    async move(deploymentId, move) {
      const moved = await transact((state, changes, effects, at) => collect(effects, applyDeploymentEvent(state, changes, deploymentId, { type: "move", ...move }, at)));
      if (moved.ok) log.info({ deployment: deploymentId, to: move.to ?? "any listener", by: move.by }, "deployment moved");
      return moved.ok;
    },

    async releaseListener(listenerId, by) {
      await lifecycle.expireLeases((lease) => lease.listenerId === listenerId, `The listener ${listenerId} was revoked`);
      const bound = Object.values(store.state.deployments).filter((d) => d.placement?.listenerId === listenerId);
      for (const deployment of bound) await lifecycle.move(deployment.id, { by });
    },

    lock: (deploymentId, lock) => transact((state, changes, effects, at) => takeLock(state, deploymentId, lock, (id, event) => applyRevisionEvent(state, changes, id, event, at))),
    unlock: (deploymentId) =>
      transact((state, changes, effects, at) => {
        effects.push({ type: "wake-listeners" });
        return releaseLock(state, deploymentId, (id, event) => applyRevisionEvent(state, changes, id, event, at));
      }),

    async noteWaiting(why) {
      const notes = new Map<string, string | undefined>();
      for (const revision of Object.values(store.state.revisions)) {
        if (revision.state !== "QUEUED" || revision.lease) continue;
        const deployment = store.state.deployments[revision.deploymentId];
        const note = deployment && why(revision, deployment);
        if (note !== revision.waitingFor) notes.set(revision.id, note);
      }
      if (notes.size === 0) return;
      await transact((state, changes, effects, at) => {
        for (const [revisionId, note] of notes) applyRevisionEvent(state, changes, revisionId, { type: "wait", note }, at);
      });
    },
  };
  return lifecycle;
}
