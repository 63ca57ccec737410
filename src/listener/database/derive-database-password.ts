import { createHmac, randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { deploymentIdentityHash, type DeploymentIdentity } from "./deployment-database-name.js";

const KEY_FILE = "database-password.key";

/**
 * A deployment's database password: HMAC-SHA-256 of its identity under a random key kept
 * in `<dataDir>/database-password.key` (0600, made on first use).
 *
 * Why derived rather than drawn anew each time: every setup of one deployment (a retry,
 * ten racing ones, the adoption after a crash) ends with the same password, so any URL
 * one of them returned keeps working, and the newest setup cannot lock out a revision
 * that is running with an older URL. The password is still 256 bits of key material
 * away from guessable, and a different key (another listener, a wiped data folder)
 * simply re-keys the role on its next setup.
 */
export async function deriveDatabasePassword(options: { dataDir: string; identity: DeploymentIdentity }): Promise<string> {
  const key = await readOrCreateKey(options.dataDir);
  return createHmac("sha256", key)
    .update(`slipway database password v1\0${deploymentIdentityHash(options.identity)}`)
    .digest("base64url");
}

async function readOrCreateKey(dataDir: string): Promise<Buffer> {
  const keyPath = path.join(dataDir, KEY_FILE);
  const existing = await readKey(keyPath);
  if (existing) return existing;
  await mkdir(dataDir, { recursive: true });
  // Written aside, then linked into place: link fails if another thread won the race, and
  // readers never see a half-written key.
  const candidate = `${keyPath}.${process.pid}.${randomBytes(6).toString("hex")}`;
  await writeFile(candidate, randomBytes(32).toString("base64"), { mode: 0o600 });
  try {
    await link(candidate, keyPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await rm(candidate, { force: true });
  }
  const key = await readKey(keyPath);
  if (!key) throw new Error(`the database password key ${keyPath} is empty or damaged`);
  return key;
}

async function readKey(keyPath: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = await readFile(keyPath, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const key = Buffer.from(text.trim(), "base64");
  if (key.length < 32) throw new Error(`the database password key ${keyPath} is empty or damaged`);
  return key;
}
