import type { Logger } from "pino";
import type { Lifecycle, LeaseLost } from "../revisions/lifecycle.js";
import { activeRevisionOf, revisionByLease } from "../revisions/selectors.js";
import { DEFAULT_POOL, type Deployment, type Revision } from "../store/model.js";
import type { StateStore } from "../store/open-state-store.js";
import type { SecretBox } from "../store/secret-box.js";
import type {
  CompleteRequest,
  CrashReport,
  HeartbeatResponse,
  RevisionSettings,
  ProgressReport,
  RevisionWork,
  RunningRevision,
  TeardownWork,
  Work,
} from "../protocol/listener-protocol.js";
import type { ListenerPresence } from "./listener-presence.js";
import type { RevisionLogs } from "./revision-logs.js";

export interface SourceToken {
  token: string;
  expiresAt: string;
}

export interface WorkQueueOptions {
  store: StateStore;
  lifecycle: Lifecycle;
  logs: RevisionLogs;
  secrets: SecretBox;
  /** A read-only token for one repository, for a lease (see github/source-tokens.ts). */
  mintSourceToken(installationId: number, repositoryName: string): Promise<SourceToken>;
  /** Base of GitHub's REST API, e.g. https://api.github.com. */
  apiBaseUrl: string;
  log: Logger;
  leaseTtlSeconds?: number;
  /**
   * The GitHub environment's variables and Slipway's secrets for a revision's build and run,
   * read at lease time (a change takes effect on the next revision); `notes` (a permission
   * missing) go into its check run. Throwing gives the lease back, as a failed token mint does.
   */
  revisionSettings?(deployment: Deployment): Promise<RevisionSettings & { notes: string[] }>;
  /** What each listener builds in and its pool: a fork's revision goes only to one that may build it, an environment's only to its pool. */
  presence?: ListenerPresence;
}

export type { LeaseLost };
/** The lease is held by another listener than the one asking. */
export type NotYours = "not-yours";

export interface WorkQueue {
  /** Hands out the next work (a teardown, else the oldest runnable revision), waiting up to `waitSeconds` for some. */
  lease(listenerId: string, waitSeconds: number, signal?: AbortSignal): Promise<Work | undefined>;
  /** `listenerId`: who asks (from its credential); another listener's lease is not touched. */
  heartbeat(listenerId: string, leaseId: string, report: ProgressReport): Promise<HeartbeatResponse | LeaseLost | NotYours>;
  complete(listenerId: string, leaseId: string, request: CompleteRequest): Promise<"ok" | LeaseLost | NotYours>;
  /** The active revision of each environment this listener deployed and still holds (for a restarted listener). */
  running(listenerId: string): Promise<RunningRevision[]>;
  /** A running revision kept crashing and was left stopped. */
  crashed(report: CrashReport): Promise<void>;
  /** New work may be leasable: answer waiting listeners. */
  wake(): void;
  /** Gives the work of listeners that stopped heartbeating back to the queue (or ends it). */
  expireLeases(now?: Date): Promise<void>;
  /** The same, at once, for leases of listeners known to be gone (the previous process's embedded one). */
  expireLeasesOf(isGone: (listenerId: string) => boolean): Promise<void>;
}

/**
 * The control plane's side of the listener protocol: long-polled leases with a TTL renewed
 * by heartbeats, and what a listener needs to do the work (a source token, the database
 * URL). Every state change goes through the lifecycle (src/revisions).
 */
export function createWorkQueue(options: WorkQueueOptions): WorkQueue {
  const { store, lifecycle, logs, log } = options;
  const leaseTtlSeconds = options.leaseTtlSeconds ?? 30;
  const ttlMs = leaseTtlSeconds * 1000;
  let waiters: Array<() => void> = [];

  const describeDeployment = (deployment: Deployment) => ({
    id: deployment.id,
    environment: deployment.environment,
    installationId: deployment.installationId,
    repository: deployment.repository.fullName,
  });

  /**
   * The next work for this listener, if any. When its work order cannot be made (GitHub did
   * not answer for the token or the settings), the lease is lost and this answers nothing:
   * the revision waits for the next wake or poll rather than burning its attempts at once.
   */
  async function tryLease(listenerId: string): Promise<Work | undefined> {
    const taker = { listenerId, pool: options.presence?.poolOf(listenerId) ?? DEFAULT_POOL, mayBuildForks: options.presence?.mayBuildForks(listenerId) ?? true };
    const leased = await lifecycle.leaseNext(taker, { ttlMs, sandbox: options.presence?.reportOf(listenerId).kind });
    if (!leased) return undefined;
    if (leased.kind === "teardown") {
      log.info({ environment: leased.deployment.environment, listener: listenerId }, "teardown leased");
      const teardown: TeardownWork = {
        kind: "teardown",
        leaseId: leased.deployment.teardownLease!.id,
        leaseTtlSeconds,
        deployment: describeDeployment(leased.deployment),
      };
      return teardown;
    }
    const work = await revisionWork(leased.revision, leased.deployment);
    if (work) log.info({ revision: leased.revision.id, listener: listenerId, attempt: work.attempt }, "revision leased");
    return work;
  }

  /** The lease's work order; undefined (and the lease lost) when no source token or settings could be had. */
  async function revisionWork(revision: Revision, deployment: Deployment): Promise<RevisionWork | undefined> {
    const lease = revision.lease!;
    let source: SourceToken;
    let settings: (RevisionSettings & { notes: string[] }) | undefined;
    try {
      [source, settings] = await Promise.all([
        options.mintSourceToken(deployment.installationId, deployment.repository.name),
        options.revisionSettings?.(deployment),
      ]);
    } catch (error) {
      const message = `could not get what ${deployment.repository.fullName} needs from GitHub: ${(error as Error).message}`;
      log.warn({ revision: revision.id, attempt: lease.attempt }, message);
      await lifecycle.loseLease(revision.id, lease.id, message);
      return undefined;
    }
    if (settings && settings.notes.join("\n") !== (revision.notes ?? []).join("\n")) await lifecycle.note(revision.id, lease.id, settings.notes);
    const { owner, name } = deployment.repository;
    return {
      kind: "revision",
      leaseId: lease.id,
      leaseTtlSeconds,
      attempt: lease.attempt,
      revision: { id: revision.id, number: revision.number, sha: revision.sha, ref: revision.ref },
      deployment: describeDeployment(deployment),
      database: deployment.database
        ? { action: "connect", url: options.secrets.open(deployment.database.encryptedUrl) }
        : { action: "provision" },
      build: revision.build,
      run: revision.run,
      settings: settings && { variables: settings.variables, secrets: settings.secrets },
      ...(revision.buildOf ? { reuseBuildOf: revision.buildOf, reuseFor: revision.trigger.kind === "rollback" ? "rollback" : "restart" } : {}),
      source: {
        tarballUrl: `${options.apiBaseUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/tarball/${revision.sha}`,
        token: source.token,
        expiresAt: source.expiresAt,
      },
    };
  }

  /** The listener holding a lease (a revision's or a teardown's), if the lease is current. */
  function holderOf(leaseId: string): string | undefined {
    const revision = revisionByLease(store.state, leaseId);
    if (revision) return revision.lease!.listenerId;
    return Object.values(store.state.deployments).find((d) => d.teardownLease?.id === leaseId)?.teardownLease!.listenerId;
  }

  /** Log text comes with heartbeats and the completion; its offset makes a retried report harmless. */
  async function appendLog(leaseId: string, report: ProgressReport) {
    if (!report.log || report.log.text.length === 0) return;
    const revision = revisionByLease(store.state, leaseId);
    if (revision) await logs.append(revision.id, report.log.offset, report.log.text);
  }

  const queue: WorkQueue = {
    async lease(listenerId, waitSeconds, signal) {
      const deadline = Date.now() + waitSeconds * 1000;
      for (;;) {
        const work = await tryLease(listenerId);
        if (work || signal?.aborted || Date.now() >= deadline) return work;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
          signal?.addEventListener("abort", done, { once: true });
          waiters.push(done);
          function done() {
            clearTimeout(timer);
            // One long poll waits many times (each wake that brings it nothing): leave no listener behind on its signal.
            signal?.removeEventListener("abort", done);
            resolve();
          }
        });
      }
    },

    async heartbeat(listenerId, leaseId, report) {
      if (holderOf(leaseId) !== listenerId) return holderOf(leaseId) === undefined ? "lease-lost" : "not-yours";
      const result = await lifecycle.heartbeat(leaseId, report.events, ttlMs);
      if (result !== "lease-lost") await appendLog(leaseId, report);
      return result;
    },

    async complete(listenerId, leaseId, request) {
      if (holderOf(leaseId) !== listenerId) return holderOf(leaseId) === undefined ? "lease-lost" : "not-yours";
      await appendLog(leaseId, request);
      return lifecycle.complete(leaseId, request);
    },

    async running(listenerId) {
      const result: RunningRevision[] = [];
      for (const deployment of Object.values(store.state.deployments)) {
        if (deployment.state !== "READY") continue;
        const active = activeRevisionOf(store.state, deployment.id);
        if (!active?.run || active.lease?.listenerId !== listenerId || active.runtimeError) continue;
        // Moved to another listener (or revoked off this one): no longer this listener's to run.
        if (deployment.placement ? deployment.placement.listenerId !== listenerId : deployment.moved) continue;
        result.push({
          deployment: describeDeployment(deployment),
          revision: { id: active.id, sha: active.sha, ref: active.ref, ...(active.buildOf ? { buildOf: active.buildOf } : {}) },
          build: active.build,
          run: active.run,
          databaseUrl: deployment.database && options.secrets.open(deployment.database.encryptedUrl),
        });
      }
      if (!options.revisionSettings) return result;
      // Started again with today's variables and secrets, as a new revision would be.
      return Promise.all(
        result.map(async (item) => {
          const { variables, secrets } = await options.revisionSettings!(store.state.deployments[item.deployment.id]!);
          return { ...item, settings: { variables, secrets } };
        }),
      );
    },

    crashed: (report) => lifecycle.crashLoop(report),

    wake() {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },

    expireLeasesOf: (isGone) => lifecycle.expireLeases((lease) => isGone(lease.listenerId), "The listener working on it stopped answering"),

    expireLeases: (now = new Date()) =>
      lifecycle.expireLeases((lease) => Date.parse(lease.expiresAt) < now.getTime(), "The listener working on it stopped answering"),
  };
  return queue;
}
