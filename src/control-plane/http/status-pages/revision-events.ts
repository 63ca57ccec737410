import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { FINAL_STATES, type RevisionState } from "../../../store/model.js";
import type { StateStore } from "../../../store/open-state-store.js";
import type { RevisionLogs } from "../../revision-logs.js";
import { revisionStateWords } from "./describe-for-people.js";
import { readLogSlice } from "./read-log.js";

/** Most log text sent in one event, so a client catching up on a long log gets it in pieces. */
const MAX_EVENT_BYTES = 64 * 1024;

export interface RevisionEventsOptions {
  store: StateStore;
  logs: RevisionLogs;
  revisionId: string;
  /** Byte offset of the log to continue from (`?from=`); default: the end of the log now. */
  from?: number;
  statePollMs: number;
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
 * The log's `append` events only wake the stream; the text itself is read from the file
 * from the stream's own offset, which is what makes gaps and repeats impossible.
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
  let checking = false;
  /** Reads of the log run one after another; `readQueued` means one has not started yet. */
  let reads: Promise<void> = Promise.resolve();
  let readQueued = false;

  const onAppend = (id: string) => {
    if (id === revisionId) void pump();
  };
  const cleanUp = () => {
    closed = true;
    logs.events.off("append", onAppend);
    clearInterval(heartbeat);
    clearInterval(poll);
  };

  if (response.destroyed || request.socket.destroyed) return;
  logs.events.on("append", onAppend);
  const heartbeat = setInterval(() => void send(": keep-alive\n\n"), options.heartbeatMs);
  const poll = setInterval(() => void checkState(), options.statePollMs);
  response.on("close", cleanUp);

  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-content-type-options": "nosniff",
    // Tells nginx and similar proxies not to hold the stream back.
    "x-accel-buffering": "no",
  });
  await send("retry: 3000\n\n");

  await pump();
  await checkState();

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

  async function checkState(): Promise<void> {
    if (checking || closed) return;
    checking = true;
    try {
      // Only finished revisions leave the live document (archiving), so a miss means a final state.
      const state = store.state.revisions[revisionId]?.state ?? (await store.findRevision(revisionId))?.state;
      if (state === undefined) {
        response.end(); // the record is gone: nothing more will happen
        return;
      }
      if (state === lastState) return;
      lastState = state;
      const final = FINAL_STATES.has(state);
      // The log written before the revision finished belongs before its final state.
      if (final) await pump();
      await send(`event: state\ndata: ${JSON.stringify({ state, label: revisionStateWords(state).label, final })}\n\n`);
      if (final) response.end();
    } catch (error) {
      options.log?.warn({ err: error, revision: revisionId }, "following a revision's state failed");
      response.destroy();
    } finally {
      checking = false;
    }
  }
}

/** EventSource sends the id of the last event it got when it reconnects. */
function resumeOffset(request: IncomingMessage): number | undefined {
  const header = request.headers["last-event-id"];
  return typeof header === "string" && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
}
