/**
 * The attack on "every running process has an owner": a listener is killed with SIGKILL
 * (it can stop nothing) while a revision runs and a build step runs in a worker thread,
 * each with a grandchild in the background. The listener never comes back; the process
 * table must still empty itself of everything they started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

import { hasBubblewrap } from "../../support/bubblewrap.js";
import { tempDir } from "../../support/temp-dir.js";
import { killAll } from "../build/processes.js";
import { appEnv, killTagged, newTag, processesWithTag, SAMPLE_APP } from "./instance-helpers.js";

const VICTIM = fileURLToPath(new URL("./fixtures/listener-until-killed.ts", import.meta.url));
const PROJECT = fileURLToPath(new URL("../../..", import.meta.url));
const withBubblewrap = hasBubblewrap("the bubblewrap case of the listener-death test");

const tags: string[] = [];
const seen: string[] = [];
afterEach(() => {
  for (const tag of tags.splice(0)) killTagged(tag);
  killAll(alive(seen.splice(0)).map((id) => Number(id.split(":")[0])));
});

interface Row {
  ppid: number;
  /** `pid:starttime`: the same pid given to a new process is a different identity. */
  identity: string;
}

/** Live (non-zombie) processes, read from /proc. */
function processTable(): Map<number, Row> {
  const table = new Map<number, Row>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "latin1");
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") continue;
    table.set(Number(name), { ppid: Number(fields[1]), identity: `${name}:${fields[19]}` });
  }
  return table;
}

/** Every process below `root` (children, their children…), as identities. */
function descendants(root: number): string[] {
  const table = processTable();
  const found: string[] = [];
  const walk = (parent: number) => {
    for (const [pid, row] of table) {
      if (row.ppid !== parent) continue;
      found.push(row.identity);
      walk(pid);
    }
  };
  walk(root);
  return found;
}

function alive(identities: readonly string[]): string[] {
  const now = new Set([...processTable().values()].map((row) => row.identity));
  return identities.filter((id) => now.has(id));
}

function commandLine(identity: string): string {
  try {
    return readFileSync(`/proc/${identity.split(":")[0]}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("\n")) resolve(output);
    });
    child.once("exit", (code, signal) => reject(new Error(`the listener exited (${code ?? signal}) before it ran anything: ${output}`)));
  });
}

describe("a listener killed with SIGKILL that never comes back", () => {
  const cases = [
    { kind: "none", policy: "off", run: true },
    { kind: "bubblewrap", policy: "bubblewrap", run: withBubblewrap },
  ] as const;

  for (const { kind, policy, run } of cases) {
    it.skipIf(!run)(`leaves none of its revisions' or builds' processes running (sandbox ${kind})`, async () => {
      const dataDir = await tempDir("slipway-listener-death-");
      const tag = newTag();
      tags.push(tag);
      const victim = spawn(process.execPath, ["--import", "tsx", VICTIM], {
        cwd: PROJECT,
        env: {
          ...process.env,
          SLIPWAY_TEST_VICTIM: JSON.stringify({
            dataDir,
            policy,
            appDir: SAMPLE_APP,
            // Grandchildren in the background: nobody waits for them.
            deploy: { deploymentId: "deployment-1", host: "production.sample.localhost", revisionId: "rev-1", command: "sleep 300 & node server.mjs", env: appEnv("rev-1", tag), healthcheck: "/healthz" },
            build: { commands: ["sleep 301 & echo build-running; sleep 302"], env: appEnv("rev-1", tag), readyLine: "build-running" },
          }),
        },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const started = JSON.parse(await firstLine(victim)) as unknown;
      expect(started).toMatchObject({ kind, deployed: { ok: true }, built: "running" });

      // Whatever it started: its descendants (bwrap has an empty environment) and whatever carries the tag.
      const tagged = processesWithTag(tag).map((pid) => processTable().get(pid)?.identity);
      const before = [...new Set([...descendants(victim.pid!), ...tagged.filter((id): id is string => id !== undefined)])];
      seen.push(...before);
      const commands = before.map(commandLine);
      // The premise: the app, its grandchild, the build step and its grandchild are running.
      for (const command of ["node server.mjs", "sleep 300", "sleep 301", "sleep 302"]) {
        expect(commands, command).toContain(command);
      }

      victim.kill("SIGKILL");
      await once(victim, "exit");
      await expect.poll(() => alive(before), { timeout: 5_000, interval: 20 }).toEqual([]);
      expect(processesWithTag(tag)).toEqual([]);
    });
  }
});
