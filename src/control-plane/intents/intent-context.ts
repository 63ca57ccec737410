import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import type { StateStore } from "../../store/open-state-store.js";
import type { GitHubReporter } from "../github/github-reporter.js";
import type { RepoConfigCache } from "../repo-config.js";
import type { ReplyLimiter } from "../github/reply-limiter.js";
import type { ListenerSandboxes } from "../listener-sandboxes.js";
import type { WorkQueue } from "../work-queue.js";

/** What processing a stored delivery needs. */
export interface IntentContext {
  store: StateStore;
  getOctokit(installationId: number): Promise<ProbotOctokit>;
  reporter: GitHubReporter;
  queue: WorkQueue;
  /** What listeners build in: fork previews need a sandbox. */
  sandboxes: ListenerSandboxes;
  /** Replies to refused commands: one per pull request and kind a minute. */
  replies: ReplyLimiter;
  configs: RepoConfigCache;
  log: Logger;
}

/** How a processed delivery is recorded in the inbox. */
export interface IntentOutcome {
  status: "processed" | "ignored";
  note?: string;
}
