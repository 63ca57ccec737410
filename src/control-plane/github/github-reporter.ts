import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import { backoffDelay } from "../../backoff.js";
import { DEFAULT_KEEP_BUILDS, newestRevisionOf, revisionsOf, rollbackRefusal } from "../../revisions/selectors.js";
import { isFinal, isPreviewEnvironment, type Deployment, type Revision } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import type { StoreChange } from "../../store/store-changes.js";
import type { RevisionLogs } from "../revision-logs.js";
import {
  describeCheckRun,
  describeDeploymentStatus,
  logTailForCheckRun,
  signatureOf,
} from "./describe-revision.js";
import { commentSignature, describePullRequestComment, upsertPullRequestComment, type OwnApp } from "./pull-request-comment.js";
import { reactToComment } from "./pull-request-replies.js";

export interface GitHubReporter {
  /** Finds every revision whose GitHub view is behind its state and syncs it (start-up). */
  reconcile(): void;
  /**
   * Resolves once nothing is being sent or due now: what is left, if anything, waits for its
   * time (a paced progress update, a retry after a failure).
   */
  idle(): Promise<void>;
  close(): void;
}

export interface GitHubReporterOptions {
  store: StateStore;
  logs: RevisionLogs;
  getOctokit(installationId: number): Promise<ProbotOctokit>;
  publicUrl: string;
  log: Logger;
  /** At most one progress update per run this often; final states go out at once. */
  progressIntervalMs?: number;
  /** First retry delay after a failed write; doubles up to a minute. */
  retryBaseMs?: number;
  /**
   * The GitHub App's id (`APP_ID`): a pull request comment is adopted again (after a lost
   * create) only when this app wrote it. Default: the id the installation client signs its
   * app tokens with.
   */
  appId?: number;
  /** The app's slug: its bot `<slug>[bot]` also identifies Slipway's own comments. */
  appSlug?: string;
  /**
   * How long a new, queued revision's first report waits for a listener to take it
   * (default 500 ms): usually one does within milliseconds, and the check run then starts
   * out in progress, one write fewer than queued-then-in-progress.
   */
  queuedSettleMs?: number;
  /** `SLIPWAY_KEEP_BUILDS`: which older revisions offer "Roll back" (default 5). */
  keepBuilds?: number;
}

/** Why a revision's next sync waits: a new revision's settle window, GitHub's pacing, a retry after a failure. */
type Wait = "now" | "settle" | "paced" | "retry";

interface Pending {
  timer?: NodeJS.Timeout;
  wait?: Wait;
  running?: Promise<void>;
  again: boolean;
  failures: number;
}

/**
 * Brings GitHub in line with the store: a GitHub deployment, a deployment status and a
 * check run per revision. It subscribes to the store's change events; nobody calls it. The
 * store is the outbox: what GitHub should show is derived from the revision's state, and
 * what was last sent is recorded beside it, so nothing owed is lost across restarts
 * (`reconcile` at start), and only the newest state of each object is ever sent.
 */
export function createGitHubReporter(options: GitHubReporterOptions): GitHubReporter {
  const { store, logs, log, publicUrl } = options;
  const progressIntervalMs = options.progressIntervalMs ?? 3_000;
  const retryBaseMs = options.retryBaseMs ?? 1_000;
  const queuedSettleMs = options.queuedSettleMs ?? 500;
  const keepBuilds = options.keepBuilds ?? DEFAULT_KEEP_BUILDS;
  /** The check run as it should be now; "Roll back" depends on the deployment's other revisions. */
  const checkRunOf = (revision: Revision, deployment: Deployment) =>
    describeCheckRun(revision, deployment, { rollback: revision.state === "DEPLOYED" && !rollbackRefusal(store.state, revision, keepBuilds) });
  const pending = new Map<string, Pending>();
  const commentChains = new Map<string, Promise<void>>();
  const idleWaiters: Array<() => void> = [];
  let closed = false;

  function settleIdle() {
    const busy = [...pending.values()].some((p) => p.running || (p.timer && (p.wait === "now" || p.wait === "settle")));
    if (!busy) while (idleWaiters.length) idleWaiters.shift()!();
  }

  function schedule(revisionId: string, delayMs: number, wait: Wait = "now") {
    if (closed) return;
    const entry = pending.get(revisionId) ?? { again: false, failures: 0 };
    pending.set(revisionId, entry);
    if (entry.running) {
      entry.again = true;
      return;
    }
    if (entry.timer) clearTimeout(entry.timer);
    entry.wait = wait;
    entry.timer = setTimeout(() => run(revisionId, entry), delayMs);
  }

  function run(revisionId: string, entry: Pending) {
    entry.timer = undefined;
    entry.again = false;
    entry.running = (async () => {
      let retryInMs: number | undefined;
      let wait: Wait = "paced";
      try {
        retryInMs = await sync(revisionId);
        entry.failures = 0;
      } catch (error) {
        entry.failures += 1;
        wait = "retry";
        retryInMs = backoffDelay(entry.failures, { baseMs: retryBaseMs, maxMs: 60_000 });
        log.warn(
          { err: redact(error), revision: revisionId, retryInMs, failures: entry.failures },
          "GitHub update failed; will retry",
        );
      }
      entry.running = undefined;
      if (entry.again) schedule(revisionId, 0);
      else if (retryInMs !== undefined) schedule(revisionId, retryInMs, retryInMs === 0 ? "now" : wait);
      else pending.delete(revisionId);
      settleIdle();
    })();
  }

  /** Returns a delay after which to look again, or undefined when GitHub is up to date. */
  async function sync(revisionId: string): Promise<number | undefined> {
    const revision = store.state.revisions[revisionId];
    if (!revision) return undefined; // archived: only finished, synced revisions are archived
    const deployment = store.state.deployments[revision.deploymentId];
    if (!deployment) return undefined;

    const check = checkRunOf(revision, deployment);
    const status = describeDeploymentStatus(revision, deployment);
    const checkSignature = signatureOf(check);
    const statusSignature = signatureOf(status);
    const final = isFinal(revision);
    const neverDeployed = (revision.state === "SUPERSEDED" || revision.state === "CANCELLED") && !revision.github.deploymentId;
    const checkDue = revision.github.checkRunSent !== checkSignature;
    const statusDue = !neverDeployed && revision.github.deploymentStatusSent !== statusSignature;
    if (!checkDue && !statusDue && !deployment.pullRequest) return undefined;

    if (!final && revision.github.lastProgressAt) {
      const wait = Date.parse(revision.github.lastProgressAt) + progressIntervalMs - Date.now();
      if (wait > 0) return wait;
    }

    const octokit = await options.getOctokit(deployment.installationId);
    const repo = { owner: deployment.repository.owner, repo: deployment.repository.name };
    const revisionUrl = `${publicUrl}/revisions/${revision.id}`;
    const change = (fn: (r: Revision) => void) =>
      store.update((s) => {
        const r = s.revisions[revisionId];
        if (r) fn(r);
      });

    // Read the state again: it may have moved on while we waited for GitHub.
    const current = store.state.revisions[revisionId] ?? revision;
    // Decided before any write: `current` is the live record, and the writes below change it.
    const firstPass = !current.github.checkRunId;
    const view = checkRunOf(current, deployment);
    const output = {
      title: view.title,
      summary: view.summary,
      ...(view.wantsLogTail ? { text: logTailForCheckRun(await logs.tail(revisionId)) } : {}),
    };
    const checkBody = {
      name: view.name,
      details_url: revisionUrl,
      external_id: revision.id,
      status: view.status,
      ...(view.conclusion ? { conclusion: view.conclusion, completed_at: current.finishedAt } : {}),
      output,
      actions: view.actions,
    };

    if (current.github.checkRunSent !== signatureOf(view) || !current.github.checkRunId) {
      let checkRunId = current.github.checkRunId;
      if (!checkRunId && current.github.checkRunCreateAttempted) {
        checkRunId = await findCheckRun(octokit, repo, current, view.name);
        if (checkRunId) await change((r) => (r.github.checkRunId = checkRunId));
      }
      if (checkRunId) {
        await octokit.rest.checks.update({ ...repo, check_run_id: checkRunId, ...checkBody });
      } else {
        await change((r) => (r.github.checkRunCreateAttempted = true));
        const created = await octokit.rest.checks.create({ ...repo, head_sha: revision.sha, ...checkBody });
        checkRunId = created.data.id;
      }
      const id = checkRunId;
      await change((r) => {
        r.github.checkRunId = id;
        r.github.checkRunSent = signatureOf(view);
      });
    }

    // The check run goes first: it is what people watch, and GitHub paces an installation's
    // writes to one a second, so a fast build's completion must not queue behind the
    // deployment's writes. The deployment follows on the next pass (or at once when final).
    if (!neverDeployed && !current.github.deploymentId && (!firstPass || isFinal(current))) {
      const created = await octokit.rest.repos.createDeployment({
        ...repo,
        ref: revision.sha,
        environment: deployment.environment,
        auto_merge: false,
        required_contexts: [],
        transient_environment: isPreviewEnvironment(deployment.environment),
        production_environment: deployment.environment === "production",
        description: `Slipway revision ${revision.number}`,
        payload: { slipway_revision: revision.id },
      });
      if (!("id" in created.data)) throw new Error(`GitHub did not create the deployment: ${created.data.message}`);
      const deploymentId = created.data.id;
      await change((r) => (r.github.deploymentId = deploymentId));
    }

    // The same snapshot as the check run: a state reached meanwhile goes out in the next pass,
    // check run first, so the two never disagree for long.
    const latest = store.state.revisions[revisionId] ?? current;
    const statusView = describeDeploymentStatus(current, deployment);
    if (latest.github.deploymentId && latest.github.deploymentStatusSent !== signatureOf(statusView)) {
      await octokit.rest.repos.createDeploymentStatus({
        ...repo,
        deployment_id: latest.github.deploymentId,
        state: statusView.state,
        description: statusView.description,
        log_url: revisionUrl,
        ...(statusView.environmentUrl ? { environment_url: statusView.environmentUrl } : {}),
        ...(statusView.state === "success" ? { auto_inactive: !isPreviewEnvironment(deployment.environment) } : {}),
      });
      await change((r) => (r.github.deploymentStatusSent = signatureOf(statusView)));
    }

    if (deployment.pullRequest) await syncPreview(octokit, repo, deployment.id, revisionId);

    const after = store.state.revisions[revisionId];
    if (after && !isFinal(after)) await change((r) => (r.github.lastProgressAt = new Date().toISOString()));
    // If the state moved while we were sending, go again (coalesced by the interval).
    if (after && !neverDeployed && !after.github.deploymentId) return isFinal(after) ? 0 : progressIntervalMs;
    if (after && isBehind(after, deployment)) return isFinal(after) ? 0 : progressIntervalMs;
    return undefined;
  }

  /** The PR comment (one per pull request, for its newest revision) and the `/deploy` comment's reaction. */
  async function syncPreview(octokit: ProbotOctokit, repo: { owner: string; repo: string }, deploymentId: string, revisionId: string) {
    const previous = commentChains.get(deploymentId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(async () => {
      const deployment = store.state.deployments[deploymentId];
      const link = deployment?.pullRequest;
      if (!deployment || !link) return;
      const newest = newestRevisionOf(store.state, deploymentId);
      if (!newest) return;
      const failed = isFinal(newest) && newest.state !== "DEPLOYED";
      const body = describePullRequestComment({
        deployment,
        revision: newest,
        publicUrl,
        logTail: failed ? await logs.tail(newest.id, 16 * 1024) : undefined,
      });
      const signature = commentSignature(body);
      if (link.commentSent !== signature) {
        // Without a known id, an earlier comment is looked for: only Slipway's own may be adopted.
        const app = link.commentId ? undefined : await ownApp(octokit);
        const commentId = await upsertPullRequestComment({ octokit, ...repo, number: link.number, commentId: link.commentId, body, app });
        await store.update((s) => {
          const l = s.deployments[deploymentId]?.pullRequest;
          if (l) Object.assign(l, { commentId, commentSent: signature });
        });
      }
      const revision = store.state.revisions[revisionId];
      const reaction = revision && finalReaction(revision);
      if (revision?.trigger.commentId && reaction && !revision.github.reactionSent) {
        await reactToComment({ octokit, repository: deployment.repository, commentId: revision.trigger.commentId, content: reaction });
        await store.update((s) => {
          const r = s.revisions[revisionId];
          if (r) r.github.reactionSent = true;
        });
      }
    });
    commentChains.set(deploymentId, next);
    await next;
  }

  /** Slipway's own app: the configured id, else the one its installation client signs app tokens with (no request). */
  async function ownApp(octokit: ProbotOctokit): Promise<OwnApp> {
    if (options.appId !== undefined) return { id: options.appId, slug: options.appSlug };
    const auth = (await (octokit.auth as (options: { type: "app" }) => Promise<unknown>)({ type: "app" }).catch(() => undefined)) as { appId?: unknown } | undefined;
    return { id: typeof auth?.appId === "number" ? auth.appId : undefined, slug: options.appSlug };
  }

  function notify(revisionId: string) {
    const revision = store.state.revisions[revisionId];
    const fresh = revision?.state === "QUEUED" && !revision.github.checkRunId && !revision.github.checkRunCreateAttempted;
    // A new revision waits a moment for a listener to start it (its lease alone changes
    // nothing to wait for); any later change runs at once.
    if (fresh && pending.get(revisionId)?.timer) return;
    schedule(revisionId, fresh ? queuedSettleMs : 0, fresh ? "settle" : "now");
  }

  function isBehind(revision: Revision, deployment: Deployment): boolean {
    return (
      revision.github.checkRunSent !== signatureOf(checkRunOf(revision, deployment)) ||
      (revision.github.deploymentId !== undefined &&
        revision.github.deploymentStatusSent !== signatureOf(describeDeploymentStatus(revision, deployment)))
    );
  }

  function onChange(change: StoreChange) {
    if (change.kind === "revision") return notify(change.id);
    // A preview closed or removed: its deployments become inactive, its comment says so.
    const deployment = store.state.deployments[change.id];
    if (!deployment) return;
    const newest = newestRevisionOf(store.state, change.id);
    for (const revision of revisionsOf(store.state, change.id)) {
      if (revision === newest || isBehind(revision, deployment)) notify(revision.id);
    }
  }
  const unsubscribe = store.subscribe(onChange);

  return {
    reconcile() {
      for (const revision of Object.values(store.state.revisions)) {
        const deployment = store.state.deployments[revision.deploymentId];
        if (deployment && isBehind(revision, deployment)) schedule(revision.id, 0);
      }
    },
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIdle();
      });
    },
    close() {
      closed = true;
      unsubscribe();
      for (const entry of pending.values()) if (entry.timer) clearTimeout(entry.timer);
      pending.clear();
      settleIdle();
    },
  };
}

function finalReaction(revision: Revision): "rocket" | "confused" | undefined {
  if (revision.state === "DEPLOYED") return "rocket";
  if (["DATABASE_FAILED", "BUILD_FAILED", "DEPLOY_FAILED", "INTERRUPTED"].includes(revision.state)) return "confused";
  return undefined;
}

/** After a create whose answer was lost, the check run may exist: find it by external_id. */
async function findCheckRun(
  octokit: ProbotOctokit,
  repo: { owner: string; repo: string },
  revision: Revision,
  name: string,
): Promise<number | undefined> {
  const runs = await octokit.paginate(octokit.rest.checks.listForRef, {
    ...repo,
    ref: revision.sha,
    check_name: name,
    filter: "all",
    per_page: 100,
  });
  return runs.find((run) => run.external_id === revision.id)?.id;
}

/** Octokit errors carry the request, headers included; log only what helps. */
function redact(error: unknown) {
  const e = error as { name?: string; message?: string; status?: number };
  return { name: e.name, message: e.message, status: e.status };
}
