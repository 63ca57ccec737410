/**
 * What ships: `npm run build`'s output is what the Docker image and `npm start` run (plain
 * node, no TypeScript loader), and compose.yaml configures Slipway only with variables the
 * README documents. The image itself is not built here (no Docker daemon is assumed).
 */
import { spawn, execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { followOutput, freePort } from "../../tools/start-slipway.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

/** The instructions of the Dockerfile's last stage, continuation lines joined. */
function finalStage(dockerfile: string): { instruction: string; args: string }[] {
  const lines = dockerfile
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const [, instruction = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
      return { instruction: instruction.toUpperCase(), args };
    });
  const lastFrom = lines.map((line) => line.instruction).lastIndexOf("FROM");
  return lines.slice(lastFrom);
}

/** Every `UPPER_CASE` name in backticks in README's "Configuration" section (its tables and Probot's list). */
function documentedVariables(): Set<string> {
  const readme = read("README.md");
  const start = readme.indexOf("### Server: environment variables");
  const end = readme.indexOf("\n## ", start);
  expect(start).toBeGreaterThan(0);
  return new Set([...readme.slice(start, end).matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!));
}

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [path.join(ROOT, "scripts/build.mjs"), "--if-stale"], { cwd: ROOT });
}, 120_000);

describe("the Docker image", () => {
  const stage = finalStage(read("Dockerfile"));

  it("runs the compiled entry point that npm run build produces, with node directly", () => {
    expect(stage[0]!.args).toMatch(/^node:20-slim\b/);
    const cmd = stage.filter((line) => line.instruction === "CMD").at(-1);
    expect(cmd, "a CMD in the final stage").toBeDefined();
    const argv = JSON.parse(cmd!.args) as string[]; // exec form: no shell between Docker and node
    expect(argv[0]).toBe("node");
    expect(argv.join(" ")).not.toMatch(/tsx|--import|--loader|npm/);
    const script = argv.slice(1).find((arg) => !arg.startsWith("-"))!;
    expect(script).toMatch(/^dist\/.+\.js$/);
    expect(existsSync(path.join(ROOT, script)), `${script} after npm run build`).toBe(true);
    expect(script).toBe(`dist/${JSON.parse(read("package.json")).scripts.start.includes("listener") ? "listener/main.js" : "main.js"}`);
    // …and the final stage has that dist/ from the build stage, run from the WORKDIR it was copied to.
    const workdir = stage.filter((line) => line.instruction === "WORKDIR").at(-1)?.args;
    expect(stage.some((line) => line.instruction === "COPY" && /--from=build\s+\S*\/dist\s+\.\/dist$/.test(line.args))).toBe(true);
    expect(workdir).toBe("/app");
  });

  it("installs bubblewrap and production packages only", () => {
    const runs = stage.filter((line) => line.instruction === "RUN").map((line) => line.args).join("\n");
    expect(runs).toMatch(/apt-get install[^\n]*\bbubblewrap\b/);
    expect(runs).toMatch(/npm ci --omit=dev/);
    expect(read(".dockerignore")).toMatch(/^\*\*\/\.env$/m);
  });
});

describe("compose.yaml", () => {
  const compose = parse(read("compose.yaml")) as {
    services: Record<string, { image?: string; environment?: Record<string, unknown>; cap_add?: string[]; security_opt?: string[] }>;
  };
  const slipway = compose.services.slipway!;

  it("sets only variables the README's configuration documents", () => {
    const documented = documentedVariables();
    const names = Object.keys(slipway.environment ?? {});
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((name) => !documented.has(name))).toEqual([]);
    for (const name of ["APP_ID", "WEBHOOK_SECRET", "SLIPWAY_PUBLIC_URL", "SLIPWAY_DATABASE_URL", "SLIPWAY_DATA_DIR", "SLIPWAY_SANDBOX", "PORT", "HOST", "SLIPWAY_ROUTER_PORT", "SLIPWAY_ROUTER_HOST"]) {
      expect(names).toContain(name);
    }
    expect(names.some((name) => name === "PRIVATE_KEY" || name === "PRIVATE_KEY_PATH")).toBe(true);
  });

  it("points Slipway at its PostgreSQL service and lets bubblewrap make namespaces without privileged mode", () => {
    expect(compose.services.postgres?.image).toBe("postgres:18");
    const url = new URL(String(slipway.environment!.SLIPWAY_DATABASE_URL).replace(/\$\{[^}]*\}/g, "password"));
    expect(url.hostname).toBe("postgres");
    expect(slipway.environment!.SLIPWAY_ROUTER_HOST).toBe("0.0.0.0");
    expect(slipway.environment!.HOST).toBe("0.0.0.0");
    expect(slipway.cap_add).toEqual(["SYS_ADMIN"]);
    expect(slipway.security_opt).not.toContain("seccomp=unconfined");
    expect(slipway).not.toHaveProperty("privileged");
  });
});

describe("npm start", () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(path.join(os.tmpdir(), "slipway-start-"));
    await copyFile(path.join(ROOT, "app.yml"), path.join(cwd, "app.yml"));
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("runs node on the compiled JavaScript: setup mode comes up with no TypeScript loader in the process", async () => {
    const script: string = JSON.parse(read("package.json")).scripts.start;
    expect(script).toMatch(/^node\s/);
    expect(script).not.toMatch(/tsx|ts-node|--import|--loader/);
    // The script's own command line, from a folder without a .env (so no credentials: setup mode).
    const argv = script.split(/\s+/).slice(1).map((arg) => (arg.endsWith(".mjs") || arg.endsWith(".js") ? path.join(ROOT, arg) : arg));
    const port = await freePort();
    const child = spawn(process.execPath, argv, {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), SLIPWAY_DATA_DIR: path.join(cwd, "data"), LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const followed = followOutput(child);
    try {
      const output = await followed.waitFor(/enter this code on the setup page: \w{4}-\w{4}/, { timeoutMs: 20_000, description: "setup mode's code" });
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);

      // The process that serves is the one npm start runs (pid in its log lines), and nothing in
      // its command line or NODE_OPTIONS loads TypeScript.
      const pid = Number(/"pid":(\d+)/.exec(output)?.[1]);
      expect(pid).toBe(child.pid);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      expect(cmdline.join(" ")).not.toMatch(/tsx|--import|--loader|--require/);
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      expect(environ).not.toMatch(/NODE_OPTIONS=[^\0]*(tsx|--import|--loader)/);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once("exit", resolve)));
    }
  });

  it("the compiled server never loads tsx or esbuild, and its jobs are prebuilt", () => {
    for (const file of ["main.js", "listener/main.js", "listener/compile-jobs.js", "listener/job-runner.js"]) {
      const code = read(path.join("dist", file));
      expect(code, file).not.toMatch(/from\s*["']tsx|import\(["']tsx/);
      expect(code, file).not.toMatch(/^import[^;]*from\s*["']esbuild["']/m); // only a lazy import, for running from sources
    }
    for (const job of ["build-revision", "provision-database"]) {
      const code = read(`dist/jobs/${job}.js`);
      expect(code).not.toMatch(/["']tsx|\.\.\/src\//); // bundled: Slipway's modules inside, packages from node_modules
    }
  });
});
