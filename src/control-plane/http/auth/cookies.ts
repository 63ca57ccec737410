import type { IncomingMessage, ServerResponse } from "node:http";

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
  /** Set when SLIPWAY_PUBLIC_URL is https. */
  secure: boolean;
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
 * sets is HttpOnly (script never sees it) and SameSite=Lax: sent when a person follows a link
 * from GitHub, never with another site's form posts.
 */
export function setCookie(response: ServerResponse, name: string, value: string, options: CookieOptions): void {
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
