import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

import { createInstanceRegistry } from "../../../src/listener/instances/create-instance-registry.js";
import { createInstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import { createRouter } from "../../../src/listener/instances/create-router.js";
import { tempDir } from "../../support/temp-dir.js";
import { isAlive, killAll } from "../build/processes.js";
import { appEnv, get, killTagged, newTag, processesWithTag, SAMPLE_APP, SAMPLE_COMMAND, testLog } from "./instance-helpers.js";

const listenerScript = fileURLToPath(new URL("./fixtures/deploy-then-wait.ts", import.meta.url));
const tags: string[] = [];
const pids: number[] = [];
afterEach(() => {
  for (const tag of tags.splice(0)) killTagged(tag);
  killAll(pids.splice(0));
});

describe("a listener killed with SIGKILL", () => {
  it("takes its instances with it; the next supervisor starts the revision again and drops the old record", async () => {
    const dataDir = await tempDir("slipway-instances-");
    const records = path.join(dataDir, "run", "processes");
    const tag = newTag();
    tags.push(tag);
    const spec = { deploymentId: "deployment-1", host: "production.sample.localhost", revisionId: "rev-1", cwd: SAMPLE_APP, command: SAMPLE_COMMAND, env: appEnv("rev-1", tag), healthcheck: "/healthz" };

    const listener = spawn(process.execPath, ["--import", "tsx", listenerScript], {
      cwd: fileURLToPath(new URL("../../..", import.meta.url)),
      env: { ...process.env, SLIPWAY_TEST_DEPLOY: JSON.stringify({ dataDir, spec }) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    // The victim prints its deploy result as one line once the revision serves.
    const firstLine = new Promise<string>((resolve, reject) => {
      let output = "";
      listener.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("\n")) resolve(output);
      });
      listener.once("exit", (code, signal) => reject(new Error(`the listener exited (${code ?? signal}) before deploying: ${output}`)));
    });
    expect(JSON.parse(await firstLine)).toMatchObject({ ok: true });
    expect(processesWithTag(tag).length).toBeGreaterThan(0);
    const [oldRecord] = await readdir(records);

    listener.kill("SIGKILL");
    await once(listener, "exit");
    // Tied to the listener (spawnWithLifeline): gone without anyone coming back for them.
    await expect.poll(() => processesWithTag(tag), { timeout: 5_000, interval: 20 }).toEqual([]);
    expect(await readdir(records)).toEqual([oldRecord]); // the listener could not forget it

    const { log } = testLog();
    const router = await createRouter({ port: 0, listenHost: "127.0.0.1", domain: "localhost", log });
    const instances = createInstanceSupervisor({ dataDir, log, router });
    try {
      const [restored] = await instances.restore([{ ...spec, env: appEnv("rev-1", tag) }]);
      expect(restored?.result.ok).toBe(true);
      expect(processesWithTag(tag).length).toBeGreaterThan(0);
      expect((await get(router.port, spec.host)).body).toBe("revision rev-1\n");
      // Only the new instance's record is left.
      const now = await readdir(records);
      expect(now).toHaveLength(1);
      expect(now).not.toContain(oldRecord);
    } finally {
      await instances.close();
      await router.close();
    }
  });

  it("reaps its records by run marker only: a process that reused a recorded pid is left alone", async () => {
    const dir = path.join(await tempDir("slipway-instances-"), "run", "processes");
    await mkdir(dir, { recursive: true });
    // An unrelated process now has the pid an old record names.
    const bystander = spawn("sleep", ["100"], { stdio: "ignore" });
    // A process of an old instance that escaped its group and the watchdog, still carrying its marker.
    const escapedMarker = `slipway-run-${randomUUID()}`;
    const escaped = spawn("/bin/sleep", ["101"], { stdio: "ignore", detached: true, env: { SLIPWAY_RUN_MARKER: escapedMarker } });
    pids.push(bystander.pid!, escaped.pid!);
    const record = (marker: string, pid: number) =>
      writeFile(path.join(dir, `${marker}.json`), JSON.stringify({ marker, deploymentId: "deployment-1", revisionId: "rev-1", pid, port: 9, startedAt: new Date().toISOString() }));
    await record(`slipway-run-${randomUUID()}`, bystander.pid!);
    await record(escapedMarker, 999_999);

    const stopped = await createInstanceRegistry({ dir, log: testLog().log }).reapOrphans();

    expect(stopped).toBe(1);
    expect(isAlive(escaped.pid!)).toBe(false);
    expect(isAlive(bystander.pid!)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });
});
