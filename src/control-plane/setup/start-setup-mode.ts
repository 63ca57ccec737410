import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Logger } from "pino";
import { sendJson } from "../http/http-helpers.js";
import { readAppManifest, SETUP_CALLBACK_PATH, WEBHOOK_PATH } from "./app-manifest.js";
import { convertManifestCode, ManifestConversionError, type RegisteredApp } from "./convert-manifest-code.js";
import { renderRegisteredPage, renderSetupErrorPage, renderSetupPage } from "./setup-pages.js";
import { checkEnvFileWritable, updateEnvFile } from "./update-env-file.js";

export { missingCredentials } from "./missing-credentials.js";

export interface SetupModeOptions {
  port: number;
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
  close(): Promise<void>;
}

/** The keys the manifest flow writes into the env file. */
const CREDENTIAL_KEYS = ["APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"] as const;

/**
 * What `npm start` runs instead of the control plane while the GitHub App credentials
 * are missing: it says what is missing, and serves GitHub's manifest flow from app.yml
 * at `/` so that one click registers the app and writes its credentials to the env file.
 * Unlike Probot's `run()`, it installs no signal handlers and uses no webhook proxy.
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
  // The CSRF check of the manifest flow: GitHub hands the state back with the code. A new
  // one is drawn once a code is taken, so each registration is completed at most once.
  let state = randomBytes(24).toString("base64url");
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
    if (!given) return false;
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
      return sendPage(response, 400, renderSetupErrorPage("Registration not accepted", "This link did not come from the setup page of this server, or it was already used. Start again from the setup page."));
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
    state = randomBytes(24).toString("base64url");

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
      const manifest = await loadManifest();
      const formAction = `${newAppPage}?state=${encodeURIComponent(state)}`;
      const page = renderSetupPage({ missing, manifest, formAction, org, envFileName, unreachableUrl });
      return sendPage(response, manifest instanceof Error ? 500 : 200, page);
    }
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
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${localHost(options.host)}:${port}`;
  const manifest = await loadManifest();

  log.warn(
    { missing, setupUrl: publicUrl, listening: url },
    [
      "GitHub App credentials are missing, so Slipway starts in setup mode:",
      ...missing.map((item) => `  - ${item}`),
      `Open ${publicUrl} to register the GitHub App, or set the variables (see README).`,
      ...(unreachableUrl ? [`GitHub cannot send webhooks to ${publicUrl}: set SLIPWAY_PUBLIC_URL to an address it can reach first.`] : []),
    ].join("\n"),
  );
  if (manifest instanceof Error) log.error({ appYmlPath: options.appYmlPath }, `GitHub's manifest flow is unavailable: ${manifest.message}`);

  return {
    url,
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
