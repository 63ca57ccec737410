import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import type { StateStore } from "../../store/open-state-store.js";
import type { Lifecycle } from "../../revisions/lifecycle.js";
import type { RepoConfigCache } from "../repo-config.js";
import type { ReplyLimiter } from "../github/reply-limiter.js";
import type { ListenerPresence } from "../listener-presence.js";

/** What processing a stored delivery needs. */
export interface IntentContext {
  store: StateStore;
  getOctokit(installationId: number): Promise<ProbotOctokit>;
  /** Every state change of a revision or deployment goes through it; GitHub learns of them from the store's change events. */
  lifecycle: Lifecycle;
  /** What listeners build in: fork previews need a sandbox. */
  presence: ListenerPresence;
  /** Replies to refused commands: one per pull request and kind a minute. */
  replies: ReplyLimiter;
  configs: RepoConfigCache;
  /** `SLIPWAY_KEEP_BUILDS`: how many builds of an environment a rollback may go back to (default 5). */
  keepBuilds?: number;
  log: Logger;
}

/** How a processed delivery is recorded in the inbox. */
export interface IntentOutcome {
  status: "processed" | "ignored";
  note?: string;
}
