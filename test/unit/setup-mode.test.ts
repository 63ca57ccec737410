import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import pino from "pino";
import { createProbot } from "probot";
import { parse } from "yaml";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { missingCredentials, startSetupMode, type SetupMode } from "../../src/control-plane/setup/start-setup-mode.js";
import { generateAppKey } from "../support/app-credentials.js";

const REPO_APP_YML = fileURLToPath(new URL("../../app.yml", import.meta.url));
const PUBLIC_URL = "https://deploy.example.com";
const WEBHOOK_SECRET = "whsec-7f3a9c1e5b2d4f6a8c0e";
const CLIENT_SECRET = "1f0e2d3c4b5a69788796a5b4c3d2e1f001234567";

let pem: string;
let dir: string;
let envFile: string;
let logLines: string[];
let setup: SetupMode | undefined;
let github: { url: string; requests: Array<{ method?: string; url?: string; authorization?: string }>; close(): Promise<void> };
let answer: (request: IncomingMessage, response: ServerResponse) => void;

beforeAll(async () => {
  pem = generateAppKey().privateKey;
  // A stand-in for GitHub's REST API, over real HTTP.
  const requests: typeof github.requests = [];
  const server: Server = createServer((request, response) => {
    requests.push({ method: request.method, url: request.url, authorization: request.headers.authorization });
    answer(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  github = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
});

afterAll(() => github.close());

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "slipway-setup-"));
  envFile = path.join(dir, ".env");
  await writeFile(path.join(dir, "app.yml"), "name: Slipway Test\ndefault_permissions: { checks: write }\ndefault_events: [check_run]\n");
  logLines = [];
  github.requests.length = 0;
  answer = (_request, response) => {
    response.writeHead(201, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        id: 12345,
        slug: "slipway-test",
        name: "Slipway Test",
        html_url: "https://github.com/apps/slipway-test",
        owner: { login: "octo-org" },
        pem,
        webhook_secret: WEBHOOK_SECRET,
        client_id: "Iv23liSlipwayTest",
        client_secret: CLIENT_SECRET,
      }),
    );
  };
});

afterEach(async () => {
  await setup?.close();
  setup = undefined;
  await rm(dir, { recursive: true, force: true });
});

function captureLog() {
  return pino({ level: "trace" }, { write: (line: string) => void logLines.push(line) });
}

async function start(overrides: Partial<Parameters<typeof startSetupMode>[0]> = {}): Promise<SetupMode> {
  setup = await startSetupMode({
    port: 0,
    host: "127.0.0.1",
    publicUrl: PUBLIC_URL,
    envFile,
    appYmlPath: path.join(dir, "app.yml"),
    apiUrl: github.url,
    log: captureLog(),
    missing: ["APP_ID", "PRIVATE_KEY or PRIVATE_KEY_PATH", "WEBHOOK_SECRET"],
    env: {},
    ...overrides,
  });
  return setup;
}

function unescapeHtml(text: string): string {
  return text.replace(/&(quot|amp|lt|gt|#39);/g, (_, entity: string) => ({ quot: '"', amp: "&", lt: "<", gt: ">", "#39": "'" })[entity]!);
}

const CODE_LINE = "To finish setting up Slipway, enter this code on the setup page: ";

/** The setup code, from the one log line that holds it. */
function setupCodeFromLog(): string {
  const lines = logLines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.msg.startsWith(CODE_LINE));
  expect(lines).toHaveLength(1);
  return lines[0]!.msg.slice(CODE_LINE.length);
}

/** Posts the setup page's code form, as a browser does from that page. */
async function enterSetupCode(base: string, code: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}/setup/code`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "same-origin", origin: "null", ...headers },
    body: new URLSearchParams({ setup_code: code }),
  });
  return { status: response.status, page: await response.text() };
}

/** What the page's form sends to GitHub once the setup code is entered: where, with which state, and the manifest. */
async function readSetupForm(base: string, code = setupCodeFromLog()) {
  const { page } = await enterSetupCode(base, code);
  const action = new URL(unescapeHtml(/<form method="post" action="([^"]*)"/.exec(page)![1]!));
  const manifest = JSON.parse(unescapeHtml(/name="manifest" value="([^"]*)"/.exec(page)![1]!)) as Record<string, any>;
  return { page, action, state: action.searchParams.get("state")!, manifest };
}

describe("missingCredentials", () => {
  const complete = { APP_ID: "12345", WEBHOOK_SECRET: "s3cret" };

  it("names all three credentials when nothing is set, and blanks count as unset", () => {
    const all = ["APP_ID", "PRIVATE_KEY or PRIVATE_KEY_PATH", "WEBHOOK_SECRET"];
    expect(missingCredentials({})).toEqual(all);
    expect(missingCredentials({ APP_ID: " ", PRIVATE_KEY: "", PRIVATE_KEY_PATH: "  ", WEBHOOK_SECRET: "" })).toEqual(all);
    expect(missingCredentials({ PRIVATE_KEY: pem })).toEqual(["APP_ID", "WEBHOOK_SECRET"]);
  });

  it("accepts a PEM as is, with escaped newlines, or base64-encoded, as Probot does", () => {
    expect(missingCredentials({ ...complete, PRIVATE_KEY: pem })).toEqual([]);
    expect(missingCredentials({ ...complete, PRIVATE_KEY: pem.replace(/\n/g, "\\n") })).toEqual([]);
    expect(missingCredentials({ ...complete, PRIVATE_KEY: Buffer.from(pem).toString("base64") })).toEqual([]);
  });

  it("says why a value that is set cannot be used", () => {
    expect(missingCredentials({ ...complete, APP_ID: "my-app", PRIVATE_KEY: "ghp_not_a_key" })).toEqual([
      "APP_ID (must be the app's numeric ID)",
      "PRIVATE_KEY (not a PEM private key)",
    ]);
  });

  it("counts a PRIVATE_KEY_PATH without a key file as missing, and says which file", async () => {
    const gone = path.join(dir, "gone.pem");
    expect(missingCredentials({ ...complete, PRIVATE_KEY_PATH: gone })).toEqual([`PRIVATE_KEY_PATH (no file at ${gone})`]);
    expect(missingCredentials({ ...complete, PRIVATE_KEY_PATH: dir })).toEqual([`PRIVATE_KEY_PATH (no file at ${dir})`]);

    const notAKey = path.join(dir, "notes.txt");
    await writeFile(notAKey, "hello\n");
    expect(missingCredentials({ ...complete, PRIVATE_KEY_PATH: notAKey })).toEqual([`PRIVATE_KEY_PATH (${notAKey} holds no PEM private key)`]);

    const keyFile = path.join(dir, "app.pem");
    await writeFile(keyFile, pem);
    expect(missingCredentials({ ...complete, PRIVATE_KEY_PATH: keyFile })).toEqual([]);
    // PRIVATE_KEY wins over PRIVATE_KEY_PATH, in Probot too.
    expect(missingCredentials({ ...complete, PRIVATE_KEY: pem, PRIVATE_KEY_PATH: gone })).toEqual([]);
  });

  it("returns nothing only for settings Probot starts with", async () => {
    const keyFile = path.join(dir, "app.pem");
    await writeFile(keyFile, pem);
    for (const env of [
      { ...complete, PRIVATE_KEY: pem },
      { ...complete, PRIVATE_KEY: pem.replace(/\n/g, "\\n") },
      { ...complete, PRIVATE_KEY_PATH: keyFile },
    ]) {
      expect(missingCredentials(env)).toEqual([]);
      expect(() => createProbot({ env: { ...env, LOG_LEVEL: "silent" } })).not.toThrow();
    }
    expect(() => createProbot({ env: { WEBHOOK_SECRET: "x", LOG_LEVEL: "silent" } })).toThrow();
  });
});

describe("startSetupMode", () => {
  it("says what is missing in one warning, the setup code in another, and serves the manifest flow from the repository's app.yml", async () => {
    const { url } = await start({ appYmlPath: REPO_APP_YML });
    const warnings = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40);
    expect(warnings).toHaveLength(2);
    expect(warnings[0].msg).toContain("  - PRIVATE_KEY or PRIVATE_KEY_PATH");
    expect(warnings[0].msg).toContain(`Open ${PUBLIC_URL} to register the GitHub App, or set the variables (see README).`);
    expect(warnings[1].msg).toMatch(/^To finish setting up Slipway, enter this code on the setup page: [23456789CFGHJMPQRVWX]{4}-[23456789CFGHJMPQRVWX]{4}$/);

    const response = await fetch(`${url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const { page, action, state, manifest } = await readSetupForm(url);
    expect(page).toContain("The setup code is right.");
    expect(page).toContain("<li><code>APP_ID</code></li>");
    expect(page).toContain("<li><code>PRIVATE_KEY or PRIVATE_KEY_PATH</code></li>");
    expect(page).toContain("<li><code>WEBHOOK_SECRET</code></li>");
    expect(`${action.origin}${action.pathname}`).toBe("https://github.com/settings/apps/new");
    expect(state).toMatch(/^[\w-]{32}$/);

    const appYml = parse(await readFile(REPO_APP_YML, "utf8")) as { url?: string };
    expect(manifest).toMatchObject({
      url: appYml.url ?? PUBLIC_URL, // the homepage app.yml names, else this server
      hook_attributes: { url: `${PUBLIC_URL}/api/github/webhooks` },
      redirect_url: `${PUBLIC_URL}/setup/callback`,
      public: false,
    });
    // The least the product needs, and nothing more.
    expect(manifest.default_permissions).toEqual({
      checks: "write",
      deployments: "write",
      contents: "read",
      pull_requests: "read",
      issues: "write",
      environments: "read",
      metadata: "read",
    });
    expect([...manifest.default_events].sort()).toEqual(["check_run", "issue_comment", "pull_request", "push"]);
  });

  it("escapes what it shows, and registers under an organization of GitHub Enterprise Server when asked", async () => {
    const appYmlPath = path.join(dir, "app.yml");
    await writeFile(appYmlPath, 'name: "<Slipway> & co"\npublic: true\nhook_attributes: { active: true }\ndefault_permissions: { checks: write }\n');
    const { url } = await start({
      appYmlPath,
      githubUrl: "https://ghe.example.com/",
      org: "acme corp",
      missing: ["PRIVATE_KEY_PATH (no file at /keys/<b>app</b>.pem)"],
    });
    const { page, action, manifest } = await readSetupForm(url);
    expect(page).toContain("<code>PRIVATE_KEY_PATH (no file at /keys/&lt;b&gt;app&lt;/b&gt;.pem)</code>");
    expect(page).not.toContain("<b>app</b>");
    expect(page).toContain("Register &lt;Slipway&gt; &amp; co on GitHub");
    expect(`${action.origin}${action.pathname}`).toBe("https://ghe.example.com/organizations/acme%20corp/settings/apps/new");
    expect(manifest).toMatchObject({
      name: "<Slipway> & co",
      url: PUBLIC_URL,
      public: true,
      hook_attributes: { active: true, url: `${PUBLIC_URL}/api/github/webhooks` },
      redirect_url: `${PUBLIC_URL}/setup/callback`,
    });
  });

  it("still starts with a broken app.yml, says what is wrong, and offers the form once it is fixed", async () => {
    const appYmlPath = path.join(dir, "app.yml");
    await writeFile(appYmlPath, "description: Deploys: on push\n");
    const { url } = await start();
    const errors = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0].msg).toMatch(/app\.yml is not valid YAML/);

    const broken = await fetch(`${url}/`);
    expect(broken.status).toBe(500);
    const page = await broken.text();
    expect(page).toContain("<li><code>APP_ID</code></li>");
    expect(page).toMatch(/cannot be registered from here: .*app\.yml is not valid YAML/);
    expect(page).not.toContain('name="manifest"');

    await writeFile(appYmlPath, 'description: "Deploys: on push"\n');
    expect((await readSetupForm(url)).manifest.description).toBe("Deploys: on push");
  });

  it("answers health checks and webhooks with 503 and everything else with 404", async () => {
    const { url } = await start();
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: "setup" });

    const webhook = await fetch(`${url}/api/github/webhooks`, { method: "POST", body: "{}", headers: { "x-github-event": "push" } });
    expect(webhook.status).toBe(503);
    expect(((await webhook.json()) as { message: string }).message).toMatch(/no GitHub App credentials/);

    expect((await fetch(`${url}/revisions/1`)).status).toBe(404);
    expect((await fetch(`${url}/`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${url}/setup/code`)).status).toBe(404);
  });

  it("refuses a callback whose state is wrong or absent, and writes nothing", async () => {
    await writeFile(envFile, "KEEP=me\n");
    const { url } = await start();
    const { state } = await readSetupForm(url);

    for (const query of [`code=abc&state=${state}x`, "code=abc", `code=abc&state=${"A".repeat(state.length)}`]) {
      const response = await fetch(`${url}/setup/callback?${query}`);
      expect(response.status).toBe(400);
    }
    expect(github.requests).toEqual([]);
    expect(await readFile(envFile, "utf8")).toBe("KEEP=me\n");
  });

  it("exchanges the code with GitHub and writes the credentials to the env file, keeping other lines", async () => {
    await writeFile(
      envFile,
      [
        "# my settings",
        "SLIPWAY_PUBLIC_URL=https://deploy.example.com",
        "APP_ID=1",
        'PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----',
        "b2xkIGtleQ==",
        '-----END RSA PRIVATE KEY-----"',
        "export LOG_LEVEL=debug",
        "",
      ].join("\n"),
    );
    await chmod(envFile, 0o644);
    const { url } = await start();
    const { state } = await readSetupForm(url);

    const response = await fetch(`${url}/setup/callback?code=a1b2c3&state=${state}`);
    const page = await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page).toContain("Registered Slipway Test");
    expect(page).toContain("Restart <code>npm start</code>");
    expect(page).toContain('href="https://github.com/apps/slipway-test/installations/new"');

    expect(github.requests).toEqual([{ method: "POST", url: "/app-manifests/a1b2c3/conversions", authorization: undefined }]);

    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
    const text = await readFile(envFile, "utf8");
    expect(text.startsWith("# my settings\nSLIPWAY_PUBLIC_URL=https://deploy.example.com\n")).toBe(true);
    expect(text).not.toContain("b2xkIGtleQ==");
    const written = parseEnv(text);
    expect(written).toEqual({
      SLIPWAY_PUBLIC_URL: "https://deploy.example.com",
      APP_ID: "12345",
      PRIVATE_KEY: pem,
      LOG_LEVEL: "debug",
      GITHUB_CLIENT_ID: "Iv23liSlipwayTest",
      GITHUB_CLIENT_SECRET: CLIENT_SECRET,
      WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
    expect(missingCredentials(written)).toEqual([]);

    // No secret reaches the page or the log.
    const pemBody = pem.split("\n")[1]!;
    const log = logLines.join("");
    for (const secret of [pemBody, WEBHOOK_SECRET, CLIENT_SECRET]) {
      expect(page).not.toContain(secret);
      expect(log).not.toContain(secret);
    }
    expect(log).toContain("registered GitHub App Slipway Test");

    // The registration is done: the setup page says so, and the link cannot be used again.
    expect(await (await fetch(`${url}/`)).text()).toContain("Registered Slipway Test");
    expect((await fetch(`${url}/setup/callback?code=a1b2c3&state=${state}`)).status).toBe(409);
    expect(github.requests).toHaveLength(1);
  });

  it("creates the env file with mode 0600 and finds GitHub Enterprise Server's API from its web address", async () => {
    const { url } = await start({ githubUrl: github.url, apiUrl: undefined, env: { APP_ID: "999" } });
    const { state } = await readSetupForm(url);
    const response = await fetch(`${url}/setup/callback?code=xyz&state=${state}`);
    expect(response.status).toBe(200);
    expect(github.requests.map((request) => request.url)).toEqual(["/api/v3/app-manifests/xyz/conversions"]);
    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
    expect(parseEnv(await readFile(envFile, "utf8")).PRIVATE_KEY).toBe(pem);
    // A variable from the shell would win over the file: the page says to unset it.
    expect(await response.text()).toMatch(/<code>APP_ID<\/code> is also set in the environment/);
  });

  it("reports a code GitHub refuses, and writes nothing", async () => {
    answer = (_request, response) => {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(JSON.stringify({ message: "Not Found" }));
    };
    const { url } = await start();
    const { state } = await readSetupForm(url);
    const response = await fetch(`${url}/setup/callback?code=expired&state=${state}`);
    expect(response.status).toBe(502);
    expect(await response.text()).toContain("expires an hour after registration");
    await expect(stat(envFile)).rejects.toMatchObject({ code: "ENOENT" });
    // The next attempt starts from a fresh page: the used state is gone.
    expect((await readSetupForm(url)).state).not.toBe(state);
  });
});

/** An address of this machine other than loopback, if it has one. */
function otherAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((item) => item && item.family === "IPv4" && !item.internal)?.address;
}

async function reachable(host: string, port: number): Promise<boolean> {
  return fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
    () => true,
    () => false,
  );
}

describe("setup mode's guard", () => {
  it("listens on 127.0.0.1 unless HOST says otherwise, and says so in its log", async () => {
    const loopback = await start({ host: undefined });
    expect(loopback.host).toBe("127.0.0.1");
    const port = Number(new URL(loopback.url).port);
    expect(loopback.url).toBe(`http://127.0.0.1:${port}`);
    expect(await reachable("127.0.0.1", port)).toBe(true);
    const other = otherAddress();
    if (other) expect(await reachable(other, port)).toBe(false);
    expect(logLines.join("")).toContain("set HOST (e.g. HOST=0.0.0.0) to reach it from elsewhere");
    await loopback.close();

    logLines = [];
    const everywhere = await start({ host: "0.0.0.0" });
    expect(everywhere.host).toBe("0.0.0.0");
    if (other) expect(await reachable(other, Number(new URL(everywhere.url).port))).toBe(true);
    expect(logLines.join("")).not.toContain("set HOST");
  });

  it("asks for the setup code from the log before it gives out the way to GitHub, and never shows the code", async () => {
    const { url } = await start();
    const code = setupCodeFromLog();
    const page = await (await fetch(`${url}/`)).text();
    expect(page).toContain('<form method="post" action="/setup/code"');
    expect(page).toContain('name="setup_code"');
    expect(page).toContain("printed in the log of <code>npm start</code>");
    expect(page).toContain(CODE_LINE.replace(/: $/, ""));
    // No state, no form into GitHub's flow, no code.
    expect(page).not.toContain("settings/apps/new");
    expect(page).not.toContain('name="manifest"');
    expect(page).not.toContain(code);

    const missing = await enterSetupCode(url, "  ");
    expect(missing.status).toBe(400);
    expect(missing.page).toContain("Enter the setup code");
    expect(missing.page).not.toContain("settings/apps/new");

    // Case, spaces and the dash do not matter.
    const typed = await enterSetupCode(url, ` ${code.replace("-", " ").toLowerCase()} `);
    expect(typed.status).toBe(200);
    expect(typed.page).toContain("settings/apps/new?state=");
    expect(typed.page).not.toContain(code);
    // The log holds the code once: on the line that prints it.
    expect(logLines.filter((line) => line.includes(code))).toHaveLength(1);
  });

  it("completing the flow without the setup code, or with a wrong one, writes nothing and asks GitHub nothing", async () => {
    await writeFile(envFile, "KEEP=me\n");
    const { url } = await start();
    const code = setupCodeFromLog();

    // Without the code: no state was given out, so no callback is taken.
    for (const query of ["code=abc", "code=abc&state=", `code=abc&state=${"A".repeat(32)}`]) {
      const response = await fetch(`${url}/setup/callback?${query}`);
      expect(response.status).toBe(400);
      expect(await response.text()).toContain("after its setup code was entered");
    }

    // With a wrong code: the page says why, and still gives out no state.
    const wrong = await enterSetupCode(url, code.replace(/^./, (c) => (c === "2" ? "3" : "2")));
    expect(wrong.status).toBe(403);
    expect(wrong.page).toContain("That is not the setup code: nothing was registered or written.");
    expect(wrong.page).toContain("9 attempts are left");
    expect(wrong.page).not.toContain("settings/apps/new");
    expect((await fetch(`${url}/setup/callback?code=abc&state=${"B".repeat(32)}`)).status).toBe(400);

    expect(github.requests).toEqual([]);
    expect(await readFile(envFile, "utf8")).toBe("KEEP=me\n");
    const warnings = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40);
    expect(warnings.some((entry) => entry.msg === "a wrong setup code was entered on the setup page" && entry.attemptsLeft === 9)).toBe(true);

    // With the code, the same flow completes.
    const { state } = await readSetupForm(url, code);
    const done = await fetch(`${url}/setup/callback?code=a1b2c3&state=${state}`);
    expect(done.status).toBe(200);
    expect(parseEnv(await readFile(envFile, "utf8"))).toMatchObject({ KEEP: "me", APP_ID: "12345" });
  });

  it("takes no code, the right one included, after ten wrong ones, until a restart prints a new one", async () => {
    await writeFile(envFile, "KEEP=me\n");
    let { url } = await start();
    const code = setupCodeFromLog();
    for (let attempt = 1; attempt <= 9; attempt++) {
      const answer = await enterSetupCode(url, `WRONG${attempt}`);
      expect(answer.status).toBe(403);
      expect(answer.page).toContain(`${10 - attempt} ${attempt === 9 ? "attempt is" : "attempts are"} left`);
    }
    const tenth = await enterSetupCode(url, "WRONG10");
    expect(tenth.status).toBe(429);
    expect(tenth.page).toContain("Too many wrong setup codes");

    const right = await enterSetupCode(url, code);
    expect(right.status).toBe(429);
    expect(right.page).not.toContain("settings/apps/new");
    expect(await (await fetch(`${url}/`)).text()).toContain("Restart <code>npm start</code>: it prints a new code in its log.");
    const errors = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 50);
    expect(errors.map((entry) => entry.msg)).toEqual([expect.stringMatching(/^too many wrong setup codes/)]);
    expect(github.requests).toEqual([]);
    expect(await readFile(envFile, "utf8")).toBe("KEEP=me\n");

    // A restart: a new code, and attempts afresh.
    await setup!.close();
    logLines = [];
    ({ url } = await start());
    const fresh = setupCodeFromLog();
    expect(fresh).not.toBe(code);
    expect((await enterSetupCode(url, fresh)).status).toBe(200);
  });

  it("refuses a code form posted by another site, without counting it", async () => {
    const { url } = await start();
    const foreign: Array<Record<string, string>> = [{ "sec-fetch-site": "cross-site" }, { "sec-fetch-site": "same-site" }, { "sec-fetch-site": "none", origin: "https://evil.example" }];
    for (const headers of foreign) {
      const answer = await enterSetupCode(url, "WRONG", headers);
      expect(answer.status).toBe(403);
      expect(answer.page).toMatch(/sent from another (site|origin)/);
    }
    const plain = await fetch(`${url}/setup/code`, { method: "POST", headers: { "content-type": "text/plain" }, body: "setup_code=WRONG" });
    expect(plain.status).toBe(415);
    // None of those counted: the first wrong code still leaves nine.
    expect((await enterSetupCode(url, "WRONG")).page).toContain("9 attempts are left");
    // From the public URL's origin, or this host's, it is the page's own.
    expect((await enterSetupCode(url, setupCodeFromLog(), { origin: PUBLIC_URL })).status).toBe(200);
    expect((await enterSetupCode(url, setupCodeFromLog(), { origin: url })).status).toBe(200);
  });
});
