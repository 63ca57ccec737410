import { open } from "node:fs/promises";

/** A piece of a revision's log file, cut at character boundaries. */
export interface LogSlice {
  text: string;
  /** Byte offset of the first byte of `text` in the file. */
  start: number;
  /** Byte offset just past `text`: where the next read continues. */
  end: number;
  /** Size of the file when it was read. */
  size: number;
}

/**
 * Reads part of a log file that may be growing: from byte `from` (or the last `lastBytes`)
 * up to `maxBytes`, never starting or ending inside a UTF-8 sequence, so that consecutive
 * reads join up exactly. Undefined when the file does not exist yet.
 */
export async function readLogSlice(
  file: string,
  range: { from: number; maxBytes: number } | { lastBytes: number },
): Promise<LogSlice | undefined> {
  const handle = await open(file, "r").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const requested = "from" in range ? Math.min(range.from, size) : Math.max(0, size - range.lastBytes);
    const until = "from" in range ? Math.min(size, requested + range.maxBytes) : size;
    const buffer = Buffer.alloc(until - requested);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, requested);
    const bytes = buffer.subarray(0, bytesRead);
    let skip = 0;
    while (skip < bytes.length && skip < 4 && (bytes[skip]! & 0xc0) === 0x80) skip++;
    const complete = completeLength(bytes);
    const body = skip < complete ? bytes.subarray(skip, complete) : bytes.subarray(0, 0);
    const start = requested + skip;
    return { text: body.toString("utf8"), start, end: start + body.length, size };
  } finally {
    await handle.close();
  }
}

/** Length of `bytes` without a UTF-8 sequence cut off at its end. */
function completeLength(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0x80) === 0) return bytes.length;
    if ((byte & 0xc0) === 0xc0) {
      const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return back < needed ? bytes.length - back : bytes.length;
    }
  }
  return bytes.length;
}
