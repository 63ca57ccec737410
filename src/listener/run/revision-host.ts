import { dnsLabel } from "./dns-label.js";

export interface RevisionHostOptions {
  /** Environment name as configured (`production`, `pr-42`, …). */
  environment: string;
  /** `owner/name` (or just `name`); only the name becomes part of the host. */
  repository: string;
  /** `SLIPWAY_ROUTER_DOMAIN`, e.g. `localhost` or `apps.example.com`. */
  domain: string;
}

/**
 * The stable host name of an environment: `<environment>.<repository>.<domain>`, each
 * name turned into one safe DNS label (see `dnsLabel`), all lower case. The router routes
 * by exactly this string, so the listener and the control plane must both derive it here.
 *
 * @example
 * ```ts
 * revisionHost({ environment: "pr-42", repository: "acme/Web_Shop", domain: "localhost" });
 * // "pr-42.web-shop-ccc872.localhost"
 * ```
 */
export function revisionHost(options: RevisionHostOptions): string {
  const name = options.repository.slice(options.repository.lastIndexOf("/") + 1);
  const domain = options.domain.trim().toLowerCase().replace(/^\.+|\.+$/g, "");
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(domain)) {
    throw new Error(`router domain ${JSON.stringify(options.domain)} is not a host name`);
  }
  if (name === "") throw new Error(`repository ${JSON.stringify(options.repository)} has no name`);
  const host = `${dnsLabel(options.environment)}.${dnsLabel(name)}.${domain}`;
  if (host.length > 253) throw new Error(`host name ${host} is longer than 253 characters: use a shorter router domain`);
  return host;
}
