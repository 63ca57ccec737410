import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { HttpError } from "../http-helpers.js";
import { renderSignInProblem, renderSignInNotConfigured } from "../status-pages/render-access.js";
import { sendPage } from "../status-pages/send-page.js";
import { checkFormPost } from "./check-form-post.js";
import { GitHubUnavailableError, OAuthRefusedError, type GitHubUserApi } from "./github-user-api.js";
import { hostCookie, readCookie, setCookie } from "./cookies.js";
import type { SessionKey } from "./session-key.js";
import type { SessionStore } from "./session-store.js";
import { CALLBACK_PATH } from "./sign-in-settings.js";

export interface SignInRoutesOptions {
  /** Unset when sign-in is not configured: the routes then explain how to configure it. */
  signIn?: { github: GitHubUserApi; sessions: SessionStore };
  key: SessionKey;
  publicUrl: string;
  basePath: string;
  secureCookies: boolean;
  now: () => number;
  log?: Logger;
}

/** Answers `true` when it handled the request. */
export type SignInRoutes = (request: IncomingMessage, response: ServerResponse, pathname: string) => Promise<boolean>;

/** A sign-in must come back from GitHub within this time. */
const PENDING_TTL_MS = 10 * 60_000;
/** On https `__Host-slipway_sign_in` (Path=/), on http `slipway_sign_in` (Path=<base>/auth/): see `hostCookie`. */
const PENDING_COOKIE = "slipway_sign_in";

interface PendingSignIn {
  /** OAuth `state`: the callback must bring back exactly this. */
  s: string;
  /** PKCE code verifier. */
  v: string;
  /** Where to go afterwards (a path of these pages). */
  r: string;
  /** Expiry, epoch ms. */
  e: number;
}

/**
 * Sign in with GitHub (the App's user authorization, web flow with `state` and PKCE):
 *
 * - `GET /auth/sign-in?return_to=<path>` sends the browser to GitHub, holding the `state`
 *   and PKCE verifier in a signed, HttpOnly cookie that lives ten minutes (`__Host-` on https,
 *   so that no subdomain, such as a preview, can plant one of its own);
 * - `GET /auth/callback` accepts only the `state` of that cookie (so nobody can sign a
 *   browser into their own account), swaps the code for a token, starts a session;
 * - `POST /auth/sign-out` (with the CSRF token) ends the session and revokes its token.
 *
 * @example
 * const signInRoutes = createSignInRoutes({ signIn: { github, sessions }, key, publicUrl, basePath, secureCookies, now });
 * if (await signInRoutes(request, response, pathname)) return;
 */
export function createSignInRoutes(options: SignInRoutesOptions): SignInRoutes {
  const { signIn, key, publicUrl, basePath, now, log } = options;
  const redirectUri = `${publicUrl}${CALLBACK_PATH}`;
  const { name: pendingName, ...pendingCookie } = hostCookie(PENDING_COOKIE, { path: `${basePath}/auth/`, secure: options.secureCookies });

  function redirect(response: ServerResponse, status: 302 | 303, location: string) {
    response.writeHead(status, { location, "cache-control": "no-store" }).end();
  }

  function startSignIn(response: ServerResponse, url: URL, github: GitHubUserApi) {
    const verifier = randomBytes(32).toString("base64url");
    const pending: PendingSignIn = {
      s: randomBytes(32).toString("base64url"),
      v: verifier,
      r: safeReturnTo(url.searchParams.get("return_to"), basePath),
      e: now() + PENDING_TTL_MS,
    };
    setCookie(response, pendingName, key.sign(Buffer.from(JSON.stringify(pending)).toString("base64url")), {
      ...pendingCookie,
      maxAgeSeconds: PENDING_TTL_MS / 1000,
    });
    const codeChallenge = createHash("sha256").update(verifier).digest("base64url");
    redirect(response, 302, github.authorizeUrl({ state: pending.s, redirectUri, codeChallenge }));
  }

  function takePending(request: IncomingMessage, response: ServerResponse): PendingSignIn | undefined {
    const cookie = readCookie(request, pendingName);
    if (cookie === undefined) return undefined;
    // One use only: the cookie goes whatever the outcome.
    setCookie(response, pendingName, "", { ...pendingCookie, maxAgeSeconds: 0 });
    const value = key.unsign(cookie);
    if (value === undefined) return undefined;
    try {
      const pending = JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as PendingSignIn;
      return typeof pending.s === "string" && typeof pending.v === "string" && pending.e > now() ? pending : undefined;
    } catch {
      return undefined;
    }
  }

  async function finishSignIn(request: IncomingMessage, response: ServerResponse, url: URL, github: GitHubUserApi, sessions: SessionStore) {
    const pending = takePending(request, response);
    const fail = (status: number, message: string) =>
      sendPage(response, status, renderSignInProblem({ basePath, message, returnTo: pending?.r ?? `${basePath}/` }));
    if (!pending) return fail(400, "This sign-in was not started in this browser, or it took longer than ten minutes.");
    const state = Buffer.from(url.searchParams.get("state") ?? "");
    const expected = Buffer.from(pending.s);
    if (state.length !== expected.length || !timingSafeEqual(state, expected)) {
      log?.warn("a sign-in came back with a state that does not match its cookie; refused");
      return fail(400, "The sign-in came back with a state that does not belong to it.");
    }
    const error = url.searchParams.get("error");
    if (error) return fail(403, error === "access_denied" ? "The sign-in was cancelled on GitHub." : "GitHub did not sign you in.");
    const code = url.searchParams.get("code");
    if (!code) return fail(400, "GitHub sent no code back.");

    try {
      const token = await github.exchangeCode({ code, redirectUri, codeVerifier: pending.v });
      const user = await github.user(token.accessToken);
      const previous = sessions.fromRequest(request, response);
      if (previous) await sessions.end(undefined, previous);
      await sessions.start(response, user, token);
      log?.info({ login: user.login }, "signed in with GitHub");
    } catch (failure) {
      if (failure instanceof OAuthRefusedError) {
        log?.warn({ reason: failure.code }, "GitHub refused a sign-in code");
        return fail(403, failure.message);
      }
      if (failure instanceof GitHubUnavailableError) {
        log?.warn({ err: { message: failure.message } }, "GitHub did not complete a sign-in");
        return fail(502, "GitHub did not answer; try again in a moment.");
      }
      throw failure;
    }
    redirect(response, 303, pending.r);
  }

  async function signOut(request: IncomingMessage, response: ServerResponse, github: GitHubUserApi, sessions: SessionStore) {
    const session = sessions.fromRequest(request, response);
    if (!session) return redirect(response, 303, `${basePath}/`);
    try {
      await checkFormPost(request, session, publicUrl);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return sendPage(response, error.status, renderSignInProblem({ basePath, message: error.message, returnTo: `${basePath}/` }));
    }
    const token = await sessions.end(response, session);
    log?.info({ login: session.login }, "signed out");
    if (token) {
      await github.revoke(token).catch((error: unknown) => {
        log?.warn({ err: { message: (error as Error).message } }, "revoking a signed-out session's GitHub token failed; it expires by itself");
      });
    }
    redirect(response, 303, `${basePath}/`);
  }

  return async function signInRoutes(request, response, pathname) {
    const method = request.method ?? "GET";
    // GET only: a HEAD (a link preview) must neither start a sign-in nor spend a code.
    const route =
      pathname === "/auth/sign-in" && method === "GET"
        ? "sign-in"
        : pathname === CALLBACK_PATH && method === "GET"
          ? "callback"
          : pathname === "/auth/sign-out" && method === "POST"
            ? "sign-out"
            : undefined;
    if (!route) return false;
    if (!signIn) {
      if (route === "sign-out") redirect(response, 303, `${basePath}/`);
      else sendPage(response, 404, renderSignInNotConfigured({ basePath, publicUrl }));
      return true;
    }
    const url = new URL(request.url ?? "/", "http://slipway.invalid");
    if (route === "sign-in") startSignIn(response, url, signIn.github);
    else if (route === "callback") await finishSignIn(request, response, url, signIn.github, signIn.sessions);
    else await signOut(request, response, signIn.github, signIn.sessions);
    return true;
  };
}

/** Only a path of these pages: never another host (`//evil`, `/\evil`), never a scheme. */
export function safeReturnTo(value: string | null, basePath: string): string {
  const home = `${basePath}/`;
  if (!value || value.length > 2048) return home;
  if (!value.startsWith(home) || value.startsWith("//") || /[\\\x00-\x1f\x7f]/.test(value)) return home;
  return value;
}
