import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startGitHubStandIn, type GitHubStandIn, type StandInRepositoryHandle } from "github-stand-in";
import { startSlipway, type RunningSlipway, standInAppEnv } from "../../tools/start-slipway.js";

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const WEBHOOK_SECRET = "bench-webhook-secret";
const SERVER_PROBE = path.join(BENCH_DIR, "lib", "server-probe.mjs");

/** A server child the benchmark started, with what it needs to look inside it. */
export interface BenchServer extends RunningSlipway {
  name: string;
  dataDir: string;
  /** Where server-probe.mjs answers heap readings (only when started with `heapProbe`). */
  heapFile?: string;
  /** Lines of its JSON log at level ≥ 50 (error, fatal). */
  errorLines(): string[];
  /**
   * SIGTERM, and a second one after `graceMs` (Slipway then exits at once, with 130): for
   * servers whose graceful stop would wait seconds for GitHub writes nobody measures.
   */
  stopQuickly(graceMs?: number): Promise<void>;
}

export interface BenchEnvironment {
  quick: boolean;
  /** `--profile`: servers write CPU profiles into `profileDir` when they stop. */
  profileDir?: string;
  github: GitHubStandIn;
  privateKey: string;
  tmpRoot: string;
  /** Progress lines (stderr, with the time since start). */
  say(line: string): void;
  /** A fresh repository with its own installation, holding `.github/slipway.yml`. */
  addRepository(name: string, config: string): StandInRepositoryHandle;
  /** Starts Slipway (`src/main.ts`) or another script the same way, against the stand-in. */
  startServer(options: { name: string; script?: string; env?: Record<string, string>; heapProbe?: boolean; profile?: boolean; dataDir?: string; port?: number }): Promise<BenchServer>;
  /** A fresh data folder, holding a copy of the initialised embedded-database template when there is one. */
  seededDataDir(name: string): Promise<string>;
  /** Whether an initialised embedded-database template is at hand (cached by an earlier run, or made in this one). */
  hasDatabaseTemplate(): boolean;
  /**
   * Keeps `<dataDir>/databases/.template` (PGlite's initdb output, made once per data folder
   * and PGlite version) in bench/results/cache, so later runs and servers skip its ~5 s.
   */
  saveDatabaseTemplate(dataDir: string): Promise<void>;
  /** Problems of the product seen during the run. */
  problems: string[];
  /** Keeps a process's output in bench/results/logs/<name>.log. */
  saveLog(name: string, output: string): Promise<void>;
  close(): Promise<void>;
}

export async function createBenchEnvironment(options: { quick: boolean; profileDir?: string }): Promise<BenchEnvironment> {
  const started = performance.now();
  const say = (line: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const tmpRoot = await mkdtemp(path.join(tmpdir(), "slipway-bench-"));
  const github = await startGitHubStandIn({ appId: 1, appPublicKey: publicKey });
  const servers = new Set<BenchServer>();
  let nextInstallation = 1_000;
  // Embedded databases now live in one PostgreSQL server per listener, initialised by its
  // first start (a few seconds); there is no PGlite template to cache any more.
  const templateDir: string | undefined = undefined;
  let profiles = 0;
  const problems: string[] = [];
  const logDir = path.join(BENCH_DIR, "results", "logs");
  await rm(logDir, { recursive: true, force: true });
  const saveLog = async (name: string, output: string) => {
    await mkdir(logDir, { recursive: true });
    await writeFile(path.join(logDir, `${name}.log`), output);
  };

  return {
    quick: options.quick,
    profileDir: options.profileDir,
    github,
    privateKey,
    tmpRoot,
    say,
    problems,
    saveLog,
    addRepository(name, config) {
      return github.addRepository({ owner: "bench", name, installationId: nextInstallation++, files: { ".github/slipway.yml": config } });
    },
    async startServer(server) {
      const dataDir = server.dataDir ?? (await mkdtemp(path.join(tmpRoot, `${server.name}-`)));
      const heapFile = server.heapProbe ? path.join(tmpRoot, `${server.name}-heap.json`) : undefined;
      const probe: Record<string, string> = {};
      if (heapFile) probe.SLIPWAY_BENCH_HEAP_FILE = heapFile;
      if (server.profile && options.profileDir) {
        await mkdir(options.profileDir, { recursive: true });
        probe.SLIPWAY_BENCH_CPU_PROFILE = path.join(options.profileDir, `${server.name}-${++profiles}.cpuprofile`);
      }
      const running = await startSlipway({
        script: server.script,
        port: server.port,
        env: {
          ...standInAppEnv(github, { privateKey: privateKey, webhookSecret: WEBHOOK_SECRET, dataDir }),
          // Any free port for the listener's router: 8080 may be taken (another server of this run, other tests).
          SLIPWAY_ROUTER_PORT: "0",
          LOG_LEVEL: "info",
          ...probe,
          ...(Object.keys(probe).length ? { NODE_OPTIONS: `--import=${SERVER_PROBE}` } : {}),
          ...server.env,
        },
      });
      const benchServer: BenchServer = {
        ...running,
        name: server.name,
        dataDir,
        heapFile,
        errorLines: () =>
          running
            .output()
            .split("\n")
            .filter((line) => /"level":(5\d|60)/.test(line)),
        async stop(signal) {
          servers.delete(benchServer);
          const code = await running.stop(signal);
          if (code !== 0 && code !== null) problems.push(`${server.name} exited with code ${code} (log: ${path.relative(process.cwd(), path.join(logDir, `${server.name}.log`))})`);
          await saveLog(server.name, running.output());
          return code;
        },
        async stopQuickly(graceMs = 1_000) {
          servers.delete(benchServer);
          const child = running.process;
          const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, "exit");
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGTERM"), graceMs);
          await exited;
          clearTimeout(timer);
          if (child.exitCode !== 0 && child.exitCode !== 130) problems.push(`${server.name} exited with code ${child.exitCode ?? child.signalCode}`);
          await saveLog(server.name, running.output());
        },
      };
      servers.add(benchServer);
      say(`${server.name} started (pid ${running.process.pid}) at ${running.url}`);
      return benchServer;
    },
    async seededDataDir(name) {
      const dataDir = await mkdtemp(path.join(tmpRoot, `${name}-`));
      if (templateDir) {
        await mkdir(path.join(dataDir, "databases"), { recursive: true, mode: 0o700 });
        await cp(templateDir, path.join(dataDir, "databases", ".template"), { recursive: true });
      }
      return dataDir;
    },
    hasDatabaseTemplate: () => templateDir !== undefined,
    async saveDatabaseTemplate() {
      // Nothing to keep: see templateDir.
    },
    async close() {
      await Promise.all([...servers].map((server) => server.stop()));
      await github.close();
      await rm(tmpRoot, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}
