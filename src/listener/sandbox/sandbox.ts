import type { ChildProcess } from "node:child_process";
import path from "node:path";

import type { SandboxPolicy, SandboxReport } from "../../protocol/listener-protocol.js";

export type { SandboxPolicy, SandboxReport };
export const SANDBOX_POLICIES: readonly SandboxPolicy[] = ["auto", "bubblewrap", "off"];

/**
 * Plain data (it crosses into Bree workers), resolved once per listener by `resolveSandbox`
 * and turned into a `Sandbox` by `createSandbox` in whichever thread spawns.
 */
export interface SandboxConfig extends SandboxReport {
  /** Absolute path of `bwrap` (kind `bubblewrap`). */
  bwrapPath?: string;
  /**
   * The listener runs as root: each deployment's processes run as a uid of their own
   * (see `sandboxUserFor`). Otherwise a user namespace maps that uid onto the listener's.
   */
  switchUser: boolean;
  /** Host paths that must not be seen even where they lie inside a folder the sandbox shows (data dir, Slipway's install). */
  hiddenPaths: string[];
  /** Extra host folders shown read-only at the same path: Node's prefix when it is not under /usr. */
  readOnlyPaths: string[];
  /** Most processes (threads included) one deployment's sandboxes may run at once. */
  maxProcesses: number;
}

/** The user a deployment's sandboxed processes run as. */
export interface SandboxUser {
  uid: number;
  gid: number;
}

export interface SandboxSpawnOptions {
  /** A shell line, run with `/bin/sh -c`. */
  script: string;
  /** The source folder: read-write and the working directory (`/workspace` inside). */
  workDir: string;
  /** A folder inside `workDir` to start in instead (`build.root`, checked to be one: see buildRootOf). */
  subDir?: string;
  /** Kept per deployment, read-write (`HOME`, `/home/slipway` inside), so caches survive between revisions. */
  homeDir: string;
  /** Read-write scratch space (`/tmp` inside). */
  tmpDir: string;
  /** The whole environment of the command; `HOME` and `PATH` are the sandbox's. */
  env: Readonly<Record<string, string>>;
  /** From `sandbox.userFor(deploymentId)`. */
  user: SandboxUser;
}

export interface Sandbox {
  readonly config: SandboxConfig;
  /** Whether processes are contained at all (false for `none`). */
  readonly contained: boolean;
  /**
   * Whether the spawned process supervises the sandbox: ending it ends everything inside
   * at once. Stopping then sends SIGTERM to the processes inside (found by their run
   * marker) and keeps the group's signal for the final SIGKILL.
   */
  readonly supervisorIsGroupLeader: boolean;
  /**
   * Creates the folders a spawn needs (if missing), owned by `user` so the sandboxed
   * processes can write there (without a sandbox: only `homeDir`). Only the folders
   * themselves: what the listener writes into them (the unpacked source) must get the
   * owner as it is written (see `ownerOf`).
   */
  prepare(folders: Pick<SandboxSpawnOptions, "homeDir" | "tmpDir">, user: SandboxUser): Promise<void>;
  /** The owner files must have for `user` to own them, or undefined when the listener's own user is right. */
  ownerOf(user: SandboxUser): SandboxUser | undefined;
  /**
   * Starts `/bin/sh -c <script>` contained, as the leader of a new process group, stdout and
   * stderr piped. Its processes die with the thread that spawned them (the listener's main
   * thread for instances, a Bree worker for builds), even when the listener is killed with SIGKILL.
   */
  spawn(options: SandboxSpawnOptions): ChildProcess;
}

/** A sandbox and one deployment's place in it: what spawning a build command or a revision needs. */
export interface SandboxPlacement {
  sandbox: Sandbox;
  user: SandboxUser;
  /** The deployment's `HOME`, kept between its revisions (see `deploymentHomeDir`). */
  homeDir: string;
  /** Scratch space for `/tmp`. */
  tmpDir: string;
}

/** Where the sandbox shows its folders. */
export const SANDBOX_WORKSPACE = "/workspace";
export const SANDBOX_HOME = "/home/slipway";

/** A deployment's `HOME` on the listener: kept between its revisions (package caches), removed at teardown. */
export function deploymentHomeDir(dataDir: string, deploymentId: string): string {
  return path.join(deploymentCacheDir(dataDir, deploymentId), "home");
}

/** Everything the listener keeps for a deployment beyond its builds. */
export function deploymentCacheDir(dataDir: string, deploymentId: string): string {
  return path.join(dataDir, "cache", deploymentId);
}
