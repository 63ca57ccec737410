import { spawn, type ChildProcess } from "node:child_process";
import { lstatSync, readlinkSync } from "node:fs";
import { chown, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { SANDBOX_HOME, SANDBOX_WORKSPACE, type Sandbox, type SandboxConfig, type SandboxPlacement, type SandboxSpawnOptions, type SandboxUser } from "./sandbox.js";
import { spawnWithLifeline } from "./spawn-with-lifeline.js";

/** The sandbox `SLIPWAY_SANDBOX=off` (or `auto` without bubblewrap) stands for: none. */
export const UNSANDBOXED: SandboxConfig = {
  kind: "none",
  policy: "off",
  switchUser: false,
  hiddenPaths: [],
  readOnlyPaths: [],
  maxProcesses: 0,
};

/** System folders shown read-only. Top-level ones that are symlinks (merged /usr) become the same symlinks. */
const SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/** What DNS, TLS, the dynamic linker, git and time zones need from /etc; never passwd, shadow or the host name. */
const ETC_PATHS = [
  "/etc/alternatives",
  "/etc/ca-certificates",
  "/etc/ca-certificates.conf",
  "/etc/gai.conf",
  "/etc/host.conf",
  "/etc/hosts",
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/localtime",
  "/etc/mime.types",
  "/etc/nsswitch.conf",
  "/etc/os-release",
  "/etc/protocols",
  "/etc/resolv.conf",
  "/etc/services",
  "/etc/ssl",
  "/etc/timezone",
];
const SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** File descriptors of the pipes bwrap reads: its arguments, then /etc/passwd and /etc/group. */
const ARGS_FD = 3;
const PASSWD_FD = 4;
const GROUP_FD = 5;

/**
 * Turns a resolved `SandboxConfig` into something that spawns. `none` runs
 * `/bin/sh -c` directly (the listener's user, its view of the machine), tied to the
 * spawning thread by a lifeline (see `spawnWithLifeline`); `bubblewrap`
 * runs it in new PID, IPC, UTS and mount namespaces:
 *
 * - the system read-only (`/usr`, `/lib*`, a short list of `/etc` files for DNS and TLS),
 *   a fresh `/proc` and `/dev`; the source folder at `/workspace`, the deployment's
 *   `HOME` at `/home/slipway` and a scratch `/tmp`, all read-write; nothing else of the
 *   host (the data dir and Slipway's install are never shown, even below `/usr`);
 * - as the deployment's own unprivileged uid (`switchUser`: the listener is root and
 *   drops to it with `setpriv` after the mounts; otherwise a user namespace maps it onto
 *   the listener's user), with no capabilities, `no_new_privs` and at most
 *   `maxProcesses` processes (`prlimit`);
 * - the host's network (builds need package registries; `DATABASE_URL` is on loopback);
 * - `bwrap` is the group leader and PID namespace supervisor: when it or the command
 *   ends, the kernel kills everything left inside, `setsid` children included, and
 *   `--die-with-parent` does the same when the thread that spawned it ends
 *   (`PR_SET_PDEATHSIG` follows the parent thread, not the process): for an instance,
 *   spawned on the listener's main thread, when the listener dies; for a build, when its
 *   Bree worker ends at the latest. Without a sandbox, `spawnWithLifeline` gives the same
 *   guarantee to the whole process group.
 *
 * Options and environment reach bwrap through a pipe (`--args`), so neither secrets
 * nor the run marker show in any process's command line (only the command does), and
 * the supervisor's own environment is empty.
 *
 * @example
 * ```ts
 * const sandbox = createSandbox(config);
 * const user = sandboxUserFor(deploymentId);
 * await sandbox.prepare({ homeDir, tmpDir }, user);
 * const child = sandbox.spawn({ script: "npm ci", workDir, homeDir, tmpDir, env, user });
 * ```
 */
export function createSandbox(config: SandboxConfig): Sandbox {
  if (config.kind === "none") return unsandboxed(config);
  const bwrap = config.bwrapPath;
  if (!bwrap) throw new Error("a bubblewrap sandbox needs bwrapPath");
  const systemArgs = systemMountArgs(config);
  return {
    config,
    contained: true,
    supervisorIsGroupLeader: true,
    async prepare({ homeDir, tmpDir }, user) {
      for (const dir of [homeDir, tmpDir]) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        if (config.switchUser) await chown(dir, user.uid, user.gid);
      }
    },
    ownerOf(user) {
      return config.switchUser ? user : undefined;
    },
    spawn(options) {
      const { user } = options;
      const args = [
        ...systemArgs,
        "--bind", options.workDir, SANDBOX_WORKSPACE,
        "--perms", "0755", "--dir", path.dirname(SANDBOX_HOME),
        "--bind", options.homeDir, SANDBOX_HOME,
        "--bind", options.tmpDir, "/tmp",
        "--perms", "0644", "--ro-bind-data", String(PASSWD_FD), "/etc/passwd",
        "--perms", "0644", "--ro-bind-data", String(GROUP_FD), "/etc/group",
        ...config.hiddenPaths.flatMap((hidden) => ["--tmpfs", hidden]),
        "--chdir", options.subDir ? path.posix.join(SANDBOX_WORKSPACE, options.subDir) : SANDBOX_WORKSPACE,
        "--clearenv",
        ...Object.entries(sandboxEnvironment(options.env, config)).flatMap(([name, value]) => ["--setenv", name, value]),
        ...(config.switchUser
          ? // Enough to enter the (user-owned, 0700) work folder and become the user; setpriv drops them all.
            ["--cap-drop", "ALL", "--cap-add", "CAP_DAC_READ_SEARCH", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
          : ["--unshare-user", "--disable-userns", "--uid", String(user.uid), "--gid", String(user.gid)]),
      ];
      // The command stays on the command line (bwrap wants it there); it holds nothing secret.
      const command = [
        "/usr/bin/prlimit", `--nproc=${config.maxProcesses}:${config.maxProcesses}`, "--",
        ...(config.switchUser
          ? ["/usr/bin/setpriv", "--reuid", String(user.uid), "--regid", String(user.gid), "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
          : []),
        "/bin/sh", "-c", options.script,
      ];
      const child = spawn(bwrap, ["--args", String(ARGS_FD), "--", ...command], {
        cwd: "/",
        env: {},
        detached: true, // own process group: the whole sandbox can be signalled through bwrap
        stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "pipe"],
      });
      // bwrap reads each pipe to its end; one that cannot be written means bwrap already exited and says why on stderr.
      const feed = (fd: number, text: string) => {
        const pipe = child.stdio[fd] as NodeJS.WritableStream & { on(event: "error", listener: () => void): void };
        pipe.on("error", () => undefined);
        pipe.end(text);
      };
      feed(ARGS_FD, args.map((arg) => `${arg}\0`).join(""));
      feed(PASSWD_FD, `root:x:0:0:root:/root:/usr/sbin/nologin\nslipway:x:${user.uid}:${user.gid}:Slipway build:${SANDBOX_HOME}:/bin/sh\n`);
      feed(GROUP_FD, `root:x:0:\nslipway:x:${user.gid}:\n`);
      return child;
    },
  };
}

/** No sandbox: the command runs as this process's user, in `cwd`, with `HOME` from its environment. */
export function unsandboxedPlacement(env: Readonly<Record<string, string>>): SandboxPlacement {
  return {
    sandbox: createSandbox(UNSANDBOXED),
    user: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    homeDir: env.HOME ?? os.homedir(),
    tmpDir: os.tmpdir(),
  };
}

function unsandboxed(config: SandboxConfig): Sandbox {
  return {
    config,
    contained: false,
    supervisorIsGroupLeader: false,
    async prepare({ homeDir }) {
      await mkdir(homeDir, { recursive: true, mode: 0o700 });
    },
    ownerOf() {
      return undefined;
    },
    spawn(options: SandboxSpawnOptions): ChildProcess {
      // Tied to this thread as bwrap's --die-with-parent ties a sandbox: nothing outlives the listener.
      const cwd = options.subDir ? path.join(options.workDir, options.subDir) : options.workDir;
      return spawnWithLifeline({ script: options.script, cwd, env: { ...options.env, HOME: options.homeDir } });
    },
  };
}

/** The command's environment inside: as given, with the sandbox's `HOME` and a `PATH` of folders that exist there. */
function sandboxEnvironment(env: Readonly<Record<string, string>>, config: SandboxConfig): Record<string, string> {
  const extraBins = config.readOnlyPaths.map((prefix) => path.join(prefix, "bin"));
  return { ...env, HOME: SANDBOX_HOME, PATH: [...extraBins, SANDBOX_PATH].join(":") };
}

/** The same for every spawn of one config: namespaces, system folders, /proc, /dev. */
function systemMountArgs(config: SandboxConfig): string[] {
  const args = [
    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--hostname", "slipway",
    "--die-with-parent", "--new-session",
  ];
  for (const systemPath of SYSTEM_PATHS) {
    const stat = lstatOrUndefined(systemPath);
    if (!stat) continue;
    if (stat.isSymbolicLink()) args.push("--symlink", readlinkSync(systemPath), systemPath);
    else if (stat.isDirectory()) args.push("--ro-bind", systemPath, systemPath);
  }
  for (const extra of config.readOnlyPaths) args.push("--ro-bind", extra, extra);
  // Folders bwrap creates on its own are 0700 (root's); these must be readable by the user.
  args.push("--perms", "0755", "--dir", "/etc");
  for (const etcPath of ETC_PATHS) args.push("--ro-bind-try", etcPath, etcPath);
  args.push("--proc", "/proc", "--dev", "/dev");
  return args;
}

function lstatOrUndefined(file: string) {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

/** The first uid (and gid) of the range deployments' users are drawn from. */
const SANDBOX_ID_BASE = 1_200_000_000;
const SANDBOX_ID_RANGE = 800_000_000;

/**
 * A uid and gid of the deployment's own, the same on every start of every listener:
 * hashed from the deployment id into a range far above real users (and below 2^31), so
 * two deployments' processes neither share files nor count against each other's
 * process limit.
 */
export function sandboxUserFor(deploymentId: string): SandboxUser {
  let hash = 0x811c9dc5; // FNV-1a, 32 bits
  for (const byte of Buffer.from(deploymentId)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  const id = SANDBOX_ID_BASE + (hash % SANDBOX_ID_RANGE);
  return { uid: id, gid: id };
}
