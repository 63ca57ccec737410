import type { SignInSettings } from "./sign-in-settings.js";

/** A user access token of the GitHub App, with its refresh token when the App lets tokens expire. */
export interface UserToken {
  accessToken: string;
  /** Epoch ms; absent for tokens that do not expire. */
  accessTokenExpiresAt?: number;
  refreshToken?: string;
  refreshTokenExpiresAt?: number;
}

/** What GitHub lets a user do with a repository. */
export interface RepositoryAccess {
  read: boolean;
  /** write, maintain or admin: the same rule as `/deploy` and the check run's buttons. */
  write: boolean;
  /** maintain or admin: who may set Slipway's secrets for the repository. */
  manage: boolean;
}

/** GitHub answered 401 to a user token: it expired or the user revoked the App's authorization. */
export class UserTokenRejectedError extends Error {
  override name = "UserTokenRejectedError";
}

/** GitHub could not be asked (network, timeout, 5xx, rate limit): nothing is known, so nothing is shown. */
export class GitHubUnavailableError extends Error {
  override name = "GitHubUnavailableError";
}

/** The OAuth endpoints refused (a used or expired code, wrong client credentials, a bad refresh token). */
export class OAuthRefusedError extends Error {
  override name = "OAuthRefusedError";
  constructor(readonly code: string, description: string) {
    super(`GitHub refused the sign-in: ${description} (${code})`);
  }
}

/** The calls Slipway makes for people who sign in, with their own token, never the App's. */
export interface GitHubUserApi {
  /** GitHub's authorization page for this App, to send the browser to. */
  authorizeUrl(options: { state: string; redirectUri: string; codeChallenge: string }): string;
  exchangeCode(options: { code: string; redirectUri: string; codeVerifier: string }): Promise<UserToken>;
  refresh(refreshToken: string): Promise<UserToken>;
  user(accessToken: string): Promise<{ login: string; id: number }>;
  /** Asks `GET /repos/{owner}/{repo}` with the user's token: 404 means the user may not read it. */
  repositoryAccess(accessToken: string, owner: string, repo: string): Promise<RepositoryAccess>;
  /** Revokes the token at GitHub (sign-out), with the App's client credentials. */
  revoke(accessToken: string): Promise<void>;
}

const TIMEOUT_MS = 10_000;

/**
 * GitHub's user authorization for GitHub Apps (the web flow with PKCE) and the two API calls
 * the pages need. Plain `fetch`, no retries: a page waits for GitHub at most `TIMEOUT_MS` and
 * then says so. No message here ever contains a token, a code or the client secret.
 *
 * @example
 * const github = createGitHubUserApi({ settings: readSignInSettings(process.env)! });
 * const { read, write } = await github.repositoryAccess(token, "acme", "web");
 */
export function createGitHubUserApi(options: { settings: SignInSettings; fetch?: typeof fetch; now?: () => number }): GitHubUserApi {
  const { settings } = options;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const webUrl = settings.webUrl.replace(/\/+$/, "");
  const apiUrl = settings.apiUrl.replace(/\/+$/, "");

  async function call(url: string, init: RequestInit, what: string): Promise<Response> {
    try {
      return await doFetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new GitHubUnavailableError(`GitHub did not answer ${what}: ${(error as Error).message}`);
    }
  }

  async function tokenRequest(parameters: Record<string, string>, what: string): Promise<UserToken> {
    const response = await call(
      `${webUrl}/login/oauth/access_token`,
      {
        method: "POST",
        headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded", "user-agent": "slipway" },
        body: new URLSearchParams({ client_id: settings.clientId, client_secret: settings.clientSecret, ...parameters }).toString(),
      },
      what,
    );
    if (!response.ok) throw new GitHubUnavailableError(`GitHub answered ${what} with HTTP ${response.status}`);
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    // GitHub reports OAuth errors with status 200 and an `error` field.
    if (typeof body.error === "string") throw new OAuthRefusedError(body.error, String(body.error_description ?? "no description"));
    if (typeof body.access_token !== "string" || body.access_token === "") throw new GitHubUnavailableError(`GitHub's answer to ${what} held no token`);
    const at = now();
    const seconds = (value: unknown) => (typeof value === "number" && value > 0 ? at + value * 1000 : undefined);
    return {
      accessToken: body.access_token,
      accessTokenExpiresAt: seconds(body.expires_in),
      refreshToken: typeof body.refresh_token === "string" && body.refresh_token !== "" ? body.refresh_token : undefined,
      refreshTokenExpiresAt: seconds(body.refresh_token_expires_in),
    };
  }

  async function api(path: string, accessToken: string, what: string): Promise<Response> {
    const response = await call(
      `${apiUrl}${path}`,
      {
        headers: {
          accept: "application/vnd.github+json",
          authorization: `Bearer ${accessToken}`,
          "user-agent": "slipway",
          "x-github-api-version": "2022-11-28",
        },
      },
      what,
    );
    if (response.status === 401) throw new UserTokenRejectedError(`GitHub rejected the user's token asking ${what}`);
    return response;
  }

  return {
    authorizeUrl({ state, redirectUri, codeChallenge }) {
      const query = new URLSearchParams({
        client_id: settings.clientId,
        redirect_uri: redirectUri,
        state,
        code_challenge: codeChallenge,
        code_challenge_method: "S256",
        allow_signup: "false",
      });
      return `${webUrl}/login/oauth/authorize?${query.toString()}`;
    },

    exchangeCode({ code, redirectUri, codeVerifier }) {
      return tokenRequest({ code, redirect_uri: redirectUri, code_verifier: codeVerifier }, "the sign-in code exchange");
    },

    refresh(refreshToken) {
      return tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken }, "a token refresh");
    },

    async user(accessToken) {
      const response = await api("/user", accessToken, "who signed in");
      if (!response.ok) throw new GitHubUnavailableError(`GitHub answered GET /user with HTTP ${response.status}`);
      const body = (await response.json()) as { login?: unknown; id?: unknown };
      if (typeof body.login !== "string" || typeof body.id !== "number") throw new GitHubUnavailableError("GitHub's GET /user held no login");
      return { login: body.login, id: body.id };
    },

    async repositoryAccess(accessToken, owner, repo) {
      const path = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;
      const response = await api(path, accessToken, `about ${owner}/${repo}`);
      // 404: not readable by this user, or the App is not installed there. 403 without a rate
      // limit: blocked (an SSO-enforced organisation, a suspended App): not readable either.
      if (response.status === 404) return { read: false, write: false, manage: false };
      const rateLimited = response.headers.get("x-ratelimit-remaining") === "0" || response.headers.has("retry-after");
      if (response.status === 403 && !rateLimited) return { read: false, write: false, manage: false };
      if (!response.ok) throw new GitHubUnavailableError(`GitHub answered GET ${path} with HTTP ${response.status}`);
      const body = (await response.json()) as { permissions?: { admin?: boolean; maintain?: boolean; push?: boolean; pull?: boolean } };
      const permissions = body.permissions ?? {};
      return {
        // A repository GitHub shows this user is readable; `pull` says so explicitly when present.
        read: permissions.pull !== false,
        write: permissions.admin === true || permissions.maintain === true || permissions.push === true,
        manage: permissions.admin === true || permissions.maintain === true,
      };
    },

    async revoke(accessToken) {
      const response = await call(
        `${apiUrl}/applications/${encodeURIComponent(settings.clientId)}/token`,
        {
          method: "DELETE",
          headers: {
            accept: "application/vnd.github+json",
            authorization: `Basic ${Buffer.from(`${settings.clientId}:${settings.clientSecret}`).toString("base64")}`,
            "content-type": "application/json",
            "user-agent": "slipway",
            "x-github-api-version": "2022-11-28",
          },
          body: JSON.stringify({ access_token: accessToken }),
        },
        "a token revocation",
      );
      // 404: already gone (expired or revoked by the user).
      if (!response.ok && response.status !== 404) throw new GitHubUnavailableError(`GitHub answered the token revocation with HTTP ${response.status}`);
    },
  };
}
