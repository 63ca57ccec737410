import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { Revision } from "../../../store/model.js";
import type { RevisionLogs } from "../../revision-logs.js";
import { sendJson, sendText } from "../http-helpers.js";
import { readLogSlice } from "./read-log.js";
import { LOG_TAIL_BYTES, renderLogPage } from "./render-revision.js";

/** `GET /revisions/<id>/log`: the whole log as text, as long as it was when asked. */
export async function sendWholeLog(response: ServerResponse, logs: RevisionLogs, revision: Revision, log?: Logger): Promise<void> {
  const handle = await open(logs.file(revision.id), "r").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (!handle) return sendText(response, 404, "This revision has no log yet.\n");
  // The file may grow while it is sent; send what it held when asked, so the length is true.
  const { size } = await handle.stat().catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  response.writeHead(200, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": size,
    "content-disposition": `inline; filename="revision-${revision.id}.log"`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  if (size === 0) {
    await handle.close();
    response.end();
    return;
  }
  await pipeline(handle.createReadStream({ start: 0, end: size - 1 }), response).catch((error: NodeJS.ErrnoException) => {
    // A reader that goes away mid-download is no fault.
    if (error.code !== "ERR_STREAM_PREMATURE_CLOSE") log?.warn({ err: error, revision: revision.id }, "sending a revision log failed");
  });
}

/** `GET /revisions/<id>/log-page?before=<byte>`: the page of the log that ends at `before`, as markup. */
export async function sendLogPage(request: IncomingMessage, response: ServerResponse, logs: RevisionLogs, revision: Revision): Promise<void> {
  const before = new URL(request.url ?? "/", "http://status.invalid").searchParams.get("before");
  if (before === null || !/^\d{1,15}$/.test(before)) return sendJson(response, 400, { error: "before must be a byte offset" });
  const end = Number(before);
  const from = Math.max(0, end - LOG_TAIL_BYTES);
  const slice = await readLogSlice(logs.file(revision.id), { from, maxBytes: end - from });
  if (!slice) return sendJson(response, 404, { error: "this revision has no log yet" });
  sendJson(response, 200, renderLogPage(slice));
}
