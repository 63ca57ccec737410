import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import { backoffDelay } from "../backoff.js";
import type { Delivery, DeliveryIntent } from "../store/model.js";
import type { StateStore } from "../store/open-state-store.js";
import type { Lifecycle } from "../revisions/lifecycle.js";
import { createRepoConfigCache, type RepoConfigCache } from "./repo-config.js";
import { processCheckRun } from "./intents/process-check-run.js";
import { processCommand } from "./intents/process-command.js";
import { processPullRequest } from "./intents/process-pull-request.js";
import { processPush } from "./intents/process-push.js";
import { createReplyLimiter } from "./github/reply-limiter.js";
import { createListenerPresence, type ListenerPresence } from "./listener-presence.js";

export interface Inbox {
  /**
   * Stores a delivery before it is acknowledged. "duplicate" for a delivery id already
   * seen (GitHub redelivers, and may deliver twice).
   */
  record(delivery: { id: string; event: string; intent?: DeliveryIntent; ignored?: string }): Promise<"recorded" | "duplicate">;
  /** Processes every stored delivery that is still pending (start-up after a crash). */
  resume(): void;
  /** Resolves when no delivery is being processed. */
  idle(): Promise<void>;
}

export interface InboxOptions {
  store: StateStore;
  getOctokit(installationId: number): Promise<ProbotOctokit>;
  lifecycle: Lifecycle;
  /** What listeners build in (default: none known yet). */
  presence?: ListenerPresence;
  /** Repository configs kept between deliveries (default: a fresh cache). */
  configs?: RepoConfigCache;
  /** `SLIPWAY_KEEP_BUILDS` (default 5): how far back a rollback may go. */
  keepBuilds?: number;
  log: Logger;
  retryBaseMs?: number;
  maxFailures?: number;
}

/**
 * The delivery inbox: webhooks are stored, then acknowledged, then turned into revisions
 * here, outside the webhook request, so the response never waits for GitHub or a build.
 */
export function createInbox(options: InboxOptions): Inbox {
  const { store, log } = options;
  const retryBaseMs = options.retryBaseMs ?? 2_000;
  const maxFailures = options.maxFailures ?? 6;
  const configs = options.configs ?? createRepoConfigCache();
  const presence = options.presence ?? createListenerPresence();
  const replies = createReplyLimiter();
  const intents = { store, getOctokit: options.getOctokit, lifecycle: options.lifecycle, presence, replies, configs, keepBuilds: options.keepBuilds };
  const running = new Set<Promise<void>>();
  const failures = new Map<string, number>();

  function process(id: string) {
    const job = handle(id).finally(() => running.delete(job));
    running.add(job);
  }

  async function handle(id: string) {
    const delivery = store.state.deliveries[id];
    if (!delivery || delivery.status !== "pending" || !delivery.intent) return;
    const dlog = log.child({ delivery: id, event: delivery.event });
    try {
      const context = { ...intents, log: dlog };
      const intent = delivery.intent;
      const outcome =
        intent.kind === "push"
          ? await processPush(context, intent, id)
          : intent.kind === "command"
            ? await processCommand(context, intent, id)
            : intent.kind === "pull_request"
              ? await processPullRequest(context, intent, id)
              : await processCheckRun(context, intent, id);
      await finish(id, outcome.status, outcome.note);
    } catch (error) {
      const count = (failures.get(id) ?? 0) + 1;
      failures.set(id, count);
      const message = (error as Error).message;
      if (count >= maxFailures) {
        dlog.error({ err: { message }, attempts: count }, "giving up on delivery");
        await finish(id, "failed", message);
        return;
      }
      const delay = backoffDelay(count, { baseMs: retryBaseMs, maxMs: 5 * 60_000 });
      dlog.warn({ err: { message }, attempts: count, retryInMs: delay }, "processing delivery failed; will retry");
      setTimeout(() => process(id), delay).unref();
    }
  }

  async function finish(id: string, status: Delivery["status"], note?: string) {
    failures.delete(id);
    await store.updateDelivery(id, (d) => {
      d.status = status;
      d.note = note;
      if (status !== "pending") delete d.intent; // keep the deliveries file small
    });
  }

  return {
    async record(delivery) {
      const outcome = await store.recordDelivery({
        id: delivery.id,
        event: delivery.event,
        receivedAt: new Date().toISOString(),
        status: delivery.ignored ? "ignored" : "pending",
        intent: delivery.ignored ? undefined : delivery.intent,
        note: delivery.ignored,
      });
      if (outcome === "recorded" && !delivery.ignored) process(delivery.id);
      return outcome;
    },
    resume() {
      for (const delivery of Object.values(store.state.deliveries)) {
        if (delivery.status === "pending") process(delivery.id);
      }
    },
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}
