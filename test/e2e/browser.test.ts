/**
 * The status pages in a real browser: headless Chromium (the one `@sparticuz/chromium` ships, or
 * `SLIPWAY_TEST_BROWSER`; see test/support/browser.ts), driven by playwright-core, against the real server, with GitHub — its OAuth endpoints included — played
 * by the OpenAPI-validating stand-in. Someone with write permission signs in, watches a build's
 * log arrive live, cancels it and redeploys it; someone without access gets no page and no JSON;
 * a 10 MB log stays responsive. Screenshots go to test-artifacts/.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { freePort, startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";
import { launchTestBrowser } from "../support/browser.js";

const SECRET = "e2e-browser-secret";
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../test-artifacts");
/** A build that logs a line every 200 ms for a minute: long enough to watch and to cancel. */
const SLOW_CONFIG = "build:\n  timeout: 120\n  commands: ['for i in $(seq 1 300); do printf \"\\033[32mtick\\033[0m %s\\n\" $i; sleep 0.2; done']\n";
/** About 10 MB of coloured output, as fast as the shell writes it. */
const BIG_CONFIG =
  "build:\n  commands: ['awk \"BEGIN { for (i = 0; i < 135000; i++) printf \\\"\\\\033[3%dmline %06d\\\\033[0m %s\\\\n\\\", i % 8, i, \\\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789\\\" }\"']\n";

let github: GitHubStandIn;
let slipway: RunningSlipway;
let browser: Browser;
let workDir: string;
let app: StandInRepositoryHandle;
let big: StandInRepositoryHandle;
let bigSha: string;

beforeAll(async () => {
  const { privateKey, publicKey } = generateAppKey();
  const [stand, launched] = await Promise.all([
    startGitHubStandIn({ appId: 1, appPublicKey: publicKey }),
    launchTestBrowser(),
  ]);
  github = stand;
  browser = launched;
  workDir = await mkdtemp(path.join(tmpdir(), "slipway-e2e-browser-"));
  await mkdir(ARTIFACTS, { recursive: true });
  const port = await freePort();
  slipway = await startSlipway({
    port,
    env: {
      ...standInAppEnv(github, { privateKey: privateKey, webhookSecret: SECRET, dataDir: path.join(workDir, "data") }),
      SLIPWAY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      SLIPWAY_MAX_CONCURRENT_BUILDS: "4",
      GITHUB_CLIENT_ID: github.oauth.clientId,
      GITHUB_CLIENT_SECRET: github.oauth.clientSecret,
    },
  });
  app = github.addRepository({ owner: "acme", name: "app", installationId: 71, private: true, files: { ".github/slipway.yml": SLOW_CONFIG } });
  github.setPermission("acme", "app", "alice", "write");
  big = github.addRepository({ owner: "acme", name: "big", installationId: 72, files: { ".github/slipway.yml": BIG_CONFIG } });
  // The big log builds meanwhile; its test comes last.
  bigSha = await push(big, BIG_CONFIG);
});

afterAll(async () => {
  await browser?.close();
  const code = await slipway?.stop();
  await github?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  expect(code).toBe(0);
});

async function push(repo: StandInRepositoryHandle, config: string): Promise<string> {
  const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "v.txt": String(Math.random()) } });
  const response = await sendWebhook({
    url: `${slipway.url}/api/github/webhooks`,
    secret: SECRET,
    event: "push",
    payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
  });
  expect(response.status).toBeLessThan(300);
  return sha;
}

/** Signs in the way a person does: the index's button, GitHub's authorize page, back to the index. */
async function signIn(context: BrowserContext, login: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${slipway.url}/`);
  await page.click(".account a");
  await page.waitForURL(`${github.url}/login/oauth/authorize?**`);
  await page.fill("#login", login);
  await page.click("#authorize");
  await page.waitForURL(`${slipway.url}/`);
  await expect.poll(() => page.textContent(".account")).toContain(`@${login}`);
  return page;
}

describe("the status pages in Chromium", () => {
  it("signs in with GitHub, follows a running build's log live, cancels it and redeploys it", async () => {
    const sha = await push(app, SLOW_CONFIG);
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await signIn(context, "alice");

    // The revision is listed for alice (a private repository she can read) once it exists.
    const run = await github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "app" }).find((r) => r.headSha === sha), { timeoutMs: 20_000 });
    const revisionUrl = `${slipway.url}/revisions/${run.externalId}`;
    await expect.poll(async () => (await context.request.get(`${slipway.url}/api/v1/revisions/${run.externalId}`)).json(), { timeout: 30_000, interval: 250 }).toMatchObject({ revision: { state: "BUILDING" } });
    await page.reload();
    await expect.poll(() => page.textContent("main")).toContain("acme/app");
    await page.screenshot({ path: path.join(ARTIFACTS, "index.png"), fullPage: true });

    await page.click(`a[href="/revisions/${run.externalId}"]`);
    await page.waitForURL(revisionUrl);
    await expect.poll(() => page.textContent("#live"), { timeout: 5_000 }).toBe("Following the log live.");
    const ticks = async () => ((await page.textContent("#log")) ?? "").match(/tick \d+/g)?.length ?? 0;
    const shown = await ticks();
    // New lines arrive without a reload: a mark left on this document is still there.
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
    await expect.poll(ticks, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(shown + 3);
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, "revision.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(ARTIFACTS, "revision-phone.png") });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);

    await page.click("#cancel-button");
    await page.waitForURL(`${revisionUrl}?requested=cancel`);
    const cancelled = await github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "app" }).find((r) => r.externalId === run.externalId && r.conclusion === "cancelled"), {
      timeoutMs: 20_000,
      description: "the check run concluded cancelled",
    });
    expect(cancelled.status).toBe("completed");
    await expect.poll(() => page.getAttribute("#state", "data-state"), { timeout: 10_000 }).toBe("CANCELLED");

    // Redeploy goes through the inbox like the check run's button, which asks GitHub again.
    await page.click("#redeploy-button");
    await page.waitForURL(`${revisionUrl}?requested=redeploy`);
    expect(await page.textContent(".notice")).toContain("Redeploy requested");
    const again = await github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "app" }).find((r) => r.headSha === sha && r.externalId !== run.externalId), {
      timeoutMs: 20_000,
      description: "a new check run for the redeploy",
    });
    expect(again.output.summary).toContain("redeploy by @alice");
    await page.goto(`${slipway.url}/revisions/${again.externalId}`);
    await page.click("#cancel-button");
    await github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "app" }).find((r) => r.externalId === again.externalId && r.conclusion === "cancelled"), { timeoutMs: 20_000 });
    await context.close();
  });

  it("gives someone without access no page and no JSON, and sends strangers to sign in", async () => {
    const revisionId = github.checkRuns({ owner: "acme", name: "app" })[0]!.externalId;
    expect(revisionId).toMatch(/^[0-9a-f-]{36}$/);
    const context = await browser.newContext();
    const page = await signIn(context, "mallory");
    const answer = await page.goto(`${slipway.url}/revisions/${revisionId}`);
    expect(answer?.status()).toBe(404);
    expect(await page.textContent("main")).not.toMatch(/acme\/app|tick/);
    expect((await context.request.get(`${slipway.url}/api/v1/revisions/${revisionId}`)).status()).toBe(404);
    expect((await context.request.get(`${slipway.url}/revisions/${revisionId}/log`)).status()).toBe(404);
    expect(JSON.stringify(await (await context.request.get(`${slipway.url}/api/v1/deployments`)).json())).not.toContain("acme/app");
    expect(await page.goto(`${slipway.url}/`).then(() => page.textContent("main"))).not.toContain("acme/app");
    await context.close();

    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    await strangerPage.goto(`${slipway.url}/revisions/${revisionId}`);
    expect(strangerPage.url()).toMatch(new RegExp(`^${github.url}/login/oauth/authorize\\?`));
    await stranger.close();
  });

  it("pages through a 10 MB log without freezing the page", async () => {
    const run = await github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "big" }).find((r) => r.headSha === bigSha && r.status === "completed"), { timeoutMs: 40_000 });
    expect(run.conclusion).toBe("success");
    const context = await browser.newContext();
    const page = await context.newPage();
    // Long tasks are what a person feels as a frozen page.
    await page.addInitScript(() => {
      const tasks: number[] = ((window as unknown as { longTasks: number[] }).longTasks = []);
      new PerformanceObserver((list) => list.getEntries().forEach((entry) => tasks.push(entry.duration))).observe({ type: "longtask", buffered: true });
    });
    const started = performance.now();
    await page.goto(`${slipway.url}/revisions/${run.externalId}`);
    const loadMs = performance.now() - started;
    expect(await page.textContent("#log-cut")).toMatch(/Showing the last 256 KiB of (9\.\d|10\.0) MiB/);

    // Press "Show earlier output" until the start, each time waiting for the page to show it.
    const clicks = await page.evaluate(async () => {
      const button = document.getElementById("log-earlier")!;
      const log = document.getElementById("log")!;
      const firstStart = () => document.querySelector<HTMLElement>("#log > .chunk")!.dataset.start;
      /** Resolves when the log's first chunk is no longer the one that started at `before` (a DOM change, observed). */
      const shown = (before: string | undefined) =>
        new Promise<void>((resolve) => {
          const observer = new MutationObserver(() => {
            if (firstStart() === before) return;
            observer.disconnect();
            resolve();
          });
          observer.observe(log, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-start"] });
        });
      /** After the next frame is drawn: a frame callback, then a message (run after the frame's rendering). */
      const painted = () =>
        new Promise<void>((resolve) =>
          requestAnimationFrame(() => {
            const channel = new MessageChannel();
            channel.port1.onmessage = () => resolve();
            channel.port2.postMessage(undefined);
          }),
        );
      const times: number[] = [];
      while (!button.hidden && times.length < 60) {
        const before = firstStart();
        const at = performance.now();
        const changed = shown(before);
        button.click();
        await changed;
        await painted();
        times.push(performance.now() - at);
      }
      return times;
    });
    const longTasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);
    const kept = await page.evaluate(() => document.getElementById("log")!.textContent!.length);
    const beginning = await page.evaluate(() => document.getElementById("log")!.textContent!.slice(0, 4_000));
    process.stdout.write(
      `10 MB log: page loaded in ${Math.round(loadMs)} ms; ${clicks.length} pages back, median ${Math.round(median(clicks))} ms, ` +
        `slowest ${Math.round(Math.max(...clicks))} ms; longest task ${Math.round(Math.max(0, ...longTasks))} ms; ${kept} characters kept in the page\n`,
    );
    expect(await page.getAttribute("#log > .chunk", "data-start")).toBe("0");
    expect(beginning).toMatch(/^\[slipway\]/);
    expect(beginning).toContain("\nline 000000 0123456789abcdef");
    expect(clicks.length).toBeGreaterThanOrEqual(35);
    expect(kept).toBeLessThanOrEqual(2_000_000 + 300_000);
    expect(await page.isVisible("#log-later")).toBe(true);
    // Generous for a loaded 2-core machine; measured 50-90 ms when idle.
    expect(Math.max(0, ...longTasks)).toBeLessThan(1_000);
    await context.close();
  });
});

describe("what GitHub was asked", () => {
  it("every request matched GitHub's OpenAPI description", () => {
    expect(github.violations).toEqual([]);
  });
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
