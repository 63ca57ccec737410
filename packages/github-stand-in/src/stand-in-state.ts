import { createHash, randomBytes } from "node:crypto";

/** A permission level an app installation or token can hold. */
export type PermissionLevel = "read" | "write";

/** A collaborator's role on a repository, as `role_name` reports it. */
export type RepositoryRole = "admin" | "maintain" | "write" | "triage" | "read" | "none";

/** A GitHub account (user, bot or organisation). */
export interface StandInAccount {
  login: string;
  id: number;
  type: "User" | "Bot" | "Organization";
}

/** One commit: its full file tree (path → UTF-8 content) and its parents. */
export interface StandInCommit {
  sha: string;
  files: Record<string, string>;
  parents: string[];
  message: string;
  createdAt: string;
}

/** A variable of a GitHub environment (GitHub stores its name in upper case). */
export interface StandInVariable {
  name: string;
  value: string;
  createdAt: string;
  updatedAt: string;
}

/** A GitHub environment of a repository, with its variables. */
export interface StandInEnvironment {
  name: string;
  /** Upper-case name → variable. */
  variables: Map<string, StandInVariable>;
  createdAt: string;
}

/** A repository of the stand-in. */
export interface StandInRepository {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  defaultBranch: string;
  private: boolean;
  installationId: number;
  createdAt: string;
  /** Branch name → head commit sha. */
  branches: Map<string, string>;
  commits: Map<string, StandInCommit>;
  /** Login (lower case) → role. */
  roles: Map<string, RepositoryRole>;
  /** GitHub environments by name in lower case (GitHub's names are case-insensitive). */
  environments: Map<string, StandInEnvironment>;
}

/** An installation of the app on an account. */
export interface StandInInstallation {
  id: number;
  account: StandInAccount;
  permissions: Record<string, PermissionLevel>;
  events: string[];
  createdAt: string;
}

/** An installation access token minted through `POST /app/installations/{id}/access_tokens`. */
export interface MintedToken {
  token: string;
  installationId: number;
  /** Repository names the request limited the token to (absent: every repository of the installation). */
  repositories?: string[];
  /** Repository ids the request limited the token to. */
  repositoryIds?: number[];
  /** Permissions the request asked for (absent: all of the installation's). */
  requestedPermissions?: Record<string, string>;
  /** Permissions the token holds. */
  permissions: Record<string, PermissionLevel>;
  /** Ids of the repositories the token reaches. */
  repositoryScope: number[];
  createdAt: string;
  expiresAt: string;
}

/** A deployment status as recorded. */
export interface RecordedDeploymentStatus {
  id: number;
  state: string;
  description: string;
  environment: string;
  logUrl: string;
  environmentUrl: string;
  targetUrl: string;
  autoInactive?: boolean;
  /** True for an `inactive` status GitHub added by itself (auto_inactive). */
  automatic: boolean;
  createdAt: string;
  /** The request body exactly as received (absent for automatic statuses). */
  request?: Record<string, unknown>;
}

/** A deployment as recorded, with every field the request asked for. */
export interface RecordedDeployment {
  id: number;
  owner: string;
  repo: string;
  sha: string;
  ref: string;
  task: string;
  environment: string;
  originalEnvironment: string;
  description: string | null;
  payload: unknown;
  /** As sent; `undefined` means the request left GitHub's default (true). */
  autoMerge?: boolean;
  /** As sent; `undefined` means the request left GitHub's default (all contexts). */
  requiredContexts?: string[];
  transientEnvironment: boolean;
  productionEnvironment: boolean;
  creator: StandInAccount;
  createdAt: string;
  updatedAt: string;
  statuses: RecordedDeploymentStatus[];
  request: Record<string, unknown>;
}

/** One state of a check run: what a create or update request left it as. */
export interface CheckRunSnapshot {
  at: string;
  operation: "create" | "update";
  status: string;
  conclusion: string | null;
  title: string | null;
  summary: string | null;
  text: string | null;
  /** The request body exactly as received. */
  request: Record<string, unknown>;
}

/** An annotation of a check run. */
export type CheckRunAnnotation = Record<string, unknown>;

/** A check run with its whole history. */
export interface RecordedCheckRun {
  id: number;
  owner: string;
  repo: string;
  headSha: string;
  name: string;
  status: string;
  conclusion: string | null;
  externalId: string;
  detailsUrl: string | null;
  startedAt: string | null;
  completedAt: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  annotations: CheckRunAnnotation[];
  actions: Array<{ label: string; description: string; identifier: string }>;
  checkSuiteId: number;
  history: CheckRunSnapshot[];
}

/** A pull request registered with `addPullRequest`. */
export interface StandInPullRequest {
  id: number;
  owner: string;
  repo: string;
  number: number;
  title: string;
  body: string | null;
  state: "open" | "closed";
  merged: boolean;
  draft: boolean;
  headSha: string;
  headRef: string;
  /** `owner/name` of the head repository; differs from the base for a fork. */
  headRepoFullName: string;
  baseRef: string;
  user: StandInAccount;
  createdAt: string;
  updatedAt: string;
}

/** An issue (not a pull request) that comments may be made on. */
export interface StandInIssue {
  id: number;
  owner: string;
  repo: string;
  number: number;
  title: string;
  user: StandInAccount;
  createdAt: string;
}

/** An issue or pull request comment. */
export interface RecordedComment {
  id: number;
  owner: string;
  repo: string;
  issueNumber: number;
  body: string;
  user: StandInAccount;
  createdAt: string;
  updatedAt: string;
  /** Earlier bodies, oldest first, when the comment was edited. */
  previousBodies: string[];
}

/** A reaction on an issue comment. */
export interface RecordedReaction {
  id: number;
  owner: string;
  repo: string;
  commentId: number;
  content: string;
  user: StandInAccount;
  createdAt: string;
}

/** A webhook delivery made through the stand-in (`deliverWebhook`) and its redeliveries. */
export interface RecordedHookDelivery {
  id: number;
  guid: string;
  event: string;
  action: string | null;
  installationId: number | null;
  repositoryId: number | null;
  deliveredAt: string;
  redelivery: boolean;
  durationSeconds: number;
  statusCode: number;
  status: string;
  url: string;
  requestHeaders: Record<string, string>;
  payload: unknown;
  responseHeaders: Record<string, string>;
  responseBody: string;
  /** Kept to redeliver; never shown. */
  secret: string;
}

/** All the data the stand-in serves. Route handlers read and change it. */
export interface StandInState {
  app: { id: number; slug: string; name: string; owner: StandInAccount; createdAt: string };
  installations: Map<number, StandInInstallation>;
  /** Key: `owner/name` in lower case. */
  repositories: Map<string, StandInRepository>;
  tokens: MintedToken[];
  deployments: RecordedDeployment[];
  checkRuns: RecordedCheckRun[];
  pullRequests: StandInPullRequest[];
  issues: StandInIssue[];
  comments: RecordedComment[];
  reactions: RecordedReaction[];
  hookDeliveries: RecordedHookDelivery[];
  /** Short-lived codeload tokens → what they unlock. */
  codeloadTokens: Map<string, { repositoryId: number; sha: string; expiresAt: number }>;
  /** Next id of each kind. */
  nextId(kind: "repository" | "installation" | "deployment" | "deploymentStatus" | "checkRun" | "checkSuite" | "pullRequest" | "issue" | "comment" | "reaction" | "hookDelivery"): number;
  /** The account of a login, created on first use with a stable id. */
  account(login: string, type?: StandInAccount["type"]): StandInAccount;
  /** The app's bot account (`<slug>[bot]`). */
  botAccount(): StandInAccount;
  findRepository(owner: string, name: string): StandInRepository | undefined;
  findRepositoryById(id: number): StandInRepository | undefined;
  findPullRequest(repository: StandInRepository, number: number): StandInPullRequest | undefined;
  /** Resolves a sha (full or ≥ 7 characters), a branch, `heads/x` or `refs/heads/x` to a commit. */
  resolveRef(repository: StandInRepository, ref: string): StandInCommit | undefined;
  /** Adds a commit with exactly `files` on `branch` (default: the default branch) and moves the branch to it. */
  addCommit(repository: StandInRepository, options: { files: Record<string, string>; sha?: string; branch?: string; message?: string }): StandInCommit;
  /** Whether `ancestor` is `sha` or one of its ancestors. */
  isAncestor(repository: StandInRepository, ancestor: string, sha: string): boolean;
}

const ID_BASES: Record<Parameters<StandInState["nextId"]>[0], number> = {
  repository: 100_000,
  installation: 40_000,
  deployment: 500_000,
  deploymentStatus: 600_000,
  checkRun: 700_000,
  checkSuite: 800_000,
  pullRequest: 900_000,
  issue: 950_000,
  comment: 1_000_000,
  reaction: 2_000_000,
  hookDelivery: 3_000_000,
};

/**
 * Creates the empty state of a stand-in. Ids of each kind start at their own base so a
 * test that mixes up a check run id and a deployment id gets a 404, not a wrong object.
 */
export function createStandInState(options: { appId: number; appSlug: string }): StandInState {
  const counters = new Map<string, number>();
  const accounts = new Map<string, StandInAccount>();
  let nextAccountId = 5_000;
  const now = new Date().toISOString();

  const state: StandInState = {
    app: { id: options.appId, slug: options.appSlug, name: options.appSlug, owner: { login: "slipway-dev", id: 4_999, type: "Organization" }, createdAt: now },
    installations: new Map(),
    repositories: new Map(),
    tokens: [],
    deployments: [],
    checkRuns: [],
    pullRequests: [],
    issues: [],
    comments: [],
    reactions: [],
    hookDeliveries: [],
    codeloadTokens: new Map(),
    nextId(kind) {
      const next = (counters.get(kind) ?? ID_BASES[kind]) + 1;
      counters.set(kind, next);
      return next;
    },
    account(login, type = "User") {
      const key = login.toLowerCase();
      let account = accounts.get(key);
      if (!account) accounts.set(key, (account = { login, id: ++nextAccountId, type }));
      return account;
    },
    botAccount() {
      return state.account(`${state.app.slug}[bot]`, "Bot");
    },
    findRepository(owner, name) {
      return state.repositories.get(`${owner}/${name}`.toLowerCase());
    },
    findRepositoryById(id) {
      return [...state.repositories.values()].find((r) => r.id === id);
    },
    findPullRequest(repository, number) {
      return state.pullRequests.find((p) => p.owner === repository.owner && p.repo === repository.name && p.number === number);
    },
    resolveRef(repository, ref) {
      const branch = ref.replace(/^refs\/heads\//, "").replace(/^heads\//, "");
      const branchSha = repository.branches.get(branch);
      if (branchSha) return repository.commits.get(branchSha);
      const lower = ref.toLowerCase();
      if (/^[0-9a-f]{40}$/.test(lower)) return repository.commits.get(lower);
      if (/^[0-9a-f]{7,39}$/.test(lower)) {
        const matches = [...repository.commits.keys()].filter((sha) => sha.startsWith(lower));
        return matches.length === 1 ? repository.commits.get(matches[0] as string) : undefined;
      }
      return undefined;
    },
    addCommit(repository, { files, sha, branch = repository.defaultBranch, message }) {
      const parent = repository.branches.get(branch) ?? repository.branches.get(repository.defaultBranch);
      const commitSha = (sha ?? createHash("sha1").update(JSON.stringify({ parent, files, nonce: randomBytes(8).toString("hex") })).digest("hex")).toLowerCase();
      if (!/^[0-9a-f]{40}$/.test(commitSha)) throw new Error(`addCommit: sha must be 40 hexadecimal characters, got ${JSON.stringify(sha)}`);
      if (repository.commits.has(commitSha)) throw new Error(`addCommit: ${repository.fullName} already has a commit ${commitSha}`);
      const commit: StandInCommit = { sha: commitSha, files: { ...files }, parents: parent ? [parent] : [], message: message ?? `Commit ${commitSha.slice(0, 7)}`, createdAt: new Date().toISOString() };
      repository.commits.set(commitSha, commit);
      repository.branches.set(branch, commitSha);
      return commit;
    },
    isAncestor(repository, ancestor, sha) {
      const seen = new Set<string>();
      const queue = [sha];
      while (queue.length > 0) {
        const current = queue.shift() as string;
        if (current === ancestor) return true;
        if (seen.has(current)) continue;
        seen.add(current);
        queue.push(...(repository.commits.get(current)?.parents ?? []));
      }
      return false;
    },
  };
  return state;
}

/** Git's blob id of a file's content, as the contents API reports it in `sha`. */
export function gitBlobSha(content: string): string {
  const bytes = Buffer.from(content, "utf8");
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}
