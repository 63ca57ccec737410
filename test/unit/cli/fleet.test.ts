import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../../src/cli/main.js";
import { createAdminApi } from "../../../src/control-plane/admin/admin-api.js";
import { resolveAdminToken } from "../../../src/control-plane/admin/admin-token.js";
import { createListenerPresence } from "../../../src/control-plane/listener-presence.js";
import { createListenerRegistry } from "../../../src/control-plane/listener-registry.js";
import { createLifecycle } from "../../../src/revisions/lifecycle.js";
import { openStateStore } from "../../../src/store/open-state-store.js";
import { openSecretBox } from "../../../src/store/secret-box.js";
import { revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** The admin API over real HTTP on loopback, with a deployment bound to listener-a by its embedded database. */
async function adminServer() {
  const dataDir = await tempDir();
  const store = await openStateStore({ dataDir, log: silentLog });
  const secrets = await openSecretBox({ dataDir });
  const lifecycle = createLifecycle({ store, secrets, log: silentLog, wakeListeners: () => {} });
  const registry = createListenerRegistry({ store });
  const presence = createListenerPresence();
  const adminToken = await resolveAdminToken({ dataDir, log: silentLog });
  const api = createAdminApi({ adminToken, store, lifecycle, registry, presence, log: silentLog });
  server = createServer((request, response) => {
    api(request, response, new URL(request.url!, "http://x").pathname)
      .then((handled) => handled || response.writeHead(404).end())
      .catch((error: { status?: number; message: string }) => response.writeHead(error.status ?? 500).end(JSON.stringify({ error: error.message })));
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await registry.join({ listenerId: "listener-a", pool: "default" });
  await registry.join({ listenerId: "listener-b", pool: "eu" });
  presence.seen("listener-b", { kind: "bubblewrap", policy: "auto" }, "eu");
  const { revision } = await lifecycle.queue(revisionRequest({ sha: sha(1) }));
  const leased = await lifecycle.leaseNext({ listenerId: "listener-a", pool: "default", mayBuildForks: true }, { ttlMs: 30_000 });
  const at = new Date().toISOString();
  await lifecycle.complete(leased!.kind === "revision" ? leased!.revision.lease!.id : "", {
    outcome: "DEPLOYED",
    events: [
      { type: "phase_started", phase: "database", at },
      { type: "phase_finished", phase: "database", at, outcome: "succeeded", database: { name: "d", url: "postgresql://u:p@127.0.0.1:1/d", created: true, onListener: true } },
    ],
  });
  return { url, dataDir, store, deploymentId: revision.deploymentId };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(argv, { env, cwd: await tempDir(), stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l) });
  return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
}

describe("slipway listeners, listener revoke, deployment move", () => {
  it("the generated admin token (0600 in the data dir) lists listeners with their bound deployments", async () => {
    const { url, dataDir } = await adminServer();
    expect((await stat(path.join(dataDir, "admin.token"))).mode & 0o777).toBe(0o600);
    const listed = await cli(["listeners"], { SLIPWAY_PUBLIC_URL: url, SLIPWAY_DATA_DIR: dataDir });
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^LISTENER\s+POOL\s+STATE\s+LAST SEEN\s+DEPLOYMENTS BOUND$/m);
    expect(listed.stdout).toMatch(/^listener-a\s+default\s+gone\s+\S+\s+octo-org\/hello-world\/production$/m);
    expect(listed.stdout).toMatch(/^listener-b\s+eu\s+present\s+\S+\s+-$/m);
  });

  it("a wrong admin token is refused, and nothing changes", async () => {
    const { url, dataDir, store, deploymentId } = await adminServer();
    const refused = await cli(["deployment", "move", deploymentId], { SLIPWAY_PUBLIC_URL: url, SLIPWAY_DATA_DIR: dataDir, SLIPWAY_ADMIN_TOKEN: "not-the-admin-token-at-all" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("answered 401");
    expect(store.state.deployments[deploymentId]!.placement?.listenerId).toBe("listener-a");
  });

  it("moves a deployment to another listener, and revoking a listener moves what it held", async () => {
    const { url, dataDir, store, deploymentId } = await adminServer();
    const env = { SLIPWAY_PUBLIC_URL: url, SLIPWAY_DATA_DIR: dataDir };
    const unknown = await cli(["deployment", "move", deploymentId, "--to", "nobody"], env);
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining("no listener nobody has joined") });
    const moved = await cli(["deployment", "move", deploymentId, "--to", "listener-b"], env);
    expect(moved.code).toBe(0);
    expect(store.state.deployments[deploymentId]).toMatchObject({ placement: { listenerId: "listener-b" }, database: undefined, state: "AWAITING_DATABASE" });

    const revoked = await cli(["listener", "revoke", "listener-b"], env);
    expect(revoked.code).toBe(0);
    expect(store.state.deployments[deploymentId]!.placement).toBeUndefined();
    expect(store.state.listeners!["listener-b"]!.revokedAt).toBeDefined();
    expect((await cli(["listener", "remove", "listener-b"], env)).code).toBe(2);
  });

  it("says where to find the admin token when there is none", async () => {
    const dataDir = await tempDir();
    await writeFile(path.join(dataDir, "unrelated"), "");
    const missing = await cli(["listeners"], { SLIPWAY_PUBLIC_URL: "http://127.0.0.1:9", SLIPWAY_DATA_DIR: dataDir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no admin token: set SLIPWAY_ADMIN_TOKEN");
  });
});
