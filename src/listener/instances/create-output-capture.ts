import type { Logger } from "pino";

export interface CreateOutputCaptureOptions {
  /** Bytes passed on to `onOutput` before the rest is dropped (one marker line says so). */
  maxBytes: number;
  /** Receives the output as text, in arrival order. */
  onOutput?: (text: string) => void;
  /** Characters kept for `tail()` (default 16,000), whatever the cap. */
  tailChars?: number;
  /** Told (once) when `onOutput` throws. */
  log: Logger;
}

export interface OutputCapture {
  write(text: string): void;
  /** The last output (capped or not), for failure reports. */
  tail(): string;
  readonly bytesPassed: number;
  readonly capped: boolean;
}

/**
 * Output of a revision's instances: passed on up to `maxBytes` over the revision's whole
 * life (restarts included), then dropped with one marker line, so a chatty app cannot
 * fill the disk. The pipes are always read, so the app never blocks on a full pipe, and
 * a bounded tail is always kept for the crash and deploy-failure reports.
 */
export function createOutputCapture(options: CreateOutputCaptureOptions): OutputCapture {
  const tailChars = options.tailChars ?? 16_000;
  let tail = "";
  let bytesPassed = 0;
  let capped = false;
  let endsWithNewline = true;
  let consumerFailed = false;

  const pass = (text: string) => {
    if (consumerFailed) return;
    try {
      options.onOutput?.(text);
    } catch (error) {
      // A failing consumer must not take the running app down with it; the tail still has the text.
      consumerFailed = true;
      options.log.error({ err: { message: (error as Error).message } }, "the revision's output consumer failed; its output is no longer passed on");
    }
  };

  return {
    write(text) {
      if (text === "") return;
      tail += text;
      if (tail.length > 2 * tailChars) tail = tail.slice(-tailChars);
      if (capped) return;
      const bytes = Buffer.byteLength(text);
      if (bytesPassed + bytes <= options.maxBytes) {
        bytesPassed += bytes;
        endsWithNewline = text.endsWith("\n");
        pass(text);
        return;
      }
      const buffer = Buffer.from(text);
      let cut = Math.max(0, options.maxBytes - bytesPassed);
      while (cut > 0 && (buffer[cut]! & 0xc0) === 0x80) cut--; // character boundary
      const kept = buffer.subarray(0, cut).toString();
      bytesPassed += cut;
      capped = true;
      if (kept !== "") endsWithNewline = kept.endsWith("\n");
      pass(`${kept}${endsWithNewline ? "" : "\n"}[slipway: output capped after ${bytesPassed} bytes; later output is not kept]\n`);
    },
    tail() {
      const text = tail.slice(-tailChars);
      return /^[\uDC00-\uDFFF]/.test(text) ? text.slice(1) : text;
    },
    get bytesPassed() {
      return bytesPassed;
    },
    get capped() {
      return capped;
    },
  };
}
