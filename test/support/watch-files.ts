import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { waitForChanges } from "../../tools/wait-until.js";

/** A file's text, trimmed, once it has some (re-read as its folder changes): for a marker file a build writes (`echo $$ > "$MARKS/pid"`). */
export async function waitForFileText(file: string, timeoutMs = 30_000): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  return waitForChanges(path.dirname(file), async () => (await readFile(file, "utf8").catch(() => "")).trim(), { what: `${file} to be written`, timeoutMs });
}
