import { DEPLOYMENT_STATE_LABELS, REVISION_STATE_LABELS } from "../../../revisions/state-labels.js";
import { isFinal, isPreviewEnvironment, type Deployment, type DeployLock, type Revision } from "../../../store/model.js";
import { formatAge, formatTime, shortSha, triggerText } from "./describe-for-people.js";
import { html, type SafeHtml } from "./html.js";
import type { Page } from "./send-page.js";
import { secretsPagePath } from "../../secrets/render-secrets-page.js";
import { secretEnvironmentOf } from "../../secrets/secret-store.js";

/** How many revisions each deployment lists on the index, the latest included. */
export const RECENT_REVISIONS = 10;

export interface IndexInput {
  /** The deployments the viewer may see, and revisions of them (from the live document). */
  deployments: readonly Deployment[];
  revisions: readonly Revision[];
  basePath: string;
  now: Date;
  /** Under the heading: why some deployments are not listed, and how to see them. */
  notice?: SafeHtml;
  /** Link each deployment to its environment's secrets (for signed-in people; the page asks GitHub whether they may). */
  secretsLinks?: boolean;
  /** `/lock`s by deployment id (StateDocument.locks). */
  locks?: Readonly<Record<string, DeployLock>>;
}

/**
 * `GET /`: deployments grouped by repository, each with its latest revision and the most
 * recent ones. Reads only the live document: it always holds a deployment's newest revisions.
 */
export function renderIndex({ deployments, revisions, basePath, now, notice, secretsLinks, locks }: IndexInput): Page {
  const revisionsByDeployment = new Map<string, Revision[]>();
  for (const revision of revisions) {
    const list = revisionsByDeployment.get(revision.deploymentId) ?? [];
    list.push(revision);
    revisionsByDeployment.set(revision.deploymentId, list);
  }
  for (const list of revisionsByDeployment.values()) list.sort((a, b) => b.number - a.number);

  const byRepository = new Map<string, Deployment[]>();
  for (const deployment of deployments) {
    const list = byRepository.get(deployment.repository.fullName) ?? [];
    list.push(deployment);
    byRepository.set(deployment.repository.fullName, list);
  }
  const repositories = [...byRepository.entries()].sort(([a], [b]) => a.localeCompare(b));
  const inFlight = revisions.some((r) => !isFinal(r));

  const revisionLink = (revision: Revision) => html`${basePath}/revisions/${revision.id}`;

  /** Number, state, commit, trigger and age: the pieces of one line, for a `.row` to lay out. */
  const revisionFacts = (revision: Revision) => {
    const words = REVISION_STATE_LABELS[revision.state];
    return html`<a href="${revisionLink(revision)}">#${revision.number}</a>
<span class="badge ${words.tone}" data-state="${revision.state}">${words.label}</span>
<code>${shortSha(revision.sha)}</code>
<span class="muted">${triggerText(revision)}</span>
<time class="muted" datetime="${revision.createdAt}" title="${formatTime(revision.createdAt)}">${formatAge(revision.createdAt, now)}</time>`;
  };

  const deploymentCard = (deployment: Deployment) => {
    const revisions = revisionsByDeployment.get(deployment.id) ?? [];
    const latest = revisions[0];
    const words = DEPLOYMENT_STATE_LABELS[deployment.state];
    return html`<section class="card" id="deployment-${deployment.id}">
<div class="row"><h3 class="grow">${deployment.environment}</h3>
<span class="badge ${words.tone}" data-deployment-state="${deployment.state}">${words.label}</span>
${secretsLinks ? html`<a href="${secretsPagePath(basePath, deployment.repository.fullName, secretEnvironmentOf(deployment.environment))}" data-secrets-link>Secrets</a>` : ""}</div>
${deployment.placement ? html`<p class="muted" data-listener="${deployment.placement.listenerId}">On listener <code>${deployment.placement.listenerId}</code> (${placementWords(deployment.placement.holds)})</p>` : ""}
${lockLine(locks?.[deployment.id])}
${latest?.waitingFor ? html`<p class="muted" data-waiting>⏳ ${latest.waitingFor}</p>` : ""}
${latest ? html`<div class="row"><span class="muted">Latest</span> ${revisionFacts(latest)}</div>` : html`<p class="muted">No revisions yet.</p>`}
${
  revisions.length > 1
    ? html`<ul class="revisions" aria-label="Earlier revisions">${revisions
        .slice(1, RECENT_REVISIONS)
        .map((r) => html`<li class="row">${revisionFacts(r)}</li>`)}</ul>`
    : ""
}
</section>`;
  };

  const sortEnvironments = (list: Deployment[]) =>
    [...list].sort((a, b) => rank(a) - rank(b) || a.environment.localeCompare(b.environment));

  const body: SafeHtml =
    repositories.length === 0
      ? html`<h1>Deployments</h1>
${notice ?? ""}
<p class="muted">No deployments yet. Push to a branch that an environment tracks (see <code>.github/slipway.yml</code>), or comment <code>/deploy</code> on a pull request.</p>`
      : html`<h1>Deployments</h1>
${notice ?? ""}
${repositories.map(
  ([fullName, deployments]) => html`<h2>${fullName}</h2>
${sortEnvironments(deployments).map(deploymentCard)}`,
)}`;

  return { title: "Deployments", body, refreshSeconds: inFlight ? 10 : undefined };
}

/** A locked deployment: who locked it, since when, why. */
function lockLine(lock: DeployLock | undefined): SafeHtml | "" {
  if (!lock) return "";
  return html`<p data-lock="${lock.by}">🔒 locked by @${lock.by} since <time datetime="${lock.at}">${formatTime(lock.at)}</time>${lock.reason ? html` — ${lock.reason}` : ""}</p>`;
}

/** What binds a deployment to its listener, in words. */
function placementWords(holds: ReadonlyArray<"database" | "instance">): string {
  const words = { database: "its database lives there", instance: "it runs there" };
  return holds.length === 0 ? "moved there by an operator" : holds.map((h) => words[h]).join(", ");
}

/** Long-lived environments first, then previews; deleted ones last. */
function rank(deployment: Deployment): number {
  if (deployment.state === "DELETED") return 3;
  if (deployment.environment === "production") return 0;
  return isPreviewEnvironment(deployment.environment) ? 2 : 1;
}
