import { ProbotOctokit } from "probot";

/** How many times one request is retried on a primary or secondary rate limit before it fails. */
const RATE_LIMIT_RETRIES = 4;

/**
 * Probot's Octokit with throttling that retries rate limits (Probot's default only logs
 * secondary ones, then the request fails) and paces writes per installation rather than
 * for the whole process. The function form of `defaults` runs after Probot's own
 * defaults, so these options win.
 */
export const SlipwayOctokit = ProbotOctokit.defaults((options: Record<string, unknown>) => {
  const auth = options.auth as { installationId?: number } | undefined;
  const throttle = (options.throttle ?? {}) as Record<string, unknown>;
  return {
    ...options,
    throttle: {
      ...throttle,
      id: `slipway-${auth?.installationId ?? "app"}`,
      onRateLimit: (_after: number, request: { request: { retryCount: number } }) =>
        request.request.retryCount < RATE_LIMIT_RETRIES,
      onSecondaryRateLimit: (_after: number, request: { request: { retryCount: number } }) =>
        request.request.retryCount < RATE_LIMIT_RETRIES,
    },
  };
});
