import Bree from "bree";
import type { Logger } from "pino";
import { jobFiles } from "./compile-jobs.js";

const JOB_NAMES = ["build-revision", "provision-database"] as const;
export type JobName = (typeof JOB_NAMES)[number];

/** One job: one Bree job run, in a worker thread of its own. */
export interface Job<T> {
  /** The job's `result` message; rejects if the worker ended without one. */
  result: Promise<T>;
  /** Sends `cancel`; Bree terminates the worker if it has not finished a while later. */
  cancel(): void;
}

export interface StartJobOptions {
  job: JobName;
  /** Unique among the jobs of this runner: Bree knows the job as `<job>-<jobId>`. */
  jobId: string;
  workerData: unknown;
  onMessage?: (message: unknown) => void;
  /**
   * How long after `cancel` a worker that has not ended is terminated; default the runner's
   * (30 s: a build stops its processes first). A job that answers `cancel` at once (database
   * setup) gets less.
   */
  cancelGraceMs?: number;
}

export interface JobRunner {
  /** Starts a job; resolves once its worker runs. */
  start<T>(options: StartJobOptions): Promise<Job<T>>;
  stop(): Promise<void>;
}

/** What the runner knows of a job while its worker is alive. */
interface JobState {
  onMessage?: (message: unknown) => void;
  result?: unknown;
  error?: Error;
  finished: () => void;
}

/**
 * Runs each database setup and build as a job: one Bree job run, in a worker thread. Bree
 * refuses to run a name that is already running, so every job gets a unique name.
 */
export function createJobRunner(options: { log: Logger; cancelGraceMs?: number }): JobRunner {
  const { log } = options;
  const jobs = new Map<string, JobState>();
  // Bree logs as (message, meta); pino wants (object, message).
  const breeLogger = {
    info: (message: unknown) => log.debug(String(message)),
    warn: (message: unknown) => log.warn(String(message)),
    error: (message: unknown) => log.error(String(message)),
  };
  const bree = new Bree({
    root: false,
    jobs: [],
    logger: breeLogger as unknown as Bree.BreeLogger,
    // Not a stop timeout: Bree terminates every worker this long after it starts. Builds
    // have their own timeout (build.timeout), so never.
    closeWorkerAfterMs: 0,
    workerMessageHandler: ({ name, message }: { name: string; message: unknown }) => {
      const state = jobs.get(name);
      if (!state || message === "done") return;
      if (typeof message === "object" && message !== null && (message as { type?: string }).type === "result") {
        state.result = (message as { result: unknown }).result;
      } else state.onMessage?.(message);
    },
    errorHandler: (error: unknown, meta: { name: string }) => {
      const state = jobs.get(meta.name);
      const message = (error as Error)?.message ?? String(error);
      if (state) state.error = new Error(message);
      log.error({ err: { message }, job: meta.name }, "job failed");
    },
  });
  bree.on("worker deleted", (name: string) => jobs.get(name)?.finished());
  // dist/jobs/ in the compiled server; from the sources, bundled once per process (tens of
  // milliseconds). The first job waits for it.
  const files = jobFiles(JOB_NAMES, log);
  files.catch(() => undefined); // reported by the first job
  const jobFile = async (job: JobName) => (await files).get(job)!;

  return {
    async start<T>({ job, jobId, workerData, onMessage, cancelGraceMs }: StartJobOptions) {
      const file = await jobFile(job);
      const name = `${job}-${jobId}`;
      let finished!: () => void;
      const ended = new Promise<void>((resolve) => (finished = resolve));
      const state: JobState = { onMessage, finished };
      jobs.set(name, state);
      // execArgv: [] — a worker inherits the process's flags, and `tsx watch src/main.ts`
      // would load tsx's hooks into every worker (~80 ms); compiled jobs need none, and the
      // fallback shims register tsx themselves.
      await bree.add({ name, path: file, worker: { workerData, execArgv: [] } });
      await bree.run(name);
      const result = ended.then(async () => {
        jobs.delete(name);
        await bree.remove(name).catch(() => undefined);
        if (state.result !== undefined) return state.result as T;
        throw new Error(`the ${job} job ended without a result${state.error ? `: ${state.error.message}` : ""}`);
      });
      return {
        result,
        cancel() {
          // The job answers `cancel` by stopping its processes, then reports; a worker that
          // does not end in time is terminated (its processes are found by their marker).
          void bree.stop(name).catch(() => undefined);
          setTimeout(() => void bree.workers.get(name)?.terminate(), cancelGraceMs ?? options.cancelGraceMs ?? 30_000).unref();
        },
      };
    },
    async stop() {
      await bree.stop();
    },
  };
}
