import { html, SafeHtml } from "../http/status-pages/html.js";
import type { AppManifest } from "./app-manifest.js";

const STYLE = `
body { font: 15px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
code { background: #f6f8fa; padding: 0 .25rem; border-radius: 4px; }
.box { border: 1px solid #d0d7de; border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.warn { border-color: #d4a72c; background: #fff8c5; } .error { border-color: #cf222e; background: #ffebe9; }
.ok { border-color: #1a7f37; background: #dafbe1; }
input { font: inherit; padding: .45rem .6rem; border: 1px solid #d0d7de; border-radius: 6px; letter-spacing: .08em; }
button { font: inherit; padding: .5rem 1rem; border: 0; border-radius: 6px; background: #1f883d; color: #fff; cursor: pointer; }
td { padding: .1rem 1rem .1rem 0; vertical-align: top; }`;

function layout(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${new SafeHtml(STYLE)}</style></head>
<body>${body}</body>
</html>
`.value;
}

/** The line of the log that holds the setup code, as the page quotes it. */
export const SETUP_CODE_LOG_LINE = "To finish setting up Slipway, enter this code on the setup page";

export type SetupStep =
  /** Asks for the setup code; `problem` says why the last one was not taken. */
  | { kind: "code"; problem?: string }
  /** The code was right: the button into GitHub's manifest flow, to GitHub's "new app" page with the state parameter. */
  | { kind: "register"; formAction: string }
  /** Too many wrong codes: none is taken until a restart. */
  | { kind: "locked" };

export interface SetupPageData {
  missing: string[];
  /** The manifest from app.yml, or why app.yml cannot be used. */
  manifest: AppManifest | Error;
  /** Where the setup stands: asking for the setup code, or ready to go to GitHub. */
  step: SetupStep;
  /** Account the app is registered under: an organization, or the signed-in user. */
  org?: string;
  envFileName: string;
  /** Set when GitHub could not reach the webhook URL. */
  unreachableUrl?: string;
}

/** The page at `/` in setup mode: what is missing, and the button into GitHub's manifest flow. */
export function renderSetupPage(data: SetupPageData): string {
  return layout(
    "Slipway: register the GitHub App",
    html`<h1>Slipway needs a GitHub App</h1>
<p>Slipway is running in setup mode: without GitHub App credentials it cannot receive webhooks or talk to GitHub. Missing:</p>
<ul id="missing">${data.missing.map((item) => html`<li><code>${item}</code></li>`)}</ul>
${data.unreachableUrl
  ? html`<div class="box warn">GitHub cannot deliver webhooks to <code>${data.unreachableUrl}</code>. Set <code>SLIPWAY_PUBLIC_URL</code> to an address GitHub can reach (a tunnel works) and restart before registering: the app is registered with that address.</div>`
  : ""}
<h2>Register it on GitHub</h2>
${data.manifest instanceof Error ? html`<div class="box error">The app cannot be registered from here: ${data.manifest.message}</div>` : registerForm(data, data.manifest)}
<h2>Or set the variables yourself</h2>
<p>Set <code>APP_ID</code>, <code>PRIVATE_KEY</code> or <code>PRIVATE_KEY_PATH</code>, and <code>WEBHOOK_SECRET</code> of an existing GitHub App (see the README), then restart <code>npm start</code>.</p>`,
  );
}

function registerForm(data: SetupPageData, manifest: AppManifest): SafeHtml {
  const permissions = Object.entries(manifest.default_permissions ?? {});
  return html`<p>This registers a ${manifest.public ? "public" : "private"} GitHub App from <code>app.yml</code> under ${data.org ? html`the organization <code>${data.org}</code>` : "your GitHub account"}, sending webhooks to <code>${manifest.hook_attributes.url}</code>. GitHub asks you to confirm the name; app names are unique on GitHub, so change it there if it is taken. GitHub then sends you back here and Slipway writes the credentials to <code>${data.envFileName}</code>.</p>
${stepForm(data.step, manifest)}
<table class="box" id="permissions">
<tr><td>Permissions</td><td>${permissions.map(([name, level]) => html`<code>${name}: ${level}</code> `)}</td></tr>
<tr><td>Events</td><td>${(manifest.default_events ?? []).map((event) => html`<code>${event}</code> `)}</td></tr>
</table>`;
}

function stepForm(step: SetupStep, manifest: AppManifest): SafeHtml {
  if (step.kind === "locked") {
    return html`<div class="box error" id="locked">Too many wrong setup codes were entered, so this server takes no more. Restart <code>npm start</code>: it prints a new code in its log.</div>`;
  }
  if (step.kind === "register") {
    return html`<div class="box ok">The setup code is right.</div>
<form method="post" action="${step.formAction}">
<input type="hidden" name="manifest" value="${JSON.stringify(manifest)}">
<button type="submit">Register ${manifest.name ?? "the app"} on GitHub</button>
</form>`;
  }
  return html`<form method="post" action="/setup/code" id="setup-code">
<p>First, enter the <label for="setup_code">setup code</label>: it is printed in the log of <code>npm start</code>, on the line “${SETUP_CODE_LOG_LINE}: …”. It proves that you run this server: only someone who can read its log may register the app whose credentials it will use.</p>
${step.problem ? html`<div class="box error" id="code-problem">${step.problem}</div>` : ""}
<p><input id="setup_code" name="setup_code" required autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="64" placeholder="XXXX-XXXX"> <button type="submit">Continue</button></p>
</form>`;
}

export interface RegisteredPageData {
  name: string;
  installUrl: string;
  envFileName: string;
  /** Written keys that an environment variable set outside the file would override. */
  shadowed: string[];
  webhookSecretMissing: boolean;
}

/** Shown once GitHub's credentials are in the env file. Holds no secret. */
export function renderRegisteredPage(data: RegisteredPageData): string {
  return layout(
    "Slipway: GitHub App registered",
    html`<h1>Registered ${data.name}</h1>
<div class="box ok">The app's credentials are in <code>${data.envFileName}</code>. Restart <code>npm start</code> to use them.</div>
${data.shadowed.length > 0
  ? html`<div class="box warn">${data.shadowed.map((key) => html`<code>${key}</code> `)}${data.shadowed.length === 1 ? "is" : "are"} also set in the environment, which wins over <code>${data.envFileName}</code>: unset ${data.shadowed.length === 1 ? "it" : "them"} before restarting.</div>`
  : ""}
${data.webhookSecretMissing
  ? html`<div class="box warn">GitHub returned no webhook secret: set one in the app's settings on GitHub and put it in <code>WEBHOOK_SECRET</code>.</div>`
  : ""}
<p>Then install it on the repositories it should deploy: <a href="${data.installUrl}">${data.installUrl}</a></p>`,
  );
}

/** A page for a setup step that went wrong, saying what to do next. */
export function renderSetupErrorPage(title: string, message: string): string {
  return layout(`Slipway: ${title}`, html`<h1>${title}</h1><div class="box error">${message}</div><p><a href="/">Back to the setup page</a></p>`);
}
