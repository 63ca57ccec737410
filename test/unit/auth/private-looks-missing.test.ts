/**
 * Private things answer exactly like missing ones: for every path of the status pages and the
 * `/api/v1` JSON, the answer for a private revision (or deployment) the viewer may not read
 * is the same, status, headers and body, as for one that does not exist, so that its existence
 * does not leak. For the three kinds of viewer who may not read it: anyone while sign-in is not
 * set up, someone not signed in, and someone signed in whom GitHub does not let read it.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sendText } from "../../../src/control-plane/http/http-helpers.js";
import { createStatusPages, type StatusPagesOptions } from "../../../src/control-plane/http/status-pages/create-status-pages.js";
import { createRevisionLogs, type RevisionLogs } from "../../../src/control-plane/revision-logs.js";
import type { Deployment, Revision } from "../../../src/store/model.js";
import { openStateStore, type StateStore } from "../../../src/store/open-state-store.js";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";

let github: GitHubStandIn;
let dataDir: string;
let store: StateStore;
let logs: RevisionLogs;
let server: Server;
let baseUrl: string;
let handler: Awaited<ReturnType<typeof createStatusPages>>;
let actions: string[];
const clock = Date.parse("2024-06-01T12:00:00.000Z");

let publicSite: { deployment: Deployment; revision: Revision };
let vault: { deployment: Deployment; revision: Revision };

beforeAll(async () => {
  github = await startGitHubStandIn({ appId: 9 });
  github.addRepository({ owner: "acme", name: "site", id: 601, installationId: 1 });
  github.addRepository({ owner: "acme", name: "vault", id: 602, installationId: 1, private: true });
  github.setPermission("acme", "vault", "rita", "read");
  github.setPermission("acme", "site", "mallory", "write");
});

afterAll(async () => {
  expect(github.violations).toEqual([]);
  await github?.close();
});

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "slipway-private-404-"));
  store = await openStateStore({ dataDir, log: pino({ level: "silent" }) });
  logs = createRevisionLogs({ dataDir });
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
  publicSite = await deploy("site", 601, false);
  vault = await deploy("vault", 602, true);
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
    now: () => clock,
    async cancel(revisionId) {
      actions.push(`cancel ${revisionId}`);
    },
    async redeploy(revisionId) {
      actions.push(`redeploy ${revisionId}`);
    },
    ...overrides,
  });
}

async function deploy(name: string, id: number, isPrivate: boolean) {
  const at = new Date(clock).toISOString();
  const deployment: Deployment = {
    id: `${name}-production`,
    installationId: 1,
    repository: { id, owner: "acme", name, fullName: `acme/${name}`, defaultBranch: "main", private: isPrivate },
    environment: "production",
    state: "READY",
    createdAt: at,
    updatedAt: at,
  };
  const revision: Revision = {
    id: randomUUID(),
    number: 1,
    deploymentId: deployment.id,
    sha: "a".repeat(40),
    ref: "refs/heads/main",
    trigger: { kind: "push", actor: "octocat" },
    state: "DEPLOYED",
    build: { commands: ["true"], timeoutSeconds: 60, env: {} },
    phases: [{ name: "build", startedAt: at, finishedAt: at, outcome: "succeeded" }],
    attempts: 1,
    github: {},
    createdAt: at,
    updatedAt: at,
    finishedAt: at,
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
  headers: Record<string, string>;
  text: string;
}

/** The parts of an answer that could tell a private revision from a missing one. */
async function request(pathname: string, options: { cookie?: string; form?: Record<string, string>; method?: string } = {}): Promise<Answer> {
  const response = await fetch(`${baseUrl}${pathname}`, {
    method: options.method ?? (options.form ? "POST" : "GET"),
    redirect: "manual",
    headers: {
      ...(options.cookie ? { cookie: options.cookie } : {}),
      ...(options.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
    },
    body: options.form ? new URLSearchParams(options.form).toString() : undefined,
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of response.headers) {
    if (name === "date" || name === "keep-alive" || name === "connection") continue;
    // The CSP nonce is random per answer; a page without script does not use it.
    headers[name] = name === "content-security-policy" ? value.replace(/'nonce-[^']+'/, "'nonce-…'") : value;
  }
  return { status: response.status, headers, text: (await response.text()).replace(/nonce="[^"]+"/g, 'nonce="…"') };
}

const cookieValue = (cookies: string[], name: string) => cookies.map((c) => c.split(";")[0]!).find((c) => c.startsWith(`${name}=`));

/** Signs `login` in through the stand-in's OAuth flow. */
async function signIn(login: string): Promise<string> {
  const start = await fetch(`${baseUrl}/auth/sign-in?return_to=%2F`, { redirect: "manual" });
  const pending = cookieValue(start.headers.getSetCookie(), "slipway_sign_in")!;
  const authorizeUrl = new URL(start.headers.get("location")!);
  const decision = await fetch(`${github.url}/login/oauth/authorize`, {
    method: "POST",
    redirect: "manual",
    body: new URLSearchParams({ ...Object.fromEntries(authorizeUrl.searchParams), login, decision: "authorize" }),
  });
  const callback = new URL(decision.headers.get("location")!);
  const done = await fetch(`${baseUrl}${callback.pathname}${callback.search}`, { redirect: "manual", headers: { cookie: pending } });
  expect(done.status).toBe(303);
  return cookieValue(done.headers.getSetCookie(), "slipway_session")!;
}

/** Every read path of a revision, for a revision id. */
const revisionPaths = (id: string) => [
  `/revisions/${id}`,
  `/revisions/${id}/`,
  `/revisions/${id}?requested=cancel`,
  `/revisions/${id}/log`,
  `/revisions/${id}/log-page?before=5`,
  `/revisions/${id}/log-page`,
  `/revisions/${id}/events`,
  `/revisions/${id}/events?from=0`,
  `/api/v1/revisions/${id}`,
];

/** Asks `paths(private id)` and `paths(missing id)` and expects identical answers, the id aside. */
async function expectAlike(paths: (id: string) => string[], options: { cookie?: string; method?: string } = {}) {
  const missing = randomUUID();
  const privatePaths = paths(vault.revision.id);
  const missingPaths = paths(missing);
  for (let i = 0; i < privatePaths.length; i++) {
    const forPrivate = await request(privatePaths[i]!, options);
    const forMissing = await request(missingPaths[i]!, options);
    const normalize = (answer: Answer, id: string) => JSON.parse(JSON.stringify(answer).split(encodeURIComponent(id)).join("<id>").split(id).join("<id>"));
    expect(normalize(forPrivate, vault.revision.id), privatePaths[i]).toEqual(normalize(forMissing, missing));
    expect(forPrivate.status, privatePaths[i]).not.toBe(200);
    expect(forPrivate.status, privatePaths[i]).not.toBe(403);
    expect(forPrivate.text).not.toContain("vault");
  }
}

describe("a private revision answers exactly like a missing one", () => {
  it("while sign-in is not set up: 404 everywhere, the page saying how to set it up for both", async () => {
    handler = await pages({ signIn: undefined });
    await expectAlike(revisionPaths);
    await expectAlike(revisionPaths, { method: "HEAD" });
    const page = await request(`/revisions/${vault.revision.id}`);
    expect(page.status).toBe(404);
    expect(page.text).toContain("or it belongs to a private repository");
    expect(page.text).toContain("GITHUB_CLIENT_ID");
    for (const secret of ["vault", "building", vault.revision.sha, "production"]) expect(page.text).not.toContain(secret);
    // The deployment's JSON too.
    const forPrivate = await request(`/api/v1/deployments/${vault.deployment.id}`);
    const forMissing = await request("/api/v1/deployments/nothing-production");
    expect(forPrivate).toEqual(forMissing);
    expect(forPrivate.status).toBe(404);
    // A public one is still shown.
    expect((await request(`/revisions/${publicSite.revision.id}`)).status).toBe(200);
  });

  it("to someone not signed in: pages and the whole log send to sign in, everything else is 404, alike", async () => {
    await expectAlike(revisionPaths);
    await expectAlike(revisionPaths, { method: "HEAD" });
    expect((await request(`/revisions/${vault.revision.id}`)).status).toBe(302);
    expect((await request(`/revisions/${vault.revision.id}/log`)).status).toBe(302);
    expect((await request(`/revisions/${vault.revision.id}/events`)).status).toBe(404);
    expect(await request(`/api/v1/deployments/${vault.deployment.id}`)).toEqual(await request("/api/v1/deployments/nothing-production"));
  });

  it("to someone signed in whom GitHub does not let read it: 404 everywhere, alike", async () => {
    const mallory = await signIn("mallory");
    await expectAlike(revisionPaths, { cookie: mallory });
    await expectAlike(revisionPaths, { cookie: mallory, method: "HEAD" });
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: mallory })).status).toBe(404);
    expect(await request(`/api/v1/deployments/${vault.deployment.id}`, { cookie: mallory })).toEqual(
      await request("/api/v1/deployments/nothing-production", { cookie: mallory }),
    );
    // …while someone GitHub lets read it sees it.
    const rita = await signIn("rita");
    expect((await request(`/revisions/${vault.revision.id}`, { cookie: rita })).status).toBe(200);
  });

  it("form posts (Redeploy, Cancel) by someone who may not read it: 404, alike, and nothing done", async () => {
    const mallory = await signIn("mallory");
    // Mallory's CSRF token, from a page she may read.
    const csrf = /name="csrf" value="([^"]+)"/.exec((await request("/", { cookie: mallory })).text)?.[1];
    expect(csrf).toBeDefined();
    for (const action of ["redeploy", "cancel"]) {
      const forPrivate = await request(`/revisions/${vault.revision.id}/${action}`, { cookie: mallory, form: { csrf: csrf! } });
      const missing = randomUUID();
      const forMissing = await request(`/revisions/${missing}/${action}`, { cookie: mallory, form: { csrf: csrf! } });
      expect(forPrivate.status, action).toBe(404);
      expect(forPrivate).toEqual(forMissing);
      expect(forPrivate.text).not.toContain("vault");
    }
    // Without a session or a valid token the post is refused before the revision is looked at.
    for (const id of [vault.revision.id, randomUUID()]) {
      expect((await request(`/revisions/${id}/redeploy`, { form: { csrf: "x" } })).status).toBe(403);
      expect((await request(`/revisions/${id}/redeploy`, { cookie: mallory, form: { csrf: "wrong" } })).status).toBe(403);
    }
    expect(actions).toEqual([]);
    // Write permission on a public repository still works: the 404 is only for what she may not read.
    await store.update((state) => {
      state.revisions[publicSite.revision.id]!.state = "DEPLOYED";
    });
    expect((await request(`/revisions/${publicSite.revision.id}/redeploy`, { cookie: mallory, form: { csrf: csrf! } })).status).toBe(303);
    expect(actions).toEqual([`redeploy ${publicSite.revision.id}`]);
  });

  it("the index says the same to strangers whether or not there are private deployments", async () => {
    for (const signInSettings of [undefined, "on"] as const) {
      handler = await pages(signInSettings ? {} : { signIn: undefined });
      const withPrivate = [await request("/"), await request("/api/v1/deployments")];
      await store.update((state) => {
        delete state.revisions[vault.revision.id];
        delete state.deployments[vault.deployment.id];
      });
      const withoutPrivate = [await request("/"), await request("/api/v1/deployments")];
      expect(withPrivate[0]!.text).toContain("acme/site");
      expect(withPrivate).toEqual(withoutPrivate);
      // With nothing to show, also alike: "No deployments yet" either way.
      await store.update((state) => {
        delete state.revisions[publicSite.revision.id];
        delete state.deployments[publicSite.deployment.id];
      });
      const empty = [await request("/"), await request("/api/v1/deployments")];
      vault = await deploy("vault", 602, true);
      const onlyPrivate = [await request("/"), await request("/api/v1/deployments")];
      expect(onlyPrivate).toEqual(empty);
      expect(empty[0]!.text).toContain("No deployments yet");
      publicSite = await deploy("site", 601, false);
    }
  });
});
