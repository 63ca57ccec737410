/**
 * The access rule of the status pages and the JSON view, over HTTP, with GitHub played by the
 * stand-in (its OAuth endpoints and user tokens): public repositories for anyone, private ones
 * for people GitHub lets read them, sessions that cannot be forged or outlive themselves, and
 * no state change without the session's CSRF token.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer, IncomingMessage, ServerResponse, type Server } from "node:http";
import { Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sendText } from "../../../src/control-plane/http/http-helpers.js";
import { hostCookie, setCookie } from "../../../src/control-plane/http/auth/cookies.js";
import { createStatusPages, type StatusPagesOptions } from "../../../src/control-plane/http/status-pages/create-status-pages.js";
import { createRevisionLogs, type RevisionLogs } from "../../../src/control-plane/revision-logs.js";
import type { Deployment, Revision } from "../../../src/store/model.js";
import { openStateStore, type StateStore } from "../../../src/store/open-state-store.js";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";

const CACHE_MS = 60_000;
let github: GitHubStandIn;
let dataDir: string;
let store: StateStore;
let logs: RevisionLogs;
let server: Server;
let baseUrl: string;
let clock: number;
let handler: Awaited<ReturnType<typeof createStatusPages>>;
let actions: Array<{ action: string; revisionId: string; login: string }>;

let publicSite: { deployment: Deployment; revision: Revision };
let vault: { deployment: Deployment; revision: Revision };

beforeAll(async () => {
  github = await startGitHubStandIn({ appId: 9 });
  github.addRepository({ owner: "acme", name: "site", id: 501, installationId: 1 });
  github.addRepository({ owner: "acme", name: "vault", id: 502, installationId: 1, private: true });
  github.setPermission("acme", "vault", "alice", "write");
  github.setPermission("acme", "vault", "rita", "read");
});

afterAll(async () => {
  expect(github.violations).toEqual([]);
  await github?.close();
});

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "slipway-access-"));
  store = await openStateStore({ dataDir, log: pino({ level: "silent" }) });
  logs = createRevisionLogs({ dataDir });
  clock = Date.now();
  actions = [];
  server = createServer((request, response) => {
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    handler(request, response, pathname).then(
      (handled) => {
        if (!handled) sendText(response, 418, "not a status page\n");
      },
      (error: unknown) => sendText(response, 500, String(error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  handler = await pages();
  publicSite = await deploy("site", 501, false);
  vault = await deploy("vault", 502, true);
  github.setPermission("acme", "vault", "rita", "read");
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dataDir, { recursive: true, force: true });
});

function pages(overrides: Partial<StatusPagesOptions> = {}) {
  return createStatusPages({
    store,
    logs,
    publicUrl: baseUrl,
    heartbeatMs: 60_000,
    signIn: { clientId: github.oauth.clientId, clientSecret: github.oauth.clientSecret, webUrl: github.url, apiUrl: github.apiUrl },
    accessCacheMs: CACHE_MS,
    now: () => clock,
    async cancel(revisionId, login) {
      actions.push({ action: "cancel", revisionId, login });
    },
    async redeploy(revisionId, login) {
      actions.push({ action: "redeploy", revisionId, login });
    },
    async restart(revisionId, login) {
      actions.push({ action: "restart", revisionId, login });
    },
    ...overrides,
  });
}

async function deploy(name: string, id: number, isPrivate: boolean) {
  const deployment: Deployment = {
    id: `${name}-production`,
    installationId: 1,
    repository: { id, owner: "acme", name, fullName: `acme/${name}`, defaultBranch: "main", private: isPrivate },
    environment: "production",
    state: "READY",
    createdAt: new Date(clock).toISOString(),
    updatedAt: new Date(clock).toISOString(),
  };
  const revision: Revision = {
    id: randomUUID(),
    number: 1,
    deploymentId: deployment.id,
    sha: "a".repeat(40),
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat" },
    state: "BUILDING",
    build: { commands: ["true"], timeoutSeconds: 60, env: {} },
    phases: [{ name: "build", startedAt: new Date(clock).toISOString() }],
    attempts: 1,
    github: {},
    createdAt: new Date(clock).toISOString(),
    updatedAt: new Date(clock).toISOString(),
  };
  await store.update((state) => {
    state.deployments[deployment.id] = deployment;
    state.revisions[revision.id] = revision;
  });
  await logs.append(revision.id, 0, `building ${name}\n`);
  return { deployment, revision };
}

interface Answer {
  status: number;
  text: string;
  location: string | null;
  cookies: string[];
}

async function request(pathname: string, options: { cookie?: string; method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${baseUrl}${pathname}`, {
    method: options.method ?? (options.form ? "POST" : "GET"),
    redirect: "manual",
    headers: {
      ...(options.cookie ? { cookie: options.cookie } : {}),
      ...(options.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      ...options.headers,
    },
    body: options.form ? new URLSearchParams(options.form).toString() : undefined,
  });
  return { status: response.status, text: await response.text(), location: response.headers.get("location"), cookies: response.headers.getSetCookie() };
}

const cookieValue = (cookies: string[], name: string) => cookies.map((c) => c.split(";")[0]!).find((c) => c.startsWith(`${name}=`));

/** Signs `login` in through the real flow: Slipway → the stand-in's authorize form → the callback. */
async function signIn(login: string, returnTo = "/"): Promise<string> {
  const start = await request(`/auth/sign-in?return_to=${encodeURIComponent(returnTo)}`);
  expect(start.status).toBe(302);
  const pending = cookieValue(start.cookies, "slipway_sign_in")!;
  const authorizeUrl = new URL(start.location!);
  expect(`${authorizeUrl.origin}${authorizeUrl.pathname}`).toBe(`${github.url}/login/oauth/authorize`);
  const decision = await fetch(`${github.url}/login/oauth/authorize`, {
    method: "POST",
    redirect: "manual",
    body: new URLSearchParams({ ...Object.fromEntries(authorizeUrl.searchParams), login, decision: "authorize" }),
  });
  const callback = new URL(decision.headers.get("location")!);
  expect(callback.pathname).toBe("/auth/callback");
  const done = await request(`${callback.pathname}${callback.search}`, { cookie: pending });
  expect(done.status, done.text).toBe(303);
  expect(done.location).toBe(returnTo);
  const session = done.cookies.find((c) => c.startsWith("slipway_session="))!;
  expect(session).toMatch(/; Path=\/; Max-Age=43200; HttpOnly; SameSite=Lax$/);
  return session.split(";")[0]!;
}

function csrfOf(page: string): string | undefined {
  return /name="csrf" value="([^"]+)"/.exec(page)?.[1];
}

describe("who may read what", () => {
  it("a public repository is shown to anyone: page, log, events and JSON", async () => {
    const id = publicSite.revision.id;
    const page = await request(`/revisions/${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("building site");
    expect(page.text).toContain("Sign in with GitHub");
    expect((await request(`/revisions/${id}/log`)).text).toBe("building site\n");
    expect((await request(`/api/v1/revisions/${id}`)).status).toBe(200);
    const index = await request("/");
    expect(index.text).toContain("acme/site");
    expect(index.text).not.toContain("acme/vault");
    expect(index.text).toContain("Deployments of private repositories are shown to people GitHub lets read them");
    const list = JSON.parse((await request("/api/v1/deployments")).text);
    expect(list.deployments.map((d: { id: string }) => d.id)).toEqual([publicSite.deployment.id]);
  });

  it("a private repository, not signed in: sent to sign in, and nothing else, whether the revision exists or not", async () => {
    const id = vault.revision.id;
    for (const target of [`/revisions/${id}`, `/revisions/${id}/log`, `/revisions/${randomUUID()}`]) {
      const answer = await request(target);
      expect(answer.status, target).toBe(302);
      expect(answer.location).toBe(`/auth/sign-in?return_to=${encodeURIComponent(target)}`);
      expect(answer.text).toBe("");
    }
    for (const target of [`/revisions/${id}/events`, `/revisions/${id}/log-page?before=5`, `/api/v1/revisions/${id}`, `/api/v1/deployments/${vault.deployment.id}`]) {
      const answer = await request(target);
      expect(answer.status, target).toBe(404);
      expect(answer.text).not.toContain("vault");
    }
    expect((await request(`/api/v1/revisions/${id}`)).text).toBe((await request(`/api/v1/revisions/${randomUUID()}`)).text);
  });

  it("a private repository, signed in with access: everything; without access: no page and no JSON", async () => {
    const rita = await signIn("rita");
    const id = vault.revision.id;
    const page = await request(`/revisions/${id}`, { cookie: rita });
    expect(page.status).toBe(200);
    expect(page.text).toContain("acme/vault · production · revision 1");
    expect(page.text).toContain("Signed in as</span> <strong>@rita</strong>");
    expect(page.text).not.toContain('id="cancel-button"'); // read is not write
    expect((await request(`/revisions/${id}/log`, { cookie: rita })).text).toBe("building vault\n");
    expect((await request(`/api/v1/revisions/${id}`, { cookie: rita })).status).toBe(200);
    expect((await request(`/api/v1/deployments/${vault.deployment.id}`, { cookie: rita })).status).toBe(200);
    expect((await request("/", { cookie: rita })).text).toContain("acme/vault");

    const mallory = await signIn("mallory");
    const denied = await request(`/revisions/${id}`, { cookie: mallory });
    expect(denied.status).toBe(404);
    expect(denied.text).not.toContain("vault");
    expect(denied.text).not.toContain("building");
    for (const target of [`/revisions/${id}/log`, `/revisions/${id}/events`, `/api/v1/revisions/${id}`, `/api/v1/deployments/${vault.deployment.id}`]) {
      expect((await request(target, { cookie: mallory })).status, target).toBe(404);
    }
    const list = JSON.parse((await request("/api/v1/deployments", { cookie: mallory })).text);
    expect(list.deployments.map((d: { id: string }) => d.id)).toEqual([publicSite.deployment.id]);
    expect((await request("/", { cookie: mallory })).text).not.toContain("vault");
  });

  it("a revoked permission stops working once the cached answer expires", async () => {
    const rita = await signIn("rita");
    const target = `/revisions/${vault.revision.id}`;
    expect((await request(target, { cookie: rita })).status).toBe(200);
    const asked = () => github.requests.filter((r) => r.path === "/repos/acme/vault" && r.note === "user access token").length;
    const before = asked();

    github.setPermission("acme", "vault", "rita", "none");
    expect((await request(target, { cookie: rita })).status).toBe(200); // GitHub is not asked again within the minute
    expect(asked()).toBe(before);

    clock += CACHE_MS + 1;
    expect((await request(target, { cookie: rita })).status).toBe(404);
    expect((await request(`/api/v1/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(404);
    expect(asked()).toBe(before + 1);
  });

  it("GitHub not answering shows nothing and says so, rather than guessing", async () => {
    const rita = await signIn("rita");
    github.injectFaults({ path: /^\/repos\/acme\/vault$/, status: 502, count: 4 });
    const page = await request(`/revisions/${vault.revision.id}`, { cookie: rita });
    expect(page.status).toBe(503);
    expect(page.text).not.toContain("building vault");
    expect((await request(`/api/v1/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(503);
    github.clearFaults();
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(200); // failures are not cached
  });

  it("an expired GitHub token is refreshed quietly; a revoked authorization ends the session", async () => {
    const rita = await signIn("rita");
    github.oauth.expireUserTokens();
    clock += CACHE_MS + 1;
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(200);

    github.oauth.revokeAuthorization("rita");
    clock += CACHE_MS + 1;
    const after = await request(`/revisions/${vault.revision.id}`, { cookie: rita });
    expect(after.status).toBe(404); // this request still carried the session…
    const next = await request(`/revisions/${vault.revision.id}`, { cookie: rita });
    expect(next.status).toBe(302); // …which is over now
    expect(next.cookies.some((c) => /^slipway_session=; .*Max-Age=0/.test(c))).toBe(true);
  });
});

describe("whether a repository is public", () => {
  it("is what GitHub says now, not what the last event said; not knowing shows strangers nothing", async () => {
    let answer: () => Promise<boolean> = async () => false;
    handler = await pages({ isPublicRepository: () => answer() });
    // Recorded as public, but GitHub says private now (made private since its last push):
    expect((await request(`/revisions/${publicSite.revision.id}`)).status).toBe(302);
    expect((await request(`/api/v1/revisions/${publicSite.revision.id}`)).status).toBe(404);

    answer = async () => {
      throw Object.assign(new Error("Bad gateway"), { status: 502 });
    };
    clock += CACHE_MS + 1;
    expect((await request(`/revisions/${publicSite.revision.id}`)).status).toBe(503);
    const index = await request("/");
    expect(index.status).toBe(200);
    expect(index.text).toContain("GitHub did not answer");
    expect(index.text).not.toContain("acme/site");
    expect((await request("/api/v1/deployments")).status).toBe(503);
    // A signed-in person's own token answers instead.
    const rita = await signIn("rita");
    expect((await request(`/revisions/${publicSite.revision.id}`, { cookie: rita })).status).toBe(200);
  });
});

describe("sessions", () => {
  it("a forged, tampered or foreign cookie is no session: it is cleared and the private page sends to sign-in", async () => {
    const rita = await signIn("rita");
    const [name, value] = rita.split("=") as [string, string];
    const [version, id, expires, signature] = value.split(".");
    const target = `/revisions/${vault.revision.id}`;
    const forgeries = [
      `${name}=v1.${"A".repeat(43)}.${expires}.${signature}`, // another id under this signature
      `${name}=${version}.${id}.${Number(expires) + 86_400}.${signature}`, // a later expiry
      `${name}=${version}.${id}.${expires}.${"x".repeat(43)}`, // a made-up signature
      `${name}=${version}.${id}.${expires}`, // no signature
      `${name}=garbage`,
    ];
    for (const cookie of forgeries) {
      const answer = await request(target, { cookie });
      expect(answer.status, cookie).toBe(302);
      expect(answer.cookies.some((c) => /^slipway_session=; .*Max-Age=0/.test(c))).toBe(true);
    }
    // A cookie signed with another server's key (another data dir) is not one of ours either.
    const otherDir = await mkdtemp(path.join(tmpdir(), "slipway-access-other-"));
    const otherStore = await openStateStore({ dataDir: otherDir, log: pino({ level: "silent" }) });
    const original = { store, handler };
    store = otherStore;
    handler = await pages();
    const foreign = await signIn("rita");
    store = original.store;
    handler = original.handler;
    expect((await request(target, { cookie: foreign })).status).toBe(302);
    await rm(otherDir, { recursive: true, force: true });

    expect((await request(target, { cookie: rita })).status).toBe(200); // the genuine one still works
  });

  it("a session ends after twelve hours", async () => {
    const rita = await signIn("rita");
    clock += 12 * 3600_000 - 1000;
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(200);
    clock += 2000;
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(302);
  });

  it("the OAuth state must be the one this browser was given", async () => {
    const start = await request(`/auth/sign-in?return_to=/`);
    const pending = cookieValue(start.cookies, "slipway_sign_in")!;
    const authorizeUrl = new URL(start.location!);
    const decision = await fetch(`${github.url}/login/oauth/authorize`, {
      method: "POST",
      redirect: "manual",
      body: new URLSearchParams({ ...Object.fromEntries(authorizeUrl.searchParams), login: "mallory", decision: "authorize" }),
    });
    const callback = new URL(decision.headers.get("location")!);
    const code = callback.searchParams.get("code")!;

    // The attacker's code and state, in a victim's browser that started no sign-in (login CSRF):
    const noCookie = await request(`/auth/callback?code=${code}&state=${callback.searchParams.get("state")}`);
    expect(noCookie.status).toBe(400);
    // A state other than the cookie's:
    const otherStart = await request(`/auth/sign-in?return_to=/`);
    const wrongState = await request(`/auth/callback?code=${code}&state=${callback.searchParams.get("state")}`, { cookie: cookieValue(otherStart.cookies, "slipway_sign_in") });
    expect(wrongState.status).toBe(400);
    for (const answer of [noCookie, wrongState]) expect(cookieValue(answer.cookies, "slipway_session")).toBeUndefined();
    // A pending sign-in older than ten minutes:
    clock += 11 * 60_000;
    expect((await request(`${callback.pathname}${callback.search}`, { cookie: pending })).status).toBe(400);
  });

  it("return_to never leads off the site", async () => {
    for (const target of ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]) {
      const start = await request(`/auth/sign-in?return_to=${encodeURIComponent(target)}`);
      const pending = JSON.parse(Buffer.from(cookieValue(start.cookies, "slipway_sign_in")!.split("=")[1]!.split(".")[0]!, "base64url").toString());
      expect(pending.r, target).toBe("/");
    }
  });

  it("keeps tokens out of the browser and sealed at rest; the key and the sessions file are 0600", async () => {
    const rita = await signIn("rita");
    const page = await request(`/revisions/${vault.revision.id}`, { cookie: rita });
    const sessionsFile = await readFile(path.join(dataDir, "sessions.json"), "utf8");
    for (const token of github.oauth.userTokens) {
      for (const secret of [token.token, token.refreshToken]) {
        expect(page.text).not.toContain(secret);
        expect(rita).not.toContain(secret);
        expect(sessionsFile).not.toContain(secret);
      }
    }
    expect(sessionsFile).not.toContain(rita.split("=")[1]!.split(".")[1]!); // only a digest of the session id
    expect((await stat(path.join(dataDir, "sessions.json"))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dataDir, "session.key"))).mode & 0o777).toBe(0o600);
  });

  it("sign-out needs the CSRF token, ends the session and revokes its GitHub token", async () => {
    const rita = await signIn("rita");
    const csrf = csrfOf((await request("/", { cookie: rita })).text)!;
    expect((await request("/auth/sign-out", { cookie: rita, form: {} })).status).toBe(403);
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(200);

    const out = await request("/auth/sign-out", { cookie: rita, form: { csrf } });
    expect(out.status).toBe(303);
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(302);
    expect(github.oauth.userTokens.filter((t) => t.login === "rita").at(-1)?.revoked).toBe(true);
  });
});

describe("cookies only this host can set", () => {
  /** Starts a sign-in and has `login` authorize it on the stand-in: the pending cookie and where GitHub sends the browser back. */
  async function startSignIn(login: string, returnTo = "/") {
    const start = await request(`/auth/sign-in?return_to=${encodeURIComponent(returnTo)}`);
    expect(start.status).toBe(302);
    const authorizeUrl = new URL(start.location!);
    const decision = await fetch(`${github.url}/login/oauth/authorize`, {
      method: "POST",
      redirect: "manual",
      body: new URLSearchParams({ ...Object.fromEntries(authorizeUrl.searchParams), login, decision: "authorize" }),
    });
    return { setCookies: start.cookies, callback: new URL(decision.headers.get("location")!) };
  }

  it("on https, the pending sign-in is a __Host- cookie (Secure, Path=/, no Domain), and only that name is read", async () => {
    handler = await pages({ publicUrl: "https://slipway.example.com" });
    const { setCookies, callback } = await startSignIn("rita");
    expect(setCookies).toHaveLength(1);
    expect(setCookies[0]).toMatch(/^__Host-slipway_sign_in=[\w.-]+; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/);
    expect(callback.origin).toBe("https://slipway.example.com");
    const pending = cookieValue(setCookies, "__Host-slipway_sign_in")!;

    // The same cookie under the plain name (what a preview on a subdomain could plant) is not read.
    const planted = await request(`${callback.pathname}${callback.search}`, { cookie: pending.replace(/^__Host-/, "") });
    expect(planted.status).toBe(400);
    expect(planted.cookies).toEqual([]);

    const done = await request(`${callback.pathname}${callback.search}`, { cookie: pending });
    expect(done.status, done.text).toBe(303);
    // Spent under the name and path it was set with.
    expect(done.cookies).toContain("__Host-slipway_sign_in=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
  });

  it("on https, under a base path too: the prefix needs Path=/", async () => {
    handler = await pages({ publicUrl: "https://example.com/slipway" });
    const { setCookies } = await startSignIn("rita", "/slipway/");
    expect(setCookies[0]).toMatch(/^__Host-slipway_sign_in=[\w.-]+; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/);
  });

  it("on http, where the prefix cannot be had, plain names scoped to their paths", async () => {
    const { setCookies, callback } = await startSignIn("rita");
    expect(setCookies[0]).toMatch(/^slipway_sign_in=[\w.-]+; Path=\/auth\/; Max-Age=600; HttpOnly; SameSite=Lax$/);
    const done = await request(`${callback.pathname}${callback.search}`, { cookie: cookieValue(setCookies, "slipway_sign_in") });
    expect(done.status).toBe(303);
    expect(done.cookies.find((c) => c.startsWith("slipway_session="))).toMatch(/; Path=\/; Max-Age=43200; HttpOnly; SameSite=Lax$/);
    expect(done.cookies.some((c) => c.startsWith("__Host-"))).toBe(false);
  });

  it("on https, the session is a __Host- cookie, read and cleared by that name only", async () => {
    handler = await pages({ publicUrl: "https://slipway.example.com" });
    const { setCookies, callback } = await startSignIn("rita");
    const done = await request(`${callback.pathname}${callback.search}`, { cookie: cookieValue(setCookies, "__Host-slipway_sign_in") });
    expect(done.status, done.text).toBe(303);
    const set = done.cookies.find((c) => c.startsWith("__Host-slipway_session="))!;
    expect(set).toMatch(/^__Host-slipway_session=[\w.-]+; Path=\/; Max-Age=43200; HttpOnly; SameSite=Lax; Secure$/);
    expect(done.cookies.some((c) => c.startsWith("slipway_session="))).toBe(false);
    const session = set.split(";")[0]!;

    const target = `/revisions/${vault.revision.id}`;
    expect((await request(target, { cookie: session })).status).toBe(200);
    // Under the plain name it is no session.
    expect((await request(target, { cookie: session.replace(/^__Host-/, "") })).status).toBe(302);

    const csrf = csrfOf((await request("/", { cookie: session })).text)!;
    const out = await request("/auth/sign-out", { cookie: session, form: { csrf } });
    expect(out.status).toBe(303);
    expect(out.cookies).toContain("__Host-slipway_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
    expect((await request(target, { cookie: session })).status).toBe(302);
  });

  it("a __Host- cookie without Secure or with another path is refused before a browser would drop it", () => {
    expect(hostCookie("slipway_sign_in", { secure: true, path: "/slipway/auth/" })).toEqual({ name: "__Host-slipway_sign_in", path: "/", secure: true });
    expect(hostCookie("slipway_sign_in", { secure: false, path: "/slipway/auth/" })).toEqual({ name: "slipway_sign_in", path: "/slipway/auth/", secure: false });
    const response = new ServerResponse(new IncomingMessage(new Socket()));
    expect(() => setCookie(response, "__Host-x", "1", { path: "/auth/", secure: true, maxAgeSeconds: 60 })).toThrow(/needs Secure and Path=\//);
    expect(() => setCookie(response, "__Host-x", "1", { path: "/", secure: false, maxAgeSeconds: 60 })).toThrow(/without Secure/);
    setCookie(response, "__Host-x", "1", { path: "/", secure: true, maxAgeSeconds: 60 });
    expect(response.getHeader("set-cookie")).toEqual(["__Host-x=1; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"]);
  });
});

describe("Cancel and Redeploy", () => {
  it("are drawn for people with write permission and need the session's CSRF token", async () => {
    const alice = await signIn("alice");
    const target = `/revisions/${vault.revision.id}`;
    const page = await request(target, { cookie: alice });
    expect(page.text).toContain('id="cancel-button"');
    expect(page.text).not.toContain('id="redeploy-button"'); // it is still running
    const csrf = csrfOf(page.text)!;

    const rita = await signIn("rita");
    const ritasCsrf = csrfOf((await request("/", { cookie: rita })).text)!;
    const refused = [
      await request(`${target}/cancel`, { cookie: alice, form: {} }), // missing token
      await request(`${target}/cancel`, { cookie: alice, form: { csrf: ritasCsrf } }), // another session's token
      await request(`${target}/cancel`, { cookie: alice, form: { csrf }, headers: { "sec-fetch-site": "same-site" } }), // a preview's page
      await request(`${target}/cancel`, { cookie: alice, form: { csrf }, headers: { origin: "https://evil.example" } }),
      await request(`${target}/cancel`, { form: { csrf } }), // no session
    ];
    for (const answer of refused) expect(answer.status).toBe(403);
    expect(actions).toEqual([]);

    const accepted = await request(`${target}/cancel`, { cookie: alice, form: { csrf }, headers: { "sec-fetch-site": "same-origin", origin: baseUrl } });
    expect(accepted.status).toBe(303);
    expect(accepted.location).toBe(`${target}?requested=cancel`);
    expect(actions).toEqual([{ action: "cancel", revisionId: vault.revision.id, login: "alice" }]);
  });

  it("ask GitHub again when pressed: a permission lost since the page was drawn refuses", async () => {
    const alice = await signIn("alice");
    await store.update((state) => {
      state.revisions[vault.revision.id]!.state = "DEPLOYED";
    });
    const page = await request(`/revisions/${vault.revision.id}`, { cookie: alice });
    expect(page.text).toContain('id="redeploy-button"');
    github.setPermission("acme", "vault", "alice", "read");
    const answer = await request(`/revisions/${vault.revision.id}/redeploy`, { cookie: alice, form: { csrf: csrfOf(page.text)! } });
    expect(answer.status).toBe(403);
    expect(answer.text).toContain("needs write, maintain or admin permission");
    expect(actions).toEqual([]);
    github.setPermission("acme", "vault", "alice", "write");
    const again = await request(`/revisions/${vault.revision.id}/redeploy`, { cookie: alice, form: { csrf: csrfOf(page.text)! } });
    expect(again.status).toBe(303);
    expect(actions).toEqual([{ action: "redeploy", revisionId: vault.revision.id, login: "alice" }]);
  });

  it("offer the running revision a restart with new settings, and refuse it for one that no longer runs", async () => {
    const alice = await signIn("alice");
    await store.update((state) => {
      Object.assign(state.revisions[vault.revision.id]!, { state: "DEPLOYED", run: { command: "node server.js", timeoutSeconds: 30 } });
    });
    const page = await request(`/revisions/${vault.revision.id}`, { cookie: alice });
    expect(page.text).toContain('id="restart-button"');
    const csrf = csrfOf(page.text)!;
    const accepted = await request(`/revisions/${vault.revision.id}/restart`, { cookie: alice, form: { csrf } });
    expect(accepted.status).toBe(303);
    expect(actions).toEqual([{ action: "restart", revisionId: vault.revision.id, login: "alice" }]);

    // A newer revision went live: the older one is no longer what runs.
    const newer = randomUUID();
    await store.update((state) => {
      state.revisions[newer] = { ...state.revisions[vault.revision.id]!, id: newer, number: 2 };
    });
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: alice })).text).not.toContain('id="restart-button"');
    const refused = await request(`/revisions/${vault.revision.id}/restart`, { cookie: alice, form: { csrf } });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain("Only the running revision");
    expect(actions).toHaveLength(1);
  });

  it("are not offered to readers of a public repository without write permission", async () => {
    const rita = await signIn("rita");
    const page = await request(`/revisions/${publicSite.revision.id}`, { cookie: rita });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain("cancel-button");
    expect((await request(`/revisions/${publicSite.revision.id}/cancel`, { cookie: rita, form: { csrf: csrfOf(page.text)! } })).status).toBe(403);
    expect(actions).toEqual([]);
  });
});

describe("without client credentials", () => {
  it("private repositories' pages say how to enable sign-in and show nothing else of them", async () => {
    handler = await pages({ signIn: undefined });
    const page = await request(`/revisions/${vault.revision.id}`);
    expect(page.status).toBe(404); // as for a revision that does not exist
    expect(page.text).toContain("GITHUB_CLIENT_ID");
    expect(page.text).toContain(`${baseUrl}/auth/callback`);
    for (const secret of ["vault", "building", vault.revision.sha, "production"]) expect(page.text).not.toContain(secret);
    expect((await request(`/revisions/${vault.revision.id}/log`)).status).toBe(404);
    expect((await request(`/api/v1/revisions/${vault.revision.id}`)).status).toBe(404);
    const index = await request("/");
    expect(index.text).toContain("acme/site");
    expect(index.text).not.toContain("vault");
    expect(index.text).toContain("GITHUB_CLIENT_SECRET");
    expect(index.text).not.toContain("Sign in with GitHub");
    expect((await request("/auth/sign-in")).status).toBe(404);
    expect((await request(`/revisions/${publicSite.revision.id}`)).status).toBe(200);
  });
});
