import { createHash } from "node:crypto";

const MAX_LABEL = 63;
/** Lower-case letters and digits, single `-` between them: never `--`, never `-` at either end. */
const CLEAN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
/** Hex characters of sha256 in a label whose name had to be changed to fit. */
const HASH_LENGTH = 6;

/**
 * One safe DNS label (RFC 1123: `a-z`, `0-9`, `-`, at most 63 characters, no `-` at
 * either end) made from an environment name, and different for different names.
 *
 * A name that already is a clean label (lower case, letters, digits and single dashes, at
 * most 63 characters) is the label itself (`pr-42` → `pr-42`). Any other name (upper case,
 * `_`, `.`, `/`, `--`, spaces, control characters, non-Latin letters, too long) becomes a
 * readable slug, `--`, and 6 hex characters of the sha256 of the original name
 * (`my_app` → `my-app--<hash>`, `Production` → `production--<hash>`). Clean labels never
 * contain `--` and these always do, so the two kinds never meet; two changed names meet only
 * if they slug alike and their hashes agree. Dots, slashes and the like can never add a label,
 * reach another host, or produce an empty one, and no label starts with `xn--` (which
 * browsers would take for punycode).
 *
 * @example
 * ```ts
 * dnsLabel("pr-42");         // "pr-42"
 * dnsLabel("feature/login"); // "feature-login--<6 hex>"
 * dnsLabel("日本");          // "x--<6 hex>"
 * ```
 */
export function dnsLabel(name: string): string {
  if (isCleanLabel(name)) return name;
  const room = MAX_LABEL - HASH_LENGTH - 2;
  return `${leadingPart(fitSlug(slugOf(name), room))}--${shortHash(name)}`;
}

/** Whether `text` is a label {@link dnsLabel} keeps as it is. */
export function isCleanLabel(text: string): boolean {
  return text.length <= MAX_LABEL && CLEAN.test(text);
}

/**
 * `text` as lower-case letters, digits and single dashes (accents dropped: `é` → `e`),
 * without dashes at either end; possibly empty.
 */
export function slugOf(text: string): string {
  return text
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** The slug cut to `room` characters (no dash at the end), `x` if nothing is left. */
export function fitSlug(slug: string, room: number): string {
  const cut = slug.slice(0, room).replace(/-+$/, "");
  return cut === "" ? "x" : cut;
}

/**
 * A label's first part that is followed by `--`: never `xn`, since `xn--…` is the punycode
 * prefix and URL parsers reject such a label unless it is valid punycode.
 */
export function leadingPart(part: string): string {
  return part === "xn" ? "x-xn" : part;
}

/** 6 hex characters of sha256: what tells apart names whose slugs agree. */
export function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, HASH_LENGTH);
}
