import type { IncomingMessage } from "node:http";

/** What became of a request body read with a cap. */
export type CappedBody =
  | { kind: "complete"; body: Buffer }
  /** More than the cap arrived: what was read is let go, and the request is paused (the caller answers and closes). */
  | { kind: "too-large"; bytes: number }
  /** The client went away before the body was complete. */
  | { kind: "aborted"; bytes: number };

/**
 * Reads a request body of at most `limitBytes`, counting as it streams (a chunked body has
 * no length to check beforehand). Past the cap nothing more is kept: the chunks read so far
 * are dropped and the request is paused, so TCP backpressure stops the sender until the
 * caller's answer closes the connection.
 */
export function readCappedBody(request: IncomingMessage, limitBytes: number): Promise<CappedBody> {
  return new Promise((resolve) => {
    let chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = (result: CappedBody) => {
      if (done) return;
      done = true;
      chunks = [];
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("close", onClose);
      // An error listener stays: a reset after the answer must not become an uncaught 'error'.
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limitBytes) {
        request.pause();
        return finish({ kind: "too-large", bytes });
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      const body = Buffer.concat(chunks, bytes);
      finish({ kind: "complete", body });
    };
    const onClose = () => finish({ kind: "aborted", bytes });
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("close", onClose);
    request.on("error", () => finish({ kind: "aborted", bytes }));
  });
}
