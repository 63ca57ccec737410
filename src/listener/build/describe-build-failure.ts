import type { RunCommandsResult } from "./run-commands.js";

/** How shells and Node say that fork() was refused: the sandbox's process limit was reached. */
const FORK_REFUSED = /Cannot fork|fork: retry|fork: Resource temporarily unavailable|spawn EAGAIN/i;

/**
 * The check run's sentence for a build that failed: which command, how it ended, and,
 * when its last output shows a refused fork inside the sandbox, the process limit that
 * refused it (a fork bomb ends the build, not the machine).
 *
 * @example
 * ```ts
 * describeBuildFailure({ result, outputTail: log.tail(4_000), maxProcesses: 2048 });
 * // "`make -j` exited with code 2 (builds may run at most 2048 processes at once; a new one was refused)"
 * ```
 */
export function describeBuildFailure(options: {
  result: Pick<RunCommandsResult, "exitCode" | "signal" | "failedCommand">;
  outputTail: string;
  /** The sandbox's process limit; undefined when the build is not sandboxed. */
  maxProcesses?: number;
}): string {
  const { result, outputTail, maxProcesses } = options;
  const how = result.exitCode !== null ? `exited with code ${result.exitCode}` : `was killed by ${result.signal}`;
  const limit =
    maxProcesses !== undefined && FORK_REFUSED.test(outputTail)
      ? ` (builds may run at most ${maxProcesses} processes at once; a new one was refused)`
      : "";
  return `\`${result.failedCommand}\` ${how}${limit}`;
}
