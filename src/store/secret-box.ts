import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import path from "node:path";
import { readOrCreateKey } from "../read-or-create-key.js";

export interface SecretBox {
  seal(plain: string): string;
  open(sealed: string): string;
}

/**
 * Encrypts secrets kept in the state file (database URLs with passwords) with AES-256-GCM
 * under a key generated once in `<dataDir>/secret.key` (mode 0600). The state file alone,
 * in a backup or a bug report, then reveals no password.
 *
 * @example
 * const box = await openSecretBox({ dataDir });
 * const stored = box.seal(url); box.open(stored) === url;
 */
export async function openSecretBox(options: { dataDir: string }): Promise<SecretBox> {
  const key = await readOrCreateKey(
    path.join(options.dataDir, "secret.key"),
    "restore it from a backup: without it the database URLs in the state file cannot be read",
  );

  return {
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
      return ["v1", iv.toString("base64"), cipher.getAuthTag().toString("base64"), body.toString("base64")].join(".");
    },
    open(sealed) {
      const [version, iv, tag, body] = sealed.split(".");
      if (version !== "v1" || !iv || !tag || !body) throw new Error("not a sealed secret");
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64"));
      decipher.setAuthTag(Buffer.from(tag, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
    },
  };
}
