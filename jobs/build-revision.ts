/**
 * Bree job: build one revision in a worker thread. Fetches the commit's source with the
 * lease's repository-scoped token, runs the configured commands in a fresh folder, and
 * streams the masked log to the listener's main thread, which ships it to the control
 * plane. Answers `cancel` by stopping the build's processes.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { buildEnvironment } from "../src/listener/build/build-environment.js";
import { checkBuildRoot } from "../src/listener/build/build-root.js";
import { createBuildLog } from "../src/listener/build/build-log.js";
import { describeBuildFailure } from "../src/listener/build/describe-build-failure.js";
import { fetchSource } from "../src/listener/build/fetch-source.js";
import { runCommands } from "../src/listener/build/run-commands.js";
import { recordBuild } from "../src/listener/kill-orphaned-builds.js";
import type { BuildJobData, BuildJobMessage, BuildJobResult } from "../src/listener/job-messages.js";
import { createSandbox, sandboxUserFor } from "../src/listener/sandbox/create-sandbox.js";

const data = workerData as BuildJobData;
const abort = new AbortController();
parentPort?.on("message", (message) => {
  if (message === "cancel") abort.abort();
});
const post = (message: BuildJobMessage) => parentPort?.postMessage(message);

async function build(): Promise<BuildJobResult> {
  const log = await createBuildLog({
    file: data.logFile,
    secrets: data.secrets,
    onChunk: (text, offset) => post({ type: "log", text, offset }),
  });
  const sandbox = createSandbox(data.sandbox);
  const user = sandboxUserFor(data.deploymentId);
  const source = path.join(data.workDir, "source");
  const tmpDir = path.join(data.workDir, "tmp");
  try {
    await rm(source, { recursive: true, force: true });
    try {
      log.write(`[slipway] fetching ${data.repository}@${data.sha.slice(0, 12)}\n`);
      const fetched = await fetchSource({
        tarballUrl: data.tarballUrl,
        token: data.token,
        destination: source,
        signal: abort.signal,
        owner: sandbox.ownerOf(user),
      });
      for (const skipped of fetched.skipped) log.write(`[slipway] skipped ${skipped.path}: ${skipped.reason}\n`);
    } catch (error) {
      if (abort.signal.aborted) return { outcome: "cancelled", error: "Cancelled while fetching the source" };
      const message = `Could not fetch the source: ${(error as Error).message}`;
      log.write(`[slipway] ${message}\n`);
      return { outcome: "failed", error: message, infrastructureFault: true };
    }
    const root = await checkBuildRoot(source, data.root);
    if (!root.ok) {
      log.write(`[slipway] ${root.error}\n`);
      return { outcome: "failed", error: root.error };
    }
    if (data.commands.length === 0) {
      log.write("[slipway] no build commands configured (build.commands in .github/slipway.yml)\n");
      return { outcome: "succeeded" };
    }
    if (!sandbox.contained) {
      log.write(`[slipway] this build is not sandboxed (SLIPWAY_SANDBOX=${data.sandbox.policy}): it runs as the listener's user\n`);
    }
    await sandbox.prepare({ homeDir: data.homeDir, tmpDir }, user);
    const runMarker = `slipway-${data.revisionId}-${randomUUID()}`;
    const env = buildEnvironment({
      configEnv: data.env,
      databaseUrl: data.databaseUrl,
      sha: data.sha,
      ref: data.ref,
      environment: data.environment,
      revisionId: data.revisionId,
      runMarker,
      settings: data.settings,
    });
    // While the file exists, a restarted listener knows these processes may be orphans.
    const release = await recordBuild(data.buildMarkersDir, runMarker);
    const result = await runCommands({
      commands: data.commands,
      cwd: source,
      subDir: root.subDir,
      env,
      timeoutMs: data.timeoutSeconds * 1000,
      onOutput: (text) => log.write(text),
      signal: abort.signal,
      sandbox: { sandbox, user, homeDir: data.homeDir, tmpDir },
    }).finally(release);
    // runCommands has already written how it ended into the log; these are for the check run.
    switch (result.outcome) {
      case "succeeded":
        log.write(`[slipway] build succeeded in ${(result.durationMs / 1000).toFixed(1)} s\n`);
        return { outcome: "succeeded" };
      case "cancelled":
        return { outcome: "cancelled", error: "Cancelled" };
      case "timed_out":
        return {
          outcome: "failed",
          error: `The build took longer than ${data.timeoutSeconds} s (build.timeout) and was stopped during \`${result.failedCommand}\``,
        };
      default:
        return {
          outcome: "failed",
          error: describeBuildFailure({ result, outputTail: log.tail(4_000), maxProcesses: sandbox.contained ? data.sandbox.maxProcesses : undefined }),
        };
    }
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
    await log.close();
  }
}

build()
  .catch((error: unknown): BuildJobResult => ({
    outcome: "failed",
    error: `The build job crashed: ${(error as Error).message}`,
    infrastructureFault: true,
  }))
  .then((result) => {
    post({ type: "result", result });
    parentPort?.postMessage("done");
  });
