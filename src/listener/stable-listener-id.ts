import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";

/**
 * A listener's id, kept in its data folder so a restarted listener is recognised: the
 * control plane tells it which revisions it was running.
 */
export async function stableListenerId(options: { dataDir: string; prefix?: string }): Promise<string> {
  const file = path.join(options.dataDir, "listener-id");
  let id = (await readFile(file, "utf8").catch(() => "")).trim();
  if (!/^[\w.:-]{1,80}$/.test(id)) {
    id = `${hostname().replace(/[^\w.-]/g, "-").slice(0, 40)}-${randomBytes(4).toString("hex")}`;
    await mkdir(options.dataDir, { recursive: true });
    await writeFile(file, `${id}\n`);
  }
  return `${options.prefix ?? ""}${id}`;
}
