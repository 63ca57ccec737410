import { accessSync, constants } from "node:fs";
import { chown, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";

import { createSandbox, sandboxUserFor, UNSANDBOXED } from "./create-sandbox.js";
import type { SandboxConfig, SandboxPolicy } from "./sandbox.js";

export const INSTALL_BUBBLEWRAP = "install bubblewrap (Debian and Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)";
/** Processes (threads count) one deployment may run at once: enough for parallel builds, few enough to end a fork bomb. */
export const DEFAULT_MAX_PROCESSES = 2048;

export interface ResolveSandboxOptions {
  policy: SandboxPolicy;
  /** `SLIPWAY_DATA_DIR`: hidden from sandboxed processes; the probe runs in a folder below it. */
  dataDir: string;
  log: Logger;
  /** Default `DEFAULT_MAX_PROCESSES`. */
  maxProcesses?: number;
  /** Where to look for `bwrap` (default: `PATH`). */
  searchPath?: string;
}

export class SandboxUnavailableError extends Error {
  override name = "SandboxUnavailableError";
}

/** Slipway's own install (the folder holding package.json), hidden from sandboxed processes. */
const INSTALL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * Decides, once per listener start, what builds and instances run in
 * (`SLIPWAY_SANDBOX`), and proves it by running `true` in it:
 *
 * - `bubblewrap`: bubblewrap must work, or the listener refuses to start (a
 *   `SandboxUnavailableError` that says how to install it and what failed);
 * - `auto`: bubblewrap when it works; otherwise no sandbox, with one loud warning;
 * - `off`: no sandbox, as the operator chose.
 *
 * @example
 * ```ts
 * const config = await resolveSandbox({ policy: settings.sandbox, dataDir: settings.dataDir, log });
 * const sandbox = createSandbox(config);
 * ```
 */
export async function resolveSandbox(options: ResolveSandboxOptions): Promise<SandboxConfig> {
  const { policy, log } = options;
  if (policy === "off") {
    log.warn("SLIPWAY_SANDBOX=off: builds and running revisions run as the listener's user and can read what it can read");
    return { ...UNSANDBOXED, policy };
  }
  const probed = await probeBubblewrap(options);
  if (probed.ok) {
    log.info({ sandbox: "bubblewrap", switchUser: probed.config.switchUser, maxProcesses: probed.config.maxProcesses }, "builds and running revisions are sandboxed");
    return probed.config;
  }
  if (policy === "bubblewrap") {
    throw new SandboxUnavailableError(`SLIPWAY_SANDBOX=bubblewrap, but bubblewrap cannot be used: ${probed.reason}. To fix: ${INSTALL_BUBBLEWRAP}.`);
  }
  log.warn(
    { reason: probed.reason },
    `BUILDS ARE NOT SANDBOXED: bubblewrap is not available, so every build and running revision can read what this process can read, the App's private key included. /deploy on pull requests from forks is refused. To fix: ${INSTALL_BUBBLEWRAP}; to accept the risk and silence this, set SLIPWAY_SANDBOX=off.`,
  );
  return { ...UNSANDBOXED, policy };
}

/**
 * Whether bubblewrap works here, proved by running a command in it (in a folder below
 * `dataDir`, removed after): its config, or why not. Whatever the policy; logs nothing.
 */
export async function probeBubblewrap(options: Omit<ResolveSandboxOptions, "log">): Promise<{ ok: true; config: SandboxConfig } | { ok: false; reason: string }> {
  try {
    const config = bubblewrapConfig(options);
    await probe(config, options.dataDir);
    return { ok: true, config };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

function bubblewrapConfig(options: Omit<ResolveSandboxOptions, "log">): SandboxConfig {
  const bwrapPath = findExecutable("bwrap", options.searchPath ?? process.env.PATH ?? "/usr/bin:/bin");
  if (!bwrapPath) throw new Error("bwrap was not found on PATH");
  const switchUser = process.getuid?.() === 0;
  for (const tool of switchUser ? ["/usr/bin/prlimit", "/usr/bin/setpriv"] : ["/usr/bin/prlimit"]) {
    if (!isExecutable(tool)) throw new Error(`${tool} (util-linux) is missing`);
  }
  // Node itself, when it is not installed below /usr (nvm, a tarball in /opt).
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  const shown = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];
  const readOnlyPaths = isBelowAny(nodePrefix, shown) ? [] : [nodePrefix];
  const hiddenPaths = [path.resolve(options.dataDir), INSTALL_DIR].filter((hidden) => isBelowAny(hidden, [...shown, ...readOnlyPaths]));
  return {
    kind: "bubblewrap",
    policy: options.policy,
    bwrapPath,
    switchUser,
    hiddenPaths,
    readOnlyPaths,
    maxProcesses: options.maxProcesses ?? DEFAULT_MAX_PROCESSES,
  };
}

/** Runs `true` in the sandbox; rejects with what bwrap said when it cannot. */
async function probe(config: SandboxConfig, dataDir: string): Promise<void> {
  const sandbox = createSandbox(config);
  const dir = path.join(dataDir, "sandbox-probe");
  const user = sandboxUserFor("sandbox-probe");
  const [workDir, homeDir, tmpDir] = ["work", "home", "tmp"].map((name) => path.join(dir, name)) as [string, string, string];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await sandbox.prepare({ homeDir, tmpDir }, user);
    await mkdir(workDir, { mode: 0o700 });
    if (config.switchUser) await chown(workDir, user.uid, user.gid);
    const child = sandbox.spawn({ script: "test -w /workspace && test -w \"$HOME\"", workDir, homeDir, tmpDir, env: {}, user });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2_000);
    });
    child.stdout?.resume();
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", resolve);
    });
    if (code !== 0) throw new Error(stderr.trim() || `bwrap exited with code ${code}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function findExecutable(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(":")) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isBelowAny(target: string, folders: readonly string[]): boolean {
  return folders.some((folder) => target === folder || target.startsWith(`${folder}/`));
}
