import { execFile, spawn, type ChildProcess } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { signal, waitUntil } from "./wait-until.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface RunningSlipway {
  url: string;
  port: number;
  process: ChildProcess;
  /** Everything the process printed so far (JSON log lines). */
  output(): string;
  /**
   * Resolves with the output once `match` holds for it (a string it contains, a pattern it
   * matches, or a function of it), checked now and again on every chunk the process prints:
   * nothing is polled. `after` (an `output().length` taken earlier) looks only at what came
   * since. Rejects when the process exits first or after `timeoutMs` (default 30 s), with the output's tail.
   */
  waitForOutput(match: OutputMatch, options?: { after?: number; timeoutMs?: number; description?: string }): Promise<string>;
  /** SIGTERM, then wait for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** What `waitForOutput` waits for in a process's output. */
export type OutputMatch = string | RegExp | ((output: string) => boolean);

/** The line each entry point logs once it serves (JSON logs); for another script, pass `readyLine` (or `waitForHealth: false`). */
const READY_LINES: Record<string, RegExp> = {
  "src/main.ts": /"msg":"Slipway is running"/,
  "bench/lib/noop-probot-app.ts": /"msg":"listening"/,
};

/**
 * Collects a child's stdout and stderr, and resolves waits on it as chunks arrive (never by
 * polling: `waitUntil` on each chunk). A wait rejects when the child exits before its match,
 * or at its timeout.
 *
 * @example
 * const output = followOutput(child);
 * await output.waitFor(/setup page: \w{4}-\w{4}/, { timeoutMs: 20_000 });
 */
export function followOutput(child: ChildProcess): { text(): string; waitFor: RunningSlipway["waitForOutput"] } {
  let output = "";
  /** The child exited and its output is all read (`close`, not `exit`: output may follow the exit). */
  let closed = false;
  /** Emits `output` on each chunk and `close` at the end; any number of waits may listen. */
  const changes = new EventEmitter().setMaxListeners(0);
  const append = (chunk: Buffer | string) => {
    output += chunk;
    changes.emit("output");
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  child.once("close", () => {
    closed = true;
    changes.emit("close");
  });
  return {
    text: () => output,
    async waitFor(match, options = {}) {
      const test = typeof match === "string" ? (text: string) => text.includes(match) : match instanceof RegExp ? (text: string) => match.test(text) : match;
      const what = options.description ?? String(match);
      const seen = await waitUntil(() => (test(output.slice(options.after ?? 0)) ? "matched" : closed ? "closed" : undefined), {
        on: [signal(changes, "output", "close")],
        what,
        timeoutMs: options.timeoutMs ?? 30_000,
      }).catch((error: Error) => {
        throw new Error(`${error.message} in the output:\n${output.slice(-5_000)}`);
      });
      if (seen === "closed") throw new Error(`the process exited (${child.exitCode ?? child.signalCode}) before printing ${what}:\n${output.slice(-5_000)}`);
      return output;
    },
  };
}

/**
 * An `OutputMatch` for a whole log line (one ended by its newline) that contains every one of
 * `parts`: `loggedLine('"msg":"work finished"', revisionId)`.
 */
export function loggedLine(...parts: string[]): (output: string) => boolean {
  return (output) => output.split("\n").slice(0, -1).some((line) => parts.every((part) => line.includes(part)));
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/**
 * The environment that makes Slipway a GitHub App of a GitHub stand-in (a GitHub Enterprise
 * host at `github.host`, over http), with its data in `dataDir`.
 *
 * @example
 * await startSlipway({ env: { ...standInAppEnv(github, { privateKey, webhookSecret, dataDir }), SLIPWAY_MAX_CONCURRENT_BUILDS: "4" } });
 */
export function standInAppEnv(github: { appId: number; host: string }, app: { privateKey: string; webhookSecret: string; dataDir: string }): Record<string, string> {
  return {
    APP_ID: String(github.appId),
    PRIVATE_KEY: app.privateKey,
    WEBHOOK_SECRET: app.webhookSecret,
    GHE_HOST: github.host,
    GHE_PROTOCOL: "http",
    SLIPWAY_DATA_DIR: app.dataDir,
  };
}

/** Once per process: `npm run build` unless dist/ is up to date (concurrent callers share one build). */
let built: Promise<void> | undefined;
function ensureBuilt(): Promise<void> {
  return (built ??= new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [path.join(ROOT, "scripts", "build.mjs"), "--if-stale"], { cwd: ROOT }, (error, _stdout, stderr) =>
      error ? reject(new Error(`npm run build failed:\n${stderr}`)) : resolve(),
    );
  }));
}

/**
 * The command that runs `script`: Slipway's own entry points (`src/….ts`) run compiled, as
 * `npm start` and the Docker image run them (dist/….js with plain node, built first when
 * stale), so the tests test what ships; other scripts (benchmark stand-ins) run through tsx.
 */
async function commandFor(script: string): Promise<string[]> {
  const ownEntryPoint = /^src\/(.+)\.ts$/.exec(script);
  if (!ownEntryPoint) return ["--import", "tsx", script];
  await ensureBuilt();
  return ["--enable-source-maps", path.join("dist", `${ownEntryPoint[1]}.js`)];
}

/**
 * Starts the real `npm start` entry point (src/main.ts, compiled to dist/main.js) as a child
 * process with the given environment, waits for the line it logs once it serves ("Slipway is
 * running": the control plane listens and the embedded listener has started), then checks
 * that GET /healthz answers 200. `waitForHealth: false` (a standalone listener, which serves
 * nothing) returns at once.
 */
export async function startSlipway(options: {
  env: Record<string, string>;
  script?: string;
  port?: number;
  waitForHealth?: boolean;
  /** The log line that says it serves (default: the entry point's own, see READY_LINES). */
  readyLine?: RegExp;
  /** How long start-up may take (default 60 s: the embedded PostgreSQL server starts first). */
  readyTimeoutMs?: number;
}): Promise<RunningSlipway> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, await commandFor(options.script ?? "src/main.ts"), {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/root",
      LOG_LEVEL: "info",
      LOG_FORMAT: "json",
      PORT: String(port),
      HOST: "127.0.0.1",
      // Several Slipways run side by side in tests: each gets its own router port.
      SLIPWAY_ROUTER_PORT: String(await freePort()),
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = followOutput(child);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const url = `http://127.0.0.1:${port}`;

  const script = options.script ?? "src/main.ts";
  if (options.waitForHealth !== false) {
    const readyLine = options.readyLine ?? READY_LINES[script];
    try {
      if (!readyLine) throw new Error(`no start-up line is known for ${script}: pass readyLine, or waitForHealth: false`);
      await output.waitFor(readyLine, { timeoutMs: options.readyTimeoutMs ?? 60_000, description: `its start-up line ${readyLine}` });
      const status = await fetch(`${url}/healthz`).then((r) => r.status, (error: Error) => error.message);
      if (status !== 200) throw new Error(`GET /healthz answered ${status} after start-up:\n${output.text().slice(-5_000)}`);
    } catch (error) {
      child.kill("SIGKILL");
      throw new Error(`${script} did not start: ${(error as Error).message}`);
    }
  }
  return {
    url,
    port,
    process: child,
    output: output.text,
    waitForOutput: output.waitFor,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
