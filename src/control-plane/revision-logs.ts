import { EventEmitter } from "node:events";
import { appendFile, mkdir, open, stat } from "node:fs/promises";
import path from "node:path";

/** Where the control plane keeps each revision's build log: files beside the state, never in it. */
export interface RevisionLogs {
  file(revisionId: string): string;
  /**
   * Appends listener output that starts at byte `offset` of the revision's log stream. A
   * chunk already received (a retried report) is skipped, so reports are idempotent.
   */
  append(revisionId: string, offset: number, text: string): Promise<void>;
  /** The last `maxBytes` of the log as text. */
  tail(revisionId: string, maxBytes?: number): Promise<string>;
  /** Emits `append` with (revisionId, text) for live followers. */
  readonly events: EventEmitter;
}

export const MAX_LOG_BYTES = 10 * 1024 * 1024;

export function createRevisionLogs(options: { dataDir: string }): RevisionLogs {
  const dir = path.join(options.dataDir, "logs");
  const received = new Map<string, number>();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const file = (revisionId: string) => path.join(dir, `${revisionId.replace(/[^a-zA-Z0-9-]/g, "")}.log`);
  const chains = new Map<string, Promise<void>>();

  async function sizeOf(revisionId: string): Promise<number> {
    const known = received.get(revisionId);
    if (known !== undefined) return known;
    const size = await stat(file(revisionId)).then((s) => s.size, () => 0);
    received.set(revisionId, size);
    return size;
  }

  /** Appends run one after another per revision so offsets stay true. */
  function serialize(revisionId: string, work: () => Promise<void>): Promise<void> {
    const next = (chains.get(revisionId) ?? Promise.resolve()).then(work);
    const settled = next.catch(() => undefined);
    chains.set(revisionId, settled);
    void settled.then(() => {
      if (chains.get(revisionId) === settled) chains.delete(revisionId);
    });
    return next;
  }

  async function write(revisionId: string, text: string) {
    const size = await sizeOf(revisionId);
    if (size >= MAX_LOG_BYTES) return;
    let buffer = Buffer.from(text, "utf8");
    if (size + buffer.length > MAX_LOG_BYTES) {
      buffer = Buffer.concat([
        buffer.subarray(0, MAX_LOG_BYTES - size),
        Buffer.from(`\n[slipway: log truncated after ${MAX_LOG_BYTES} bytes]\n`),
      ]);
    }
    await mkdir(dir, { recursive: true });
    await appendFile(file(revisionId), buffer);
    received.set(revisionId, size + buffer.length);
    events.emit("append", revisionId, buffer.toString("utf8"));
  }

  return {
    file,
    events,
    append(revisionId, offset, text) {
      return serialize(revisionId, async () => {
        const have = await sizeOf(revisionId);
        const bytes = Buffer.from(text, "utf8");
        if (offset + bytes.length <= have) return; // a retried report: already here
        await write(revisionId, bytes.subarray(Math.max(0, have - offset)).toString("utf8"));
      });
    },
    async tail(revisionId, maxBytes = 64 * 1024) {
      const handle = await open(file(revisionId), "r").catch(() => undefined);
      if (!handle) return "";
      try {
        const { size } = await handle.stat();
        const length = Math.min(size, maxBytes);
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, size - length);
        // Drop a partial UTF-8 sequence at the start.
        let start = 0;
        while (start < buffer.length && (buffer[start]! & 0xc0) === 0x80) start++;
        return buffer.subarray(start).toString("utf8");
      } finally {
        await handle.close();
      }
    },
  };
}
