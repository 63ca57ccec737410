import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * A 32-byte key kept base64 in `file` (mode 0600), made on first use. Written aside, then
 * linked into place: the link fails if another thread or process won the race, and readers
 * never see a half-written key. Throws, naming the file and `whatIfLost`, on a damaged key.
 *
 * @example
 * const key = await readOrCreateKey(path.join(dataDir, "secret.key"), "restore it from a backup");
 */
export async function readOrCreateKey(file: string, whatIfLost: string): Promise<Buffer> {
  const existing = await readKey(file, whatIfLost);
  if (existing) return existing;
  await mkdir(path.dirname(file), { recursive: true });
  const candidate = `${file}.${process.pid}.${randomBytes(6).toString("hex")}`;
  await writeFile(candidate, randomBytes(32).toString("base64"), { mode: 0o600 });
  try {
    await link(candidate, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await rm(candidate, { force: true });
  }
  const key = await readKey(file, whatIfLost);
  if (!key) throw new Error(`${file} is empty; ${whatIfLost}`);
  return key;
}

async function readKey(file: string, whatIfLost: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const key = Buffer.from(text.trim(), "base64");
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key; ${whatIfLost}`);
  return key;
}
