import type { StandInUrls } from "./rest-representations.js";
import type { MintedToken, StandInRepository, StandInState } from "./stand-in-state.js";

/** Who made the request, once authentication succeeded. */
export type RequestAuth = { kind: "app" } | { kind: "installation"; token: MintedToken } | { kind: "none" };

/** Everything a route handler needs; the server has already matched, validated and authorised the request. */
export interface RouteContext {
  state: StandInState;
  urls: StandInUrls;
  method: string;
  /** Decoded path parameters of the matched operation. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body (`{}` when there is none). */
  body: Record<string, unknown>;
  /** The request's `accept` header (lower case). */
  accept: string;
  auth: RequestAuth;
  /** The repository named by `{owner}/{repo}`, already checked against the token's scope. */
  repository?: StandInRepository;
  /** Emits on the stand-in's `events` (e.g. `check-run`, `deployment-status`). */
  emit(event: string, payload: unknown): void;
  /** Keeps a background task (a redelivery) so `close()` can wait for it. */
  background(task: Promise<unknown>): void;
}

/** What a handler answers. `raw` bodies are sent as they are; anything else as JSON. */
export interface RouteResponse {
  status: number;
  body?: unknown;
  raw?: Buffer | string;
  headers?: Record<string, string>;
}

/** A permission a route needs, e.g. `checks:write`; several mean any one of them suffices. */
export type RoutePermission = `${string}:${"read" | "write"}`;

/** One implemented operation. */
export interface Route {
  /** `app`: JWT of the app; `installation`: installation access token. */
  auth: "app" | "installation";
  permission?: RoutePermission | RoutePermission[];
  handle(context: RouteContext): RouteResponse | Promise<RouteResponse>;
}

/** Implemented operations keyed by the description's `operationId` (e.g. `checks/create`). */
export type RouteTable = Record<string, Route>;

/** A JSON answer. */
export function json(status: number, body: unknown, headers?: Record<string, string>): RouteResponse {
  return { status, body, headers };
}

/** GitHub's error body: `{ message, documentation_url, status }`. */
export function githubError(status: number, message: string, extra: Record<string, unknown> = {}): RouteResponse {
  return {
    status,
    body: { message, ...extra, documentation_url: extra.documentation_url ?? "https://docs.github.com/rest", status: String(status) },
  };
}

/**
 * GitHub's 404 for anything the caller may not see. A `hint` (what a test forgot to
 * register) is appended to GitHub's message, so it shows in the app's error logs.
 */
export function notFound(documentationUrl = "https://docs.github.com/rest", hint?: string): RouteResponse {
  return githubError(404, hint ? `Not Found (GitHub stand-in: ${hint})` : "Not Found", { documentation_url: documentationUrl });
}

/** GitHub's 422 "Validation Failed" with one error of `resource`/`field`. */
export function validationFailed(resource: string, field: string, message: string, code = "custom"): RouteResponse {
  return githubError(422, "Validation Failed", { errors: [{ resource, code, field, message }] });
}

/**
 * Slices a list by `per_page` (default 30, at most 100, unless the operation says otherwise:
 * environment variables are 10 and 30) and `page`, and builds GitHub's `link` header so
 * `octokit.paginate` follows it.
 */
export function paginate<T>(context: RouteContext, path: string, items: T[], limits: { perPage: number; maxPerPage: number } = { perPage: 30, maxPerPage: 100 }): { page: T[]; headers: Record<string, string> } {
  const perPage = Math.min(Math.max(Number(context.query.get("per_page") ?? limits.perPage) || limits.perPage, 1), limits.maxPerPage);
  const page = Math.max(Number(context.query.get("page") ?? 1) || 1, 1);
  const last = Math.max(Math.ceil(items.length / perPage), 1);
  const headers: Record<string, string> = {};
  const pageUrl = (n: number): string => {
    const query = new URLSearchParams(context.query);
    query.set("per_page", String(perPage));
    query.set("page", String(n));
    return `<${context.urls.api}${path}?${query.toString()}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${pageUrl(page - 1)}; rel="prev"`, `${pageUrl(1)}; rel="first"`);
  if (page < last) links.push(`${pageUrl(page + 1)}; rel="next"`, `${pageUrl(last)}; rel="last"`);
  if (links.length > 0) headers.link = links.join(", ");
  return { page: items.slice((page - 1) * perPage, page * perPage), headers };
}

/** The request path of the repository's API, for `link` headers. */
export function repositoryPath(context: RouteContext, suffix: string): string {
  return `/repos/${context.params.owner}/${context.params.repo}${suffix}`;
}

/** The repository of a repository route (the server resolved it before calling the handler). */
export function repositoryOf(context: RouteContext): StandInRepository {
  if (!context.repository) throw new Error("route needs {owner}/{repo} but none was resolved");
  return context.repository;
}

/** The account a write is attributed to: the app's bot for installation tokens. */
export function actorOf(context: RouteContext): ReturnType<StandInState["botAccount"]> {
  return context.state.botAccount();
}
