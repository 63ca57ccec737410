import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import type { Lifecycle } from "../revisions/lifecycle.js";
import { isTornDown, type Deployment, type StateDocument } from "../store/model.js";
import type { StateStore } from "../store/open-state-store.js";
import { pullRequestKey } from "./commands/pull-request-heads.js";
import type { RepoConfigCache } from "./repo-config.js";

const DAY_MS = 24 * 60 * 60 * 1000;
/** The smallest `previews.expire_after_days`: a preview idle for less is kept without reading its repository's config. */
const MIN_EXPIRY_DAYS = 1;

export interface PreviewExpiryOptions {
  store: StateStore;
  lifecycle: Lifecycle;
  /** Where `previews.expire_after_days` is read (the default branch's `.github/slipway.yml`, cached). */
  configs: RepoConfigCache;
  getOctokit(installationId: number): Promise<ProbotOctokit>;
  log: Logger;
}

export interface PreviewExpiry {
  /** Tears down every live preview idle longer than its repository allows; returns the ids of the deployments it closed. */
  check(now?: number): Promise<string[]>;
}

/**
 * When a preview last saw activity: its newest revision (each `/deploy`, and each new commit
 * that updated it, makes one) or a new head of its pull request (new commits that made no
 * revision: `auto_update` off, or a fork waiting for a maintainer). Milliseconds since the epoch.
 */
export function lastActivityOf(state: Readonly<StateDocument>, deployment: Deployment, newestRevisionAt?: number): number {
  let latest = Math.max(Date.parse(deployment.createdAt), newestRevisionAt ?? 0);
  if (newestRevisionAt === undefined) {
    for (const revision of Object.values(state.revisions)) {
      if (revision.deploymentId === deployment.id) latest = Math.max(latest, Date.parse(revision.createdAt));
    }
  }
  const link = deployment.pullRequest;
  const record = link && state.pullRequests?.[pullRequestKey(deployment.installationId, deployment.repository.id, link.number)];
  for (const head of record?.heads ?? []) if (head.changed) latest = Math.max(latest, Date.parse(head.seenAt));
  return latest;
}

/**
 * `previews.expire_after_days`: a timer of the control plane (hourly, and once at start)
 * tears down previews whose pull request saw no new commit and no `/deploy` for that long,
 * through the same path as a closed pull request (lifecycle.closePreview), marked `expired`
 * so the pull request comment says why and how to bring the preview back.
 *
 * GitHub is asked only about repositories with a live preview idle for at least a day (the
 * smallest setting), once per repository per check, through the config cache.
 *
 * @example
 * ```ts
 * const expiry = createPreviewExpiry({ store, lifecycle, configs, getOctokit, log });
 * const closed = await expiry.check(Date.parse("2025-01-09T00:00:00Z"));
 * ```
 */
export function createPreviewExpiry(options: PreviewExpiryOptions): PreviewExpiry {
  const { store, lifecycle, configs, log } = options;
  let running: Promise<string[]> | undefined;

  /** Live previews idle at least the smallest expiry, by repository. */
  function idlePreviews(now: number): Map<string, Deployment[]> {
    const state = store.state;
    const live = Object.values(state.deployments).filter((d) => d.pullRequest && !isTornDown(d));
    if (live.length === 0) return new Map();
    const newest = new Map<string, number>();
    for (const revision of Object.values(state.revisions)) {
      const at = Date.parse(revision.createdAt);
      if (at > (newest.get(revision.deploymentId) ?? 0)) newest.set(revision.deploymentId, at);
    }
    const byRepository = new Map<string, Deployment[]>();
    for (const deployment of live) {
      if (now - lastActivityOf(state, deployment, newest.get(deployment.id) ?? 0) < MIN_EXPIRY_DAYS * DAY_MS) continue;
      const key = `${deployment.installationId}/${deployment.repository.id}`;
      byRepository.set(key, [...(byRepository.get(key) ?? []), deployment]);
    }
    return byRepository;
  }

  /** The repository's `previews.expire_after_days`; undefined when it cannot be known now (kept, asked again next time). */
  async function expiryDaysOf(deployment: Deployment): Promise<number | false | undefined> {
    const { installationId, repository } = deployment;
    try {
      const octokit = await options.getOctokit(installationId);
      const config = await configs.get({ octokit, installationId, owner: repository.owner, repo: repository.name });
      if (config.ok) return config.config.previews.expire_after_days;
      log.debug({ repository: repository.fullName }, "invalid repository config: its previews are kept");
    } catch (error) {
      log.warn({ repository: repository.fullName, err: { message: (error as Error).message } }, "could not read the repository config: its previews are kept for now");
    }
    return undefined;
  }

  async function check(now: number): Promise<string[]> {
    const closed: string[] = [];
    for (const previews of idlePreviews(now).values()) {
      const days = await expiryDaysOf(previews[0]!);
      if (days === undefined || days === false) continue;
      for (const { id } of previews) {
        // Looked at again after the config read: a /deploy or a push may have come in meanwhile.
        const deployment = store.state.deployments[id];
        if (!deployment || isTornDown(deployment) || now - lastActivityOf(store.state, deployment) < days * DAY_MS) continue;
        const reason = `Expired after ${days} ${days === 1 ? "day" : "days"} without a new commit or /deploy`;
        // Refused if the deployment changed since it was read here (a revision queued in between).
        if (await lifecycle.closePreview(id, reason, { afterDays: days, ifUpdatedAt: deployment.updatedAt })) {
          log.info({ environment: deployment.environment, afterDays: days }, "preview expired: tearing it down");
          closed.push(id);
        }
      }
    }
    return closed;
  }

  return {
    check(now = Date.now()) {
      // One check at a time: a slow GitHub must not stack them up.
      running ??= check(now).finally(() => (running = undefined));
      return running;
    },
  };
}
