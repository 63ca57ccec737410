/**
 * Start-up errors a user meets, with the real entry points as processes: a second Slipway
 * on one data dir, a taken PORT or SLIPWAY_ROUTER_PORT (each one fatal log line and exit 1),
 * and HOST set to an address other than loopback, where the embedded listener must still
 * reach its control plane.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { sendWebhook } from "github-stand-in/send-webhook";
import { startGitHubStandIn, type GitHubStandIn } from "github-stand-in";
import { LOCK_FILE } from "../../src/data-dir-lock.js";
import { freePort, loggedLine, startSlipway, standInAppEnv, type RunningSlipway } from "../../tools/start-slipway.js";
import { generateAppKey } from "../support/app-credentials.js";
import { nonLoopbackIPv4 } from "../support/machine-addresses.js";
import { testDatabaseUrl } from "../support/postgres.js";

const SECRET = "e2e-start-up-errors-secret";
const TOKEN = "listener-token-for-start-up-errors";
let github: GitHubStandIn;
let key: { privateKey: string; publicKey: string };
let root: string;
let nextDir = 0;

beforeAll(async () => {
  key = generateAppKey();
  github = await startGitHubStandIn({ appId: 1, appPublicKey: key.publicKey });
  root = await mkdtemp(path.join(tmpdir(), "slipway-e2e-start-up-"));
});

afterAll(async () => {
  await github?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const newDataDir = () => path.join(root, `data-${nextDir++}`);
const lockFile = (dataDir: string) => path.join(dataDir, LOCK_FILE);

/** A control plane with its embedded listener on a test database (no embedded PostgreSQL to wait for). */
function controlPlaneEnv(dataDir: string, extra: Record<string, string> = {}) {
  return {
    ...standInAppEnv(github, { privateKey: key.privateKey, webhookSecret: SECRET, dataDir }),
    SLIPWAY_LISTENER_TOKEN: TOKEN,
    SLIPWAY_DATABASE_URL: testDatabaseUrl,
    SLIPWAY_SANDBOX: "off",
    ...extra,
  };
}

/** Starts a process, stopped (SIGKILL) after the test if it still runs. */
async function start(options: Parameters<typeof startSlipway>[0]): Promise<RunningSlipway> {
  const slipway = await startSlipway(options);
  onTestFinished(async () => void (await slipway.stop("SIGKILL")));
  return slipway;
}

/** A process expected to refuse to start: its exit code and its fatal log line (level 60). */
async function refusal(slipway: RunningSlipway): Promise<{ code: number | null; fatal: Record<string, unknown> }> {
  const fatalLine = (output: string) => output.split("\n").find((line) => line.includes('"level":60'));
  const output = await slipway.waitForOutput((text) => fatalLine(text)?.endsWith("}") === true, { timeoutMs: 15_000, description: "a fatal log line" });
  const child = slipway.process;
  const code = child.exitCode ?? child.signalCode ?? ((await once(child, "exit"))[0] as number | null);
  return { code: code as number | null, fatal: JSON.parse(fatalLine(output) as string) as Record<string, unknown> };
}

/** Holds `port` on `host` for the test. */
async function occupy(host: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, "listening");
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await once(child, "exit");
  return child.pid as number;
}

describe("one Slipway per data dir", () => {
  it("a second control plane on the data dir exits 1 naming the dir and the first's pid; the lock goes when the first stops", async () => {
    const dataDir = newDataDir();
    const first = await start({ env: controlPlaneEnv(dataDir) });
    const held = JSON.parse(await readFile(lockFile(dataDir), "utf8")) as { pid: number; startedAt: string; hostname: string };
    expect(held).toMatchObject({ pid: first.process.pid, hostname: hostname() });

    const second = await start({ env: controlPlaneEnv(dataDir), waitForHealth: false });
    const { code, fatal } = await refusal(second);
    expect(code).toBe(1);
    expect(fatal.msg).toBe(
      `the data dir ${dataDir} is in use by another Slipway (pid ${first.process.pid}, started ${held.startedAt}); stop it, or set SLIPWAY_DATA_DIR to another folder`,
    );
    expect(fatal).not.toHaveProperty("err");
    // The refused one left the lock (and the first) alone.
    expect(JSON.parse(await readFile(lockFile(dataDir), "utf8"))).toEqual(held);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

    expect(await first.stop()).toBe(0);
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });

  it("a standalone listener on a control plane's data dir is refused the same way", async () => {
    const dataDir = newDataDir();
    const controlPlane = await start({ env: controlPlaneEnv(dataDir, { SLIPWAY_LISTENER: "off" }) });
    const listener = await start({
      script: "src/listener/main.ts",
      waitForHealth: false,
      env: { SLIPWAY_CONTROL_PLANE_URL: controlPlane.url, SLIPWAY_LISTENER_TOKEN: TOKEN, SLIPWAY_DATA_DIR: dataDir, SLIPWAY_DATABASE_URL: testDatabaseUrl, SLIPWAY_SANDBOX: "off" },
    });
    const { code, fatal } = await refusal(listener);
    expect(code).toBe(1);
    expect(fatal.msg).toMatch(`the data dir ${dataDir} is in use by another Slipway (pid ${controlPlane.process.pid}, started `);
  });

  it("a lock whose process is gone (kill -9, a crash) is taken over", async () => {
    const dataDir = newDataDir();
    await mkdir(dataDir, { recursive: true });
    await writeFile(lockFile(dataDir), JSON.stringify({ pid: await deadPid(), startedAt: "2026-01-01T00:00:00.000Z", hostname: hostname() }));
    const slipway = await start({ env: controlPlaneEnv(dataDir) });
    expect(JSON.parse(await readFile(lockFile(dataDir), "utf8")).pid).toBe(slipway.process.pid);
    expect(await slipway.stop()).toBe(0);
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });
});

describe("a taken port", () => {
  it("PORT: one fatal line saying what to set, exit 1, and no lock left behind", async () => {
    const dataDir = newDataDir();
    const port = await occupy("127.0.0.1");
    const slipway = await start({ port, env: controlPlaneEnv(dataDir), waitForHealth: false });
    const { code, fatal } = await refusal(slipway);
    expect(code).toBe(1);
    expect(fatal.msg).toBe(`PORT ${port} is in use; set PORT to a free port`);
    expect(fatal).not.toHaveProperty("err");
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });

  it("SLIPWAY_ROUTER_PORT of the embedded listener: the same", async () => {
    const dataDir = newDataDir();
    const routerPort = await occupy("127.0.0.1");
    const slipway = await start({ env: controlPlaneEnv(dataDir, { SLIPWAY_ROUTER_PORT: String(routerPort) }), waitForHealth: false });
    const { code, fatal } = await refusal(slipway);
    expect(code).toBe(1);
    expect(fatal.msg).toBe(`SLIPWAY_ROUTER_PORT ${routerPort} is in use; set SLIPWAY_ROUTER_PORT to a free port`);
    expect(fatal).not.toHaveProperty("err");
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });

  it("SLIPWAY_ROUTER_PORT of a standalone listener: the same", async () => {
    const dataDir = newDataDir();
    const routerPort = await occupy("127.0.0.1");
    const listener = await start({
      script: "src/listener/main.ts",
      waitForHealth: false,
      env: {
        SLIPWAY_CONTROL_PLANE_URL: `http://127.0.0.1:${await freePort()}`,
        SLIPWAY_LISTENER_TOKEN: TOKEN,
        SLIPWAY_DATA_DIR: dataDir,
        SLIPWAY_DATABASE_URL: testDatabaseUrl,
        SLIPWAY_SANDBOX: "off",
        SLIPWAY_ROUTER_PORT: String(routerPort),
      },
    });
    const { code, fatal } = await refusal(listener);
    expect(code).toBe(1);
    expect(fatal.msg).toBe(`SLIPWAY_ROUTER_PORT ${routerPort} is in use; set SLIPWAY_ROUTER_PORT to a free port`);
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });
});

describe("HOST other than loopback", () => {
  // The machine's LAN address if it has one (where 127.0.0.1 does not answer), else the wildcard.
  const host = nonLoopbackIPv4() ?? "0.0.0.0";

  it(`HOST=${host}: the embedded listener reaches the control plane and a push deploys`, async () => {
    const port = await freePort();
    const slipway = await start({ port, env: controlPlaneEnv(newDataDir(), { HOST: host }), waitForHealth: false });
    await slipway.waitForOutput(/"msg":"Slipway is running"/, { timeoutMs: 30_000 });
    const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
    if (host !== "0.0.0.0") {
      // What made the fix necessary: nothing answers on loopback.
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    }

    const config = "build:\n  commands: ['echo built']\n";
    const repo = github.addRepository({ owner: "hosted", name: "on-lan", installationId: 700, files: { ".github/slipway.yml": config } });
    const sha = github.addCommit({ owner: repo.owner, name: repo.name, files: { ".github/slipway.yml": config, "n.txt": "1" } });
    const response = await sendWebhook({
      url: `${url}/api/github/webhooks`,
      secret: SECRET,
      event: "push",
      payload: github.pushPayload({ repository: repo, ref: repo.defaultBranch, after: sha }),
    });
    expect(response.status).toBeLessThan(300);
    const run = await github.waitFor((gh) => gh.checkRuns({ owner: repo.owner, name: repo.name }).find((r) => r.headSha === sha && r.status === "completed"), {
      timeoutMs: 30_000,
      description: "a completed check run",
    });
    expect(run.conclusion).toBe("success");
    expect(loggedLine('"msg":"revision leased"', '"listener":"embedded-')(slipway.output())).toBe(true);
    expect(slipway.output()).not.toContain("could not reach the control plane");
    expect(await slipway.stop()).toBe(0);
  });
});
