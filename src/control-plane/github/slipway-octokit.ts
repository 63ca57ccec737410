import Bottleneck from "bottleneck";
import { ProbotOctokit } from "probot";
import { observedFetch } from "../metrics/observe-github-requests.js";

/** How many times one request is retried on a primary or secondary rate limit before it fails. */
const RATE_LIMIT_RETRIES = 4;

/** Writes an installation may send at once after a quiet spell (see WRITE_PACING). */
export const WRITE_BURST = 5;

/**
 * Pacing of an installation's writes (POST, PATCH, PUT, DELETE): one at a time, at most
 * one a second on average, as GitHub asks, but a quiet installation may send a burst of
 * WRITE_BURST at once. octokit's default spaces every write a second apart, which made a
 * one-second build's completion wait behind its own check run and deployment writes; a
 * revision's whole lifecycle is 4–5 writes. A minute holds at most 60 + WRITE_BURST writes,
 * under GitHub's secondary limit of 80 content-creating requests a minute.
 * One group for the process, keyed by the throttle id (the installation).
 */
const WRITE_PACING = new Bottleneck.Group({
  id: "slipway-write",
  maxConcurrent: 1,
  reservoir: WRITE_BURST,
  reservoirIncreaseAmount: 1,
  reservoirIncreaseInterval: 1_000,
  reservoirIncreaseMaximum: WRITE_BURST,
  timeout: 2 * 60 * 1000, // a limiter unused this long is dropped (and starts full again)
});

/**
 * Probot's Octokit with throttling that retries rate limits (Probot's default only logs
 * secondary ones, then the request fails) and paces writes per installation rather than
 * for the whole process. The function form of `defaults` runs after Probot's own
 * defaults, so these options win. Each request is told to the metrics (`slipway_github_*`).
 */
export const SlipwayOctokit = ProbotOctokit.defaults((options: Record<string, unknown>) => {
  const auth = options.auth as { installationId?: number } | undefined;
  const throttle = (options.throttle ?? {}) as Record<string, unknown>;
  const request = (options.request ?? {}) as { fetch?: typeof fetch };
  return {
    ...options,
    request: { ...request, fetch: observedFetch(String(auth?.installationId ?? "app"), request.fetch) },
    throttle: {
      ...throttle,
      id: `slipway-${auth?.installationId ?? "app"}`,
      write: WRITE_PACING,
      onRateLimit: (_after: number, request: { request: { retryCount: number } }) =>
        request.request.retryCount < RATE_LIMIT_RETRIES,
      onSecondaryRateLimit: (_after: number, request: { request: { retryCount: number } }) =>
        request.request.retryCount < RATE_LIMIT_RETRIES,
    },
  };
});
