import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { DEFAULT_POOL } from "../../store/model.js";
import type { StateStore } from "../../store/open-state-store.js";
import type { ListenerPresence } from "../listener-presence.js";
import type { ListenerRegistry } from "../listener-registry.js";
import type { WebhookSink } from "../webhooks/receive-webhook.js";
import { countRevisions } from "./count-revisions.js";
import { countWebhookDeliveries } from "./count-webhook-deliveries.js";
import { observeGitHubRequests } from "./observe-github-requests.js";

/** Seconds: a database is made in about one, a build takes from seconds to the 600 s default timeout and beyond. */
const PHASE_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600];

export interface SlipwayMetrics {
  /** This control plane's own registry (not prom-client's global one: tests run several control planes in one process). */
  registry: Registry;
  /** The webhook sink with `slipway_webhook_deliveries_total` counting what passes through it. */
  countWebhooks(sink: WebhookSink): WebhookSink;
  /** Stops following the store and GitHub requests. */
  close(): void;
}

export interface MetricsOptions {
  store: StateStore;
  presence: ListenerPresence;
  registry: ListenerRegistry;
}

/**
 * The control plane's Prometheus metrics (docs/architecture.md, "HTTP surface"): revisions
 * and phase durations from the store's change events, webhook deliveries, the work queue
 * and present listeners computed at each scrape, GitHub requests and rate limits from the
 * Octokit's fetch, and prom-client's default process metrics. No label holds a repository's
 * name: environments are reduced to their kind, listeners to their pool.
 *
 * @example
 * const metrics = createMetrics({ store, presence, registry });
 * response.end(await metrics.registry.metrics());
 */
export function createMetrics(options: MetricsOptions): SlipwayMetrics {
  const { store, presence } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const stopCounting = countRevisions({
    store,
    revisions: new Counter({
      name: "slipway_revisions_total",
      help: "Revisions that reached a final state since the process started, by environment kind (production, environment, preview) and final state (DEPLOYED, BUILD_FAILED, ...).",
      labelNames: ["environment_kind", "outcome"] as const,
      registers: [registry],
    }),
    phaseDurations: new Histogram({
      name: "slipway_revision_phase_duration_seconds",
      help: "How long a revision's phase (database, build, deploy) took, observed when it finished; phases cut short by a cancel are not counted.",
      labelNames: ["phase"] as const,
      buckets: PHASE_BUCKETS,
      registers: [registry],
    }),
  });

  const webhookDeliveries = new Counter({
    name: "slipway_webhook_deliveries_total",
    help: 'Webhook deliveries accepted, by GitHub event name; event="invalid" counts deliveries refused for their signature.',
    labelNames: ["event"] as const,
    registers: [registry],
  });

  new Gauge({
    name: "slipway_work_queue_depth",
    help: "Revisions waiting to be leased by a listener (QUEUED, not leased).",
    registers: [registry],
    collect() {
      let waiting = 0;
      for (const revision of Object.values(store.state.revisions)) if (revision.state === "QUEUED" && !revision.lease) waiting += 1;
      this.set(waiting);
    },
  });

  new Gauge({
    name: "slipway_listeners",
    help: "Listeners present now (holding a long poll or heard from recently), by pool.",
    labelNames: ["pool"] as const,
    registers: [registry],
    collect() {
      const byPool = new Map<string, number>([[DEFAULT_POOL, 0]]);
      for (const listener of options.registry.list()) {
        if (listener.revokedAt) continue;
        // Pools of absent listeners show 0: a pool whose listeners are all gone is what to alert on.
        const present = presence.isPresent(listener.id);
        const pool = present ? presence.poolOf(listener.id) : listener.pool;
        byPool.set(pool, (byPool.get(pool) ?? 0) + (present ? 1 : 0));
      }
      this.reset();
      for (const [pool, count] of byPool) this.set({ pool }, count);
    },
  });

  const githubRequests = new Counter({
    name: "slipway_github_requests_total",
    help: 'Requests to GitHub\'s API (each attempt of a retried one), by method and HTTP status; status="error" when no answer came.',
    labelNames: ["method", "status"] as const,
    registers: [registry],
  });
  /** Per token (an installation, or the App) and resource: what GitHub last said remains, until its window resets. */
  const rateLimits = new Map<string, { resource: string; remaining: number; resetAt: number }>();
  new Gauge({
    name: "slipway_github_rate_limit_remaining",
    help: "Requests left in the current rate-limit window of GitHub's API, the lowest across installations, by rate-limit resource (core, graphql, ...).",
    labelNames: ["resource"] as const,
    registers: [registry],
    collect() {
      const now = Date.now() / 1000;
      const lowest = new Map<string, number>();
      for (const [key, limit] of rateLimits) {
        if (limit.resetAt <= now) rateLimits.delete(key); // the window reset: the quota is whole again
        else lowest.set(limit.resource, Math.min(lowest.get(limit.resource) ?? Infinity, limit.remaining));
      }
      this.reset();
      for (const [resource, remaining] of lowest) this.set({ resource }, remaining);
    },
  });
  const stopObserving = observeGitHubRequests((observation) => {
    githubRequests.inc({ method: observation.method, status: observation.status });
    const limit = observation.rateLimit;
    if (limit) rateLimits.set(`${observation.token} ${limit.resource}`, limit);
  });

  return {
    registry,
    countWebhooks: (sink) => countWebhookDeliveries(sink, webhookDeliveries),
    close() {
      stopCounting();
      stopObserving();
    },
  };
}
