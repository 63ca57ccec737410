import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface RunningSlipway {
  url: string;
  port: number;
  process: ChildProcess;
  /** Everything the process printed so far (JSON log lines). */
  output(): string;
  /** SIGTERM, then wait for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
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
 * process with the given environment, and waits until GET /healthz answers 200.
 */
export async function startSlipway(options: {
  env: Record<string, string>;
  script?: string;
  port?: number;
  waitForHealth?: boolean;
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
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const url = `http://127.0.0.1:${port}`;

  if (options.waitForHealth !== false) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = await fetch(`${url}/healthz`).then((r) => r.status, () => 0);
      if (status === 200) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`Slipway did not become healthy (exit ${child.exitCode}):\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url,
    port,
    process: child,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
