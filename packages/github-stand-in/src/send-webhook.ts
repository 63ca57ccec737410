import { createHmac, randomUUID } from "node:crypto";

/** What `sendWebhook` sends. */
export interface SendWebhookOptions {
  /** Where the app listens, e.g. `http://127.0.0.1:3000/api/github/webhooks`. */
  url: string;
  /** The app's webhook secret; the body is signed with it. */
  secret: string;
  /** `X-GitHub-Event`, e.g. `push`, `pull_request`, `issue_comment`, `check_run`. */
  event: string;
  /** `X-GitHub-Delivery`; a fresh UUID when absent (a redelivery reuses the original). */
  deliveryId?: string;
  payload: unknown;
  /** Extra or replacement headers (a test of a bad signature can override `x-hub-signature-256`). */
  headers?: Record<string, string>;
  /** Gives up after this long (default 30 s). */
  timeoutMs?: number;
}

/** The app's answer. */
export interface SendWebhookResult {
  status: number;
  body: string;
  headers: Record<string, string>;
  deliveryId: string;
  /** The exact request headers sent. */
  requestHeaders: Record<string, string>;
  durationMs: number;
}

/**
 * POSTs a webhook the way GitHub does: the exact JSON bytes signed with HMAC-SHA256 in
 * `X-Hub-Signature-256`, plus `X-GitHub-Event`, `X-GitHub-Delivery`, the hook and
 * installation target headers and GitHub's `User-Agent`. A network failure throws.
 *
 * @example
 * const { status } = await sendWebhook({ url: `${slipway}/api/github/webhooks`, secret, event: "push", payload });
 */
export async function sendWebhook(options: SendWebhookOptions): Promise<SendWebhookResult> {
  const body = JSON.stringify(options.payload);
  const deliveryId = options.deliveryId ?? randomUUID();
  const signature = `sha256=${createHmac("sha256", options.secret).update(body).digest("hex")}`;
  const installation = (options.payload as { installation?: { id?: unknown } } | null)?.installation;
  const requestHeaders: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/stand-in",
    "x-github-event": options.event,
    "x-github-delivery": deliveryId,
    "x-github-hook-id": "1",
    "x-hub-signature-256": signature,
    ...(installation?.id !== undefined ? { "x-github-hook-installation-target-type": "integration", "x-github-hook-installation-target-id": String(installation.id) } : {}),
    ...options.headers,
  };
  const started = performance.now();
  const response = await fetch(options.url, { method: "POST", headers: requestHeaders, body, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
  const text = await response.text();
  return {
    status: response.status,
    body: text,
    headers: Object.fromEntries(response.headers.entries()),
    deliveryId,
    requestHeaders,
    durationMs: performance.now() - started,
  };
}
