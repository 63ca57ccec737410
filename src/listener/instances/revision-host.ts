import { dnsLabel, fitSlug, isCleanLabel, leadingPart, shortHash, slugOf } from "./dns-label.js";

const MAX_LABEL = 63;
/** Room for the two slugs of a changed repository label: `<name>--<owner>--<hash>`. */
const REPOSITORY_SLUG_ROOM = MAX_LABEL - 6 - 4;
/** Of that room, what a long repository name keeps at least (GitHub owners have at most 39 characters). */
const MIN_NAME_ROOM = 14;

export interface RevisionHostOptions {
  /** Environment name as configured (`production`, `pr-42`, …). */
  environment: string;
  /** `owner/name`: both become part of the host. */
  repository: string;
  /** `SLIPWAY_ROUTER_DOMAIN`, e.g. `localhost` or `apps.example.com`. */
  domain: string;
}

/**
 * The stable host name of an environment: `<environment>.<name>--<owner>.<domain>`, each
 * part one safe DNS label, all lower case. The router routes by exactly this string, so
 * everything that needs it derives it here, from nothing but these three values.
 *
 * Different deployments never share a host: the owner is part of it (`acme/site` and
 * `other/site` differ), and a label whose names had to be changed to fit (`_`, `.`, upper
 * case in an environment, a name too long) carries a hash of the original (see
 * {@link repositoryLabel} and `dnsLabel`).
 *
 * @example
 * ```ts
 * revisionHost({ environment: "pr-42", repository: "acme/web-shop", domain: "localhost" });
 * // "pr-42.web-shop--acme.localhost"
 * revisionHost({ environment: "pr-42", repository: "acme/web_shop", domain: "localhost" });
 * // "pr-42.web-shop--acme--<6 hex>.localhost"
 * ```
 */
export function revisionHost(options: RevisionHostOptions): string {
  const domain = options.domain.trim().toLowerCase().replace(/^\.+|\.+$/g, "");
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(domain)) {
    throw new Error(`router domain ${JSON.stringify(options.domain)} is not a host name`);
  }
  const host = `${dnsLabel(options.environment)}.${repositoryLabel(options.repository)}.${domain}`;
  if (host.length > 253) throw new Error(`host name ${host} is longer than 253 characters: use a shorter router domain`);
  return host;
}

/**
 * The repository's label: `<name>--<owner>`, lower-cased (GitHub's names ignore case, as DNS
 * does), when both are clean (letters, digits, single dashes) and fit in 63 characters:
 * `acme/web-shop` → `web-shop--acme`. Otherwise (`web_shop`, `my.site`, a dash at an end, a
 * name too long) the slugs of both, then 6 hex characters of the sha256 of `owner/name`:
 * `acme/web_shop` → `web-shop--acme--<hash>`. A clean label has one `--` and a changed one
 * two, so they never meet; a changed one keeps the whole owner (up to 39 characters), so
 * two changed labels of different owners never meet either, and two of one owner only if
 * their hashes agree too.
 */
export function repositoryLabel(repository: string): string {
  const slash = repository.indexOf("/");
  const owner = repository.slice(0, Math.max(slash, 0)).toLowerCase();
  const name = repository.slice(slash + 1).toLowerCase();
  if (slash <= 0 || name === "") throw new Error(`repository ${JSON.stringify(repository)} is not owner/name`);
  const clean = `${name}--${owner}`;
  if (isCleanLabel(name) && isCleanLabel(owner) && clean.length <= MAX_LABEL && name !== "xn") return clean;

  const nameSlug = slugOf(name);
  const ownerSlug = slugOf(owner);
  const nameRoom = Math.min(nameSlug.length, Math.max(MIN_NAME_ROOM, REPOSITORY_SLUG_ROOM - ownerSlug.length));
  const namePart = leadingPart(fitSlug(nameSlug, Math.max(nameRoom, 1)));
  const ownerPart = fitSlug(ownerSlug, REPOSITORY_SLUG_ROOM - namePart.length);
  return `${namePart}--${ownerPart}--${shortHash(`${owner}/${name}`)}`;
}
