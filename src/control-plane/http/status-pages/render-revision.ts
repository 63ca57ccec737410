import { DEPLOYMENT_STATE_LABELS, REVISION_STATE_LABELS } from "../../../revisions/state-labels.js";
import { isFinal, type Deployment, type Revision } from "../../../store/model.js";
import { ansiToHtml } from "./ansi-to-html.js";
import { formatDuration, formatTime, phaseLines, triggerText } from "./describe-for-people.js";
import { html, type SafeHtml } from "./html.js";
import type { LogSlice } from "./read-log.js";
import type { Page } from "./send-page.js";

/** How much of the log the page shows at first, and how much each "Show earlier output" adds. */
export const LOG_TAIL_BYTES = 256 * 1024;

export interface RevisionPageInput {
  revision: Revision;
  deployment: Deployment | undefined;
  /** The log's last `LOG_TAIL_BYTES`, or undefined when nothing was logged yet. */
  log: LogSlice | undefined;
  basePath: string;
  now: Date;
  /** The buttons to draw (the viewer has write permission), with the session's CSRF token. */
  actions?: { csrfToken: string; cancel: boolean; redeploy: boolean; restart?: boolean };
  /** The action the viewer just asked for, to confirm it. */
  requested?: "cancel" | "redeploy" | "restart";
  header?: SafeHtml;
}

/**
 * `GET /revisions/<id>`: header, phase timeline and log; a running revision follows its log
 * live, and a long log is shown from its end, earlier parts a page at a time.
 */
export function renderRevision({ revision, deployment, log, basePath, now, actions, requested, header }: RevisionPageInput): Page {
  const words = REVISION_STATE_LABELS[revision.state];
  const final = isFinal(revision);
  const revisionPath = `${basePath}/revisions/${revision.id}`;
  const environment = deployment?.environment ?? "unknown environment";
  const repository = deployment?.repository.fullName ?? "unknown repository";
  const title = `${repository} · ${environment} · revision ${revision.number}`;
  const took = revision.finishedAt ? Date.parse(revision.finishedAt) - Date.parse(revision.createdAt) : undefined;
  const cut = log !== undefined && log.start > 0;
  const shown = log ? (cut ? fromFirstFullLine(log) : { text: log.text, start: log.start }) : undefined;
  const phases = phaseLines(revision, deployment, now);

  const deploymentBadge = deployment
    ? (() => {
        const d = DEPLOYMENT_STATE_LABELS[deployment.state];
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
${actions && (actions.cancel || actions.redeploy || actions.restart) ? actionButtons(revisionPath, actions) : ""}
</div>
${requested ? html`<p class="notice" role="status">${requestedNotice(requested, basePath, deployment)}</p>` : ""}
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
  cut || !final
    ? html`<div class="log-pager" id="log-pager"${cut ? "" : html` hidden`}>${
        cut
          ? html`<p class="muted" id="log-cut">Showing the last ${formatBytes(log.size - log.start)} of ${formatBytes(log.size)}. <a href="${revisionPath}/log">The full log</a>.</p>`
          : ""
      }
<button type="button" id="log-earlier" hidden>Show earlier output</button></div>`
    : ""
}
${final ? "" : html`<p class="muted" id="live" aria-live="polite">Following the log…</p>`}
${log && log.text.length > 0 ? "" : html`<p class="muted" id="log-empty">${final ? "Nothing was logged." : "No output yet."}</p>`}
<pre class="log" id="log">
${shown && shown.text.length > 0 ? html`<span class="chunk" data-start="${shown.start}">${ansiToHtml(shown.text)}</span>` : ""}</pre>
<p class="muted" id="log-later" hidden>Later output is left out while earlier output is shown, to keep this page quick. <a href="${revisionPath}">Back to the end</a>.</p>`;

  const data: Record<string, string> = { "log-page": `${revisionPath}/log-page`, "log-end": String(log?.end ?? 0) };
  if (!final) Object.assign(data, { state: revision.state, events: `${revisionPath}/events?from=${log?.end ?? 0}` });
  return {
    title,
    header,
    body,
    data: final && !cut ? {} : data,
    script: final && !cut ? undefined : LOG_SCRIPT,
  };
}

/** A page of a log, earlier than byte `before`, for "Show earlier output". */
export function renderLogPage(slice: LogSlice): { start: number; end: number; html: string } {
  const shown = slice.start > 0 ? fromFirstFullLine(slice) : { text: slice.text, start: slice.start };
  return { start: shown.start, end: slice.end, html: ansiToHtml(shown.text).value };
}

/**
 * A cut log starts mid-line; start at the next line when one begins soon. The cut-off part
 * belongs to the page before, which ends exactly where this one starts.
 */
function fromFirstFullLine(slice: LogSlice): { text: string; start: number } {
  const newline = slice.text.indexOf("\n");
  if (newline < 0 || newline >= 4096) return { text: slice.text, start: slice.start };
  const skipped = slice.text.slice(0, newline + 1);
  return { text: slice.text.slice(newline + 1), start: slice.start + Buffer.byteLength(skipped) };
}

function actionButtons(revisionPath: string, actions: { csrfToken: string; cancel: boolean; redeploy: boolean; restart?: boolean }) {
  const button = (action: "cancel" | "redeploy" | "restart", label: string, tone: string, title = "") =>
    html`<form method="post" action="${revisionPath}/${action}"><input type="hidden" name="csrf" value="${actions.csrfToken}"><button type="submit" class="${tone}" id="${action}-button" title="${title}">${label}</button></form>`;
  return html`<div class="actions">${actions.cancel ? button("cancel", "Cancel", "danger") : ""}${actions.redeploy ? button("redeploy", "Redeploy", "", "Build and deploy this commit again, with today's settings") : ""}${
    actions.restart ? button("restart", "Restart with new settings", "", "Start this build again with today's variables and secrets, without building") : ""
  }</div>`;
}

function requestedNotice(requested: "cancel" | "redeploy" | "restart", basePath: string, deployment: Deployment | undefined) {
  if (requested === "cancel") return html`Cancel requested: the revision stops in a moment.`;
  const anchor = deployment ? `#deployment-${deployment.id}` : "";
  const what = requested === "restart" ? "Restart requested: a new revision running this build with today's settings" : "Redeploy requested: a new revision of this commit";
  return html`${what} appears on <a href="${basePath}/${anchor}">the deployments page</a> in a moment.`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * The log's script: "Show earlier output" fetches the page before the first one shown
 * (rendered by the server, colours included) and prepends it, keeping the reader's place;
 * a running revision appends log text as it arrives (as text, never markup) and reloads when
 * the state changes, which also brings the phases and colours up to date. EventSource
 * reconnects by itself and resumes at the last byte it got (Last-Event-ID).
 *
 * The log is a column of blocks (`.chunk`, each starting at a line start and at a known byte
 * offset), at most `CHUNK` characters each, so that adding one lays out only that block. The
 * page holds at most `KEEP` characters, so even a 10 MB log never freezes it: live output
 * drops the oldest blocks (which "Show earlier output" brings back), and paging back drops the
 * newest ones, pausing the live view until "Back to the end".
 */
const LOG_SCRIPT = String.raw`
(() => {
  const data = document.body.dataset;
  const log = document.getElementById("log");
  if (!log) return;
  const root = document.scrollingElement || document.documentElement;
  const pager = document.getElementById("log-pager");
  const earlier = document.getElementById("log-earlier");
  const cut = document.getElementById("log-cut");
  const later = document.getElementById("log-later");
  const empty = document.getElementById("log-empty");
  const live = document.getElementById("live");
  const KEEP = 2000000;
  const CHUNK = 262144;
  let kept = log.textContent.length;
  let source;

  const firstStart = () => (log.firstElementChild ? Number(log.firstElementChild.dataset.start) : Number(data.logEnd || 0));
  const chunk = (start) => {
    const block = document.createElement("span");
    block.className = "chunk";
    block.dataset.start = String(start);
    return block;
  };
  const showEarlier = () => {
    if (earlier) earlier.hidden = firstStart() <= 0;
    if (pager && earlier && !earlier.hidden) pager.hidden = false;
  };
  showEarlier();

  earlier?.addEventListener("click", async () => {
    earlier.disabled = true;
    try {
      const response = await fetch(data.logPage + "?before=" + firstStart(), { headers: { accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const page = await response.json();
      const block = chunk(page.start);
      block.innerHTML = page.html; // rendered and escaped by the server
      const height = root.scrollHeight;
      log.prepend(block);
      root.scrollTop += root.scrollHeight - height;
      kept += block.textContent.length;
      while (kept > KEEP && log.children.length > 1) {
        kept -= log.lastElementChild.textContent.length;
        log.lastElementChild.remove();
        if (source) source.close();
        source = undefined;
        if (live) live.hidden = true;
        if (later) later.hidden = false;
      }
      earlier.textContent = "Show earlier output";
    } catch (error) {
      earlier.textContent = "Loading failed: try again";
    } finally {
      earlier.disabled = false;
      showEarlier();
      if (cut && firstStart() <= 0) cut.textContent = "Showing the log from its start.";
    }
  });

  if (!data.events || !window.EventSource) return;
  const escapes = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
  const controls = /[\x00-\x08\x0b-\x1f\x7f]/g;
  const encoder = new TextEncoder();
  let end = Number(data.logEnd || 0);
  let tail = log.lastElementChild;
  let tailLength = tail ? tail.textContent.length : 0;
  let lineStart = !tail || log.textContent.endsWith("\n");

  const put = (raw) => {
    const text = raw.replace(/\r\n?/g, "\n").replace(escapes, "").replace(controls, "");
    if (text) {
      tail.append(text);
      tailLength += text.length;
      kept += text.length;
    }
    if (raw) lineStart = raw.endsWith("\n");
  };
  const appendLive = (raw, start) => {
    // A full block ends at the next line end, so that every block starts at a line start.
    if (tail && tailLength > CHUNK && !lineStart) {
      const newline = raw.indexOf("\n");
      if (newline >= 0) {
        const head = raw.slice(0, newline + 1);
        put(head);
        start += encoder.encode(head).length;
        raw = raw.slice(newline + 1);
      }
    }
    if (!raw) return;
    if (!tail || (tailLength > CHUNK && lineStart)) {
      tail = chunk(start);
      tailLength = 0;
      log.append(tail);
    }
    put(raw);
  };

  source = new EventSource(data.events);
  source.addEventListener("open", () => { if (live) live.textContent = "Following the log live."; });
  source.addEventListener("error", () => { if (live && source) live.textContent = "Connection lost, reconnecting…"; });
  source.addEventListener("log", (event) => {
    const start = end;
    end = Number(event.lastEventId) || end;
    if (!source) return;
    const atBottom = root.scrollTop + root.clientHeight >= root.scrollHeight - 48;
    appendLive(JSON.parse(event.data), start);
    while (kept > KEEP && log.children.length > 1 && log.firstElementChild !== tail) {
      kept -= log.firstElementChild.textContent.length;
      log.firstElementChild.remove();
    }
    showEarlier();
    if (empty) empty.hidden = true;
    if (atBottom) root.scrollTop = root.scrollHeight;
  });
  source.addEventListener("state", (event) => {
    const message = JSON.parse(event.data);
    if (message.final && source) source.close();
    if (message.state !== data.state) location.reload();
  });
})();
`;
