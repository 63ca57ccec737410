import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

import { createInstanceSupervisor } from "../../../src/listener/instances/create-instance-supervisor.js";
import { createRouter } from "../../../src/listener/instances/create-router.js";
import { tempDir } from "../../support/temp-dir.js";
import { appEnv, get, killTagged, newTag, processesWithTag, SAMPLE_APP, SAMPLE_COMMAND, testLog } from "./instance-helpers.js";

const listenerScript = fileURLToPath(new URL("./fixtures/deploy-then-wait.ts", import.meta.url));
const tags: string[] = [];
afterEach(() => {
  for (const tag of tags.splice(0)) killTagged(tag);
});

describe("a listener killed with SIGKILL", () => {
  it("leaves its instances running; the next supervisor stops them before restoring", async () => {
    const dataDir = await tempDir("slipway-instances-");
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
    const orphans = processesWithTag(tag);
    expect(orphans.length).toBeGreaterThan(0);

    listener.kill("SIGKILL");
    await once(listener, "exit");
    expect(processesWithTag(tag)).toEqual(orphans); // detached: they outlive the listener

    const { log } = testLog();
    const router = await createRouter({ port: 0, listenHost: "127.0.0.1", domain: "localhost", log });
    const instances = createInstanceSupervisor({ dataDir, log, router });
    try {
      const [restored] = await instances.restore([{ ...spec, env: appEnv("rev-1", tag) }]);
      expect(restored?.result.ok).toBe(true);
      // The old processes are gone; the restored revision runs in new ones and serves.
      const now = processesWithTag(tag);
      expect(now.length).toBeGreaterThan(0);
      expect(now.filter((pid) => orphans.includes(pid))).toEqual([]);
      expect((await get(router.port, spec.host)).body).toBe("revision rev-1\n");
    } finally {
      await instances.close();
      await router.close();
    }
  });
});
