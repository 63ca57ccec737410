import { vi } from "vitest";
import { createListenerPresence } from "../../src/control-plane/listener-presence.js";
import { createListenerRegistry } from "../../src/control-plane/listener-registry.js";
import { createRevisionLogs } from "../../src/control-plane/revision-logs.js";
import { createWorkQueue } from "../../src/control-plane/work-queue.js";
import { createLifecycle } from "../../src/revisions/lifecycle.js";
import { openStateStore } from "../../src/store/open-state-store.js";
import { openSecretBox } from "../../src/store/secret-box.js";
import { silentLog } from "./fixtures.js";
import { tempDir } from "./temp-dir.js";

/**
 * The control plane's work side in this process, on a fresh data dir: store, lifecycle,
 * work queue (a listener is present for `presentMs` after its last request), listener
 * presence and registry; GitHub's source tokens are a stub. `wakeListeners` is a spy on the
 * lifecycle's wake effect (it answers waiting long polls).
 *
 * @example
 * const { lifecycle, queue, presence } = await openInProcessQueue();
 */
export async function openInProcessQueue(options: { dataDir?: string } = {}) {
  const dataDir = options.dataDir ?? (await tempDir());
  const store = await openStateStore({ dataDir, log: silentLog });
  const secrets = await openSecretBox({ dataDir });
  const presence = createListenerPresence({ presentMs: 10_000 });
  const registry = createListenerRegistry({ store });
  const wakeListeners = vi.fn(() => queue.wake());
  const lifecycle = createLifecycle({ store, secrets, log: silentLog, wakeListeners });
  const queue = createWorkQueue({
    store,
    lifecycle,
    presence,
    logs: createRevisionLogs({ dataDir }),
    secrets,
    mintSourceToken: vi.fn(async () => ({ token: "ghs_scoped", expiresAt: new Date(Date.now() + 3600_000).toISOString() })),
    apiBaseUrl: "https://api.github.com",
    log: silentLog,
  });
  return { dataDir, store, secrets, presence, registry, lifecycle, queue, wakeListeners };
}
