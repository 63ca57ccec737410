import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Logger } from "pino";
import { readFormBody } from "../http/auth/check-form-post.js";
import { HttpError, sendJson } from "../http/http-helpers.js";
import { readAppManifest, SETUP_CALLBACK_PATH, WEBHOOK_PATH } from "./app-manifest.js";
import { convertManifestCode, ManifestConversionError, type RegisteredApp } from "./convert-manifest-code.js";
import { createSetupCode } from "./setup-code.js";
import { renderRegisteredPage, renderSetupErrorPage, renderSetupPage, SETUP_CODE_LOG_LINE, type SetupStep } from "./setup-pages.js";
import { checkEnvFileWritable, updateEnvFile } from "./update-env-file.js";

export { missingCredentials } from "./missing-credentials.js";

export interface SetupModeOptions {
  port: number;
  /** `HOST`: the interface to listen on; default loopback (127.0.0.1). */
  host?: string;
  /** Where GitHub and the browser reach this server; the manifest's URLs are built on it. */
  publicUrl: string;
  /** The `.env` file that receives the credentials. */
  envFile: string;
  appYmlPath: string;
  /** GitHub's web address: https://github.com, or `${GHE_PROTOCOL}://${GHE_HOST}`. */
  githubUrl?: string;
  /** GitHub's REST API: https://api.github.com, or GitHub Enterprise Server's `/api/v3`. */
  apiUrl?: string;
  /** Register the app under this organization (`GH_ORG`) instead of the signed-in user. */
  org?: string;
  log: Logger;
  /** What `missingCredentials` reported. */
  missing: string[];
  /** The environment `npm start` runs with, to warn when it would override the file; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface SetupMode {
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000. */
  url: string;
  /** The address it listens on: 127.0.0.1 unless `host` said otherwise. */
  host: string;
  close(): Promise<void>;
}

/** Where the setup page sends the setup code. */
const SETUP_CODE_PATH = "/setup/code";

/** The keys the manifest flow writes into the env file. */
const CREDENTIAL_KEYS = ["APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"] as const;

/**
 * What `npm start` runs instead of the control plane while the GitHub App credentials
 * are missing: it says what is missing, and serves GitHub's manifest flow from app.yml
 * at `/` so that the setup code and one click register the app and write its credentials
 * to the env file.
 * Unlike Probot's `run()`, it installs no signal handlers and uses no webhook proxy.
 *
 * It listens on loopback unless `host` (HOST) says otherwise, and the flow needs the setup
 * code it prints in its log: the page asks for it before it hands out the manifest flow's
 * state, and the callback takes only that state. After ten wrong codes no code is taken
 * until a restart.
 *
 * @example
 * const missing = missingCredentials(process.env);
 * if (missing.length > 0) await startSetupMode({ port: 3000, publicUrl, envFile: ".env", appYmlPath: "app.yml", log, missing });
 */
export async function startSetupMode(options: SetupModeOptions): Promise<SetupMode> {
  const { log, missing, envFile, org } = options;
  const publicUrl = options.publicUrl.replace(/\/+$/, "");
  const githubUrl = (options.githubUrl ?? "https://github.com").replace(/\/+$/, "");
  const apiUrl = (options.apiUrl ?? (githubUrl === "https://github.com" ? "https://api.github.com" : `${githubUrl}/api/v3`)).replace(/\/+$/, "");
  const env = options.env ?? process.env;
  const relativeEnvFile = path.relative(process.cwd(), envFile);
  const envFileName = relativeEnvFile && !relativeEnvFile.startsWith("..") && !path.isAbsolute(relativeEnvFile) ? relativeEnvFile : envFile;
  const unreachableUrl = isLoopback(publicUrl) ? publicUrl : undefined;

  // Read on every visit, so that a fixed app.yml needs no restart; a broken one leaves
  // the page telling what is wrong rather than failing start-up.
  const loadManifest = () => readAppManifest({ appYmlPath: options.appYmlPath, publicUrl }).catch((error: Error) => error);
  const newAppPage = org ? `${githubUrl}/organizations/${encodeURIComponent(org)}/settings/apps/new` : `${githubUrl}/settings/apps/new`;
  // The setup code proves that whoever registers the app can read this server's log.
  const setupCode = createSetupCode();
  // The CSRF check of the manifest flow: GitHub hands the state back with the code. It is
  // given out only for the right setup code, so the state carries the setup code's proof
  // through GitHub's round trip. It is dropped once a code is taken, so each registration
  // is completed at most once; the next right setup code draws a new one.
  let state: string | undefined;
  let registered: { page: string } | undefined;

  function sendPage(response: ServerResponse, status: number, page: string) {
    response.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
      // The callback URL holds the one-time code: links on its page must not pass it on.
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    });
    response.end(page);
  }

  function stateMatches(given: string | null): boolean {
    if (!given || state === undefined) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(state);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async function completeRegistration(url: URL, response: ServerResponse) {
    if (registered) {
      return sendPage(response, 409, renderSetupErrorPage("Already registered", `An app was already registered and written to ${envFileName}: restart npm start.`));
    }
    const code = url.searchParams.get("code");
    if (!stateMatches(url.searchParams.get("state")) || !code) {
      log.warn("setup callback with a missing or wrong state, ignoring");
      return sendPage(response, 400, renderSetupErrorPage("Registration not accepted", "This link did not come from the setup page of this server after its setup code was entered, or it was already used. Start again from the setup page."));
    }
    try {
      await checkEnvFileWritable(envFile);
    } catch (error) {
      log.error({ err: error, envFile }, "cannot write the env file; the registration code is kept for a retry");
      return sendPage(response, 500, renderSetupErrorPage("Cannot save the credentials", `${(error as Error).message}. Fix that and reload this page within the hour.`));
    }
    if (!stateMatches(url.searchParams.get("state"))) {
      return sendPage(response, 400, renderSetupErrorPage("Registration not accepted", "This link was already used. Start again from the setup page."));
    }
    state = undefined;

    let app: RegisteredApp;
    try {
      app = await convertManifestCode({ apiUrl, code });
    } catch (error) {
      const status = error instanceof ManifestConversionError ? error.status : undefined;
      log.warn({ status, apiUrl }, `GitHub app registration could not be completed: ${(error as Error).message}`);
      return sendPage(response, 502, renderSetupErrorPage("GitHub did not complete the registration", `${(error as Error).message}. Start again from the setup page.`));
    }

    const values: Record<string, string> = {
      APP_ID: String(app.id),
      PRIVATE_KEY: app.pem,
      GITHUB_CLIENT_ID: app.clientId,
      GITHUB_CLIENT_SECRET: app.clientSecret,
    };
    if (app.webhookSecret) values.WEBHOOK_SECRET = app.webhookSecret;
    let previous: NodeJS.Dict<string>;
    try {
      ({ previous } = await updateEnvFile({ file: envFile, values }));
    } catch (error) {
      log.error({ err: error, appId: app.id, app: app.slug, envFile }, "GitHub App registered, but its credentials could not be written");
      return sendPage(response, 500, renderSetupErrorPage("Cannot save the credentials", `${app.name} was registered on GitHub, but ${envFileName} could not be written (${(error as NodeJS.ErrnoException).code ?? "error"}). Delete the app in its settings on GitHub (${app.htmlUrl}) and start again.`));
    }

    // process.loadEnvFile leaves variables that are already set alone: a value from the
    // shell that differs from the file's would hide the new credentials.
    const shadowed = CREDENTIAL_KEYS.filter((key) => key in values && env[key] !== undefined && env[key] !== previous[key]);
    const installUrl = `${app.htmlUrl.replace(/\/+$/, "")}/installations/new`;
    registered = {
      page: renderRegisteredPage({ name: app.name, installUrl, envFileName, shadowed, webhookSecretMissing: !app.webhookSecret }),
    };
    log.warn(
      { appId: app.id, app: app.slug, owner: app.owner, envFile, shadowed, install: installUrl },
      `registered GitHub App ${app.name}: credentials written to ${envFileName}; restart npm start, then install it at ${installUrl}`,
    );
    sendPage(response, 200, registered.page);
  }

  async function setupPage(response: ServerResponse, status: number, step: SetupStep) {
    const manifest = await loadManifest();
    const page = renderSetupPage({ missing, manifest, step, org, envFileName, unreachableUrl });
    sendPage(response, manifest instanceof Error ? 500 : status, page);
  }

  /** `POST /setup/code`: the right setup code gets the form into GitHub's manifest flow, with the state. */
  async function takeSetupCode(request: IncomingMessage, response: ServerResponse) {
    if (registered) return sendPage(response, 409, registered.page);
    let form: URLSearchParams;
    try {
      form = await readSetupForm(request);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      // Not counted: a page of another site cannot spend this server's attempts.
      return sendPage(response, error.status, renderSetupErrorPage("Setup code not accepted", error.message));
    }
    const checked = setupCode.check(form.get("setup_code"));
    if (checked.ok) {
      state ??= randomBytes(24).toString("base64url");
      log.info("the setup code was entered on the setup page");
      return setupPage(response, 200, { kind: "register", formAction: `${newAppPage}?state=${encodeURIComponent(state)}` });
    }
    if (checked.reason === "missing") {
      return setupPage(response, 400, { kind: "code", problem: `Enter the setup code: it is in the log of npm start, on the line “${SETUP_CODE_LOG_LINE}: …”.` });
    }
    if (checked.reason === "locked") return setupPage(response, 429, { kind: "locked" });
    log.warn({ attemptsLeft: checked.attemptsLeft }, "a wrong setup code was entered on the setup page");
    if (checked.attemptsLeft === 0) {
      log.error("too many wrong setup codes: the setup page takes no more until npm start is restarted, which prints a new code");
      return setupPage(response, 429, { kind: "locked" });
    }
    return setupPage(response, 403, {
      kind: "code",
      problem: `That is not the setup code: nothing was registered or written. Copy it from the log of npm start (the line “${SETUP_CODE_LOG_LINE}: …”). ${checked.attemptsLeft} ${checked.attemptsLeft === 1 ? "attempt is" : "attempts are"} left before setup takes no more codes until a restart.`,
    });
  }

  /** A form of this server's own page: another site's page may not post it (nor spend attempts). */
  async function readSetupForm(request: IncomingMessage): Promise<URLSearchParams> {
    const site = request.headers["sec-fetch-site"];
    if (typeof site === "string" && site !== "same-origin" && site !== "none") throw new HttpError(403, "The form was sent from another site.");
    const origin = request.headers.origin;
    // Our pages send no referrer, so a browser posts their forms with `Origin: null`.
    if (typeof origin === "string" && origin !== "null" && !sameOrigin(origin, request.headers.host)) throw new HttpError(403, "The form was sent from another origin.");
    const type = String(request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/x-www-form-urlencoded") throw new HttpError(415, "Expected the setup page's form.");
    return readFormBody(request);
  }

  function sameOrigin(origin: string, host: string | undefined): boolean {
    try {
      const given = new URL(origin);
      return given.origin === new URL(publicUrl).origin || given.host === host;
    } catch {
      return false;
    }
  }

  async function route(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? "/", "http://localhost");
    const reading = request.method === "GET" || request.method === "HEAD";
    if (url.pathname === WEBHOOK_PATH && request.method === "POST") {
      return sendJson(response, 503, {
        error: "not configured",
        message: `Slipway has no GitHub App credentials yet (missing: ${missing.join(", ")}); open ${publicUrl} to register the app`,
      });
    }
    if (url.pathname === "/healthz" && reading) return sendJson(response, 503, { status: "setup" });
    if (url.pathname === "/" && reading) {
      if (registered) return sendPage(response, 200, registered.page);
      return setupPage(response, 200, setupCode.locked ? { kind: "locked" } : { kind: "code" });
    }
    if (url.pathname === SETUP_CODE_PATH && request.method === "POST") return takeSetupCode(request, response);
    if (url.pathname === SETUP_CALLBACK_PATH && reading) return completeRegistration(url, response);
    sendJson(response, 404, { error: "not found" });
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      log.error({ err: error, path: new URL(request.url ?? "/", "http://localhost").pathname }, "setup request failed");
      if (!response.headersSent) sendJson(response, 500, { error: "internal error" });
      else response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // Loopback unless HOST says otherwise: the setup page is for whoever runs this server.
    server.listen(options.port, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const url = `http://${localHost(address)}:${port}`;
  const manifest = await loadManifest();

  log.warn(
    { missing, setupUrl: publicUrl, listening: url },
    [
      "GitHub App credentials are missing, so Slipway starts in setup mode:",
      ...missing.map((item) => `  - ${item}`),
      `Open ${publicUrl} to register the GitHub App, or set the variables (see README).`,
      ...(options.host ? [] : [`Setup mode listens on ${url} only (this machine): set HOST (e.g. HOST=0.0.0.0) to reach it from elsewhere.`]),
      ...(unreachableUrl ? [`GitHub cannot send webhooks to ${publicUrl}: set SLIPWAY_PUBLIC_URL to an address it can reach first.`] : []),
    ].join("\n"),
  );
  // Once, and only here: whoever can read this log may finish the setup.
  log.warn(`${SETUP_CODE_LOG_LINE}: ${setupCode.code}`);
  if (manifest instanceof Error) log.error({ appYmlPath: options.appYmlPath }, `GitHub's manifest flow is unavailable: ${manifest.message}`);

  return {
    url,
    host: address,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** An address to reach the server from this machine, whatever it listens on. */
function localHost(host: string | undefined): string {
  if (!host || host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

function isLoopback(publicUrl: string): boolean {
  const { hostname } = new URL(publicUrl);
  return hostname === "localhost" || hostname.endsWith(".localhost") || hostname.startsWith("127.") || hostname === "[::1]" || hostname === "0.0.0.0";
}
