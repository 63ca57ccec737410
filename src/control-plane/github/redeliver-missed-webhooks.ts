import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import type { StateStore } from "../../store/open-state-store.js";

/** GitHub keeps webhook deliveries for three days; older ones cannot be redelivered. */
const LOOK_BACK_MS = 3 * 24 * 60 * 60 * 1000;

/**
 * GitHub does not redeliver failed webhooks by itself. This asks it for the app's
 * deliveries of the last three days and, for each delivery (guid) that never succeeded and
 * that the inbox does not hold, requests a redelivery. Run at start-up and now and then, so
 * an outage of Slipway loses no push. Returns how many redeliveries were requested.
 */
export async function redeliverMissedWebhooks(options: {
  appOctokit: ProbotOctokit;
  store: StateStore;
  log: Logger;
  now?: Date;
}): Promise<number> {
  const { appOctokit, store, log } = options;
  const since = (options.now ?? new Date()).getTime() - LOOK_BACK_MS;
  const attempts = new Map<string, { succeeded: boolean; latestId: number; latestAt: number }>();

  // Newest first; stop paging once past the look-back window.
  for await (const { data } of appOctokit.paginate.iterator(appOctokit.rest.apps.listWebhookDeliveries, { per_page: 100 })) {
    let older = false;
    for (const delivery of data) {
      const at = Date.parse(delivery.delivered_at);
      if (at < since) {
        older = true;
        continue;
      }
      const seen = attempts.get(delivery.guid) ?? { succeeded: false, latestId: delivery.id, latestAt: at };
      if (delivery.status_code >= 200 && delivery.status_code < 300) seen.succeeded = true;
      if (at >= seen.latestAt) Object.assign(seen, { latestId: delivery.id, latestAt: at });
      attempts.set(delivery.guid, seen);
    }
    if (older) break;
  }

  let requested = 0;
  for (const [guid, seen] of attempts) {
    if (seen.succeeded || store.state.deliveries[guid]) continue;
    try {
      await appOctokit.rest.apps.redeliverWebhookDelivery({ delivery_id: seen.latestId });
      requested += 1;
    } catch (error) {
      log.warn({ delivery: guid, err: { message: (error as Error).message } }, "could not request a redelivery");
    }
  }
  if (requested > 0) log.info({ requested }, "asked GitHub to redeliver webhooks Slipway missed");
  return requested;
}
