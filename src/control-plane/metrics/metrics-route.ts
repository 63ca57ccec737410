import type { IncomingMessage, ServerResponse } from "node:http";
import { hasBearerToken, sendText } from "../http/http-helpers.js";
import type { SlipwayMetrics } from "./create-metrics.js";

export const METRICS_PATH = "/metrics";

/**
 * `GET /metrics` in Prometheus' text format. With `token` (SLIPWAY_METRICS_TOKEN) set, only
 * for `Authorization: Bearer <token>` (compared in constant time); 401 otherwise. Answers
 * `true` when it handled the request.
 *
 * @example
 * if (await metricsRoute(request, response, pathname)) return;
 */
export function createMetricsRoute(options: { metrics: SlipwayMetrics; token?: string }) {
  const { metrics, token } = options;
  return async function metricsRoute(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    if (pathname !== METRICS_PATH) return false;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("allow", "GET, HEAD");
      sendText(response, 405, "Method not allowed\n");
      return true;
    }
    if (token !== undefined && !hasBearerToken(request, token)) {
      response.setHeader("www-authenticate", 'Bearer realm="slipway metrics"');
      sendText(response, 401, "GET /metrics needs Authorization: Bearer <SLIPWAY_METRICS_TOKEN>\n");
      return true;
    }
    const body = await metrics.registry.metrics();
    response.writeHead(200, { "content-type": metrics.registry.contentType, "cache-control": "no-store" });
    response.end(request.method === "HEAD" ? undefined : body);
    return true;
  };
}
