/**
 * The records the control plane keeps in its state store. Names of states follow
 * docs/architecture.md exactly: users and tests rely on them.
 */

export const REVISION_STATES = [
  "QUEUED",
  "CREATING_DATABASE",
  "BUILDING",
  "DEPLOYING",
  "DEPLOYED",
  "DATABASE_FAILED",
  "BUILD_FAILED",
  "DEPLOY_FAILED",
  "CANCELLED",
  "SUPERSEDED",
  "INTERRUPTED",
] as const;
export type RevisionState = (typeof REVISION_STATES)[number];

/** States in which the listener is working on the revision. */
export const ACTIVE_STATES: ReadonlySet<RevisionState> = new Set(["CREATING_DATABASE", "BUILDING", "DEPLOYING"]);

/** States a revision never leaves. */
export const FINAL_STATES: ReadonlySet<RevisionState> = new Set([
  "DEPLOYED",
  "DATABASE_FAILED",
  "BUILD_FAILED",
  "DEPLOY_FAILED",
  "CANCELLED",
  "SUPERSEDED",
  "INTERRUPTED",
]);

export type DeploymentState = "AWAITING_DATABASE" | "READY" | "AWAITING_DELETE" | "DELETED";

/** A revision that will not change state again. */
export function isFinal(revision: Pick<Revision, "state">): boolean {
  return FINAL_STATES.has(revision.state);
}

/** A deployment that was closed (a pull request's preview): being removed, or removed. */
export function isTornDown(deployment: Pick<Deployment, "state">): boolean {
  return deployment.state === "AWAITING_DELETE" || deployment.state === "DELETED";
}

/** `pr-<number>`: a pull request's preview environment. */
export function isPreviewEnvironment(environment: string): boolean {
  return /^pr-\d+$/.test(environment);
}

export interface RepositoryRef {
  id: number;
  owner: string;
  name: string;
  /** "owner/name" */
  fullName: string;
  defaultBranch: string;
  private: boolean;
}

/** One environment of one repository of one installation. */
export interface Deployment {
  id: string;
  installationId: number;
  repository: RepositoryRef;
  environment: string;
  state: DeploymentState;
  /** Set once the database exists; the URL is encrypted at rest (see secret-box). */
  database?: { name: string; encryptedUrl: string; createdAt: string };
  /** For `pr-<number>` previews. */
  pullRequest?: PullRequestLink;
  /** While AWAITING_DELETE: the listener dropping the database holds this. */
  teardownLease?: Lease;
  /** After a failed teardown: not before this time, and why it failed. */
  teardownRetryAt?: string;
  teardownError?: string;
  /** The listener that holds this deployment's state (its embedded database, its running revision): later work goes only there. */
  placement?: Placement;
  /** The last time an operator (or the lost-listener timeout) moved the deployment off a listener. */
  moved?: { from: string; to?: string; by: string; at: string; databaseLeftBehind: boolean };
  /** A preview torn down for want of activity (`previews.expire_after_days`), not because its pull request closed; cleared when it comes back. */
  expired?: { afterDays: number; at: string };
  createdAt: string;
  updatedAt: string;
}

/** Why a deployment is bound to one listener: what of it lives only there. Caches and kept builds never bind. */
export interface Placement {
  listenerId: string;
  /** `database`: its embedded database; `instance`: its running revision. */
  holds: Array<"database" | "instance">;
  since: string;
}

/**
 * A listener that joined with the join token (`SLIPWAY_LISTENER_TOKEN`) and got its own
 * credential, of which only a hash is kept.
 */
export interface ListenerRecord {
  id: string;
  /** `SLIPWAY_LISTENER_POOL` as it last said. */
  pool: string;
  /** SHA-256 (hex) of its credential. */
  credentialSha256: string;
  joinedAt: string;
  /** Updated at most once a minute (presence itself is kept in memory). */
  lastSeenAt?: string;
  /** A revoked listener's credential is refused; it cannot join again under the same id. */
  revokedAt?: string;
  revokedBy?: string;
}

export interface PullRequestLink {
  number: number;
  /** "owner/name" of the head repository; differs from the base for forks. */
  headRepository: string;
  fork: boolean;
  /** Slipway's one status comment on the pull request, edited in place. */
  commentId?: number;
  /** Signature of the comment body last sent. */
  commentSent?: string;
  /** Head commits of a fork whose "a maintainer must /deploy" note was posted. */
  forkNoticeFor?: string;
}

/** The pool of listeners work goes to when its environment names none. */
export const DEFAULT_POOL = "default";

export type PhaseName = "database" | "build" | "deploy";

export interface Phase {
  name: PhaseName;
  startedAt: string;
  finishedAt?: string;
  outcome?: "succeeded" | "failed" | "cancelled";
  /** Shown beside the phase, e.g. "database created" or "database reused". */
  note?: string;
}

export interface Trigger {
  /**
   * `restart`: the running build started again with today's variables and secrets, not rebuilt.
   * `rollback`: an earlier kept build put back, not rebuilt (`rollbackTo` names it).
   */
  kind: "push" | "deploy_command" | "rerun" | "redeploy" | "pr_update" | "restart" | "rollback";
  /** GitHub login of who caused it. */
  actor: string;
  deliveryId?: string;
  /** The `/deploy` comment, which gets `rocket` or `confused` when the revision ends. */
  commentId?: number;
  /** A rollback: the revision whose build it puts back, as people know it. */
  rollbackTo?: { revisionId: string; number: number; sha: string };
}

export interface Lease {
  id: string;
  listenerId: string;
  expiresAt: string;
  attempt: number;
}

export interface BuildSettings {
  commands: string[];
  timeoutSeconds: number;
  env: Record<string, string>;
  /** `build.root`: the folder of the source the build and run commands start in (relative, checked). */
  root?: string;
}

/** `run` in `.github/slipway.yml`: start the revision and switch traffic to it. */
export interface RunSettings {
  command: string;
  healthcheck?: string;
  timeoutSeconds: number;
  memoryMb?: number;
}

/** What GitHub has been told about a revision, and what ids it gave back. */
export interface GitHubSync {
  deploymentId?: number;
  checkRunId?: number;
  /** Set before the first create attempt, so a retry looks for an existing check run first. */
  checkRunCreateAttempted?: boolean;
  /** Signature of the last state each object was brought to; equal signature → nothing to send. */
  deploymentStatusSent?: string;
  checkRunSent?: string;
  /** Last time a progress update went out, for coalescing. */
  lastProgressAt?: string;
  /** The final reaction on the `/deploy` comment was added. */
  reactionSent?: boolean;
}

export interface Revision {
  id: string;
  /** Monotonic number per deployment, for people: "revision 7 of production". */
  number: number;
  deploymentId: string;
  sha: string;
  ref: string;
  trigger: Trigger;
  state: RevisionState;
  build: BuildSettings;
  run?: RunSettings;
  /** `environments.<name>.pool` (or `previews.pool`) when it was made; unset: the `default` pool. */
  pool?: string;
  /** A restart with new settings: the revision whose build it runs (that one's own `buildOf`, if it had one). */
  buildOf?: string;
  /** While it waits for a listener that is gone or a pool with none: why, in words for the check run. */
  waitingFor?: string;
  /** What its settings lacked when it was leased (a permission GitHub did not grant), in words for the check run. */
  notes?: string[];
  phases: Phase[];
  /** Where the running revision answers (from the listener's router). */
  environmentUrl?: string;
  /** Set when a running revision kept crashing and was left stopped. */
  runtimeError?: string;
  /** Why it failed, in words for the check run; never a secret. */
  error?: string;
  /** The failure was Slipway's or the machine's, not the code's (deployment status `error`). */
  infrastructureFault?: boolean;
  lease?: Lease;
  /** What the listener that took it runs builds in (set at lease); `none` is said in the check run. */
  sandbox?: "bubblewrap" | "none";
  /** Lease attempts made so far. */
  attempts: number;
  /** Set when someone asked to cancel work that a listener holds. */
  cancelRequested?: boolean;
  github: GitHubSync;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
}

/** A webhook delivery, stored before it is acknowledged. */
export interface Delivery {
  id: string;
  event: string;
  receivedAt: string;
  status: "pending" | "processed" | "ignored" | "failed";
  /** The few fields of the payload that processing needs; never the whole payload. */
  intent?: DeliveryIntent;
  note?: string;
}

export interface PushIntent {
  kind: "push";
  installationId: number;
  repository: RepositoryRef;
  ref: string;
  branch: string;
  sha: string;
  pusher: string;
  /** Whether the push changed `.github/slipway.yml` (undefined: unknown, as if it did). */
  touchesConfig?: boolean;
  /** The branch's commit before the push (all zeros for a new branch): what the compare API is asked against. */
  before?: string;
  /** A forced push: path filters do not apply (its commits do not show what it undid). */
  forced?: boolean;
  /** The files the push changed, from the payload's commits (bounded); undefined: the list may be incomplete. */
  changedFiles?: string[];
  /** The skip marker (`[skip deploy]`…) in the head commit's message, if any; never the message itself. */
  skipMarker?: string;
}

/** A `/deploy` comment on a pull request, or a `/rollback`, `/lock` or `/unlock` on any issue or pull request. */
export interface CommandIntent {
  kind: "command";
  /** `invalid`: an operator command without what it needs (`usage` says what). */
  command: "deploy" | "cancel" | "help" | "unknown" | "rollback" | "lock" | "unlock" | "invalid";
  argument?: string;
  /** Operator commands: the environment they are about. */
  environment?: string;
  /** `/rollback <environment> <target>`: a commit (7 to 40 hex characters) or a revision id. */
  target?: string;
  /** `/lock <environment> <reason>`. */
  reason?: string;
  /** `invalid`: how the command is written, for the reply. */
  usage?: string;
  /** `/deploy <sha>`: the commit (7 to 40 lowercase hex characters) the commenter asks for. */
  sha?: string;
  /** When the comment was written (GitHub's `created_at`), and when Slipway received it. */
  createdAt?: string;
  receivedAt?: string;
  /** SHA-256 of the comment's body: the comment is fetched again before acting, and an edited one is not honoured. */
  bodySha256?: string;
  installationId: number;
  repository: RepositoryRef;
  /** The pull request's number (operator commands: the or pull request's). */
  pullRequest: number;
  commentId: number;
  actor: string;
}

/** A pull request opened, reopened, given new commits, or closed. */
export interface PullRequestIntent {
  kind: "pull_request";
  action: "opened" | "reopened" | "synchronize" | "closed";
  /** When Slipway received the event: from then on it knows `headSha` as the head. */
  receivedAt?: string;
  installationId: number;
  repository: RepositoryRef;
  pullRequest: number;
  headSha: string;
  headRef: string;
  headRepository: string;
  actor: string;
}

/** A check run's "Re-run", or one of its buttons. */
export interface CheckRunIntent {
  kind: "check_run";
  /** `restart`: the status page's "Restart with new settings" (the running build, today's variables and secrets). */
  /** `rollback`: the "Roll back" button of an older kept revision. */
  action: "rerequested" | "redeploy" | "cancel" | "restart" | "rollback";
  installationId: number;
  repository: RepositoryRef;
  revisionId: string;
  actor: string;
}

export type DeliveryIntent = PushIntent | CommandIntent | PullRequestIntent | CheckRunIntent;

export interface StateDocument {
  version: 1;
  deployments: Record<string, Deployment>;
  revisions: Record<string, Revision>;
  deliveries: Record<string, Delivery>;
  /** Next revision number per deployment. */
  counters: Record<string, number>;
  /** Per pull request (see `pullRequestKey`): its head commits as Slipway learned of them, and the commands it honoured. */
  pullRequests?: Record<string, PullRequestRecord>;
  /** Listeners that joined, by id. */
  listeners?: Record<string, ListenerRecord>;
  /** Number of the last change announced (see StoreChange): subscribers can tell a change they saw from a new one, across restarts. */
  changeSequence?: number;
  /** Slipway's own secrets, by `<owner/repo lower-cased>/<environment>/<NAME>` (see secret-store.ts); values sealed, never in clear. */
  secrets?: Record<string, StoredSecret>;
  /** `/lock`s by deployment id (deploymentIdOf: a preview not yet deployed has one too): its new revisions wait (see src/revisions/deploy-locks.ts). */
  locks?: Record<string, DeployLock>;
}

/** Who locked an environment (`by`, a GitHub login), when and why; `repository` is "owner/name". Shown on held revisions' check runs and the status page. */
export type DeployLock = { environment: string; repository: string; by: string; at: string; reason?: string };

/** One of Slipway's own secrets for one environment of one repository (`preview` for all previews). */
export interface StoredSecret {
  /** "owner/name", lower-cased: GitHub's names are case-insensitive. */
  repository: string;
  /** GitHub's id of the repository, when Slipway knew it. */
  repositoryId?: number;
  environment: string;
  name: string;
  /** The value sealed with the data dir's key (AES-256-GCM, see secret-box.ts). */
  sealedValue: string;
  updatedAt: string;
  /** `@<login>` of who set it, or `admin token`. */
  updatedBy: string;
}

/** What a `/deploy` is judged against: which commit was the head when, and which comments were already acted on. */
export interface PullRequestRecord {
  /** Head commits in the order Slipway learned of them, oldest first, each with when; `changed`: a moment the head moved (new commits, opened) rather than a look (bounded). */
  heads: Array<{ sha: string; seenAt: string; changed?: true }>;
  /** Comment id → the delivery that acted on it: a redelivery of the comment under another delivery id does nothing (bounded). */
  commands: Record<string, string>;
  updatedAt: string;
}

export function emptyState(): StateDocument {
  return { version: 1, deployments: {}, revisions: {}, deliveries: {}, counters: {}, pullRequests: {}, listeners: {} };
}
