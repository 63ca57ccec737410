import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { once } from "node:events";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";

import { createMasker } from "./mask-secrets.js";

export interface CreateBuildLogOptions {
  /** Appended to; parent folders are created. */
  file: string;
  /** Cap on the file's log text (default 10 MiB); one marker line follows when it is reached. */
  maxBytes?: number;
  /**
   * Values to mask with `***`, in plain and URL-encoded form, also when escape sequences
   * (colours, hyperlinks) are inside them. Values shorter than 4 characters are ignored.
   */
  secrets: readonly string[];
  /**
   * Receives each piece of masked text as it is persisted (the truncation marker included),
   * with its byte offset in the log, for live streaming to the control plane.
   */
  onChunk?: (text: string, offset: number) => void;
  /**
   * Told once when writing the file failed and the file is closed: later output only
   * reaches `onChunk` and the tail, and `close()` rejects with the error.
   */
  onWriteFailed?: (error: Error) => void;
}

export interface BuildLog {
  /**
   * Masks and appends `text`: a string, or UTF-8 bytes (a character may be split across
   * writes). The end of it may be held back until the next write or `close` when it could
   * start a secret, or is half of an escape sequence or character.
   */
  write(text: string | Uint8Array): void;
  /** Flushes what was held back and closes the file. Rejects if a write to the file failed. */
  close(): Promise<void>;
  /** Bytes persisted so far, the truncation marker included. */
  readonly bytesWritten: number;
  /** Whether output was dropped because the file reached `maxBytes`. */
  readonly truncated: boolean;
  /** The last `maxChars` characters of masked output (at most ~64 Ki), including what truncation kept out of the file. */
  tail(maxChars: number): string;
}

const TAIL_CHARS = 64 * 1024;

/**
 * A build's log file: masks known secrets (even when one is split across writes or has
 * escape sequences inside it; see {@link maskSecrets}), caps
 * the file at `maxBytes` and keeps only a bounded tail in memory, for the check run's
 * failure text.
 *
 * @example
 * ```ts
 * const log = await createBuildLog({
 *   file: path.join(dataDir, "logs", `${revisionId}.log`),
 *   secrets: [installationToken, databasePassword],
 *   onChunk: (text, offset) => reporter.log({ offset, text }),
 * });
 * const result = await runCommands({ ..., onOutput: (text) => log.write(text) });
 * await log.close();
 * const failureText = log.tail(60_000);
 * ```
 */
export async function createBuildLog(options: CreateBuildLogOptions): Promise<BuildLog> {
  const { file, maxBytes = 10 * 1024 * 1024, onChunk } = options;
  const masker = createMasker(options.secrets);
  const decoder = new StringDecoder("utf8");
  let decoding = false;

  await mkdir(path.dirname(file), { recursive: true });
  const stream = createWriteStream(file, { flags: "a" });
  await once(stream, "open");
  let streamError: Error | undefined;
  stream.on("error", (error) => {
    streamError ??= error;
  });
  stream.once("close", () => {
    if (streamError) options.onWriteFailed?.(streamError);
  });

  let bytesWritten = 0;
  let contentBytes = 0;
  let truncated = false;
  let lastByte = 0x0a;
  let tailText = "";
  let closing: Promise<void> | undefined;

  const persist = (text: string) => {
    const bytes = Buffer.from(text);
    if (bytes.length === 0) return;
    const offset = bytesWritten;
    stream.write(bytes);
    bytesWritten += bytes.length;
    lastByte = bytes[bytes.length - 1]!;
    onChunk?.(text, offset);
  };

  const record = (masked: string) => {
    if (masked === "") return;
    tailText += masked;
    if (tailText.length > 2 * TAIL_CHARS) tailText = tailText.slice(-TAIL_CHARS);
    if (truncated) return;

    const room = maxBytes - contentBytes;
    const bytes = Buffer.from(masked);
    if (bytes.length <= room) {
      contentBytes += bytes.length;
      persist(masked);
      return;
    }
    // Cut at a character boundary: back up over UTF-8 continuation bytes.
    let cut = Math.max(0, room);
    while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
    const kept = bytes.subarray(0, cut).toString();
    contentBytes += cut;
    persist(kept);
    truncated = true;
    persist(`${lastByte === 0x0a ? "" : "\n"}[slipway: log truncated after ${contentBytes} bytes]\n`);
  };

  return {
    write(text: string | Uint8Array) {
      if (closing) throw new Error(`build log ${file} is closed`);
      if (typeof text === "string") {
        // Bytes left of a character that was never finished.
        const rest = decoding ? decoder.end() : "";
        decoding = false;
        record(masker.push(rest + text));
      } else {
        decoding = true;
        record(masker.push(decoder.write(text)));
      }
    },
    close() {
      closing ??= (async () => {
        record(masker.push(decoding ? decoder.end() : "") + masker.flush());
        // A stream that failed has closed already, and would never say so again.
        if (!stream.closed) {
          const closed = once(stream, "close").catch(() => undefined);
          stream.end();
          await closed;
        }
        if (streamError) throw new Error(`could not write build log ${file}: ${streamError.message}`, { cause: streamError });
      })();
      return closing;
    },
    get bytesWritten() {
      return bytesWritten;
    },
    get truncated() {
      return truncated;
    },
    tail(maxChars: number) {
      const text = maxChars <= 0 ? "" : tailText.slice(-Math.min(maxChars, TAIL_CHARS));
      // Never start with half of a surrogate pair.
      return /^[\uDC00-\uDFFF]/.test(text) ? text.slice(1) : text;
    },
  };
}
