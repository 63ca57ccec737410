import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import {
  ACTIVE_STATES,
  FINAL_STATES,
  type Deployment,
  type Lease,
  type Phase,
  type Revision,
  type RevisionState,
  type StateDocument,
} from "../store/model.js";
import type { ListenerSandboxes } from "./listener-sandboxes.js";
import type { StateStore } from "../store/open-state-store.js";
import type { SecretBox } from "../store/secret-box.js";
import type {
  CompleteRequest,
  CrashReport,
  HeartbeatResponse,
  RunningRevision,
  ProgressReport,
  RevisionWork,
  TeardownWork,
  Work,
  WorkEvent,
} from "../protocol/listener-protocol.js";
import type { RevisionLogs } from "./revision-logs.js";

export interface SourceToken {
  token: string;
  expiresAt: string;
}

export interface WorkQueueOptions {
  store: StateStore;
  logs: RevisionLogs;
  secrets: SecretBox;
  /** A read-only token for one repository, for a lease (see github/source-tokens.ts). */
  mintSourceToken(installationId: number, repositoryName: string): Promise<SourceToken>;
  /** A listener reported an infrastructure fault (a source it could not fetch, say) for this repository. */
  onInfrastructureFault?(installationId: number, repositoryName: string): void;
  /** Base of GitHub's REST API, e.g. https://api.github.com. */
  apiBaseUrl: string;
  /** Called after every change of a revision, so GitHub can be told. */
  onRevisionChanged(revisionId: string): void;
  /** Called when a deployment was torn down. */
  onDeploymentDeleted?(deploymentId: string): void;
  log: Logger;
  leaseTtlSeconds?: number;
  /** Lease attempts before a revision whose listener keeps vanishing is INTERRUPTED. */
  maxAttempts?: number;
  /** What each listener builds in: a fork's revision goes only to one that may build it. */
  sandboxes?: ListenerSandboxes;
}

export type LeaseLost = "lease-lost";

export interface WorkQueue {
  /** Hands out the oldest runnable revision, waiting up to `waitSeconds` for one. */
  lease(listenerId: string, waitSeconds: number, signal?: AbortSignal): Promise<Work | undefined>;
  heartbeat(leaseId: string, report: ProgressReport): Promise<HeartbeatResponse | LeaseLost>;
  complete(leaseId: string, request: CompleteRequest): Promise<"ok" | LeaseLost>;
  /** The active revision of each environment this listener deployed and runs (for a restarted listener). */
  running(listenerId: string): RunningRevision[];
  /** A running revision kept crashing and was left stopped. */
  crashed(report: CrashReport): Promise<void>;
  /** Cancels a queued revision at once, or asks its listener to stop. */
  cancel(revisionId: string, reason: string): Promise<void>;
  /** New work may be runnable: answer waiting listeners. */
  wake(): void;
  /** Gives the work of listeners that stopped heartbeating back to the queue (or ends it). */
  expireLeases(now?: Date): Promise<void>;
  /** The same, at once, for leases of listeners known to be gone (the previous process's embedded one). */
  expireLeasesOf(isGone: (listenerId: string) => boolean): Promise<void>;
}

const PHASE_STATES: Record<Phase["name"], RevisionState> = {
  database: "CREATING_DATABASE",
  build: "BUILDING",
  deploy: "DEPLOYING",
};

/**
 * The control plane's side of the listener protocol: leases with a TTL renewed by
 * heartbeats, progress applied to the store, one build per deployment at a time.
 */
export function createWorkQueue(options: WorkQueueOptions): WorkQueue {
  const { store, logs, log } = options;
  const leaseTtlSeconds = options.leaseTtlSeconds ?? 30;
  const maxAttempts = options.maxAttempts ?? 3;
  let waiters: Array<() => void> = [];

  function nextRunnable(state: StateDocument, mayBuildForks: boolean): Revision | undefined {
    const busy = new Set(
      Object.values(state.revisions)
        .filter((r) => !FINAL_STATES.has(r.state) && (r.lease || ACTIVE_STATES.has(r.state)))
        .map((r) => r.deploymentId),
    );
    return Object.values(state.revisions)
      .filter((r) => r.state === "QUEUED" && !r.lease && !busy.has(r.deploymentId))
      .filter((r) => state.deployments[r.deploymentId]?.state !== "AWAITING_DELETE")
      .filter((r) => mayBuildForks || !state.deployments[r.deploymentId]?.pullRequest?.fork)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))[0];
  }

  function byLease(leaseId: string): Revision | undefined {
    return Object.values(store.state.revisions).find((r) => r.lease?.id === leaseId);
  }

  function teardownByLease(leaseId: string): Deployment | undefined {
    return Object.values(store.state.deployments).find((d) => d.teardownLease?.id === leaseId);
  }

  /** A closed preview whose work has stopped, ready to have its database dropped. */
  function nextTeardown(state: StateDocument, now: number): Deployment | undefined {
    const busy = new Set(
      Object.values(state.revisions)
        .filter((r) => !FINAL_STATES.has(r.state) && (r.lease || ACTIVE_STATES.has(r.state)))
        .map((r) => r.deploymentId),
    );
    return Object.values(state.deployments).find(
      (d) =>
        d.state === "AWAITING_DELETE" &&
        !d.teardownLease &&
        !busy.has(d.id) &&
        (!d.teardownRetryAt || Date.parse(d.teardownRetryAt) <= now),
    );
  }

  async function tryTeardown(listenerId: string): Promise<TeardownWork | undefined> {
    const result = await store.update((state) => {
      const deployment = nextTeardown(state, Date.now());
      if (!deployment) return undefined;
      if (!deployment.database) {
        // Nothing was provisioned: nothing for a listener to do.
        markDeleted(state, deployment);
        return { kind: "deleted" as const, id: deployment.id };
      }
      deployment.teardownLease = {
        id: randomUUID(),
        listenerId,
        attempt: 1,
        expiresAt: new Date(Date.now() + leaseTtlSeconds * 1000).toISOString(),
      };
      return { kind: "leased" as const, deployment: structuredClone(deployment) };
    });
    if (!result) return undefined;
    if (result.kind === "deleted") {
      options.onDeploymentDeleted?.(result.id);
      return tryTeardown(listenerId);
    }
    const { deployment } = result;
    log.info({ environment: deployment.environment, listener: listenerId }, "teardown leased");
    return {
      kind: "teardown",
      leaseId: deployment.teardownLease!.id,
      leaseTtlSeconds,
      deployment: {
        id: deployment.id,
        environment: deployment.environment,
        installationId: deployment.installationId,
        repository: deployment.repository.fullName,
      },
    };
  }

  function markDeleted(state: StateDocument, deployment: Deployment) {
    const at = new Date().toISOString();
    deployment.database = undefined;
    deployment.teardownLease = undefined;
    deployment.teardownRetryAt = undefined;
    deployment.teardownError = undefined;
    deployment.updatedAt = at;
    // A preview reopened and deployed again while it was torn down starts afresh.
    const waiting = Object.values(state.revisions).some((r) => r.deploymentId === deployment.id && !FINAL_STATES.has(r.state));
    deployment.state = waiting ? "AWAITING_DATABASE" : "DELETED";
  }

  async function tryLease(listenerId: string): Promise<RevisionWork | undefined> {
    const sandbox = options.sandboxes?.reportOf(listenerId);
    const leased = await store.update((state) => {
      const revision = nextRunnable(state, options.sandboxes?.mayBuildForks(listenerId) ?? true);
      if (!revision) return undefined;
      if (sandbox) revision.sandbox = sandbox.kind;
      revision.attempts += 1;
      revision.lease = {
        id: randomUUID(),
        listenerId,
        attempt: revision.attempts,
        expiresAt: new Date(Date.now() + leaseTtlSeconds * 1000).toISOString(),
      };
      revision.updatedAt = new Date().toISOString();
      return structuredClone(revision);
    });
    if (!leased) return undefined;
    const deployment = store.state.deployments[leased.deploymentId]!;
    const lease = leased.lease!;

    let source: SourceToken;
    try {
      source = await options.mintSourceToken(deployment.installationId, deployment.repository.name);
    } catch (error) {
      const message = `could not get a token to read ${deployment.repository.fullName}: ${(error as Error).message}`;
      log.warn({ revision: leased.id, attempt: lease.attempt }, message);
      await finishOrRequeue(leased.id, lease.id, message);
      return undefined;
    }

    log.info({ revision: leased.id, listener: listenerId, attempt: lease.attempt }, "revision leased");
    const { owner, name } = deployment.repository;
    return {
      kind: "revision",
      leaseId: lease.id,
      leaseTtlSeconds,
      attempt: lease.attempt,
      revision: { id: leased.id, number: leased.number, sha: leased.sha, ref: leased.ref },
      deployment: {
        id: deployment.id,
        environment: deployment.environment,
        installationId: deployment.installationId,
        repository: deployment.repository.fullName,
      },
      database: deployment.database
        ? { action: "connect", url: options.secrets.open(deployment.database.encryptedUrl) }
        : { action: "provision" },
      build: leased.build,
      run: leased.run,
      source: {
        tarballUrl: `${options.apiBaseUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/tarball/${leased.sha}`,
        token: source.token,
        expiresAt: source.expiresAt,
      },
    };
  }

  /** A lease that could not be used: back to the queue, or INTERRUPTED when attempts are spent. */
  async function finishOrRequeue(revisionId: string, leaseId: string, reason: string) {
    await store.update((state) => {
      const revision = state.revisions[revisionId];
      if (!revision || revision.lease?.id !== leaseId || FINAL_STATES.has(revision.state)) return;
      const at = new Date().toISOString();
      for (const phase of revision.phases) {
        if (!phase.finishedAt) Object.assign(phase, { finishedAt: at, outcome: "failed", note: "listener lost" });
      }
      revision.updatedAt = at;
      if (revision.attempts >= maxAttempts) {
        revision.state = "INTERRUPTED";
        revision.error = `${reason} (after ${revision.attempts} attempts)`;
        revision.infrastructureFault = true;
        revision.finishedAt = at;
      } else {
        revision.state = "QUEUED";
        revision.lease = undefined;
      }
    });
    options.onRevisionChanged(revisionId);
    queue.wake();
  }

  function applyEvents(state: StateDocument, revision: Revision, events: WorkEvent[]) {
    const deployment = state.deployments[revision.deploymentId];
    for (const event of events) {
      if (event.type === "phase_started") {
        if (revision.phases.some((p) => p.name === event.phase && !p.finishedAt)) continue; // repeated report
        revision.phases.push({ name: event.phase, startedAt: event.at });
        revision.state = PHASE_STATES[event.phase];
      } else {
        const phase = revision.phases.find((p) => p.name === event.phase && !p.finishedAt);
        if (!phase) continue;
        Object.assign(phase, { finishedAt: event.at, outcome: event.outcome, note: event.note });
        if (event.database && deployment) {
          deployment.database = {
            name: event.database.name,
            encryptedUrl: options.secrets.seal(event.database.url),
            createdAt: event.at,
          };
          // A late report must not revive a deployment that is being torn down.
          if (deployment.state === "AWAITING_DATABASE") deployment.state = "READY";
          deployment.updatedAt = event.at;
        }
      }
    }
  }

  async function applyReport(revisionId: string, report: ProgressReport) {
    if (report.log && report.log.text.length > 0) await logs.append(revisionId, report.log.offset, report.log.text);
  }

  const queue: WorkQueue = {
    async lease(listenerId, waitSeconds, signal) {
      const deadline = Date.now() + waitSeconds * 1000;
      for (;;) {
        const work = (await tryTeardown(listenerId)) ?? (await tryLease(listenerId));
        if (work || signal?.aborted || Date.now() >= deadline) return work;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
          signal?.addEventListener("abort", done, { once: true });
          waiters.push(done);
          function done() {
            clearTimeout(timer);
            resolve();
          }
        });
      }
    },

    async heartbeat(leaseId, report) {
      const teardown = teardownByLease(leaseId);
      if (teardown) {
        const expiresAt = new Date(Date.now() + leaseTtlSeconds * 1000).toISOString();
        await store.update((state) => {
          const lease = state.deployments[teardown.id]?.teardownLease;
          if (lease) lease.expiresAt = expiresAt;
        });
        return { cancel: false, leaseExpiresAt: expiresAt };
      }
      const revision = byLease(leaseId);
      if (!revision || FINAL_STATES.has(revision.state) || Date.parse(revision.lease!.expiresAt) < Date.now()) {
        return "lease-lost";
      }
      await applyReport(revision.id, report);
      const expiresAt = new Date(Date.now() + leaseTtlSeconds * 1000).toISOString();
      const changed = await store.update((state) => {
        const r = state.revisions[revision.id]!;
        const before = `${r.state}/${r.phases.length}/${r.phases.filter((p) => p.finishedAt).length}`;
        applyEvents(state, r, report.events);
        r.lease!.expiresAt = expiresAt;
        const after = `${r.state}/${r.phases.length}/${r.phases.filter((p) => p.finishedAt).length}`;
        if (before !== after) r.updatedAt = new Date().toISOString();
        return before !== after;
      });
      if (changed) options.onRevisionChanged(revision.id);
      return { cancel: Boolean(store.state.revisions[revision.id]?.cancelRequested), leaseExpiresAt: expiresAt };
    },

    async complete(leaseId, request) {
      const teardown = teardownByLease(leaseId);
      if (teardown) {
        const failed = request.outcome !== "DELETED";
        await store.update((state) => {
          const d = state.deployments[teardown.id]!;
          if (failed) {
            d.teardownLease = undefined;
            d.teardownError = request.error ?? "teardown failed";
            d.teardownRetryAt = new Date(Date.now() + 30_000).toISOString();
          } else markDeleted(state, d);
        });
        if (failed) log.warn({ environment: teardown.environment, error: request.error }, "teardown failed; will retry");
        else {
          log.info({ environment: teardown.environment }, "deployment torn down");
          options.onDeploymentDeleted?.(teardown.id);
        }
        queue.wake();
        return "ok";
      }
      const revision = byLease(leaseId);
      if (!revision) return "lease-lost";
      if (request.outcome === "DELETED" || request.outcome === "TEARDOWN_FAILED") return "lease-lost";
      if (FINAL_STATES.has(revision.state)) return revision.state === request.outcome ? "ok" : "lease-lost";
      await applyReport(revision.id, request);
      if (request.outcome === "RELEASED") {
        await store.update((state) => {
          const r = state.revisions[revision.id]!;
          applyEvents(state, r, request.events);
          const at = new Date().toISOString();
          for (const phase of r.phases) {
            if (!phase.finishedAt) Object.assign(phase, { finishedAt: at, outcome: "failed", note: "listener stopped" });
          }
          // Handing back is not a failed attempt.
          Object.assign(r, { state: "QUEUED", lease: undefined, attempts: Math.max(0, r.attempts - 1), updatedAt: at });
        });
        log.info({ revision: revision.id }, "work handed back by a stopping listener");
        options.onRevisionChanged(revision.id);
        queue.wake();
        return "ok";
      }
      await store.update((state) => {
        const r = state.revisions[revision.id]!;
        applyEvents(state, r, request.events);
        const at = new Date().toISOString();
        for (const phase of r.phases) {
          if (!phase.finishedAt) Object.assign(phase, { finishedAt: at, outcome: request.outcome === "CANCELLED" ? "cancelled" : "failed" });
        }
        r.state = request.outcome as Revision["state"];
        r.error = request.error;
        if (request.outcome === "DEPLOYED" && request.environmentUrl) r.environmentUrl = request.environmentUrl;
        r.infrastructureFault = request.infrastructureFault || undefined;
        r.updatedAt = at;
        r.finishedAt = at;
      });
      log.info({ revision: revision.id, outcome: request.outcome }, "revision finished");
      if (request.infrastructureFault) {
        const deployment = store.state.deployments[revision.deploymentId];
        if (deployment) options.onInfrastructureFault?.(deployment.installationId, deployment.repository.name);
      }
      options.onRevisionChanged(revision.id);
      queue.wake(); // the deployment is free for its next revision
      return "ok";
    },

    running(listenerId) {
      const result: RunningRevision[] = [];
      for (const deployment of Object.values(store.state.deployments)) {
        if (deployment.state !== "READY") continue;
        const active = Object.values(store.state.revisions)
          .filter((r) => r.deploymentId === deployment.id && r.state === "DEPLOYED")
          .sort((a, b) => b.number - a.number)[0];
        if (!active?.run || active.lease?.listenerId !== listenerId || active.runtimeError) continue;
        result.push({
          deployment: {
            id: deployment.id,
            environment: deployment.environment,
            installationId: deployment.installationId,
            repository: deployment.repository.fullName,
          },
          revision: { id: active.id, sha: active.sha, ref: active.ref },
          build: active.build,
          run: active.run,
          databaseUrl: deployment.database && options.secrets.open(deployment.database.encryptedUrl),
        });
      }
      return result;
    },

    async crashed(report) {
      const revision = store.state.revisions[report.revisionId];
      if (!revision || revision.lease?.listenerId !== report.listenerId) return;
      await store.update((state) => {
        const r = state.revisions[report.revisionId];
        if (r) Object.assign(r, { runtimeError: report.message.slice(0, 500), updatedAt: new Date().toISOString() });
      });
      log.warn({ revision: report.revisionId }, "a running revision kept crashing and was left stopped");
      options.onRevisionChanged(report.revisionId);
    },

    async cancel(revisionId, reason) {
      const cancelledNow = await store.update((state) => {
        const revision = state.revisions[revisionId];
        if (!revision || FINAL_STATES.has(revision.state)) return false;
        if (revision.state === "QUEUED" && !revision.lease) {
          const at = new Date().toISOString();
          Object.assign(revision, { state: "CANCELLED", error: reason, updatedAt: at, finishedAt: at });
          return true;
        }
        revision.cancelRequested = true;
        return false;
      });
      if (cancelledNow) options.onRevisionChanged(revisionId);
    },

    wake() {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },

    async expireLeasesOf(isGone) {
      await expire((lease) => isGone(lease.listenerId));
    },

    async expireLeases(now = new Date()) {
      await expire((lease) => Date.parse(lease.expiresAt) < now.getTime());
    },
  };

  async function expire(isExpired: (lease: Lease) => boolean) {
    const lostTeardowns = Object.values(store.state.deployments).filter((d) => d.teardownLease && isExpired(d.teardownLease));
    if (lostTeardowns.length > 0) {
      await store.update((state) => {
        for (const d of lostTeardowns) state.deployments[d.id]!.teardownLease = undefined;
      });
      queue.wake();
    }
    const expired = Object.values(store.state.revisions).filter((r) => r.lease && !FINAL_STATES.has(r.state) && isExpired(r.lease));
    for (const revision of expired) {
      log.warn({ revision: revision.id, listener: revision.lease!.listenerId }, "lease expired: the listener stopped answering");
      await finishOrRequeue(revision.id, revision.lease!.id, "The listener working on it stopped answering");
    }
  }

  return queue;
}
