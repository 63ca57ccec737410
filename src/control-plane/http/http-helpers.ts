import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { readCappedBody } from "./read-capped-body.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A request body of at most `limitBytes` (see readCappedBody): 413 beyond it, 400 when cut short. */
export async function readBody(request: IncomingMessage, limitBytes: number, tooLarge = `request body is larger than ${limitBytes} bytes`): Promise<Buffer> {
  const read = await readCappedBody(request, limitBytes);
  if (read.kind === "too-large") throw new HttpError(413, tooLarge);
  if (read.kind === "aborted") throw new HttpError(400, "the request body was cut short");
  return read.body;
}

/** Reads a JSON body of at most `limitBytes`. */
export async function readJson<T>(request: IncomingMessage, limitBytes = 8 * 1024 * 1024): Promise<T> {
  const body = await readBody(request, limitBytes);
  if (body.length === 0) return {} as T;
  try {
    return JSON.parse(body.toString("utf8")) as T;
  } catch {
    throw new HttpError(400, "request body is not valid JSON");
  }
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  response.end(text);
}

export function sendText(response: ServerResponse, status: number, text: string, type = "text/plain"): void {
  response.writeHead(status, { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" });
  response.end(text);
}

/** The bearer token of a request's `Authorization` header, if it has one. */
export function bearerToken(request: IncomingMessage): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1]!.trim();
}

/** Compares a request's bearer token with the expected one in constant time. */
export function hasBearerToken(request: IncomingMessage, expected: string): boolean {
  const token = bearerToken(request);
  if (token === undefined) return false;
  const given = Buffer.from(token);
  const wanted = Buffer.from(expected);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
