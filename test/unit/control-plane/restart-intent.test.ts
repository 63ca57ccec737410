import { describe, expect, it } from "vitest";
import { processCheckRun } from "../../../src/control-plane/intents/process-check-run.js";
import type { IntentContext } from "../../../src/control-plane/intents/intent-context.js";
import { createListenerPresence } from "../../../src/control-plane/listener-presence.js";
import { createLifecycle } from "../../../src/revisions/lifecycle.js";
import { openStateStore } from "../../../src/store/open-state-store.js";
import { openSecretBox } from "../../../src/store/secret-box.js";
import { repository, revisionRequest, sha, silentLog } from "../../support/fixtures.js";
import { tempDir } from "../../support/temp-dir.js";

/** GitHub as far as a permission check needs it: `permissions` by login. */
function fakeOctokit(permissions: Record<string, string>) {
  return {
    rest: {
      repos: {
        async getCollaboratorPermissionLevel({ username }: { username: string }) {
          const permission = permissions[username];
          if (!permission) throw Object.assign(new Error("Not Found"), { status: 404 });
          return { data: { permission, role_name: permission } };
        },
      },
    },
  };
}

async function setup() {
  const dataDir = await tempDir();
  const store = await openStateStore({ dataDir, log: silentLog });
  const lifecycle = createLifecycle({ store, secrets: await openSecretBox({ dataDir }), log: silentLog, wakeListeners: () => {} });
  const context = {
    store,
    lifecycle,
    presence: createListenerPresence(),
    getOctokit: async () => fakeOctokit({ writer: "write", reader: "read" }),
    configs: { get: async () => { throw new Error("a restart reads no config"); } },
    log: silentLog,
  } as unknown as IntentContext;
  /** A revision that deployed and runs, as the listener reports it. */
  async function running(n: number) {
    const { revision } = await lifecycle.queue(revisionRequest({ sha: sha(n), run: { command: "node server.js", timeoutSeconds: 30 }, pool: "eu" }));
    const leased = await lifecycle.leaseNext({ listenerId: "l", pool: "eu", mayBuildForks: true }, { ttlMs: 30_000 });
    const at = new Date().toISOString();
    const database = { name: "d", url: "postgresql://u:p@127.0.0.1:1/d", created: true, onListener: true };
    const events = n === 1 ? [{ type: "phase_started" as const, phase: "database" as const, at }, { type: "phase_finished" as const, phase: "database" as const, at, outcome: "succeeded" as const, database }] : [];
    await lifecycle.complete(leased!.kind === "revision" ? leased!.revision.lease!.id : "", { outcome: "DEPLOYED", events, environmentUrl: "http://x.localhost" });
    return revision;
  }
  const intent = (revisionId: string, actor: string) => ({ kind: "check_run" as const, action: "restart" as const, installationId: 42, repository, revisionId, actor });
  return { store, context, running, intent };
}

describe("restart with new settings", () => {
  it("makes a revision that starts the running build again (no config read, same pool and run settings)", async () => {
    const { store, context, running, intent } = await setup();
    const live = await running(1);
    expect(await processCheckRun(context, intent(live.id, "writer"), "d1")).toEqual({ status: "processed", note: "restart with new settings" });
    const restart = Object.values(store.state.revisions).find((r) => r.trigger.kind === "restart")!;
    expect(restart).toMatchObject({ state: "QUEUED", sha: live.sha, buildOf: live.id, pool: "eu", run: live.run, trigger: { actor: "writer" } });
  });

  it("refuses readers, and a revision that is no longer the running one", async () => {
    const { store, context, running, intent } = await setup();
    const first = await running(1);
    expect(await processCheckRun(context, intent(first.id, "reader"), "d1")).toEqual({ status: "processed", note: "not permitted" });
    await running(2);
    expect(await processCheckRun(context, intent(first.id, "writer"), "d2")).toEqual({ status: "ignored", note: "restart: not the running revision any more" });
    expect(Object.values(store.state.revisions).some((r) => r.trigger.kind === "restart")).toBe(false);
  });
});
