import type { Deployment, Revision } from "../../../store/model.js";
import { ansiToHtml } from "./ansi-to-html.js";
import {
  deploymentStateWords,
  formatDuration,
  formatTime,
  isFinal,
  phaseLines,
  revisionStateWords,
  triggerText,
} from "./describe-for-people.js";
import { html } from "./html.js";
import type { LogSlice } from "./read-log.js";
import type { Page } from "./send-page.js";

/** How much of the log the page shows; the rest is one link away. */
export const LOG_TAIL_BYTES = 256 * 1024;

export interface RevisionPageInput {
  revision: Revision;
  deployment: Deployment | undefined;
  /** The log's last `LOG_TAIL_BYTES`, or undefined when nothing was logged yet. */
  log: LogSlice | undefined;
  basePath: string;
  now: Date;
}

/** `GET /revisions/<id>`: header, phase timeline and log; a running revision follows its log live. */
export function renderRevision({ revision, deployment, log, basePath, now }: RevisionPageInput): Page {
  const words = revisionStateWords(revision.state);
  const final = isFinal(revision);
  const revisionPath = `${basePath}/revisions/${revision.id}`;
  const environment = deployment?.environment ?? "unknown environment";
  const repository = deployment?.repository.fullName ?? "unknown repository";
  const title = `${repository} · ${environment} · revision ${revision.number}`;
  const took = revision.finishedAt ? Date.parse(revision.finishedAt) - Date.parse(revision.createdAt) : undefined;
  const cut = log !== undefined && log.start > 0;
  const phases = phaseLines(revision, deployment, now);

  const deploymentBadge = deployment
    ? (() => {
        const d = deploymentStateWords(deployment.state);
        return html`<span class="muted">deployment</span><span class="badge ${d.tone}">${d.label}</span>`;
      })()
    : "";

  // The HTML parser drops a newline right after <pre>: the one written there keeps a log's own first line break.
  const body = html`<nav><a href="${basePath}/">← All deployments</a></nav>
<h1>${repository} · ${environment} · revision ${revision.number}</h1>
<div class="card">
<div class="row state-line"><span class="badge ${words.tone}" id="state" data-state="${revision.state}">${words.label}</span>${deploymentBadge}</div>
<dl class="facts">
<dt>Commit</dt><dd><code>${revision.sha}</code></dd>
<dt>Ref</dt><dd><code>${revision.ref}</code></dd>
<dt>Trigger</dt><dd>${triggerText(revision)}</dd>
<dt>Created</dt><dd><time datetime="${revision.createdAt}">${formatTime(revision.createdAt)}</time></dd>
${
  revision.finishedAt
    ? html`<dt>Finished</dt><dd><time datetime="${revision.finishedAt}">${formatTime(revision.finishedAt)}</time>${
        took !== undefined ? html` <span class="muted">(${formatDuration(took)})</span>` : ""
      }</dd>`
    : ""
}
${revision.attempts > 1 ? html`<dt>Attempts</dt><dd>${revision.attempts}</dd>` : ""}
</dl>
</div>
${
  revision.error
    ? html`<div class="card error" role="alert"><strong>What went wrong:</strong> ${revision.error}${
        revision.infrastructureFault ? html` <span class="muted">(a fault of Slipway or the machine, not of the code)</span>` : ""
      }</div>`
    : ""
}
<h2>Phases</h2>
${
  phases.length === 0
    ? html`<p class="muted">${final ? "No phase ran." : "Waiting for a listener to pick this revision up."}</p>`
    : html`<ol class="timeline">${phases.map(
        (p) => html`<li class="${p.tone}"><span class="name">${p.name}</span>
<span class="badge ${p.tone}">${p.outcome}</span>
<span class="duration">${p.duration}</span>
${p.note ? html`<span class="muted note">${p.note}</span>` : ""}</li>`,
      )}</ol>`
}
<h2 class="row"><span class="grow">Log</span>${
    log && log.size > 0 ? html`<a class="raw-link" href="${revisionPath}/log">raw log</a>` : ""
  }</h2>
${
  cut
    ? html`<p class="muted" id="log-cut">Showing the last ${formatBytes(log.size - log.start)} of ${formatBytes(log.size)}. <a href="${revisionPath}/log">The full log</a>.</p>`
    : ""
}
${final ? "" : html`<p class="muted" id="live" aria-live="polite">Following the log…</p>`}
${log && log.text.length > 0 ? "" : html`<p class="muted" id="log-empty">${final ? "Nothing was logged." : "No output yet."}</p>`}
<pre class="log" id="log">
${log ? ansiToHtml(cut ? fromFirstFullLine(log.text) : log.text) : ""}</pre>`;

  return {
    title,
    body,
    data: final ? {} : { state: revision.state, events: `${revisionPath}/events?from=${log?.end ?? 0}` },
    script: final ? undefined : FOLLOW_SCRIPT,
  };
}

/** A cut log starts mid-line; start at the next line when one begins soon. */
function fromFirstFullLine(text: string): string {
  const newline = text.indexOf("\n");
  return newline >= 0 && newline < 4096 ? text.slice(newline + 1) : text;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * Follows a running revision: appends log text as it arrives (as text, never markup) and
 * reloads when the state changes, which also brings the phases and colours up to date.
 * EventSource reconnects by itself and resumes at the last byte it got (Last-Event-ID).
 */
const FOLLOW_SCRIPT = String.raw`
(() => {
  const data = document.body.dataset;
  if (!data.events || !window.EventSource) return;
  const log = document.getElementById("log");
  const empty = document.getElementById("log-empty");
  const live = document.getElementById("live");
  const escapes = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
  const controls = /[\x00-\x08\x0b-\x1f\x7f]/g;
  const source = new EventSource(data.events);
  source.addEventListener("open", () => { if (live) live.textContent = "Following the log live."; });
  source.addEventListener("error", () => { if (live) live.textContent = "Connection lost, reconnecting…"; });
  source.addEventListener("log", (event) => {
    const text = JSON.parse(event.data).replace(/\r\n?/g, "\n").replace(escapes, "").replace(controls, "");
    if (!text) return;
    const root = document.scrollingElement || document.documentElement;
    const atBottom = root.scrollTop + root.clientHeight >= root.scrollHeight - 48;
    log.append(text);
    if (empty) empty.hidden = true;
    if (atBottom) root.scrollTop = root.scrollHeight;
  });
  source.addEventListener("state", (event) => {
    const message = JSON.parse(event.data);
    if (message.final) source.close();
    if (message.state !== data.state) location.reload();
  });
})();
`;
