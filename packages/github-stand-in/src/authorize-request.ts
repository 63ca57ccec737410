import type { KeyObject } from "node:crypto";
import { githubError, notFound, type RequestAuth, type Route, type RouteResponse } from "./route-context.js";
import type { StandInRepository, StandInState } from "./stand-in-state.js";
import { verifyAppJwt } from "./verify-app-jwt.js";

/** The outcome: who is calling and which repository they reach, or GitHub's refusal. */
export type Authorization = { ok: true; auth: RequestAuth; repository?: StandInRepository; installationId?: number } | { ok: false; response: RouteResponse; installationId?: number };

/**
 * Authenticates and authorises one request like GitHub:
 * - app routes need `Authorization: Bearer <JWT>` (see {@link verifyAppJwt}); 401 otherwise;
 * - every other route needs an unexpired installation token (`token X` or `Bearer X`): 401
 *   "Bad credentials" for an unknown or expired one, 401 "Requires authentication" when
 *   none is sent (404 on a repository route, as for a private repository);
 * - a token reaches only its installation's repositories, limited further by the
 *   `repositories`/`repository_ids` it was minted with: 404 for any other repository;
 * - a token without the route's permission gets 403 "Resource not accessible by integration".
 */
export function authorizeRequest(options: {
  state: StandInState;
  route: Route;
  authorization: string | undefined;
  params: Record<string, string>;
  appPublicKey?: KeyObject | string;
}): Authorization {
  const { state, route, params } = options;
  const [scheme = "", credential = ""] = (options.authorization ?? "").trim().split(/\s+/, 2);
  const repositoryRoute = params.owner !== undefined && params.repo !== undefined;
  const repository = repositoryRoute ? state.findRepository(params.owner as string, params.repo as string) : undefined;

  if (route.auth === "app") {
    if (scheme.toLowerCase() !== "bearer" || credential.split(".").length !== 3) {
      return { ok: false, response: githubError(401, "A JSON web token could not be decoded (this endpoint needs the app's JWT as `Authorization: Bearer <jwt>`)") };
    }
    const verdict = verifyAppJwt({ token: credential, appId: state.app.id, publicKey: options.appPublicKey });
    if (!verdict.ok) return { ok: false, response: githubError(401, verdict.message) };
    if (repositoryRoute && !repository) return { ok: false, response: notFound(undefined, missingRepository(params)) };
    return { ok: true, auth: { kind: "app" }, repository };
  }

  if (credential === "" || !["token", "bearer"].includes(scheme.toLowerCase())) {
    return { ok: false, response: repositoryRoute ? notFound(undefined, "no installation token was sent") : githubError(401, "Requires authentication") };
  }
  const token = state.tokens.find((t) => t.token === credential);
  if (!token) {
    const hint = credential.split(".").length === 3 ? " (this endpoint needs an installation access token, not the app's JWT)" : "";
    return { ok: false, response: githubError(401, `Bad credentials${hint}`) };
  }
  if (Date.parse(token.expiresAt) <= Date.now()) return { ok: false, response: githubError(401, "Bad credentials (the installation access token has expired)"), installationId: token.installationId };
  const installationId = token.installationId;
  if (repositoryRoute && !repository) return { ok: false, response: notFound(undefined, missingRepository(params)), installationId };
  if (repository && !token.repositoryScope.includes(repository.id)) return { ok: false, response: notFound(undefined, `the token does not reach ${repository.fullName}`), installationId };

  const needed = route.permission === undefined ? [] : Array.isArray(route.permission) ? route.permission : [route.permission];
  const rank = (level: string | undefined): number => (level === "write" ? 2 : level === "read" ? 1 : 0);
  const allowed = needed.length === 0 || needed.some((permission) => {
    const [name = "", level] = permission.split(":");
    return rank(token.permissions[name]) >= rank(level);
  });
  if (!allowed) {
    return {
      ok: false,
      response: { ...githubError(403, "Resource not accessible by integration"), headers: { "x-accepted-github-permissions": needed.map((p) => p.replace(":", "=")).join("; ") } },
      installationId,
    };
  }
  return { ok: true, auth: { kind: "installation", token }, repository, installationId };
}

function missingRepository(params: Record<string, string>): string {
  return `no repository ${params.owner}/${params.repo}; call addRepository first`;
}
