/**
 * The sandbox against hostile builds and instances, with real bubblewrap and real
 * processes. Every attack is also run without the sandbox, where it must succeed: that
 * shows each check can see a leak when there is one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { hasBubblewrap } from "../../support/bubblewrap.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildEnvironment } from "../../../src/listener/build/build-environment.js";
import { describeBuildFailure } from "../../../src/listener/build/describe-build-failure.js";
import { runCommands, type RunCommandsResult } from "../../../src/listener/build/run-commands.js";
import { createOutputCapture } from "../../../src/listener/instances/create-output-capture.js";
import { createInstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import { createRouter } from "../../../src/listener/instances/create-router.js";
import { startInstance } from "../../../src/listener/instances/start-instance.js";
import { createSandbox, sandboxUserFor, unsandboxedPlacement } from "../../../src/listener/sandbox/create-sandbox.js";
import { resolveSandbox } from "../../../src/listener/sandbox/resolve-sandbox.js";
import { deploymentHomeDir, type SandboxConfig, type SandboxPlacement } from "../../../src/listener/sandbox/sandbox.js";
import { killLeftovers, livePids, newMarker } from "../build/processes.js";
import { get, SAMPLE_APP } from "../instances/instance-helpers.js";

const INSTALL_DIR = fileURLToPath(new URL("../../..", import.meta.url));
const withBubblewrap = hasBubblewrap("the sandbox containment tests");

/** What Slipway's process holds in its environment, as the App's private key would be (a stand-in process carries it). */
const CANARY_NAME = "SLIPWAY_CANARY_PRIVATE_KEY";
const CANARY_VALUE = `canary-${randomUUID()}`;
const SECRET_KEY = `secret-key-${randomUUID()}`;
const OTHER_DEPLOYMENT_FILE = `other-deployment-${randomUUID()}`;
/** Where the attack tries to write below /usr (the unsandboxed control case, as root, does write it: removed after). */
const USR_FILE = `/usr/slipway-sandbox-test-${randomUUID()}`;

/**
 * Each attempt prints "LEAK: <what>" when it gets through. Written for dash. The words
 * the test looks for are split in the script's text, which the build log echoes; the
 * pattern `KE[Y]=` matches the variable but not the command lines of this script or grep.
 */
const ATTACK = String.raw`
leak() { printf '%s: %s\n' "LEA""K" "$1"; }
cat "$DATA/secret.key" 2>/dev/null && leak "secret.key by absolute path"
cat ../../../../secret.key 2>/dev/null && leak "secret.key by climbing out of the work folder"
cat "$DATA/session.key" 2>/dev/null && leak "session.key"
cat "$DATA/state.json" 2>/dev/null && leak "state.json"
ls "$DATA/work/other-deployment" 2>/dev/null && leak "another deployment's work folder"
ls "$DATA/databases" 2>/dev/null && leak "the embedded databases"
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; echo; done | grep -a -q "SLIPWAY_CANARY_PRIVATE_KE[Y]=" && leak "another process's environment or command line"
touch "$DATA/pwned" 2>/dev/null && leak "wrote into the data dir"
touch "$INSTALL/pwned" 2>/dev/null && leak "wrote into Slipway's install"
touch "$USR_FILE" 2>/dev/null && leak "wrote into /usr"
[ "$(id -u)" = 0 ] && leak "runs as root"
[ "$(id -u)" = "$LISTENER_UID" ] && leak "runs as the listener's user"
echo "attack-""finished"
`;

const describeSandbox = withBubblewrap ? describe : describe.skip;

describeSandbox("the bubblewrap sandbox", () => {
  let root: string;
  let dataDir: string;
  let config: SandboxConfig;
  const markers: string[] = [];

  let standIn: ChildProcess;

  beforeAll(async () => {
    // /proc/<pid>/environ shows what a process started with, so the canary needs a process of its own.
    standIn = spawn("/bin/sleep", ["600"], { env: { [CANARY_NAME]: CANARY_VALUE }, stdio: "ignore" });
    // mkdtemp makes a 0700 folder: the sandbox must work below one only root may enter.
    root = mkdtempSync(path.join(os.tmpdir(), "slipway-sandbox-"));
    dataDir = path.join(root, "data");
    for (const [file, text] of [
      ["secret.key", SECRET_KEY],
      ["session.key", SECRET_KEY],
      ["state.json", `{"secret":"${SECRET_KEY}"}`],
      ["work/other-deployment/rev-1/source/secret.txt", OTHER_DEPLOYMENT_FILE],
      ["databases/other-deployment/PG_VERSION", "18"],
    ] as const) {
      mkdirSync(path.dirname(path.join(dataDir, file)), { recursive: true });
      writeFileSync(path.join(dataDir, file), text, { mode: 0o600 });
    }
    config = await resolveSandbox({ policy: "bubblewrap", dataDir, log: pino({ level: "silent" }), maxProcesses: 64 });
  });

  afterAll(() => {
    standIn.kill("SIGKILL");
    for (const marker of markers) killLeftovers(marker);
    rmSync(root, { recursive: true, force: true });
  });

  /** A deployment's folders as a listener lays them out, ready for the sandbox user. */
  async function placeDeployment(deploymentId: string, sandboxed: boolean) {
    const workDir = path.join(dataDir, "work", deploymentId, `rev-${randomUUID()}`, "source");
    mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const user = sandboxUserFor(deploymentId);
    const env = environment();
    if (!sandboxed) return { workDir, user, env, placement: unsandboxedPlacement(env) };
    const sandbox = createSandbox(config);
    const owner = sandbox.ownerOf(user);
    if (owner) chownSync(workDir, owner.uid, owner.gid);
    const placement: SandboxPlacement = { sandbox, user, homeDir: deploymentHomeDir(dataDir, deploymentId), tmpDir: path.join(path.dirname(workDir), "tmp") };
    await sandbox.prepare(placement, user);
    return { workDir, user, env, placement };
  }

  function environment(): Record<string, string> {
    const marker = newMarker();
    markers.push(marker);
    return buildEnvironment({
      configEnv: { DATA: dataDir, INSTALL: INSTALL_DIR, USR_FILE, LISTENER_UID: String(process.getuid?.()) },
      databaseUrl: "postgres://app:secret@127.0.0.1:5432/app",
      sha: "0".repeat(40),
      ref: "main",
      environment: "production",
      revisionId: "rev-1",
      runMarker: marker,
      home: os.tmpdir(),
    });
  }

  async function build(deploymentId: string, commands: string[], options: { sandboxed?: boolean; timeoutMs?: number } = {}) {
    const { workDir, env, placement } = await placeDeployment(deploymentId, options.sandboxed ?? true);
    let output = "";
    const result: RunCommandsResult = await runCommands({
      commands,
      cwd: workDir,
      env,
      timeoutMs: options.timeoutMs ?? 30_000,
      killGraceMs: 300,
      onOutput: (text) => (output += text),
      sandbox: placement,
    });
    return { result, output, workDir, placement };
  }

  it("keeps a hostile build from the keys, the state, other deployments, other processes and Slipway's files", async () => {
    const { result, output } = await build("hostile-build", [ATTACK]);

    expect(result.outcome).toBe("succeeded");
    expect(output).toContain("attack-finished");
    expect(output).not.toContain("LEAK");
    expect(output).not.toContain(SECRET_KEY);
    expect(output).not.toContain(CANARY_VALUE);
    expect(existsSync(path.join(dataDir, "pwned"))).toBe(false);
    expect(existsSync(path.join(INSTALL_DIR, "pwned"))).toBe(false);
    expect(existsSync(USR_FILE)).toBe(false);
  });

  it("(control) the same build without the sandbox reads all of it", async () => {
    const { output } = await build("unsandboxed-build", [ATTACK], { sandboxed: false });
    rmSync(path.join(dataDir, "pwned"), { force: true });
    rmSync(path.join(INSTALL_DIR, "pwned"), { force: true });
    rmSync(USR_FILE, { force: true });

    for (const leak of [
      "secret.key by absolute path",
      "secret.key by climbing out of the work folder",
      "state.json",
      "another deployment's work folder",
      "another process's environment or command line",
      "wrote into the data dir",
      "runs as the listener's user",
    ]) {
      expect(output).toContain(`LEAK: ${leak}`);
    }
  });

  it("keeps a hostile instance contained the same way", async () => {
    const { workDir, env, placement } = await placeDeployment("hostile-revision", true);
    let output = "";
    const capture = createOutputCapture({ maxBytes: 1_000_000, onOutput: (text) => (output += text), log: pino({ level: "silent" }) });
    const instance = startInstance({ command: ATTACK, cwd: workDir, env, port: 9, marker: newMarker(), memoryLimitMb: 512, output: capture, sandbox: placement });
    const exit = await instance.finished;

    expect(exit.code).toBe(0);
    expect(output).toContain("attack-finished");
    expect(output).not.toContain("LEAK");
    expect(output).not.toContain(SECRET_KEY);
  });

  it("runs a normal build: node, npm, its own folder, a HOME that lasts between revisions of the deployment", async () => {
    const first = await build("normal-build", [
      "node -e \"require('fs').writeFileSync(process.env.HOME + '/cache-entry', 'kept')\"",
      "npm --version",
      "npm init -y > /dev/null && npm pkg get name",
      "echo built > dist.txt && echo \"uid $(id -u) in $(pwd)\"",
    ]);
    expect(first.result.outcome).toBe("succeeded");
    expect(first.output).toMatch(/^\d+\.\d+\.\d+$/m); // npm's version
    expect(first.output).toContain("uid");
    expect(first.output).toContain("in /workspace");
    expect(first.output).not.toMatch(/uid 0 in/);
    expect(readFileSync(path.join(first.workDir, "dist.txt"), "utf8")).toBe("built\n");

    const second = await build("normal-build", ["cat \"$HOME/cache-entry\""]);
    expect(second.result.outcome).toBe("succeeded");
    expect(second.output).toContain("kept");
  });

  it("kills a child that left the session and dropped the run marker when the build times out", async () => {
    // `env -i` drops SLIPWAY_RUN_MARKER, so only the PID namespace can find this one.
    const tag = `31.${Math.floor(Math.random() * 1e6)}`;
    const { result } = await build("escaping-build", [`env -i /usr/bin/setsid /bin/sleep ${tag} & sleep 60`], { timeoutMs: 1_500 });

    expect(result.outcome).toBe("timed_out");
    expect(sleepers(tag)).toEqual([]);
  });

  it("(control) without the sandbox that child survives the build", async () => {
    const tag = `32.${Math.floor(Math.random() * 1e6)}`;
    const { result } = await build("escaping-unsandboxed", [`env -i /usr/bin/setsid /bin/sleep ${tag} &`], { sandboxed: false });
    const survivors = sleepers(tag);
    for (const pid of survivors) process.kill(pid, "SIGKILL");

    expect(result.outcome).toBe("succeeded");
    expect(survivors).toHaveLength(1);
  });

  it("ends a fork bomb at the deployment's process limit; other builds go on", async () => {
    const bomb = await build("fork-bomb", ["while :; do sleep 30 & done"]);

    expect(bomb.result.outcome).toBe("failed");
    expect(describeBuildFailure({ result: bomb.result, outputTail: bomb.output, maxProcesses: config.maxProcesses })).toContain(
      `builds may run at most ${config.maxProcesses} processes at once`,
    );
    const after = await build("after-the-bomb", ["echo still serving"]);
    expect(after.result.outcome).toBe("succeeded");
    expect(after.output).toContain("still serving");
    expect(processesOf(sandboxUserFor("fork-bomb").uid)).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)("hides a data dir that lies inside a folder the sandbox shows (/usr)", async () => {
    const usrDataDir = `/usr/local/share/slipway-sandbox-test-${randomUUID()}`;
    try {
      mkdirSync(usrDataDir, { recursive: true, mode: 0o700 });
      writeFileSync(path.join(usrDataDir, "secret.key"), SECRET_KEY);
      const hiding = await resolveSandbox({ policy: "bubblewrap", dataDir: usrDataDir, log: pino({ level: "silent" }) });
      expect(hiding.hiddenPaths).toContain(usrDataDir);

      const { workDir, env } = await placeDeployment("usr-data-dir", false);
      const sandbox = createSandbox(hiding);
      const user = sandboxUserFor("usr-data-dir");
      chownSync(workDir, user.uid, user.gid);
      const placement = { sandbox, user, homeDir: path.join(usrDataDir, "home"), tmpDir: path.join(usrDataDir, "tmp") };
      await sandbox.prepare(placement, user);
      let output = "";
      const result = await runCommands({
        commands: [`ls /usr/local/share/; cat ${usrDataDir}/secret.key || echo "hidden"`],
        cwd: workDir,
        env,
        timeoutMs: 10_000,
        onOutput: (text) => (output += text),
        sandbox: placement,
      });
      expect(result.outcome).toBe("succeeded");
      expect(output).toContain("hidden");
      expect(output).not.toContain(SECRET_KEY);
    } finally {
      rmSync(usrDataDir, { recursive: true, force: true });
    }
  });

  it("serves a sandboxed revision behind the router, as the deployment's own user", async () => {
    const log = pino({ level: "silent" });
    const appDir = path.join(root, "app", "source");
    cpSync(SAMPLE_APP, appDir, { recursive: true });
    const router = await createRouter({ port: 0, listenHost: "127.0.0.1", domain: "localhost", log });
    const instances = createInstanceSupervisor({ dataDir, log, router, sandbox: config, killGraceMs: 500 });
    try {
      const deployed = await instances.deploy({
        deploymentId: "sandboxed-app",
        host: "production.app.localhost",
        revisionId: "rev-1",
        cwd: appDir,
        command: "node server.mjs",
        env: environment(),
        healthcheck: "/healthz",
      });
      expect(deployed).toMatchObject({ ok: true });
      const answer = await get(router.port, "production.app.localhost", "/");
      expect(answer.status).toBe(200);
      expect(processesOf(sandboxUserFor("sandboxed-app").uid).length).toBeGreaterThan(0);
    } finally {
      await instances.close();
      await router.close();
    }
    expect(processesOf(sandboxUserFor("sandboxed-app").uid)).toEqual([]);
  });
});

/** Host pids of live `sleep <tag>` processes. */
function sleepers(tag: string): number[] {
  return livePids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8") === `/bin/sleep\0${tag}\0`;
    } catch {
      return false;
    }
  });
}

/** Host pids of live processes whose real uid is `uid`. */
function processesOf(uid: number): number[] {
  return livePids().filter((pid) => {
    try {
      return new RegExp(`^Uid:\\s+${uid}\\s`, "m").test(readFileSync(`/proc/${pid}/status`, "utf8"));
    } catch {
      return false;
    }
  });
}
