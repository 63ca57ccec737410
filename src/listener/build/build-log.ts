import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { once } from "node:events";
import path from "node:path";

export interface CreateBuildLogOptions {
  /** Appended to; parent folders are created. */
  file: string;
  /** Cap on the file's log text (default 10 MiB); one marker line follows when it is reached. */
  maxBytes?: number;
  /** Values to mask with `***`, in plain and URL-encoded form. Values shorter than 4 characters are ignored. */
  secrets: readonly string[];
  /**
   * Receives each piece of masked text as it is persisted (the truncation marker included),
   * with its byte offset in the log, for live streaming to the control plane.
   */
  onChunk?: (text: string, offset: number) => void;
}

export interface BuildLog {
  /** Masks and appends `text`. The end of it may be held back until the next write or `close` when it could start a secret. */
  write(text: string): void;
  /** Flushes what was held back and closes the file. Rejects if a write to the file failed. */
  close(): Promise<void>;
  /** Bytes persisted so far, the truncation marker included. */
  readonly bytesWritten: number;
  /** Whether output was dropped because the file reached `maxBytes`. */
  readonly truncated: boolean;
  /** The last `maxChars` characters of masked output (at most ~64 Ki), including what truncation kept out of the file. */
  tail(maxChars: number): string;
}

const MIN_SECRET_LENGTH = 4;
const TAIL_CHARS = 64 * 1024;

/**
 * A build's log file: masks known secrets (even when one is split across writes), caps
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

  await mkdir(path.dirname(file), { recursive: true });
  const stream = createWriteStream(file, { flags: "a" });
  await once(stream, "open");
  let streamError: Error | undefined;
  stream.on("error", (error) => {
    streamError ??= error;
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
    write(text: string) {
      if (closing) throw new Error(`build log ${file} is closed`);
      record(masker.push(text));
    },
    close() {
      closing ??= (async () => {
        record(masker.flush());
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

/**
 * Streaming secret masking. Text is released as soon as no secret can still be completing
 * across the boundary: only a suffix that is a proper prefix of some secret (so at most
 * the longest secret's length minus one) is held back.
 */
function createMasker(secrets: readonly string[]) {
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    variants.add(secret);
    variants.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another one is masked whole.
  const sorted = [...variants].sort((a, b) => b.length - a.length);
  if (sorted.length === 0) {
    return { push: (text: string) => text, flush: () => "" };
  }
  const pattern = new RegExp(sorted.map(escapeRegExp).join("|"), "g");
  const longest = sorted[0]!.length;
  let pending = "";

  /** The first index from `start` on where the rest of `buffer` could be the beginning of a secret. */
  const holdFrom = (buffer: string, start: number): number => {
    for (let at = Math.max(start, buffer.length - (longest - 1)); at < buffer.length; at++) {
      const rest = buffer.slice(at);
      if (sorted.some((secret) => secret.length > rest.length && secret.startsWith(rest))) return at;
    }
    return buffer.length;
  };

  return {
    push(text: string): string {
      const buffer = pending + text;
      let out = "";
      let cursor = 0;
      for (;;) {
        const hold = holdFrom(buffer, cursor);
        pattern.lastIndex = cursor;
        const match = pattern.exec(buffer);
        // A match before `hold` is final: more text could only complete a secret that
        // starts at or after `hold`.
        if (match === null || match.index >= hold) {
          pending = buffer.slice(hold);
          return out + buffer.slice(cursor, hold);
        }
        out += buffer.slice(cursor, match.index) + "***";
        cursor = match.index + match[0].length;
      }
    },
    flush(): string {
      const rest = pending.replace(pattern, "***");
      pending = "";
      return rest;
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
