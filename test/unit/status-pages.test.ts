import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createStatusPages } from "../../src/control-plane/http/status-pages/create-status-pages.js";
import type { RevisionLogs } from "../../src/control-plane/revision-logs.js";
import type { StateStore } from "../../src/store/open-state-store.js";
import { deployment, openStatusPagesTestbed, revision, type StatusPagesTestbed } from "../support/status-pages-testbed.js";
import { randomUUID } from "node:crypto";

const HOSTILE_ENVIRONMENT = "<script>alert(1)</script>";
const HOSTILE_BRANCH = 'zzz";echo${IFS}"hello";#';
const SECRET_DATABASE_URL = "v1:c2VjcmV0LWNpcGhlcnRleHQ=";
const SECRET_LEASE_ID = "7f1c3a52-9d1e-4c55-8f0e-lease0secret";

let bed: StatusPagesTestbed;
let dataDir: string;
let store: StateStore;
let logs: RevisionLogs;

beforeEach(async () => {
  bed = await openStatusPagesTestbed();
  ({ dataDir, store, logs } = bed);
});

afterEach(() => bed.close());

const save: StatusPagesTestbed["save"] = (...records) => bed.save(...records);
const get: StatusPagesTestbed["get"] = (pathname, headers) => bed.get(pathname, headers);

describe("GET /", () => {
  it("lists deployments by repository with their latest revisions, escaping hostile names", async () => {
    const hostile = deployment(HOSTILE_ENVIRONMENT);
    const branchNamed = deployment(HOSTILE_BRANCH, {
      repository: { id: 7, owner: "acme", name: "<img src=x onerror=alert(2)>", fullName: "acme/<img src=x onerror=alert(2)>", defaultBranch: "main", private: false },
    });
    const production = deployment("production");
    const revisions = Array.from({ length: 12 }, (_, i) => revision(production, i + 1));
    const latest = revision(production, 13, { state: "BUILDING", finishedAt: undefined, sha: "abcdef0123456789abcdef0123456789abcdef01" });
    await save(hostile, branchNamed, production, revision(hostile, 1, { ref: `refs/heads/${HOSTILE_BRANCH}` }), ...revisions, latest);

    const page = await get("/");

    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("script-src 'nonce-");
    expect(page.text).not.toContain(HOSTILE_ENVIRONMENT);
    expect(page.text).not.toContain("<img");
    expect(page.text).not.toContain('zzz";');
    expect(page.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page.text).toContain("zzz&quot;;echo${IFS}&quot;hello&quot;;#");
    expect(page.text).toContain("acme/&lt;img src=x onerror=alert(2)&gt;");
    expect(page.text).not.toMatch(/<script/i);
    // Latest revision: number, state, short sha, trigger.
    expect(page.text).toContain(`href="/revisions/${latest.id}">#13</a>`);
    expect(page.text).toMatch(/data-state="BUILDING">Building</);
    expect(page.text).toContain("<code>abcdef0</code>");
    expect(page.text).toContain("push by @octocat");
    // The ten most recent revisions, no more.
    for (const r of revisions.slice(3)) expect(page.text).toContain(`/revisions/${r.id}"`);
    for (const r of revisions.slice(0, 3)) expect(page.text).not.toContain(r.id);
    // Something is running: the index refreshes itself.
    expect(page.text).toContain('http-equiv="refresh"');
  });

  it("shows which listener a deployment is bound to, and why a queued revision waits", async () => {
    const bound = deployment("production", { placement: { listenerId: "build-<2>", holds: ["database", "instance"], since: "2026-12-01T10:00:00.000Z" } });
    const waiting = revision(bound, 4, { state: "QUEUED", finishedAt: undefined, waitingFor: "waiting for listener build-<2>, last seen 2026-12-02T09:00:00Z" });
    const free = deployment("staging");
    await save(bound, waiting, free, revision(free, 1));

    const page = await get("/");
    expect(page.text).toContain('data-listener="build-&lt;2&gt;">On listener <code>build-&lt;2&gt;</code> (its database lives there, it runs there)');
    expect(page.text).toContain("⏳ waiting for listener build-&lt;2&gt;, last seen 2026-12-02T09:00:00Z");
    expect(page.text.match(/data-listener=/g)).toHaveLength(1); // staging is free to go anywhere
  });

  it("links under the path of SLIPWAY_PUBLIC_URL, for a proxy that serves Slipway under a prefix", async () => {
    bed.statusPages = await createStatusPages({ store, logs, publicUrl: "https://tools.example.com/slipway/" });
    const production = deployment("production");
    const only = revision(production, 1, { state: "QUEUED", finishedAt: undefined });
    await save(production, only);

    expect((await get("/")).text).toContain(`href="/slipway/revisions/${only.id}"`);
    const page = await get(`/revisions/${only.id}`);
    expect(page.text).toContain('href="/slipway/"');
    expect(page.text).toContain(`data-events="/slipway/revisions/${only.id}/events?from=0"`);
    expect(JSON.parse((await get(`/api/v1/revisions/${only.id}`)).text).revision.url).toBe(
      `https://tools.example.com/slipway/revisions/${only.id}`,
    );
  });

  it("says how to start when there are no deployments", async () => {
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.text).toContain("No deployments yet");
    expect(page.text).not.toContain('http-equiv="refresh"');
  });
});

describe("GET /revisions/<id>", () => {
  it("shows the header, the phase timeline with durations and notes, and the log tail", async () => {
    const production = deployment("production", {
      database: { name: "shop_production", encryptedUrl: SECRET_DATABASE_URL, createdAt: "2024-05-01T11:00:01.000Z" },
    });
    const first = revision(production, 1, {
      state: "BUILD_FAILED",
      ref: `refs/heads/${HOSTILE_BRANCH}`,
      error: "npm ci exited with code 1 <oops>",
      createdAt: "2024-05-01T12:00:00.000Z",
      finishedAt: "2024-05-01T12:00:20.000Z",
      phases: [
        { name: "database", startedAt: "2024-05-01T12:00:00.000Z", finishedAt: "2024-05-01T12:00:01.500Z", outcome: "succeeded", note: "database created" },
        { name: "build", startedAt: "2024-05-01T12:00:01.500Z", finishedAt: "2024-05-01T12:00:13.800Z", outcome: "failed" },
      ],
    });
    await save(production, first);
    await logs.append(first.id, 0, "$ npm ci\n\x1b[31mnpm ERR!\x1b[0m <b>missing</b> & \x1b]0;title\x07done\n");

    const page = await get(`/revisions/${first.id}`);

    expect(page.status).toBe(200);
    expect(page.text).toContain("acme/shop · production · revision 1");
    expect(page.text).toContain(first.sha);
    expect(page.text).toContain("refs/heads/zzz&quot;;echo${IFS}&quot;hello&quot;;#");
    expect(page.text).not.toContain('zzz";');
    expect(page.text).toContain("2024-05-01 12:00:00 UTC");
    expect(page.text).toContain("2024-05-01 12:00:20 UTC");
    expect(page.text).toContain("npm ci exited with code 1 &lt;oops&gt;");
    expect(page.text).toMatch(/Database<\/span>\s*<span class="badge ok">succeeded<\/span>\s*<span class="duration">1\.5 s<\/span>\s*<span class="muted note">database created/);
    expect(page.text).toMatch(/Build<\/span>\s*<span class="badge failed">failed<\/span>\s*<span class="duration">12\.3 s<\/span>/);
    expect(page.text).toContain('<span class="a-1">npm ERR!</span> &lt;b&gt;missing&lt;/b&gt; &amp; done');
    expect(page.text).not.toContain("\x1b");
    expect(page.text).not.toContain(SECRET_DATABASE_URL);
    // A finished revision is not followed.
    expect(page.text).not.toMatch(/<script/);
    expect(page.text).not.toContain("log-cut");
  });

  it("says the database was reused, and follows a running revision live", async () => {
    const production = deployment("production", {
      database: { name: "shop_production", encryptedUrl: SECRET_DATABASE_URL, createdAt: "2024-05-01T11:00:01.000Z" },
    });
    const second = revision(production, 2, {
      state: "BUILDING",
      finishedAt: undefined,
      phases: [{ name: "build", startedAt: new Date(Date.now() - 3_000).toISOString() }],
    });
    await save(production, second);
    await logs.append(second.id, 0, "héllo ✓\n");

    const page = await get(`/revisions/${second.id}`);

    expect(page.text).toMatch(/Database<\/span>\s*<span class="badge muted">reused<\/span>[\s\S]*database reused/);
    expect(page.text).toMatch(/Build<\/span>\s*<span class="badge active">running<\/span>\s*<span class="duration">3\.\d s so far/);
    expect(page.text).toContain("héllo ✓");
    expect(page.text).toContain(`data-events="/revisions/${second.id}/events?from=${Buffer.byteLength("héllo ✓\n")}"`);
    expect(page.text.match(/<script/g)).toHaveLength(1);
    const nonce = /script-src 'nonce-([^']+)'/.exec(page.headers.get("content-security-policy") ?? "")?.[1];
    expect(page.text).toContain(`<script nonce="${nonce}">`);
    // Inside <script> entities are not decoded: the script must reach the browser unescaped.
    expect(page.text).toContain('document.getElementById("log")');
  });

  it("shows only the last 256 KiB of a long log, with a link to the whole of it", async () => {
    const production = deployment("production");
    const long = revision(production, 1);
    await save(production, long);
    const lines = Array.from({ length: 6_000 }, (_, i) => `line ${String(i).padStart(5, "0")} ${"x".repeat(60)}\n`);
    const text = lines.join("");
    await logs.append(long.id, 0, text);

    const page = await get(`/revisions/${long.id}`);
    expect(page.text).toContain("Showing the last 256 KiB of");
    expect(page.text).toContain(`<a href="/revisions/${long.id}/log">The full log</a>`);
    expect(page.text).toContain("line 05999");
    expect(page.text).not.toContain("line 00000");

    const whole = await get(`/revisions/${long.id}/log`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(whole.headers.get("x-content-type-options")).toBe("nosniff");
    expect(whole.text).toBe(text);
  });

  it("pages back through a long log from the tail: the pages join up to exactly the whole log", async () => {
    const production = deployment("production");
    const long = revision(production, 1);
    await save(production, long);
    // Over 1 MB with colours and multi-byte characters, so pages are cut inside lines and inside UTF-8 sequences.
    const lines = Array.from({ length: 14_000 }, (_, i) => `\x1b[3${i % 8}mline ${String(i).padStart(5, "0")}\x1b[0m ✓ ${"é".repeat(i % 50)} ${"x".repeat(i % 30)}\n`);
    const text = lines.join("");
    await logs.append(long.id, 0, text);

    const page = await get(`/revisions/${long.id}`);
    expect(page.text).toContain('<button type="button" id="log-earlier" hidden>Show earlier output</button>');
    expect(page.text).toContain(`data-log-page="/revisions/${long.id}/log-page"`);
    expect(page.text.match(/<script/g)).toHaveLength(1); // finished, but paged
    let start = Number(/<span class="chunk" data-start="(\d+)">/.exec(page.text)![1]);
    const bytes = Buffer.from(text);
    expect(start).toBeGreaterThan(0);
    expect(bytes.subarray(start - 1, start).toString()).toBe("\n"); // the page starts at a line

    const pages: string[] = [];
    let requests = 0;
    while (start > 0) {
      const answer = await get(`/revisions/${long.id}/log-page?before=${start}`);
      expect(answer.status).toBe(200);
      const earlier = JSON.parse(answer.text) as { start: number; end: number; html: string };
      expect(earlier.end).toBe(start);
      expect(start - earlier.start).toBeLessThanOrEqual(256 * 1024);
      expect(earlier.start === 0 || bytes[earlier.start - 1] === 0x0a).toBe(true);
      expect(earlier.html).not.toContain("\x1b");
      pages.unshift(bytes.subarray(earlier.start, earlier.end).toString());
      start = earlier.start;
      requests++;
    }
    expect(requests).toBeGreaterThanOrEqual(4);
    expect(pages.join("") + bytes.subarray(Number(/data-start="(\d+)"/.exec(page.text)![1])).toString()).toBe(text);
    expect((await get(`/revisions/${long.id}/log-page?before=x`)).status).toBe(400);
    const first = JSON.parse((await get(`/revisions/${long.id}/log-page?before=40`)).text);
    expect(first).toMatchObject({ start: 0, end: 40 });
    expect(first.html).toContain('<span class="a-0">line 00000</span>');
  });

  it("answers 404 for unknown revisions, without touching the disk for ids that are not UUIDs", async () => {
    const production = deployment("production");
    const quiet = revision(production, 1);
    await save(production, quiet);
    const findRevision = vi.spyOn(store, "findRevision");

    for (const pathname of ["/revisions/abc", "/revisions/..%2F..%2Fstate.json", "/revisions/__proto__/log", `/revisions/${quiet.id.toUpperCase()}/events`]) {
      const page = await get(pathname);
      expect(page.status, pathname).toBe(404);
    }
    expect(findRevision).not.toHaveBeenCalled();

    const unknown = await get(`/revisions/${randomUUID()}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(unknown.text).toContain("Not found");
    expect((await get(`/revisions/${randomUUID()}/events`)).status).toBe(404);
    expect((await get(`/revisions/${quiet.id}/log`)).status).toBe(404); // nothing logged yet
    expect((await get(`/revisions/${quiet.id}/elsewhere`)).status).toBe(404);
    expect((await get(`/api/v1/revisions/${randomUUID()}`)).status).toBe(404);
    expect((await get("/api/v1/deployments/__proto__")).status).toBe(404);
    expect((await get("/api/v1/deployments/nope")).text).toBe('{"error":"there is no deployment with this id"}');
    // Not its paths: left to the rest of the server.
    expect((await get("/elsewhere")).status).toBe(418);
    expect((await get("/api/v1/work/lease")).status).toBe(418);
    expect((await fetch(`${bed.baseUrl}/`, { method: "POST" })).status).toBe(418);
  });
});

describe("GET /api/v1/", () => {
  it("shows deployments and revisions, live and archived, and nothing secret", async () => {
    const production = deployment("production", {
      database: { name: "shop_production", encryptedUrl: SECRET_DATABASE_URL, createdAt: "2024-05-01T11:00:01.000Z" },
    });
    const archived = revision(production, 1, { state: "DEPLOYED" });
    const live = revision(production, 2, {
      state: "BUILDING",
      finishedAt: undefined,
      lease: { id: SECRET_LEASE_ID, listenerId: "listener-a", expiresAt: new Date().toISOString(), attempt: 1 },
    });
    await save(production, live);
    const archiveDir = path.join(dataDir, "archive", production.id);
    await mkdir(archiveDir, { recursive: true });
    await writeFile(path.join(archiveDir, `${archived.id}.json`), JSON.stringify(archived));

    const list = await get("/api/v1/deployments");
    const one = await get(`/api/v1/deployments/${production.id}`);
    const single = await get(`/api/v1/revisions/${live.id}`);
    const old = await get(`/api/v1/revisions/${archived.id}`);

    for (const answer of [list, one, single, old]) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get("content-type")).toBe("application/json; charset=utf-8");
      for (const secret of ["encryptedUrl", SECRET_DATABASE_URL, "lease", SECRET_LEASE_ID, "listener-a", "build-env-value", "checkRunId", "delivery-1"]) {
        expect(answer.text).not.toContain(secret);
      }
    }
    const { deployments } = JSON.parse(list.text);
    expect(deployments).toHaveLength(1);
    expect(deployments[0]).toMatchObject({
      id: production.id,
      environment: "production",
      state: "READY",
      database: { name: "shop_production" },
      latestRevision: { id: live.id, number: 2, state: "BUILDING", url: `https://slipway.example.com/revisions/${live.id}` },
    });
    const detail = JSON.parse(one.text);
    expect(detail.deployment.repository.fullName).toBe("acme/shop");
    expect(detail.revisions.map((r: { number: number }) => r.number)).toEqual([2, 1]);
    expect(JSON.parse(single.text).revision).toMatchObject({ id: live.id, trigger: { kind: "push", actor: "octocat" }, environment: "production" });
    expect(JSON.parse(old.text).revision).toMatchObject({ id: archived.id, state: "DEPLOYED", logUrl: `https://slipway.example.com/revisions/${archived.id}/log` });
  });
});
