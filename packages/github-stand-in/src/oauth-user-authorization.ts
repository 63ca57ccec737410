import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { accountJson, collaboratorPermissionJson, repositoryFacts, repositoryJson, type StandInUrls } from "./rest-representations.js";
import { githubError, notFound, type RouteResponse } from "./route-context.js";
import type { RepositoryRole, StandInRepository, StandInState } from "./stand-in-state.js";

/** A user access token of the app, minted by the web flow or a refresh. Never log it. */
export interface StandInUserToken {
  token: string;
  refreshToken: string;
  login: string;
  createdAt: string;
  /** Epoch ms. */
  expiresAt: number;
  refreshExpiresAt: number;
  /** Revoked (`DELETE /applications/{client_id}/token`, or `revokeAuthorization`). */
  revoked: boolean;
  /** Its refresh token was used once already. */
  refreshed: boolean;
}

/** The stand-in's side of "Sign in with GitHub" for the app. */
export interface StandInOAuth {
  /** The app's client id, for `GITHUB_CLIENT_ID`. */
  readonly clientId: string;
  /** A client secret of the app, for `GITHUB_CLIENT_SECRET`. */
  readonly clientSecret: string;
  /** Every user token minted, oldest first. */
  readonly userTokens: readonly StandInUserToken[];
  /** Lifetime of new user access tokens in seconds (GitHub: eight hours). */
  tokenLifetimeSeconds: number;
  /** Makes every user access token expired, as after eight hours; refresh tokens keep working. */
  expireUserTokens(): void;
  /** The user revokes the app's authorization: their tokens and refresh tokens stop working. */
  revokeAuthorization(login: string): void;
}

/** What the server needs besides the public interface: the two entry points it routes to. */
export interface StandInOAuthRoutes extends StandInOAuth {
  /** `/login/oauth/authorize` (page and form post) and `/login/oauth/access_token`. */
  answerWeb(request: { method: string; path: string; query: URLSearchParams; body: string; contentType?: string; accept?: string }): {
    response: RouteResponse;
    operationId: string;
    /** The body holds the client secret or a code: record it redacted. */
    redactBody: boolean;
  };
  /**
   * API requests made with a user token (or with the client credentials, for
   * `apps/delete-token`); undefined for anything else, which the server handles as before.
   */
  answerApi(request: { operationId: string; authorization: string | undefined; params: Record<string, string>; body: unknown }): RouteResponse | undefined;
}

const CODE_LIFETIME_MS = 10 * 60_000;
const REFRESH_LIFETIME_SECONDS = 184 * 24 * 3600;

interface PendingCode {
  code: string;
  login: string;
  redirectUri: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
  expiresAt: number;
  used: boolean;
}

/**
 * GitHub's user authorization for the app (web flow, with PKCE) and the API calls a user
 * token may make here (`GET /user`, `GET /repos/{owner}/{repo}` with the user's `permissions`,
 * the collaborator permission), answering as GitHub does: OAuth errors with status 200 and an
 * `error` field, 401 for an expired or revoked token, 404 for a private repository the user
 * cannot read. The authorize page is a form where a test (or a browser) types the login it
 * signs in as.
 *
 * @example
 * const github = await startGitHubStandIn();
 * // GITHUB_CLIENT_ID=github.oauth.clientId GITHUB_CLIENT_SECRET=github.oauth.clientSecret
 * github.setPermission("acme", "web", "alice", "write");
 */
export function createStandInOAuth(options: { state: StandInState; urls: StandInUrls }): StandInOAuthRoutes {
  const { state, urls } = options;
  const clientId = `Iv1.${state.app.id.toString(16).padStart(16, "0")}`;
  const clientSecret = randomBytes(20).toString("hex");
  const codes = new Map<string, PendingCode>();
  const userTokens: StandInUserToken[] = [];

  const same = (a: string, b: string) => {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  };

  function mint(login: string): StandInUserToken {
    const now = Date.now();
    const token: StandInUserToken = {
      token: `ghu_${randomBytes(27).toString("base64url").replace(/[-_]/g, "x").slice(0, 36)}`,
      refreshToken: `ghr_${randomBytes(57).toString("base64url").replace(/[-_]/g, "x").slice(0, 76)}`,
      login,
      createdAt: new Date(now).toISOString(),
      expiresAt: now + oauth.tokenLifetimeSeconds * 1000,
      refreshExpiresAt: now + REFRESH_LIFETIME_SECONDS * 1000,
      revoked: false,
      refreshed: false,
    };
    userTokens.push(token);
    return token;
  }

  function tokenAnswer(token: StandInUserToken): Record<string, unknown> {
    return {
      access_token: token.token,
      expires_in: Math.round((token.expiresAt - Date.now()) / 1000),
      refresh_token: token.refreshToken,
      refresh_token_expires_in: Math.round((token.refreshExpiresAt - Date.now()) / 1000),
      scope: "",
      token_type: "bearer",
    };
  }

  function authorizePage(query: URLSearchParams): RouteResponse {
    if (query.get("client_id") !== clientId) return page(404, "<h1>Not Found</h1><p>The client_id is not this app's.</p>");
    const redirectUri = query.get("redirect_uri");
    if (!redirectUri || !/^https?:\/\//.test(redirectUri)) return page(400, "<h1>Redirect URI required</h1><p>The stand-in has no registered callback URL: send redirect_uri.</p>");
    const hidden = ["client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"]
      .map((name) => `<input type="hidden" name="${name}" value="${escape(query.get(name) ?? "")}">`)
      .join("");
    return page(
      200,
      `<h1>Authorize ${escape(state.app.name)}</h1>
<form method="post" action="/login/oauth/authorize">${hidden}
<p><label>Sign in to GitHub as <input name="login" id="login" autocomplete="username" value="${escape(query.get("login") ?? "")}"></label></p>
<p><button type="submit" name="decision" value="authorize" id="authorize">Authorize ${escape(state.app.name)}</button>
<button type="submit" name="decision" value="cancel" id="cancel">Cancel</button></p>
</form>`,
    );
  }

  function authorizeDecision(form: URLSearchParams): RouteResponse {
    if (form.get("client_id") !== clientId) return page(404, "<h1>Not Found</h1>");
    const redirectUri = form.get("redirect_uri") ?? "";
    if (!/^https?:\/\//.test(redirectUri)) return page(400, "<h1>Redirect URI required</h1>");
    const back = new URL(redirectUri);
    const stateValue = form.get("state");
    if (form.get("decision") === "cancel") {
      back.searchParams.set("error", "access_denied");
      back.searchParams.set("error_description", "The user has denied your application access.");
    } else {
      const login = (form.get("login") ?? "").trim();
      if (!/^[A-Za-z0-9-]{1,39}$/.test(login)) return page(422, "<h1>Type a login</h1>");
      const code = randomBytes(10).toString("hex");
      codes.set(code, {
        code,
        login: state.account(login).login,
        redirectUri,
        codeChallenge: form.get("code_challenge") || undefined,
        codeChallengeMethod: form.get("code_challenge_method") || undefined,
        expiresAt: Date.now() + CODE_LIFETIME_MS,
        used: false,
      });
      back.searchParams.set("code", code);
    }
    if (stateValue !== null) back.searchParams.set("state", stateValue);
    return { status: 302, headers: { location: back.toString() }, raw: "" };
  }

  function accessToken(parameters: URLSearchParams, json: boolean): RouteResponse {
    const answer = (body: Record<string, unknown>): RouteResponse =>
      json
        ? { status: 200, body }
        : { status: 200, raw: new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString(), headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" } };
    const error = (code: string, description: string) => answer({ error: code, error_description: description, error_uri: "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors" });

    if (parameters.get("client_id") !== clientId || !same(parameters.get("client_secret") ?? "", clientSecret)) {
      return error("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.");
    }
    if (parameters.get("grant_type") === "refresh_token") {
      const old = userTokens.find((t) => same(t.refreshToken, parameters.get("refresh_token") ?? ""));
      if (!old || old.revoked || old.refreshed || old.refreshExpiresAt <= Date.now()) return error("bad_refresh_token", "The refresh token passed is incorrect or expired.");
      old.refreshed = true;
      return answer(tokenAnswer(mint(old.login)));
    }
    const pending = codes.get(parameters.get("code") ?? "");
    if (!pending || pending.used || pending.expiresAt <= Date.now()) return error("bad_verification_code", "The code passed is incorrect or expired.");
    pending.used = true;
    const redirectUri = parameters.get("redirect_uri");
    if (redirectUri !== null && redirectUri !== pending.redirectUri) return error("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.");
    if (pending.codeChallenge) {
      const verifier = parameters.get("code_verifier") ?? "";
      const computed = pending.codeChallengeMethod === "S256" ? createHash("sha256").update(verifier).digest("base64url") : verifier;
      if (!same(computed, pending.codeChallenge)) return error("bad_verification_code", "The code_verifier does not match the code_challenge.");
    }
    return answer(tokenAnswer(mint(pending.login)));
  }

  function userJson(login: string): Record<string, unknown> {
    const account = state.account(login);
    const created = state.app.createdAt;
    return {
      ...accountJson(urls, account),
      user_view_type: "private",
      name: account.login,
      company: null,
      blog: "",
      location: null,
      email: null,
      notification_email: null,
      hireable: null,
      bio: null,
      twitter_username: null,
      public_repos: 0,
      public_gists: 0,
      followers: 0,
      following: 0,
      created_at: created,
      updated_at: created,
      private_gists: 0,
      total_private_repos: 0,
      owned_private_repos: 0,
      disk_usage: 0,
      collaborators: 0,
      two_factor_authentication: true,
    };
  }

  /** What GitHub lets `login` do: their role, read on a public repository, admin on their own. */
  function roleOf(repository: StandInRepository, login: string): RepositoryRole {
    if (repository.owner.toLowerCase() === login.toLowerCase()) return "admin";
    return repository.roles.get(login.toLowerCase()) ?? (repository.private ? "none" : "read");
  }

  const oauth: StandInOAuthRoutes = {
    clientId,
    clientSecret,
    userTokens,
    tokenLifetimeSeconds: 8 * 3600,
    expireUserTokens() {
      for (const token of userTokens) token.expiresAt = Date.now() - 1000;
    },
    revokeAuthorization(login) {
      for (const token of userTokens) if (token.login.toLowerCase() === login.toLowerCase()) token.revoked = true;
    },

    answerWeb({ method, path, query, body, contentType, accept }) {
      const form = /json/i.test(contentType ?? "") ? jsonToParameters(body) : new URLSearchParams(body);
      if (path === "/login/oauth/authorize" && method === "GET") return { response: authorizePage(query), operationId: "oauth/authorize", redactBody: false };
      if (path === "/login/oauth/authorize" && method === "POST") return { response: authorizeDecision(form), operationId: "oauth/authorize", redactBody: false };
      if (path === "/login/oauth/access_token" && method === "POST") {
        // GitHub also reads the parameters from the query string.
        for (const [name, value] of query) if (!form.has(name)) form.set(name, value);
        return { response: accessToken(form, /json/i.test(accept ?? "")), operationId: "oauth/access-token", redactBody: true };
      }
      return { response: page(404, "<h1>Not Found</h1>"), operationId: "oauth/unknown", redactBody: false };
    },

    answerApi({ operationId, authorization, params, body }) {
      const [scheme = "", credential = ""] = (authorization ?? "").trim().split(/\s+/, 2);
      if (operationId === "apps/delete-token" && scheme.toLowerCase() === "basic") {
        const [id, secret = ""] = Buffer.from(credential, "base64").toString("utf8").split(":", 2);
        if (id !== clientId || params.client_id !== clientId || !same(secret, clientSecret)) return githubError(401, "Bad credentials");
        const given = (body as { access_token?: unknown } | undefined)?.access_token;
        const token = userTokens.find((t) => typeof given === "string" && same(t.token, given) && !t.revoked);
        if (!token) return notFound("https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token");
        token.revoked = true;
        return { status: 204 };
      }
      if (!["token", "bearer"].includes(scheme.toLowerCase()) || !credential.startsWith("ghu_")) return undefined;
      const token = userTokens.find((t) => same(t.token, credential));
      if (!token || token.revoked || token.expiresAt <= Date.now()) return githubError(401, "Bad credentials");
      const repository = params.owner !== undefined && params.repo !== undefined ? state.findRepository(params.owner, params.repo) : undefined;
      switch (operationId) {
        case "users/get-authenticated":
          return { status: 200, body: userJson(token.login) };
        case "repos/get": {
          const role = repository ? roleOf(repository, token.login) : "none";
          if (!repository || role === "none") return notFound("https://docs.github.com/rest/repos/repos#get-a-repository");
          const rank = ["none", "read", "triage", "write", "maintain", "admin"].indexOf(role);
          const json = repositoryJson(urls, repositoryFacts(state, repository), { full: true });
          return { status: 200, body: { ...json, permissions: { admin: rank >= 5, maintain: rank >= 4, push: rank >= 3, triage: rank >= 2, pull: rank >= 1 } } };
        }
        case "repos/get-collaborator-permission-level": {
          if (!repository || roleOf(repository, token.login) === "none") return notFound();
          const username = params.username ?? "";
          return { status: 200, body: collaboratorPermissionJson(urls, state.account(username), roleOf(repository, username)) };
        }
        default:
          return githubError(403, `Resource not accessible by integration (the GitHub stand-in answers ${operationId} only for installation tokens)`);
      }
    },
  };
  return oauth;
}

function page(status: number, body: string): RouteResponse {
  return {
    status,
    raw: `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>GitHub stand-in</title></head><body>${body}</body></html>`,
    headers: { "content-type": "text/html; charset=utf-8" },
  };
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function jsonToParameters(body: string): URLSearchParams {
  try {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    return new URLSearchParams(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
  } catch {
    return new URLSearchParams();
  }
}
