import { createPublicKey, verify, type KeyObject } from "node:crypto";

/** Why a JWT was refused; `message` is GitHub's own wording where it has one (octokit matches on it). */
export type AppJwtResult = { ok: true; claims: { iss: unknown; iat: number; exp: number } } | { ok: false; message: string };

/**
 * Checks an app JWT the way GitHub does: RS256, signed by the app's key (when the
 * public key is known), `iss` = the app id (number or string), `exp` in the future and
 * at most 10 minutes after `iat`, `iat` not in the future (60 s of clock drift allowed).
 *
 * @example
 * const result = verifyAppJwt({ token, appId: 1, publicKey });
 * if (!result.ok) reply(401, result.message);
 */
export function verifyAppJwt(options: { token: string; appId: number; publicKey?: KeyObject | string; nowSeconds?: number }): AppJwtResult {
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const parts = options.token.split(".");
  if (parts.length !== 3) return { ok: false, message: "A JSON web token could not be decoded" };
  const [encodedHeader, encodedClaims, encodedSignature] = parts as [string, string, string];
  let header: { alg?: unknown };
  let claims: { iss?: unknown; iat?: unknown; exp?: unknown };
  try {
    header = JSON.parse(Buffer.from(encodedHeader, "base64url").toString("utf8")) as typeof header;
    claims = JSON.parse(Buffer.from(encodedClaims, "base64url").toString("utf8")) as typeof claims;
  } catch {
    return { ok: false, message: "A JSON web token could not be decoded" };
  }
  if (header.alg !== "RS256") return { ok: false, message: `A JSON web token could not be decoded (alg must be RS256, got ${String(header.alg)})` };
  if (options.publicKey !== undefined) {
    const key = typeof options.publicKey === "string" ? createPublicKey(options.publicKey) : options.publicKey;
    const valid = verify("RSA-SHA256", Buffer.from(`${encodedHeader}.${encodedClaims}`), key, Buffer.from(encodedSignature, "base64url"));
    if (!valid) return { ok: false, message: "A JSON web token could not be decoded (signature does not match the app's public key)" };
  }
  if (String(claims.iss) !== String(options.appId)) return { ok: false, message: `'Issuer' claim ('iss') must be the app id ${options.appId} (got ${JSON.stringify(claims.iss)})` };
  if (typeof claims.iat !== "number" || !Number.isInteger(claims.iat) || claims.iat > now + 60) {
    return { ok: false, message: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued." };
  }
  if (typeof claims.exp !== "number" || claims.exp <= now) {
    return { ok: false, message: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires." };
  }
  if (claims.exp - claims.iat > 600 || claims.exp > now + 600 + 60) return { ok: false, message: "'Expiration time' claim ('exp') is too far in the future." };
  return { ok: true, claims: { iss: claims.iss, iat: claims.iat, exp: claims.exp } };
}
