import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";
import { pino, type Logger } from "pino";
import { expect } from "vitest";
import { resolveAdminToken } from "../../src/control-plane/admin/admin-token.js";
import { HttpError, sendJson, sendText } from "../../src/control-plane/http/http-helpers.js";
import { createStatusPages, type StatusPages } from "../../src/control-plane/http/status-pages/create-status-pages.js";
import { createRevisionLogs } from "../../src/control-plane/revision-logs.js";
import { createSecretStore, type SecretStore } from "../../src/control-plane/secrets/secret-store.js";
import { createSecretsApi } from "../../src/control-plane/secrets/secrets-api.js";
import { createSecretsPages } from "../../src/control-plane/secrets/secrets-pages.js";
import type { Deployment } from "../../src/store/model.js";
import { openStateStore, type StateStore } from "../../src/store/open-state-store.js";
import { openSecretBox } from "../../src/store/secret-box.js";
import { tempDir } from "./temp-dir.js";

/**
 * The secrets routes as the control plane serves them (route(): the secrets API, the secrets
 * pages, then the status pages, errors answered as JSON), over real HTTP on loopback, with a
 * generated admin token in the data dir, sign-in with GitHub played by the stand-in, and a
 * deployment of the public `acme/shop` (maya maintains it, adam administers it, rita reads it).
 */
export interface SecretsTestbed {
  github: GitHubStandIn;
  dataDir: string;
  store: StateStore;
  secrets: SecretStore;
  adminToken: string;
  baseUrl: string;
  statusPages: StatusPages;
  /** Every line the routes logged, as JSON text. */
  logLines: string[];
  request(pathname: string, options?: RequestOptions): Promise<Answer>;
  /** Signs `login` in through the real flow (Slipway → the stand-in's authorize form → the callback): the session cookie. */
  signIn(login: string): Promise<string>;
  close(): Promise<void>;
}

export interface RequestOptions {
  method?: string;
  cookie?: string;
  token?: string;
  json?: unknown;
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  text: string;
  location: string | null;
  cookies: string[];
}

export const REPOSITORY_ID = 601;

export async function openSecretsTestbed(): Promise<SecretsTestbed> {
  const github = await startGitHubStandIn({ appId: 9 });
  github.addRepository({ owner: "acme", name: "shop", id: REPOSITORY_ID, installationId: 1 });
  github.setPermission("acme", "shop", "maya", "maintain");
  github.setPermission("acme", "shop", "adam", "admin");
  github.setPermission("acme", "shop", "rita", "read");
  github.setPermission("acme", "shop", "walt", "write");

  const dataDir = await tempDir("slipway-secrets-");
  const logLines: string[] = [];
  const log: Logger = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });
  const store = await openStateStore({ dataDir, log });
  const secrets = createSecretStore({ store, box: await openSecretBox({ dataDir }) });
  const adminToken = await resolveAdminToken({ dataDir, log });
  await store.update((state) => {
    state.deployments["shop-production"] = shopDeployment("production");
  });

  let route: (request: IncomingMessage, response: ServerResponse) => Promise<void> = async () => {};
  const server: Server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      if (!response.headersSent) sendJson(response, status, { error: status >= 500 ? String(error) : (error as Error).message });
      else response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const statusPages = await createStatusPages({
    store,
    logs: createRevisionLogs({ dataDir }),
    publicUrl: baseUrl,
    heartbeatMs: 60_000,
    signIn: { clientId: github.oauth.clientId, clientSecret: github.oauth.clientSecret, webUrl: github.url, apiUrl: github.apiUrl },
    linkSecrets: true,
    log,
  });
  const secretsApi = createSecretsApi({ secrets, store, adminToken, access: statusPages.context.access, publicUrl: baseUrl, log });
  const secretsPages = createSecretsPages({ ...statusPages.context, secrets, log });
  route = async (request, response) => {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    if (await secretsApi(request, response, pathname)) return;
    if (await secretsPages(request, response, pathname)) return;
    if (await statusPages(request, response, pathname)) return;
    sendText(response, 404, "Not found\n");
  };

  async function request(pathname: string, options: RequestOptions = {}): Promise<Answer> {
    const body = options.json !== undefined ? JSON.stringify(options.json) : options.form ? new URLSearchParams(options.form).toString() : undefined;
    const response = await fetch(`${baseUrl}${pathname}`, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      redirect: "manual",
      headers: {
        ...(options.cookie ? { cookie: options.cookie } : {}),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.json !== undefined ? { "content-type": "application/json" } : {}),
        ...(options.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
        ...options.headers,
      },
      body,
    });
    return { status: response.status, text: await response.text(), location: response.headers.get("location"), cookies: response.headers.getSetCookie() };
  }

  const cookieValue = (cookies: string[], name: string) => cookies.map((c) => c.split(";")[0]!).find((c) => c.startsWith(`${name}=`));

  return {
    github,
    dataDir,
    store,
    secrets,
    adminToken,
    baseUrl,
    statusPages,
    logLines,
    request,
    async signIn(login) {
      const start = await request(`/auth/sign-in?return_to=${encodeURIComponent("/")}`);
      expect(start.status).toBe(302);
      const pending = cookieValue(start.cookies, "slipway_sign_in")!;
      const authorizeUrl = new URL(start.location!);
      const decision = await fetch(`${github.url}/login/oauth/authorize`, {
        method: "POST",
        redirect: "manual",
        body: new URLSearchParams({ ...Object.fromEntries(authorizeUrl.searchParams), login, decision: "authorize" }),
      });
      const callback = new URL(decision.headers.get("location")!);
      const done = await request(`${callback.pathname}${callback.search}`, { cookie: pending });
      expect(done.status, done.text).toBe(303);
      return cookieValue(done.cookies, "slipway_session")!;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      expect(github.violations).toEqual([]);
      await github.close();
    },
  };
}

export function shopDeployment(environment: string): Deployment {
  const at = new Date().toISOString();
  return {
    id: `shop-${environment}`,
    installationId: 1,
    repository: { id: REPOSITORY_ID, owner: "acme", name: "shop", fullName: "acme/shop", defaultBranch: "main", private: false },
    environment,
    state: "READY",
    createdAt: at,
    updatedAt: at,
  };
}

/** The text of every file under `dir`, with its path. */
export async function everyFile(dir: string): Promise<Array<{ file: string; text: string }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (file) => ({ file: path.relative(dir, file), text: (await readFile(file)).toString("latin1") })));
}

/** The CSRF token of a page's first form. */
export function csrfOf(page: string): string {
  const token = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
  expect(token, "a form with a CSRF token").toBeDefined();
  return token!;
}
