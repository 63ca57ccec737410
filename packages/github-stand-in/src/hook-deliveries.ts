import { randomUUID } from "node:crypto";
import { sendWebhook } from "./send-webhook.js";
import type { RecordedHookDelivery, StandInState } from "./stand-in-state.js";

/** A webhook to deliver and record, as GitHub's delivery log would. */
export interface DeliverWebhookOptions {
  url: string;
  secret: string;
  event: string;
  payload: unknown;
  /** `X-GitHub-Delivery`; fresh unless this is a redelivery. */
  guid?: string;
  redelivery?: boolean;
}

/**
 * Sends a webhook and records it in the app's delivery log (`GET /app/hook/deliveries`),
 * including failures: an unreachable app is recorded with status code 0, like GitHub's
 * "failed to connect" deliveries, so redelivery can be tested. Never throws.
 */
export async function deliverWebhookAndRecord(state: StandInState, options: DeliverWebhookOptions): Promise<RecordedHookDelivery> {
  const payload = options.payload as { action?: unknown; installation?: { id?: unknown }; repository?: { id?: unknown } } | null;
  const guid = options.guid ?? randomUUID();
  const delivery: RecordedHookDelivery = {
    id: state.nextId("hookDelivery"),
    guid,
    event: options.event,
    action: typeof payload?.action === "string" ? payload.action : null,
    installationId: typeof payload?.installation?.id === "number" ? payload.installation.id : null,
    repositoryId: typeof payload?.repository?.id === "number" ? payload.repository.id : null,
    deliveredAt: new Date().toISOString(),
    redelivery: options.redelivery ?? false,
    durationSeconds: 0,
    statusCode: 0,
    status: "failed to connect to host",
    url: options.url,
    requestHeaders: {},
    payload: options.payload,
    responseHeaders: {},
    responseBody: "",
    secret: options.secret,
  };
  const started = performance.now();
  try {
    const result = await sendWebhook({ url: options.url, secret: options.secret, event: options.event, deliveryId: guid, payload: options.payload, timeoutMs: 10_000 });
    delivery.statusCode = result.status;
    delivery.status = result.status >= 200 && result.status < 300 ? "OK" : `Invalid HTTP Response: ${result.status}`;
    delivery.requestHeaders = result.requestHeaders;
    delivery.responseHeaders = result.headers;
    delivery.responseBody = result.body;
  } catch (error) {
    delivery.status = error instanceof Error && error.name === "TimeoutError" ? "timed out" : "failed to connect to host";
  }
  delivery.durationSeconds = Math.round(performance.now() - started) / 1000;
  state.hookDeliveries.push(delivery);
  return delivery;
}
