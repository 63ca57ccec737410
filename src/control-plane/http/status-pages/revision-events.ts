import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { REVISION_STATE_LABELS } from "../../../revisions/state-labels.js";
import { isFinal, type RevisionState } from "../../../store/model.js";
import type { StateStore } from "../../../store/open-state-store.js";
import type { StoreChange } from "../../../store/store-changes.js";
import type { RevisionLogs } from "../../revision-logs.js";
import { readLogSlice } from "./read-log.js";

/** Most log text sent in one event, so a client catching up on a long log gets it in pieces. */
const MAX_EVENT_BYTES = 64 * 1024;

export interface RevisionEventsOptions {
  store: StateStore;
  logs: RevisionLogs;
  revisionId: string;
  /** Byte offset of the log to continue from (`?from=`); default: the end of the log now. */
  from?: number;
  heartbeatMs: number;
  log?: Logger;
}

/**
 * `GET /revisions/<id>/events`, a server-sent event stream:
 * - `event: log`, data the JSON-encoded text, `id` the byte offset just past it, so that
 *   EventSource's automatic reconnect (Last-Event-ID) resumes without a gap or a repeat;
 * - `event: state`, data `{ state, label, final }`: once on connect and on every change;
 *   the stream ends after the final state, with all the log written before it sent first;
 * - a comment every `heartbeatMs`, so proxies keep the connection open.
 *
 * Nothing is polled. The log's `append` events only wake the stream; the text itself is read
 * from the file from the stream's own offset, which is what makes gaps and repeats impossible.
 * State changes come from the store's announcements (`store.subscribe`), in the order they
 * were written; those numbered before the state read on connect are already shown by it.
 * The caller has checked that the revision exists.
 */
export async function streamRevisionEvents(
  request: IncomingMessage,
  response: ServerResponse,
  options: RevisionEventsOptions,
): Promise<void> {
  const { store, logs, revisionId } = options;
  const file = logs.file(revisionId);
  const size = await stat(file).then((s) => s.size, () => 0);
  let position = Math.min(resumeOffset(request) ?? options.from ?? size, size);

  let closed = false;
  let lastState: RevisionState | undefined;
  /** The `sequence` of the last store change the state shown so far covers. */
  let seenSequence = Number.POSITIVE_INFINITY;
  /** Reads of the log run one after another; `readQueued` means one has not started yet. */
  let reads: Promise<void> = Promise.resolve();
  let readQueued = false;
  /** State events are sent one after another, in the order of the changes; the first is the state on connect. */
  let states: Promise<void> = Promise.resolve();

  const onAppend = (id: string) => {
    if (id === revisionId) void pump();
  };
  const onChange = (change: StoreChange) => {
    if (change.kind !== "revision" || change.id !== revisionId) return;
    states = states.then(() => (change.sequence > seenSequence ? showState(change.state) : undefined)).catch(fail);
  };
  const cleanUp = () => {
    closed = true;
    logs.events.off("append", onAppend);
    unsubscribe();
    clearInterval(heartbeat);
  };

  if (response.destroyed || request.socket.destroyed) return;
  logs.events.on("append", onAppend);
  // Subscribed before the state is first read, and the first read queued before any change:
  // no change is missed, and none is shown before the state it follows.
  const unsubscribe = store.subscribe(onChange);
  const heartbeat = setInterval(() => void send(": keep-alive\n\n"), options.heartbeatMs);
  response.on("close", cleanUp);

  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-content-type-options": "nosniff",
    // Tells nginx and similar proxies not to hold the stream back.
    "x-accel-buffering": "no",
  });
  states = (async () => {
    await send("retry: 3000\n\n");
    await pump();
    await showState(await currentState());
  })().catch(fail);
  await states;

  function fail(error: unknown): void {
    options.log?.warn({ err: error, revision: revisionId }, "following a revision's state failed");
    response.destroy();
  }

  /** Writes a frame; waits when the client reads slower than the log grows. */
  async function send(frame: string): Promise<void> {
    if (closed || response.writableEnded) return;
    if (response.write(frame)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        response.off("drain", done);
        response.off("close", done);
        resolve();
      };
      response.on("drain", done);
      response.on("close", done);
    });
  }

  /**
   * Sends the log from `position` to its current end. A read that has not started yet
   * covers every later request too, so appends never queue up more than one read.
   */
  function pump(): Promise<void> {
    if (readQueued) return reads;
    readQueued = true;
    reads = reads
      .then(async () => {
        readQueued = false;
        while (!closed) {
          const slice = await readLogSlice(file, { from: position, maxBytes: MAX_EVENT_BYTES });
          if (!slice || slice.end === position) return;
          position = slice.end;
          if (slice.text.length > 0) await send(`id: ${slice.end}\nevent: log\ndata: ${JSON.stringify(slice.text)}\n\n`);
        }
      })
      .catch((error: unknown) => {
        // Closing lets EventSource reconnect and resume from the last offset it got.
        options.log?.warn({ err: error, revision: revisionId }, "reading a revision log for its event stream failed");
        response.destroy();
      });
    return reads;
  }

  /** The revision's state now (undefined when its record is gone), noting which store changes it covers. */
  async function currentState(): Promise<RevisionState | undefined> {
    // Read in the same turn as the sequence: every change numbered up to it is in this state.
    seenSequence = store.state.changeSequence ?? 0;
    const live = store.state.revisions[revisionId];
    // Only finished revisions leave the live document (archiving), so a miss means a final state.
    return live ? live.state : (await store.findRevision(revisionId))?.state;
  }

  async function showState(state: RevisionState | undefined): Promise<void> {
    if (closed || response.writableEnded) return;
    if (state === undefined) {
      response.end(); // the record is gone: nothing more will happen
      return;
    }
    if (state === lastState) return;
    lastState = state;
    const final = isFinal({ state });
    // The log written before the revision finished belongs before its final state.
    if (final) await pump();
    await send(`event: state\ndata: ${JSON.stringify({ state, label: REVISION_STATE_LABELS[state].label, final })}\n\n`);
    if (final) response.end();
  }
}

/** EventSource sends the id of the last event it got when it reconnects. */
function resumeOffset(request: IncomingMessage): number | undefined {
  const header = request.headers["last-event-id"];
  return typeof header === "string" && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
}
