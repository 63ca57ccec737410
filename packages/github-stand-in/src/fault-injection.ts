import type { RouteResponse } from "./route-context.js";

/** Which requests to fail, how, and how many times. */
export interface FaultOptions {
  /** HTTP method to match (any when absent). */
  method?: string;
  /**
   * Path to match, without `/api/v3` and without the query. A RegExp is tested against
   * the concrete path (`/repos/acme/web/check-runs/700001`); a string matches either
   * that path exactly or the description's template (`/repos/{owner}/{repo}/check-runs/{check_run_id}`).
   */
  path?: RegExp | string;
  status: 500 | 502 | 503 | 403 | 429;
  /** How many matching requests fail; later ones pass. */
  count: number;
  /** `retry-after` for secondary limits and 5xx; seconds until `x-ratelimit-reset` for primary limits (default 1). */
  retryAfterSeconds?: number;
  /** 403/429 as GitHub's secondary rate limit (`retry-after`, "secondary rate limit" message) instead of the primary one. */
  secondaryRateLimit?: boolean;
}

/** A registered fault; `remaining` counts down as requests hit it. */
export interface InjectedFault {
  readonly options: FaultOptions;
  readonly remaining: number;
  /** Requests this fault has failed so far. */
  readonly hits: number;
  /** Stops failing requests. */
  clear(): void;
}

/** Keeps the registered faults and picks the one (if any) that fails a request. */
export interface FaultInjector {
  add(options: FaultOptions): InjectedFault;
  /** The response replacing this request's, consuming one count of the first matching fault. */
  take(request: { method: string; path: string; template?: string; installationId?: number }): RouteResponse | undefined;
  clear(): void;
}

/**
 * Fault injection for GitHub's failure modes: 5xx, and the two rate limits octokit's
 * throttling plugin tells apart — secondary (403/429 with `retry-after` and a message
 * containing "secondary rate limit") and primary (403/429 with `x-ratelimit-remaining: 0`
 * and `x-ratelimit-reset`).
 */
export function createFaultInjector(): FaultInjector {
  let faults: Array<{ options: FaultOptions; remaining: number; hits: number }> = [];
  return {
    add(options) {
      if (!Number.isInteger(options.count) || options.count < 1) throw new Error(`injectFaults: count must be a positive integer, got ${options.count}`);
      const fault = { options, remaining: options.count, hits: 0 };
      faults.push(fault);
      return {
        options,
        get remaining() {
          return fault.remaining;
        },
        get hits() {
          return fault.hits;
        },
        clear() {
          fault.remaining = 0;
          faults = faults.filter((f) => f !== fault);
        },
      };
    },
    take(request) {
      const fault = faults.find((f) => f.remaining > 0 && matches(f.options, request));
      if (!fault) return undefined;
      fault.remaining--;
      fault.hits++;
      if (fault.remaining === 0) faults = faults.filter((f) => f !== fault);
      return faultResponse(fault.options, request.installationId);
    },
    clear() {
      faults = [];
    },
  };
}

function matches(options: FaultOptions, request: { method: string; path: string; template?: string }): boolean {
  if (options.method !== undefined && options.method.toUpperCase() !== request.method.toUpperCase()) return false;
  if (options.path === undefined) return true;
  if (options.path instanceof RegExp) {
    options.path.lastIndex = 0;
    return options.path.test(request.path);
  }
  return options.path === request.path || options.path === request.template;
}

function faultResponse(options: FaultOptions, installationId: number | undefined): RouteResponse {
  const retryAfter = options.retryAfterSeconds ?? 1;
  if (options.status >= 500) {
    const headers: Record<string, string> = options.retryAfterSeconds !== undefined ? { "retry-after": String(retryAfter) } : {};
    const message = options.status === 500 ? "Server Error" : options.status === 502 ? "Server Error" : "Service Unavailable";
    return { status: options.status, body: { message }, headers };
  }
  if (options.secondaryRateLimit) {
    return {
      status: options.status,
      headers: { "retry-after": String(retryAfter) },
      body: {
        message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
        documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        status: String(options.status),
      },
    };
  }
  const reset = Math.floor(Date.now() / 1000) + retryAfter;
  return {
    status: options.status,
    headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset), "x-ratelimit-used": "5000" },
    body: {
      message: `API rate limit exceeded for installation ID ${installationId ?? 0}. If you reach out to GitHub Support for help, please include the request ID.`,
      documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
      status: String(options.status),
    },
  };
}
