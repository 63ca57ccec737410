import { createHmac } from "node:crypto";
import path from "node:path";
import { readOrCreateKey } from "../../read-or-create-key.js";
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
  const key = await readOrCreateKey(
    path.join(options.dataDir, KEY_FILE),
    "restore it from a backup, or delete it: the next setup of each deployment sets a new password",
  );
  return createHmac("sha256", key)
    .update(`slipway database password v1\0${deploymentIdentityHash(options.identity)}`)
    .digest("base64url");
}
