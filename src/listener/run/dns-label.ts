import { createHash } from "node:crypto";

const MAX_LABEL = 63;
const VALID_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * One safe DNS label (RFC 1123: `a-z`, `0-9`, `-`, at most 63 characters, no `-` at
 * either end) made from a repository or environment name.
 *
 * The name is lower-cased; if that is already a valid label it is the label
 * (`pr-42` → `pr-42`, `My-App` → `my-app`). Anything else is turned into a readable
 * slug and gets a short hash of the original name, so two names that slug alike still get
 * different labels (`my_app` → `my-app-3fe582`, `my.app` → `my-app-13d7e3`). Dots,
 * slashes, spaces, control characters and non-Latin letters can therefore never add a
 * label, reach another host, or produce an empty one.
 *
 * Names that differ only in letter case map to the same label (DNS ignores case anyway);
 * callers that must tell them apart detect the clash (see `createRevisionRunner`).
 *
 * @example
 * ```ts
 * dnsLabel("Production");    // "production"
 * dnsLabel("feature/login"); // "feature-login-df7c7a"
 * dnsLabel("日本");          // "x-cf2abf"
 * ```
 */
export function dnsLabel(name: string): string {
  const lower = name.toLowerCase();
  if (VALID_LABEL.test(lower)) return lower;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 6);
  const slug = lower
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "") // accents: "é" → "e"
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, MAX_LABEL - hash.length - 1)
    .replace(/-+$/, "");
  return slug === "" ? `x-${hash}` : `${slug}-${hash}`;
}
