import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Context } from "probot";

/** The repository a payload is about; a `StandInRepositoryHandle` from `addRepository` fits. */
export interface PayloadRepository {
  owner: string;
  name: string;
  id?: number;
  defaultBranch?: string;
  private?: boolean;
}

/** A GitHub account in a payload. */
export interface PayloadUser {
  login: string;
  type?: "User" | "Bot" | "Organization";
  id?: number;
}

type Json = Record<string, unknown>;
type Example = Json & { repository?: Json; sender?: Json };

const ZERO_SHA = "0000000000000000000000000000000000000000";
let examples: Array<{ name: string; examples: Example[] }> | undefined;

/**
 * A real example payload from `@octokit/webhooks-examples` (api.github.com) to build on,
 * so that every field GitHub sends is there with the right type.
 */
function template(event: string, accept: (example: Example) => boolean): Example {
  if (!examples) {
    const file = createRequire(import.meta.url).resolve("@octokit/webhooks-examples/api.github.com/index.json");
    examples = JSON.parse(readFileSync(file, "utf8")) as typeof examples;
  }
  const candidates = examples?.find((e) => e.name === event)?.examples ?? [];
  const found = candidates.find(accept) ?? candidates[0];
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${event} example`);
  return structuredClone(found);
}

/** A stable positive id derived from a name, so the same login or repository always gets the same id. */
function stableId(text: string, base: number): number {
  return base + (createHash("sha1").update(text).digest().readUInt32BE(0) % 9_000_000);
}

function nodeId(kind: string, id: number): string {
  return Buffer.from(`0${kind.length}:${kind}${id}`).toString("base64");
}

/** Replaces every occurrence of `from` in the strings of a JSON value. */
function replaceInStrings<T>(value: T, replacements: Array<[string | RegExp, string]>): T {
  if (typeof value === "string") return replacements.reduce<string>((text, [from, to]) => text.split(from as string).join(to), value) as T;
  if (Array.isArray(value)) return value.map((item) => replaceInStrings(item, replacements)) as T;
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceInStrings(v, replacements)])) as T;
  return value;
}

/** An account object shaped like the template's `sender`. */
function accountLike(shape: Json | undefined, user: PayloadUser): Json {
  const oldLogin = String(shape?.login ?? "Codertocat");
  const id = user.id ?? stableId(`user:${user.login}`, 1_000_000);
  const account = replaceInStrings(structuredClone(shape ?? {}), [[`/users/${oldLogin}/`, `/users/${user.login}/`], [`/users/${oldLogin}`, `/users/${user.login}`], [`github.com/${oldLogin}`, `github.com/${user.login}`]]);
  return { ...account, login: user.login, id, node_id: nodeId(user.type === "Bot" ? "Bot" : user.type === "Organization" ? "Organization" : "User", id), type: user.type ?? "User", avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4` };
}

/** A repository object shaped like the template's, renamed to `repository`. */
function repositoryLike(shape: Json, repository: PayloadRepository, options: { fork?: boolean } = {}): Json {
  const oldFullName = String(shape.full_name);
  const oldOwner = shape.owner as Json | undefined;
  const fullName = `${repository.owner}/${repository.name}`;
  const renamed = replaceInStrings(structuredClone(shape), [[oldFullName, fullName]]);
  const id = repository.id ?? stableId(`repo:${fullName}`, 100_000_000);
  const out: Json = {
    // Fields newer than some examples, which GitHub now always sends.
    has_discussions: false,
    disabled: false,
    archived: false,
    ...renamed,
    id,
    node_id: nodeId("Repository", id),
    name: repository.name,
    full_name: fullName,
    private: repository.private ?? false,
    visibility: repository.private ? "private" : "public",
    fork: options.fork ?? false,
    owner: accountLike(oldOwner, { login: repository.owner, type: oldOwner?.type === "Organization" ? "Organization" : "User" }),
    default_branch: repository.defaultBranch ?? "main",
  };
  if ("master_branch" in out) out.master_branch = repository.defaultBranch ?? "main";
  return out;
}

function installationObject(installationId: number): Json {
  return { id: installationId, node_id: nodeId("IntegrationInstallation", installationId) };
}

function randomSha(): string {
  return randomBytes(20).toString("hex");
}

/**
 * A `push` payload. `ref` may be a branch name (`main`) or a full ref (`refs/heads/main`,
 * `refs/tags/v1`). A deletion has `deleted: true`, no commits and no head commit.
 *
 * @example
 * await probot.receive({ id: "1", name: "push", payload: pushPayload({ repository: repo, installationId: 7, ref: "main", after: sha }) });
 */
export function pushPayload(options: {
  repository: PayloadRepository;
  installationId: number;
  ref: string;
  before?: string;
  after: string;
  deleted?: boolean;
  created?: boolean;
  forced?: boolean;
  sender?: PayloadUser;
  message?: string;
  /** The files the pushed commit changed (GitHub lists them per commit); default: none. */
  files?: { added?: string[]; modified?: string[]; removed?: string[] };
  /** Several pushed commits, oldest first, each with its files (the last is the head commit; `message` overrides its message). */
  commits?: Array<{ id: string; message?: string; added?: string[]; modified?: string[]; removed?: string[] }>;
}): Context<"push">["payload"] {
  const example = template("push", (e) => e.installation !== undefined && String(e.ref).startsWith("refs/heads/"));
  const ref = options.ref.startsWith("refs/") ? options.ref : `refs/heads/${options.ref}`;
  const deleted = options.deleted ?? false;
  const before = options.before ?? (options.created ? ZERO_SHA : randomSha());
  const created = options.created ?? before === ZERO_SHA;
  const sender = accountLike(example.sender, options.sender ?? { login: "octocat" });
  const repository = repositoryLike(example.repository as Json, options.repository);
  const htmlUrl = String(repository.html_url);
  const login = String(sender.login);
  const commitJson = (listed: { id: string; message?: string; added?: string[]; modified?: string[]; removed?: string[] }) => ({
    id: listed.id,
    tree_id: createHash("sha1").update(`tree:${listed.id}`).digest("hex"),
    distinct: true,
    message: listed.message ?? `Commit ${listed.id.slice(0, 7)}`,
    timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    url: `${htmlUrl}/commit/${listed.id}`,
    author: { name: login, email: `${login}@users.noreply.github.com`, username: login },
    committer: { name: login, email: `${login}@users.noreply.github.com`, username: login },
    added: listed.added ?? [],
    removed: listed.removed ?? [],
    modified: listed.modified ?? [],
  });
  const listed = options.commits ?? [{ id: options.after, ...options.files }];
  const commits = listed.map((c, index) => commitJson(index === listed.length - 1 && options.message !== undefined ? { ...c, message: options.message } : c));
  const commit = commits.at(-1) ?? commitJson({ id: options.after, message: options.message });
  const payload = {
    ref,
    before,
    after: options.after,
    repository,
    pusher: { name: login, email: `${login}@users.noreply.github.com` },
    sender,
    installation: installationObject(options.installationId),
    created,
    deleted,
    forced: options.forced ?? false,
    base_ref: null,
    compare: deleted || created ? `${htmlUrl}/compare/${ref.replace(/^refs\/(heads|tags)\//, "")}` : `${htmlUrl}/compare/${before.slice(0, 12)}...${options.after.slice(0, 12)}`,
    commits: deleted ? [] : commits,
    head_commit: deleted ? null : commit,
  };
  return payload as unknown as Context<"push">["payload"];
}

/**
 * A `pull_request` payload. `head.repoFullName` other than the repository makes it a
 * pull request from a fork. `synchronize` gets `before`/`after`; `closed` with
 * `merged: true` is a merge.
 *
 * @example
 * pullRequestPayload({ action: "opened", number: 42, head: { sha, ref: "feature" }, repository: repo, installationId: 7 });
 */
export function pullRequestPayload(options: {
  action: "opened" | "synchronize" | "reopened" | "closed" | "edited" | "ready_for_review" | "converted_to_draft" | "labeled";
  number: number;
  head: { sha: string; ref: string; repoFullName?: string };
  repository: PayloadRepository;
  installationId: number;
  base?: { ref?: string; sha?: string };
  merged?: boolean;
  title?: string;
  body?: string | null;
  draft?: boolean;
  user?: PayloadUser;
  sender?: PayloadUser;
  /** The previous head for `synchronize` (random when absent). */
  before?: string;
}): Context<"pull_request">["payload"] {
  const example = template("pull_request", (e) => e.action === options.action && e.installation !== undefined);
  const templatePr = example.pull_request as Json;
  const templateNumber = Number(templatePr.number);
  const baseRepository = repositoryLike(example.repository as Json, options.repository);
  const fullName = String(baseRepository.full_name);
  const headFullName = options.head.repoFullName ?? fullName;
  const isFork = headFullName.toLowerCase() !== fullName.toLowerCase();
  const [headOwner = options.repository.owner, headName = options.repository.name] = headFullName.split("/");
  const headRepository = isFork ? repositoryLike(example.repository as Json, { owner: headOwner, name: headName, private: options.repository.private }, { fork: true }) : baseRepository;
  const author = accountLike(templatePr.user as Json, options.user ?? { login: isFork ? headOwner : "octocat" });
  const sender = options.sender ? accountLike(example.sender, options.sender) : author;
  const closed = options.action === "closed";
  const merged = closed && (options.merged ?? false);
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const oldFullName = String((example.repository as Json).full_name);
  const renumbered = replaceInStrings(structuredClone(templatePr), [
    [`${oldFullName}/pulls/${templateNumber}`, `${fullName}/pulls/${options.number}`],
    [`${oldFullName}/pull/${templateNumber}`, `${fullName}/pull/${options.number}`],
    [`${oldFullName}/issues/${templateNumber}`, `${fullName}/issues/${options.number}`],
    [oldFullName, fullName],
  ]);
  const id = stableId(`pr:${fullName}#${options.number}`, 200_000_000);
  const baseRef = options.base?.ref ?? options.repository.defaultBranch ?? "main";
  const pullRequest: Json = {
    ...renumbered,
    id,
    node_id: nodeId("PullRequest", id),
    number: options.number,
    state: closed ? "closed" : "open",
    title: options.title ?? `Pull request #${options.number}`,
    body: options.body ?? null,
    user: author,
    draft: options.draft ?? false,
    closed_at: closed ? now : null,
    merged_at: merged ? now : null,
    merged,
    merge_commit_sha: merged ? randomSha() : null,
    merged_by: merged ? sender : null,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    labels: [],
    statuses_url: `${baseRepository.url}/statuses/${options.head.sha}`,
    head: { ...(templatePr.head as Json), label: `${headOwner}:${options.head.ref}`, ref: options.head.ref, sha: options.head.sha, user: headRepository.owner, repo: headRepository },
    base: { ...(templatePr.base as Json), label: `${options.repository.owner}:${baseRef}`, ref: baseRef, sha: options.base?.sha ?? randomSha(), user: baseRepository.owner, repo: baseRepository },
    author_association: isFork ? "CONTRIBUTOR" : "MEMBER",
  };
  const payload: Json = { action: options.action, number: options.number, pull_request: pullRequest, repository: baseRepository, installation: installationObject(options.installationId), sender };
  if (options.action === "synchronize") Object.assign(payload, { before: options.before ?? randomSha(), after: options.head.sha });
  return payload as unknown as Context<"pull_request">["payload"];
}

/**
 * An `issue_comment` payload on a pull request (`isPullRequest: true`, the issue carries
 * `pull_request` links but no head sha, as on GitHub) or on a plain issue.
 *
 * For the app to read the pull request, reply or react, register them in the stand-in
 * first (`addPullRequest`, `addIssueComment`) and pass the comment's id as `commentId`.
 *
 * @example
 * issueCommentPayload({ action: "created", body: "/deploy", user: { login: "alice", type: "User" }, number: 42, isPullRequest: true, repository: repo, installationId: 7 });
 */
export function issueCommentPayload(options: {
  action: "created" | "edited" | "deleted";
  body: string;
  user: PayloadUser;
  number: number;
  isPullRequest: boolean;
  repository: PayloadRepository;
  installationId: number;
  /** Id of the comment (e.g. from `addIssueComment`); derived from the body when absent. */
  commentId?: number;
  /** What GitHub says about the commenter; Slipway must not trust it. Default `CONTRIBUTOR`. */
  authorAssociation?: "OWNER" | "MEMBER" | "COLLABORATOR" | "CONTRIBUTOR" | "FIRST_TIME_CONTRIBUTOR" | "FIRST_TIMER" | "NONE";
  /** The body before an `edited` action. */
  previousBody?: string;
  issueTitle?: string;
  /** The comment's `created_at` (e.g. the recorded comment's `createdAt`); default now. */
  createdAt?: string;
}): Context<"issue_comment">["payload"] {
  const example = template("issue_comment", (e) => e.action === options.action);
  const repository = repositoryLike(example.repository as Json, options.repository);
  const fullName = String(repository.full_name);
  const apiRepo = String(repository.url);
  const htmlRepo = String(repository.html_url);
  const user = accountLike(example.sender, options.user);
  const issueTemplate = example.issue as Json;
  const commentTemplate = example.comment as Json;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const issueId = stableId(`issue:${fullName}#${options.number}`, 300_000_000);
  const commentId = options.commentId ?? stableId(`comment:${fullName}#${options.number}:${options.body}:${now}`, 400_000_000);
  const kind = options.isPullRequest ? "pull" : "issues";
  const issue: Json = {
    ...issueTemplate,
    url: `${apiRepo}/issues/${options.number}`,
    repository_url: apiRepo,
    labels_url: `${apiRepo}/issues/${options.number}/labels{/name}`,
    comments_url: `${apiRepo}/issues/${options.number}/comments`,
    events_url: `${apiRepo}/issues/${options.number}/events`,
    html_url: `${htmlRepo}/${kind}/${options.number}`,
    id: issueId,
    node_id: nodeId(options.isPullRequest ? "PullRequest" : "Issue", issueId),
    number: options.number,
    title: options.issueTitle ?? `Issue #${options.number}`,
    user: accountLike(example.sender, { login: "octocat" }),
    labels: [],
    state: "open",
    locked: false,
    assignee: null,
    assignees: [],
    milestone: null,
    active_lock_reason: null,
    author_association: "MEMBER",
    reactions: { url: `${apiRepo}/issues/${options.number}/reactions`, total_count: 0, "+1": 0, "-1": 0, laugh: 0, hooray: 0, confused: 0, heart: 0, rocket: 0, eyes: 0 },
  };
  if (options.isPullRequest) {
    issue.pull_request = { url: `${apiRepo}/pulls/${options.number}`, html_url: `${htmlRepo}/pull/${options.number}`, diff_url: `${htmlRepo}/pull/${options.number}.diff`, patch_url: `${htmlRepo}/pull/${options.number}.patch`, merged_at: null };
  } else {
    delete issue.pull_request;
  }
  const comment: Json = {
    ...commentTemplate,
    url: `${apiRepo}/issues/comments/${commentId}`,
    html_url: `${htmlRepo}/${kind}/${options.number}#issuecomment-${commentId}`,
    issue_url: `${apiRepo}/issues/${options.number}`,
    id: commentId,
    node_id: nodeId("IssueComment", commentId),
    user,
    created_at: options.createdAt ?? now,
    updated_at: options.createdAt ?? now,
    author_association: options.authorAssociation ?? "CONTRIBUTOR",
    body: options.body,
    performed_via_github_app: null,
    reactions: { url: `${apiRepo}/issues/comments/${commentId}/reactions`, total_count: 0, "+1": 0, "-1": 0, laugh: 0, hooray: 0, confused: 0, heart: 0, rocket: 0, eyes: 0 },
  };
  const payload: Json = { action: options.action, issue, comment, repository, installation: installationObject(options.installationId), sender: user };
  if (options.action === "edited") payload.changes = { body: { from: options.previousBody ?? "" } };
  return payload as unknown as Context<"issue_comment">["payload"];
}

/** The check run a `check_run` payload is about; a `RecordedCheckRun` from the stand-in fits. */
export interface PayloadCheckRun {
  id: number;
  name: string;
  headSha: string;
  status?: string;
  conclusion?: string | null;
  externalId?: string;
  detailsUrl?: string | null;
  checkSuiteId?: number;
}

/**
 * A `check_run` payload: `rerequested` (GitHub's "Re-run"), `requested_action` (a button
 * of the run, with `requestedAction` its identifier), `created` or `completed`. The run
 * belongs to the app `appId` (default 1), as GitHub only sends an app its own runs' actions.
 *
 * @example
 * checkRunPayload({ action: "requested_action", checkRun: run, requestedAction: "redeploy", repository: repo, installationId: 7 });
 */
export function checkRunPayload(options: {
  action: "created" | "completed" | "rerequested" | "requested_action";
  checkRun: PayloadCheckRun;
  requestedAction?: string;
  repository: PayloadRepository;
  installationId: number;
  sender?: PayloadUser;
  appId?: number;
  appSlug?: string;
  headBranch?: string | null;
}): Context<"check_run">["payload"] {
  if (options.action === "requested_action" && options.requestedAction === undefined) throw new Error("checkRunPayload: requested_action needs requestedAction (the button's identifier)");
  const example = template("check_run", (e) => e.action === options.action);
  const repository = repositoryLike(example.repository as Json, options.repository);
  const apiRepo = String(repository.url);
  const htmlRepo = String(repository.html_url);
  const runTemplate = example.check_run as Json;
  const appId = options.appId ?? 1;
  const appSlug = options.appSlug ?? "slipway";
  const app = {
    ...(runTemplate.app as Json),
    id: appId,
    slug: appSlug,
    name: appSlug,
    node_id: nodeId("Integration", appId),
    html_url: `https://github.com/apps/${appSlug}`,
    permissions: { checks: "write", contents: "read", deployments: "write", issues: "write", metadata: "read", pull_requests: "write" },
    events: ["check_run", "issue_comment", "pull_request", "push"],
    created_at: "2024-01-01T00:00:00Z",
    updated_at: "2024-01-01T00:00:00Z",
  };
  const run = options.checkRun;
  const status = run.status ?? (options.action === "completed" || options.action === "rerequested" || options.action === "requested_action" ? "completed" : "queued");
  const conclusion = status === "completed" ? (run.conclusion ?? "success") : null;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const suiteId = run.checkSuiteId ?? stableId(`suite:${repository.full_name}@${run.headSha}`, 500_000_000);
  const suiteTemplate = runTemplate.check_suite as Json;
  const checkRun: Json = {
    ...runTemplate,
    id: run.id,
    node_id: nodeId("CheckRun", run.id),
    name: run.name,
    head_sha: run.headSha,
    external_id: run.externalId ?? "",
    url: `${apiRepo}/check-runs/${run.id}`,
    html_url: `${htmlRepo}/runs/${run.id}`,
    details_url: run.detailsUrl ?? `https://github.com/apps/${appSlug}`,
    status,
    conclusion,
    started_at: now,
    completed_at: status === "completed" ? now : null,
    output: { title: null, summary: null, text: null, annotations_count: 0, annotations_url: `${apiRepo}/check-runs/${run.id}/annotations` },
    check_suite: {
      ...suiteTemplate,
      id: suiteId,
      node_id: nodeId("CheckSuite", suiteId),
      head_branch: options.headBranch ?? null,
      head_sha: run.headSha,
      status,
      conclusion,
      url: `${apiRepo}/check-suites/${suiteId}`,
      before: null,
      after: run.headSha,
      pull_requests: [],
      app,
    },
    app,
    pull_requests: [],
  };
  if ("deployment" in checkRun) delete checkRun.deployment;
  const payload: Json = { action: options.action, check_run: checkRun, repository, installation: installationObject(options.installationId), sender: accountLike(example.sender, options.sender ?? { login: "octocat" }) };
  if (options.action === "requested_action") payload.requested_action = { identifier: options.requestedAction };
  return payload as unknown as Context<"check_run">["payload"];
}
