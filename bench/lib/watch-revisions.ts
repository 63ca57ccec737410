import type { GitHubStandIn, RecordedCheckRun, RecordedDeployment, RecordedDeploymentStatus, RecordedRequest } from "github-stand-in";

/** What the stand-in saw of one commit of one repository, with arrival times (Date.now()). */
export interface CommitProgress {
  /** The source download (the listener has leased the revision). */
  tarballAt?: number;
  checkRunCompletedAt?: number;
  conclusion?: string | null;
  /** The check run's external_id: Slipway's revision id. */
  revisionId?: string;
  finalStatusAt?: number;
  finalStatus?: string;
}

export interface RevisionWatch {
  progress(fullName: string, sha: string): CommitProgress;
  /** Resolves once `test` holds for the commit's progress (checked on every stand-in event). */
  until(fullName: string, sha: string, test: (progress: CommitProgress) => boolean, timeoutMs: number): Promise<CommitProgress>;
  /**
   * Resolves once no request about `fullName` has arrived for `quietMs` (a timer started
   * again by each such request, not a poll), or after `timeoutMs` at the latest.
   */
  quiet(fullName: string, quietMs: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

const FINAL_STATUSES = new Set(["success", "failure", "error", "inactive"]);

/** Follows check runs, deployment statuses and source downloads at the stand-in, per commit. */
export function watchRevisions(github: GitHubStandIn): RevisionWatch {
  const commits = new Map<string, CommitProgress>();
  const lastRequest = new Map<string, number>();
  const waiters = new Set<() => void>();
  /** Called with the repository (`owner/name`, lower case) of each request about one. */
  const requestWaiters = new Set<(repository: string) => void>();
  const timers = new Set<NodeJS.Timeout>();
  const key = (fullName: string, sha: string) => `${fullName.toLowerCase()}@${sha}`;
  const entry = (fullName: string, sha: string) => {
    const k = key(fullName, sha);
    let found = commits.get(k);
    if (!found) commits.set(k, (found = {}));
    return found;
  };
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };

  const onCheckRun = ({ checkRun, snapshot }: { checkRun: RecordedCheckRun; snapshot: RecordedCheckRun["history"][number] }) => {
    if (snapshot.status !== "completed") return;
    const progress = entry(`${checkRun.owner}/${checkRun.repo}`, checkRun.headSha);
    progress.checkRunCompletedAt ??= Date.now();
    progress.conclusion = snapshot.conclusion;
    progress.revisionId = checkRun.externalId;
    wake();
  };
  const onStatus = ({ deployment, status }: { deployment: RecordedDeployment; status: RecordedDeploymentStatus }) => {
    if (!FINAL_STATUSES.has(status.state) || status.automatic) return;
    const progress = entry(`${deployment.owner}/${deployment.repo}`, deployment.sha);
    progress.finalStatusAt ??= Date.now();
    progress.finalStatus = status.state;
    wake();
  };
  const onRequest = (request: RecordedRequest) => {
    const match = /^\/(?:repos|_codeload)\/([^/]+)\/([^/]+)\//.exec(request.path);
    if (match) {
      const repository = `${match[1]}/${match[2]}`.toLowerCase();
      lastRequest.set(repository, Date.now());
      for (const waiter of [...requestWaiters]) waiter(repository);
    }
    if (request.operationId === "repos/download-tarball-archive" && request.params?.owner && request.params.repo && request.params.ref) {
      const progress = entry(`${request.params.owner}/${request.params.repo}`, request.params.ref);
      progress.tarballAt ??= Date.now();
      wake();
    }
  };
  github.events.on("check-run", onCheckRun);
  github.events.on("deployment-status", onStatus);
  github.events.on("request", onRequest);

  return {
    progress: entry,
    until(fullName, sha, test, timeoutMs) {
      const progress = entry(fullName, sha);
      if (test(progress)) return Promise.resolve(progress);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          timers.delete(timer);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${fullName}@${sha.slice(0, 7)} (${JSON.stringify(progress)})`));
        }, timeoutMs);
        timers.add(timer);
        const check = () => {
          if (!test(progress)) return;
          clearTimeout(timer);
          timers.delete(timer);
          waiters.delete(check);
          resolve(progress);
        };
        waiters.add(check);
      });
    },
    quiet(fullName, quietMs, timeoutMs = 30_000) {
      const repository = fullName.toLowerCase();
      // Time itself: "quiet" is no request about the repository for quietMs, stragglers included.
      return new Promise<void>((resolve) => {
        let quietTimer: NodeJS.Timeout;
        const done = () => {
          clearTimeout(quietTimer);
          clearTimeout(deadline);
          timers.delete(quietTimer);
          timers.delete(deadline);
          requestWaiters.delete(onRequestAbout);
          resolve();
        };
        const startQuiet = (ms: number) => {
          clearTimeout(quietTimer);
          timers.delete(quietTimer);
          quietTimer = setTimeout(done, Math.max(0, ms));
          timers.add(quietTimer);
        };
        const onRequestAbout = (about: string) => {
          if (about === repository) startQuiet(quietMs);
        };
        const deadline = setTimeout(done, timeoutMs);
        timers.add(deadline);
        requestWaiters.add(onRequestAbout);
        startQuiet((lastRequest.get(repository) ?? 0) + quietMs - Date.now());
      });
    },
    close() {
      github.events.off("check-run", onCheckRun);
      github.events.off("deployment-status", onStatus);
      github.events.off("request", onRequest);
      waiters.clear();
      requestWaiters.clear();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
