/** One HTTP exchange with GitHub's API, as the metrics see it: never its URL (it names repositories). */
export interface GitHubRequestObservation {
  /** Whose quota it used: an installation id, or `app` for the App's own token. */
  token: string;
  method: string;
  /** The HTTP status, or `error` when no answer came (a network failure, a timeout). */
  status: string;
  /** From the `x-ratelimit-*` headers, when GitHub sent them. */
  rateLimit?: { resource: string; remaining: number; resetAt: number };
}

export type GitHubRequestObserver = (observation: GitHubRequestObservation) => void;

/**
 * The Octokit class is the process's (src/main.ts hands it to Probot before any control
 * plane exists), so what it sees goes to whoever listens here: each control plane's metrics
 * subscribe when they start and leave when it closes.
 */
const observers = new Set<GitHubRequestObserver>();

/** Calls `observer` after every request any SlipwayOctokit makes; returns the unsubscribe. */
export function observeGitHubRequests(observer: GitHubRequestObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

/**
 * A `fetch` for Octokit's `request.fetch` that tells the observers about each exchange.
 * It sits below Octokit's retry and throttling, so a retried request counts once per
 * attempt, as GitHub counts it against the quota. `inner` unset: the global fetch at call
 * time (test doubles such as nock replace it after this module loads).
 *
 * @example
 * new Octokit({ request: { fetch: observedFetch(String(installationId)) } });
 */
export function observedFetch(token: string, inner?: typeof fetch): typeof fetch {
  return async function fetchObserved(input, init) {
    const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    let response: Response;
    try {
      response = await (inner ?? globalThis.fetch)(input, init);
    } catch (error) {
      notify({ token, method, status: "error" });
      throw error;
    }
    notify({ token, method, status: String(response.status), rateLimit: rateLimitOf(response.headers) });
    return response;
  };
}

function notify(observation: GitHubRequestObservation) {
  // A metrics failure must never fail a GitHub request.
  for (const observer of observers) {
    try {
      observer(observation);
    } catch {
      /* the observer's own fault; the request goes on */
    }
  }
}

function rateLimitOf(headers: Headers): GitHubRequestObservation["rateLimit"] {
  const remaining = Number(headers.get("x-ratelimit-remaining") ?? NaN);
  const resetAt = Number(headers.get("x-ratelimit-reset") ?? NaN);
  if (!Number.isFinite(remaining) || !Number.isFinite(resetAt)) return undefined;
  const resource = headers.get("x-ratelimit-resource") ?? "core";
  // GitHub's resource names are a short fixed list; anything else is not a label value.
  return { resource: /^[a-z_]{1,40}$/.test(resource) ? resource : "other", remaining, resetAt };
}
