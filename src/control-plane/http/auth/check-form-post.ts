import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { HttpError, readBody } from "../http-helpers.js";
import type { Session } from "./session-store.js";

const FORM_LIMIT_BYTES = 4 * 1024;

/**
 * Reads a state-changing form post and refuses it (403) unless it is the signed-in person's
 * own: their session's CSRF token in the `csrf` field, and — where the browser says — sent
 * from this origin. `Sec-Fetch-Site` must be `same-origin`, not merely `same-site`: previews
 * run on subdomains (`SLIPWAY_ROUTER_DOMAIN`), and those are the same site.
 *
 * @example
 * const form = await checkFormPost(request, session, publicUrl);
 */
export async function checkFormPost(request: IncomingMessage, session: Session | undefined, publicUrl: string, limitBytes = FORM_LIMIT_BYTES): Promise<URLSearchParams> {
  if (!session) throw new HttpError(403, "Sign in first: this needs a signed-in session.");
  checkSameOrigin(request, publicUrl);
  const type = String(request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") throw new HttpError(415, "Expected a form (application/x-www-form-urlencoded).");
  const form = await readFormBody(request, limitBytes);
  const given = Buffer.from(form.get("csrf") ?? "");
  const wanted = Buffer.from(session.csrfToken);
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
    throw new HttpError(403, "Refused: the form's CSRF token is missing or is not this session's. Reload the page and try again.");
  }
  return form;
}

/** Refuses (403) a request the browser says came from another site or origin (see checkFormPost). */
export function checkSameOrigin(request: IncomingMessage, publicUrl: string): void {
  const site = request.headers["sec-fetch-site"];
  if (typeof site === "string" && site !== "same-origin" && site !== "none") {
    throw new HttpError(403, "Refused: the form was sent from another site.");
  }
  const origin = request.headers.origin;
  if (typeof origin === "string" && origin !== "null" && !sameOrigin(origin, request, publicUrl)) {
    throw new HttpError(403, "Refused: the form was sent from another origin.");
  }
}

function sameOrigin(origin: string, request: IncomingMessage, publicUrl: string): boolean {
  if (origin === new URL(publicUrl).origin) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** A posted form of at most 4 KiB unless said otherwise (413 beyond: only the secrets form sends more). */
export async function readFormBody(request: IncomingMessage, limitBytes = FORM_LIMIT_BYTES): Promise<URLSearchParams> {
  return new URLSearchParams((await readBody(request, limitBytes, "The form is too large.")).toString("utf8"));
}
