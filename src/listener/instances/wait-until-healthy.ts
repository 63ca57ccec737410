import http from "node:http";
import { setTimeout as delay } from "node:timers/promises";

export interface WaitUntilHealthyOptions {
  port: number;
  /** `run.healthcheck`: a path such as `/healthz` that must answer 2xx or 3xx. Unset: any HTTP answer on the port counts. */
  path?: string;
  /** Sent as `Host`, so apps that check it (allowed hosts) answer as they will behind the router. */
  host: string;
  timeoutMs: number;
  /** Time between attempts (default 100 ms). */
  intervalMs?: number;
  /** Stops waiting (the instance exited, the deploy was superseded). */
  signal?: AbortSignal;
}

export type HealthResult =
  | { healthy: true; status: number; elapsedMs: number }
  | { healthy: false; reason: string; elapsedMs: number };

/** Longest wait for one answer, so a hanging request cannot use up the whole timeout. */
const ATTEMPT_TIMEOUT_MS = 2_000;

/**
 * Polls `GET http://127.0.0.1:<port><path>` until the revision answers as healthy, the
 * timeout passes or `signal` aborts. Never throws: the result says why it is not healthy
 * in a sentence for the check run.
 *
 * @example
 * ```ts
 * const health = await waitUntilHealthy({ port, path: "/healthz", host, timeoutMs: 60_000, signal });
 * if (!health.healthy) fail(health.reason);
 * ```
 */
export async function waitUntilHealthy(options: WaitUntilHealthyOptions): Promise<HealthResult> {
  const { port, path, host, timeoutMs, intervalMs = 100, signal } = options;
  if (path !== undefined && !/^\/[^\s]*$/.test(path)) {
    return { healthy: false, reason: `run.healthcheck must be a path starting with "/", not ${JSON.stringify(path)}`, elapsedMs: 0 };
  }
  const started = Date.now();
  const deadline = started + timeoutMs;
  const elapsed = () => Date.now() - started;
  let last = "no answer yet";
  for (;;) {
    if (signal?.aborted) return { healthy: false, reason: String(signal.reason ?? "aborted"), elapsedMs: elapsed() };
    const attempt = await probe({ port, path: path ?? "/", host, timeoutMs: Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now())), signal });
    if (attempt.status !== undefined) {
      const healthy = path === undefined || (attempt.status >= 200 && attempt.status < 400);
      if (healthy) return { healthy: true, status: attempt.status, elapsedMs: elapsed() };
      last = `GET ${path} answered ${attempt.status} (expected 2xx or 3xx)`;
    } else {
      last = attempt.error;
    }
    if (Date.now() + intervalMs >= deadline) {
      return { healthy: false, reason: `not healthy within ${formatMs(timeoutMs)}: ${last}`, elapsedMs: elapsed() };
    }
    await delay(intervalMs, undefined, { signal }).catch(() => undefined);
  }
}

function probe(options: { port: number; path: string; host: string; timeoutMs: number; signal?: AbortSignal }): Promise<{ status?: number; error: string }> {
  return new Promise((resolve) => {
    const request = http.get(
      { host: "127.0.0.1", port: options.port, path: options.path, headers: { host: options.host, "user-agent": "slipway-healthcheck" }, agent: false, signal: options.signal },
      (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0, error: "" });
      },
    );
    request.setTimeout(options.timeoutMs, () => request.destroy(new Error(`no answer within ${formatMs(options.timeoutMs)}`)));
    request.on("error", (error: NodeJS.ErrnoException) => {
      const what = error.code === "ECONNREFUSED" ? `nothing listens on port ${options.port}` : error.message;
      resolve({ error: what });
    });
  });
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
