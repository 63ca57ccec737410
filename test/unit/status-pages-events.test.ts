import { EventEmitter } from "node:events";
import http from "node:http";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createStatusPages } from "../../src/control-plane/http/status-pages/create-status-pages.js";
import type { RevisionLogs } from "../../src/control-plane/revision-logs.js";
import type { StateStore } from "../../src/store/open-state-store.js";
import { deployment, openStatusPagesTestbed, revision, waitFor, type StatusPagesTestbed } from "../support/status-pages-testbed.js";
import { signal } from "../../tools/wait-until.js";

let bed: StatusPagesTestbed;
let store: StateStore;
let logs: RevisionLogs;

beforeEach(async () => {
  bed = await openStatusPagesTestbed();
  ({ store, logs } = bed);
});

afterEach(() => bed.close());

const save: StatusPagesTestbed["save"] = (...records) => bed.save(...records);

interface ServerSentEvent {
  event?: string;
  id?: string;
  data?: string;
  comment?: string;
}

/** A minimal EventSource: records every frame of the stream; `changes` emits `frame` and `end` as they come. */
function openEvents(pathname: string, headers: Record<string, string> = {}) {
  const events: ServerSentEvent[] = [];
  const changes = new EventEmitter();
  const stream = { events, status: 0, contentType: "", ended: false, request: undefined as unknown as http.ClientRequest, changes };
  let buffer = "";
  stream.request = http.get(`${bed.baseUrl}${pathname}`, { headers }, (response) => {
    stream.status = response.statusCode ?? 0;
    stream.contentType = String(response.headers["content-type"]);
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const frame: ServerSentEvent = {};
        for (const line of buffer.slice(0, end).split("\n")) {
          if (line.startsWith(":")) frame.comment = line.slice(1).trim();
          const [, field, value] = /^(event|id|data): ?(.*)$/.exec(line) ?? [];
          if (field) frame[field as "event" | "id" | "data"] = value;
        }
        events.push(frame);
        buffer = buffer.slice(end + 2);
        changes.emit("frame", frame);
      }
    });
    response.on("end", () => {
      stream.ended = true;
      changes.emit("end");
    });
  });
  stream.request.on("error", () => undefined); // destroyed on purpose in some tests
  return stream;
}

const logEvents = (events: ServerSentEvent[]) =>
  events.filter((e) => e.event === "log").map((e) => JSON.parse(e.data!) as string);
/** What a stream announces: a new frame, its end. */
const on = (...streams: Array<ReturnType<typeof openEvents>>) => streams.map((stream) => signal(stream.changes, "frame", "end"));
/** A listener of the logs' `append` removed. */
const listenerRemoved = () => [signal(logs.events, "removeListener")];

const stateEvents = (events: ServerSentEvent[]) =>
  events.filter((e) => e.event === "state").map((e) => JSON.parse(e.data!) as { state: string; final: boolean });

describe("GET /revisions/<id>/events", () => {
  it("sends new log text and state changes, the final state last, then ends without leaking listeners", async () => {
    const production = deployment("production");
    const running = revision(production, 1, { state: "BUILDING", finishedAt: undefined });
    await save(production, running);
    await logs.append(running.id, 0, "before\n");

    const stream = openEvents(`/revisions/${running.id}/events?from=0`);
    await waitFor(() => stateEvents(stream.events).length === 1, "the initial state", on(stream));
    expect(stream.status).toBe(200);
    expect(stream.contentType).toBe("text/event-stream; charset=utf-8");
    expect(logEvents(stream.events)).toEqual(["before\n"]);
    expect(stream.events.find((e) => e.event === "log")?.id).toBe("7");
    expect(stateEvents(stream.events)).toEqual([{ state: "BUILDING", label: "Building", final: false }]);
    expect(logs.events.listenerCount("append")).toBe(1);

    const more = "héllo ✓\n\x1b[32mok\x1b[0m\r\n";
    await logs.append(running.id, 7, more);
    await waitFor(() => logEvents(stream.events).length === 2, "the appended text", on(stream));
    expect(logEvents(stream.events)[1]).toBe(more);

    await store.update((state, changes) => {
      const r = state.revisions[running.id]!;
      r.state = "DEPLOYING";
      changes.revision(r);
    });
    await waitFor(() => stateEvents(stream.events).length === 2, "the DEPLOYING state", on(stream));

    // The last words of the log arrive just before the revision finishes: they come first.
    await logs.append(running.id, 7 + Buffer.byteLength(more), "last words\n");
    await store.update((state, changes) => {
      const r = state.revisions[running.id]!;
      r.state = "DEPLOYED";
      changes.revision(r);
    });
    await waitFor(() => stream.ended, "the end of the stream", on(stream));

    const kinds = stream.events.filter((e) => e.event).map((e) => e.event);
    expect(kinds.at(-1)).toBe("state");
    expect(logEvents(stream.events)).toEqual(["before\n", more, "last words\n"]);
    expect(stateEvents(stream.events).map((s) => [s.state, s.final])).toEqual([
      ["BUILDING", false],
      ["DEPLOYING", false],
      ["DEPLOYED", true],
    ]);
    await waitFor(() => logs.events.listenerCount("append") === 0, "the listener to be removed", listenerRemoved());
  });

  it("starts at the end of the log, or resumes at Last-Event-ID", async () => {
    const production = deployment("production");
    const running = revision(production, 1, { state: "BUILDING", finishedAt: undefined });
    await save(production, running);
    await logs.append(running.id, 0, "one\ntwo\n");

    const fresh = openEvents(`/revisions/${running.id}/events`);
    const resumed = openEvents(`/revisions/${running.id}/events?from=0`, { "Last-Event-ID": "4" });
    await waitFor(() => stateEvents(fresh.events).length === 1 && stateEvents(resumed.events).length === 1, "both streams", on(fresh, resumed));
    await logs.append(running.id, 8, "three\n");
    await waitFor(() => logEvents(fresh.events).length === 1 && logEvents(resumed.events).join("").endsWith("three\n"), "the new text", on(fresh, resumed));

    expect(logEvents(fresh.events)).toEqual(["three\n"]);
    expect(logEvents(resumed.events).join("")).toBe("two\nthree\n");
  });

  it("removes its listener when the client goes away, and sends heartbeats while open", async () => {
    bed.statusPages = await createStatusPages({ store, logs, publicUrl: "https://slipway.example.com", heartbeatMs: 30 });
    const production = deployment("production");
    const running = revision(production, 1, { state: "QUEUED", finishedAt: undefined });
    await save(production, running);

    const stream = openEvents(`/revisions/${running.id}/events`);
    await waitFor(() => stream.events.some((e) => e.comment === "keep-alive"), "a heartbeat", on(stream));
    expect(logs.events.listenerCount("append")).toBe(1);

    stream.request.destroy();
    await waitFor(() => logs.events.listenerCount("append") === 0, "the listener to be removed", listenerRemoved());
  });

  it("sends the state of a finished revision and ends at once", async () => {
    const production = deployment("production");
    const done = revision(production, 1, { state: "CANCELLED" });
    await save(production, done);

    const stream = openEvents(`/revisions/${done.id}/events`);
    await waitFor(() => stream.ended, "the end of the stream", on(stream));
    expect(stateEvents(stream.events)).toEqual([{ state: "CANCELLED", label: "Cancelled", final: true }]);
    expect(logs.events.listenerCount("append")).toBe(0);
  });
});

