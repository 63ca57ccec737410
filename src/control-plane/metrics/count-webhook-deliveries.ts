import type { Counter } from "prom-client";
import type { WebhookSink } from "../webhooks/receive-webhook.js";

/** Distinct event names counted before the rest go to `other`. */
const MAX_EVENT_NAMES = 64;
const EVENT_NAME = /^[a-z_]{1,64}$/;

/**
 * Wraps the webhook sink (Probot's `webhooks`) so that `slipway_webhook_deliveries_total`
 * counts each verified delivery under its event name, and each one refused for its
 * signature under `event="invalid"` (a stranger's header is not a label). The event
 * header is not covered by the signature, so names are bounded: odd or too many go to `other`.
 *
 * @example
 * createWebhookReceiver({ webhooks: countWebhookDeliveries(probot.webhooks, deliveries), log });
 */
export function countWebhookDeliveries(sink: WebhookSink, deliveries: Counter<"event">): WebhookSink {
  const names = new Set<string>();
  const labelOf = (event: string) => {
    if (!EVENT_NAME.test(event)) return "other";
    if (!names.has(event) && names.size >= MAX_EVENT_NAMES) return "other";
    names.add(event);
    return event;
  };
  return {
    async verify(payload, signature) {
      // A verifier that throws refuses, as the receiver takes it.
      const verified = await sink.verify(payload, signature).catch(() => false);
      if (!verified) deliveries.inc({ event: "invalid" });
      return verified;
    },
    receive(event) {
      deliveries.inc({ event: labelOf(event.name) });
      return sink.receive(event);
    },
  };
}
