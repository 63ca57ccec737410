import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { SecretBox } from "../../../store/secret-box.js";
import { readCookie, setCookie } from "./cookies.js";
import { OAuthRefusedError, type UserToken } from "./github-user-api.js";
import type { SessionKey } from "./session-key.js";

/** One signed-in person, as a request sees it. */
export interface Session {
  /** Random; only the browser's cookie holds it. The store keeps a digest of it. */
  readonly id: string;
  readonly login: string;
  readonly userId: number;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** What every form of this session sends back; derived from the id with the session key. */
  readonly csrfToken: string;
}

export interface SessionStore {
  /** The request's session when its cookie is genuine, unexpired and known; a cookie that is not is cleared. */
  fromRequest(request: IncomingMessage, response: ServerResponse): Session | undefined;
  /** Starts a session (a new id every time, so a planted cookie is never promoted) and sets its cookie. */
  start(response: ServerResponse, user: { login: string; id: number }, token: UserToken): Promise<Session>;
  /** Ends a session and clears its cookie; returns its token so the caller can revoke it. */
  end(response: ServerResponse | undefined, session: Session): Promise<string | undefined>;
  /**
   * The session's GitHub token, refreshed first when it is about to expire (or when GitHub just
   * rejected it: `forceRefresh`). Undefined when the session is over: it was signed out, or the
   * token can no longer be refreshed (the person revoked the App's authorization).
   */
  accessToken(session: Session, options?: { forceRefresh?: boolean }): Promise<string | undefined>;
}

export interface SessionStoreOptions {
  dataDir: string;
  key: SessionKey;
  /** Seals tokens in the sessions file (the key in secret.key). */
  secrets: SecretBox;
  refresh(refreshToken: string): Promise<UserToken>;
  cookie: { name: string; path: string; secure: boolean };
  /** How long a session lasts, however active. */
  ttlMs: number;
  now: () => number;
  log?: Logger;
}

interface StoredSession {
  login: string;
  userId: number;
  createdAt: number;
  expiresAt: number;
  /** Sealed with the secret box. */
  accessToken: string;
  accessTokenExpiresAt?: number;
  refreshToken?: string;
  refreshTokenExpiresAt?: number;
}

interface SessionsFile {
  version: 1;
  /** Keyed by a digest of the session id: the file alone cannot be turned into cookies. */
  sessions: Record<string, StoredSession>;
}

/** Refresh a token this long before GitHub would reject it. */
const REFRESH_MARGIN_MS = 60_000;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Server-side sessions: the browser holds only a signed, HttpOnly cookie with a random id and
 * an expiry; the person's GitHub token stays here, sealed at rest in `<dataDir>/sessions.json`
 * (mode 0600), so a restart does not sign anyone out and no token ever reaches the browser.
 *
 * @example
 * const sessions = await openSessionStore({ dataDir, key, secrets, refresh, cookie, ttlMs, now: Date.now });
 * const session = sessions.fromRequest(request, response);
 */
export async function openSessionStore(options: SessionStoreOptions): Promise<SessionStore> {
  const { key, secrets, now, log } = options;
  const file = path.join(options.dataDir, "sessions.json");
  const sessions = new Map<string, StoredSession>(Object.entries(await load()));
  const refreshing = new Map<string, Promise<string | undefined>>();
  let writes: Promise<void> = Promise.resolve();

  async function load(): Promise<Record<string, StoredSession>> {
    try {
      const parsed = JSON.parse(await readFile(file, "utf8")) as Partial<SessionsFile>;
      const at = now();
      return Object.fromEntries(Object.entries(parsed.sessions ?? {}).filter(([, s]) => s.expiresAt > at));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      // Sessions are disposable: losing them only means signing in again.
      log?.warn({ err: error, file }, "the sessions file is unreadable; everyone signs in again");
      return {};
    }
  }

  /** Writes the whole file (it is small), one write after another, atomically. */
  function persist(): Promise<void> {
    const at = now();
    for (const [digest, stored] of sessions) if (stored.expiresAt <= at) sessions.delete(digest);
    const document: SessionsFile = { version: 1, sessions: Object.fromEntries(sessions) };
    const text = JSON.stringify(document);
    writes = writes
      .catch(() => undefined)
      .then(async () => {
        const temporary = `${file}.${process.pid}.tmp`;
        await writeFile(temporary, text, { mode: 0o600 });
        await rename(temporary, file);
      });
    return writes;
  }

  const digestOf = (id: string) => createHash("sha256").update(id).digest("base64url");
  const sessionOf = (id: string, stored: StoredSession): Session => ({
    id,
    login: stored.login,
    userId: stored.userId,
    expiresAt: stored.expiresAt,
    csrfToken: key.digest("csrf", id),
  });
  const clearCookie = (response: ServerResponse) => setCookie(response, options.cookie.name, "", { ...options.cookie, maxAgeSeconds: 0 });

  async function refresh(digest: string, stored: StoredSession): Promise<string | undefined> {
    const usable = stored.refreshToken && (stored.refreshTokenExpiresAt === undefined || stored.refreshTokenExpiresAt > now());
    if (!usable) {
      sessions.delete(digest);
      await persist();
      return undefined;
    }
    try {
      const token = await options.refresh(secrets.open(stored.refreshToken!));
      if (sessions.get(digest) !== stored) return undefined; // signed out meanwhile
      Object.assign(stored, sealed(token));
      await persist();
      return token.accessToken;
    } catch (error) {
      if (!(error instanceof OAuthRefusedError)) throw error;
      log?.info({ login: stored.login, reason: error.code }, "GitHub refused to refresh a session's token; the session ends");
      sessions.delete(digest);
      await persist();
      return undefined;
    }
  }

  function sealed(token: UserToken): Pick<StoredSession, "accessToken" | "accessTokenExpiresAt" | "refreshToken" | "refreshTokenExpiresAt"> {
    return {
      accessToken: secrets.seal(token.accessToken),
      accessTokenExpiresAt: token.accessTokenExpiresAt,
      refreshToken: token.refreshToken ? secrets.seal(token.refreshToken) : undefined,
      refreshTokenExpiresAt: token.refreshTokenExpiresAt,
    };
  }

  return {
    fromRequest(request, response) {
      const cookie = readCookie(request, options.cookie.name);
      if (cookie === undefined || cookie === "") return undefined;
      const value = key.unsign(cookie);
      const [version, id, expires] = value?.split(".") ?? [];
      const stored = version === "v1" && id && SESSION_ID.test(id) ? sessions.get(digestOf(id)) : undefined;
      // The signed expiry and the stored one both count: neither a replayed old cookie nor a stale record outlives it.
      if (!stored || !id || Number(expires) * 1000 <= now() || stored.expiresAt <= now()) {
        clearCookie(response);
        return undefined;
      }
      return sessionOf(id, stored);
    },

    async start(response, user, token) {
      const id = randomBytes(32).toString("base64url");
      const at = now();
      const stored: StoredSession = { login: user.login, userId: user.id, createdAt: at, expiresAt: at + options.ttlMs, ...sealed(token) };
      sessions.set(digestOf(id), stored);
      await persist();
      const expiresSeconds = Math.floor(stored.expiresAt / 1000);
      setCookie(response, options.cookie.name, key.sign(`v1.${id}.${expiresSeconds}`), {
        ...options.cookie,
        maxAgeSeconds: options.ttlMs / 1000,
      });
      return sessionOf(id, stored);
    },

    async end(response, session) {
      if (response) clearCookie(response);
      const digest = digestOf(session.id);
      const stored = sessions.get(digest);
      if (!stored) return undefined;
      sessions.delete(digest);
      await persist();
      return secrets.open(stored.accessToken);
    },

    async accessToken(session, accessOptions = {}) {
      const digest = digestOf(session.id);
      const stored = sessions.get(digest);
      if (!stored || stored.expiresAt <= now()) return undefined;
      const expiring = stored.accessTokenExpiresAt !== undefined && stored.accessTokenExpiresAt - REFRESH_MARGIN_MS <= now();
      if (!expiring && !accessOptions.forceRefresh) return secrets.open(stored.accessToken);
      // GitHub's refresh tokens work once: concurrent requests of a session share one refresh.
      let pending = refreshing.get(digest);
      if (!pending) {
        pending = refresh(digest, stored).finally(() => refreshing.delete(digest));
        refreshing.set(digest, pending);
      }
      return pending;
    },
  };
}
