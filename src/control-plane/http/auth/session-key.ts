import { createHmac, timingSafeEqual } from "node:crypto";
import path from "node:path";
import { readOrCreateKey } from "../../../read-or-create-key.js";

/** Signs what Slipway gives the browser to hold (session and sign-in cookies) and derives CSRF tokens. */
export interface SessionKey {
  /** `value.signature`; `value` must not contain characters a cookie cannot carry. */
  sign(value: string): string;
  /** The value when the signature is this key's, else undefined. */
  unsign(signed: string): string | undefined;
  /** A keyed digest of `value` for `purpose`, base64url. */
  digest(purpose: string, value: string): string;
}

/**
 * Opens the key in `<dataDir>/session.key` (32 random bytes, mode 0600), creating it on first
 * use. Replacing the file signs everyone out.
 *
 * @example
 * const key = await openSessionKey({ dataDir });
 * key.unsign(key.sign("abc")) === "abc";
 */
export async function openSessionKey(options: { dataDir: string }): Promise<SessionKey> {
  const key = await readOrCreateKey(
    path.join(options.dataDir, "session.key"),
    "delete it to make a new one (everyone is signed out)",
  );

  const mac = (purpose: string, value: string) => createHmac("sha256", key).update(`${purpose}\0${value}`).digest();
  return {
    sign(value) {
      return `${value}.${mac("sign", value).toString("base64url")}`;
    },
    unsign(signed) {
      const dot = signed.lastIndexOf(".");
      if (dot <= 0) return undefined;
      const value = signed.slice(0, dot);
      const given = Buffer.from(signed.slice(dot + 1), "base64url");
      const wanted = mac("sign", value);
      return given.length === wanted.length && timingSafeEqual(given, wanted) ? value : undefined;
    },
    digest(purpose, value) {
      return mac(purpose, value).toString("base64url");
    },
  };
}
