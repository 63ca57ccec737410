/** Everything needed to start one revision of one environment as an instance. */
export interface InstanceSpec {
  deploymentId: string;
  /** `revisionHost(...)`: `<environment>.<name>--<owner>.<domain>`. */
  host: string;
  revisionId: string;
  /** The successful build: `<dataDir>/work/<deploymentId>/<revisionId>/source`. */
  cwd: string;
  /** `build.root`: the folder of the source the command starts in. */
  subDir?: string;
  /** `run.command`, run with `/bin/sh -c`. */
  command: string;
  /** The allow-listed environment from `buildEnvironment` (with `DATABASE_URL`); `PORT` is added. */
  env: Readonly<Record<string, string>>;
  /** `run.healthcheck`: a path that must answer 2xx/3xx. Unset: any HTTP answer. */
  healthcheck?: string;
  /** Time to become healthy, per start and restart (default 60 s). */
  timeoutMs?: number;
  /** Lowers the supervisor's memory limit for this revision (cannot raise it). */
  memoryLimitMb?: number;
  /** Lowers the supervisor's output cap for this revision (cannot raise it). */
  maxOutputBytes?: number;
  /** The revision's output (and Slipway's lines about it) for its whole life, up to the output cap. */
  onOutput?: (text: string) => void;
  /**
   * Values masked with `***` in the output tails the supervisor hands out (`onCrashLoop`,
   * `DeployResult.outputTail`), as a build log masks them: the database password (see
   * `secretsOf`), tokens. `onOutput` gets the output as it is: mask it there too.
   */
  secrets?: readonly string[];
}

export interface DeployOptions extends InstanceSpec {
  /** Cancels the deploy while the revision is starting (the previous one keeps serving); no effect once traffic switched. */
  signal?: AbortSignal;
}

/** `outputTail`: the revision's last output, with `secrets` masked. */
export type DeployResult = { ok: true; port: number; url: string } | { ok: false; error: string; outputTail: string };

/** Why a spec cannot be started, or undefined when it can. */
export function checkSpec(spec: InstanceSpec): string | undefined {
  if (typeof spec.command !== "string" || spec.command.trim() === "") return "run.command is empty";
  if (spec.timeoutMs !== undefined && !(spec.timeoutMs > 0 && spec.timeoutMs <= 3_600_000)) return `the run timeout must be between 1 ms and 1 hour, got ${spec.timeoutMs}`;
  for (const [name, value] of Object.entries(spec.env)) {
    if (typeof value !== "string" || value.includes("\0")) return `environment variable ${name} is not a plain string`;
  }
  return undefined;
}
