import type { IncomingMessage, ServerResponse } from "node:http";

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
  /** Set when SLIPWAY_PUBLIC_URL is https. */
  secure: boolean;
}

/** The prefix browsers keep for cookies of one host, set over https with `Path=/` and no `Domain`. */
export const HOST_PREFIX = "__Host-";

/**
 * The name, path and Secure flag of a cookie that belongs to this host alone. On https it is
 * `__Host-<name>` with `Path=/` and Secure: a browser takes such a cookie only from this very
 * host over https, never from a subdomain (a preview at `<environment>.<name>--<owner>.<domain>`)
 * or from plain http, so nobody can plant one in a visitor's browser. On http, where the
 * prefix cannot be had, the plain name and `path`. Set and read it by the name this returns.
 *
 * @example
 * const cookie = hostCookie("slipway_sign_in", { secure: true, path: "/auth/" }); // { name: "__Host-slipway_sign_in", path: "/", secure: true }
 */
export function hostCookie(name: string, options: { secure: boolean; path: string }): { name: string; path: string; secure: boolean } {
  return options.secure ? { name: `${HOST_PREFIX}${name}`, path: "/", secure: true } : { name, path: options.path, secure: false };
}

/** The value of cookie `name` in the request, undefined when absent. */
export function readCookie(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Adds a `Set-Cookie` header to the response, keeping any already set. Every cookie Slipway
 * sets is HttpOnly (script never sees it), SameSite=Lax (sent when a person follows a link
 * from GitHub, never with another site's form posts) and host-only (no `Domain`).
 */
export function setCookie(response: ServerResponse, name: string, value: string, options: CookieOptions): void {
  // A browser drops a `__Host-` cookie without Secure or with another path, silently: fail loudly instead.
  if (name.startsWith(HOST_PREFIX) && (!options.secure || options.path !== "/")) {
    throw new Error(`cookie ${name} needs Secure and Path=/ (the ${HOST_PREFIX} prefix), not Path=${options.path}${options.secure ? "" : " without Secure"}`);
  }
  const cookie = [
    `${name}=${value}`,
    `Path=${options.path}`,
    `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`,
    "HttpOnly",
    "SameSite=Lax",
    ...(options.secure ? ["Secure"] : []),
  ].join("; ");
  const existing = response.getHeader("set-cookie");
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  response.setHeader("set-cookie", [...list, cookie]);
}
