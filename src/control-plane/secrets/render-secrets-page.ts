import { formatTime } from "../http/status-pages/describe-for-people.js";
import { html, type SafeHtml } from "../http/status-pages/html.js";
import type { Page } from "../http/status-pages/send-page.js";
import { MAX_SECRET_NAME_LENGTH, PREVIEW_SECRET_ENVIRONMENT, type SecretListing } from "./secret-store.js";

export interface SecretsPageInput {
  /** "owner/repo" as in the path. */
  repository: string;
  environment: string;
  /** Names and update times: a value never reaches this page. */
  secrets: readonly SecretListing[];
  /** The repository's other environments with secrets or deployments, for links. */
  environments: readonly string[];
  csrfToken: string;
  basePath: string;
  /** What the last form did, said above the list. */
  done?: { action: "set" | "deleted"; name: string };
  header?: SafeHtml;
}

/** The path of an environment's secrets page. */
export function secretsPagePath(basePath: string, repository: string, environment: string): string {
  const [owner = "", repo = ""] = repository.split("/");
  return `${basePath}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/environments/${encodeURIComponent(environment)}/secrets`;
}

/**
 * `GET /repos/<owner>/<repo>/environments/<environment>/secrets`, for people with maintain or
 * admin permission: the environment's secret names with who set them when, a Delete button
 * each, and a form to set one. Values are never drawn, not even a length.
 */
export function renderSecretsPage(input: SecretsPageInput): Page {
  const { repository, environment, basePath, csrfToken } = input;
  const pagePath = secretsPagePath(basePath, repository, environment);
  const csrf = html`<input type="hidden" name="csrf" value="${csrfToken}">`;
  const others = input.environments.filter((e) => e !== environment);

  const row = (secret: SecretListing) => html`<li class="row" data-secret="${secret.name}"><code class="grow">${secret.name}</code>
<span class="muted">set by ${secret.updatedBy}</span>
<time class="muted" datetime="${secret.updatedAt}">${formatTime(secret.updatedAt)}</time>
<form method="post" action="${pagePath}/${encodeURIComponent(secret.name)}/delete">${csrf}<button type="submit" class="danger">Delete</button></form></li>`;

  const body = html`<nav><a href="${basePath}/">← All deployments</a></nav>
<h1>Secrets of ${repository} · ${environment}</h1>
${input.done ? html`<p class="notice" data-done="${input.done.action}">${input.done.action === "set" ? html`Set <code>${input.done.name}</code>.` : html`Deleted <code>${input.done.name}</code>.`}</p>` : ""}
<p class="muted">Builds and running revisions of ${environment === PREVIEW_SECRET_ENVIRONMENT ? "every pull request preview (pr-<number>)" : environment} get these as environment variables, over GitHub environment variables and <code>build.env</code>.
Values are encrypted at rest, masked in logs and never shown again, here or anywhere.</p>
${others.length > 0 ? html`<p class="muted">Other environments: ${others.map((e, i) => html`${i > 0 ? ", " : ""}<a href="${secretsPagePath(basePath, repository, e)}">${e}</a>`)}</p>` : ""}
<section class="card">
${input.secrets.length === 0 ? html`<p class="muted">No secrets yet.</p>` : html`<ul class="revisions" aria-label="Secrets">${input.secrets.map(row)}</ul>`}
</section>
<h2>Set a secret</h2>
<form method="post" action="${pagePath}" class="card">${csrf}
<p><label>Name<br><input name="name" required maxlength="${MAX_SECRET_NAME_LENGTH}" pattern="[A-Z_][A-Z0-9_]*" autocomplete="off" spellcheck="false" placeholder="API_KEY"></label></p>
<p class="muted">Upper-case letters, digits and _; not SLIPWAY_…, PATH, HOME, PORT or DATABASE_URL. Setting a name again replaces its value.</p>
<p><label>Value (up to 64 KiB)<br><textarea name="value" required rows="4" cols="60" autocomplete="off" spellcheck="false"></textarea></label></p>
<p><button type="submit">Set secret</button></p>
</form>`;
  return { title: `Secrets · ${repository} · ${environment}`, body };
}
