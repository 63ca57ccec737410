import type { Logger } from "pino";
import type { ApplicationFunction, Probot, ProbotOctokit } from "probot";
import type { Settings } from "../settings.js";
import { openStateStore, type StateStore } from "../store/open-state-store.js";
import { openSecretBox } from "../store/secret-box.js";
import { createGitHubReporter, type GitHubReporter } from "./github/github-reporter.js";
import { createSourceTokens } from "./github/source-tokens.js";
import { readEnvironmentVariables } from "./github/environment-variables.js";
import { createInbox, type Inbox } from "./inbox.js";
import { createListenerPresence, type ListenerPresence } from "./listener-presence.js";
import { createListenerRegistry, type ListenerRegistry } from "./listener-registry.js";
import { createRevisionLogs, type RevisionLogs } from "./revision-logs.js";
import { createSecretStore, type SecretStore } from "./secrets/secret-store.js";
import { onCheckRun } from "./webhooks/on-check-run.js";
import { onIssueComment } from "./webhooks/on-issue-comment.js";
import { onPullRequest } from "./webhooks/on-pull-request.js";
import { onPush } from "./webhooks/on-push.js";
import { createWorkQueue, type WorkQueue } from "./work-queue.js";
import { createLifecycle, type Lifecycle } from "../revisions/lifecycle.js";

export interface ControlPlaneOptions {
  settings: Pick<Settings, "dataDir" | "publicUrl" | "listenerToken" | "port" | "host"> &
    Partial<Pick<Settings, "leaseTtlSeconds" | "adminToken" | "listenerMoveAfterSeconds" | "metricsToken" | "keepBuilds">>;
  probot: Probot;
  log: Logger;
  /** The GitHub App's id: check runs of other apps are not ours to act on. */
  appId: number;
  /** Base of GitHub's REST API as the listener should use it for tarballs. */
  apiBaseUrl: string;
  progressIntervalMs?: number;
  /** How long a new revision's first GitHub report waits for a listener to take it. */
  queuedSettleMs?: number;
  leaseTtlSeconds?: number;
  /** How often leases are checked for expiry. */
  leaseCheckIntervalMs?: number;
  /** How often GitHub is asked for webhooks it failed to deliver (default 10 minutes). */
  redeliverIntervalMs?: number;
  /** How often idle previews are looked for (previews.expire_after_days; default hourly, and once at start). */
  previewExpiryIntervalMs?: number;
  /** First retry delay after a failed GitHub write or delivery. */
  retryBaseMs?: number;
}

export interface ControlPlaneServices {
  store: StateStore;
  logs: RevisionLogs;
  reporter: GitHubReporter;
  /** Every change of a revision's or deployment's state goes through it. */
  lifecycle: Lifecycle;
  queue: WorkQueue;
  inbox: Inbox;
  /** What each listener said with its lease requests (sandbox, pool) and when it was last heard from. */
  presence: ListenerPresence;
  /** Listeners that joined, and their credentials. */
  registry: ListenerRegistry;
  /** Slipway's own secrets per repository and environment, sealed in the state document. */
  secretStore: SecretStore;
  /** The Probot app: routes events to their handlers. */
  appFn: ApplicationFunction;
}

/** Everything of the control plane but its HTTP server (unit tests drive this with probot.receive). */
export async function createControlPlaneServices(options: ControlPlaneOptions): Promise<ControlPlaneServices> {
  const { settings, probot, log } = options;
  const store = await openStateStore({ dataDir: settings.dataDir, log });
  const secrets = await openSecretBox({ dataDir: settings.dataDir });
  const logs = createRevisionLogs({ dataDir: settings.dataDir });
  // One client per installation, kept: Probot builds a new Octokit on every auth() (a
  // millisecond of plugins and endpoint tables), and the client renews its own token.
  const clients = new Map<number, Promise<ProbotOctokit>>();
  const getOctokit = (installationId: number) => {
    let client = clients.get(installationId);
    if (!client) {
      client = probot.auth(installationId) as Promise<ProbotOctokit>;
      clients.set(installationId, client);
      client.catch(() => clients.get(installationId) === client && clients.delete(installationId));
    }
    return client;
  };

  const reporter = createGitHubReporter({
    store,
    appId: options.appId, // only this App's own comment is ever adopted
    logs,
    getOctokit,
    publicUrl: settings.publicUrl,
    log: log.child({ component: "github" }),
    progressIntervalMs: options.progressIntervalMs,
    queuedSettleMs: options.queuedSettleMs,
    retryBaseMs: options.retryBaseMs,
    keepBuilds: settings.keepBuilds,
  });
  const sourceTokens = createSourceTokens({
    async mint(installationId, repositoryName) {
      // Probot 14's octokit.auth({ repositoryNames }) ignores GHE_HOST: ask through the app client.
      const app = await probot.auth();
      const { data } = await app.rest.apps.createInstallationAccessToken({
        installation_id: installationId,
        repositories: [repositoryName],
        permissions: { contents: "read" },
      });
      return { token: data.token, expiresAt: data.expires_at };
    },
  });
  const leaseTtlSeconds = options.leaseTtlSeconds ?? settings.leaseTtlSeconds ?? 30;
  // Present: holding a long poll, or heard from within two lease periods (they heartbeat three times in one).
  const presence = createListenerPresence({ presentMs: Math.max(6_000, 2 * leaseTtlSeconds * 1000) });
  const registry = createListenerRegistry({ store });
  const secretStore = createSecretStore({ store, box: secrets });
  const lifecycle = createLifecycle({
    store,
    secrets,
    log: log.child({ component: "lifecycle" }),
    wakeListeners: () => queue.wake(),
    forgetSourceToken: (installationId, repositoryName) => sourceTokens.forget(installationId, repositoryName),
  });
  const queue: WorkQueue = createWorkQueue({
    store,
    lifecycle,
    presence,
    logs,
    secrets,
    apiBaseUrl: options.apiBaseUrl,
    leaseTtlSeconds,
    log: log.child({ component: "queue" }),
    mintSourceToken: sourceTokens.get,
    // Read at each lease, so a change takes effect on the next revision.
    async revisionSettings(deployment) {
      const { owner, name } = deployment.repository;
      const { variables, notes } = await readEnvironmentVariables(await getOctokit(deployment.installationId), { owner, repo: name, environment: deployment.environment });
      return { variables, secrets: secretStore.valuesFor(deployment.repository.fullName, deployment.environment), notes };
    },
  });
  const inbox = createInbox({
    store,
    getOctokit,
    lifecycle,
    presence,
    log: log.child({ component: "inbox" }),
    retryBaseMs: options.retryBaseMs,
    keepBuilds: settings.keepBuilds,
  });
  // The entry point only routes; each handler decides and enqueues (persist, then acknowledge).
  const appFn: ApplicationFunction = (app) => {
    app.on("push", (context) => onPush(context, inbox));
    app.on("issue_comment.created", (context) => onIssueComment(context, inbox));
    app.on(["pull_request.opened", "pull_request.reopened", "pull_request.synchronize", "pull_request.closed"], (context) => onPullRequest(context, inbox));
    app.on(["check_run.rerequested", "check_run.requested_action"], (context) => onCheckRun(context, inbox, options.appId));
  };
  return { store, logs, reporter, lifecycle, queue, inbox, presence, registry, secretStore, appFn };
}

