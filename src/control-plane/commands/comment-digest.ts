import { createHash } from "node:crypto";

/** A comment is fetched again before Slipway acts on it: equal digests mean it was not edited since. */
export function commentDigest(body: string): string {
  return createHash("sha256").update(body).digest("hex");
}
