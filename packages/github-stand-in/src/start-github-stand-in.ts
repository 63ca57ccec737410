import type { KeyObject } from "node:crypto";
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { authorizeRequest } from "./authorize-request.js";
import { describeStandInState, type RecordedRequest, type RecordedViolation } from "./describe-stand-in-state.js";
import { createFaultInjector, type FaultOptions, type InjectedFault } from "./fault-injection.js";
import { deliverWebhookAndRecord } from "./hook-deliveries.js";
import { createStandInOAuth, type StandInOAuth } from "./oauth-user-authorization.js";
import { loadGitHubOpenApiSpec } from "./openapi-spec.js";
import { pushPayload } from "./webhook-payloads.js";
import { createOpenApiValidator, type ValidationError, type ValidatorStats } from "./openapi-validator.js";
import type { RouteContext, RouteResponse, RouteTable } from "./route-context.js";
import { githubError, notFound } from "./route-context.js";
import { appRoutes } from "./routes/app-routes.js";
import { checkRunRoutes } from "./routes/check-run-routes.js";
import { commitRoutes } from "./routes/commit-routes.js";
import { deploymentRoutes } from "./routes/deployment-routes.js";
import { environmentRoutes } from "./routes/environment-routes.js";
import { issueCommentRoutes } from "./routes/issue-comment-routes.js";
import { pullRequestRoutes } from "./routes/pull-request-routes.js";
import { repositoryRoutes } from "./routes/repository-routes.js";
import { CODELOAD_PREFIX, serveCodeload } from "./serve-codeload.js";
import {
  createStandInState,
  type MintedToken,
  type PermissionLevel,
  type RecordedCheckRun,
  type RecordedComment,
  type RecordedDeployment,
  type RecordedHookDelivery,
  type RecordedReaction,
  type RepositoryRole,
  type StandInAccount,
  type StandInCommit,
  type StandInPullRequest,
  type StandInRepository,
  type StandInVariable,
} from "./stand-in-state.js";

export type { RecordedRequest, RecordedViolation } from "./describe-stand-in-state.js";
export type { FaultOptions, InjectedFault } from "./fault-injection.js";
export type { StandInOAuth, StandInUserToken } from "./oauth-user-authorization.js";
export type { CheckRunSnapshot, MintedToken, RecordedCheckRun, RecordedComment, RecordedDeployment, RecordedDeploymentStatus, RecordedHookDelivery, RecordedReaction, RepositoryRole, StandInPullRequest } from "./stand-in-state.js";

/** Options of {@link startGitHubStandIn}. */
export interface StartGitHubStandInOptions {
  /** The app id JWTs must carry in `iss` (default 1). */
  appId?: number;
  /** The app's public key: when given, JWT signatures are verified with it. */
  appPublicKey?: KeyObject | string;
  /** Added latency before answering each write (POST/PATCH/PUT/DELETE), for benchmarks. */
  writeDelayMs?: number;
  /** The app's slug; its bot is `<slug>[bot]` (default `slipway`). */
  appSlug?: string;
  /** Port to listen on (default: any free port on 127.0.0.1). */
  port?: number;
  /** Record body properties the description does not document as violations (default true: GitHub silently ignores them, so they are usually typos). */
  flagUndocumentedBodyProperties?: boolean;
  /** Also validate the stand-in's own JSON responses against the description, into `responseViolations` (default false; used by its own tests). */
  validateResponses?: boolean;
}

/** The permissions an installation gets when `addRepository` creates it: what Slipway's app.yml asks for. */
export const DEFAULT_INSTALLATION_PERMISSIONS: Readonly<Record<string, PermissionLevel>> = {
  metadata: "read",
  contents: "read",
  checks: "write",
  deployments: "write",
  pull_requests: "write",
  issues: "write",
  environments: "read",
};

/** A repository as `addRepository` created it (its identity, without the live branches and commits); pass it to the payload builders. */
export interface StandInRepositoryHandle extends Pick<StandInRepository, "id" | "owner" | "name" | "fullName" | "defaultBranch" | "private" | "installationId"> {
  /** Head commit of the default branch right after creation. */
  headSha: string;
}

/** A running stand-in for GitHub's REST API. All lists are live views. */
export interface GitHubStandIn {
  /** e.g. `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, for `GHE_HOST` (with `GHE_PROTOCOL=http`). */
  readonly host: string;
  /** `url + "/api/v3"` */
  readonly apiUrl: string;
  readonly appId: number;
  /**
   * Emits `request` (RecordedRequest, once answered), `violation`, `check-run` ({ checkRun, snapshot }),
   * `deployment`, `deployment-status` ({ deployment, status }), `comment`, `reaction`,
   * `hook-delivery` ({ delivery }, once a webhook delivery or redelivery is recorded) and
   * `change` (a change made through this handle: addRepository, addCommit, updatePullRequest…).
   */
  readonly events: EventEmitter;
  readonly requests: readonly RecordedRequest[];
  readonly violations: readonly RecordedViolation[];
  /** Requests for operations of the description the stand-in does not implement (answered 404). */
  readonly notImplemented: readonly RecordedRequest[];
  /** Only with `validateResponses`: the stand-in's own answers that break the description. */
  readonly responseViolations: readonly RecordedViolation[];
  /** Installation tokens minted, with the scope each request asked for. Never log them. */
  readonly tokens: readonly MintedToken[];
  readonly comments: readonly RecordedComment[];
  readonly reactions: readonly RecordedReaction[];
  /** Webhook deliveries made with `deliverWebhook` (and redeliveries). */
  readonly deliveries: readonly RecordedHookDelivery[];
  /** Sign in with GitHub: `/login/oauth/*`, the app's client credentials, user tokens. */
  readonly oauth: StandInOAuth;
  /** Spec load and validation timings. */
  readonly stats: { specLoadMs: number; startMs: number; validator: ValidatorStats };

  /** Creates a repository (and its installation, when new) whose default branch holds `files`. */
  addRepository(options: { owner: string; name: string; id?: number; defaultBranch?: string; private?: boolean; installationId: number; files?: Record<string, string> }): StandInRepositoryHandle;
  /** Creates or changes an installation (account, permissions, events). */
  addInstallation(options: { id: number; account?: string; accountType?: StandInAccount["type"]; permissions?: Record<string, PermissionLevel>; events?: string[] }): void;
  /** Adds a commit holding exactly `files` to `branch` (default: the default branch; created from it when new) and returns its sha. */
  addCommit(options: { owner: string; name: string; sha?: string; files: Record<string, string>; branch?: string; message?: string }): string;
  /**
   * A `push` payload for a commit of the stand-in's, listing the files it changed against its
   * parent as GitHub does (Slipway re-reads its config when `.github/slipway.yml` is among them).
   */
  pushPayload(
    options: Omit<Parameters<typeof pushPayload>[0], "repository" | "installationId" | "files" | "commits"> & {
      repository: StandInRepositoryHandle;
      /** Keep only this many of the newest pushed commits in `commits`, as a truncated payload would. */
      maxCommits?: number;
    },
  ): ReturnType<typeof pushPayload>;
  /** Registers a pull request (base: the default branch). */
  addPullRequest(options: { owner: string; name: string; number: number; headSha: string; headRef: string; headRepoFullName?: string; state?: "open" | "closed"; title?: string; body?: string; user?: string; baseRef?: string; draft?: boolean }): StandInPullRequest;
  /** Changes a registered pull request (new head, closed, merged…). */
  updatePullRequest(options: { owner: string; name: string; number: number; headSha?: string; headRef?: string; state?: "open" | "closed"; merged?: boolean; title?: string }): StandInPullRequest;
  /** Registers a plain issue, so comments can be made on it. */
  addIssue(options: { owner: string; name: string; number: number; title?: string; user?: string }): void;
  /** Records a comment made by a user (e.g. the `/deploy` comment a webhook refers to). */
  addIssueComment(options: { owner: string; name: string; number: number; body: string; user: { login: string; type?: StandInAccount["type"] } }): RecordedComment;
  /**
   * Creates the repository's GitHub environment `environment` when it does not exist, and makes
   * `variables` its variables (names upper-cased, as GitHub stores them), replacing any before.
   * `GET .../environments/{environment_name}/variables` lists them; an installation needs
   * `environments: read` (see `addInstallation`).
   */
  setEnvironmentVariables(options: { owner: string; name: string; environment: string; variables: Record<string, string> }): void;
  /** Sets a user's role on a repository, as `GET .../collaborators/{username}/permission` reports it. */
  setPermission(owner: string, name: string, login: string, role: RepositoryRole): void;
  /** Check runs of a repository, oldest first, each with its `history`. */
  checkRuns(options: { owner: string; name: string }): RecordedCheckRun[];
  /** Deployments of a repository, oldest first, each with its `statuses`. */
  deployments(options: { owner: string; name: string }): RecordedDeployment[];
  /** Fails the next `count` matching requests with a 5xx or a rate limit. */
  injectFaults(options: FaultOptions): InjectedFault;
  clearFaults(): void;
  /** Makes every minted token expired, as after an hour. */
  expireTokens(): void;
  /** Sends a webhook and records it in `GET /app/hook/deliveries` (redeliverable with `POST .../attempts`). */
  deliverWebhook(options: { url: string; secret: string; event: string; payload: unknown; deliveryId?: string }): Promise<RecordedHookDelivery>;
  /**
   * Resolves with the predicate's first truthy value. Nothing is polled: the predicate is
   * checked at once and again on every event of `events` (every request answered, webhook
   * delivery recorded, change made through this handle), so it must read the stand-in's own
   * state. On timeout (default 10 s) rejects with the current state described.
   */
  waitFor<T>(predicate: (standIn: GitHubStandIn) => T | undefined | null | false, options?: { timeoutMs?: number; description?: string }): Promise<T>;
  /** The readable summary `waitFor` prints on timeout. */
  describe(): string;
  close(): Promise<void>;
}

/** The events after which the stand-in's state may have changed: what `waitFor` re-checks on. */
const STATE_EVENTS = ["request", "violation", "check-run", "deployment", "deployment-status", "comment", "reaction", "hook-delivery", "change"] as const;

const ROUTES: RouteTable = { ...appRoutes, ...repositoryRoutes, ...commitRoutes, ...deploymentRoutes, ...checkRunRoutes, ...pullRequestRoutes, ...issueCommentRoutes, ...environmentRoutes };
const API_PREFIX = "/api/v3";
const RATE_LIMIT = 5000;

/**
 * Starts a local stand-in for GitHub's REST API (as a GitHub Enterprise host), which
 * validates every request against GitHub's OpenAPI description and records what it
 * was asked, so tests can assert both behaviour and `violations.length === 0`.
 *
 * @example
 * const github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
 * const repo = github.addRepository({ owner: "acme", name: "web", installationId: 7, files: { ".github/slipway.yml": "build: { commands: [] }" } });
 * // start Slipway against it: startSlipway({ env: standInAppEnv(github, { privateKey, webhookSecret, dataDir }) }) (tools/start-slipway.ts)
 * await github.waitFor((gh) => gh.checkRuns({ owner: "acme", name: "web" }).find((r) => r.conclusion === "success"));
 * expect(github.violations).toEqual([]);
 * await github.close();
 */
export async function startGitHubStandIn(options: StartGitHubStandInOptions = {}): Promise<GitHubStandIn> {
  const started = performance.now();
  const appId = options.appId ?? 1;
  const { spec, loadMs } = await loadGitHubOpenApiSpec();
  const validator = createOpenApiValidator({ spec, checkUndocumentedBodyProperties: options.flagUndocumentedBodyProperties ?? true });
  const state = createStandInState({ appId, appSlug: options.appSlug ?? "slipway" });
  const events = new EventEmitter();
  events.setMaxListeners(100);
  const faults = createFaultInjector();
  const requests: RecordedRequest[] = [];
  const violations: RecordedViolation[] = [];
  const responseViolations: RecordedViolation[] = [];
  const notImplemented: RecordedRequest[] = [];
  const pending = new Set<Promise<unknown>>();
  const rateLimits = new Map<string, { used: number; reset: number }>();
  let nextRequestId = 0;

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A bug in the stand-in must surface in the test, not hang it.
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      const violation: RecordedViolation = { request: { method: req.method ?? "GET", path: req.url ?? "", query: {}, body: undefined }, operation: null, errors: [{ location: "route", pointer: "", keyword: "standInError", message }], message: `stand-in error: ${message}` };
      violations.push(violation);
      events.emit("violation", violation);
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ message: "Server Error (stand-in bug)", detail: message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const urls = { web: url, api: `${url}${API_PREFIX}` };
  const oauth = createStandInOAuth({ state, urls });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now();
    const time = new Date().toISOString();
    const parsed = new URL(req.url ?? "/", url);
    const method = (req.method ?? "GET").toUpperCase();
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      // The client went away mid-request (a crash test killing Slipway): nothing to answer, nothing wrong with the request.
      res.destroy();
      return;
    }
    const raw = Buffer.concat(chunks).toString("utf8");
    const query = queryRecord(parsed.searchParams);
    const record: RecordedRequest = { id: ++nextRequestId, method, path: parsed.pathname, query, body: raw === "" ? undefined : raw, status: 0, time, durationMs: 0, auth: "none", faulted: false };

    const finish = async (response: RouteResponse, extraHeaders: Record<string, string> = {}): Promise<void> => {
      if (options.writeDelayMs && !["GET", "HEAD", "OPTIONS"].includes(method)) await sleep(options.writeDelayMs);
      const isRaw = response.raw !== undefined;
      const payload = isRaw ? response.raw ?? "" : response.body === undefined ? "" : JSON.stringify(response.body);
      res.writeHead(response.status, {
        ...(isRaw || response.body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }),
        "x-github-request-id": randomUUID().toUpperCase().slice(0, 23),
        "x-github-api-version-selected": "2022-11-28",
        "x-github-media-type": "github.v3; format=json",
        ...extraHeaders,
        ...response.headers,
        "content-length": String(Buffer.byteLength(payload)),
      });
      res.end(payload);
      record.status = response.status;
      record.durationMs = Math.round((performance.now() - arrived) * 10) / 10;
      requests.push(record);
      events.emit("request", record);
    };

    const violate = (errors: ValidationError[], operation: string | null, template?: string): void => {
      const where = template ? `${method} ${template} (${operation})` : `${method} ${parsed.pathname}`;
      const violation: RecordedViolation = {
        request: { method, path: record.path, query, body: record.body },
        operation,
        errors,
        message: errors.map((e) => `${where} ${e.location}${e.pointer}: ${e.message}`).join("\n"),
      };
      violations.push(violation);
      events.emit("violation", violation);
    };

    if (parsed.pathname.startsWith(CODELOAD_PREFIX)) {
      record.operationId = "codeload";
      if (typeof query.token === "string") query.token = "[redacted]";
      const fault = faults.take({ method, path: parsed.pathname });
      if (fault) {
        record.faulted = true;
        return finish(fault);
      }
      return finish(serveCodeload({ state, path: parsed.pathname, query: parsed.searchParams }));
    }

    if (parsed.pathname.startsWith("/login/oauth/")) {
      const answer = oauth.answerWeb({ method, path: parsed.pathname, query: parsed.searchParams, body: raw, contentType: req.headers["content-type"], accept: req.headers.accept });
      Object.assign(record, { operationId: answer.operationId, body: answer.redactBody ? "[redacted]" : record.body });
      return finish(answer.response);
    }

    if (!parsed.pathname.startsWith(`${API_PREFIX}/`) && parsed.pathname !== API_PREFIX) {
      violate([{ location: "route", pointer: "", keyword: "unknownOperation", message: `is not under ${API_PREFIX}: the stand-in plays a GitHub Enterprise host (GHE_HOST=${url.slice(7)}, GHE_PROTOCOL=http)` }], null);
      return finish(notFound());
    }
    const path = parsed.pathname.slice(API_PREFIX.length) || "/";
    record.path = path;

    let body: unknown;
    const contentType = req.headers["content-type"];
    if (raw !== "") {
      try {
        body = JSON.parse(raw);
        record.body = body;
      } catch {
        violate([{ location: "body", pointer: "", keyword: "body", message: `is not valid JSON (${raw.slice(0, 60)})` }], null);
        return finish(githubError(400, "Problems parsing JSON"));
      }
    }

    const validation = validator.validateRequest({ method, path, query: parsed.searchParams, body, hasBody: raw !== "", contentType });
    const operationId = validation.match?.operation.operationId ?? null;
    if (validation.match) {
      record.operationId = validation.match.operation.operationId;
      record.template = validation.match.template;
      record.params = validation.match.pathParams;
    }
    if (validation.errors.length > 0) violate(validation.errors, operationId, validation.match?.template);
    if (!validation.match) return finish(notFound());
    const match = validation.match;

    const route = ROUTES[match.operation.operationId];
    const authorization = route ? authorizeRequest({ state, route, authorization: req.headers.authorization, params: match.pathParams, appPublicKey: options.appPublicKey }) : undefined;
    const rateHeaders = rateLimitHeaders(authorization?.ok ? (authorization.auth.kind === "installation" ? `installation:${authorization.auth.token.installationId}` : "app") : "anonymous");

    const fault = faults.take({ method, path, template: match.template, installationId: authorization?.installationId });
    if (fault) {
      record.faulted = true;
      return finish(fault, rateHeaders);
    }
    const userAnswer = oauth.answerApi({ operationId: match.operation.operationId, authorization: req.headers.authorization, params: match.pathParams, body });
    if (userAnswer) {
      record.note = "user access token";
      return finish(userAnswer, rateHeaders);
    }
    if (!route) {
      record.note = "not implemented by stand-in";
      notImplemented.push(record);
      return finish(githubError(404, `Not Found (the GitHub stand-in does not implement ${match.operation.operationId})`), rateHeaders);
    }
    if (!authorization?.ok) return finish(authorization?.response ?? notFound(), rateHeaders);
    record.auth = authorization.auth.kind;

    if (validation.bodyInvalid) {
      const details = validation.errors.filter((e) => e.location === "body" && e.keyword !== "undocumentedProperty").map((e) => `For '${e.pointer || "/"}', ${e.message}.`);
      return finish(githubError(422, `Invalid request.\n\n${details.join("\n")}`, { documentation_url: `https://docs.github.com/rest` }), rateHeaders);
    }

    const context: RouteContext = {
      state,
      urls,
      method,
      params: match.pathParams,
      query: parsed.searchParams,
      body: typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {},
      accept: String(req.headers.accept ?? "").toLowerCase(),
      auth: authorization.auth,
      repository: authorization.repository,
      emit: (event, payload) => events.emit(event, payload),
      background(task) {
        pending.add(task);
        void task.finally(() => pending.delete(task));
      },
    };
    const response = await route.handle(context);
    if (options.validateResponses && response.raw === undefined && response.status < 300) {
      const errors = validator.validateResponse({ match, status: response.status, body: response.body });
      if (errors.length > 0) {
        responseViolations.push({ request: { method, path, query, body }, operation: operationId, errors, message: errors.map((e) => `${method} ${match.template} (${operationId}) ${e.location}${e.pointer}: ${e.message}`).join("\n") });
      }
    }
    return finish(response, rateHeaders);
  }

  function rateLimitHeaders(key: string): Record<string, string> {
    const now = Math.floor(Date.now() / 1000);
    let window = rateLimits.get(key);
    if (!window || window.reset <= now) rateLimits.set(key, (window = { used: 0, reset: now + 3600 }));
    window.used++;
    // Counted for realism, never enforced: use injectFaults to exercise rate limits.
    return {
      "x-ratelimit-limit": String(RATE_LIMIT),
      "x-ratelimit-remaining": String(Math.max(RATE_LIMIT - window.used, 1)),
      "x-ratelimit-reset": String(window.reset),
      "x-ratelimit-used": String(Math.min(window.used, RATE_LIMIT - 1)),
      "x-ratelimit-resource": "core",
    };
  }

  function repositoryOrThrow(owner: string, name: string) {
    const repository = state.findRepository(owner, name);
    if (!repository) throw new Error(`GitHub stand-in: no repository ${owner}/${name}; call addRepository first`);
    return repository;
  }

  /** Announces a change made through the handle (not by a request): pending `waitFor`s look again. */
  function changed<T>(result: T): T {
    events.emit("change");
    return result;
  }

  function addInstallation(installation: { id: number; account?: string; accountType?: StandInAccount["type"]; permissions?: Record<string, PermissionLevel>; events?: string[] }): void {
    const existing = state.installations.get(installation.id);
    const login = installation.account ?? existing?.account.login ?? `installation-${installation.id}`;
    state.installations.set(installation.id, {
      id: installation.id,
      account: state.account(login, installation.accountType ?? existing?.account.type ?? "Organization"),
      permissions: { ...(installation.permissions ?? existing?.permissions ?? DEFAULT_INSTALLATION_PERMISSIONS) },
      events: installation.events ?? existing?.events ?? ["push", "pull_request", "issue_comment", "check_run"],
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    });
    changed(undefined);
  }

  const standIn: GitHubStandIn = {
    url,
    host: `127.0.0.1:${port}`,
    apiUrl: urls.api,
    appId,
    events,
    requests,
    violations,
    notImplemented,
    responseViolations,
    get tokens() {
      return state.tokens;
    },
    get comments() {
      return state.comments;
    },
    get reactions() {
      return state.reactions;
    },
    get deliveries() {
      return state.hookDeliveries;
    },
    oauth,
    stats: { specLoadMs: loadMs, startMs: 0, validator: validator.stats },

    addRepository(repo) {
      if (state.findRepository(repo.owner, repo.name)) throw new Error(`GitHub stand-in: ${repo.owner}/${repo.name} already exists`);
      if (!state.installations.has(repo.installationId)) addInstallation({ id: repo.installationId, account: repo.owner });
      const id = repo.id ?? state.nextId("repository");
      if (state.findRepositoryById(id)) throw new Error(`GitHub stand-in: a repository with id ${id} already exists`);
      const repository = {
        id,
        owner: repo.owner,
        name: repo.name,
        fullName: `${repo.owner}/${repo.name}`,
        defaultBranch: repo.defaultBranch ?? "main",
        private: repo.private ?? false,
        installationId: repo.installationId,
        createdAt: new Date().toISOString(),
        branches: new Map<string, string>(),
        commits: new Map(),
        roles: new Map<string, RepositoryRole>(),
        environments: new Map(),
      };
      state.repositories.set(repository.fullName.toLowerCase(), repository);
      const commit = state.addCommit(repository, { files: repo.files ?? {}, message: "Initial commit" });
      return changed({ id, owner: repository.owner, name: repository.name, fullName: repository.fullName, defaultBranch: repository.defaultBranch, private: repository.private, installationId: repository.installationId, headSha: commit.sha });
    },
    addInstallation,
    addCommit(commit) {
      return changed(state.addCommit(repositoryOrThrow(commit.owner, commit.name), { files: commit.files, sha: commit.sha, branch: commit.branch, message: commit.message }).sha);
    },
    pushPayload({ maxCommits, ...options }) {
      const repository = repositoryOrThrow(options.repository.owner, options.repository.name);
      const listed = pushedCommits(repository, options.after, options.before);
      const commits = listed.slice(Math.max(listed.length - (maxCommits ?? listed.length), 0)).map((commit) => {
        const parent = commit.parents[0] ? repository.commits.get(commit.parents[0]) : undefined;
        const before = parent?.files ?? {};
        const after = commit.files;
        return {
          id: commit.sha,
          message: commit.message,
          added: Object.keys(after).filter((file) => !(file in before)),
          modified: Object.keys(after).filter((file) => file in before && before[file] !== after[file]),
          removed: Object.keys(before).filter((file) => !(file in after)),
        };
      });
      const before = options.before ?? (options.created ? undefined : listed[0]?.parents[0]);
      return pushPayload({ ...options, before, repository: options.repository, installationId: options.repository.installationId, commits: commits.length > 0 ? commits : undefined });
    },
    addPullRequest(pr) {
      const repository = repositoryOrThrow(pr.owner, pr.name);
      if (state.findPullRequest(repository, pr.number)) throw new Error(`GitHub stand-in: ${repository.fullName}#${pr.number} already exists`);
      const now = new Date().toISOString();
      const record: StandInPullRequest = {
        id: state.nextId("pullRequest"),
        owner: repository.owner,
        repo: repository.name,
        number: pr.number,
        title: pr.title ?? `Pull request #${pr.number}`,
        body: pr.body ?? null,
        state: pr.state ?? "open",
        merged: false,
        draft: pr.draft ?? false,
        headSha: pr.headSha,
        headRef: pr.headRef,
        headRepoFullName: pr.headRepoFullName ?? repository.fullName,
        baseRef: pr.baseRef ?? repository.defaultBranch,
        user: state.account(pr.user ?? "octocat"),
        createdAt: now,
        updatedAt: now,
      };
      state.pullRequests.push(record);
      return changed(record);
    },
    updatePullRequest(update) {
      const repository = repositoryOrThrow(update.owner, update.name);
      const pr = state.findPullRequest(repository, update.number);
      if (!pr) throw new Error(`GitHub stand-in: no pull request ${repository.fullName}#${update.number}; call addPullRequest first`);
      if (update.headSha !== undefined) pr.headSha = update.headSha;
      if (update.headRef !== undefined) pr.headRef = update.headRef;
      if (update.title !== undefined) pr.title = update.title;
      if (update.merged !== undefined) pr.merged = update.merged;
      if (update.state !== undefined) pr.state = update.state;
      if (update.merged) pr.state = "closed";
      pr.updatedAt = new Date().toISOString();
      return changed(pr);
    },
    addIssue(issue) {
      const repository = repositoryOrThrow(issue.owner, issue.name);
      state.issues.push({ id: state.nextId("issue"), owner: repository.owner, repo: repository.name, number: issue.number, title: issue.title ?? `Issue #${issue.number}`, user: state.account(issue.user ?? "octocat"), createdAt: new Date().toISOString() });
      changed(undefined);
    },
    addIssueComment(comment) {
      const repository = repositoryOrThrow(comment.owner, comment.name);
      const now = new Date().toISOString();
      const record: RecordedComment = { id: state.nextId("comment"), owner: repository.owner, repo: repository.name, issueNumber: comment.number, body: comment.body, user: state.account(comment.user.login, comment.user.type ?? "User"), createdAt: now, updatedAt: now, previousBodies: [] };
      state.comments.push(record);
      return changed(record);
    },
    setEnvironmentVariables({ owner, name, environment, variables }) {
      const repository = repositoryOrThrow(owner, name);
      const now = new Date().toISOString();
      const existing = repository.environments.get(environment.toLowerCase());
      const seeded = existing ?? { name: environment, variables: new Map(), createdAt: now };
      const next = new Map<string, StandInVariable>();
      for (const [given, value] of Object.entries(variables)) {
        const upper = given.toUpperCase();
        // GitHub's rules for variable names; a test seeding one GitHub would refuse is a mistake.
        if (!/^[A-Z_][A-Z0-9_]*$/.test(upper) || upper.startsWith("GITHUB_")) throw new Error(`GitHub stand-in: GitHub refuses the variable name ${JSON.stringify(given)}`);
        if (next.has(upper)) throw new Error(`GitHub stand-in: the variable ${upper} is given twice (names are case-insensitive)`);
        const before = seeded.variables.get(upper);
        next.set(upper, { name: upper, value, createdAt: before?.createdAt ?? now, updatedAt: before && before.value === value ? before.updatedAt : now });
      }
      seeded.variables = next;
      repository.environments.set(environment.toLowerCase(), seeded);
      changed(undefined);
    },
    setPermission(owner, name, login, role) {
      repositoryOrThrow(owner, name).roles.set(login.toLowerCase(), role);
      changed(undefined);
    },
    checkRuns({ owner, name }) {
      const repository = repositoryOrThrow(owner, name);
      return state.checkRuns.filter((r) => r.owner === repository.owner && r.repo === repository.name);
    },
    deployments({ owner, name }) {
      const repository = repositoryOrThrow(owner, name);
      return state.deployments.filter((d) => d.owner === repository.owner && d.repo === repository.name);
    },
    injectFaults: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    expireTokens() {
      const past = new Date(Date.now() - 1000).toISOString();
      for (const token of state.tokens) token.expiresAt = past;
      changed(undefined);
    },
    async deliverWebhook(delivery) {
      const recorded = await deliverWebhookAndRecord(state, { url: delivery.url, secret: delivery.secret, event: delivery.event, payload: delivery.payload, guid: delivery.deliveryId });
      events.emit("hook-delivery", { delivery: recorded });
      return recorded;
    },
    waitFor(predicate, waitOptions = {}) {
      const timeoutMs = waitOptions.timeoutMs ?? 10_000;
      return new Promise((resolve, reject) => {
        let lastError: unknown;
        const check = (): boolean => {
          try {
            const value = predicate(standIn);
            if (value) {
              cleanup();
              resolve(value);
              return true;
            }
          } catch (error) {
            lastError = error;
          }
          return false;
        };
        const onEvent = (): void => void check();
        const timer = setTimeout(() => {
          cleanup();
          const reason = lastError instanceof Error ? `\nlast predicate error: ${lastError.message}` : "";
          reject(new Error(`GitHub stand-in: waitFor${waitOptions.description ? ` "${waitOptions.description}"` : ""} timed out after ${timeoutMs} ms.${reason}\n${standIn.describe()}`));
        }, timeoutMs);
        function cleanup(): void {
          clearTimeout(timer);
          for (const event of STATE_EVENTS) events.off(event, onEvent);
        }
        for (const event of STATE_EVENTS) events.on(event, onEvent);
        check();
      });
    },
    describe: () => describeStandInState({ state, requests, violations }),
    async close() {
      await Promise.allSettled([...pending]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  standIn.stats.startMs = Math.round(performance.now() - started);
  return standIn;
}

/**
 * The commits a push of `after` brings, oldest first: back along first parents to `before`
 * (exclusive) when it is given, else `after` alone; none when `after` is not a commit here.
 */
function pushedCommits(repository: StandInRepository, after: string, before?: string): StandInCommit[] {
  const commits: StandInCommit[] = [];
  let current = repository.commits.get(after.toLowerCase());
  while (current && current.sha !== before?.toLowerCase()) {
    commits.unshift(current);
    if (before === undefined) break;
    current = current.parents[0] ? repository.commits.get(current.parents[0]) : undefined;
  }
  return commits;
}

function queryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    out[key] = all.length > 1 ? all : (all[0] ?? "");
  }
  return out;
}
